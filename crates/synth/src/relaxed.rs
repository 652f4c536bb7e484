//! The hidden-layer checks of Algorithm 1 step 3 and the relaxed mode's count (Quadapter*):
//! which containment checks can fail somewhere in the box, and whether more than the allowed
//! number of them can fail at one common input (a MILP over the box). Guides only: the output
//! check of the last layer decides a certificate (docs/method.md, eqs. (34), (36), (37)).

use certquant_bounds::LayerBounds;
use certquant_bounds::arith::{linear_max, linear_min};
use certquant_milp::{Backend, Problem, Sense, SolveOptions, Status};

use crate::algorithm1::SynthError;
use crate::preimage::Preimage;

/// A hidden-layer check that can fail somewhere in the box: the linear function `g(x)`
/// must be `≥ 0` (it fails where `g(x) < 0`); `max` is its maximum over the box
/// (docs/method.md, eq. (34)).
#[derive(Debug, Clone)]
pub(crate) struct Check {
    coeffs: Vec<f64>,
    constant: f64,
    max: f64,
}

/// Closed-form containment test of Alg. 1 step 3: for every neuron `j`,
/// `f̂_j^≤(x) ≥ f_j^≤(x) − α_jχ` and `f̂_j^≥(x) ≤ f_j^≥(x) + β_jχ` for all `x` in the box.
/// A neuron whose whole template lies at or below 0 (`lower_checked` false) only has to stay
/// inactive, `f̂_j^≥(x) ≤ 0`, as in the authors' code: ReLU maps every such value to the
/// same 0 that the template's points give, so the next layer sees a point of `T_k(χ)`'s image.
/// Returns the checks that fail for some `x` (each as `g(x) ≥ 0`); docs/method.md, eqs. (29),
/// (34).
pub(crate) fn failing_checks(
    quant: &LayerBounds,
    float: &LayerBounds,
    pre: &Preimage,
    bl: &[f64],
    bh: &[f64],
) -> Vec<Check> {
    let mut fails = Vec::new();
    let mut push = |coeffs: Vec<f64>, constant: f64| {
        if linear_min(&coeffs, constant, bl, bh) < 0.0 {
            let max = linear_max(&coeffs, constant, bl, bh);
            fails.push(Check {
                coeffs,
                constant,
                max,
            });
        }
    };
    let diff = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x - y).collect() };
    for j in 0..quant.lower.rows() {
        if pre.lower_checked[j] {
            // g(x) = f̂^≤_j(x) − f^≤_j(x) + α_j χ ≥ 0
            push(
                diff(quant.lower.coeffs(j), float.lower.coeffs(j)),
                quant.lower.constant(j) - float.lower.constant(j) + pre.alpha[j] * pre.chi,
            );
        }
        if pre.lower_checked[j] {
            // g(x) = f^≥_j(x) + β_j χ − f̂^≥_j(x) ≥ 0
            push(
                diff(float.upper.coeffs(j), quant.upper.coeffs(j)),
                float.upper.constant(j) + pre.beta[j] * pre.chi - quant.upper.constant(j),
            );
        } else {
            // always inactive in the template: g(x) = −f̂^≥_j(x) ≥ 0
            push(
                quant.upper.coeffs(j).iter().map(|a| -a).collect(),
                -quant.upper.constant(j),
            );
        }
    }
    fails
}

/// Decides whether more than `limit` of `checks` can fail at one common input (relaxed mode,
/// Quadapter*), via `max Σ b_c` s.t. `x ∈ box`, `g_c(x) ≤ max_c·(1 − b_c)`, `Σ b_c ≥ limit+1`.
/// Returns a count `> limit` if so (the optimum, or on a time limit the solver's proven upper
/// bound, so the answer can only be too pessimistic), otherwise the largest count seen at a
/// box vertex (`≤ limit`; the exact maximum is not needed) (docs/method.md, eqs. (36), (37)).
pub(crate) fn max_simultaneous(
    checks: &[Check],
    limit: usize,
    lo: &[f64],
    hi: &[f64],
    backend: &dyn Backend,
    solve: &SolveOptions,
) -> Result<usize, SynthError> {
    // Cheap lower bound first: at the box vertex minimising each check, count how many checks
    // fail there; more than `limit` at one point settles the question without a solver.
    let mut witnessed = 0;
    for c in checks {
        let x: Vec<f64> = c
            .coeffs
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(a, (l, h))| if *a > 0.0 { *l } else { *h })
            .collect();
        let fails = checks
            .iter()
            .filter(|d| d.coeffs.iter().zip(&x).map(|(a, v)| a * v).sum::<f64>() + d.constant < 0.0)
            .count();
        witnessed = witnessed.max(fails);
        if witnessed > limit {
            return Ok(witnessed);
        }
    }
    let mut p = Problem::new();
    let x: Vec<_> = lo.iter().zip(hi).map(|(&l, &h)| p.add_var(l, h)).collect();
    let mut obj = Vec::new();
    for c in checks {
        let b = p.add_binary();
        obj.push((b, 1.0));
        let big = c.max.max(0.0) * (1.0 + 1e-6) + 1e-6;
        let terms = x
            .iter()
            .zip(&c.coeffs)
            .map(|(&v, &a)| (v, a))
            .chain([(b, big)]);
        p.add_row(terms, f64::NEG_INFINITY, big - c.constant);
    }
    // Only "more than `limit`?" matters: asking for at least `limit + 1` lets the solver stop
    // at infeasibility instead of proving the exact maximum.
    p.add_row(obj.clone(), (limit + 1) as f64, f64::INFINITY);
    p.set_objective(obj, Sense::Maximize);
    let s = backend.solve(&p, solve)?;
    Ok(match s.status {
        Status::Optimal => s.objective.unwrap_or(0.0).round().max(0.0) as usize,
        // on a time limit the proven upper bound is used: pessimistic, hence safe
        Status::TimeLimit => s
            .best_bound
            .map(|b| (b + 1e-6).floor().max(0.0) as usize)
            .unwrap_or(checks.len()),
        // no input makes more than `limit` checks fail (the exact count is not needed)
        Status::Infeasible => witnessed,
        _ => checks.len(),
    })
}

/// Solver options of the count MILP: the time limit, and no strong branching (measured on a
/// saved MP2 instance, 42 binaries over 784 inputs, proven infeasible: 27 s with CBC's
/// defaults, 6–9 s without strong branching, on the same loaded 2-core machine).
pub fn count_options(time_limit: f64) -> SolveOptions {
    SolveOptions {
        time_limit: Some(time_limit),
        no_strong_branching: true,
        ..SolveOptions::default()
    }
}

/// Default time limit of the relaxed-mode MILP (docs/method.md, eq. (37)).
pub const RELAXED_CHECK_SECONDS: f64 = 10.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preimage::ChiSource;
    use certquant_bounds::DeepPoly;
    use certquant_core::model::Affine;
    use certquant_core::model::Network;
    use certquant_core::spec::InputBox;
    use certquant_milp::cbc::Cbc;

    /// 2 inputs in `[0,1]²` → 2 hidden neurons: neuron 0 = x0 + x1 (active), neuron 1 =
    /// x0 − x1 − 2 (always ≤ −1, inactive) → 1 output.
    fn net(bias1: f64) -> Network {
        let l0 = Affine::new(0, 2, 2, vec![1.0, 1.0, 1.0, -1.0], vec![0.0, bias1]).unwrap();
        let l1 = Affine::new(1, 1, 2, vec![1.0, 1.0], vec![0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    fn unit_box() -> InputBox {
        InputBox::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap()
    }

    fn preimage(chi: f64, lower_checked: Vec<bool>) -> Preimage {
        Preimage {
            layer: 0,
            chi,
            alpha: vec![0.1, 0.1],
            beta: vec![0.1, 0.1],
            lower_checked,
            source: ChiSource::Given,
            milps: 0,
            pruned: 0,
            seconds: 0.0,
        }
    }

    fn fails(quant_bias1: f64, pre: &Preimage) -> usize {
        let bx = unit_box();
        let (f, q) = (net(-2.0), net(quant_bias1));
        let df = DeepPoly::run_upto(&f, &bx, 1).unwrap();
        let dq = DeepPoly::run_upto(&q, &bx, 1).unwrap();
        failing_checks(dq.layer(0), df.layer(0), pre, bx.lo(), bx.hi()).len()
    }

    #[test]
    fn an_inactive_neuron_only_has_to_stay_inactive() {
        // χ = 0.01: the template is the float bounds widened by 0.001. Moving the inactive
        // neuron's bias from −2 to −1.5 leaves it ≤ −0.5 < 0: its ReLU output is 0 either way.
        let inactive = preimage(0.01, vec![true, false]);
        assert_eq!(fails(-2.0, &inactive), 0);
        assert_eq!(fails(-1.5, &inactive), 0);
        // The same move fails when the neuron's upper side is a real template bound...
        let both = preimage(0.01, vec![true, true]);
        assert_eq!(fails(-2.0, &both), 0);
        assert_eq!(fails(-1.5, &both), 1);
        // ...and an inactive neuron that can turn active (bias −0.5: up to 0.5) fails.
        assert_eq!(fails(-0.5, &inactive), 1);
        // The slack βχ = 0.1·χ absorbs a move of the upper bound by 0.05 at χ = 1, not at 0.4.
        assert_eq!(fails(-1.95, &preimage(1.0, vec![true, true])), 0);
        assert_eq!(fails(-1.95, &preimage(0.4, vec![true, true])), 1);
    }

    /// Checks `g_c(x) = x0 − t_c ≥ 0` on `x0 ∈ [0, 1]` (with an idle second input): check c
    /// fails exactly where `x0 < t_c`, so at `x0 = 0` every check with `t_c > 0` fails. (The
    /// MILP also counts `g_c = 0` as failing, which is pessimistic; the tests avoid ties.)
    fn threshold_checks(ts: &[f64]) -> Vec<Check> {
        ts.iter()
            .map(|&t| Check {
                coeffs: vec![1.0, 0.0],
                constant: -t,
                max: (1.0 - t).max(0.0),
            })
            .collect()
    }

    #[test]
    fn simultaneous_failures_are_counted_at_one_input() {
        let (lo, hi) = (vec![0.0, 0.0], vec![1.0, 1.0]);
        let c = threshold_checks(&[0.2, 0.5, 0.9, -0.1]);
        // three fail together at x0 = 0: more than a limit of 2, found at a vertex
        assert_eq!(
            max_simultaneous(&c, 2, &lo, &hi, &Cbc, &count_options(10.0)).unwrap(),
            3
        );
        // not more than 3
        assert!(max_simultaneous(&c, 3, &lo, &hi, &Cbc, &count_options(10.0)).unwrap() <= 3);
        // Checks that fail on opposite sides never fail together: x0 < 0.4 or x0 > 0.6.
        let mut c2 = threshold_checks(&[0.4, 0.4]);
        c2.extend([
            Check {
                coeffs: vec![-1.0, 0.0],
                constant: 0.6,
                max: 0.6,
            },
            Check {
                coeffs: vec![-1.0, 0.0],
                constant: 0.6,
                max: 0.6,
            },
        ]);
        assert!(max_simultaneous(&c2, 2, &lo, &hi, &Cbc, &count_options(10.0)).unwrap() <= 2);
        assert_eq!(
            max_simultaneous(&c2, 1, &lo, &hi, &Cbc, &count_options(10.0)).unwrap(),
            2
        );
    }

    /// Two checks fail at every vertex only one at a time but together in the middle of the
    /// box, so the vertex shortcut cannot see it and the MILP must.
    #[test]
    fn the_milp_finds_failures_that_no_vertex_shows() {
        let (lo, hi) = (vec![0.0], vec![1.0]);
        // g1 = 0.3 − x ≥ 0 fails for x > 0.3 and g2 = x − 0.7 ≥ 0 fails for x < 0.7: both fail
        // on (0.3, 0.7)
        let c = vec![
            Check {
                coeffs: vec![-1.0],
                constant: 0.3,
                max: 0.3,
            },
            Check {
                coeffs: vec![1.0],
                constant: -0.7,
                max: 0.3,
            },
        ];
        // at x = 0 only g2 fails, at x = 1 only g1: the vertices see 1
        assert_eq!(
            max_simultaneous(&c, 1, &lo, &hi, &Cbc, &count_options(10.0)).unwrap(),
            2
        );
    }
}
