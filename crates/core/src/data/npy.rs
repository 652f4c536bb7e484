//! NPY arrays (numpy's `.npy` format, versions 1.0, 2.0 and 3.0, gzipped or
//! raw) as inputs and labels.
//!
//! The header is read in [`header`] (with `py_literal`, the parser `npyz`
//! uses); the `descr` type string is parsed by [`npyz::TypeStr`], and the
//! elements are decoded, in either byte order, by `npyz`'s element readers.

use std::path::Path;

mod header;

use header::{Header, parse_header};

use npyz::{DType, Deserialize, Endianness, TypeChar, TypeRead, TypeStr};

use super::{
    BYTES_NAME, DataError, Dataset, check_payload_len, format_err, maybe_gunzip, read_file,
};

/// Magic string that opens every NPY file.
pub(super) const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The element types accepted in NPY files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NpyType {
    F32,
    F64,
    U8,
    I32,
    I64,
}

impl NpyType {
    /// The accepted type named by a parsed `descr`: little- or big-endian
    /// `f4`, `f8`, `i4`, `i8`, and `u1` with any byte-order mark.
    fn of(ts: &TypeStr) -> Option<Self> {
        let ordered = matches!(ts.endianness(), Endianness::Little | Endianness::Big);
        match (ts.type_char(), ts.size_field()) {
            (TypeChar::Uint, 1) => Some(NpyType::U8),
            (TypeChar::Float, 4) if ordered => Some(NpyType::F32),
            (TypeChar::Float, 8) if ordered => Some(NpyType::F64),
            (TypeChar::Int, 4) if ordered => Some(NpyType::I32),
            (TypeChar::Int, 8) if ordered => Some(NpyType::I64),
            _ => None,
        }
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            NpyType::U8 => 1,
            NpyType::F32 | NpyType::I32 => 4,
            NpyType::F64 | NpyType::I64 => 8,
        }
    }

    /// Whether the elements are integers.
    fn is_integer(self) -> bool {
        matches!(self, NpyType::U8 | NpyType::I32 | NpyType::I64)
    }
}

/// A parsed NPY file: shape, element type and the (length-checked) element bytes.
struct NpyRaw<'a> {
    shape: Vec<usize>,
    ty: NpyType,
    /// The `descr` as parsed by npyz, which its element readers take.
    dtype: TypeStr,
    data: &'a [u8],
}

/// Parses an NPY header and checks that the data that follows has exactly
/// the size the header claims.
fn parse_npy_raw<'a>(bytes: &'a [u8], name: &str) -> Result<NpyRaw<'a>, DataError> {
    let err = |r: String| format_err(name, r);
    let (
        Header {
            descr,
            fortran_order,
            shape,
        },
        data,
    ) = parse_header(bytes, name)?;
    let unsupported = || {
        err(format!(
            "unsupported dtype '{descr}' (supported: <f4, <f8, |u1, <i4, <i8 and big-endian variants)"
        ))
    };
    // The round trip keeps the accepted spellings exact (no `<f04`).
    let dtype = descr
        .parse::<TypeStr>()
        .ok()
        .filter(|ts| ts.to_string() == descr)
        .ok_or_else(unsupported)?;
    let ty = NpyType::of(&dtype).ok_or_else(unsupported)?;
    if fortran_order {
        return Err(err(
            "fortran_order True is not supported; save the array in C order".into(),
        ));
    }
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|count| count.checked_mul(ty.size()))
        .ok_or_else(|| err(format!("NPY shape {shape:?} overflows the address space")))?;
    check_payload_len(
        name,
        &format!("array data for shape {shape:?} of '{descr}'"),
        expected,
        data.len(),
    )?;
    Ok(NpyRaw {
        shape,
        ty,
        dtype,
        data,
    })
}

/// Decodes every element of `raw` as `T` with npyz's reader for its dtype.
/// The data length was checked against the shape, so a failure here means
/// `T` does not match the dtype (a bug), reported rather than panicking.
fn decode<T: Deserialize>(raw: &NpyRaw<'_>, name: &str) -> Result<Vec<T>, DataError> {
    let fail = |e: &dyn std::fmt::Display| format_err(name, format!("cannot decode elements: {e}"));
    let reader = T::reader(&DType::Plain(raw.dtype.clone())).map_err(|e| fail(&e))?;
    let mut rest = raw.data;
    (0..raw.data.len() / raw.ty.size())
        .map(|_| reader.read_one(&mut rest).map_err(|e| fail(&e)))
        .collect()
}

/// Element values of an integer array as `i64`.
fn npy_integers(raw: &NpyRaw<'_>, name: &str) -> Result<Vec<i64>, DataError> {
    match raw.ty {
        NpyType::U8 => Ok(raw.data.iter().map(|&b| i64::from(b)).collect()),
        NpyType::I32 => Ok(decode::<i32>(raw, name)?
            .into_iter()
            .map(i64::from)
            .collect()),
        NpyType::I64 => decode::<i64>(raw, name),
        NpyType::F32 | NpyType::F64 => Ok(Vec::new()),
    }
}

/// Element values as `f64`, with a check that every one is finite.
fn npy_floats(raw: &NpyRaw<'_>, name: &str) -> Result<Vec<f64>, DataError> {
    let values: Vec<f64> = match raw.ty {
        NpyType::F32 => decode::<f32>(raw, name)?
            .into_iter()
            .map(f64::from)
            .collect(),
        NpyType::F64 => decode::<f64>(raw, name)?,
        // Integers wider than 2^53 round to the nearest f64: documented on `parse_npy`.
        _ => npy_integers(raw, name)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
    };
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(format_err(
            name,
            format!("element {pos} is not finite ({})", values[pos]),
        ));
    }
    Ok(values)
}

/// Parses an NPY file (format versions 1.0, 2.0 and 3.0; gzip auto-detected)
/// holding a C-order array of dtype `<f4`, `<f8`, `|u1`, `<i4` or `<i8`
/// (or the big-endian variants). Returns the shape and the elements as `f64`
/// *unscaled*: a `|u1` value 255 comes back as 255.0, and the caller decides
/// how to scale. Integers beyond 2^53 in magnitude are rounded to `f64`.
///
/// Rejects a missing magic, a header that is not a dict or lacks a key,
/// unsupported dtypes, `fortran_order: True`, data shorter or longer than the
/// shape implies, shapes whose size overflows, and NaN or infinite values.
pub fn parse_npy(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), DataError> {
    let bytes = maybe_gunzip(bytes, BYTES_NAME)?;
    let raw = parse_npy_raw(&bytes, BYTES_NAME)?;
    let values = npy_floats(&raw, BYTES_NAME)?;
    Ok((raw.shape, values))
}

/// Loads an NPY array as a dataset: shape `[N, D]` (N inputs of dimension
/// D), `[N, H, W]` (N images flattened to `H*W`), or `[D]` (a single input).
/// Float arrays are taken as already scaled to `[0, 1]` and must be finite;
/// `|u1` arrays are scaled by 1/255 like IDX pixels (and keep their raw
/// bytes). Other dtypes, and any zero-sized dimension, are rejected.
///
/// `labels`, if given, is an NPY array of an integer dtype (`<i8`, `<i4`,
/// `|u1`) and shape `[N]` whose values lie in `0..=255`.
pub fn load_npy(path: &Path, labels: Option<&Path>) -> Result<Dataset, DataError> {
    let name = path.display().to_string();
    let bytes = read_file(path)?;
    let bytes = maybe_gunzip(&bytes, &name)?;
    let raw = parse_npy_raw(&bytes, &name)?;
    let (n, dim) = match raw.shape.as_slice() {
        &[d] => (1, d),
        &[n, d] => (n, d),
        // `h * w` can overflow when `n == 0` (the element count is then 0).
        &[n, h, w] => (
            n,
            h.checked_mul(w).ok_or_else(|| {
                format_err(
                    &name,
                    format!("image size {h} x {w} overflows the address space"),
                )
            })?,
        ),
        other => {
            return Err(format_err(
                &name,
                format!(
                    "expected an array of shape [N, D], [N, H, W] or [D], found shape {other:?}"
                ),
            ));
        }
    };
    if n == 0 || dim == 0 {
        return Err(format_err(
            &name,
            format!("array of shape {:?} holds no input", raw.shape),
        ));
    }
    let label_bytes = labels.map(|l| load_npy_labels(l, n, &name)).transpose()?;
    match raw.ty {
        NpyType::U8 => Dataset::from_bytes(&name, dim, raw.data.to_vec(), label_bytes),
        NpyType::F32 | NpyType::F64 => {
            let values = npy_floats(&raw, &name)?;
            Dataset::build(&name, dim, values, None, label_bytes)
        }
        NpyType::I32 | NpyType::I64 => Err(format_err(
            &name,
            "integer dtype is not supported for inputs: use float values in [0, 1] or |u1 pixels",
        )),
    }
}

/// Reads a label array for `n` inputs of the array in `images_name`.
fn load_npy_labels(path: &Path, n: usize, images_name: &str) -> Result<Vec<u8>, DataError> {
    let name = path.display().to_string();
    let bytes = read_file(path)?;
    let bytes = maybe_gunzip(&bytes, &name)?;
    let raw = parse_npy_raw(&bytes, &name)?;
    if !raw.ty.is_integer() {
        return Err(format_err(
            &name,
            "labels must have an integer dtype (<i8, <i4 or |u1)",
        ));
    }
    let count = match raw.shape.as_slice() {
        &[m] => m,
        other => {
            return Err(format_err(
                &name,
                format!("labels must have shape [N], found {other:?}"),
            ));
        }
    };
    if count != n {
        return Err(DataError::Mismatch(format!(
            "{images_name} holds {n} inputs but {name} holds {count} labels"
        )));
    }
    npy_integers(&raw, &name)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            u8::try_from(v)
                .map_err(|_| format_err(&name, format!("label {i} is {v}, outside 0..=255")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn npy_v1_f4_f8_u1() {
        let (shape, v) = parse_npy(&npy(
            1,
            "<f4",
            "(2, 3)",
            &f4_bytes(&[0.0, 0.5, 1.0, 0.25, 0.1, 0.9]),
        ))
        .expect("f4");
        assert_eq!(shape, [2, 3]);
        assert_eq!(v[1], 0.5);
        assert_eq!(v[4], f64::from(0.1f32));

        let (shape, v) =
            parse_npy(&npy(1, "<f8", "(3,)", &f8_bytes(&[0.1, 0.2, 0.3]))).expect("f8");
        assert_eq!((shape, v), (vec![3], vec![0.1, 0.2, 0.3]));

        let (shape, v) = parse_npy(&npy(1, "|u1", "(1, 2, 2)", &[0, 1, 128, 255])).expect("u1");
        assert_eq!(shape, [1, 2, 2]);
        assert_eq!(v, [0.0, 1.0, 128.0, 255.0], "u1 is returned unscaled");

        // Big-endian, integer dtypes, a scalar, Python-2 style longs, double quotes.
        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        assert_eq!(
            parse_npy(&npy(1, ">f4", "(2,)", &be)).expect(">f4").1,
            [1.5, -2.0]
        );
        let i8b: Vec<u8> = [-3i64, 300].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            parse_npy(&npy(1, "<i8", "(2,)", &i8b)).expect("i8").1,
            [-3.0, 300.0]
        );
        let (s, v) = parse_npy(&npy(1, "<f8", "()", &f8_bytes(&[4.0]))).expect("scalar");
        assert!(s.is_empty() && v == [4.0]);
        let h = "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (1L, 1L)}";
        assert_eq!(
            parse_npy(&npy_with_header(1, h, &f8_bytes(&[2.0])))
                .expect("py2")
                .0,
            [1, 1]
        );
        // Empty arrays parse (the loader rejects them).
        assert_eq!(
            parse_npy(&npy(1, "<f4", "(0, 784)", &[])).expect("empty").0,
            [0, 784]
        );
        // gzip detected by magic for NPY too.
        let z = gz(&npy(1, "|u1", "(2,)", &[3, 4]));
        assert_eq!(parse_npy(&z).expect("npy.gz").1, [3.0, 4.0]);
    }

    #[test]
    fn npy_v2_v3_headers() {
        for major in [2, 3] {
            let (s, v) =
                parse_npy(&npy(major, "<f4", "(1, 2)", &f4_bytes(&[0.5, 0.75]))).expect("v2/3");
            assert_eq!((s, v), (vec![1, 2], vec![0.5, 0.75]));
        }
        let e = reason(parse_npy(&npy(4, "<f4", "(1,)", &f4_bytes(&[0.5]))).expect_err("v4"));
        assert!(e.contains("version 4.0"), "{e}");
    }

    #[test]
    fn load_npy_shapes_scaling_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // u1 [N, H, W] scaled /255 with raw bytes kept.
        let p = write(d, "u.npy", &npy(1, "|u1", "(2, 1, 2)", &[0, 51, 255, 102]));
        let ds = load_npy(&p, None).expect("u1");
        assert_eq!((ds.len(), ds.dim(), ds.has_labels()), (2, 2, false));
        assert_eq!(ds.image(0).expect("0"), [0.0, 0.2]);
        assert_eq!(ds.raw_pixel_bytes(1), Some(&[255u8, 102][..]));
        // f4 [N, D] taken as-is, no raw bytes.
        let p = write(
            d,
            "f.npy",
            &npy(1, "<f4", "(2, 2)", &f4_bytes(&[0.5, 0.25, 0.0, 1.0])),
        );
        let ds = load_npy(&p, None).expect("f4");
        assert_eq!(ds.image(1).expect("1"), [0.0, 1.0]);
        assert_eq!(ds.raw_pixel_bytes(0), None);
        // [D]: one input.
        let p = write(
            d,
            "one.npy",
            &npy(3, "<f8", "(3,)", &f8_bytes(&[0.1, 0.2, 0.3])),
        );
        let ds = load_npy(&p, None).expect("one");
        assert_eq!((ds.len(), ds.dim()), (1, 3));

        // Labels of every integer dtype.
        let i8l: Vec<u8> = [7i64, 255].iter().flat_map(|x| x.to_le_bytes()).collect();
        let i4l: Vec<u8> = [0i32, 12].iter().flat_map(|x| x.to_le_bytes()).collect();
        for (name, lab) in [
            ("a.npy", npy(1, "<i8", "(2,)", &i8l)),
            ("b.npy", npy(1, "<i4", "(2,)", &i4l)),
            ("c.npy", npy(1, "|u1", "(2,)", &[3, 4])),
        ] {
            let l = write(d, name, &lab);
            let ds = load_npy(&d.join("f.npy"), Some(&l)).expect("labels");
            assert!(ds.has_labels() && ds.label(1).is_some());
        }
        let bad = |name: &str, bytes: Vec<u8>, want: &str| {
            let l = write(d, name, &bytes);
            let e = reason(load_npy(&d.join("f.npy"), Some(&l)).expect_err(want));
            assert!(e.contains(want), "wanted {want:?} in {e:?}");
        };
        let big: Vec<u8> = [1i64, 256].iter().flat_map(|x| x.to_le_bytes()).collect();
        bad("x1.npy", npy(1, "<i8", "(2,)", &big), "label 1 is 256");
        let neg: Vec<u8> = [-1i32, 0].iter().flat_map(|x| x.to_le_bytes()).collect();
        bad("x2.npy", npy(1, "<i4", "(2,)", &neg), "label 0 is -1");
        bad("x3.npy", npy(1, "|u1", "(3,)", &[1, 2, 3]), "3 labels");
        bad(
            "x4.npy",
            npy(1, "<f4", "(2,)", &f4_bytes(&[1.0, 2.0])),
            "integer dtype",
        );
        bad("x5.npy", npy(1, "|u1", "(2, 1)", &[1, 2]), "shape [N]");

        // Input-array errors, each naming the file.
        let cases = [
            (
                "e1.npy",
                npy(1, "<f4", "(1, 1, 1, 1)", &f4_bytes(&[0.5])),
                "shape [N, D]",
            ),
            ("e2.npy", npy(1, "<f4", "(0, 3)", &[]), "holds no input"),
            ("e3.npy", npy(1, "<f4", "(3, 0)", &[]), "holds no input"),
            ("e4.npy", npy(1, "<i4", "(1,)", &[0; 4]), "integer dtype"),
            (
                "e5.npy",
                npy(1, "<f4", "(1,)", &f4_bytes(&[f32::NEG_INFINITY])),
                "not finite",
            ),
            (
                "e6.npy",
                npy(1, "<f4", "(0, 4294967296, 4294967296)", &[]),
                "overflows",
            ),
        ];
        for (name, bytes, want) in cases {
            let p = write(d, name, &bytes);
            let e = reason(load_npy(&p, None).expect_err(want));
            assert!(
                e.contains(want) && e.contains(name),
                "wanted {want:?} in {e:?}"
            );
        }
        assert!(matches!(
            load_npy(&d.join("nope.npy"), None),
            Err(DataError::Io { .. })
        ));
    }
}
