//! The fast engine: Problem (3)'s disjunction "some escape condition holds" decomposed into
//! one small MILP per condition (the minimum over a disjunction is the minimum of its parts).
//!
//! Every part first gets a coarse lower bound on its optimum `χ` (a few bisection steps on a
//! linear-relaxation bound: CROWN-style back-substitution through the triangle relaxation; no
//! escape exists below it). Parts are visited smallest bound first under a running cutoff
//! `χ ≤ χ_best`: a part whose bound reaches the cutoff, or whose relaxation excludes an escape
//! at the cutoff, is pruned (eq. (84)); otherwise it gets its full bracket `[lb, ub]` (`lb` to
//! relative 10⁻⁷, `ub` from a concrete escaping point found by projected gradient ascent on
//! the input, a *gradient witness*). A closed bracket settles the part without a solver;
//! otherwise the part's LP relaxation and then its MILP, reduced by the signs of the
//! condition's coefficients ([`super::reduced`], eq. (83)), are solved on `[lb, min(ub,
//! χ_best)]`. In anytime mode ([`PreimageOptions::gap`]) a part whose proven lower bound is
//! within the relative gap of the cutoff is settled by that bound.

use std::sync::Mutex;

use certquant_bounds::arith::linear_max;
use certquant_milp::{Backend, Status};

use super::encoding::{Escape, EscapeRow};
use super::template::LayerCtx;
use super::{
    ChiSource, LayerOutcome, PreimageError, PreimageOptions, safe_chi, safety_margin, solve_opts,
};

/// Per-part bracket `[lb, ub]` on the part's optimum `χ` from cheap computations:
/// `lb` from bisection on the linear-relaxation bound (no escape is possible below it),
/// `ub` from a concrete escaping point found by projected gradient ascent (an escape exists
/// at `ub`), or the cap when none was found.
#[derive(Debug, Clone)]
struct Bracket {
    /// Proven lower bound on the part's optimum (no escape below it).
    lb: f64,
    /// Upper bound: a witnessed escape, or the cap.
    ub: f64,
    /// The escaping input at `ub`, when one was found.
    witness: Option<Vec<f64>>,
}

impl Bracket {
    /// `ub` comes from a concrete escaping point.
    fn witnessed(&self) -> bool {
        self.witness.is_some()
    }
}

impl LayerCtx<'_> {
    /// A cheap over-approximation of `max (wz·z + wx·x) − rhs` over `T(chi)` (CROWN-style
    /// back-substitution through the triangle relaxation), used to skip escape conditions.
    ///
    /// Touches only the row's entries (a sparse layer's row has a few): each neuron's template
    /// bounds come from [`LayerCtx::y_bound`] on demand, equal bit for bit to the entries of
    /// [`LayerCtx::y_bounds`] (docs/method.md, eq. (85)).
    pub(super) fn escape_upper_bound(&self, row: &EscapeRow, chi: f64) -> f64 {
        let lb = self.dp.layer(self.k);
        let dim = self.dp.input().dim();
        let mut coef = row.wx.clone().unwrap_or_else(|| vec![0.0; dim]);
        let mut cst = -row.rhs;
        for &(j, a) in &row.wz {
            if a == 0.0 {
                continue;
            }
            let (l, u) = self.y_bound(j, chi);
            // z ≤ s·y + t (a > 0) or z ≥ s·y (a < 0), then y replaced by its template side.
            let (s, t) = if u <= 0.0 {
                (0.0, 0.0)
            } else if l >= 0.0 {
                (1.0, 0.0)
            } else if a > 0.0 {
                let s = u / (u - l);
                (s, -s * l)
            } else if u > -l {
                (1.0, 0.0)
            } else {
                (0.0, 0.0)
            };
            cst += a * t;
            let ay = a * s;
            if ay > 0.0 {
                for (c, w) in coef.iter_mut().zip(lb.upper.coeffs(j)) {
                    *c += ay * w;
                }
                cst += ay * (lb.upper.constant(j) + self.beta[j] * chi);
            } else if ay < 0.0 {
                for (c, w) in coef.iter_mut().zip(lb.lower.coeffs(j)) {
                    *c += ay * w;
                }
                cst += ay * (lb.lower.constant(j) - self.alpha[j] * chi);
            }
        }
        linear_max(&coef, cst, self.dp.input().lo(), self.dp.input().hi())
    }

    /// Relaxation says no point of `T(chi)` meets every row of `e`.
    fn relaxation_excludes(&self, e: &Escape, chi: f64) -> bool {
        e.rows.iter().any(|r| self.escape_upper_bound(r, chi) < 0.0)
    }

    /// Largest `χ ≤ cap` (by bisection) at which the relaxation excludes an escape
    /// (`0` if it cannot exclude one even at `χ = 0`).
    ///
    /// (docs/method.md, eq. (31))
    fn relaxation_lower_bound(&self, e: &Escape, cap: f64) -> f64 {
        self.relaxation_lower_bound_tol(e, cap, 1e-7)
    }

    /// [`LayerCtx::relaxation_lower_bound`] with bisection tolerance `tol` (relative to
    /// `1 + χ`): a coarse tolerance gives a cheaper, smaller, equally safe bound.
    fn relaxation_lower_bound_tol(&self, e: &Escape, cap: f64, tol: f64) -> f64 {
        if self.relaxation_excludes(e, cap) {
            return cap;
        }
        if !self.relaxation_excludes(e, 0.0) {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, cap);
        while hi - lo > tol * (1.0 + hi) {
            let mid = 0.5 * (lo + hi);
            if self.relaxation_excludes(e, mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// For a fixed input `x` and `χ`, the largest value of the escape rows over `y ∈ T(χ)`
    /// (closed form: each `y_j` goes to the template end that maximises the summed rows),
    /// returning the smallest row value and the gradient of the summed rows w.r.t. `x`.
    fn escape_at(&self, e: &Escape, x: &[f64], chi: f64, want_grad: bool) -> (f64, Vec<f64>) {
        let lb = self.dp.layer(self.k);
        // the neurons the rows touch, by increasing index, with `z_j` at the template end
        // that maximises the summed rows (docs/method.md, eq. (85))
        let (touched, c) = touched_neurons(e);
        let mut z = vec![0.0; touched.len()];
        let mut grad = if want_grad {
            vec![0.0; x.len()]
        } else {
            Vec::new()
        };
        for (t, (&j, &cj)) in touched.iter().zip(&c).enumerate() {
            let (y, coeffs) = if cj >= 0.0 {
                (
                    self.eval_free(j, true, x) + self.beta[j] * chi,
                    lb.upper.coeffs(j),
                )
            } else {
                (
                    self.eval_free(j, false, x) - self.alpha[j] * chi,
                    lb.lower.coeffs(j),
                )
            };
            if y > 0.0 {
                z[t] = y;
                if want_grad {
                    // inputs fixed by the box never move: their gradient is not needed
                    for &i in &self.free {
                        grad[i] += cj * coeffs[i];
                    }
                }
            }
        }
        let zof = |j: usize| touched.binary_search(&j).map_or(0.0, |t| z[t]);
        let mut worst = f64::INFINITY;
        for r in &e.rows {
            let mut v: f64 = r.wz.iter().map(|&(j, a)| a * zof(j)).sum::<f64>() - r.rhs;
            if let Some(wx) = &r.wx {
                v += wx.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
                if want_grad {
                    for (g, a) in grad.iter_mut().zip(wx) {
                        *g += a;
                    }
                }
            }
            worst = worst.min(v);
        }
        (worst, grad)
    }

    /// Projected gradient ascent on `x` of the escape value at `chi`; returns the best point.
    ///
    /// (docs/method.md, eq. (32))
    fn ascend(&self, e: &Escape, chi: f64, start: Vec<f64>, steps: usize) -> (f64, Vec<f64>) {
        let bx = self.dp.input();
        let width: Vec<f64> = bx.lo().iter().zip(bx.hi()).map(|(l, h)| h - l).collect();
        let mut x = start;
        let (mut best_v, mut best_x) = (f64::NEG_INFINITY, x.clone());
        for step in 0..steps {
            let (v, g) = self.escape_at(e, &x, chi, true);
            if v > best_v {
                best_v = v;
                best_x.clone_from(&x);
            }
            let lr = 0.5 * (1.0 - step as f64 / steps as f64) + 0.05;
            for ((xi, gi), w) in x.iter_mut().zip(&g).zip(&width) {
                *xi += lr * w * gi.signum();
            }
            bx.project(&mut x);
        }
        let (v, _) = self.escape_at(e, &x, chi, false);
        if v > best_v {
            best_v = v;
            best_x = x;
        }
        (best_v, best_x)
    }

    /// Smallest `χ ∈ [0, hi]` at which the fixed point `x` escapes (escape value is monotone
    /// in `χ`), by bisection; `hi` must already be escaping.
    fn escape_chi_at(&self, e: &Escape, x: &[f64], hi: f64) -> f64 {
        if self.escape_at(e, x, 0.0, false).0 >= 0.0 {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, hi);
        while hi - lo > 1e-9 * (1.0 + hi) {
            let mid = 0.5 * (lo + hi);
            if self.escape_at(e, x, mid, false).0 >= 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// `search` = look for a witness (not needed when every part is settled by its lower
    /// bound, `gap = 1`).
    fn bracket(&self, e: &Escape, cap: f64, search: bool) -> Bracket {
        let lb = self.relaxation_lower_bound(e, cap);
        if lb >= cap || !search {
            return Bracket {
                lb,
                ub: cap,
                witness: None,
            };
        }
        let bx = self.dp.input();
        let mut ub = cap;
        let mut witness = None;
        let starts = [bx.center(), bx.lo().to_vec(), bx.hi().to_vec()];
        for start in starts {
            let (v, x) = self.ascend(e, ub, start, 40);
            if v >= 0.0 {
                let c = self.escape_chi_at(e, &x, ub);
                if c <= ub {
                    ub = c;
                    witness = Some(x.clone());
                }
                // try to push lower from the witness
                let (v2, x2) = self.ascend(e, ub * 0.999, x, 20);
                if v2 >= 0.0 {
                    ub = self.escape_chi_at(e, &x2, ub * 0.999);
                    witness = Some(x2);
                }
            }
        }
        Bracket {
            lb: lb.min(ub),
            ub,
            witness,
        }
    }
}

/// The neurons condition `e`'s rows touch (every entry of `wz`, zeros included), by
/// increasing index, and per neuron the sum of its coefficients over the rows, added in row
/// order: the same sums a dense per-neuron accumulator gives, without an `n`-vector (a
/// sparse layer's rows touch two to four of tens of thousands of neurons; eq. (85)).
pub(super) fn touched_neurons(e: &Escape) -> (Vec<usize>, Vec<f64>) {
    let mut all: Vec<(usize, f64)> = e.rows.iter().flat_map(|r| r.wz.iter().copied()).collect();
    // stable: one neuron's coefficients stay in row order
    all.sort_by_key(|&(j, _)| j);
    let (mut js, mut cs): (Vec<usize>, Vec<f64>) = (Vec::new(), Vec::new());
    for (j, w) in all {
        if js.last() == Some(&j) {
            if let Some(c) = cs.last_mut() {
                *c += w;
            }
        } else {
            js.push(j);
            cs.push(0.0 + w);
        }
    }
    (js, cs)
}

/// Gap below which a part's bracket is accepted without a MILP (relative to `1 + χ`).
const BRACKET_TOL: f64 = 1e-5;

/// Bisection tolerance of the coarse relaxation bounds that order and prune the parts
/// (eq. (84)), relative to `1 + χ`.
const COARSE_TOL: f64 = 1e-2;

/// Parts whose relaxation bound is at least this `χ` (the default cap before 2026-12-01) get a
/// time limit of [`LIMIT_ABOVE_SECONDS`] per MILP when the user set none (eq. (88)).
const LIMITED_ABOVE: f64 = 4.0;

/// Default time limit of a part MILP lying entirely above [`LIMITED_ABOVE`] (eq. (88)).
const LIMIT_ABOVE_SECONDS: f64 = 10.0;

/// Solves layer `ctx.k`'s Problem (3) part by part (see the module documentation): the
/// smallest safe `χ` over all escape conditions, `chi_max` if none escapes below it.
///
/// (docs/method.md, eqs. (30)–(33))
pub(super) fn solve_fast(
    ctx: &LayerCtx<'_>,
    escapes: &[Escape],
    backend: &dyn Backend,
    opts: &PreimageOptions,
) -> Result<LayerOutcome, PreimageError> {
    solve_parts(ctx, escapes, backend, opts, true)
}

/// [`solve_fast`], with the χ = 0 shortcut on or off (off: for the test that both agree).
fn solve_parts(
    ctx: &LayerCtx<'_>,
    escapes: &[Escape],
    backend: &dyn Backend,
    opts: &PreimageOptions,
    shortcut: bool,
) -> Result<LayerOutcome, PreimageError> {
    use rayon::prelude::*;
    let cap = opts.chi_max;
    let search = opts.gap < 1.0;
    // χ = 0 shortcut (eq. (73)): a part with a witnessed escape at χ ≤ BRACKET_TOL closes
    // its bracket at χ = 0, and so does every part sorted before it (smaller witnessed χ),
    // so the loop below would answer χ = 0 (`Optimal`, no MILP) whatever the other parts'
    // brackets are. Such a part has `lb ≤ ub ≤ BRACKET_TOL`, so the relaxation does not
    // exclude an escape at χ = BRACKET_TOL (it is monotone in χ; were it not, a part would
    // only be skipped here, never answered wrongly): those parts are bracketed first,
    // stopping at the first one that closes at 0. Exact mode only (in anytime mode the loop
    // would say `GapBound`).
    let early: Vec<Mutex<Option<Bracket>>> = escapes.iter().map(|_| Mutex::new(None)).collect();
    if shortcut && opts.gap == 0.0 && cap > BRACKET_TOL {
        let zero = escapes.par_iter().enumerate().find_map_any(|(i, e)| {
            if ctx.relaxation_excludes(e, BRACKET_TOL) {
                return None;
            }
            let br = ctx.bracket(e, cap, search);
            let closes_at_zero = br.witnessed() && br.ub <= BRACKET_TOL;
            if let Ok(mut g) = early[i].lock() {
                *g = Some(br);
            }
            closes_at_zero.then_some(i)
        });
        if let Some(i) = zero {
            tracing::debug!(layer = ctx.k, tag = %escapes[i].tag, "escape at χ = 0: χ = 0");
            return Ok((0.0, ChiSource::Optimal, 0, escapes.len() - 1));
        }
    }
    // Coarse relaxation bounds for every part, in parallel (eq. (84)): a few bisection steps
    // each. Parts are then visited smallest bound first; a part is bracketed in full (fine
    // bound, gradient witness) only when neither its coarse bound nor the relaxation at the
    // running cutoff already excludes it there.
    let mut parts: Vec<(f64, usize)> = escapes
        .par_iter()
        .enumerate()
        .map(|(i, e)| {
            let known = early[i].lock().ok().and_then(|g| g.as_ref().map(|b| b.lb));
            (
                known.unwrap_or_else(|| ctx.relaxation_lower_bound_tol(e, cap, COARSE_TOL)),
                i,
            )
        })
        .collect();
    parts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut best = cap;
    let mut source = ChiSource::Capped;
    let (mut milps, mut pruned) = (0, 0);
    for (coarse, i) in parts {
        // a wide layer's parts may take long: the budget is checked per part (eq. (85))
        if opts.deadline.expired() {
            return Err(PreimageError::DeadlineExpired(ctx.k));
        }
        let e = &escapes[i];
        // no escape through e below `coarse`, nor (if excluded there) at or below `best`
        if coarse >= best || (best < cap && ctx.relaxation_excludes(e, best)) {
            pruned += 1;
            continue;
        }
        let known = early[i].lock().ok().and_then(|mut g| g.take());
        let br = known.unwrap_or_else(|| ctx.bracket(e, cap, search));
        if br.lb >= best {
            pruned += 1;
            continue;
        }
        let hi = br.ub.min(best);
        tracing::debug!(layer = ctx.k, tag = %e.tag, lb = br.lb, ub = br.ub, witnessed = br.witnessed(), "bracket");
        // anytime mode: settle the part by a proven lower bound within the gap
        let mut settle = |bound: f64| -> bool {
            if opts.gap > 0.0 && bound >= (1.0 - opts.gap) * hi {
                let chi = (bound - safety_margin(bound)).max(0.0);
                if chi < best {
                    best = chi;
                    source = ChiSource::GapBound;
                }
                true
            } else {
                false
            }
        };
        if settle(br.lb) {
            continue;
        }
        if br.witnessed() && hi - br.lb <= BRACKET_TOL * (1.0 + hi) {
            // closed without a solver: no escape below lb (relaxation), one at ub (witness)
            let chi = (br.lb - safety_margin(br.lb)).max(0.0);
            if chi < best {
                best = chi;
                source = ChiSource::Optimal;
            }
            continue;
        }
        let m = ctx.part_model(e, br.lb, hi);
        // LP relaxation first: its optimum is a valid lower bound on the part's χ
        let lp = backend.solve(&m.p.relaxation(), &solve_opts(opts))?;
        let lp_lb = match lp.status {
            Status::Infeasible => f64::INFINITY,
            Status::Optimal => lp.objective.unwrap_or(br.lb),
            _ => br.lb,
        };
        tracing::debug!(layer = ctx.k, tag = %e.tag, lp_lb, lb = br.lb, ub = br.ub, binaries = m.binaries, "LP bound");
        if lp_lb >= hi {
            pruned += 1;
            continue;
        }
        if settle(lp_lb.max(br.lb)) {
            continue;
        }
        // No MIP start from the witness: see the note in certquant-milp's CBC backend.
        // Eq. (88): far above the template's usual range a part may be a hard MILP (a
        // convolutional net's part with 373 binaries did not finish in 11 CPU minutes):
        // without a user limit it gets LIMIT_ABOVE_SECONDS; on expiry the proven bound is
        // used, never below the relaxation's (both proven; χ may only shrink).
        let mut sopts = solve_opts(opts);
        if sopts.time_limit.is_none() && br.lb >= LIMITED_ABOVE {
            sopts.time_limit = Some(LIMIT_ABOVE_SECONDS);
        }
        let s = backend.solve(&m.p, &sopts)?;
        milps += 1;
        let proven = lp_lb.max(br.lb);
        let found = match safe_chi(ctx.k, &s)? {
            Some((chi, true)) => Some((chi.max((proven - safety_margin(proven)).max(0.0)), true)),
            // infeasible in [lb, hi]: no escape below hi
            None => {
                if hi < cap && br.witnessed() && hi == br.ub {
                    // the witness escapes at ub: the optimum is ub up to solver tolerance
                    Some(((hi - safety_margin(hi)).max(0.0), false))
                } else {
                    None
                }
            }
            other => other,
        };
        if let Some((chi, timed_out)) = found
            && chi < best
        {
            best = chi;
            source = if timed_out {
                ChiSource::TimeLimitBound
            } else {
                ChiSource::Optimal
            };
            tracing::trace!(layer = ctx.k, tag = %e.tag, chi, "new cutoff");
        }
    }
    Ok((best, source, milps, pruned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preimage::encoding::escape_conditions;
    use crate::preimage::tests::robust_task;
    use crate::preimage::{TemplateKind, template_widths};
    use certquant_bounds::DeepPoly;
    use certquant_core::spec::OutputSpec;
    use certquant_milp::SolveOptions;
    use certquant_milp::cbc::Cbc;

    /// Every part's bracket holds its exact optimum: no escape below the relaxation bound
    /// `lb`, and the gradient witness really escapes at `ub`.
    #[test]
    fn brackets_hold_each_parts_optimum_and_witnesses_escape() {
        let mut witnessed = 0;
        for (dims, seed) in [(vec![4, 6, 3], 2), (vec![5, 7, 4], 11), (vec![3, 8, 5], 23)] {
            let (net, bx, centre, label) = robust_task(&dims, 0.15, seed);
            let dp = DeepPoly::run(&net, &bx).unwrap();
            let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
            let lb = dp.layer(0);
            let (alpha, beta) = template_widths(TemplateKind::Code, &lb.lo, &lb.hi, &centre_pre[0]);
            let ctx = LayerCtx::new(&dp, 0, &alpha, &beta);
            let cap = 4.0;
            for e in escape_conditions(&net, &dp, 0, OutputSpec::Robust { label }, None) {
                let br = ctx.bracket(&e, cap, true);
                assert!(br.lb <= br.ub && br.ub <= cap, "{}: {br:?}", e.tag);
                let mut m = ctx.base_model(cap);
                m.require_escape(&e);
                if let Some(x) = &br.witness {
                    witnessed += 1;
                    assert!(ctx.escape_at(&e, x, br.ub, false).0 >= -1e-9, "{}", e.tag);
                }
                let s = Cbc.solve(&m.p, &SolveOptions::default()).unwrap();
                match s.status {
                    Status::Infeasible => assert!(br.witness.is_none(), "{}", e.tag),
                    Status::Optimal => {
                        let opt = s.objective.unwrap();
                        let tol = 1e-6 * (1.0 + opt);
                        assert!(
                            br.lb <= opt + tol,
                            "{}: lb {} > optimum {opt}",
                            e.tag,
                            br.lb
                        );
                        assert!(
                            opt <= br.ub + tol,
                            "{}: optimum {opt} > ub {}",
                            e.tag,
                            br.ub
                        );
                    }
                    other => panic!("{}: {other:?}", e.tag),
                }
            }
        }
        assert!(
            witnessed > 0,
            "no part was witnessed: the test checks nothing"
        );
    }

    /// Layer `ctx.k`'s preimage from a solved outcome (the next layer's target in the tests'
    /// last-layer-first loops).
    fn layer_preimage(
        ctx: &LayerCtx<'_>,
        (chi, source, milps, pruned): LayerOutcome,
    ) -> super::super::Preimage {
        super::super::Preimage {
            layer: ctx.k,
            chi,
            lower_checked: crate::preimage::template::lower_checked(ctx, chi),
            alpha: ctx.alpha.to_vec(),
            beta: ctx.beta.to_vec(),
            source,
            milps,
            pruned,
            seconds: 0.0,
        }
    }

    /// Walks `net`'s hidden layers last first, as `compute_preimages` does: `solve` gets each
    /// layer's context and escape conditions (towards the previous outcome's preimage) and
    /// returns the outcome that becomes the next layer's target.
    fn walk_layers(
        net: &certquant_core::model::Network,
        dp: &DeepPoly,
        centre_pre: &[Vec<f64>],
        spec: OutputSpec,
        mut solve: impl FnMut(&LayerCtx<'_>, Vec<Escape>) -> LayerOutcome,
    ) {
        let mut next: Option<super::super::Preimage> = None;
        for k in (0..net.depth() - 1).rev() {
            let lb = dp.layer(k);
            let (alpha, beta) = template_widths(TemplateKind::Code, &lb.lo, &lb.hi, &centre_pre[k]);
            let escapes = escape_conditions(net, dp, k, spec, next.as_ref());
            let ctx = LayerCtx::new(dp, k, &alpha, &beta);
            let outcome = solve(&ctx, escapes);
            next = Some(layer_preimage(&ctx, outcome));
        }
    }

    /// The χ = 0 shortcut answers what the full loop answers (χ bit for bit, source; no more MILPs)
    /// on every hidden layer of random deeper nets, some of whose preimages collapse.
    #[test]
    fn the_zero_shortcut_agrees_with_the_full_loop() {
        let (mut zeros, mut layers) = (0, 0);
        let cases = [
            (vec![4, 8, 8, 8, 3], 0.2, 5),
            (vec![5, 10, 10, 10, 10, 3], 0.15, 7),
            (vec![3, 6, 6, 6, 2], 0.3, 13),
            (vec![4, 9, 9, 3], 0.1, 31),
        ];
        for (dims, eps, seed) in cases {
            let (net, bx, centre, label) = robust_task(&dims, eps, seed);
            let dp = DeepPoly::run(&net, &bx).unwrap();
            let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
            let spec = OutputSpec::Robust { label };
            let opts = PreimageOptions::default();
            walk_layers(&net, &dp, &centre_pre, spec, |ctx, escapes| {
                let k = ctx.k;
                let full = solve_parts(ctx, &escapes, &Cbc, &opts, false).unwrap();
                let fast = solve_parts(ctx, &escapes, &Cbc, &opts, true).unwrap();
                assert_eq!(fast.0.to_bits(), full.0.to_bits(), "layer {k} of {dims:?}");
                assert_eq!(fast.1, full.1, "layer {k} of {dims:?}");
                // the loop may meet a part that needs a MILP before one that closes at 0
                assert!(fast.2 <= full.2, "layer {k} of {dims:?}");
                layers += 1;
                zeros += usize::from(full.0 == 0.0);
                full
            });
        }
        assert!(
            zeros > 0 && zeros < layers,
            "{zeros} of {layers} layers at χ = 0"
        );
    }

    /// The sparse-aware path (eq. (85)): escape rows holding only their non-zero entries, as a
    /// sparse layer's do, give the fast engine the χ (bit for bit), source and MILP count of
    /// the same rows with every zero entry kept (the dense encoding); and a net whose
    /// hidden-to-hidden layers are stored sparse gets the χ of its dense twin.
    #[test]
    fn sparse_rows_give_the_dense_rows_chi() {
        use super::super::{Engine, compute_preimages};
        let (mut layers, mut dropped) = (0, 0);
        for (dims, seed) in [
            (vec![4, 10, 10, 10, 3], 3u64),
            (vec![5, 12, 9, 3], 17),
            (vec![3, 8, 8, 8, 8, 2], 29),
        ] {
            let (net, bx, centre, label) =
                crate::preimage::tests::masked_task(&dims, 0.12, seed, 0.3);
            let dp = DeepPoly::run(&net, &bx).unwrap();
            let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
            let spec = OutputSpec::Robust { label };
            let opts = PreimageOptions::default();
            walk_layers(&net, &dp, &centre_pre, spec, |ctx, dense| {
                let k = ctx.k;
                let mut sparse = dense.clone();
                for r in sparse.iter_mut().flat_map(|e| e.rows.iter_mut()) {
                    let before = r.wz.len();
                    r.wz.retain(|&(_, a)| a != 0.0);
                    dropped += before - r.wz.len();
                }
                let a = solve_fast(ctx, &dense, &Cbc, &opts).unwrap();
                let b = solve_fast(ctx, &sparse, &Cbc, &opts).unwrap();
                assert_eq!(a.0.to_bits(), b.0.to_bits(), "layer {k} of {dims:?}");
                assert_eq!((a.1, a.2, a.3), (b.1, b.2, b.3), "layer {k} of {dims:?}");
                layers += 1;
                a
            });
            // the whole pipeline on the net with its hidden-to-hidden layers stored sparse
            let d = net.depth();
            let stored = certquant_core::model::Network::new(
                net.layers()
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        if i > 0 && i + 1 < d {
                            l.to_sparse()
                        } else {
                            l.clone()
                        }
                    })
                    .collect(),
            )
            .unwrap();
            assert!(stored.layers()[1].is_sparse());
            let dps = DeepPoly::run(&stored, &bx).unwrap();
            let opts = PreimageOptions {
                engine: Engine::Fast,
                ..PreimageOptions::default()
            };
            let p = compute_preimages(&dp, &centre_pre, spec, &Cbc, &opts).unwrap();
            let q = compute_preimages(&dps, &centre_pre, spec, &Cbc, &opts).unwrap();
            for (p, q) in p.iter().zip(&q) {
                assert!(
                    (p.chi - q.chi).abs() <= 1e-6 * (1.0 + p.chi),
                    "layer {} of {dims:?}: dense {} vs sparse {}",
                    p.layer,
                    p.chi,
                    q.chi
                );
            }
        }
        assert!(
            layers >= 8 && dropped > 0,
            "{layers} layers, {dropped} zeros dropped"
        );
    }
}
