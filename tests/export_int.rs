//! Issue 17, item 4: the C and ONNX exports of the integer program (docs/method.md §17) run it
//! bit for bit. Every test compares the exports' integer logits with `IntProgram::run_pixels`,
//! the reference: the C export compiled with `cc -O2` (always — `cc` missing is a failure under
//! `CERTQUANT_REQUIRE_SHARED=1`), the ONNX export in ONNX Runtime through python3 (skipped with a
//! message when python3 lacks onnxruntime, a failure under `CERTQUANT_REQUIRE_ORT=1`, which
//! `.ci/run` sets after installing it into `target/pyenv`).
//!
//! The hand-made programs assert that their data really contains what they test (rounding ties
//! with odd and even quotients, negative and saturating accumulators, left shifts), so a C or
//! ONNX rounding by plain `>>` or half-up would make them fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use certquant::quantize::Strategy;
use certquant_core::deploy::{Provenance, c::export_c};
use certquant_core::model::{Affine, Network};
use certquant_core::quant::QuantConfig;
use certquant_core::semantics::{ActFormat, IntProgram, IntegerSemantics, shr_even, strict_argmax};

const DEMO_MODEL: &[u8] = include_bytes!("../assets/demo/fashion_mlp.onnx");
const DEMO_IMAGES: &[u8] = include_bytes!("../assets/demo/t10k-images-idx3-ubyte");
const DEMO_LABELS: &[u8] = include_bytes!("../assets/demo/t10k-labels-idx1-ubyte");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_is(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// `true` when `cc` runs; panics when it does not and CI requires it.
fn have_cc() -> bool {
    let ok = Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !env_is("CERTQUANT_REQUIRE_SHARED"),
            "cc is missing, and CERTQUANT_REQUIRE_SHARED=1 requires the C export test"
        );
        eprintln!("skipping the C export check: no cc");
    }
    ok
}

/// A python3 with numpy and onnxruntime: `$CERTQUANT_PYTHON`, `target/pyenv` (made by
/// `.ci/run`), or `python3`. Panics when none has them and `CERTQUANT_REQUIRE_ORT=1`.
fn python_with_ort() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("CERTQUANT_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(root().join("target/pyenv/bin/python3"));
    candidates.push(PathBuf::from("python3"));
    let found = candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import numpy, onnxruntime"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            !env_is("CERTQUANT_REQUIRE_ORT"),
            "no python3 with numpy and onnxruntime (tried $CERTQUANT_PYTHON, target/pyenv, python3), and CERTQUANT_REQUIRE_ORT=1"
        );
        eprintln!(
            "skipping the ONNX Runtime check: no python3 with onnxruntime (python3 -m pip install numpy onnxruntime)"
        );
    }
    found
}

/// IDX3 bytes of `images` (each `inputs` pixels, stored as 1 × inputs).
fn idx3(images: &[Vec<u8>], inputs: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x803u32, images.len() as u32, 1, inputs as u32] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for im in images {
        assert_eq!(im.len(), inputs);
        b.extend_from_slice(im);
    }
    b
}

/// Parses the driver's / ort_run.py's output lines (`skip` leading columns).
fn parse_lines(text: &str, skip: usize) -> Vec<Vec<i64>> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .skip(skip)
                .map(|t| t.parse().expect("integer"))
                .collect()
        })
        .collect()
}

/// Compiles the driver with the exported `dir/qnn.c` and `flags`, runs it on `idx` and
/// returns its output; `None` when `optional` and the compiler refuses the flags.
fn compile_and_run(
    dir: &Path,
    idx: &Path,
    flags: &[&str],
    exe: &str,
    optional: bool,
) -> Option<String> {
    let exe = dir.join(exe);
    let out = Command::new("cc")
        .args(flags)
        .args(["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(dir)
        .args(["-DCQ_NAME=qnn", "-DCQ_UPPER=QNN"])
        .arg(root().join("scripts/issue17/driver.c"))
        .arg(dir.join("qnn.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("cc runs");
    if !out.status.success() {
        assert!(
            optional,
            "cc failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let out = Command::new(&exe).arg(idx).output().expect("driver runs");
    assert!(
        out.status.success(),
        "{exe:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compiles the C export with the driver (`cc -O2`) and runs it on `idx`: (class, logits) per
/// image. Where the compiler has UBSan, a second build with `-fsanitize=undefined` (any
/// signed overflow, bad shift or out-of-range conversion aborts) must print the same.
fn run_c(program: &IntProgram, dir: &Path, idx: &Path) -> Vec<(i64, Vec<i64>)> {
    let e = export_c(program, "qnn", &prov()).expect("C export");
    std::fs::write(dir.join("qnn.h"), &e.header).expect("write h");
    std::fs::write(dir.join("qnn.c"), &e.source).expect("write c");
    let text = compile_and_run(dir, idx, &["-O2"], "run", false).expect("not optional");
    let ub = ["-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all"];
    match compile_and_run(dir, idx, &ub, "run_ubsan", true) {
        Some(checked) => assert_eq!(checked, text, "the UBSan build differs"),
        None => eprintln!("(no UBSan in this cc: the sanitised build is skipped)"),
    }
    parse_lines(&text, 0)
        .into_iter()
        .map(|mut row| {
            let class = row.remove(0);
            (class, row)
        })
        .collect()
}

/// Exports ONNX and runs it in ONNX Runtime on `idx` (None when no onnxruntime).
fn run_ort(program: &IntProgram, dir: &Path, idx: &Path) -> Option<Vec<Vec<i64>>> {
    let python = python_with_ort()?;
    let model = dir.join("qnn_int.onnx");
    let bytes = certquant::onnx::export_int_bytes(program, &prov()).expect("ONNX export");
    std::fs::write(&model, bytes).expect("write onnx");
    let txt = dir.join("ort.txt");
    let out = Command::new(python)
        .arg(root().join("scripts/issue17/ort_run.py"))
        .arg(&model)
        .arg(idx)
        .arg(&txt)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "ort_run.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(parse_lines(
        &std::fs::read_to_string(&txt).expect("ort output"),
        0,
    ))
}

fn prov() -> Provenance {
    Provenance {
        qnn_sha256: "0".repeat(64),
        certificate_sha256: None,
    }
}

/// Runs both exports on `images` and asserts identical integer logits (and classes) to the
/// reference; returns the reference logits.
fn assert_exports_match(program: &IntProgram, images: &[Vec<u8>], tag: &str) -> Vec<Vec<i64>> {
    let want: Vec<Vec<i64>> = images
        .iter()
        .map(|im| program.run_pixels(im).expect("reference"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let idx = dir.path().join("images.idx3");
    std::fs::write(&idx, idx3(images, program.input_dim())).expect("write idx");
    if have_cc() {
        let got = run_c(program, dir.path(), &idx);
        assert_eq!(got.len(), images.len(), "{tag}: C output lines");
        for (i, ((class, logits), w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(logits, w, "{tag}: C logits of image {i}");
            let c = strict_argmax(w).map_or(-1, |c| c as i64);
            assert_eq!(*class, c, "{tag}: C class of image {i}");
        }
    }
    if let Some(got) = run_ort(program, dir.path(), &idx) {
        assert_eq!(got, want, "{tag}: ONNX Runtime logits");
    }
    want
}

/// The demo network under a plausible integer strategy: weights ⟨·,6⟩ (natural integer bits),
/// activations ⟨9,8⟩ for the input and ⟨8,5⟩ for both hidden layers, 32-bit accumulators.
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

#[test]
fn demo_network_exports_equal_the_integer_program() {
    let p = demo_program();
    let ds = certquant::data::idx_pair_from_bytes(DEMO_IMAGES, DEMO_LABELS, "demo").unwrap();
    let images: Vec<Vec<u8>> = (0..ds.len())
        .map(|i| ds.raw_pixel_bytes(i).unwrap().to_vec())
        .collect();
    assert_eq!(images.len(), 20);
    let want = assert_exports_match(&p, &images, "demo");
    let correct = want
        .iter()
        .enumerate()
        .filter(|(i, z)| strict_argmax(z) == ds.label(*i))
        .count();
    // Plausible: the integer program classifies like the float network does on these images.
    assert!(correct >= 15, "integer accuracy {correct}/20");
}

/// One hand-made layer: outputs, inputs, row-major weight codes, bias codes, weight ⟨Q, F⟩.
type LayerCodes = (usize, usize, Vec<i64>, Vec<i64>, (u32, u32));

/// A program from explicit codes: `layers` of (outputs × inputs weight codes, bias codes,
/// weight format), activation formats `acts`.
fn program(layers: &[LayerCodes], acts: &[(u32, u32)], acc_bits: u32) -> IntProgram {
    let mut net_layers = Vec::new();
    let mut strategy = Vec::new();
    for (k, (o, i, w, b, (q, f))) in layers.iter().enumerate() {
        let s = (-(*f as f64)).exp2();
        let w: Vec<f64> = w.iter().map(|&c| c as f64 * s).collect();
        let b: Vec<f64> = b.iter().map(|&c| c as f64 * s).collect();
        net_layers.push(Affine::new(k, *o, *i, w, b).unwrap());
        strategy.push(QuantConfig::new(*q, *f).unwrap());
    }
    let net = Network::new(net_layers).unwrap();
    let acts = acts
        .iter()
        .map(|&(q, f)| ActFormat::new(q, f).unwrap())
        .collect();
    IntProgram::new(
        &net,
        &strategy,
        &IntegerSemantics::new(acts, acc_bits).unwrap(),
    )
    .unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so the data is the same on every machine.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// What the accumulators of hidden layer `k` of `p` look like on `images`.
#[derive(Default, Debug)]
struct Coverage {
    tie_odd: usize,
    tie_even: usize,
    negative: usize,
    saturated: usize,
}

fn coverage(p: &IntProgram, k: usize, images: &[Vec<u8>]) -> Coverage {
    let l = &p.layers[k];
    let s = l.shift().expect("hidden") as u32;
    let max = l.output.expect("hidden").max_code() as i128;
    let mut c = Coverage::default();
    for im in images {
        let mut a = p.pixel_codes(im).unwrap();
        for j in 0..k {
            let lj = &p.layers[j];
            let m = lj.output.unwrap().max_code() as i128;
            a = lj
                .accumulate(&a)
                .into_iter()
                .map(|z| shr_even(z, lj.shift().unwrap()).clamp(0, m) as i64)
                .collect();
        }
        for acc in l.accumulate(&a) {
            if acc < 0 {
                c.negative += 1;
            } else if shr_even(acc, s as i32) > max {
                c.saturated += 1;
            } else if acc > 0 && acc & ((1 << s) - 1) == 1 << (s - 1) {
                if (acc >> s) & 1 == 1 {
                    c.tie_odd += 1;
                } else {
                    c.tie_even += 1;
                }
            }
        }
    }
    c
}

#[test]
fn half_even_ties_negative_and_saturating_accumulators() {
    // 4 inputs ⟨6,2⟩ (pixel codes 0..=4), hidden 6 neurons with shift 1 and 2, logits of 3.
    // Weight codes ⟨5,1⟩; s = 1 + 2 − F^a_1.
    let w0 = vec![
        1, 0, 0, 0, //
        1, 1, 0, 0, //
        3, -1, 1, 0, //
        -2, 1, 1, 1, //
        7, 5, 3, 1, //
        1, -3, 2, -1,
    ];
    let b0 = vec![0, 1, -1, 2, 0, -3];
    let w1 = vec![1, -1, 2, 0, 1, -2, 0, 1, 1, 1, -1, 3, -2, 0, 1, 1, 1, 1];
    let b1 = vec![1, 0, -1];
    for (f1, q1) in [(2u32, 3u32), (1, 3), (0, 2)] {
        let p = program(
            &[
                (6, 4, w0.clone(), b0.clone(), (5, 1)),
                (3, 6, w1.clone(), b1.clone(), (4, 1)),
            ],
            &[(6, 2), (q1, f1)],
            16,
        );
        let images: Vec<Vec<u8>> = bytes(4 * 400, u64::from(f1) + 3)
            .chunks(4)
            .map(<[u8]>::to_vec)
            .collect();
        let c = coverage(&p, 0, &images);
        assert!(
            c.tie_odd > 0 && c.tie_even > 0 && c.negative > 0 && c.saturated > 0,
            "F^a = {f1}: the data must hit every case: {c:?}"
        );
        let want = assert_exports_match(&p, &images, &format!("ties F^a_1 = {f1}"));
        assert!(want.iter().flatten().any(|&z| z < 0), "negative logits");
    }
}

#[test]
fn left_shifts_zero_layers_and_wide_accumulators() {
    // s = 1 + 1 − 5 = −3: a left shift by 3 with saturation at 2^6 − 1.
    let p = program(
        &[
            (3, 2, vec![1, 2, -1, 3, 2, 2], vec![1, -2, 0], (4, 1)),
            (2, 3, vec![1, -1, 1, 2, 1, -1], vec![0, 1], (3, 1)),
        ],
        &[(3, 1), (6, 5)],
        16,
    );
    assert_eq!(p.layers[0].shift(), Some(-3));
    let images: Vec<Vec<u8>> = bytes(2 * 300, 11).chunks(2).map(<[u8]>::to_vec).collect();
    let hits = images
        .iter()
        .flat_map(|im| p.layers[0].accumulate(&p.pixel_codes(im).unwrap()))
        .fold([0usize; 3], |mut h, a| {
            h[usize::from(a > 0) + usize::from(a << 3 > 63)] += 1;
            h
        });
    assert!(
        hits.iter().all(|&h| h > 0),
        "≤0, inside, saturated: {hits:?}"
    );
    assert_exports_match(&p, &images, "left shift");

    // s = 6 + 4 − 0 = 10 ≥ 8-bit accumulators: the hidden layer is all zeros.
    let p = program(
        &[
            (2, 2, vec![3, -2, 1, 4], vec![1, -1], (7, 6)),
            (2, 2, vec![1, 2, -3, 1], vec![5, -7], (5, 2)),
        ],
        &[(2, 4), (3, 0)],
        8,
    );
    let images: Vec<Vec<u8>> = bytes(2 * 50, 5).chunks(2).map(<[u8]>::to_vec).collect();
    assert_exports_match(&p, &images, "zero layer");

    // 40-bit accumulators: codes of 2^20 times weights of 2^14 need int64 in C.
    let p = program(
        &[
            (
                2,
                3,
                vec![16000, -12000, 9000, -16383, 15000, 7],
                vec![3, -5],
                (16, 14),
            ),
            (2, 2, vec![1000, -999, 777, 1], vec![-4, 4], (12, 3)),
        ],
        &[(20, 18), (21, 6)],
        40,
    );
    assert!(p.max_accumulator_bound() > 1 << 31);
    let images: Vec<Vec<u8>> = bytes(3 * 200, 9).chunks(3).map(<[u8]>::to_vec).collect();
    let widest = images
        .iter()
        .flat_map(|im| p.layers[0].accumulate(&p.pixel_codes(im).unwrap()))
        .map(i128::abs)
        .max()
        .unwrap();
    assert!(
        widest > i128::from(i32::MAX),
        "accumulators beyond int32: {widest}"
    );
    assert_exports_match(&p, &images, "int64 accumulators");
}

#[test]
fn pixel_table_codes_are_exact() {
    // One layer with weight code 1 and bias 0: the logits are the input codes themselves, for
    // every pixel value, in formats that round (⟨9,8⟩, ⟨5,3⟩, ⟨3,1⟩, ⟨12,11⟩) and saturate
    // (⟨4,4⟩: 255·16/255 = 16 > 15).
    let images: Vec<Vec<u8>> = (0..=255u8).map(|k| vec![k, 255 - k]).collect();
    for (q, f) in [(9, 8), (5, 3), (3, 1), (12, 11), (4, 4)] {
        let p = program(
            &[(2, 2, vec![1, 0, 0, 1], vec![0, 0], (2, 0))],
            &[(q, f)],
            32,
        );
        let want = assert_exports_match(&p, &images, &format!("pixel table ⟨{q},{f}⟩"));
        for (k, z) in want.iter().enumerate() {
            assert_eq!(z[0], ActFormat::new(q, f).unwrap().pixel_code(k as u8));
        }
    }
}

#[test]
fn sparse_layers_use_compressed_rows() {
    // 64 inputs, 16 outputs, 3 non-zeros a row: compressed rows in C, gathered rows in ONNX.
    let mut w = vec![0i64; 16 * 64];
    for i in 0..16 {
        for (t, c) in [(i * 4) % 64, (i * 7 + 3) % 64, (i * 13 + 5) % 64]
            .iter()
            .enumerate()
        {
            w[i * 64 + c] = [3, -2, 1][t] + i as i64 % 3;
        }
    }
    let w1: Vec<i64> = (0..4 * 16).map(|x| (x % 5) - 2).collect();
    let p = program(
        &[
            (16, 64, w, vec![1; 16], (4, 2)),
            (4, 16, w1, vec![0, 1, 2, 3], (3, 1)),
        ],
        &[(8, 8), (6, 4)],
        32,
    );
    let e = export_c(&p, "sp", &prov()).unwrap();
    assert!(e.source.contains("sp_row0") && !e.source.contains("sp_row1"));
    let images: Vec<Vec<u8>> = bytes(64 * 100, 21).chunks(64).map(<[u8]>::to_vec).collect();
    assert_exports_match(&p, &images, "sparse");
}
