//! `synth backdoor` (Algorithm 2): SPRT over trigger properties, one shared strategy, the QNN
//! and a certificate whose guarantee is marked statistical.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use certquant::attack::{AttackOptions, find_counterexample};
use certquant::backdoor::{BackdoorOptions, BackdoorOutcome, BackdoorStatus, synthesize_backdoor};
use certquant::certificate::{CertifiedProperty, PropertySource, Statistical};
use certquant::floor::AccuracyFloor;
use certquant::milp::cbc::Cbc;
use certquant::quantize::QuantConfig;
use certquant::spec::Trigger;
use certquant::sprt::{Hypothesis, SprtParams};

use super::common::{LoadedModel, Outcome, accuracy, load_data, load_model, print_json, spinner};
use super::synth::{Claim, SoundnessBug, synth_options, write_outputs};
use super::{MethodArg, SynthOpts};

/// Arguments of `certquant synth backdoor`.
#[derive(Debug, Args, Clone)]
pub struct SynthBackdoorArgs {
    /// ONNX model (float).
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled test images (IDX directory or .npy); images of the target class are never drawn.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub backdoor: BackdoorArgs,
    #[command(flatten)]
    pub synth: SynthOpts,
    /// Write the quantized network (qnn.onnx) and certificate.json into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The trigger, target and test parameters (shared with `bench backdoor`).
#[derive(Debug, Args, Clone)]
pub struct BackdoorArgs {
    /// Target class t: no trigger may make it the top class.
    #[arg(long)]
    pub target: usize,
    /// Side of the square trigger patch (paper: 3 and 5).
    #[arg(long, default_value_t = 3)]
    pub trigger_size: usize,
    /// Position of the patch's top-left pixel, ROW,COL, 1-based (paper: 1,1 4,20 5,5 7,13 10,10).
    #[arg(long, default_value = "1,1")]
    pub trigger_pos: String,
    /// Stop undecided (status timeout) after this many seconds of SPRT rounds.
    #[arg(long)]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub sprt: SprtArgs,
}

/// The test's parameters and the image draws (shared with `bench backdoor`, whose workers
/// receive them as JSON).
#[derive(Debug, Args, Clone, PartialEq, Serialize, Deserialize)]
pub struct SprtArgs {
    /// K: images per SPRT round.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// θ: the backdoor success rate guarded against.
    #[arg(long, default_value_t = 0.9)]
    pub theta: f64,
    /// ε: a round succeeds when its best first-layer χ is at least this.
    #[arg(long, default_value_t = 0.01)]
    pub chi_threshold: f64,
    /// σ: type-I error bound.
    #[arg(long, default_value_t = 0.05)]
    pub type1: f64,
    /// ϱ: type-II error bound.
    #[arg(long, default_value_t = 0.05)]
    pub type2: f64,
    /// δ: indifference region half-width.
    #[arg(long, default_value_t = 0.05)]
    pub delta: f64,
    /// Seed of the image draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop undecided (status timeout) after this many rounds.
    #[arg(long, default_value_t = 200)]
    pub max_rounds: usize,
    /// Compute every image's preimages exactly (the paper's procedure) instead of screening
    /// with relaxation bounds and refining only the kept image.
    #[arg(long)]
    pub no_screen: bool,
}

impl SprtArgs {
    /// The test parameters (validated).
    pub fn params(&self) -> Result<SprtParams> {
        let p = SprtParams {
            theta: self.theta,
            k: self.k,
            sigma: self.type1,
            rho: self.type2,
            delta: self.delta,
        };
        p.validate()?;
        Ok(p)
    }
}

impl BackdoorArgs {
    /// The trigger named by `--trigger-size` and `--trigger-pos`.
    pub fn trigger(&self) -> Result<Trigger> {
        let (row, col) = Trigger::parse_position(&self.trigger_pos)?;
        Ok(Trigger {
            row,
            col,
            size: self.trigger_size,
        })
    }

    /// Library options (the paper's `B_l = 2` unless `--min-frac` is given).
    pub fn options(&self, synth: &SynthOpts) -> Result<BackdoorOptions> {
        let mut o = BackdoorOptions::paper(self.trigger()?, self.target);
        o.sprt = self.sprt.params()?;
        o.chi_threshold = self.sprt.chi_threshold;
        o.seed = self.sprt.seed;
        o.max_rounds = self.sprt.max_rounds;
        if let Some(t) = self.timeout
            && !(t.is_finite() && t > 0.0)
        {
            bail!("--timeout must be a positive number of seconds");
        }
        o.time_limit = self.timeout;
        o.screen = !self.sprt.no_screen;
        o.synth = synth_options(synth);
        // A backdoor round's exact preimage MILPs (a trigger box with a few free pixels) can
        // run for many minutes in CBC on some images (MP2, (4,20)); with a limit the solver's
        // proven bound is used, which only shrinks χ (SOUNDNESS.md row 10). `--time-limit` overrides it.
        if synth.time_limit.is_none() {
            o.synth.preimage.time_limit = Some(BACKDOOR_MILP_TIME_LIMIT);
        }
        if synth.min_frac.is_none() {
            o.synth.min_frac = 2;
        }
        Ok(o)
    }
}

/// Default time limit (seconds) per preimage MILP of `synth backdoor` / `bench backdoor` when
/// `--time-limit` is not given (see [`BackdoorArgs::options`]).
pub const BACKDOOR_MILP_TIME_LIMIT: f64 = 10.0;

/// The machine-readable result of `synth backdoor` (and the record of a finished bench task).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackdoorReport {
    pub status: BackdoorStatus,
    /// `"H0"`, `"H1"`, or null when undecided.
    pub hypothesis: Option<Hypothesis>,
    pub rounds: usize,
    pub successes: usize,
    pub target: usize,
    pub trigger: Trigger,
    pub seed: u64,
    pub sprt: SprtParams,
    pub chi_threshold: f64,
    /// Accepted ⟨Q, F⟩ per affine layer (complete iff certified).
    pub layers: Vec<QuantConfig>,
    /// With `--method guided`: the layers (0-based) whose bits the verification-guided
    /// fallback chose because no `F` kept every kept image inside that layer's preimage
    /// (docs/method.md, eq. (64)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guided_layers: Vec<usize>,
    /// Per round: the best first-layer χ (null if no image of the round was proven).
    pub chi_first_layer: Vec<Option<f64>>,
    /// Every image drawn, in order.
    pub ids_used: Vec<usize>,
    /// The images whose properties the strategy is proven for (one per successful round).
    pub kept_ids: Vec<usize>,
    /// Images the float network is not proven backdoor-free on.
    pub float_unproven: usize,
    pub seconds: f64,
    pub preimage_seconds: f64,
    pub quantize_seconds: f64,
    pub deeppoly_calls: usize,
    pub relaxed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qnn_accuracy: Option<f64>,
    /// With --attack: whether a patch reaching the target was found on the QNN for a kept image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_counterexample: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qnn_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// One backdoor task on an already loaded model and data set.
pub struct BackdoorTask<'a> {
    pub model: &'a LoadedModel,
    pub model_path: &'a Path,
    pub ds: &'a certquant::data::Dataset,
    pub data_path: &'a Path,
}

/// Runs Algorithm 2, writes outputs if asked, and builds the report.
pub fn run_backdoor(
    t: &BackdoorTask<'_>,
    args: &BackdoorArgs,
    synth: &SynthOpts,
    out: Option<&Path>,
    on_round: &mut dyn FnMut(&certquant::backdoor::Round, &certquant::sprt::Sprt),
) -> Result<(BackdoorReport, BackdoorOutcome)> {
    let mut opts = args.options(synth)?;
    if synth.method == MethodArg::Guided {
        // The guided method's accuracy floor (float − --guided-max-drop points) on the test set
        // the images are drawn from (docs/method.md, eqs. (43), (64)).
        if !t.ds.has_labels() {
            bail!(
                "--method guided needs a labelled --data for its accuracy floor; {} has no labels",
                t.data_path.display()
            );
        }
        opts.synth.accuracy_floor = Some(AccuracyFloor::new(
            &t.model.net,
            std::sync::Arc::new(t.ds.clone()),
            synth.guided_max_drop,
        ));
    }
    let start = std::time::Instant::now();
    let outcome = synthesize_backdoor(&t.model.net, t.ds, &Cbc, &opts, on_round)?;
    let fwd = outcome.forward.as_ref();
    let mut report = BackdoorReport {
        status: outcome.status,
        hypothesis: outcome.hypothesis,
        rounds: outcome.rounds.len(),
        successes: outcome.successes,
        target: opts.target,
        trigger: opts.trigger,
        seed: opts.seed,
        sprt: opts.sprt,
        chi_threshold: opts.chi_threshold,
        layers: fwd
            .map(|f| f.layers.iter().filter_map(|l| l.config).collect())
            .unwrap_or_default(),
        guided_layers: fwd.map_or_else(Vec::new, |f| {
            (f.layers.iter().enumerate())
                .filter(|(_, l)| l.guided)
                .map(|(i, _)| i)
                .collect()
        }),
        chi_first_layer: outcome.rounds.iter().map(|r| r.best_chi).collect(),
        ids_used: outcome
            .rounds
            .iter()
            .flat_map(|r| r.images.iter().map(|i| i.id))
            .collect(),
        kept_ids: outcome.kept.iter().map(|k| k.id).collect(),
        float_unproven: outcome
            .rounds
            .iter()
            .flat_map(|r| &r.images)
            .filter(|i| i.chi.is_none())
            .count(),
        seconds: 0.0,
        preimage_seconds: outcome.preimage_seconds,
        quantize_seconds: fwd.map_or(0.0, |f| f.seconds),
        deeppoly_calls: fwd.map_or(0, |f| f.deeppoly_calls),
        relaxed: opts.synth.relaxed,
        qnn_accuracy: None,
        attack_counterexample: None,
        qnn_model: None,
        certificate: None,
    };
    if let Some(f) = fwd
        && let (Some(qnn), Some(strategy)) = (&f.qnn, &f.strategy)
    {
        if t.ds.has_labels() {
            report.qnn_accuracy = Some(accuracy(qnn, t.ds, None)?.0);
        }
        if synth.attack {
            let hit = outcome
                .kept
                .iter()
                .any(|k| find_counterexample(qnn, &k.prop, &AttackOptions::default()).is_some());
            report.attack_counterexample = Some(hit);
            if hit {
                return Err(SoundnessBug(format!(
                    "the attack found a trigger reaching target {} on the certified QNN",
                    opts.target
                ))
                .into());
            }
        }
        if let Some(dir) = out {
            let properties = outcome
                .kept
                .iter()
                .zip(&f.proofs)
                .map(|(k, proof)| CertifiedProperty {
                    input: k.prop.input.clone(),
                    output: k.prop.output,
                    source: PropertySource {
                        data: Some(t.data_path.display().to_string()),
                        id: Some(k.id),
                        pixels: t.ds.raw_pixel_bytes(k.id).map(<[u8]>::to_vec),
                        eps_text: None,
                        eps: None,
                        trigger: Some(opts.trigger),
                    },
                    margin: proof.margin,
                    multipliers: proof.multipliers.clone(),
                })
                .collect();
            let chi = outcome
                .kept
                .iter()
                .map(|k| k.preimages.iter().map(|p| p.chi).collect())
                .collect();
            let (q, c) = write_outputs(
                dir,
                t.model,
                t.model_path,
                qnn,
                strategy,
                Claim {
                    properties,
                    chi,
                    statistical: Some(Statistical {
                        theta: opts.sprt.theta,
                        k: opts.sprt.k,
                        sigma: opts.sprt.sigma,
                        rho: opts.sprt.rho,
                        delta: opts.sprt.delta,
                        chi_threshold: opts.chi_threshold,
                    }),
                    semantics: Default::default(),
                },
            )?;
            report.qnn_model = Some(q);
            report.certificate = Some(c);
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok((report, outcome))
}

/// Validates the options, loads the model and data and runs Algorithm 2: the one
/// implementation behind `certquant synth backdoor` and bench workers. A trigger found on a
/// certified QNN is a [`SoundnessBug`] error.
pub fn run_request(
    model: &Path,
    data: &Path,
    args: &BackdoorArgs,
    synth: &SynthOpts,
    out: Option<&Path>,
    on_round: &mut dyn FnMut(&certquant::backdoor::Round, &certquant::sprt::Sprt),
) -> Result<(BackdoorReport, BackdoorOutcome)> {
    // validate the cheap arguments before loading anything
    args.options(synth)?;
    let loaded = load_model(model)?;
    let ds = load_data(data, &loaded.net)?;
    let task = BackdoorTask {
        model: &loaded,
        model_path: model,
        ds: &ds,
        data_path: data,
    };
    run_backdoor(&task, args, synth, out, on_round)
}

/// `certquant synth backdoor`.
pub fn synth_backdoor(a: &SynthBackdoorArgs) -> Result<Outcome> {
    let sp = spinner("SPRT rounds");
    let result = run_request(
        &a.model,
        &a.data,
        &a.backdoor,
        &a.synth,
        a.out.as_deref(),
        &mut |r, s| {
            sp.set_message(format!(
                "SPRT round {}: {} successes (last round {}, best χ {})",
                s.rounds(),
                s.successes(),
                if r.success { "success" } else { "failure" },
                r.best
                    .and_then(|b| r.images[b].chi)
                    .map_or("—".into(), |c| format!("{c:.4}"))
            ));
            tracing::info!(
                round = s.rounds(),
                successes = s.successes(),
                success = r.success,
                seconds = r.seconds,
                "SPRT round"
            );
        },
    );
    sp.finish_and_clear();
    let (report, _) = result?;
    if a.json {
        print_json(&report)?;
    } else {
        print_backdoor(&report);
    }
    Ok(if report.status == BackdoorStatus::Certified {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}

fn print_backdoor(r: &BackdoorReport) {
    println!(
        "target {} trigger {}×{} at ({},{}): {}",
        r.target,
        r.trigger.size,
        r.trigger.size,
        r.trigger.row,
        r.trigger.col,
        match r.status {
            BackdoorStatus::Certified => "CERTIFIED (statistical: H0 accepted)",
            BackdoorStatus::H1Rejected => "H1 ACCEPTED: a backdoor may exist, no strategy",
            BackdoorStatus::Unknown => "UNKNOWN: H0 accepted but no shared strategy in range",
            BackdoorStatus::Timeout => "TIMEOUT: the test did not decide",
        }
    );
    println!(
        "  SPRT: {} rounds, {} successes (θ={}, K={}, σ={}, ϱ={}, δ={}, ε={}); {} images drawn, {} not proven on the float network",
        r.rounds,
        r.successes,
        r.sprt.theta,
        r.sprt.k,
        r.sprt.sigma,
        r.sprt.rho,
        r.sprt.delta,
        r.chi_threshold,
        r.ids_used.len(),
        r.float_unproven
    );
    if !r.layers.is_empty() {
        let cfgs: Vec<String> = r
            .layers
            .iter()
            .map(|c| format!("⟨{},{}⟩", c.total(), c.frac()))
            .collect();
        println!(
            "  strategy {} (proven for the {} kept images)",
            cfgs.join(" "),
            r.kept_ids.len()
        );
        if !r.guided_layers.is_empty() {
            println!(
                "  guided fallback on layer(s) {:?}: no F ≤ B_u kept every kept image inside the preimage",
                r.guided_layers
            );
        }
    }
    if let Some(a) = r.qnn_accuracy {
        println!("  QNN accuracy {:.2}%", a * 100.0);
    }
    println!(
        "  {:.1} s (rounds {:.1} s, quantization {:.2} s)",
        r.seconds, r.preimage_seconds, r.quantize_seconds
    );
    if let (Some(q), Some(c)) = (&r.qnn_model, &r.certificate) {
        println!("  wrote {q} and {c}");
    }
}
