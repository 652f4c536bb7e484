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
