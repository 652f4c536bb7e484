//! Soundness of DeepPoly under the integer semantics (docs/method.md §17, eqs. (55), (58)),
//! with zero slack: the reference is core's exact integer program (`IntProgram`, integer
//! arithmetic only), and every pre-activation and logit it computes at a point of the box must
//! lie inside DeepPoly's concrete bounds, and every logit difference above DeepPoly's lower
//! bound. Formats are coarse (F^a ≤ 3, Q^a ≤ 5) so that rounding by ±δ and saturation happen
//! on most neurons: a relaxation that forgot δ, or treated saturation as a ReLU, is caught
//! (`forgetting_rounding_is_caught` shows the reference has teeth).

use certquant_bounds::DeepPoly;
use certquant_bounds::quantize::Strategy;
use certquant_core::model::{Affine, Network};
use certquant_core::semantics::{ActFormat, IntProgram, IntegerSemantics, Semantics};
use certquant_core::spec::InputBox;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_net(rng: &mut ChaCha8Rng, dims: &[usize]) -> Network {
    let layers = dims
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let (n_in, n_out) = (w[0], w[1]);
            let wts = (0..n_in * n_out)
                .map(|_| rng.random_range(-24i32..=24) as f64 / 16.0)
                .collect();
            let b = (0..n_out)
                .map(|_| rng.random_range(-8i32..=8) as f64 / 16.0)
                .collect();
            Affine::new(k, n_out, n_in, wts, b).unwrap()
        })
        .collect();
    Network::new(layers).unwrap()
}

/// Every pre-activation of the exact integer program at `codes` (as reals, exact in f64).
fn exact_pre_activations(p: &IntProgram, codes: &[i64]) -> Vec<Vec<f64>> {
    let mut a = codes.to_vec();
    let mut out = Vec::new();
    for l in &p.layers {
        let acc = l.accumulate(&a);
        let scale = (-((l.weight.frac() + l.input.frac()) as f64)).exp2();
        out.push(acc.iter().map(|&z| z as f64 * scale).collect());
        if let (Some(o), Some(s)) = (l.output, l.shift()) {
            a = acc
                .iter()
                .map(|&z| {
                    certquant_core::semantics::shr_even(z, s).clamp(0, o.max_code() as i128) as i64
                })
                .collect();
        }
    }
    out
}

/// Checks one random network, semantics and box; returns how many points were checked.
fn check_case(seed: u64, drop_delta: bool) -> Result<usize, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dims = [4, 7, 6, 3];
    let net = random_net(&mut rng, &dims);
    let fracs: Vec<u32> = (0..3).map(|_| rng.random_range(1..=4)).collect();
    let strategy = Strategy::from_fracs(&net, &fracs).unwrap();
    let qnn = strategy.apply(&net).unwrap();
    let acts: Vec<ActFormat> = (0..3)
        .map(|k| {
            let f = rng.random_range(0..=3);
            let q = if k == 0 {
                f + 1
            } else {
                rng.random_range(2..=5)
            };
            ActFormat::new(q, f).unwrap()
        })
        .collect();
    let sem = IntegerSemantics::new(acts.clone(), 64).unwrap();
    let program = IntProgram::new(&qnn, &strategy.0, &sem).unwrap();
    let centre: Vec<f64> = (0..4).map(|_| rng.random_range(0.0..1.0)).collect();
    let eps = rng.random_range(0.01..0.3);
    let bx = InputBox::linf_ball(&centre, eps).unwrap();
    // The relaxation under test, or (for the teeth test) the real semantics: bounds that
    // ignore rounding and saturation altogether.
    let bound_sem = if drop_delta {
        Semantics::Real
    } else {
        Semantics::Integer(sem.clone())
    };
    let dp = DeepPoly::run_semantics(&qnn, &bx, &bound_sem).map_err(|e| e.to_string())?;
    let label = {
        let mid = program.run(&centre).unwrap();
        (0..3).max_by_key(|&j| mid[j]).unwrap()
    };
    let diff_lb = dp.logit_difference_lower_bounds(label).unwrap();
    let mut points = 0;
    for s in 0..400 {
        let x: Vec<f64> = (0..4)
            .map(|i| {
                let (lo, hi) = (bx.lo()[i], bx.hi()[i]);
                match s % 4 {
                    0 => lo,
                    1 => hi,
                    _ => lo + (hi - lo) * rng.random_range(0.0..=1.0),
                }
            })
            .collect();
        let codes = program.input_codes(&x).unwrap();
        let pre = exact_pre_activations(&program, &codes);
        for (k, y) in pre.iter().enumerate() {
            let lb = dp.layer(k);
            for (j, &v) in y.iter().enumerate() {
                if v < lb.lo[j] || v > lb.hi[j] {
                    return Err(format!(
                        "seed {seed}: layer {k} neuron {j}: exact {v} outside [{}, {}] at {x:?}",
                        lb.lo[j], lb.hi[j]
                    ));
                }
            }
        }
        let logits = &pre[2];
        for j in 0..3 {
            let d = logits[label] - logits[j];
            if j != label && d < diff_lb[j] {
                return Err(format!(
                    "seed {seed}: y_{label} − y_{j} = {d} below its lower bound {}",
                    diff_lb[j]
                ));
            }
        }
        points += 1;
    }
    Ok(points)
}

#[test]
fn integer_semantics_bounds_contain_the_exact_program() {
    let mut points = 0;
    for seed in 0..60 {
        points += check_case(seed, false).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(points, 60 * 400);
}

#[test]
fn forgetting_rounding_is_caught() {
    // Bounds computed as if activations were real (no rounding, no saturation) must fail on
    // some case: the containment check sees what the relaxation (58) adds.
    let failures = (0..60).filter(|&s| check_case(s, true).is_err()).count();
    assert!(failures > 0, "no case detected the missing rounding error");
}

#[test]
fn real_semantics_is_bit_identical_to_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let net = random_net(&mut rng, &[5, 8, 4]);
    let bx = InputBox::linf_ball(&[0.5; 5], 0.2).unwrap();
    let a = DeepPoly::run(&net, &bx).unwrap();
    let b = DeepPoly::run_semantics(&net, &bx, &Semantics::Real).unwrap();
    let c = DeepPoly::run_with_acts(&net, &bx, 2, &[None, None]).unwrap();
    for k in 0..2 {
        assert_eq!(a.layer(k), b.layer(k));
        assert_eq!(a.layer(k), c.layer(k));
    }
}

#[test]
fn refuses_wrong_format_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = random_net(&mut rng, &[3, 4, 2]);
    let bx = InputBox::linf_ball(&[0.5; 3], 0.1).unwrap();
    let sem =
        Semantics::Integer(IntegerSemantics::new(vec![ActFormat::new(5, 4).unwrap()], 32).unwrap());
    assert!(DeepPoly::run_semantics(&net, &bx, &sem).is_err());
}
