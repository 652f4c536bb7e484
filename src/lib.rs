//! # certquant — certified quantization strategy synthesis for ReLU networks
//!
//! Given a trained ReLU network and a property it satisfies, find per-layer fixed-point
//! bit-widths such that the quantized network provably keeps the property (Zhang et al.,
//! "Certified Quantization Strategy Synthesis for Neural Networks", FM 2024), and emit the
//! quantized model together with a re-checkable certificate.
//!
//! The work is split into crates along the trust boundaries (ARCHITECTURE.md):
//! `certquant-core` (network IR, ONNX, data, properties, certificate format),
//! `certquant-bounds` (sound DeepPoly, quantization, the proof a certificate rests on),
//! `certquant-check` (the independent checker, which depends on `certquant-core` only),
//! `certquant-milp` (solver trait, CBC) and `certquant-synth` (preimages, Algorithms 1 and 2,
//! the property-set search). This crate is the application: the CLI, benchmarks, plots, the
//! demo trainer and the attack; it re-exports the library crates under their old module
//! names so that `certquant::spec`, `certquant::synth`, … keep working.

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

pub use certquant_bounds as bounds;
pub use certquant_bounds::quantize;
pub use certquant_check as check;
pub use certquant_core::{
    certificate, data, deploy, graph, model, onnx, semantics, shared, spec, vnnlib,
};
pub use certquant_milp as milp;
pub use certquant_synth::algorithm1 as synth;
pub use certquant_synth::{activations, backdoor, batch, floor, preimage, search, sprt};

pub mod attack;
pub mod bench;
pub mod falsify;
pub mod float32;
pub mod plots;
pub mod quantize_query;
pub mod robust_query;
pub mod split;
pub mod train;
