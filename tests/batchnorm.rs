//! Acceptance for `BatchNormalization` (issue #14): a network with a batch normalisation after
//! its first `Gemm` goes through `eval`, `verify`, `synth robustness`, `check` and `attack`.
//!
//! The network is built here from the paper's MNIST MLP `mnist_1blk_100.onnx` (in `../shared`,
//! skipped when absent), never committed: with `s = γ/√(var + ε)`, the first `Gemm` becomes
//! `W' = W/s`, `b' = (b − β)/s + μ` (float32), followed by `BatchNormalization(γ, β, μ, var)`,
//! so that `BN(W'x + b') = W x + b` up to rounding. certquant folds the normalisation back
//! into the `Gemm` at import (docs/method.md §1a); the folded network is the one certified.

use certquant::onnx::proto;
use prost::Message;

mod common;
use common::run_json as run;

const GAMMA: f32 = 1.75;
const BETA: f32 = 0.125;
const MU: f32 = 0.0625;
const VAR: f32 = 2.5;
const EPS: f32 = 1e-5;

fn f32s(t: &proto::TensorProto) -> Vec<f32> {
    t.raw_data
        .as_deref()
        .expect("raw float32 data")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn tensor(name: &str, dims: &[i64], v: &[f32]) -> proto::TensorProto {
    proto::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(proto::tensor_proto::DataType::Float as i32),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// The model with a batch normalisation after its first `Gemm` (see the module documentation).
fn with_batchnorm(bytes: &[u8]) -> Vec<u8> {
    let mut m = proto::ModelProto::decode(bytes).expect("model");
    let g = m.graph.as_mut().expect("graph");
    let s = f64::from(GAMMA) / (f64::from(VAR) + f64::from(EPS)).sqrt();
    let (w_dims, w) = {
        let t = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some("W0"))
            .unwrap();
        (t.dims.clone(), f32s(t))
    };
    let b = f32s(
        g.initializer
            .iter()
            .find(|t| t.name.as_deref() == Some("B0"))
            .unwrap(),
    );
    let w2: Vec<f32> = w.iter().map(|&v| (f64::from(v) / s) as f32).collect();
    let b2: Vec<f32> = b
        .iter()
        .map(|&v| ((f64::from(v) - f64::from(BETA)) / s + f64::from(MU)) as f32)
        .collect();
    let n = b.len() as i64;
    g.initializer
        .retain(|t| !matches!(t.name.as_deref(), Some("W0" | "B0")));
    g.initializer.push(tensor("W0", &w_dims, &w2));
    g.initializer.push(tensor("B0", &[n], &b2));
    let c = n as usize;
    g.initializer
        .push(tensor("bn_scale", &[n], &vec![GAMMA; c]));
    g.initializer.push(tensor("bn_bias", &[n], &vec![BETA; c]));
    g.initializer.push(tensor("bn_mean", &[n], &vec![MU; c]));
    g.initializer.push(tensor("bn_var", &[n], &vec![VAR; c]));
    let k = g
        .node
        .iter()
        .position(|n| n.name.as_deref() == Some("fc0"))
        .unwrap();
    g.node[k].output = vec!["fc0_out".into()];
    g.node.insert(
        k + 1,
        proto::NodeProto {
            name: Some("bn0".into()),
            op_type: Some("BatchNormalization".into()),
            input: ["fc0_out", "bn_scale", "bn_bias", "bn_mean", "bn_var"]
                .map(String::from)
                .to_vec(),
            output: vec!["h0_pre".into()],
            attribute: vec![proto::AttributeProto {
                name: Some("epsilon".into()),
                r#type: Some(proto::attribute_proto::AttributeType::Float as i32),
                f: Some(EPS),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    m.encode_to_vec()
}

#[test]
fn a_batchnorm_network_goes_through_eval_verify_synth_check_and_attack() {
    let Some(dir) = certquant::shared::shared_dir("models/quadapter") else {
        return;
    };
    let orig = dir.join("mnist_1blk_100.onnx");
    let data = dir.join("../../data/mnist");
    let d = data.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bn = tmp.path().join("mnist_1blk_100_bn.onnx");
    std::fs::write(&bn, with_batchnorm(&std::fs::read(&orig).unwrap())).unwrap();
    let (m, o) = (bn.to_str().unwrap(), orig.to_str().unwrap());
    let g = certquant::onnx::import_graph(&bn).expect("imports");
    assert_eq!(
        g.nodes().len(),
        3,
        "BatchNormalization folded into the Gemm"
    );

    let (code, v) = run(&["eval", "--model", m, "--data", d]);
    let (_, v0) = run(&["eval", "--model", o, "--data", d]);
    assert_eq!(code, 0);
    let (a, a0) = (
        v["accuracy"].as_f64().unwrap(),
        v0["accuracy"].as_f64().unwrap(),
    );
    assert!((a - a0).abs() <= 0.002, "accuracy {a} vs original {a0}");

    for id in ["5346", "8564", "7059", "371"] {
        let (c1, _) = run(&[
            "verify", "--model", m, "--data", d, "--id", id, "--eps", "2/255",
        ]);
        let (c0, _) = run(&[
            "verify", "--model", o, "--data", d, "--id", id, "--eps", "2/255",
        ]);
        assert_eq!(c1, c0, "verify verdict on id {id}");
    }

    let out = tmp.path().join("q");
    let q = out.to_str().unwrap();
    let (code, v) = run(&[
        "synth",
        "robustness",
        "--model",
        m,
        "--data",
        d,
        "--id",
        "5346",
        "--eps",
        "2/255",
        "--out",
        q,
    ]);
    assert_eq!((code, v["status"].as_str()), (0, Some("certified")), "{v}");
    let cert = out.join("certificate.json");
    let qnn = out.join("qnn.onnx");
    let (code, v) = run(&[
        "check",
        "--certificate",
        cert.to_str().unwrap(),
        "--model",
        m,
        "--qnn",
        qnn.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v}");
    let (code, _) = run(&[
        "attack",
        "--model",
        qnn.to_str().unwrap(),
        "--data",
        d,
        "--id",
        "5346",
        "--eps",
        "2/255",
    ]);
    assert_eq!(code, 0, "attack found a counterexample");
}
