//! `Relu`: the activation. Where it may stand (exactly between two weighted layers) is
//! checked when the graph is lowered to the affine chain ([`crate::graph::lower`]).

use crate::graph::Node;
use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;

/// Appends a `Relu`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    let dims = imp.need_dims(ctx)?;
    imp.push(ctx, Node::Relu { dims })
}
