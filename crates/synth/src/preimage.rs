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
//!   with one indicator binary per escape condition;
//! * [`Engine::Fast`]: the disjunction decomposed into one small MILP per escape condition
//!   (min over a disjunction = min of the parts), with a running cutoff `χ ≤ χ_best`, a cheap
//!   linear-relaxation bound that skips parts which cannot escape below the cutoff, and
//!   parts ordered most-dangerous first.
//!
//! # Soundness
//! A preimage only *guides* the choice of bit-widths: the final answer of Algorithm 1 is a
//! DeepPoly proof on the quantized network, so an optimistic `χ` can lose a certificate but
//! never create a false one. Still, every reported `χ` errs on the safe side: it is the
//! solver's optimum (or, on a time limit, its proven lower bound) minus [`safety_margin`],
//! which exceeds CBC's feasibility and integrality tolerances; big-M constants come from
//! outward-rounded bounds of the template at the largest `χ` considered.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use certquant_bounds::DeepPoly;
use certquant_bounds::arith::{linear_max, linear_min};
use certquant_core::model::Network;
use certquant_core::spec::OutputSpec;
use certquant_milp::{Backend, MilpError, Problem, Sense, SolveOptions, Status, Var};

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
    /// Given `χ` values (see [`preimages_from_chi`]) do not fit the network.
    #[error("given χ values: {0}")]
    GivenChi(String),
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
}

/// Options for preimage computation.
#[derive(Debug, Clone)]
pub struct PreimageOptions {
    /// Template widths.
    pub template: TemplateKind,
    /// Engine.
    pub engine: Engine,
    /// Largest `χ` considered; big-M constants are taken at this value.
    pub chi_max: f64,
    /// Time limit per MILP solve, seconds.
    pub time_limit: Option<f64>,
    /// Fast engine, anytime mode: a part whose proven lower bound (linear relaxation) is
    /// within this relative gap of the current cutoff is settled by that bound, without a
    /// MILP. `0` = exact (default); `1` = relaxation bounds only (no MILP at all). The
    /// layer's `χ` is then at least `(1 − gap)` times the optimum and always safe, since a
    /// part cannot escape below its relaxation bound.
    pub gap: f64,
}

impl Default for PreimageOptions {
    fn default() -> Self {
        Self {
            template: TemplateKind::Code,
            engine: Engine::Fast,
            chi_max: 4.0,
            time_limit: None,
            gap: 0.0,
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
    /// Settled by a part's relaxation bound within the allowed gap
    /// ([`PreimageOptions::gap`]): safe, possibly below the optimum.
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
    /// Escape conditions skipped by the cheap bound (fast engine).
    pub pruned: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The margin subtracted from a solver's `χ`: larger than CBC's default primal feasibility
/// (1e−7) and integrality (1e−6) tolerances times any big-M in our models, relative to `χ`.
pub fn safety_margin(chi: f64) -> f64 {
    1e-4 * (1.0 + chi.abs())
}

/// Computes `α, β` of the template for affine layer `k` of the float network.
pub fn template_widths(
    kind: TemplateKind,
    lo: &[f64],
    hi: &[f64],
    centre_values: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    match kind {
        TemplateKind::Code => (
            lo.iter()
                .zip(centre_values)
                .map(|(l, c)| (c - l).max(1e-3))
                .collect(),
            hi.iter()
                .zip(centre_values)
                .map(|(u, c)| (u - c).max(1e-3))
                .collect(),
        ),
        TemplateKind::Paper => {
            let w: Vec<f64> = lo.iter().zip(hi).map(|(l, u)| (u - l) / 2.0).collect();
            (w.clone(), w)
        }
    }
}

/// One escape condition: `wz·z + wx·x ≥ rhs` for all rows (a conjunction; usually one row).
#[derive(Debug, Clone)]
struct Escape {
    rows: Vec<EscapeRow>,
    /// Human-readable tag for logs.
    tag: String,
}

#[derive(Debug, Clone)]
struct EscapeRow {
    wz: Vec<f64>,
    wx: Option<Vec<f64>>,
    rhs: f64,
}

/// The fixed data of layer `k`'s problem.
struct LayerCtx<'a> {
    dp: &'a DeepPoly<'a>,
    k: usize,
    alpha: &'a [f64],
    beta: &'a [f64],
    /// Sound minimum of `f_j^≤` and maximum of `f_j^≥` over the box (`χ`-independent).
    conc_lo: Vec<f64>,
    conc_hi: Vec<f64>,
    /// Inputs that are not fixed by the box (a trigger box frees only the patch).
    free: Vec<usize>,
    /// `f_j^≤` and `f_j^≥` with the fixed inputs folded into the constant (heuristic
    /// evaluation only: witnesses and gradients, never a bound).
    lower_fixed: Vec<f64>,
    upper_fixed: Vec<f64>,
}

impl<'a> LayerCtx<'a> {
    fn new(dp: &'a DeepPoly<'a>, k: usize, alpha: &'a [f64], beta: &'a [f64]) -> Self {
        let lb = dp.layer(k);
        let (bl, bh) = (dp.input().lo(), dp.input().hi());
        let n = dp.network().layers()[k].outputs();
        let free: Vec<usize> = (0..bl.len()).filter(|&i| bl[i] < bh[i]).collect();
        let fold = |coeffs: &[f64], c: f64| -> f64 {
            c + coeffs
                .iter()
                .zip(bl.iter().zip(bh))
                .filter(|(_, (l, h))| l == h)
                .map(|(a, (l, _))| a * l)
                .sum::<f64>()
        };
        Self {
            dp,
            k,
            alpha,
            beta,
            conc_lo: (0..n)
                .map(|j| linear_min(lb.lower.coeffs(j), lb.lower.constant(j), bl, bh))
                .collect(),
            conc_hi: (0..n)
                .map(|j| linear_max(lb.upper.coeffs(j), lb.upper.constant(j), bl, bh))
                .collect(),
            lower_fixed: (0..n)
                .map(|j| fold(lb.lower.coeffs(j), lb.lower.constant(j)))
                .collect(),
            upper_fixed: (0..n)
                .map(|j| fold(lb.upper.coeffs(j), lb.upper.constant(j)))
                .collect(),
            free,
        }
    }

    fn n(&self) -> usize {
        self.dp.network().layers()[self.k].outputs()
    }

    /// `f_j^≥(x)` (upper) or `f_j^≤(x)` (lower) at `x`, summing over the free inputs only.
    fn eval_free(&self, j: usize, upper: bool, x: &[f64]) -> f64 {
        let lb = self.dp.layer(self.k);
        let (coeffs, c) = if upper {
            (lb.upper.coeffs(j), self.upper_fixed[j])
        } else {
            (lb.lower.coeffs(j), self.lower_fixed[j])
        };
        c + self.free.iter().map(|&i| coeffs[i] * x[i]).sum::<f64>()
    }

    /// Sound concrete bounds of the template at `chi`.
    fn y_bounds(&self, chi: f64) -> (Vec<f64>, Vec<f64>) {
        let lo = (0..self.n())
            .map(|j| (self.conc_lo[j] - self.alpha[j] * chi).next_down())
            .collect();
        let hi = (0..self.n())
            .map(|j| (self.conc_hi[j] + self.beta[j] * chi).next_up())
            .collect();
        (lo, hi)
    }

    /// A cheap over-approximation of `max (wz·z + wx·x) − rhs` over `T(chi)` (CROWN-style
    /// back-substitution through the triangle relaxation), used to skip escape conditions.
    fn escape_upper_bound(&self, row: &EscapeRow, chi: f64, ylo: &[f64], yhi: &[f64]) -> f64 {
        let lb = self.dp.layer(self.k);
        let dim = self.dp.network().input_dim();
        let mut coef = row.wx.clone().unwrap_or_else(|| vec![0.0; dim]);
        let mut cst = -row.rhs;
        for (j, &a) in row.wz.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            let (l, u) = (ylo[j], yhi[j]);
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

    /// Builds the base model at cutoff `chi_cap`: `x ∈ box`, `χ ∈ [0, chi_cap]`, `y ∈ T(χ)`,
    /// `z = ReLU(y)` with big-M from the template bounds at `chi_cap`.
    fn base_model(&self, chi_cap: f64) -> BaseModel {
        let mut p = Problem::new();
        let lbnd = self.dp.layer(self.k);
        let bx = self.dp.input();
        let x: Vec<Var> = bx
            .lo()
            .iter()
            .zip(bx.hi())
            .map(|(&l, &h)| p.add_var(l, h))
            .collect();
        let chi = p.add_var(0.0, chi_cap);
        let (ylo, yhi) = self.y_bounds(chi_cap);
        let mut z = Vec::with_capacity(self.n());
        let mut ys = Vec::with_capacity(self.n());
        let mut delta = Vec::with_capacity(self.n());
        for j in 0..self.n() {
            let y = p.add_var(ylo[j], yhi[j]);
            ys.push(y);
            // f^≤(x) − αχ − y ≤ 0   and   y − f^≥(x) − βχ ≤ 0
            let lo_terms = x
                .iter()
                .zip(lbnd.lower.coeffs(j))
                .map(|(&v, &c)| (v, c))
                .chain([(chi, -self.alpha[j]), (y, -1.0)]);
            p.add_row(lo_terms, f64::NEG_INFINITY, -lbnd.lower.constant(j));
            let hi_terms = x
                .iter()
                .zip(lbnd.upper.coeffs(j))
                .map(|(&v, &c)| (v, -c))
                .chain([(chi, -self.beta[j]), (y, 1.0)]);
            p.add_row(hi_terms, f64::NEG_INFINITY, lbnd.upper.constant(j));
            let (l, u) = (ylo[j], yhi[j]);
            let zj = if u <= 0.0 {
                delta.push(None);
                None
            } else if l >= 0.0 {
                delta.push(None);
                Some(y)
            } else {
                let zv = p.add_var(0.0, u);
                let d = p.add_binary();
                // z ≥ y;  z ≤ y − l(1 − d);  z ≤ u·d
                p.add_row([(zv, 1.0), (y, -1.0)], 0.0, f64::INFINITY);
                p.add_row([(zv, 1.0), (y, -1.0), (d, -l)], f64::NEG_INFINITY, -l);
                p.add_row([(zv, 1.0), (d, -u)], f64::NEG_INFINITY, 0.0);
                delta.push(Some(d));
                Some(zv)
            };
            z.push(zj);
        }
        p.set_objective([(chi, 1.0)], Sense::Minimize);
        BaseModel {
            p,
            x,
            chi,
            y: ys,
            z,
            delta,
            zhi: yhi.iter().map(|u| u.max(0.0)).collect(),
        }
    }
}

struct BaseModel {
    p: Problem,
    x: Vec<Var>,
    chi: Var,
    y: Vec<Var>,
    z: Vec<Option<Var>>,
    delta: Vec<Option<Var>>,
    zhi: Vec<f64>,
}

impl BaseModel {
    /// A MIP start from a witness: input `x`, `χ`, and each `y_j` at the template end
    /// chosen by [`LayerCtx::escape_at`].
    fn start_from(&self, ctx: &LayerCtx<'_>, e: &Escape, x: &[f64], chi: f64) -> Vec<f64> {
        let mut v = vec![0.0; self.p.num_vars()];
        for (var, &val) in self.x.iter().zip(x) {
            v[var.0] = val;
        }
        v[self.chi.0] = chi;
        let ys = ctx.template_point(e, x, chi);
        for j in 0..ys.len() {
            v[self.y[j].0] = ys[j];
            if let Some(d) = self.delta[j] {
                v[d.0] = if ys[j] > 0.0 { 1.0 } else { 0.0 };
            }
            if let Some(z) = self.z[j]
                && z != self.y[j]
            {
                v[z.0] = ys[j].max(0.0);
            }
        }
        v
    }

    fn terms(&self, row: &EscapeRow) -> Vec<(Var, f64)> {
        let mut t: Vec<(Var, f64)> = self
            .z
            .iter()
            .zip(&row.wz)
            .filter_map(|(z, &c)| z.map(|v| (v, c)))
            .collect();
        if let Some(wx) = &row.wx {
            t.extend(self.x.iter().zip(wx).map(|(&v, &c)| (v, c)));
        }
        t
    }

    /// Interval lower bound of `wz·z + wx·x − rhs` (for the paper engine's big-M).
    fn row_min(&self, row: &EscapeRow, bx_lo: &[f64], bx_hi: &[f64]) -> f64 {
        let mut s = -row.rhs;
        for ((z, &c), &h) in self.z.iter().zip(&row.wz).zip(&self.zhi) {
            if z.is_some() && c < 0.0 {
                s += c * h;
            }
        }
        if let Some(wx) = &row.wx {
            s += linear_min(wx, 0.0, bx_lo, bx_hi);
        }
        s
    }
}

/// Computes the preimages of all hidden layers, last hidden layer first (Alg. 1 lines 2–8).
///
/// `dp` must be DeepPoly of the float network over the property's box (all layers), and
/// `centre_pre[k]` the pre-activations of layer `k` at the centre input (for the code template).
/// Returns one [`Preimage`] per hidden layer, input side first.
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
    let mut out: Vec<Preimage> = Vec::new();
    for k in (0..d.saturating_sub(1)).rev() {
        let lb = dp.layer(k);
        let (alpha, beta) = template_widths(opts.template, &lb.lo, &lb.hi, &centre_pre[k]);
        let escapes = escape_conditions(net, dp, k, spec, out.last());
        let ctx = LayerCtx::new(dp, k, &alpha, &beta);
        let start = Instant::now();
        let (chi, source, milps, pruned) = match opts.engine {
            Engine::Fast => solve_fast(&ctx, &escapes, backend, opts)?,
            Engine::Paper => solve_paper(&ctx, &escapes, backend, opts)?,
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

/// Neurons whose template upper bound is `≤ 0` everywhere at this `χ` are always inactive:
/// only "stays `≤ 0`" matters for them (authors' code), so their lower side is unchecked.
fn lower_checked(ctx: &LayerCtx<'_>, chi: f64) -> Vec<bool> {
    let (_, yhi) = ctx.y_bounds(chi);
    yhi.iter().map(|&u| u > 0.0).collect()
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

/// The escape conditions of hidden layer `k`: leaving the next preimage (one condition per
/// neuron and side) or, for the last hidden layer, violating the output condition.
fn escape_conditions(
    net: &Network,
    dp: &DeepPoly<'_>,
    k: usize,
    spec: OutputSpec,
    next: Option<&Preimage>,
) -> Vec<Escape> {
    let nl = &net.layers()[k + 1];
    let mut v = Vec::new();
    if k + 2 == net.depth() {
        let row_diff = |a: usize, b: usize| -> Vec<f64> {
            nl.row(a)
                .iter()
                .zip(nl.row(b))
                .map(|(x, y)| x - y)
                .collect()
        };
        match spec {
            OutputSpec::Robust { label } => {
                for j in (0..nl.outputs()).filter(|&j| j != label) {
                    // y_j − y_g ≥ 0
                    v.push(Escape {
                        rows: vec![EscapeRow {
                            wz: row_diff(j, label),
                            wx: None,
                            rhs: nl.bias()[label] - nl.bias()[j],
                        }],
                        tag: format!("class {j}"),
                    });
                }
            }
            OutputSpec::NotTarget { target } => {
                // t becomes a top class: y_t − y_j ≥ 0 for every j
                let rows = (0..nl.outputs())
                    .filter(|&j| j != target)
                    .map(|j| EscapeRow {
                        wz: row_diff(target, j),
                        wx: None,
                        rhs: nl.bias()[j] - nl.bias()[target],
                    })
                    .collect();
                v.push(Escape {
                    rows,
                    tag: format!("target {target}"),
                });
            }
        }
    } else if let Some(p) = next {
        let nb = dp.layer(k + 1);
        for m in 0..nl.outputs() {
            if !p.lower_checked[m] {
                // A neuron whose whole next template lies at or below 0 escapes only by
                // becoming active, W_m z + b_m ≥ 0: every value ≤ 0 gives the same ReLU output
                // 0 as the template's points (the authors' code uses the same upper bound 0).
                v.push(Escape {
                    rows: vec![EscapeRow {
                        wz: nl.row(m).to_vec(),
                        wx: None,
                        rhs: -nl.bias()[m],
                    }],
                    tag: format!("neuron {m} active"),
                });
                continue;
            }
            // above: W_m z + b_m ≥ f^≥_m(x) + β_m χ'
            let neg_upper: Vec<f64> = nb.upper.coeffs(m).iter().map(|c| -c).collect();
            v.push(Escape {
                rows: vec![EscapeRow {
                    wz: nl.row(m).to_vec(),
                    wx: Some(neg_upper),
                    rhs: nb.upper.constant(m) + p.beta[m] * p.chi - nl.bias()[m],
                }],
                tag: format!("neuron {m} above"),
            });
            // below: W_m z + b_m ≤ f^≤_m(x) − α_m χ'
            v.push(Escape {
                rows: vec![EscapeRow {
                    wz: nl.row(m).iter().map(|c| -c).collect(),
                    wx: Some(nb.lower.coeffs(m).to_vec()),
                    rhs: nl.bias()[m] - nb.lower.constant(m) + p.alpha[m] * p.chi,
                }],
                tag: format!("neuron {m} below"),
            });
        }
    }
    v
}

type LayerOutcome = (f64, ChiSource, usize, usize);

/// Solver options: the fast engine's small per-part MILPs run without cutting planes; the
/// paper engine keeps the solver's defaults (the baseline).
fn solve_opts(opts: &PreimageOptions) -> SolveOptions {
    SolveOptions {
        time_limit: opts.time_limit,
        no_cuts: opts.engine == Engine::Fast,
    }
}

/// Turns a solve of `min χ` into a safe `χ` candidate (`None` = no escape below the cap).
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

/// Per-part bracket `[lb, ub]` on the part's optimum `χ` from cheap computations:
/// `lb` from bisection on the linear-relaxation bound (no escape is possible below it),
/// `ub` from a concrete escaping point found by projected gradient ascent (an escape exists
/// at `ub`), or the cap when none was found.
#[derive(Debug, Clone)]
struct Bracket {
    lb: f64,
    ub: f64,
    /// `ub` comes from a concrete escaping point.
    witnessed: bool,
    /// The escaping input (when witnessed).
    witness: Option<Vec<f64>>,
}

impl LayerCtx<'_> {
    /// Relaxation says no point of `T(chi)` meets every row of `e`.
    fn relaxation_excludes(&self, e: &Escape, chi: f64) -> bool {
        let (ylo, yhi) = self.y_bounds(chi);
        e.rows
            .iter()
            .any(|r| self.escape_upper_bound(r, chi, &ylo, &yhi) < 0.0)
    }

    /// Largest `χ ≤ cap` (by bisection) at which the relaxation excludes an escape
    /// (`0` if it cannot exclude one even at `χ = 0`).
    fn relaxation_lower_bound(&self, e: &Escape, cap: f64) -> f64 {
        if self.relaxation_excludes(e, cap) {
            return cap;
        }
        if !self.relaxation_excludes(e, 0.0) {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, cap);
        while hi - lo > 1e-7 * (1.0 + hi) {
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
        let n = self.n();
        // direction per neuron: sum of the rows' coefficients
        let mut c = vec![0.0; n];
        for r in &e.rows {
            for (cj, w) in c.iter_mut().zip(&r.wz) {
                *cj += w;
            }
        }
        let mut z = vec![0.0; n];
        let mut grad = if want_grad {
            vec![0.0; x.len()]
        } else {
            Vec::new()
        };
        for j in 0..n {
            let (y, coeffs) = if c[j] >= 0.0 {
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
                z[j] = y;
                if want_grad {
                    // inputs fixed by the box never move: their gradient is not needed
                    for &i in &self.free {
                        grad[i] += c[j] * coeffs[i];
                    }
                }
            }
        }
        let mut worst = f64::INFINITY;
        for r in &e.rows {
            let mut v: f64 = r.wz.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>() - r.rhs;
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

    /// The template point `y` that [`LayerCtx::escape_at`] picks for input `x` at `chi`.
    fn template_point(&self, e: &Escape, x: &[f64], chi: f64) -> Vec<f64> {
        let lb = self.dp.layer(self.k);
        let mut c = vec![0.0; self.n()];
        for r in &e.rows {
            for (cj, w) in c.iter_mut().zip(&r.wz) {
                *cj += w;
            }
        }
        (0..self.n())
            .map(|j| {
                if c[j] >= 0.0 {
                    lb.upper.eval(j, x) + self.beta[j] * chi
                } else {
                    lb.lower.eval(j, x) - self.alpha[j] * chi
                }
            })
            .collect()
    }

    /// Projected gradient ascent on `x` of the escape value at `chi`; returns the best point.
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
                witnessed: false,
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
            witnessed: witness.is_some(),
            witness,
        }
    }
}

/// Gap below which a part's bracket is accepted without a MILP (relative to `1 + χ`).
const BRACKET_TOL: f64 = 1e-5;

fn solve_fast(
    ctx: &LayerCtx<'_>,
    escapes: &[Escape],
    backend: &dyn Backend,
    opts: &PreimageOptions,
) -> Result<LayerOutcome, PreimageError> {
    use rayon::prelude::*;
    let cap = opts.chi_max;
    // Cheap brackets for every part, in parallel.
    let mut parts: Vec<(Bracket, usize)> = escapes
        .par_iter()
        .enumerate()
        .map(|(i, e)| (ctx.bracket(e, cap, opts.gap < 1.0), i))
        .collect();
    // Most dangerous first: smallest witnessed χ, then smallest lower bound.
    parts.sort_by(|a, b| a.0.ub.total_cmp(&b.0.ub).then(a.0.lb.total_cmp(&b.0.lb)));
    // The answer can be no larger than the smallest witnessed escape.
    let mut best = cap;
    let mut source = ChiSource::Capped;
    let (mut milps, mut pruned) = (0, 0);
    for (br, i) in parts {
        let e = &escapes[i];
        if br.lb >= best {
            pruned += 1;
            continue;
        }
        let hi = br.ub.min(best);
        tracing::debug!(layer = ctx.k, tag = %e.tag, lb = br.lb, ub = br.ub, witnessed = br.witnessed, "bracket");
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
        if br.witnessed && hi - br.lb <= BRACKET_TOL * (1.0 + hi) {
            // closed without a solver: no escape below lb (relaxation), one at ub (witness)
            let chi = (br.lb - safety_margin(br.lb)).max(0.0);
            if chi < best {
                best = chi;
                source = ChiSource::Optimal;
            }
            continue;
        }
        let mut m = ctx.base_model(hi);
        m.p.set_bounds(m.chi, br.lb, hi);
        for r in &e.rows {
            let t = m.terms(r);
            m.p.add_row(t, r.rhs, f64::INFINITY);
        }
        // LP relaxation first: its optimum is a valid lower bound on the part's χ
        let lp = backend.solve(&m.p.relaxation(), &solve_opts(opts))?;
        let lp_lb = match lp.status {
            Status::Infeasible => f64::INFINITY,
            Status::Optimal => lp.objective.unwrap_or(br.lb),
            _ => br.lb,
        };
        tracing::debug!(layer = ctx.k, tag = %e.tag, lp_lb, lb = br.lb, ub = br.ub, "LP bound");
        if lp_lb >= hi {
            pruned += 1;
            continue;
        }
        if settle(lp_lb.max(br.lb)) {
            continue;
        }
        if let Some(x) = br.witness.as_deref().filter(|_| hi == br.ub) {
            let start = m.start_from(ctx, e, x, hi);
            m.p.set_initial(start);
        }
        let s = backend.solve(&m.p, &solve_opts(opts))?;
        milps += 1;
        let found = match safe_chi(ctx.k, &s)? {
            // infeasible in [lb, hi]: no escape below hi
            None => {
                if hi < cap && br.witnessed && hi == br.ub {
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

fn solve_paper(
    ctx: &LayerCtx<'_>,
    escapes: &[Escape],
    backend: &dyn Backend,
    opts: &PreimageOptions,
) -> Result<LayerOutcome, PreimageError> {
    let mut m = ctx.base_model(opts.chi_max);
    let bx = ctx.dp.input();
    if escapes.len() == 1 {
        for r in &escapes[0].rows {
            let t = m.terms(r);
            m.p.add_row(t, r.rhs, f64::INFINITY);
        }
    } else {
        // Σ η ≥ 1, and η_e = 1 ⇒ escape e: row − rhs ≥ −M(1 − η)
        let mut etas = Vec::new();
        for e in escapes {
            let eta = m.p.add_binary();
            etas.push((eta, 1.0));
            for r in &e.rows {
                let big_m = (-m.row_min(r, bx.lo(), bx.hi())).max(0.0) * (1.0 + 1e-6) + 1e-6;
                let mut t = m.terms(r);
                t.push((eta, -big_m));
                m.p.add_row(t, r.rhs - big_m, f64::INFINITY);
            }
        }
        m.p.add_row(etas, 1.0, f64::INFINITY);
    }
    let s = backend.solve(&m.p, &solve_opts(opts))?;
    Ok(match safe_chi(ctx.k, &s)? {
        None => (opts.chi_max, ChiSource::Capped, 1, 0),
        Some((chi, true)) => (chi.min(opts.chi_max), ChiSource::TimeLimitBound, 1, 0),
        Some((chi, false)) => (chi.min(opts.chi_max), ChiSource::Optimal, 1, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::Affine;
    use certquant_core::spec::InputBox;
    use certquant_milp::cbc::Cbc;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random ReLU net with the given widths and a box of radius `eps` around a random
    /// centre, on which DeepPoly proves robustness (seeds are tried in order until it does).
    fn robust_task(dims: &[usize], eps: f64, seed: u64) -> (Network, InputBox, Vec<f64>, usize) {
        for s in seed.. {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            let layers = dims
                .windows(2)
                .enumerate()
                .map(|(i, w)| {
                    let wt = (0..w[0] * w[1])
                        .map(|_| rng.random_range(-1.0..1.0))
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
    fn eval(lb: &certquant_bounds::LinearBounds, j: usize, x: &[f64]) -> f64 {
        lb.constant(j) + lb.coeffs(j).iter().zip(x).map(|(a, v)| a * v).sum::<f64>()
    }

    /// Samples points of `T_k(χ)` (box vertices and template faces are favoured, since the
    /// escapes are extreme points) and checks that ReLU and the next layer map each into the
    /// next preimage, or for the last hidden layer into the property. A `χ` that is too large
    /// fails here; one too small does not (that is the agreement test's job).
    fn assert_sampled_points_stay_inside(
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
