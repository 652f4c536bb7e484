//! Issue 17: `certquant export c|onnx|logits` from a certificate and by hand, and what it
//! refuses (exit 2 with a message naming the problem). The bit-exactness of the exports
//! themselves is `tests/export_int.rs`.

use std::path::Path;
use std::process::Command;

use certquant::quantize::Strategy;
use certquant_core::quant::QuantConfig;
use certquant_core::semantics::{ActFormat, IntProgram, IntegerSemantics};

const DEMO_MODEL: &[u8] = include_bytes!("../assets/demo/fashion_mlp.onnx");
const DEMO_IMAGES: &[u8] = include_bytes!("../assets/demo/t10k-images-idx3-ubyte");
const DEMO_LABELS: &[u8] = include_bytes!("../assets/demo/t10k-labels-idx1-ubyte");

/// The demo network with weights ⟨·,6⟩ and activations ⟨9,8⟩ ⟨8,5⟩ ⟨8,5⟩ (as in
/// `tests/export_int.rs`).
fn demo_program() -> IntProgram {
    let net = certquant::onnx::import_bytes(DEMO_MODEL).expect("demo model");
    let s = Strategy::from_fracs(&net, &vec![6; net.depth()]).expect("strategy");
    let qnn = s.apply(&net).expect("quantize");
    let hidden = ActFormat::new(8, 5).unwrap();
    let mut acts = vec![ActFormat::new(9, 8).unwrap()];
    acts.extend(std::iter::repeat_n(hidden, net.depth() - 1));
    let sem = IntegerSemantics::new(acts, 32).unwrap();
    IntProgram::new(&qnn, &s.0, &sem).expect("eq. (57) holds for the demo strategy")
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn certquant(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certquant"))
        .args(args)
        .output()
        .expect("certquant runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An integer-semantics certificate for `qnn_bytes` (hand-made: `export` reads the strategy,
/// the semantics and the QNN hash; `certquant check` is what re-proves a certificate).
fn integer_certificate(
    qnn_bytes: &[u8],
    strategy: &[QuantConfig],
    sem: certquant_core::semantics::Semantics,
    pixels: &[u8],
) -> Vec<u8> {
    use certquant_core::certificate::*;
    let x: Vec<f64> = pixels.iter().map(|&k| f64::from(k) / 255.0).collect();
    let c = Certificate {
        format: FORMAT.into(),
        tool: "tests/export_int.rs".into(),
        original_model: ModelRef {
            sha256: sha256_hex(DEMO_MODEL),
            file: None,
        },
        qnn: ModelRef {
            sha256: sha256_hex(qnn_bytes),
            file: None,
        },
        strategy: strategy.to_vec(),
        semantics: sem,
        chi: vec![],
        verifier: "deeppoly".into(),
        properties: vec![CertifiedProperty {
            input: certquant_core::spec::InputBox::linf_ball(&x, 1.0 / 255.0).unwrap(),
            output: certquant_core::spec::OutputSpec::Robust { label: 9 },
            source: PropertySource {
                data: None,
                id: Some(0),
                pixels: Some(pixels.to_vec()),
                eps_text: Some("1/255".into()),
                eps: Some(1.0 / 255.0),
                trigger: None,
            },
            margin: 1.0,
            multipliers: None,
        }],
        statistical: None,
        vnnlib: None,
        vnnlib_set: Vec::new(),
    };
    serde_json::to_vec_pretty(&c).unwrap()
}

/// Reads an int64 NPY file written by `export logits`.
fn read_npy_i64(bytes: &[u8]) -> Vec<i64> {
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(
        std::str::from_utf8(&bytes[10..10 + hl])
            .unwrap()
            .contains("'<i8'")
    );
    bytes[10 + hl..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn cli_exports_from_a_certificate_and_refuses_what_it_cannot() {
    use certquant_core::certificate::sha256_hex;
    use certquant_core::semantics::Semantics;
    let net = certquant::onnx::import_bytes(DEMO_MODEL).unwrap();
    let s = Strategy::from_fracs(&net, &[6, 6, 6]).unwrap();
    let qnn = s.apply(&net).unwrap();
    let p = demo_program();
    let sem =
        IntegerSemantics::new(p.layers.iter().map(|l| l.input).collect(), p.acc_bits).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let qnn_path = d.join("qnn.onnx");
    let qnn_bytes = certquant::onnx::export_bytes(&qnn).unwrap();
    std::fs::write(&qnn_path, &qnn_bytes).unwrap();
    let data = d.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("t10k-images-idx3-ubyte"), DEMO_IMAGES).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), DEMO_LABELS).unwrap();
    let ds = certquant::data::load(&data).unwrap();
    let cert_bytes = integer_certificate(
        &qnn_bytes,
        &s.0,
        Semantics::Integer(sem.clone()),
        ds.raw_pixel_bytes(0).unwrap(),
    );
    let cert = d.join("certificate.json");
    std::fs::write(&cert, &cert_bytes).unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    let src = |c: &Path| {
        vec![
            os("--qnn"),
            qnn_path.clone().into(),
            os("--certificate"),
            c.into(),
        ]
    };
    let args = |sub: &str, extra: Vec<std::ffi::OsString>, c: &Path| {
        let mut v = vec![os("export"), os(sub)];
        v.extend(src(c));
        v.extend(extra);
        v
    };
    let run = |v: Vec<std::ffi::OsString>| {
        let refs: Vec<&std::ffi::OsStr> = v.iter().map(|s| s.as_os_str()).collect();
        certquant(&refs)
    };

    // Reference logits through the CLI equal IntProgram's, in both formats.
    let want: Vec<i64> = (0..ds.len())
        .flat_map(|i| p.run_pixels(ds.raw_pixel_bytes(i).unwrap()).unwrap())
        .collect();
    let npy = d.join("logits.npy");
    let (code, out, err) = run(args(
        "logits",
        vec![
            os("--data"),
            data.clone().into(),
            os("--out"),
            npy.clone().into(),
            os("--json"),
        ],
        &cert,
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"n\":20"), "{out}");
    assert_eq!(read_npy_i64(&std::fs::read(&npy).unwrap()), want);
    let jsonl = d.join("logits.jsonl");
    let (code, _, err) = run(args(
        "logits",
        vec![
            os("--data"),
            data.clone().into(),
            os("--out"),
            jsonl.clone().into(),
        ],
        &cert,
    ));
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<i64>> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.concat(), want);

    // C and ONNX from the certificate: the header names its hash.
    let cdir = d.join("c");
    let (code, _, err) = run(args(
        "c",
        vec![os("--out"), cdir.clone().into(), os("--name"), os("demo_q")],
        &cert,
    ));
    assert_eq!(code, 0, "{err}");
    let header = std::fs::read_to_string(cdir.join("demo_q.h")).unwrap();
    assert!(header.contains(&format!("certificate sha256 {}", sha256_hex(&cert_bytes))));
    assert!(header.contains(
        "int demo_q_predict(const uint8_t pixels[DEMO_Q_INPUTS], int32_t logits[DEMO_Q_CLASSES]);"
    ));
    let (code, _, err) = run(args(
        "onnx",
        vec![os("--out"), d.join("m.onnx").into()],
        &cert,
    ));
    assert_eq!(code, 0, "{err}");
    assert!(d.join("m.onnx").is_file());

    // Without --qnn: the QNN file the certificate records, else a clear refusal.
    let no_qnn = |c: &Path| {
        let v = vec![
            os("export"),
            os("onnx"),
            os("--certificate"),
            c.into(),
            os("--out"),
        ];
        run([v, vec![d.join("m2.onnx").into()]].concat())
    };
    let mut recorded: serde_json::Value = serde_json::from_slice(&cert_bytes).unwrap();
    recorded["qnn"]["file"] = qnn_path.to_str().unwrap().into();
    let cert2 = d.join("recorded.json");
    std::fs::write(&cert2, serde_json::to_vec(&recorded).unwrap()).unwrap();
    let (code, _, err) = no_qnn(&cert2);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = no_qnn(&cert);
    assert!(code == 2 && err.contains("pass --qnn"), "{code} {err}");

    // Uncertified, by hand: the same program, and the files say it is uncertified.
    let hand = |sub: &str, extra: &[&str]| {
        let mut v = vec![os("export"), os(sub), os("--qnn"), qnn_path.clone().into()];
        v.extend(extra.iter().map(|s| os(s)));
        run(v)
    };
    let udir = d.join("u");
    let (code, out, err) = hand(
        "c",
        &[
            "--weights",
            "6,6,6",
            "--acts",
            "9.8,8.5,8.5",
            "--out",
            udir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("UNCERTIFIED"), "{out}");
    assert!(
        std::fs::read_to_string(udir.join("qnn.h"))
            .unwrap()
            .contains("UNCERTIFIED")
    );
    let unpy = d.join("u.npy");
    let (code, _, err) = hand(
        "logits",
        &[
            "--weights",
            "6,6,6",
            "--acts",
            "9.8,8.5,8.5",
            "--data",
            data.to_str().unwrap(),
            "--out",
            unpy.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(read_npy_i64(&std::fs::read(&unpy).unwrap()), want);

    // Refusals: exit 2 with a message naming the problem.
    let expect_refusal = |(code, _, err): (i32, String, String), needle: &str| {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    };
    let real = d.join("real.json");
    std::fs::write(
        &real,
        integer_certificate(
            &qnn_bytes,
            &s.0,
            Semantics::Real,
            ds.raw_pixel_bytes(0).unwrap(),
        ),
    )
    .unwrap();
    expect_refusal(
        run(args("c", vec![os("--out"), cdir.clone().into()], &real)),
        "real semantics",
    );
    let float = d.join("float.onnx");
    std::fs::write(&float, DEMO_MODEL).unwrap();
    let mut v = vec![
        os("export"),
        os("onnx"),
        os("--qnn"),
        float.into(),
        os("--certificate"),
    ];
    v.extend([cert.clone().into(), os("--out"), d.join("x.onnx").into()]);
    expect_refusal(run(v), "SHA-256");
    expect_refusal(
        hand(
            "c",
            &["--weights", "6,6,6", "--acts", "31.8,8.5,8.5", "--out", "x"],
        ),
        "eq. (57)",
    );
    expect_refusal(
        hand(
            "c",
            &["--weights", "6,6,6", "--acts", "9,8.5,8.5", "--out", "x"],
        ),
        "--acts",
    );
    expect_refusal(
        hand(
            "c",
            &["--weights", "6,6", "--acts", "9.8,8.5,8.5", "--out", "x"],
        ),
        "--weights has 2 formats",
    );
    expect_refusal(
        hand(
            "c",
            &[
                "--weights",
                "6,6,6",
                "--acts",
                "9.8,8.5,8.5",
                "--name",
                "1x",
                "--out",
                "x",
            ],
        ),
        "invalid export name",
    );
    expect_refusal(
        hand(
            "c",
            &["--weights", "2,6,6", "--acts", "9.8,8.5,8.5", "--out", "x"],
        ),
        "not a code",
    );
    expect_refusal(
        run(args(
            "logits",
            vec![os("--data"), data.into(), os("--out"), os("l.txt")],
            &cert,
        )),
        ".npy or .jsonl",
    );
}
