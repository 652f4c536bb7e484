//! `BatchNormalization` in inference form, folded into the `Conv` or `Gemm`/`MatMul` right
//! before it, as deployment toolchains do: with `s = scale / √(var + ε)` per channel, the
//! weights into channel `c` become `s_c · w` and the bias `s_c · (b_c − mean_c) + B_c`,
//! computed in f64 and rounded to float32 (as a deployment toolchain's fusion stores them, and
//! so that the folded float network can be exported). The folded network — not the unfolded
//! one evaluated in float32 — is what certquant proves and quantizes (docs/method.md, "Networks with structure"). Refused: a
//! batch normalisation not right after a weighted operator, `training_mode = 1`,
//! `spatial = 0`, and the training outputs.

use crate::graph::Node;
use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;

/// Folds the batch normalisation into the previous node.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&["epsilon", "momentum", "training_mode", "spatial", "is_test"])?;
    imp.check_open(ctx)?;
    if ctx.attr_int("training_mode", 0)? != 0 {
        return Err(
            ctx.graph_err("attribute 'training_mode' = 1 is not supported (inference only)")
        );
    }
    if ctx.attr_int("spatial", 1)? != 1 {
        return Err(ctx.graph_err("attribute 'spatial' = 0 is not supported"));
    }
    let [x, scale, bias, mean, var] = ctx.node.input.as_slice() else {
        return Err(ctx.graph_err("needs exactly five inputs (X, scale, B, mean, var)"));
    };
    if x != data {
        return Err(ctx.graph_err("the data must be the first input"));
    }
    let eps = f64::from(ctx.attr_float("epsilon", 1e-5)?);
    let channels = match imp.nodes.last() {
        Some(Node::Conv(c)) => c.out_shape[0],
        Some(Node::Dense(d)) if d.out_dims.len() == 1 => d.outputs(),
        _ => {
            return Err(ctx.graph_err(
                "BatchNormalization is only supported right after a Conv or Gemm/MatMul (it is folded into it)",
            ));
        }
    };
    let per_channel = |name: &str, role: &str| -> Result<Vec<f64>> {
        let (d, v) = imp.real(ctx, name, role)?;
        if v.len() != channels || d.len() != 1 {
            return Err(ctx.shape_err(format_args!(
                "{role} '{name}' has shape {d:?}; expected [{channels}]"
            )));
        }
        Ok(v)
    };
    let gamma = per_channel(scale, "scale")?;
    let beta = per_channel(bias, "B")?;
    let mu = per_channel(mean, "mean")?;
    let var = per_channel(var, "var")?;
    let mut s = Vec::with_capacity(channels);
    for c in 0..channels {
        let d = var[c] + eps;
        if d.is_nan() || d <= 0.0 {
            return Err(ctx.graph_err(format_args!(
                "var + epsilon = {d} is not positive for channel {c}"
            )));
        }
        s.push(gamma[c] / d.sqrt());
    }
    let fold = |w: &mut [f64], b: &mut [f64], per: usize| {
        for c in 0..channels {
            for v in &mut w[c * per..(c + 1) * per] {
                *v = f64::from((*v * s[c]) as f32);
            }
            b[c] = f64::from((s[c] * (b[c] - mu[c]) + beta[c]) as f32);
        }
    };
    match imp.nodes.last_mut() {
        Some(Node::Conv(conv)) => {
            let per = conv.w.len() / channels;
            fold(&mut conv.w, &mut conv.b, per);
            check_finite(ctx, conv.w.iter().chain(&conv.b))?;
        }
        Some(Node::Dense(d)) => {
            let per = d.inputs();
            fold(&mut d.w, &mut d.b, per);
            check_finite(ctx, d.w.iter().chain(&d.b))?;
        }
        _ => unreachable!("checked above"),
    }
    imp.bias_open = false;
    Ok(())
}

fn check_finite<'v>(ctx: &NodeCtx<'_>, mut vals: impl Iterator<Item = &'v f64>) -> Result<()> {
    match vals.find(|v| !v.is_finite()) {
        Some(v) => Err(ctx.graph_err(format_args!("folding gives a non-finite weight ({v})"))),
        None => Ok(()),
    }
}
