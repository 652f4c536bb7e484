//! The typed record of one bench task: a JSON line of the `--out` file.
//!
//! A task that ran to the end is recorded as its worker's report (what `synth robustness
//! --json` or `synth backdoor --json` prints) plus the bench's fields; a task without a report
//! (timeout, error, soundness bug) as its key, the status and the reason. The lines keep the
//! field names and status strings of the files in `bench-results/`, and are written with
//! their keys sorted, as before the records were typed.

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};

use certquant::bench::TaskStatus;
use certquant::spec::Trigger;

use super::super::PreimageArg;
use super::super::backdoor::BackdoorReport;
use super::super::synth::RobustnessReport;

/// Why a task has no report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// The pool's per-task wall-clock limit expired and the worker was killed.
    Timeout,
    /// The worker failed or died without a record.
    Error,
    /// An attack found a counterexample to a certified result (set by the worker).
    SoundnessBug,
}

impl From<Stop> for TaskStatus {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Timeout => TaskStatus::Timeout,
            Stop::Error => TaskStatus::Error,
            Stop::SoundnessBug => TaskStatus::SoundnessBug,
        }
    }
}

/// The fields the bench adds to every record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchFields {
    /// Wall-clock seconds of the worker process, start to end (set by the pool).
    #[serde(default)]
    pub wall_seconds: f64,
    /// The model file as given on the bench's command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// With `--preimages-from`: the preimage seconds of the run the χ came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_preimage_seconds: Option<f64>,
}

/// A task that ran to the end: the worker's report and the bench's fields (one flat object).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished<R> {
    /// The report of the synthesis command.
    #[serde(flatten)]
    pub report: R,
    /// The bench's fields.
    #[serde(flatten)]
    pub bench: BenchFields,
}

/// A robustness task (`bench robustness` or `bench preimages`) without a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedRobustness {
    /// Why it stopped.
    pub status: Stop,
    /// Input id.
    pub id: usize,
    /// Radius as given.
    pub eps_text: String,
    /// The radius (`bench robustness` records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// The preimage engine (`bench preimages` records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<PreimageArg>,
    /// What went wrong (errors and soundness bugs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The bench's fields.
    #[serde(flatten)]
    pub bench: BenchFields,
}

/// A backdoor task without a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedBackdoor {
    /// Why it stopped.
    pub status: Stop,
    /// Target class.
    pub target: usize,
    /// The trigger.
    pub trigger: Trigger,
    /// What went wrong (errors and soundness bugs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The bench's fields.
    #[serde(flatten)]
    pub bench: BenchFields,
}

/// One line of a `bench robustness` or `bench preimages` results file.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RobustnessRecord {
    /// The task ran: Algorithm 1's report.
    Finished(Box<Finished<RobustnessReport>>),
    /// The task has no report.
    Stopped(StoppedRobustness),
}

/// One line of a `bench backdoor` results file.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BackdoorRecord {
    /// The task ran: Algorithm 2's report.
    Finished(Box<Finished<BackdoorReport>>),
    /// The task has no report.
    Stopped(StoppedBackdoor),
}

/// Reads `v` as a report when it has the report's `marker` field, else as a stopped task; a
/// line that is neither fails with the reason (no silent fallback from one to the other).
fn by_marker<'de, D, F, S>(d: D, marker: &str) -> Result<Result<F, S>, D::Error>
where
    D: Deserializer<'de>,
    F: serde::de::DeserializeOwned,
    S: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    let v = serde_json::Value::deserialize(d)?;
    if v.get(marker).is_some() {
        serde_json::from_value(v).map(Ok).map_err(D::Error::custom)
    } else {
        serde_json::from_value(v).map(Err).map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for RobustnessRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match by_marker(d, "label")? {
            Ok(f) => RobustnessRecord::Finished(Box::new(f)),
            Err(s) => RobustnessRecord::Stopped(s),
        })
    }
}

impl<'de> Deserialize<'de> for BackdoorRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match by_marker(d, "rounds")? {
            Ok(f) => BackdoorRecord::Finished(Box::new(f)),
            Err(s) => BackdoorRecord::Stopped(s),
        })
    }
}

impl RobustnessRecord {
    /// The task's status.
    pub fn status(&self) -> TaskStatus {
        match self {
            RobustnessRecord::Finished(f) => f.report.status.into(),
            RobustnessRecord::Stopped(s) => s.status.into(),
        }
    }

    /// The bench's fields.
    pub fn bench(&self) -> &BenchFields {
        match self {
            RobustnessRecord::Finished(f) => &f.bench,
            RobustnessRecord::Stopped(s) => &s.bench,
        }
    }

    /// The task's (input id, radius text).
    pub fn key(&self) -> (usize, &str) {
        match self {
            RobustnessRecord::Finished(f) => (f.report.id, &f.report.eps_text),
            RobustnessRecord::Stopped(s) => (s.id, &s.eps_text),
        }
    }
}

impl BackdoorRecord {
    /// The task's status.
    pub fn status(&self) -> TaskStatus {
        match self {
            BackdoorRecord::Finished(f) => f.report.status.into(),
            BackdoorRecord::Stopped(s) => s.status.into(),
        }
    }
}

/// The record a worker prints and the pool appends to `--out`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum WorkerRecord {
    /// Of a robustness or preimages task.
    Robustness(RobustnessRecord),
    /// Of a backdoor task.
    Backdoor(BackdoorRecord),
}

impl WorkerRecord {
    /// The task's status.
    pub fn status(&self) -> TaskStatus {
        match self {
            WorkerRecord::Robustness(r) => r.status(),
            WorkerRecord::Backdoor(r) => r.status(),
        }
    }

    /// The bench's fields, to complete.
    pub fn bench_mut(&mut self) -> &mut BenchFields {
        match self {
            WorkerRecord::Robustness(RobustnessRecord::Finished(f)) => &mut f.bench,
            WorkerRecord::Robustness(RobustnessRecord::Stopped(s)) => &mut s.bench,
            WorkerRecord::Backdoor(BackdoorRecord::Finished(f)) => &mut f.bench,
            WorkerRecord::Backdoor(BackdoorRecord::Stopped(s)) => &mut s.bench,
        }
    }

    /// The JSON line of the record, keys sorted (the format of the existing results files).
    pub fn to_line(&self) -> Result<String> {
        Ok(serde_json::to_value(self)?.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use certquant::synth::SynthStatus;

    fn results(file: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench-results/2026-11-27")
            .join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Every line of `file` reads as `T` and writes back to the same JSON object.
    fn round_trips<T, W>(file: &str, wrap: W) -> Vec<T>
    where
        T: serde::de::DeserializeOwned + Clone,
        W: Fn(T) -> WorkerRecord,
    {
        let text = results(file);
        let mut recs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let rec: T =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 1));
            let back = wrap(rec.clone()).to_line().unwrap();
            let (a, b): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(line).unwrap(),
                serde_json::from_str(&back).unwrap(),
            );
            assert_eq!(a, b, "{file}:{}", n + 1);
            assert_eq!(back, a.to_string(), "{file}:{}: same line", n + 1);
            recs.push(rec);
        }
        assert!(!recs.is_empty(), "{file}");
        recs
    }

    #[test]
    fn robustness_results_read_and_write_back_unchanged() {
        let recs = round_trips("table2_mp1_strict.jsonl", WorkerRecord::Robustness);
        let RobustnessRecord::Finished(f) = &recs[0] else {
            panic!("a finished task")
        };
        assert_eq!(f.report.status, SynthStatus::Certified);
        assert_eq!((f.report.id, f.report.eps_text.as_str()), (5346, "1/255"));
        assert_eq!(f.report.layers.len(), 2);
        assert_eq!(
            f.bench.model.as_deref(),
            Some("../shared/models/quadapter/mnist_1blk_100.onnx")
        );
        let mp2 = round_trips("table2_mp2_strict.jsonl", WorkerRecord::Robustness);
        assert!(mp2.iter().any(|r| r.status() == TaskStatus::Unknown));
        // the relaxed rows carry the reused preimages' seconds
        let relaxed = round_trips(
            "session3/table2/mp1_relaxed.jsonl",
            WorkerRecord::Robustness,
        );
        assert!(
            relaxed
                .iter()
                .any(|r| r.bench().reused_preimage_seconds.is_some())
        );
    }

    #[test]
    fn backdoor_results_read_and_write_back_unchanged() {
        let recs = round_trips("backdoor_mp1_3x3.jsonl", WorkerRecord::Backdoor);
        let BackdoorRecord::Finished(f) = &recs[0] else {
            panic!("a finished task")
        };
        assert_eq!(TaskStatus::from(f.report.status), TaskStatus::Certified);
        assert_eq!((f.report.target, f.report.trigger.size), (0, 3));
        assert!(f.bench.wall_seconds > 0.0);
    }

    #[test]
    fn preimages_results_read_and_write_back_unchanged() {
        let recs = round_trips("preimages_small.jsonl", WorkerRecord::Robustness);
        let engines: Vec<PreimageArg> = recs
            .iter()
            .filter_map(|r| match r {
                RobustnessRecord::Finished(f) => Some(f.report.engine),
                RobustnessRecord::Stopped(_) => None,
            })
            .collect();
        assert!(engines.contains(&PreimageArg::Fast) && engines.contains(&PreimageArg::Paper));
    }

    /// The `.jsonl` files under `dir`, relative to `root`, recursively.
    fn jsonl_files(root: &std::path::Path, dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                jsonl_files(root, &p, found);
            } else if p.extension().is_some_and(|e| e == "jsonl") {
                let rel = p.strip_prefix(root).unwrap();
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }

    #[test]
    fn every_results_file_reads_and_writes_back_unchanged() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results/2026-11-27");
        let mut files = Vec::new();
        jsonl_files(&root, &root, &mut files);
        assert!(files.len() >= 30, "{files:?}");
        for name in files {
            let base = name.rsplit('/').next().unwrap_or(&name);
            if base.starts_with("backdoor") {
                let recs = round_trips(&name, WorkerRecord::Backdoor);
                assert!(
                    recs.iter()
                        .all(|r| matches!(r, BackdoorRecord::Finished(_)))
                );
            } else {
                let recs = round_trips(&name, WorkerRecord::Robustness);
                assert!(
                    recs.iter()
                        .all(|r| matches!(r, RobustnessRecord::Finished(_)))
                );
            }
        }
    }

    #[test]
    fn stopped_records_keep_the_old_shape() {
        // the lines the pool wrote for a timeout, an error and a crash before typed records
        for line in [
            r#"{"eps":0.00392156862745098,"eps_text":"1/255","id":3,"model":"m.onnx","status":"timeout","wall_seconds":0.05}"#,
            r#"{"eps":0.00392156862745098,"eps_text":"1/255","id":3,"model":"m.onnx","reused_preimage_seconds":1.5,"status":"timeout","wall_seconds":0.05}"#,
            r#"{"engine":"paper","eps_text":"2/255","id":7,"model":"m.onnx","status":"timeout","wall_seconds":60.0}"#,
            r#"{"eps":0.00784313725490196,"eps_text":"2/255","error":"error: SOUNDNESS BUG: x","id":1,"model":"m.onnx","status":"soundness-bug","wall_seconds":1.25}"#,
        ] {
            let r: RobustnessRecord = serde_json::from_str(line).unwrap();
            assert!(matches!(r, RobustnessRecord::Stopped(_)), "{line}");
            assert_eq!(WorkerRecord::Robustness(r).to_line().unwrap(), line);
        }
        let line = r#"{"error":"error: boom","model":"m.onnx","status":"error","target":3,"trigger":{"col":1,"row":1,"size":3},"wall_seconds":0.5}"#;
        let r: BackdoorRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.status(), TaskStatus::Error);
        assert_eq!(WorkerRecord::Backdoor(r).to_line().unwrap(), line);
        // a report with a wrong field is an error, not silently a stopped task
        let bad = results("table2_mp1_strict.jsonl")
            .lines()
            .next()
            .unwrap()
            .replace(r#""label":3"#, r#""label":"three""#);
        assert!(serde_json::from_str::<RobustnessRecord>(&bad).is_err());
    }
}
