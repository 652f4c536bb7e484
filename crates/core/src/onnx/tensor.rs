//! Decoding the constant tensors of a model: initializers and `Constant` values.
//!
//! Only what an MLP needs is understood: FLOAT and DOUBLE values (widened to f64, which is
//! exact, never rounded) and INT64 (shapes), stored in `raw_data` (little-endian) or in the
//! typed fields. External data and segments are refused. Every size is checked against the
//! bytes that are actually present before anything is allocated for it, so that a malformed
//! model is an error, never a panic or a huge allocation.

use std::collections::HashMap;

use super::proto;
use super::proto::tensor_proto::{DataLocation, DataType};
use super::{OnnxError, Result};

/// The constants of a graph by name: initializers, `Constant` outputs and `Identity` copies of
/// them.
pub(super) type Consts<'a> = HashMap<&'a str, Const<'a>>;

/// Element values of a decoded constant tensor.
#[derive(Debug, Clone)]
pub(super) enum Data {
    /// FLOAT or DOUBLE values, widened to f64 without rounding.
    Real(Vec<f64>),
    /// INT64 values (shapes).
    Int(Vec<i64>),
}

/// A decoded constant tensor: dimensions and row-major values.
#[derive(Debug, Clone)]
pub(super) struct Tensor {
    /// Dimensions, each checked to be non-negative and their product to fit in `usize`.
    pub(super) dims: Vec<usize>,
    /// The values, row-major.
    pub(super) data: Data,
}

/// Where a constant comes from: an initializer / `Constant` tensor (decoded on use, so that
/// unused constants of other element types do no harm) or a value built from scalar attributes.
#[derive(Debug, Clone)]
pub(super) enum Const<'a> {
    /// An initializer or the `value` tensor of a `Constant`, still encoded.
    Proto(&'a proto::TensorProto),
    /// A tensor built from scalar or list attributes (`value_float`, `value_ints`, …).
    Owned(Tensor),
}

impl Const<'_> {
    /// The decoded tensor; `what` names it in error messages.
    pub(super) fn decode(&self, what: &str) -> Result<Tensor> {
        match self {
            Const::Proto(t) => decode_tensor(t, what),
            Const::Owned(t) => Ok(t.clone()),
        }
    }
}

/// Name of an element type for messages.
pub(super) fn type_name(t: i32) -> String {
    DataType::try_from(t)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("unknown type {t}"))
}

/// Decodes a tensor, checking that the stored data length matches the dimensions before
/// anything is allocated.
fn decode_tensor(t: &proto::TensorProto, what: &str) -> Result<Tensor> {
    if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
        return Err(OnnxError::Graph(format!(
            "tensor {what} stores its data externally, which is not supported"
        )));
    }
    if t.segment.is_some() {
        return Err(OnnxError::Graph(format!(
            "tensor {what} is segmented, which is not supported"
        )));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut count: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d)
            .map_err(|_| OnnxError::Shape(format!("tensor {what} has negative dimension {d}")))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| OnnxError::Shape(format!("tensor {what} has an absurd size")))?;
        dims.push(d);
    }
    let raw = t.raw_data.as_deref().filter(|r| !r.is_empty());
    let data_type = t.data_type.unwrap_or(0);
    let data = if data_type == DataType::Float as i32 {
        Data::Real(match raw {
            Some(raw) => {
                check_raw(raw, count, 4, t.float_data.is_empty(), what)?;
                raw.chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect()
            }
            None => {
                check_len(t.float_data.len(), count, what)?;
                t.float_data.iter().map(|&v| f64::from(v)).collect()
            }
        })
    } else if data_type == DataType::Double as i32 {
        Data::Real(match raw {
            Some(raw) => {
                check_raw(raw, count, 8, t.double_data.is_empty(), what)?;
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(le8(c)))
                    .collect()
            }
            None => {
                check_len(t.double_data.len(), count, what)?;
                t.double_data.clone()
            }
        })
    } else if data_type == DataType::Int64 as i32 {
        Data::Int(match raw {
            Some(raw) => {
                check_raw(raw, count, 8, t.int64_data.is_empty(), what)?;
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(le8(c)))
                    .collect()
            }
            None => {
                check_len(t.int64_data.len(), count, what)?;
                t.int64_data.clone()
            }
        })
    } else {
        return Err(OnnxError::Graph(format!(
            "tensor {what} has element type {}; only FLOAT and DOUBLE (and INT64 for shapes) are supported",
            type_name(data_type)
        )));
    };
    Ok(Tensor { dims, data })
}

/// The 8 bytes of a chunk produced by `chunks_exact(8)`.
fn le8(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}

/// Checks `raw_data` against the declared element count (`width` bytes each) and that no
/// typed data is given alongside it.
fn check_raw(raw: &[u8], count: usize, width: usize, typed_empty: bool, what: &str) -> Result<()> {
    if !typed_empty {
        return Err(OnnxError::Graph(format!(
            "tensor {what} has both raw_data and typed data"
        )));
    }
    if count.checked_mul(width) != Some(raw.len()) {
        return Err(OnnxError::Shape(format!(
            "tensor {what} declares {count} elements but raw_data holds {} bytes",
            raw.len()
        )));
    }
    Ok(())
}

/// Checks the length of typed data against the declared element count.
fn check_len(len: usize, count: usize, what: &str) -> Result<()> {
    if len != count {
        return Err(OnnxError::Shape(format!(
            "tensor {what} declares {count} elements but stores {len}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::onnx::proto::TensorProto;
    use crate::onnx::proto::tensor_proto::DataType;
    use crate::onnx::test_util::*;
    use crate::onnx::{OnnxError, import_bytes};

    #[test]
    fn bad_tensors_are_errors_not_panics() {
        let x2 = vi("x", &[None, Some(2)]);
        let one = |b: TensorProto| {
            model_bytes(
                vec![node("fc", "Gemm", &["x", "B"], &["y"])],
                vec![b],
                x2.clone(),
                2,
            )
        };
        // Truncated raw data.
        let mut t = f32_raw("B", &[2, 2], &[1.0; 4]);
        if let Some(r) = t.raw_data.as_mut() {
            r.pop();
        }
        assert!(matches!(import_bytes(&one(t)), Err(OnnxError::Shape(_))));
        // Absurd dimensions backed by a few bytes, overflowing dimensions, an empty giant.
        for dims in [
            vec![1i64 << 40, 1 << 40],
            vec![i64::MAX, i64::MAX],
            vec![-2, 2],
        ] {
            let mut t = f32_raw("B", &[2, 2], &[1.0; 4]);
            t.dims = dims;
            assert!(matches!(import_bytes(&one(t)), Err(OnnxError::Shape(_))));
        }
        let mut t = f32_raw("B", &[2, 2], &[]);
        t.dims = vec![2, 1 << 60];
        t.raw_data = None;
        t.dims = vec![0, 1 << 60];
        assert!(import_bytes(&one(t)).is_err());
        // Wrong element type and non-finite weight.
        let mut t = f32_raw("B", &[2, 2], &[1.0; 4]);
        t.data_type = Some(DataType::Int32 as i32);
        assert!(matches!(import_bytes(&one(t)), Err(OnnxError::Graph(_))));
        let t = f32_raw("B", &[2, 2], &[1.0, f32::NAN, 0.0, 0.0]);
        let err = import_bytes(&one(t)).expect_err("NaN weight");
        assert!(err.to_string().contains("not finite"), "{err}");
    }
}
