//! `bench vnncomp --synth`: certified quantization of every instance the float network
//! proves (issue 15; docs/method.md §16, eq. (67)). After the instance's `verify` worker
//! answers `holds`, a second worker runs `certquant synth vnnlib` on it with the instance's
//! timeout (and the synthesis options given here); its typed report (bits per layer, QNN
//! accuracy, status, time) goes into the instance's record and extra CSV columns. With
//! `--certificates DIR` the worker writes the QNN and its certificate into
//! `DIR/<network>__<property>.synth/`, and this process re-checks the certificate with the
//! independent checker against the instance's own model and VNN-LIB files; `--attack` makes
//! the worker attack the certified QNN (a counterexample fails the command).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::super::synth_vnnlib::SynthVnnlibReport;
use certquant::quantize_query::QueryStatus;

/// The synthesis options of `bench vnncomp --synth`.
#[derive(Debug, Clone, Args)]
pub struct VnncompSynthArgs {
    /// Also synthesize a certified QNN for every instance that holds on the float network
    /// (`synth vnnlib`, with the instance's timeout).
    #[arg(long)]
    pub synth: bool,
    /// With --synth: smallest fractional width tried (B_l).
    #[arg(long, default_value_t = 1, requires = "synth")]
    pub min_frac: u32,
    /// With --synth: largest fractional width tried (B_u).
    #[arg(long, default_value_t = 16, requires = "synth")]
    pub max_frac: u32,
    /// With --synth: labelled data for the accuracy floor; the QNN's accuracy is reported.
    #[arg(long, value_name = "DATA", requires = "synth")]
    pub accuracy_data: Option<PathBuf>,
    /// With --synth and --accuracy-data: largest accuracy drop in percentage points.
    #[arg(long, default_value_t = 1.0, requires = "accuracy_data")]
    pub max_acc_drop: f64,
    /// With --synth: attack every certified QNN on its property (a counterexample is a
    /// soundness bug and fails the command).
    #[arg(long, requires = "synth")]
    pub attack: bool,
}

/// The synthesis part of an instance's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthRecord {
    /// `certified`, `violated`, `unknown`, `timeout` (worker killed), `error` or
    /// `soundness-bug` (the attack broke a certified QNN).
    pub status: String,
    /// Wall-clock seconds of the worker.
    pub wall_seconds: f64,
    /// The worker's report (absent on kill or error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<SynthVnnlibReport>,
    /// With `--certificates`: whether the QNN certificate was re-checked valid here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_valid: Option<bool>,
    /// For `error`: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SynthRecord {
    /// Bits `Q/F` per layer joined by `;` (empty unless certified).
    pub fn bits(&self) -> String {
        self.report.as_ref().map_or(String::new(), |r| {
            r.layers
                .iter()
                .map(|c| format!("{}/{}", c.total(), c.frac()))
                .collect::<Vec<_>>()
                .join(";")
        })
    }

    /// The extra CSV columns: status, bits, QNN accuracy, seconds.
    pub fn csv_columns(&self) -> String {
        format!(
            ",{},{},{},{:.6}",
            self.status,
            self.bits(),
            self.report
                .as_ref()
                .and_then(|r| r.qnn_accuracy)
                .map_or(String::new(), |a| format!("{a:.4}")),
            self.report
                .as_ref()
                .map_or(self.wall_seconds, |r| r.seconds)
        )
    }
}

/// Runs `synth vnnlib` on one instance (`network`, `property` relative to `base`) in a worker
/// process, killed after `1.2 · timeout + 10` s (the worker's search stops at 90 % of
/// `timeout`).
pub fn run_synth(
    a: &VnncompSynthArgs,
    exe: &Path,
    base: &Path,
    (network, property): (&str, &str),
    timeout: f64,
    max_splits: usize,
    out: Option<&Path>,
) -> Result<SynthRecord> {
    let mut cmd = Command::new(exe);
    cmd.arg("synth")
        .arg("vnnlib")
        .arg("--model")
        .arg(base.join(network))
        .arg("--vnnlib")
        .arg(base.join(property))
        .arg("--timeout")
        .arg(timeout.to_string())
        .arg("--max-splits")
        .arg(max_splits.to_string())
        .arg("--min-frac")
        .arg(a.min_frac.to_string())
        .arg("--max-frac")
        .arg(a.max_frac.to_string())
        .arg("--json");
    if let Some(d) = &a.accuracy_data {
        cmd.arg("--accuracy-data")
            .arg(d)
            .arg("--max-acc-drop")
            .arg(a.max_acc_drop.to_string());
    }
    if a.attack {
        cmd.arg("--attack");
    }
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    let start = Instant::now();
    // the worker stops its search at 90 % of the timeout and then writes its outputs
    // (accuracy, attack, certificate re-check): a grace of 10 s plus 20 % of the timeout
    let run = super::vnncomp::run_limited(
        &mut cmd,
        start,
        Duration::from_secs_f64(1.2 * timeout + 10.0),
        "a synthesis worker process",
    )?;
    let (status, so, se) = (run.status, run.stdout, run.stderr);
    let mut rec = SynthRecord {
        status: "timeout".into(),
        wall_seconds: start.elapsed().as_secs_f64(),
        report: None,
        certificate_valid: None,
        error: None,
    };
    if status.is_none() {
        return Ok(rec);
    }
    match serde_json::from_slice::<SynthVnnlibReport>(&so) {
        Ok(r) => {
            rec.status = match r.status {
                QueryStatus::Certified => "certified",
                QueryStatus::Violated => "violated",
                QueryStatus::Unknown => "unknown",
            }
            .into();
            if let (Some(dir), QueryStatus::Certified) = (out, r.status) {
                rec.certificate_valid = Some(recheck(base, network, property, dir));
            }
            rec.report = Some(r);
        }
        Err(_) => {
            let text =
                super::vnncomp::worker_error(&se, "the synthesis worker ended without a report");
            rec.status = if text.contains("SOUNDNESS BUG") {
                "soundness-bug"
            } else {
                "error"
            }
            .into();
            rec.error = Some(text);
        }
    }
    Ok(rec)
}

/// Re-checks the QNN certificate written into `dir` with the independent checker, against
/// the instance's own model and VNN-LIB file (not the paths the certificate records).
fn recheck(base: &Path, network: &str, property: &str, dir: &Path) -> bool {
    let check = || -> Result<bool> {
        let c = certquant::check::read_certificate(&dir.join("certificate.json"))?;
        let (net, bytes) = certquant::check::read_model(&base.join(network))?;
        let (qnn, qbytes) = certquant::check::read_model(&dir.join("qnn.onnx"))?;
        let query = std::fs::read(base.join(property))?;
        let r = certquant::check::check_certificate_with_query(
            &c,
            &net,
            &bytes,
            &qnn,
            &qbytes,
            Some(&query),
        );
        if !r.valid {
            tracing::warn!(reasons = ?r.reasons, dir = %dir.display(), "QNN certificate rejected");
        }
        Ok(r.valid)
    };
    check().unwrap_or(false)
}

/// What the synthesis gave over all instances.
#[derive(Debug, Default, Serialize)]
pub struct SynthSummary {
    /// Instances synthesized (those that hold on the float network).
    pub attempted: usize,
    /// Certified QNNs.
    pub certified: usize,
    /// QNN certificates re-checked valid here (`--certificates`).
    pub certificates_valid: usize,
    /// QNN certificates missing or rejected (must be 0).
    pub certificates_invalid: usize,
    /// Certified QNNs the attack broke (must be 0).
    pub soundness_bugs: usize,
    /// Median seconds of the certified syntheses.
    pub median_seconds: Option<f64>,
}

/// Counts over the instances' synthesis records.
pub fn summarize<'a>(recs: impl Iterator<Item = &'a SynthRecord>) -> SynthSummary {
    let mut s = SynthSummary::default();
    let mut times = Vec::new();
    for r in recs {
        s.attempted += 1;
        if r.status == "certified" {
            s.certified += 1;
            times.push(r.report.as_ref().map_or(r.wall_seconds, |r| r.seconds));
        }
        if r.status == "soundness-bug" {
            s.soundness_bugs += 1;
        }
        match r.certificate_valid {
            Some(true) => s.certificates_valid += 1,
            Some(false) => s.certificates_invalid += 1,
            None => {}
        }
    }
    times.sort_by(f64::total_cmp);
    s.median_seconds = (!times.is_empty()).then(|| times[times.len() / 2]);
    s
}

/// The per-instance synthesis table and its summary line.
pub fn print_table<'a>(rows: impl Iterator<Item = (&'a str, &'a str, &'a SynthRecord)>) {
    println!("| network | property | synth | bits Q/F per layer | QNN acc. | s | certificate |");
    println!("|---|---|---|---|---:|---:|---|");
    let mut all = Vec::new();
    for (n, p, r) in rows {
        println!(
            "| {n} | {p} | {} | {} | {} | {:.2} | {} |",
            r.status,
            r.bits(),
            r.report
                .as_ref()
                .and_then(|r| r.qnn_accuracy)
                .map_or("-".into(), |a| format!("{a:.4}")),
            r.report.as_ref().map_or(r.wall_seconds, |r| r.seconds),
            match r.certificate_valid {
                Some(true) => "VALID",
                Some(false) => "INVALID",
                None => "-",
            }
        );
        all.push(r);
    }
    let s = summarize(all.into_iter());
    println!(
        "synthesis: {}/{} certified; QNN certificates re-checked valid: {}/{}; attacks that broke a certified QNN: {}; median time of certified: {}",
        s.certified,
        s.attempted,
        s.certificates_valid,
        s.certificates_valid + s.certificates_invalid,
        s.soundness_bugs,
        s.median_seconds.map_or("-".into(), |t| format!("{t:.2} s"))
    );
}
