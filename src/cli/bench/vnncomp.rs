//! `certquant bench vnncomp --instances X_instances.csv --out results.csv`: the VNN-COMP
//! workflow. Reads the competition's instance list (`network,property,timeout`, paths
//! relative to the CSV), runs every instance in a worker process (`certquant verify --vnnlib
//! --json`, whose typed [`VnnlibReport`] comes back on stdout) under its wall-clock limit,
//! and writes the competition-shaped results CSV (`network,property,prepare time,result,run
//! time`, instance order) plus a per-instance JSONL sidecar (`<out>.jsonl`, appended as
//! instances finish; `--resume` skips what it holds). Every `violated` counterexample file is
//! read back and re-confirmed in this process. With `--verdicts` the summary is a table
//! against the competition's majority answers; a `holds` where the verdict is `violated`
//! makes the command fail. With `--certificates DIR` every `holds` also writes a certificate
//! (`verify --vnnlib … --certificate`), which is re-checked here by the independent checker
//! (`certquant_check::check_certificate_with_query`, docs/method.md eqs. (59), (60)); an
//! invalid one makes the command fail too.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use super::super::common::{Outcome, progress};
use super::super::verify::{Answer, VnnlibReport, read_query};
use super::vnncomp_synth::{self, SynthRecord, VnncompSynthArgs};

/// Arguments of `certquant bench vnncomp`.
#[derive(Debug, Args)]
pub struct BenchVnncompArgs {
    /// The competition's instance list: `network,property,timeout` per line, paths relative to
    /// the CSV's folder.
    #[arg(long)]
    instances: PathBuf,
    /// Results CSV (competition shape, no header); details go to `<out>.jsonl`.
    #[arg(long)]
    out: PathBuf,
    /// The competition's answers (`verdicts.csv`: benchmark,onnx,vnnlib,verdict,…): the
    /// summary becomes a table against them.
    #[arg(long)]
    verdicts: Option<PathBuf>,
    /// Cap every instance's timeout at this many seconds (the CSV's value otherwise).
    #[arg(long)]
    timeout_cap: Option<f64>,
    /// Largest number of input-box splits per instance.
    #[arg(long, default_value_t = 10_000)]
    max_splits: usize,
    /// Parallel worker processes (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Keep the results already in `<out>.jsonl` and run only the missing instances.
    #[arg(long)]
    resume: bool,
    /// Write counterexample files here (`<network>__<property>.counterexample`; default: a
    /// folder `<out>.counterexamples`).
    #[arg(long)]
    counterexamples: Option<PathBuf>,
    /// Write a certificate for every `holds` into this folder
    /// (`<network>__<property>.certificate.json`) and re-check each with the independent
    /// checker.
    #[arg(long, value_name = "DIR")]
    certificates: Option<PathBuf>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    synth: VnncompSynthArgs,
}

/// One instance of the list.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    /// Network path as written in the CSV.
    network: String,
    /// Property path as written in the CSV.
    property: String,
    /// Seconds allowed (after the cap).
    timeout: f64,
}

/// One line of the sidecar: the instance, the answer and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InstanceRecord {
    network: String,
    property: String,
    /// `holds`, `violated`, `unknown`, `timeout` or `error`.
    result: String,
    prepare_seconds: f64,
    run_seconds: f64,
    wall_seconds: f64,
    timeout: f64,
    /// The worker's report (absent on timeout kill or error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report: Option<VnnlibReport>,
    /// For `violated`: whether the counterexample file was read back and re-confirmed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counterexample_confirmed: Option<bool>,
    /// For `error`: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// For `holds` with `--certificates`: whether the certificate was re-checked valid here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_valid: Option<bool>,
    /// With `--synth`, for `holds`: the certified quantization of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    synth: Option<SynthRecord>,
}

/// Reads the instance list.
fn read_instances(path: &Path, cap: Option<f64>) -> Result<Vec<Instance>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --instances {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let [network, property, timeout] = f[..] else {
            bail!(
                "{} line {}: expected network,property,timeout",
                path.display(),
                i + 1
            );
        };
        let t: f64 = timeout
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t > 0.0)
            .with_context(|| {
                format!(
                    "{} line {}: timeout `{timeout}` is not a positive number",
                    path.display(),
                    i + 1
                )
            })?;
        out.push(Instance {
            network: network.to_string(),
            property: property.to_string(),
            timeout: cap.map_or(t, |c| t.min(c)),
        });
    }
    if out.is_empty() {
        bail!("{}: no instances", path.display());
    }
    Ok(out)
}

/// `./specs/a.vnnlib` and `specs/a.vnnlib` name the same file.
fn norm(p: &str) -> String {
    p.trim_start_matches("./").to_string()
}

/// The key of an instance.
fn key(network: &str, property: &str) -> (String, String) {
    (norm(network), norm(property))
}

/// A file name for an instance's counterexample.
fn cx_name(i: &Instance) -> String {
    file_name(i, "counterexample")
}

/// A file name for one of an instance's artifacts (`<network>__<property>.<ext>`).
fn file_name(i: &Instance, ext: &str) -> String {
    let clean = |s: &str| norm(s).replace(['/', '\\'], "_");
    format!("{}__{}.{ext}", clean(&i.network), clean(&i.property))
}

/// Runs one instance in a worker process under its time limit (plus a grace for start-up).
fn run_instance(
    i: &Instance,
    base: &Path,
    cx: &Path,
    certs: Option<&Path>,
    max_splits: usize,
    synth: Option<&VnncompSynthArgs>,
) -> Result<InstanceRecord> {
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().context("cannot find the certquant executable")?
    };
    let cx_file = cx.join(cx_name(i));
    let cert_file = certs.map(|d| d.join(file_name(i, "certificate.json")));
    let start = Instant::now();
    let mut cmd = Command::new(&exe);
    cmd.arg("verify")
        .arg("--model")
        .arg(base.join(&i.network))
        .arg("--vnnlib")
        .arg(base.join(&i.property))
        .arg("--timeout")
        .arg(i.timeout.to_string())
        .arg("--max-splits")
        .arg(max_splits.to_string())
        .arg("--counterexample")
        .arg(&cx_file)
        .arg("--json");
    if let Some(c) = &cert_file {
        cmd.arg("--certificate").arg(c);
    }
    let run = run_limited(
        &mut cmd,
        start,
        Duration::from_secs_f64(i.timeout + 10.0),
        "a worker process",
    )?;
    let wall = start.elapsed().as_secs_f64();
    let (status, out, err) = (run.status, run.stdout, run.stderr);
    let mut rec = InstanceRecord {
        network: i.network.clone(),
        property: i.property.clone(),
        result: "timeout".into(),
        prepare_seconds: 0.0,
        run_seconds: wall,
        wall_seconds: wall,
        timeout: i.timeout,
        report: None,
        counterexample_confirmed: None,
        error: None,
        certificate_valid: None,
        synth: None,
    };
    if status.is_none() {
        return Ok(rec);
    }
    match serde_json::from_slice::<VnnlibReport>(&out) {
        Ok(r) => {
            rec.result = r.result.word().to_string();
            rec.prepare_seconds = r.prepare_seconds;
            rec.run_seconds = r.seconds;
            if r.result == Answer::Violated {
                rec.counterexample_confirmed = Some(reconfirm(i, base, &cx_file, &r));
            }
            if let (Answer::Holds, Some(c)) = (r.result, &cert_file) {
                rec.certificate_valid = Some(recheck(i, base, c));
            }
            if let (Answer::Holds, Some(sa)) = (r.result, synth) {
                let out = certs.map(|d| d.join(file_name(i, "synth")));
                rec.synth = Some(vnncomp_synth::run_synth(
                    sa,
                    &exe,
                    base,
                    (&i.network, &i.property),
                    i.timeout,
                    max_splits,
                    out.as_deref(),
                )?);
            }
            rec.report = Some(r);
        }
        Err(_) => {
            rec.result = "error".into();
            rec.error = Some(worker_error(&err, "the worker ended without a report"));
        }
    }
    Ok(rec)
}

/// A worker's stderr as one error message (without clap/anyhow's `error: ` prefix), or
/// `silent` when it wrote nothing.
pub(super) fn worker_error(stderr: &[u8], silent: &str) -> String {
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    match text.strip_prefix("error: ").unwrap_or(&text) {
        "" => silent.to_string(),
        t => t.to_string(),
    }
}

/// Reads the counterexample file back and confirms it soundly, independently of the worker.
fn reconfirm(i: &Instance, base: &Path, file: &Path, r: &VnnlibReport) -> bool {
    let check = || -> Result<bool> {
        let text = std::fs::read_to_string(file)?;
        let a = certquant::vnnlib::parse_assignment(&text)?;
        let m = super::super::common::load_model(&base.join(&i.network))?;
        let q = read_query(&base.join(&i.property))?;
        let c = r.counterexample.as_ref().context("no counterexample")?;
        let region = q.regions.get(c.region).context("no such region")?;
        if a.y.len() != m.net.output_dim() {
            return Ok(false);
        }
        Ok(certquant::falsify::confirm(&m.net, region, c.disjunct, &a.x).is_some())
    };
    check().unwrap_or(false)
}

/// Re-checks a `holds` instance's certificate with the independent checker, against the
/// instance's own model and VNN-LIB files.
fn recheck(i: &Instance, base: &Path, cert: &Path) -> bool {
    let check = || -> Result<bool> {
        let c = certquant::check::read_certificate(cert)?;
        let (net, bytes) = certquant::check::read_model(&base.join(&i.network))?;
        let query = std::fs::read(base.join(&i.property))?;
        let r = certquant::check::check_certificate_with_query(
            &c,
            &net,
            &bytes,
            &net,
            &bytes,
            Some(&query),
        );
        if !r.valid {
            tracing::warn!(reasons = ?r.reasons, certificate = %cert.display(), "certificate rejected");
        }
        Ok(r.valid)
    };
    check().unwrap_or(false)
}

/// The sidecar's records.
fn read_records(path: &Path) -> Result<Vec<InstanceRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a record", path.display(), n + 1))
        })
        .collect()
}

/// The competition's verdicts by (onnx, vnnlib).
fn read_verdicts(path: &Path) -> Result<BTreeMap<(String, String), String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --verdicts {}", path.display()))?;
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 4 {
            bail!(
                "{} line {}: expected benchmark,onnx,vnnlib,verdict,…",
                path.display(),
                i + 1
            );
        }
        map.insert(key(f[1], f[2]), f[3].trim().to_string());
    }
    Ok(map)
}

/// The summary: counts per result and verdict.
#[derive(Debug, Serialize)]
struct Summary {
    instances: usize,
    /// result → count
    results: BTreeMap<String, usize>,
    /// result → verdict → count (with --verdicts)
    against_verdicts: BTreeMap<String, BTreeMap<String, usize>>,
    /// holds where the competition's majority is violated (must be 0)
    holds_on_violated: usize,
    /// violated where the majority is holds (our counterexample is confirmed)
    violated_on_holds: usize,
    /// violated answers whose counterexample file re-confirmed
    counterexamples_confirmed: usize,
    /// holds answers whose certificate the independent checker accepted (`--certificates`)
    certificates_valid: usize,
    /// holds answers whose certificate was missing or rejected (must be 0)
    certificates_invalid: usize,
    /// median seconds of the decided answers (holds, violated)
    median_decided_seconds: Option<f64>,
    /// error messages, deduplicated
    errors: Vec<String>,
}

fn summarize(
    recs: &[InstanceRecord],
    verdicts: Option<&BTreeMap<(String, String), String>>,
) -> Summary {
    let mut s = Summary {
        instances: recs.len(),
        results: BTreeMap::new(),
        against_verdicts: BTreeMap::new(),
        holds_on_violated: 0,
        violated_on_holds: 0,
        counterexamples_confirmed: 0,
        certificates_valid: 0,
        certificates_invalid: 0,
        median_decided_seconds: None,
        errors: Vec::new(),
    };
    let mut times = Vec::new();
    for r in recs {
        *s.results.entry(r.result.clone()).or_default() += 1;
        if let Some(v) = verdicts {
            let verdict = v
                .get(&key(&r.network, &r.property))
                .cloned()
                .unwrap_or_else(|| "absent".into());
            if r.result == "holds" && verdict == "violated" {
                s.holds_on_violated += 1;
            }
            if r.result == "violated" && verdict == "holds" {
                s.violated_on_holds += 1;
            }
            *s.against_verdicts
                .entry(r.result.clone())
                .or_default()
                .entry(verdict)
                .or_default() += 1;
        }
        if r.counterexample_confirmed == Some(true) {
            s.counterexamples_confirmed += 1;
        }
        match r.certificate_valid {
            Some(true) => s.certificates_valid += 1,
            Some(false) => s.certificates_invalid += 1,
            None => {}
        }
        if r.result == "holds" || r.result == "violated" {
            times.push(r.prepare_seconds + r.run_seconds);
        }
        if let Some(e) = &r.error
            && !s.errors.contains(e)
        {
            s.errors.push(e.clone());
        }
    }
    times.sort_by(f64::total_cmp);
    s.median_decided_seconds = (!times.is_empty()).then(|| times[times.len() / 2]);
    s
}

fn print_table(s: &Summary) {
    const RESULTS: [&str; 5] = ["holds", "violated", "unknown", "timeout", "error"];
    if s.against_verdicts.is_empty() {
        println!("| result | instances |\n|---|---:|");
        for r in RESULTS {
            println!("| {r} | {} |", s.results.get(r).copied().unwrap_or(0));
        }
    } else {
        let cols = ["holds", "violated", "disputed", "unknown", "absent"];
        println!(
            "| certquant \\ 2021 verdict | holds | violated | disputed | unknown | not listed | total |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in RESULTS {
            let row = s.against_verdicts.get(r);
            let cells: Vec<String> = cols
                .iter()
                .map(|c| {
                    row.and_then(|m| m.get(*c))
                        .copied()
                        .unwrap_or(0)
                        .to_string()
                })
                .collect();
            println!(
                "| {r} | {} | {} |",
                cells.join(" | "),
                s.results.get(r).copied().unwrap_or(0)
            );
        }
    }
    println!(
        "{} instances; holds where the verdict is violated: {}; violated where it is holds: {}; counterexamples re-confirmed: {}/{}; median time of decided answers: {}",
        s.instances,
        s.holds_on_violated,
        s.violated_on_holds,
        s.counterexamples_confirmed,
        s.results.get("violated").copied().unwrap_or(0),
        s.median_decided_seconds
            .map_or("-".into(), |t| format!("{t:.2} s"))
    );
    if s.certificates_valid + s.certificates_invalid > 0 {
        println!(
            "certificates of holds answers re-checked valid: {}/{}",
            s.certificates_valid,
            s.certificates_valid + s.certificates_invalid
        );
    }
    for e in &s.errors {
        println!("error: {e}");
    }
}

/// `certquant bench vnncomp`.
pub fn vnncomp(a: &BenchVnncompArgs) -> Result<Outcome> {
    if let Some(c) = a.timeout_cap
        && !(c.is_finite() && c > 0.0)
    {
        bail!("--timeout-cap must be a positive number of seconds");
    }
    let instances = read_instances(&a.instances, a.timeout_cap)?;
    let base = a
        .instances
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let verdicts = a.verdicts.as_deref().map(read_verdicts).transpose()?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let sidecar = PathBuf::from(format!("{}.jsonl", a.out.display()));
    if !a.resume && sidecar.exists() && std::fs::metadata(&sidecar)?.len() > 0 {
        bail!(
            "{} exists; pass --resume to continue it or choose another --out",
            sidecar.display()
        );
    }
    let cx_dir = a
        .counterexamples
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.counterexamples", a.out.display())));
    std::fs::create_dir_all(&cx_dir)
        .with_context(|| format!("cannot create {}", cx_dir.display()))?;
    if let Some(d) = &a.certificates {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let done: HashSet<(String, String)> = read_records(&sidecar)?
        .iter()
        .map(|r| key(&r.network, &r.property))
        .collect();
    let todo: Vec<&Instance> = instances
        .iter()
        .filter(|i| !done.contains(&key(&i.network, &i.property)))
        .collect();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&sidecar)
        .with_context(|| format!("cannot open {}", sidecar.display()))?;
    let file = Mutex::new(file);
    let queue = Mutex::new(todo.into_iter());
    let pb = progress(instances.len() as u64, "vnncomp");
    pb.inc(done.len() as u64);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some(inst) = next else { break };
                    match run_instance(
                        inst,
                        &base,
                        &cx_dir,
                        a.certificates.as_deref(),
                        a.max_splits,
                        a.synth.synth.then_some(&a.synth),
                    )
                        .and_then(|r| Ok((r.result.clone(), serde_json::to_string(&r)?)))
                    {
                        Ok((result, line)) => {
                            if let Ok(mut f) = file.lock() {
                                let _ = writeln!(f, "{line}").and_then(|_| f.flush());
                            }
                            tracing::info!(%result, network = %inst.network, property = %inst.property, "instance done");
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                    pb.inc(1);
                }
            });
        }
    });
    pb.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    // the results CSV in instance order, from the sidecar
    let recs = read_records(&sidecar)?;
    let by_key: BTreeMap<(String, String), &InstanceRecord> = recs
        .iter()
        .map(|r| (key(&r.network, &r.property), r))
        .collect();
    let mut csv = String::new();
    let mut ordered = Vec::new();
    for i in &instances {
        if let Some(r) = by_key.get(&key(&i.network, &i.property)) {
            csv.push_str(&format!(
                "{},{},{:.6},{},{:.6}",
                i.network, i.property, r.prepare_seconds, r.result, r.run_seconds
            ));
            // --synth: status, bits per layer, QNN accuracy, seconds (empty unless holds)
            if a.synth.synth {
                csv.push_str(
                    &r.synth
                        .as_ref()
                        .map_or(",,,,".into(), SynthRecord::csv_columns),
                );
            }
            csv.push('\n');
            ordered.push((*r).clone());
        }
    }
    std::fs::write(&a.out, csv).with_context(|| format!("cannot write {}", a.out.display()))?;
    let summary = summarize(&ordered, verdicts.as_ref());
    let synth = vnncomp_synth::summarize(ordered.iter().filter_map(|r| r.synth.as_ref()));
    if a.json {
        let mut v = serde_json::to_value(&summary)?;
        if a.synth.synth {
            v["synth"] = serde_json::to_value(&synth)?;
        }
        println!("{v}");
    } else {
        print_table(&summary);
        if a.synth.synth {
            vnncomp_synth::print_table(ordered.iter().filter_map(|r| {
                r.synth
                    .as_ref()
                    .map(|s| (r.network.as_str(), r.property.as_str(), s))
            }));
        }
    }
    if synth.soundness_bugs > 0 {
        bail!(
            "{} certified QNN(s) were broken by the attack: a soundness bug to investigate",
            synth.soundness_bugs
        );
    }
    if synth.certificates_invalid > 0 {
        bail!(
            "{} certified QNN(s) came with a certificate the independent checker rejected: a bug to investigate",
            synth.certificates_invalid
        );
    }
    if summary.certificates_invalid > 0 {
        bail!(
            "{} holds answer(s) came with a certificate the independent checker rejected: a bug to investigate",
            summary.certificates_invalid
        );
    }
    if summary.holds_on_violated > 0 {
        bail!(
            "{} instance(s) answered holds where the competition's majority found a counterexample: a soundness bug to investigate",
            summary.holds_on_violated
        );
    }
    Ok(Outcome::Proven)
}

/// What a worker process left when it ended or was stopped ([`run_limited`]).
pub(super) struct Finished {
    /// Exit status; `None` when the process was killed at the limit.
    pub status: Option<std::process::ExitStatus>,
    /// Everything it wrote on standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote on standard error.
    pub stderr: Vec<u8>,
}

/// Runs `cmd` as a worker (no stdin, both outputs captured by reader threads so a full pipe
/// cannot block it) and kills it once `limit` has passed since `start`. `what` names the
/// worker in the error when it cannot be started.
pub(super) fn run_limited(
    cmd: &mut Command,
    start: Instant,
    limit: Duration,
    what: &str,
) -> Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_lists_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x_instances.csv");
        std::fs::write(&p, "a.onnx,./specs/p.vnnlib,300\nb.onnx,q.vnnlib,20").unwrap();
        let v = read_instances(&p, Some(60.0)).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].timeout, v[1].timeout), (60.0, 20.0));
        assert_eq!(
            key(&v[0].network, &v[0].property),
            key("a.onnx", "specs/p.vnnlib")
        );
        assert_eq!(cx_name(&v[0]), "a.onnx__specs_p.vnnlib.counterexample");
        std::fs::write(&p, "a.onnx,p.vnnlib\n").unwrap();
        assert!(read_instances(&p, None).is_err());
        std::fs::write(&p, "a.onnx,p.vnnlib,-1\n").unwrap();
        assert!(read_instances(&p, None).is_err());
    }

    #[test]
    fn the_summary_flags_holds_on_violated() {
        let rec = |p: &str, result: &str| InstanceRecord {
            network: "n.onnx".into(),
            property: p.into(),
            result: result.into(),
            prepare_seconds: 0.1,
            run_seconds: 1.0,
            wall_seconds: 1.2,
            timeout: 10.0,
            report: None,
            counterexample_confirmed: (result == "violated").then_some(true),
            error: None,
            certificate_valid: (result == "holds").then_some(true),
            synth: None,
        };
        let mut v = BTreeMap::new();
        v.insert(key("n.onnx", "a"), "holds".to_string());
        v.insert(key("n.onnx", "b"), "violated".to_string());
        let s = summarize(&[rec("a", "holds"), rec("b", "violated")], Some(&v));
        assert_eq!((s.holds_on_violated, s.violated_on_holds), (0, 0));
        assert_eq!(s.counterexamples_confirmed, 1);
        assert_eq!((s.certificates_valid, s.certificates_invalid), (1, 0));
        let s = summarize(&[rec("b", "holds"), rec("./a", "violated")], Some(&v));
        assert_eq!((s.holds_on_violated, s.violated_on_holds), (1, 1));
    }
}
