//! `Flatten`: only with axis 1 (which keeps the batch axis and flattens each sample).
//! Tested with `Reshape` in [`super::reshape`].

use crate::graph::{Node, Reshape, ReshapeKind};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// Appends a `Flatten` of each sample to `[n]`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&["axis"])?;
    let dims = imp
        .dims
        .clone()
        .ok_or_else(|| ctx.shape_err("the rank of the graph input is unknown"))?;
    let rank = dims.len() + 1;
    let axis = ctx.attr_int("axis", 1)?;
    let rank_i = rank as i64;
    let norm = if axis < 0 { axis + rank_i } else { axis };
    if norm != 1 {
        return Err(ctx.shape_err(format_args!(
            "axis {axis} on a rank-{rank} tensor would change the per-sample element count (only axis 1 keeps it)"
        )));
    }
    let n = dims.iter().product();
    let r = Reshape::new(ReshapeKind::Flatten, dims, vec![n]).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Reshape(r))
}
