//! `Squeeze` / `Unsqueeze`: shape changes that keep the data. The axes come from the `axes`
//! attribute (opset ≤ 12) or the second input (opset ≥ 13, a constant); the batch axis 0
//! may not be touched. `Squeeze` without axes removes every size-1 sample axis.

use crate::graph::{Node, Reshape, ReshapeKind};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// The node's axes, normalised against `rank`; `None` if none are given.
fn axes(
    imp: &Importer<'_>,
    ctx: &NodeCtx<'_>,
    data: &str,
    rank: usize,
) -> Result<Option<Vec<usize>>> {
    let raw = match (ctx.attr_ints("axes")?, ctx.node.input.as_slice()) {
        (Some(a), [x]) if x == data => Some(a),
        (None, [x]) if x == data => None,
        (None, [x, a]) if x == data => Some(imp.ints(ctx, a, "axes")?),
        _ => return Err(ctx.graph_err("needs the data as its first input and axes given once")),
    };
    let Some(raw) = raw else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(raw.len());
    for a in raw {
        let n = if a < 0 { a + rank as i64 } else { a };
        if n <= 0 || n >= rank as i64 {
            return Err(ctx.graph_err(format_args!(
                "axis {a} is the batch axis or out of range for rank {rank}"
            )));
        }
        if out.contains(&(n as usize)) {
            return Err(ctx.graph_err(format_args!("axis {a} is given twice")));
        }
        out.push(n as usize);
    }
    out.sort_unstable();
    Ok(Some(out))
}

/// Appends a `Squeeze` or `Unsqueeze`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&["axes"])?;
    let dims = imp.need_dims(ctx)?;
    let full: Vec<usize> = std::iter::once(1).chain(dims.iter().copied()).collect();
    let out_full: Vec<usize> = if ctx.op() == "Squeeze" {
        match axes(imp, ctx, data, full.len())? {
            None => std::iter::once(1)
                .chain(dims.iter().copied().filter(|&d| d != 1))
                .collect(),
            Some(ax) => {
                if let Some(&a) = ax.iter().find(|&&a| full[a] != 1) {
                    return Err(ctx.shape_err(format_args!("axis {a} has size {}, not 1", full[a])));
                }
                full.iter()
                    .enumerate()
                    .filter(|(k, _)| !ax.contains(k))
                    .map(|(_, &d)| d)
                    .collect()
            }
        }
    } else {
        let out_rank = full.len() + ctx_axes_len(imp, ctx, data)?;
        let ax =
            axes(imp, ctx, data, out_rank)?.ok_or_else(|| ctx.graph_err("Unsqueeze needs axes"))?;
        let mut src = full.iter().copied();
        (0..out_rank)
            .map(|k| {
                if ax.contains(&k) {
                    1
                } else {
                    src.next().unwrap_or(1)
                }
            })
            .collect()
    };
    let kind = if ctx.op() == "Squeeze" {
        ReshapeKind::Squeeze
    } else {
        ReshapeKind::Unsqueeze
    };
    let r = Reshape::new(kind, dims, out_full[1..].to_vec()).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Reshape(r))
}

/// Number of axes an `Unsqueeze` inserts.
fn ctx_axes_len(imp: &Importer<'_>, ctx: &NodeCtx<'_>, data: &str) -> Result<usize> {
    Ok(match (ctx.attr_ints("axes")?, ctx.node.input.as_slice()) {
        (Some(a), _) => a.len(),
        (None, [x, a]) if x == data => imp.ints(ctx, a, "axes")?.len(),
        _ => 0,
    })
}
