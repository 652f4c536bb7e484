//! `Sub`, `Mul`, `Div` (and an `Add` that is not a bias) with one constant operand:
//! elementwise arithmetic, as in an input normalisation `(x − mean)/std`. The constant is
//! broadcast (NumPy rules, aligned on the right) to the sample shape; a constant with the
//! full rank must have 1 on the batch axis. `c − x` is accepted, `c / x` is not (not affine).

use crate::graph::{Elementwise, ElementwiseKind, Node};
use crate::onnx::Result;
use crate::onnx::import::{Importer, node_err};
use crate::onnx::node::NodeCtx;

/// The constant of ONNX shape `cdims` broadcast to a sample of shape `dims` (flat,
/// row-major), or `None` if it does not broadcast without touching the batch axis.
pub(super) fn broadcast(cdims: &[usize], c: &[f64], dims: &[usize]) -> Option<Vec<f64>> {
    let full_rank = dims.len() + 1;
    if cdims.len() > full_rank || (cdims.len() == full_rank && cdims[0] != 1) {
        return None;
    }
    // The constant's dims aligned on the right of the sample dims.
    let cd: Vec<usize> = if cdims.len() == full_rank {
        cdims[1..].to_vec()
    } else {
        cdims.to_vec()
    };
    let offset = dims.len() - cd.len();
    if cd
        .iter()
        .zip(&dims[offset..])
        .any(|(&a, &b)| a != 1 && a != b)
    {
        return None;
    }
    if c.len() != cd.iter().product::<usize>() {
        return None;
    }
    let n: usize = dims.iter().product();
    let mut cstride = vec![0usize; dims.len()];
    let mut acc = 1usize;
    for k in (0..cd.len()).rev() {
        cstride[offset + k] = if cd[k] == 1 { 0 } else { acc };
        acc *= cd[k];
    }
    let mut out = Vec::with_capacity(n);
    for flat in 0..n {
        let mut rem = flat;
        let mut idx = 0usize;
        for k in (0..dims.len()).rev() {
            idx += (rem % dims[k]) * cstride[k];
            rem /= dims[k];
        }
        out.push(c[idx]);
    }
    Some(out)
}

/// Appends `x ∘ c` for the constant input `c` of the node.
pub(super) fn elementwise<'a>(
    imp: &mut Importer<'a>,
    ctx: &NodeCtx<'a>,
    kind: ElementwiseKind,
    c: &str,
) -> Result<()> {
    let dims = imp.need_dims(ctx)?;
    let (cdims, cv) = imp.real(ctx, c, "constant")?;
    let full = broadcast(&cdims, &cv, &dims).ok_or_else(|| {
        ctx.shape_err(format_args!(
            "constant '{c}' of shape {cdims:?} does not broadcast to the sample shape {dims:?} (batch axis excluded)"
        ))
    })?;
    let e = Elementwise::new(kind, dims, full, (cdims, cv)).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Elementwise(e))
}

/// `Sub`, `Mul` or `Div` with one constant operand.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    imp.check_open(ctx)?;
    let [a, b] = ctx.node.input.as_slice() else {
        return Err(ctx.graph_err("needs exactly two inputs"));
    };
    let data_first = a == data;
    let c = if data_first { b } else { a };
    let kind = match (ctx.op(), data_first) {
        ("Sub", true) => ElementwiseKind::Sub,
        ("Sub", false) => ElementwiseKind::SubFrom,
        ("Mul", _) => ElementwiseKind::Mul,
        ("Div", true) => ElementwiseKind::Div,
        ("Div", false) => {
            return Err(ctx.graph_err("a constant divided by the data (c / x) is not affine"));
        }
        (op, _) => return Err(ctx.graph_err(format_args!("{op} is not elementwise arithmetic"))),
    };
    elementwise(imp, ctx, kind, c)
}

#[cfg(test)]
mod tests {
    use super::broadcast;

    #[test]
    fn numpy_broadcasting_without_the_batch_axis() {
        // Per-channel [C,1,1] on a [2, 1, 2] sample.
        assert_eq!(
            broadcast(&[2, 1, 1], &[1.0, 2.0], &[2, 1, 2]),
            Some(vec![1.0, 1.0, 2.0, 2.0])
        );
        // [1, C, 1, 1] with the batch axis.
        assert_eq!(
            broadcast(&[1, 2, 1, 1], &[1.0, 2.0], &[2, 1, 2]),
            Some(vec![1.0, 1.0, 2.0, 2.0])
        );
        // Scalar.
        assert_eq!(broadcast(&[], &[3.0], &[2]), Some(vec![3.0, 3.0]));
        // Per element on the last axis.
        assert_eq!(
            broadcast(&[2], &[1.0, 2.0], &[2, 2]),
            Some(vec![1.0, 2.0, 1.0, 2.0])
        );
        // Batch axis 2, wrong sizes, too high a rank.
        assert_eq!(broadcast(&[2, 2], &[0.0; 4], &[2]), None);
        assert_eq!(broadcast(&[3], &[0.0; 3], &[2]), None);
        assert_eq!(broadcast(&[1, 1, 2], &[0.0; 2], &[2]), None);
    }
}
