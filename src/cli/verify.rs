//! `certquant verify --model M.onnx --vnnlib P.vnnlib`: decide a VNN-LIB property
//! (holds / violated / unknown / timeout; `--vnncomp`: unsat / sat / unknown / timeout).
//!
//! Falsification first, then DeepPoly refutation with input splitting and the checker's
//! re-proof ([`certquant::split`]). Exit 0 holds, 1 otherwise, 2 bad input.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use certquant::milp::cbc::Cbc;
use certquant::split::{SplitOptions, Verdict, verify_query};
use certquant_synth::multipliers::LpMultipliers;

use certquant::certificate::{Certificate, FORMAT, ModelRef, QueryCertificate, sha256_hex};

use super::common::{Outcome, load_model, print_json};

/// Largest VNN-LIB file read (the mnistfc files are ~60 KB).
const MAX_VNNLIB_BYTES: u64 = 256 << 20;

/// The VNN-LIB form of `verify`.
#[derive(Debug, Args, Clone)]
pub struct VnnlibArgs {
    /// A VNN-LIB property (instead of --data/--id/--eps): the asserts describe a
    /// counterexample; the property holds iff none exists.
    #[arg(long, value_name = "FILE")]
    pub vnnlib: Option<PathBuf>,
    /// Wall-clock budget in seconds (answer `timeout` when it runs out).
    #[arg(long, requires = "vnnlib")]
    pub timeout: Option<f64>,
    /// Largest number of input-box splits.
    #[arg(long, requires = "vnnlib", default_value_t = 10_000)]
    pub max_splits: usize,
    /// Write a found counterexample here in the VNN-COMP format `((X_0 v) … (Y_0 v) …)`.
    #[arg(long, requires = "vnnlib", value_name = "FILE")]
    pub counterexample: Option<PathBuf>,
    /// Print the competition's words: unsat (holds), sat (violated), unknown, timeout.
    #[arg(long, requires = "vnnlib")]
    pub vnncomp: bool,
    /// When the property holds, write a certificate here (the VNN-LIB file's hash and every
    /// region's split tree with its refutations) for `certquant check`.
    #[arg(long, requires = "vnnlib", value_name = "FILE")]
    pub certificate: Option<PathBuf>,
}

/// The verdict as written in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// No counterexample exists.
    Holds,
    /// A confirmed counterexample.
    Violated,
    /// Not decided within the split budget.
    Unknown,
    /// Not decided within the time budget.
    Timeout,
}

impl Answer {
    /// The VNN-COMP word.
    pub fn vnncomp(self) -> &'static str {
        match self {
            Answer::Holds => "unsat",
            Answer::Violated => "sat",
            Answer::Unknown => "unknown",
            Answer::Timeout => "timeout",
        }
    }

    /// certquant's word.
    pub fn word(self) -> &'static str {
        match self {
            Answer::Holds => "holds",
            Answer::Violated => "violated",
            Answer::Unknown => "unknown",
            Answer::Timeout => "timeout",
        }
    }
}

/// Where a counterexample is and why it is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterexampleReport {
    /// Input region (box) index in the file.
    pub region: usize,
    /// The disjunct of the output condition it satisfies.
    pub disjunct: usize,
    /// Line of the constraint with the smallest margin.
    pub weakest_line: usize,
    /// Proven lower bound of that margin.
    pub margin: f64,
    /// Where it was written (`--counterexample`).
    pub file: Option<String>,
}

/// `verify --vnnlib --json` output (also what `bench vnncomp` reads from its workers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VnnlibReport {
    /// The answer.
    pub result: Answer,
    /// The VNN-COMP word for it.
    pub vnncomp: String,
    /// Seconds to load the model and read the property.
    pub prepare_seconds: f64,
    /// Seconds of the decision (falsification, proof, re-proof).
    pub seconds: f64,
    /// Input regions (boxes) of the property.
    pub regions: usize,
    /// Disjuncts of the output condition, summed over regions.
    pub disjuncts: usize,
    /// Input-box splits.
    pub splits: usize,
    /// Boxes DeepPoly ran on.
    pub boxes: usize,
    /// Proof records re-proven by the independent checker (holds only).
    pub leaves: usize,
    /// The weakest refutation's proven upper bound (`< 0`, holds only).
    pub worst_upper: Option<f64>,
    /// The counterexample (violated only).
    pub counterexample: Option<CounterexampleReport>,
    /// Why not decided (unknown only).
    pub note: String,
    /// Where the certificate was written (holds with `--certificate` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// Reads a VNN-LIB file with a size cap and names it in errors.
pub fn read_query(path: &Path) -> Result<certquant::vnnlib::Query> {
    Ok(read_query_bytes(path)?.0)
}

/// [`read_query`], also returning the file's bytes (what a certificate hashes).
pub fn read_query_bytes(path: &Path) -> Result<(certquant::vnnlib::Query, Vec<u8>)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_VNNLIB_BYTES {
        bail!(
            "{}: {} bytes, more than the {} accepted",
            path.display(),
            meta.len(),
            MAX_VNNLIB_BYTES
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let q = certquant::vnnlib::parse_bytes(&bytes)
        .with_context(|| format!("property {}", path.display()))?;
    Ok((q, bytes))
}

/// The certificate of a `holds` answer about the float network itself: no strategy, the QNN
/// is the original model, and the VNN-LIB part records the file's hash and the proof
/// (`certquant_core::certificate::QueryCertificate`; docs/method.md eqs. (59), (60)).
pub fn float_certificate(
    model: &Path,
    model_bytes: &[u8],
    vnnlib: &Path,
    vnnlib_bytes: &[u8],
    proof: Vec<certquant::certificate::RegionProof>,
) -> Certificate {
    let m = ModelRef {
        sha256: sha256_hex(model_bytes),
        file: Some(model.display().to_string()),
    };
    Certificate {
        format: FORMAT.to_string(),
        tool: format!("certquant {}", env!("CARGO_PKG_VERSION")),
        original_model: m.clone(),
        qnn: m,
        strategy: Vec::new(),
        semantics: Default::default(),
        chi: Vec::new(),
        verifier: "deeppoly (certquant::bounds, outward-rounded f64) with input splitting and LP multipliers".into(),
        properties: Vec::new(),
        statistical: None,
        vnnlib: Some(QueryCertificate {
            sha256: sha256_hex(vnnlib_bytes),
            file: Some(vnnlib.display().to_string()),
            regions: proof,
        }),
        vnnlib_set: Vec::new(),
    }
}

/// Decides the property of `a` on `model` and returns the report (no printing).
pub fn run_vnnlib(model: &Path, a: &VnnlibArgs) -> Result<VnnlibReport> {
    let Some(path) = &a.vnnlib else {
        bail!("--vnnlib is required");
    };
    if let Some(t) = a.timeout
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--timeout must be a positive number of seconds");
    }
    let start = Instant::now();
    let m = load_model(model)?;
    let (query, query_bytes) = read_query_bytes(path)?;
    if query.num_inputs != m.net.input_dim() {
        bail!(
            "{} declares {} inputs X_i but the model {} takes {} (flattened)",
            path.display(),
            query.num_inputs,
            model.display(),
            m.net.input_dim()
        );
    }
    if query.num_outputs != m.net.output_dim() {
        bail!(
            "{} declares {} outputs Y_j but the model {} has {}",
            path.display(),
            query.num_outputs,
            model.display(),
            m.net.output_dim()
        );
    }
    let prepare_seconds = start.elapsed().as_secs_f64();
    let t = Instant::now();
    let opts = SplitOptions {
        max_splits: a.max_splits,
        deadline: a.timeout.map(|s| start + Duration::from_secs_f64(s)),
        ..SplitOptions::default()
    };
    let outcome = verify_query(&m.net, &query, &LpMultipliers(&Cbc), &opts)?;
    if a.certificate.is_some() && outcome.verdict != Verdict::Holds {
        eprintln!("note: no certificate written: the property is not proven to hold");
    }
    let seconds = t.elapsed().as_secs_f64();
    let mut certificate = None;
    let (result, counterexample) = match &outcome.verdict {
        Verdict::Holds => {
            if let (Some(c), Some(proof)) = (&a.certificate, outcome.proof.clone()) {
                float_certificate(model, &m.bytes, path, &query_bytes, proof).write(c)?;
                certificate = Some(c.display().to_string());
            }
            (Answer::Holds, None)
        }
        Verdict::Unknown => (Answer::Unknown, None),
        Verdict::Timeout => (Answer::Timeout, None),
        Verdict::Violated(cx) => {
            let file = match &a.counterexample {
                Some(f) => {
                    std::fs::write(f, cx.vnncomp_text())
                        .with_context(|| format!("cannot write {}", f.display()))?;
                    Some(f.display().to_string())
                }
                None => None,
            };
            (
                Answer::Violated,
                Some(CounterexampleReport {
                    region: cx.region,
                    disjunct: cx.disjunct,
                    weakest_line: cx.weakest_line,
                    margin: cx.margin,
                    file,
                }),
            )
        }
    };
    Ok(VnnlibReport {
        result,
        vnncomp: result.vnncomp().to_string(),
        prepare_seconds,
        seconds,
        regions: query.regions.len(),
        disjuncts: query.regions.iter().map(|r| r.output.len()).sum(),
        splits: outcome.splits,
        boxes: outcome.boxes,
        leaves: outcome.leaves,
        worst_upper: outcome.worst_upper,
        counterexample,
        note: outcome.note,
        certificate,
    })
}

/// `certquant verify --vnnlib`.
pub fn vnnlib(model: &Path, a: &VnnlibArgs, json: bool) -> Result<Outcome> {
    let r = run_vnnlib(model, a)?;
    if json {
        print_json(&r)?;
    } else if a.vnncomp {
        println!("{}", r.vnncomp);
    } else {
        match r.result {
            Answer::Holds => {
                println!(
                    "holds ({} region(s), {} disjunct(s); {} split(s), {} box proof(s) re-proven by the checker; {:.2} s)",
                    r.regions, r.disjuncts, r.splits, r.leaves, r.seconds
                );
                if let Some(c) = &r.certificate {
                    println!("certificate written to {c}");
                }
            }
            Answer::Violated => println!(
                "violated: {} ({:.2} s)",
                describe_counterexample(r.counterexample.as_ref()),
                r.seconds
            ),
            Answer::Unknown => println!("unknown: {} ({:.2} s)", r.note, r.seconds),
            Answer::Timeout => println!("timeout ({:.2} s, {} split(s))", r.seconds, r.splits),
        }
    }
    Ok(if r.result == Answer::Holds {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}

/// One line for a reported counterexample: its region and disjunct, the smallest margin and
/// the weakest constraint's line, and the file it was written to.
pub fn describe_counterexample(c: Option<&CounterexampleReport>) -> String {
    format!(
        "a counterexample in region {} satisfies disjunct {} (smallest margin {:.3e} ≥ 0, constraint on line {}){}",
        c.map_or(0, |c| c.region),
        c.map_or(0, |c| c.disjunct),
        c.map_or(0.0, |c| c.margin),
        c.map_or(0, |c| c.weakest_line),
        c.and_then(|c| c.file.as_ref())
            .map_or(String::new(), |f| format!("; written to {f}")),
    )
}
