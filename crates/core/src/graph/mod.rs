//! The typed layer IR: a network as the chain of operators its ONNX file describes, with
//! static shapes (docs/method.md, "Networks with structure").
//!
//! The method itself works on a [`Network`](crate::model::Network): affine layers with ReLU
//! between them. Real networks are written with more operators — convolutions, pooling,
//! padding, layout changes and constant elementwise input normalisation — and a user wants
//! them back in that form after quantization. A [`Graph`] is that form: a list of typed
//! [`Node`]s over one tensor flowing from the input to the logits, every node with its
//! per-sample input and output shape (the batch axis is never part of a shape here).
//!
//! * [`Graph::forward`] evaluates the graph in f64 (accuracy, attacks, comparison with ONNX
//!   Runtime);
//! * [`Graph::lower`] (in [`lower`]) turns it into the affine chain the bounds, the
//!   preimages and the checker work on, keeping each layer's structure
//!   ([`crate::model::LayerOrigin`]) so that quantization acts on the kernel, not on the
//!   lowered matrix, and export writes a `Conv` back as a `Conv`;
//! * [`Network::to_graph`](crate::model::Network::to_graph) is the way back, used by the
//!   ONNX export.
//!
//! Every operator lives in its own file (`conv.rs`, `pool.rs`, `layout.rs`,
//! `elementwise.rs`, `dense.rs`), each with its shape rule, its forward evaluation and its
//! lowering to a sparse linear map (where it is linear).

mod conv;
mod dense;
mod elementwise;
mod inexact;
mod input_map;
mod layout;
pub mod lower;
mod maxtree;
mod pool;
mod sparse;

pub use conv::Conv2d;
pub use dense::Dense;
pub use elementwise::{Elementwise, ElementwiseKind};
pub use inexact::{CoefError, IntervalMap};
pub use input_map::InputMap;
pub use layout::{Pad, Reshape, ReshapeKind, Transpose};
pub use maxtree::{MaxStage, MaxSum, MaxTree};
pub use pool::{Pool2d, PoolKind};
pub use sparse::{SparseMap, exact_add, exact_mul};

use thiserror::Error;

/// Largest number of elements of any tensor, kernel or lowered matrix this crate builds
/// (2^27 = 134M f64 values, 1 GiB): a malformed or hostile model that asks for more is an
/// error before anything is allocated.
pub const MAX_ELEMENTS: usize = 1 << 27;

/// Why a graph is not valid or cannot be lowered to an affine chain.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GraphError {
    /// Two shapes do not fit together, or a size is out of range.
    #[error("{node}: {what}")]
    Shape {
        /// The node (operator and name) the problem is at.
        node: String,
        /// What does not fit.
        what: String,
    },
    /// The graph is valid but its structure is not one the method (affine layers with ReLU
    /// between them) can work on, e.g. a `MaxPool` or two ReLUs in a row.
    #[error("{node}: {what}")]
    Unsupported {
        /// The node (operator and name) the problem is at.
        node: String,
        /// Why it is refused.
        what: String,
    },
}

/// Number of elements of a shape, or `None` on overflow or above [`MAX_ELEMENTS`].
pub fn numel(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
}

/// One operator of the chain. Shapes are per sample (no batch axis); data is flat and
/// row-major over those shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Fully connected layer `y = W x + b` (ONNX `Gemm`, or `MatMul` with an optional `Add`).
    Dense(Dense),
    /// 2-D convolution `y = K ⋆ x + b` (ONNX `Conv`, `group = 1`, `dilations = 1`).
    Conv(Conv2d),
    /// `max(x, 0)` elementwise.
    Relu {
        /// The shape it acts on (kept so that export can name it and shapes chain).
        dims: Vec<usize>,
    },
    /// Average or max pooling over 2-D windows (ONNX `AveragePool`, `MaxPool`,
    /// `GlobalAveragePool`).
    Pool(Pool2d),
    /// Zero padding (ONNX `Pad`, mode `constant`, value 0).
    Pad(Pad),
    /// A permutation of the axes (ONNX `Transpose`).
    Transpose(Transpose),
    /// A change of shape that keeps the row-major data (ONNX `Flatten`, `Reshape`,
    /// `Squeeze`, `Unsqueeze`).
    Reshape(Reshape),
    /// `x ∘ c` for a constant `c` broadcast to the shape (ONNX `Add`, `Sub`, `Mul`, `Div`):
    /// input normalisation `(x − mean)/std`.
    Elementwise(Elementwise),
    /// One level of a max pooling lowered to ReLU layers (only inside a lowered layer's
    /// [`lower::LayerOrigin`], never in an imported graph; see [`MaxTree`]).
    MaxStage(MaxStage),
    /// The final sum of a max pooling lowered to ReLU layers (only inside a lowered layer's
    /// [`lower::LayerOrigin`]).
    MaxSum(MaxSum),
}

impl Node {
    /// The ONNX operator this node is written as (for messages and export).
    pub fn op_name(&self) -> &'static str {
        match self {
            Node::Dense(_) => "Gemm",
            Node::Conv(_) => "Conv",
            Node::Relu { .. } => "Relu",
            Node::Pool(p) => match p.kind {
                PoolKind::Average => "AveragePool",
                PoolKind::Max => "MaxPool",
            },
            Node::Pad(_) => "Pad",
            Node::Transpose(_) => "Transpose",
            Node::Reshape(r) => r.kind.op_name(),
            Node::Elementwise(e) => e.kind.op_name(),
            Node::MaxStage(_) | Node::MaxSum(_) => "MaxPool",
        }
    }

    /// Per-sample shape of the node's input.
    pub fn in_dims(&self) -> Vec<usize> {
        match self {
            Node::Dense(d) => d.in_dims.clone(),
            Node::Conv(c) => c.in_shape.to_vec(),
            Node::Relu { dims } => dims.clone(),
            Node::Pool(p) => p.in_shape.to_vec(),
            Node::Pad(p) => p.in_dims.clone(),
            Node::Transpose(t) => t.in_dims.clone(),
            Node::Reshape(r) => r.in_dims.clone(),
            Node::Elementwise(e) => e.dims.clone(),
            Node::MaxStage(m) if m.level == 0 => m.pool.in_shape.to_vec(),
            Node::MaxStage(m) => vec![m.map.cols()],
            Node::MaxSum(m) => vec![m.map.cols()],
        }
    }

    /// Per-sample shape of the node's output.
    pub fn out_dims(&self) -> Vec<usize> {
        match self {
            Node::Dense(d) => d.out_dims.clone(),
            Node::Conv(c) => c.out_shape.to_vec(),
            Node::Relu { dims } => dims.clone(),
            Node::Pool(p) => p.out_shape.to_vec(),
            Node::Pad(p) => p.out_dims(),
            Node::Transpose(t) => t.out_dims(),
            Node::Reshape(r) => r.out_dims.clone(),
            Node::Elementwise(e) => e.dims.clone(),
            Node::MaxStage(m) => vec![m.map.rows()],
            Node::MaxSum(m) => m.pool.out_shape.to_vec(),
        }
    }

    /// Evaluates the node on one sample in plain f64 (not a verified computation).
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        match self {
            Node::Dense(d) => d.forward(x),
            Node::Conv(c) => c.forward(x),
            Node::Relu { .. } => x.iter().map(|v| v.max(0.0)).collect(),
            Node::Pool(p) => p.forward(x),
            Node::Pad(p) => p.forward(x),
            Node::Transpose(t) => t.forward(x),
            Node::Reshape(_) => x.to_vec(),
            Node::Elementwise(e) => e.forward(x),
            Node::MaxStage(m) => m.map.apply(x),
            Node::MaxSum(m) => m.map.apply(x),
        }
    }

    /// Whether the node carries weights that quantization acts on (a `Gemm` or a `Conv`).
    pub fn is_weighted(&self) -> bool {
        matches!(self, Node::Dense(_) | Node::Conv(_))
    }
}

/// The batch axis of the graph input as declared in the ONNX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// A fixed size (1 in every benchmark network).
    Fixed(usize),
    /// A symbolic size (`dim_param`, e.g. `"N"`), or none declared.
    Symbolic(String),
}

/// A network as a chain of typed operators with static shapes.
///
/// Invariant (checked by [`Graph::new`]): at least one node, and each node's input shape
/// equals the previous node's output shape (the first node's input shape is `input_dims`).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    batch: Batch,
    input_dims: Vec<usize>,
    nodes: Vec<Node>,
    names: Vec<String>,
}

impl Graph {
    /// Builds a graph, checking that the shapes chain.
    pub fn new(batch: Batch, input_dims: Vec<usize>, nodes: Vec<Node>) -> Result<Self, GraphError> {
        if nodes.is_empty() {
            return Err(GraphError::Unsupported {
                node: "graph".into(),
                what: "has no operator".into(),
            });
        }
        let mut dims = input_dims.clone();
        for (i, n) in nodes.iter().enumerate() {
            if n.in_dims() != dims {
                return Err(GraphError::Shape {
                    node: format!("{} #{i}", n.op_name()),
                    what: format!(
                        "expects input shape {:?} but receives {dims:?}",
                        n.in_dims()
                    ),
                });
            }
            dims = n.out_dims();
        }
        if numel(&input_dims).is_none_or(|n| n == 0) {
            return Err(GraphError::Shape {
                node: "graph input".into(),
                what: format!("shape {input_dims:?} is empty or too large"),
            });
        }
        let names = (0..nodes.len()).map(|i| format!("#{i}")).collect();
        Ok(Self {
            batch,
            input_dims,
            nodes,
            names,
        })
    }

    /// Gives the nodes names (the ONNX node names, used in messages); `names` must have one
    /// entry per node, else the default names `#0`, `#1`, … are kept.
    pub fn with_names(mut self, names: Vec<String>) -> Self {
        if names.len() == self.nodes.len() {
            self.names = names;
        }
        self
    }

    /// The name of node `i` (the ONNX node name, or `#i`).
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `"<op> node <name>"`, the way messages refer to node `i`.
    pub fn label(&self, i: usize) -> String {
        format!("{} node {}", self.nodes[i].op_name(), self.names[i])
    }

    /// The batch axis of the graph input as declared.
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// Per-sample input shape (e.g. `[1, 28, 28]` for an input declared `[1, 1, 28, 28]`).
    pub fn input_dims(&self) -> &[usize] {
        &self.input_dims
    }

    /// Number of input values per sample (the length of the flat row-major input vector).
    pub fn input_len(&self) -> usize {
        self.input_dims.iter().product()
    }

    /// Per-sample output shape.
    pub fn output_dims(&self) -> Vec<usize> {
        self.nodes[self.nodes.len() - 1].out_dims()
    }

    /// Number of logits.
    pub fn output_len(&self) -> usize {
        self.output_dims().iter().product()
    }

    /// The operators, input side first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Plain f64 forward pass of one sample (flat, row-major over [`Graph::input_dims`]),
    /// returning the flat logits.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        debug_assert_eq!(x.len(), self.input_len());
        let mut v = x.to_vec();
        for n in &self.nodes {
            v = n.forward(&v);
        }
        v
    }

    /// Index of the largest logit (first on ties).
    pub fn predict(&self, x: &[f64]) -> usize {
        crate::model::argmax(&self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_must_chain() {
        let d = Dense::new(vec![3], 2, vec![0.0; 6], vec![0.0; 2]).unwrap();
        let relu = Node::Relu { dims: vec![3] };
        let err =
            Graph::new(Batch::Fixed(1), vec![3], vec![Node::Dense(d.clone()), relu]).unwrap_err();
        assert!(err.to_string().contains("expects input shape [3]"), "{err}");
        let g = Graph::new(
            Batch::Fixed(1),
            vec![3],
            vec![Node::Dense(d), Node::Relu { dims: vec![2] }],
        )
        .unwrap();
        assert_eq!(g.output_len(), 2);
        assert!(Graph::new(Batch::Fixed(1), vec![3], vec![]).is_err());
    }
}
