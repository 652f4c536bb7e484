//! `AveragePool`, `MaxPool` and `GlobalAveragePool` on `[C, H, W]` samples: `kernel_shape`,
//! `strides`, explicit `pads` and `auto_pad`, `count_include_pad` (average); refused naming
//! the attribute: `ceil_mode = 1`, `dilations ≠ 1`, `storage_order = 1`, and a second
//! (indices) output of `MaxPool`.

use super::conv::{chw, require_ones, window_pads};
use crate::graph::{Node, Pool2d, PoolKind};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// Appends an `AveragePool` or `MaxPool`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    let kind = if ctx.op() == "MaxPool" {
        ctx.check_attrs(&[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ])?;
        if ctx.attr_int("storage_order", 0)? != 0 {
            return Err(ctx.graph_err("attribute 'storage_order' = 1 is not supported"));
        }
        PoolKind::Max
    } else {
        ctx.check_attrs(&[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        PoolKind::Average
    };
    if ctx.node.input.len() != 1 {
        return Err(ctx.graph_err("needs exactly one input"));
    }
    let ceil = ctx.attr_int("ceil_mode", 0)?;
    if ceil != 0 {
        return Err(ctx.graph_err(format_args!(
            "attribute 'ceil_mode' = {ceil} is not supported (only 0)"
        )));
    }
    require_ones(ctx, "dilations", 2)?;
    let in_shape = chw(imp, ctx)?;
    let kernel = ctx
        .attr_ints("kernel_shape")?
        .ok_or_else(|| ctx.graph_err("attribute 'kernel_shape' is required"))?;
    let kernel: Vec<usize> = kernel
        .iter()
        .map(|&k| usize::try_from(k).ok().filter(|&k| k > 0))
        .collect::<Option<_>>()
        .filter(|k: &Vec<usize>| k.len() == 2)
        .ok_or_else(|| {
            ctx.graph_err(format_args!(
                "attribute 'kernel_shape' {kernel:?} is not a positive 2-D window"
            ))
        })?;
    let kernel = [kernel[0], kernel[1]];
    let strides = ctx.attr_usizes("strides", 2, 1)?;
    let strides = [strides[0], strides[1]];
    let pads = window_pads(ctx, [in_shape[1], in_shape[2]], kernel, strides)?;
    let include = ctx.attr_int("count_include_pad", 0)? != 0;
    let p = Pool2d::new(kind, in_shape, kernel, strides, pads, include)
        .map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Pool(p))
}

/// Appends a `GlobalAveragePool` (an average over the whole `H × W` plane).
pub(super) fn global<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    let in_shape = chw(imp, ctx)?;
    let mut p = Pool2d::new(
        PoolKind::Average,
        in_shape,
        [in_shape[1], in_shape[2]],
        [1, 1],
        [0; 4],
        false,
    )
    .map_err(|e| node_err(ctx, e))?;
    p.global = true;
    imp.push(ctx, Node::Pool(p))
}
