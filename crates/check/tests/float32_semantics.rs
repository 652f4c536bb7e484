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
        vnnlib: None,
        vnnlib_set: Vec::new(),
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

/// One binary32 dot product plus bias, terms in a random order, plain or fused steps.
fn random_dot(rng: &mut rand_chacha::ChaCha8Rng, terms: &[(f32, f32)], bias: f32) -> f32 {
    use rand::Rng;
    use rand::seq::SliceRandom;
    let mut t: Vec<(f32, f32)> = terms.to_vec();
    t.push((bias, 1.0));
    t.shuffle(rng);
    let fma = rng.random::<bool>();
    t.iter().fold(
        0.0f32,
        |s, &(w, z)| {
            if fma { w.mul_add(z, s) } else { s + w * z }
        },
    )
}

#[test]
fn the_checker_bounds_contain_binary32_runs_in_any_order() {
    use certquant_check::prove::Prover;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1758);
    for trial in 0..20 {
        let sizes = [4usize, 7, 6, 3];
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let mut v = || rng.random_range(-128i32..=128) as f64 / 128.0;
                let weights = (0..w[0] * w[1]).map(|_| v()).collect();
                let bias = (0..w[1]).map(|_| v()).collect();
                Affine::new(k, w[1], w[0], weights, bias).unwrap()
            })
            .collect();
        let net = Network::new(layers).unwrap();
        let c: Vec<f64> = (0..4).map(|_| rng.random_range(-1.0..1.0)).collect();
        let lo: Vec<f64> = c.iter().map(|v| v - 0.03).collect();
        let hi: Vec<f64> = c.iter().map(|v| v + 0.03).collect();
        let p = Prover::float32(&net, &lo, &hi).unwrap();
        let pairs: Vec<(usize, usize)> = (1..3).map(|j| (0, j)).collect();
        let lbs = p.logit_difference_lower_bounds(&pairs);
        for _ in 0..200 {
            let x: Vec<f64> = lo
                .iter()
                .zip(&hi)
                .map(|(&l, &h)| rng.random_range(l..=h))
                .collect();
            let mut z: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            for (k, layer) in net.layers().iter().enumerate() {
                let y: Vec<f32> = (0..layer.outputs())
                    .map(|j| {
                        let terms: Vec<(f32, f32)> = layer
                            .row_entries(j)
                            .map(|(i, w)| (w as f32, z[i]))
                            .collect();
                        random_dot(&mut rng, &terms, layer.bias()[j] as f32)
                    })
                    .collect();
                if k + 1 < net.depth() {
                    for (j, (&v, b)) in y.iter().zip(p.hidden_bounds(k)).enumerate() {
                        assert!(b.contains(v as f64), "trial {trial} layer {k} neuron {j}");
                    }
                    z = y.iter().map(|v| v.max(0.0)).collect();
                } else {
                    for (&(a, b), &lb) in pairs.iter().zip(&lbs) {
                        assert!(y[a] as f64 - y[b] as f64 >= lb, "trial {trial}");
                    }
                }
            }
        }
    }
}
