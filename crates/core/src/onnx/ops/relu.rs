//! `Relu`: the activation, accepted only exactly between two affine layers (a trailing `Relu`
//! after the last layer is refused by the walk's final check: it would change the logits).

use crate::onnx::Result;
use crate::onnx::import::{Importer, Phase};
use crate::onnx::node::NodeCtx;

/// Records a `Relu` after an affine layer.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    match imp.phase {
        Phase::Affine { .. } => {
            imp.phase = Phase::Relu;
            Ok(())
        }
        Phase::Start => Err(ctx.graph_err("Relu before the first affine layer")),
        Phase::Relu => Err(ctx.graph_err("two Relu in a row")),
        Phase::Done => Err(ctx.graph_err("follows the final Softmax/LogSoftmax")),
    }
}
