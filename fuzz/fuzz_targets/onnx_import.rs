#![no_main]
//! Any byte string given to the ONNX importer yields a typed graph / network or an error,
//! never a panic; a graph evaluates; an imported network re-exports (when representable) and
//! re-imports with the same structure and the same lowered weights.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = certquant::onnx::import_graph_bytes(data)
        && g.input_len() <= 1 << 16
    {
        let _ = g.forward(&vec![0.5; g.input_len()]);
    }
    if let Ok(net) = certquant::onnx::import_bytes(data)
        && let Ok(bytes) = certquant::onnx::export_bytes(&net)
    {
        let again = certquant::onnx::import_bytes(&bytes).expect("re-import of an export");
        assert!(certquant::model::same_structure(&again, &net));
    }
});
