//! The bench pool: [`WorkerTask`]s on parallel worker processes (this binary's hidden
//! `worker` subcommand) with a wall-clock limit each, their typed records appended to the
//! results file as they finish.
//!
//! Worker processes give both parallelism (CBC is serialised by a global lock inside one
//! process) and hard per-task timeouts.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use certquant::bench::TaskStatus;

use super::super::common::progress;
use super::record::{BackdoorRecord, RobustnessRecord, Stop, WorkerRecord};
use super::worker::WorkerTask;

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

/// Reads a pipe to its end on a thread (so that a chatty worker never blocks on a full pipe).
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Reads a worker's stdout as the record of `task`'s kind.
fn parse_record(task: &WorkerTask, stdout: &[u8]) -> serde_json::Result<WorkerRecord> {
    match task {
        WorkerTask::Robustness(_) | WorkerTask::Preimages(_) => {
            serde_json::from_slice::<RobustnessRecord>(stdout).map(WorkerRecord::Robustness)
        }
        WorkerTask::Backdoor(_) => {
            serde_json::from_slice::<BackdoorRecord>(stdout).map(WorkerRecord::Backdoor)
        }
    }
}

/// Runs `task` in a worker process under a wall-clock `timeout` and returns its record, with
/// the process's wall-clock seconds. A worker killed on the limit gives a `timeout` record, one
/// that ends without a record (a crash) an `error` record holding its stderr.
pub fn run_worker(task: &WorkerTask, timeout: f64) -> Result<WorkerRecord> {
    // /proc/self/exe stays valid even if the binary file is replaced during a long run.
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().context("cannot find the certquant executable")?
    };
    let input = serde_json::to_vec(task)?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start a worker process")?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if let Some(mut stdin) = child.stdin.take() {
        // The worker reads its task first thing and the task is far below a pipe's capacity,
        // so this does not block; a worker that died at once shows as a crash below.
        let _ = stdin.write_all(&input);
    }
    let limit = Duration::from_secs_f64(timeout);
    let exited = loop {
        if child.try_wait()?.is_some() {
            break true;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = start.elapsed().as_secs_f64();
    let (out, err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let mut record = if !exited {
        task.stopped(Stop::Timeout, None)
    } else {
        parse_record(task, &out).unwrap_or_else(|_| {
            let err = String::from_utf8_lossy(&err).trim().to_string();
            task.stopped(Stop::Error, Some(err))
        })
    };
    record.bench_mut().wall_seconds = wall;
    Ok(record)
}

/// Runs `tasks` on `jobs` worker threads, appending each finished task's record to `out`,
/// flushed as it goes, with a progress bar (done/total, certified so far, elapsed, ETA) on a
/// terminal.
pub fn run_pool(tasks: Vec<WorkerTask>, jobs: usize, timeout: f64, out: &Path) -> Result<()> {
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
    let certified = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(total.max(1)) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some(task) = next else { break };
                    match run_worker(&task, timeout).and_then(|r| Ok((r.status(), r.to_line()?))) {
                        Ok((status, line)) => {
                            if status == TaskStatus::Certified {
                                certified.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Ok(mut f) = file.lock() {
                                let _ = writeln!(f, "{line}").and_then(|_| f.flush());
                            }
                            tracing::info!(status = %status, "task done");
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                    pb.set_message(format!("{} certified", certified.load(Ordering::Relaxed)));
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
