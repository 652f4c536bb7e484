//! VNN-LIB end to end: hand-made properties on tiny networks through the binary (input
//! disjunctions, linear output terms, an `or` of `and`s, malformed files, splitting), the LP
//! multipliers with the checker's re-proof, and the VNN-COMP mnistfc instances (a sample of
//! `violated` verdicts must never be `holds`; a few `holds` verdicts must be proven).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use certquant::bounds::{DeepPoly, refute_conjunction};
use certquant::check::linear_spec::{Refutation, reprove_box};
use certquant::milp::cbc::Cbc;
use certquant::model::{Affine, Network};
use certquant::spec::InputBox;
use certquant::split::{SplitOptions, Verdict, verify_query};
use certquant_synth::multipliers::LpMultipliers;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certquant"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Writes `net` as ONNX and `props` as VNN-LIB files into a temporary folder.
fn files(net: &Network, props: &[(&str, String)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("net.onnx");
    certquant::onnx::export(net, &model).unwrap();
    for (name, text) in props {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    (dir, model)
}

/// `y = (x_0 + x_1, x_0 − x_1, 0.5)` on two inputs.
fn linear_net() -> Network {
    let l = Affine::new(
        0,
        3,
        2,
        vec![1.0, 1.0, 1.0, -1.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.5],
    )
    .unwrap();
    Network::new(vec![l]).unwrap()
}

const DECL: &str = "; hand-made\n(declare-const X_0 Real)\n(declare-const X_1 Real)\n\
                    (declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n";

#[test]
fn hand_made_properties_through_the_binary() {
    let net = linear_net();
    // two input boxes; the counterexample: (y_0 ≥ 2.5 and y_1 ≥ y_2) or (y_0 − 2·y_2 ≤ −1.6)
    let holds = format!(
        "{DECL}(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))\n\
                          (and (>= X_0 -1) (<= X_0 -0.5) (>= X_1 0.5) (<= X_1 1))))\n\
         (assert (or (and (>= Y_0 2.5) (>= Y_1 Y_2))\n\
                     (and (<= (- Y_0 (* 2 Y_2)) -1.6))))\n"
    );
    // y_0 − 2·0.5 = x_0 + x_1 − 1 ≥ −1.5 on both boxes; with −1.4 the second box (near
    // (−1, 0.5)) has counterexamples
    let violated = holds.replace("(<= (- Y_0 (* 2 Y_2)) -1.6)", "(<= (- Y_0 (* 2 Y_2)) -1.4)");
    let (dir, model) = files(
        &net,
        &[("holds.vnnlib", holds), ("violated.vnnlib", violated)],
    );
    let p = |n: &str| dir.path().join(n);
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        s(&p("holds.vnnlib")),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("holds (2 region(s), 4 disjunct(s)"),
        "{text}"
    );
    let cx = p("cx.txt");
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        s(&p("violated.vnnlib")),
        "--counterexample",
        s(&cx),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "violated");
    assert_eq!(v["vnncomp"], "sat");
    assert_eq!(v["counterexample"]["region"], 1);
    assert_eq!(v["counterexample"]["disjunct"], 1);
    // the file re-evaluates as a counterexample on its own
    let a = certquant::vnnlib::parse_assignment(&std::fs::read_to_string(&cx).unwrap()).unwrap();
    let y = net.forward(&a.x);
    assert_eq!(a.y, y);
    assert!(a.x[0] >= -1.0 && a.x[0] <= -0.5 && a.x[1] >= 0.5 && a.x[1] <= 1.0);
    assert!(y[0] - 2.0 * y[2] <= -1.4, "{y:?}");
    let q =
        certquant::vnnlib::parse(&std::fs::read_to_string(p("violated.vnnlib")).unwrap()).unwrap();
    assert!(certquant::falsify::confirm(&net, &q.regions[1], 1, &a.x).is_some());
    // --vnncomp prints the competition's word only
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        s(&p("holds.vnnlib")),
        "--vnncomp",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "unsat\n");
}

#[test]
fn malformed_vnnlib_exits_2_with_the_line_and_the_reason() {
    let net = linear_net();
    let cases = [
        (
            "unbalanced.vnnlib",
            format!("{DECL}(assert (>= X_0 0)\n"),
            "line 7: unbalanced parentheses",
        ),
        (
            "unknown.vnnlib",
            format!("{DECL}(assert (>= X_2 0))\n"),
            "line 7: unknown variable `X_2`",
        ),
        (
            "nonbox.vnnlib",
            format!("{DECL}(assert (<= (+ X_0 X_1) 1))\n"),
            "line 7: non-box input constraint",
        ),
        (
            "y_in_input.vnnlib",
            format!("{DECL}\n(assert (<= X_0 Y_1))\n"),
            "line 8: constraint `(<= X_0 Y_1)` mixes inputs X and outputs Y",
        ),
        (
            "missing.vnnlib",
            format!(
                "{DECL}(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))\n(assert (>= Y_0 1))\n"
            ),
            "line 3: input X_1 has no upper bound",
        ),
        (
            "not.vnnlib",
            format!("{DECL}(assert (not (>= Y_0 1)))\n"),
            "line 7: unsupported construct: operator `not`",
        ),
    ];
    let props: Vec<(&str, String)> = cases.iter().map(|(n, t, _)| (*n, t.clone())).collect();
    let (dir, model) = files(&net, &props);
    for (name, _, want) in &cases {
        let out = run(&[
            "verify",
            "--model",
            s(&model),
            "--vnnlib",
            s(&dir.path().join(name)),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty());
    }
    // a property for another input size names both sizes
    let three = DECL.replace(
        "(declare-const X_1 Real)",
        "(declare-const X_1 Real)(declare-const X_2 Real)",
    );
    let (dir, model) = files(
        &net,
        &[(
            "three.vnnlib",
            format!(
                "{three}(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))(assert (>= X_2 0))(assert (<= X_2 1))(assert (>= Y_0 1))"
            ),
        )],
    );
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        s(&dir.path().join("three.vnnlib")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("declares 3 inputs X_i but the model") && err.contains("takes 2"),
        "{err}"
    );
    // the two forms of verify exclude each other
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        "x",
        "--data",
        "y",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// `h_1 = h_2 = relu(x_0 + x_1 − x_2)`, `y = h_1 − h_2 + 0.25·relu(x_0)` on `[−1, 1]³`.
fn twin_net() -> Network {
    let l0 = Affine::new(
        0,
        3,
        3,
        vec![1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 0.0, 0.0],
        vec![0.0; 3],
    )
    .unwrap();
    let l1 = Affine::new(1, 1, 3, vec![1.0, -1.0, 0.25], vec![0.0]).unwrap();
    Network::new(vec![l0, l1]).unwrap()
}

#[test]
fn a_low_dimensional_property_needs_input_splitting() {
    // y ≤ 0.25 everywhere; DeepPoly alone cannot see h_1 − h_2 = 0
    let prop = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const X_2 Real)\
                (declare-const Y_0 Real)\n\
                (assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 -1))(assert (<= X_1 1))\
                (assert (>= X_2 -1))(assert (<= X_2 1))\n(assert (>= Y_0 0.5))\n"
        .to_string();
    let net = twin_net();
    let (dir, model) = files(&net, &[("p.vnnlib", prop)]);
    let p = dir.path().join("p.vnnlib");
    let out = run(&[
        "verify",
        "--model",
        s(&model),
        "--vnnlib",
        s(&p),
        "--max-splits",
        "0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "unknown", "{v}");
    let out = run(&["verify", "--model", s(&model), "--vnnlib", s(&p), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "holds");
    assert!(
        v["splits"].as_u64().unwrap() > 0 && v["leaves"].as_u64().unwrap() > 1,
        "{v}"
    );
}

#[test]
fn lp_multipliers_refute_a_conjunction_and_the_checker_agrees() {
    // y = (x, −x) on [−1, 1]: "y_0 ≥ 0.1 and y_1 ≥ 0.1" has no solution, yet each alone has
    let l = Affine::new(0, 2, 1, vec![1.0, -1.0], vec![0.0, 0.0]).unwrap();
    let net = Network::new(vec![l]).unwrap();
    let q = certquant::vnnlib::parse(
        "(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\
         (assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= Y_0 0.1))(assert (>= Y_1 0.1))",
    )
    .unwrap();
    let r = &q.regions[0];
    let bx = InputBox::new(r.lo.clone(), r.hi.clone()).unwrap();
    let dp = DeepPoly::run(&net, &bx).unwrap();
    let p = refute_conjunction(&dp, &r.output[0], &LpMultipliers(&Cbc)).unwrap();
    assert!(p.refuted && p.constraint.is_none(), "{p:?}");
    let lambda = p.multipliers.clone().unwrap();
    let ubs = reprove_box(
        &net,
        &r.lo,
        &r.hi,
        &r.output,
        &[Refutation::Multipliers(lambda)],
    )
    .unwrap();
    assert!(ubs[0] < 0.0, "{ubs:?}");
    // and through the whole pipeline
    let out = verify_query(&net, &q, &LpMultipliers(&Cbc), &SplitOptions::default()).unwrap();
    assert_eq!(out.verdict, Verdict::Holds, "{out:?}");
}

/// The mnistfc instances of one network with the competition verdict `want`.
fn mnistfc(net: &str, want: &str) -> Option<(PathBuf, Vec<String>)> {
    let root = certquant::shared::shared_dir("benchmarks/vnncomp2021")?;
    let text = std::fs::read_to_string(root.join("verdicts.csv")).unwrap();
    let props = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0] == "mnistfc" && f[1] == net && f[3] == want).then(|| f[2].to_string())
        })
        .collect();
    Some((root.join("mnistfc"), props))
}

fn decide(dir: &Path, net: &str, prop: &str, seconds: u64) -> Verdict {
    let bytes = std::fs::read(dir.join(net)).unwrap();
    let network = certquant::onnx::import_bytes(&bytes).unwrap();
    let q = certquant::vnnlib::parse_bytes(&std::fs::read(dir.join(prop)).unwrap()).unwrap();
    let opts = SplitOptions {
        deadline: Some(Instant::now() + Duration::from_secs(seconds)),
        ..SplitOptions::default()
    };
    verify_query(&network, &q, &LpMultipliers(&Cbc), &opts)
        .unwrap()
        .verdict
}

#[test]
fn mnistfc_violated_verdicts_are_never_holds() {
    let Some((dir, props)) = mnistfc("mnist-net_256x2.onnx", "violated") else {
        return;
    };
    assert!(props.len() >= 10, "{props:?}");
    let mut found = 0;
    for p in props.iter().take(6) {
        let v = decide(&dir, "mnist-net_256x2.onnx", p, 4);
        assert_ne!(
            v,
            Verdict::Holds,
            "{p}: holds where the competition found a counterexample"
        );
        found += usize::from(matches!(v, Verdict::Violated(_)));
    }
    assert!(
        found >= 2,
        "the falsifier should find some of these counterexamples"
    );
}

#[test]
fn mnistfc_some_holds_verdicts_are_proven() {
    let Some((dir, props)) = mnistfc("mnist-net_256x2.onnx", "holds") else {
        return;
    };
    for p in ["prop_2_0.03.vnnlib", "prop_2_0.05.vnnlib"] {
        assert!(props.iter().any(|q| q == p), "{p} is not a holds verdict");
        assert_eq!(
            decide(&dir, "mnist-net_256x2.onnx", p, 60),
            Verdict::Holds,
            "{p}"
        );
    }
}
