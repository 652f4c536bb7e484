//! `certquant check`: re-checks a certificate with the independent checker
//! (`certquant::check`), which shares no bound or quantization code with the synthesis.
//!
//! Exit codes: 0 = the certificate is valid, 1 = it is not (the reasons are printed),
//! 2 = the certificate or a model cannot be read or parsed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use certquant::check::{
    CheckReport, check_certificate_with_queries, parse_model, read_certificate, read_model,
};
use certquant::model::Network;

use super::common::{Outcome, print_json};
use super::demo::DEMO_MODEL;

/// Arguments of `certquant check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The certificate (JSON) written by `synth ... --out DIR`.
    #[arg(long)]
    pub certificate: PathBuf,
    /// The original (float) ONNX model [default: the file recorded in the certificate,
    /// relative to the current directory; the embedded demo model for `certquant demo`'s
    /// certificates].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The quantized ONNX model [default: the file recorded in the certificate, relative to
    /// the current directory].
    #[arg(long)]
    pub qnn: Option<PathBuf>,
    /// The VNN-LIB file of a certificate about a VNN-LIB query (`verify --vnnlib …
    /// --certificate`) [default: the file recorded in the certificate, relative to the current
    /// directory].
    #[arg(long, value_name = "FILE")]
    pub vnnlib: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The machine-readable result: the checker's report plus what was read and how long the
/// check took.
#[derive(Serialize)]
struct CheckOutput<'a> {
    #[serde(flatten)]
    report: &'a CheckReport,
    certificate: String,
    /// The arithmetic the certificate speaks of (docs/method.md §17).
    semantics: &'a certquant::semantics::Semantics,
    model: String,
    qnn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vnnlib: Option<String>,
    seconds: f64,
}

/// The name `certquant demo` records for the embedded demo model, which has no file.
const EMBEDDED_DEMO: &str = "<embedded demo model>";

/// A model to check against: its display name, network and bytes.
struct Model {
    name: String,
    net: Network,
    bytes: Vec<u8>,
}

/// Loads the model given by the option, else the file the certificate records (the embedded
/// demo model when the certificate was written by `certquant demo`).
fn load(given: Option<&Path>, recorded: Option<&str>, what: &str) -> Result<Model> {
    if let Some(p) = given {
        let (net, bytes) = read_model(p)?;
        return Ok(Model {
            name: p.display().to_string(),
            net,
            bytes,
        });
    }
    let recorded = recorded
        .with_context(|| format!("the certificate records no {what} file; pass --{what}"))?;
    if what == "model" && recorded == EMBEDDED_DEMO {
        let net = parse_model(DEMO_MODEL, EMBEDDED_DEMO)?;
        return Ok(Model {
            name: EMBEDDED_DEMO.to_string(),
            net,
            bytes: DEMO_MODEL.to_vec(),
        });
    }
    let p = PathBuf::from(recorded);
    let (net, bytes) = read_model(&p).with_context(|| {
        format!("the {what} file recorded in the certificate (pass --{what} to use another)")
    })?;
    Ok(Model {
        name: recorded.to_string(),
        net,
        bytes,
    })
}

/// `certquant check`.
pub fn check(a: &CheckArgs) -> Result<Outcome> {
    let cert = read_certificate(&a.certificate)?;
    let model = load(
        a.model.as_deref(),
        cert.original_model.file.as_deref(),
        "model",
    )?;
    let qnn = load(a.qnn.as_deref(), cert.qnn.file.as_deref(), "qnn")?;
    let query = match &cert.vnnlib {
        None => None,
        Some(q) => {
            let path = match (&a.vnnlib, &q.file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => PathBuf::from(f),
                (None, None) => {
                    anyhow::bail!("the certificate records no VNN-LIB file; pass --vnnlib")
                }
            };
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read the VNN-LIB file {} (pass --vnnlib to use another)",
                    path.display()
                )
            })?;
            Some((path.display().to_string(), bytes))
        }
    };
    // a query set (`synth robustness --vnnlib DIR|FILE…`): every file where it was recorded
    let mut set = Vec::with_capacity(cert.vnnlib_set.len());
    for (i, q) in cert.vnnlib_set.iter().enumerate() {
        let Some(f) = &q.file else {
            anyhow::bail!("file {i} of the certificate's VNN-LIB set records no path");
        };
        let bytes = std::fs::read(f).with_context(|| {
            format!("cannot read the VNN-LIB file {f} of the certificate's set")
        })?;
        set.push(bytes);
    }
    let set_refs: Vec<&[u8]> = set.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let report = check_certificate_with_queries(
        &cert,
        &model.net,
        &model.bytes,
        &qnn.net,
        &qnn.bytes,
        query.as_ref().map(|q| q.1.as_slice()),
        &set_refs,
    );
    let seconds = t.elapsed().as_secs_f64();
    if a.json {
        print_json(&CheckOutput {
            report: &report,
            certificate: a.certificate.display().to_string(),
            semantics: &cert.semantics,
            model: model.name.clone(),
            qnn: qnn.name.clone(),
            vnnlib: query.as_ref().map(|q| q.0.clone()),
            seconds,
        })?;
    } else {
        println!(
            "certificate {}: {} ({:.1} ms)",
            a.certificate.display(),
            if report.valid { "VALID" } else { "INVALID" },
            seconds * 1e3
        );
        println!("  original {}", model.name);
        if cert.is_unquantized() {
            println!(
                "  QNN      {} (no strategy: the original model itself)",
                qnn.name
            );
        } else {
            println!("  QNN      {}", qnn.name);
        }
        if let Some((name, _)) = &query {
            println!("  VNN-LIB  {name}");
        }
        match &cert.semantics {
            certquant::semantics::Semantics::Real => {
                println!("  semantics real (quantized weights, real-valued activations)")
            }
            certquant::semantics::Semantics::Float32 => println!(
                "  semantics float32 (quantized weights, IEEE binary32 inference in any summation order)"
            ),
            certquant::semantics::Semantics::Integer(s) => {
                let acts: Vec<String> = s
                    .acts
                    .iter()
                    .map(|a| format!("⟨{},{}⟩", a.total(), a.frac()))
                    .collect();
                println!(
                    "  semantics integer-only: activations {}, {}-bit accumulators",
                    acts.join(" "),
                    s.acc_bits
                );
            }
        }
        for p in &report.properties {
            println!(
                "  property {}: {} (re-proven margin {:.6}, claimed {:.6})",
                p.index,
                if p.proven { "proven" } else { "NOT proven" },
                p.margin,
                p.claimed_margin
            );
        }
        for (i, q) in report.query_set.iter().enumerate() {
            let proven = q.hash_ok && !q.regions.is_empty() && q.regions.iter().all(|r| r.proven);
            println!(
                "  VNN-LIB set file {i} {}: {} ({} region(s))",
                q.file.as_deref().unwrap_or("(unnamed)"),
                if proven {
                    "no counterexample"
                } else {
                    "NOT proven"
                },
                q.regions.len()
            );
        }
        for r in report.query.iter().flat_map(|q| &q.regions) {
            println!(
                "  region {}: {} ({} box(es), {} leaves, {} refutation(s) re-proven, weakest upper bound {:.6})",
                r.index,
                if r.proven {
                    "no counterexample"
                } else {
                    "NOT proven"
                },
                r.nodes,
                r.leaves,
                r.refutations,
                r.worst_upper
            );
        }
        if let Some(s) = &report.statistical {
            println!(
                "  statistical guarantee (not re-checkable here): θ = {}, K = {}, σ = {}, ϱ = {}, δ = {}, ε = {}",
                s.theta, s.k, s.sigma, s.rho, s.delta, s.chi_threshold
            );
        }
        for r in &report.reasons {
            println!("  reason: {r}");
        }
    }
    Ok(if report.valid {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}
