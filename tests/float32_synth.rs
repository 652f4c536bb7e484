//! `--semantics float32` end to end on the embedded demo network (docs/method.md §17,
//! eqs. (58b), (58c)): synthesis for a property set and per input, the certificate's
//! semantics, the binary32 attack, and `check` re-proving it.

use std::path::Path;

use certquant::certificate::Certificate;
use certquant::float32::{ORDERS, forward_f32};
use certquant::semantics::Semantics;

mod common;
use common::{check_json as check, demo_model, json_of as json, s, synth_demo, synth_demo_set};

#[test]
fn float32_set_synthesis_is_certified_and_rechecked() {
    let model = demo_model();
    let dir = tempfile::tempdir().unwrap();
    let outdir = dir.path().join("f32");
    let out = synth_demo_set("0,1,2,3,4,5,6,7,8,9", "float32", &outdir);
    let v = json(&out);
    assert_eq!(v["status"], "certified", "{v}");
    assert_eq!(v["semantics"], "float32");
    assert_eq!(v["attack_counterexample"], false);
    let acc = v["qnn_accuracy"]
        .as_f64()
        .expect("binary32 accuracy reported");
    assert!(acc >= v["min_accuracy"].as_f64().unwrap() - 1e-12, "{v}");
    let cert_path = outdir.join("certificate.json");
    let cert = Certificate::read(&cert_path).unwrap();
    assert_eq!(cert.semantics, Semantics::Float32);
    // Every summation order classifies each certified centre as its label.
    let qnn = certquant::onnx::import(&outdir.join("qnn.onnx")).unwrap();
    for p in &cert.properties {
        let pixels = p.source.pixels.as_ref().expect("pixels recorded");
        let x: Vec<f64> = pixels.iter().map(|&k| k as f64 / 255.0).collect();
        let certquant::spec::OutputSpec::Robust { label } = p.output else {
            panic!("robustness property")
        };
        for o in ORDERS {
            let l = forward_f32(&qnn, &x, o);
            assert!((0..l.len()).all(|j| j == label || l[label] > l[j]), "{o:?}");
        }
    }
    let r = check(&cert_path, &model);
    assert_eq!(r["valid"], true, "{r}");
}

#[test]
fn float32_per_input_certifies_or_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = synth_demo(&[
        "--id",
        "0",
        "--eps",
        "1/255",
        "--semantics",
        "float32",
        "--attack",
        "--out",
        s(dir.path()),
        "--json",
    ]);
    let v = json(&out);
    match v["status"].as_str().unwrap() {
        "certified" => {
            assert_eq!(v["attack_counterexample"], false, "{v}");
            let cert_path = dir.path().join("certificate.json");
            let cert = Certificate::read(&cert_path).unwrap();
            assert!(cert.semantics.is_float32());
            assert_eq!(check(&cert_path, &demo_model())["valid"], true);
        }
        "unknown" => assert!(v["integer_failure"].is_string(), "{v}"),
        other => panic!("unexpected status {other}: {v}"),
    }
}

#[test]
fn the_binary32_attack_finds_a_summation_order_tie_the_real_attack_misses() {
    use certquant::attack::{AttackOptions, find_counterexample, find_float32_counterexample};
    use certquant::model::{Affine, Network};
    use certquant::spec::{InputBox, OutputSpec, Property};
    // y0 = x0 + 2^−24·x1 + 2^−24·x2, y1 = x0 at x = (1, 1, 1): over the reals y0 > y1, in
    // binary32 summed in order y0 = 1 = y1 (a tie), summed in reverse y0 > y1.
    let t = 2f64.powi(-24);
    let l = Affine::new(0, 2, 3, vec![1.0, t, t, 1.0, 0.0, 0.0], vec![0.0, 0.0]).unwrap();
    let net = Network::new(vec![l]).unwrap();
    let prop = Property {
        input: InputBox::new(vec![1.0; 3], vec![1.0; 3]).unwrap(),
        output: OutputSpec::Robust { label: 0 },
    };
    let opts = AttackOptions::default();
    assert!(find_counterexample(&net, &prop, &opts).is_none());
    assert!(find_float32_counterexample(&net, &prop, &opts).is_some());
    let x = [1.0; 3];
    assert_eq!(
        forward_f32(&net, &x, certquant::float32::SumOrder::Sequential),
        vec![1.0, 1.0]
    );
    assert!(certquant::float32::prove_float32(&net, &prop).is_ok_and(|(p, _)| !p));
    let why = certquant::float32::prove_all(&net, &[&prop])
        .unwrap()
        .unwrap_err();
    assert!(why.contains("not proven under float32"), "{why}");
}

#[test]
fn an_input_normalisation_is_refused_not_reported_unknown() {
    use certquant::spec::{InputBox, OutputSpec, Property};
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/norm_cifar_nchw_op11.onnx");
    let net = certquant::onnx::import(&model).unwrap();
    assert!(net.input_map().is_some());
    let prop = Property {
        input: InputBox::new(vec![0.0; net.input_dim()], vec![1.0; net.input_dim()]).unwrap(),
        output: OutputSpec::Robust { label: 0 },
    };
    let err = certquant::float32::prove_all(&net, &[&prop]).unwrap_err();
    assert!(
        err.contains("float32 semantics") && err.contains("normalisation"),
        "{err}"
    );
}
