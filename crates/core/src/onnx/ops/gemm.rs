//! `Gemm(A, B, C?)`: one affine layer `Y = alpha·A·B' + beta·C`.
//!
//! The data must be `A` with `transA = 0`; `B` is a constant `[in, out]` (`transB = 0`) or
//! `[out, in]` (`transB = 1`); the optional `C` is a bias of shape `[out]`, `[1, out]` or a
//! broadcast scalar. `alpha` and `beta` are folded into the weights and the bias, and a
//! product that f64 cannot hold exactly is refused rather than rounded.

use crate::graph::{Dense, Node};
use crate::onnx::Result;
use crate::onnx::import::{Importer, check_matrix, node_err, transpose};
use crate::onnx::node::NodeCtx;

/// Imports a `Gemm` node as one affine layer.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&["alpha", "beta", "transA", "transB"])?;
    let (a, b, c) = match ctx.node.input.as_slice() {
        [a, b] => (a, b, None),
        [a, b, c] => (a, b, Some(c).filter(|c| !c.is_empty())),
        _ => return Err(ctx.graph_err("needs two or three inputs")),
    };
    if a != data {
        return Err(ctx.graph_err("the data must be input A (the first input)"));
    }
    let alpha = f64::from(ctx.attr_float("alpha", 1.0)?);
    let beta = f64::from(ctx.attr_float("beta", 1.0)?);
    let trans_a = ctx.attr_int("transA", 0)?;
    if trans_a != 0 {
        return Err(ctx.graph_err(format_args!(
            "transA = {trans_a} is not supported (the batch must be the rows of A)"
        )));
    }
    let trans_b = ctx.attr_int("transB", 0)?;
    let (dims, bv) = imp.real(ctx, b, "weight")?;
    let [d0, d1] = dims[..] else {
        return Err(ctx.shape_err(format_args!(
            "weight '{b}' has shape {dims:?}; expected a matrix"
        )));
    };
    // Before any loop over the dimensions: an empty [0, huge] tensor holds no data.
    check_matrix(ctx, b, d0, d1)?;
    let (n_in, n_out, mut w) = match trans_b {
        0 => (d0, d1, transpose(&bv, d0, d1)),
        1 => (d1, d0, bv),
        t => return Err(ctx.graph_err(format_args!("transB = {t} is not 0 or 1"))),
    };
    imp.check_open(ctx)?;
    let in_dims = imp.dense_input(ctx, n_in, true)?;
    scale_exact(&mut w, alpha, ctx, "alpha·weight")?;
    let bias = match c {
        Some(c) => {
            let mut bias = imp.bias(ctx, c, n_out)?;
            scale_exact(&mut bias, beta, ctx, "beta·bias")?;
            bias
        }
        None => vec![0.0; n_out],
    };
    let dense =
        Dense::with_out_dims(in_dims, vec![n_out], w, bias).map_err(|e| node_err(ctx, e))?;
    imp.push(ctx, Node::Dense(dense))
}

use crate::graph::exact_mul;

/// Multiplies every value by `factor` exactly (the identity for `factor == 1`).
fn scale_exact(values: &mut [f64], factor: f64, ctx: &NodeCtx<'_>, what: &str) -> Result<()> {
    if factor == 1.0 {
        return Ok(());
    }
    for v in values {
        *v = exact_mul(*v, factor).ok_or_else(|| {
            ctx.graph_err(format_args!(
                "{what} = {factor:?}·{:?} is not exactly representable in f64",
                *v
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::onnx::test_util::*;
    use crate::onnx::{OnnxError, import_bytes};

    #[test]
    fn gemm_trans_b_0_and_1() {
        // transB = 0: B is [in, out] = [[1, 2], [3, 4], [5, 6]].
        let bytes = gemm_model(
            f32_raw("B", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            Some(f32_raw("C", &[2], &[0.5, -1.0])),
            vec![],
        );
        let net = import_bytes(&bytes).expect("import");
        assert_eq!(
            layer(&net, 0),
            (3, 2, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0], vec![0.5, -1.0])
        );
        // transB = 1: B is [out, in], the same layout as W.
        let bytes = gemm_model(
            f32_raw("B", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            Some(f32_raw("C", &[1, 2], &[0.5, -1.0])),
            vec![attr_i("transB", 1)],
        );
        let net = import_bytes(&bytes).expect("import");
        assert_eq!(
            layer(&net, 0),
            (3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![0.5, -1.0])
        );
        // No C: zero bias; scalar C broadcasts.
        let net = import_bytes(&gemm_model(
            f32_raw("B", &[1, 2], &[1.0, 2.0]),
            None,
            vec![],
        ))
        .expect("import");
        assert_eq!(layer(&net, 0).3, vec![0.0, 0.0]);
        let net = import_bytes(&gemm_model(
            f32_raw("B", &[1, 2], &[1.0, 2.0]),
            Some(f32_raw("C", &[], &[3.0])),
            vec![],
        ))
        .expect("import");
        assert_eq!(layer(&net, 0).3, vec![3.0, 3.0]);
    }

    #[test]
    fn gemm_alpha_beta_are_folded_exactly() {
        let alpha = 0.1f32;
        let beta = -2.5f32;
        let bytes = gemm_model(
            f32_raw("B", &[2, 2], &[1.0, 3.0, 0.3, -7.0]),
            Some(f32_raw("C", &[2], &[0.1, 4.0])),
            vec![
                attr_f("alpha", alpha),
                attr_f("beta", beta),
                attr_i("transB", 1),
            ],
        );
        let net = import_bytes(&bytes).expect("import");
        let (a, b) = (f64::from(alpha), f64::from(beta));
        let w: Vec<f64> = [1.0f32, 3.0, 0.3, -7.0]
            .iter()
            .map(|&v| a * f64::from(v))
            .collect();
        let bias = vec![b * f64::from(0.1f32), b * 4.0];
        assert_eq!(layer(&net, 0), (2, 2, w, bias));
        // A product that f64 cannot hold exactly is refused rather than rounded.
        let bytes = gemm_model(
            f64_typed("B", &[1, 1], &[0.1]),
            None,
            vec![attr_f("alpha", 0.1)],
        );
        assert!(matches!(import_bytes(&bytes), Err(OnnxError::Graph(m)) if m.contains("alpha")));
    }
}
