//! Benchmark bookkeeping: task lists, JSONL records, resume, and the Table-2 style summary.
//!
//! One task = one (input id, eps). Each finished task is one JSON line (the object printed by
//! `synth robustness --json`, plus `model`); a summary aggregates them as the paper's Table 2
//! does: #S / #F over tasks whose float network DeepPoly proves (`property-fails` tasks are left
//! out, as in the paper), average total bits per layer and QNN accuracy over certified tasks,
//! and mean and median preimage and quantization seconds.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors of the benchmark bookkeeping.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A list or file of ids could not be read or parsed.
    #[error("invalid id list {0}")]
    Ids(String),
    /// I/O on the results file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Status of a bench task: the method's answer when the task ran to the end, or what stopped
/// it. Serialised as the `status` strings of the JSONL records (`certified`, `unknown`,
/// `property-fails`, `h1-rejected`, `timeout`, `error`, `soundness-bug`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    /// A strategy was found and proven.
    Certified,
    /// Algorithm 1 or 2 found no strategy in range.
    Unknown,
    /// DeepPoly cannot prove the float network (left out of #S/#F, as in the paper).
    PropertyFails,
    /// Algorithm 2: the test accepted H1 (a backdoor may exist).
    H1Rejected,
    /// The task hit a time limit (the bench's per-task limit, or the method's own).
    Timeout,
    /// The worker failed (bad input, crash, …); the record's `error` says why.
    Error,
    /// An attack found a concrete counterexample to a certified result.
    SoundnessBug,
}

impl TaskStatus {
    /// The status string of the records.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Certified => "certified",
            TaskStatus::Unknown => "unknown",
            TaskStatus::PropertyFails => "property-fails",
            TaskStatus::H1Rejected => "h1-rejected",
            TaskStatus::Timeout => "timeout",
            TaskStatus::Error => "error",
            TaskStatus::SoundnessBug => "soundness-bug",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<crate::synth::SynthStatus> for TaskStatus {
    fn from(s: crate::synth::SynthStatus) -> Self {
        use crate::synth::SynthStatus as S;
        match s {
            S::Certified => TaskStatus::Certified,
            S::Unknown => TaskStatus::Unknown,
            S::PropertyFails => TaskStatus::PropertyFails,
            S::Timeout => TaskStatus::Timeout,
        }
    }
}

impl From<crate::backdoor::BackdoorStatus> for TaskStatus {
    fn from(s: crate::backdoor::BackdoorStatus) -> Self {
        use crate::backdoor::BackdoorStatus as S;
        match s {
            S::Certified => TaskStatus::Certified,
            S::Unknown => TaskStatus::Unknown,
            S::H1Rejected => TaskStatus::H1Rejected,
            S::Timeout => TaskStatus::Timeout,
        }
    }
}

/// Parses `--ids`: an existing file of ids (separated by white space or commas) or a
/// comma-separated list.
pub fn parse_ids(arg: &str) -> Result<Vec<usize>, BenchError> {
    let p = Path::new(arg);
    let text = if p.is_file() {
        std::fs::read_to_string(p).map_err(|e| BenchError::Ids(format!("{arg}: {e}")))?
    } else {
        arg.to_string()
    };
    let ids: Result<Vec<usize>, _> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<usize>()
                .map_err(|_| BenchError::Ids(format!("{arg}: {t:?} is not an id")))
        })
        .collect();
    let ids = ids?;
    if ids.is_empty() {
        return Err(BenchError::Ids(format!("{arg}: no ids")));
    }
    Ok(ids)
}

/// The part of a task's JSON line the summary needs (other fields are kept in the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    /// `certified`, `unknown`, `property-fails`, `timeout` or `error`.
    pub status: String,
    /// Input id.
    pub id: usize,
    /// Radius as given (e.g. `2/255`).
    pub eps_text: String,
    /// Accepted configs.
    #[serde(default)]
    pub layers: Vec<LayerBits>,
    /// χ per hidden layer.
    #[serde(default)]
    pub chi: Vec<f64>,
    /// Preimage seconds.
    #[serde(default)]
    pub preimage_seconds: f64,
    /// Quantization seconds.
    #[serde(default)]
    pub quantize_seconds: f64,
    /// QNN accuracy.
    #[serde(default)]
    pub qnn_accuracy: Option<f64>,
    /// Wall-clock seconds of the whole task (set by the bench).
    #[serde(default)]
    pub wall_seconds: f64,
    /// With `--attack`: whether a concrete counterexample was found.
    #[serde(default)]
    pub attack_counterexample: Option<bool>,
    /// With `--preimages-from`: the preimage seconds of the run the χ came from.
    #[serde(default)]
    pub reused_preimage_seconds: Option<f64>,
}

/// Bits of one layer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LayerBits {
    /// Q.
    pub total: u32,
    /// F.
    pub frac: u32,
}

/// Keys (id, eps text) of finished tasks.
pub type TaskKeys = HashSet<(usize, String)>;

/// Reads the (id, eps) pairs already present in a JSONL results file (for `--resume`).
/// Lines that do not parse (e.g. cut by a kill) are ignored and the task is redone.
pub fn done_tasks(path: &Path) -> Result<(TaskKeys, Vec<TaskRecord>), BenchError> {
    let recs: Vec<TaskRecord> = read_jsonl(path)?;
    let done = recs.iter().map(|r| (r.id, r.eps_text.clone())).collect();
    Ok((done, recs))
}

/// Table-2 style aggregate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Tasks recorded.
    pub tasks: usize,
    /// Certified (#S).
    pub certified: usize,
    /// Not certified (#F): unknown + timeout + error, over tasks whose float net is proven.
    pub not_certified: usize,
    /// Of which timeouts.
    pub timeouts: usize,
    /// Of which errors.
    pub errors: usize,
    /// Left out: DeepPoly cannot prove the float network.
    pub property_fails: usize,
    /// Average total bits per affine layer over certified tasks, input side first.
    pub avg_bits: Vec<f64>,
    /// Average fractional bits per layer over certified tasks.
    pub avg_frac: Vec<f64>,
    /// Average QNN accuracy over certified tasks (if recorded).
    pub avg_qnn_accuracy: Option<f64>,
    /// Tasks whose preimages were reused (`--preimages-from`); their preimage seconds below
    /// are those of the run the χ came from.
    #[serde(default)]
    pub reused_preimages: usize,
    /// Mean preimage seconds over tasks that ran synthesis.
    pub mean_preimage_seconds: f64,
    /// Median preimage seconds.
    pub median_preimage_seconds: f64,
    /// Mean quantization seconds.
    pub mean_quantize_seconds: f64,
    /// Median quantization seconds.
    pub median_quantize_seconds: f64,
    /// Median wall-clock seconds per task.
    pub median_wall_seconds: f64,
    /// Tasks attacked (with `--attack`).
    pub attacked: usize,
    /// Unknown tasks with a real counterexample (the method's answer was right to fail).
    pub unknown_with_counterexample: usize,
}

/// Median of a sample (mean of the two middle values for even sizes; 0 for none).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Aggregates task records.
pub fn summarize(recs: &[TaskRecord]) -> Summary {
    let certified: Vec<&TaskRecord> = recs.iter().filter(|r| r.status == "certified").collect();
    let count = |s: &str| recs.iter().filter(|r| r.status == s).count();
    let depth = certified.iter().map(|r| r.layers.len()).max().unwrap_or(0);
    let avg = |f: &dyn Fn(&LayerBits) -> u32| -> Vec<f64> {
        (0..depth)
            .map(|i| {
                let v: Vec<f64> = certified
                    .iter()
                    .filter_map(|r| r.layers.get(i).map(|l| f(l) as f64))
                    .collect();
                mean(&v)
            })
            .collect()
    };
    let ran: Vec<&TaskRecord> = recs
        .iter()
        .filter(|r| r.status == "certified" || r.status == "unknown")
        .collect();
    let pre: Vec<f64> = ran
        .iter()
        .map(|r| r.reused_preimage_seconds.unwrap_or(r.preimage_seconds))
        .collect();
    let qua: Vec<f64> = ran.iter().map(|r| r.quantize_seconds).collect();
    let wall: Vec<f64> = recs.iter().map(|r| r.wall_seconds).collect();
    let accs: Vec<f64> = certified.iter().filter_map(|r| r.qnn_accuracy).collect();
    let timeouts = count("timeout");
    let errors = count("error");
    Summary {
        tasks: recs.len(),
        certified: certified.len(),
        not_certified: count("unknown") + timeouts + errors,
        timeouts,
        errors,
        property_fails: count("property-fails"),
        reused_preimages: ran
            .iter()
            .filter(|r| r.reused_preimage_seconds.is_some())
            .count(),
        avg_bits: avg(&|l| l.total),
        avg_frac: avg(&|l| l.frac),
        avg_qnn_accuracy: (!accs.is_empty()).then(|| mean(&accs)),
        mean_preimage_seconds: mean(&pre),
        median_preimage_seconds: median(&pre),
        mean_quantize_seconds: mean(&qua),
        median_quantize_seconds: median(&qua),
        median_wall_seconds: median(&wall),
        attacked: recs
            .iter()
            .filter(|r| r.attack_counterexample.is_some())
            .count(),
        unknown_with_counterexample: recs
            .iter()
            .filter(|r| r.status == "unknown" && r.attack_counterexample == Some(true))
            .count(),
    }
}

/// The part of a backdoor task's JSON line (`synth backdoor --json`) the summary needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackdoorRecord {
    /// `certified`, `h1-rejected`, `unknown`, `timeout`, `error` or `soundness-bug`.
    pub status: String,
    /// Target class.
    pub target: usize,
    /// The trigger.
    pub trigger: crate::spec::Trigger,
    /// SPRT rounds.
    #[serde(default)]
    pub rounds: usize,
    /// Successful rounds.
    #[serde(default)]
    pub successes: usize,
    /// Accepted configs.
    #[serde(default)]
    pub layers: Vec<LayerBits>,
    /// QNN accuracy.
    #[serde(default)]
    pub qnn_accuracy: Option<f64>,
    /// Seconds of the task as measured by the worker.
    #[serde(default)]
    pub seconds: f64,
    /// Wall-clock seconds (set by the bench).
    #[serde(default)]
    pub wall_seconds: f64,
}

/// Key of a backdoor task: (target, row, col, size).
pub type BackdoorKey = (usize, usize, usize, usize);

impl BackdoorRecord {
    /// The task's key.
    pub fn key(&self) -> BackdoorKey {
        (
            self.target,
            self.trigger.row,
            self.trigger.col,
            self.trigger.size,
        )
    }
}

/// Reads the finished backdoor tasks of a JSONL file (for `--resume` and the summary).
pub fn done_backdoor_tasks(path: &Path) -> Result<Vec<BackdoorRecord>, BenchError> {
    read_jsonl(path)
}

/// The lines of a JSONL results file that parse as `T` (a line cut by a kill does not, and
/// its task is redone); an absent file has none.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, BenchError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<T>(l).ok())
        .collect())
}

/// Fig.-4 style aggregate of backdoor tasks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackdoorSummary {
    /// Tasks recorded.
    pub tasks: usize,
    /// Certified (#S): H0 and a shared strategy.
    pub certified: usize,
    /// Not certified (#F): H0 accepted but no strategy in range.
    pub unknown: usize,
    /// The test accepted H1 (a backdoor may exist).
    pub h1_rejected: usize,
    /// Undecided within the limits.
    pub timeouts: usize,
    /// Errors (including soundness bugs).
    pub errors: usize,
    /// Average total bits per affine layer over certified tasks.
    pub avg_bits: Vec<f64>,
    /// Average QNN accuracy over certified tasks.
    pub avg_qnn_accuracy: Option<f64>,
    /// Mean task seconds (tasks that finished).
    pub mean_seconds: f64,
    /// Median task seconds.
    pub median_seconds: f64,
    /// Mean SPRT rounds.
    pub mean_rounds: f64,
}

/// Aggregates backdoor task records.
pub fn summarize_backdoor(recs: &[BackdoorRecord]) -> BackdoorSummary {
    let count = |s: &str| recs.iter().filter(|r| r.status == s).count();
    let certified: Vec<&BackdoorRecord> = recs.iter().filter(|r| r.status == "certified").collect();
    let depth = certified.iter().map(|r| r.layers.len()).max().unwrap_or(0);
    let avg_bits = (0..depth)
        .map(|i| {
            let v: Vec<f64> = certified
                .iter()
                .filter_map(|r| r.layers.get(i).map(|l| l.total as f64))
                .collect();
            mean(&v)
        })
        .collect();
    let accs: Vec<f64> = certified.iter().filter_map(|r| r.qnn_accuracy).collect();
    let finished: Vec<&BackdoorRecord> = recs
        .iter()
        .filter(|r| matches!(r.status.as_str(), "certified" | "unknown" | "h1-rejected"))
        .collect();
    let secs: Vec<f64> = finished.iter().map(|r| r.seconds).collect();
    let rounds: Vec<f64> = finished.iter().map(|r| r.rounds as f64).collect();
    BackdoorSummary {
        tasks: recs.len(),
        certified: certified.len(),
        unknown: count("unknown"),
        h1_rejected: count("h1-rejected"),
        timeouts: count("timeout"),
        errors: count("error") + count("soundness-bug"),
        avg_bits,
        avg_qnn_accuracy: (!accs.is_empty()).then(|| mean(&accs)),
        mean_seconds: mean(&secs),
        median_seconds: median(&secs),
        mean_rounds: mean(&rounds),
    }
}

/// One task of the engine comparison (`bench preimages`): a `synth robustness --json` line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineRecord {
    /// Task status.
    pub status: String,
    /// Input id.
    pub id: usize,
    /// Radius as given.
    pub eps_text: String,
    /// `fast` or `paper`.
    pub engine: String,
    /// χ per hidden layer.
    #[serde(default)]
    pub chi: Vec<f64>,
    /// How each χ was obtained (`optimal`, `capped`, `time-limit-bound`, `gap-bound`).
    #[serde(default)]
    pub chi_source: Vec<String>,
    /// Preimage seconds.
    #[serde(default)]
    pub preimage_seconds: f64,
}

/// The engine comparison of issue 4: medians, their ratio, and χ agreement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EngineComparison {
    /// Tasks (id, eps) with both engines recorded.
    pub pairs: usize,
    /// Median preimage seconds of the fast engine over those tasks.
    pub median_fast_seconds: f64,
    /// Median preimage seconds of the paper engine over those tasks (a time-limited solve
    /// counts with its time, so this is then a lower bound).
    pub median_paper_seconds: f64,
    /// `median_paper_seconds / median_fast_seconds`.
    pub ratio: f64,
    /// Pairs where some paper solve hit its time limit.
    pub paper_time_limited: usize,
    /// Layers compared: from the output side, while both engines are optimal or capped and
    /// every later layer agreed (otherwise the two solved different problems).
    pub layers_compared: usize,
    /// Largest relative difference `|χ_fast − χ_paper| / max(χ_paper, 1e-12)` over them.
    pub max_relative_difference: f64,
    /// Layers where the fast χ exceeds an optimal paper χ by more than 1e-4 relative (must
    /// be 0: the fast engine never claims more than the optimum).
    pub fast_above_paper: usize,
}

/// Pairs fast and paper records of the same (id, eps) and compares them.
pub fn compare_engines(recs: &[EngineRecord]) -> EngineComparison {
    use std::collections::HashMap;
    type Pair<'r> = (Option<&'r EngineRecord>, Option<&'r EngineRecord>);
    let mut by: HashMap<(usize, String), Pair<'_>> = HashMap::new();
    for r in recs {
        let e = by.entry((r.id, r.eps_text.clone())).or_default();
        match r.engine.as_str() {
            "fast" => e.0 = Some(r),
            "paper" => e.1 = Some(r),
            _ => {}
        }
    }
    let exact = |s: &str| s == "optimal" || s == "capped";
    let (mut fast, mut paper) = (Vec::new(), Vec::new());
    let (mut limited, mut compared, mut fast_above) = (0, 0, 0);
    let mut max_rel: f64 = 0.0;
    let mut keys: Vec<_> = by.keys().cloned().collect();
    keys.sort();
    for k in keys {
        let (Some(f), Some(p)) = by[&k] else { continue };
        fast.push(f.preimage_seconds);
        paper.push(p.preimage_seconds);
        if p.chi_source.iter().any(|s| s == "time-limit-bound") {
            limited += 1;
        }
        // Layer k's problem depends on the preimages after it, so layers are compared from the
        // output side and only while every later layer was compared and agreed: once one
        // engine stopped on a time limit, or the two differ, the earlier problems differ too.
        for i in (0..f.chi.len().min(p.chi.len())).rev() {
            let (cf, cp) = (f.chi[i], p.chi[i]);
            let both = f.chi_source.get(i).is_some_and(|s| exact(s))
                && p.chi_source.get(i).is_some_and(|s| exact(s));
            if !both {
                break;
            }
            compared += 1;
            let rel = (cf - cp).abs() / cp.abs().max(1e-12);
            max_rel = max_rel.max(rel);
            if cf > cp * (1.0 + 1e-4) + 1e-12 {
                fast_above += 1;
            }
            if rel > 1e-4 {
                break;
            }
        }
    }
    let (mf, mp) = (median(&fast), median(&paper));
    EngineComparison {
        pairs: fast.len(),
        median_fast_seconds: mf,
        median_paper_seconds: mp,
        ratio: if mf > 0.0 { mp / mf } else { 0.0 },
        paper_time_limited: limited,
        layers_compared: compared,
        max_relative_difference: max_rel,
        fast_above_paper: fast_above,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: &str, id: usize, bits: &[(u32, u32)], p: f64) -> TaskRecord {
        TaskRecord {
            status: status.into(),
            id,
            eps_text: "2/255".into(),
            layers: bits
                .iter()
                .map(|&(total, frac)| LayerBits { total, frac })
                .collect(),
            chi: vec![],
            preimage_seconds: p,
            quantize_seconds: p / 10.0,
            qnn_accuracy: (status == "certified").then_some(0.9),
            wall_seconds: p,
            attack_counterexample: None,
            reused_preimage_seconds: None,
        }
    }

    #[test]
    fn summary_follows_table_2_conventions() {
        let recs = vec![
            rec("certified", 1, &[(6, 4), (3, 1)], 2.0),
            rec("certified", 2, &[(8, 6), (5, 3)], 4.0),
            rec("unknown", 3, &[(6, 4)], 6.0),
            rec("property-fails", 4, &[], 0.0),
            rec("timeout", 5, &[], 0.0),
        ];
        let s = summarize(&recs);
        assert_eq!(
            (
                s.tasks,
                s.certified,
                s.not_certified,
                s.timeouts,
                s.property_fails
            ),
            (5, 2, 2, 1, 1)
        );
        assert_eq!(s.avg_bits, vec![7.0, 4.0]);
        assert_eq!(s.avg_frac, vec![5.0, 2.0]);
        assert_eq!(s.median_preimage_seconds, 4.0);
        assert_eq!(s.mean_preimage_seconds, 4.0);
        assert_eq!(s.avg_qnn_accuracy, Some(0.9));
        assert_eq!(s.reused_preimages, 0);
        // reused preimages count with the seconds of the run they came from
        let mut r = recs.clone();
        r[0].preimage_seconds = 0.0;
        r[0].reused_preimage_seconds = Some(2.0);
        let t = summarize(&r);
        assert_eq!(t.reused_preimages, 1);
        assert_eq!(t.mean_preimage_seconds, 4.0);
    }

    #[test]
    fn backdoor_summary() {
        let line = |status: &str, target: usize, bits: &str, secs: f64| {
            format!(
                r#"{{"status":"{status}","target":{target},"trigger":{{"row":1,"col":1,"size":3}},"rounds":12,"successes":12,"layers":{bits},"qnn_accuracy":0.9,"seconds":{secs}}}"#
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.jsonl");
        let text = [
            line(
                "certified",
                0,
                r#"[{"total":9,"frac":7},{"total":4,"frac":2}]"#,
                2.0,
            ),
            line(
                "certified",
                1,
                r#"[{"total":11,"frac":9},{"total":4,"frac":2}]"#,
                4.0,
            ),
            line("h1-rejected", 2, "[]", 9.0),
            r#"{"status":"timeout","target":3,"trigger":{"row":1,"col":1,"size":3}}"#.to_string(),
            "{\"status\":\"cert".to_string(),
        ]
        .join("\n");
        std::fs::write(&f, text).unwrap();
        let recs = done_backdoor_tasks(&f).unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[3].key(), (3, 1, 1, 3));
        let s = summarize_backdoor(&recs);
        assert_eq!(
            (s.tasks, s.certified, s.h1_rejected, s.timeouts),
            (4, 2, 1, 1)
        );
        assert_eq!(s.avg_bits, vec![10.0, 4.0]);
        assert_eq!(s.median_seconds, 4.0);
    }

    #[test]
    fn engine_comparison() {
        let r = |engine: &str, id: usize, chi: Vec<f64>, src: &[&str], s: f64| EngineRecord {
            status: "certified".into(),
            id,
            eps_text: "2/255".into(),
            engine: engine.into(),
            chi,
            chi_source: src.iter().map(|x| x.to_string()).collect(),
            preimage_seconds: s,
        };
        let recs = vec![
            r("fast", 1, vec![0.5, 1.0], &["optimal", "optimal"], 1.0),
            r(
                "paper",
                1,
                vec![0.50001, 1.0],
                &["optimal", "optimal"],
                10.0,
            ),
            r("fast", 2, vec![0.3], &["optimal"], 3.0),
            r("paper", 2, vec![0.2], &["time-limit-bound"], 60.0),
            r("fast", 3, vec![0.3], &["optimal"], 3.0), // unpaired
        ];
        let c = compare_engines(&recs);
        assert_eq!(
            (c.pairs, c.paper_time_limited, c.layers_compared),
            (2, 1, 2)
        );
        assert_eq!((c.median_fast_seconds, c.median_paper_seconds), (2.0, 35.0));
        assert_eq!(c.ratio, 17.5);
        assert!(c.max_relative_difference < 3e-5 && c.fast_above_paper == 0);
        let bad = vec![
            r("fast", 1, vec![0.6], &["optimal"], 1.0),
            r("paper", 1, vec![0.5], &["optimal"], 1.0),
        ];
        assert_eq!(compare_engines(&bad).fast_above_paper, 1);
        // a time-limited last layer makes the earlier layers' problems differ: not compared,
        // even where both say optimal (the paper's χ = 0 there answers another question)
        let other_problem = vec![
            r("fast", 1, vec![0.4, 0.7], &["optimal", "optimal"], 1.0),
            r(
                "paper",
                1,
                vec![0.0, 0.2],
                &["optimal", "time-limit-bound"],
                9.0,
            ),
        ];
        let c = compare_engines(&other_problem);
        assert_eq!((c.layers_compared, c.fast_above_paper), (0, 0));
        // agreement on the last layer lets the comparison go on to the one before
        let chain = vec![
            r("fast", 1, vec![0.3, 0.7, 2.0], &["optimal"; 3], 1.0),
            r(
                "paper",
                1,
                vec![0.1, 0.7, 2.0],
                &["time-limit-bound", "optimal", "optimal"],
                9.0,
            ),
        ];
        assert_eq!(compare_engines(&chain).layers_compared, 2);
    }

    #[test]
    fn task_status_strings_match_the_libraries() {
        use crate::backdoor::BackdoorStatus as B;
        use crate::synth::SynthStatus as S;
        for s in [S::Certified, S::Unknown, S::PropertyFails, S::Timeout] {
            let t = TaskStatus::from(s);
            assert_eq!(serde_json::to_value(s).unwrap(), t.as_str());
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for s in [B::Certified, B::Unknown, B::H1Rejected, B::Timeout] {
            let t = TaskStatus::from(s);
            assert_eq!(serde_json::to_value(s).unwrap(), t.as_str());
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in [TaskStatus::Error, TaskStatus::SoundnessBug] {
            let v = serde_json::to_value(t).unwrap();
            assert_eq!(v, t.as_str());
            assert_eq!(serde_json::from_value::<TaskStatus>(v).unwrap(), t);
        }
    }

    #[test]
    fn ids_from_list_and_file() {
        assert_eq!(parse_ids("3,1, 2").unwrap(), vec![3, 1, 2]);
        assert!(parse_ids("1,x").is_err());
        assert!(parse_ids("").is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ids.txt");
        std::fs::write(&f, "5 6\n7\n").unwrap();
        assert_eq!(parse_ids(f.to_str().unwrap()).unwrap(), vec![5, 6, 7]);
    }

    #[test]
    fn resume_reads_complete_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.jsonl");
        let line = serde_json::to_string(&rec("certified", 9, &[(4, 2)], 1.0)).unwrap();
        std::fs::write(&f, format!("{line}\n{{\"status\":\"cert")).unwrap();
        let (done, recs) = done_tasks(&f).unwrap();
        assert_eq!(recs.len(), 1);
        assert!(done.contains(&(9, "2/255".to_string())));
    }
}
