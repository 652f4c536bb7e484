//! `Conv(X, W, B?)`: 2-D convolution on `[C, H, W]` samples. `strides`, explicit `pads` and
//! `auto_pad` (`NOTSET`, `VALID`, `SAME_UPPER`, `SAME_LOWER`) are supported; `dilations`
//! other than 1 and `group` other than 1 are refused naming the attribute, as are 1-D and
//! 3-D convolutions.

use crate::graph::{Conv2d, Node};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// `[top, left, bottom, right]` padding of a 2-D window from `pads` or `auto_pad`.
pub(super) fn window_pads(
    ctx: &NodeCtx<'_>,
    hw: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
) -> Result<[usize; 4]> {
    let auto = ctx.attr_str("auto_pad", "NOTSET")?;
    let explicit = ctx.attr_usizes("pads", 4, 0)?;
    match auto.as_str() {
        "NOTSET" => Ok([explicit[0], explicit[1], explicit[2], explicit[3]]),
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut p = [0usize; 4];
            for k in 0..2 {
                let out = hw[k].div_ceil(strides[k].max(1));
                let total =
                    ((out.saturating_sub(1)) * strides[k] + kernel[k]).saturating_sub(hw[k]);
                let small = total / 2;
                let (begin, end) = if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                p[k] = begin;
                p[k + 2] = end;
            }
            Ok(p)
        }
        other => Err(ctx.graph_err(format_args!("auto_pad '{other}' is not supported"))),
    }
}

/// The `[C, H, W]` sample shape a 2-D window operator needs, or an error naming the rank.
pub(super) fn chw(imp: &Importer<'_>, ctx: &NodeCtx<'_>) -> Result<[usize; 3]> {
    let dims = imp.need_dims(ctx)?;
    match dims[..] {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(ctx.graph_err(format_args!(
            "only 2-D [N, C, H, W] inputs are supported, not sample shape {dims:?}"
        ))),
    }
}

/// Requires every entry of an integer-list attribute to be 1 (e.g. `dilations`).
pub(super) fn require_ones(ctx: &NodeCtx<'_>, name: &str, len: usize) -> Result<()> {
    let v = ctx.attr_usizes(name, len, 1)?;
    if v.iter().any(|&d| d != 1) {
        return Err(ctx.graph_err(format_args!(
            "attribute '{name}' = {v:?} is not supported (only 1)"
        )));
    }
    Ok(())
}

/// Appends a `Conv`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    imp.check_open(ctx)?;
    let (x, w, b) = match ctx.node.input.as_slice() {
        [x, w] => (x, w, None),
        [x, w, b] => (x, w, Some(b).filter(|b| !b.is_empty())),
        _ => return Err(ctx.graph_err("needs two or three inputs")),
    };
    if x != data {
        return Err(ctx.graph_err("the data must be the first input"));
    }
    let (wdims, wv) = imp.real(ctx, w, "kernel")?;
    if wdims.len() != 4 {
        return Err(ctx.graph_err(format_args!(
            "kernel '{w}' has shape {wdims:?}; only 2-D convolutions ([C_out, C_in, kH, kW]) are supported"
        )));
    }
    let group = ctx.attr_int("group", 1)?;
    if group != 1 {
        return Err(ctx.graph_err(format_args!(
            "attribute 'group' = {group} is not supported (only 1)"
        )));
    }
    require_ones(ctx, "dilations", 2)?;
    let in_shape = chw(imp, ctx)?;
    let [c_out, c_in, kh, kw] = [wdims[0], wdims[1], wdims[2], wdims[3]];
    if c_in != in_shape[0] {
        return Err(ctx.shape_err(format_args!(
            "kernel '{w}' expects {c_in} input channels but the input has {}",
            in_shape[0]
        )));
    }
    if let Some(ks) = ctx.attr_ints("kernel_shape")?
        && ks != [kh as i64, kw as i64]
    {
        return Err(ctx.shape_err(format_args!(
            "attribute 'kernel_shape' {ks:?} does not match the kernel's {:?}",
            [kh, kw]
        )));
    }
    let strides = ctx.attr_usizes("strides", 2, 1)?;
    let strides = [strides[0], strides[1]];
    let pads = window_pads(ctx, [in_shape[1], in_shape[2]], [kh, kw], strides)?;
    let bias = match b {
        Some(b) => {
            let (bd, bv) = imp.real(ctx, b, "bias")?;
            if bv.len() != c_out || bd.len() != 1 {
                return Err(ctx.shape_err(format_args!(
                    "bias '{b}' has shape {bd:?}; expected [{c_out}]"
                )));
            }
            bv
        }
        None => vec![0.0; c_out],
    };
    let conv =
        Conv2d::new(in_shape, [kh, kw], strides, pads, wv, bias).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Conv(conv))
}
