//! Algorithm 2 of the paper: certified quantization for backdoor-freeness.
//!
//! A trigger is an `s × s` patch at a fixed position whose pixels may take any value in
//! `[0,1]`; the target class is `t`. For an image `u` the property is "no trigger makes the
//! network output `t`": input region = `u` with the patch free ([`InputBox::with_trigger`]),
//! output condition `argmax ≠ t` ([`OutputSpec::NotTarget`]).
//!
//! Rounds of a sequential probability ratio test ([`crate::sprt`]): each round draws `K`
//! test images not labelled `t` (seeded, without replacement), computes each one's preimages
//! (Algorithm 1 lines 2–8 with the not-target escape condition), keeps the image with the
//! largest first-layer `χ`, and counts a success if that `χ ≥ ε`. On H0 the kept properties
//! of the successful rounds get one shared strategy from the forward search
//! ([`crate::algorithm1::forward_search`]), whose output step is a sound proof of every kept
//! property on the quantized network. The *certified* part of the result is exactly those
//! proofs; the statement about all inputs is statistical (σ, ϱ, θ, K). See docs/method.md §12,
//! eqs. (19), (41) and (42).
//!
//! With [`crate::algorithm1::Method::Guided`] in [`BackdoorOptions::synth`] the shared forward
//! step is the guided one: a hidden layer where no `F ≤ B_u` keeps every kept image inside its
//! preimage gets the fewest bits with which the joint proof of every kept property still holds
//! with the later layers at `B_u` (and the accuracy floor, if one is set, holds); the search
//! then goes on. The certificate still rests on the output proofs on the fully quantized
//! network (docs/method.md, eq. (64)).

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::algorithm1::{Forward, ForwardItem, SynthError, SynthOptions, pre_activations};
use crate::multipliers::LpMultipliers;
use crate::preimage::{Preimage, PreimageError, PreimageOptions, compute_preimages};
use crate::sprt::{Hypothesis, Sprt, SprtError, SprtParams};
use certquant_bounds::prove_property;
use certquant_bounds::{BoundsError, DeepPoly};
use certquant_core::data::Dataset;
use certquant_core::model::Network;
use certquant_core::spec::{InputBox, OutputSpec, Property, SpecError, Trigger};
use certquant_milp::Backend;

/// Errors of Algorithm 2 (bad input or solver failure; "not certified" is a status).
#[derive(Debug, Error)]
pub enum BackdoorError {
    /// Bad trigger, class or box.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Bad test parameters.
    #[error(transparent)]
    Sprt(#[from] SprtError),
    /// Bound computation failed.
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    /// Preimage computation failed.
    #[error(transparent)]
    Preimage(#[from] PreimageError),
    /// The forward search failed.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// Bad options or data.
    #[error("{0}")]
    Options(String),
}

/// Options of Algorithm 2.
#[derive(Debug, Clone)]
pub struct BackdoorOptions {
    /// The trigger patch.
    pub trigger: Trigger,
    /// The target class `t`.
    pub target: usize,
    /// The test's parameters.
    pub sprt: SprtParams,
    /// `ε`: a round succeeds when its best first-layer `χ ≥ ε` (paper: 0.01;
    /// docs/method.md, eq. (41)).
    pub chi_threshold: f64,
    /// Seed of the image draws.
    pub seed: u64,
    /// Give up (status `timeout`) after this many rounds without a decision.
    pub max_rounds: usize,
    /// Give up (status `timeout`) after this many seconds.
    pub time_limit: Option<f64>,
    /// Preimage and forward-search options (the paper uses `B_l = 2`, `B_u = 16`).
    pub synth: SynthOptions,
    /// Screen each round's images with relaxation-only preimages (no MILP, `gap = 1`) and
    /// compute exact preimages only for the image kept (and, in a round whose best screened
    /// `χ` is below `ε`, for the others in decreasing screened `χ` until one reaches `ε`).
    /// Every `χ` used is a proven one either way; `false` computes all `K` exactly (paper).
    /// See docs/method.md §12 (screening) and eq. (33) (`gap = 1`).
    pub screen: bool,
}

impl BackdoorOptions {
    /// The paper's parameters for a trigger and target.
    pub fn paper(trigger: Trigger, target: usize) -> Self {
        let mut synth = SynthOptions::paper(false);
        synth.min_frac = 2;
        Self {
            trigger,
            target,
            sprt: SprtParams::paper(),
            chi_threshold: 0.01,
            seed: 0,
            max_rounds: 200,
            time_limit: None,
            synth,
            screen: true,
        }
    }
}

/// The outcome of Algorithm 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackdoorStatus {
    /// H0 accepted and one strategy proven for every kept property.
    Certified,
    /// The test accepted H1: a backdoor may exist; no strategy is synthesized.
    H1Rejected,
    /// H0 accepted, but no `F` in range passed some layer for all kept properties.
    Unknown,
    /// No decision within the round or time limit (or the data ran out).
    Timeout,
}

/// One image of a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageResult {
    /// Test-set index.
    pub id: usize,
    /// First-layer `χ` (`None`: the float network is not proven backdoor-free on it); with
    /// screening, the relaxation-only value.
    pub chi: Option<f64>,
    /// With screening: the exact first-layer `χ`, for the images that were refined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi_exact: Option<f64>,
    /// Proven margin of the not-target condition on the float network.
    pub float_margin: f64,
}

/// One SPRT round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// The `K` images.
    pub images: Vec<ImageResult>,
    /// Index into `images` of the kept image (largest `χ`), if any was proven.
    pub best: Option<usize>,
    /// The kept image's first-layer `χ` (exact when refined).
    pub best_chi: Option<f64>,
    /// `best χ ≥ ε`.
    pub success: bool,
    /// Seconds spent on the round.
    pub seconds: f64,
}

/// A property kept from a successful round, with its preimages.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Test-set index of the image.
    pub id: usize,
    /// The property (trigger box of the image, not-target output).
    pub prop: Property,
    /// Its preimages, input side first.
    pub preimages: Vec<Preimage>,
}

/// Everything Algorithm 2 produced.
#[derive(Debug, Clone)]
pub struct BackdoorOutcome {
    /// Status.
    pub status: BackdoorStatus,
    /// The accepted hypothesis (`None` on timeout).
    pub hypothesis: Option<Hypothesis>,
    /// The rounds, in order.
    pub rounds: Vec<Round>,
    /// Successful rounds.
    pub successes: usize,
    /// The kept properties (one per successful round).
    pub kept: Vec<Kept>,
    /// The forward search over the kept properties (run on H0 only).
    pub forward: Option<Forward>,
    /// Seconds in the SPRT rounds (preimages).
    pub preimage_seconds: f64,
}

/// The per-image work of a round: the trigger property, a float proof and its preimages
/// under `pre_opts`.
fn examine(
    net: &Network,
    image: &[f64],
    opts: &BackdoorOptions,
    pre_opts: &PreimageOptions,
    backend: &dyn Backend,
) -> Result<(Property, f64, Option<Vec<Preimage>>), BackdoorError> {
    let prop = Property {
        input: InputBox::with_trigger(image, &opts.trigger)?,
        output: OutputSpec::NotTarget {
            target: opts.target,
        },
    };
    let dp = DeepPoly::run(net, &prop.input)?;
    let float = prove_property(&dp, prop.output, &LpMultipliers(backend))?;
    if !float.proven {
        return Ok((prop, float.margin, None));
    }
    let centre = pre_activations(net, image);
    let pre = compute_preimages(&dp, &centre, prop.output, backend, pre_opts)?;
    Ok((prop, float.margin, Some(pre)))
}

/// The first-layer `χ` of a preimage list (a network without hidden layers has nothing to
/// protect before the output check: the cap); the `χ_1` of docs/method.md, eq. (41).
fn first_chi(pre: &[Preimage], cap: f64) -> f64 {
    pre.first().map_or(cap, |p| p.chi)
}

/// Runs Algorithm 2 on `net` with images from `ds` (labelled; images of the target class are
/// never drawn). `on_round` sees every finished round and the running test
/// (docs/method.md, eqs. (41), (42)); on H0 the shared forward search of eqs. (34), (35).
pub fn synthesize_backdoor(
    net: &Network,
    ds: &Dataset,
    backend: &dyn Backend,
    opts: &BackdoorOptions,
    on_round: &mut dyn FnMut(&Round, &Sprt),
) -> Result<BackdoorOutcome, BackdoorError> {
    let side = Trigger::image_side(net.input_dim())?;
    opts.trigger.validate(side)?;
    OutputSpec::NotTarget {
        target: opts.target,
    }
    .validate(net.output_dim())?;
    if ds.dim() != net.input_dim() {
        return Err(BackdoorError::Options(format!(
            "the data has inputs of size {}, the network takes {}",
            ds.dim(),
            net.input_dim()
        )));
    }
    if !(opts.chi_threshold.is_finite() && opts.chi_threshold >= 0.0) {
        return Err(BackdoorError::Options(format!(
            "chi-threshold {} must be a finite number ≥ 0",
            opts.chi_threshold
        )));
    }
    let mut sprt = Sprt::new(opts.sprt)?;
    let start = Instant::now();

    // Candidate images: every index whose label is not the target (the float prediction
    // stands in for unlabelled data), in a seeded random order, drawn without replacement.
    let mut pool: Vec<usize> = (0..ds.len())
        .filter(|&i| {
            let label = ds.label(i).or_else(|| ds.image(i).map(|x| net.predict(x)));
            label != Some(opts.target)
        })
        .collect();
    pool.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed));
    let mut next = pool.into_iter();

    let mut out = BackdoorOutcome {
        status: BackdoorStatus::Timeout,
        hypothesis: None,
        rounds: Vec::new(),
        successes: 0,
        kept: Vec::new(),
        forward: None,
        preimage_seconds: 0.0,
    };
    let out_of_time = |start: &Instant| {
        opts.time_limit
            .is_some_and(|t| start.elapsed().as_secs_f64() > t)
    };
    let screen_opts = PreimageOptions {
        gap: 1.0,
        ..opts.synth.preimage.clone()
    };
    'rounds: while out.rounds.len() < opts.max_rounds {
        let t0 = Instant::now();
        let mut round = Round {
            images: Vec::with_capacity(opts.sprt.k),
            best: None,
            best_chi: None,
            success: false,
            seconds: 0.0,
        };
        let cap = opts.synth.preimage.chi_max;
        // (index in round, χ, kept) of every image proven on the float network
        let mut candidates: Vec<(usize, f64, Kept)> = Vec::new();
        for _ in 0..opts.sprt.k {
            if out_of_time(&start) {
                break 'rounds;
            }
            let Some(id) = next.next() else {
                tracing::warn!("the data set ran out of images before the test decided");
                break 'rounds;
            };
            let image = ds
                .image(id)
                .ok_or_else(|| BackdoorError::Options(format!("id {id} out of range")))?;
            let first = if opts.screen {
                &screen_opts
            } else {
                &opts.synth.preimage
            };
            let (prop, float_margin, pre) = examine(net, image, opts, first, backend)?;
            let chi = pre.as_ref().map(|p| first_chi(p, cap));
            tracing::debug!(id, ?chi, float_margin, "backdoor image");
            round.images.push(ImageResult {
                id,
                chi,
                chi_exact: None,
                float_margin,
            });
            if let (Some(c), Some(preimages)) = (chi, pre) {
                candidates.push((
                    round.images.len() - 1,
                    c,
                    Kept {
                        id,
                        prop,
                        preimages,
                    },
                ));
            }
        }
        // best first (ties: earlier image)
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut chosen: Option<(usize, f64, Kept)> = None;
        for (idx, chi, mut kept) in candidates {
            let mut best_chi = chi;
            if opts.screen {
                // refine: exact preimages for this image; keep whichever χ is larger
                let image = ds.image(kept.id).unwrap_or_default();
                let (_, _, exact) = examine(net, image, opts, &opts.synth.preimage, backend)?;
                if let Some(exact) = exact {
                    let c = first_chi(&exact, cap);
                    round.images[idx].chi_exact = Some(c);
                    if c >= chi {
                        best_chi = c;
                        kept.preimages = exact;
                    }
                }
            }
            let success = best_chi >= opts.chi_threshold;
            if chosen.is_none() || success {
                chosen = Some((idx, best_chi, kept));
            }
            // without screening the first candidate is the best; with it, refine further
            // candidates only while no image has reached ε
            if success || !opts.screen {
                break;
            }
        }
        if let Some((idx, chi, kept)) = chosen {
            round.best = Some(idx);
            round.best_chi = Some(chi);
            round.success = chi >= opts.chi_threshold;
            if round.success {
                out.kept.push(kept);
                out.successes += 1;
            }
        }
        round.seconds = t0.elapsed().as_secs_f64();
        let decision = sprt.record(round.success);
        on_round(&round, &sprt);
        out.rounds.push(round);
        if let Some(h) = decision {
            out.hypothesis = Some(h);
            break;
        }
    }
    out.preimage_seconds = start.elapsed().as_secs_f64();
    match out.hypothesis {
        None => out.status = BackdoorStatus::Timeout,
        Some(Hypothesis::H1) => out.status = BackdoorStatus::H1Rejected,
        Some(Hypothesis::H0) if out.kept.is_empty() => out.status = BackdoorStatus::Unknown,
        Some(Hypothesis::H0) => {
            let dps = out
                .kept
                .iter()
                .map(|k| DeepPoly::run(net, &k.prop.input))
                .collect::<Result<Vec<_>, _>>()?;
            let items: Vec<ForwardItem<'_>> = out
                .kept
                .iter()
                .zip(&dps)
                .map(|(k, dp)| ForwardItem {
                    prop: &k.prop,
                    float: dp,
                    preimages: &k.preimages,
                })
                .collect();
            let fwd = crate::algorithm1::forward_search(net, &items, backend, &opts.synth)?;
            out.status = if fwd.strategy.is_some() {
                BackdoorStatus::Certified
            } else {
                BackdoorStatus::Unknown
            };
            out.forward = Some(fwd);
        }
    }
    Ok(out)
}
