//! `synth robustness` with a property set: one certified strategy for many inputs
//! (verification-guided search, [`certquant::search`]).

use std::path::Path;

use anyhow::{Result, bail};
use serde::Serialize;

use certquant::activations::{activation_search, integer_accuracy};
use certquant::attack::{AttackOptions, find_float32_counterexample, find_integer_counterexample};
use certquant::certificate::{CertifiedProperty, PropertySource};
use certquant::floor::AccuracyFloor;
use certquant::milp::cbc::Cbc;
use certquant::quantize::QuantConfig;
use certquant::search::{Objective, PropertyStatus, SearchMethod, SearchOptions, search};
use certquant::semantics::{ActFormat, IntProgram, Semantics};
use certquant::spec::{InputBox, OutputSpec, Property, parse_eps};

use super::common::{Outcome, accuracy, input, load_data, load_model, print_json, spinner};
use super::synth::{Claim, SoundnessBug, act_options, write_outputs};
use super::{ObjectiveArg, SemanticsArg, SynthOpts};

/// How `--ids` searches the lattice of bit-widths (docs/method.md, eqs. (43), (63)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchArg {
    /// Exact enumeration up to 4 affine layers, descent beyond (see BENCHMARKS.md, issue 16).
    Auto,
    /// Best-first enumeration in memory order: optimal, exponential in depth.
    Exact,
    /// Bisection, coordinate descent and bit moves from B_u: polynomial in depth.
    Descent,
}

/// Deepest network `--search auto` enumerates exactly.
const AUTO_EXACT_DEPTH: usize = 4;

/// Arguments of the property-set mode.
pub struct SetRequest<'a> {
    pub model: &'a Path,
    pub data: &'a Path,
    pub ids: Vec<usize>,
    pub eps: &'a str,
    pub opts: &'a SynthOpts,
    pub objective: ObjectiveArg,
    pub accuracy_data: Option<&'a Path>,
    pub max_acc_drop: f64,
    pub search: SearchArg,
    pub out: Option<&'a Path>,
    pub json: bool,
}

#[derive(Serialize)]
struct PropertyRow {
    id: usize,
    label: usize,
    status: PropertyStatus,
    float_margin: f64,
    qnn_margin: Option<f64>,
}

#[derive(Serialize)]
struct SetReport {
    status: &'static str,
    eps: f64,
    eps_text: String,
    objective: &'static str,
    /// `exact` or `descent` (after resolving `auto`).
    search: SearchArg,
    properties: Vec<PropertyRow>,
    certified: usize,
    property_fails: usize,
    layers: Vec<QuantConfig>,
    memory_kib: Option<f64>,
    float32_memory_kib: f64,
    float_accuracy: Option<f64>,
    qnn_accuracy: Option<f64>,
    min_accuracy: Option<f64>,
    candidates: usize,
    deeppoly_calls: usize,
    accuracy_evaluations: usize,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    qnn_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    /// `real` or `integer` (docs/method.md §17).
    semantics: SemanticsArg,
    /// With `--semantics integer`: activation formats, input first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    activations: Vec<ActFormat>,
    /// With `--semantics integer`: activation buffer memory in KiB (Σ Q^a_k · n_k).
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_kib: Option<f64>,
    /// With `--semantics integer`: the largest accumulator magnitude over all inputs (eq. (57)).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_accumulator: Option<i128>,
    /// With `--semantics integer`: seconds of the activation search.
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_seconds: Option<f64>,
    /// With `--semantics integer`: why no activation formats were found; with `--semantics
    /// float32`: why the float32 proof failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    integer_failure: Option<String>,
    /// With `--attack` (integer or float32 semantics): whether any certified property was
    /// broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    attack_counterexample: Option<bool>,
}

/// Runs the property-set search.
pub fn robustness_set(r: &SetRequest<'_>) -> Result<Outcome> {
    let eps = parse_eps(r.eps)?;
    if !(r.max_acc_drop.is_finite() && r.max_acc_drop >= 0.0) {
        bail!("--max-acc-drop must be a non-negative number of percentage points");
    }
    if r.ids.is_empty() {
        bail!("no ids given");
    }
    let model = load_model(r.model)?;
    if r.opts.semantics != SemanticsArg::Real
        && let Some(k) = model.net.inexact_layers().first()
    {
        // docs/method.md eqs. (74), (75): only the real semantics covers such a layer.
        bail!(
            "--semantics integer/float32: layer {k} averages over a window whose size is not \
             a power of two; only the real semantics covers it"
        );
    }
    let ds = load_data(r.data, &model.net)?;
    let mut props = Vec::with_capacity(r.ids.len());
    let mut labels = Vec::with_capacity(r.ids.len());
    for &id in &r.ids {
        let x = input(&ds, id, r.data)?;
        let label = ds.label(id).unwrap_or_else(|| model.net.predict(x));
        labels.push(label);
        props.push(Property {
            input: InputBox::linf_ball(x, eps)?,
            output: OutputSpec::Robust { label },
        });
    }
    let acc_ds = match r.accuracy_data {
        Some(p) => Some(load_data(p, &model.net)?),
        None => None,
    };
    let float_accuracy = match &acc_ds {
        Some(d) => Some(accuracy(&model.net, d, None)?.0),
        None => None,
    };
    let min_accuracy = float_accuracy.map(|a| a - r.max_acc_drop / 100.0);
    let opts = SearchOptions {
        objective: match r.objective {
            ObjectiveArg::Memory => Objective::Memory,
            ObjectiveArg::Paper => Objective::Paper,
        },
        min_frac: r.opts.min_frac.unwrap_or(1),
        max_frac: r.opts.max_frac,
        min_accuracy,
        method: match search_method(r.search, model.net.depth()) {
            SearchArg::Descent => SearchMethod::Descent,
            _ => SearchMethod::Exact,
        },
        ..SearchOptions::default()
    };
    let sp = spinner(&format!(
        "searching one strategy for {} properties",
        props.len()
    ));
    let out = search(&model.net, &props, acc_ds.as_ref(), &opts)?;
    sp.finish_and_clear();
    let float32_kib = model.net.params_per_layer().iter().sum::<usize>() as f64 * 4.0 / 1024.0;
    let mut report = SetReport {
        status: if out.strategy.is_some() {
            "certified"
        } else {
            "unknown"
        },
        eps,
        eps_text: r.eps.to_string(),
        objective: match opts.objective {
            Objective::Memory => "memory",
            Objective::Paper => "paper",
        },
        search: search_method(r.search, model.net.depth()),
        properties: r
            .ids
            .iter()
            .enumerate()
            .map(|(i, &id)| PropertyRow {
                id,
                label: labels[i],
                status: out.status[i],
                float_margin: out.float_margins[i],
                qnn_margin: out.qnn_margins[i],
            })
            .collect(),
        certified: out
            .status
            .iter()
            .filter(|s| **s == PropertyStatus::Certified)
            .count(),
        property_fails: out
            .status
            .iter()
            .filter(|s| **s == PropertyStatus::PropertyFails)
            .count(),
        layers: out
            .strategy
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_default(),
        memory_kib: out
            .strategy
            .as_ref()
            .map(|s| s.memory_bits(&model.net) as f64 / 8.0 / 1024.0),
        float32_memory_kib: float32_kib,
        float_accuracy,
        qnn_accuracy: out.qnn_accuracy,
        min_accuracy,
        candidates: out.candidates,
        deeppoly_calls: out.deeppoly_calls,
        accuracy_evaluations: out.accuracy_evaluations,
        seconds: out.seconds,
        qnn_model: None,
        certificate: None,
        semantics: r.opts.semantics,
        activations: Vec::new(),
        activation_kib: None,
        max_accumulator: None,
        activation_seconds: None,
        integer_failure: None,
        attack_counterexample: None,
    };
    let mut out = out;
    let mut semantics = Semantics::Real;
    if r.opts.semantics == SemanticsArg::Integer
        && let (Some(s), Some(q)) = (out.strategy.clone(), out.qnn.clone())
    {
        let q = &q;
        // Activation formats for every certified property, under the same accuracy floor
        // (docs/method.md §17).
        let certified: Vec<usize> = (0..props.len())
            .filter(|&i| out.status[i] == PropertyStatus::Certified)
            .collect();
        let chosen: Vec<&Property> = certified.iter().map(|&i| &props[i]).collect();
        let floor = acc_ds.as_ref().map(|d| {
            AccuracyFloor::new(&model.net, std::sync::Arc::new(d.clone()), r.max_acc_drop)
        });
        let acts = activation_search(q, &s, &chosen, floor.as_ref(), &Cbc, &act_options(r.opts))?;
        report.activation_seconds = Some(acts.seconds);
        report.deeppoly_calls += acts.deeppoly_calls;
        report.activations = acts.layers.iter().filter_map(|l| l.format).collect();
        match acts.semantics {
            Some(sem) => {
                let program = IntProgram::new(q, &s.0, &sem)?;
                for (&i, p) in certified.iter().zip(&acts.proofs) {
                    out.qnn_margins[i] = Some(p.margin);
                }
                for row in &mut report.properties {
                    if let Some(i) = r.ids.iter().position(|&id| id == row.id) {
                        row.qnn_margin = out.qnn_margins[i];
                    }
                }
                report.activation_kib = Some(sem.activation_bits(q) as f64 / 8.0 / 1024.0);
                report.max_accumulator = Some(program.max_accumulator_bound());
                report.qnn_accuracy = acc_ds.as_ref().map(|d| integer_accuracy(&program, d));
                if r.opts.attack {
                    let broken = chosen.iter().any(|p| {
                        find_integer_counterexample(q, &program, p, &AttackOptions::default())
                            .is_some()
                    });
                    report.attack_counterexample = Some(broken);
                    if broken {
                        return Err(SoundnessBug(
                            "the attack found a counterexample to a certified integer-semantics result"
                                .into(),
                        )
                        .into());
                    }
                }
                semantics = Semantics::Integer(sem);
            }
            None => {
                report.status = "unknown";
                report.integer_failure = acts.failure;
                out.strategy = None;
            }
        }
    }
    if r.opts.semantics == SemanticsArg::Float32 && out.strategy.is_some() {
        semantics = float32_proofs(r, &props, &mut out, &mut report)?;
        if let (Some(q), Some(d)) = (&out.qnn, &acc_ds)
            && semantics.is_float32()
        {
            report.qnn_accuracy = Some(certquant::float32::accuracy(q, d));
        }
    }
    if let (Some(dir), Some(s), Some(q)) = (r.out, &out.strategy, &out.qnn) {
        let certified: Vec<CertifiedProperty> = r
            .ids
            .iter()
            .enumerate()
            .filter(|(i, _)| out.status[*i] == PropertyStatus::Certified)
            .map(|(i, &id)| CertifiedProperty {
                input: props[i].input.clone(),
                output: props[i].output,
                source: PropertySource {
                    data: Some(r.data.display().to_string()),
                    id: Some(id),
                    pixels: ds.raw_pixel_bytes(id).map(<[u8]>::to_vec),
                    eps_text: Some(r.eps.to_string()),
                    eps: Some(eps),
                    trigger: None,
                },
                margin: out.qnn_margins[i].unwrap_or(f64::NAN),
                multipliers: None,
            })
            .collect();
        let (qp, cp) = write_outputs(
            dir,
            &model,
            r.model,
            q,
            s,
            Claim {
                properties: certified,
                chi: Vec::new(),
                statistical: None,
                semantics: semantics.clone(),
            },
        )?;
        report.qnn_model = Some(qp);
        report.certificate = Some(cp);
    }
    if r.json {
        print_json(&report)?;
    } else {
        println!(
            "{} properties at eps {}: {} ({} certified, {} left out: DeepPoly fails on the float network)",
            r.ids.len(),
            r.eps,
            report.status.to_uppercase(),
            report.certified,
            report.property_fails
        );
        let cfgs: Vec<String> = report
            .layers
            .iter()
            .map(|c| format!("⟨{},{}⟩", c.total(), c.frac()))
            .collect();
        println!(
            "  strategy {}  memory {} KiB (float32 {:.1} KiB)",
            cfgs.join(" "),
            report.memory_kib.map_or("—".into(), |m| format!("{m:.1}")),
            float32_kib
        );
        if !report.activations.is_empty() || report.integer_failure.is_some() {
            let acts: Vec<String> = report
                .activations
                .iter()
                .map(|a| format!("⟨{},{}⟩", a.total(), a.frac()))
                .collect();
            println!(
                "  integer semantics: activations {}  buffers {} KiB  {}",
                acts.join(" "),
                report
                    .activation_kib
                    .map_or("—".into(), |m| format!("{m:.2}")),
                report.integer_failure.as_deref().unwrap_or("")
            );
        }
        if let (Some(f), Some(q)) = (report.float_accuracy, report.qnn_accuracy) {
            println!(
                "  accuracy: float {:.2}%, QNN {:.2}% (floor {:.2}%)",
                f * 100.0,
                q * 100.0,
                min_accuracy.unwrap_or(0.0) * 100.0
            );
        }
        println!(
            "  {} search: {} candidates, {} DeepPoly runs, {} accuracy evaluations, {:.2} s",
            match report.search {
                SearchArg::Descent => "descent",
                _ => "exact",
            },
            report.candidates,
            report.deeppoly_calls,
            report.accuracy_evaluations,
            report.seconds
        );
        if let (Some(q), Some(c)) = (&report.qnn_model, &report.certificate) {
            println!("  wrote {q} and {c}");
        }
    }
    Ok(if report.status == "certified" {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}

/// `--search auto` resolved by depth: exact enumeration while it is cheap, descent beyond.
pub(super) fn search_method(a: SearchArg, depth: usize) -> SearchArg {
    match a {
        SearchArg::Auto if depth <= AUTO_EXACT_DEPTH => SearchArg::Exact,
        SearchArg::Auto => SearchArg::Descent,
        other => other,
    }
}

/// `--semantics float32` on a property set (docs/method.md, eqs. (58b), (58c)): every
/// certified property is proven again on the binary32 network (`certquant::float32`); its
/// margin replaces the real one. If one fails, the strategy is dropped and the status is
/// `unknown` with the reason (as `--semantics integer` does). With `--attack`, each certified
/// property is attacked with binary32 forward passes in several summation orders; the
/// caller then reports the binary32 accuracy (`certquant::float32::accuracy`).
fn float32_proofs(
    r: &SetRequest<'_>,
    props: &[Property],
    out: &mut certquant::search::SearchOutcome,
    report: &mut SetReport,
) -> Result<Semantics> {
    let Some(q) = out.qnn.clone() else {
        return Ok(Semantics::Real);
    };
    let certified: Vec<usize> = (0..props.len())
        .filter(|&i| out.status[i] == PropertyStatus::Certified)
        .collect();
    let chosen: Vec<&Property> = certified.iter().map(|&i| &props[i]).collect();
    match certquant::float32::prove_all(&q, &chosen).map_err(anyhow::Error::msg)? {
        Ok(margins) => {
            for (&i, m) in certified.iter().zip(margins) {
                out.qnn_margins[i] = Some(m);
            }
            for row in &mut report.properties {
                if let Some(i) = r.ids.iter().position(|&id| id == row.id) {
                    row.qnn_margin = out.qnn_margins[i];
                }
            }
        }
        Err(reason) => {
            report.status = "unknown";
            report.integer_failure = Some(reason);
            out.strategy = None;
            return Ok(Semantics::Real);
        }
    }
    if r.opts.attack {
        let broken = chosen
            .iter()
            .any(|p| find_float32_counterexample(&q, p, &AttackOptions::default()).is_some());
        report.attack_counterexample = Some(broken);
        if broken {
            return Err(SoundnessBug(
                "the attack found a binary32 counterexample to a certified float32 result".into(),
            )
            .into());
        }
    }
    Ok(Semantics::Float32)
}
