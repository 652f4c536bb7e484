//! From a [`Graph`] to the affine chain the method works on (docs/method.md, "Networks with
//! structure").
//!
//! The nodes are cut at every `Relu`: each piece holds exactly one weighted operator (a
//! `Gemm` or a `Conv`) with the fixed linear operators before it (`pre`: padding, layout,
//! average pooling) and after it (`post`). That piece is one affine layer of the method,
//! `x ↦ Q (W_op (P x) + b_op) = (Q W_op P) x + Q b_op`, where `P` and `Q` are the fixed
//! maps. The product is formed exactly ([`SparseMap::compose`]) or refused, so the affine
//! chain is *the same function* as the graph, not an approximation of it. The layer keeps
//! its [`LayerOrigin`], so that quantization acts on `W_op`'s parameters (eq. (3)) and the
//! export writes the original operators back.
//!
//! Constant elementwise arithmetic before the first weighted operator (input normalisation),
//! with the layout operators before it, becomes the network's [`super::InputMap`].
//!
//! `MaxPool` right after (or right before) a `Relu` becomes a tournament of fixed ReLU layers
//! ([`super::MaxTree`], docs/method.md eq. (1b)).
//!
//! Refused, with the node named: `MaxPool` elsewhere, elementwise arithmetic after the first
//! weighted operator, two weighted operators without a `Relu` between them, a `Relu` before
//! the first weighted operator or right after another `Relu`, a trailing `Relu` (it clamps
//! the logits), and fixed maps whose lowering is not exact in f64.
//!
//! An average pool whose divisor is not a power of two (3×3, 7×7 windows) cannot be lowered
//! exactly: such a layer is lowered in outward-rounded interval arithmetic and keeps a bound
//! on its coefficient error ([`super::CoefError`], docs/method.md, eqs. (74), (75)), which
//! every bound of the method adds to the layer's outputs.

use std::sync::Arc;

use super::{Batch, Graph, GraphError, MaxStage, MaxSum, MaxTree, Node, SparseMap};
use crate::model::{Affine, Network};

/// How one affine layer was written: the fixed operators before its weighted operator,
/// the weighted operator itself (a [`Node::Dense`] or [`Node::Conv`], holding the
/// parameters that quantization acts on), and the fixed operators after it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOrigin {
    /// Fixed linear operators applied first (padding, layout, average pooling).
    pub pre: Vec<Node>,
    /// The weighted operator.
    pub op: Node,
    /// Fixed linear operators applied last.
    pub post: Vec<Node>,
}

/// What a network keeps of its graph besides the layers: the declared input (for export
/// and for mapping data onto it) and layout operators after the last layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The batch axis as declared.
    pub batch: Batch,
    /// Per-sample input shape.
    pub input_dims: Vec<usize>,
}

/// How a lowered layer's matrix is stored: dense, or in compressed rows when the dense form
/// would be large and almost empty (a convolution over a large image, a max-pooling
/// tournament level: a few non-zeros per row over tens of thousands of columns).
#[derive(Debug, Clone, PartialEq)]
pub enum LoweredWeights {
    /// Row-major `outputs × inputs`.
    Dense(Vec<f64>),
    /// Compressed rows.
    Sparse(SparseMap),
}

/// A lowered matrix with more entries than this is kept sparse when its density is below
/// [`SPARSE_MAX_DENSITY`] (2^20 f64 values = 8 MiB dense; every small test network and
/// every MLP stays dense).
pub const SPARSE_MIN_ENTRIES: usize = 1 << 20;

/// Largest fraction of non-zero entries of a matrix that is kept sparse (see
/// [`SPARSE_MIN_ENTRIES`]).
pub const SPARSE_MAX_DENSITY: f64 = 0.05;

/// Whether the lowering keeps `m` sparse: many entries, few of them non-zero.
fn keep_sparse(m: &SparseMap) -> bool {
    let entries = m.rows().saturating_mul(m.cols());
    entries > SPARSE_MIN_ENTRIES && (m.nnz() as f64) < SPARSE_MAX_DENSITY * entries as f64
}

impl LayerOrigin {
    /// The weighted operator's parameters: weights (row-major as stored) and bias; none for
    /// a max-pooling stage.
    pub fn params(&self) -> (&[f64], &[f64]) {
        match &self.op {
            Node::Dense(d) => (&d.w, &d.b),
            Node::Conv(c) => (&c.w, &c.b),
            _ => (&[], &[]),
        }
    }

    /// The same layer with every weight and bias of the weighted operator replaced by
    /// `f(value)`.
    pub fn map_params(&self, mut f: impl FnMut(f64) -> f64) -> LayerOrigin {
        let op = match &self.op {
            Node::Dense(d) => {
                let mut d = d.clone();
                d.w.iter_mut()
                    .chain(d.b.iter_mut())
                    .for_each(|v| *v = f(*v));
                Node::Dense(d)
            }
            Node::Conv(c) => {
                let mut c = c.clone();
                c.w.iter_mut()
                    .chain(c.b.iter_mut())
                    .for_each(|v| *v = f(*v));
                Node::Conv(c)
            }
            other => other.clone(),
        };
        LayerOrigin {
            pre: self.pre.clone(),
            op,
            post: self.post.clone(),
        }
    }

    /// The layer's structure up to layout-only differences, with every parameter zeroed:
    /// reshapes dropped (they do not move data) and the weighted operator's shapes
    /// flattened. Two layers with equal canonical forms apply the same fixed operators
    /// around a weighted operator of the same kind and geometry; the checker compares a
    /// QNN layer with its original this way (an export may write a `Squeeze` as a
    /// `Reshape`, or `MatMul(W, x)` as `Reshape`, `Gemm`, `Reshape`).
    pub fn canonical(&self) -> LayerOrigin {
        let keep = |v: &[Node]| -> Vec<Node> {
            v.iter()
                .filter(|n| !matches!(n, Node::Reshape(_)))
                .cloned()
                .collect()
        };
        let mut op = self.map_params(|_| 0.0).op;
        if let Node::Dense(d) = &mut op {
            d.in_dims = vec![d.inputs()];
            d.out_dims = vec![d.outputs()];
        }
        LayerOrigin {
            pre: keep(&self.pre),
            op,
            post: keep(&self.post),
        }
    }

    /// The layer as `(outputs, inputs, W, b, E)`, formed exactly (`E` is `None`); `W` is kept
    /// sparse when it is large and almost empty ([`SPARSE_MIN_ENTRIES`],
    /// [`SPARSE_MAX_DENSITY`]), else dense row-major.
    ///
    /// A layer with an average pool whose divisor is not a power of two cannot be formed
    /// exactly: it is lowered in interval arithmetic instead, `W` and `b` are the midpoints
    /// of the enclosures and `E` bounds the distance to the real layer entry by entry
    /// (docs/method.md, eq. (74); [`super::CoefError`]).
    pub fn lower(&self) -> Result<Lowered, GraphError> {
        let (w_op, b_op, name) = match &self.op {
            Node::Dense(d) => (d.to_sparse(), d.b.clone(), "Gemm"),
            Node::Conv(c) => (c.to_sparse(), c.lowered_bias(), "Conv"),
            Node::MaxStage(m) => ((*m.map).clone(), vec![0.0; m.map.rows()], "MaxPool"),
            other => {
                return Err(GraphError::Unsupported {
                    node: other.op_name().into(),
                    what: "is not a weighted operator".into(),
                });
            }
        };
        let inexact = |what: &str| GraphError::Unsupported {
            node: name.into(),
            what: format!(
                "lowering {what} is not exact in f64 (an average pool whose window is not a power of two?)"
            ),
        };
        if super::inexact::has_inexact_pool(&self.pre)
            || super::inexact::has_inexact_pool(&self.post)
        {
            let (m, b, e) =
                super::inexact::lower_enclosed(&self.pre, &w_op, &b_op, &self.post, name)?;
            let (rows, cols) = (m.rows(), m.cols());
            if keep_sparse(&m) {
                return Ok((rows, cols, LoweredWeights::Sparse(m), b, Some(e)));
            }
            let w = m.to_dense().ok_or_else(|| too_large(name, &m))?;
            return Ok((rows, cols, LoweredWeights::Dense(w), b, Some(e)));
        }
        let p = fixed_map(&self.pre)?;
        let q = fixed_map(&self.post)?;
        if let (None, None, Node::Dense(d)) = (&p, &q, &self.op) {
            // Layout changes only: the weights themselves, bit for bit (signed zeros kept).
            return Ok((
                d.outputs(),
                d.inputs(),
                LoweredWeights::Dense(d.w.clone()),
                d.b.clone(),
                None,
            ));
        }
        let mut m = w_op;
        if let Some(p) = p {
            m = m
                .compose(&p)
                .ok_or_else(|| inexact("the operators before it"))?;
        }
        let mut b = b_op;
        if let Some(q) = q {
            let bias = SparseMap::from_dense(b.len(), 1, &b);
            b = q
                .compose(&bias)
                .and_then(|qb| qb.to_dense())
                .ok_or_else(|| inexact("the bias through the operators after it"))?;
            m = q
                .compose(&m)
                .ok_or_else(|| inexact("the operators after it"))?;
        }
        if keep_sparse(&m) {
            return Ok((m.rows(), m.cols(), LoweredWeights::Sparse(m), b, None));
        }
        let w = m.to_dense().ok_or_else(|| too_large(name, &m))?;
        Ok((m.rows(), m.cols(), LoweredWeights::Dense(w), b, None))
    }
}

/// A lowered layer: `(outputs, inputs, W, b, E)` with `E` the bound on the coefficient error
/// of a layer that could not be formed exactly (see [`LayerOrigin::lower`]).
pub type Lowered = (
    usize,
    usize,
    LoweredWeights,
    Vec<f64>,
    Option<super::CoefError>,
);

fn too_large(name: &str, m: &SparseMap) -> GraphError {
    GraphError::Shape {
        node: name.into(),
        what: format!(
            "its dense {}×{} matrix exceeds {} entries",
            m.rows(),
            m.cols(),
            super::MAX_ELEMENTS
        ),
    }
}

/// The composition of fixed operators (first applied first), or `None` for no operator.
fn fixed_map(nodes: &[Node]) -> Result<Option<SparseMap>, GraphError> {
    let mut acc: Option<SparseMap> = None;
    for n in nodes {
        let m = match n {
            Node::Reshape(_) => continue,
            Node::MaxSum(m) => (*m.map).clone(),
            Node::Pad(p) => p.to_sparse(),
            Node::Transpose(t) => t.to_sparse(),
            Node::Pool(p) => p.to_sparse().ok_or_else(|| GraphError::Unsupported {
                node: n.op_name().into(),
                what: format!(
                    "window {:?} has a divisor that is not a power of two; its lowering would round",
                    p.kernel
                ),
            })?,
            other => {
                return Err(GraphError::Unsupported {
                    node: other.op_name().into(),
                    what: "is not a fixed linear operator".into(),
                });
            }
        };
        acc = Some(match acc {
            None => m,
            Some(a) => m.compose(&a).ok_or_else(|| GraphError::Unsupported {
                node: n.op_name().into(),
                what: "composing it with the operators before it is not exact in f64".into(),
            })?,
        });
    }
    Ok(acc)
}

impl Graph {
    /// The affine chain of this graph, each layer keeping its [`LayerOrigin`] (see the
    /// module documentation for what is refused).
    pub fn lower(&self) -> Result<Network, GraphError> {
        let mut origins: Vec<LayerOrigin> = Vec::new();
        let mut pre: Vec<Node> = Vec::new();
        let mut op: Option<Node> = None;
        let mut post: Vec<Node> = Vec::new();
        let mut skip_relu = false;
        let unsupported = |i: usize, what: &str| GraphError::Unsupported {
            node: self.label(i),
            what: what.into(),
        };
        // The input map: everything up to the last elementwise node before the first
        // weighted operator (docs/method.md, "Networks with structure").
        let first_weighted = self.nodes().iter().position(Node::is_weighted);
        let map_len = self.nodes()[..first_weighted.unwrap_or(0)]
            .iter()
            .rposition(|n| matches!(n, Node::Elementwise(_)))
            .map_or(0, |i| i + 1);
        let input_map =
            super::InputMap::new(self.nodes()[..map_len].to_vec(), &self.names[..map_len])?;
        for (i, n) in self.nodes().iter().enumerate().skip(map_len) {
            match n {
                Node::Relu { .. } if skip_relu => skip_relu = false,
                Node::Relu { .. } => {
                    let Some(o) = op.take() else {
                        return Err(unsupported(
                            i,
                            if origins.is_empty() {
                                "Relu before the first Gemm/Conv"
                            } else {
                                "two Relu without a Gemm/Conv between them"
                            },
                        ));
                    };
                    origins.push(LayerOrigin {
                        pre: std::mem::take(&mut pre),
                        op: o,
                        post: std::mem::take(&mut post),
                    });
                }
                Node::Dense(_) | Node::Conv(_) => {
                    if op.is_some() {
                        return Err(unsupported(
                            i,
                            "two weighted layers (Gemm/MatMul/Conv) without a Relu between them are not supported",
                        ));
                    }
                    op = Some(n.clone());
                }
                Node::Pool(p) if p.kind == super::PoolKind::Max => {
                    // max ∘ relu: right after a Relu; relu ∘ max: the layer is closed here and
                    // the Relu that must follow is taken as the one before the pooling.
                    let after_relu = op.is_none() && pre.is_empty() && !origins.is_empty();
                    let before_relu =
                        op.is_some() && matches!(self.nodes().get(i + 1), Some(Node::Relu { .. }));
                    if !after_relu && !before_relu {
                        return Err(unsupported(
                            i,
                            "MaxPool is supported right after or right before a Relu that follows a Gemm/Conv",
                        ));
                    }
                    if let Some(o) = op.take() {
                        origins.push(LayerOrigin {
                            pre: std::mem::take(&mut pre),
                            op: o,
                            post: std::mem::take(&mut post),
                        });
                        skip_relu = true;
                    }
                    let tree = MaxTree::new(p).ok_or_else(|| {
                        unsupported(i, "its window tournament does not lower exactly")
                    })?;
                    for (level, map) in tree.levels.iter().enumerate() {
                        origins.push(LayerOrigin {
                            pre: Vec::new(),
                            op: Node::MaxStage(MaxStage {
                                pool: p.clone(),
                                level,
                                relu_after: before_relu,
                                map: map.clone(),
                            }),
                            post: Vec::new(),
                        });
                    }
                    pre.push(Node::MaxSum(MaxSum {
                        pool: p.clone(),
                        map: tree.sum.clone(),
                    }));
                }
                Node::Elementwise(_) => {
                    return Err(unsupported(
                        i,
                        "constant elementwise arithmetic is supported only as input normalisation, before the first Gemm/MatMul/Conv (after it, fold it into the weights)",
                    ));
                }
                _ => {
                    if op.is_some() {
                        post.push(n.clone());
                    } else {
                        pre.push(n.clone());
                    }
                }
            }
        }
        let Some(o) = op else {
            let last = self.nodes().len() - 1;
            return Err(unsupported(
                last,
                if origins.is_empty() {
                    "the graph has no Gemm/MatMul/Conv layer"
                } else {
                    "a trailing Relu after the last layer clamps the logits; that is not the network the method models"
                },
            ));
        };
        origins.push(LayerOrigin { pre, op: o, post });
        let mut layers = Vec::with_capacity(origins.len());
        for (k, origin) in origins.into_iter().enumerate() {
            layers.push(Affine::from_origin(k, Arc::new(origin)).map_err(|e| {
                GraphError::Unsupported {
                    node: format!("layer {k}"),
                    what: e.to_string(),
                }
            })?);
        }
        let trivial = self.input_dims().len() == 1
            && matches!(self.batch(), Batch::Symbolic(p) if p.is_empty() || p == "N");
        let frame = Frame {
            batch: self.batch().clone(),
            input_dims: self.input_dims().to_vec(),
        };
        Network::new(layers)
            .and_then(|n| n.with_input_map(input_map))
            .map(|n| if trivial { n } else { n.with_frame(frame) })
            .map_err(|e| GraphError::Shape {
                node: "graph".into(),
                what: e.to_string(),
            })
    }
}
