//! `Flatten`: accepted only before the first affine layer, and only with axis 1 (which keeps
//! the batch axis and the per-sample element count). Tested with `Reshape` in
//! [`super::reshape`].

use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;

/// Checks that a `Flatten` node only flattens each sample, and records the `[batch, n]` shape.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&["axis"])?;
    imp.check_reshape_allowed(ctx)?;
    let rank = imp
        .flow
        .rank
        .ok_or_else(|| ctx.shape_err("the rank of the graph input is unknown"))?;
    let axis = ctx.attr_int("axis", 1)?;
    let rank_i = rank as i64;
    let norm = if axis < 0 { axis + rank_i } else { axis };
    if norm != 1 {
        return Err(ctx.shape_err(format_args!(
            "axis {axis} on a rank-{rank} tensor would change the per-sample element count (only axis 1 keeps it)"
        )));
    }
    imp.flow.rank = Some(2);
    imp.flow.dim1 = imp.flow.width;
    Ok(())
}
