//! The checker's own re-proof of a refuted VNN-LIB disjunct (docs/method.md, eq. (51)).
//!
//! The synthesis side (`certquant_bounds::linear_spec`) claims that on a box no input satisfies
//! a conjunction of output constraints `a_i·y + c_i ≥ 0`, either because one constraint `i` is
//! negative everywhere or because a combination `Σ_i λ_i (a_i·y + c_i)` with the recorded
//! multipliers `λ ≥ 0` is. Here the same claim is re-proven with interval arithmetic only:
//! * the constraint's exact coefficients lie in `[a_ij − e_ij, a_ij + e_ij]` and its constant
//!   in `[c_lo, c_hi]` (the enclosures of the file's decimals); the combined coefficients
//!   `Σ_i λ_i a_ij` and constant are enclosed by outward-rounded interval sums;
//! * the last layer `y = W z + b` is substituted exactly into intervals:
//!   `A·y + C = (Σ_j A_j W_j)·z + (Σ_j A_j b_j + C)`, each product and sum enclosed;
//! * [`Prover::back_substitute`] bounds the result from above over the box (its invariant:
//!   some real coefficients in the intervals bound the exact quantity; the exact combination's
//!   coefficients are such reals).
//!
//! The disjunct is re-proven iff the upper bound is `< 0`. Nothing here uses
//! `certquant-bounds`.

use certquant_core::model::Network;
use certquant_core::vnnlib::OutputConstraint;

use super::interval::{Interval, add_up, mul_up, sub_down};
use super::prove::{Prover, Rows, Side};

/// How a disjunct is claimed refuted (what the synthesis side found).
#[derive(Debug, Clone, PartialEq)]
pub enum Refutation {
    /// Constraint `i` of the conjunction is negative on the whole box.
    Constraint(usize),
    /// `Σ_i λ_i (a_i·y + c_i) < 0` on the whole box, with these multipliers (one per
    /// constraint, finite, `≥ 0`, some positive).
    Multipliers(Vec<f64>),
}

/// The checker's upper bound over the prover's box of `Σ_i λ_i (a_i·y + c_i)` for every exact
/// constraint within the stored enclosures. `+∞` for unusable multipliers or shapes.
pub fn combination_upper_bound(
    prover: &Prover<'_>,
    net: &Network,
    conj: &[OutputConstraint],
    lambda: &[f64],
) -> f64 {
    let m = net.output_dim();
    let usable = !conj.is_empty()
        && lambda.len() == conj.len()
        && lambda.iter().all(|l| l.is_finite() && *l >= 0.0)
        && lambda.iter().any(|&l| l > 0.0)
        && conj
            .iter()
            .all(|c| c.coeffs.len() == m && c.errs.len() == m && c.constant.0 <= c.constant.1);
    if !usable {
        return f64::INFINITY;
    }
    // enclosures of the combined output coefficients A_j and constant C
    let mut a = vec![Interval::ZERO; m];
    let mut c = Interval::ZERO;
    for (&l, ci) in lambda.iter().zip(conj) {
        if l == 0.0 {
            continue;
        }
        for j in 0..m {
            let (v, e) = (ci.coeffs[j], ci.errs[j]);
            if !(v.is_finite() && e.is_finite() && e >= 0.0) {
                return f64::INFINITY;
            }
            if v == 0.0 && e == 0.0 {
                continue;
            }
            a[j] = a[j] + Interval::new(sub_down(v, e), add_up(v, e)).scale(l);
        }
        c = c + Interval::new(ci.constant.0, ci.constant.1).scale(l);
    }
    let last = &net.layers()[net.depth() - 1];
    let n = last.inputs();
    let mut coef = vec![Interval::ZERO; n];
    let mut cst = c;
    for j in 0..m {
        if a[j].is_zero() {
            continue;
        }
        for (i, w) in last.row_entries(j) {
            coef[i] = coef[i] + a[j].scale(w);
        }
        cst = cst + a[j].scale(last.bias()[j]);
        // A last layer enclosed with coefficient error: logit j is within σ_j of the stored
        // one (docs/method.md, eq. (75)).
        if let Some(&e) = prover.output_errors().get(j) {
            let w = mul_up(a[j].lo.abs().max(a[j].hi.abs()), e);
            cst = cst + Interval::new(-w, w);
        }
    }
    let ub = prover.back_substitute(Rows::new(n, coef, vec![cst]), net.depth() - 1, Side::Upper)[0];
    if ub.is_nan() { f64::INFINITY } else { ub }
}

/// Re-proves that on the box `[lo, hi]` every disjunct of `output` is refuted as `claims`
/// says (one claim per disjunct). Returns the re-proven upper bound per disjunct (each must
/// be `< 0`), or why the check could not run. The box is valid only if every bound is `< 0`.
pub fn reprove_box(
    net: &Network,
    lo: &[f64],
    hi: &[f64],
    output: &[Vec<OutputConstraint>],
    claims: &[Refutation],
) -> Result<Vec<f64>, String> {
    if claims.len() != output.len() {
        return Err(format!(
            "{} refutations for {} disjuncts",
            claims.len(),
            output.len()
        ));
    }
    let prover = Prover::new(net, lo, hi)?;
    Ok(output
        .iter()
        .zip(claims)
        .map(|(conj, claim)| match claim {
            Refutation::Constraint(i) => {
                if *i >= conj.len() {
                    return f64::INFINITY;
                }
                let mut lambda = vec![0.0; conj.len()];
                lambda[*i] = 1.0;
                combination_upper_bound(&prover, net, conj, &lambda)
            }
            Refutation::Multipliers(l) => combination_upper_bound(&prover, net, conj, l),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::Affine;

    fn constraint(coeffs: Vec<f64>, c: f64) -> OutputConstraint {
        let m = coeffs.len();
        OutputConstraint {
            coeffs,
            errs: vec![0.0; m],
            constant: (c, c),
            strict: false,
            line: 1,
        }
    }

    /// `h = relu(x), relu(−x)`; `y = (h_0, h_1)` on `x ∈ [−1, 1]`.
    fn net() -> Network {
        let l0 = Affine::new(0, 2, 1, vec![1.0, -1.0], vec![0.0, 0.0]).unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    #[test]
    fn constraints_and_combinations_are_reproven_or_rejected() {
        let net = net();
        let (lo, hi) = (vec![-1.0], vec![1.0]);
        // y_0 ≥ 2 is impossible (y_0 ≤ 1); y_0 ≥ 0.5 is reachable
        let out = vec![
            vec![constraint(vec![1.0, 0.0], -2.0)],
            vec![constraint(vec![1.0, 0.0], -0.5)],
        ];
        let ubs = reprove_box(
            &net,
            &lo,
            &hi,
            &out,
            &[Refutation::Constraint(0), Refutation::Constraint(0)],
        )
        .unwrap();
        assert!(ubs[0] < 0.0 && ubs[1] >= 0.0, "{ubs:?}");
        // wrong claims prove nothing
        let ubs = reprove_box(
            &net,
            &lo,
            &hi,
            &out,
            &[
                Refutation::Constraint(3),
                Refutation::Multipliers(vec![-1.0]),
            ],
        )
        .unwrap();
        assert!(ubs.iter().all(|u| u.is_infinite()));
        assert!(reprove_box(&net, &lo, &hi, &out, &[]).is_err());
        assert!(
            reprove_box(
                &net,
                &[0.0, 0.0],
                &[1.0, 1.0],
                &out,
                &[Refutation::Constraint(0), Refutation::Constraint(0)]
            )
            .is_err()
        );
    }

    #[test]
    fn the_enclosure_of_the_constant_is_respected() {
        let net = net();
        let mut c = constraint(vec![1.0, 0.0], -1.0);
        // y_0 − 1 ≥ 0 is reachable at x = 1 whatever the rounding
        let ub = reprove_box(
            &net,
            &[-1.0],
            &[1.0],
            &[vec![c.clone()]],
            &[Refutation::Constraint(0)],
        )
        .unwrap()[0];
        assert!(ub >= 0.0);
        c.constant = (-1.2, -1.1);
        let ub = reprove_box(
            &net,
            &[-1.0],
            &[1.0],
            &[vec![c]],
            &[Refutation::Constraint(0)],
        )
        .unwrap()[0];
        assert!(ub < 0.0);
    }
}
