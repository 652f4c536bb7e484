//! `synth vnnlib` (docs/method.md §16, "Quantizing for a VNN-LIB property"): certified
//! quantization of a VNN-LIB property on the 5-input ACAS-like network of
//! `tests/vnnlib_certificate.rs` (a property that needs input splitting and LP multipliers,
//! plus two disjuncts that only a bias quantized with ≥ 3 fractional bits refutes), then
//! `check` VALID; a strategy tampered without changing the QNN is INVALID; a violated property
//! reports its float counterexample; bad inputs exit 2. The same on a VNN-COMP 2021 mnistfc
//! `holds` instance when `../shared` is present.

mod common;

use std::path::Path;

use common::acas::{PROPERTY_INPUTS, acas_like};
use common::{run, run_json, s};
use serde_json::Value;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Two input boxes; the counterexample: `y_0 ≥ 0.5`, or `0.1 ≤ y_2 ≤ −0.1` (multipliers), or
/// `y_1 ≥ 0.4 ∧ y_3 ≤ 1.5`, or `y_3 ≤ 1.05`, or `y_3 ≥ 1.2`. The bias 1.1 quantizes to 1 with
/// `F ≤ 2` (a counterexample) and into `(1.05, 1.2)` with `F ≥ 3`.
fn property() -> String {
    format!(
        "{}{}",
        PROPERTY_INPUTS,
        "(assert (or (>= Y_0 0.5)\n\
                (and (>= Y_2 0.1) (<= Y_2 -0.1))\n\
                (and (>= Y_1 0.4) (<= Y_3 1.5))\n\
                (<= Y_3 1.05)\n\
                (>= Y_3 1.2)))\n"
    )
}

fn setup(dir: &Path, property: &str) -> (String, String) {
    let model = dir.join("acas_like.onnx");
    certquant::onnx::export(&acas_like(1.1f32 as f64), &model).unwrap();
    let prop = dir.join("prop.vnnlib");
    std::fs::write(&prop, property).unwrap();
    (s(&model).to_string(), s(&prop).to_string())
}

fn check(cert: &Path, model: &str, qnn: &Path, prop: &str) -> std::process::Output {
    run(&[
        "check",
        "--certificate",
        s(cert),
        "--model",
        model,
        "--qnn",
        s(qnn),
        "--vnnlib",
        prop,
    ])
}

#[test]
fn synth_vnnlib_certifies_and_check_accepts_only_the_true_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let (model, prop) = setup(dir.path(), &property());
    let out_dir = dir.path().join("out");
    let (code, v) = run_json(&[
        "synth",
        "vnnlib",
        "--model",
        &model,
        "--vnnlib",
        &prop,
        "--out",
        s(&out_dir),
        "--attack",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "certified", "{v}");
    assert_eq!(v["certificate_valid"], true, "{v}");
    assert_eq!(v["attack_counterexample"], false, "{v}");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    // the output layer needs F ≥ 3 (bias 1.1 into (1.05, 1.2)); the search finds exactly 3
    assert_eq!(layers[1]["frac"], 3, "{v}");
    assert!(v["float_splits"].as_u64().unwrap() > 0, "{v}");
    assert!(v["qnn_splits"].as_u64().unwrap() > 0, "{v}");
    assert!(v["qnn_worst_upper"].as_f64().unwrap() < 0.0, "{v}");
    // the certificate: a strategy, the QNN's own hash, split trees
    let cert = out_dir.join("certificate.json");
    let qnn = out_dir.join("qnn.onnx");
    let c: Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(c["strategy"].as_array().unwrap().len(), 2, "{c}");
    assert_ne!(c["qnn"]["sha256"], c["original_model"]["sha256"]);
    let regions = c["vnnlib"]["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2);
    assert!(
        regions
            .iter()
            .flat_map(|r| r["nodes"].as_array().unwrap())
            .any(|n| n.get("split").is_some())
    );
    // `check` with the recorded files, and with them passed explicitly
    let out = run(&["check", "--certificate", s(&cert)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("VALID"));
    let out = check(&cert, &model, &qnn, &prop);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // tampered: layer 1's F (and Q, by the integer-bit rule) lowered by one, QNN unchanged
    let mut t = c.clone();
    let f = t["strategy"][1]["frac"].as_u64().unwrap();
    let q = t["strategy"][1]["total"].as_u64().unwrap();
    t["strategy"][1]["frac"] = Value::from(f - 1);
    t["strategy"][1]["total"] = Value::from(q - 1);
    let bad = dir.path().join("tampered.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    let out = check(&bad, &model, &qnn, &prop);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("INVALID"), "{}", text(&out));
    // the certificate does not speak of another property
    let other = dir.path().join("other.vnnlib");
    std::fs::write(&other, property().replace("(<= Y_3 1.05)", "(<= Y_3 1.0)")).unwrap();
    let out = check(&cert, &model, &qnn, s(&other));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn synth_vnnlib_violated_unknown_and_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    // y_4 = relu(x_0) + relu(−x_1) reaches 2 at (1, −1, …): violated on the float network
    let (model, prop) = setup(
        dir.path(),
        &property().replace("(>= Y_0 0.5)", "(>= Y_4 1.5)"),
    );
    let cx = dir.path().join("cx.txt");
    let out_dir = dir.path().join("out");
    let (code, v) = run_json(&[
        "synth",
        "vnnlib",
        "--model",
        &model,
        "--vnnlib",
        &prop,
        "--out",
        s(&out_dir),
        "--counterexample",
        s(&cx),
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "violated", "{v}");
    assert!(
        v["counterexample"]["margin"].as_f64().unwrap() >= 0.0,
        "{v}"
    );
    assert!(std::fs::read_to_string(&cx).unwrap().contains("(X_0 "));
    assert!(!out_dir.join("certificate.json").exists());
    // holds on the float network, but no strategy with F ≤ 2 refutes y_3 ≤ 1.05: unknown
    let prop2 = dir.path().join("holds.vnnlib");
    std::fs::write(&prop2, property()).unwrap();
    let (code, v) = run_json(&[
        "synth",
        "vnnlib",
        "--model",
        &model,
        "--vnnlib",
        s(&prop2),
        "--max-frac",
        "2",
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "unknown", "{v}");
    assert!(v["note"].as_str().unwrap().contains("B_u"), "{v}");
    // bad inputs: exit 2 naming the problem
    let missing = dir.path().join("missing.vnnlib");
    let bad = dir.path().join("bad.vnnlib");
    std::fs::write(&bad, "(declare-const X_0 Real)\n(assert (<= X_0 1)\n").unwrap();
    for (args, want) in [
        (
            vec!["--model", &model, "--vnnlib", s(&missing)],
            "missing.vnnlib",
        ),
        (vec!["--model", &model, "--vnnlib", s(&bad)], "bad.vnnlib"),
        (
            vec![
                "--model",
                s(&dir.path().join("none.onnx")),
                "--vnnlib",
                s(&prop2),
            ],
            "none.onnx",
        ),
        (
            vec!["--model", &model, "--vnnlib", s(&prop2), "--timeout", "0"],
            "--timeout",
        ),
    ] {
        let mut a = vec!["synth", "vnnlib"];
        a.extend(args);
        let out = run(&a);
        assert_eq!(out.status.code(), Some(2), "{want}: {}", text(&out));
        assert!(text(&out).contains(want), "{want}: {}", text(&out));
    }
}

/// A VNN-COMP 2021 mnistfc `holds` instance (proven by `verify` on the whole box), quantized,
/// certified and checked, with and without the accuracy floor on MNIST.
#[test]
fn synth_vnnlib_on_an_mnistfc_instance() {
    let Some(root) = certquant::shared::shared_dir("benchmarks/vnncomp2021") else {
        eprintln!("skipped: ../shared/benchmarks/vnncomp2021 is absent");
        return;
    };
    let dir = root.join("mnistfc");
    let tmp = tempfile::tempdir().unwrap();
    let model = dir.join("mnist-net_256x2.onnx");
    let prop = dir.join("prop_2_0.03.vnnlib");
    let out_dir = tmp.path().join("out");
    let (code, v) = run_json(&[
        "synth",
        "vnnlib",
        "--model",
        s(&model),
        "--vnnlib",
        s(&prop),
        "--timeout",
        "300",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "certified", "{v}");
    let bits: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["frac"].as_u64().unwrap())
        .sum();
    assert!(bits < 3 * 16, "the search lowered some layer: {v}");
    let out = run(&[
        "check",
        "--certificate",
        s(&out_dir.join("certificate.json")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("VALID"));
    let Some(mnist) = certquant::shared::shared_dir("data/mnist") else {
        eprintln!("skipped the accuracy floor: ../shared/data/mnist is absent");
        return;
    };
    let floor_dir = tmp.path().join("floor");
    let (code, f) = run_json(&[
        "synth",
        "vnnlib",
        "--model",
        s(&model),
        "--vnnlib",
        s(&prop),
        "--accuracy-data",
        s(&mnist),
        "--max-acc-drop",
        "1",
        "--out",
        s(&floor_dir),
    ]);
    assert_eq!(code, 0, "{f}");
    assert_eq!(f["status"], "certified", "{f}");
    let (fa, qa) = (
        f["float_accuracy"].as_f64().unwrap(),
        f["qnn_accuracy"].as_f64().unwrap(),
    );
    assert!(qa >= fa - 0.01, "{f}");
    let out = run(&[
        "check",
        "--certificate",
        s(&floor_dir.join("certificate.json")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
