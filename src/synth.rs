//! Algorithm 1 of the paper: certified quantization strategy synthesis for one property.
//!
//! 1. DeepPoly on the float network over the input box; the property must be proven there
//!    (otherwise the task is `property-fails`, as in the paper's tables).
//! 2. Preimages of the hidden layers, last first ([`crate::preimage`]).
//! 3. Forward: for each affine layer `i` in order, try `F = B_l..=B_u`; quantize layer `i` with
//!    ⟨I_i + F, F⟩ (earlier layers keep their accepted configs), rerun DeepPoly on the partially
//!    quantized network, and accept the first `F` whose bounds lie inside the preimage (hidden
//!    layers; each check is a linear function over a box, decided in closed form) or, for the
//!    output layer, which *proves the property on the fully quantized network*.
//!
//! Soundness rests on the last step alone: it is a sound DeepPoly proof ([`crate::bounds`]) on
//! the exact quantized network that is returned. Hidden-layer checks and preimages are
//! guides; the relaxed mode (Quadapter*) loosens only those, never the final check.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bounds::arith::{linear_max, linear_min};
use crate::bounds::{BoundsError, DeepPoly, LayerBounds, prove_not_target};
use crate::milp::{Backend, MilpError, Problem, Sense, SolveOptions, Status};
use crate::model::Network;
use crate::preimage::{
    Engine, Preimage, PreimageError, PreimageOptions, TemplateKind, compute_preimages,
    preimages_from_chi,
};
use crate::quantize::{QuantConfig, QuantError, Strategy, config_for, quantize_layer};
use crate::spec::{OutputSpec, Property};

/// Errors of synthesis (bad input or solver failure; "not certified" is a status, not an error).
#[derive(Debug, Error)]
pub enum SynthError {
    /// Bound computation failed (dimension or class mismatch).
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    /// Preimage computation failed.
    #[error(transparent)]
    Preimage(#[from] PreimageError),
    /// The MILP backend failed in the relaxed-mode check.
    #[error(transparent)]
    Milp(#[from] MilpError),
    /// A bit-width range is empty or too wide.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Bad options.
    #[error("invalid options: {0}")]
    Options(String),
}

/// Options of Algorithm 1.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Preimage template, engine, `χ` cap and MILP time limit.
    pub preimage: PreimageOptions,
    /// Relaxed mode (Quadapter*): hidden-layer checks may fail for up to
    /// [`SynthOptions::relaxed_fraction`] of a layer's checks at one common input.
    pub relaxed: bool,
    /// Fraction for the relaxed mode (paper: 25%).
    pub relaxed_fraction: f64,
    /// Smallest fractional width tried (`B_l`).
    pub min_frac: u32,
    /// Largest fractional width tried (`B_u`).
    pub max_frac: u32,
    /// Time limit (s) of the relaxed mode's MILP counting simultaneous failures; on expiry
    /// its proven upper bound is used (pessimistic: may cost bits, never soundness).
    pub relaxed_time_limit: f64,
    /// Skip step 1 and rebuild the preimages from these `χ` values (input side first), e.g.
    /// a strict run's, to run the relaxed forward search on the same preimages
    /// ([`preimages_from_chi`]). Soundness does not depend on them: the output check is a
    /// full proof on the quantized network.
    pub given_chi: Option<Vec<f64>>,
}

impl SynthOptions {
    /// The paper's defaults: strict `B_l = 1`, relaxed `B_l = 2`, `B_u = 16`.
    pub fn paper(relaxed: bool) -> Self {
        Self {
            preimage: PreimageOptions::default(),
            relaxed,
            relaxed_fraction: 0.25,
            min_frac: if relaxed { 2 } else { 1 },
            max_frac: 16,
            relaxed_time_limit: RELAXED_CHECK_SECONDS,
            given_chi: None,
        }
    }

    fn validate(&self) -> Result<(), SynthError> {
        if self.min_frac > self.max_frac {
            return Err(SynthError::Options(format!(
                "min-frac {} > max-frac {}",
                self.min_frac, self.max_frac
            )));
        }
        if self.max_frac > 40 {
            return Err(SynthError::Options("max-frac must be ≤ 40".into()));
        }
        if !(self.relaxed_time_limit.is_finite() && self.relaxed_time_limit > 0.0) {
            return Err(SynthError::Options(
                "relaxed-time-limit must be positive".into(),
            ));
        }
        if !(self.preimage.chi_max.is_finite() && self.preimage.chi_max > 0.0) {
            return Err(SynthError::Options(
                "chi-max must be a positive number".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.preimage.gap) {
            return Err(SynthError::Options(format!(
                "gap {} must be in [0, 1]",
                self.preimage.gap
            )));
        }
        if let Some(t) = self.preimage.time_limit
            && !(t.is_finite() && t > 0.0)
        {
            return Err(SynthError::Options("time-limit must be positive".into()));
        }
        Ok(())
    }
}

/// The outcome of Algorithm 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SynthStatus {
    /// The quantized network is proven to satisfy the property.
    Certified,
    /// Some layer found no accepted `F` in `B_l..=B_u`.
    Unknown,
    /// DeepPoly cannot prove the property on the float network.
    PropertyFails,
    /// The task ran out of time (set by callers that impose a wall-clock limit).
    Timeout,
}

/// Per-layer record of the forward search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Accepted config (None if the search failed on this layer).
    pub config: Option<QuantConfig>,
    /// `F` values tried.
    pub tried: u32,
    /// In relaxed mode: for a rejected `F`, the number of this layer's checks that fail at one
    /// input (an upper bound when the MILP timed out); for the accepted one, a count within the
    /// allowed 25% (not necessarily the exact maximum: counting stops once that is settled).
    pub max_simultaneous_failures: Option<usize>,
    /// Number of checks on this layer (hidden layers).
    pub checks: usize,
}

/// Everything Algorithm 1 produced.
#[derive(Debug, Clone)]
pub struct SynthOutcome {
    /// Status.
    pub status: SynthStatus,
    /// DeepPoly margin of the property on the float network.
    pub float_margin: f64,
    /// The preimages, one per hidden layer, input side first (empty if property-fails).
    pub preimages: Vec<Preimage>,
    /// Per affine layer, input side first (as far as the search got).
    pub layers: Vec<LayerRecord>,
    /// The certified strategy.
    pub strategy: Option<Strategy>,
    /// The quantized network the proof is about.
    pub qnn: Option<Network>,
    /// Per-class proven lower bounds on the quantized network (robustness: `y_g − y_j`).
    pub qnn_margins: Option<Vec<f64>>,
    /// Proven margin on the quantized network (`> 0` iff certified).
    pub qnn_margin: Option<f64>,
    /// Not-target properties: the LP multipliers the QNN's proof used (for the certificate).
    pub qnn_multipliers: Option<Vec<f64>>,
    /// Seconds spent on preimages.
    pub preimage_seconds: f64,
    /// Seconds spent on the forward quantization search.
    pub quantize_seconds: f64,
    /// DeepPoly runs in the forward search.
    pub deeppoly_calls: usize,
}

/// Pre-activations of every affine layer at `x` (used for the code template's centre values).
pub fn pre_activations(net: &Network, x: &[f64]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(net.depth());
    let mut v = x.to_vec();
    for (i, l) in net.layers().iter().enumerate() {
        let y = l.apply(&v);
        v = if i + 1 < net.depth() {
            y.iter().map(|t| t.max(0.0)).collect()
        } else {
            y.clone()
        };
        out.push(y);
    }
    out
}

/// What the output check established on one network for one property.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputProof {
    /// Whether the output condition is proven on the whole box.
    pub proven: bool,
    /// The proven quantity (`> 0` iff proven): the robustness margin, or for not-target the
    /// per-class margin or the multiplier combination's lower bound.
    pub margin: f64,
    /// Robustness: per-class lower bounds of `y_g − y_j`.
    pub class_margins: Option<Vec<f64>>,
    /// Not-target: LP multipliers the proof needed (see [`crate::bounds::joint`]).
    pub multipliers: Option<Vec<f64>>,
}

/// Proves `spec` over the box of `dp` (all layers computed): robustness by DeepPoly's
/// logit differences; not-target by the per-class test and then LP multipliers
/// ([`crate::bounds::prove_not_target`]).
pub fn prove_property(
    dp: &DeepPoly<'_>,
    spec: OutputSpec,
    backend: &dyn Backend,
) -> Result<OutputProof, BoundsError> {
    match spec {
        OutputSpec::Robust { label } => {
            let lbs = dp.logit_difference_lower_bounds(label)?;
            let margin = lbs.iter().copied().fold(f64::INFINITY, f64::min);
            Ok(OutputProof {
                proven: margin > 0.0,
                margin,
                class_margins: Some(lbs),
                multipliers: None,
            })
        }
        OutputSpec::NotTarget { target } => {
            let p = prove_not_target(dp, target, backend)?;
            Ok(OutputProof {
                proven: p.proven,
                margin: p.margin,
                class_margins: None,
                multipliers: p.multipliers,
            })
        }
    }
}

/// Runs Algorithm 1 for `prop` on `net`. `centre` is the input the template's centre values
/// come from (the robustness centre `u`).
pub fn synthesize(
    net: &Network,
    prop: &Property,
    centre: &[f64],
    backend: &dyn Backend,
    opts: &SynthOptions,
) -> Result<SynthOutcome, SynthError> {
    opts.validate()?;
    prop.output
        .validate(net.output_dim())
        .map_err(|e| SynthError::Options(e.to_string()))?;
    let bx = &prop.input;
    let dp = DeepPoly::run(net, bx)?;
    let float = prove_property(&dp, prop.output, backend)?;
    let mut out = SynthOutcome {
        status: SynthStatus::PropertyFails,
        float_margin: float.margin,
        preimages: Vec::new(),
        layers: Vec::new(),
        strategy: None,
        qnn: None,
        qnn_margins: None,
        qnn_margin: None,
        qnn_multipliers: None,
        preimage_seconds: 0.0,
        quantize_seconds: 0.0,
        deeppoly_calls: 0,
    };
    if !float.proven {
        return Ok(out);
    }
    let t0 = Instant::now();
    let centre_pre = pre_activations(net, centre);
    out.preimages = match &opts.given_chi {
        Some(chis) => preimages_from_chi(&dp, &centre_pre, opts.preimage.template, chis)?,
        None => compute_preimages(&dp, &centre_pre, prop.output, backend, &opts.preimage)?,
    };
    out.preimage_seconds = t0.elapsed().as_secs_f64();

    let fwd = forward_search(
        net,
        &[ForwardItem {
            prop,
            float: &dp,
            preimages: &out.preimages,
        }],
        backend,
        opts,
    )?;
    out.layers = fwd.layers;
    out.quantize_seconds = fwd.seconds;
    out.deeppoly_calls = fwd.deeppoly_calls;
    if let (Some(strategy), Some(qnn), Some(proof)) = (fwd.strategy, fwd.qnn, fwd.proofs.first()) {
        out.status = SynthStatus::Certified;
        out.qnn_margin = Some(proof.margin);
        out.qnn_margins = proof.class_margins.clone();
        out.qnn_multipliers = proof.multipliers.clone();
        out.strategy = Some(strategy);
        out.qnn = Some(qnn);
    } else {
        out.status = SynthStatus::Unknown;
    }
    Ok(out)
}

/// One property's float-side material for the forward search: the property, DeepPoly on the
/// float network over its box, and its preimages (one per hidden layer, input side first).
#[derive(Clone, Copy)]
pub struct ForwardItem<'a> {
    /// The property (its box and output condition).
    pub prop: &'a Property,
    /// DeepPoly of the float network over `prop.input`.
    pub float: &'a DeepPoly<'a>,
    /// The property's preimages.
    pub preimages: &'a [Preimage],
}

/// The result of the forward search (step 3 of Algorithm 1, or of Algorithm 2 with many
/// properties sharing one strategy).
#[derive(Debug, Clone)]
pub struct Forward {
    /// Per affine layer, as far as the search got.
    pub layers: Vec<LayerRecord>,
    /// The strategy, when every layer found an accepted `F`.
    pub strategy: Option<Strategy>,
    /// The quantized network the output proofs are about.
    pub qnn: Option<Network>,
    /// Per property, the output proof on the quantized network (empty unless certified).
    pub proofs: Vec<OutputProof>,
    /// DeepPoly runs.
    pub deeppoly_calls: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Step 3 of Algorithm 1 for one or more properties at once: for each affine layer in order,
/// the first `F` in `B_l..=B_u` that passes *every* property's check (hidden layers:
/// containment in the preimage, relaxed per property if asked; output layer: a sound proof
/// of every output condition on the fully quantized network) is accepted. With several
/// properties this is Algorithm 2's "one shared strategy".
pub fn forward_search(
    net: &Network,
    items: &[ForwardItem<'_>],
    backend: &dyn Backend,
    opts: &SynthOptions,
) -> Result<Forward, SynthError> {
    opts.validate()?;
    let t1 = Instant::now();
    let d = net.depth();
    let mut current = net.clone();
    let mut configs = Vec::with_capacity(d);
    let mut fwd = Forward {
        layers: Vec::new(),
        strategy: None,
        qnn: None,
        proofs: Vec::new(),
        deeppoly_calls: 0,
        seconds: 0.0,
    };
    for k in 0..d {
        let float_layer = &net.layers()[k];
        let mut record = LayerRecord {
            config: None,
            tried: 0,
            max_simultaneous_failures: None,
            checks: 0,
        };
        'frac: for f in opts.min_frac..=opts.max_frac {
            let cfg = config_for(float_layer, f)?;
            let cand = current
                .with_layer(k, quantize_layer(float_layer, cfg))
                .expect("quantization keeps shapes");
            record.tried += 1;
            if k + 1 < d {
                let mut worst_all = 0;
                for item in items {
                    let bx = &item.prop.input;
                    let dq = DeepPoly::run_upto(&cand, bx, k + 1)?;
                    fwd.deeppoly_calls += 1;
                    let pre = &item.preimages[k];
                    let fails =
                        failing_checks(dq.layer(k), item.float.layer(k), pre, bx.lo(), bx.hi());
                    record.checks =
                        pre.lower_checked.iter().filter(|&&c| c).count() + pre.beta.len();
                    if fails.is_empty() {
                        continue;
                    }
                    if !opts.relaxed {
                        continue 'frac;
                    }
                    let limit = (opts.relaxed_fraction * record.checks as f64).floor() as usize;
                    let worst = if fails.len() <= limit {
                        fails.len()
                    } else {
                        max_simultaneous(
                            &fails,
                            limit,
                            bx.lo(),
                            bx.hi(),
                            backend,
                            opts.relaxed_time_limit,
                        )?
                    };
                    worst_all = worst_all.max(worst);
                    if worst > limit {
                        record.max_simultaneous_failures = Some(worst_all);
                        continue 'frac;
                    }
                }
                record.max_simultaneous_failures = Some(worst_all);
                record.config = Some(cfg);
                current = cand;
                break;
            } else {
                let mut proofs = Vec::with_capacity(items.len());
                for item in items {
                    let dq = DeepPoly::run(&cand, &item.prop.input)?;
                    fwd.deeppoly_calls += 1;
                    let proof = prove_property(&dq, item.prop.output, backend)?;
                    if !proof.proven {
                        continue 'frac;
                    }
                    proofs.push(proof);
                }
                record.config = Some(cfg);
                fwd.proofs = proofs;
                current = cand;
                break;
            }
        }
        let accepted = record.config;
        fwd.layers.push(record);
        match accepted {
            Some(c) => configs.push(c),
            None => {
                fwd.proofs.clear();
                fwd.seconds = t1.elapsed().as_secs_f64();
                return Ok(fwd);
            }
        }
    }
    fwd.seconds = t1.elapsed().as_secs_f64();
    fwd.strategy = Some(Strategy(configs));
    fwd.qnn = Some(current);
    Ok(fwd)
}

/// A hidden-layer check that can fail somewhere in the box: the linear function `g(x)`
/// must be `≥ 0` (it fails where `g(x) < 0`); `max` is its maximum over the box.
#[derive(Debug, Clone)]
struct Check {
    coeffs: Vec<f64>,
    constant: f64,
    max: f64,
}

/// Closed-form containment test of Alg. 1 step 3: for every neuron `j`,
/// `f̂_j^≤(x) ≥ f_j^≤(x) − α_jχ` and `f̂_j^≥(x) ≤ f_j^≥(x) + β_jχ` for all `x` in the box.
/// A neuron whose whole template lies at or below 0 (`lower_checked` false) only has to stay
/// inactive, `f̂_j^≥(x) ≤ 0`, as in the authors' code: ReLU maps every such value to the
/// same 0 that the template's points give, so the next layer sees a point of `T_k(χ)`'s image.
/// Returns the checks that fail for some `x` (each as `g(x) ≥ 0`).
fn failing_checks(
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
/// box vertex (`≤ limit`; the exact maximum is not needed).
fn max_simultaneous(
    checks: &[Check],
    limit: usize,
    lo: &[f64],
    hi: &[f64],
    backend: &dyn Backend,
    time_limit: f64,
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
    let s = backend.solve(
        &p,
        &SolveOptions {
            time_limit: Some(time_limit),
            ..SolveOptions::default()
        },
    )?;
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

/// Default time limit of the relaxed-mode MILP.
pub const RELAXED_CHECK_SECONDS: f64 = 10.0;

/// Convenience: options from the CLI vocabulary.
pub fn options(
    relaxed: bool,
    template: TemplateKind,
    engine: Engine,
    time_limit: Option<f64>,
) -> SynthOptions {
    let mut o = SynthOptions::paper(relaxed);
    o.preimage.template = template;
    o.preimage.engine = engine;
    o.preimage.time_limit = time_limit;
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milp::cbc::Cbc;
    use crate::model::Affine;
    use crate::preimage::ChiSource;
    use crate::spec::InputBox;

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
        assert_eq!(max_simultaneous(&c, 2, &lo, &hi, &Cbc, 10.0).unwrap(), 3);
        // not more than 3
        assert!(max_simultaneous(&c, 3, &lo, &hi, &Cbc, 10.0).unwrap() <= 3);
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
        assert!(max_simultaneous(&c2, 2, &lo, &hi, &Cbc, 10.0).unwrap() <= 2);
        assert_eq!(max_simultaneous(&c2, 1, &lo, &hi, &Cbc, 10.0).unwrap(), 2);
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
        assert_eq!(max_simultaneous(&c, 1, &lo, &hi, &Cbc, 10.0).unwrap(), 2);
    }

    #[test]
    fn given_chi_reproduces_the_synthesis() {
        // 2 → 3 → 2 with a margin, box of radius 0.05
        let l0 = Affine::new(
            0,
            3,
            2,
            vec![1.0, 0.2, -0.3, 0.9, 0.5, 0.5],
            vec![0.1, 0.0, -0.2],
        )
        .unwrap();
        let l1 = Affine::new(
            1,
            2,
            3,
            vec![1.0, 0.3, 0.8, -0.4, 0.1, -0.2],
            vec![0.2, 0.0],
        )
        .unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let centre = [0.6, 0.4];
        let prop = Property {
            input: InputBox::linf_ball(&centre, 0.05).unwrap(),
            output: OutputSpec::Robust {
                label: net.predict(&centre),
            },
        };
        let opts = SynthOptions::paper(false);
        let a = synthesize(&net, &prop, &centre, &Cbc, &opts).unwrap();
        assert_eq!(a.status, SynthStatus::Certified);
        let given = SynthOptions {
            given_chi: Some(a.preimages.iter().map(|p| p.chi).collect()),
            ..opts.clone()
        };
        let b = synthesize(&net, &prop, &centre, &Cbc, &given).unwrap();
        assert_eq!(b.status, SynthStatus::Certified);
        assert_eq!(a.strategy, b.strategy);
        assert!(
            b.preimages
                .iter()
                .all(|p| p.source == ChiSource::Given && p.milps == 0)
        );
        let bad = SynthOptions {
            given_chi: Some(vec![0.1, 0.2]),
            ..opts
        };
        assert!(matches!(
            synthesize(&net, &prop, &centre, &Cbc, &bad),
            Err(SynthError::Preimage(PreimageError::GivenChi(_)))
        ));
    }
}
