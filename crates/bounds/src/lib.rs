//! # certquant-bounds — the trusted proof side
//!
//! Everything a `certified` answer of the synthesis rests on: sound DeepPoly in floating point
//! (Step 0 / Step 2 of Algorithm 1; [`arith`] holds the rounding-error bounds, [`deeppoly`]
//! the abstract interpreter), the quantization scheme ([`quantize`]), the LP-multiplier proof
//! of the not-target condition ([`joint`], Algorithm 2's output check) and the output check
//! that decides a certificate ([`prove`]).
//!
//! A bug here can produce a false certificate; `certquant-check` re-establishes every
//! certificate without this crate (it does not depend on it).

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

pub mod arith;
pub mod deeppoly;
pub mod float32;
pub mod joint;
pub mod linear_spec;
mod ops;
pub mod prove;
pub mod quantize;
pub mod reuse;

pub use deeppoly::{BoundsError, DeepPoly, LayerBounds, LinearBounds, Side};
pub use joint::{JointProof, ProposeMultipliers, prove_not_target};
pub use linear_spec::{DisjunctProof, refute_conjunction};
pub use prove::{OutputProof, prove_property};
pub use reuse::PrefixCache;
