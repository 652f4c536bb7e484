//! `Reshape(data, shape)` with a constant INT64 target shape (initializer or `Constant`). The
//! batch axis must be kept: the first target entry is `0` (copy), `-1` (inferred, then no
//! other `-1`) or the declared fixed batch size; the remaining entries (`0` copies the input's
//! dimension unless `allowzero`, one `-1` is inferred) must keep the per-sample element count.

use crate::graph::{Batch, Node, Reshape, ReshapeKind};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// Appends a `Reshape` of each sample.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&["allowzero"])?;
    let [x, s] = ctx.node.input.as_slice() else {
        return Err(ctx.graph_err("needs exactly two inputs"));
    };
    if x != data {
        return Err(ctx.graph_err("the data must be the first input"));
    }
    let allowzero = ctx.attr_int("allowzero", 0)? != 0;
    let shape = imp.ints(ctx, s, "shape")?;
    let dims = imp.dims.clone().ok_or_else(|| {
        ctx.shape_err(
            "the per-sample size of the graph input is unknown, so the Reshape cannot be checked",
        )
    })?;
    let width: usize = dims.iter().product();
    let bad = || {
        ctx.shape_err(format_args!(
            "target shape {shape:?} does not keep the batch axis and the {width} elements per sample"
        ))
    };
    let Some((&s0, rest)) = shape.split_first() else {
        return Err(bad());
    };
    let keeps_batch = (s0 == 0 && !allowzero)
        || (s0 == -1 && !rest.contains(&-1))
        || (s0 > 0 && imp.batch == Batch::Fixed(s0 as usize));
    if !keeps_batch {
        return Err(bad());
    }
    let mut out: Vec<Option<usize>> = Vec::with_capacity(rest.len());
    for (k, &v) in rest.iter().enumerate() {
        out.push(match v {
            -1 => None,
            0 if !allowzero => Some(*dims.get(k).ok_or_else(bad)?),
            v if v >= 0 => Some(usize::try_from(v).map_err(|_| bad())?),
            _ => return Err(bad()),
        });
    }
    let known = out
        .iter()
        .flatten()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(bad)?;
    let out_dims: Vec<usize> = match out.iter().filter(|d| d.is_none()).count() {
        0 => out.into_iter().flatten().collect(),
        1 if known > 0 && width.is_multiple_of(known) => out
            .into_iter()
            .map(|d| d.unwrap_or(width / known))
            .collect(),
        _ => return Err(bad()),
    };
    if out_dims.iter().product::<usize>() != width {
        return Err(bad());
    }
    let r = Reshape::new(ReshapeKind::Reshape, dims, out_dims).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Reshape(r))
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
        // A Flatten of the logits changes nothing: it is kept as part of the last layer.
        let bytes = model_bytes(
            vec![
                node("fc", "Gemm", &["x", "W"], &["h"]),
                node("flat", "Flatten", &["h"], &["y"]),
            ],
            vec![w],
            vi("x", &[None, Some(4)]),
            2,
        );
        let net = import_bytes(&bytes).expect("flatten of logits");
        assert_eq!(net.forward(&[1.0; 4]), vec![4.0, 4.0]);
    }
}
