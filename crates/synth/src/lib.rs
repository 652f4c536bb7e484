//! # certquant-synth — choosing bit-widths
//!
//! The search side of certquant: preimages of the hidden layers ([`preimage`], Problem (3)),
//! Algorithm 1 ([`algorithm1`]: preimages, then the forward search over fractional bits, with
//! the relaxed mode's count in [`relaxed`]), one strategy for a property set ([`search`], exact, or [`descent`] polynomial in depth,
//! with candidates' accuracy computed in batches by [`batch`]),
//! Algorithm 2 for backdoor-freeness ([`backdoor`], with its SPRT in [`sprt`]) and the LP that
//! proposes not-target multipliers ([`multipliers`]).
//!
//! Nothing here decides a certificate: preimages, the relaxed count and the multiplier LP are
//! guides; the decision is `certquant_bounds::prove_property` on the quantized network.

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

pub mod activations;
pub mod algorithm1;
pub mod backdoor;
pub mod batch;
pub mod deadline;
pub mod descent;
pub mod floor;
pub mod forward;
pub mod multipliers;
pub mod preimage;
pub mod relaxed;
pub mod search;
pub mod sprt;
