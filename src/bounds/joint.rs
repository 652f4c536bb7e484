//! The joint output check of Algorithm 2 (backdoor-freeness): "no input of the region makes
//! the target class `t` a top class", i.e. no `x` in the box has `y_t ≥ y_j` for every `j`.
//!
//! The per-class test of [`DeepPoly::prove_output`] (some single `j` beats `t` everywhere)
//! is a sound shortcut, but the property often holds only because *different* classes beat
//! `t` in different parts of the box. With the DeepPoly lower forms `y_j − y_t ≥ L_j(x)`,
//! the property follows if the linear system `{x ∈ box : L_j(x) ≤ 0 for all j ≠ t}` is
//! infeasible. By LP duality (Farkas) that system is infeasible iff there are multipliers
//! `λ ≥ 0`, `Σλ = 1`, with `min_{x ∈ box} Σ_j λ_j L_j(x) > 0`. We find `λ` with an LP (any
//! solver, any tolerance: the LP only *proposes* multipliers) and then *prove* with sound
//! arithmetic that `Σ_j λ_j (y_j − y_t)` has a positive lower bound over the box
//! ([`DeepPoly::difference_combination_lower_bound`], which back-substitutes the combined
//! row and is at least as tight as `Σ λ_j L_j`). The multipliers go into the certificate, so
//! the independent checker re-proves the same combination with its own interval arithmetic.

use super::arith::linear_min;
use super::deeppoly::{BoundsError, DeepPoly, LinearBounds};
use crate::milp::{Backend, Problem, Sense, SolveOptions, Status};

/// The outcome of the joint not-target check.
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

/// Time limit of the multiplier LP (it is tiny: one variable per class and per free input).
const LP_SECONDS: f64 = 20.0;

/// Proves `argmax ≠ target` over the box of `dp` (all of `dp`'s hidden layers must be
/// computed): first the per-class shortcut, then LP multipliers checked soundly.
pub fn prove_not_target(
    dp: &DeepPoly<'_>,
    target: usize,
    backend: &dyn Backend,
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
    let Some(lambda) = propose_multipliers(&forms, lo, hi, target, backend) else {
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

/// The LP `max_{λ ∈ simplex} min_{x ∈ box} Σ_j λ_j L_j(x)`, written with one auxiliary
/// `w_i ≤ min(lo_i·c_i(λ), hi_i·c_i(λ))` per free input (`c_i(λ) = Σ_j λ_j a_ji`); fixed
/// inputs go into the constant. Returns `None` when the LP optimum is not positive (the
/// linear forms cannot prove the property) or the solver fails.
fn propose_multipliers(
    forms: &LinearBounds,
    lo: &[f64],
    hi: &[f64],
    target: usize,
    backend: &dyn Backend,
) -> Option<Vec<f64>> {
    let classes = forms.rows();
    let others: Vec<usize> = (0..classes).filter(|&j| j != target).collect();
    if others.is_empty() {
        return None;
    }
    let free: Vec<usize> = (0..lo.len()).filter(|&i| lo[i] < hi[i]).collect();
    let mut p = Problem::new();
    let lam: Vec<_> = others.iter().map(|_| p.add_var(0.0, 1.0)).collect();
    p.add_row(lam.iter().map(|&v| (v, 1.0)), 1.0, 1.0);
    let mut objective = Vec::new();
    for (&j, &v) in others.iter().zip(&lam) {
        let a = forms.coeffs(j);
        let fixed: f64 = (0..lo.len())
            .filter(|&i| lo[i] == hi[i])
            .map(|i| a[i] * lo[i])
            .sum();
        objective.push((v, forms.constant(j) + fixed));
    }
    for &i in &free {
        let scale: f64 = others
            .iter()
            .map(|&j| forms.coeffs(j)[i].abs())
            .sum::<f64>()
            * lo[i].abs().max(hi[i].abs());
        let bound = scale * 2.0 + 1.0;
        let w = p.add_var(-bound, bound);
        objective.push((w, 1.0));
        for end in [lo[i], hi[i]] {
            // w − end·Σ_j λ_j a_ji ≤ 0
            let terms = std::iter::once((w, 1.0)).chain(
                others
                    .iter()
                    .zip(&lam)
                    .map(|(&j, &v)| (v, -end * forms.coeffs(j)[i])),
            );
            p.add_row(terms, f64::NEG_INFINITY, 0.0);
        }
    }
    p.set_objective(objective, Sense::Maximize);
    let Ok(s) = backend.solve(
        &p,
        &SolveOptions {
            time_limit: Some(LP_SECONDS),
            ..SolveOptions::default()
        },
    ) else {
        return None;
    };
    if s.status != Status::Optimal || s.objective.is_none_or(|o| o <= 0.0) {
        return None;
    }
    let mut lambda = vec![0.0; classes];
    for (&j, v) in others.iter().zip(&lam) {
        lambda[j] = s.values.get(v.0).copied().unwrap_or(0.0).clamp(0.0, 1.0);
    }
    if lambda.iter().all(|&l| l == 0.0) {
        return None;
    }
    Some(lambda)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milp::cbc::Cbc;
    use crate::model::{Affine, Network};
    use crate::spec::{InputBox, OutputSpec};

    /// One input `x ∈ [−1, 1]`, logits `(bias0, x, −x)`. With `bias0 = −0.1`, class 1 wins for
    /// `x > 0`, class 2 for `x < 0`, and both beat class 0 at `x = 0`: `argmax ≠ 0` holds on
    /// the whole box, yet no single class beats class 0 everywhere.
    fn split_net(bias0: f64) -> Network {
        let l = Affine::new(0, 3, 1, vec![0.0, 1.0, -1.0], vec![bias0, 0.0, 0.0]).unwrap();
        Network::new(vec![l]).unwrap()
    }

    #[test]
    fn multipliers_prove_what_no_single_class_proves() {
        let net = split_net(-0.1);
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let (ok, _) = dp
            .prove_output(OutputSpec::NotTarget { target: 0 })
            .unwrap();
        assert!(!ok, "the per-class shortcut must not suffice here");
        let p = prove_not_target(&dp, 0, &Cbc).unwrap();
        assert!(p.proven, "{p:?}");
        assert!(p.margin > 0.0);
        let lam = p.multipliers.unwrap();
        assert_eq!(lam[0], 0.0);
        assert!(
            (lam[1] - 0.5).abs() < 1e-6 && (lam[2] - 0.5).abs() < 1e-6,
            "{lam:?}"
        );
    }

    #[test]
    fn a_reachable_target_is_never_proven() {
        // y_0 = +0.1: at x = 0 the target wins, so neither test may claim a proof
        let net = split_net(0.1);
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let p = prove_not_target(&dp, 0, &Cbc).unwrap();
        assert!(!p.proven, "{p:?}");
        // a tie (y_0 = 0 at x = 0) is a violation too
        let net = split_net(0.0);
        let dp = DeepPoly::run(&net, &bx).unwrap();
        assert!(!prove_not_target(&dp, 0, &Cbc).unwrap().proven);
    }

    #[test]
    fn the_per_class_shortcut_is_used_first() {
        let net = split_net(-0.1);
        let bx = InputBox::new(vec![0.5], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let p = prove_not_target(&dp, 0, &Cbc).unwrap();
        assert!(p.proven && p.multipliers.is_none(), "{p:?}");
        // and a target that wins everywhere is refuted by both tests
        assert!(!prove_not_target(&dp, 1, &Cbc).unwrap().proven);
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
}
