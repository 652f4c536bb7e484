//! `certquant bench robustness`: many (id, eps) tasks in worker processes, with per-task
//! timeouts, JSONL results flushed as they finish, resume, a progress bar and a summary.
//!
//! Worker processes (this binary's own `synth robustness --json`) give both parallelism
//! (CBC is serialised by a global lock inside one process) and hard per-task timeouts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use certquant::bench::{Summary, TaskRecord, done_tasks, parse_ids, summarize};
use certquant::spec::parse_eps;

use super::SynthOpts;
use super::common::{Outcome, print_json, progress};

/// Options every bench shares: workers, the per-task limit, the results file, the summary.
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Parallel worker processes (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Wall-clock limit per task in seconds (recorded as status "timeout").
    #[arg(long, default_value_t = 7200.0)]
    timeout: f64,
    /// JSONL file, one line per finished task (appended).
    #[arg(long)]
    out: PathBuf,
    /// Skip tasks already present in --out.
    #[arg(long)]
    resume: bool,
    /// Write the summary as JSON here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `certquant bench robustness`.
#[derive(Debug, Args)]
pub struct BenchRobustnessArgs {
    /// ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// IDX directory or .npy file.
    #[arg(long)]
    data: PathBuf,
    /// Input ids: a file (white space or comma separated) or a comma-separated list.
    #[arg(long)]
    ids: String,
    /// Radii, comma separated (e.g. 1/255,2/255).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    eps: Vec<String>,
    #[command(flatten)]
    synth: SynthOpts,
    /// Skip QNN accuracy on the whole data set.
    #[arg(long)]
    no_accuracy: bool,
    /// Keep every certified task's QNN and certificate in DIR/id<ID>_eps<EPS>/.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Also write SVG plots of the results here (χ box plots, bit-width histogram, times).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// Reuse the preimages (χ per layer) of an earlier run of the same model and template,
    /// e.g. the strict run's JSONL for the relaxed row: matching tasks skip step 1 (their
    /// records get "reused_preimage_seconds"); others compute preimages as usual.
    #[arg(long, value_name = "JSONL")]
    preimages_from: Option<PathBuf>,
    #[command(flatten)]
    pool: PoolArgs,
}

/// What `--preimages-from` needs of an earlier task record.
#[derive(Debug, serde::Deserialize)]
struct ReusableRecord {
    id: usize,
    eps_text: String,
    #[serde(default)]
    chi: Vec<f64>,
    #[serde(default)]
    preimage_seconds: f64,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    template: Option<String>,
}

/// Reusable preimages: (id, eps text) → (χ per hidden layer, the seconds they took).
type ReusableChi = std::collections::HashMap<(usize, String), (Vec<f64>, f64)>;

/// The χ vectors of `path` usable for `a`'s tasks, keyed by (id, eps text), with the seconds
/// they took. Records of another model or template are an error (their χ would be wrong).
fn reusable_preimages(a: &BenchRobustnessArgs, path: &Path, hidden: usize) -> Result<ReusableChi> {
    if !path.is_file() {
        bail!(
            "--preimages-from {}: no such file (or not a regular file)",
            path.display()
        );
    }
    let recs: Vec<ReusableRecord> = certquant::bench::read_jsonl(path)
        .with_context(|| format!("cannot read --preimages-from {}", path.display()))?;
    let want_template = format!("{:?}", a.synth.template).to_lowercase();
    let ours = a.model.canonicalize().ok();
    let same_model = |m: &str| {
        let p = Path::new(m);
        match (p.canonicalize().ok(), &ours) {
            (Some(x), Some(y)) => x == *y,
            _ => p == a.model.as_path(),
        }
    };
    let mut map = std::collections::HashMap::new();
    for r in recs {
        if let Some(m) = &r.model
            && !same_model(m)
        {
            bail!(
                "--preimages-from {}: task id {} is of model {m}, not {}",
                path.display(),
                r.id,
                a.model.display()
            );
        }
        if let Some(t) = &r.template
            && *t != want_template
        {
            bail!(
                "--preimages-from {}: task id {} used template {t}, this run uses {want_template}",
                path.display(),
                r.id
            );
        }
        if r.chi.len() == hidden {
            map.insert((r.id, r.eps_text), (r.chi, r.preimage_seconds));
        }
    }
    Ok(map)
}

fn synth_args(o: &SynthOpts) -> Vec<String> {
    let mut a = vec![
        "--max-frac".to_string(),
        o.max_frac.to_string(),
        "--template".into(),
        format!("{:?}", o.template).to_lowercase(),
        "--preimage".into(),
        format!("{:?}", o.preimage).to_lowercase(),
        "--chi-max".into(),
        o.chi_max.to_string(),
        "--relaxed-time-limit".into(),
        o.relaxed_time_limit.to_string(),
        "--gap".into(),
        o.gap.to_string(),
    ];
    if o.relaxed {
        a.push("--relaxed".into());
    }
    if o.attack {
        a.push("--attack".into());
    }
    if let Some(b) = o.min_frac {
        a.extend(["--min-frac".into(), b.to_string()]);
    }
    if let Some(t) = o.time_limit {
        a.extend(["--time-limit".into(), t.to_string()]);
    }
    a
}

/// Runs this binary with `args` as a worker process under a wall-clock `timeout`; returns
/// its JSON line (completed with any `stub` field it lacks), or `stub` with `"status"` set to `timeout`, `error` or `soundness-bug` (the
/// worker's stderr in `"error"`), plus `"wall_seconds"`.
pub fn run_worker(
    args: &[std::ffi::OsString],
    timeout: f64,
    stub: serde_json::Value,
) -> Result<serde_json::Value> {
    // /proc/self/exe stays valid even if the binary file is replaced during a long run.
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().context("cannot find the certquant executable")?
    };
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().context("cannot start a worker process")?;
    let limit = Duration::from_secs_f64(timeout);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = start.elapsed().as_secs_f64();
    let with_status = |status: &str, err: Option<String>| {
        let mut v = stub.clone();
        v["status"] = serde_json::json!(status);
        if let Some(e) = err {
            v["error"] = serde_json::json!(e);
        }
        v
    };
    let mut v = match status {
        None => with_status("timeout", None),
        Some(_) => {
            let out = child.wait_with_output()?;
            match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                // the stub's fields the worker does not report (e.g. reused_preimage_seconds)
                Ok(mut v) => {
                    if let (Some(o), Some(st)) = (v.as_object_mut(), stub.as_object()) {
                        for (k, x) in st {
                            o.entry(k.clone()).or_insert_with(|| x.clone());
                        }
                    }
                    v
                }
                Err(_) => {
                    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    let status = if err.contains("SOUNDNESS BUG") {
                        "soundness-bug"
                    } else {
                        "error"
                    };
                    with_status(status, Some(err))
                }
            }
        }
    };
    v["wall_seconds"] = serde_json::json!(wall);
    Ok(v)
}

/// Runs `tasks` (worker arguments and the stub of their record) on `jobs` worker threads,
/// appending each finished task's JSON line (with `"model"`) to `out`, flushed as it goes,
/// with a progress bar (done/total, certified so far, elapsed, ETA) on a terminal.
pub fn run_pool(
    tasks: Vec<(Vec<std::ffi::OsString>, serde_json::Value)>,
    jobs: usize,
    timeout: f64,
    model: &Path,
    out: &Path,
) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("cannot open {}", out.display()))?;
    let file = Mutex::new(file);
    let total = tasks.len();
    let queue = Mutex::new(tasks.into_iter());
    let pb = progress(total as u64, "bench");
    let certified = std::sync::atomic::AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(total.max(1)) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some((args, stub)) = next else { break };
                    match run_worker(&args, timeout, stub) {
                        Ok(mut v) => {
                            v["model"] = serde_json::json!(model.display().to_string());
                            if v["status"] == "certified" {
                                certified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            let line = v.to_string();
                            if let Ok(mut f) = file.lock() {
                                let _ = writeln!(f, "{line}").and_then(|_| f.flush());
                            }
                            tracing::info!(status = %v["status"], "task done");
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                    pb.set_message(format!(
                        "{} certified",
                        certified.load(std::sync::atomic::Ordering::Relaxed)
                    ));
                    pb.inc(1);
                }
            });
        }
    });
    pb.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(())
}

/// The worker arguments of one robustness task.
fn robustness_worker_args(
    a: &BenchRobustnessArgs,
    id: usize,
    eps: &str,
) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = ["synth", "robustness", "--json", "--id"]
        .iter()
        .map(Into::into)
        .collect();
    v.push(id.to_string().into());
    v.push("--eps".into());
    v.push(eps.into());
    v.push("--model".into());
    v.push(a.model.clone().into());
    v.push("--data".into());
    v.push(a.data.clone().into());
    v.extend(synth_args(&a.synth).into_iter().map(Into::into));
    if !a.no_accuracy {
        v.push("--accuracy".into());
    }
    if let Some(dir) = &a.artifacts {
        v.push("--out".into());
        v.push(
            dir.join(format!("id{id}_eps{}", eps.replace('/', "_")))
                .into(),
        );
    }
    v
}

/// Checks `--jobs`, `--timeout` and `--out`/`--resume`; returns the number of jobs.
pub fn pool_settings(jobs: Option<usize>, timeout: f64, out: &Path, resume: bool) -> Result<usize> {
    if !(timeout.is_finite() && timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if !resume && out.exists() && std::fs::metadata(out)?.len() > 0 {
        bail!(
            "{} exists; pass --resume to continue it or choose another --out",
            out.display()
        );
    }
    Ok(jobs)
}

/// `certquant bench robustness`.
pub fn robustness(a: &BenchRobustnessArgs) -> Result<Outcome> {
    let ids = parse_ids(&a.ids)?;
    if a.eps.is_empty() {
        bail!("--eps needs at least one radius");
    }
    for e in &a.eps {
        parse_eps(e)?;
    }
    // fail fast on a bad model or data set instead of once per task
    let m = super::common::load_model(&a.model)?;
    super::common::load_data(&a.data, &m.net)?;
    let jobs = pool_settings(a.pool.jobs, a.pool.timeout, &a.pool.out, a.pool.resume)?;
    let reuse = match &a.preimages_from {
        Some(p) => reusable_preimages(a, p, m.net.depth().saturating_sub(1))?,
        None => Default::default(),
    };
    let (done, _) = done_tasks(&a.pool.out)?;
    let tasks: Vec<_> = ids
        .iter()
        .flat_map(|&id| a.eps.iter().map(move |e| (id, e.clone())))
        .filter(|t| !done.contains(t))
        .map(|(id, eps)| {
            let mut stub =
                serde_json::json!({"id": id, "eps_text": eps, "eps": parse_eps(&eps).ok()});
            let mut args = robustness_worker_args(a, id, &eps);
            if let Some((chi, secs)) = reuse.get(&(id, eps.clone())) {
                let list: Vec<String> = chi.iter().map(|c| format!("{c:e}")).collect();
                args.push("--chi".into());
                args.push(list.join(",").into());
                stub["reused_preimage_seconds"] = serde_json::json!(secs);
            }
            (args, stub)
        })
        .collect();
    run_pool(tasks, jobs, a.pool.timeout, &a.model, &a.pool.out)?;
    let (_, recs) = done_tasks(&a.pool.out)?;
    let wanted: std::collections::HashSet<(usize, String)> = ids
        .iter()
        .flat_map(|&id| a.eps.iter().map(move |e| (id, e.clone())))
        .collect();
    let recs: Vec<TaskRecord> = recs
        .into_iter()
        .filter(|r| wanted.contains(&(r.id, r.eps_text.clone())))
        .collect();
    let summary = summarize(&recs);
    // plots first, so that a failure leaves stdout empty (exit 2 prints nothing there)
    let mut plot_paths = Vec::new();
    if let Some(dir) = &a.plots {
        let title = a.model.file_stem().map_or_else(
            || a.model.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        plot_paths = certquant::plots::write_plots(&recs, dir, &title)
            .with_context(|| format!("cannot write plots to {}", dir.display()))?;
    }
    if let Some(p) = &a.pool.summary {
        std::fs::write(p, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if a.pool.json {
        print_json(&summary)?;
    } else {
        print_summary(&a.model, &summary);
    }
    let bugs = recs.iter().filter(|r| r.status == "soundness-bug").count();
    if bugs > 0 {
        bail!(
            "{bugs} certified result(s) were contradicted by a concrete counterexample (see {})",
            a.pool.out.display()
        );
    }
    for p in &plot_paths {
        if a.pool.json {
            eprintln!("plot {}", p.display());
        } else {
            println!("  plot {}", p.display());
        }
    }
    Ok(Outcome::Proven)
}

/// Prints a summary as a table row in the paper's Table 2 vocabulary.
pub fn print_summary(model: &Path, s: &Summary) {
    let bits: Vec<String> = s.avg_bits.iter().map(|b| format!("{b:.2}")).collect();
    println!("model {}", model.display());
    println!(
        "  tasks {}  #S/#F {}/{}  (timeouts {}, errors {}, property fails {})",
        s.tasks, s.certified, s.not_certified, s.timeouts, s.errors, s.property_fails
    );
    println!("  avg bits per layer ({})", bits.join(", "));
    if s.attacked > 0 {
        println!(
            "  attacked {} tasks: no counterexample on any certified QNN; {} unknown task(s) have a real counterexample",
            s.attacked, s.unknown_with_counterexample
        );
    }
    if let Some(a) = s.avg_qnn_accuracy {
        println!("  avg QNN accuracy {:.2}%", a * 100.0);
    }
    let reused = if s.reused_preimages > 0 {
        format!(
            " ({} reused: seconds of their original run)",
            s.reused_preimages
        )
    } else {
        String::new()
    };
    println!(
        "  preimage s{reused}: mean {:.2} median {:.2};  quantization s: mean {:.3} median {:.3};  wall s median {:.2}",
        s.mean_preimage_seconds,
        s.median_preimage_seconds,
        s.mean_quantize_seconds,
        s.median_quantize_seconds,
        s.median_wall_seconds
    );
}

/// Arguments of `certquant bench backdoor`.
#[derive(Debug, Args)]
pub struct BenchBackdoorArgs {
    /// ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Labelled test images (IDX directory or .npy).
    #[arg(long)]
    data: PathBuf,
    /// Target classes, comma separated (default: every class).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<usize>,
    /// Trigger positions ROW,COL (1-based), separated by ';' (default: the paper's five).
    #[arg(long, default_value = "1,1;4,20;5,5;7,13;10,10")]
    positions: String,
    /// Trigger sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    trigger_sizes: Vec<usize>,
    #[command(flatten)]
    sprt: super::backdoor::SprtArgs,
    #[command(flatten)]
    synth: SynthOpts,
    /// Keep every certified task's QNN and certificate in DIR/t<T>_s<S>_r<R>_c<C>/.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    #[command(flatten)]
    pool: PoolArgs,
}

/// `certquant bench backdoor`: tasks = positions × sizes × targets.
pub fn backdoor(a: &BenchBackdoorArgs) -> Result<Outcome> {
    let m = super::common::load_model(&a.model)?;
    super::common::load_data(&a.data, &m.net)?;
    let side = certquant::spec::Trigger::image_side(m.net.input_dim())?;
    let targets: Vec<usize> = if a.targets.is_empty() {
        (0..m.net.output_dim()).collect()
    } else {
        a.targets.clone()
    };
    let mut triggers = Vec::new();
    for &size in &a.trigger_sizes {
        for pos in a.positions.split(';').filter(|p| !p.trim().is_empty()) {
            let (row, col) = certquant::spec::Trigger::parse_position(pos)?;
            let t = certquant::spec::Trigger { row, col, size };
            t.validate(side)?;
            triggers.push(t);
        }
    }
    if triggers.is_empty() {
        bail!("--positions and --trigger-sizes give no trigger");
    }
    for &t in &targets {
        certquant::spec::OutputSpec::NotTarget { target: t }.validate(m.net.output_dim())?;
    }
    a.sprt.params()?;
    let jobs = pool_settings(a.pool.jobs, a.pool.timeout, &a.pool.out, a.pool.resume)?;
    let done: std::collections::HashSet<_> = certquant::bench::done_backdoor_tasks(&a.pool.out)?
        .iter()
        .map(|r| r.key())
        .collect();
    let mut tasks = Vec::new();
    let mut wanted = std::collections::HashSet::new();
    for t in &triggers {
        for &target in &targets {
            let key = (target, t.row, t.col, t.size);
            wanted.insert(key);
            if done.contains(&key) {
                continue;
            }
            let mut v: Vec<std::ffi::OsString> =
                vec!["synth".into(), "backdoor".into(), "--json".into()];
            for (flag, value) in [
                ("--target", target.to_string()),
                ("--trigger-size", t.size.to_string()),
                ("--trigger-pos", format!("{},{}", t.row, t.col)),
            ] {
                v.push(flag.into());
                v.push(value.into());
            }
            v.extend(a.sprt.to_args().into_iter().map(Into::into));
            v.push("--model".into());
            v.push(a.model.clone().into());
            v.push("--data".into());
            v.push(a.data.clone().into());
            v.extend(synth_args(&a.synth).into_iter().map(Into::into));
            if let Some(dir) = &a.artifacts {
                v.push("--out".into());
                v.push(
                    dir.join(format!("t{target}_s{}_r{}_c{}", t.size, t.row, t.col))
                        .into(),
                );
            }
            let stub = serde_json::json!({"target": target, "trigger": t});
            tasks.push((v, stub));
        }
    }
    run_pool(tasks, jobs, a.pool.timeout, &a.model, &a.pool.out)?;
    let recs: Vec<_> = certquant::bench::done_backdoor_tasks(&a.pool.out)?
        .into_iter()
        .filter(|r| wanted.contains(&r.key()))
        .collect();
    let s = certquant::bench::summarize_backdoor(&recs);
    if let Some(p) = &a.pool.summary {
        std::fs::write(p, serde_json::to_string_pretty(&s)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if a.pool.json {
        print_json(&s)?;
    } else {
        let bits: Vec<String> = s.avg_bits.iter().map(|b| format!("{b:.2}")).collect();
        println!("model {}", a.model.display());
        println!(
            "  tasks {}  #S/#F {}/{}  (H1 accepted {}, timeouts {}, errors {})",
            s.tasks, s.certified, s.unknown, s.h1_rejected, s.timeouts, s.errors
        );
        println!("  avg bits per layer ({})", bits.join(", "));
        if let Some(acc) = s.avg_qnn_accuracy {
            println!("  avg QNN accuracy {:.2}%", acc * 100.0);
        }
        println!(
            "  seconds per task: mean {:.1} median {:.1};  mean SPRT rounds {:.1}",
            s.mean_seconds, s.median_seconds, s.mean_rounds
        );
    }
    let bugs = recs.iter().filter(|r| r.status == "soundness-bug").count();
    if bugs > 0 {
        bail!(
            "{bugs} certified result(s) were contradicted by a concrete counterexample (see {})",
            a.pool.out.display()
        );
    }
    Ok(Outcome::Proven)
}

/// Arguments of `certquant bench preimages` (issue 4: the fast engine against the paper's
/// single MILP on the same tasks).
#[derive(Debug, Args)]
pub struct BenchPreimagesArgs {
    /// ONNX models, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    models: Vec<PathBuf>,
    /// IDX directory or .npy file.
    #[arg(long)]
    data: PathBuf,
    /// Input ids: a file or a comma-separated list.
    #[arg(long, default_value = "5346,8564,7059")]
    ids: String,
    /// Radii, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "2/255,4/255")]
    eps: Vec<String>,
    /// Time limit per MILP of the paper engine, seconds (its proven bound is used on expiry;
    /// such tasks are reported and their time is a lower bound).
    #[arg(long)]
    paper_time_limit: Option<f64>,
    /// Time limit per MILP of the fast engine, seconds.
    #[arg(long)]
    fast_time_limit: Option<f64>,
    #[command(flatten)]
    pool: PoolArgs,
}

/// `certquant bench preimages`.
pub fn preimages(a: &BenchPreimagesArgs) -> Result<Outcome> {
    let ids = parse_ids(&a.ids)?;
    for e in &a.eps {
        parse_eps(e)?;
    }
    for (flag, t) in [
        ("--paper-time-limit", a.paper_time_limit),
        ("--fast-time-limit", a.fast_time_limit),
    ] {
        if let Some(t) = t
            && !(t.is_finite() && t > 0.0)
        {
            bail!("{flag} must be a positive number of seconds");
        }
    }
    for m in &a.models {
        let net = super::common::load_model(m)?;
        super::common::load_data(&a.data, &net.net)?;
    }
    let jobs = pool_settings(a.pool.jobs, a.pool.timeout, &a.pool.out, a.pool.resume)?;
    let done: std::collections::HashSet<(String, usize, String, String)> =
        read_model_records(&a.pool.out)?
            .into_iter()
            .map(|(m, r)| (m, r.id, r.eps_text, r.engine))
            .collect();
    let mut by_model: Vec<(PathBuf, Vec<_>)> = Vec::new();
    for m in &a.models {
        let mut tasks = Vec::new();
        for &id in &ids {
            for eps in &a.eps {
                for engine in ["fast", "paper"] {
                    let key = (m.display().to_string(), id, eps.clone(), engine.to_string());
                    if done.contains(&key) {
                        continue;
                    }
                    let mut v: Vec<std::ffi::OsString> = vec![
                        "synth".into(),
                        "robustness".into(),
                        "--json".into(),
                        "--id".into(),
                        id.to_string().into(),
                        "--eps".into(),
                        eps.into(),
                        "--preimage".into(),
                        engine.into(),
                        "--model".into(),
                        m.clone().into(),
                        "--data".into(),
                        a.data.clone().into(),
                    ];
                    let limit = if engine == "paper" {
                        a.paper_time_limit
                    } else {
                        a.fast_time_limit
                    };
                    if let Some(t) = limit {
                        v.push("--time-limit".into());
                        v.push(t.to_string().into());
                    }
                    let stub = serde_json::json!({"id": id, "eps_text": eps, "engine": engine});
                    tasks.push((v, stub));
                }
            }
        }
        by_model.push((m.clone(), tasks));
    }
    for (m, tasks) in by_model {
        run_pool(tasks, jobs, a.pool.timeout, &m, &a.pool.out)?;
    }
    let recs = read_model_records(&a.pool.out)?;
    let mut report = Vec::new();
    for m in &a.models {
        let name = m.display().to_string();
        let mine: Vec<certquant::bench::EngineRecord> = recs
            .iter()
            .filter(|(model, r)| {
                *model == name && ids.contains(&r.id) && a.eps.contains(&r.eps_text)
            })
            .map(|(_, r)| r.clone())
            .collect();
        report.push((name, certquant::bench::compare_engines(&mine)));
    }
    let json: Vec<serde_json::Value> = report
        .iter()
        .map(|(m, c)| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            v["model"] = serde_json::json!(m);
            v
        })
        .collect();
    if let Some(p) = &a.pool.summary {
        std::fs::write(p, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if a.pool.json {
        print_json(&json)?;
    } else {
        println!(
            "model | pairs | median fast s | median paper s | paper/fast | paper time-limited | layers compared | max rel. χ diff | fast > paper"
        );
        for (m, c) in &report {
            println!(
                "{m} | {} | {:.2} | {:.2} | {:.1} | {} | {} | {:.2e} | {}",
                c.pairs,
                c.median_fast_seconds,
                c.median_paper_seconds,
                c.ratio,
                c.paper_time_limited,
                c.layers_compared,
                c.max_relative_difference,
                c.fast_above_paper
            );
        }
    }
    if report.iter().any(|(_, c)| c.fast_above_paper > 0) {
        bail!("the fast engine reported a χ above the paper engine's optimum (see the table)");
    }
    Ok(Outcome::Proven)
}

/// The engine records of a JSONL file with their model.
fn read_model_records(path: &Path) -> Result<Vec<(String, certquant::bench::EngineRecord)>> {
    let lines: Vec<serde_json::Value> = certquant::bench::read_jsonl(path)?;
    Ok(lines
        .into_iter()
        .filter_map(|v| {
            let model = v.get("model")?.as_str()?.to_string();
            Some((model, serde_json::from_value(v).ok()?))
        })
        .collect())
}
