//! Float32-semantics certificates through the independent checker (docs/method.md §17,
//! eqs. (58b), (58c)): a certificate whose margin survives the binary32 accumulation error is
//! VALID; one whose real-semantics margin is positive but below that error is rejected.

use certquant_check::{check_certificate, parse_model, quant};
use certquant_core::certificate::{
    Certificate, CertifiedProperty, FORMAT, ModelRef, PropertySource, sha256_hex,
};
use certquant_core::model::{Affine, Network};
use certquant_core::quant::QuantConfig;
use certquant_core::semantics::Semantics;
use certquant_core::spec::{InputBox, OutputSpec};

/// A certificate for `net` (already on the grid of `frac` fractional bits per layer, so it is
/// its own QNN) claiming robustness of class 0 on `bx`.
fn certify(net: &Network, frac: u32, bx: InputBox, semantics: Semantics) -> bool {
    let bytes = certquant_core::onnx::export_bytes(net).unwrap();
    let parsed = parse_model(&bytes, "net").unwrap();
    let strategy: Vec<QuantConfig> = parsed
        .layers()
        .iter()
        .map(|l| QuantConfig::new(quant::integer_bits(l) + frac, frac).unwrap())
        .collect();
    let cert = Certificate {
        format: FORMAT.into(),
        tool: "test".into(),
        original_model: ModelRef {
            sha256: sha256_hex(&bytes),
            file: None,
        },
        qnn: ModelRef {
            sha256: sha256_hex(&bytes),
            file: None,
        },
        strategy,
        semantics,
        chi: vec![],
        verifier: "test".into(),
        properties: vec![CertifiedProperty {
            input: bx,
            output: OutputSpec::Robust { label: 0 },
            source: PropertySource {
                data: None,
                id: None,
                pixels: None,
                eps_text: None,
                eps: None,
                trigger: None,
            },
            margin: 0.0,
            multipliers: None,
        }],
        statistical: None,
    };
    let report = check_certificate(&cert, &parsed, &bytes, &parsed, &bytes);
    if !report.valid {
        eprintln!("{:?}", report.reasons);
    }
    report.valid
}

#[test]
fn a_float32_certificate_with_room_is_valid() {
    // y0 = x0 + x1/2 + 1/2, y1 = x0 − x1/2 − 1/2 on [0, 1]²: y0 − y1 = x1 + 1 ≥ 1.
    let l = Affine::new(0, 2, 2, vec![1.0, 0.5, 1.0, -0.5], vec![0.5, -0.5]).unwrap();
    let net = Network::new(vec![l]).unwrap();
    let bx = InputBox::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
    assert!(certify(&net, 1, bx.clone(), Semantics::Real));
    assert!(certify(&net, 1, bx, Semantics::Float32));
}

#[test]
fn a_margin_below_the_accumulation_error_is_rejected() {
    // y0 = x0 + 2^−24·x1 + 2^−24·x2, y1 = x0 at x = (1, 1, 1): the real margin is 2^−23 > 0,
    // but binary32 summed in order gives y0 = 1 = y1 (a tie, a violation).
    let t = 2f64.powi(-24);
    let l = Affine::new(0, 2, 3, vec![1.0, t, t, 1.0, 0.0, 0.0], vec![0.0, 0.0]).unwrap();
    let net = Network::new(vec![l]).unwrap();
    let bx = InputBox::new(vec![1.0; 3], vec![1.0; 3]).unwrap();
    assert!(certify(&net, 24, bx.clone(), Semantics::Real));
    assert!(!certify(&net, 24, bx, Semantics::Float32));
}
