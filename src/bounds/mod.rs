//! Bound propagation: DeepPoly (Step 0 / Step 2 of Algorithm 1) with sound floating point.
//!
//! [`arith`] holds the rounding-error bounds; [`deeppoly`] the abstract interpreter; [`joint`]
//! the LP-multiplier proof of the not-target condition (Algorithm 2's output check).

pub mod arith;
pub mod deeppoly;
pub mod joint;

pub use deeppoly::{BoundsError, DeepPoly, LayerBounds, LinearBounds, Side};
pub use joint::{JointProof, prove_not_target};
