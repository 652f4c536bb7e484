//! End-to-end tests of `certquant check`: a certificate produced by the real pipeline on the
//! embedded demo passes, and tampered variants are rejected (exit 1) for the right reason;
//! unreadable inputs give exit 2. Uses only the demo assets shipped in the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use certquant::certificate::sha256_hex;
use certquant::model::Affine;
use certquant::onnx;
use certquant::spec::InputBox;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certquant"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A fresh scratch directory under cargo's per-target temporary directory.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("check-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the real synthesis once (demo network, image 0, eps 1/255) and returns the output
/// directory holding `qnn.onnx` and `certificate.json` (with absolute file paths inside).
fn synthesized() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("synth");
        let out = bin()
            .args([
                "synth",
                "robustness",
                "--model",
                s(&root().join("assets/demo/fashion_mlp.onnx")),
                "--data",
                s(&root().join("assets/demo")),
                "--id",
                "0",
                "--eps",
                "1/255",
                "--out",
                s(&dir),
                "--json",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "synthesis must certify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn cert_json() -> Value {
    let bytes = std::fs::read(synthesized().join("certificate.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn write_cert(dir: &Path, v: &Value) -> PathBuf {
    let p = dir.join("certificate.json");
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn check(args: &[&str]) -> Output {
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    bin().args(&a).output().unwrap()
}

/// Runs `check --json` on a certificate file; returns the exit code and the report.
fn check_json(cert: &Path) -> (i32, Value) {
    let out = check(&["--certificate", s(cert), "--json"]);
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

fn reasons(report: &Value) -> Vec<String> {
    report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// Exit 1, not valid, and some reason contains `needle`.
fn assert_rejected(cert: &Path, needle: &str) -> Value {
    let (code, report) = check_json(cert);
    let rs = reasons(&report);
    assert_eq!(code, 1, "{rs:?}");
    assert_eq!(report["valid"], false);
    assert!(
        rs.iter().any(|r| r.contains(needle)),
        "{needle:?} not in {rs:?}"
    );
    report
}

#[test]
fn the_synthesized_certificate_is_valid() {
    let dir = synthesized();
    let cert = dir.join("certificate.json");
    let (code, report) = check_json(&cert);
    assert_eq!(code, 0, "{:?}", reasons(&report));
    assert_eq!(report["valid"], true);
    let p = &report["properties"][0];
    assert_eq!(p["proven"], true);
    let (ours, claimed) = (
        p["margin"].as_f64().unwrap(),
        p["claimed_margin"].as_f64().unwrap(),
    );
    assert!(ours > 0.0);
    // the same relaxation family: the re-proven margin matches the synthesis' one closely
    assert!(
        (ours - claimed).abs() <= 1e-9 * (1.0 + claimed.abs()),
        "{ours} vs {claimed}"
    );
    assert!(report["statistical"].is_null());

    // explicit paths and the human-readable output
    let out = check(&[
        "--certificate",
        s(&cert),
        "--model",
        s(&root().join("assets/demo/fashion_mlp.onnx")),
        "--qnn",
        s(&dir.join("qnn.onnx")),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("VALID") && text.contains("property 0: proven"),
        "{text}"
    );
}

/// Writes a copy of the QNN with one weight of layer 0 moved by one grid step, and returns
/// its path and (row, col).
fn tampered_qnn(dir: &Path) -> (PathBuf, usize, usize) {
    let q = onnx::import(&synthesized().join("qnn.onnx")).unwrap();
    let frac = cert_json()["strategy"][0]["frac"].as_u64().unwrap() as i32;
    let l0 = &q.layers()[0];
    let mut w = l0.weights().expect("a dense MLP").to_vec();
    // a weight well inside the range, so one step up stays on the grid and unclamped
    let idx = w.iter().position(|&v| v > 0.0 && v < 0.25).unwrap();
    w[idx] += 2f64.powi(-frac);
    let l = Affine::new(0, l0.outputs(), l0.inputs(), w, l0.bias().to_vec()).unwrap();
    let q2 = q.with_layer(0, l).unwrap();
    let p = dir.join("qnn.onnx");
    onnx::export(&q2, &p).unwrap();
    (p, idx / l0.inputs(), idx % l0.inputs())
}

#[test]
fn a_changed_qnn_weight_is_rejected_by_hash_and_by_derivation() {
    let dir = scratch("weight");
    let (qnn, row, col) = tampered_qnn(&dir);
    let mut v = cert_json();
    v["qnn"]["file"] = Value::String(s(&qnn).into());
    // 1. the certificate's hash no longer matches the file
    let cert = write_cert(&dir, &v);
    assert_rejected(&cert, "QNN hash mismatch");
    // 2. an attacker also updates the hash: the weight comparison itself must catch it
    v["qnn"]["sha256"] = Value::String(sha256_hex(&std::fs::read(&qnn).unwrap()));
    let cert = write_cert(&dir, &v);
    let report = assert_rejected(
        &cert,
        &format!("first mismatch at layer 0 weight [{row}, {col}]"),
    );
    assert!(
        !reasons(&report).iter().any(|r| r.contains("hash")),
        "{:?}",
        reasons(&report)
    );
}

#[test]
fn a_changed_bit_width_is_rejected() {
    let dir = scratch("bits");
    // one more fractional bit (integer bits kept): the QNN is not the quantization under it
    let mut v = cert_json();
    let last = v["strategy"].as_array().unwrap().len() - 1;
    let cfg = &mut v["strategy"][last];
    cfg["frac"] = Value::from(cfg["frac"].as_u64().unwrap() + 1);
    cfg["total"] = Value::from(cfg["total"].as_u64().unwrap() + 1);
    let cert = write_cert(&dir, &v);
    assert_rejected(&cert, &format!("first mismatch at layer {last}"));
    // one more integer bit: violates the integer-bit rule
    let mut v = cert_json();
    let cfg = &mut v["strategy"][0];
    cfg["int"] = Value::from(cfg["int"].as_u64().unwrap() + 1);
    cfg["total"] = Value::from(cfg["total"].as_u64().unwrap() + 1);
    let cert = write_cert(&dir, &v);
    assert_rejected(&cert, "integer bits");
}

#[test]
fn an_enlarged_radius_is_rejected() {
    let dir = scratch("eps");
    let v0 = cert_json();
    let pixels: Vec<f64> = v0["properties"][0]["source"]["pixels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_u64().unwrap() as f64 / 255.0)
        .collect();
    // 1. radius and box both enlarged consistently (hashes untouched, so still correct):
    //    the statement checks pass, the proof must fail
    let eps = 64.0 / 255.0;
    let bx = InputBox::linf_ball(&pixels, eps).unwrap();
    let mut v = v0.clone();
    v["properties"][0]["box"] = serde_json::to_value(&bx).unwrap();
    v["properties"][0]["source"]["eps"] = Value::from(eps);
    v["properties"][0]["source"]["eps_text"] = Value::from("64/255");
    let cert = write_cert(&dir, &v);
    let report = assert_rejected(&cert, "not proven on the QNN");
    assert_eq!(report["properties"][0]["region_ok"], true);
    assert_eq!(report["properties"][0]["proven"], false);
    assert!(report["properties"][0]["margin"].as_f64().unwrap() <= 0.0);
    // 2. radius enlarged but the box kept: the box does not cover the claimed region
    let mut v = v0.clone();
    v["properties"][0]["source"]["eps"] = Value::from(2.0 / 255.0);
    v["properties"][0]["source"]["eps_text"] = Value::from("2/255");
    let cert = write_cert(&dir, &v);
    let report = assert_rejected(&cert, "does not contain the claimed region");
    assert_eq!(report["properties"][0]["region_ok"], false);
    // 3. the box shrunk by one ulp in one coordinate that is not clipped
    let mut v = v0.clone();
    let lo = v["properties"][0]["box"]["lo"].as_array_mut().unwrap();
    let i = lo.iter().position(|x| x.as_f64().unwrap() > 0.0).unwrap();
    // the synthesized box has slack of a few ulps; the naively rounded k/255 − eps is within
    // 2 ulps of the exact value, so 4 ulps above it is certainly inside the claimed region
    let naive = (pixels[i] - 1.0 / 255.0)
        .next_up()
        .next_up()
        .next_up()
        .next_up();
    lo[i] = Value::from(naive);
    let cert = write_cert(&dir, &v);
    assert_rejected(&cert, &format!("first {i} "));
}

#[test]
fn a_changed_label_is_rejected() {
    let dir = scratch("label");
    let mut v = cert_json();
    let label = v["properties"][0]["output"]["label"].as_u64().unwrap();
    v["properties"][0]["output"]["label"] = Value::from((label + 1) % 10);
    let cert = write_cert(&dir, &v);
    let report = assert_rejected(&cert, "not proven on the QNN");
    assert!(report["properties"][0]["margin"].as_f64().unwrap() < 0.0);
    // a label that does not exist
    v["properties"][0]["output"]["label"] = Value::from(10);
    let cert = write_cert(&dir, &v);
    assert_rejected(&cert, "out of range");
}

/// Exit code 2, a reason on stderr mentioning `needle`, nothing on stdout.
fn assert_bad_input(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in {err:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unreadable_inputs_exit_2() {
    let dir = scratch("bad");
    let good = synthesized().join("certificate.json");
    // missing certificate
    let out = check(&["--certificate", s(&dir.join("nope.json")), "--json"]);
    assert_bad_input(&out, "nope.json");
    // truncated certificate
    let text = std::fs::read_to_string(&good).unwrap();
    let trunc = dir.join("trunc.json");
    std::fs::write(&trunc, &text[..text.len() / 2]).unwrap();
    assert_bad_input(
        &check(&["--certificate", s(&trunc)]),
        "not a valid certificate",
    );
    // a QNN file that is not ONNX
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    assert_bad_input(
        &check(&["--certificate", s(&good), "--qnn", s(&junk), "--json"]),
        "not an ONNX model",
    );
    // a missing model file
    assert_bad_input(
        &check(&[
            "--certificate",
            s(&good),
            "--model",
            s(&dir.join("gone.onnx")),
        ]),
        "gone.onnx",
    );
    // no recorded file and no option
    let mut v = cert_json();
    v["qnn"].as_object_mut().unwrap().remove("file");
    let c = write_cert(&dir, &v);
    assert_bad_input(&check(&["--certificate", s(&c)]), "--qnn");
}

#[test]
fn the_demo_certificate_checks_against_the_embedded_model() {
    // `certquant demo` records "<embedded demo model>" as the original model's file; the
    // checker then uses the embedded bytes (whose hash must still match).
    let dir = scratch("demo");
    let out = bin()
        .args(["demo", "--out", s(&dir), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report) = check_json(&dir.join("certificate.json"));
    assert_eq!(code, 0, "{:?}", reasons(&report));
    assert_eq!(report["model"], "<embedded demo model>");
}

#[test]
fn a_property_set_certificate_is_checked_property_by_property() {
    // one strategy for three inputs: every property is re-proven; tampering one is reported
    // for that property only
    let dir = scratch("set");
    let out = bin()
        .args([
            "synth",
            "robustness",
            "--model",
            s(&root().join("assets/demo/fashion_mlp.onnx")),
            "--data",
            s(&root().join("assets/demo")),
            "--id",
            "0",
            "--id",
            "1",
            "--id",
            "2",
            "--eps",
            "1/255",
            "--out",
            s(&dir),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = dir.join("certificate.json");
    let (code, report) = check_json(&cert);
    assert_eq!(code, 0, "{:?}", reasons(&report));
    assert_eq!(report["properties"].as_array().unwrap().len(), 3);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    let label = v["properties"][1]["output"]["label"].as_u64().unwrap();
    v["properties"][1]["output"]["label"] = Value::from((label + 1) % 10);
    let tampered = dir.join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    let report = assert_rejected(&write_cert(&tampered, &v), "property 1:");
    let props = report["properties"].as_array().unwrap();
    assert_eq!(props[0]["proven"], true);
    assert_eq!(props[1]["proven"], false);
    assert_eq!(props[2]["proven"], true);
    assert_eq!(reasons(&report).len(), 1, "{:?}", reasons(&report));
}
