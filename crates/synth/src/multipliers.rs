//! The LP that proposes not-target multipliers for the joint output check of Algorithm 2
//! (`certquant_bounds::joint`): `max_{λ ∈ simplex} min_{x ∈ box} Σ_j λ_j L_j(x)`. Its answer is
//! a hint only; the proof is `certquant_bounds::prove_not_target`, which checks the proposed
//! `λ` with sound arithmetic, and the checker re-proves it with its own (docs/method.md,
//! eqs. (38), (39), (40)).

use certquant_bounds::{LinearBounds, ProposeMultipliers};
use certquant_milp::{Backend, Problem, Sense, SolveOptions, Status};

/// Time limit of the multiplier LP (it is tiny: one variable per class and per free input).
const LP_SECONDS: f64 = 20.0;

/// Proposes multipliers with an LP solved by a MILP backend.
#[derive(Clone, Copy)]
pub struct LpMultipliers<'a>(pub &'a dyn Backend);

impl ProposeMultipliers for LpMultipliers<'_> {
    fn propose(
        &self,
        forms: &LinearBounds,
        lo: &[f64],
        hi: &[f64],
        target: usize,
    ) -> Option<Vec<f64>> {
        propose_multipliers(forms, lo, hi, target, self.0)
    }
}

/// The LP `max_{λ ∈ simplex} min_{x ∈ box} Σ_j λ_j L_j(x)`, written with one auxiliary
/// `w_i ≤ min(lo_i·c_i(λ), hi_i·c_i(λ))` per free input (`c_i(λ) = Σ_j λ_j a_ji`); fixed
/// inputs go into the constant. Returns `None` when the LP optimum is not positive (the
/// linear forms cannot prove the property) or the solver fails (docs/method.md, eq. (40)).
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
    use certquant_bounds::{DeepPoly, prove_not_target};
    use certquant_core::model::{Affine, Network};
    use certquant_core::spec::{InputBox, OutputSpec};
    use certquant_milp::cbc::Cbc;

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
        let p = prove_not_target(&dp, 0, &LpMultipliers(&Cbc)).unwrap();
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
        let p = prove_not_target(&dp, 0, &LpMultipliers(&Cbc)).unwrap();
        assert!(!p.proven, "{p:?}");
        // a tie (y_0 = 0 at x = 0) is a violation too
        let net = split_net(0.0);
        let dp = DeepPoly::run(&net, &bx).unwrap();
        assert!(
            !prove_not_target(&dp, 0, &LpMultipliers(&Cbc))
                .unwrap()
                .proven
        );
    }

    #[test]
    fn the_per_class_shortcut_is_used_first() {
        let net = split_net(-0.1);
        let bx = InputBox::new(vec![0.5], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let p = prove_not_target(&dp, 0, &LpMultipliers(&Cbc)).unwrap();
        assert!(p.proven && p.multipliers.is_none(), "{p:?}");
        // and a target that wins everywhere is refuted by both tests
        assert!(
            !prove_not_target(&dp, 1, &LpMultipliers(&Cbc))
                .unwrap()
                .proven
        );
    }
}
