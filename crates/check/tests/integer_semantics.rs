//! Integer-semantics certificates through the independent checker (docs/method.md §17,
//! issue 17): a valid certificate for MP1 is accepted, and every kind of tampering with its
//! semantics is rejected with a reason naming it.

use certquant_check::{check_certificate, parse_model, quant};
use certquant_core::certificate::{
    Certificate, CertifiedProperty, FORMAT, ModelRef, PropertySource, sha256_hex,
};
use certquant_core::graph::{Elementwise, ElementwiseKind, InputMap, Node};
use certquant_core::model::Network;
use certquant_core::quant::QuantConfig;
use certquant_core::semantics::{
    ActFormat, IntProgram, IntegerSemantics, Semantics, strict_argmax,
};
use certquant_core::spec::{InputBox, OutputSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Raw pixels and label of a test image.
type Image = (Vec<u8>, usize);

/// The original network and its bytes, the QNN and its bytes, and the strategy.
struct Setup {
    orig: Network,
    orig_bytes: Vec<u8>,
    qnn: Network,
    qnn_bytes: Vec<u8>,
    strategy: Vec<QuantConfig>,
}

/// Quantizes `orig` with `frac` fractional bits per layer (integer bits by the method's rule)
/// with the checker's own quantizer, and ships it as ONNX bytes.
fn quantize(orig: Network, orig_bytes: Vec<u8>, frac: &[u32]) -> Setup {
    let strategy: Vec<QuantConfig> = orig
        .layers()
        .iter()
        .zip(frac)
        .map(|(l, &f)| QuantConfig::new(quant::integer_bits(l) + f, f).unwrap())
        .collect();
    let q = Network::new(
        orig.layers()
            .iter()
            .zip(&strategy)
            .map(|(l, c)| {
                l.map_params(|v| quant::quantize(v, c.total(), c.frac()))
                    .unwrap()
            })
            .collect(),
    )
    .unwrap();
    let qnn_bytes = certquant_core::onnx::export_bytes(&q).unwrap();
    let qnn = parse_model(&qnn_bytes, "qnn").unwrap();
    Setup {
        orig,
        orig_bytes,
        qnn,
        qnn_bytes,
        strategy,
    }
}

/// A certificate claiming robustness of `label` on the L∞ ball of radius 2/255 around each
/// image, under `semantics`.
fn certificate(s: &Setup, images: &[Image], semantics: Semantics) -> Certificate {
    let eps = 2.0 / 255.0;
    let properties = images
        .iter()
        .enumerate()
        .map(|(id, (pixels, label))| {
            let x: Vec<f64> = pixels.iter().map(|&k| k as f64 / 255.0).collect();
            CertifiedProperty {
                input: InputBox::linf_ball(&x, eps).unwrap(),
                output: OutputSpec::Robust { label: *label },
                source: PropertySource {
                    data: None,
                    id: Some(id),
                    pixels: Some(pixels.clone()),
                    eps_text: Some("2/255".into()),
                    eps: Some(eps),
                    trigger: None,
                },
                margin: 0.0,
                multipliers: None,
            }
        })
        .collect();
    Certificate {
        format: FORMAT.into(),
        tool: "test".into(),
        original_model: ModelRef {
            sha256: sha256_hex(&s.orig_bytes),
            file: None,
        },
        qnn: ModelRef {
            sha256: sha256_hex(&s.qnn_bytes),
            file: None,
        },
        strategy: s.strategy.clone(),
        semantics,
        chi: vec![],
        verifier: "test".into(),
        properties,
        statistical: None,
        vnnlib: None,
        vnnlib_set: Vec::new(),
    }
}

fn fmt((q, f): (u32, u32)) -> ActFormat {
    ActFormat::new(q, f).unwrap()
}

fn integer(acts: &[(u32, u32)], acc_bits: u32) -> Semantics {
    Semantics::Integer(
        IntegerSemantics::new(acts.iter().map(|&a| fmt(a)).collect(), acc_bits).unwrap(),
    )
}

fn check(s: &Setup, c: &Certificate) -> certquant_check::CheckReport {
    check_certificate(c, &s.orig, &s.orig_bytes, &s.qnn, &s.qnn_bytes)
}

/// MP1 (784-100-10) and the first test images it classifies correctly, or `None` (skipped)
/// without `../shared`.
fn mp1(n: usize) -> Option<(Network, Vec<u8>, Vec<Image>)> {
    let models = certquant_core::shared::shared_dir("models/quadapter")?;
    let data = certquant_core::shared::shared_dir("data/mnist")?;
    let bytes = std::fs::read(models.join("mnist_1blk_100.onnx")).unwrap();
    let net = parse_model(&bytes, "MP1").unwrap();
    let ds = certquant_core::data::load_dir(&data).unwrap();
    let images = (0..ds.len())
        .map(|i| {
            (
                ds.raw_pixel_bytes(i).unwrap().to_vec(),
                ds.label(i).unwrap(),
            )
        })
        .filter(|(p, l)| {
            let x: Vec<f64> = p.iter().map(|&k| k as f64 / 255.0).collect();
            net.predict(&x) == *l
        })
        .take(n)
        .collect();
    Some((net, bytes, images))
}

/// The formats of the valid certificate: 8-bit pixels ⟨8, 8⟩, hidden activations ⟨4, 1⟩
/// (codes 0..=15, step 1/2, saturation 7.5). Found by trying formats with the checker on the
/// five images: ⟨4, 1⟩ proves all five, ⟨3, 1⟩ (one total bit less: saturation 3.5) and
/// ⟨3, 0⟩ (one fractional bit less) do not.
const A0: (u32, u32) = (8, 8);
const A1: (u32, u32) = (4, 1);

/// Acceptance test of issue 17: a valid integer-semantics certificate for MP1 (weights
/// ⟨I + 6, 6⟩, five images, eps 2/255) is accepted; lowering the hidden layer's activation
/// bits by one, a too narrow accumulator (eq. (57)), a wrong number of formats, and an input
/// map are each rejected with a reason naming the problem.
#[test]
fn mp1_integer_certificate_and_its_tamperings() {
    let Some((net, bytes, images)) = mp1(5) else {
        return;
    };
    let s = quantize(net, bytes, &[6, 6]);
    let good = certificate(&s, &images, integer(&[A0, A1], 32));
    let r = check(&s, &good);
    assert!(r.valid, "{:?}", r.reasons);
    assert!(r.properties.iter().all(|p| p.proven && p.margin > 0.0));
    // Cross-check: the exact integer program (core's `IntProgram`, an independent reference)
    // classifies sampled points of every box (ends and interior) strictly as the label.
    let sem = IntegerSemantics::new(vec![fmt(A0), fmt(A1)], 32).unwrap();
    let prog = IntProgram::new(&s.qnn, &s.strategy, &sem).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for prop in &good.properties {
        let OutputSpec::Robust { label } = prop.output else {
            unreachable!()
        };
        let (lo, hi) = (prop.input.lo(), prop.input.hi());
        for _ in 0..300 {
            let x: Vec<f64> = lo
                .iter()
                .zip(hi)
                .map(|(&l, &h)| match rng.random_range(0..3) {
                    0 => l,
                    1 => h,
                    _ => l + rng.random_range(0.0..=1.0) * (h - l),
                })
                .collect();
            let logits = prog.run(&x).unwrap();
            assert_eq!(strict_argmax(&logits), Some(label), "{logits:?}");
        }
    }
    // The same certificate round-trips through JSON with its semantics.
    let path = std::env::temp_dir().join(format!("cq-int-cert-{}.json", std::process::id()));
    good.write(&path).unwrap();
    let text = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(String::from_utf8_lossy(&text).contains("\"kind\": \"integer\""));
    assert_eq!(Certificate::parse(&text).unwrap(), good);

    // One activation bit less on the hidden layer, either way: the proof breaks.
    for lowered in [(A1.0 - 1, A1.1), (A1.0 - 1, A1.1 - 1)] {
        let c = certificate(&s, &images, integer(&[A0, lowered], 32));
        let r = check(&s, &c);
        assert!(!r.valid, "{lowered:?} accepted");
        assert!(
            r.reasons
                .iter()
                .any(|m| m.contains("is not proven on the QNN")),
            "{lowered:?}: {:?}",
            r.reasons
        );
        assert!(r.properties.iter().any(|p| !p.proven && p.margin <= 0.0));
    }

    // The same properties with real-valued activations are proven too (the QNN is fine):
    // only the semantics changed.
    let real = check(&s, &certificate(&s, &images, Semantics::Real));
    assert!(real.valid, "{:?}", real.reasons);

    // Eq. (57): MP1's largest layer-0 accumulator bound (784 weight codes times 8-bit pixels
    // plus the bias) needs 22 bits; 21 is rejected naming the row, 22 is accepted. Core's
    // `IntProgram` (an independent reference here) agrees on the bound.
    let sem = IntegerSemantics::new(vec![fmt(A0), fmt(A1)], 64).unwrap();
    let max = IntProgram::new(&s.qnn, &s.strategy, &sem)
        .unwrap()
        .max_accumulator_bound();
    assert!(((1i128 << 20)..(1i128 << 21)).contains(&max), "{max}");
    let r = check(&s, &certificate(&s, &images, integer(&[A0, A1], 22)));
    assert!(r.valid, "{:?}", r.reasons);
    let r = check(&s, &certificate(&s, &images, integer(&[A0, A1], 21)));
    assert!(!r.valid);
    assert!(
        r.reasons.iter().any(|m| m.starts_with("layer 0 row ")
            && m.contains(&format!("accumulator bound {max} "))
            && m.contains("exceeds the 21-bit range")),
        "{:?}",
        r.reasons
    );
    assert!(r.properties.iter().all(|p| !p.proven));

    // Wrong number of formats.
    for acts in [&[A0][..], &[A0, A1, A1][..]] {
        let r = check(&s, &certificate(&s, &images, integer(acts, 32)));
        assert!(!r.valid);
        assert!(
            r.reasons[0].contains(&format!("has {} activation formats", acts.len())),
            "{:?}",
            r.reasons
        );
    }

    // A network with an input map (here the identity (x − 0)/1, on both networks).
    let n = s.orig.input_dim();
    let ew = |kind, c: f64| {
        Node::Elementwise(Elementwise::new(kind, vec![n], vec![c; n], (vec![], vec![c])).unwrap())
    };
    let map = InputMap::new(
        vec![ew(ElementwiseKind::Sub, 0.0), ew(ElementwiseKind::Div, 1.0)],
        &[],
    )
    .unwrap();
    let orig = s.orig.clone().with_input_map(map.clone()).unwrap();
    let qnn = s.qnn.clone().with_input_map(map).unwrap();
    let mapped = Setup {
        orig_bytes: certquant_core::onnx::export_bytes(&orig).unwrap(),
        qnn_bytes: certquant_core::onnx::export_bytes(&qnn).unwrap(),
        orig,
        qnn,
        strategy: s.strategy.clone(),
    };
    let real = check(&mapped, &certificate(&mapped, &images, Semantics::Real));
    assert!(real.valid, "{:?}", real.reasons);
    let r = check(
        &mapped,
        &certificate(&mapped, &images, integer(&[A0, A1], 32)),
    );
    assert!(!r.valid);
    assert!(r.reasons[0].contains("input map"), "{:?}", r.reasons);
}

/// Logits are compared as integers: a tie is a violation (docs/method.md, eq. (55)). Logits
/// `(x₀, 1/2)` over `x₀ ∈ [0.52, 0.6]` are robust for class 0 with real inputs; with 4
/// fractional input bits every `x₀` rounds to `8/16 = 1/2` at the box's lower end, a tie, so
/// the certificate is rejected; with 5 bits `r(0.52) = 17/32 > 1/2` and it is accepted.
/// (Runs without `../shared`.)
#[test]
fn a_tie_of_integer_logits_is_a_violation() {
    use certquant_core::model::Affine;
    let l0 = Affine::new(0, 2, 2, vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.5]).unwrap();
    let orig = Network::new(vec![l0]).unwrap();
    let orig_bytes = certquant_core::onnx::export_bytes(&orig).unwrap();
    let s = quantize(orig, orig_bytes, &[1]);
    assert_eq!(s.strategy[0], QuantConfig::new(3, 1).unwrap());
    let mut cert = certificate(&s, &[], Semantics::Real);
    cert.properties = vec![CertifiedProperty {
        input: InputBox::new(vec![0.52, 0.0], vec![0.6, 1.0]).unwrap(),
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
    }];
    let r = check(&s, &cert);
    assert!(r.valid, "{:?}", r.reasons);
    cert.semantics = integer(&[(6, 5)], 32);
    let r = check(&s, &cert);
    assert!(r.valid, "{:?}", r.reasons);
    let m = r.properties[0].margin; // 1/32, rounded outward
    assert!(m <= 1.0 / 32.0 && m > 1.0 / 32.0 - 1e-12, "{m}");
    cert.semantics = integer(&[(5, 4)], 32);
    let r = check(&s, &cert);
    assert!(!r.valid);
    let m = r.properties[0].margin; // 0, rounded outward
    assert!(m <= 0.0 && m > -1e-12, "{m}");
    assert!(r.reasons[0].contains("is not proven"), "{:?}", r.reasons);
}
