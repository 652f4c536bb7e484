//! `Constant`: provides a tensor (`value`, `value_float(s)`, `value_int(s)`) under its output
//! name. It never joins the chain; its value is folded into the graph's constants.

use crate::onnx::Result;
use crate::onnx::node::NodeCtx;
use crate::onnx::proto;
use crate::onnx::tensor::{Const, Consts, Data, Tensor};

/// Extracts the tensor a `Constant` node defines (a `Constant` is always folded).
pub(super) fn fold<'a>(ctx: &NodeCtx<'a>, _consts: &Consts<'a>) -> Result<Option<Const<'a>>> {
    value(ctx).map(Some)
}

/// The tensor of a `Constant` node: its single `value`, `value_float(s)` or `value_int(s)` attribute.
fn value<'a>(ctx: &NodeCtx<'a>) -> Result<Const<'a>> {
    if ctx.node.input.iter().any(|i| !i.is_empty()) {
        return Err(ctx.graph_err("a Constant takes no inputs"));
    }
    let [a] = ctx.node.attribute.as_slice() else {
        return Err(ctx.graph_err("must have exactly one attribute"));
    };
    ctx.check_attrs(&[
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
    ])?;
    use proto::attribute_proto::AttributeType as T;
    let name = a.name.as_deref().unwrap_or("");
    let missing = || ctx.graph_err(format_args!("attribute '{name}' has no value"));
    Ok(match name {
        "value" => {
            ctx.check_type(a, T::Tensor)?;
            Const::Proto(a.t.as_ref().ok_or_else(missing)?)
        }
        "value_float" => {
            ctx.check_type(a, T::Float)?;
            let v = a.f.ok_or_else(missing)?;
            Const::Owned(Tensor {
                dims: vec![],
                data: Data::Real(vec![f64::from(v)]),
            })
        }
        "value_floats" => {
            ctx.check_type(a, T::Floats)?;
            Const::Owned(Tensor {
                dims: vec![a.floats.len()],
                data: Data::Real(a.floats.iter().map(|&v| f64::from(v)).collect()),
            })
        }
        "value_int" => {
            ctx.check_type(a, T::Int)?;
            let v = a.i.ok_or_else(missing)?;
            Const::Owned(Tensor {
                dims: vec![],
                data: Data::Int(vec![v]),
            })
        }
        _ => {
            // "value_ints" (anything else was rejected by check_attrs).
            ctx.check_type(a, T::Ints)?;
            Const::Owned(Tensor {
                dims: vec![a.ints.len()],
                data: Data::Int(a.ints.clone()),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::OnnxError;
    use crate::onnx::node::node_label;
    use crate::onnx::proto::AttributeProto;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::test_util::{attr_f, attr_i, i64_tensor, node_a};

    fn fold_one(inputs: &[&str], attribute: Vec<AttributeProto>) -> Result<Option<Tensor>> {
        let n = node_a("c", "Constant", inputs, &["k"], attribute);
        let ctx = NodeCtx {
            node: &n,
            label: node_label(0, &n),
        };
        let value = fold(&ctx, &Consts::new())?;
        value.map(|c| c.decode("k")).transpose()
    }

    fn graph_msg(r: Result<Option<Tensor>>) -> String {
        match r {
            Err(OnnxError::Graph(m)) => m,
            other => panic!("expected a graph error, got {other:?}"),
        }
    }

    #[test]
    fn every_value_form_is_folded() {
        let t = fold_one(&[], vec![attr_f("value_float", 0.5)]).expect("value_float");
        let t = t.expect("folded");
        assert!(t.dims.is_empty() && matches!(t.data, Data::Real(ref v) if v == &[0.5]));
        let floats = AttributeProto {
            name: Some("value_floats".into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: vec![1.0, -2.0],
            ..Default::default()
        };
        let t = fold_one(&[], vec![floats])
            .expect("value_floats")
            .expect("folded");
        assert!(t.dims == [2] && matches!(t.data, Data::Real(ref v) if v == &[1.0, -2.0]));
        let t = fold_one(&[], vec![attr_i("value_int", 4)]).expect("value_int");
        assert!(matches!(t.expect("folded").data, Data::Int(ref v) if v == &[4]));
        let value = AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(i64_tensor("", &[-1, 4])),
            ..Default::default()
        };
        let t = fold_one(&[], vec![value]).expect("value").expect("folded");
        assert!(t.dims == [2] && matches!(t.data, Data::Int(ref v) if v == &[-1, 4]));
    }

    #[test]
    fn malformed_constants_are_graph_errors() {
        let m = graph_msg(fold_one(&["x"], vec![attr_i("value_int", 1)]));
        assert!(m.ends_with("a Constant takes no inputs"), "{m}");
        let m = graph_msg(fold_one(&[], vec![]));
        assert!(m.ends_with("must have exactly one attribute"), "{m}");
        let two = vec![attr_i("value_int", 1), attr_f("value_float", 1.0)];
        let m = graph_msg(fold_one(&[], two));
        assert!(m.ends_with("must have exactly one attribute"), "{m}");
        let m = graph_msg(fold_one(&[], vec![attr_i("sparse_value", 1)]));
        assert!(m.ends_with("unsupported attribute 'sparse_value'"), "{m}");
        let m = graph_msg(fold_one(&[], vec![attr_i("value_float", 1)]));
        assert!(
            m.ends_with("attribute 'value_float' must be of type FLOAT"),
            "{m}"
        );
        let empty = AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            ..Default::default()
        };
        let m = graph_msg(fold_one(&[], vec![empty]));
        assert!(m.ends_with("attribute 'value' has no value"), "{m}");
    }
}
