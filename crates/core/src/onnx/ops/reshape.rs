//! `Reshape(data, shape)`: accepted only before the first affine layer, and only if it keeps
//! the batch axis and the per-sample element count (target `[-1, n]`, `[0, n]`, `[batch, -1]`,
//! …). The target shape must be an INT64 initializer or `Constant`.

use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;
use crate::onnx::tensor::Data;

/// Checks that a `Reshape` node only flattens each sample, and records the `[batch, n]` shape.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&["allowzero"])?;
    imp.check_reshape_allowed(ctx)?;
    let [x, s] = ctx.node.input.as_slice() else {
        return Err(ctx.graph_err("needs exactly two inputs"));
    };
    if x != data {
        return Err(ctx.graph_err("the data must be the first input"));
    }
    let allowzero = ctx.attr_int("allowzero", 0)? != 0;
    let t = imp.constant(ctx, s, "shape")?;
    let Data::Int(shape) = t.data else {
        return Err(ctx.graph_err(format_args!("shape '{s}' must be INT64")));
    };
    let width = imp.flow.width.ok_or_else(|| {
        ctx.shape_err(
            "the per-sample size of the graph input is unknown, so the Reshape cannot be checked",
        )
    })?;
    let [s0, s1] = shape[..] else {
        return Err(ctx.shape_err(format_args!(
            "target shape {shape:?} is not [batch, features]"
        )));
    };
    let keeps_batch = s0 == -1
        || (s0 == 0 && !allowzero)
        || (s0 > 0 && usize::try_from(s0).ok() == imp.flow.batch);
    let features = match s1 {
        -1 if s0 != -1 => Some(width),
        0 if !allowzero => imp.flow.dim1,
        v if v > 0 => usize::try_from(v).ok(),
        _ => None,
    };
    if !keeps_batch || features != Some(width) {
        return Err(ctx.shape_err(format_args!(
            "target shape {shape:?} does not keep the batch axis and the {width} elements per sample"
        )));
    }
    imp.flow.rank = Some(2);
    imp.flow.dim1 = Some(width);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::proto::{AttributeProto, NodeProto, TensorProto};
    use crate::onnx::test_util::*;
    use crate::onnx::{OnnxError, import_bytes};

    #[test]
    fn flatten_reshape_and_identity_before_the_first_layer() {
        let w = f32_raw("W", &[4, 2], &[1.0; 8]);
        let input = vi("x", &[None, Some(1), Some(2), Some(2)]);
        let gemm = node("fc", "Gemm", &["x2", "W"], &["y"]);
        // Flatten (default axis 1) and Identity.
        let bytes = model_bytes(
            vec![
                node("id", "Identity", &["x"], &["x1"]),
                node("flat", "Flatten", &["x1"], &["x2"]),
                gemm.clone(),
            ],
            vec![w.clone()],
            input.clone(),
            2,
        );
        assert_eq!(import_bytes(&bytes).expect("flatten").input_dim(), 4);
        // Reshape with an initializer shape, with a Constant shape, and with value_ints.
        let reshapes: Vec<(Vec<NodeProto>, Vec<TensorProto>)> = vec![
            (vec![], vec![i64_tensor("s", &[-1, 4])]),
            (
                vec![node_a(
                    "shape",
                    "Constant",
                    &[],
                    &["s"],
                    vec![AttributeProto {
                        name: Some("value".into()),
                        r#type: Some(AttributeType::Tensor as i32),
                        t: Some(i64_tensor("", &[0, 4])),
                        ..Default::default()
                    }],
                )],
                vec![],
            ),
            (
                vec![node_a(
                    "shape",
                    "Constant",
                    &[],
                    &["s"],
                    vec![AttributeProto {
                        name: Some("value_ints".into()),
                        r#type: Some(AttributeType::Ints as i32),
                        ints: vec![0, -1],
                        ..Default::default()
                    }],
                )],
                vec![],
            ),
        ];
        for (mut nodes, mut inits) in reshapes {
            nodes.push(node("rs", "Reshape", &["x", "s"], &["x2"]));
            nodes.push(gemm.clone());
            inits.push(w.clone());
            let net = import_bytes(&model_bytes(nodes, inits, input.clone(), 2)).expect("reshape");
            assert_eq!(net.input_dim(), 4);
        }
        // A Reshape that changes the per-sample count is refused.
        let bytes = model_bytes(
            vec![node("rs", "Reshape", &["x", "s"], &["x2"]), gemm.clone()],
            vec![i64_tensor("s", &[-1, 2]), w.clone()],
            input.clone(),
            2,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Shape(_))));
        // So is a Flatten on another axis, and a Gemm on a rank-4 tensor without Flatten.
        let bytes = model_bytes(
            vec![
                node_a("flat", "Flatten", &["x"], &["x2"], vec![attr_i("axis", 2)]),
                gemm.clone(),
            ],
            vec![w.clone()],
            input.clone(),
            2,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Shape(_))));
        let bytes = model_bytes(
            vec![node("fc", "Gemm", &["x", "W"], &["y"])],
            vec![w.clone()],
            input,
            2,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Shape(_))));
        // Flatten after the first layer is a structure error.
        let bytes = model_bytes(
            vec![
                node("fc", "Gemm", &["x", "W"], &["h"]),
                node("flat", "Flatten", &["h"], &["y"]),
            ],
            vec![w],
            vi("x", &[None, Some(4)]),
            2,
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Graph(_))));
    }
}
