//! `Transpose` with an explicit `perm` that keeps the batch axis first (e.g. NHWC → NCHW
//! right after the input, as Keras/tf2onnx exports write it).

use crate::graph::{Node, Transpose};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// Appends a permutation of the sample axes.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&["perm"])?;
    let dims = imp.need_dims(ctx)?;
    let perm = ctx.attr_ints("perm")?.ok_or_else(|| {
        ctx.graph_err("attribute 'perm' is required (the default reverses the batch axis)")
    })?;
    if perm.first() != Some(&0) {
        return Err(ctx.graph_err(format_args!(
            "attribute 'perm' {perm:?} moves the batch axis"
        )));
    }
    let sample: Option<Vec<usize>> = perm[1..]
        .iter()
        .map(|&p| usize::try_from(p).ok().and_then(|p| p.checked_sub(1)))
        .collect();
    let sample = sample
        .ok_or_else(|| ctx.graph_err(format_args!("attribute 'perm' {perm:?} is invalid")))?;
    let t = Transpose::new(dims, sample).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Transpose(t))
}
