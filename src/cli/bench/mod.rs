//! `certquant bench robustness|backdoor|preimages`: many tasks in worker processes, with
//! per-task timeouts, JSONL results flushed as they finish, resume, a progress bar and a
//! summary. The pool ([`pool`]) sends each worker a typed task ([`worker::WorkerTask`]) and
//! gets back a typed record ([`record::WorkerRecord`]). `--shard K/N` runs a deterministic
//! part of the tasks and `bench merge` ([`merge`]) joins the parts ([`shard`]).

mod candidates;
mod merge;
mod pool;
mod record;
mod report;
mod shard;
mod vnncomp;
mod vnncomp_synth;
pub mod worker;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use serde_json::{Value, json};

use certquant::bench::{TaskRecord, done_tasks, parse_ids};
use certquant::certificate::sha256_hex;
use certquant::spec::parse_eps;

use super::common::Outcome;
use super::{PreimageArg, SynthOpts};
pub use candidates::{BenchCandidatesArgs, candidates};
pub use merge::{BenchMergeArgs, merge};
use pool::{pool_settings, run_pool};
use record::RobustnessRecord;
use report::SummaryTarget;
use shard::{BenchKind, BenchMeta, Shard, path_text};
pub use vnncomp::{BenchVnncompArgs, vnncomp};
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
    /// Run only part K of N of the tasks: those whose 0-based index in the canonical task
    /// order is K-1 modulo N (whatever --jobs is); join the parts with `bench merge`.
    #[arg(long, value_name = "K/N", value_parser = shard::parse_shard)]
    shard: Option<Shard>,
}

impl PoolArgs {
    /// Where and how the summary goes.
    fn target(&self) -> SummaryTarget<'_> {
        SummaryTarget {
            out: &self.out,
            summary: self.summary.as_deref(),
            json: self.json,
        }
    }
}

/// The synthesis options as they are recorded in a results file's sidecar: every option
/// except `--dump-mps`, which says where MILPs are written, not what is computed.
fn recorded_synth_opts(opts: &SynthOpts) -> Result<Value> {
    let mut v = serde_json::to_value(opts)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("dump_mps");
    }
    Ok(v)
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
    // canonical order: ids as given, each with every radius
    let keys: Vec<(usize, String)> = ids
        .iter()
        .flat_map(|&id| a.eps.iter().map(move |e| (id, e.clone())))
        .collect();
    let meta = BenchMeta::new(
        BenchKind::Robustness,
        json!({
            "model": path_text(&a.model),
            "model_sha256": sha256_hex(&m.bytes),
            "data": path_text(&a.data),
            "synth": recorded_synth_opts(&a.synth)?,
            "accuracy": !a.no_accuracy,
            "preimages_from": a.preimages_from.as_deref().map(path_text),
            "timeout": a.pool.timeout,
        }),
        keys.iter().map(|(id, e)| json!([id, e])).collect(),
        a.pool.shard,
    );
    let owned = shard::begin(&a.pool.out, a.pool.resume, &meta)?;
    let wanted: std::collections::HashSet<(usize, String)> =
        owned.iter().map(|&i| keys[i].clone()).collect();
    let (done, _) = done_tasks(&a.pool.out)?;
    let tasks: Vec<_> = owned
        .iter()
        .map(|&i| &keys[i])
        .filter(|t| !done.contains(*t))
        .map(|(id, eps)| robustness_task(a, *id, eps, &reuse))
        .collect();
    run_pool(tasks, jobs, a.pool.timeout, &a.pool.out)?;
    let (_, recs) = done_tasks(&a.pool.out)?;
    let recs: Vec<TaskRecord> = recs
        .into_iter()
        .filter(|r| wanted.contains(&(r.id, r.eps_text.clone())))
        .collect();
    report::robustness(&a.model, &recs, a.plots.as_deref(), a.pool.target())
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
    // canonical order: sizes, then positions as given, then targets
    let keys: Vec<(usize, certquant::spec::Trigger)> = triggers
        .iter()
        .flat_map(|t| targets.iter().map(move |&target| (target, *t)))
        .collect();
    let meta = BenchMeta::new(
        BenchKind::Backdoor,
        json!({
            "model": path_text(&a.model),
            "model_sha256": sha256_hex(&m.bytes),
            "data": path_text(&a.data),
            "sprt": serde_json::to_value(&a.sprt)?,
            "synth": recorded_synth_opts(&a.synth)?,
            "timeout": a.pool.timeout,
        }),
        keys.iter()
            .map(|(target, t)| json!([target, t.row, t.col, t.size]))
            .collect(),
        a.pool.shard,
    );
    let owned = shard::begin(&a.pool.out, a.pool.resume, &meta)?;
    let done: std::collections::HashSet<_> = certquant::bench::done_backdoor_tasks(&a.pool.out)?
        .iter()
        .map(|r| r.key())
        .collect();
    let mut tasks = Vec::new();
    let mut wanted = std::collections::HashSet::new();
    for &i in &owned {
        let (target, t) = (keys[i].0, &keys[i].1);
        {
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
    report::backdoor(&a.model, &recs, a.pool.target())
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
    /// Largest χ considered by both engines. The paper engine's big-M constants are taken at
    /// this value, so a smaller cap makes its single MILP much faster (and may cap χ).
    #[arg(long, default_value_t = certquant_synth::preimage::CHI_MAX_DEFAULT)]
    chi_max: f64,
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
    if !(a.chi_max.is_finite() && a.chi_max > 0.0) {
        bail!("--chi-max must be a positive number");
    }
    let mut recorded_models = Vec::new();
    for m in &a.models {
        let net = super::common::load_model(m)?;
        super::common::load_data(&a.data, &net.net)?;
        recorded_models.push(json!({"model": path_text(m), "sha256": sha256_hex(&net.bytes)}));
    }
    let jobs = pool_settings(a.pool.jobs, a.pool.timeout, &a.pool.out, a.pool.resume)?;
    // canonical order: models, ids, radii as given, then the fast and the paper engine
    let engines = [("fast", PreimageArg::Fast), ("paper", PreimageArg::Paper)];
    let mut keys = Vec::new();
    for (mi, m) in a.models.iter().enumerate() {
        for &id in &ids {
            for eps in &a.eps {
                for (ei, (engine, _)) in engines.iter().enumerate() {
                    let key = (path_text(m), id, eps.clone(), engine.to_string());
                    keys.push((key, mi, ei));
                }
            }
        }
    }
    let meta = BenchMeta::new(
        BenchKind::Preimages,
        json!({
            "models": recorded_models,
            "data": path_text(&a.data),
            "paper_time_limit": a.paper_time_limit,
            "fast_time_limit": a.fast_time_limit,
            "chi_max": a.chi_max,
            "timeout": a.pool.timeout,
        }),
        keys.iter()
            .map(|((m, id, eps, engine), _, _)| json!([m, id, eps, engine]))
            .collect(),
        a.pool.shard,
    );
    let owned = shard::begin(&a.pool.out, a.pool.resume, &meta)?;
    let wanted: std::collections::HashSet<&(String, usize, String, String)> =
        owned.iter().map(|&i| &keys[i].0).collect();
    let done: std::collections::HashSet<(String, usize, String, String)> =
        read_model_records(&a.pool.out)?
            .into_iter()
            .map(|(m, r)| (m, r.id, r.eps_text, r.engine))
            .collect();
    let mut by_model: Vec<Vec<WorkerTask>> = vec![Vec::new(); a.models.len()];
    for &i in &owned {
        let (key, mi, ei) = &keys[i];
        if done.contains(key) {
            continue;
        }
        let preimage = engines[*ei].1;
        let limit = if preimage == PreimageArg::Paper {
            a.paper_time_limit
        } else {
            a.fast_time_limit
        };
        by_model[*mi].push(WorkerTask::Preimages(RobustnessJob {
            model: a.models[*mi].clone(),
            data: a.data.clone(),
            id: key.1,
            eps_text: key.2.clone(),
            opts: SynthOpts {
                preimage,
                time_limit: limit,
                chi_max: a.chi_max,
                ..SynthOpts::default()
            },
            accuracy: false,
            chi: None,
            reused_preimage_seconds: None,
            out: None,
        }));
    }
    for tasks in by_model {
        run_pool(tasks, jobs, a.pool.timeout, &a.pool.out)?;
    }
    let recs = read_model_records(&a.pool.out)?;
    let mut report = Vec::new();
    for m in &a.models {
        let name = path_text(m);
        let mine: Vec<certquant::bench::EngineRecord> = recs
            .iter()
            .filter(|(model, r)| {
                *model == name
                    && wanted.contains(&(model.clone(), r.id, r.eps_text.clone(), r.engine.clone()))
            })
            .map(|(_, r)| r.clone())
            .collect();
        report.push((name, mine));
    }
    report::preimages(&report, a.pool.target())
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
