//! The operator registry: which ONNX operators the importer understands, and how.
//!
//! Each supported operator of the default domain has one row in [`REGISTRY`] naming its
//! handlers, which live in one small file per operator. The graph walk
//! ([`super::import::import_graph`]) uses the table three times: to reject a graph with any
//! operator that has no row (before anything else is looked at), to fold constants
//! ([`Op::fold`]) and, along the chain from the graph input to its output, to apply each node
//! ([`Op::step`]).
//!
//! Adding an operator is one new file here with its handler(s) and their tests, a `mod` line
//! and one table row; the module documentation of [`super`] lists the supported forms and
//! should gain a line as well.

use super::Result;
use super::import::Importer;
use super::node::NodeCtx;
use super::tensor::{Const, Consts};

mod add;
mod arith;
mod batchnorm;
mod constant;
mod conv;
mod flatten;
mod gemm;
mod identity;
mod matmul;
mod pad;
mod pool;
mod relu;
mod reshape;
mod softmax;
mod squeeze;
mod transpose;

/// Applies one node of the chain to the importer state: `data` is the node's single
/// non-constant input (the tensor flowing along the chain).
pub(super) type Step = for<'a> fn(&mut Importer<'a>, &NodeCtx<'a>, &str) -> Result<()>;

/// Constant folding: given the constants defined so far (in node order), returns the value
/// the node defines if it is a constant, or `None` if the node belongs to the chain.
pub(super) type Fold = for<'a> fn(&NodeCtx<'a>, &Consts<'a>) -> Result<Option<Const<'a>>>;

/// How one operator is imported.
pub(super) struct Op {
    /// The operator type in the default domain (`""` or `ai.onnx`).
    pub(super) name: &'static str,
    /// Constant folding, for operators that can define a constant (`Constant`, `Identity` of
    /// a constant); run on every node of the operator, in graph order, before the chain walk.
    pub(super) fold: Option<Fold>,
    /// The chain step; `None` for operators that only ever define constants.
    pub(super) step: Option<Step>,
}

/// Every supported operator, one row each.
static REGISTRY: &[Op] = &[
    Op {
        name: "Gemm",
        fold: None,
        step: Some(gemm::step),
    },
    Op {
        name: "MatMul",
        fold: None,
        step: Some(matmul::step),
    },
    Op {
        name: "Add",
        fold: None,
        step: Some(add::step),
    },
    Op {
        name: "Relu",
        fold: None,
        step: Some(relu::step),
    },
    Op {
        name: "Flatten",
        fold: None,
        step: Some(flatten::step),
    },
    Op {
        name: "Reshape",
        fold: None,
        step: Some(reshape::step),
    },
    Op {
        name: "Identity",
        fold: Some(identity::fold),
        step: Some(identity::step),
    },
    Op {
        name: "Constant",
        fold: Some(constant::fold),
        step: None,
    },
    Op {
        name: "Softmax",
        fold: None,
        step: Some(softmax::step),
    },
    Op {
        name: "LogSoftmax",
        fold: None,
        step: Some(softmax::step),
    },
    Op {
        name: "Sub",
        fold: None,
        step: Some(arith::step),
    },
    Op {
        name: "Mul",
        fold: None,
        step: Some(arith::step),
    },
    Op {
        name: "Div",
        fold: None,
        step: Some(arith::step),
    },
    Op {
        name: "Conv",
        fold: None,
        step: Some(conv::step),
    },
    Op {
        name: "BatchNormalization",
        fold: None,
        step: Some(batchnorm::step),
    },
    Op {
        name: "Pad",
        fold: None,
        step: Some(pad::step),
    },
    Op {
        name: "AveragePool",
        fold: None,
        step: Some(pool::step),
    },
    Op {
        name: "MaxPool",
        fold: None,
        step: Some(pool::step),
    },
    Op {
        name: "GlobalAveragePool",
        fold: None,
        step: Some(pool::global),
    },
    Op {
        name: "Transpose",
        fold: None,
        step: Some(transpose::step),
    },
    Op {
        name: "Squeeze",
        fold: None,
        step: Some(squeeze::step),
    },
    Op {
        name: "Unsqueeze",
        fold: None,
        step: Some(squeeze::step),
    },
];

/// The registry row of the operator `op_type` (default domain), if it is supported.
pub(super) fn lookup(op_type: &str) -> Option<&'static Op> {
    REGISTRY.iter().find(|op| op.name == op_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rows_are_unique_and_complete() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|op| op.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len(), "an operator has two rows");
        for op in REGISTRY {
            assert!(!op.name.is_empty());
            assert!(
                op.fold.is_some() || op.step.is_some(),
                "{} does nothing",
                op.name
            );
            assert!(lookup(op.name).is_some_and(|o| std::ptr::eq(o, op)));
        }
        // Lookup is exact: case and domain prefixes matter.
        for name in ["gemm", "", "conv", "ai.onnx::Gemm"] {
            assert!(lookup(name).is_none(), "{name}");
        }
    }
}
