//! `--semantics integer` end to end on the embedded demo network (docs/method.md §17): synthesis
//! per input and for a property set, the certificate's semantics, the integer program it
//! describes, the integer attack, and `check` re-proving it — and rejecting it when the
//! activation formats are made coarser.

use certquant::certificate::Certificate;
use certquant::semantics::{ActFormat, IntProgram, Semantics, strict_argmax};

mod common;
use common::{
    check_json as check, demo_data, demo_model, json_of as json, s, synth_demo, synth_demo_set,
};

#[test]
fn integer_synthesis_on_the_demo_is_certified_exact_and_rechecked() {
    let (model, data) = (demo_model(), demo_data());
    let dir = tempfile::tempdir().unwrap();
    let outdir = dir.path().join("int");
    let ids = "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19";
    let out = synth_demo_set(ids, "integer", &outdir);
    let v = json(&out);
    assert_eq!(v["status"], "certified", "{v}");
    assert_eq!(v["semantics"], "integer");
    assert_eq!(v["attack_counterexample"], false);
    let acts = v["activations"].as_array().unwrap();
    assert_eq!(acts.len(), 3, "input + two hidden layers: {v}");

    // The certificate states the integer semantics, and its program classifies every certified
    // property's centre as its label.
    let cert_path = outdir.join("certificate.json");
    let cert = Certificate::read(&cert_path).unwrap();
    let Semantics::Integer(sem) = &cert.semantics else {
        panic!("certificate is not about the integer semantics")
    };
    let qnn = certquant::onnx::import(&outdir.join("qnn.onnx")).unwrap();
    let program = IntProgram::new(&qnn, &cert.strategy, sem).unwrap();
    assert!(program.max_accumulator_bound() < 1 << 31);
    for p in &cert.properties {
        let pixels = p.source.pixels.as_ref().expect("pixels recorded");
        let logits = program.run_pixels(pixels).unwrap();
        let certquant::spec::OutputSpec::Robust { label } = p.output else {
            panic!("robustness property")
        };
        assert_eq!(strict_argmax(&logits), Some(label));
    }

    // `check` re-proves it ...
    let r = check(&cert_path, &model);
    assert_eq!(r["valid"], true, "{r}");

    // ... and rejects the same certificate with coarser activations where that breaks the
    // proof (some layer's F^a lowered by one; the QNN is unchanged, so only the proof can fail).
    let mut rejected = false;
    for k in 0..sem.acts.len() {
        let a = sem.acts[k];
        if a.frac() == 0 {
            continue;
        }
        let mut tampered = cert.clone();
        let Semantics::Integer(t) = &mut tampered.semantics else {
            unreachable!()
        };
        t.acts[k] = ActFormat::new(a.total() - 1, a.frac() - 1).unwrap();
        let path = dir.path().join(format!("tampered{k}.json"));
        tampered.write(&path).unwrap();
        if check(&path, &model)["valid"] == false {
            rejected = true;
        }
    }
    assert!(
        rejected,
        "no certificate with one activation format coarser was rejected"
    );

    // Under the real semantics the same strategy is certified too, with no activation formats.
    let out = synth_demo(&[
        "--ids",
        ids,
        "--eps",
        "1/255",
        "--accuracy-data",
        s(&data),
        "--max-acc-drop",
        "10",
        "--json",
    ]);
    let r = json(&out);
    assert_eq!(r["status"], "certified", "{r}");
    assert_eq!(r["layers"], v["layers"], "the weight search is the same");
    assert!(r.get("activations").is_none());
}

#[test]
fn integer_synthesis_per_input_reports_formats_or_why_not() {
    let one = ["--id", "0", "--eps", "1/255", "--semantics", "integer"];
    let out = synth_demo(&[&one[..], &["--attack", "--json"]].concat());
    let v = json(&out);
    match v["status"].as_str().unwrap() {
        "certified" => {
            assert_eq!(v["activations"].as_array().unwrap().len(), 3, "{v}");
            assert_eq!(v["attack_counterexample"], false);
        }
        "unknown" => assert!(
            v["integer_failure"].is_string() || v["activations"].is_null(),
            "{v}"
        ),
        other => panic!("unexpected status {other}: {v}"),
    }
    // Bad option values exit 2.
    let out = synth_demo(&[&one[..], &["--acc-bits", "4"]].concat());
    assert_eq!(out.status.code(), Some(2));
}
