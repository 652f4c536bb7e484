//! `Pad` with mode `constant` and value 0: `pads` from the attribute (opset < 11) or the
//! second input (opset ≥ 11, INT64 constant); the batch axis may not be padded; negative pads
//! (cropping), other modes, a non-zero value and the `axes` input (opset 18) are refused.

use crate::graph::{Node, Pad};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// Appends a zero padding.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&["mode", "pads", "value"])?;
    let mode = ctx.attr_str("mode", "constant")?;
    if mode != "constant" {
        return Err(ctx.graph_err(format_args!(
            "attribute 'mode' = '{mode}' is not supported (only constant)"
        )));
    }
    let value = ctx.attr_float("value", 0.0)?;
    if value != 0.0 {
        return Err(ctx.graph_err(format_args!(
            "attribute 'value' = {value} is not supported (only 0)"
        )));
    }
    let inputs: Vec<&str> = ctx.node.input.iter().map(String::as_str).collect();
    if inputs.first() != Some(&data) {
        return Err(ctx.graph_err("the data must be the first input"));
    }
    let pads = match (ctx.attr_ints("pads")?, &inputs[1..]) {
        (Some(p), []) => p,
        (None, [p, rest @ ..]) => {
            match rest {
                [] => {}
                [v] | [v, ""] if !v.is_empty() => {
                    let (_, c) = imp.real(ctx, v, "constant_value")?;
                    if c.iter().any(|&c| c != 0.0) {
                        return Err(ctx.graph_err(format_args!(
                            "constant_value {c:?} is not supported (only 0)"
                        )));
                    }
                }
                [""] => {}
                _ => return Err(ctx.graph_err("the 'axes' input is not supported")),
            }
            imp.ints(ctx, p, "pads")?
        }
        _ => return Err(ctx.graph_err("needs 'pads' as an attribute or as its second input")),
    };
    let dims = imp.need_dims(ctx)?;
    let rank = dims.len() + 1;
    if pads.len() != 2 * rank {
        return Err(ctx.shape_err(format_args!(
            "pads {pads:?} has {} entries for a rank-{rank} tensor",
            pads.len()
        )));
    }
    if pads[0] != 0 || pads[rank] != 0 {
        return Err(ctx.graph_err("padding the batch axis is not supported"));
    }
    let conv = |v: &[i64]| -> Result<Vec<usize>> {
        v.iter()
            .map(|&p| {
                usize::try_from(p).map_err(|_| {
                    ctx.graph_err(format_args!(
                        "negative pads {pads:?} (cropping) are not supported"
                    ))
                })
            })
            .collect()
    };
    let begin = conv(&pads[1..rank])?;
    let end = conv(&pads[rank + 1..])?;
    let p = Pad::new(dims, begin, end).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Pad(p))
}
