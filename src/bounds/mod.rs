//! Bound propagation: DeepPoly (Step 0 / Step 2 of Algorithm 1) with sound floating point.
//!
//! [`arith`] holds the rounding-error bounds; [`deeppoly`] the abstract interpreter.

pub mod arith;
pub mod deeppoly;

pub use deeppoly::{BoundsError, DeepPoly, LayerBounds, LinearBounds, Side};
