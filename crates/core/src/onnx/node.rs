//! A graph node as the importer sees it: its label for messages and checked access to its
//! attributes, shared by every operator handler in [`super::ops`].

use std::collections::HashSet;

use super::proto;
use super::{OnnxError, Result};

/// How a node is named in messages: its name, or its position and first output if unnamed.
pub(super) fn node_label(idx: usize, node: &proto::NodeProto) -> String {
    match node.name.as_deref() {
        Some(name) if !name.is_empty() => format!("'{name}'"),
        _ => format!(
            "#{idx} (unnamed, output '{}')",
            node.output.first().map_or("", String::as_str)
        ),
    }
}

/// A node together with its label and its checked attributes.
pub(super) struct NodeCtx<'a> {
    /// The node itself.
    pub(super) node: &'a proto::NodeProto,
    /// How the node is named in messages (see [`node_label`]).
    pub(super) label: String,
}

impl<'a> NodeCtx<'a> {
    /// The operator type (empty if absent).
    pub(super) fn op(&self) -> &'a str {
        self.node.op_type.as_deref().unwrap_or("")
    }

    /// An [`OnnxError::Graph`] naming the operator and the node.
    pub(super) fn graph_err(&self, msg: impl std::fmt::Display) -> OnnxError {
        OnnxError::Graph(format!("{} node {}: {msg}", self.op(), self.label))
    }

    /// An [`OnnxError::Shape`] naming the operator and the node.
    pub(super) fn shape_err(&self, msg: impl std::fmt::Display) -> OnnxError {
        OnnxError::Shape(format!("{} node {}: {msg}", self.op(), self.label))
    }

    /// Rejects attributes other than `allowed`, duplicates and references to function attributes.
    pub(super) fn check_attrs(&self, allowed: &[&str]) -> Result<()> {
        let mut seen = HashSet::new();
        for a in &self.node.attribute {
            let name = a.name.as_deref().unwrap_or("");
            if !allowed.contains(&name) {
                return Err(self.graph_err(format_args!("unsupported attribute '{name}'")));
            }
            if !seen.insert(name) {
                return Err(self.graph_err(format_args!("attribute '{name}' given twice")));
            }
            if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
                return Err(self.graph_err(format_args!(
                    "attribute '{name}' refers to a function attribute"
                )));
            }
        }
        Ok(())
    }

    /// The attribute called `name`, if present.
    fn attr(&self, name: &str) -> Option<&'a proto::AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }

    /// Rejects an attribute whose declared type is not `want` (an undeclared type is accepted).
    pub(super) fn check_type(
        &self,
        a: &proto::AttributeProto,
        want: proto::attribute_proto::AttributeType,
    ) -> Result<()> {
        match a.r#type {
            Some(t) if t != want as i32 && t != 0 => Err(self.graph_err(format_args!(
                "attribute '{}' must be of type {}",
                a.name.as_deref().unwrap_or(""),
                want.as_str_name()
            ))),
            _ => Ok(()),
        }
    }

    /// The integer attribute `name`, or `default` if absent.
    pub(super) fn attr_int(&self, name: &str, default: i64) -> Result<i64> {
        let Some(a) = self.attr(name) else {
            return Ok(default);
        };
        self.check_type(a, proto::attribute_proto::AttributeType::Int)?;
        a.i.ok_or_else(|| self.graph_err(format_args!("attribute '{name}' has no integer value")))
    }

    /// The finite float attribute `name`, or `default` if absent.
    pub(super) fn attr_float(&self, name: &str, default: f32) -> Result<f32> {
        let Some(a) = self.attr(name) else {
            return Ok(default);
        };
        self.check_type(a, proto::attribute_proto::AttributeType::Float)?;
        let v = a
            .f
            .ok_or_else(|| self.graph_err(format_args!("attribute '{name}' has no float value")))?;
        if !v.is_finite() {
            return Err(self.graph_err(format_args!("attribute '{name}' is {v}")));
        }
        Ok(v)
    }

    /// The integer-list attribute `name`, or `None` if absent.
    pub(super) fn attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        self.check_type(a, proto::attribute_proto::AttributeType::Ints)?;
        Ok(Some(a.ints.clone()))
    }

    /// The string attribute `name` (UTF-8), or `default` if absent.
    pub(super) fn attr_str(&self, name: &str, default: &str) -> Result<String> {
        let Some(a) = self.attr(name) else {
            return Ok(default.to_string());
        };
        self.check_type(a, proto::attribute_proto::AttributeType::String)?;
        let bytes = a.s.as_deref().unwrap_or_default();
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.graph_err(format_args!("attribute '{name}' is not UTF-8")))
    }

    /// A non-negative integer-list attribute with `len` entries (or `default` if absent),
    /// as `usize`; `what` names it in messages.
    pub(super) fn attr_usizes(&self, name: &str, len: usize, default: usize) -> Result<Vec<usize>> {
        match self.attr_ints(name)? {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len => v
                .iter()
                .map(|&x| {
                    usize::try_from(x).map_err(|_| {
                        self.graph_err(format_args!("attribute '{name}' has a negative entry {x}"))
                    })
                })
                .collect(),
            Some(v) => Err(self.graph_err(format_args!(
                "attribute '{name}' has {} entries, expected {len}",
                v.len()
            ))),
        }
    }

    /// The node's single output.
    pub(super) fn output(&self) -> Result<&'a str> {
        match self.node.output.as_slice() {
            [o] if !o.is_empty() => Ok(o),
            _ if self.op() == "BatchNormalization" && self.attr_int("training_mode", 0)? != 0 => Err(
                self.graph_err("attribute 'training_mode' = 1 is not supported (inference only)"),
            ),
            _ => Err(self.graph_err(
                "must have exactly one output (training statistics and MaxPool indices are not supported)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::AttributeProto;
    use crate::onnx::test_util::{attr_f, attr_i, node_a};

    fn ctx(n: &proto::NodeProto) -> NodeCtx<'_> {
        NodeCtx {
            node: n,
            label: node_label(3, n),
        }
    }

    fn graph_msg(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(OnnxError::Graph(m)) => m,
            other => panic!("expected a graph error, got {other:?}"),
        }
    }

    #[test]
    fn labels_name_the_node_or_its_position() {
        let n = node_a("fc0", "Gemm", &["x"], &["y"], vec![]);
        assert_eq!(node_label(3, &n), "'fc0'");
        let n = node_a("", "Gemm", &["x"], &["y"], vec![]);
        assert_eq!(node_label(3, &n), "#3 (unnamed, output 'y')");
        assert_eq!(
            ctx(&n).graph_err("boom").to_string(),
            "unsupported ONNX graph: Gemm node #3 (unnamed, output 'y'): boom"
        );
    }

    #[test]
    fn attributes_are_checked() {
        let n = node_a("n", "Gemm", &["x"], &["y"], vec![attr_i("transB", 1)]);
        assert!(ctx(&n).check_attrs(&["transB"]).is_ok());
        assert_eq!(ctx(&n).attr_int("transB", 0).expect("int"), 1);
        assert_eq!(ctx(&n).attr_int("transA", 7).expect("default"), 7);
        let m = graph_msg(ctx(&n).check_attrs(&["alpha"]));
        assert!(m.ends_with("unsupported attribute 'transB'"), "{m}");
        // An integer attribute read as a float is a type error.
        let m = graph_msg(ctx(&n).attr_float("transB", 1.0));
        assert!(
            m.ends_with("attribute 'transB' must be of type FLOAT"),
            "{m}"
        );

        let twice = node_a(
            "n",
            "Gemm",
            &["x"],
            &["y"],
            vec![attr_i("transB", 1), attr_i("transB", 0)],
        );
        let m = graph_msg(ctx(&twice).check_attrs(&["transB"]));
        assert!(m.ends_with("attribute 'transB' given twice"), "{m}");

        let reference = AttributeProto {
            ref_attr_name: Some("outer".into()),
            ..attr_i("transB", 1)
        };
        let n = node_a("n", "Gemm", &["x"], &["y"], vec![reference]);
        let m = graph_msg(ctx(&n).check_attrs(&["transB"]));
        assert!(m.ends_with("refers to a function attribute"), "{m}");

        let n = node_a(
            "n",
            "Gemm",
            &["x"],
            &["y"],
            vec![attr_f("alpha", f32::INFINITY)],
        );
        let m = graph_msg(ctx(&n).attr_float("alpha", 1.0));
        assert!(m.ends_with("attribute 'alpha' is inf"), "{m}");
    }

    #[test]
    fn a_node_has_exactly_one_named_output() {
        for outputs in [&[][..], &[""], &["a", "b"]] {
            let n = node_a("n", "Relu", &["x"], outputs, vec![]);
            let m = graph_msg(ctx(&n).output());
            assert!(m.contains("must have exactly one output"), "{m}");
        }
        let n = node_a("n", "Relu", &["x"], &["y"], vec![]);
        assert_eq!(ctx(&n).output().expect("output"), "y");
    }
}
