//! `certquant bench merge`: the results files of a bench's shards (`--shard K/N`) back into
//! one file in canonical task order, with the bench's summary. Refuses (exit 2) files of
//! different benches, models, data or options, a task recorded twice, a task that belongs to
//! no or another shard, a missing shard and a missing task.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::Value;

use super::super::common::Outcome;
use super::report::{self, SummaryTarget};
use super::shard::{BenchKind, BenchMeta, Shard, meta_path};

/// Arguments of `certquant bench merge`.
#[derive(Debug, Args)]
pub struct BenchMergeArgs {
    /// The merged JSONL file (must not exist yet, or be empty); its sidecar is written too.
    #[arg(long)]
    out: PathBuf,
    /// Write the summary as JSON here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// The shards' JSONL results files, each with its `<file>.meta.json` sidecar.
    #[arg(required = true, value_name = "SHARD.jsonl")]
    files: Vec<PathBuf>,
}

/// One input file: its sidecar and its records (line number, record, the line as written).
struct Part {
    path: PathBuf,
    meta: BenchMeta,
    records: Vec<(usize, Value, String)>,
}

/// Reads a shard's results and sidecar. Lines that do not parse (cut by a kill) are skipped
/// as the benches skip them; the completeness check then names their tasks.
fn read_part(path: &Path) -> Result<Part> {
    let meta = BenchMeta::read(path)?.ok_or_else(|| {
        anyhow!(
            "{}: no sidecar {} (written by every bench run of this certquant version); cannot tell which bench and options produced it",
            path.display(),
            meta_path(path).display()
        )
    })?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => records.push((n + 1, v, line.to_string())),
            Err(_) => eprintln!(
                "warning: {}:{}: unreadable line skipped (an interrupted write?)",
                path.display(),
                n + 1
            ),
        }
    }
    Ok(Part {
        path: path.to_path_buf(),
        meta,
        records,
    })
}

/// Checks that `parts` are the shards of one bench run with one set of options, all of them.
fn check_shard_set(parts: &[Part]) -> Result<()> {
    let first = &parts[0];
    for p in &parts[1..] {
        if let Some(d) = first.meta.difference(&p.meta) {
            bail!(
                "{} and {} are results of different benches or options: {d}",
                first.path.display(),
                p.path.display()
            );
        }
        if p.meta.certquant != first.meta.certquant {
            eprintln!(
                "warning: {} was written by certquant {}, {} by certquant {}",
                first.path.display(),
                first.meta.certquant,
                p.path.display(),
                p.meta.certquant
            );
        }
    }
    let n = first.meta.part().n;
    let mut by_k: BTreeMap<usize, &Path> = BTreeMap::new();
    for p in parts {
        let part = p.meta.part();
        if part.n != n {
            bail!(
                "{} is shard {}, {} is shard {}: shards of different splits",
                first.path.display(),
                first.meta.part(),
                p.path.display(),
                part
            );
        }
        if let Some(other) = by_k.insert(part.k, &p.path) {
            bail!(
                "{} and {} are both shard {part}",
                other.display(),
                p.path.display()
            );
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !by_k.contains_key(k))
        .map(|k| Shard { k, n }.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "incomplete shard set: shard(s) {} missing",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The records of `parts` in canonical task order; refuses foreign, misplaced, duplicate and
/// missing tasks.
fn in_canonical_order(parts: &[Part]) -> Result<Vec<(Value, String)>> {
    let meta = &parts[0].meta;
    let index: HashMap<String, usize> = meta
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i))
        .collect();
    let mut slots: Vec<Option<(&Path, usize, &Value, &String)>> = vec![None; meta.tasks.len()];
    for p in parts {
        let part = p.meta.part();
        for (line, rec, text) in &p.records {
            let at = || format!("{}:{line}", p.path.display());
            let key = meta
                .bench
                .record_key(rec)
                .ok_or_else(|| anyhow!("{}: not a bench {} record", at(), meta.bench.name()))?;
            let Some(&i) = index.get(&key.to_string()) else {
                bail!("{}: task {key} is not one of the bench's tasks", at());
            };
            if !part.owns(i) {
                let owner = Shard {
                    k: i % part.n + 1,
                    n: part.n,
                };
                bail!(
                    "{}: task {key} belongs to shard {owner}, but the file is shard {part}",
                    at()
                );
            }
            if let Some((other, other_line, _, _)) = slots[i] {
                bail!(
                    "task {key} appears twice: {}:{other_line} and {}",
                    other.display(),
                    at()
                );
            }
            slots[i] = Some((&p.path, *line, rec, text));
        }
    }
    let missing: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_none()).collect();
    if let Some(&i) = missing.first() {
        let n = meta.part().n;
        let owner = Shard { k: i % n + 1, n };
        let file = parts
            .iter()
            .find(|p| p.meta.part() == owner)
            .map_or_else(String::new, |p| format!(" ({})", p.path.display()));
        bail!(
            "incomplete results: {} of {} task(s) missing, the first {} of shard {owner}{file}; finish the shard with --resume",
            missing.len(),
            slots.len(),
            meta.tasks[i]
        );
    }
    Ok(slots
        .into_iter()
        .flatten()
        .map(|(_, _, r, t)| (r.clone(), t.clone()))
        .collect())
}

/// The records that parse as `T` (as the benches read their files).
fn typed<T: serde::de::DeserializeOwned>(recs: &[Value]) -> Vec<T> {
    recs.iter()
        .filter_map(|r| serde_json::from_value(r.clone()).ok())
        .collect()
}

/// `certquant bench merge`.
pub fn merge(a: &BenchMergeArgs) -> Result<Outcome> {
    if a.out.exists() && std::fs::metadata(&a.out)?.len() > 0 {
        bail!(
            "{} exists; choose another --out for the merged results",
            a.out.display()
        );
    }
    let parts = a
        .files
        .iter()
        .map(|f| read_part(f))
        .collect::<Result<Vec<_>>>()?;
    check_shard_set(&parts)?;
    let ordered = in_canonical_order(&parts)?;
    let meta = &parts[0].meta;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    for (_, line) in &ordered {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&a.out, text).with_context(|| format!("cannot write {}", a.out.display()))?;
    BenchMeta::new(meta.bench, meta.options.clone(), meta.tasks.clone(), None).write(&a.out)?;
    let recs: Vec<Value> = ordered.into_iter().map(|(r, _)| r).collect();
    let to = SummaryTarget {
        out: &a.out,
        summary: a.summary.as_deref(),
        json: a.json,
    };
    let model = |o: &Value| o["model"].as_str().unwrap_or_default().to_string();
    match meta.bench {
        BenchKind::Robustness => {
            report::robustness(Path::new(&model(&meta.options)), &typed(&recs), None, to)
        }
        BenchKind::Backdoor => {
            report::backdoor(Path::new(&model(&meta.options)), &typed(&recs), to)
        }
        BenchKind::Preimages => {
            let models: Vec<(String, Vec<_>)> = meta.options["models"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let name = model(m);
                    let mine: Vec<Value> = recs
                        .iter()
                        .filter(|r| r["model"].as_str() == Some(name.as_str()))
                        .cloned()
                        .collect();
                    (name, typed(&mine))
                })
                .collect();
            report::preimages(&models, to)
        }
    }
}
