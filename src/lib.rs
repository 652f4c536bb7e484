//! # certquant — certified quantization strategy synthesis for ReLU networks
//!
//! Given a trained ReLU network and a property it satisfies, find per-layer fixed-point
//! bit-widths such that the quantized network provably keeps the property (Zhang et al.,
//! "Certified Quantization Strategy Synthesis for Neural Networks", FM 2024), and emit the
//! quantized model together with a re-checkable certificate.
//!
//! Data flows one way: [`model`] + [`spec`] → [`bounds`] → preimages → strategy →
//! certificate/export.

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

// Links the static CBC libraries built by cargo (the MILP backend).
extern crate cbc_src;

pub mod attack;
pub mod backdoor;
pub mod bench;
pub mod bounds;
pub mod certificate;
pub mod check;
pub mod data;
pub mod milp;
pub mod model;
pub mod onnx;
pub mod plots;
pub mod preimage;
pub mod quantize;
pub mod search;
pub mod spec;
pub mod sprt;
pub mod synth;
pub mod train;
