//! Replays the fuzzing regression corpus (`fuzz/regressions/<target>/*`): inputs that once
//! crashed a parser or that seed the fuzzers. Each must give a value or an error, never a
//! panic. The fuzz targets themselves live in `fuzz/` (`cargo +nightly fuzz run <target>`).

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus {}", dir.display());
    v
}

#[test]
fn onnx_import_corpus() {
    for (name, bytes) in corpus("onnx_import") {
        if let Ok(g) = certquant::onnx::import_graph_bytes(&bytes)
            && g.input_len() <= 1 << 16
        {
            let _ = g.forward(&vec![0.5; g.input_len()]);
        }
        if let Ok(net) = certquant::onnx::import_bytes(&bytes)
            && let Ok(b) = certquant::onnx::export_bytes(&net)
        {
            let again = certquant::onnx::import_bytes(&b).unwrap();
            assert!(certquant::model::same_structure(&again, &net), "{name}");
        }
    }
}

#[test]
fn data_parse_corpus() {
    for (_, bytes) in corpus("data_parse") {
        certquant::data::fuzz_parse(&bytes);
    }
}

#[test]
fn certificate_parse_corpus() {
    let model = include_bytes!("../assets/demo/fashion_mlp.onnx");
    let net = certquant::onnx::import_bytes(model).unwrap();
    for (_, bytes) in corpus("certificate_parse") {
        if let Ok(cert) = certquant::certificate::Certificate::parse(&bytes) {
            let _ = certquant::check::check_certificate(&cert, &net, model, &net, model);
            if cert.vnnlib.is_some() {
                let query = include_bytes!("fixtures/vnnlib/fashion_box.vnnlib");
                let _ = certquant::check::check_certificate_with_query(
                    &cert,
                    &net,
                    model,
                    &net,
                    model,
                    Some(query),
                );
            }
        }
    }
}

#[test]
fn vnnlib_corpus() {
    for (_, bytes) in corpus("vnnlib") {
        certquant::vnnlib::fuzz_parse(&bytes);
    }
}
