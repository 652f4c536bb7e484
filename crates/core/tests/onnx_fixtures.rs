//! The ONNX operator fixtures (`tests/fixtures/onnx/`, made by the hand-run script
//! `scripts/fixtures/make_onnx_fixtures.py` with onnx + onnxruntime): certquant's forward
//! evaluation must give ONNX Runtime's outputs, every lowerable graph must lower to an affine
//! chain computing the same function, export and re-import must be bit-identical, and every
//! refused model must be refused naming its operator, node and attribute. No Python runs here.

use std::path::{Path, PathBuf};

use certquant_core::graph::Graph;
use certquant_core::onnx::{export_bytes, import_bytes, import_graph_bytes};
use serde::Deserialize;

#[derive(Deserialize)]
struct Accepted {
    name: String,
    file: String,
    inputs: Vec<Vec<f64>>,
    outputs: Vec<Vec<f64>>,
    outputs_f64: Vec<Vec<f64>>,
    ops: Vec<String>,
}

#[derive(Deserialize)]
struct Refusal {
    op: Option<String>,
    node: Option<String>,
    attribute: Option<String>,
}

#[derive(Deserialize)]
struct Refused {
    name: String,
    file: String,
    op: Option<String>,
    node: Option<String>,
    attribute: Option<String>,
    accept_also: Vec<Refusal>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx")
}

fn accepted() -> Vec<Accepted> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest schema")
}

fn graph(a: &Accepted) -> Graph {
    let bytes = std::fs::read(dir().join(&a.file)).expect("fixture");
    import_graph_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", a.name))
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(1.0f64, |m, x| m.max(x.abs()))
}

#[test]
fn forward_matches_onnx_runtime_on_every_fixture() {
    let all = accepted();
    assert!(all.len() >= 30, "{} fixtures", all.len());
    for a in &all {
        let g = graph(a);
        for ((x, ort), exact) in a.inputs.iter().zip(&a.outputs).zip(&a.outputs_f64) {
            assert_eq!(x.len(), g.input_len(), "{}", a.name);
            let y = g.forward(x);
            assert_eq!(y.len(), exact.len(), "{}", a.name);
            let scale = max_abs(exact);
            for (k, ((got, want), o)) in y.iter().zip(exact).zip(ort).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-6 * scale,
                    "{} output {k}: certquant {got}, float64 reference {want}",
                    a.name
                );
                assert!(
                    (got - o).abs() <= 1e-5 * scale,
                    "{} output {k}: certquant {got}, ONNX Runtime {o}",
                    a.name
                );
            }
        }
    }
}

#[test]
fn lowered_chains_compute_the_graph_and_round_trip_bit_identically() {
    let mut lowered = 0;
    let mut normalised = 0;
    for a in &accepted() {
        let g = graph(a);
        let bytes = std::fs::read(dir().join(&a.file)).expect("fixture");
        let net = match import_bytes(&bytes) {
            Ok(n) => n,
            Err(e) => {
                // Only operators the affine chain cannot take yet may be refused here.
                let msg = e.to_string();
                assert!(
                    a.ops.iter().any(|o| o == "MaxPool")
                        || msg.contains("power of two")
                        || msg.contains("two weighted layers"),
                    "{}: {msg}",
                    a.name
                );
                continue;
            }
        };
        lowered += 1;
        if a.name.starts_with("norm_") {
            normalised += 1;
            assert!(net.input_map().is_some(), "{}: no input map", a.name);
        }
        assert_eq!(net.input_dim(), g.input_len(), "{}", a.name);
        for x in &a.inputs {
            let (yg, yn) = (g.forward(x), net.forward(x));
            for (p, q) in yg.iter().zip(&yn) {
                assert!(
                    (p - q).abs() <= 1e-9 * max_abs(&yg),
                    "{}: {p} vs {q}",
                    a.name
                );
            }
        }
        let out = export_bytes(&net).unwrap_or_else(|e| panic!("{}: export: {e}", a.name));
        let back = import_bytes(&out).unwrap_or_else(|e| panic!("{}: re-import: {e}", a.name));
        assert_eq!(back.depth(), net.depth(), "{}", a.name);
        assert_eq!(back.frame(), net.frame(), "{}", a.name);
        assert_eq!(back.input_map(), net.input_map(), "{}", a.name);
        for (p, q) in back.layers().iter().zip(net.layers()) {
            assert_eq!(
                p.to_origin().canonical(),
                q.to_origin().canonical(),
                "{}",
                a.name
            );
            let rows = |l: &certquant_core::model::Affine| -> Vec<Vec<(usize, f64)>> {
                (0..l.outputs())
                    .map(|j| l.row_entries(j).collect())
                    .collect()
            };
            assert_eq!(p.weights(), q.weights(), "{}", a.name);
            assert_eq!((rows(p), p.bias()), (rows(q), q.bias()), "{}", a.name);
        }
        let bits = |n: &certquant_core::model::Network| -> Vec<u64> {
            n.layers()
                .iter()
                .flat_map(|l| {
                    let (w, b) = l.params();
                    w.iter().chain(b).map(|v| v.to_bits()).collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(bits(&back), bits(&net), "{}", a.name);
        let back_g = import_graph_bytes(&out).expect("graph re-import");
        for x in &a.inputs {
            assert_eq!(
                back_g.forward(x),
                net.to_graph().expect("graph").forward(x),
                "{}",
                a.name
            );
        }
    }
    assert!(lowered >= 21, "only {lowered} fixtures lowered");
    assert!(
        normalised >= 4,
        "only {normalised} normalised fixtures lowered"
    );
}

#[test]
fn refused_models_name_the_operator_node_and_attribute() {
    let text = std::fs::read_to_string(dir().join("refused/manifest.json")).expect("manifest");
    let all: Vec<Refused> = serde_json::from_str(&text).expect("schema");
    assert!(all.len() >= 15);
    for r in &all {
        let bytes = std::fs::read(dir().join("refused").join(&r.file)).expect("fixture");
        let err = import_bytes(&bytes).expect_err(&r.name).to_string();
        let names = |op: &Option<String>, node: &Option<String>, attr: &Option<String>| {
            op.as_ref().is_none_or(|o| err.contains(o.as_str()))
                && node.as_ref().is_none_or(|n| err.contains(n.as_str()))
                && attr.as_ref().is_none_or(|a| err.contains(a.as_str()))
        };
        let ok = names(&r.op, &r.node, &r.attribute)
            || r.accept_also
                .iter()
                .any(|a| names(&a.op, &a.node, &a.attribute));
        assert!(ok, "{}: {err}", r.name);
        assert!(
            import_graph_bytes(&bytes).is_err(),
            "{}: graph import accepted it",
            r.name
        );
    }
}
