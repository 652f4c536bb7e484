//! The network as the method sees it (paper §2, "Notation" in `docs/method.md`):
//! a chain of affine layers `x^{2i} = W_{2i} x^{2i-1} + b_{2i}` with ReLU between
//! consecutive layers; the last affine layer produces the logits.
//!
//! Weights are kept in `f64` so that the dyadic values of a quantized network
//! (`k·2^-F`, `|k| < 2^31`) are represented exactly and float32 weights read from
//! ONNX are widened without any rounding.

use std::borrow::Cow;
use std::sync::Arc;

use thiserror::Error;

pub use crate::graph::lower::{Frame, LayerOrigin, LoweredWeights};
use crate::graph::{Batch, CoefError, Dense, Graph, GraphError, InputMap, Node, SparseMap};

/// Why a network could not be built: always a shape or value problem of the input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    /// A weight matrix or bias does not have the size its layer claims.
    #[error("layer {layer}: {what}")]
    Shape {
        /// 0-based index of the affine layer.
        layer: usize,
        /// Human-readable description of the mismatch.
        what: String,
    },
    /// A weight or bias is NaN or infinite; no bound can be proven for such a network.
    #[error("layer {layer}: weight or bias is not finite ({value})")]
    NonFinite {
        /// 0-based index of the affine layer.
        layer: usize,
        /// The offending value.
        value: f64,
    },
    /// A network needs at least one affine layer.
    #[error("the network has no affine layer")]
    Empty,
    /// A structured layer (a convolution, a layer with pooling) could not be lowered to an
    /// affine map exactly.
    #[error("layer {layer}: {source}")]
    Lowering {
        /// 0-based index of the affine layer.
        layer: usize,
        /// Why the lowering failed.
        source: GraphError,
    },
}

/// One affine layer `y = W x + b`, `W` an `outputs × inputs` matrix.
///
/// `W` is stored dense (row-major) or, for the wide and very sparse matrices the lowering of a
/// convolution or a max-pooling tournament gives (docs/method.md, eqs. (1a), (1b)), in
/// compressed-row form ([`SparseMap`]): the lowering chooses ([`LoweredWeights`]). Code that
/// reads `W` goes through [`Affine::row_entries`] (both storages) or [`Affine::weights`]
/// (dense storage only, `None` for a sparse layer), so that a sparse layer is never
/// densified by accident.
///
/// Invariant (checked by [`Affine::new`] and [`Affine::new_sparse`]): `W` is
/// `outputs × inputs`, `b.len() == outputs`, every entry finite; a sparse layer always keeps
/// its [`LayerOrigin`].
///
/// A layer lowered from a structured model (a convolution, a dense layer after average
/// pooling) keeps its [`LayerOrigin`]: `W` and `b` are then the exact lowering of the
/// origin's parameters, [`Affine::params`] are those parameters (what quantization acts
/// on, eq. (3)), and [`Affine::map_params`] maps them and lowers again.
#[derive(Debug, Clone)]
pub struct Affine {
    inputs: usize,
    outputs: usize,
    w: Storage,
    b: Vec<f64>,
    origin: Option<Arc<LayerOrigin>>,
    /// The bound on `|W − Ŵ|`, `|b − b̂|` of a layer that could not be lowered exactly
    /// (docs/method.md, eq. (74)); `None`: `W`, `b` are the real layer.
    coef_err: Option<Arc<CoefError>>,
}

/// How `W` is kept (see [`Affine`]).
#[derive(Debug, Clone)]
enum Storage {
    /// Row-major, `outputs × inputs`.
    Dense(Vec<f64>),
    /// Compressed rows (shared: clones of a network do not copy it).
    Sparse(Arc<SparseMap>),
}

/// The non-zero entries `(column, value)` of one row of `W`, in column order (see
/// [`Affine::row_entries`]).
#[derive(Debug, Clone)]
pub enum RowEntries<'a> {
    /// A row of a dense layer; zero entries are skipped.
    Dense(std::iter::Enumerate<std::slice::Iter<'a, f64>>),
    /// A row of a sparse layer.
    Sparse(std::iter::Zip<std::slice::Iter<'a, usize>, std::slice::Iter<'a, f64>>),
}

impl Iterator for RowEntries<'_> {
    type Item = (usize, f64);

    fn next(&mut self) -> Option<(usize, f64)> {
        match self {
            RowEntries::Dense(it) => it.find(|(_, v)| **v != 0.0).map(|(c, &v)| (c, v)),
            RowEntries::Sparse(it) => it.next().map(|(&c, &v)| (c, v)),
        }
    }
}

impl PartialEq for Affine {
    /// Same shape, bias, origin and matrix entries (compared entry by entry, whatever the
    /// storage; `-0.0 == 0.0` as for `f64`).
    fn eq(&self, other: &Self) -> bool {
        if self.inputs != other.inputs
            || self.outputs != other.outputs
            || self.b != other.b
            || self.structure() != other.structure()
        {
            return false;
        }
        match (&self.w, &other.w) {
            (Storage::Dense(a), Storage::Dense(b)) => a == b,
            _ => (0..self.outputs).all(|j| self.row_entries(j).eq(other.row_entries(j))),
        }
    }
}

impl Affine {
    /// Builds a layer from a row-major `outputs × inputs` weight matrix and a bias of length `outputs`.
    /// `layer` is only used to name the layer in errors.
    pub fn new(
        layer: usize,
        outputs: usize,
        inputs: usize,
        w: Vec<f64>,
        b: Vec<f64>,
    ) -> Result<Self, ModelError> {
        if outputs == 0 || inputs == 0 {
            return Err(ModelError::Shape {
                layer,
                what: format!("empty layer ({outputs}×{inputs})"),
            });
        }
        if w.len() != outputs * inputs {
            return Err(ModelError::Shape {
                layer,
                what: format!(
                    "weight has {} entries, expected {outputs}×{inputs}",
                    w.len()
                ),
            });
        }
        if b.len() != outputs {
            return Err(ModelError::Shape {
                layer,
                what: format!("bias has {} entries, expected {outputs}", b.len()),
            });
        }
        if let Some(&value) = w.iter().chain(b.iter()).find(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { layer, value });
        }
        Ok(Self {
            inputs,
            outputs,
            w: Storage::Dense(w),
            b,
            origin: None,
            coef_err: None,
        })
    }

    /// Builds a layer whose `W` is kept sparse, with the origin it was lowered from (a
    /// sparse layer always has one: export and quantization act on the origin's parameters,
    /// never on a densified `W`). Same checks as [`Affine::new`].
    pub fn new_sparse(
        layer: usize,
        w: SparseMap,
        b: Vec<f64>,
        origin: Arc<LayerOrigin>,
    ) -> Result<Self, ModelError> {
        let (outputs, inputs) = (w.rows(), w.cols());
        if outputs == 0 || inputs == 0 {
            return Err(ModelError::Shape {
                layer,
                what: format!("empty layer ({outputs}×{inputs})"),
            });
        }
        if b.len() != outputs {
            return Err(ModelError::Shape {
                layer,
                what: format!("bias has {} entries, expected {outputs}", b.len()),
            });
        }
        let entries = (0..outputs).flat_map(|j| w.row(j).map(|(_, v)| v));
        if let Some(value) = entries.chain(b.iter().copied()).find(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { layer, value });
        }
        Ok(Self {
            inputs,
            outputs,
            w: Storage::Sparse(Arc::new(w)),
            b,
            origin: Some(origin),
            coef_err: None,
        })
    }

    /// Lowers a structured layer exactly (see [`crate::graph::lower`]) and keeps its origin.
    /// The lowering chooses the storage of `W` ([`LoweredWeights`]).
    pub fn from_origin(layer: usize, origin: Arc<LayerOrigin>) -> Result<Self, ModelError> {
        let (outputs, inputs, w, b, e) = origin
            .lower()
            .map_err(|source| ModelError::Lowering { layer, source })?;
        let coef_err = e.map(Arc::new);
        let w = match w {
            LoweredWeights::Dense(w) => w,
            LoweredWeights::Sparse(m) => {
                let mut a = Self::new_sparse(layer, m, b, origin)?;
                a.coef_err = coef_err;
                return Ok(a);
            }
        };
        let mut a = Self::new(layer, outputs, inputs, w, b)?;
        a.coef_err = coef_err;
        if !matches!(&origin.op, Node::Dense(_))
            || !origin.pre.is_empty()
            || !origin.post.is_empty()
        {
            a.origin = Some(origin);
        } else if let Node::Dense(d) = &origin.op
            && d.in_dims.len() > 1
        {
            a.origin = Some(origin);
        }
        Ok(a)
    }

    /// The same layer with `W` kept sparse (a dense layer gets its own origin, a plain
    /// `Gemm`): for callers that know the matrix is sparse, and for tests that compare the
    /// sparse code paths with the dense ones. A sparse layer is returned unchanged.
    pub fn to_sparse(&self) -> Self {
        match &self.w {
            Storage::Sparse(_) => self.clone(),
            Storage::Dense(w) => Self {
                inputs: self.inputs,
                outputs: self.outputs,
                w: Storage::Sparse(Arc::new(SparseMap::from_dense(
                    self.outputs,
                    self.inputs,
                    w,
                ))),
                b: self.b.clone(),
                origin: Some(Arc::new(self.to_origin())),
                coef_err: self.coef_err.clone(),
            },
        }
    }

    /// The bound on the coefficient error of a layer that could not be lowered exactly (an
    /// average pool whose divisor is not a power of two; docs/method.md, eq. (74)): the real
    /// layer is `W v + b` with `|W − Ŵ| ≤ E`, `|b − b̂| ≤ e_b` entry by entry. `None` for an
    /// exact layer. Every bound must add [`CoefError::slack`] to the outputs (eq. (75)).
    pub fn coef_error(&self) -> Option<&CoefError> {
        self.coef_err.as_deref()
    }

    /// The structure this layer was lowered from, if it is not a plain dense layer.
    pub fn origin(&self) -> Option<&LayerOrigin> {
        self.origin.as_deref()
    }

    /// The origin, unless it is a plain `Gemm` with nothing around it (the origin
    /// [`Affine::to_sparse`] gives a dense layer that had none): what equality compares.
    fn structure(&self) -> Option<&LayerOrigin> {
        self.origin.as_deref().filter(|o| {
            !(o.pre.is_empty()
                && o.post.is_empty()
                && matches!(&o.op, Node::Dense(d) if d.in_dims.len() == 1))
        })
    }

    /// The parameters quantization acts on (eq. (3)): the weights and the bias of the
    /// layer's weighted operator — `W` and `b` themselves for a plain dense layer, the
    /// kernel and the per-channel bias for a convolution, the `Gemm` weights (not their
    /// products with the pooling coefficients) for a dense layer after pooling.
    pub fn params(&self) -> (&[f64], &[f64]) {
        match (&self.origin, &self.w) {
            (Some(o), _) => o.params(),
            (None, Storage::Dense(w)) => (w, &self.b),
            (None, Storage::Sparse(_)) => unreachable!("a sparse layer always keeps its origin"),
        }
    }

    /// The layer as the weighted operator with the fixed operators around it.
    pub fn to_origin(&self) -> LayerOrigin {
        match (&self.origin, &self.w) {
            (Some(o), _) => (**o).clone(),
            (None, Storage::Dense(w)) => LayerOrigin {
                pre: Vec::new(),
                op: Node::Dense(
                    Dense::with_out_dims(
                        vec![self.inputs],
                        vec![self.outputs],
                        w.clone(),
                        self.b.clone(),
                    )
                    .expect("an Affine is a valid dense layer"),
                ),
                post: Vec::new(),
            },
            (None, Storage::Sparse(_)) => unreachable!("a sparse layer always keeps its origin"),
        }
    }

    /// Number of inputs (columns of `W`).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Number of outputs (rows of `W`, length of `b`).
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Row-major weights, `outputs × inputs`, if `W` is stored dense; `None` for a sparse
    /// layer (read it with [`Affine::row_entries`]; densifying it is what the sparse storage
    /// exists to avoid).
    pub fn weights(&self) -> Option<&[f64]> {
        match &self.w {
            Storage::Dense(w) => Some(w),
            Storage::Sparse(_) => None,
        }
    }

    /// `W` in compressed-row form, if it is stored sparse.
    pub fn sparse_weights(&self) -> Option<&SparseMap> {
        match &self.w {
            Storage::Dense(_) => None,
            Storage::Sparse(m) => Some(m),
        }
    }

    /// Whether `W` is stored sparse.
    pub fn is_sparse(&self) -> bool {
        matches!(self.w, Storage::Sparse(_))
    }

    /// Number of non-zero entries of `W`.
    pub fn nnz(&self) -> usize {
        match &self.w {
            Storage::Dense(w) => w.iter().filter(|v| **v != 0.0).count(),
            Storage::Sparse(m) => m.nnz(),
        }
    }

    /// Bias vector.
    pub fn bias(&self) -> &[f64] {
        &self.b
    }

    /// The non-zero entries `(column, value)` of row `j` of `W` (the weights into output
    /// neuron `j`), in column order, for either storage. Zero entries contribute nothing to
    /// `W x`, to `aᵀW` or to `|W|·m` (docs/method.md, eqs. (8), (13)), so every computation
    /// over a row may skip them.
    pub fn row_entries(&self, j: usize) -> RowEntries<'_> {
        match &self.w {
            Storage::Dense(w) => {
                RowEntries::Dense(w[j * self.inputs..(j + 1) * self.inputs].iter().enumerate())
            }
            Storage::Sparse(m) => {
                let (cols, vals) = m.row_slices(j);
                RowEntries::Sparse(cols.iter().zip(vals))
            }
        }
    }

    /// Row `j` of `W` as a dense slice of `inputs` values: borrowed from a dense layer,
    /// materialised (one row only) for a sparse one. For the few rows that are needed dense,
    /// e.g. the logit rows of the last layer.
    pub fn row_dense(&self, j: usize) -> Cow<'_, [f64]> {
        match &self.w {
            Storage::Dense(w) => Cow::Borrowed(&w[j * self.inputs..(j + 1) * self.inputs]),
            Storage::Sparse(m) => {
                let mut r = vec![0.0; self.inputs];
                for (c, v) in m.row(j) {
                    r[c] = v;
                }
                Cow::Owned(r)
            }
        }
    }

    /// Number of parameters (weights and biases of the weighted operator, see
    /// [`Affine::params`]): the storage a deployment pays per bit of width.
    pub fn num_params(&self) -> usize {
        let (w, b) = self.params();
        w.len() + b.len()
    }

    /// Applies `W x + b` in plain f64 (not a verified computation; used for evaluation and attacks).
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        debug_assert_eq!(x.len(), self.inputs);
        match &self.w {
            Storage::Dense(w) => (0..self.outputs)
                .map(|j| {
                    w[j * self.inputs..(j + 1) * self.inputs]
                        .iter()
                        .zip(x)
                        .map(|(w, v)| w * v)
                        .sum::<f64>()
                        + self.b[j]
                })
                .collect(),
            Storage::Sparse(m) => (0..self.outputs)
                .map(|j| m.row(j).map(|(c, w)| w * x[c]).sum::<f64>() + self.b[j])
                .collect(),
        }
    }

    /// Returns a copy whose parameters ([`Affine::params`]) are replaced by `f(value)`;
    /// shapes are kept. A structured layer is lowered again, exactly; that fails only if
    /// `f` yields a non-finite value or one so small (below 2^-969) that its product with a
    /// pooling coefficient is not exact.
    /// The storage of `W` is kept: a sparse layer stays sparse.
    pub fn map_params(&self, mut f: impl FnMut(f64) -> f64) -> Result<Self, ModelError> {
        match (&self.origin, &self.w) {
            (Some(o), _) => {
                let a = Self::from_origin(0, Arc::new(o.map_params(f)))?;
                Ok(if self.is_sparse() { a.to_sparse() } else { a })
            }
            (None, Storage::Dense(w)) => {
                let w: Vec<f64> = w.iter().map(|&v| f(v)).collect();
                let b: Vec<f64> = self.b.iter().map(|&v| f(v)).collect();
                Self::new(0, self.outputs, self.inputs, w, b)
            }
            (None, Storage::Sparse(_)) => unreachable!("a sparse layer always keeps its origin"),
        }
    }
}

/// A ReLU network: affine layers with ReLU after every layer but the last.
///
/// Invariant (checked by [`Network::new`]): at least one layer, and the output size of
/// each layer equals the input size of the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    layers: Vec<Affine>,
    frame: Option<Arc<Frame>>,
    input_map: Option<Arc<InputMap>>,
}

impl Network {
    /// Builds a network, checking that consecutive layer shapes agree.
    pub fn new(layers: Vec<Affine>) -> Result<Self, ModelError> {
        if layers.is_empty() {
            return Err(ModelError::Empty);
        }
        for (i, pair) in layers.windows(2).enumerate() {
            if pair[0].outputs != pair[1].inputs {
                return Err(ModelError::Shape {
                    layer: i + 1,
                    what: format!(
                        "takes {} inputs but the previous layer has {} outputs",
                        pair[1].inputs, pair[0].outputs
                    ),
                });
            }
        }
        Ok(Self {
            layers,
            frame: None,
            input_map: None,
        })
    }

    /// Attaches an input map (input normalisation, see [`InputMap`]): the raw input goes
    /// through it before layer 0. The map must produce layer 0's input width; an empty map
    /// is the identity and attaches nothing. Kept by [`Network::with_layers`].
    pub fn with_input_map(mut self, map: InputMap) -> Result<Self, ModelError> {
        let Some(out) = map.output_len() else {
            self.input_map = None;
            return Ok(self);
        };
        if out != self.layers[0].inputs {
            return Err(ModelError::Shape {
                layer: 0,
                what: format!(
                    "takes {} inputs but the input normalisation produces {out}",
                    self.layers[0].inputs
                ),
            });
        }
        self.input_map = Some(Arc::new(map));
        Ok(self)
    }

    /// The input map (normalisation and layout before layer 0), if the network has one.
    /// Every proof over a raw box must map the box first ([`Network::map_input_box`]).
    pub fn input_map(&self) -> Option<&InputMap> {
        self.input_map.as_deref()
    }

    /// A raw input mapped to layer 0's input (plain f64; the identity without a map).
    pub fn map_input(&self, x: &[f64]) -> Vec<f64> {
        match &self.input_map {
            Some(m) => m.forward(x),
            None => x.to_vec(),
        }
    }

    /// A box over layer 0's input containing the exact image of the raw box `[lo, hi]`
    /// (outward rounded, [`InputMap::map_box`]; the box itself without a map).
    pub fn map_input_box(&self, lo: &[f64], hi: &[f64]) -> (Vec<f64>, Vec<f64>) {
        match &self.input_map {
            Some(m) => m.map_box(lo, hi),
            None => (lo.to_vec(), hi.to_vec()),
        }
    }

    /// Attaches the declared input of the model this network came from (kept by
    /// [`Network::with_layer`] and [`Network::with_layers`], used by export).
    pub fn with_frame(mut self, frame: Frame) -> Self {
        self.frame = Some(Arc::new(frame));
        self
    }

    /// The declared input of the model this network came from, if any.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_deref()
    }

    /// A network with the same frame and new layers (shapes checked as in [`Network::new`]).
    pub fn with_layers(&self, layers: Vec<Affine>) -> Result<Self, ModelError> {
        let mut n = Self::new(layers)?;
        n.frame = self.frame.clone();
        if let Some(m) = &self.input_map {
            n = n.with_input_map((**m).clone())?;
        }
        Ok(n)
    }

    /// The network as a typed graph: each layer's operators, with `Relu` between layers.
    pub fn to_graph(&self) -> Result<Graph, GraphError> {
        let mut nodes: Vec<Node> = self
            .input_map
            .as_ref()
            .map(|m| m.nodes().to_vec())
            .unwrap_or_default();
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let o = l.to_origin();
            // A max pooling lowered to ReLU stages is written back as one MaxPool.
            if let Node::MaxStage(m) = &o.op {
                if m.level == 0 {
                    if m.relu_after && matches!(nodes.last(), Some(Node::Relu { .. })) {
                        let relu = nodes.pop();
                        nodes.push(Node::Pool(m.pool.clone()));
                        nodes.extend(relu);
                    } else {
                        nodes.push(Node::Pool(m.pool.clone()));
                    }
                }
                continue;
            }
            nodes.extend(o.pre.into_iter().filter(|n| !matches!(n, Node::MaxSum(_))));
            nodes.push(o.op);
            nodes.extend(o.post);
            if i < last {
                let dims = nodes[nodes.len() - 1].out_dims();
                nodes.push(Node::Relu { dims });
            }
        }
        let (batch, dims) = match &self.frame {
            Some(f) => (f.batch.clone(), f.input_dims.clone()),
            None => (Batch::Symbolic("N".into()), vec![self.input_dim()]),
        };
        Graph::new(batch, dims, nodes)
    }

    /// The affine layers, input side first.
    pub fn layers(&self) -> &[Affine] {
        &self.layers
    }

    /// Number of affine layers (`d` in the paper).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The layers that could not be lowered exactly and carry a coefficient error bound
    /// ([`Affine::coef_error`]; docs/method.md, eq. (74)). Code that reads the weights for a
    /// proof without adding the bound must refuse these (the exact MILP encodings, the
    /// integer and float32 semantics).
    pub fn inexact_layers(&self) -> Vec<usize> {
        (0..self.layers.len())
            .filter(|&k| self.layers[k].coef_err.is_some())
            .collect()
    }

    /// Input dimension: the number of raw input values (before the input map, if any;
    /// layer 0's [`Affine::inputs`] is the mapped width).
    pub fn input_dim(&self) -> usize {
        self.input_map
            .as_ref()
            .and_then(|m| m.input_len())
            .unwrap_or(self.layers[0].inputs)
    }

    /// Number of logits.
    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Returns a copy with layer `i` replaced (shapes must match, which [`Affine::map_params`] keeps).
    pub fn with_layer(&self, i: usize, layer: Affine) -> Result<Self, ModelError> {
        let mut layers = self.layers.clone();
        layers[i] = layer;
        self.with_layers(layers)
    }

    /// Plain f64 forward pass returning the logits (the input map applied first).
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let mut v = self.map_input(x);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            v = layer.apply(&v);
            if i < last {
                v.iter_mut().for_each(|t| *t = t.max(0.0));
            }
        }
        v
    }

    /// Index of the largest logit (ties broken towards the lower index, like `argmax` in NumPy).
    pub fn predict(&self, x: &[f64]) -> usize {
        argmax(&self.forward(x))
    }

    /// Parameter count per layer.
    pub fn params_per_layer(&self) -> Vec<usize> {
        self.layers.iter().map(Affine::num_params).collect()
    }
}

/// Whether two networks have the same layers up to layout-only differences in how they were
/// written ([`LayerOrigin::canonical`]) — the same operators, geometry and lowered weights and
/// biases, bit for bit — and the same declared input. An export followed by an import gives
/// back such a network.
pub fn same_structure(a: &Network, b: &Network) -> bool {
    a.depth() == b.depth()
        && a.frame() == b.frame()
        && a.layers().iter().zip(b.layers()).all(|(p, q)| {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let same_w = match (p.weights(), q.weights()) {
                (Some(a), Some(b)) => bits(a) == bits(b),
                _ => {
                    p.outputs() == q.outputs()
                        && (0..p.outputs()).all(|j| {
                            let e = |l: &Affine| {
                                l.row_entries(j)
                                    .map(|(c, v)| (c, v.to_bits()))
                                    .collect::<Vec<_>>()
                            };
                            e(p) == e(q)
                        })
                }
            };
            p.to_origin().canonical() == q.to_origin().canonical()
                && same_w
                && bits(p.bias()) == bits(q.bias())
        })
}

/// Index of the first maximal entry.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Network {
        let l0 = Affine::new(0, 2, 2, vec![1.0, -1.0, 0.5, 2.0], vec![0.0, -1.0]).unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, 1.0, -1.0, 1.0], vec![0.5, 0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    #[test]
    fn forward_applies_relu_between_layers_only() {
        let n = tiny();
        // h = relu([1-2, 0.5+4-1]) = [0, 3.5]; y = [3.5+0.5, 3.5]
        assert_eq!(n.forward(&[1.0, 2.0]), vec![4.0, 3.5]);
        assert_eq!(n.predict(&[1.0, 2.0]), 0);
    }

    #[test]
    fn sparse_storage_is_the_same_layer() {
        let n = tiny();
        let l = &n.layers()[0];
        let s = l.to_sparse();
        assert!(s.is_sparse() && !l.is_sparse());
        assert_eq!(s.weights(), None);
        assert_eq!(s.sparse_weights().unwrap().nnz(), 4);
        assert_eq!(&s, l, "equality is entry by entry, whatever the storage");
        for j in 0..2 {
            assert_eq!(
                s.row_entries(j).collect::<Vec<_>>(),
                l.row_entries(j).collect::<Vec<_>>()
            );
            assert_eq!(s.row_dense(j), l.row_dense(j));
        }
        assert_eq!(s.apply(&[1.0, 2.0]), l.apply(&[1.0, 2.0]));
        assert_eq!(s.params(), l.params());
        // map_params keeps the storage and maps the parameters.
        let m = s.map_params(|v| 2.0 * v).unwrap();
        assert!(m.is_sparse());
        assert_eq!(m, l.map_params(|v| 2.0 * v).unwrap());
        // A zero entry is not stored; a changed entry makes the layers differ.
        let z = Affine::new(0, 1, 3, vec![0.0, -1.5, 0.0], vec![1.0]).unwrap();
        assert_eq!(
            z.to_sparse().row_entries(0).collect::<Vec<_>>(),
            [(1, -1.5)]
        );
        let other = Affine::new(0, 1, 3, vec![0.0, -1.0, 0.0], vec![1.0]).unwrap();
        assert_ne!(z.to_sparse(), other.to_sparse());
        let net = Network::new(vec![s, n.layers()[1].to_sparse()]).unwrap();
        assert_eq!(net.forward(&[1.0, 2.0]), n.forward(&[1.0, 2.0]));
        let sparse_net = n.with_layers(net.layers().to_vec()).unwrap();
        assert!(same_structure(&sparse_net, &net));
    }

    #[test]
    fn sparse_layers_keep_bad_values_out() {
        let m = SparseMap::from_rows(2, vec![vec![(0, f64::INFINITY)]]).unwrap();
        let o = Arc::new(tiny().layers()[0].to_origin());
        assert!(matches!(
            Affine::new_sparse(0, m, vec![0.0], o.clone()),
            Err(ModelError::NonFinite { .. })
        ));
        let m = SparseMap::from_rows(2, vec![vec![(0, 1.0)]]).unwrap();
        assert!(matches!(
            Affine::new_sparse(0, m, vec![0.0, 1.0], o),
            Err(ModelError::Shape { .. })
        ));
    }

    #[test]
    fn shape_errors_are_reported() {
        assert!(matches!(
            Affine::new(3, 2, 2, vec![1.0; 3], vec![0.0; 2]),
            Err(ModelError::Shape { layer: 3, .. })
        ));
        assert!(matches!(
            Affine::new(0, 2, 2, vec![1.0; 4], vec![0.0; 3]),
            Err(ModelError::Shape { .. })
        ));
        assert!(matches!(
            Affine::new(0, 1, 1, vec![f64::NAN], vec![0.0]),
            Err(ModelError::NonFinite { .. })
        ));
        let a = Affine::new(0, 3, 2, vec![0.0; 6], vec![0.0; 3]).unwrap();
        let b = Affine::new(1, 1, 2, vec![0.0; 2], vec![0.0]).unwrap();
        assert!(matches!(
            Network::new(vec![a, b]),
            Err(ModelError::Shape { layer: 1, .. })
        ));
        assert_eq!(Network::new(vec![]), Err(ModelError::Empty));
    }
}
