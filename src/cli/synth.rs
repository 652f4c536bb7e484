//! `synth robustness` (Algorithm 1) and its outputs (QNN, certificate).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use certquant::activations::{ActOptions, activation_search, integer_accuracy};
use certquant::attack::{
    AttackOptions, find_counterexample, find_float32_counterexample, find_integer_counterexample,
};
use certquant::certificate::{
    Certificate, CertifiedProperty, FORMAT, ModelRef, PropertySource, Statistical, sha256_hex,
};
use certquant::data::Dataset;
use certquant::floor::AccuracyFloor;
use certquant::milp::cbc::Cbc;
use certquant::onnx;
use certquant::preimage::{ChiSource, Engine, TemplateKind};
use certquant::quantize::QuantConfig;
use certquant::semantics::{ActFormat, IntProgram, Semantics};
use certquant::spec::{InputBox, OutputSpec, Property, parse_eps};
use certquant::synth::{Method, SynthOptions, SynthOutcome, SynthStatus, synthesize};

use super::common::{
    LoadedModel, Outcome, accuracy, input, load_data, load_model, print_json, spinner,
};
use super::{MethodArg, PreimageArg, SemanticsArg, SynthOpts, TemplateArg};

/// One robustness task by file names: what `certquant synth robustness` and a bench worker
/// run (through [`run_request`]).
pub struct RobustnessRequest<'a> {
    /// ONNX model.
    pub model: &'a Path,
    /// IDX directory or .npy file.
    pub data: &'a Path,
    /// Input id.
    pub id: usize,
    /// Radius as given (e.g. `2/255`).
    pub eps: &'a str,
    /// Synthesis options.
    pub opts: &'a SynthOpts,
    /// Given χ values (skip step 1), see [`SynthOptions::given_chi`].
    pub chi: Option<&'a [f64]>,
    /// Also measure the QNN's accuracy on the whole data set.
    pub accuracy: bool,
    /// Write the QNN and certificate here when certified.
    pub out: Option<&'a Path>,
}

/// An attack found a concrete counterexample to a certified result: the method (or the bound
/// code under it) is unsound. A typed error, so that bench workers record it as the
/// `soundness-bug` status while the commands fail with this message (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("SOUNDNESS BUG: {0}")]
pub struct SoundnessBug(pub String);

/// The machine-readable result of one robustness synthesis task (`synth robustness --json`,
/// and the record of a finished bench task).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RobustnessReport {
    /// Algorithm 1's answer.
    pub status: SynthStatus,
    /// Input id.
    pub id: usize,
    /// The class that must stay on top.
    pub label: usize,
    /// The radius.
    pub eps: f64,
    /// The radius as given (e.g. `2/255`).
    pub eps_text: String,
    /// Accepted ⟨Q, F⟩ per affine layer, input side first (complete iff certified).
    pub layers: Vec<QuantConfig>,
    /// χ per hidden layer, input side first.
    pub chi: Vec<f64>,
    /// With `--method guided`: the affine layers (0-based) whose bits the verification-guided
    /// fallback chose because no `F` kept them inside their preimage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guided_layers: Vec<usize>,
    /// How each χ was obtained.
    pub chi_source: Vec<ChiSource>,
    /// Seconds of step 1 (preimages).
    pub preimage_seconds: f64,
    /// Seconds of step 2 (the bit-width search).
    pub quantize_seconds: f64,
    /// DeepPoly's margin of the property on the float network.
    pub float_margin: f64,
    /// The proven margin on the QNN (when certified).
    pub qnn_margin: Option<f64>,
    /// MILPs solved for the preimages.
    pub milps: usize,
    /// Escape regions pruned without a MILP (fast engine).
    pub pruned_escapes: usize,
    /// DeepPoly runs of the bit-width search.
    pub deeppoly_calls: usize,
    /// The preimage engine.
    pub engine: PreimageArg,
    /// The preimage template.
    pub template: TemplateArg,
    /// Relaxed mode (Quadapter*).
    pub relaxed: bool,
    /// With --accuracy: the QNN's accuracy on the whole data set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qnn_accuracy: Option<f64>,
    /// With --attack: whether a concrete counterexample was found on the QNN (for unknown
    /// tasks: on the network quantized with the accepted configs and B_u for the rest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_counterexample: Option<bool>,
    /// With an output directory: the QNN written (when certified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qnn_model: Option<String>,
    /// With an output directory: the certificate written (when certified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The arithmetic of the certificate (`real` unless `--semantics integer`; left out when real).
    #[serde(default, skip_serializing_if = "SemanticsArg::is_real")]
    pub semantics: SemanticsArg,
    /// With `--semantics integer`: the activation formats, input first (complete iff certified).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activations: Vec<ActFormat>,
    /// With `--semantics integer`: seconds of the activation search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_seconds: Option<f64>,
    /// With `--semantics integer`: why no activation formats were found although the weight
    /// strategy was certified under the real semantics (the status is then `unknown`); with
    /// `--semantics float32`: why the float32 proof failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer_failure: Option<String>,
}

/// Library options from the CLI vocabulary.
pub fn synth_options(o: &SynthOpts) -> SynthOptions {
    let mut s = SynthOptions::paper(o.relaxed);
    if let Some(b) = o.min_frac {
        s.min_frac = b;
    }
    s.max_frac = o.max_frac;
    s.preimage.template = match o.template {
        TemplateArg::Code => TemplateKind::Code,
        TemplateArg::Paper => TemplateKind::Paper,
    };
    s.preimage.engine = match o.preimage {
        PreimageArg::Fast => Engine::Fast,
        PreimageArg::Paper => Engine::Paper,
        PreimageArg::Abstract => Engine::Abstract,
    };
    s.preimage.chi_max = o.chi_max;
    s.preimage.time_limit = o.time_limit;
    s.preimage.gap = o.gap;
    s.relaxed_time_limit = o.relaxed_time_limit;
    s.carry_rejections = o.carry_rejections;
    s.method = match o.method {
        MethodArg::Paper => Method::Paper,
        MethodArg::Guided => Method::Guided,
    };
    s.preimage.solver = certquant::milp::SolverTuning {
        // validated by clap (and by `ensure_finite` before a bench sends them to workers)
        params: o
            .solver_param
            .iter()
            .filter_map(|p| certquant::milp::SolverTuning::parse_param(p).ok())
            .collect(),
        dump_mps: o.dump_mps.clone(),
    };
    s
}

/// The activation search's options from the CLI vocabulary.
pub fn act_options(o: &SynthOpts) -> ActOptions {
    ActOptions {
        min_frac: 0,
        max_frac: o.act_max_frac,
        acc_bits: o.acc_bits,
    }
}

/// One robustness task on an already loaded model and data set.
pub struct Task<'a> {
    pub model: &'a LoadedModel,
    pub model_path: &'a Path,
    pub ds: &'a Dataset,
    pub data_path: &'a Path,
    pub id: usize,
    pub eps_text: &'a str,
    /// Given χ values (skip step 1), see [`SynthOptions::given_chi`].
    pub given_chi: Option<&'a [f64]>,
}

/// Runs Algorithm 1 on one task, writes outputs if asked, and builds the report.
pub fn run_task(
    t: &Task<'_>,
    opts: &SynthOpts,
    with_accuracy: bool,
    out: Option<&Path>,
) -> Result<(RobustnessReport, SynthOutcome)> {
    let eps = parse_eps(t.eps_text)?;
    let x = input(t.ds, t.id, t.data_path)?;
    let label = t.ds.label(t.id).unwrap_or_else(|| t.model.net.predict(x));
    let prop = Property {
        input: InputBox::linf_ball(x, eps)?,
        output: OutputSpec::Robust { label },
    };
    opts.ensure_finite()?;
    if opts.semantics != SemanticsArg::Real
        && let Some(k) = t.model.net.inexact_layers().first()
    {
        // docs/method.md eqs. (74), (75): only the real semantics covers such a layer.
        anyhow::bail!(
            "--semantics integer/float32: layer {k} averages over a window whose size is not \
             a power of two; only the real semantics covers it"
        );
    }
    let mut sopts = synth_options(opts);
    sopts.given_chi = t.given_chi.map(<[f64]>::to_vec);
    if opts.method == MethodArg::Guided {
        sopts.accuracy_floor = Some(AccuracyFloor::new(
            &t.model.net,
            std::sync::Arc::new(t.ds.clone()),
            opts.guided_max_drop,
        ));
    }
    let outcome = synthesize(&t.model.net, &prop, x, &Cbc, &sopts)?;
    let mut report = RobustnessReport {
        status: outcome.status,
        id: t.id,
        label,
        eps,
        eps_text: t.eps_text.to_string(),
        layers: outcome.layers.iter().filter_map(|l| l.config).collect(),
        chi: outcome.preimages.iter().map(|p| p.chi).collect(),
        guided_layers: (outcome.layers.iter().enumerate())
            .filter(|(_, l)| l.guided)
            .map(|(i, _)| i)
            .collect(),
        chi_source: outcome.preimages.iter().map(|p| p.source).collect(),
        preimage_seconds: outcome.preimage_seconds,
        quantize_seconds: outcome.quantize_seconds,
        float_margin: outcome.float_margin,
        qnn_margin: outcome.qnn_margin,
        milps: outcome.preimages.iter().map(|p| p.milps).sum(),
        pruned_escapes: outcome.preimages.iter().map(|p| p.pruned).sum(),
        deeppoly_calls: outcome.deeppoly_calls,
        engine: match sopts.preimage.engine {
            Engine::Fast => PreimageArg::Fast,
            Engine::Paper => PreimageArg::Paper,
            Engine::Abstract => PreimageArg::Abstract,
        },
        template: match sopts.preimage.template {
            TemplateKind::Code => TemplateArg::Code,
            TemplateKind::Paper => TemplateArg::Paper,
        },
        relaxed: sopts.relaxed,
        qnn_accuracy: None,
        attack_counterexample: None,
        qnn_model: None,
        certificate: None,
        semantics: opts.semantics,
        activations: Vec::new(),
        activation_seconds: None,
        integer_failure: None,
    };
    // Under the integer semantics, the weight strategy is followed by the activation formats;
    // the certificate then rests on the proof of the integer network (docs/method.md §17).
    let mut semantics = Semantics::Real;
    let mut program = None;
    if opts.semantics == SemanticsArg::Integer
        && let (Some(qnn), Some(strategy)) = (&outcome.qnn, &outcome.strategy)
    {
        // The activation formats keep an accuracy floor on --data (without one, the input
        // would round to one bit): the guided method's (float − --guided-max-drop), else
        // the weight-quantized network's accuracy − --guided-max-drop.
        let floor = match &sopts.accuracy_floor {
            Some(f) => f.clone(),
            None => {
                AccuracyFloor::new(qnn, std::sync::Arc::new(t.ds.clone()), opts.guided_max_drop)
            }
        };
        let acts = activation_search(
            qnn,
            strategy,
            &[&prop],
            Some(&floor),
            &Cbc,
            &act_options(opts),
        )?;
        report.activation_seconds = Some(acts.seconds);
        report.activations = acts.layers.iter().filter_map(|l| l.format).collect();
        match acts.semantics {
            Some(sem) => {
                report.qnn_margin = acts.proofs.first().map(|p| p.margin);
                program = Some(IntProgram::new(qnn, &strategy.0, &sem)?);
                semantics = Semantics::Integer(sem);
            }
            None => {
                report.status = SynthStatus::Unknown;
                report.qnn_margin = None;
                report.integer_failure = acts.failure;
            }
        }
    }
    // Under float32 the weight strategy is proven again on the binary32 network (eqs. (58b),
    // (58c)); a failure leaves the task unknown, with the reason (src/float32.rs).
    if opts.semantics == SemanticsArg::Float32
        && report.status == SynthStatus::Certified
        && let Some(qnn) = &outcome.qnn
    {
        match certquant::float32::prove_all(qnn, &[&prop]).map_err(anyhow::Error::msg)? {
            Ok(m) => {
                report.qnn_margin = m.first().copied();
                semantics = Semantics::Float32;
            }
            Err(reason) => {
                report.status = SynthStatus::Unknown;
                report.qnn_margin = None;
                report.integer_failure = Some(reason);
            }
        }
    }
    let certified = report.status == SynthStatus::Certified;
    if opts.attack {
        report.attack_counterexample = match &program {
            None if opts.semantics == SemanticsArg::Float32 => outcome.qnn.as_ref().map(|q| {
                find_float32_counterexample(q, &prop, &AttackOptions::default()).is_some()
            }),
            Some(p) => outcome.qnn.as_ref().map(|q| {
                find_integer_counterexample(q, p, &prop, &AttackOptions::default()).is_some()
            }),
            None => attack_target(&t.model.net, &outcome, &sopts)
                .map(|q| find_counterexample(&q, &prop, &AttackOptions::default()).is_some()),
        };
        if report.status == SynthStatus::Certified && report.attack_counterexample == Some(true) {
            return Err(SoundnessBug(format!(
                "the attack found a counterexample to a certified result (id {}, eps {})",
                t.id, t.eps_text
            ))
            .into());
        }
    }
    if let (Some(qnn), Some(strategy), true) = (&outcome.qnn, &outcome.strategy, certified) {
        if with_accuracy {
            report.qnn_accuracy = Some(match &program {
                Some(p) => integer_accuracy(p, t.ds),
                None if semantics.is_float32() => certquant::float32::accuracy(qnn, t.ds),
                None => accuracy(qnn, t.ds, None)?.0,
            });
        }
        if let Some(dir) = out {
            let props = vec![CertifiedProperty {
                input: prop.input.clone(),
                output: prop.output,
                source: PropertySource {
                    data: Some(t.data_path.display().to_string()),
                    id: Some(t.id),
                    pixels: t.ds.raw_pixel_bytes(t.id).map(<[u8]>::to_vec),
                    eps_text: Some(t.eps_text.to_string()),
                    eps: Some(eps),
                    trigger: None,
                },
                margin: if semantics.is_float32() {
                    report.qnn_margin
                } else {
                    outcome.qnn_margin
                }
                .unwrap_or(f64::NAN),
                multipliers: None,
            }];
            let (q, c) = write_outputs(
                dir,
                t.model,
                t.model_path,
                qnn,
                strategy,
                Claim {
                    properties: props,
                    chi: vec![report.chi.clone()],
                    statistical: None,
                    semantics: semantics.clone(),
                },
            )?;
            report.qnn_model = Some(q);
            report.certificate = Some(c);
        }
    }
    Ok((report, outcome))
}

/// The network an attack should target: the certified QNN, or for an unknown task the
/// network with the accepted configs and `B_u` on every remaining layer.
fn attack_target(
    net: &certquant::model::Network,
    o: &SynthOutcome,
    s: &SynthOptions,
) -> Option<certquant::model::Network> {
    if let Some(q) = &o.qnn {
        return Some(q.clone());
    }
    if o.status != SynthStatus::Unknown {
        return None;
    }
    let fracs: Vec<u32> = (0..net.depth())
        .map(|i| {
            o.layers
                .get(i)
                .and_then(|l| l.config)
                .map_or(s.max_frac, |c| c.frac())
        })
        .collect();
    certquant::quantize::Strategy::from_fracs(net, &fracs)
        .ok()?
        .apply(net)
        .ok()
}

/// What a certificate states: the proven properties, the preimage `χ` per property, and the
/// statistical parameters when the guarantee is statistical.
pub struct Claim {
    pub properties: Vec<CertifiedProperty>,
    pub chi: Vec<Vec<f64>>,
    pub statistical: Option<Statistical>,
    /// The arithmetic the properties were proven for (docs/method.md §17).
    pub semantics: Semantics,
}

/// Writes `qnn.onnx` and `certificate.json` into `dir`; returns their paths.
pub fn write_outputs(
    dir: &Path,
    model: &LoadedModel,
    model_path: &Path,
    qnn: &certquant::model::Network,
    strategy: &certquant::quantize::Strategy,
    claim: Claim,
) -> Result<(String, String)> {
    let Claim {
        properties,
        chi,
        statistical,
        semantics,
    } = claim;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let qnn_path = dir.join("qnn.onnx");
    let qnn_bytes = onnx::export_bytes(qnn)?;
    std::fs::write(&qnn_path, &qnn_bytes)
        .with_context(|| format!("cannot write {}", qnn_path.display()))?;
    let cert = Certificate {
        format: FORMAT.to_string(),
        tool: format!("certquant {}", env!("CARGO_PKG_VERSION")),
        original_model: ModelRef {
            sha256: sha256_hex(&model.bytes),
            file: Some(model_path.display().to_string()),
        },
        qnn: ModelRef {
            sha256: sha256_hex(&qnn_bytes),
            file: Some(qnn_path.display().to_string()),
        },
        strategy: strategy.0.clone(),
        semantics,
        chi,
        verifier: if properties.iter().any(|p| p.multipliers.is_some()) {
            "deeppoly (certquant::bounds, outward-rounded f64) + LP multipliers".to_string()
        } else {
            "deeppoly (certquant::bounds, outward-rounded f64)".to_string()
        },
        properties,
        statistical,
        vnnlib: None,
        vnnlib_set: Vec::new(),
    };
    let cert_path = dir.join("certificate.json");
    cert.write(&cert_path)?;
    Ok((
        qnn_path.display().to_string(),
        cert_path.display().to_string(),
    ))
}

/// Loads the model and data of `r` and runs the task: the one implementation behind
/// `certquant synth robustness` and bench workers. A counterexample to a certified result is
/// a [`SoundnessBug`] error.
pub fn run_request(r: &RobustnessRequest<'_>) -> Result<(RobustnessReport, SynthOutcome)> {
    parse_eps(r.eps)?;
    let model = load_model(r.model)?;
    let ds = load_data(r.data, &model.net)?;
    let task = Task {
        model: &model,
        model_path: r.model,
        ds: &ds,
        data_path: r.data,
        id: r.id,
        eps_text: r.eps,
        given_chi: r.chi,
    };
    run_task(&task, r.opts, r.accuracy, r.out)
}

/// `certquant synth robustness` (one JSON object on stdout with `json`, else a table).
pub fn robustness(r: &RobustnessRequest<'_>, json: bool) -> Result<Outcome> {
    let sp = spinner(&format!(
        "synthesizing a strategy for id {} eps {}",
        r.id, r.eps
    ));
    let result = run_request(r);
    sp.finish_and_clear();
    let (report, outcome) = result?;
    if json {
        print_json(&report)?;
    } else {
        print_table(&report, &outcome);
    }
    Ok(if report.status == SynthStatus::Certified {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}

/// Human-readable table of a synthesis result.
pub fn print_table(r: &RobustnessReport, o: &SynthOutcome) {
    println!(
        "id {} label {} eps {}: {}",
        r.id,
        r.label,
        r.eps_text,
        match r.status {
            SynthStatus::Certified => "CERTIFIED".to_string(),
            SynthStatus::Unknown => format!(
                "UNKNOWN (no F in range passed layer {})",
                o.layers.len().saturating_sub(1)
            ),
            SynthStatus::PropertyFails =>
                "PROPERTY FAILS on the float network (DeepPoly)".to_string(),
            SynthStatus::Timeout => "TIMEOUT".to_string(),
        }
    );
    println!("  layer   Q   F   I   χ (preimage of its output)");
    for (i, rec) in o.layers.iter().enumerate() {
        let chi = o
            .preimages
            .get(i)
            .map(|p| format!("{:.5} ({:?})", p.chi, p.source))
            .unwrap_or_else(|| "—".into());
        match rec.config {
            Some(c) => println!(
                "  {:>5} {:>3} {:>3} {:>3}   {}",
                i,
                c.total(),
                c.frac(),
                c.int_bits(),
                chi
            ),
            None => println!("  {i:>5}   none in range after {} tries   {chi}", rec.tried),
        }
    }
    println!(
        "  float margin {:.5}, QNN margin {}, preimages {:.2} s ({} MILPs, {} escapes pruned), quantization {:.2} s ({} DeepPoly runs)",
        r.float_margin,
        r.qnn_margin.map_or("—".into(), |m| format!("{m:.5}")),
        r.preimage_seconds,
        r.milps,
        r.pruned_escapes,
        r.quantize_seconds,
        r.deeppoly_calls
    );
    if r.semantics == SemanticsArg::Integer {
        let acts: Vec<String> = r
            .activations
            .iter()
            .map(|a| format!("⟨{},{}⟩", a.total(), a.frac()))
            .collect();
        println!(
            "  integer-only semantics: activations (input first) {}{}{}",
            if acts.is_empty() {
                "—".into()
            } else {
                acts.join(" ")
            },
            r.activation_seconds
                .map_or(String::new(), |s| format!(", chosen in {s:.2} s")),
            r.integer_failure
                .as_deref()
                .map_or(String::new(), |f| format!(" — {f}"))
        );
    }
    if let Some(a) = r.qnn_accuracy {
        println!("  QNN accuracy {a:.4}");
    }
    if let (Some(q), Some(c)) = (&r.qnn_model, &r.certificate) {
        println!("  wrote {q} and {c}");
    }
}
