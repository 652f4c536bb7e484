//! `Identity`: skipped. Applied to a constant it defines a constant (folded); on the chain it
//! passes the tensor on unchanged.

use crate::onnx::Result;
use crate::onnx::import::Importer;
use crate::onnx::node::NodeCtx;
use crate::onnx::tensor::{Const, Consts};

/// An `Identity` of a constant is that constant; of anything else it is a chain node.
pub(super) fn fold<'a>(ctx: &NodeCtx<'a>, consts: &Consts<'a>) -> Result<Option<Const<'a>>> {
    match ctx.node.input.as_slice() {
        [i] => Ok(consts.get(i.as_str()).cloned()),
        _ => Err(ctx.graph_err("needs exactly one input")),
    }
}

/// An `Identity` on the chain changes nothing (it must carry no attributes).
pub(super) fn step<'a>(_imp: &mut Importer<'a>, ctx: &NodeCtx<'a>, _data: &str) -> Result<()> {
    ctx.check_attrs(&[])
}

#[cfg(test)]
mod tests {
    use crate::onnx::import_bytes;
    use crate::onnx::test_util::*;

    #[test]
    fn identity_on_a_constant_and_double_data() {
        let bytes = model_bytes(
            vec![
                node("idw", "Identity", &["W"], &["Wi"]),
                node("fc", "Gemm", &["x", "Wi", "C"], &["y"]),
            ],
            vec![
                f64_typed("W", &[2, 1], &[0.1, 0.2]),
                f64_typed("C", &[1], &[0.3]),
            ],
            vi("x", &[None, Some(2)]),
            1,
        );
        let net = import_bytes(&bytes).expect("import");
        assert_eq!(layer(&net, 0), (2, 1, vec![0.1, 0.2], vec![0.3]));
    }
}
