//! `certquant synth robustness --model M.onnx --vnnlib DIR|FILE…`: one certified QNN for a
//! **set** of VNN-LIB properties (docs/method.md eq. (67); [`certquant::quantize_query::
//! quantize_queries`]). A directory stands for its `*.vnnlib` files, sorted by name.
//!
//! Every file is decided on the float network first; those that hold form the property set,
//! the others get a per-file status (`violated` / `unknown` / `timeout`) and make the exit
//! code 1 (as a property that cannot be certified). Each candidate strategy passes only when
//! the full split proof holds on its QNN for every file of the set, so `certified` is certified
//! by construction; with `--out` the QNN and a certificate carrying one split-tree proof per
//! file (`vnnlib` for a single file, `vnnlib_set` for several) are written and re-checked by
//! the independent checker at once (`certquant check` re-proves every leaf of every file on
//! the QNN with its own code).
//!
//! Exit codes as `synth robustness`: 0 every file certified, 1 not, 2 bad input.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use certquant::certificate::{Certificate, FORMAT, ModelRef, QueryCertificate, sha256_hex};
use certquant::milp::cbc::Cbc;
use certquant::quantize::QuantConfig;
use certquant::quantize_query::{QuantizeQueryOptions, QueryStatus, quantize_queries};
use certquant::split::{SplitOptions, Verdict};
use certquant_synth::deadline::Deadline;
use certquant_synth::multipliers::LpMultipliers;

use super::common::{Outcome, accuracy, load_data, load_model, report_outcome};
use super::set::SearchArg;
use super::verify::read_query_bytes;
use super::{SemanticsArg, SynthOpts};

/// `synth robustness --vnnlib …` by file names.
pub struct VnnlibSetRequest<'a> {
    /// ONNX model (float).
    pub model: &'a Path,
    /// VNN-LIB files and directories (a directory: its `*.vnnlib` files, sorted).
    pub vnnlib: &'a [PathBuf],
    /// Synthesis options (`--min-frac`, `--max-frac`, `--attack`).
    pub opts: &'a SynthOpts,
    /// `--search`: `auto` and `descent` run the per-layer descent; `exact` is refused.
    pub search: SearchArg,
    /// Labelled data for the accuracy floor.
    pub accuracy_data: Option<&'a Path>,
    /// Largest accuracy drop in percentage points (with `accuracy_data`).
    pub max_acc_drop: f64,
    /// Wall-clock budget for the float proofs and the search, seconds.
    pub timeout: Option<f64>,
    /// Largest number of input-box splits of each float proof.
    pub max_splits: usize,
    /// Write qnn.onnx and certificate.json here (certified only).
    pub out: Option<&'a Path>,
}

/// Per file: what the float network and the search said.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetFileReport {
    /// The file as given (or found in a directory).
    pub file: String,
    /// `holds`, `violated`, `unknown` or `timeout` on the float network.
    pub float: String,
    /// Whether the chosen QNN is certified for this file.
    pub certified: bool,
    /// Splits of the float proof.
    pub float_splits: usize,
    /// Splits of the QNN proof (certified only).
    pub qnn_splits: Option<usize>,
    /// Why the float network's answer is not `holds` (empty otherwise).
    pub note: String,
}

/// `synth robustness --vnnlib … --json` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthVnnlibSetReport {
    /// `certified` iff one QNN is certified for every file.
    pub status: QueryStatus,
    /// Per file, in order.
    pub files: Vec<SetFileReport>,
    /// ⟨Q, F⟩ per affine layer, input side first (when a strategy was found).
    pub layers: Vec<QuantConfig>,
    /// Weight memory `Σ Q_i · params_i` in bits.
    pub memory_bits: Option<u64>,
    /// The float network's accuracy on --accuracy-data.
    pub float_accuracy: Option<f64>,
    /// The chosen QNN's accuracy on --accuracy-data.
    pub qnn_accuracy: Option<f64>,
    /// Candidate strategies proven or refuted on their QNN.
    pub candidates: usize,
    /// Seconds in all.
    pub seconds: f64,
    /// With `--attack`: whether a counterexample was found on the certified QNN (never,
    /// unless a soundness bug; the command then fails).
    pub attack_counterexample: Option<bool>,
    /// Why not certified, or how the search ended.
    pub note: String,
    /// With `--out`: the QNN written.
    pub qnn_model: Option<String>,
    /// With `--out`: the certificate written.
    pub certificate: Option<String>,
    /// With `--out`: the independent checker's verdict on the written certificate.
    pub certificate_valid: Option<bool>,
    /// `algorithm1` (one robustness property: Algorithm 1), `set-search` (several: the
    /// property-set search of `--ids`), or `split-proof` (not robustness-shaped: every
    /// candidate judged by the full split proof); docs/method.md eq. (77).
    #[serde(default)]
    pub route: String,
    /// χ per hidden layer, input side first (route `algorithm1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chi: Vec<f64>,
    /// Robustness properties searched (boxes, or leaves of input splitting; Algorithm-1
    /// routes).
    #[serde(default)]
    pub properties: usize,
}

/// The files named by `paths`: a directory contributes its `*.vnnlib` files sorted by name.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|e| e == "vnnlib"))
                .collect();
            if found.is_empty() {
                bail!(
                    "--vnnlib {}: no *.vnnlib files in the directory",
                    p.display()
                );
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// `certquant synth robustness --vnnlib …`.
pub fn synth_vnnlib_set(r: &VnnlibSetRequest, json: bool) -> Result<Outcome> {
    let report = run(r)?;
    let proven = report.status == QueryStatus::Certified;
    report_outcome(&report, json, print_text, proven)
}

/// Runs the set synthesis and writes the outputs (no printing).
pub fn run(r: &VnnlibSetRequest) -> Result<SynthVnnlibSetReport> {
    let start = Instant::now();
    if let Some(t) = r.timeout
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--timeout must be a positive number of seconds");
    }
    if r.opts.semantics != SemanticsArg::Real {
        bail!("--vnnlib certifies under the real semantics only");
    }
    if !(r.max_acc_drop.is_finite() && r.max_acc_drop >= 0.0) {
        bail!("--max-acc-drop must be a non-negative number of percentage points");
    }
    let m = load_model(r.model)?;
    let files = collect_files(r.vnnlib)?;
    let mut queries = Vec::with_capacity(files.len());
    let mut bytes = Vec::with_capacity(files.len());
    for f in &files {
        let (q, b) = read_query_bytes(f)?;
        if q.num_inputs != m.net.input_dim() || q.num_outputs != m.net.output_dim() {
            bail!(
                "{} declares {} inputs X_i and {} outputs Y_j but the model {} takes {} and has {}",
                f.display(),
                q.num_inputs,
                q.num_outputs,
                r.model.display(),
                m.net.input_dim(),
                m.net.output_dim()
            );
        }
        queries.push(q);
        bytes.push(b);
    }
    let data = match r.accuracy_data {
        Some(d) => Some(std::sync::Arc::new(load_data(d, &m.net)?)),
        None => None,
    };
    // robustness-shaped files take the Algorithm-1 route (docs/method.md eq. (77))
    let fallback = match super::synth_vnnlib_alg1::recognise(&files, &queries) {
        Ok(props) => {
            let (mut report, pass, kept) = super::synth_vnnlib_alg1::run(
                r,
                &m,
                &files,
                &queries,
                props,
                data.as_deref(),
                start,
            )?;
            // Algorithm 1 (or the set search) found no certified QNN for files that hold on
            // the float network: the split-proof route judges every candidate by the full
            // proof and may still find one (it accepts neither --relaxed nor --search exact).
            let retry = pass.is_none()
                && !kept.is_empty()
                && !r.opts.relaxed
                && r.search != SearchArg::Exact
                && r.timeout
                    .is_none_or(|t| start.elapsed().as_secs_f64() < 0.5 * t);
            if !retry {
                if let Some(c) = &pass {
                    finish(r, &m, &files, &queries, &bytes, &kept, c, &mut report)?;
                }
                if kept.len() < files.len() {
                    not_all_hold(&mut report, kept.len(), files.len(), pass.is_some());
                }
                report.seconds = start.elapsed().as_secs_f64();
                return Ok(report);
            }
            let why = if report.note.is_empty() {
                "no certified QNN".to_string()
            } else {
                report.note.clone()
            };
            tracing::info!(reason = %why, "Algorithm-1 route did not certify; split-proof route");
            format!(
                "the {} route did not certify ({why}): the split-proof route",
                report.route
            )
        }
        Err(why) => format!("not a robustness query ({why}): the split-proof route"),
    };
    if r.opts.relaxed {
        bail!("{fallback}; --relaxed needs a robustness query");
    }
    if r.search == SearchArg::Exact {
        bail!(
            "{fallback}; --search exact is not available there (every candidate is a full split proof); use --search descent or auto"
        );
    }
    // 90 % for the proofs and the search (the floor's count included), the rest for the
    // outputs (docs/method.md eq. (81))
    let deadline = Deadline::from_timeout(start, r.timeout, 0.9);
    let floor = data.as_ref().map(|d| {
        certquant::floor::AccuracyFloor::new(&m.net, d.clone(), r.max_acc_drop)
            .with_deadline(deadline)
    });
    let opts = QuantizeQueryOptions {
        min_frac: r.opts.min_frac.unwrap_or(1),
        max_frac: r.opts.max_frac,
        split: SplitOptions {
            max_splits: r.max_splits,
            deadline: deadline.instant(),
            ..SplitOptions::default()
        },
        candidate_max_splits: None,
        accuracy_floor: floor.clone(),
    };
    let o = quantize_queries(&m.net, &queries, &LpMultipliers(&Cbc), &opts)?;
    // the kept queries' proofs come in order: map them back to the files
    let kept: Vec<usize> = (0..files.len()).filter(|&i| o.members[i].kept).collect();
    let mut report = SynthVnnlibSetReport {
        status: o.status,
        files: Vec::with_capacity(files.len()),
        layers: Vec::new(),
        memory_bits: None,
        float_accuracy: floor.as_ref().map(|f| f.float_accuracy()),
        qnn_accuracy: None,
        candidates: o.tested,
        seconds: 0.0,
        attack_counterexample: None,
        note: o.note.clone(),
        qnn_model: None,
        certificate: None,
        certificate_valid: None,
        route: "split-proof".into(),
        chi: Vec::new(),
        properties: 0,
    };
    for (i, (f, mem)) in files.iter().zip(&o.members).enumerate() {
        let k = kept.iter().position(|&j| j == i);
        let (float, note) = match &mem.float.verdict {
            Verdict::Holds => ("holds", String::new()),
            Verdict::Violated(cx) => (
                "violated",
                format!(
                    "counterexample on the float network (region {}, disjunct {}, margin {:e})",
                    cx.region, cx.disjunct, cx.margin
                ),
            ),
            Verdict::Unknown => ("unknown", mem.float.note.clone()),
            Verdict::Timeout => ("timeout", "the time budget ran out".into()),
        };
        report.files.push(SetFileReport {
            file: f.display().to_string(),
            float: float.into(),
            certified: o.chosen.is_some() && k.is_some(),
            float_splits: mem.float.splits,
            qnn_splits: o.chosen.as_ref().zip(k).map(|(c, k)| c.outcomes[k].splits),
            note,
        });
    }
    if kept.len() < files.len() {
        not_all_hold(&mut report, kept.len(), files.len(), o.chosen.is_some());
    }
    if let Some(c) = &o.chosen {
        report.layers = c.strategy.0.clone();
        report.memory_bits = Some(c.strategy.memory_bits(&m.net));
        if let Some(d) = &data {
            report.qnn_accuracy = Some(accuracy(&c.qnn, d, None)?.0);
        }
        finish(r, &m, &files, &queries, &bytes, &kept, c, &mut report)?;
    }
    report.note = if report.note.is_empty() {
        fallback
    } else {
        format!("{fallback}; {}", report.note)
    };
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A set where `kept` of `total` files hold on the float network: the holding files may be
/// certified, the others cannot be (the answer is then `unknown`).
fn not_all_hold(report: &mut SynthVnnlibSetReport, kept: usize, total: usize, chosen: bool) {
    if chosen {
        report.status = QueryStatus::Unknown;
    }
    let msg = format!(
        "{} of {total} file(s) do not hold on the float network",
        total - kept
    );
    report.note = if report.note.is_empty() {
        msg
    } else {
        format!("{msg}; {}", report.note)
    };
}

/// For a certified point: the attack cross-check (`--attack`) and the outputs (`--out`, with
/// the independent checker's re-check).
#[allow(clippy::too_many_arguments)]
fn finish(
    r: &VnnlibSetRequest,
    m: &super::common::LoadedModel,
    files: &[PathBuf],
    queries: &[certquant::vnnlib::Query],
    bytes: &[Vec<u8>],
    kept: &[usize],
    c: &certquant::quantize_query::Passing,
    report: &mut SynthVnnlibSetReport,
) -> Result<()> {
    if r.opts.attack {
        for &i in kept {
            let found = certquant::falsify::falsify(
                &c.qnn,
                &queries[i],
                &certquant::falsify::FalsifyOptions::default(),
                None,
            );
            if let Some(cx) = found {
                bail!(
                    "SOUNDNESS BUG: the attack found a counterexample on the certified QNN for {} (region {}, disjunct {}, margin {:e})",
                    files[i].display(),
                    cx.region,
                    cx.disjunct,
                    cx.margin
                );
            }
        }
        report.attack_counterexample = Some(false);
    }
    if let Some(dir) = r.out {
        let (q, cert) = write_outputs(dir, r.model, &m.bytes, c, files, bytes, kept)?;
        report.qnn_model = Some(q);
        report.certificate = Some(cert);
        report.certificate_valid = Some(true);
    }
    Ok(())
}

/// Writes qnn.onnx and certificate.json into `dir` and re-checks the certificate with the
/// independent checker (an invalid one is an internal error). Returns both paths.
fn write_outputs(
    dir: &Path,
    model: &Path,
    model_bytes: &[u8],
    c: &certquant::quantize_query::Passing,
    files: &[PathBuf],
    bytes: &[Vec<u8>],
    kept: &[usize],
) -> Result<(String, String)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let qnn_path = dir.join("qnn.onnx");
    std::fs::write(&qnn_path, &c.qnn_bytes)
        .with_context(|| format!("cannot write {}", qnn_path.display()))?;
    let mut parts: Vec<QueryCertificate> = kept
        .iter()
        .zip(&c.proofs)
        .map(|(&i, proof)| QueryCertificate {
            sha256: sha256_hex(&bytes[i]),
            file: Some(files[i].display().to_string()),
            regions: proof.clone(),
        })
        .collect();
    let single = parts.len() == 1;
    let cert = Certificate {
        format: FORMAT.to_string(),
        tool: format!("certquant {}", env!("CARGO_PKG_VERSION")),
        original_model: ModelRef {
            sha256: sha256_hex(model_bytes),
            file: Some(model.display().to_string()),
        },
        qnn: ModelRef {
            sha256: sha256_hex(&c.qnn_bytes),
            file: Some(qnn_path.display().to_string()),
        },
        strategy: c.strategy.0.clone(),
        semantics: Default::default(),
        chi: Vec::new(),
        verifier: "deeppoly (certquant::bounds, outward-rounded f64) with input splitting and LP multipliers, on the QNN, per VNN-LIB file".into(),
        properties: Vec::new(),
        statistical: None,
        vnnlib: if single { parts.pop() } else { None },
        vnnlib_set: parts,
    };
    let cert_path = dir.join("certificate.json");
    cert.write(&cert_path)?;
    // the independent checker, on what was written
    let original = certquant::onnx::import_bytes(model_bytes)?;
    let kept_bytes: Vec<&[u8]> = kept.iter().map(|&i| bytes[i].as_slice()).collect();
    let (one, set): (Option<&[u8]>, &[&[u8]]) = if single {
        (Some(kept_bytes[0]), &[])
    } else {
        (None, &kept_bytes)
    };
    let check = certquant::check::check_certificate_with_queries(
        &cert,
        &original,
        model_bytes,
        &c.qnn,
        &c.qnn_bytes,
        one,
        set,
    );
    if !check.valid {
        bail!(
            "internal: the independent checker rejects the certificate just written ({}): {}",
            cert_path.display(),
            check.reasons.join("; ")
        );
    }
    Ok((
        qnn_path.display().to_string(),
        cert_path.display().to_string(),
    ))
}

/// The human-readable result.
fn print_text(r: &SynthVnnlibSetReport) {
    println!(
        "  route: {}{}",
        r.route,
        if r.chi.is_empty() {
            String::new()
        } else {
            let chi: Vec<String> = r.chi.iter().map(|c| format!("{c:.4}")).collect();
            format!(" (χ per hidden layer: {})", chi.join(" "))
        }
    );
    for f in &r.files {
        println!(
            "  {}: float {}{}{}",
            f.file,
            f.float,
            if f.certified { ", QNN certified" } else { "" },
            if f.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.note)
            }
        );
    }
    let certified = r.files.iter().filter(|f| f.certified).count();
    if r.layers.is_empty() {
        println!(
            "{}: {} ({:.2} s)",
            if r.status == QueryStatus::Certified {
                "CERTIFIED"
            } else {
                "NOT CERTIFIED"
            },
            r.note,
            r.seconds
        );
        return;
    }
    let bits: Vec<String> = r
        .layers
        .iter()
        .map(|c| format!("⟨{},{}⟩", c.total(), c.frac()))
        .collect();
    println!(
        "{}: one QNN for {certified} of {} file(s): ⟨Q,F⟩ per layer (input first) {}; {} weight bits; {} candidate(s) proven or refuted; {:.2} s",
        if r.status == QueryStatus::Certified {
            "CERTIFIED"
        } else {
            "PARTLY CERTIFIED"
        },
        r.files.len(),
        bits.join(" "),
        r.memory_bits.unwrap_or(0),
        r.candidates,
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
