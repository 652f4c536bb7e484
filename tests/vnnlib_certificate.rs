//! Certificates for VNN-LIB properties (docs/method.md §16, eqs. (59), (60)): `verify --vnnlib
//! … --certificate C.json` on a small ACAS-like network whose property needs input splitting
//! and LP multipliers, then `check`; every kind of tampering (a leaf removed, a leaf box
//! shrunk, a wrong multiplier, a changed query file, a QNN that is not the model) is rejected.
//! The same on VNN-COMP 2021 mnistfc `holds` instances when `../shared` is present.

use std::path::{Path, PathBuf};
use std::process::Output;

use certquant::model::{Affine, Network};
use serde_json::Value;

mod common;
use common::acas::{PROPERTY_INPUTS, acas_like};
use common::{run, s};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Two input boxes; the counterexample: `y_0 ≥ 0.5`, or `0.1 ≤ y_2 ≤ −0.1` (refuted only by
/// a combination of its two constraints), or `y_1 ≥ 0.4 ∧ y_3 ≤ 1.5`.
fn property() -> String {
    format!(
        "{}{}",
        PROPERTY_INPUTS,
        "(assert (or (>= Y_0 0.5)\n\
                (and (>= Y_2 0.1) (<= Y_2 -0.1))\n\
                (and (>= Y_1 0.4) (<= Y_3 1.5))))\n"
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    model: PathBuf,
    prop: PathBuf,
    cert: PathBuf,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }

    /// `check` on a certificate file; the VNN-LIB file and the model are passed explicitly.
    fn check(&self, cert: &Path, vnnlib: &Path) -> Output {
        run(&[
            "check",
            "--certificate",
            s(cert),
            "--model",
            s(&self.model),
            "--qnn",
            s(&self.model),
            "--vnnlib",
            s(vnnlib),
        ])
    }

    /// Writes a tampered copy of the certificate and checks it.
    fn check_tampered(&self, name: &str, edit: impl FnOnce(&mut Value)) -> Output {
        let mut v: Value = serde_json::from_slice(&std::fs::read(&self.cert).unwrap()).unwrap();
        edit(&mut v);
        let p = self.path(name);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        self.check(&p, &self.prop)
    }
}

fn proven() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("acas_like.onnx");
    certquant::onnx::export(&acas_like(1.0), &model).unwrap();
    let prop = dir.path().join("prop.vnnlib");
    std::fs::write(&prop, property()).unwrap();
    let cert = dir.path().join("cert.json");
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        s(&prop),
        "--certificate",
        s(&cert),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "holds", "{v}");
    assert!(v["splits"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["certificate"], s(&cert));
    Setup {
        _dir: dir,
        model,
        prop,
        cert,
    }
}

/// The nodes of region `r` of a certificate.
fn nodes(v: &mut Value, r: usize) -> &mut Vec<Value> {
    v["vnnlib"]["regions"][r]["nodes"].as_array_mut().unwrap()
}

#[test]
fn a_split_proof_certificate_checks_valid() {
    let st = proven();
    let v: Value = serde_json::from_slice(&std::fs::read(&st.cert).unwrap()).unwrap();
    // the float network itself: no strategy, the QNN is the model
    assert!(v.get("strategy").is_none(), "{v}");
    assert_eq!(v["qnn"]["sha256"], v["original_model"]["sha256"]);
    assert_eq!(v["properties"].as_array().unwrap().len(), 0);
    let regions = v["vnnlib"]["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2);
    let all: Vec<&Value> = regions
        .iter()
        .flat_map(|r| r["nodes"].as_array().unwrap())
        .collect();
    assert!(all.iter().any(|n| n.get("split").is_some()));
    assert!(
        all.iter()
            .flat_map(|n| n["refuted"].as_array().into_iter().flatten())
            .any(|r| r["proof"].get("multipliers").is_some()),
        "the second disjunct needs multipliers: {v}"
    );
    // the recorded files are found by default
    let out = run(&["check", "--certificate", s(&st.cert), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(r["query"]["hash_ok"], true);
    for reg in r["query"]["regions"].as_array().unwrap() {
        assert_eq!(reg["proven"], true, "{reg}");
        assert!(reg["worst_upper"].as_f64().unwrap() < 0.0);
    }
    let out = st.check(&st.cert, &st.prop);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("VALID") && t.contains("region 1: no counterexample"),
        "{t}"
    );
}

#[test]
fn tampered_split_proof_certificates_are_rejected() {
    let st = proven();
    let rejected = |out: Output, want: &str| {
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(t.contains("INVALID") && t.contains(want), "{want}: {t}");
    };
    // a leaf removed: a gap in the cover
    let out = st.check_tampered("gap.json", |v| {
        let ns = nodes(v, 0);
        let leaf = ns.iter().position(|n| n.get("split").is_none()).unwrap();
        ns.remove(leaf);
    });
    rejected(out, "region 0:");
    // a leaf box shrunk
    let out = st.check_tampered("shrunk.json", |v| {
        let ns = nodes(v, 0);
        let leaf = ns.iter().rposition(|n| n.get("split").is_none()).unwrap();
        let hi = ns[leaf]["hi"][4].as_f64().unwrap();
        let lo = ns[leaf]["lo"][4].as_f64().unwrap();
        ns[leaf]["hi"][4] = Value::from(lo + (hi - lo) * 0.9);
    });
    rejected(out, "its box is not the one the splits above it give");
    // a wrong multiplier: only the first constraint (reachable on its own) counts
    let out = st.check_tampered("lambda.json", |v| {
        let mut done = false;
        for r in 0..2 {
            for n in nodes(v, r) {
                let refuted = n.get_mut("refuted").and_then(Value::as_array_mut);
                for f in refuted.into_iter().flatten() {
                    if let Some(l) = f["proof"].get_mut("multipliers") {
                        *l = serde_json::json!([1.0, 0.0]);
                        done = true;
                    }
                }
            }
        }
        assert!(done);
    });
    rejected(out, "is not re-proven");
    // a root box that leaves out part of the query's box
    let out = st.check_tampered("root.json", |v| {
        nodes(v, 1)[0]["hi"][0] = Value::from(0.5);
    });
    rejected(out, "does not contain the query's box");
    // the query file changed (a weaker threshold on y_0)
    let other = st.path("other.vnnlib");
    std::fs::write(&other, property().replace("(>= Y_0 0.5)", "(>= Y_0 0.2)")).unwrap();
    rejected(st.check(&st.cert, &other), "VNN-LIB file hash mismatch");
    // claimed as a QNN certificate of another model: no strategy means QNN = model
    let out = st.check_tampered("qnn.json", |v| {
        v["qnn"]["sha256"] = Value::from("00".repeat(32));
    });
    // (the certificate parser already refuses it)
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // a missing VNN-LIB file is a usage error
    let out = st.check(&st.cert, &st.path("missing.vnnlib"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("missing.vnnlib"));
}

#[test]
fn old_certificates_and_the_library_checker_without_the_file() {
    let st = proven();
    let cert = certquant::check::read_certificate(&st.cert).unwrap();
    let bytes = std::fs::read(&st.model).unwrap();
    let net = certquant::onnx::import_bytes(&bytes).unwrap();
    let r = certquant::check::check_certificate(&cert, &net, &bytes, &net, &bytes);
    assert!(!r.valid && r.reasons.iter().any(|s| s.contains("its file is needed")));
    let q = std::fs::read(&st.prop).unwrap();
    let r =
        certquant::check::check_certificate_with_query(&cert, &net, &bytes, &net, &bytes, Some(&q));
    assert!(r.valid, "{:?}", r.reasons);
    // a certificate written before this format existed still parses, and writes back
    // without a `vnnlib` part
    let old = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/certificate_parse/demo_certificate.json");
    let c = certquant::certificate::Certificate::read(&old).unwrap();
    assert!(c.vnnlib.is_none() && !c.strategy.is_empty() && !c.properties.is_empty());
    assert!(!serde_json::to_string(&c).unwrap().contains("vnnlib"));
}

/// `bench vnncomp --certificates DIR`: every `holds` comes with a certificate that the bench
/// re-checks with the independent checker (and so does `check`); `violated` has none.
#[test]
fn bench_vnncomp_writes_and_rechecks_certificates() {
    let dir = tempfile::tempdir().unwrap();
    certquant::onnx::export(&acas_like(1.0), &dir.path().join("acas_like.onnx")).unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    std::fs::write(dir.path().join("specs/holds.vnnlib"), property()).unwrap();
    // y_4 = relu(x_0) + relu(−x_1) reaches 2 at (1, −1, …)
    std::fs::write(
        dir.path().join("specs/violated.vnnlib"),
        property().replace("(>= Y_0 0.5)", "(>= Y_4 1.5)"),
    )
    .unwrap();
    let csv = dir.path().join("instances.csv");
    std::fs::write(
        &csv,
        "acas_like.onnx,specs/holds.vnnlib,60\nacas_like.onnx,specs/violated.vnnlib,60\n",
    )
    .unwrap();
    let certs = dir.path().join("certs");
    let out_csv = dir.path().join("out/results.csv");
    let out = run(&[
        "bench",
        "vnncomp",
        "--instances",
        s(&csv),
        "--out",
        s(&out_csv),
        "--certificates",
        s(&certs),
        "--jobs",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"]["holds"], 1, "{v}");
    assert_eq!(v["results"]["violated"], 1, "{v}");
    assert_eq!(
        (&v["certificates_valid"], &v["certificates_invalid"]),
        (&Value::from(1), &Value::from(0))
    );
    let cert = certs.join("acas_like.onnx__specs_holds.vnnlib.certificate.json");
    assert!(
        !certs
            .join("acas_like.onnx__specs_violated.vnnlib.certificate.json")
            .exists()
    );
    let out = run(&["check", "--certificate", s(&cert)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let recs = std::fs::read_to_string(dir.path().join("out/results.csv.jsonl")).unwrap();
    assert!(recs.contains("\"certificate_valid\":true"), "{recs}");
}

/// The format also states a query about a QNN: a strategy, the QNN's own hash, and the split
/// trees proven on the QNN. The checker re-derives the QNN from the original and re-proves the
/// trees on it; a wrong strategy is caught by the derivation.
#[test]
fn a_query_certificate_about_a_qnn() {
    use certquant::certificate::{Certificate, FORMAT, ModelRef, QueryCertificate, sha256_hex};
    use certquant::check::quant::{integer_bits, quantize};
    use certquant::split::{SplitOptions, Verdict, verify_query};
    use certquant_core::quant::QuantConfig;
    // the ACAS-like network with y_3 = 1.1 (not dyadic: quantization moves it)
    let net = acas_like(1.0);
    let l1 = &net.layers()[1];
    let mut b = l1.bias().to_vec();
    b[3] = 1.1f32 as f64;
    let l1 = Affine::new(1, 5, 7, l1.weights().unwrap().to_vec(), b).unwrap();
    let net = net.with_layer(1, l1).unwrap();
    let ob = certquant::onnx::export_bytes(&net).unwrap();
    let orig = certquant::onnx::import_bytes(&ob).unwrap();
    let strategy: Vec<QuantConfig> = orig
        .layers()
        .iter()
        .map(|l| QuantConfig::new(integer_bits(l) + 4, 4).unwrap())
        .collect();
    let qnn = Network::new(
        orig.layers()
            .iter()
            .zip(&strategy)
            .map(|(l, c)| l.map_params(|v| quantize(v, c.total(), c.frac())).unwrap())
            .collect(),
    )
    .unwrap();
    let qb = certquant::onnx::export_bytes(&qnn).unwrap();
    let qnn = certquant::onnx::import_bytes(&qb).unwrap();
    assert_ne!(sha256_hex(&qb), sha256_hex(&ob));
    assert_eq!(qnn.layers()[1].bias()[3], 1.125);
    let query = certquant::vnnlib::parse(&property()).unwrap();
    let out = verify_query(
        &qnn,
        &query,
        &certquant_synth::multipliers::LpMultipliers(&certquant::milp::cbc::Cbc),
        &SplitOptions::default(),
    )
    .unwrap();
    assert_eq!(out.verdict, Verdict::Holds, "{out:?}");
    let cert = Certificate {
        format: FORMAT.into(),
        tool: "test".into(),
        original_model: ModelRef {
            sha256: sha256_hex(&ob),
            file: None,
        },
        qnn: ModelRef {
            sha256: sha256_hex(&qb),
            file: None,
        },
        strategy: strategy.clone(),
        semantics: Default::default(),
        chi: Vec::new(),
        verifier: "test".into(),
        properties: Vec::new(),
        statistical: None,
        vnnlib: Some(QueryCertificate {
            sha256: sha256_hex(property().as_bytes()),
            file: None,
            regions: out.proof.unwrap(),
        }),
        vnnlib_set: Vec::new(),
    };
    let text = serde_json::to_vec(&cert).unwrap();
    let cert = Certificate::parse(&text).unwrap();
    let text = property();
    let q = Some(text.as_bytes());
    let r = certquant::check::check_certificate_with_query(&cert, &orig, &ob, &qnn, &qb, q);
    assert!(r.valid, "{:?}", r.reasons);
    // another strategy does not derive this QNN
    let mut wrong = cert.clone();
    wrong.strategy[1] = QuantConfig::new(integer_bits(&orig.layers()[1]) + 5, 5).unwrap();
    let r = certquant::check::check_certificate_with_query(&wrong, &orig, &ob, &qnn, &qb, q);
    assert!(!r.valid, "{:?}", r.reasons);
    // no strategy is not a way around the derivation: the parser and the checker refuse it
    let mut none = cert.clone();
    none.strategy.clear();
    assert!(Certificate::parse(&serde_json::to_vec(&none).unwrap()).is_err());
    let r = certquant::check::check_certificate_with_query(&none, &orig, &ob, &qnn, &qb, q);
    assert!(
        r.reasons.iter().any(|s| s.contains("no strategy")),
        "{:?}",
        r.reasons
    );
}

/// The fuzzing seed of a VNN-LIB certificate (a hand-split tree on the demo model) stays a
/// valid certificate, so the fuzzer starts from the checker's accepting path.
#[test]
fn the_fuzz_seed_is_a_valid_split_certificate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cert = certquant::check::read_certificate(
        &root.join("fuzz/regressions/certificate_parse/vnnlib_split_certificate.json"),
    )
    .unwrap();
    let model = std::fs::read(root.join("assets/demo/fashion_mlp.onnx")).unwrap();
    let net = certquant::onnx::import_bytes(&model).unwrap();
    let query = std::fs::read(root.join("tests/fixtures/vnnlib/fashion_box.vnnlib")).unwrap();
    let r = certquant::check::check_certificate_with_query(
        &cert,
        &net,
        &model,
        &net,
        &model,
        Some(&query),
    );
    assert!(r.valid, "{:?}", r.reasons);
    let q = r.query.unwrap();
    assert_eq!((q.regions[0].nodes, q.regions[0].leaves), (3, 2));
}

/// The mnistfc `holds` instances proven in `tests/vnnlib.rs`, certified and checked.
#[test]
fn mnistfc_holds_instances_are_certified_and_checked() {
    let Some(root) = certquant::shared::shared_dir("benchmarks/vnncomp2021") else {
        return;
    };
    let dir = root.join("mnistfc");
    let tmp = tempfile::tempdir().unwrap();
    let model = dir.join("mnist-net_256x2.onnx");
    for p in ["prop_2_0.03.vnnlib", "prop_2_0.05.vnnlib"] {
        let prop = dir.join(p);
        let cert = tmp.path().join(format!("{p}.json"));
        let out = run(&[
            "verify",
            "--model",
            s(&model),
            "--vnnlib",
            s(&prop),
            "--timeout",
            "120",
            "--certificate",
            s(&cert),
        ]);
        assert_eq!(out.status.code(), Some(0), "{p}: {}", text(&out));
        let out = run(&["check", "--certificate", s(&cert)]);
        assert_eq!(out.status.code(), Some(0), "{p}: {}", text(&out));
        assert!(text(&out).contains("VALID"));
    }
}
