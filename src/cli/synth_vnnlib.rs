//! `certquant synth vnnlib --model M.onnx --vnnlib P.vnnlib`: certified quantization of a
//! VNN-LIB property ([`certquant::quantize_query`]; docs/method.md §16). Every candidate
//! strategy is judged by the full split proof on its QNN, so `certified` is certified by
//! construction; with `--out` the QNN and a certificate carrying the strategy and the split
//! trees of the final proof are written, and re-checked by the independent checker at once.
//!
//! Exit codes as `synth robustness`: 0 certified, 1 not (violated / unknown), 2 bad input.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use certquant::certificate::{Certificate, FORMAT, ModelRef, QueryCertificate, sha256_hex};
use certquant::milp::cbc::Cbc;
use certquant::quantize::QuantConfig;
use certquant::quantize_query::{QuantizeQueryOptions, QueryStatus, quantize_query};
use certquant::split::SplitOptions;
use certquant_synth::deadline::Deadline;
use certquant_synth::multipliers::LpMultipliers;

use super::common::{Outcome, accuracy, load_data, load_model, report_outcome};
use super::verify::{CounterexampleReport, read_query_bytes};

/// Arguments of `certquant synth vnnlib`.
#[derive(Debug, Args)]
pub struct SynthVnnlibArgs {
    /// ONNX model (float).
    #[arg(long)]
    pub model: PathBuf,
    /// The VNN-LIB property: the asserts describe a counterexample; the property holds iff
    /// none exists.
    #[arg(long, value_name = "FILE")]
    pub vnnlib: PathBuf,
    /// Wall-clock budget in seconds: the float proof and the search stop at 90 % of it (on
    /// expiry during the search, the best strategy proven so far is the answer), the rest is
    /// left for the outputs.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Largest number of input-box splits of the float proof (each candidate gets twice the
    /// float proof's splits plus 32, at most this).
    #[arg(long, default_value_t = 10_000)]
    pub max_splits: usize,
    /// Smallest fractional width tried (B_l).
    #[arg(long, default_value_t = 1)]
    pub min_frac: u32,
    /// Largest fractional width tried (B_u), the starting point on every layer.
    #[arg(long, default_value_t = 16)]
    pub max_frac: u32,
    /// Labelled data (IDX directory or .npy): every candidate QNN must also keep the accuracy
    /// on it within --max-acc-drop points of the float network's (a VNN-LIB property alone
    /// does not protect accuracy); the chosen QNN's accuracy is reported.
    #[arg(long, value_name = "DATA")]
    pub accuracy_data: Option<PathBuf>,
    /// Largest allowed accuracy drop in percentage points (with --accuracy-data).
    #[arg(long, default_value_t = 1.0, requires = "accuracy_data")]
    pub max_acc_drop: f64,
    /// Write the quantized network (qnn.onnx) and certificate.json into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a float counterexample here in the VNN-COMP format `((X_0 v) … (Y_0 v) …)`.
    #[arg(long, value_name = "FILE")]
    pub counterexample: Option<PathBuf>,
    /// Falsification cross-check: attack the certified QNN on the property (random points,
    /// corners, PGD). A counterexample to a certified result is a soundness bug and makes the
    /// command fail (exit 2).
    #[arg(long)]
    pub attack: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `synth vnnlib --json` output.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SynthVnnlibReport {
    /// certified / violated / unknown.
    pub status: QueryStatus,
    /// ⟨Q, F⟩ per affine layer, input side first (certified only).
    pub layers: Vec<QuantConfig>,
    /// Weight memory `Σ Q_i · params_i` in bits (certified only).
    pub memory_bits: Option<u64>,
    /// The float network's accuracy on --accuracy-data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_accuracy: Option<f64>,
    /// The chosen QNN's accuracy on --accuracy-data (certified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qnn_accuracy: Option<f64>,
    /// Splits of the float proof.
    pub float_splits: usize,
    /// Splits of the final QNN proof (certified only).
    pub qnn_splits: Option<usize>,
    /// The weakest refutation's proven upper bound on the QNN (`< 0`, certified only).
    pub qnn_worst_upper: Option<f64>,
    /// Candidate strategies proven or refuted on their QNN.
    pub candidates: usize,
    /// Seconds in all (load, float proof, search, outputs).
    pub seconds: f64,
    /// The float counterexample (violated only).
    pub counterexample: Option<CounterexampleReport>,
    /// With `--attack`: whether a counterexample was found on the certified QNN (never, unless
    /// a soundness bug; the command then fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_counterexample: Option<bool>,
    /// Why not certified, or how the search ended.
    pub note: String,
    /// With `--out`: the QNN written (certified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qnn_model: Option<String>,
    /// With `--out`: the certificate written (certified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// With `--out`: the independent checker's verdict on the written certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_valid: Option<bool>,
}

/// `certquant synth vnnlib`.
pub fn synth_vnnlib(a: &SynthVnnlibArgs) -> Result<Outcome> {
    let r = run(a)?;
    let proven = r.status == QueryStatus::Certified;
    report_outcome(&r, a.json, print_text, proven)
}

/// Runs the search and writes the outputs (no printing).
pub fn run(a: &SynthVnnlibArgs) -> Result<SynthVnnlibReport> {
    if let Some(t) = a.timeout
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--timeout must be a positive number of seconds");
    }
    let start = Instant::now();
    let m = load_model(&a.model)?;
    let (query, query_bytes) = read_query_bytes(&a.vnnlib)?;
    if query.num_inputs != m.net.input_dim() || query.num_outputs != m.net.output_dim() {
        bail!(
            "{} declares {} inputs X_i and {} outputs Y_j but the model {} takes {} and has {}",
            a.vnnlib.display(),
            query.num_inputs,
            query.num_outputs,
            a.model.display(),
            m.net.input_dim(),
            m.net.output_dim()
        );
    }
    if !(a.max_acc_drop.is_finite() && a.max_acc_drop >= 0.0) {
        bail!("--max-acc-drop must be a non-negative number of percentage points");
    }
    let data = match &a.accuracy_data {
        Some(d) => Some(std::sync::Arc::new(load_data(d, &m.net)?)),
        None => None,
    };
    // 90 % of the budget for the proofs and the search (the floor's count included): the
    // rest is for the outputs (accuracy, attack, certificate and its re-check) of the best
    // point (docs/method.md eq. (81))
    let deadline = Deadline::from_timeout(start, a.timeout, 0.9);
    let floor = data.as_ref().map(|d| {
        certquant::floor::AccuracyFloor::new(&m.net, d.clone(), a.max_acc_drop)
            .with_deadline(deadline)
    });
    let opts = QuantizeQueryOptions {
        min_frac: a.min_frac,
        max_frac: a.max_frac,
        split: SplitOptions {
            max_splits: a.max_splits,
            deadline: deadline.instant(),
            ..SplitOptions::default()
        },
        candidate_max_splits: None,
        accuracy_floor: floor.clone(),
    };
    let o = quantize_query(&m.net, &query, &LpMultipliers(&Cbc), &opts)?;
    let mut report = SynthVnnlibReport {
        status: o.status,
        layers: Vec::new(),
        memory_bits: None,
        float_accuracy: floor.as_ref().map(|f| f.float_accuracy()),
        qnn_accuracy: None,
        float_splits: o.float.splits,
        qnn_splits: None,
        qnn_worst_upper: None,
        candidates: o.tested,
        seconds: 0.0,
        counterexample: None,
        attack_counterexample: None,
        note: o.note.clone(),
        qnn_model: None,
        certificate: None,
        certificate_valid: None,
    };
    if let Some(cx) = &o.counterexample {
        let file = match &a.counterexample {
            Some(f) => {
                std::fs::write(f, cx.vnncomp_text())
                    .with_context(|| format!("cannot write {}", f.display()))?;
                Some(f.display().to_string())
            }
            None => None,
        };
        report.counterexample = Some(CounterexampleReport {
            region: cx.region,
            disjunct: cx.disjunct,
            weakest_line: cx.weakest_line,
            margin: cx.margin,
            file,
        });
    }
    if let Some(c) = &o.chosen {
        report.layers = c.strategy.0.clone();
        report.memory_bits = Some(c.strategy.memory_bits(&m.net));
        report.qnn_splits = Some(c.splits());
        if a.attack {
            let found = certquant::falsify::falsify(
                &c.qnn,
                &query,
                &certquant::falsify::FalsifyOptions::default(),
                None,
            );
            if let Some(cx) = found {
                bail!(
                    "SOUNDNESS BUG: the attack found a counterexample on the certified QNN (region {}, disjunct {}, margin {:e})",
                    cx.region,
                    cx.disjunct,
                    cx.margin
                );
            }
            report.attack_counterexample = Some(false);
        }
        if let Some(d) = &data {
            report.qnn_accuracy = Some(accuracy(&c.qnn, d, None)?.0);
        }
        report.qnn_worst_upper = c.worst_upper();
        if let Some(dir) = &a.out {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create output directory {}", dir.display()))?;
            let qnn_path = dir.join("qnn.onnx");
            std::fs::write(&qnn_path, &c.qnn_bytes)
                .with_context(|| format!("cannot write {}", qnn_path.display()))?;
            let cert = Certificate {
                format: FORMAT.to_string(),
                tool: format!("certquant {}", env!("CARGO_PKG_VERSION")),
                original_model: ModelRef {
                    sha256: sha256_hex(&m.bytes),
                    file: Some(a.model.display().to_string()),
                },
                qnn: ModelRef {
                    sha256: sha256_hex(&c.qnn_bytes),
                    file: Some(qnn_path.display().to_string()),
                },
                strategy: c.strategy.0.clone(),
                semantics: Default::default(),
                chi: Vec::new(),
                verifier: "deeppoly (certquant::bounds, outward-rounded f64) with input splitting and LP multipliers, on the QNN".into(),
                properties: Vec::new(),
                statistical: None,
                vnnlib: Some(QueryCertificate {
                    sha256: sha256_hex(&query_bytes),
                    file: Some(a.vnnlib.display().to_string()),
                    regions: c.proofs[0].clone(),
                }),
                vnnlib_set: Vec::new(),
            };
            let cert_path = dir.join("certificate.json");
            cert.write(&cert_path)?;
            // the independent checker, on what was written
            let check = certquant::check::check_certificate_with_query(
                &cert,
                &m.net,
                &m.bytes,
                &c.qnn,
                &c.qnn_bytes,
                Some(&query_bytes),
            );
            if !check.valid {
                bail!(
                    "internal: the independent checker rejects the certificate just written ({}): {}",
                    cert_path.display(),
                    check.reasons.join("; ")
                );
            }
            report.qnn_model = Some(qnn_path.display().to_string());
            report.certificate = Some(cert_path.display().to_string());
            report.certificate_valid = Some(check.valid);
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The human-readable result.
fn print_text(r: &SynthVnnlibReport) {
    match r.status {
        QueryStatus::Certified => {
            let bits: Vec<String> = r
                .layers
                .iter()
                .map(|c| format!("⟨{},{}⟩", c.total(), c.frac()))
                .collect();
            println!(
                "CERTIFIED: ⟨Q,F⟩ per layer (input first) {}; {} weight bits; {} candidate(s) proven or refuted on their QNN; final proof {} split(s), weakest refutation {}; {:.2} s",
                bits.join(" "),
                r.memory_bits.unwrap_or(0),
                r.candidates,
                r.qnn_splits.unwrap_or(0),
                r.qnn_worst_upper.map_or("—".into(), |u| format!("{u:.3e}")),
                r.seconds
            );
            if let (Some(f), Some(q)) = (r.float_accuracy, r.qnn_accuracy) {
                println!("  accuracy: float {f:.4}, QNN {q:.4}");
            }
            if !r.note.is_empty() {
                println!("  note: {}", r.note);
            }
            if let (Some(q), Some(c)) = (&r.qnn_model, &r.certificate) {
                println!("  wrote {q} and {c} (re-checked: VALID)");
            }
        }
        QueryStatus::Violated => println!(
            "VIOLATED on the float network: {} ({:.2} s)",
            super::verify::describe_counterexample(r.counterexample.as_ref()),
            r.seconds
        ),
        QueryStatus::Unknown => println!("UNKNOWN: {} ({:.2} s)", r.note, r.seconds),
    }
}
