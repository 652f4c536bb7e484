//! `synth robustness --vnnlib DIR|FILE…` (one certified QNN for a set of VNN-LIB properties,
//! docs/method.md eq. (67)) and `bench vnncomp --synth`, on the 5-input ACAS-like network of
//! `tests/common/acas.rs`: a hand-made set of files (one of them provable only with input
//! splitting and LP multipliers), `check` accepting the set certificate and rejecting tampered
//! ones, per-file statuses when a file does not hold, bad inputs (exit 2), and the bench on a
//! small instance CSV.

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

/// Needs splitting (twin neurons), multipliers (`0.1 ≤ y_2 ≤ −0.1`) and `F ≥ 3` on the output
/// layer (the bias 1.1 must stay in `(1.05, 1.2)`).
const SPLIT: &str = "(assert (or (>= Y_0 0.5)\n\
    (and (>= Y_2 0.1) (<= Y_2 -0.1))\n\
    (and (>= Y_1 0.4) (<= Y_3 1.5))\n\
    (<= Y_3 1.05)\n\
    (>= Y_3 1.2)))\n";

/// `y_4 = relu(x_0) + relu(−x_1) ≤ 2`: holds on the whole box.
const BOUND: &str = "(assert (>= Y_4 2.5))\n";

/// `y_4` reaches 2 at `(1, −1, …)`: violated.
const VIOLATED: &str = "(assert (>= Y_4 1.5))\n";

/// The model and a folder `props/` with the given `(name, output assertion)` files.
fn setup(dir: &Path, props: &[(&str, &str)]) -> String {
    let model = dir.join("acas_like.onnx");
    certquant::onnx::export(&acas_like(1.1f32 as f64), &model).unwrap();
    let p = dir.join("props");
    std::fs::create_dir_all(&p).unwrap();
    for (name, out) in props {
        std::fs::write(p.join(name), format!("{PROPERTY_INPUTS}{out}")).unwrap();
    }
    s(&model).to_string()
}

#[test]
fn one_qnn_for_a_directory_of_properties_and_check_rejects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let model = setup(
        dir.path(),
        &[("a_split.vnnlib", SPLIT), ("b_bound.vnnlib", BOUND)],
    );
    // a non-property file in the folder is ignored
    std::fs::write(dir.path().join("props/readme.txt"), "not a property").unwrap();
    let props = dir.path().join("props");
    let out_dir = dir.path().join("out");
    let (code, v) = run_json(&[
        "synth",
        "robustness",
        "--model",
        &model,
        "--vnnlib",
        s(&props),
        "--out",
        s(&out_dir),
        "--attack",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "certified", "{v}");
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{v}");
    assert!(
        files[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("a_split.vnnlib")
    );
    assert!(
        files
            .iter()
            .all(|f| f["float"] == "holds" && f["certified"] == true)
    );
    // the splitting property needs splits on the float network and on the QNN
    assert!(files[0]["float_splits"].as_u64().unwrap() > 0, "{v}");
    assert!(files[0]["qnn_splits"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["layers"][1]["frac"], 3, "{v}");
    assert_eq!(v["certificate_valid"], true, "{v}");
    assert_eq!(v["attack_counterexample"], false, "{v}");
    // the certificate: one proof per file in `vnnlib_set`
    let cert = out_dir.join("certificate.json");
    let qnn = out_dir.join("qnn.onnx");
    let c: Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    assert!(c.get("vnnlib").is_none(), "{c}");
    let set = c["vnnlib_set"].as_array().unwrap();
    assert_eq!(set.len(), 2);
    let out = run(&["check", "--certificate", s(&cert)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("VNN-LIB set file 1"), "{}", text(&out));
    let check = |c: &Value, name: &str| {
        let bad = dir.path().join(name);
        std::fs::write(&bad, serde_json::to_string_pretty(c).unwrap()).unwrap();
        let out = run(&[
            "check",
            "--certificate",
            s(&bad),
            "--model",
            &model,
            "--qnn",
            s(&qnn),
        ]);
        (out.status.code(), text(&out))
    };
    assert_eq!(check(&c, "same.json").0, Some(0));
    // tampered: a leaf of the splitting file's tree removed
    let mut t = c.clone();
    let nodes = t["vnnlib_set"][0]["regions"][0]["nodes"]
        .as_array_mut()
        .unwrap();
    assert!(nodes.len() > 1);
    nodes.pop();
    let (code, out) = check(&t, "leaf.json");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("INVALID") && out.contains("VNN-LIB set file 0"),
        "{out}"
    );
    // tampered: the output layer's F lowered by one (QNN unchanged)
    let mut t = c.clone();
    let f = t["strategy"][1]["frac"].as_u64().unwrap();
    let q = t["strategy"][1]["total"].as_u64().unwrap();
    t["strategy"][1]["frac"] = Value::from(f - 1);
    t["strategy"][1]["total"] = Value::from(q - 1);
    assert_eq!(check(&t, "frac.json").0, Some(1));
    // tampered: the two files' proofs swapped (each proof is about its own file)
    let mut t = c.clone();
    let (p0, p1) = (set[0]["regions"].clone(), set[1]["regions"].clone());
    t["vnnlib_set"][0]["regions"] = p1;
    t["vnnlib_set"][1]["regions"] = p0;
    assert_eq!(check(&t, "swap.json").0, Some(1));
    // a file changed after certification: its hash no longer matches
    std::fs::write(
        props.join("b_bound.vnnlib"),
        format!("{PROPERTY_INPUTS}(assert (>= Y_4 2.4))\n"),
    )
    .unwrap();
    let (code, out) = check(&c, "changed.json");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("hash mismatch"), "{out}");
}

#[test]
fn files_that_do_not_hold_get_their_own_status_and_bad_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = setup(
        dir.path(),
        &[("a_split.vnnlib", SPLIT), ("c_violated.vnnlib", VIOLATED)],
    );
    let p = dir.path().join("props");
    let (a, c) = (p.join("a_split.vnnlib"), p.join("c_violated.vnnlib"));
    // two files given one by one: the violated one is reported, the other still certified
    let (code, v) = run_json(&[
        "synth",
        "robustness",
        "--model",
        &model,
        "--vnnlib",
        s(&a),
        s(&c),
    ]);
    assert_eq!(code, 1, "{v}");
    assert_ne!(v["status"], "certified", "{v}");
    assert_eq!(v["files"][0]["float"], "holds", "{v}");
    assert_eq!(v["files"][0]["certified"], true, "{v}");
    assert_eq!(v["files"][1]["float"], "violated", "{v}");
    assert_eq!(v["files"][1]["certified"], false, "{v}");
    assert!(v["note"].as_str().unwrap().contains("1 of 2"), "{v}");
    // a single violated file: nothing to certify
    let (code, v) = run_json(&["synth", "robustness", "--model", &model, "--vnnlib", s(&c)]);
    assert_eq!(code, 1, "{v}");
    assert!(v["layers"].as_array().unwrap().is_empty(), "{v}");
    // bad inputs
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let bad_dims = dir.path().join("dims.vnnlib");
    std::fs::write(
        &bad_dims,
        "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= Y_0 1))",
    )
    .unwrap();
    let broken = dir.path().join("broken.vnnlib");
    std::fs::write(&broken, "(declare-const X_0 Real)\n(assert (>= X_0 0)").unwrap();
    for (args, needle) in [
        (vec![s(&empty)], "no *.vnnlib"),
        (vec![s(&bad_dims)], "declares 1 inputs"),
        (vec![s(&broken)], "broken.vnnlib"),
        (vec![s(&a), "--search", "exact"], "--search exact"),
        (vec![s(&a), "--timeout", "0"], "--timeout"),
    ] {
        let mut all = vec!["synth", "robustness", "--model", &model, "--vnnlib"];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{all:?}: {}", text(&out));
    }
    // --vnnlib excludes the ids × eps way in
    let out = run(&[
        "synth",
        "robustness",
        "--model",
        &model,
        "--vnnlib",
        s(&a),
        "--eps",
        "0.1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn bench_vnncomp_synth_certifies_every_holding_instance() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &[("a_split.vnnlib", SPLIT), ("c_violated.vnnlib", VIOLATED)],
    );
    let csv = dir.path().join("instances.csv");
    std::fs::write(
        &csv,
        "acas_like.onnx,props/a_split.vnnlib,60\nacas_like.onnx,props/c_violated.vnnlib,60\n",
    )
    .unwrap();
    let out_csv = dir.path().join("res/results.csv");
    let certs = dir.path().join("certs");
    let out = run(&[
        "bench",
        "vnncomp",
        "--instances",
        s(&csv),
        "--out",
        s(&out_csv),
        "--certificates",
        s(&certs),
        "--synth",
        "--attack",
        "--jobs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("synthesis: 1/1 certified; QNN certificates re-checked valid: 1/1"),
        "{}",
        text(&out)
    );
    let rows = std::fs::read_to_string(&out_csv).unwrap();
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2);
    // competition columns, then synth status, bits per layer, QNN accuracy, seconds
    assert_eq!(rows[0].len(), 9, "{rows:?}");
    assert_eq!((rows[0][3], rows[0][5]), ("holds", "certified"), "{rows:?}");
    assert!(rows[0][6].ends_with("/3"), "{rows:?}");
    assert_eq!((rows[1][3], rows[1][5]), ("violated", ""), "{rows:?}");
    // the QNN certificate written for the instance is accepted by `check` on its own
    let synth_dir = certs.join("acas_like.onnx__props_a_split.vnnlib.synth");
    let out = run(&[
        "check",
        "--certificate",
        s(&synth_dir.join("certificate.json")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // the sidecar records the synthesis report
    let jsonl = std::fs::read_to_string(dir.path().join("res/results.csv.jsonl")).unwrap();
    let rec: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let holds = rec.iter().find(|r| r["result"] == "holds").unwrap();
    assert_eq!(holds["synth"]["report"]["status"], "certified", "{holds}");
    assert_eq!(holds["synth"]["certificate_valid"], true, "{holds}");
    assert_eq!(
        holds["synth"]["report"]["attack_counterexample"], false,
        "{holds}"
    );
    // resume: nothing left to run, the same table
    let out = run(&[
        "bench",
        "vnncomp",
        "--instances",
        s(&csv),
        "--out",
        s(&out_csv),
        "--synth",
        "--resume",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1/1 certified"), "{}", text(&out));
}
