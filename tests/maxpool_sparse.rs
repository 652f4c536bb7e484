//! verivital's `Convnet_maxpool` (Conv 32×1×2×2 → Relu → MaxPool 4×4 s4 → Flatten → Gemm):
//! its max-pooling tournament (docs/method.md, eq. (1b)) lowers to layers of 18,432 × 23,328
//! and smaller, kept sparse. DeepPoly verifies an image on it, the abstraction-only synthesis
//! certifies a quantization, and the independent checker accepts the certificate — with no
//! dense matrix of those sizes ever built. Skipped when `../shared` is absent.

mod common;
use common::{assert_success, check_dir, run};

#[test]
fn verivital_maxpool_verifies_synthesizes_and_checks() {
    let Some(sh) = certquant::shared::shared_dir("benchmarks/vnncomp2021") else {
        return;
    };
    let model = sh.join("verivital/Convnet_maxpool.onnx");
    let data = sh.join("../../data/mnist");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());

    // The lowering keeps the wide layers sparse.
    let net = certquant::onnx::import(&model).expect("imports");
    let sparse: Vec<bool> = net
        .layers()
        .iter()
        .map(certquant::model::Affine::is_sparse)
        .collect();
    assert_eq!(net.depth(), 6);
    assert_eq!(
        (net.layers()[1].outputs(), net.layers()[1].inputs()),
        (18432, 23328)
    );
    assert!(sparse[..5].iter().all(|&s| s), "{sparse:?}");
    assert!(!sparse[5], "the Gemm stays dense");

    let out = run(&[
        "verify", "--model", m, "--data", d, "--id", "0", "--eps", "1/255", "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["margin"].as_f64().unwrap() > 0.0, "{v}");

    let dir = tempfile::tempdir().expect("tempdir");
    let o = dir.path().to_str().unwrap();
    // The paper engine's one MILP refuses the tournament layers with a clear message (exit 2).
    let out = run(&[
        "synth",
        "robustness",
        "--model",
        m,
        "--data",
        d,
        "--id",
        "0",
        "--eps",
        "1/255",
        "--preimage",
        "paper",
        "--out",
        o,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("use --preimage fast or --preimage abstract"),
        "{stderr}"
    );
    let out = run(&[
        "synth",
        "robustness",
        "--model",
        m,
        "--data",
        d,
        "--id",
        "0",
        "--eps",
        "1/255",
        "--preimage",
        "abstract",
        "--method",
        "guided",
        "--min-frac",
        "2",
        "--max-frac",
        "10",
        "--out",
        o,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CERTIFIED"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_success(&check_dir(dir.path(), m));
    let qnn = dir.path().join("qnn.onnx");
    // The QNN keeps the max pooling as one MaxPool.
    let g = certquant::onnx::import_graph(&qnn).expect("qnn imports");
    let ops: Vec<&str> = g.nodes().iter().map(|n| n.op_name()).collect();
    assert!(ops.contains(&"MaxPool") && ops.contains(&"Conv"), "{ops:?}");
}
