//! The Algorithm-1 route of `synth robustness --vnnlib` (docs/method.md eqs. (77), (78)) on the
//! ACAS-like network of `tests/common/acas.rs`, whose output 3 is the constant 1.1: a
//! robustness query "∨_{j ≠ 3} Y_j ≥ Y_3" on a box where DeepPoly proves it in one box runs
//! Algorithm 1 (χ per hidden layer); on a box that needs input splitting its leaves form a
//! property set (`set-search`); a query covering only some j falls back to the split-proof
//! route. Every certificate is re-proven by `certquant check`.

mod common;

use std::path::Path;

use common::acas::acas_like;
use common::{run, run_json, s};

/// Declarations of `X_0..X_4` and `Y_0..Y_4`, and the box `lo..hi`.
fn inputs(lo: [f64; 5], hi: [f64; 5]) -> String {
    let mut t = String::new();
    for i in 0..5 {
        t += &format!("(declare-const X_{i} Real)\n");
    }
    for j in 0..5 {
        t += &format!("(declare-const Y_{j} Real)\n");
    }
    for i in 0..5 {
        t += &format!(
            "(assert (>= X_{i} {}))\n(assert (<= X_{i} {}))\n",
            lo[i], hi[i]
        );
    }
    t
}

/// Every `j ≠ 3` in the competition's form, one with the reader's equivalent `Y_3 <= Y_j`.
const ROBUST_3: &str =
    "(assert (or (and (>= Y_0 Y_3)) (and (>= Y_1 Y_3)) (and (<= Y_3 Y_2)) (and (>= Y_4 Y_3))))\n";

/// DeepPoly proves label 3 on this box at once (h_0 = h_1 = 0, h_2 = h_3 active).
const TIGHT: ([f64; 5], [f64; 5]) = ([0.2, -0.1, 0.9, 0.0, 0.0], [0.3, 0.0, 1.0, 0.1, 0.1]);

/// The twin neurons are unstable here: label 3 needs input splitting on the float network.
const WIDE: ([f64; 5], [f64; 5]) = ([0.2, -0.3, -1.0, 0.0, -0.5], [0.6, 0.1, 1.0, 1.0, 0.5]);

fn setup(dir: &Path, files: &[(&str, String)]) -> String {
    let model = dir.join("acas_like.onnx");
    certquant::onnx::export(&acas_like(1.1f32 as f64), &model).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    s(&model).to_string()
}

fn check(cert: &Path) -> (Option<i32>, String) {
    let out = run(&["check", "--certificate", s(cert)]);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_robustness_query_runs_algorithm_1_and_check_accepts_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let text = inputs(TIGHT.0, TIGHT.1) + ROBUST_3;
    let model = setup(dir.path(), &[("tight.vnnlib", text)]);
    let prop = dir.path().join("tight.vnnlib");
    for method in ["guided", "paper"] {
        let out = dir.path().join(method);
        let (code, v) = run_json(&[
            "synth",
            "robustness",
            "--model",
            &model,
            "--vnnlib",
            s(&prop),
            "--method",
            method,
            "--out",
            s(&out),
            "--attack",
        ]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["status"], "certified", "{v}");
        assert_eq!(v["route"], "algorithm1", "{v}");
        assert_eq!(v["properties"], 1, "{v}");
        // one hidden layer: one preimage χ
        assert_eq!(v["chi"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["files"][0]["certified"], true, "{v}");
        assert_eq!(v["certificate_valid"], true, "{v}");
        assert_eq!(v["attack_counterexample"], false, "{v}");
        let cert = out.join("certificate.json");
        let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
        assert!(c["vnnlib"].is_object(), "{c}");
        let (code, text) = check(&cert);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("VALID"), "{text}");
    }
}

#[test]
fn a_box_that_needs_splitting_gives_its_leaves_as_a_property_set() {
    let dir = tempfile::tempdir().unwrap();
    let text = inputs(WIDE.0, WIDE.1) + ROBUST_3;
    let model = setup(dir.path(), &[("wide.vnnlib", text)]);
    let prop = dir.path().join("wide.vnnlib");
    let out = dir.path().join("out");
    let (code, v) = run_json(&[
        "synth",
        "robustness",
        "--model",
        &model,
        "--vnnlib",
        s(&prop),
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "certified", "{v}");
    assert_eq!(v["route"], "set-search", "{v}");
    assert!(v["properties"].as_u64().unwrap() > 1, "{v}");
    assert!(v["files"][0]["float_splits"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["files"][0]["note"]
            .as_str()
            .unwrap()
            .contains("input splitting"),
        "{v}"
    );
    let (code, text) = check(&out.join("certificate.json"));
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_set_of_files_and_a_partial_query_fall_back_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let partial = inputs(TIGHT.0, TIGHT.1) + "(assert (or (>= Y_0 Y_3) (>= Y_1 Y_3)))\n";
    let model = setup(
        dir.path(),
        &[
            ("a.vnnlib", inputs(TIGHT.0, TIGHT.1) + ROBUST_3),
            ("b.vnnlib", inputs(WIDE.0, WIDE.1) + ROBUST_3),
            ("partial.vnnlib", partial),
        ],
    );
    let a = dir.path().join("a.vnnlib");
    let b = dir.path().join("b.vnnlib");
    let out = dir.path().join("set");
    let (code, v) = run_json(&[
        "synth",
        "robustness",
        "--model",
        &model,
        "--vnnlib",
        s(&a),
        s(&b),
        "--search",
        "exact",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["route"], "set-search", "{v}");
    assert_eq!(v["files"].as_array().unwrap().len(), 2, "{v}");
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(c["vnnlib_set"].as_array().map(Vec::len), Some(2), "{c}");
    let (code, text) = check(&out.join("certificate.json"));
    assert_eq!(code, Some(0), "{text}");
    // only some j ≠ 3: not plain robustness, the split-proof route (and it says so)
    let p = dir.path().join("partial.vnnlib");
    let (code, v) = run_json(&["synth", "robustness", "--model", &model, "--vnnlib", s(&p)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["route"], "split-proof", "{v}");
    let note = v["note"].as_str().unwrap();
    assert!(
        note.contains("not a robustness query") && note.contains("missing Y_2"),
        "{v}"
    );
    // --relaxed is refused there, with the reason
    let out = run(&[
        "synth",
        "robustness",
        "--model",
        &model,
        "--vnnlib",
        s(&p),
        "--relaxed",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--relaxed needs a robustness query"));
}

/// Where Algorithm 1 ends `unknown` (here `--method paper` on mnistfc 256×2, prop_12 at
/// 0.03: a hidden layer's preimage collapses), the files that hold go on through the
/// split-proof route, which certifies; the note says why, and `check` accepts the certificate.
#[test]
fn an_unknown_algorithm_1_answer_falls_back_to_the_split_proof_route() {
    let Some(fc) = certquant::shared::shared_dir("benchmarks/vnncomp2021/mnistfc") else {
        eprintln!("skipped: ../shared/benchmarks/vnncomp2021/mnistfc is absent");
        return;
    };
    let Some(mnist) = certquant::shared::shared_dir("data/mnist") else {
        eprintln!("skipped: ../shared/data/mnist is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (model, prop) = (
        fc.join("mnist-net_256x2.onnx"),
        fc.join("prop_12_0.03.vnnlib"),
    );
    let (code, j) = run_json(&[
        "synth",
        "robustness",
        "--model",
        s(&model),
        "--vnnlib",
        s(&prop),
        "--method",
        "paper",
        "--accuracy-data",
        s(&mnist),
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["status"], "certified", "{j}");
    assert_eq!(j["route"], "split-proof", "{j}");
    let note = j["note"].as_str().unwrap();
    assert!(
        note.contains("algorithm1 route did not certify") && note.contains("Unknown"),
        "{note}"
    );
    let (c, text) = check(&out.join("certificate.json"));
    assert_eq!(c, Some(0), "{text}");
    assert!(text.contains("VALID"), "{text}");
}

/// `--timeout` bounds the Algorithm-1 route (docs/method.md eqs. (81), (82)): with a budget
/// that has run out before the synthesis starts, Algorithm 1 ends `timeout` at once, nothing
/// is certified or written, and the split-proof fallback does not start either.
#[test]
fn an_exhausted_timeout_ends_algorithm_1_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let text = inputs(TIGHT.0, TIGHT.1) + ROBUST_3;
    let model = setup(dir.path(), &[("tight.vnnlib", text)]);
    let prop = dir.path().join("tight.vnnlib");
    for method in ["guided", "paper"] {
        let out = dir.path().join(format!("late-{method}"));
        let t = std::time::Instant::now();
        let (code, v) = run_json(&[
            "synth",
            "robustness",
            "--model",
            &model,
            "--vnnlib",
            s(&prop),
            "--method",
            method,
            "--timeout",
            "0.000001",
            "--out",
            s(&out),
        ]);
        assert!(t.elapsed().as_secs() < 60, "{v}");
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["status"], "unknown", "{v}");
        assert_eq!(v["route"], "algorithm1", "{v}");
        let note = v["note"].as_str().unwrap_or_default();
        assert!(note.contains("time budget ran out"), "{v}");
        assert_eq!(v["files"][0]["certified"], false, "{v}");
        assert!(!out.join("certificate.json").exists());
    }
}
