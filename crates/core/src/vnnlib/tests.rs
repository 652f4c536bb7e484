//! Hand-made VNN-LIB queries and the competition files.

use super::*;

const HEAD: &str = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n\
                    (declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n";

fn q(body: &str) -> Result<Query, VnnlibError> {
    parse(&format!("{HEAD}{body}"))
}

fn line_of(e: &VnnlibError) -> usize {
    match e {
        VnnlibError::Unbalanced { line, .. }
        | VnnlibError::TooDeep { line }
        | VnnlibError::UnknownVariable { line, .. }
        | VnnlibError::NonBoxInput { line, .. }
        | VnnlibError::MixedConstraint { line, .. }
        | VnnlibError::Unsupported { line, .. }
        | VnnlibError::BadNumber { line, .. }
        | VnnlibError::Declaration { line, .. }
        | VnnlibError::MissingBound { line, .. }
        | VnnlibError::TooLarge { line }
        | VnnlibError::Syntax { line, .. } => *line,
    }
}

#[test]
fn a_box_and_an_or_of_ands() {
    let qr = q(
        "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 0.5))\n\
                (assert (<= X_1 0.75))\n\
                (assert (or (and (>= Y_0 Y_1) (<= (+ Y_2 (* 2 Y_0)) 3)) (and (> Y_2 0))))\n",
    )
    .unwrap();
    assert_eq!((qr.num_inputs, qr.num_outputs), (2, 3));
    assert_eq!(qr.regions.len(), 1);
    let r = &qr.regions[0];
    assert_eq!(
        (r.lo.clone(), r.hi.clone()),
        (vec![-1.0, 0.5], vec![1.0, 0.75])
    );
    assert_eq!(r.inner_lo, r.lo, "exact decimals need no widening");
    assert_eq!(r.output.len(), 2);
    // Y_0 − Y_1 ≥ 0
    assert_eq!(r.output[0][0].coeffs, vec![1.0, -1.0, 0.0]);
    assert_eq!(r.output[0][0].constant, (0.0, 0.0));
    assert!(!r.output[0][0].strict);
    // 3 − Y_2 − 2 Y_0 ≥ 0
    assert_eq!(r.output[0][1].coeffs, vec![-2.0, 0.0, -1.0]);
    assert_eq!(r.output[0][1].constant, (3.0, 3.0));
    // Y_2 > 0
    assert!(r.output[1][0].strict);
    assert_eq!(r.output[1][0].coeffs, vec![0.0, 0.0, 1.0]);
}

#[test]
fn an_input_disjunction_gives_one_region_per_box() {
    let qr = q(
        "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))\n\
                            (and (>= X_0 2) (<= X_0 3) (>= X_1 2) (<= X_1 3))))\n\
                (assert (or (and (>= Y_0 Y_1)) (and (>= Y_0 Y_2))))\n",
    )
    .unwrap();
    assert_eq!(qr.regions.len(), 2);
    assert_eq!(qr.regions[0].lo, vec![0.0, 0.0]);
    assert_eq!(qr.regions[1].hi, vec![3.0, 3.0]);
    for r in &qr.regions {
        assert_eq!(r.output.len(), 2);
    }
}

#[test]
fn linear_terms_unary_minus_and_scientific_numbers() {
    let qr = q(
        "(assert (>= X_0 -1e-1))(assert (<= X_0 2.5E1))(assert (>= X_1 0))(assert (<= X_1 1))\n\
                (assert (<= (- Y_0 (* 0.5 Y_1) (- Y_2)) (* Y_1 -3)))\n",
    )
    .unwrap();
    let r = &qr.regions[0];
    // −0.1 is inexact: the outer box reaches below it, the inner one stays above
    assert!(r.lo[0] < -0.1 && r.inner_lo[0] > -0.1);
    assert_eq!(r.hi[0], 25.0);
    // (−3 Y_1) − (Y_0 − 0.5 Y_1 + Y_2) ≥ 0
    let c = &r.output[0][0];
    assert_eq!(c.coeffs, vec![-1.0, -2.5, -1.0]);
    assert_eq!(c.errs, vec![0.0; 3]);
}

#[test]
fn inexact_coefficients_and_constants_are_enclosed() {
    let qr = q(
        "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n\
                (assert (>= (* 0.1 Y_0) 0.3))\n",
    )
    .unwrap();
    let c = &qr.regions[0].output[0][0];
    assert!((c.coeffs[0] - 0.1).abs() <= c.errs[0] && c.errs[0] > 0.0);
    assert!(c.constant.0 < -0.3 && -0.3 < c.constant.1);
}

#[test]
fn tightest_bound_wins_and_empty_boxes_are_dropped() {
    let qr = q(
        "(assert (>= X_0 0))(assert (>= X_0 0.5))(assert (<= X_0 1))(assert (<= X_0 2))\n\
                (assert (>= X_1 0))(assert (<= X_1 1))(assert (>= Y_0 0))\n",
    )
    .unwrap();
    assert_eq!(qr.regions[0].lo[0], 0.5);
    assert_eq!(qr.regions[0].hi[0], 1.0);
    let qr = q(
        "(assert (>= X_0 2))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n\
                (assert (>= Y_0 0))\n",
    )
    .unwrap();
    assert!(qr.regions.is_empty(), "an empty box has no counterexample");
}

#[test]
fn malformed_queries_name_the_line_and_the_reason() {
    let cases: Vec<(&str, usize, &str)> = vec![
        ("(assert (>= X_0 0)\n", 6, "unbalanced"),
        ("(assert (>= X_0 0)))\n", 6, "unbalanced"),
        ("\n(assert (>= X_7 0))\n", 7, "unknown variable `X_7`"),
        ("(assert (>= Z 0))\n", 6, "unknown variable `Z`"),
        ("(assert (>= X_0 X_1))\n", 6, "non-box input constraint"),
        ("(assert (>= (* 2 X_0) 1))\n", 6, "non-box input constraint"),
        ("(assert (<= X_0 Y_0))\n", 6, "mixes inputs X and outputs Y"),
        (
            "(assert (or (and (>= Y_0 1)) (and (>= X_0 Y_1))))\n",
            6,
            "mixes",
        ),
        (
            "(assert (not (>= Y_0 1)))\n",
            6,
            "unsupported construct: operator `not`",
        ),
        ("(assert (>= (/ Y_0 2) 1))\n", 6, "operator `/`"),
        ("(assert (>= (* Y_0 Y_1) 1))\n", 6, "nonlinear"),
        ("(assert (>= Y_0 1.2.3))\n", 6, "bad number"),
        ("(check-sat)\n", 6, "command `check-sat`"),
        ("(declare-const X_0 Real)\n", 6, "declared twice"),
        ("(declare-const X_3 Real)\n", 6, "numbered from 0"),
        ("(declare-const W_0 Real)\n", 6, "names must be"),
        ("(declare-const X_2 Int)\n", 6, "type `Int`"),
        (
            "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))\n",
            2,
            "X_1 has no upper bound",
        ),
        ("(assert (<= 1 2))\n", 6, "without variables"),
    ];
    for (body, line, want) in cases {
        let e = q(body).expect_err(body);
        let text = e.to_string();
        assert!(text.contains(want), "{body}: {text}");
        assert_eq!(line_of(&e), line, "{body}: {text}");
        assert!(text.starts_with(&format!("line {line}:")), "{text}");
    }
}

#[test]
fn huge_expansions_are_refused_not_attempted() {
    let or = "(or (>= Y_0 0) (>= Y_1 0) (>= Y_2 0) (>= Y_0 1) (>= Y_1 1) (>= Y_2 1) (>= Y_0 2) (>= Y_1 2) (>= Y_2 2) (>= Y_0 3))";
    let body = format!(
        "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n{}",
        format!("(assert {or})\n").repeat(5)
    );
    assert!(matches!(q(&body), Err(VnnlibError::TooLarge { .. })));
}

#[test]
fn every_competition_file_parses() {
    let Some(dir) = crate::shared::shared_dir("benchmarks/vnncomp2021") else {
        return;
    };
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "vnnlib") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 90, "{} files", files.len());
    for f in files {
        let qr = parse_bytes(&std::fs::read(&f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(qr.num_inputs, 784, "{}", f.display());
        assert_eq!(qr.num_outputs, 10);
        assert_eq!(qr.regions.len(), 1);
        let r = &qr.regions[0];
        assert_eq!(r.output.len(), 9, "one disjunct per other class");
        assert!(r.lo.iter().zip(&r.inner_lo).all(|(a, b)| a <= b));
        assert!(r.inner_nonempty());
        assert!(r.lo.iter().all(|&v| v >= -1e-300) && r.hi.iter().all(|&v| v <= 1.0 + 1e-15));
    }
}

#[test]
fn mutated_queries_never_panic() {
    use rand::{Rng, SeedableRng};
    let seed = format!(
        "{HEAD}(assert (>= X_0 -0.5))(assert (<= X_0 0.5))(assert (>= X_1 1e-2))(assert (<= X_1 0.3))\n\
         (assert (or (and (>= Y_0 Y_1) (<= (+ Y_2 (* -2 Y_1)) 1.5)) (and (> (- Y_1) 0))))\n"
    );
    let alphabet = b"()XY_0123456789.e-+* ;\n<=>andorassert";
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    for _ in 0..3000 {
        let mut b = seed.clone().into_bytes();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
            }
        }
        fuzz_parse(&b);
    }
}

#[test]
fn a_huge_index_costs_nothing_before_it_is_refused() {
    let t = std::time::Instant::now();
    let body = "(declare-const X_0 Real)(declare-const Y_49999999 Real)\
                (assert (>= X_0 0))(assert (<= X_0 1))"
        .to_string()
        + &"(assert (>= Y_49999999 0))".repeat(200);
    let e = parse(&body).unwrap_err();
    assert!(e.to_string().contains("numbered from 0"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 1.0);
}
