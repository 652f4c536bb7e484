//! The joint output check of Algorithm 2 (backdoor-freeness): "no input of the region makes
//! the target class `t` a top class", i.e. no `x` in the box has `y_t ≥ y_j` for every `j`.
//!
//! The per-class test of [`DeepPoly::prove_output`] (some single `j` beats `t` everywhere)
//! is a sound shortcut, but the property often holds only because *different* classes beat
//! `t` in different parts of the box. With the DeepPoly lower forms `y_j − y_t ≥ L_j(x)`,
//! the property follows if the linear system `{x ∈ box : L_j(x) ≤ 0 for all j ≠ t}` is
//! infeasible. By LP duality (Farkas) that system is infeasible iff there are multipliers
//! `λ ≥ 0`, `Σλ = 1`, with `min_{x ∈ box} Σ_j λ_j L_j(x) > 0`. A [`ProposeMultipliers`] finds `λ` (in the
//! synthesis an LP with any solver and tolerance: it only *proposes* multipliers) and then *prove* with sound
//! arithmetic that `Σ_j λ_j (y_j − y_t)` has a positive lower bound over the box
//! ([`DeepPoly::difference_combination_lower_bound`], which back-substitutes the combined
//! row and is at least as tight as `Σ λ_j L_j`). The multipliers go into the certificate, so
//! the independent checker re-proves the same combination with its own interval arithmetic
//! (docs/method.md, eqs. (38), (39)).

use super::arith::linear_min;
use super::deeppoly::{BoundsError, DeepPoly, LinearBounds};

/// The outcome of the joint not-target check (docs/method.md, eqs. (19), (39)).
#[derive(Debug, Clone, PartialEq)]
pub struct JointProof {
    /// Whether `argmax ≠ target` is proven on the whole box.
    pub proven: bool,
    /// The proven quantity: the per-class margin (`max_j` lower bound of `y_j − y_t`), or the
    /// lower bound of `Σ_j λ_j (y_j − y_t)` when multipliers were needed. `> 0` iff proven.
    pub margin: f64,
    /// Multipliers `λ` (one per class, `0` at the target) when the proof needed them.
    pub multipliers: Option<Vec<f64>>,
}

/// Proposes multipliers `λ ≥ 0` (one per class, `0` at the target) for the combination
/// `Σ_j λ_j (y_j − y_t)`, given the DeepPoly lower forms `L_j ≤ y_j − y_t` over the box
/// `[lo, hi]`. Any answer is safe: the proposal is only a hint that [`prove_not_target`] then
/// proves or rejects with sound arithmetic. The synthesis proposes with an LP
/// (`certquant_synth::multipliers`, docs/method.md, eq. (40)); this crate does not depend on a
/// solver.
pub trait ProposeMultipliers {
    /// `None` when no combination looks provable.
    fn propose(
        &self,
        forms: &LinearBounds,
        lo: &[f64],
        hi: &[f64],
        target: usize,
    ) -> Option<Vec<f64>>;
}

impl<F> ProposeMultipliers for F
where
    F: Fn(&LinearBounds, &[f64], &[f64], usize) -> Option<Vec<f64>>,
{
    fn propose(
        &self,
        forms: &LinearBounds,
        lo: &[f64],
        hi: &[f64],
        target: usize,
    ) -> Option<Vec<f64>> {
        self(forms, lo, hi, target)
    }
}

/// Proves `argmax ≠ target` over the box of `dp` (all of `dp`'s hidden layers must be
/// computed): first the per-class shortcut, then the multipliers of `proposer`, checked
/// soundly (docs/method.md, eqs. (19), (38), (39)).
pub fn prove_not_target(
    dp: &DeepPoly<'_>,
    target: usize,
    proposer: &dyn ProposeMultipliers,
) -> Result<JointProof, BoundsError> {
    // One back-substitution gives the forms L_j ≤ y_j − y_t for both tests; the per-class
    // margin is the best of their sound minima over the box.
    let forms = dp.logit_difference_forms(target)?;
    let (lo, hi) = (dp.input().lo(), dp.input().hi());
    let per_class = (0..forms.rows())
        .filter(|&j| j != target)
        .map(|j| linear_min(forms.coeffs(j), forms.constant(j), lo, hi))
        .fold(f64::NEG_INFINITY, f64::max);
    if per_class > 0.0 {
        return Ok(JointProof {
            proven: true,
            margin: per_class,
            multipliers: None,
        });
    }
    let not_proven = JointProof {
        proven: false,
        margin: per_class,
        multipliers: None,
    };
    let Some(lambda) = proposer.propose(&forms, lo, hi, target) else {
        return Ok(not_proven);
    };
    let margin = dp.difference_combination_lower_bound(target, &lambda)?;
    if margin > 0.0 {
        Ok(JointProof {
            proven: true,
            margin,
            multipliers: Some(lambda),
        })
    } else {
        Ok(not_proven)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::{Affine, Network};
    use certquant_core::spec::{InputBox, OutputSpec};

    /// One input `x ∈ [−1, 1]`, logits `(bias0, x, −x)`. With `bias0 = −0.1`, class 1 wins for
    /// `x > 0`, class 2 for `x < 0`, and both beat class 0 at `x = 0`: `argmax ≠ 0` holds on
    /// the whole box, yet no single class beats class 0 everywhere.
    fn split_net(bias0: f64) -> Network {
        let l = Affine::new(0, 3, 1, vec![0.0, 1.0, -1.0], vec![bias0, 0.0, 0.0]).unwrap();
        Network::new(vec![l]).unwrap()
    }

    #[test]
    fn bad_multipliers_prove_nothing() {
        let net = split_net(-0.1);
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        // all weight on class 1 fails (x < 0 part), negative or NaN weights are refused
        assert!(
            dp.difference_combination_lower_bound(0, &[0.0, 1.0, 0.0])
                .unwrap()
                <= 0.0
        );
        assert!(
            dp.difference_combination_lower_bound(0, &[0.0, 1.0, -1.0])
                .unwrap()
                <= 0.0
        );
        assert!(
            dp.difference_combination_lower_bound(0, &[0.0, f64::NAN, 1.0])
                .unwrap()
                <= 0.0
        );
        assert!(
            dp.difference_combination_lower_bound(0, &[0.0, 1.0])
                .is_err()
        );
    }

    #[test]
    fn a_proposal_is_proven_not_trusted() {
        let net = split_net(-0.1);
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let (ok, _) = dp
            .prove_output(OutputSpec::NotTarget { target: 0 })
            .unwrap();
        assert!(!ok, "the per-class shortcut must not suffice here");
        let none = |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| None;
        assert!(!prove_not_target(&dp, 0, &none).unwrap().proven);
        let half = |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| Some(vec![0.0, 0.5, 0.5]);
        let p = prove_not_target(&dp, 0, &half).unwrap();
        assert!(p.proven && p.margin > 0.0, "{p:?}");
        assert_eq!(p.multipliers, Some(vec![0.0, 0.5, 0.5]));
        let skewed = |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| Some(vec![0.0, 1.0, 0.0]);
        let p = prove_not_target(&dp, 0, &skewed).unwrap();
        assert!(!p.proven && p.multipliers.is_none(), "{p:?}");
    }
}
