//! Algorithm 1 of the paper: certified quantization strategy synthesis for one property.
//!
//! 1. DeepPoly on the float network over the input box; the property must be proven there
//!    (otherwise the task is `property-fails`, as in the paper's tables; docs/method.md,
//!    eqs. (18), (19)).
//! 2. Preimages of the hidden layers, last first ([`crate::preimage`]; docs/method.md,
//!    eqs. (20)–(33)).
//! 3. Forward: for each affine layer `i` in order, try `F = B_l..=B_u`; quantize layer `i` with
//!    ⟨I_i + F, F⟩ (earlier layers keep their accepted configs), rerun DeepPoly on the partially
//!    quantized network, and accept the first `F` whose bounds lie inside the preimage (hidden
//!    layers; each check is a linear function over a box, decided in closed form) or, for the
//!    output layer, which *proves the property on the fully quantized network*
//!    (docs/method.md, eqs. (34), (35)).
//!
//! Soundness rests on the last step alone: it is a sound DeepPoly proof ([`certquant_bounds`]) on
//! the exact quantized network that is returned. Hidden-layer checks and preimages are
//! guides; the relaxed mode (Quadapter*) loosens only those, never the final check.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use certquant_bounds::quantize::{QuantConfig, QuantError, Strategy};
use certquant_bounds::{BoundsError, DeepPoly, prove_property};
use certquant_core::model::Network;
use certquant_core::spec::Property;
use certquant_milp::{Backend, MilpError};

use crate::deadline::Deadline;
use crate::floor::AccuracyFloor;
use crate::multipliers::LpMultipliers;
use crate::preimage::{
    Engine, Preimage, PreimageError, PreimageOptions, TemplateKind, compute_preimages,
    preimages_from_chi,
};

pub use crate::forward::{Forward, ForwardItem, forward_search};
pub use crate::relaxed::RELAXED_CHECK_SECONDS;

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
    /// Fraction for the relaxed mode (paper: 25%; the `ρ` of docs/method.md, eq. (36)).
    pub relaxed_fraction: f64,
    /// Smallest fractional width tried (`B_l`).
    pub min_frac: u32,
    /// Largest fractional width tried (`B_u`).
    pub max_frac: u32,
    /// Time limit (s) of the relaxed mode's MILP counting simultaneous failures; on expiry
    /// its proven upper bound is used (pessimistic: may cost bits, never soundness).
    pub relaxed_time_limit: f64,
    /// Reproduce the authors' count model (docs/method.md, eq. (70)): the failure constraints
    /// of every rejected hidden-layer candidate stay in the model, so a later candidate (of
    /// this layer or a later one) is rejected only at an input that fails it *and* fails
    /// every earlier rejected candidate again (each by its own count). Accepts more, so gives
    /// fewer bits; the output check stays the sound proof. Off by default.
    pub carry_rejections: bool,
    /// Skip step 1 and rebuild the preimages from these `χ` values (input side first), e.g.
    /// a strict run's, to run the relaxed forward search on the same preimages
    /// ([`preimages_from_chi`]). Soundness does not depend on them: the output check is a
    /// full proof on the quantized network.
    pub given_chi: Option<Vec<f64>>,
    /// What to do where the preimage check rejects every `F` of a hidden layer.
    pub method: Method,
    /// With [`Method::Guided`]: every accepted layer and the final network must keep the
    /// accuracy within this floor (the paper's search ignores it).
    pub accuracy_floor: Option<AccuracyFloor>,
    /// Wall-clock end of the synthesis (docs/method.md eqs. (81), (82)): checked between the
    /// preimages' layers and between the forward search's candidates; on expiry the status
    /// is [`SynthStatus::Timeout`] (the forward search keeps no proven point before its
    /// last layer, so there is no "best so far"). Also the preimages' deadline.
    pub deadline: Deadline,
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
            carry_rejections: false,
            given_chi: None,
            method: Method::Paper,
            accuracy_floor: None,
            deadline: Deadline::NONE,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SynthError> {
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
    /// The task ran out of time ([`SynthOptions::deadline`], or a caller's own wall-clock
    /// limit): nothing is certified.
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
    /// The config was chosen by the verification-guided fallback of [`Method::Guided`] (no
    /// `F` kept the layer inside its preimage), not by the preimage check.
    pub guided: bool,
}

/// How a hidden layer's bits are chosen when no `F` keeps it inside its preimage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The paper's Algorithm 1: the search stops (`unknown`).
    #[default]
    Paper,
    /// Verification-guided fallback: take the fewest bits for the layer such that DeepPoly
    /// still proves every property on the network whose later layers are quantized at `B_u`;
    /// the search then goes on with the next layer. With an accuracy floor, every layer the
    /// search accepts (by the preimage check or by the fallback) must keep it, judged with the
    /// later layers at `B_u`, and so must the final network. Where the paper's search succeeds
    /// and its network keeps the floor, the bits are the paper's; the certificate still rests
    /// on the final proof on the fully quantized network (docs/method.md, eq. (35)).
    Guided,
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

/// Pre-activations of every affine layer at the raw input `x`, mapped through the network's
/// input map first (used for the code template's centre values, docs/method.md, eqs. (1), (21)).
pub fn pre_activations(net: &Network, x: &[f64]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(net.depth());
    let mut v = net.map_input(x);
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

/// Runs Algorithm 1 for `prop` on `net`. `centre` is the input the template's centre values
/// come from (the robustness centre `u`). Steps: docs/method.md §6–§9, eqs. (20)–(35).
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
    let float = prove_property(&dp, prop.output, &LpMultipliers(backend))?;
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
    out.status = SynthStatus::Timeout;
    if opts.deadline.expired() {
        return Ok(out);
    }
    let t0 = Instant::now();
    let centre_pre = pre_activations(net, centre);
    let popts = PreimageOptions {
        deadline: opts.preimage.deadline.min(opts.deadline),
        ..opts.preimage.clone()
    };
    out.preimages = match &opts.given_chi {
        Some(chis) => preimages_from_chi(&dp, &centre_pre, opts.preimage.template, chis)?,
        None => match compute_preimages(&dp, &centre_pre, prop.output, backend, &popts) {
            Err(PreimageError::DeadlineExpired(_)) => {
                out.preimage_seconds = t0.elapsed().as_secs_f64();
                return Ok(out);
            }
            r => r?,
        },
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
    } else if fwd.timed_out {
        out.status = SynthStatus::Timeout;
    } else {
        out.status = SynthStatus::Unknown;
    }
    Ok(out)
}

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
    use crate::preimage::ChiSource;
    use certquant_core::model::Affine;
    use certquant_core::spec::{InputBox, OutputSpec};
    use certquant_milp::cbc::Cbc;

    /// 2 → 3 → 2 with a margin, box of radius 0.05 around `(0.6, 0.4)`.
    fn small_task() -> (Network, Property, [f64; 2]) {
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
        (net, prop, centre)
    }

    #[test]
    fn guided_fallback_goes_on_where_the_preimage_collapses() {
        let (net, prop, centre) = small_task();
        let paper = SynthOptions::paper(false);
        let exact = synthesize(&net, &prop, &centre, &Cbc, &paper).unwrap();
        assert_eq!(exact.status, SynthStatus::Certified);
        // Where the paper's search succeeds, the guided method changes nothing.
        let guided = SynthOptions {
            method: Method::Guided,
            ..paper.clone()
        };
        let same = synthesize(&net, &prop, &centre, &Cbc, &guided).unwrap();
        assert_eq!(same.strategy, exact.strategy);
        assert!(same.layers.iter().all(|l| !l.guided));
        // A collapsed preimage (χ = 0) stops the paper's search at the hidden layer...
        let collapsed = |o: &SynthOptions| SynthOptions {
            given_chi: Some(vec![0.0]),
            min_frac: 1,
            max_frac: 3,
            ..o.clone()
        };
        let stuck = synthesize(&net, &prop, &centre, &Cbc, &collapsed(&paper)).unwrap();
        assert_eq!(stuck.status, SynthStatus::Unknown);
        // ... and the guided method goes on, to a QNN on which the property is proven.
        let on = synthesize(&net, &prop, &centre, &Cbc, &collapsed(&guided)).unwrap();
        assert_eq!(on.status, SynthStatus::Certified, "{:?}", on.layers);
        assert!(on.layers[0].guided && !on.layers[1].guided);
        let qnn = on.qnn.as_ref().unwrap();
        assert_eq!(on.strategy.as_ref().unwrap().apply(&net).unwrap(), *qnn);
        let dq = DeepPoly::run(qnn, &prop.input).unwrap();
        assert!(dq.prove_output(prop.output).unwrap().0);
    }

    #[test]
    fn a_guided_choice_keeps_the_accuracy_floor() {
        // the small task's hidden layer with a last layer that has a real decision boundary
        let (base, _, centre) = small_task();
        let l1 = Affine::new(
            1,
            2,
            3,
            vec![1.0, -0.7, 0.8, -0.4, 0.6, -0.2],
            vec![0.05, 0.0],
        )
        .unwrap();
        let net = Network::new(vec![base.layers()[0].clone(), l1]).unwrap();
        let prop = Property {
            input: InputBox::linf_ball(&centre, 0.05).unwrap(),
            output: OutputSpec::Robust {
                label: net.predict(&centre),
            },
        };
        let collapsed = SynthOptions {
            given_chi: Some(vec![0.0]),
            min_frac: 1,
            max_frac: 3,
            method: Method::Guided,
            ..SynthOptions::paper(false)
        };
        let on = synthesize(&net, &prop, &centre, &Cbc, &collapsed).unwrap();
        assert_eq!(on.status, SynthStatus::Certified);
        assert!(on.layers[0].guided);
        // With an accuracy floor the guided choice (and the output layer after it) must keep
        // the predictions on the floor's data. Data: points where the coarse QNN above and the
        // float network disagree, labelled with the float network's class, no drop allowed.
        let coarse_qnn = on.qnn.as_ref().unwrap();
        let (mut xs, mut labels) = (Vec::new(), Vec::new());
        for i in 0..6400 {
            let x = [(i % 80) as f64 / 4.0 - 10.0, (i / 80) as f64 / 4.0 - 10.0];
            if coarse_qnn.predict(&x) != net.predict(&x) {
                xs.extend(x);
                labels.push(net.predict(&x) as u8);
            }
        }
        assert!(!labels.is_empty(), "the coarse QNN must differ somewhere");
        let data = std::sync::Arc::new(
            certquant_core::data::Dataset::from_parts(2, xs, Some(labels)).unwrap(),
        );
        let floor = AccuracyFloor::new(&net, data.clone(), 0.0);
        assert_eq!(floor.float_accuracy(), 1.0);
        assert!(!floor.admits(coarse_qnn));
        let floored = SynthOptions {
            accuracy_floor: Some(floor.clone()),
            max_frac: 16,
            ..collapsed.clone()
        };
        let kept = synthesize(&net, &prop, &centre, &Cbc, &floored).unwrap();
        assert_eq!(kept.status, SynthStatus::Certified);
        assert!(kept.layers[0].guided);
        assert_ne!(kept.strategy, on.strategy);
        assert!(floor.admits(kept.qnn.as_ref().unwrap()));
    }

    /// A random 6 → 16 → 3 network and a box of radius 0.02 around a random centre.
    fn random_task(seed: u64) -> (Network, Property, Vec<f64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (n, h, o) = (6, 16, 3);
        let w0: Vec<f64> = (0..h * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b0: Vec<f64> = (0..h).map(|_| rng.random_range(-0.3..0.3)).collect();
        let w1: Vec<f64> = (0..o * h).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b1: Vec<f64> = (0..o).map(|_| rng.random_range(-0.3..0.3)).collect();
        let net = Network::new(vec![
            Affine::new(0, h, n, w0, b0).unwrap(),
            Affine::new(1, o, h, w1, b1).unwrap(),
        ])
        .unwrap();
        let centre: Vec<f64> = (0..n).map(|_| rng.random_range(0.2..0.8)).collect();
        let prop = Property {
            input: InputBox::linf_ball(&centre, 0.02).unwrap(),
            output: OutputSpec::Robust {
                label: net.predict(&centre),
            },
        };
        (net, prop, centre)
    }

    /// Eq. (70) in the forward search: with a collapsed preimage (χ = 0) every F of the
    /// hidden layer of seeds 0 and 2 fails the plain relaxed count, but with carried
    /// rejections a late F passes (no input fails it together with every earlier one). The
    /// carried count never needs more bits on the first layer, and what it certifies is
    /// proven on the whole QNN.
    #[test]
    fn carried_rejections_accept_where_no_input_fails_them_all() {
        let mut rescued = 0;
        for seed in 0..3u64 {
            let (net, prop, centre) = random_task(seed);
            for (relaxed, chi) in [(false, 0.0), (true, 0.0), (true, 0.01)] {
                let plain = SynthOptions {
                    given_chi: Some(vec![chi]),
                    min_frac: 1,
                    ..SynthOptions::paper(relaxed)
                };
                let carry = SynthOptions {
                    carry_rejections: true,
                    ..plain.clone()
                };
                let a = synthesize(&net, &prop, &centre, &Cbc, &plain).unwrap();
                let b = synthesize(&net, &prop, &centre, &Cbc, &carry).unwrap();
                let frac = |o: &SynthOutcome| o.layers[0].config.map(|c| c.frac());
                match (frac(&a), frac(&b)) {
                    (Some(fa), fb) => assert!(fb.is_some_and(|fb| fb <= fa), "seed {seed}"),
                    (None, Some(_)) => rescued += 1,
                    (None, None) => {}
                }
                if b.status == SynthStatus::Certified {
                    let qnn = b.qnn.as_ref().unwrap();
                    let dq = DeepPoly::run(qnn, &prop.input).unwrap();
                    assert!(dq.prove_output(prop.output).unwrap().0);
                }
            }
        }
        assert_eq!(rescued, 2);
    }

    /// Eq. (82): an expired deadline ends Algorithm 1 with `timeout` promptly and certifies
    /// nothing; a generous one changes nothing.
    #[test]
    fn an_expired_deadline_times_out_and_never_certifies() {
        use std::time::{Duration, Instant};
        for seed in 0..3u64 {
            let (net, prop, centre) = random_task(seed);
            let plain = SynthOptions::paper(false);
            let full = synthesize(&net, &prop, &centre, &Cbc, &plain).unwrap();
            for guided in [false, true] {
                let expired = SynthOptions {
                    deadline: Deadline::at(Instant::now()),
                    method: if guided {
                        Method::Guided
                    } else {
                        Method::Paper
                    },
                    ..plain.clone()
                };
                let t = Instant::now();
                let o = synthesize(&net, &prop, &centre, &Cbc, &expired).unwrap();
                assert!(t.elapsed() < Duration::from_secs(5));
                if full.status == SynthStatus::PropertyFails {
                    assert_eq!(o.status, SynthStatus::PropertyFails);
                } else {
                    assert_eq!(o.status, SynthStatus::Timeout, "seed {seed}");
                }
                assert!(o.strategy.is_none() && o.qnn.is_none() && o.qnn_margin.is_none());
            }
            // the deadline reaches the forward search too (given χ: no preimages to stop)
            let given = SynthOptions {
                given_chi: Some(vec![0.01]),
                deadline: Deadline::at(Instant::now()),
                ..plain.clone()
            };
            let o = synthesize(&net, &prop, &centre, &Cbc, &given).unwrap();
            if o.status != SynthStatus::PropertyFails {
                assert_eq!(o.status, SynthStatus::Timeout);
                assert!(o.layers.iter().all(|l| l.config.is_none()));
            }
            let generous = SynthOptions {
                deadline: Deadline::after(Duration::from_secs(3600)),
                ..plain.clone()
            };
            let g = synthesize(&net, &prop, &centre, &Cbc, &generous).unwrap();
            assert_eq!((g.status, g.strategy), (full.status, full.strategy));
        }
    }

    /// A preimage computation past its deadline stops between layers with its own error.
    #[test]
    fn preimages_stop_between_layers() {
        let (net, prop, centre) = random_task(1);
        let dp = DeepPoly::run(&net, &prop.input).unwrap();
        let opts = PreimageOptions {
            deadline: Deadline::at(std::time::Instant::now()),
            ..PreimageOptions::default()
        };
        let r = compute_preimages(
            &dp,
            &pre_activations(&net, &centre),
            prop.output,
            &Cbc,
            &opts,
        );
        assert!(matches!(r, Err(PreimageError::DeadlineExpired(0))), "{r:?}");
    }

    #[test]
    fn given_chi_reproduces_the_synthesis() {
        let (net, prop, centre) = small_task();
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
