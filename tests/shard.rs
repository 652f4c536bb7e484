//! `bench … --shard K/N` and `bench merge`: the shards partition the tasks, shards + merge
//! equal the unsharded run task for task, and merge refuses mixtures, duplicates and gaps.
//! Uses the demo assets shipped in the repository only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certquant"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exit 2 with `needle` in the one-line reason, nothing on stdout.
fn refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert!(out.stdout.is_empty(), "stdout must stay empty on errors");
}

/// `bench robustness` on the demo with `ids` × `eps`, writing `out`, plus `extra`.
fn robustness(ids: &str, eps: &str, out: &Path, extra: &[&str]) -> Output {
    let mut a: Vec<String> = ["bench", "robustness", "--model"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    a.push(s(&root().join("assets/demo/fashion_mlp.onnx")));
    a.extend(["--data".into(), s(&root().join("assets/demo"))]);
    a.extend(["--ids".into(), ids.into(), "--eps".into(), eps.into()]);
    a.extend(["--out".into(), s(out), "--json".into()]);
    a.extend(extra.iter().map(|x| x.to_string()));
    run(&a)
}

fn merge(out: &Path, files: &[&Path], extra: &[&str]) -> Output {
    let mut a: Vec<String> = vec!["bench".into(), "merge".into(), "--out".into(), s(out)];
    a.extend(extra.iter().map(|x| x.to_string()));
    a.extend(files.iter().map(|f| s(f)));
    run(&a)
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (id, eps text) of a robustness record.
fn key(r: &Value) -> (u64, String) {
    (
        r["id"].as_u64().unwrap(),
        r["eps_text"].as_str().unwrap().to_string(),
    )
}

/// What a task's result is: status, χ, χ sources, bit-widths (timings left out).
fn result(r: &Value) -> Value {
    serde_json::json!([r["status"], r["chi"], r["chi_source"], r["layers"]])
}

fn sidecar(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.meta.json", p.display()))
}

#[test]
fn shards_partition_the_tasks_and_merge_equals_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, eps) = ("0,1,2,3,4", "1/255,2/255");
    let canonical: Vec<(u64, String)> = (0..5)
        .flat_map(|id| ["1/255", "2/255"].map(|e| (id, e.to_string())))
        .collect();
    let whole = dir.path().join("whole.jsonl");
    ok(&robustness(ids, eps, &whole, &["--jobs", "2"]));
    let n = 3;
    let mut shards = Vec::new();
    let mut seen = BTreeMap::new();
    for k in 1..=n {
        let f = dir.path().join(format!("shard{k}.jsonl"));
        // the partition does not depend on --jobs
        let jobs = if k == 2 { "2" } else { "1" };
        let out = robustness(
            ids,
            eps,
            &f,
            &["--jobs", jobs, "--shard", &format!("{k}/{n}")],
        );
        ok(&out);
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let recs = lines(&f);
        assert_eq!(summary["tasks"], recs.len());
        for r in &recs {
            let i = canonical.iter().position(|c| *c == key(r)).unwrap();
            assert_eq!(i % n, k - 1, "shard {k}/{n} ran task {i}");
            assert!(seen.insert(i, k).is_none(), "task {i} ran twice");
        }
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(sidecar(&f)).unwrap())
            .expect("every run writes a sidecar");
        assert_eq!(meta["bench"], "robustness");
        assert_eq!(meta["shard"], serde_json::json!({"k": k, "n": n}));
        assert_eq!(meta["tasks"].as_array().unwrap().len(), canonical.len());
        shards.push(f);
    }
    assert_eq!(seen.len(), canonical.len(), "the shards cover every task");

    let merged = dir.path().join("merged.jsonl");
    let summary = dir.path().join("summary.json");
    let files: Vec<&Path> = shards.iter().rev().map(PathBuf::as_path).collect();
    let out = merge(&merged, &files, &["--summary", &s(&summary), "--json"]);
    ok(&out);
    // the merged file is in canonical order, and equals the unsharded run task for task
    let m = lines(&merged);
    assert_eq!(m.iter().map(key).collect::<Vec<_>>(), canonical);
    let w: BTreeMap<_, _> = lines(&whole).iter().map(|r| (key(r), result(r))).collect();
    assert_eq!(w.len(), canonical.len());
    for r in &m {
        assert_eq!(result(r), w[&key(r)], "task {:?}", key(r));
    }
    // the same summary (timings aside), on stdout and in the file
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(printed, written);
    let unsharded: Value =
        serde_json::from_slice(&robustness(ids, eps, &whole, &["--resume"]).stdout).unwrap();
    for f in [
        "tasks",
        "certified",
        "not_certified",
        "avg_bits",
        "avg_frac",
        "avg_qnn_accuracy",
    ] {
        assert_eq!(printed[f], unsharded[f], "{f}");
    }
    // the merged file is a complete unsharded run: resuming it runs nothing
    let before = std::fs::read_to_string(&merged).unwrap();
    ok(&robustness(ids, eps, &merged, &["--resume"]));
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), before);
    // and the table form prints the bench's summary
    let out = merge(&dir.path().join("m2.jsonl"), &files, &[]);
    ok(&out);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("#S/#F") && table.contains("avg bits per layer"),
        "{table}"
    );
}

#[test]
fn merge_refuses_mixtures_duplicates_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let (ids, eps) = ("0,1,2", "1/255");
    for k in 1..=2 {
        let shard = format!("{k}/2");
        ok(&robustness(
            ids,
            eps,
            &d(&format!("a{k}.jsonl")),
            &["--shard", &shard],
        ));
    }
    ok(&robustness(
        ids,
        eps,
        &d("other2.jsonl"),
        &["--shard", "2/2", "--max-frac", "12"],
    ));
    let (a1, a2, other2) = (d("a1.jsonl"), d("a2.jsonl"), d("other2.jsonl"));
    ok(&merge(&d("ok.jsonl"), &[&a1, &a2], &[]));

    // other options: the option and both files are named
    let out = merge(&d("m.jsonl"), &[&a1, &other2], &[]);
    refused(&out, "option synth.max_frac: 16 vs 12");
    refused(&out, &s(&other2));
    // a shard missing, or given twice
    refused(&merge(&d("m.jsonl"), &[&a1], &[]), "shard(s) 2/2 missing");
    let copy = d("copy.jsonl");
    std::fs::copy(&a1, &copy).unwrap();
    std::fs::copy(sidecar(&a1), sidecar(&copy)).unwrap();
    refused(
        &merge(&d("m.jsonl"), &[&a1, &a2, &copy], &[]),
        "are both shard 1/2",
    );
    // a task recorded twice
    let dup = d("dup1.jsonl");
    let text = std::fs::read_to_string(&a1).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&dup, format!("{text}{first}\n")).unwrap();
    std::fs::copy(sidecar(&a1), sidecar(&dup)).unwrap();
    refused(&merge(&d("m.jsonl"), &[&dup, &a2], &[]), "appears twice");
    // a task in the wrong shard's file
    let wrong = d("wrong2.jsonl");
    let text2 = std::fs::read_to_string(&a2).unwrap();
    std::fs::write(&wrong, format!("{text2}{first}\n")).unwrap();
    std::fs::copy(sidecar(&a2), sidecar(&wrong)).unwrap();
    refused(
        &merge(&d("m.jsonl"), &[&a1, &wrong], &[]),
        "belongs to shard 1/2",
    );
    // an unfinished shard
    let short = d("short1.jsonl");
    std::fs::write(&short, format!("{first}\n")).unwrap();
    std::fs::copy(sidecar(&a1), sidecar(&short)).unwrap();
    refused(
        &merge(&d("m.jsonl"), &[&short, &a2], &[]),
        "1 of 3 task(s) missing",
    );
    // no sidecar: which options produced it cannot be known
    let bare = d("bare.jsonl");
    std::fs::copy(&a1, &bare).unwrap();
    refused(&merge(&d("m.jsonl"), &[&bare, &a2], &[]), "no sidecar");
    // the merged file is not overwritten
    refused(&merge(&d("ok.jsonl"), &[&a1, &a2], &[]), "exists");
    assert!(!d("m.jsonl").exists(), "nothing is written when refused");
}

#[test]
fn bad_shards_and_foreign_resumes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.jsonl");
    for bad in ["0/2", "3/2", "1/0", "two/3", "2"] {
        let out = robustness("0", "1/255", &f, &["--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("K/N"), "{bad}: {err}");
        assert!(!f.exists());
    }
    ok(&robustness("0,1", "1/255", &f, &["--shard", "1/2"]));
    // resuming with other options, or as another shard, is refused
    refused(
        &robustness(
            "0,1",
            "1/255",
            &f,
            &["--shard", "1/2", "--resume", "--relaxed"],
        ),
        "option synth.relaxed: false vs true",
    );
    refused(
        &robustness("0,1", "1/255", &f, &["--shard", "2/2", "--resume"]),
        "it holds shard 1/2",
    );
    // the same shard resumes and runs nothing new
    let before = std::fs::read_to_string(&f).unwrap();
    ok(&robustness(
        "0,1",
        "1/255",
        &f,
        &["--shard", "1/2", "--resume"],
    ));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), before);
}

#[test]
fn backdoor_and_preimages_benches_shard_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let model = s(&root().join("assets/demo/fashion_mlp.onnx"));
    let data = s(&root().join("assets/demo"));
    let args = |kind: &str, out: &Path, shard: Option<&str>| -> Vec<String> {
        let mut a: Vec<String> = vec!["bench".into(), kind.into()];
        if kind == "backdoor" {
            a.extend(
                [
                    "--model",
                    &model,
                    "--data",
                    &data,
                    "--targets",
                    "0,5",
                    "--positions",
                    "10,10",
                    "--k",
                    "2",
                    "--seed",
                    "1",
                ]
                .map(String::from),
            );
        } else {
            a.extend(
                [
                    "--models",
                    &model,
                    "--data",
                    &data,
                    "--ids",
                    "0",
                    "--eps",
                    "1/255",
                    "--paper-time-limit",
                    "60",
                    // the paper engine's big-M constants at the default cap (100) make its
                    // MILP take most of the 60 s on this task: a time-limited bound could
                    // differ between the runs
                    "--chi-max",
                    "4",
                ]
                .map(String::from),
            );
        }
        a.extend([
            "--jobs".into(),
            "1".into(),
            "--out".into(),
            s(out),
            "--json".into(),
        ]);
        if let Some(sh) = shard {
            a.extend(["--shard".into(), sh.into()]);
        }
        a
    };
    for kind in ["backdoor", "preimages"] {
        let whole = dir.path().join(format!("{kind}.jsonl"));
        ok(&run(&args(kind, &whole, None)));
        let parts: Vec<PathBuf> = (1..=2)
            .map(|k| dir.path().join(format!("{kind}{k}.jsonl")))
            .collect();
        for (k, p) in parts.iter().enumerate() {
            ok(&run(&args(kind, p, Some(&format!("{}/2", k + 1)))));
            assert_eq!(lines(p).len(), 1, "{kind}: one task per shard");
        }
        let merged = dir.path().join(format!("{kind}-merged.jsonl"));
        let out = merge(&merged, &[&parts[0], &parts[1]], &["--json"]);
        ok(&out);
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let w = lines(&whole);
        let m = lines(&merged);
        assert_eq!(m.len(), w.len());
        let same = |r: &Value| {
            serde_json::json!([r["status"], r["layers"], r["chi"], r["engine"], r["target"]])
        };
        let mut a: Vec<String> = w.iter().map(|r| same(r).to_string()).collect();
        let mut b: Vec<String> = m.iter().map(|r| same(r).to_string()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{kind}");
        if kind == "preimages" {
            assert_eq!(summary[0]["pairs"], 1);
        } else {
            assert_eq!(summary["tasks"], 2);
        }
    }
    // shards of different benches do not merge
    let out = merge(
        &dir.path().join("x.jsonl"),
        &[
            &dir.path().join("backdoor1.jsonl"),
            &dir.path().join("preimages2.jsonl"),
        ],
        &[],
    );
    refused(&out, "bench backdoor vs bench preimages");
}
