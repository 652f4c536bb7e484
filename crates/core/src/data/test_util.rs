//! Builders of test files (IDX, NPY, gzip) shared by the data tests.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::DataError;
use super::idx::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use super::npy::NPY_MAGIC;

pub(super) fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [IDX_IMAGES_MAGIC, n, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

pub(super) fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

pub(super) fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("in-memory write");
    e.finish().expect("in-memory finish")
}

/// An NPY file with the given header dict text, padded like numpy does.
pub(super) fn npy_with_header(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
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

pub(super) fn npy(major: u8, descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    npy_with_header(
        major,
        &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"),
        data,
    )
}

pub(super) fn f4_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn f8_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn reason(e: DataError) -> String {
    e.to_string()
}

pub(super) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

/// Twelve pixel bytes: three 2 x 2 images covering 0, 128, 254 and 255.
pub(super) const PIX: [u8; 12] = [0, 1, 2, 3, 128, 254, 255, 7, 8, 9, 10, 11];
