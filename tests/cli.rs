//! End-to-end tests of the binary: exit codes, JSON output and bad-input handling.
//! These use the demo assets shipped in the repository, so they never need ../shared.

use certquant::quantize::Rounding;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certquant"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn demo_model() -> PathBuf {
    root().join("assets/demo/fashion_mlp.onnx")
}

fn demo_data() -> PathBuf {
    root().join("assets/demo")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `cmd` (e.g. `verify`) on demo image 0 at radius `eps` with `extra` options.
fn on_demo(cmd: &[&str], eps: &str, extra: &[&str]) -> Output {
    let (m, d) = (demo_model(), demo_data());
    let mut a = cmd.to_vec();
    a.extend(["--model", s(&m), "--data", s(&d), "--id", "0", "--eps", eps]);
    a.extend_from_slice(extra);
    run(&a)
}

/// Exit code 2, a one-line reason on stderr that mentions `needle`, nothing on stdout.
fn assert_bad_input(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in {err:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty(), "stdout must stay empty on errors");
}

#[test]
fn eval_json_on_demo_data() {
    let out = run(&[
        "eval",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 20);
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&acc), "{acc}");
}

#[test]
fn verify_json_exit_codes() {
    let out = run(&[
        "verify",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--id",
        "0",
        "--eps",
        "0",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verified = v["verified"].as_bool().unwrap();
    // eps = 0: verified iff the network classifies the image correctly
    assert_eq!(verified, v["label"] == v["prediction"]);
    assert_eq!(out.status.code(), Some(if verified { 0 } else { 1 }));
    // a huge radius cannot be proven
    let out = run(&[
        "verify",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--id",
        "0",
        "--eps",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert!(v["margin"].as_f64().unwrap() <= 0.0);
}

#[test]
fn bad_inputs_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let m = demo_model();
    let d = demo_data();
    // not ONNX
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf at all \xff\xff\xff").unwrap();
    assert_bad_input(
        &run(&["eval", "--model", s(&junk), "--data", s(&d)]),
        "onnx",
    );
    // given χ values that do not fit the network, or are negative
    for (chi, needle) in [
        ("0.1,0.2,0.3,0.4,0.5", "hidden layers"),
        ("-1,0.5", "not a finite number"),
    ] {
        assert_bad_input(
            &on_demo(&["synth", "robustness"], "1/255", &["--chi", chi]),
            needle,
        );
    }
    // missing model file
    assert_bad_input(
        &run(&["eval", "--model", "/nonexistent/m.onnx", "--data", s(&d)]),
        "m.onnx",
    );
    // unsupported op: rename the Relu nodes' op type to Tanh (same length in the protobuf)
    let bytes = std::fs::read(&m).unwrap();
    let patched = replace_all(&bytes, b"Relu", b"Tanh");
    assert_ne!(patched, bytes);
    let tanh = dir.path().join("tanh.onnx");
    std::fs::write(&tanh, patched).unwrap();
    assert_bad_input(
        &run(&["eval", "--model", s(&tanh), "--data", s(&d)]),
        "Tanh",
    );
    // truncated IDX
    let tdir = dir.path().join("trunc");
    std::fs::create_dir(&tdir).unwrap();
    let img = std::fs::read(d.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::write(tdir.join("t10k-images-idx3-ubyte"), &img[..img.len() - 100]).unwrap();
    std::fs::copy(
        d.join("t10k-labels-idx1-ubyte"),
        tdir.join("t10k-labels-idx1-ubyte"),
    )
    .unwrap();
    assert_bad_input(
        &run(&["eval", "--model", s(&m), "--data", s(&tdir)]),
        "t10k-images",
    );
    // missing data dir
    assert_bad_input(
        &run(&["eval", "--model", s(&m), "--data", "/nonexistent-dir"]),
        "nonexistent",
    );
    // id out of range
    assert_bad_input(
        &run(&[
            "verify",
            "--model",
            s(&m),
            "--data",
            s(&d),
            "--id",
            "20",
            "--eps",
            "0.01",
        ]),
        "out of range",
    );
    // eps < 0 and eps not a number
    assert_bad_input(&on_demo(&["verify"], "-0.1", &[]), "eps");
    assert_bad_input(&on_demo(&["verify"], "abc", &[]), "eps");
    assert_bad_input(&on_demo(&["verify"], "1/0", &[]), "eps");
    // synth with an empty bit-width range
    assert_bad_input(
        &on_demo(
            &["synth", "robustness"],
            "1/255",
            &["--min-frac", "5", "--max-frac", "3"],
        ),
        "min-frac",
    );
    // a model whose input size does not match the data
    let small = dir.path().join("small.onnx");
    let net = certquant::model::Network::new(vec![
        certquant::model::Affine::new(0, 2, 3, vec![0.5; 6], vec![0.0; 2]).unwrap(),
    ])
    .unwrap();
    certquant::onnx::export(&net, &small).unwrap();
    assert_bad_input(
        &run(&["eval", "--model", s(&small), "--data", s(&d)]),
        "expects 3",
    );
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = hay.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn synth_writes_qnn_and_certificate_for_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let outdir = dir.path().join("q");
    // find a demo image that DeepPoly proves at 1/255
    let id = (0..20)
        .find(|id| {
            run(&[
                "verify",
                "--model",
                s(&demo_model()),
                "--data",
                s(&demo_data()),
                "--id",
                &id.to_string(),
                "--eps",
                "1/255",
            ])
            .status
            .code()
                == Some(0)
        })
        .expect("some demo image is robust at 1/255");
    let out = run(&[
        "synth",
        "robustness",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--id",
        &id.to_string(),
        "--eps",
        "1/255",
        "--out",
        s(&outdir),
        "--json",
        "--accuracy",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["status"], "certified", "{v}");
    assert_eq!(out.status.code(), Some(0));
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        assert_eq!(
            l["total"].as_u64().unwrap(),
            l["frac"].as_u64().unwrap() + l["int"].as_u64().unwrap()
        );
    }
    assert_eq!(v["chi"].as_array().unwrap().len(), 2);
    let qnn = certquant::onnx::import(&outdir.join("qnn.onnx")).unwrap();
    // every weight is k·2^-F with |k| < 2^(Q-1)
    for (layer, cfg) in qnn.layers().iter().zip(layers) {
        let frac = cfg["frac"].as_u64().unwrap() as u32;
        let total = cfg["total"].as_u64().unwrap() as u32;
        let c = certquant::quantize::QuantConfig::new(total, frac).unwrap();
        for &w in layer.params().0.iter().chain(layer.bias()) {
            assert!(
                c.code_of(w).is_some(),
                "{w} not on the ⟨{total},{frac}⟩ grid"
            );
        }
    }
    let cert: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outdir.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(cert["format"], "certquant-certificate/1");
    assert_eq!(
        cert["qnn"]["sha256"],
        certquant::certificate::sha256_hex(&std::fs::read(outdir.join("qnn.onnx")).unwrap())
    );
}

#[test]
fn demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["demo", "--json", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("demo prints JSON");
    assert!(!v["synth"].as_array().unwrap().is_empty());
    assert!(dir.path().join("certificate.json").exists());
    assert_eq!(v["certificate_check_valid"], true);
    assert_eq!(v["backdoor"]["status"], "certified");
    assert_eq!(v["backdoor_certificate_check_valid"], true);
    assert!(dir.path().join("backdoor/certificate.json").exists());
    // Step 5: the integer-only program, certified, re-checked and exported.
    assert_eq!(
        v["integer"]["report"]["status"], "certified",
        "{}",
        v["integer"]
    );
    assert_eq!(v["integer"]["check_valid"], true);
    for f in ["integer/c/qnn.h", "integer/c/qnn.c", "integer/qnn_int.onnx"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_smoke_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.jsonl");
    let summary = dir.path().join("s.json");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "bench",
            "robustness",
            "--model",
            s(&demo_model()),
            "--data",
            s(&demo_data()),
            "--ids",
            "0,1,2",
            "--eps",
            "1/255,2/255",
            "--jobs",
            "2",
            "--out",
            s(&results),
            "--summary",
            s(&summary),
            "--json",
            "--attack",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let out = bin().args(args(&[])).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(&results).unwrap();
    assert_eq!(lines.lines().count(), 6);
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["status"].is_string() && v["model"].is_string() && v["wall_seconds"].is_number());
    }
    let sum: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(sum["tasks"], 6);
    assert_eq!(sum["attacked"], 6);
    // refuses to overwrite without --resume
    let again = bin().args(args(&[])).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    // drop the last two lines (an "interrupted" run) and resume: only those are redone
    let kept: Vec<&str> = lines.lines().take(4).collect();
    std::fs::write(&results, kept.join("\n") + "\n").unwrap();
    let plots = dir.path().join("plots");
    let out = bin()
        .args(args(&["--resume", "--plots", s(&plots)]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    for f in ["chi_boxplot.svg", "bits_histogram.svg", "times.svg"] {
        let svg = std::fs::read_to_string(plots.join(f)).unwrap();
        assert!(svg.starts_with("<svg"), "{f}");
    }
    let after = std::fs::read_to_string(&results).unwrap();
    assert_eq!(after.lines().count(), 6);
    assert!(
        after.starts_with(&kept.join("\n")),
        "finished tasks are kept, not redone"
    );
    // a task timeout is recorded, not dropped
    let t = dir.path().join("t.jsonl");
    let out = bin()
        .args([
            "bench",
            "robustness",
            "--model",
            s(&demo_model()),
            "--data",
            s(&demo_data()),
            "--ids",
            "3",
            "--eps",
            "1/255",
            "--timeout",
            "0.001",
            "--out",
            s(&t),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&t).unwrap().trim()).unwrap();
    assert_eq!(v["status"], "timeout");

    // relaxed mode on the strict run's preimages: no preimage is recomputed, and the χ and
    // their original seconds are carried over
    let relaxed = dir.path().join("relaxed.jsonl");
    let mut a = args(&["--relaxed", "--preimages-from", s(&results)]);
    let at = a.iter().position(|x| x == "--out").unwrap();
    a[at + 1] = s(&relaxed).to_string();
    let out = bin().args(&a).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let strict: Vec<serde_json::Value> = after
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reused = std::fs::read_to_string(&relaxed).unwrap();
    assert_eq!(reused.lines().count(), 6);
    for l in reused.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let src = strict
            .iter()
            .find(|r| r["id"] == v["id"] && r["eps_text"] == v["eps_text"])
            .unwrap();
        assert_eq!(v["relaxed"], true);
        assert_eq!(v["chi"], src["chi"]);
        assert_eq!(v["milps"], 0);
        assert!(
            v["chi_source"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c == "given")
        );
        assert_eq!(v["reused_preimage_seconds"], src["preimage_seconds"]);
    }
    // a missing file, or another model's results, are refused
    let mut a = args(&["--preimages-from", s(&dir.path().join("nope.jsonl"))]);
    let at = a.iter().position(|x| x == "--out").unwrap();
    a[at + 1] = s(&dir.path().join("x.jsonl")).to_string();
    assert_bad_input(&bin().args(&a).output().unwrap(), "no such file");
    let other = dir.path().join("other.jsonl");
    std::fs::write(
        &other,
        after.replace(s(&demo_model()), "../elsewhere/model.onnx"),
    )
    .unwrap();
    let mut a = args(&["--preimages-from", s(&other)]);
    let at = a.iter().position(|x| x == "--out").unwrap();
    a[at + 1] = s(&dir.path().join("y.jsonl")).to_string();
    assert_bad_input(&bin().args(&a).output().unwrap(), "is of model");
}

#[test]
fn synth_backdoor_on_the_demo_is_certified_and_rechecks() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("bd");
    let out = run(&[
        "synth",
        "backdoor",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--target",
        "0",
        "--trigger-size",
        "3",
        "--trigger-pos",
        "10,10",
        "--k",
        "2",
        "--seed",
        "1",
        "--attack",
        "--out",
        s(&out_dir),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "certified");
    assert_eq!(v["hypothesis"], "H0");
    // K = 2: p0 = 0.24, p1 = 0.14, six successes in a row accept H0
    assert_eq!(
        (v["rounds"].as_u64(), v["successes"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(v["ids_used"].as_array().unwrap().len(), 12);
    assert_eq!(v["layers"].as_array().unwrap().len(), 3);
    assert_eq!(v["attack_counterexample"], false);
    assert!(v["qnn_accuracy"].as_f64().unwrap() > 0.5);
    let cert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("certificate.json")).unwrap())
            .unwrap();
    assert_eq!(cert["statistical"]["k"], 2);
    assert_eq!(cert["properties"].as_array().unwrap().len(), 6);
    assert_eq!(cert["properties"][0]["source"]["trigger"]["row"], 10);
    let check = run(&[
        "check",
        "--certificate",
        s(&out_dir.join("certificate.json")),
        "--model",
        s(&demo_model()),
        "--qnn",
        s(&out_dir.join("qnn.onnx")),
    ]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn synth_backdoor_bad_inputs_exit_2() {
    let (model, data) = (demo_model(), demo_data());
    let base = |extra: &[&str]| {
        let mut a = vec![
            "synth",
            "backdoor",
            "--model",
            s(&model),
            "--data",
            s(&data),
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    assert_bad_input(&base(&["--target", "10"]), "class 10 out of range");
    assert_bad_input(&base(&["--target", "1", "--trigger-pos", "0,1"]), "1-based");
    assert_bad_input(
        &base(&["--target", "1", "--trigger-pos", "27,27"]),
        "does not fit",
    );
    assert_bad_input(&base(&["--target", "1", "--trigger-pos", "3"]), "ROW,COL");
    assert_bad_input(&base(&["--target", "1", "--theta", "1.5"]), "theta");
    assert_bad_input(&base(&["--target", "1", "--k", "0"]), "k 0");
    assert_bad_input(&base(&["--target", "1", "--trigger-size", "0"]), "size");
}

#[test]
fn bench_backdoor_smoke_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("b.jsonl");
    let summary = dir.path().join("s.json");
    let args = |resume: bool| {
        let mut a = vec![
            "bench".to_string(),
            "backdoor".into(),
            "--model".into(),
            s(&demo_model()).into(),
            "--data".into(),
            s(&demo_data()).into(),
            "--targets".into(),
            "0,5".into(),
            "--positions".into(),
            "10,10".into(),
            "--k".into(),
            "2".into(),
            "--seed".into(),
            "1".into(),
            "--jobs".into(),
            "2".into(),
            "--out".into(),
            s(&jsonl).into(),
            "--summary".into(),
            s(&summary).into(),
            "--json".into(),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let a = args(false);
    let out = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tasks"], 2);
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(lines.lines().count(), 2);
    for l in lines.lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(r["status"].is_string() && r["model"].is_string());
    }
    // without --resume an existing file is refused; with it nothing is redone
    let again = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_bad_input(&again, "--resume");
    let a = args(true);
    let out = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), lines);
    assert!(summary.exists());
}

/// `bench preimages` on the demo data (paper MILPs limited to 60 s, two jobs, `--json`) with
/// `--chi-max 4`: the paper engine's single MILP takes its big-M constants at the cap, and at
/// the default cap (100) it needs up to a minute per demo task. Its summary, after checking
/// the command succeeded.
fn bench_preimages_summary(models: &str, ids: &str, eps: &str, jsonl: &Path) -> serde_json::Value {
    let out = run(&[
        "bench",
        "preimages",
        "--models",
        models,
        "--data",
        s(&demo_data()),
        "--ids",
        ids,
        "--eps",
        eps,
        "--paper-time-limit",
        "60",
        "--chi-max",
        "4",
        "--jobs",
        "2",
        "--out",
        s(jsonl),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `bench preimages --chi-max` must be a positive number (exit 2, nothing run).
#[test]
fn bench_preimages_refuses_a_non_positive_chi_max() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["--chi-max=0", "--chi-max=-1", "--chi-max=inf"] {
        let out = run(&[
            "bench",
            "preimages",
            "--models",
            s(&demo_model()),
            "--data",
            s(&demo_data()),
            bad,
            "--out",
            s(&dir.path().join("p.jsonl")),
        ]);
        assert_bad_input(&out, "--chi-max");
        assert!(!dir.path().join("p.jsonl").exists());
    }
}

/// With several models, each summary row counts that model's tasks only (a bug once gave every
/// row the records of all models).
#[test]
fn bench_preimages_summarises_each_model_on_its_own_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    std::fs::copy(demo_model(), &a).unwrap();
    std::fs::copy(demo_model(), &b).unwrap();
    let models = format!("{},{}", s(&a), s(&b));
    let v = bench_preimages_summary(&models, "0", "1/255,2/255", &dir.path().join("p.jsonl"));
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["pairs"], 2, "{r}");
    }
}

#[test]
fn bench_preimages_compares_the_engines_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("p.jsonl");
    let v = bench_preimages_summary(s(&demo_model()), "0,1", "1/255", &jsonl);
    let c = &v[0];
    assert_eq!(c["pairs"], 2);
    // both hidden layers of both tasks are compared, and the engines agree
    assert_eq!(c["layers_compared"], 4);
    assert!(c["max_relative_difference"].as_f64().unwrap() < 1e-4);
    assert_eq!(c["fast_above_paper"], 0);
    assert!(c["ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 4);
}

#[test]
fn the_worker_subcommand_is_hidden() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("bench") && !help.contains("worker"), "{help}");
}

/// Runs `certquant worker` with `task` on stdin.
fn worker(task: &serde_json::Value) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = bin()
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(task.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_worker_runs_a_typed_task_and_prints_its_record() {
    let task = |id: usize| {
        serde_json::json!({
            "kind": "robustness",
            "model": s(&demo_model()),
            "data": s(&demo_data()),
            "id": id,
            "eps_text": "1/255",
            "opts": {"attack": true},
            "accuracy": false,
            "chi": null,
            "reused_preimage_seconds": 1.5,
            "out": null,
        })
    };
    let out = worker(&task(0));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "certified");
    assert_eq!(
        (v["id"].clone(), v["eps_text"].clone()),
        (0.into(), "1/255".into())
    );
    assert_eq!(v["attack_counterexample"], false);
    assert_eq!(v["reused_preimage_seconds"], 1.5);
    assert_eq!(v["model"], s(&demo_model()));
    // the same result as the command
    let cmd = on_demo(&["synth", "robustness"], "1/255", &["--json", "--attack"]);
    let c: serde_json::Value = serde_json::from_slice(&cmd.stdout).unwrap();
    for k in [
        "status",
        "label",
        "layers",
        "chi",
        "chi_source",
        "qnn_margin",
    ] {
        assert_eq!(v[k], c[k], "{k}");
    }
    // a failing task is an error record, not a failing worker
    let out = worker(&task(100_000));
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "error");
    assert!(v["error"].as_str().unwrap().contains("out of range"), "{v}");
    assert_eq!(v["eps"], 1.0 / 255.0);
    // an unreadable task is a worker failure (exit 2)
    let out = worker(&serde_json::json!({"kind": "nonsense"}));
    assert_bad_input(&out, "invalid worker task");
}

#[test]
fn bench_records_a_failing_task_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.jsonl");
    let out = run(&[
        "bench",
        "robustness",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--ids",
        "0,100000",
        "--eps",
        "1/255",
        "--no-accuracy",
        "--jobs",
        "2",
        "--out",
        s(&results),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sum: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (sum["tasks"].clone(), sum["errors"].clone()),
        (2.into(), 1.into())
    );
    let text = std::fs::read_to_string(&results).unwrap();
    let err: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["id"] == 100_000)
        .unwrap();
    assert_eq!(err["status"], "error");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("error: id 100000 out of range")
    );
    assert!(err["wall_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(err["model"], s(&demo_model()));
}

#[test]
fn solver_tuning_and_method_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert_bad_input(
        &on_demo(
            &["synth", "robustness"],
            "1/255",
            &["--dump-mps", s(&missing)],
        ),
        "--dump-mps",
    );
    assert_bad_input(
        &on_demo(
            &["synth", "robustness"],
            "1/255",
            &["--solver-param", "strong"],
        ),
        "name=value",
    );
    assert_bad_input(
        &on_demo(
            &["synth", "robustness"],
            "1/255",
            &["--guided-max-drop=-1", "--method", "guided"],
        ),
        "--guided-max-drop",
    );
    // a valid dump directory receives the run's MILPs, and the answer is the plain run's
    let plain = on_demo(&["synth", "robustness"], "1/255", &["--json"]);
    let dumped = on_demo(
        &["synth", "robustness"],
        "1/255",
        &[
            "--json",
            "--dump-mps",
            s(dir.path()),
            "--solver-param",
            "strong=0",
        ],
    );
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(dumped.status.code(), Some(0));
    let layers = |o: &Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (v["layers"].clone(), v["chi"].clone())
    };
    assert_eq!(layers(&plain), layers(&dumped));
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(files >= 1, "no MPS written");
}
