//! Helpers shared by the end-to-end tests: running the binary, reading its JSON, and the paths
//! of the embedded demo assets. Each test file uses a part of it.
#![allow(dead_code)]

pub mod acas;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The embedded demo network.
pub fn demo_model() -> PathBuf {
    root().join("assets/demo/fashion_mlp.onnx")
}

/// The embedded demo images (IDX pair).
pub fn demo_data() -> PathBuf {
    root().join("assets/demo")
}

/// A path as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `certquant <args>`: its whole output.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certquant"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// The one JSON object a command printed on stdout (panics with both streams otherwise).
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "exit {:?}, stdout not JSON ({e}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `certquant <args> --json`: the exit code and the JSON object printed.
pub fn run_json(args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let out = run(&a);
    (out.status.code().expect("exit code"), json_of(&out))
}

/// Asserts that a command succeeded, showing both streams if not.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `certquant check` of `dir/certificate.json` against `model` and `dir/qnn.onnx`.
pub fn check_dir(dir: &Path, model: &str) -> Output {
    let cert = dir.join("certificate.json");
    let qnn = dir.join("qnn.onnx");
    run(&[
        "check",
        "--certificate",
        s(&cert),
        "--model",
        model,
        "--qnn",
        s(&qnn),
    ])
}

/// `certquant check --json` of a certificate against the original `model` (the QNN from the
/// path the certificate records): the report.
pub fn check_json(cert: &Path, model: &Path) -> Value {
    json_of(&run(&[
        "check",
        "--certificate",
        s(cert),
        "--model",
        s(model),
        "--json",
    ]))
}

/// `certquant synth robustness` on the embedded demo network and images with `args`.
pub fn synth_demo(args: &[&str]) -> Output {
    let (m, d) = (demo_model(), demo_data());
    let mut a = vec!["synth", "robustness", "--model", s(&m), "--data", s(&d)];
    a.extend_from_slice(args);
    run(&a)
}

/// `synth robustness --ids IDS --eps 1/255 --semantics SEM` on the demo with its images as the
/// accuracy data (floor: 10 points), `--attack`, writing to `out`, JSON on stdout.
pub fn synth_demo_set(ids: &str, semantics: &str, out: &Path) -> Output {
    let d = demo_data();
    synth_demo(&[
        "--ids",
        ids,
        "--eps",
        "1/255",
        "--semantics",
        semantics,
        "--accuracy-data",
        s(&d),
        "--max-acc-drop",
        "10",
        "--attack",
        "--out",
        s(out),
        "--json",
    ])
}
