//! IDX files (the MNIST distribution format): parsers for unsigned-byte image
//! and label arrays, gzipped or raw, their writers, and the loaders that pair
//! an image file with its label file.
//!
//! The format is four big-endian `u32` fields at most followed by raw bytes,
//! so it is read by hand: no library would save more code than it costs.

use std::path::{Path, PathBuf};

use super::npy::NPY_MAGIC;
use super::{
    BYTES_NAME, DataError, Dataset, check_payload_len, format_err, maybe_gunzip, read_file,
};

/// IDX magic of an unsigned-byte, 3-dimensional array (images).
pub(super) const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic of an unsigned-byte, 1-dimensional array (labels).
pub(super) const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
/// Length of the IDX image header: magic, count, rows, cols (4 bytes each).
const IDX_IMAGES_HEADER: usize = 16;
/// Length of the IDX label header: magic, count (4 bytes each).
const IDX_LABELS_HEADER: usize = 8;

/// File names looked for by [`load_dir`]: the MNIST / Fashion-MNIST test set.
const DIR_IMAGES: &str = "t10k-images-idx3-ubyte";
/// See [`DIR_IMAGES`].
const DIR_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Big-endian `u32` at `at`; the caller has checked the length.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads and checks the magic of an IDX file, with a hint when the other
/// IDX kind (images vs labels) was supplied by mistake.
fn check_idx_magic(bytes: &[u8], name: &str, want: u32, header: usize) -> Result<(), DataError> {
    if bytes.len() < header {
        return Err(format_err(
            name,
            format!(
                "truncated: an IDX {} header needs {header} bytes, found {}",
                if want == IDX_IMAGES_MAGIC {
                    "image"
                } else {
                    "label"
                },
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0).unwrap_or(0);
    if magic == want {
        return Ok(());
    }
    let hint = match magic {
        IDX_IMAGES_MAGIC => " (this is an IDX image file, not a label file)",
        IDX_LABELS_MAGIC => " (this is an IDX label file, not an image file)",
        _ if bytes.starts_with(NPY_MAGIC) => " (this is an NPY file)",
        _ => "",
    };
    let kind = if want == IDX_IMAGES_MAGIC {
        "unsigned-byte 3-D image array"
    } else {
        "unsigned-byte 1-D label array"
    };
    Err(format_err(
        name,
        format!("wrong magic 0x{magic:08x}, expected 0x{want:08x} (IDX {kind}){hint}"),
    ))
}

/// Parses an IDX image file (magic `0x00000803`, big-endian count, rows and
/// columns, then `count * rows * cols` pixel bytes), gzipped or raw (gzip is
/// detected by its `1f 8b` magic). Returns `(rows, cols, pixels)`; the image
/// count is `pixels.len() / (rows * cols)`.
///
/// Rejects wrong magic, a zero count or dimension, dimensions whose product
/// overflows, and pixel data that is shorter or longer than the header says.
pub fn parse_idx_images(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), DataError> {
    parse_idx_images_named(bytes, BYTES_NAME)
}

/// [`parse_idx_images`] with `name` used in error messages.
fn parse_idx_images_named(bytes: &[u8], name: &str) -> Result<(usize, usize, Vec<u8>), DataError> {
    let bytes = maybe_gunzip(bytes, name)?;
    check_idx_magic(&bytes, name, IDX_IMAGES_MAGIC, IDX_IMAGES_HEADER)?;
    let field = |at| be_u32(&bytes, at).map_or(0, |v| v as usize);
    let (n, rows, cols) = (field(4), field(8), field(12));
    if n == 0 || rows == 0 || cols == 0 {
        return Err(format_err(
            name,
            format!("zero dimension in header: {n} images of {rows} x {cols} pixels"),
        ));
    }
    let expected = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| {
            format_err(
                name,
                format!("header dimensions {n} x {rows} x {cols} overflow the address space"),
            )
        })?;
    let payload = &bytes[IDX_IMAGES_HEADER..];
    check_payload_len(name, "pixel data", expected, payload.len())?;
    Ok((rows, cols, payload.to_vec()))
}

/// Parses an IDX label file (magic `0x00000801`, big-endian count, then one
/// byte per label), gzipped or raw. Any byte value is accepted as a label
/// (no class count is assumed); a zero count, wrong magic, truncation and
/// trailing bytes are errors.
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    parse_idx_labels_named(bytes, BYTES_NAME)
}

/// [`parse_idx_labels`] with `name` used in error messages.
fn parse_idx_labels_named(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    let bytes = maybe_gunzip(bytes, name)?;
    check_idx_magic(&bytes, name, IDX_LABELS_MAGIC, IDX_LABELS_HEADER)?;
    let n = be_u32(&bytes, 4).map_or(0, |v| v as usize);
    if n == 0 {
        return Err(format_err(name, "zero dimension in header: 0 labels"));
    }
    let payload = &bytes[IDX_LABELS_HEADER..];
    check_payload_len(name, "label data", n, payload.len())?;
    Ok(payload.to_vec())
}

/// Loads an IDX image file and its IDX label file (each gzipped or raw) as
/// one labelled dataset with pixels scaled to `k/255`. The two files must
/// hold the same number of entries.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let img_name = images.display().to_string();
    let lab_name = labels.display().to_string();
    let (rows, cols, pixels) = parse_idx_images_named(&read_file(images)?, &img_name)?;
    let label_bytes = parse_idx_labels_named(&read_file(labels)?, &lab_name)?;
    // Non-zero and non-overflowing: checked by the parser.
    let dim = rows * cols;
    let n = pixels.len() / dim;
    if n != label_bytes.len() {
        return Err(DataError::Mismatch(format!(
            "{img_name} holds {n} images but {lab_name} holds {} labels",
            label_bytes.len()
        )));
    }
    Dataset::from_bytes(&img_name, dim, pixels, Some(label_bytes))
}

/// Builds a labelled dataset from in-memory IDX image and label files (gzipped or raw), as
/// [`load_idx_pair`] does for files; `name` is used in error messages. Used for the demo data
/// embedded in the binary.
pub fn idx_pair_from_bytes(images: &[u8], labels: &[u8], name: &str) -> Result<Dataset, DataError> {
    let (rows, cols, pixels) = parse_idx_images_named(images, name)?;
    let label_bytes = parse_idx_labels_named(labels, name)?;
    let dim = rows * cols;
    let n = pixels.len() / dim;
    if n != label_bytes.len() {
        return Err(DataError::Mismatch(format!(
            "{name}: {n} images but {} labels",
            label_bytes.len()
        )));
    }
    Dataset::from_bytes(name, dim, pixels, Some(label_bytes))
}

/// Serialises `count` images of `rows × cols` 8-bit pixels as a raw IDX image file
/// (the inverse of [`parse_idx_images`]).
pub fn write_idx_images(
    count: usize,
    rows: usize,
    cols: usize,
    pixels: &[u8],
) -> Result<Vec<u8>, DataError> {
    let expected = count.checked_mul(rows).and_then(|v| v.checked_mul(cols));
    if expected != Some(pixels.len()) || count == 0 || rows == 0 || cols == 0 {
        return Err(DataError::Mismatch(format!(
            "{} pixel bytes do not form {count} images of {rows} x {cols}",
            pixels.len()
        )));
    }
    let to_u32 = |v: usize| {
        u32::try_from(v)
            .map_err(|_| DataError::Mismatch(format!("dimension {v} exceeds the IDX format")))
    };
    let mut out = Vec::with_capacity(16 + pixels.len());
    out.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    for v in [count, rows, cols] {
        out.extend_from_slice(&to_u32(v)?.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    Ok(out)
}

/// Serialises labels as a raw IDX label file (the inverse of [`parse_idx_labels`]).
pub fn write_idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Finds `base` or `base.gz` in `dir` (whichever exists; the content decides
/// whether it is decompressed, not the name).
fn find_in_dir(dir: &Path, base: &str) -> Result<PathBuf, DataError> {
    let candidates = [dir.join(format!("{base}.gz")), dir.join(base)];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Missing {
            dir: dir.to_path_buf(),
            wanted: format!("{base} or {base}.gz"),
        })
}

/// Loads the MNIST-layout test set of a directory: `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte`, each optionally with a `.gz` suffix (and
/// each gzipped or not, whatever its name). Fails with
/// [`DataError::Missing`] naming the file looked for if either is absent.
pub fn load_dir(dir: &Path) -> Result<Dataset, DataError> {
    let meta = std::fs::metadata(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(format_err(&dir.display().to_string(), "not a directory"));
    }
    let images = find_in_dir(dir, DIR_IMAGES)?;
    let labels = find_in_dir(dir, DIR_LABELS)?;
    load_idx_pair(&images, &labels)
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn idx_writers_round_trip() {
        let px: Vec<u8> = (0..24).map(|v| v as u8 * 10).collect();
        let img = super::write_idx_images(2, 3, 4, &px).unwrap();
        let lab = super::write_idx_labels(&[3, 7]);
        let ds = super::idx_pair_from_bytes(&img, &lab, "mem").unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.dim(), 12);
        assert_eq!(ds.label(1), Some(7));
        assert_eq!(ds.raw_pixel_bytes(1).unwrap(), &px[12..]);
        assert!(super::write_idx_images(2, 3, 5, &px).is_err());
        assert!(super::idx_pair_from_bytes(&img, &super::write_idx_labels(&[1]), "mem").is_err());
    }

    #[test]
    fn idx_raw_round_trip() {
        let (rows, cols, px) = parse_idx_images(&idx_images(3, 2, 2, &PIX)).expect("valid");
        assert_eq!((rows, cols), (2, 2));
        assert_eq!(px, PIX);
        assert_eq!(
            parse_idx_labels(&idx_labels(&[7, 200, 0])).expect("valid"),
            [7, 200, 0]
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let i = write(dir.path(), "i", &idx_images(3, 2, 2, &PIX));
        let l = write(dir.path(), "l", &idx_labels(&[7, 200, 0]));
        let ds = load_idx_pair(&i, &l).expect("valid pair");
        assert_eq!((ds.len(), ds.dim(), ds.is_empty()), (3, 4, false));
        assert!(ds.has_labels());
        assert_eq!(ds.label(1), Some(200), "labels > 9 are allowed");
        assert_eq!(ds.label(3), None);
        assert_eq!(ds.image(1).expect("in range")[0], 128.0 / 255.0);
        assert_eq!(ds.image(1).expect("in range")[2], 1.0);
        assert_eq!(ds.image(3), None);
        assert_eq!(ds.image(usize::MAX), None);
        assert_eq!(ds.raw_pixel_bytes(2), Some(&PIX[8..12]));
        assert_eq!(ds.raw_pixel_bytes(3), None);
        for (k, v) in ds.raw.as_ref().expect("raw").iter().zip(ds.pixels()) {
            assert_eq!(*v, f64::from(*k) / 255.0);
        }
    }

    #[test]
    fn idx_gzip_round_trip_detected_by_magic() {
        let images = idx_images(3, 2, 2, &PIX);
        let labels = idx_labels(&[1, 2, 3]);
        assert_eq!(
            parse_idx_images(&gz(&images)).expect("gz"),
            parse_idx_images(&images).expect("raw")
        );
        assert_eq!(parse_idx_labels(&gz(&labels)).expect("gz"), [1, 2, 3]);

        // Names lie: gzip data without `.gz`, raw data with `.gz`.
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), DIR_IMAGES, &gz(&images));
        write(dir.path(), &format!("{DIR_LABELS}.gz"), &labels);
        let ds = load_dir(dir.path()).expect("load_dir");
        assert_eq!((ds.len(), ds.dim()), (3, 4));
        assert_eq!(ds.label(2), Some(3));
        let via_load = load(dir.path()).expect("load");
        assert_eq!(via_load, ds);

        // Multi-member gzip (concatenated streams) is one stream.
        let mut two = gz(&images[..10]);
        two.extend(gz(&images[10..]));
        assert_eq!(parse_idx_images(&two).expect("multi").2, PIX);
    }

    #[test]
    fn load_dir_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = load_dir(dir.path()).expect_err("empty dir");
        assert!(matches!(&e, DataError::Missing { wanted, .. } if wanted.contains(DIR_IMAGES)));
        write(dir.path(), DIR_IMAGES, &idx_images(3, 2, 2, &PIX));
        let e = load_dir(dir.path()).expect_err("no labels");
        assert!(matches!(&e, DataError::Missing { wanted, .. } if wanted.contains(DIR_LABELS)));
        assert!(e.to_string().contains("t10k-labels-idx1-ubyte.gz"), "{e}");
        let e = load_dir(&dir.path().join("nope")).expect_err("no dir");
        assert!(matches!(e, DataError::Io { .. }));
        let e = load_dir(&dir.path().join(DIR_IMAGES)).expect_err("file");
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn truncated_and_trailing() {
        let e = reason(parse_idx_images(&idx_images(3, 2, 2, &PIX[..11])).expect_err("short"));
        assert!(
            e.contains("expected 12 bytes of pixel data, found 11"),
            "{e}"
        );
        let mut long = PIX.to_vec();
        long.push(0);
        let e = reason(parse_idx_images(&idx_images(3, 2, 2, &long)).expect_err("long"));
        assert!(
            e.contains("trailing garbage") && e.contains("1 extra"),
            "{e}"
        );
        let e = reason(parse_idx_images(&idx_images(3, 2, 2, &PIX)[..10]).expect_err("header"));
        assert!(e.contains("header needs 16 bytes, found 10"), "{e}");

        let mut lab = idx_labels(&[1, 2, 3]);
        lab.pop();
        let e = reason(parse_idx_labels(&lab).expect_err("short labels"));
        assert!(e.contains("expected 3 bytes of label data, found 2"), "{e}");
        let e = reason(parse_idx_labels(&[0, 0, 8]).expect_err("tiny"));
        assert!(e.contains("truncated"), "{e}");
        assert!(parse_idx_labels(&[]).is_err());
        assert!(parse_idx_images(&[]).is_err());

        // The file is named in loader errors.
        let dir = tempfile::tempdir().expect("tempdir");
        let i = write(dir.path(), "imgs.gz", &gz(&idx_images(3, 2, 2, &PIX[..5])));
        let l = write(dir.path(), "labs", &idx_labels(&[1, 2, 3]));
        let e = reason(load_idx_pair(&i, &l).expect_err("short"));
        assert!(e.contains("imgs.gz") && e.contains("found 5"), "{e}");
    }

    #[test]
    fn wrong_magic_zero_and_overflowing_dims() {
        let e = reason(parse_idx_images(&idx_labels(&[0; 16])).expect_err("labels as images"));
        assert!(
            e.contains("wrong magic 0x00000801") && e.contains("label file"),
            "{e}"
        );
        let e = reason(parse_idx_labels(&idx_images(3, 2, 2, &PIX)).expect_err("swap"));
        assert!(e.contains("wrong magic 0x00000803"), "{e}");
        let mut bad = idx_images(3, 2, 2, &PIX);
        bad[3] = 0x0d; // float IDX
        let e = reason(parse_idx_images(&bad).expect_err("magic"));
        assert!(e.contains("wrong magic 0x0000080d"), "{e}");

        for (n, r, c) in [(0, 2, 2), (3, 0, 2), (3, 2, 0)] {
            let e = reason(parse_idx_images(&idx_images(n, r, c, &PIX)).expect_err("zero"));
            assert!(e.contains("zero dimension"), "{e}");
        }
        assert!(reason(parse_idx_labels(&idx_labels(&[])).expect_err("0")).contains("zero"));

        // u32::MAX^3 overflows u64; must be rejected without allocating.
        let e = reason(
            parse_idx_images(&idx_images(u32::MAX, u32::MAX, u32::MAX, &PIX)).expect_err("ovf"),
        );
        assert!(e.contains("overflow"), "{e}");
        // A large but representable claim is a truncation, not an allocation.
        let e = reason(parse_idx_images(&idx_images(u32::MAX, 1 << 16, 1, &PIX)).expect_err("big"));
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn count_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let i = write(dir.path(), "i", &idx_images(3, 2, 2, &PIX));
        let l = write(dir.path(), "l", &idx_labels(&[1, 2]));
        let e = load_idx_pair(&i, &l).expect_err("mismatch");
        assert!(
            matches!(&e, DataError::Mismatch(m) if m.contains("3 images") && m.contains("2 labels"))
        );
        let e = load_idx_pair(&i, &dir.path().join("missing")).expect_err("io");
        assert!(matches!(e, DataError::Io { .. }));
    }

    #[test]
    fn shared_mnist_if_present() {
        let Some(dir) = crate::shared::shared_dir("data/mnist") else {
            return;
        };
        let ds = load_dir(&dir).expect("shared MNIST test set");
        assert_eq!((ds.len(), ds.dim()), (10_000, 784));
        assert_eq!(ds.label(0), Some(7));
        assert!(ds.pixels().iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
