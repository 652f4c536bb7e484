//! Networks with structure (issue #14): DeepPoly soundness on every lowerable operator fixture
//! (by sampling and at the box's vertices in a low-dimensional corner), and the whole pipeline
//! — eval, verify, synth, check, attack — on VNN-COMP 2021's verivital average-pooling
//! convnet (skipped with a message when `../shared` is absent).

use std::path::{Path, PathBuf};

use certquant::bounds::DeepPoly;
use certquant::onnx::import_bytes;
use certquant::spec::InputBox;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

mod common;
use common::{assert_success, check_dir, run};

#[derive(Deserialize)]
struct Fixture {
    name: String,
    file: String,
    inputs: Vec<Vec<f64>>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

/// For every fixture that lowers to an affine chain (convolutions, padding, average and max
/// pooling, layout), DeepPoly's output bounds over a box around each fixture input contain
/// the network's output at random points and at vertices of the box.
#[test]
fn deeppoly_is_sound_on_every_structured_operator() {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest");
    let all: Vec<Fixture> = serde_json::from_str(&text).expect("schema");
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let mut checked = 0;
    for f in &all {
        let bytes = std::fs::read(fixtures().join(&f.file)).expect("fixture");
        let Ok(net) = import_bytes(&bytes) else {
            continue;
        };
        checked += 1;
        for x in &f.inputs {
            let input = InputBox::new(
                x.iter().map(|v| v - 0.05).collect(),
                x.iter().map(|v| v + 0.05).collect(),
            )
            .expect("box");
            let dp = DeepPoly::run(&net, &input).expect("deeppoly");
            let out = dp.layer(net.depth() - 1);
            let n = x.len();
            // Fewer samples on the verivital-sized fixtures (18M-entry lowered convolution).
            let big = net
                .layers()
                .iter()
                .any(|l| l.inputs() * l.outputs() > 1 << 20);
            let trials = if big { 60 } else { 300 };
            for trial in 0..trials {
                // Random points, then vertices that differ in the first 8 coordinates.
                let p: Vec<f64> = if trial < 44 {
                    (0..n)
                        .map(|i| {
                            let up = if i < 8 {
                                (trial >> i) & 1 == 1
                            } else {
                                rng.random()
                            };
                            if up { input.hi()[i] } else { input.lo()[i] }
                        })
                        .collect()
                } else {
                    (0..n)
                        .map(|i| rng.random_range(input.lo()[i]..=input.hi()[i]))
                        .collect()
                };
                let y = net.forward(&p);
                for (k, v) in y.iter().enumerate() {
                    assert!(
                        out.lo[k] <= *v && *v <= out.hi[k],
                        "{}: output {k} = {v} outside [{}, {}]",
                        f.name,
                        out.lo[k],
                        out.hi[k]
                    );
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} fixtures lowered");
}

/// verivital's `Convnet_avgpool` (Conv, Relu, Pad, AveragePool, Flatten, Gemm): eval gives
/// ONNX Runtime's accuracy, Algorithm 1 certifies a quantization at eps 1/255 whose
/// certificate the checker accepts, and the QNN keeps the network's operators.
#[test]
fn verivital_avgpool_end_to_end() {
    let Some(sh) = certquant::shared::shared_dir("benchmarks/vnncomp2021") else {
        return;
    };
    let model = sh.join("verivital/Convnet_avgpool.onnx");
    let data = sh.join("../../data/mnist");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let out = run(&["eval", "--model", m, "--data", d, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // ONNX Runtime: 0.9795 (BENCHMARKS.md, issue 14).
    assert_eq!(v["accuracy"].as_f64(), Some(0.9795));
    let dir = tempfile::tempdir().expect("tempdir");
    let o = dir.path().to_str().unwrap();
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
        "--out",
        o,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CERTIFIED"),
        "{stdout}"
    );
    assert_success(&check_dir(dir.path(), m));
    let qnn = dir.path().join("qnn.onnx");
    let g = certquant::onnx::import_graph(&qnn).expect("qnn imports");
    let ops: Vec<&str> = g.nodes().iter().map(|n| n.op_name()).collect();
    assert_eq!(
        ops,
        ["Conv", "Relu", "Pad", "AveragePool", "Flatten", "Gemm"]
    );
    let out = run(&[
        "attack",
        "--model",
        qnn.to_str().unwrap(),
        "--data",
        d,
        "--id",
        "0",
        "--eps",
        "1/255",
    ]);
    // Exit 1 would mean a counterexample was found.
    assert_eq!(
        out.status.code(),
        Some(0),
        "attack must not break it: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
