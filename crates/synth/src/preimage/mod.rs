//! Under-approximate preimages of hidden layers (Step 1 of Algorithm 1, Problem (3) of the paper).
//!
//! For hidden layer `k` (pre-activations `x^{2k}`) the template is
//! `T_k(χ) = { f_j^≤(x) − α_j χ ≤ x_j ≤ f_j^≥(x) + β_j χ }` with the DeepPoly functions
//! `f^≤, f^≥` of the float network. We look for the largest `χ` such that every point of
//! `T_k(χ)` (with `x` in the input box) is mapped by ReLU and the next affine layer into the
//! next preimage `P_{k+1} = T_{k+1}(χ_{k+1})`, or, for the last hidden layer, into the output
//! condition. That is `min χ` subject to "some point escapes" — a MILP with exact big-M ReLUs.
//! A neuron of the next layer whose whole template lies at or below 0 ([`Preimage::lower_checked`]
//! false) counts as leaving only when it reaches 0: every value ≤ 0 has the same ReLU image 0
//! as the template's points (the authors' code uses the upper bound 0 for such neurons too).
//!
//! Two engines compute the same quantity:
//! * [`Engine::Paper`]: the paper's single MILP, the disjunction "some neuron leaves" encoded
//!   with one escape binary per escape condition (`η`/`ζ`, see the encoding);
//! * [`Engine::Fast`]: the disjunction decomposed into one small MILP per escape condition
//!   (min over a disjunction = min of the parts), with a running cutoff `χ ≤ χ_best`, a cheap
//!   linear-relaxation bound that skips parts which cannot escape below the cutoff, and
//!   parts ordered most-dangerous first.
//!
//! A third, [`Engine::Abstract`], solves no MILP: the authors' abstraction-only mode
//! (`--preimg_mode abstr`), DeepPoly's activation pattern widened by interval arithmetic,
//! made sound. Its `χ` is a safe lower bound of the same optimum, usually below it.
//!
//! # Soundness
//! A preimage only *guides* the choice of bit-widths: the final answer of Algorithm 1 is a
//! DeepPoly proof on the quantized network, so an optimistic `χ` can lose a certificate but
//! never create a false one. Still, every reported `χ` errs on the safe side: it is the
//! solver's optimum (or, on a time limit, its proven lower bound) minus [`safety_margin`],
//! which exceeds CBC's feasibility and integrality tolerances; big-M constants come from
//! outward-rounded bounds of the template at the largest `χ` considered.
//!
//! # Parts
//! * `template`: the template `T_k(χ)` — widths `α, β` ([`template_widths`]), which
//!   neurons' lower sides are checked, and the layer's fixed data;
//! * `encoding`: the MILP encoding of Problem (3) — big-M ReLUs and the escape binaries
//!   `η` (above the upper preimage bound) and `ζ` (below the lower one);
//! * `fast`: the fast engine (one MILP per escape condition, cutoff, relaxation brackets,
//!   gradient witnesses, anytime gap);
//! * `paper`: the paper's single MILP;
//! * `abstraction`: the abstraction-only engine (no MILP).

mod abstraction;
mod encoding;
mod fast;
mod paper;
mod reduced;
mod template;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use certquant_bounds::DeepPoly;
use certquant_core::spec::OutputSpec;
use certquant_milp::{Backend, MilpError, SolveOptions, SolverTuning, Status};

pub use template::template_widths;

use abstraction::solve_abstract;
use encoding::escape_conditions;
use fast::solve_fast;
use paper::solve_paper;
use template::{LayerCtx, lower_checked};

/// Errors of preimage computation.
#[derive(Debug, Error)]
pub enum PreimageError {
    /// The MILP backend failed outright.
    #[error(transparent)]
    Milp(#[from] MilpError),
    /// The solver returned a status we cannot turn into a safe `χ`.
    #[error("layer {layer}: the MILP solver returned {status:?}")]
    Solver {
        /// Hidden layer.
        layer: usize,
        /// Status.
        status: Status,
    },
    /// Bounds needed by the template were not computed.
    #[error("DeepPoly bounds for layer {0} are missing")]
    MissingBounds(usize),
    /// The paper engine's single MILP encodes every neuron of a hidden layer; a hidden layer
    /// followed by a layer kept sparse (a max-pooling tournament over a convolution: tens of
    /// thousands of neurons) is out of its reach. `--preimage fast` (whose per-part MILPs
    /// keep only the neurons a row touches, docs/method.md eq. (85)) or `--preimage abstract`
    /// handles it.
    #[error(
        "hidden layer {0} feeds a wide sparse layer (a lowered max-pooling tournament or convolution); the paper MILP preimage engine is out of reach there: use --preimage fast or --preimage abstract"
    )]
    SparseLayer(usize),
    /// Given `χ` values (see [`preimages_from_chi`]) do not fit the network.
    #[error("given χ values: {0}")]
    GivenChi(String),
    /// [`PreimageOptions::deadline`] passed before every hidden layer had its preimage.
    #[error("the time budget ran out during the preimages (at hidden layer {0})")]
    DeadlineExpired(usize),
}

/// How the template widths `α, β` are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateKind {
    /// Authors' code: `α_j = max(c_j − l_j, 1e−3)`, `β_j = max(u_j − c_j, 1e−3)`, `c_j` the
    /// neuron's value at the centre input.
    #[default]
    Code,
    /// Paper: `α_j = β_j = (u_j − l_j)/2`.
    Paper,
}

/// Which preimage engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// The paper's single MILP per layer (baseline).
    Paper,
    /// Decomposed, pruned, cutoff-driven MILPs (default).
    #[default]
    Fast,
    /// No MILP: the authors' abstraction-only mode (DeepPoly's activation pattern, widening
    /// by interval arithmetic, `χ` in closed form), made sound. Fast, and its `χ` is a safe
    /// lower bound of the exact engines' optimum, often well below it.
    Abstract,
}

/// Default upper end `χ_max` of the χ range of Problem (3) (docs/method.md eq. (25)): 100,
/// the bound the authors' code puts on its scale variable. A smaller cap only makes a
/// preimage smaller (still sound), but it costs bits: with 4, the last hidden layer's χ was
/// capped on most r = 1 tasks of Table 2, and those needed more bits than at r = 2.
pub const CHI_MAX_DEFAULT: f64 = 100.0;

/// Options for preimage computation.
#[derive(Debug, Clone)]
pub struct PreimageOptions {
    /// Template widths.
    pub template: TemplateKind,
    /// Engine.
    pub engine: Engine,
    /// Largest `χ` considered; big-M constants are taken at this value. Default
    /// [`CHI_MAX_DEFAULT`], the authors' bound (docs/method.md eq. (25)).
    pub chi_max: f64,
    /// Time limit per MILP solve, seconds.
    pub time_limit: Option<f64>,
    /// Fast engine, anytime mode: a part whose proven lower bound (linear relaxation) is
    /// within this relative gap of the current cutoff is settled by that bound, without a
    /// MILP. `0` = exact (default); `1` = relaxation bounds only (no MILP at all). The
    /// layer's `χ` is then at least `(1 − gap)` times the optimum and always safe, since a
    /// part cannot escape below its relaxation bound.
    pub gap: f64,
    /// Backend settings passed through to every MILP of the synthesis (preimages and the
    /// relaxed count): experiments and MPS dumps, never a change of meaning.
    pub solver: SolverTuning,
    /// Checked between layers: once passed, [`compute_preimages`] stops with
    /// [`PreimageError::DeadlineExpired`] (docs/method.md eq. (82)).
    pub deadline: crate::deadline::Deadline,
}

impl Default for PreimageOptions {
    fn default() -> Self {
        Self {
            template: TemplateKind::Code,
            engine: Engine::Fast,
            chi_max: CHI_MAX_DEFAULT,
            time_limit: None,
            gap: 0.0,
            solver: SolverTuning::default(),
            deadline: crate::deadline::Deadline::NONE,
        }
    }
}

/// How a layer's `χ` was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChiSource {
    /// Solver optimum minus the safety margin.
    Optimal,
    /// No escape up to `chi_max`: `χ = chi_max`.
    Capped,
    /// A solve hit its time limit: its proven bound minus the margin was used.
    TimeLimitBound,
    /// Supplied by the caller (e.g. reused from an earlier run on the same task, see
    /// [`preimages_from_chi`]); not proven in this run.
    Given,
    /// Settled by a relaxation bound: a part's bound within the allowed gap
    /// ([`PreimageOptions::gap`]) or the abstraction-only engine ([`Engine::Abstract`]).
    /// Safe, possibly below the optimum.
    GapBound,
}

/// The preimage `P_k = T_k(χ)` of hidden layer `k`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preimage {
    /// Affine layer index of the hidden pre-activations.
    pub layer: usize,
    /// The safe `χ`.
    pub chi: f64,
    /// Lower template widths `α`.
    pub alpha: Vec<f64>,
    /// Upper template widths `β`.
    pub beta: Vec<f64>,
    /// Whether the lower side of neuron `j` is part of the preimage. A neuron whose template
    /// upper bound is `≤ 0` over the whole box is always inactive, so only "stays ≤ 0"
    /// matters (authors' code); its lower side is not constrained.
    pub lower_checked: Vec<bool>,
    /// How `χ` was obtained.
    pub source: ChiSource,
    /// MILPs solved.
    pub milps: usize,
    /// Escape conditions skipped by the cheap bound (fast engine); after the χ = 0 shortcut
    /// (docs/method.md, eq. (73)) every part but the one that closed at 0.
    pub pruned: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The margin subtracted from a solver's `χ`: larger than CBC's default primal feasibility
/// (1e−7) and integrality (1e−6) tolerances times any big-M in our models, relative to `χ`.
///
/// (docs/method.md, eq. (28))
pub fn safety_margin(chi: f64) -> f64 {
    1e-4 * (1.0 + chi.abs())
}

/// Computes the preimages of all hidden layers, last hidden layer first (Alg. 1 lines 2–8).
///
/// `dp` must be DeepPoly of the float network over the property's box (all layers), and
/// `centre_pre[k]` the pre-activations of layer `k` at the centre input (for the code template).
/// Returns one [`Preimage`] per hidden layer, input side first.
///
/// (docs/method.md, eqs. (25), (28))
pub fn compute_preimages(
    dp: &DeepPoly<'_>,
    centre_pre: &[Vec<f64>],
    spec: OutputSpec,
    backend: &dyn Backend,
    opts: &PreimageOptions,
) -> Result<Vec<Preimage>, PreimageError> {
    let net = dp.network();
    let d = net.depth();
    if dp.computed_layers() + 1 < d {
        return Err(PreimageError::MissingBounds(dp.computed_layers()));
    }
    // The fast engine's per-part work follows the rows' entries (docs/method.md, eq. (85));
    // the paper engine's one MILP still encodes every neuron of the layer.
    if opts.engine == Engine::Paper
        && let Some(k) = (0..d.saturating_sub(1)).find(|&k| net.layers()[k + 1].is_sparse())
    {
        return Err(PreimageError::SparseLayer(k));
    }
    let mut out: Vec<Preimage> = Vec::new();
    for k in (0..d.saturating_sub(1)).rev() {
        if opts.deadline.expired() {
            return Err(PreimageError::DeadlineExpired(k));
        }
        let lb = dp.layer(k);
        let (alpha, beta) = template_widths(opts.template, &lb.lo, &lb.hi, &centre_pre[k]);
        let ctx = LayerCtx::new(dp, k, &alpha, &beta);
        let mut escapes = escape_conditions(net, dp, k, spec, out.last());
        if let Some(e) = net.layers()[k + 1].coef_error() {
            // Soundness (docs/method.md, eq. (76)): layer k + 1 is stored with coefficient
            // error; every point of the MILP has |z_j| ≤ max(u_j(χ_max), 0), so the real
            // layer's outputs are within σ of the stored ones there, and each escape row is
            // made easier by its σ terms (more escapes: χ, the preimage, can only shrink).
            let (_, yhi) = ctx.y_bounds(opts.chi_max);
            let zabs: Vec<f64> = yhi.iter().map(|&u| u.max(0.0)).collect();
            widen_escapes(&mut escapes, &e.slack(&zabs), k + 2 == d, spec);
        }
        let start = Instant::now();
        let (chi, source, milps, pruned) = match opts.engine {
            Engine::Fast => solve_fast(&ctx, &escapes, backend, opts)?,
            Engine::Paper => solve_paper(&ctx, &escapes, backend, opts)?,
            Engine::Abstract => solve_abstract(&ctx, &escapes, opts),
        };
        tracing::debug!(layer = k, chi, ?source, milps, pruned, "preimage");
        out.push(Preimage {
            layer: k,
            chi,
            lower_checked: lower_checked(&ctx, chi),
            alpha,
            beta,
            source,
            milps,
            pruned,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    out.reverse();
    Ok(out)
}

/// Lowers the right-hand side of every escape row by how far the stored next layer can be
/// from the real one (`σ`, docs/method.md, eqs. (75), (76)): a row of neuron `m` (either
/// side) by `σ_m`; an output row `y_a − y_b ≥ …` by `σ_a + σ_b`. A real escape is then
/// also an escape of the stored rows.
fn widen_escapes(escapes: &mut [encoding::Escape], sigma: &[f64], output: bool, spec: OutputSpec) {
    let down = |r: f64, s: f64| (r - s).next_down();
    if output {
        let (fixed, classes): (usize, Vec<usize>) = match spec {
            OutputSpec::Robust { label } => {
                (label, (0..sigma.len()).filter(|&j| j != label).collect())
            }
            OutputSpec::NotTarget { target } => {
                (target, (0..sigma.len()).filter(|&j| j != target).collect())
            }
        };
        let mut it = classes.iter();
        for e in escapes.iter_mut() {
            for row in &mut e.rows {
                let j = *it.next().expect("one output row per other class");
                row.rhs = down(row.rhs, (sigma[fixed] + sigma[j]).next_up());
            }
        }
        return;
    }
    for e in escapes.iter_mut() {
        // Neuron rows are tagged "neuron {m} active|above|below" (encoding.rs).
        let m: usize = e
            .tag
            .strip_prefix("neuron ")
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .expect("a neuron escape names its neuron");
        for row in &mut e.rows {
            row.rhs = down(row.rhs, sigma[m]);
        }
    }
}

/// Rebuilds the preimages from known `χ` values (input side first, one per hidden layer)
/// without solving anything: the template `T_k(χ)` is fully determined by DeepPoly, the
/// centre and `χ`, so an earlier run's `χ` on the same task gives the same preimages.
/// Used to run the relaxed forward search on a strict run's preimages (`bench robustness
/// --preimages-from`). The values are *not* re-proven: a wrong `χ` can make a hidden-layer
/// check accept a config it should not, but never a wrong certificate, because the output
/// layer's check is a full DeepPoly proof of the property on the quantized network.
pub fn preimages_from_chi(
    dp: &DeepPoly<'_>,
    centre_pre: &[Vec<f64>],
    template: TemplateKind,
    chis: &[f64],
) -> Result<Vec<Preimage>, PreimageError> {
    let d = dp.network().depth();
    if dp.computed_layers() + 1 < d {
        return Err(PreimageError::MissingBounds(dp.computed_layers()));
    }
    let hidden = d.saturating_sub(1);
    if chis.len() != hidden {
        return Err(PreimageError::GivenChi(format!(
            "{} values for {hidden} hidden layers",
            chis.len()
        )));
    }
    if let Some(c) = chis.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
        return Err(PreimageError::GivenChi(format!(
            "{c} is not a finite number ≥ 0"
        )));
    }
    (0..hidden)
        .map(|k| {
            let start = Instant::now();
            let lb = dp.layer(k);
            let (alpha, beta) = template_widths(template, &lb.lo, &lb.hi, &centre_pre[k]);
            let ctx = LayerCtx::new(dp, k, &alpha, &beta);
            let chi = chis[k];
            Ok(Preimage {
                layer: k,
                chi,
                lower_checked: lower_checked(&ctx, chi),
                alpha,
                beta,
                source: ChiSource::Given,
                milps: 0,
                pruned: 0,
                seconds: start.elapsed().as_secs_f64(),
            })
        })
        .collect()
}

/// What an engine returns for one layer: `(χ, source, MILPs solved, escape conditions pruned)`.
type LayerOutcome = (f64, ChiSource, usize, usize);

/// Solver options: the fast engine's small per-part MILPs (eq. (83)) run without cutting
/// planes, presolve and preprocessing, but with strong branching (without it one MP1 part
/// took 96 s instead of 1.3 s of CPU); the paper engine keeps the solver's defaults (the
/// baseline).
fn solve_opts(opts: &PreimageOptions) -> SolveOptions {
    let fast = opts.engine == Engine::Fast;
    SolveOptions {
        time_limit: opts.time_limit,
        no_cuts: fast,
        no_strong_branching: false,
        no_presolve: fast,
        tuning: opts.solver.clone(),
    }
}

/// Turns a solve of `min χ` into a safe `χ` candidate (`None` = no escape below the cap).
///
/// (docs/method.md, eq. (28))
fn safe_chi(
    layer: usize,
    s: &certquant_milp::Solution,
) -> Result<Option<(f64, bool)>, PreimageError> {
    match s.status {
        Status::Infeasible => Ok(None),
        Status::Optimal => {
            let v = s.objective.or(s.best_bound).unwrap_or(0.0);
            Ok(Some(((v - safety_margin(v)).max(0.0), false)))
        }
        Status::TimeLimit => {
            let b = s.best_bound.unwrap_or(0.0).max(0.0);
            Ok(Some(((b - safety_margin(b)).max(0.0), true)))
        }
        status => Err(PreimageError::Solver { layer, status }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::{Affine, Network};
    use certquant_core::spec::InputBox;
    use certquant_milp::cbc::Cbc;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Escape rows over a layer with coefficient error are lowered by their σ terms
    /// (eq. (76)): neuron `m`'s rows (either side) by `σ_m`, an output row for class `j`
    /// against label `g` by `σ_j + σ_g`; never raised.
    #[test]
    fn widened_escape_rows_subtract_their_slack() {
        use encoding::{Escape, EscapeRow, Side};
        let row = |rhs: f64| EscapeRow {
            wz: vec![(0, 1.0)],
            wx: None,
            rhs,
        };
        let esc = |tag: String, side| Escape {
            rows: vec![row(1.0)],
            side,
            tag,
        };
        let sigma = [0.5, 0.25, 0.125];
        let mut hidden = vec![
            esc("neuron 0 active".into(), Side::Above),
            esc("neuron 1 above".into(), Side::Above),
            esc("neuron 1 below".into(), Side::Below),
            esc("neuron 2 above".into(), Side::Above),
        ];
        widen_escapes(&mut hidden, &sigma, false, OutputSpec::Robust { label: 0 });
        let want = [0.5, 0.75, 0.75, 0.875];
        for (e, w) in hidden.iter().zip(want) {
            assert!(e.rows[0].rhs <= w && e.rows[0].rhs > w - 1e-15, "{}", e.tag);
        }
        // Robust{label 1}: one escape per class j ≠ 1, rhs − (σ_j + σ_1).
        let mut out = vec![
            esc("class 0".into(), Side::Above),
            esc("class 2".into(), Side::Above),
        ];
        widen_escapes(&mut out, &sigma, true, OutputSpec::Robust { label: 1 });
        assert!(out[0].rows[0].rhs <= 0.25 && out[1].rows[0].rhs <= 0.625);
        // NotTarget{2}: one escape with a row per j ≠ 2.
        let mut nt = vec![Escape {
            rows: vec![row(1.0), row(1.0)],
            side: Side::Above,
            tag: "target 2".into(),
        }];
        widen_escapes(&mut nt, &sigma, true, OutputSpec::NotTarget { target: 2 });
        assert!(nt[0].rows[0].rhs <= 0.375 && nt[0].rows[1].rhs <= 0.625);
        assert!(nt[0].rows[0].rhs > 0.374 && nt[0].rows[1].rhs > 0.624);
    }

    /// A random ReLU net with the given widths and a box of radius `eps` around a random
    /// centre, on which DeepPoly proves robustness (seeds are tried in order until it does).
    pub(super) fn robust_task(
        dims: &[usize],
        eps: f64,
        seed: u64,
    ) -> (Network, InputBox, Vec<f64>, usize) {
        masked_task(dims, eps, seed, 1.0)
    }

    /// [`robust_task`] whose hidden-to-hidden weights are each kept with probability `keep`
    /// and zero otherwise, as a pooling layer's rows are (`keep = 1`: the same nets as
    /// [`robust_task`], no extra random draws).
    pub(super) fn masked_task(
        dims: &[usize],
        eps: f64,
        seed: u64,
        keep: f64,
    ) -> (Network, InputBox, Vec<f64>, usize) {
        let last = dims.len() - 2;
        for s in seed.. {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            let layers = dims
                .windows(2)
                .enumerate()
                .map(|(i, w)| {
                    let wt = (0..w[0] * w[1])
                        .map(|_| {
                            let v = rng.random_range(-1.0..1.0);
                            let kept = keep >= 1.0
                                || i == 0
                                || i == last
                                || rng.random_range(0.0..1.0) < keep;
                            if kept { v } else { 0.0 }
                        })
                        .collect();
                    let b = (0..w[1]).map(|_| rng.random_range(-0.3..0.3)).collect();
                    Affine::new(i, w[1], w[0], wt, b).unwrap()
                })
                .collect();
            let net = Network::new(layers).unwrap();
            let centre: Vec<f64> = (0..dims[0]).map(|_| rng.random_range(0.2..0.8)).collect();
            let bx = InputBox::linf_ball(&centre, eps).unwrap();
            let label = net.predict(&centre);
            let dp = DeepPoly::run(&net, &bx).unwrap();
            if dp
                .logit_difference_lower_bounds(label)
                .unwrap()
                .iter()
                .all(|&m| m > 0.05)
            {
                return (net, bx, centre, label);
            }
        }
        unreachable!()
    }

    fn preimages(
        net: &Network,
        bx: &InputBox,
        centre: &[f64],
        label: usize,
        engine: Engine,
    ) -> Vec<Preimage> {
        let dp = DeepPoly::run(net, bx).unwrap();
        let centre_pre = crate::algorithm1::pre_activations(net, centre);
        let opts = PreimageOptions {
            engine,
            ..PreimageOptions::default()
        };
        compute_preimages(&dp, &centre_pre, OutputSpec::Robust { label }, &Cbc, &opts).unwrap()
    }

    /// `f(x)` of one DeepPoly row.
    pub(super) fn eval(lb: &certquant_bounds::LinearBounds, j: usize, x: &[f64]) -> f64 {
        lb.constant(j) + lb.coeffs(j).iter().zip(x).map(|(a, v)| a * v).sum::<f64>()
    }

    /// Samples points of `T_k(χ)` (box vertices and template faces are favoured, since the
    /// escapes are extreme points) and checks that ReLU and the next layer map each into the
    /// next preimage, or for the last hidden layer into the property. A `χ` that is too large
    /// fails here; one too small does not (that is the agreement test's job).
    pub(super) fn assert_sampled_points_stay_inside(
        net: &Network,
        bx: &InputBox,
        label: usize,
        pre: &[Preimage],
        seed: u64,
    ) {
        let dp = DeepPoly::run(net, bx).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pick = |rng: &mut ChaCha8Rng, l: f64, h: f64| match rng.random_range(0..3) {
            0 => l,
            1 => h,
            _ => rng.random_range(l..=h),
        };
        for (k, p) in pre.iter().enumerate() {
            let lb = dp.layer(k);
            for _ in 0..3000 {
                let x: Vec<f64> = bx
                    .lo()
                    .iter()
                    .zip(bx.hi())
                    .map(|(&l, &h)| pick(&mut rng, l, h))
                    .collect();
                let z: Vec<f64> = (0..p.alpha.len())
                    .map(|j| {
                        let lo = eval(&lb.lower, j, &x) - p.alpha[j] * p.chi;
                        let hi = eval(&lb.upper, j, &x) + p.beta[j] * p.chi;
                        pick(&mut rng, lo, hi).max(0.0)
                    })
                    .collect();
                let y = net.layers()[k + 1].apply(&z);
                if let Some(next) = pre.get(k + 1) {
                    let nb = dp.layer(k + 1);
                    for (m, &v) in y.iter().enumerate() {
                        if !next.lower_checked[m] {
                            // an always-inactive neuron only has to stay inactive
                            assert!(v <= 1e-9, "layer {k}: neuron {m} turns active");
                            continue;
                        }
                        let hi = eval(&nb.upper, m, &x) + next.beta[m] * next.chi;
                        assert!(
                            v <= hi + 1e-9,
                            "layer {k}: neuron {m} above the next preimage"
                        );
                        let lo = eval(&nb.lower, m, &x) - next.alpha[m] * next.chi;
                        assert!(
                            v >= lo - 1e-9,
                            "layer {k}: neuron {m} below the next preimage"
                        );
                    }
                } else {
                    for (j, &v) in y.iter().enumerate() {
                        assert!(
                            j == label || y[label] > v,
                            "layer {k}: class {j} reaches the label"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sampled_points_of_each_preimage_stay_inside_the_next() {
        for (dims, seed) in [
            (vec![4, 6, 3], 1),
            (vec![5, 6, 5, 3], 20),
            (vec![3, 8, 6, 4, 3], 40),
        ] {
            let (net, bx, centre, label) = robust_task(&dims, 0.15, seed);
            for engine in [Engine::Fast, Engine::Paper] {
                let pre = preimages(&net, &bx, &centre, label, engine);
                assert_eq!(pre.len(), dims.len() - 2);
                // not a trivial case: the first preimage is limited by an escape
                assert_eq!(pre[0].source, ChiSource::Optimal, "{dims:?}");
                assert!(pre.iter().all(|p| p.chi.is_finite() && p.chi >= 0.0));
                assert_sampled_points_stay_inside(&net, &bx, label, &pre, seed);
            }
        }
    }

    #[test]
    fn fast_and_paper_engines_agree_on_chi() {
        for (dims, seed) in [
            (vec![4, 6, 3], 2),
            (vec![5, 6, 5, 3], 30),
            (vec![4, 7, 7, 3], 60),
        ] {
            let (net, bx, centre, label) = robust_task(&dims, 0.15, seed);
            let fast = preimages(&net, &bx, &centre, label, Engine::Fast);
            assert!(
                fast.iter().all(|p| p.source == ChiSource::Optimal),
                "{dims:?}"
            );
            let paper = preimages(&net, &bx, &centre, label, Engine::Paper);
            for (f, p) in fast.iter().zip(&paper) {
                assert!(
                    (f.chi - p.chi).abs() <= 1e-3 * (1.0 + p.chi),
                    "{dims:?}: layer {} fast χ {} paper χ {}",
                    f.layer,
                    f.chi,
                    p.chi
                );
            }
        }
    }

    #[test]
    fn preimages_from_chi_rebuild_the_computed_ones() {
        let (net, bx, centre, label) = robust_task(&[5, 6, 5, 3], 0.05, 20);
        let pre = preimages(&net, &bx, &centre, label, Engine::Fast);
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
        let chis: Vec<f64> = pre.iter().map(|p| p.chi).collect();
        let again = preimages_from_chi(&dp, &centre_pre, TemplateKind::Code, &chis).unwrap();
        for (a, b) in pre.iter().zip(&again) {
            assert_eq!((a.layer, a.chi), (b.layer, b.chi));
            assert_eq!(a.alpha, b.alpha);
            assert_eq!(a.beta, b.beta);
            assert_eq!(a.lower_checked, b.lower_checked);
            assert_eq!(b.source, ChiSource::Given);
        }
        for bad in [
            vec![0.1],
            vec![0.1, -0.2],
            vec![f64::NAN, 0.1],
            vec![0.1, f64::INFINITY],
        ] {
            let e = preimages_from_chi(&dp, &centre_pre, TemplateKind::Code, &bad).unwrap_err();
            assert!(matches!(e, PreimageError::GivenChi(_)), "{bad:?}: {e}");
        }
    }
}
