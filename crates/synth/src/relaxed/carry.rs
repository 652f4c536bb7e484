//! The authors' count model (docs/method.md, eqs. (70), (71); `--carry-rejections`): a rejected
//! hidden-layer candidate's failure constraints stay in their one Gurobi model, so a later
//! candidate is rejected only at an input that fails it and every earlier rejected one again,
//! each by its own count and by their margin `10^{-6}`. Guides only, like the plain count.

use std::time::{Duration, Instant};

use certquant_milp::{Backend, Problem, Sense, SolveOptions, Status};

use super::{Check, exact, minmax};
use crate::algorithm1::SynthError;

/// A rejected candidate as the authors' count model keeps it (docs/method.md, eq. (70)): its
/// failing checks, and how many of them failed together (`need`: the layer's limit + 1, or 1
/// in strict mode). Carried to every later candidate of the forward search with
/// `SynthOptions::carry_rejections`.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    checks: Vec<Check>,
    need: usize,
}

impl Rejection {
    /// The rejection of a candidate whose `checks` failed, more than `need − 1` at one input.
    pub(crate) fn new(checks: Vec<Check>, need: usize) -> Self {
        Self {
            checks: checks.iter().map(by_margin).collect(),
            need,
        }
    }
}

/// The authors' tolerance: in their count model a check fails only by at least `10^{-6}`
/// (and passes only by as much), so ties and near-ties do not count (docs/method.md, eq. (71)).
pub(crate) const AUTHORS_MARGIN: f64 = 1e-6;

/// `g + τ` for the check `g` (τ = [`AUTHORS_MARGIN`]): it fails (`≤ 0`) where `g ≤ −τ`.
fn by_margin(c: &Check) -> Check {
    Check {
        coeffs: c.coeffs.clone(),
        constant: c.constant + AUTHORS_MARGIN,
        max: c.max + AUTHORS_MARGIN,
    }
}

/// The carried count of eqs. (70), (71): is there one input of the box at which at least
/// `need` of `current` fail by the authors' margin *and* every carried rejection's own count
/// is reached again (by the same margin)? Returns the
/// number of `current`'s checks failing at a witness input (`≥ need`: reject), or `None` when
/// no input does it (accept). In order: the box vertices minimising each of `current`'s
/// checks; the exact count of `current` alone (its "no" is final, its witness is tried on
/// the carried ones); each carried rejection alone with `current`, the latest first; the
/// grouped exact search ([`exact::decide_groups`]); and only if these have not settled it
/// within 60% of the time limit, the grouped MILP, whose time limit answers `need` (reject:
/// pessimistic, as eq. (37)).
pub(crate) fn exceeds_with_carried(
    current: &[Check],
    need: usize,
    carried: &[Rejection],
    lo: &[f64],
    hi: &[f64],
    backend: &dyn Backend,
    solve: &SolveOptions,
) -> Result<Option<usize>, SynthError> {
    if current.len() < need {
        return Ok(None);
    }
    let current: Vec<Check> = current.iter().map(by_margin).collect();
    let current = current.as_slice();
    let mut all: Vec<&Check> = current.iter().collect();
    let mut group = vec![0; current.len()];
    let mut needs = vec![need];
    for (g, r) in carried.iter().enumerate() {
        all.extend(&r.checks);
        group.extend(std::iter::repeat_n(g + 1, r.checks.len()));
        needs.push(r.need);
    }
    let view = minmax::Checks {
        coeffs: all.iter().map(|c| c.coeffs.as_slice()).collect(),
        constants: all.iter().map(|c| c.constant).collect(),
        lo,
        hi,
    };
    let witness = |x: &[f64]| -> Option<usize> {
        let counts = exact::group_counts(&view, &group, needs.len(), x);
        counts
            .iter()
            .zip(&needs)
            .all(|(c, k)| c >= k)
            .then_some(counts[0])
    };
    for c in current {
        let x: Vec<f64> = c
            .coeffs
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(a, (l, h))| if *a > 0.0 { *l } else { *h })
            .collect();
        if let Some(count) = witness(&x) {
            return Ok(Some(count));
        }
    }
    let started = Instant::now();
    let budget = solve.time_limit.unwrap_or(f64::INFINITY).clamp(0.0, 1e9);
    let deadline = started + Duration::from_secs_f64(0.6 * budget);
    // The candidate alone first (the plain exact count on its own checks, eq. (37c)): "no"
    // there is "no" for the whole question, and its witness usually fails the carried
    // candidates too (they are coarser and fail almost everywhere).
    let alone = minmax::Checks {
        coeffs: view.coeffs[..current.len()].to_vec(),
        constants: view.constants[..current.len()].to_vec(),
        lo,
        hi,
    };
    match exact::decide(&alone, need, deadline).0 {
        exact::Decision::Below => return Ok(None),
        exact::Decision::AtLeast { x, .. } => {
            if let Some(count) = witness(&x) {
                return Ok(Some(count));
            }
        }
        exact::Decision::Undecided => {}
    }
    // The candidate with one carried rejection at a time, the latest first (usually the
    // tightest): if it cannot fail together with one of them, it cannot with all; a witness
    // of a pair may already be one of the whole.
    if carried.len() > 1 {
        let offsets: Vec<usize> = std::iter::once(current.len())
            .chain(carried.iter().scan(current.len(), |o, r| {
                *o += r.checks.len();
                Some(*o)
            }))
            .collect();
        for (g, r) in carried.iter().enumerate().rev() {
            let rows: Vec<usize> = (0..current.len())
                .chain(offsets[g]..offsets[g] + r.checks.len())
                .collect();
            let pair = minmax::Checks {
                coeffs: rows.iter().map(|&i| view.coeffs[i]).collect(),
                constants: rows.iter().map(|&i| view.constants[i]).collect(),
                lo,
                hi,
            };
            let pair_group: Vec<usize> = rows.iter().map(|&i| usize::from(group[i] != 0)).collect();
            match exact::decide_groups(&pair, &pair_group, &[need, r.need], deadline).0 {
                exact::Decision::Below => {
                    tracing::debug!(
                        carried = carried.len(),
                        with = g,
                        seconds = started.elapsed().as_secs_f64(),
                        "relaxed count with carried rejections: excluded by one of them"
                    );
                    return Ok(None);
                }
                exact::Decision::AtLeast { x, .. } => {
                    if let Some(count) = witness(&x) {
                        return Ok(Some(count));
                    }
                }
                exact::Decision::Undecided => break,
            }
        }
    }
    let (decision, stats) = exact::decide_groups(&view, &group, &needs, deadline);
    tracing::debug!(
        checks = all.len(),
        ?needs,
        answer = match &decision {
            exact::Decision::AtLeast { .. } => "yes",
            exact::Decision::Below => "no",
            exact::Decision::Undecided => "undecided",
        },
        ?stats,
        seconds = started.elapsed().as_secs_f64(),
        "relaxed count with carried rejections: exact decision"
    );
    match decision {
        exact::Decision::AtLeast { x, .. } => {
            return Ok(Some(witness(&x).unwrap_or(need).max(need)));
        }
        exact::Decision::Below => return Ok(None),
        exact::Decision::Undecided => {}
    }
    let solve = &SolveOptions {
        time_limit: solve
            .time_limit
            .map(|t| (t - started.elapsed().as_secs_f64()).max(0.01)),
        ..solve.clone()
    };
    let answer = milp_groups(&all, &group, &needs, lo, hi, backend, solve)?;
    tracing::debug!(
        ?answer,
        seconds = started.elapsed().as_secs_f64(),
        "relaxed count with carried rejections: MILP"
    );
    Ok(answer)
}

/// The grouped count MILP of eq. (70): `x ∈ box`, `g_c(x) ≤ M_c·(1 − b_c)` as in eq. (37),
/// `Σ_{c ∈ group g} b_c ≥ need_g` for every group. Feasible (or undecided on the time limit):
/// `Some(need_0)`, pessimistic; infeasible: `None`.
fn milp_groups(
    checks: &[&Check],
    group: &[usize],
    needs: &[usize],
    lo: &[f64],
    hi: &[f64],
    backend: &dyn Backend,
    solve: &SolveOptions,
) -> Result<Option<usize>, SynthError> {
    let mut p = Problem::new();
    let x: Vec<_> = lo.iter().zip(hi).map(|(&l, &h)| p.add_var(l, h)).collect();
    let mut sums = vec![Vec::new(); needs.len()];
    for (c, &g) in checks.iter().zip(group) {
        let b = p.add_binary();
        sums[g].push((b, 1.0));
        let big = c.max.max(0.0) * (1.0 + 1e-6) + 1e-6;
        let terms = x
            .iter()
            .zip(&c.coeffs)
            .map(|(&v, &a)| (v, a))
            .chain([(b, big)]);
        p.add_row(terms, f64::NEG_INFINITY, big - c.constant);
    }
    for (terms, &k) in sums.iter().zip(needs) {
        p.add_row(terms.clone(), k as f64, f64::INFINITY);
    }
    p.set_objective(sums[0].clone(), Sense::Maximize);
    let s = backend.solve(&p, solve)?;
    Ok(match s.status {
        Status::Infeasible => None,
        Status::Optimal => Some(s.objective.unwrap_or(0.0).round().max(needs[0] as f64) as usize),
        _ => Some(needs[0]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relaxed::tests::{random_checks, threshold_checks, view};
    use crate::relaxed::{count_options, max_simultaneous};
    use certquant_bounds::arith::linear_max;
    use certquant_milp::cbc::Cbc;
    /// The grouped decision of eq. (70) agrees with the grouped MILP on random instances with
    /// two or three groups and every combination of small quotas, "yes" and "no" alike.
    #[test]
    fn the_grouped_decision_agrees_with_the_milp() {
        let (mut yes, mut no) = (0, 0);
        for seed in 0..30u64 {
            let groups = 2 + (seed % 2) as usize;
            let n = 2 + (seed % 4) as usize;
            let (mut checks, lo, hi) = random_checks(500 + seed, 5 * groups, n);
            // one check failing on the whole box, so that quotas are lowered as well
            let mut c = checks[1].clone();
            c.constant -= c.max + 0.1;
            c.max = linear_max(&c.coeffs, c.constant, &lo, &hi);
            checks.push(c);
            let group: Vec<usize> = (0..checks.len()).map(|i| i % groups).collect();
            let v = view(&checks, &lo, &hi);
            let refs: Vec<&Check> = checks.iter().collect();
            for q in 0..3usize.pow(groups as u32) {
                let need: Vec<usize> = (0..groups)
                    .map(|g| 2 + (q / 3usize.pow(g as u32)) % 3)
                    .collect();
                let far = Instant::now() + Duration::from_secs(30);
                let (d, _) = exact::decide_groups(&v, &group, &need, far);
                let milp = milp_groups(&refs, &group, &need, &lo, &hi, &Cbc, &count_options(30.0))
                    .unwrap();
                match d {
                    exact::Decision::AtLeast { x, .. } => {
                        let counts = exact::group_counts(&v, &group, groups, &x);
                        assert!(
                            counts.iter().zip(&need).all(|(c, k)| c >= k),
                            "seed {seed} {need:?}"
                        );
                        assert!(
                            milp.is_some(),
                            "seed {seed} {need:?}: witness, MILP infeasible"
                        );
                        yes += 1;
                    }
                    exact::Decision::Below => {
                        assert!(
                            milp.is_none(),
                            "seed {seed} {need:?}: exact says no, MILP feasible"
                        );
                        no += 1;
                    }
                    exact::Decision::Undecided => panic!("seed {seed} {need:?}: undecided"),
                }
            }
        }
        assert!(yes > 50 && no > 50, "{yes} yes, {no} no");
    }

    /// Eq. (70) on a line: the current candidate alone fails 2 checks together (at x0 < 0.3),
    /// but a carried rejection whose checks fail only at x0 > 0.6 rules that input out, so the
    /// candidate passes; a carried rejection failing at x0 < 0.5 keeps it rejected.
    #[test]
    fn carried_rejections_must_fail_at_the_same_input() {
        let (lo, hi) = (vec![0.0, 0.0], vec![1.0, 1.0]);
        let current = threshold_checks(&[0.3, 0.3]);
        let opts = count_options(10.0);
        assert_eq!(
            max_simultaneous(&current, 1, &lo, &hi, &Cbc, &opts).unwrap(),
            2
        );
        let right = Check {
            coeffs: vec![-1.0, 0.0],
            constant: 0.6,
            max: 0.6,
        };
        let far = vec![Rejection::new(vec![right.clone(), right], 2)];
        assert_eq!(
            exceeds_with_carried(&current, 2, &far, &lo, &hi, &Cbc, &opts).unwrap(),
            None
        );
        let near = vec![Rejection::new(threshold_checks(&[0.5]), 1)];
        assert_eq!(
            exceeds_with_carried(&current, 2, &near, &lo, &hi, &Cbc, &opts).unwrap(),
            Some(2)
        );
        // both carried: the far one decides
        let both = [near, far].concat();
        assert_eq!(
            exceeds_with_carried(&current, 2, &both, &lo, &hi, &Cbc, &opts).unwrap(),
            None
        );
        // no carried rejection: the candidate's own count decides
        assert_eq!(
            exceeds_with_carried(&current, 2, &[], &lo, &hi, &Cbc, &opts).unwrap(),
            Some(2)
        );
        assert_eq!(
            exceeds_with_carried(&current, 3, &[], &lo, &hi, &Cbc, &opts).unwrap(),
            None
        );
    }
}
