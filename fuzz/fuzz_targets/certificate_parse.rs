#![no_main]
//! Certificate parsing and checking against the demo model: an error or a verdict, never a
//! panic (the checker must survive hostile certificates). Certificates of a VNN-LIB query are
//! checked against a fixed query on the demo model (split trees, refutations).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = certquant::certificate::Certificate::parse(data) {
        let model = include_bytes!("../../assets/demo/fashion_mlp.onnx");
        if let Ok(net) = certquant::onnx::import_bytes(model) {
            let _ = certquant::check::check_certificate(&cert, &net, model, &net, model);
            if cert.vnnlib.is_some() {
                let query = include_bytes!("../../tests/fixtures/vnnlib/fashion_box.vnnlib");
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
});
