//! Input data for the certification: readers for IDX image/label files (the
//! MNIST distribution format, gzipped or raw; `idx.rs`) and for NPY arrays
//! (`npy.rs`), and the [`Dataset`] they produce.
//!
//! Every reader treats its input as hostile: a malformed file yields a
//! [`DataError`] whose message names the file and says what is wrong, never a
//! panic. Sizes claimed by a header are multiplied with `checked_mul` and
//! compared with the bytes actually present *before* anything is allocated
//! from them, gzip streams are detected by their magic bytes (not by the file
//! name) and decompressed under a size cap, and whole files are read under the
//! same cap, so a small hostile file cannot make the process allocate
//! gigabytes.
//!
//! Pixels are stored as `f64` in `[0, 1]`. For IDX data (and `|u1` NPY
//! arrays) a pixel byte `k` becomes the correctly rounded `k / 255`, and the
//! original bytes are kept ([`Dataset::raw_pixel_bytes`]) so that code which
//! must reason about the exact rational value `k/255` can re-derive it.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use thiserror::Error;

mod idx;
mod npy;
#[cfg(test)]
mod test_util;

pub use idx::{
    idx_pair_from_bytes, load_dir, load_idx_pair, parse_idx_images, parse_idx_labels,
    write_idx_images, write_idx_labels,
};
pub use npy::{load_npy, parse_npy};

/// Largest number of bytes a single file may have on disk, and largest number
/// of bytes a gzip stream may decompress to (1 GiB). MNIST's test images are
/// 7.8 MB uncompressed; anything past this limit is treated as an attack or a
/// mistake rather than data.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// The two magic bytes that open every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Name used in errors for data that did not come from a file.
const BYTES_NAME: &str = "<bytes>";
/// Name used in errors for data handed to [`Dataset::from_parts`].
const PARTS_NAME: &str = "<in-memory data>";

/// Why input data could not be read. Every variant names the file (or the
/// in-memory source) it is about, so the message alone is enough to find the
/// problem.
#[derive(Debug, Error)]
pub enum DataError {
    /// The operating system could not open or read a file.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not form a valid file of the expected format.
    #[error("{path}: {reason}")]
    Format {
        /// The file name, or `"<bytes>"` when parsing a byte slice directly.
        path: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A directory does not contain a file that was looked for.
    #[error("{}: no {wanted} found", dir.display())]
    Missing {
        /// The directory searched.
        dir: PathBuf,
        /// Description of the file(s) looked for.
        wanted: String,
    },
    /// Two pieces of data that must agree in size do not (e.g. image and label counts).
    #[error("{0}")]
    Mismatch(String),
    /// An input id passed to [`Dataset::subset`] is not below the dataset's length.
    #[error("input id {id} is out of range: the dataset has {len} inputs")]
    IdOutOfRange {
        /// The offending id.
        id: usize,
        /// The number of inputs in the dataset.
        len: usize,
    },
}

/// Shorthand for a [`DataError::Format`] about `path`.
fn format_err(path: &str, reason: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Correctly rounded `k / 255` for every byte `k`, so converting a pixel is a
/// table look-up and gives bit-identical results everywhere.
fn byte_scale_table() -> [f64; 256] {
    let mut t = [0.0; 256];
    for (k, v) in t.iter_mut().enumerate() {
        *v = k as f64 / 255.0;
    }
    t
}

/// A set of input vectors with pixels in `[0, 1]` (IDX bytes are scaled by
/// 1/255), optionally labelled.
///
/// The images are one flat row-major buffer of `len() * dim()` values. For
/// data that came from bytes (IDX files, `|u1` NPY arrays) the original bytes
/// are kept as well, because the certified arithmetic downstream may need the
/// exact rational pixel value `k/255` rather than its `f64` rounding.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    dim: usize,
    images: Vec<f64>,
    raw: Option<Vec<u8>>,
    labels: Option<Vec<u8>>,
}

impl fmt::Debug for Dataset {
    /// Summarises instead of printing millions of pixels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("dim", &self.dim)
            .field("has_raw", &self.raw.is_some())
            .field("has_labels", &self.labels.is_some())
            .finish()
    }
}

impl Dataset {
    /// Builds a dataset from already-scaled values, checking that `images`
    /// holds a whole number of `dim`-sized inputs, that every value is finite
    /// (no bound can be certified around NaN), and that `labels`, if given,
    /// has one entry per input. `dim` must be positive.
    pub fn from_parts(
        dim: usize,
        images: Vec<f64>,
        labels: Option<Vec<u8>>,
    ) -> Result<Self, DataError> {
        Self::build(PARTS_NAME, dim, images, None, labels)
    }

    /// Shared validation behind every constructor; `source` names the data in errors.
    fn build(
        source: &str,
        dim: usize,
        images: Vec<f64>,
        raw: Option<Vec<u8>>,
        labels: Option<Vec<u8>>,
    ) -> Result<Self, DataError> {
        if dim == 0 {
            return Err(DataError::Mismatch(format!(
                "{source}: input dimension must be positive, got 0"
            )));
        }
        if !images.len().is_multiple_of(dim) {
            return Err(DataError::Mismatch(format!(
                "{source}: {} values do not split into inputs of dimension {dim}",
                images.len()
            )));
        }
        let n = images.len() / dim;
        if let Some(raw) = &raw
            && raw.len() != images.len()
        {
            return Err(DataError::Mismatch(format!(
                "{source}: {} raw pixel bytes for {} values",
                raw.len(),
                images.len()
            )));
        }
        if let Some(labels) = &labels
            && labels.len() != n
        {
            return Err(DataError::Mismatch(format!(
                "{source}: {n} inputs but {} labels",
                labels.len()
            )));
        }
        if let Some(pos) = images.iter().position(|v| !v.is_finite()) {
            return Err(format_err(
                source,
                format!(
                    "input {} value {} is not finite ({})",
                    pos / dim,
                    pos % dim,
                    images[pos]
                ),
            ));
        }
        Ok(Dataset {
            dim,
            images,
            raw,
            labels,
        })
    }

    /// Builds a dataset from pixel bytes, scaling each byte `k` to `k/255`
    /// and keeping the bytes for exact re-derivation.
    fn from_bytes(
        source: &str,
        dim: usize,
        raw: Vec<u8>,
        labels: Option<Vec<u8>>,
    ) -> Result<Self, DataError> {
        let table = byte_scale_table();
        let images = raw.iter().map(|&b| table[usize::from(b)]).collect();
        Self::build(source, dim, images, Some(raw), labels)
    }

    /// Number of inputs.
    pub fn len(&self) -> usize {
        // `dim` is positive by construction.
        self.images.len() / self.dim
    }

    /// Whether the dataset holds no input at all (e.g. an empty [`Dataset::subset`]).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Length of one input vector (784 for MNIST).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `i`-th input, scaled to `[0, 1]`; `None` if `i` is out of range.
    pub fn image(&self, i: usize) -> Option<&[f64]> {
        let start = i.checked_mul(self.dim)?;
        let end = start.checked_add(self.dim)?;
        self.images.get(start..end)
    }

    /// The label of the `i`-th input; `None` if the data is unlabelled or `i`
    /// is out of range. No class count is assumed: any byte value may occur.
    pub fn label(&self, i: usize) -> Option<usize> {
        self.labels
            .as_ref()
            .and_then(|l| l.get(i))
            .map(|&b| usize::from(b))
    }

    /// Whether every input carries a label.
    pub fn has_labels(&self) -> bool {
        self.labels.is_some()
    }

    /// The original pixel bytes of the `i`-th input, for data read from bytes
    /// (IDX files and `|u1` NPY arrays), so that the exact value `k/255` of
    /// each pixel can be recovered; `None` for float data or out-of-range `i`.
    pub fn raw_pixel_bytes(&self, i: usize) -> Option<&[u8]> {
        let raw = self.raw.as_ref()?;
        let start = i.checked_mul(self.dim)?;
        let end = start.checked_add(self.dim)?;
        raw.get(start..end)
    }

    /// All inputs as one flat row-major slice of `len() * dim()` values.
    pub fn pixels(&self) -> &[f64] {
        &self.images
    }

    /// All labels, one per input, if the data is labelled.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// A new dataset holding the inputs `ids` in the given order (repeats
    /// allowed), with their labels and raw bytes. Fails with
    /// [`DataError::IdOutOfRange`] naming the first id that does not exist.
    pub fn subset(&self, ids: &[usize]) -> Result<Dataset, DataError> {
        let len = self.len();
        if let Some(&id) = ids.iter().find(|&&id| id >= len) {
            return Err(DataError::IdOutOfRange { id, len });
        }
        let total = ids.len().checked_mul(self.dim).ok_or_else(|| {
            DataError::Mismatch(format!(
                "subset of {} inputs of dimension {} is too large",
                ids.len(),
                self.dim
            ))
        })?;
        let mut images = Vec::with_capacity(total);
        let mut raw = self.raw.as_ref().map(|_| Vec::with_capacity(total));
        let mut labels = self.labels.as_ref().map(|_| Vec::with_capacity(ids.len()));
        for &id in ids {
            // In range: checked above.
            let range = id * self.dim..(id + 1) * self.dim;
            images.extend_from_slice(&self.images[range.clone()]);
            if let (Some(dst), Some(src)) = (raw.as_mut(), self.raw.as_ref()) {
                dst.extend_from_slice(&src[range]);
            }
            if let (Some(dst), Some(src)) = (labels.as_mut(), self.labels.as_ref()) {
                dst.push(src[id]);
            }
        }
        Ok(Dataset {
            dim: self.dim,
            images,
            raw,
            labels,
        })
    }
}

// ---------------------------------------------------------------------------
// Byte-level helpers
// ---------------------------------------------------------------------------

/// Reads a whole file, refusing files larger than [`MAX_INPUT_BYTES`]
/// without reading them.
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format_err(
            &path.display().to_string(),
            format!("file is larger than the {MAX_INPUT_BYTES}-byte limit"),
        ));
    }
    Ok(bytes)
}

/// Returns the bytes unchanged, or decompressed if they start with the gzip
/// magic, under the [`MAX_INPUT_BYTES`] cap.
fn maybe_gunzip<'a>(bytes: &'a [u8], name: &str) -> Result<Cow<'a, [u8]>, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        gunzip_capped(bytes, MAX_INPUT_BYTES, name).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// Decompresses a (possibly multi-member) gzip stream, failing as soon as
/// the output would exceed `cap` bytes: a few kilobytes of hostile gzip can
/// otherwise expand to many gigabytes. Bytes after the last member that are
/// not another gzip member are reported as corruption.
fn gunzip_capped(bytes: &[u8], cap: u64, name: &str) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format_err(name, format!("corrupted gzip stream: {e}")))?;
    if out.len() as u64 > cap {
        return Err(format_err(
            name,
            format!("gzip stream decompresses to more than the {cap}-byte limit"),
        ));
    }
    Ok(out)
}

/// Checks that `found` payload bytes are exactly the `expected` ones.
fn check_payload_len(
    name: &str,
    what: &str,
    expected: usize,
    found: usize,
) -> Result<(), DataError> {
    if found < expected {
        Err(format_err(
            name,
            format!("truncated: expected {expected} bytes of {what}, found {found}"),
        ))
    } else if found > expected {
        Err(format_err(
            name,
            format!(
                "trailing garbage: expected {expected} bytes of {what}, found {found} ({} extra)",
                found - expected
            ),
        ))
    } else {
        Ok(())
    }
}

/// Loads whatever `path` names: a directory via [`load_dir`], a `.npy` (or
/// `.npy.gz`) file via [`load_npy`], using a sibling `<stem>.labels.npy` as
/// labels when it exists (e.g. `test.npy` + `test.labels.npy`).
pub fn load(path: &Path) -> Result<Dataset, DataError> {
    if path.is_dir() {
        return load_dir(path);
    }
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file_name
        .strip_suffix(".npy")
        .or_else(|| file_name.strip_suffix(".npy.gz"));
    match stem {
        Some(stem) => {
            let sibling = path.with_file_name(format!("{stem}.labels.npy"));
            let labels = sibling.is_file().then_some(sibling);
            load_npy(path, labels.as_deref())
        }
        None if !path.exists() => Err(DataError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }),
        None => Err(format_err(
            &path.display().to_string(),
            "expected a directory holding IDX files or a .npy file",
        )),
    }
}

/// Runs every parser on arbitrary bytes and discards the results: the entry
/// point for a fuzzing target, whose only assertion is "no panic, no
/// unbounded allocation".
pub fn fuzz_parse(bytes: &[u8]) {
    let _ = parse_idx_images(bytes);
    let _ = parse_idx_labels(bytes);
    let _ = parse_npy(bytes);
}

#[cfg(test)]
mod tests {
    use super::npy::NPY_MAGIC;
    use super::test_util::*;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn gzip_corruption_and_bomb() {
        let images = idx_images(3, 2, 2, &PIX);
        let good = gz(&images);
        // Damage the deflate data: CRC or decoding must fail.
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let e = reason(parse_idx_images(&bad).expect_err("corrupt"));
        assert!(e.contains("gzip"), "{e}");
        // Truncated stream.
        let e = reason(parse_idx_images(&good[..good.len() - 5]).expect_err("truncated gz"));
        assert!(e.contains("gzip"), "{e}");
        // CRC mismatch.
        let mut crc = good.clone();
        let n = crc.len();
        crc[n - 8] ^= 1;
        assert!(reason(parse_idx_images(&crc).expect_err("crc")).contains("gzip"));
        // Garbage after the member.
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage!");
        assert!(reason(parse_idx_images(&trailing).expect_err("trail")).contains("gzip"));
        // Only the magic.
        assert!(parse_idx_labels(&GZIP_MAGIC).is_err());

        // A bomb: 4 MiB of zeros compress to a few KiB; a 1 MiB cap refuses it.
        let bomb = gz(&vec![0u8; 4 << 20]);
        assert!(bomb.len() < 16 << 10);
        let e = reason(gunzip_capped(&bomb, 1 << 20, "bomb").expect_err("capped"));
        assert!(e.contains("limit"), "{e}");
        assert_eq!(
            gunzip_capped(&bomb, 4 << 20, "ok").expect("at cap").len(),
            4 << 20
        );
    }

    #[test]
    fn load_dispatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let x = write(d, "x.npy", &npy(1, "|u1", "(2, 2)", &[1, 2, 3, 4]));
        assert!(!load(&x).expect("no labels").has_labels());
        write(d, "x.labels.npy", &npy(1, "|u1", "(2,)", &[5, 6]));
        let ds = load(&x).expect("sibling labels");
        assert_eq!(ds.label(1), Some(6));
        let z = write(d, "z.npy.gz", &gz(&npy(1, "|u1", "(2, 2)", &[1, 2, 3, 4])));
        assert_eq!(load(&z).expect("npy.gz").len(), 2);
        let t = write(d, "x.txt", b"hello");
        assert!(reason(load(&t).expect_err("txt")).contains(".npy"));
        assert!(matches!(load(&d.join("none")), Err(DataError::Io { .. })));
        assert!(matches!(load(d), Err(DataError::Missing { .. })));
    }

    #[test]
    fn subset_and_from_parts() {
        let ds = Dataset::from_parts(2, vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5], Some(vec![1, 2, 3]))
            .expect("valid");
        let s = ds.subset(&[2, 0, 2]).expect("in range");
        assert_eq!(s.len(), 3);
        assert_eq!(s.image(0).expect("0"), [0.4, 0.5]);
        assert_eq!((s.label(0), s.label(1)), (Some(3), Some(1)));
        let e = ds.subset(&[0, 5, 7]).expect_err("out of range");
        assert!(matches!(e, DataError::IdOutOfRange { id: 5, len: 3 }));
        assert!(e.to_string().contains("5"), "{e}");
        let empty = ds.subset(&[]).expect("empty");
        assert!(empty.is_empty() && empty.has_labels());

        // Raw bytes follow a subset of IDX data.
        let bytes = Dataset::from_bytes("t", 4, PIX.to_vec(), None).expect("bytes");
        let s = bytes.subset(&[2]).expect("in range");
        assert_eq!(s.raw_pixel_bytes(0), Some(&PIX[8..12]));
        assert!(!s.has_labels() && s.label(0).is_none());

        assert!(matches!(
            Dataset::from_parts(0, vec![], None),
            Err(DataError::Mismatch(_))
        ));
        assert!(matches!(
            Dataset::from_parts(2, vec![0.0; 3], None),
            Err(DataError::Mismatch(_))
        ));
        assert!(matches!(
            Dataset::from_parts(2, vec![0.0; 4], Some(vec![1])),
            Err(DataError::Mismatch(_))
        ));
        let e =
            reason(Dataset::from_parts(2, vec![0.0, 0.0, 0.0, f64::NAN], None).expect_err("nan"));
        assert!(e.contains("input 1 value 1 is not finite"), "{e}");
        assert!(format!("{ds:?}").contains("len: 3"));
    }

    /// Random mutations of valid files must give `Ok` or `Err`, never a panic,
    /// and any `Ok` must be self-consistent.
    #[test]
    fn mutations_never_panic() {
        let seeds: Vec<Vec<u8>> = vec![
            idx_images(3, 2, 2, &PIX),
            gz(&idx_images(3, 2, 2, &PIX)),
            idx_labels(&[1, 2, 3, 4]),
            gz(&idx_labels(&[1, 2, 3, 4])),
            npy(1, "<f4", "(2, 2)", &f4_bytes(&[0.5, 0.25, 0.0, 1.0])),
            npy(2, "|u1", "(2, 1, 2)", &[0, 1, 2, 3]),
            npy(3, "<f8", "(2,)", &f8_bytes(&[0.1, 0.2])),
        ];
        let mut rng = StdRng::seed_from_u64(0x5eed_da7a);
        for round in 0..6000 {
            let mut b = seeds[round % seeds.len()].clone();
            match rng.random_range(0..5) {
                0 => {
                    let cut = rng.random_range(0..=b.len());
                    b.truncate(cut);
                }
                1 => {
                    for _ in 0..rng.random_range(1..4) {
                        let i = rng.random_range(0..b.len());
                        b[i] = rng.random();
                    }
                }
                2 => {
                    let i = rng.random_range(0..=b.len());
                    let extra: Vec<u8> =
                        (0..rng.random_range(1..9)).map(|_| rng.random()).collect();
                    b.splice(i..i, extra);
                }
                3 => {
                    // Header fields set to extreme values.
                    let i = rng.random_range(0..b.len().min(16));
                    b[i] = if rng.random() { 0xff } else { 0 };
                }
                _ => {
                    let i = rng.random_range(0..b.len());
                    b.remove(i);
                }
            }
            fuzz_parse(&b);
            if let Ok((r, c, px)) = parse_idx_images(&b) {
                assert!(r > 0 && c > 0 && px.len() % (r * c) == 0 && !px.is_empty());
            }
            if let Ok((shape, v)) = parse_npy(&b) {
                assert_eq!(shape.iter().product::<usize>(), v.len());
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
        // Pure noise, including gzip and NPY magics followed by noise.
        for len in 0..300 {
            let mut b: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            fuzz_parse(&b);
            b.splice(0..0, GZIP_MAGIC);
            fuzz_parse(&b);
            b.splice(0..0, *NPY_MAGIC);
            fuzz_parse(&b);
        }
    }
}
