//! `Softmax` / `LogSoftmax`: accepted only as the very last operator, over the class axis,
//! and dropped. Both are strictly increasing per sample, so the argmax (the predicted class,
//! which is what is certified) is unchanged; the imported network returns the logits.

use crate::graph::Node;
use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;

/// Checks a final `Softmax`/`LogSoftmax` over the classes and ends the chain.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&["axis"])?;
    imp.check_open(ctx)?;
    if !matches!(imp.nodes.last(), Some(Node::Dense(_))) {
        return Err(ctx.graph_err(
            "Softmax/LogSoftmax is only accepted directly after the last affine layer",
        ));
    }
    // The tensor is [batch, classes]; any default (1 before opset 13, -1 since) is
    // the class axis.
    let axis = ctx.attr_int("axis", -1)?;
    if imp.dims.as_ref().is_some_and(|d| d.len() != 1) {
        return Err(ctx.graph_err("Softmax/LogSoftmax needs [batch, classes] logits"));
    }
    if axis != 1 && axis != -1 {
        return Err(ctx.graph_err(format_args!(
            "axis {axis} does not normalize over the classes"
        )));
    }
    imp.done = Some(ctx.label.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::onnx::proto::NodeProto;
    use crate::onnx::test_util::*;
    use crate::onnx::{OnnxError, import_bytes};

    #[test]
    fn final_softmax_is_dropped_but_trailing_relu_is_refused() {
        let w = f32_raw("W", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let with_tail = |tail: NodeProto| {
            model_bytes(
                vec![node("fc", "Gemm", &["x", "W"], &["z"]), tail],
                vec![w.clone()],
                vi("x", &[None, Some(2)]),
                2,
            )
        };
        let net = import_bytes(&with_tail(node("sm", "Softmax", &["z"], &["y"]))).expect("softmax");
        assert_eq!(net.depth(), 1);
        let tail = node_a("lsm", "LogSoftmax", &["z"], &["y"], vec![attr_i("axis", 1)]);
        assert!(import_bytes(&with_tail(tail)).is_ok());
        let tail = node_a("sm", "Softmax", &["z"], &["y"], vec![attr_i("axis", 0)]);
        assert!(matches!(
            import_bytes(&with_tail(tail)),
            Err(OnnxError::Graph(_))
        ));
        let err = import_bytes(&with_tail(node("r", "Relu", &["z"], &["y"]))).expect_err("relu");
        assert!(
            matches!(err, OnnxError::Graph(ref m) if m.contains("Relu")),
            "{err}"
        );
    }
}
