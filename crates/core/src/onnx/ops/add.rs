//! `Add(·, C)` with a constant `C` (either operand): the bias of the affine layer started by
//! the `MatMul` right before it, the per-channel bias of a `Conv` right before it, or else
//! constant elementwise arithmetic (see [`super::arith`]).

use crate::graph::{ElementwiseKind, Node};
use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;

/// Sets the bias of the `MatMul`/`Conv` layer just imported, or appends an elementwise `Add`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    imp.check_open(ctx)?;
    let c = match ctx.node.input.as_slice() {
        [x, c] if x == data => c,
        [c, x] if x == data => c,
        _ => return Err(ctx.graph_err("needs exactly two inputs")),
    };
    if imp.bias_open
        && let Some(Node::Dense(d)) = imp.nodes.last()
    {
        let outputs = d.outputs();
        let (cdims, cv) = imp.real(ctx, c, "bias")?;
        let b = if cv.len() == outputs || cv.len() == 1 {
            let bv = super::arith::broadcast(&cdims, &cv, &d.out_dims).ok_or_else(|| {
                ctx.shape_err(format_args!(
                    "bias '{c}' has shape {cdims:?}; expected [{outputs}] or [1, {outputs}]"
                ))
            })?;
            Some(bv)
        } else {
            None
        };
        if let Some(b) = b {
            if let Some(Node::Dense(d)) = imp.nodes.last_mut() {
                d.b = b;
            }
            imp.bias_open = false;
            return Ok(());
        }
        return Err(ctx.shape_err(format_args!(
            "bias '{c}' has shape {cdims:?}; expected [{outputs}] or [1, {outputs}]"
        )));
    }
    if let Some(Node::Conv(conv)) = imp.nodes.last() {
        let (cdims, cv) = imp.real(ctx, c, "bias")?;
        let out = conv.out_shape.to_vec();
        if let Some(full) = super::arith::broadcast(&cdims, &cv, &out) {
            let plane = out[1] * out[2];
            let per_channel: Option<Vec<f64>> = (0..out[0])
                .map(|ch| {
                    let v = full[ch * plane];
                    full[ch * plane..(ch + 1) * plane]
                        .iter()
                        .all(|&x| x == v)
                        .then_some(v)
                })
                .collect();
            if let Some(add) = per_channel {
                let mut sum = Vec::with_capacity(add.len());
                for (b, a) in conv.b.iter().zip(&add) {
                    sum.push(crate::graph::exact_add(*b, *a).ok_or_else(|| {
                        ctx.graph_err("adding this bias to the Conv's bias is not exact in f64")
                    })?);
                }
                if let Some(Node::Conv(conv)) = imp.nodes.last_mut() {
                    conv.b = sum;
                }
                return Ok(());
            }
        }
    }
    super::arith::elementwise(imp, ctx, ElementwiseKind::Add, c)
}
