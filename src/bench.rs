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
    let mut done = HashSet::new();
    let mut recs = Vec::new();
    if !path.exists() {
        return Ok((done, recs));
    }
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.display().to_string(),
        source,
    })?;
    for line in text.lines() {
        if let Ok(r) = serde_json::from_str::<TaskRecord>(line) {
            done.insert((r.id, r.eps_text.clone()));
            recs.push(r);
        }
    }
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
    let pre: Vec<f64> = ran.iter().map(|r| r.preimage_seconds).collect();
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
