//! Acceptance for input normalisation (issue #14): a network that starts with `Sub`/`Div`
//! goes through `eval`, `verify`, `synth robustness`, `check` and `attack`.
//!
//! The network is built here from the paper's MNIST MLP `mnist_1blk_100.onnx` (in
//! `../shared`, skipped when absent), never committed: with MNIST's mean `m = 0.1307` and
//! std `s = 0.3081` as float32 constants, layer 0 becomes `W' = W·s`, `b' = b + W·m`
//! (rounded to float32), so that `W'·((x − m)/s) + b' = W x + b` up to that rounding; the
//! model file holds `Sub(m)`, `Div(s)`, then the original layers.

use std::path::{Path, PathBuf};

use certquant::graph::{Elementwise, ElementwiseKind, InputMap, Node};
use certquant::model::{Affine, Network};
use certquant::onnx;
use serde_json::Value;

mod common;
use common::{run_json as run, s};

const MEAN: f32 = 0.1307;
const STD: f32 = 0.3081;

/// The normalised equivalent of `orig` (see the module documentation).
fn normalise(orig: &Network) -> Network {
    let (m, sd) = (f64::from(MEAN), f64::from(STD));
    let l0 = &orig.layers()[0];
    let n = l0.inputs();
    let w: Vec<f64> = l0
        .weights()
        .expect("a dense MLP layer")
        .iter()
        .map(|&v| f64::from((v * sd) as f32))
        .collect();
    let b: Vec<f64> = (0..l0.outputs())
        .map(|j| f64::from((l0.bias()[j] + m * l0.row_dense(j).iter().sum::<f64>()) as f32))
        .collect();
    let mut layers = vec![Affine::new(0, l0.outputs(), n, w, b).unwrap()];
    layers.extend(orig.layers()[1..].iter().cloned());
    let ew = |kind, c: f64| {
        Node::Elementwise(Elementwise::new(kind, vec![n], vec![c; n], (vec![], vec![c])).unwrap())
    };
    let map = InputMap::new(
        vec![ew(ElementwiseKind::Sub, m), ew(ElementwiseKind::Div, sd)],
        &[],
    )
    .unwrap();
    Network::new(layers).unwrap().with_input_map(map).unwrap()
}

#[test]
fn a_normalised_network_goes_through_eval_verify_synth_check_and_attack() {
    let (Some(models), Some(data), Some(bench)) = (
        certquant::shared::shared_dir("models/quadapter"),
        certquant::shared::shared_dir("data/mnist"),
        certquant::shared::shared_dir("benchmarks"),
    ) else {
        return;
    };
    let orig_path = models.join("mnist_1blk_100.onnx");
    let orig = onnx::import(&orig_path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let norm_path: PathBuf = tmp.path().join("mnist_1blk_100_normalised.onnx");
    onnx::export(&normalise(&orig), &norm_path).unwrap();
    // The file really holds the normalisation, and it is read back as the input map.
    let back = onnx::import(&norm_path).unwrap();
    let ops: Vec<&str> = back
        .input_map()
        .expect("an input map")
        .nodes()
        .iter()
        .map(Node::op_name)
        .collect();
    assert_eq!(ops, ["Sub", "Div"]);
    assert_eq!(back.input_dim(), 784);
    let (orig_s, norm_s, data_s) = (s(&orig_path), s(&norm_path), s(&data));

    // eval: accuracy within 0.2 points of the original.
    let acc = |model: &str| {
        let (code, v) = run(&["eval", "--model", model, "--data", data_s]);
        assert_eq!(code, 0, "{v}");
        v["accuracy"].as_f64().unwrap()
    };
    let (a_orig, a_norm) = (acc(orig_s), acc(norm_s));
    eprintln!("accuracy: original {a_orig}, normalised {a_norm}");
    assert!((a_orig - a_norm).abs() <= 0.002, "{a_orig} vs {a_norm}");

    // verify: the same verdict as the original on the first paper ids.
    let ids: Vec<String> = std::fs::read_to_string(bench.join("paper-robustness-ids.txt"))
        .unwrap()
        .split_whitespace()
        .take(4)
        .map(str::to_string)
        .collect();
    let eps = "2/255";
    let mut verified = Vec::new();
    for id in &ids {
        let verdict = |model: &str| {
            let (code, v) = run(&[
                "verify", "--model", model, "--data", data_s, "--id", id, "--eps", eps,
            ]);
            assert!(code == 0 || code == 1, "{v}");
            v["verified"].as_bool().unwrap()
        };
        let (o, n) = (verdict(orig_s), verdict(norm_s));
        assert_eq!(o, n, "id {id}");
        if n {
            verified.push(id.clone());
        }
    }
    eprintln!("verified at eps {eps} (both networks agree): {verified:?} of {ids:?}");
    assert!(verified.len() >= 2, "{verified:?}");

    // synth robustness on two verified ids, one strategy: certified.
    let out = tmp.path().join("synth");
    let mut args = vec![
        "synth",
        "robustness",
        "--model",
        norm_s,
        "--data",
        data_s,
        "--eps",
        eps,
        "--out",
        s(&out),
    ];
    for id in &verified[..2] {
        args.extend(["--id", id.as_str()]);
    }
    let (code, v) = run(&args);
    assert_eq!(code, 0, "synthesis must certify: {v}");
    eprintln!("synth: {v}");

    // check: the independent checker accepts the certificate.
    let cert = out.join("certificate.json");
    let qnn = out.join("qnn.onnx");
    let (code, report) = run(&[
        "check",
        "--certificate",
        s(&cert),
        "--model",
        norm_s,
        "--qnn",
        s(&qnn),
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["valid"], true, "{report}");
    eprintln!("check: {report}");
    // The QNN keeps the normalisation.
    let q = onnx::import(&qnn).unwrap();
    assert_eq!(q.input_map(), back.input_map());

    // attack: no counterexample on the QNN (nor on the float network).
    for id in &verified[..2] {
        for model in [s(&qnn), norm_s] {
            let (code, v) = run(&[
                "attack", "--model", model, "--data", data_s, "--id", id, "--eps", eps,
            ]);
            assert_eq!(code, 0, "{model} id {id}: {v}");
            assert_eq!(v["counterexample_found"], false, "{v}");
        }
    }
}

/// `[n, d]` float32 images as a `.npy` file (unlabelled: `verify` proves the prediction).
fn write_npy(path: &Path, images: &[Vec<f32>]) {
    let d = images[0].len();
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {d}), }}",
        images.len()
    );
    let pad = 64 - (10 + dict.len() + 1) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad % 64));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for x in images.iter().flatten() {
        bytes.extend(x.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// The CIFAR-style fixture `norm_cifar_nchw_op11` (per-channel `Sub`/`Div` [1,3,1,1], then
/// `Conv`, `Relu`, `AveragePool`, `Gemm`) on seeded random images of `k/255` pixels: the
/// prediction-robust ones are synthesized, checked (VALID) and attacked (nothing found), and
/// the QNN keeps the normalisation and the convolution.
#[test]
fn a_normalised_convnet_fixture_goes_through_verify_synth_check_and_attack() {
    use rand::{Rng, SeedableRng};
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/norm_cifar_nchw_op11.onnx");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("images.npy");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let images: Vec<Vec<f32>> = (0..6)
        .map(|_| {
            (0..3072)
                .map(|_| f32::from(rng.random::<u8>()) / 255.0)
                .collect()
        })
        .collect();
    write_npy(&data, &images);
    let (model_s, data_s, eps) = (s(&model), s(&data), "1/255");
    let verified: Vec<String> = (0..images.len())
        .map(|i| i.to_string())
        .filter(|id| {
            let (code, v) = run(&[
                "verify", "--model", model_s, "--data", data_s, "--id", id, "--eps", eps,
            ]);
            assert!(code == 0 || code == 1, "{v}");
            v["verified"].as_bool().unwrap()
        })
        .take(2)
        .collect();
    assert!(!verified.is_empty(), "no image is verified at {eps}");
    let out = tmp.path().join("synth");
    let mut args = vec![
        "synth",
        "robustness",
        "--model",
        model_s,
        "--data",
        data_s,
        "--eps",
        eps,
        "--out",
        s(&out),
    ];
    for id in &verified {
        args.extend(["--id", id.as_str()]);
    }
    let (code, v) = run(&args);
    assert_eq!(code, 0, "synthesis must certify: {v}");
    let qnn = out.join("qnn.onnx");
    let (code, report) = run(&[
        "check",
        "--certificate",
        s(&out.join("certificate.json")),
        "--model",
        model_s,
        "--qnn",
        s(&qnn),
    ]);
    assert_eq!(
        (code, &report["valid"]),
        (0, &Value::Bool(true)),
        "{report}"
    );
    let (float, q) = (onnx::import(&model).unwrap(), onnx::import(&qnn).unwrap());
    assert!(q.input_map().is_some() && q.input_map() == float.input_map());
    assert!(matches!(
        q.layers()[0].origin().map(|o| &o.op),
        Some(Node::Conv(_))
    ));
    for id in &verified {
        let (code, v) = run(&[
            "attack",
            "--model",
            s(&qnn),
            "--data",
            data_s,
            "--id",
            id,
            "--eps",
            eps,
        ]);
        assert_eq!(code, 0, "id {id}: {v}");
    }
}
