//! The network as the method sees it (paper §2, "Notation" in `docs/method.md`):
//! a chain of affine layers `x^{2i} = W_{2i} x^{2i-1} + b_{2i}` with ReLU between
//! consecutive layers; the last affine layer produces the logits.
//!
//! Weights are kept in `f64` so that the dyadic values of a quantized network
//! (`k·2^-F`, `|k| < 2^31`) are represented exactly and float32 weights read from
//! ONNX are widened without any rounding.

use std::sync::Arc;

use thiserror::Error;

pub use crate::graph::lower::{Frame, LayerOrigin};
use crate::graph::{Batch, Dense, Graph, GraphError, InputMap, Node};

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

/// One affine layer `y = W x + b` with `W` stored row-major as `outputs × inputs`.
///
/// Invariant (checked by [`Affine::new`]): `w.len() == outputs * inputs`,
/// `b.len() == outputs`, every entry finite.
///
/// A layer lowered from a structured model (a convolution, a dense layer after average
/// pooling) keeps its [`LayerOrigin`]: `W` and `b` are then the exact lowering of the
/// origin's parameters, [`Affine::params`] are those parameters (what quantization acts
/// on, eq. (3)), and [`Affine::map_params`] maps them and lowers again.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    inputs: usize,
    outputs: usize,
    w: Vec<f64>,
    b: Vec<f64>,
    origin: Option<Arc<LayerOrigin>>,
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
            w,
            b,
            origin: None,
        })
    }

    /// Lowers a structured layer exactly (see [`crate::graph::lower`]) and keeps its origin.
    pub fn from_origin(layer: usize, origin: Arc<LayerOrigin>) -> Result<Self, ModelError> {
        let (outputs, inputs, w, b) = origin
            .lower()
            .map_err(|source| ModelError::Lowering { layer, source })?;
        let mut a = Self::new(layer, outputs, inputs, w, b)?;
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

    /// The structure this layer was lowered from, if it is not a plain dense layer.
    pub fn origin(&self) -> Option<&LayerOrigin> {
        self.origin.as_deref()
    }

    /// The parameters quantization acts on (eq. (3)): the weights and the bias of the
    /// layer's weighted operator — `W` and `b` themselves for a plain dense layer, the
    /// kernel and the per-channel bias for a convolution, the `Gemm` weights (not their
    /// products with the pooling coefficients) for a dense layer after pooling.
    pub fn params(&self) -> (&[f64], &[f64]) {
        match &self.origin {
            Some(o) => o.params(),
            None => (&self.w, &self.b),
        }
    }

    /// The layer as the weighted operator with the fixed operators around it.
    pub fn to_origin(&self) -> LayerOrigin {
        match &self.origin {
            Some(o) => (**o).clone(),
            None => LayerOrigin {
                pre: Vec::new(),
                op: Node::Dense(
                    Dense::with_out_dims(
                        vec![self.inputs],
                        vec![self.outputs],
                        self.w.clone(),
                        self.b.clone(),
                    )
                    .expect("an Affine is a valid dense layer"),
                ),
                post: Vec::new(),
            },
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

    /// Row-major weights, `outputs × inputs`.
    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    /// Bias vector.
    pub fn bias(&self) -> &[f64] {
        &self.b
    }

    /// Row `j` of `W` (the weights into output neuron `j`).
    pub fn row(&self, j: usize) -> &[f64] {
        &self.w[j * self.inputs..(j + 1) * self.inputs]
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
        (0..self.outputs)
            .map(|j| self.row(j).iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + self.b[j])
            .collect()
    }

    /// Returns a copy whose parameters ([`Affine::params`]) are replaced by `f(value)`;
    /// shapes are kept. A structured layer is lowered again, exactly; that fails only if
    /// `f` yields a non-finite value or one so small (below 2^-969) that its product with a
    /// pooling coefficient is not exact.
    pub fn map_params(&self, mut f: impl FnMut(f64) -> f64) -> Result<Self, ModelError> {
        match &self.origin {
            Some(o) => Self::from_origin(0, Arc::new(o.map_params(f))),
            None => {
                let w: Vec<f64> = self.w.iter().map(|&v| f(v)).collect();
                let b: Vec<f64> = self.b.iter().map(|&v| f(v)).collect();
                Self::new(0, self.outputs, self.inputs, w, b)
            }
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
            p.to_origin().canonical() == q.to_origin().canonical()
                && bits(p.weights()) == bits(q.weights())
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
