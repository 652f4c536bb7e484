#![no_main]
//! Any byte string given to the ONNX importer yields a network or an error, never a panic;
//! an imported network re-exports (when representable) and re-imports identically.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(net) = certquant::onnx::import_bytes(data)
        && let Ok(bytes) = certquant::onnx::export_bytes(&net)
    {
        let again = certquant::onnx::import_bytes(&bytes).expect("re-import of an export");
        assert_eq!(again, net);
    }
});
