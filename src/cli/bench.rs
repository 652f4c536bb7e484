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
    /// Parallel worker processes (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Wall-clock limit per task in seconds (recorded as status "timeout").
    #[arg(long, default_value_t = 7200.0)]
    timeout: f64,
    /// Skip QNN accuracy on the whole data set.
    #[arg(long)]
    no_accuracy: bool,
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
    /// Keep every certified task's QNN and certificate in DIR/id<ID>_eps<EPS>/.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Also write SVG plots of the results here (χ box plots, bit-width histogram, times).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
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

/// Runs one task in a worker process; returns its JSON line.
fn run_one(a: &BenchRobustnessArgs, id: usize, eps: &str) -> Result<serde_json::Value> {
    // /proc/self/exe stays valid even if the binary file is replaced during a long run.
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().context("cannot find the certquant executable")?
    };
    let mut cmd = Command::new(exe);
    cmd.args([
        "synth",
        "robustness",
        "--json",
        "--id",
        &id.to_string(),
        "--eps",
        eps,
    ])
    .arg("--model")
    .arg(&a.model)
    .arg("--data")
    .arg(&a.data)
    .args(synth_args(&a.synth))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if !a.no_accuracy {
        cmd.arg("--accuracy");
    }
    if let Some(dir) = &a.artifacts {
        cmd.arg("--out")
            .arg(dir.join(format!("id{id}_eps{}", eps.replace('/', "_"))));
    }
    let start = Instant::now();
    let mut child = cmd.spawn().context("cannot start a worker process")?;
    let limit = Duration::from_secs_f64(a.timeout);
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
    let mut v = match status {
        None => serde_json::json!({"status": "timeout", "id": id, "eps_text": eps}),
        Some(_) => {
            let out = child.wait_with_output()?;
            match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                Ok(v) => v,
                Err(_) => {
                    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    let status = if err.contains("SOUNDNESS BUG") {
                        "soundness-bug"
                    } else {
                        "error"
                    };
                    serde_json::json!({"status": status, "id": id, "eps_text": eps, "error": err})
                }
            }
        }
    };
    v["model"] = serde_json::json!(a.model.display().to_string());
    v["wall_seconds"] = serde_json::json!(wall);
    if v.get("eps").is_none() {
        v["eps"] = serde_json::json!(parse_eps(eps).ok());
    }
    Ok(v)
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
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    // fail fast on a bad model or data set instead of once per task
    let m = super::common::load_model(&a.model)?;
    super::common::load_data(&a.data, &m.net)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if !a.resume && a.out.exists() && std::fs::metadata(&a.out)?.len() > 0 {
        bail!(
            "{} exists; pass --resume to continue it or choose another --out",
            a.out.display()
        );
    }
    let (done, _) = done_tasks(&a.out)?;
    let tasks: Vec<(usize, String)> = ids
        .iter()
        .flat_map(|&id| a.eps.iter().map(move |e| (id, e.clone())))
        .filter(|t| !done.contains(t))
        .collect();
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.out)
        .with_context(|| format!("cannot open {}", a.out.display()))?;
    let file = Mutex::new(file);
    let queue = Mutex::new(tasks.clone().into_iter());
    let pb = progress(tasks.len() as u64, "bench");
    let certified = std::sync::atomic::AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(tasks.len().max(1)) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some((id, eps)) = next else { break };
                    match run_one(a, id, &eps) {
                        Ok(v) => {
                            if v["status"] == "certified" {
                                certified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            let line = v.to_string();
                            if let Ok(mut f) = file.lock() {
                                let _ = writeln!(f, "{line}").and_then(|_| f.flush());
                            }
                            tracing::info!(id, eps = %eps, status = %v["status"], "task done");
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
    let (_, recs) = done_tasks(&a.out)?;
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
    if let Some(p) = &a.summary {
        std::fs::write(p, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if a.json {
        print_json(&summary)?;
    } else {
        print_summary(&a.model, &summary);
    }
    let bugs = recs.iter().filter(|r| r.status == "soundness-bug").count();
    if bugs > 0 {
        bail!(
            "{bugs} certified result(s) were contradicted by a concrete counterexample (see {})",
            a.out.display()
        );
    }
    for p in &plot_paths {
        if a.json {
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
    println!(
        "  preimage s: mean {:.2} median {:.2};  quantization s: mean {:.3} median {:.3};  wall s median {:.2}",
        s.mean_preimage_seconds,
        s.median_preimage_seconds,
        s.mean_quantize_seconds,
        s.median_quantize_seconds,
        s.median_wall_seconds
    );
}
