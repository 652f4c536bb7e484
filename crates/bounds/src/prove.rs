//! The output check that decides a certificate: the last step of Algorithm 1 (Step 2's final
//! DeepPoly proof on the fully quantized network) and of Algorithm 2. A `certified` answer of
//! the synthesis is exactly a `proven` [`OutputProof`] from here on the network that is
//! shipped; preimages and bit-width choices only decide which network that is
//! (docs/method.md, eq. (35)).

use certquant_core::spec::OutputSpec;

use crate::deeppoly::{BoundsError, DeepPoly};
use crate::joint::{ProposeMultipliers, prove_not_target};

/// What the output check established on one network for one property.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputProof {
    /// Whether the output condition is proven on the whole box.
    pub proven: bool,
    /// The proven quantity (`> 0` iff proven): the robustness margin, or for not-target the
    /// per-class margin or the multiplier combination's lower bound.
    pub margin: f64,
    /// Robustness: per-class lower bounds of `y_g − y_j`.
    pub class_margins: Option<Vec<f64>>,
    /// Not-target: LP multipliers the proof needed (see [`crate::joint`]).
    pub multipliers: Option<Vec<f64>>,
}

/// Proves `spec` over the box of `dp` (all layers computed): robustness by DeepPoly's
/// logit differences; not-target by the per-class test and then LP multipliers
/// ([`crate::prove_not_target`]) (docs/method.md, eqs. (18), (19), (39)).
pub fn prove_property(
    dp: &DeepPoly<'_>,
    spec: OutputSpec,
    proposer: &dyn ProposeMultipliers,
) -> Result<OutputProof, BoundsError> {
    match spec {
        OutputSpec::Robust { label } => {
            let lbs = dp.logit_difference_lower_bounds(label)?;
            let margin = lbs.iter().copied().fold(f64::INFINITY, f64::min);
            Ok(OutputProof {
                proven: margin > 0.0,
                margin,
                class_margins: Some(lbs),
                multipliers: None,
            })
        }
        OutputSpec::NotTarget { target } => {
            let p = prove_not_target(dp, target, proposer)?;
            Ok(OutputProof {
                proven: p.proven,
                margin: p.margin,
                class_margins: None,
                multipliers: p.multipliers,
            })
        }
    }
}
