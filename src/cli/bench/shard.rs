//! Benches beyond one machine: `--shard K/N` and the results file's sidecar.
//!
//! A bench's tasks have a canonical order (the order of its command line's lists); shard
//! `K/N` runs the tasks whose 0-based index `i` has `i mod N = K − 1`, whatever `--jobs` is,
//! so N machines (or a Slurm array job) each run a disjoint, deterministic part. Every run
//! writes `<out>.meta.json` next to its results: the bench kind, every option that can change
//! a result, the canonical task list and the shard. `--resume` refuses a sidecar of other
//! options, and `bench merge` uses the sidecars to put shards back together in canonical order
//! and to refuse mixtures. The JSONL records themselves keep their format.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The sidecar's format tag.
pub const META_FORMAT: &str = "certquant-bench-meta/1";

/// One part of a bench's task list: shard `k` of `n` (1 ≤ k ≤ n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, 1-based.
    pub k: usize,
    /// How many parts.
    pub n: usize,
}

impl Shard {
    /// The whole task list (what an unsharded run covers).
    pub const WHOLE: Shard = Shard { k: 1, n: 1 };

    /// Whether the task with 0-based canonical index `index` belongs to this shard.
    pub fn owns(self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Parses `--shard K/N` (clap value parser: a bad value is a usage error, exit 2).
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let bad = || format!("expected K/N with 1 <= K <= N (e.g. 2/4), got {text:?}");
    let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { k, n })
}

/// Which bench wrote a results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchKind {
    /// `bench robustness`.
    Robustness,
    /// `bench backdoor`.
    Backdoor,
    /// `bench preimages`.
    Preimages,
}

impl BenchKind {
    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            BenchKind::Robustness => "robustness",
            BenchKind::Backdoor => "backdoor",
            BenchKind::Preimages => "preimages",
        }
    }

    /// The key of the task a JSONL record belongs to, in the form of [`BenchMeta::tasks`];
    /// `None` if the record lacks the key's fields.
    pub fn record_key(self, rec: &Value) -> Option<Value> {
        Some(match self {
            BenchKind::Robustness => {
                serde_json::json!([rec.get("id")?.as_u64()?, rec.get("eps_text")?.as_str()?])
            }
            BenchKind::Backdoor => {
                let t = rec.get("trigger")?;
                serde_json::json!([
                    rec.get("target")?.as_u64()?,
                    t.get("row")?.as_u64()?,
                    t.get("col")?.as_u64()?,
                    t.get("size")?.as_u64()?
                ])
            }
            BenchKind::Preimages => serde_json::json!([
                rec.get("model")?.as_str()?,
                rec.get("id")?.as_u64()?,
                rec.get("eps_text")?.as_str()?,
                rec.get("engine")?.as_str()?
            ]),
        })
    }
}

/// The sidecar `<out>.meta.json` of a bench results file: what produced the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchMeta {
    /// [`META_FORMAT`].
    pub format: String,
    /// The certquant version that wrote the file (informational: not compared).
    pub certquant: String,
    /// The bench.
    pub bench: BenchKind,
    /// Every option that can change a task's result (model and its SHA-256, data, synthesis
    /// options, per-task timeout, …), as a JSON object with sorted keys.
    pub options: Value,
    /// The whole bench's task keys in canonical order (not only this shard's).
    pub tasks: Vec<Value>,
    /// The part of `tasks` this file covers; `None` = all of them.
    pub shard: Option<Shard>,
}

/// The first difference between two option values, as `option PATH: A vs B` (objects are
/// compared key by key, so the path names the innermost differing option).
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    if a == b {
        return None;
    }
    if let (Value::Object(x), Value::Object(y)) = (a, b) {
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => {
                    if let Some(d) = first_difference(&sub, u, v) {
                        return Some(d);
                    }
                }
                (u, v) => {
                    let show =
                        |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
                    return Some(format!("option {sub}: {} vs {}", show(u), show(v)));
                }
            }
        }
    }
    let name = if path.is_empty() { "options" } else { path };
    Some(format!("option {name}: {a} vs {b}"))
}

/// The sidecar path of a results file: `<out>.meta.json`.
pub fn meta_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".meta.json");
    out.with_file_name(name)
}

/// A path as it is recorded in the sidecar.
pub fn path_text(p: &Path) -> String {
    p.display().to_string()
}

impl BenchMeta {
    /// The sidecar of a run of `bench` with `options` over `tasks`, shard `shard`.
    pub fn new(bench: BenchKind, options: Value, tasks: Vec<Value>, shard: Option<Shard>) -> Self {
        BenchMeta {
            format: META_FORMAT.to_string(),
            certquant: env!("CARGO_PKG_VERSION").to_string(),
            bench,
            options,
            tasks,
            shard,
        }
    }

    /// The shard (the whole list when unsharded).
    pub fn part(&self) -> Shard {
        self.shard.unwrap_or(Shard::WHOLE)
    }

    /// The canonical indices of the tasks this file's shard owns.
    pub fn owned(&self) -> Vec<usize> {
        let part = self.part();
        (0..self.tasks.len()).filter(|&i| part.owns(i)).collect()
    }

    /// The first difference between what produced `self` and `other` (bench kind, an option,
    /// the task list), in words; `None` if the same bench with the same options. The shard
    /// and the version are not compared.
    pub fn difference(&self, other: &BenchMeta) -> Option<String> {
        if self.bench != other.bench {
            return Some(format!(
                "bench {} vs bench {}",
                self.bench.name(),
                other.bench.name()
            ));
        }
        if let Some(d) = first_difference("", &self.options, &other.options) {
            return Some(d);
        }
        if self.tasks != other.tasks {
            let at = self
                .tasks
                .iter()
                .zip(&other.tasks)
                .position(|(a, b)| a != b)
                .unwrap_or(self.tasks.len().min(other.tasks.len()));
            let show = |t: &[Value]| t.get(at).map_or("(none)".to_string(), Value::to_string);
            return Some(format!(
                "task lists differ ({} vs {} tasks; task {}: {} vs {})",
                self.tasks.len(),
                other.tasks.len(),
                at + 1,
                show(&self.tasks),
                show(&other.tasks)
            ));
        }
        None
    }

    /// Reads the sidecar of results file `out`, if there is one.
    pub fn read(out: &Path) -> Result<Option<BenchMeta>> {
        let p = meta_path(out);
        if !p.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let meta: BenchMeta = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a bench sidecar", p.display()))?;
        if meta.format != META_FORMAT {
            bail!(
                "{}: unknown sidecar format {:?} (this certquant reads {META_FORMAT})",
                p.display(),
                meta.format
            );
        }
        Ok(Some(meta))
    }

    /// Writes the sidecar of results file `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let p = meta_path(out);
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&p, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))
    }
}

/// Starts a run writing to `out`: with `--resume`, an existing sidecar must be of the same
/// bench, options, tasks and shard; then writes the run's sidecar. Returns the canonical
/// indices of the tasks this run owns.
pub fn begin(out: &Path, resume: bool, meta: &BenchMeta) -> Result<Vec<usize>> {
    if resume && let Some(old) = BenchMeta::read(out)? {
        if let Some(d) = old.difference(meta) {
            bail!(
                "--resume {}: it was written by another bench or with other options ({d}; see {}); choose another --out",
                out.display(),
                meta_path(out).display()
            );
        }
        if old.part() != meta.part() {
            bail!(
                "--resume {}: it holds shard {}, this run is shard {}",
                out.display(),
                old.part(),
                meta.part()
            );
        }
    }
    meta.write(out)?;
    Ok(meta.owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_values_parse_or_say_why() {
        assert_eq!(parse_shard("2/4"), Ok(Shard { k: 2, n: 4 }));
        assert_eq!(parse_shard("1/1"), Ok(Shard::WHOLE));
        for bad in ["0/4", "5/4", "1/0", "x/2", "2", "-1/3", "1/2/3", ""] {
            let e = parse_shard(bad).unwrap_err();
            assert!(e.contains("K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_partition_the_task_list() {
        for n in 1..=7 {
            for len in [0, 1, 5, 13] {
                let mut seen = vec![0; len];
                for k in 1..=n {
                    for i in (0..len).filter(|&i| Shard { k, n }.owns(i)) {
                        seen[i] += 1;
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "n {n} len {len}");
            }
        }
    }

    #[test]
    fn differences_are_named() {
        let tasks = vec![
            serde_json::json!([0, "1/255"]),
            serde_json::json!([1, "1/255"]),
        ];
        let a = BenchMeta::new(
            BenchKind::Robustness,
            serde_json::json!({"model": "m.onnx", "timeout": 10.0}),
            tasks.clone(),
            Some(Shard { k: 1, n: 2 }),
        );
        let mut b = a.clone();
        b.shard = Some(Shard { k: 2, n: 2 });
        assert_eq!(a.difference(&b), None);
        b.options["timeout"] = serde_json::json!(20.0);
        assert_eq!(
            a.difference(&b).unwrap(),
            "option timeout: 10.0 vs 20.0",
            "names the option and both values"
        );
        let mut c = a.clone();
        c.bench = BenchKind::Backdoor;
        assert!(
            a.difference(&c)
                .unwrap()
                .contains("bench robustness vs bench backdoor")
        );
        let mut d = a.clone();
        d.tasks.pop();
        assert!(a.difference(&d).unwrap().contains("task lists differ"));
        let mut e = a.clone();
        e.options = serde_json::json!({"model": "m.onnx", "timeout": 10.0, "synth": {"gap": 0.5}});
        let mut f = e.clone();
        f.options["synth"]["gap"] = serde_json::json!(0.0);
        assert_eq!(e.difference(&f).unwrap(), "option synth.gap: 0.5 vs 0.0");
        assert_eq!(
            a.difference(&e).unwrap(),
            "option synth: (absent) vs {\"gap\":0.5}"
        );
    }

    #[test]
    fn record_keys_match_the_task_keys() {
        let r = serde_json::json!({"id": 3, "eps_text": "2/255", "status": "timeout"});
        assert_eq!(
            BenchKind::Robustness.record_key(&r),
            Some(serde_json::json!([3, "2/255"]))
        );
        let b = serde_json::json!({"target": 1, "trigger": {"row": 4, "col": 20, "size": 3}});
        assert_eq!(
            BenchKind::Backdoor.record_key(&b),
            Some(serde_json::json!([1, 4, 20, 3]))
        );
        assert_eq!(BenchKind::Preimages.record_key(&r), None);
    }

    #[test]
    fn sidecar_sits_next_to_the_results() {
        assert_eq!(
            meta_path(Path::new("out/r.jsonl")),
            Path::new("out/r.jsonl.meta.json")
        );
    }
}
