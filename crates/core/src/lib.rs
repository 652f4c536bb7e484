//! # certquant-core — what certquant reads and writes
//!
//! The untrusted-input side of certquant, shared by the synthesis and by the independent
//! checker: the network IR ([`model`]), ONNX import and export ([`onnx`]), IDX/NPY data sets
//! ([`data`]), properties and input boxes ([`spec`]), the fixed-point format type ([`quant`]), the integer-only program ([`semantics`]), its exports ([`deploy`])
//! and the certificate format ([`certificate`]).
//!
//! Nothing here proves anything: bounds live in `certquant-bounds`, the checker's own proofs
//! in `certquant-check`, which depends on this crate alone.

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

pub mod certificate;
pub mod data;
pub mod deploy;
pub mod graph;
pub mod model;
pub mod onnx;
pub mod quant;
pub mod semantics;
pub mod shared;
pub mod spec;
pub mod vnnlib;
