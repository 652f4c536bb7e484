//! The fast engine's MILP for one escape condition, reduced by the signs of the condition's
//! coefficients (docs/method.md, eq. (83)).
//!
//! The base model ([`super::encoding`]) encodes every neuron of layer `k` exactly: `y_j` between
//! both template sides, `z_j = ReLU(y_j)` with a binary. One escape condition `e` (all its rows
//! `wz·z + wx·x ≥ rhs`) needs much less. Let `s_j` be the signs of neuron `j`'s coefficients
//! over the rows of `e`:
//! * **up** (all `≥ 0`, one `> 0`): raising `z_j` never hurts `e`, so only `z_j`'s largest value
//!   at `(x, χ)` matters, `max(f_j^≥(x) + β_j χ, 0)`. The model keeps `0 ≤ z_j ≤ that`: one
//!   template row, and a binary only when the upper side changes sign over the part's range,
//!   with big-M from the upper side alone: `L_j = min_B f_j^≥ + β_j·lb`, `U_j = max_B f_j^≥ + β_j·h`;
//!   `z_j ≤ f_j^≥(x) + β_j χ − L_j (1 − δ_j)`, `z_j ≤ U_j δ_j`. `U_j ≤ 0`: `z_j = 0`, dropped.
//! * **down** (all `≤ 0`, one `< 0`): lowering `z_j` never hurts, so only its smallest value
//!   `max(f_j^≤(x) − α_j χ, 0)` matters: `z_j ≥ 0`, `z_j ≥ f_j^≤(x) − α_j χ`, a linear program's
//!   rows, no binary; dropped when `max_B f_j^≤ − α_j·lb ≤ 0`.
//! * **zero** (no non-zero coefficient): the neuron does not appear.
//! * **mixed** (rows of a multi-row condition disagree): the base model's exact encoding.
//!
//! **Same optimum.** Every point of the base model with `e` imposed is a point of this one
//! (its `z_j = ReLU(y_j)` lies in the kept range). Conversely, from a point of this one, set
//! every up neuron's `y_j` to its upper template side and every down neuron's to its lower
//! side: `ReLU(y_j)` is `≥ z_j` (up) or `≤ z_j` (down), so every row of `e` still holds at the
//! same `(x, χ)`, which is a point of the base model. Both minimise `χ` over the same set of
//! `(x, χ)`; the solver's tolerances are covered by the margin of eq. (28) as before.

use certquant_bounds::arith::{linear_max, linear_min};
use certquant_milp::{Problem, Sense, Var};

use super::encoding::{Escape, EscapeRow};
use super::template::LayerCtx;

/// How neuron `j` enters one escape condition (the signs of its coefficients over the rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    /// No non-zero coefficient: the neuron is left out.
    Zero,
    /// Every coefficient `≥ 0`: only the largest `z_j` matters.
    Up,
    /// Every coefficient `≤ 0`: only the smallest `z_j` matters.
    Down,
    /// Coefficients of both signs: the exact encoding.
    Mixed,
}

/// The directions of the neurons condition `e`'s rows touch, by increasing index (every
/// other neuron is [`Dir::Zero`]): proportional to the rows' entries, not to the layer's
/// width (docs/method.md, eq. (85)).
pub(super) fn touched_directions(e: &Escape) -> Vec<(usize, Dir)> {
    let mut all: Vec<(usize, f64)> = e.rows.iter().flat_map(|r| r.wz.iter().copied()).collect();
    all.sort_by_key(|&(j, _)| j);
    let mut d: Vec<(usize, Dir)> = Vec::new();
    for (j, c) in all {
        if d.last().map(|&(i, _)| i) != Some(j) {
            d.push((j, Dir::Zero));
        }
        let s = if c > 0.0 {
            Dir::Up
        } else if c < 0.0 {
            Dir::Down
        } else {
            continue;
        };
        if let Some((_, dj)) = d.last_mut() {
            *dj = match (*dj, s) {
                (Dir::Zero, s) => s,
                (a, b) if a == b => a,
                _ => Dir::Mixed,
            };
        }
    }
    d
}

/// The directions of every neuron of a layer of `n` neurons for condition `e` (dense form of
/// [`touched_directions`]).
#[cfg(test)]
pub(super) fn directions(n: usize, e: &Escape) -> Vec<Dir> {
    let mut d = vec![Dir::Zero; n];
    for (j, dj) in touched_directions(e) {
        d[j] = dj;
    }
    d
}

/// One escape condition's MILP on `χ ∈ [lb, h]` (eq. (83)).
pub(super) struct PartModel {
    /// The MILP (`min χ`).
    pub(super) p: Problem,
    /// Number of phase binaries (for logs and tests).
    pub(super) binaries: usize,
}

impl LayerCtx<'_> {
    /// Builds condition `e`'s reduced MILP for `χ ∈ [lb, h]` (eq. (83)), `e`'s rows imposed.
    pub(super) fn part_model(&self, e: &Escape, lb: f64, h: f64) -> PartModel {
        let lbnd = self.dp.layer(self.k);
        let bx = self.dp.input();
        let (bl, bh) = (bx.lo(), bx.hi());
        let mut p = Problem::new();
        let x: Vec<Var> = bl.iter().zip(bh).map(|(&l, &u)| p.add_var(l, u)).collect();
        let chi = p.add_var(lb, h);
        // only the neurons the rows touch, by increasing index (eq. (85))
        let dirs = touched_directions(e);
        let mut z: Vec<Option<Var>> = vec![None; dirs.len()];
        let mut binaries = 0;
        // f^≥(x) + βχ − v (upper = true) or f^≤(x) − αχ − v as row terms, constant apart
        let side_terms = |upper: bool, j: usize, v: Var, sign: f64| {
            let (coeffs, w) = if upper {
                (lbnd.upper.coeffs(j), self.beta[j])
            } else {
                (lbnd.lower.coeffs(j), -self.alpha[j])
            };
            x.iter()
                .zip(coeffs)
                .map(move |(&xv, &c)| (xv, sign * c))
                .chain([(chi, sign * w), (v, -sign)])
                .collect::<Vec<_>>()
        };
        for (slot, &(j, dir)) in dirs.iter().enumerate() {
            match dir {
                Dir::Zero => {}
                Dir::Up => {
                    let (c, cu) = (lbnd.upper.coeffs(j), lbnd.upper.constant(j));
                    let hi = (linear_max(c, cu, bl, bh) + self.beta[j] * h).next_up();
                    if hi <= 0.0 {
                        continue;
                    }
                    let lo = (linear_min(c, cu, bl, bh) + self.beta[j] * lb).next_down();
                    let zv = p.add_var(0.0, hi);
                    // f^≥(x) + βχ − z ≥ −c  (z ≤ f^≥(x) + βχ)
                    let mut t = side_terms(true, j, zv, 1.0);
                    if lo < 0.0 {
                        // z ≤ f^≥(x) + βχ − lo (1 − δ),   z ≤ hi δ
                        let d = p.add_binary();
                        t.push((d, lo));
                        p.add_row(t, lo - cu, f64::INFINITY);
                        p.add_row([(zv, 1.0), (d, -hi)], f64::NEG_INFINITY, 0.0);
                        binaries += 1;
                    } else {
                        p.add_row(t, -cu, f64::INFINITY);
                    }
                    z[slot] = Some(zv);
                }
                Dir::Down => {
                    let (c, cl) = (lbnd.lower.coeffs(j), lbnd.lower.constant(j));
                    let hi = (linear_max(c, cl, bl, bh) - self.alpha[j] * lb).next_up();
                    if hi <= 0.0 {
                        continue;
                    }
                    // z ≥ f^≤(x) − αχ, z ∈ [0, hi]
                    let zv = p.add_var(0.0, hi);
                    p.add_row(side_terms(false, j, zv, 1.0), f64::NEG_INFINITY, -cl);
                    z[slot] = Some(zv);
                }
                Dir::Mixed => {
                    // the base model's exact encoding (eq. (26)) at cutoff h
                    let (ylo, yhi) = self.y_bound(j, h);
                    let yv = p.add_var(ylo, yhi);
                    p.add_row(
                        side_terms(false, j, yv, 1.0),
                        f64::NEG_INFINITY,
                        -lbnd.lower.constant(j),
                    );
                    p.add_row(
                        side_terms(true, j, yv, 1.0),
                        -lbnd.upper.constant(j),
                        f64::INFINITY,
                    );
                    z[slot] = if yhi <= 0.0 {
                        None
                    } else if ylo >= 0.0 {
                        Some(yv)
                    } else {
                        let zv = p.add_var(0.0, yhi);
                        let d = p.add_binary();
                        p.add_row([(zv, 1.0), (yv, -1.0)], 0.0, f64::INFINITY);
                        p.add_row([(zv, 1.0), (yv, -1.0), (d, -ylo)], f64::NEG_INFINITY, -ylo);
                        p.add_row([(zv, 1.0), (d, -yhi)], f64::NEG_INFINITY, 0.0);
                        binaries += 1;
                        Some(zv)
                    };
                }
            }
        }
        for r in &e.rows {
            let t = row_terms(r, &dirs, &z, &x);
            p.add_row(t, r.rhs, f64::INFINITY);
        }
        p.set_objective([(chi, 1.0)], Sense::Minimize);
        PartModel { p, binaries }
    }
}

/// The terms of `wz·z + wx·x` over the kept neurons (`z[t]` belongs to neuron `dirs[t].0`).
fn row_terms(
    r: &EscapeRow,
    dirs: &[(usize, Dir)],
    z: &[Option<Var>],
    x: &[Var],
) -> Vec<(Var, f64)> {
    let zof = |j: usize| {
        dirs.binary_search_by_key(&j, |&(i, _)| i)
            .ok()
            .and_then(|t| z[t])
    };
    let mut t: Vec<(Var, f64)> =
        r.wz.iter()
            .filter_map(|&(j, c)| zof(j).filter(|_| c != 0.0).map(|v| (v, c)))
            .collect();
    if let Some(wx) = &r.wx {
        t.extend(x.iter().zip(wx).map(|(&v, &c)| (v, c)));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preimage::encoding::escape_conditions;
    use crate::preimage::tests::robust_task;
    use crate::preimage::{PreimageOptions, TemplateKind, compute_preimages, template_widths};
    use certquant_bounds::DeepPoly;
    use certquant_core::spec::OutputSpec;
    use certquant_milp::cbc::Cbc;
    use certquant_milp::{Backend, SolveOptions, Status};

    /// `Some(optimum)` or `None` (infeasible) of a `min χ` model.
    fn optimum(p: &Problem) -> Option<f64> {
        let s = Cbc.solve(p, &SolveOptions::default()).unwrap();
        match s.status {
            Status::Optimal => Some(s.objective.unwrap()),
            Status::Infeasible => None,
            other => panic!("{other:?}"),
        }
    }

    /// The reduced model of eq. (83) has the base model's optimum for every escape condition
    /// of every layer (robust: one row; not-target: several rows, so mixed neurons occur),
    /// on the whole range and on a sub-range `[lb, h]` as the fast engine solves it; and it
    /// needs no more phase binaries.
    #[test]
    fn the_reduced_model_has_the_base_models_optimum() {
        let mut compared = (0, 0, 0);
        for (dims, seed) in [
            (&[5, 7, 6, 4][..], 3u64),
            (&[4, 8, 3][..], 11),
            (&[6, 5, 5, 5, 3][..], 21),
        ] {
            let (net, bx, centre, label) = robust_task(dims, 0.12, seed);
            let dp = DeepPoly::run(&net, &bx).unwrap();
            let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
            let target = (label + 1) % net.layers().last().unwrap().outputs();
            for spec in [
                OutputSpec::Robust { label },
                OutputSpec::NotTarget { target },
            ] {
                let opts = PreimageOptions::default();
                let pre = compute_preimages(&dp, &centre_pre, spec, &Cbc, &opts).unwrap();
                for k in 0..net.depth() - 1 {
                    let lbd = dp.layer(k);
                    let (alpha, beta) =
                        template_widths(TemplateKind::Code, &lbd.lo, &lbd.hi, &centre_pre[k]);
                    let ctx = LayerCtx::new(&dp, k, &alpha, &beta);
                    for e in escape_conditions(&net, &dp, k, spec, pre.get(k + 1)) {
                        for (lb, h) in [(0.0, 4.0), (0.05, 0.7)] {
                            let mut base = ctx.base_model(h);
                            base.p.set_bounds(base.chi, lb, h);
                            base.require_escape(&e);
                            let part = ctx.part_model(&e, lb, h);
                            assert!(part.binaries <= base.p.num_integers(), "{}", e.tag);
                            let (a, b) = (optimum(&base.p), optimum(&part.p));
                            match (a, b) {
                                (Some(a), Some(b)) => {
                                    assert!(
                                        (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                                        "{}: {a} vs {b}",
                                        e.tag
                                    );
                                    compared.0 += 1;
                                }
                                (None, None) => compared.1 += 1,
                                other => panic!("layer {k} {}: {other:?}", e.tag),
                            }
                            if directions(ctx.n(), &e).contains(&Dir::Mixed) {
                                compared.2 += 1;
                            }
                        }
                    }
                }
            }
        }
        // the comparison covered optima, infeasible ranges and mixed neurons
        assert!(
            compared.0 > 20 && compared.1 > 0 && compared.2 > 0,
            "{compared:?}"
        );
    }

    /// Directions: all coefficients of one sign, zeros ignored, both signs → mixed.
    #[test]
    fn directions_follow_the_signs_over_all_rows() {
        use crate::preimage::encoding::Side;
        let row = |wz: Vec<(usize, f64)>| EscapeRow {
            wz,
            wx: None,
            rhs: 0.0,
        };
        let e = Escape {
            rows: vec![
                row(vec![(0, 1.0), (1, -1.0), (2, 0.0), (3, 2.0)]),
                row(vec![(0, 0.5), (1, 0.0), (2, 0.0), (3, -1.0)]),
            ],
            side: Side::Above,
            tag: String::new(),
        };
        assert_eq!(
            directions(5, &e),
            vec![Dir::Up, Dir::Down, Dir::Zero, Dir::Mixed, Dir::Zero]
        );
    }
}
