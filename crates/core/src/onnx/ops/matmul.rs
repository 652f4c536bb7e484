//! `MatMul`: one affine layer with bias 0, unless an `Add` follows that supplies the bias
//! (see [`super::add`]). The constant may be on either side:
//!
//! * `MatMul(x, B)` with `B` `[in, out]` acts on the last axis of a sample `[1, …, 1, in]`;
//! * `MatMul(W, x)` with `W` `[out, in]` acts on the next-to-last axis of a sample
//!   `[…, in, 1]` (column vectors, as in networks with input shape `[1, 784, 1]`).

use crate::graph::{Dense, Node};
use crate::onnx::Result;
use crate::onnx::import::{Importer, check_matrix, node_err, transpose};
use crate::onnx::node::NodeCtx;

/// Imports a `MatMul` node as an affine layer with zero bias, leaving the bias open for an
/// `Add`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    imp.check_open(ctx)?;
    let [a, b] = ctx.node.input.as_slice() else {
        return Err(ctx.graph_err("needs exactly two inputs"));
    };
    let dense = if a == data {
        let (dims, bv) = imp.real(ctx, b, "weight")?;
        let [n_in, n_out] = dims[..] else {
            return Err(ctx.shape_err(format_args!(
                "weight '{b}' has shape {dims:?}; expected [in, out]"
            )));
        };
        check_matrix(ctx, b, n_in, n_out)?;
        let in_dims = imp.dense_input(ctx, n_in, false)?;
        let mut out_dims = in_dims.clone();
        let last = out_dims.len() - 1;
        out_dims[last] = n_out;
        let w = transpose(&bv, n_in, n_out);
        Dense::with_out_dims(in_dims, out_dims, w, vec![0.0; n_out])
    } else if b == data {
        let (dims, wv) = imp.real(ctx, a, "weight")?;
        let [n_out, n_in] = dims[..] else {
            return Err(ctx.shape_err(format_args!(
                "weight '{a}' has shape {dims:?}; expected [out, in]"
            )));
        };
        check_matrix(ctx, a, n_in, n_out)?;
        let in_dims = imp.dims.clone().unwrap_or_else(|| vec![n_in, 1]);
        let r = in_dims.len();
        let is_column = r >= 2
            && in_dims[r - 2] == n_in
            && in_dims[r - 1] == 1
            && in_dims[..r - 2].iter().all(|&d| d == 1);
        if !is_column {
            return Err(ctx.shape_err(format_args!(
                "W·x needs a column sample [.., {n_in}, 1] but the incoming tensor has {in_dims:?}"
            )));
        }
        let mut out_dims = in_dims.clone();
        out_dims[r - 2] = n_out;
        Dense::with_out_dims(in_dims, out_dims, wv, vec![0.0; n_out])
    } else {
        return Err(ctx.graph_err("the data must be one of the two inputs"));
    };
    imp.push(ctx, Node::Dense(dense.map_err(|e| node_err(ctx, e))?))?;
    imp.bias_open = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::onnx::import_bytes;
    use crate::onnx::test_util::*;

    #[test]
    fn matmul_add_with_bias_on_either_side() {
        for bias_first in [false, true] {
            let add_inputs = if bias_first {
                ["b0", "m0"]
            } else {
                ["m0", "b0"]
            };
            let bytes = model_bytes(
                vec![
                    node("mm0", "MatMul", &["x", "W0"], &["m0"]),
                    node("add0", "Add", &add_inputs, &["a0"]),
                    node("relu0", "Relu", &["a0"], &["h0"]),
                    node("mm1", "MatMul", &["h0", "W1"], &["y"]),
                ],
                vec![
                    f32_raw("W0", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                    f32_typed("b0", &[1, 3], &[0.5, 0.25, -1.0]),
                    f32_raw("W1", &[3, 1], &[1.0, -1.0, 2.0]),
                ],
                vi("x", &[None, Some(2)]),
                1,
            );
            let net = import_bytes(&bytes).expect("import");
            assert_eq!(
                layer(&net, 0),
                (
                    2,
                    3,
                    vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
                    vec![0.5, 0.25, -1.0]
                )
            );
            assert_eq!(layer(&net, 1), (3, 1, vec![1.0, -1.0, 2.0], vec![0.0]));
            // x = [1, 1]: h = relu([5.5, 7.25, 8]) → y = 5.5 - 7.25 + 16.
            assert_eq!(net.forward(&[1.0, 1.0]), vec![14.25]);
        }
    }
}
