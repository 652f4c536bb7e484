//! The abstraction-only engine (`--preimage abstract`): the authors' `--preimg_mode abstr`,
//! made sound. `χ` comes from a linear relaxation alone, no MILP is solved.
//!
//! # What the authors' mode computes
//! Quadapter's `abstr` mode (`underPreImageAbstr`) fixes the activation pattern DeepPoly found
//! on the float network (active, inactive, unstable with lower slope 0 or 1) and widens the
//! layer's bounds linearly in `χ`. The widening is pushed through the next affine layer by
//! interval arithmetic, neuron by neuron, with DeepPoly's slopes: an active neuron passes its
//! widening through, an unstable one passes its upper widening through the chord and its lower
//! widening through the lower slope `λ ∈ {0, 1}`, an inactive one passes nothing. Added to
//! DeepPoly's bounds of the next layer, this gives bounds of the next layer affine in `χ`, and
//! one LP in the single variable `χ` maximises it subject to those bounds staying inside the
//! next preimage (or, at the output, the label's lower bound staying above every other
//! class's upper bound).
//!
//! # What this engine computes, and why it differs
//! The same scheme, on certquant's template (docs/method.md, eq. (20)–(21)) and escape
//! conditions (eq. (23)–(24)), so that its `χ` is a proven lower bound of Problem (3)'s
//! optimum (eq. (25)) and comparable with the exact engines. For one row `r(x, z) − rhs` of an
//! escape condition (see [`Escape`]) with coefficients `a_j` on `z_j`:
//!
//! * `G_r`: the row's relaxation bound at `χ = 0`, i.e. the fast engine's bound (eq. (31))
//!   with DeepPoly's triangle relaxation on `[ℓ_j(0), ū_j(0)]`, maximised over the box;
//! * `Δ_r(χ)`: the interval widening, `χ·Σ_j c_j + Σ_{j inactive, a_j > 0} a_j·max(0, ū_j(0) +
//!   β_j χ)`, with `c_j = a_j β_j` if `a_j > 0` and the neuron is active or unstable (ReLU is
//!   monotone and 1-Lipschitz, so raising `y_j` by `β_j χ` raises `z_j` by at most that), and
//!   `c_j = |a_j| s_j α_j` if `a_j < 0`, `s_j` the lower slope used at `χ = 0` (1 active, `λ_j`
//!   unstable, 0 inactive; `z_j ≥ s_j y_j` holds for every `y_j`);
//! * the row excludes an escape at every `χ` with `G_r + Δ_r(χ) < 0`. `Δ_r` is piecewise
//!   linear, nondecreasing and convex, so the largest such `χ` (the authors' one-variable LP)
//!   is found in closed form by walking its breakpoints. An escape condition is excluded below
//!   the largest threshold of its rows, the layer's `χ` is the smallest over the conditions,
//!   minus [`super::safety_margin`] (or `χ_max` when nothing escapes below it).
//!
//! **Deviations** from the authors' mode, each needed for a safe `χ`:
//! 1. Template: certquant's widths (`--template code|paper`), not the authors' per-mode widths
//!    (unstable `α = −l`, `β = u`; active lower widening capped at `l` so that the neuron stays
//!    active). Their unstable widths keep the chord's slope, which is what makes their
//!    `K·(α + β)` widening exact; on other widths only the Lipschitz bound `β` is sound.
//! 2. Targets: the next preimage's symbolic bounds `f′(x) ± width·χ′`, not its concrete
//!    bounds. The authors compare DeepPoly's *concrete* next-layer bounds with the next
//!    preimage's *concrete* bounds, a larger set than the symbolic preimage the forward
//!    check uses, so their `χ` can exceed Problem (3)'s optimum. Here the difference of the
//!    relaxation and the target is maximised over the box as one affine function (`G_r`).
//! 3. Inactive neurons: the authors' preimage pins them at `≤ 0` and never widens them; in
//!    certquant's template they widen by `β_j χ` and may turn active, hence the `max(0, ·)`
//!    terms.
//! 4. Output: the logit differences `y_j − y_g` (eq. (24)), tighter than the authors'
//!    separate bounds `lb(y_g) ≥ ub(y_j)`.
//!
//! Compared with the fast engine at `--gap 1` (relaxation only, eq. (31) recomputed at every
//! `χ` by bisection): both are safe; neither bound dominates the other (the fast engine's
//! chord follows the widened bounds, this one keeps DeepPoly's pattern and adds intervals),
//! and this one needs one relaxation per row instead of a bisection.

use super::encoding::{Escape, EscapeRow};
use super::template::LayerCtx;
use super::{ChiSource, LayerOutcome, PreimageOptions, safety_margin};

/// The row's widening `Δ(χ) = slope·χ + Σ_i weight_i·max(0, offset_i + rate_i·χ)`.
#[derive(Debug, Clone, PartialEq)]
struct Widening {
    /// Linear part: `Σ_j c_j` over the active and unstable neurons (and the lower sides).
    slope: f64,
    /// `(weight a_j, offset ū_j(0) ≤ 0, rate β_j)` of every inactive neuron with `a_j > 0`.
    hinges: Vec<(f64, f64, f64)>,
}

impl Widening {
    /// `Δ(χ)` (the tests check [`Widening::threshold`] against it).
    #[cfg(test)]
    fn at(&self, chi: f64) -> f64 {
        self.slope * chi
            + self
                .hinges
                .iter()
                .map(|&(a, u, b)| a * (u + b * chi).max(0.0))
                .sum::<f64>()
    }

    /// The largest `χ ∈ [0, cap]` with `g + Δ(χ) < 0` holding below it, i.e. the smallest root
    /// of `g + Δ` (`cap` if there is none below `cap`; `0` if `g ≥ 0`). `Δ(0) = 0` and `Δ` is
    /// nondecreasing and convex: walk its breakpoints with the current value and slope.
    fn threshold(&self, g: f64, cap: f64) -> f64 {
        if g.is_nan() || g >= 0.0 {
            return 0.0;
        }
        // breakpoints −u/β (where an inactive neuron's widened bound reaches 0)
        let mut bps: Vec<(f64, f64)> = self
            .hinges
            .iter()
            .filter(|&&(_, _, b)| b > 0.0)
            .map(|&(a, u, b)| ((-u / b).max(0.0), a * b))
            .collect();
        bps.sort_by(|p, q| p.0.total_cmp(&q.0));
        let (mut at, mut value, mut slope) = (0.0, g, self.slope);
        for (bp, extra) in bps.into_iter().chain(std::iter::once((cap, 0.0))) {
            let end = bp.min(cap);
            if end > at {
                let reached = value + slope * (end - at);
                if reached >= 0.0 {
                    // slope > 0 here: value < 0 ≤ reached
                    return (at + (-value) / slope).clamp(at, end);
                }
                value = reached;
                at = end;
            }
            if at >= cap {
                return cap;
            }
            slope += extra;
        }
        cap
    }
}

impl LayerCtx<'_> {
    /// The interval widening of one escape row around DeepPoly's pattern at `χ = 0`
    /// (`ylo, yhi` = the template's concrete bounds at `χ = 0`); see the module documentation.
    fn widening(&self, row: &EscapeRow, ylo: &[f64], yhi: &[f64]) -> Widening {
        let mut w = Widening {
            slope: 0.0,
            hinges: Vec::new(),
        };
        for &(j, a) in &row.wz {
            let (l, u) = (ylo[j], yhi[j]);
            if a > 0.0 {
                if u <= 0.0 {
                    w.hinges.push((a, u, self.beta[j]));
                } else {
                    w.slope += a * self.beta[j];
                }
            } else if a < 0.0 {
                // the lower slope of the χ = 0 relaxation, as in the fast engine's bound
                let s = if u <= 0.0 {
                    0.0
                } else if l >= 0.0 || u > -l {
                    1.0
                } else {
                    0.0
                };
                w.slope += -a * s * self.alpha[j];
            }
        }
        w
    }

    /// The largest `χ ≤ cap` below which `row` excludes an escape (see [`Widening::threshold`]).
    fn row_threshold(&self, row: &EscapeRow, ylo: &[f64], yhi: &[f64], cap: f64) -> f64 {
        let g = self.escape_upper_bound(row, 0.0);
        self.widening(row, ylo, yhi).threshold(g, cap)
    }
}

/// Computes layer `ctx.k`'s `χ` from the relaxation alone (see the module documentation):
/// never solves a MILP. The source is [`ChiSource::GapBound`] (a relaxation bound) or
/// [`ChiSource::Capped`]; `pruned` counts the escape conditions excluded up to `χ_max`.
pub(super) fn solve_abstract(
    ctx: &LayerCtx<'_>,
    escapes: &[Escape],
    opts: &PreimageOptions,
) -> LayerOutcome {
    let cap = opts.chi_max;
    let (ylo, yhi) = ctx.y_bounds(0.0);
    let mut best = cap;
    let mut pruned = 0;
    for e in escapes {
        let t = e
            .rows
            .iter()
            .map(|r| ctx.row_threshold(r, &ylo, &yhi, cap))
            .fold(0.0, f64::max);
        tracing::trace!(layer = ctx.k, tag = %e.tag, threshold = t, "abstract bound");
        if t >= cap {
            pruned += 1;
        }
        best = best.min(t);
    }
    if best >= cap {
        return (cap, ChiSource::Capped, 0, pruned);
    }
    (
        (best - safety_margin(best)).max(0.0),
        ChiSource::GapBound,
        0,
        pruned,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preimage::tests::{assert_sampled_points_stay_inside, robust_task};
    use crate::preimage::{Engine, Preimage, PreimageOptions, compute_preimages};
    use certquant_bounds::DeepPoly;
    use certquant_core::model::Network;
    use certquant_core::spec::{InputBox, OutputSpec};
    use certquant_milp::cbc::Cbc;

    fn run(
        net: &Network,
        bx: &InputBox,
        centre: &[f64],
        label: usize,
        engine: Engine,
        gap: f64,
    ) -> Vec<Preimage> {
        let dp = DeepPoly::run(net, bx).unwrap();
        let centre_pre = crate::algorithm1::pre_activations(net, centre);
        let opts = PreimageOptions {
            engine,
            gap,
            ..PreimageOptions::default()
        };
        compute_preimages(&dp, &centre_pre, OutputSpec::Robust { label }, &Cbc, &opts).unwrap()
    }

    /// Abstract `χ` ≤ exact `χ` layer by layer (a smaller next preimage only lowers a layer's
    /// optimum, so the chain keeps the order); up to the fast engine's bracket tolerance,
    /// which may settle a part just below its optimum.
    fn assert_below_exact(abs: &[Preimage], exact: &[Preimage], what: &str) {
        assert_eq!(abs.len(), exact.len());
        for (a, e) in abs.iter().zip(exact) {
            assert!(
                a.chi <= e.chi + 2e-5 * (1.0 + e.chi),
                "{what}: layer {} abstract χ {} > exact χ {}",
                a.layer,
                a.chi,
                e.chi
            );
        }
    }

    #[test]
    fn threshold_is_the_first_root_of_the_piecewise_widening() {
        let w = Widening {
            slope: 1.0,
            hinges: vec![(2.0, -1.0, 1.0), (1.0, -0.5, 0.25)],
        };
        for (g, cap) in [
            (-0.5, 4.0),
            (-1.5, 4.0),
            (-3.0, 4.0),
            (-20.0, 4.0),
            (-2.0, 1.5),
        ] {
            let t = w.threshold(g, cap);
            assert!((0.0..=cap).contains(&t), "{g}: {t}");
            // below the threshold the bound excludes, at it (unless capped) it no longer does
            for s in 0..100 {
                let chi = t * f64::from(s) / 100.0;
                assert!(g + w.at(chi) < 1e-12, "{g}: Δ({chi})");
            }
            if t < cap {
                assert!((g + w.at(t)).abs() < 1e-12, "{g}: root {t}");
            }
        }
        assert_eq!(w.threshold(0.0, 4.0), 0.0);
        assert_eq!(w.threshold(f64::NAN, 4.0), 0.0);
        let flat = Widening {
            slope: 0.0,
            hinges: vec![],
        };
        assert_eq!(flat.threshold(-1.0, 4.0), 4.0);
    }

    #[test]
    fn abstract_chi_is_below_the_exact_one_and_solves_no_milp() {
        let mut positive = 0;
        for (dims, eps, seed) in [
            (vec![4, 6, 3], 0.15, 1),
            (vec![5, 6, 5, 3], 0.15, 20),
            (vec![3, 8, 6, 4, 3], 0.15, 40),
            (vec![4, 7, 7, 3], 0.05, 60),
            (vec![6, 10, 8, 4], 0.02, 7),
        ] {
            let (net, bx, centre, label) = robust_task(&dims, eps, seed);
            let abs = run(&net, &bx, &centre, label, Engine::Abstract, 0.0);
            assert!(abs.iter().all(|p| p.milps == 0), "{dims:?}");
            assert!(
                abs.iter()
                    .all(|p| matches!(p.source, ChiSource::GapBound | ChiSource::Capped)),
                "{dims:?}"
            );
            assert!(abs.iter().all(|p| p.chi.is_finite() && p.chi >= 0.0));
            positive += abs.iter().filter(|p| p.chi > 0.0).count();
            let exact = run(&net, &bx, &centre, label, Engine::Fast, 0.0);
            assert_below_exact(&abs, &exact, &format!("{dims:?}"));
            // the points of the abstract preimages really stay inside the next ones
            assert_sampled_points_stay_inside(&net, &bx, label, &abs, seed);
        }
        assert!(
            positive > 0,
            "every abstract χ was 0: the test checks nothing"
        );
    }

    /// On a shared MNIST model (if present): abstract `χ` ≤ exact `χ` on a few test images,
    /// no MILP, and the gap engine's output is not needed for that.
    #[test]
    fn abstract_chi_is_below_the_exact_one_on_a_shared_model() {
        let (Some(models), Some(data)) = (
            certquant_core::shared::shared_dir("models/quadapter"),
            certquant_core::shared::shared_dir("data/mnist"),
        ) else {
            return;
        };
        let net = certquant_core::onnx::import(&models.join("mnist_1blk_100.onnx")).unwrap();
        let ds = certquant_core::data::load(&data).unwrap();
        let mut tried = 0;
        for id in [5346, 8564, 7059] {
            let x = ds.image(id).unwrap();
            let label = net.predict(x);
            let bx = InputBox::linf_ball(x, 2.0 / 255.0).unwrap();
            let dp = DeepPoly::run(&net, &bx).unwrap();
            if dp
                .logit_difference_lower_bounds(label)
                .unwrap()
                .iter()
                .any(|&m| m <= 0.0)
            {
                continue;
            }
            tried += 1;
            let abs = run(&net, &bx, x, label, Engine::Abstract, 0.0);
            assert!(abs.iter().all(|p| p.milps == 0));
            let exact = run(&net, &bx, x, label, Engine::Fast, 0.0);
            assert_below_exact(&abs, &exact, &format!("id {id}"));
            assert_sampled_points_stay_inside(&net, &bx, label, &abs, id as u64);
        }
        assert!(tried > 0, "DeepPoly proves none of the images");
    }
}
