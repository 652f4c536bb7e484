//! `MatMul(x, B)`: one affine layer with the constant `B` of shape `[in, out]` and bias 0,
//! unless an `Add` follows that supplies the bias (see [`super::add`]).

use crate::onnx::Result;
use crate::onnx::import::{Importer, Layer, check_matrix, transpose};
use crate::onnx::node::NodeCtx;

/// Imports a `MatMul` node as an affine layer with zero bias, leaving the bias open for an
/// `Add`.
pub(super) fn step<'a>(imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, data: &str) -> Result<()> {
    ctx.check_attrs(&[])?;
    let [a, b] = ctx.node.input.as_slice() else {
        return Err(ctx.graph_err("needs exactly two inputs"));
    };
    if a != data {
        return Err(ctx.graph_err("the data must be the first input (x·B)"));
    }
    let (dims, bv) = imp.real(ctx, b, "weight")?;
    let [n_in, n_out] = dims[..] else {
        return Err(ctx.shape_err(format_args!(
            "weight '{b}' has shape {dims:?}; expected [in, out]"
        )));
    };
    check_matrix(ctx, b, n_in, n_out)?;
    imp.enter_affine(ctx, n_in)?;
    let w = transpose(&bv, n_in, n_out);
    imp.push_layer(
        Layer {
            inputs: n_in,
            outputs: n_out,
            w,
            b: vec![0.0; n_out],
        },
        true,
    );
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
