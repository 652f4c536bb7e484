//! `certquant bench robustness|backdoor|preimages`: many tasks in worker processes, with
//! per-task timeouts, JSONL results flushed as they finish, resume, a progress bar and a
//! summary. The pool ([`pool`]) sends each worker a typed task ([`worker::WorkerTask`]) and
//! gets back a typed record ([`record::WorkerRecord`]).

mod pool;
mod record;
pub mod worker;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use certquant::bench::{Summary, TaskRecord, TaskStatus, done_tasks, parse_ids, summarize};
use certquant::spec::parse_eps;

use super::common::{Outcome, print_json};
use super::{PreimageArg, SynthOpts};
use pool::{pool_settings, run_pool};
use record::RobustnessRecord;
use worker::{BackdoorJob, RobustnessJob, WorkerTask};

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
    let recs: Vec<RobustnessRecord> = certquant::bench::read_jsonl(path)
        .with_context(|| format!("cannot read --preimages-from {}", path.display()))?;
    let want_template = a.synth.template;
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
        let (id, eps_text) = r.key();
        if let Some(m) = &r.bench().model
            && !same_model(m)
        {
            bail!(
                "--preimages-from {}: task id {id} is of model {m}, not {}",
                path.display(),
                a.model.display()
            );
        }
        let (chi, seconds) = match &r {
            RobustnessRecord::Finished(f) => {
                let t = f.report.template;
                if t != want_template {
                    bail!(
                        "--preimages-from {}: task id {id} used template {}, this run uses {}",
                        path.display(),
                        template_name(t),
                        template_name(want_template)
                    );
                }
                (f.report.chi.clone(), f.report.preimage_seconds)
            }
            RobustnessRecord::Stopped(_) => (Vec::new(), 0.0),
        };
        if chi.len() == hidden {
            map.insert((id, eps_text.to_string()), (chi, seconds));
        }
    }
    Ok(map)
}

/// A template's name in the records and on the command line.
fn template_name(t: super::TemplateArg) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The worker task of one robustness task.
fn robustness_task(
    a: &BenchRobustnessArgs,
    id: usize,
    eps: &str,
    reuse: &ReusableChi,
) -> WorkerTask {
    let reused = reuse.get(&(id, eps.to_string()));
    WorkerTask::Robustness(RobustnessJob {
        model: a.model.clone(),
        data: a.data.clone(),
        id,
        eps_text: eps.to_string(),
        opts: a.synth.clone(),
        accuracy: !a.no_accuracy,
        chi: reused.map(|(chi, _)| chi.clone()),
        reused_preimage_seconds: reused.map(|&(_, secs)| secs),
        out: a
            .artifacts
            .as_ref()
            .map(|dir| dir.join(format!("id{id}_eps{}", eps.replace('/', "_")))),
    })
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
    a.synth.ensure_finite()?;
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
        .map(|(id, eps)| robustness_task(a, id, &eps, &reuse))
        .collect();
    run_pool(tasks, jobs, a.pool.timeout, &a.pool.out)?;
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
    let bugs = recs
        .iter()
        .filter(|r| r.status == TaskStatus::SoundnessBug.as_str())
        .count();
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
    a.synth.ensure_finite()?;
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
            tasks.push(WorkerTask::Backdoor(BackdoorJob {
                model: a.model.clone(),
                data: a.data.clone(),
                target,
                trigger: *t,
                sprt: a.sprt.clone(),
                opts: a.synth.clone(),
                out: a
                    .artifacts
                    .as_ref()
                    .map(|dir| dir.join(format!("t{target}_s{}_r{}_c{}", t.size, t.row, t.col))),
            }));
        }
    }
    run_pool(tasks, jobs, a.pool.timeout, &a.pool.out)?;
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
    let bugs = recs
        .iter()
        .filter(|r| r.status == TaskStatus::SoundnessBug.as_str())
        .count();
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
    let mut by_model: Vec<Vec<WorkerTask>> = Vec::new();
    for m in &a.models {
        let mut tasks = Vec::new();
        for &id in &ids {
            for eps in &a.eps {
                for engine in ["fast", "paper"] {
                    let key = (m.display().to_string(), id, eps.clone(), engine.to_string());
                    if done.contains(&key) {
                        continue;
                    }
                    let (preimage, limit) = if engine == "paper" {
                        (PreimageArg::Paper, a.paper_time_limit)
                    } else {
                        (PreimageArg::Fast, a.fast_time_limit)
                    };
                    tasks.push(WorkerTask::Preimages(RobustnessJob {
                        model: m.clone(),
                        data: a.data.clone(),
                        id,
                        eps_text: eps.clone(),
                        opts: SynthOpts {
                            preimage,
                            time_limit: limit,
                            ..SynthOpts::default()
                        },
                        accuracy: false,
                        chi: None,
                        reused_preimage_seconds: None,
                        out: None,
                    }));
                }
            }
        }
        by_model.push(tasks);
    }
    for tasks in by_model {
        run_pool(tasks, jobs, a.pool.timeout, &a.pool.out)?;
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
