//! Refuting a general linear output condition (VNN-LIB queries, `certquant_core::vnnlib`).
//!
//! A VNN-LIB query describes a counterexample; on one input box its output part is a
//! disjunction of conjunctions of constraints `a_i·y + c_i ≥ 0`. The property holds on the box
//! iff every disjunct (conjunction) is **refuted**: no input of the box satisfies all of its
//! constraints. A conjunction is refuted when
//! * DeepPoly proves one constraint false everywhere: a sound upper bound of `a_i·y + c_i` over
//!   the box is `< 0` (docs/method.md, eq. (49)); or
//! * a non-negative combination is: `ub(Σ_i λ_i (a_i·y + c_i)) < 0` for some `λ ≥ 0`
//!   (docs/method.md, eq. (50)). Then at every input some constraint with `λ_i > 0` is negative.
//!   The multipliers are proposed by a [`ProposeMultipliers`] (an LP in the synthesis crate:
//!   this crate links no solver) and are *proven*, not trusted, exactly as in [`crate::joint`].
//!
//! # Soundness
//! The exact constraint coefficients and constants are rationals; the query stores enclosures
//! (`|a_ij − coeffs[j]| ≤ errs[j]`, `c_i ≤ constant.1`). The upper bound is made valid for every
//! value in the enclosure: the constant's upper end is used, and `Σ_j errs[j]·max|y_j|` (with
//! `max|y_j|` from DeepPoly's sound concrete output bounds) is added. The row over the last
//! hidden layer, `Σ_j a_j W_j·z + Σ_j a_j b_j + c`, is formed in f64; its rounding error,
//! `γ_{m+1}(Σ_t Σ_j |a_j W_jt|·max|z_t| + Σ_j |a_j b_j| + |c|)`, enters back-substitution as
//! the expression's initial error (as (16)/(39)), and the result is concretised with outward
//! rounding ([`crate::arith::linear_range`]). A combination's coefficients `Σ_i λ_i a_ij` carry
//! their own rounding error `γ_k Σ_i λ_i |a_ij|` into `errs`. SOUNDNESS.md, VNN-LIB rows.

use certquant_core::vnnlib::OutputConstraint;

use crate::arith::{gamma, inflate, linear_range};
use crate::deeppoly::{BoundsError, DeepPoly, LinearBounds, Side};
use crate::joint::ProposeMultipliers;

/// How one conjunction (disjunct of the counterexample condition) fared on one box.
#[derive(Debug, Clone, PartialEq)]
pub struct DisjunctProof {
    /// Whether no input of the box satisfies every constraint of the conjunction.
    pub refuted: bool,
    /// The best proven upper bound: of the constraint that refutes it, or of the combination
    /// (`< 0` iff refuted; `+∞` for an empty conjunction).
    pub upper: f64,
    /// The constraint proven negative on its own.
    pub constraint: Option<usize>,
    /// Multipliers (one per constraint) when the proof needed a combination.
    pub multipliers: Option<Vec<f64>>,
    /// Upper linear forms over the input, `U_i(x) ≥ a_i·y(x) + c_i`, one row per constraint
    /// (what the splitting heuristic reads its input influence from).
    pub forms: LinearBounds,
}

/// Upper bounds of `|y_j|` (outputs) and `|z_t|` (inputs of the last layer) over the box.
fn magnitudes(dp: &DeepPoly<'_>) -> Option<(Vec<f64>, Vec<f64>)> {
    let net = dp.network();
    let d = net.depth();
    if dp.computed_layers() < d {
        return None;
    }
    let out = dp.layer(d - 1);
    let yabs: Vec<f64> = out
        .lo
        .iter()
        .zip(&out.hi)
        .map(|(l, h)| l.abs().max(h.abs()))
        .collect();
    let zabs: Vec<f64> = if d == 1 {
        let bx = dp.input();
        bx.lo()
            .iter()
            .zip(bx.hi())
            .map(|(l, h)| l.abs().max(h.abs()))
            .collect()
    } else {
        // z = max(y, 0) with y ≤ hi
        dp.layer(d - 2).hi.iter().map(|h| h.max(0.0)).collect()
    };
    let finite = yabs.iter().chain(&zabs).all(|v| v.is_finite());
    finite.then_some((yabs, zabs))
}

/// One output form `ã·y + c` with `|ã_j − a_j| ≤ e_j` and `c ≤ c_hi` (any such `ã`, `c`).
struct OutputForm<'c> {
    a: &'c [f64],
    e: &'c [f64],
    c_hi: f64,
}

/// Upper linear forms over the input (one row per output form) bounding every `ã·y + c` of
/// each form over the box. `None` when a bound is not finite (nothing can be proven).
fn upper_forms(dp: &DeepPoly<'_>, forms: &[OutputForm<'_>]) -> Option<LinearBounds> {
    let net = dp.network();
    let d = net.depth();
    let (yabs, zabs) = magnitudes(dp)?;
    let last = &net.layers()[d - 1];
    let (n, m) = (last.inputs(), last.outputs());
    let mut rows = vec![0.0; forms.len() * n];
    let mut consts = Vec::with_capacity(forms.len());
    let mut errs = Vec::with_capacity(forms.len());
    // A last layer lowered with coefficient error: output `j` is off by at most `σ_j`
    // (docs/method.md, eq. (75)), so `ã·y` by at most `Σ_j |a_j|·σ_j`.
    let sigma = last.coef_error().map(|e| e.slack(&zabs));
    for (r, f) in forms.iter().enumerate() {
        if f.a.len() != m || f.e.len() != m {
            return None;
        }
        let row = &mut rows[r * n..(r + 1) * n];
        let mut mag = vec![0.0; n];
        let (mut cst, mut cmag) = (f.c_hi, f.c_hi.abs());
        let mut coef_err = 0.0;
        for j in 0..m {
            let (a, e) = (f.a[j], f.e[j]);
            if !(a.is_finite() && e.is_finite() && e >= 0.0) {
                return None;
            }
            coef_err += e * yabs[j];
            if let Some(s) = &sigma {
                coef_err += a.abs() * s[j];
            }
            if a == 0.0 {
                continue;
            }
            for ((rt, mt), &w) in row
                .iter_mut()
                .zip(mag.iter_mut())
                .zip(last.row_dense(j).iter())
            {
                *rt += a * w;
                *mt += (a * w).abs();
            }
            let ab = a * last.bias()[j];
            cst += ab;
            cmag += ab.abs();
        }
        let e_rows: f64 = mag.iter().zip(&zabs).map(|(m, z)| m * z).sum();
        // sums of m + 1 products; the magnitudes themselves were computed in floats
        let err = inflate(gamma(m + 1) * (e_rows * (1.0 + 1e-6) + cmag) * 1.01)
            + inflate(coef_err * (1.0 + 1e-6));
        if !(err.is_finite() && cst.is_finite()) {
            return None;
        }
        consts.push(cst);
        errs.push(inflate(err));
    }
    let u = dp.back_substitute(d - 1, rows, consts, &errs, Side::Upper);
    Some(u)
}

/// Sound upper bound over the box of each row of `forms`.
fn concretize_upper(dp: &DeepPoly<'_>, forms: &LinearBounds) -> Vec<f64> {
    let (lo, hi) = (dp.input().lo(), dp.input().hi());
    (0..forms.rows())
        .map(|r| {
            let u = linear_range(forms.coeffs(r), forms.constant(r), lo, hi).1;
            if u.is_nan() { f64::INFINITY } else { u }
        })
        .collect()
}

/// Sound upper bound over the box of `dp` (all layers computed) of `a·y + c`, valid for every
/// exact constraint the stored enclosure stands for (docs/method.md, eq. (49)).
pub fn constraint_upper_bound(dp: &DeepPoly<'_>, c: &OutputConstraint) -> f64 {
    let f = OutputForm {
        a: &c.coeffs,
        e: &c.errs,
        c_hi: c.constant.1,
    };
    match upper_forms(dp, &[f]) {
        Some(u) => concretize_upper(dp, &u)[0],
        None => f64::INFINITY,
    }
}

/// Sound upper bound over the box of `Σ_i λ_i (a_i·y + c_i)` (docs/method.md, eq. (50)).
/// `+∞` unless `λ` has one finite entry `≥ 0` per constraint and some entry is positive.
pub fn combination_upper_bound(
    dp: &DeepPoly<'_>,
    conj: &[OutputConstraint],
    lambda: &[f64],
) -> f64 {
    let usable = !conj.is_empty()
        && lambda.len() == conj.len()
        && lambda.iter().all(|l| l.is_finite() && *l >= 0.0)
        && lambda.iter().any(|&l| l > 0.0);
    if !usable {
        return f64::INFINITY;
    }
    let m = conj[0].coeffs.len();
    let k = conj.len();
    let mut a = vec![0.0; m];
    let mut amag = vec![0.0; m];
    let mut e = vec![0.0; m];
    let (mut c, mut cmag) = (0.0, 0.0);
    for (l, ci) in lambda.iter().zip(conj) {
        if ci.coeffs.len() != m || ci.errs.len() != m {
            return f64::INFINITY;
        }
        for j in 0..m {
            a[j] += l * ci.coeffs[j];
            amag[j] += (l * ci.coeffs[j]).abs();
            e[j] += l * ci.errs[j];
        }
        c += l * ci.constant.1;
        cmag += (l * ci.constant.1).abs();
    }
    // |fl(Σ_i λ_i a_ij) − Σ_i λ_i a_ij| ≤ γ_k Σ_i |λ_i a_ij|; the enclosures scale by λ_i ≥ 0
    let g = gamma(k) * 1.01;
    let e: Vec<f64> = e
        .iter()
        .zip(&amag)
        .map(|(ej, mj)| inflate(ej * (1.0 + 1e-6) + g * mj * (1.0 + 1e-6)))
        .collect();
    let c_hi = c + inflate(g * cmag * (1.0 + 1e-6));
    let c_hi = c_hi.next_up();
    let f = OutputForm { a: &a, e: &e, c_hi };
    match upper_forms(dp, &[f]) {
        Some(u) => concretize_upper(dp, &u)[0],
        None => f64::INFINITY,
    }
}

/// Tries to refute one conjunction on the box of `dp` (all layers computed): first each
/// constraint alone, then the multipliers of `proposer`, proven soundly
/// (docs/method.md, eqs. (49), (50)).
pub fn refute_conjunction(
    dp: &DeepPoly<'_>,
    conj: &[OutputConstraint],
    proposer: &dyn ProposeMultipliers,
) -> Result<DisjunctProof, BoundsError> {
    let net = dp.network();
    let dim = net.input_dim();
    let empty = |upper| DisjunctProof {
        refuted: false,
        upper,
        constraint: None,
        multipliers: None,
        forms: LinearBounds::new(dim, Vec::new(), Vec::new()),
    };
    if conj.is_empty() {
        return Ok(empty(f64::INFINITY));
    }
    if let Some(c) = conj.iter().find(|c| c.coeffs.len() != net.output_dim()) {
        return Err(BoundsError::Class {
            class: c.coeffs.len(),
            classes: net.output_dim(),
        });
    }
    let fs: Vec<OutputForm<'_>> = conj
        .iter()
        .map(|c| OutputForm {
            a: &c.coeffs,
            e: &c.errs,
            c_hi: c.constant.1,
        })
        .collect();
    let Some(forms) = upper_forms(dp, &fs) else {
        return Ok(empty(f64::INFINITY));
    };
    let ubs = concretize_upper(dp, &forms);
    let (best, ub) = ubs
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f64::INFINITY),
            |acc, (i, u)| if u < acc.1 { (i, u) } else { acc },
        );
    if ub < 0.0 {
        return Ok(DisjunctProof {
            refuted: true,
            upper: ub,
            constraint: Some(best),
            multipliers: None,
            forms,
        });
    }
    let mut proof = DisjunctProof {
        refuted: false,
        upper: ub,
        constraint: None,
        multipliers: None,
        forms,
    };
    if conj.len() < 2 {
        return Ok(proof);
    }
    // The proposer solves max_λ min_x Σ λ_i L_i(x) for lower forms with a zero target row:
    // L_i = −U_i ≤ −(a_i·y + c_i), target row k.
    let k = conj.len();
    let mut coeffs = Vec::with_capacity((k + 1) * dim);
    let mut consts = Vec::with_capacity(k + 1);
    for i in 0..k {
        coeffs.extend(proof.forms.coeffs(i).iter().map(|v| -v));
        consts.push(-proof.forms.constant(i));
    }
    coeffs.extend(std::iter::repeat_n(0.0, dim));
    consts.push(0.0);
    let lower = LinearBounds::new(dim, coeffs, consts);
    let (lo, hi) = (dp.input().lo(), dp.input().hi());
    let Some(lambda) = proposer.propose(&lower, lo, hi, k) else {
        return Ok(proof);
    };
    if lambda.len() != k + 1 {
        return Ok(proof);
    }
    let lambda = lambda[..k].to_vec();
    let u = combination_upper_bound(dp, conj, &lambda);
    if u < 0.0 {
        proof.refuted = true;
        proof.upper = u;
        proof.multipliers = Some(lambda);
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::{Affine, Network};
    use certquant_core::spec::InputBox;

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

    /// `y = (x, −x)` on `x ∈ [−1, 1]`.
    fn identity_net() -> Network {
        let l = Affine::new(0, 2, 1, vec![1.0, -1.0], vec![0.0, 0.0]).unwrap();
        Network::new(vec![l]).unwrap()
    }

    #[test]
    fn a_single_constraint_is_refuted_only_when_false_everywhere() {
        let net = identity_net();
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let none = |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| None;
        // y_0 ≥ 1.5 is impossible; y_0 ≥ 1 is reachable at x = 1 (a tie is a counterexample)
        let p = refute_conjunction(&dp, &[constraint(vec![1.0, 0.0], -1.5)], &none).unwrap();
        assert!(
            p.refuted && p.constraint == Some(0) && p.upper < 0.0,
            "{p:?}"
        );
        let p = refute_conjunction(&dp, &[constraint(vec![1.0, 0.0], -1.0)], &none).unwrap();
        assert!(!p.refuted, "{p:?}");
        // the empty conjunction is satisfied by every input
        assert!(!refute_conjunction(&dp, &[], &none).unwrap().refuted);
    }

    #[test]
    fn coefficient_and_constant_enclosures_are_respected() {
        let net = identity_net();
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        // y_0 − 1 ≥ 0 with the constant only known to lie in [−1, −0.9]: reachable
        let mut c = constraint(vec![1.0, 0.0], -1.0);
        c.constant = (-1.1, -0.9);
        assert!(constraint_upper_bound(&dp, &c) >= 0.0);
        c.constant = (-1.1, -1.01);
        assert!(constraint_upper_bound(&dp, &c) < 0.0);
        // a coefficient known only within ±0.05 of 1: (1 ± 0.05)·y_0 − 1.02 reaches ≥ 0
        c.errs = vec![0.05, 0.0];
        c.constant = (-1.02, -1.02);
        assert!(constraint_upper_bound(&dp, &c) >= 0.0);
    }

    #[test]
    fn multipliers_refute_what_no_single_constraint_does() {
        // y_0 ≥ 0.1 and y_1 ≥ 0.1, i.e. x ≥ 0.1 and −x ≥ 0.1: each alone is reachable
        let net = identity_net();
        let bx = InputBox::new(vec![-1.0], vec![1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let conj = [
            constraint(vec![1.0, 0.0], -0.1),
            constraint(vec![0.0, 1.0], -0.1),
        ];
        let none = |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| None;
        assert!(!refute_conjunction(&dp, &conj, &none).unwrap().refuted);
        let half = |f: &LinearBounds, _: &[f64], _: &[f64], t: usize| {
            assert_eq!((f.rows(), t), (3, 2));
            Some(vec![0.5, 0.5, 0.0])
        };
        let p = refute_conjunction(&dp, &conj, &half).unwrap();
        assert!(p.refuted && p.multipliers == Some(vec![0.5, 0.5]), "{p:?}");
        // bad proposals prove nothing
        assert!(combination_upper_bound(&dp, &conj, &[1.0, 0.0]) >= 0.0);
        assert!(combination_upper_bound(&dp, &conj, &[0.5, -0.5]).is_infinite());
        assert!(combination_upper_bound(&dp, &conj, &[0.0, 0.0]).is_infinite());
        assert!(combination_upper_bound(&dp, &conj, &[f64::NAN, 1.0]).is_infinite());
        // with −0.0 constants the two regions touch at x = 0: nothing may be refuted
        let touching = [
            constraint(vec![1.0, 0.0], 0.0),
            constraint(vec![0.0, 1.0], 0.0),
        ];
        assert!(combination_upper_bound(&dp, &touching, &[0.5, 0.5]) >= 0.0);
    }

    #[test]
    fn upper_bounds_contain_sampled_values_on_random_nets() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(49);
        for trial in 0..20 {
            let sizes = [3, 6, 5, 4];
            let layers = sizes
                .windows(2)
                .enumerate()
                .map(|(i, s)| {
                    let w = (0..s[0] * s[1])
                        .map(|_| rng.random_range(-1.0..1.0))
                        .collect();
                    let b = (0..s[1]).map(|_| rng.random_range(-0.3..0.3)).collect();
                    Affine::new(i, s[1], s[0], w, b).unwrap()
                })
                .collect();
            let net = Network::new(layers).unwrap();
            let c: Vec<f64> = (0..3).map(|_| rng.random::<f64>()).collect();
            let bx = InputBox::linf_ball(&c, [0.01, 0.1, 0.3][trial % 3]).unwrap();
            let dp = DeepPoly::run(&net, &bx).unwrap();
            let conj: Vec<OutputConstraint> = (0..3)
                .map(|_| {
                    constraint(
                        (0..4).map(|_| rng.random_range(-2.0..2.0)).collect(),
                        rng.random_range(-1.0..1.0),
                    )
                })
                .collect();
            let lambda = [0.2, 0.3, 0.5];
            let ubs: Vec<f64> = conj
                .iter()
                .map(|c| constraint_upper_bound(&dp, c))
                .collect();
            let ucomb = combination_upper_bound(&dp, &conj, &lambda);
            for _ in 0..200 {
                let x: Vec<f64> = bx
                    .lo()
                    .iter()
                    .zip(bx.hi())
                    .map(|(l, h)| l + (h - l) * rng.random::<f64>())
                    .collect();
                let y = net.forward(&x);
                let vals: Vec<f64> = conj
                    .iter()
                    .map(|c| {
                        c.coeffs.iter().zip(&y).map(|(a, v)| a * v).sum::<f64>() + c.constant.1
                    })
                    .collect();
                for (v, u) in vals.iter().zip(&ubs) {
                    assert!(*v <= *u + 1e-12, "{v} > {u}");
                }
                let comb: f64 = vals.iter().zip(lambda).map(|(v, l)| v * l).sum();
                assert!(comb <= ucomb + 1e-12);
            }
        }
    }
}
