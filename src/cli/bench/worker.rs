//! The seam between the bench pool and its workers: the pool sends a [`WorkerTask`] as JSON
//! on the stdin of `certquant worker` (a hidden subcommand), which runs it in-process with
//! the functions behind `synth robustness` and `synth backdoor` and prints one
//! [`WorkerRecord`] as a JSON line on stdout.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use certquant::spec::{Trigger, parse_eps};

use super::super::SynthOpts;
use super::super::backdoor::{self, BackdoorArgs, SprtArgs};
use super::super::common::{Outcome, error_text};
use super::super::synth::{self, RobustnessRequest, SoundnessBug};
use super::record::{
    BackdoorRecord, BenchFields, Finished, RobustnessRecord, Stop, StoppedBackdoor,
    StoppedRobustness, WorkerRecord,
};

/// One bench task, as the pool sends it to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WorkerTask {
    /// A `bench robustness` task (Algorithm 1 on one input and radius).
    Robustness(RobustnessJob),
    /// A `bench preimages` task: the same, recorded with its engine.
    Preimages(RobustnessJob),
    /// A `bench backdoor` task (Algorithm 2 for one trigger and target).
    Backdoor(BackdoorJob),
}

/// What a robustness task runs on and with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessJob {
    /// ONNX model, as given on the bench's command line.
    pub model: PathBuf,
    /// IDX directory or .npy file.
    pub data: PathBuf,
    /// Input id.
    pub id: usize,
    /// Radius as given (e.g. `2/255`).
    pub eps_text: String,
    /// Synthesis options.
    pub opts: SynthOpts,
    /// Also measure the QNN's accuracy on the whole data set.
    pub accuracy: bool,
    /// χ per hidden layer from an earlier run (`--preimages-from`): step 1 is skipped.
    pub chi: Option<Vec<f64>>,
    /// The preimage seconds of the run `chi` came from (recorded, not used).
    pub reused_preimage_seconds: Option<f64>,
    /// Keep the QNN and certificate of a certified task here.
    pub out: Option<PathBuf>,
}

/// What a backdoor task runs on and with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorJob {
    /// ONNX model, as given on the bench's command line.
    pub model: PathBuf,
    /// Labelled test images.
    pub data: PathBuf,
    /// Target class.
    pub target: usize,
    /// The trigger.
    pub trigger: Trigger,
    /// The test's parameters and image draws.
    pub sprt: SprtArgs,
    /// Synthesis options.
    pub opts: SynthOpts,
    /// Keep the QNN and certificate of a certified task here.
    pub out: Option<PathBuf>,
}

impl WorkerTask {
    /// The model file of the task.
    pub fn model(&self) -> &Path {
        match self {
            WorkerTask::Robustness(j) | WorkerTask::Preimages(j) => &j.model,
            WorkerTask::Backdoor(j) => &j.model,
        }
    }

    /// The bench's fields of the task's record (wall-clock seconds still 0).
    fn bench_fields(&self) -> BenchFields {
        BenchFields {
            wall_seconds: 0.0,
            model: Some(self.model().display().to_string()),
            reused_preimage_seconds: match self {
                WorkerTask::Robustness(j) | WorkerTask::Preimages(j) => j.reused_preimage_seconds,
                WorkerTask::Backdoor(_) => None,
            },
        }
    }

    /// The record of the task when it has no report: its key, `status` and `error`.
    pub fn stopped(&self, status: Stop, error: Option<String>) -> WorkerRecord {
        let bench = self.bench_fields();
        match self {
            WorkerTask::Robustness(j) | WorkerTask::Preimages(j) => {
                let preimages = matches!(self, WorkerTask::Preimages(_));
                WorkerRecord::Robustness(RobustnessRecord::Stopped(StoppedRobustness {
                    status,
                    id: j.id,
                    eps_text: j.eps_text.clone(),
                    eps: if preimages {
                        None
                    } else {
                        parse_eps(&j.eps_text).ok()
                    },
                    engine: preimages.then_some(j.opts.preimage),
                    error,
                    bench,
                }))
            }
            WorkerTask::Backdoor(j) => {
                WorkerRecord::Backdoor(BackdoorRecord::Stopped(StoppedBackdoor {
                    status,
                    target: j.target,
                    trigger: j.trigger,
                    error,
                    bench,
                }))
            }
        }
    }

    /// Runs the task in this process. A failure is recorded as such: `soundness-bug` when an
    /// attack contradicted a certified result, else `error` with the message.
    pub fn run(&self) -> WorkerRecord {
        let bench = self.bench_fields();
        let result = match self {
            WorkerTask::Robustness(j) | WorkerTask::Preimages(j) => {
                synth::run_request(&RobustnessRequest {
                    model: &j.model,
                    data: &j.data,
                    id: j.id,
                    eps: &j.eps_text,
                    opts: &j.opts,
                    chi: j.chi.as_deref(),
                    accuracy: j.accuracy,
                    out: j.out.as_deref(),
                })
                .map(|(report, _)| {
                    WorkerRecord::Robustness(RobustnessRecord::Finished(Box::new(Finished {
                        report,
                        bench,
                    })))
                })
            }
            WorkerTask::Backdoor(j) => {
                let args = BackdoorArgs {
                    target: j.target,
                    trigger_size: j.trigger.size,
                    trigger_pos: format!("{},{}", j.trigger.row, j.trigger.col),
                    timeout: None,
                    sprt: j.sprt.clone(),
                };
                backdoor::run_request(
                    &j.model,
                    &j.data,
                    &args,
                    &j.opts,
                    j.out.as_deref(),
                    &mut |_, _| {},
                )
                .map(|(report, _)| {
                    WorkerRecord::Backdoor(BackdoorRecord::Finished(Box::new(Finished {
                        report,
                        bench,
                    })))
                })
            }
        };
        result.unwrap_or_else(|e| self.failed(&e))
    }

    /// The record of the task when running it failed with `e`.
    fn failed(&self, e: &anyhow::Error) -> WorkerRecord {
        let status = if e.downcast_ref::<SoundnessBug>().is_some() {
            Stop::SoundnessBug
        } else {
            Stop::Error
        };
        self.stopped(status, Some(error_text(e)))
    }
}

/// `certquant worker`: reads one [`WorkerTask`] from stdin, runs it and prints its record.
pub fn worker() -> Result<Outcome> {
    orphan_watchdog();
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the worker task from stdin")?;
    let task: WorkerTask = serde_json::from_str(&text).context("invalid worker task on stdin")?;
    println!("{}", task.run().to_line()?);
    Ok(Outcome::Proven)
}

/// A worker exits when its parent bench process dies (e.g. `kill -9`), instead of running on
/// as an orphan.
fn orphan_watchdog() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(500));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(3);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_job() -> RobustnessJob {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        RobustnessJob {
            model: root.join("assets/demo/fashion_mlp.onnx"),
            data: root.join("assets/demo"),
            id: 0,
            eps_text: "1/255".into(),
            opts: SynthOpts::default(),
            accuracy: false,
            chi: None,
            reused_preimage_seconds: None,
            out: None,
        }
    }

    #[test]
    fn tasks_round_trip_through_json() {
        let mut j = demo_job();
        j.opts.chi_max = 0.1 + 0.2;
        j.opts.time_limit = Some(1.0 / 3.0);
        j.chi = Some(vec![std::f64::consts::PI, 1e-300]);
        let bd = BackdoorJob {
            model: j.model.clone(),
            data: j.data.clone(),
            target: 4,
            trigger: Trigger {
                row: 10,
                col: 10,
                size: 3,
            },
            sprt: SprtArgs {
                k: 2,
                theta: 0.9,
                chi_threshold: 0.01,
                type1: 0.05,
                type2: 0.05,
                delta: 0.05,
                seed: 1,
                max_rounds: 10,
                no_screen: true,
            },
            opts: SynthOpts::default(),
            out: Some("x/y".into()),
        };
        for t in [
            WorkerTask::Robustness(j.clone()),
            WorkerTask::Preimages(j),
            WorkerTask::Backdoor(bd),
        ] {
            let text = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<WorkerTask>(&text).unwrap(), t);
        }
    }

    #[test]
    fn stopped_records_carry_the_task_key() {
        let mut j = demo_job();
        j.reused_preimage_seconds = Some(2.5);
        let r = WorkerTask::Robustness(j.clone()).stopped(Stop::Timeout, None);
        assert_eq!(
            r.to_line().unwrap(),
            format!(
                r#"{{"eps":{},"eps_text":"1/255","id":0,"model":"{}","reused_preimage_seconds":2.5,"status":"timeout","wall_seconds":0.0}}"#,
                1.0 / 255.0,
                j.model.display()
            )
        );
        j.opts.preimage = crate::cli::PreimageArg::Paper;
        let r = WorkerTask::Preimages(j).stopped(Stop::Error, Some("error: x".into()));
        let v: serde_json::Value = serde_json::from_str(&r.to_line().unwrap()).unwrap();
        assert_eq!(v["engine"], "paper");
        assert_eq!(v["error"], "error: x");
        assert!(v.get("eps").is_none());
    }

    #[test]
    fn a_failing_task_is_an_error_record() {
        let mut j = demo_job();
        j.id = 1_000_000;
        let r = WorkerTask::Robustness(j).run();
        assert_eq!(r.status(), certquant::bench::TaskStatus::Error);
        let v: serde_json::Value = serde_json::from_str(&r.to_line().unwrap()).unwrap();
        assert!(v["error"].as_str().unwrap().contains("out of range"), "{v}");
    }

    #[test]
    fn a_soundness_bug_is_recorded_by_the_worker() {
        let e: anyhow::Error = SoundnessBug("test".into()).into();
        let r = WorkerTask::Robustness(demo_job()).failed(&e);
        assert_eq!(r.status(), certquant::bench::TaskStatus::SoundnessBug);
        let v: serde_json::Value = serde_json::from_str(&r.to_line().unwrap()).unwrap();
        assert_eq!(v["status"], "soundness-bug");
        assert_eq!(v["error"], "error: SOUNDNESS BUG: test");
        // other errors mentioning the words are not soundness bugs
        let e = anyhow::anyhow!("SOUNDNESS BUG in a file name");
        let r = WorkerTask::Robustness(demo_job()).failed(&e);
        assert_eq!(r.status(), certquant::bench::TaskStatus::Error);
    }
}
