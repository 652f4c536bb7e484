//! `Add(·, C)`: the bias of the affine layer started by the `MatMul` right before it; the
//! constant bias may be either operand. Any other `Add` is refused.

use crate::onnx::Result;
use crate::onnx::import::{Importer, Phase};
use crate::onnx::node::NodeCtx;

/// Sets the bias of the `MatMul` layer just imported.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    if imp.phase != (Phase::Affine { bias_open: true }) {
        return Err(ctx.graph_err("Add is only supported as the bias right after a MatMul"));
    }
    let bias_name = match ctx.node.input.as_slice() {
        [x, c] if x == data => c,
        [c, x] if x == data => c,
        _ => return Err(ctx.graph_err("needs exactly two inputs")),
    };
    let outputs = imp.layers.last().map_or(0, |l| l.outputs);
    let b = imp.bias(ctx, bias_name, outputs)?;
    if let Some(layer) = imp.layers.last_mut() {
        layer.b = b;
    }
    imp.phase = Phase::Affine { bias_open: false };
    Ok(())
}
