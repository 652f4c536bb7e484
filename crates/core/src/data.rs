//! Input data for the certification: readers for IDX image/label files (the
//! MNIST distribution format, gzipped or raw) and for NPY arrays.
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

/// Largest number of bytes a single file may have on disk, and largest number
/// of bytes a gzip stream may decompress to (1 GiB). MNIST's test images are
/// 7.8 MB uncompressed; anything past this limit is treated as an attack or a
/// mistake rather than data.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// The two magic bytes that open every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// IDX magic of an unsigned-byte, 3-dimensional array (images).
const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic of an unsigned-byte, 1-dimensional array (labels).
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
/// Length of the IDX image header: magic, count, rows, cols (4 bytes each).
const IDX_IMAGES_HEADER: usize = 16;
/// Length of the IDX label header: magic, count (4 bytes each).
const IDX_LABELS_HEADER: usize = 8;
/// Magic string that opens every NPY file.
const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Deepest nesting of brackets accepted in an NPY header; real headers nest
/// two levels (the dict and the shape tuple). Bounding it keeps a hostile
/// header from overflowing the stack of the recursive parser.
const NPY_MAX_DEPTH: usize = 4;
/// Name used in errors for data that did not come from a file.
const BYTES_NAME: &str = "<bytes>";
/// Name used in errors for data handed to [`Dataset::from_parts`].
const PARTS_NAME: &str = "<in-memory data>";

/// File names looked for by [`load_dir`]: the MNIST / Fashion-MNIST test set.
const DIR_IMAGES: &str = "t10k-images-idx3-ubyte";
/// See [`DIR_IMAGES`].
const DIR_LABELS: &str = "t10k-labels-idx1-ubyte";

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

/// Big-endian `u32` at `at`; the caller has checked the length.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
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

// ---------------------------------------------------------------------------
// IDX
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// NPY
// ---------------------------------------------------------------------------

/// The element types understood in NPY files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NpyType {
    F32,
    F64,
    U8,
    I32,
    I64,
}

impl NpyType {
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

/// An element type together with the byte order of multi-byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NpyDtype {
    ty: NpyType,
    big_endian: bool,
}

/// Maps an NPY `descr` string to a supported dtype.
fn parse_descr(descr: &str) -> Option<NpyDtype> {
    let (little, big) = (false, true);
    let (ty, big_endian) = match descr {
        "<f4" => (NpyType::F32, little),
        ">f4" => (NpyType::F32, big),
        "<f8" => (NpyType::F64, little),
        ">f8" => (NpyType::F64, big),
        "|u1" | "<u1" | ">u1" => (NpyType::U8, little),
        "<i4" => (NpyType::I32, little),
        ">i4" => (NpyType::I32, big),
        "<i8" => (NpyType::I64, little),
        ">i8" => (NpyType::I64, big),
        _ => return None,
    };
    Some(NpyDtype { ty, big_endian })
}

/// A value of the Python-literal subset used by NPY headers.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Int(usize),
    Seq(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

/// A tiny recursive-descent parser for NPY header dicts such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (10, 784), }`.
struct HeaderParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl HeaderParser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected '{}' at header offset {}, found '{}'",
                c as char,
                self.pos,
                x.escape_ascii()
            )),
            None => Err(format!("expected '{}' but the header ended", c as char)),
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > NPY_MAX_DEPTH {
            return Err(format!("nested deeper than {NPY_MAX_DEPTH} levels"));
        }
        match self.peek() {
            None => Err("value expected but the header ended".into()),
            Some(b'{') => self.dict(depth),
            Some(b'(') => self.seq(b')', depth),
            Some(b'[') => self.seq(b']', depth),
            Some(q @ (b'\'' | b'"')) => self.string(q).map(PyValue::Str),
            Some(b'0'..=b'9') => self.int(),
            Some(_) => {
                for (word, v) in [("True", true), ("False", false)] {
                    if self.s[self.pos..].starts_with(word.as_bytes()) {
                        self.pos += word.len();
                        return Ok(PyValue::Bool(v));
                    }
                }
                Err(format!(
                    "unexpected character at header offset {}",
                    self.pos
                ))
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, String> {
        self.expect(quote)?;
        let start = self.pos;
        loop {
            match self.s.get(self.pos) {
                None => return Err("unterminated string".into()),
                Some(b'\\') => return Err("escape sequences are not supported".into()),
                Some(&c) if c == quote => break,
                Some(_) => self.pos += 1,
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos])
            .map_err(|_| "string is not valid UTF-8".to_string())?
            .to_string();
        self.pos += 1;
        Ok(text)
    }

    fn int(&mut self) -> Result<PyValue, String> {
        let mut v: usize = 0;
        while let Some(&c) = self.s.get(self.pos).filter(|c| c.is_ascii_digit()) {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(c - b'0')))
                .ok_or("integer too large")?;
            self.pos += 1;
        }
        // Python 2 era files write long integers as `10L`.
        if self.s.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        Ok(PyValue::Int(v))
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<PyValue, String> {
        self.pos += 1; // the opening bracket, seen by `value`
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(PyValue::Seq(items));
            }
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => {
                    self.expect(close)?;
                    return Ok(PyValue::Seq(items));
                }
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, String> {
        self.pos += 1; // '{'
        let mut entries: Vec<(String, PyValue)> = Vec::new();
        loop {
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(PyValue::Dict(entries));
                }
                Some(q @ (b'\'' | b'"')) => {
                    let key = self.string(q)?;
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(format!("duplicate key '{key}'"));
                    }
                    entries.push((key, v));
                }
                _ => return Err("dict key must be a string".into()),
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => {
                    self.expect(b'}')?;
                    return Ok(PyValue::Dict(entries));
                }
            }
        }
    }
}

/// A parsed NPY file: shape, dtype and the (length-checked) element bytes.
struct NpyRaw<'a> {
    shape: Vec<usize>,
    dtype: NpyDtype,
    data: &'a [u8],
}

/// Parses an NPY header and checks that the data that follows has exactly
/// the size the header claims.
fn parse_npy_raw<'a>(bytes: &'a [u8], name: &str) -> Result<NpyRaw<'a>, DataError> {
    let err = |r: String| format_err(name, r);
    if !bytes.starts_with(NPY_MAGIC) {
        let hint = if bytes.starts_with(&[0, 0, 8]) {
            " (this looks like an IDX file)"
        } else {
            ""
        };
        return Err(err(format!(
            "not an NPY file: missing the \\x93NUMPY magic{hint}"
        )));
    }
    let (major, minor) = match (bytes.get(6), bytes.get(7)) {
        (Some(&a), Some(&b)) => (a, b),
        _ => return Err(err("truncated: NPY version bytes missing".into())),
    };
    let (len_bytes, header_start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => {
            return Err(err(format!(
                "unsupported NPY format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)"
            )));
        }
    };
    let hlen_field = bytes
        .get(8..header_start)
        .ok_or_else(|| err("truncated: NPY header length missing".into()))?;
    let header_len = if len_bytes == 2 {
        usize::from(u16::from_le_bytes([hlen_field[0], hlen_field[1]]))
    } else {
        u32::from_le_bytes([hlen_field[0], hlen_field[1], hlen_field[2], hlen_field[3]]) as usize
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            err(format!(
                "truncated: NPY header claims {header_len} bytes, only {} present",
                bytes.len().saturating_sub(header_start)
            ))
        })?;
    let header = &bytes[header_start..header_end];
    if major < 3 && !header.is_ascii() {
        return Err(err("NPY header is not ASCII".into()));
    }
    let mut p = HeaderParser { s: header, pos: 0 };
    let dict = match p.value(0) {
        Ok(PyValue::Dict(d)) => d,
        Ok(_) => return Err(err("NPY header is not a dict".into())),
        Err(e) if p.peek() != Some(b'{') && p.pos == 0 => {
            return Err(err(format!("NPY header is not a dict: {e}")));
        }
        Err(e) => return Err(err(format!("malformed NPY header: {e}"))),
    };
    if p.peek().is_some() {
        return Err(err(format!(
            "malformed NPY header: unexpected text after the dict at offset {}",
            p.pos
        )));
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", PyValue::Str(s)) => descr = Some(s),
            ("descr", _) => {
                return Err(err(
                    "unsupported dtype: structured arrays are not supported".into(),
                ));
            }
            ("fortran_order", PyValue::Bool(b)) => fortran = Some(b),
            ("shape", PyValue::Seq(items)) => {
                let dims = items
                    .into_iter()
                    .map(|v| match v {
                        PyValue::Int(d) => Ok(d),
                        _ => Err(err("NPY shape must be a tuple of integers".into())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                shape = Some(dims);
            }
            (k @ ("fortran_order" | "shape"), v) => {
                return Err(err(format!(
                    "NPY header key '{k}' has an invalid value {v:?}"
                )));
            }
            (k, _) => return Err(err(format!("NPY header has an unexpected key '{k}'"))),
        }
    }
    let descr = descr.ok_or_else(|| err("NPY header lacks 'descr'".into()))?;
    let fortran = fortran.ok_or_else(|| err("NPY header lacks 'fortran_order'".into()))?;
    let shape = shape.ok_or_else(|| err("NPY header lacks 'shape'".into()))?;
    let dtype = parse_descr(&descr).ok_or_else(|| {
        err(format!(
            "unsupported dtype '{descr}' (supported: <f4, <f8, |u1, <i4, <i8 and big-endian variants)"
        ))
    })?;
    if fortran {
        return Err(err(
            "fortran_order True is not supported; save the array in C order".into(),
        ));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(format!("NPY shape {shape:?} overflows the address space")))?;
    let expected = count
        .checked_mul(dtype.ty.size())
        .ok_or_else(|| err(format!("NPY shape {shape:?} overflows the address space")))?;
    let data = &bytes[header_end..];
    check_payload_len(
        name,
        &format!("array data for shape {shape:?} of '{descr}'"),
        expected,
        data.len(),
    )?;
    Ok(NpyRaw { shape, dtype, data })
}

/// Decodes fixed-size elements with a conversion for each byte order.
fn decode<const N: usize, T>(
    data: &[u8],
    big_endian: bool,
    le: fn([u8; N]) -> T,
    be: fn([u8; N]) -> T,
) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            if big_endian { be(a) } else { le(a) }
        })
        .collect()
}

/// Element values of an integer array as `i64`.
fn npy_integers(raw: &NpyRaw<'_>) -> Vec<i64> {
    let be = raw.dtype.big_endian;
    match raw.dtype.ty {
        NpyType::U8 => raw.data.iter().map(|&b| i64::from(b)).collect(),
        NpyType::I32 => decode(raw.data, be, i32::from_le_bytes, i32::from_be_bytes)
            .into_iter()
            .map(i64::from)
            .collect(),
        NpyType::I64 => decode(raw.data, be, i64::from_le_bytes, i64::from_be_bytes),
        NpyType::F32 | NpyType::F64 => Vec::new(),
    }
}

/// Element values as `f64`, with a check that every one is finite.
fn npy_floats(raw: &NpyRaw<'_>, name: &str) -> Result<Vec<f64>, DataError> {
    let be = raw.dtype.big_endian;
    let values: Vec<f64> = match raw.dtype.ty {
        NpyType::F32 => decode(raw.data, be, f32::from_le_bytes, f32::from_be_bytes)
            .into_iter()
            .map(f64::from)
            .collect(),
        NpyType::F64 => decode(raw.data, be, f64::from_le_bytes, f64::from_be_bytes),
        // Integers wider than 2^53 round to the nearest f64: documented on `parse_npy`.
        _ => npy_integers(raw).into_iter().map(|v| v as f64).collect(),
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
    parse_npy_named(bytes, BYTES_NAME)
}

/// [`parse_npy`] with `name` used in error messages.
fn parse_npy_named(bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f64>), DataError> {
    let bytes = maybe_gunzip(bytes, name)?;
    let raw = parse_npy_raw(&bytes, name)?;
    let values = npy_floats(&raw, name)?;
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
    match raw.dtype.ty {
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
    if !raw.dtype.ty.is_integer() {
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
    npy_integers(&raw)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            u8::try_from(v)
                .map_err(|_| format_err(&name, format!("label {i} is {v}, outside 0..=255")))
        })
        .collect()
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

    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::io::Write;

    fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IDX_IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).expect("in-memory write");
        e.finish().expect("in-memory finish")
    }

    /// An NPY file with the given header dict text, padded like numpy does.
    fn npy_with_header(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let prefix = if major == 1 { 10 } else { 12 };
        let mut header = dict.to_string();
        while !(prefix + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut v = NPY_MAGIC.to_vec();
        v.extend_from_slice(&[major, 0]);
        if major == 1 {
            v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    fn npy(major: u8, descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_with_header(
            major,
            &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"),
            data,
        )
    }

    fn f4_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn f8_bytes(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn reason(e: DataError) -> String {
        e.to_string()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write temp file");
        p
    }

    const PIX: [u8; 12] = [0, 1, 2, 3, 128, 254, 255, 7, 8, 9, 10, 11];

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
    fn npy_errors() {
        let ok = |d: &str| npy_with_header(1, d, &f4_bytes(&[0.5, 0.5]));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"NUMPY\x01\x00".to_vec(), "magic"),
            (idx_images(3, 2, 2, &PIX), "IDX"),
            (NPY_MAGIC.to_vec(), "version"),
            (b"\x93NUMPY\x01\x00\x05".to_vec(), "header length"),
            (b"\x93NUMPY\x01\x00\xff\x00{}".to_vec(), "claims 255 bytes"),
            (ok("[1, 2]"), "not a dict"),
            (ok("descr"), "not a dict"),
            (
                ok("{'descr': '<f4', 'fortran_order': False}"),
                "lacks 'shape'",
            ),
            (
                ok("{'descr': '<c16', 'fortran_order': False, 'shape': (2,)}"),
                "unsupported dtype '<c16'",
            ),
            (
                ok("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}"),
                "unsupported dtype",
            ),
            (
                ok("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"),
                "structured",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}"),
                "fortran_order True",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}"),
                "expected 12 bytes",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"),
                "trailing garbage",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"),
                "unexpected key",
            ),
            (
                ok("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"),
                "duplicate",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}"),
                "tuple of integers",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x"),
                "after the dict",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"),
                "header ended",
            ),
            (ok("{'descr': '<f4, 'fortran_order': False}"), "malformed"),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': ((((((2,),),),),)}"),
                "nested",
            ),
            (
                ok("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}"),
                "too large",
            ),
            (
                ok("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
                "overflow",
            ),
            (
                ok("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}"),
                "overflow",
            ),
            (
                npy(1, "<f4", "(2,)", &f4_bytes(&[0.5, f32::NAN])),
                "element 1 is not finite",
            ),
            (
                npy(1, "<f8", "(2,)", &f8_bytes(&[f64::INFINITY, 0.0])),
                "element 0 is not finite",
            ),
            (
                npy_with_header(1, "{'descr': '<f4'}\u{e9}", &[]),
                "not ASCII",
            ),
        ];
        for (bytes, want) in cases {
            let e = reason(parse_npy(&bytes).expect_err(want));
            assert!(e.contains(want), "wanted {want:?} in {e:?}");
            assert!(e.starts_with(BYTES_NAME), "{e}");
        }
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
