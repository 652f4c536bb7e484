//! Exact-rational soundness test of the synthesis DeepPoly (`certquant_bounds::deeppoly`).
//!
//! The unit tests in `deeppoly.rs` compare the bounds with an `f64` forward pass and a slack of
//! `1e-9`; they cannot see an unsoundness at the level of a rounding error, which is exactly
//! where a floating-point abstract interpreter goes wrong. Here every claim DeepPoly makes is
//! checked against the *exact* network: every `f64` (weights, biases, box ends, bounds,
//! coefficients) is a dyadic rational and is converted to its exact value (`dyadic::rat`),
//! inputs are exact dyadic rationals in the box, the forward pass is computed exactly
//! (`claims::ExactNet`, cross-checked against a `BigRational` forward pass), and every
//! comparison is exact, with **zero slack** (`claims::Claims::check`):
//!
//! * each pre-activation lies in its layer's concrete bounds `[l, u]`;
//! * it lies between the symbolic lower and upper forms `f^≤(x) ≤ y ≤ f^≥(x)` evaluated
//!   exactly at the same input;
//! * the output claims (`logit_difference_lower_bounds`, `robustness_margin`, `prove_output`,
//!   `logit_difference_forms`, `difference_combination_lower_bound`, `prove_property`) never
//!   exceed the exact quantity they bound, and a `proven` answer holds at the point.
//!
//! Inputs are box vertices (all of them up to 5 dimensions, else random ones and those where
//! DeepPoly's linear forms are extreme), the centre and dyadic grid points. Networks have coarse
//! dyadic parameters `k·2^−a`, full 53-bit float parameters, or are quantized by [`Strategy`]
//! as the synthesis does; boxes have degenerate dimensions, many unstable ReLUs, or none (the
//! linear regime, where bounds are attained up to rounding). `teeth` shows the check has teeth:
//! bounds attained exactly pass, the same bounds one ulp inward fail, and a combination whose
//! `f64` rounding error is 100% of its value is caught.
//!
//! Files: this one (families of networks and boxes), `exact_soundness/dyadic.rs` (exact
//! arithmetic), `exact_soundness/claims.rs` (what is checked), `exact_soundness/teeth.rs`.

use certquant_bounds::DeepPoly;
use certquant_bounds::quantize::{Strategy, config_for, quantize_layer};
use certquant_core::model::{Affine, Network};
use certquant_core::spec::InputBox;
use num_rational::BigRational;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "exact_soundness/claims.rs"]
mod claims;
#[path = "exact_soundness/dyadic.rs"]
mod dyadic;
#[path = "exact_soundness/teeth.rs"]
mod teeth;

use claims::{Claims, ExactLayer, ExactNet};
use dyadic::{Q, dyadic, rat};

/// The generator of one family: seed `base`, shifted by `CERTQUANT_EXACT_SEED` when set, so a
/// longer search for violations is `for s in $(seq 100); do CERTQUANT_EXACT_SEED=$s cargo test
/// --release -p certquant-bounds --test exact_soundness; done` (the default run is fixed).
fn family_rng(base: u64) -> ChaCha8Rng {
    let shift = std::env::var("CERTQUANT_EXACT_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    ChaCha8Rng::seed_from_u64(base.wrapping_add(shift.wrapping_mul(1000)))
}

/// What a family of checks covered (to assert the interesting cases were exercised).
#[derive(Default, Debug)]
struct Coverage {
    points: usize,
    hidden: usize,
    unstable: usize,
    proven: usize,
}

/// Runs DeepPoly on `net` over `bx` and checks every claim at the box's vertices and `grid`
/// dyadic grid points, exactly; panics with a reproducer on the first violation.
fn check_net(net: &Network, bx: &InputBox, rng: &mut ChaCha8Rng, grid: usize, cov: &mut Coverage) {
    let dp = DeepPoly::run(net, bx).unwrap();
    let claims = Claims::collect(&dp, rng);
    let exact = ExactNet::new(net);
    let mut directions = form_directions(&dp);
    let forms: Vec<_> = (0..net.output_dim())
        .map(|t| dp.logit_difference_forms(t).unwrap())
        .collect();
    for f in &forms {
        directions.extend((0..f.rows()).map(|r| f.coeffs(r).to_vec()));
    }
    // Σ_j λ_j L_j: roughly where a multiplier combination is smallest
    for (t, lambda, _) in &claims.combos {
        let mut d = vec![0.0; bx.dim()];
        for (j, &l) in lambda.iter().enumerate() {
            for (di, &a) in d.iter_mut().zip(forms[*t].coeffs(j)) {
                *di += l * a;
            }
        }
        directions.push(d);
    }
    for (i, x) in points(bx, rng, grid, &directions).into_iter().enumerate() {
        if i < 2 {
            let dyadic: Vec<Vec<BigRational>> = exact
                .pre_activations(&x)
                .iter()
                .map(|y| y.iter().map(Q::to_rational).collect())
                .collect();
            assert_eq!(dyadic, ExactNet::pre_activations_rational(net, &x));
        }
        if let Err(e) = claims.check(&exact, &x) {
            panic!("UNSOUND: {e}\nx = {x:?}\nnet = {net:?}\nbox = {bx:?}");
        }
        cov.points += 1;
    }
    for lb in &dp.layers()[..dp.layers().len() - 1] {
        cov.hidden += lb.lo.len();
        cov.unstable += lb
            .lo
            .iter()
            .zip(&lb.hi)
            .filter(|(l, h)| **l < 0.0 && **h > 0.0)
            .count();
    }
    cov.proven += claims
        .robust
        .iter()
        .chain(&claims.not_target)
        .filter(|p| p.0)
        .count();
}

/// The coefficient vectors of all of `dp`'s symbolic forms: the vertices minimising and
/// maximising them are where a concrete bound is closest to being attained.
fn form_directions(dp: &DeepPoly<'_>) -> Vec<Vec<f64>> {
    let mut directions = Vec::new();
    for lb in dp.layers() {
        for r in 0..lb.lower.rows() {
            directions.push(lb.lower.coeffs(r).to_vec());
            directions.push(lb.upper.coeffs(r).to_vec());
        }
    }
    directions
}

/// Exact inputs of `bx`: all vertices when the dimension is at most 5 (else 32 random ones and
/// the vertices minimising and maximising `a·x` for each `a` of `directions`), the centre, and
/// `grid` random grid points `lo + (hi − lo)·m/2^6`.
fn points(
    bx: &InputBox,
    rng: &mut ChaCha8Rng,
    grid: usize,
    directions: &[Vec<f64>],
) -> Vec<Vec<Q>> {
    let lo: Vec<Q> = bx.lo().iter().map(|&v| rat(v)).collect();
    let hi: Vec<Q> = bx.hi().iter().map(|&v| rat(v)).collect();
    let n = lo.len();
    let vertex = |bits: u64| -> Vec<Q> {
        (0..n)
            .map(|i| {
                if bits >> i & 1 == 1 {
                    hi[i].clone()
                } else {
                    lo[i].clone()
                }
            })
            .collect()
    };
    let mut out: Vec<Vec<Q>> = if n <= 5 {
        (0..1u64 << n).map(vertex).collect()
    } else {
        assert!(n <= 64);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..32 {
            seen.insert(rng.random::<u64>() & (u64::MAX >> (64 - n)));
        }
        for a in directions {
            let min_at: u64 = (0..n).filter(|&i| a[i] < 0.0).map(|i| 1 << i).sum();
            seen.insert(min_at);
            seen.insert(!min_at & (u64::MAX >> (64 - n)));
        }
        seen.into_iter().map(vertex).collect()
    };
    let at = |i: usize, m: i64| &lo[i] + (&hi[i] - &lo[i]) * dyadic(m, 6);
    out.push((0..n).map(|i| at(i, 32)).collect());
    for _ in 0..grid {
        out.push((0..n).map(|i| at(i, rng.random_range(0..=64))).collect());
    }
    out
}

/// A coarse dyadic value `k·2^−a` with `a ≤ a_max` and `|value| ≤ 1`.
fn coarse(rng: &mut ChaCha8Rng, a_max: u32) -> f64 {
    let a = rng.random_range(0..=a_max);
    let k = rng.random_range(-(1i64 << a)..=(1i64 << a));
    k as f64 / (1u64 << a) as f64
}

/// Layer sizes: input up to `max_in`, 1–3 hidden layers of width ≤ 12 (one network in eight
/// has none: DeepPoly's output checks then rest on the logit-difference rounding alone),
/// 2–10 outputs.
fn random_sizes(rng: &mut ChaCha8Rng, max_in: usize) -> Vec<usize> {
    let mut sizes = vec![rng.random_range(1..=max_in)];
    let hidden = if rng.random_range(0..8) == 0 {
        0
    } else {
        rng.random_range(1..=3)
    };
    for _ in 0..hidden {
        sizes.push(rng.random_range(1..=12));
    }
    sizes.push(rng.random_range(2..=10));
    sizes
}

/// A network whose parameters are drawn by `param(rng, fan_in)` (biases by `bias(rng)`).
fn make_net(
    rng: &mut ChaCha8Rng,
    sizes: &[usize],
    param: impl Fn(&mut ChaCha8Rng, usize) -> f64,
    bias: impl Fn(&mut ChaCha8Rng) -> f64,
) -> Network {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(i, s)| {
            let w = (0..s[0] * s[1]).map(|_| param(rng, s[0])).collect();
            let b = (0..s[1]).map(|_| bias(rng)).collect();
            Affine::new(i, s[1], s[0], w, b).unwrap()
        })
        .collect();
    Network::new(layers).unwrap()
}

/// Coarse dyadic weights `k·2^−a` (`a ≤ 8`) scaled by a power of two near `1/√fan_in`.
fn dyadic_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
    let param = |r: &mut ChaCha8Rng, fan_in: usize| {
        let shift = (fan_in as f64).sqrt().log2().round() as i32;
        coarse(r, 8) * 2f64.powi(-shift)
    };
    make_net(rng, sizes, param, |r| coarse(r, 8) * 0.25)
}

/// Full 53-bit float weights, as a trained network has (still dyadic, hence exact here).
fn float_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
    let param =
        |r: &mut ChaCha8Rng, fan_in: usize| r.random_range(-1.0..1.0) / (fan_in as f64).sqrt();
    make_net(rng, sizes, param, |r| r.random_range(-0.3..0.3))
}

/// A box with dyadic ends `k/2^8 ± k'/2^a`; each dimension is degenerate (`lo = hi`) with
/// probability `degenerate`.
fn dyadic_box(rng: &mut ChaCha8Rng, dim: usize, degenerate: f64) -> InputBox {
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for _ in 0..dim {
        let c = rng.random_range(0..=256) as f64 / 256.0;
        let r = if rng.random_bool(degenerate) {
            0.0
        } else {
            let a = rng.random_range(2..=10);
            rng.random_range(1..=1i64 << (a - 1)) as f64 / (1u64 << a) as f64
        };
        lo.push(c - r);
        hi.push(c + r);
    }
    InputBox::new(lo, hi).unwrap()
}

#[test]
fn coarse_dyadic_networks_on_dyadic_boxes() {
    let mut rng = family_rng(11);
    let mut cov = Coverage::default();
    for _ in 0..40 {
        let sizes = random_sizes(&mut rng, 6);
        let net = dyadic_net(&mut rng, &sizes);
        let bx = dyadic_box(&mut rng, sizes[0], 0.25);
        check_net(&net, &bx, &mut rng, 16, &mut cov);
    }
    assert!(cov.unstable > 0 && cov.proven > 0, "{cov:?}");
}

#[test]
fn full_precision_networks_on_synthesis_boxes() {
    let mut rng = family_rng(12);
    let mut cov = Coverage::default();
    for trial in 0..40 {
        let sizes = random_sizes(&mut rng, 8);
        let net = float_net(&mut rng, &sizes);
        let bx = if trial % 2 == 0 {
            // as the CLI builds them: an L∞ ball around a pixel-like centre, clipped to [0, 1]
            let c: Vec<f64> = (0..sizes[0])
                .map(|_| rng.random_range(0..=255) as f64 / 255.0)
                .collect();
            let eps = [0.0, 1.0 / 255.0, 0.02, 0.1, 0.3][trial / 2 % 5];
            InputBox::linf_ball(&c, eps).unwrap()
        } else {
            dyadic_box(&mut rng, sizes[0], 0.25)
        };
        check_net(&net, &bx, &mut rng, 16, &mut cov);
    }
    assert!(cov.unstable > 0 && cov.proven > 0, "{cov:?}");
}

#[test]
fn boxes_with_mostly_unstable_relus() {
    let mut rng = family_rng(13);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 5);
        let net = if trial % 2 == 0 {
            dyadic_net(&mut rng, &sizes)
        } else {
            float_net(&mut rng, &sizes)
        };
        // a box around 0: every first-layer neuron with a small bias straddles 0
        let r = [1.0, 0.5, 2.0][trial % 3];
        let lo: Vec<f64> = (0..sizes[0])
            .map(|i| if i % 4 == 3 { 0.25 } else { -r })
            .collect();
        let hi: Vec<f64> = (0..sizes[0])
            .map(|i| if i % 4 == 3 { 0.25 } else { r })
            .collect();
        let bx = InputBox::new(lo, hi).unwrap();
        check_net(&net, &bx, &mut rng, 24, &mut cov);
    }
    assert!(2 * cov.unstable >= cov.hidden, "{cov:?}");
}

#[test]
fn point_boxes() {
    let mut rng = family_rng(14);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 8);
        let net = if trial % 2 == 0 {
            dyadic_net(&mut rng, &sizes)
        } else {
            float_net(&mut rng, &sizes)
        };
        let c: Vec<f64> = (0..sizes[0]).map(|_| rng.random::<f64>()).collect();
        let bx = InputBox::linf_ball(&c, 0.0).unwrap();
        check_net(&net, &bx, &mut rng, 0, &mut cov);
    }
    assert!(cov.proven > 0, "{cov:?}");
}

#[test]
fn networks_quantized_as_the_synthesis_does() {
    let mut rng = family_rng(15);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 6);
        let real = float_net(&mut rng, &sizes);
        let fracs: Vec<u32> = (0..real.depth())
            .map(|_| rng.random_range(0..=12))
            .collect();
        let strategy = Strategy::from_fracs(&real, &fracs).unwrap();
        let net = strategy.apply(&real).unwrap();
        let bx = if trial % 2 == 0 {
            let c: Vec<f64> = (0..sizes[0])
                .map(|_| rng.random_range(0..=255) as f64 / 255.0)
                .collect();
            InputBox::linf_ball(&c, [0.01, 0.05, 0.2][trial / 2 % 3]).unwrap()
        } else {
            dyadic_box(&mut rng, sizes[0], 0.25)
        };
        check_net(&net, &bx, &mut rng, 16, &mut cov);
    }
    assert!(cov.unstable > 0 && cov.proven > 0, "{cov:?}");
}

/// Algorithm 1's forward step bounds layer `k` of a network whose layers `0..=k` are
/// quantized and the rest are not, with `run_upto`; those partial bounds must be sound too.
#[test]
fn partially_quantized_prefixes_with_run_upto() {
    let mut rng = family_rng(16);
    for _ in 0..20 {
        let sizes = random_sizes(&mut rng, 6);
        let mut net = float_net(&mut rng, &sizes);
        let bx = dyadic_box(&mut rng, sizes[0], 0.25);
        for k in 0..net.depth() {
            let layer = &net.layers()[k];
            let cfg = config_for(layer, rng.random_range(1..=10)).unwrap();
            net = net.with_layer(k, quantize_layer(layer, cfg)).unwrap();
            let dp = DeepPoly::run_upto(&net, &bx, k + 1).unwrap();
            assert_eq!(dp.computed_layers(), k + 1);
            let layers: Vec<ExactLayer> = dp.layers().iter().map(ExactLayer::new).collect();
            let exact = ExactNet::new(&net);
            for x in points(&bx, &mut rng, 8, &form_directions(&dp)) {
                let pre = exact.pre_activations(&x);
                for (j, layer) in layers.iter().enumerate() {
                    if let Err(e) = layer.check(j, &pre[j], &x) {
                        panic!(
                            "UNSOUND (run_upto {}): {e}\nnet = {net:?}\nbox = {bx:?}",
                            k + 1
                        );
                    }
                }
            }
        }
    }
}

/// The linear regime, where DeepPoly is exact up to rounding: positive weights into the hidden
/// layers, zero biases and a box away from 0 keep every ReLU stably active, so each concrete
/// bound is attained (up to DeepPoly's rounding slack) at a vertex, and each symbolic form is
/// the exact function up to rounding. A dropped rounding-error term shows here first.
#[test]
fn linear_regime_where_bounds_are_nearly_attained() {
    let mut rng = family_rng(18);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 8);
        let depth = sizes.len() - 1;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| {
                let w = (0..s[0] * s[1])
                    .map(|_| {
                        let v: f64 = rng.random_range(0.0..1.0) / s[0] as f64;
                        if i + 1 < depth {
                            v
                        } else {
                            v - 0.5 / s[0] as f64
                        }
                    })
                    .collect();
                Affine::new(i, s[1], s[0], w, vec![0.0; s[1]]).unwrap()
            })
            .collect();
        let net = Network::new(layers).unwrap();
        let (lo, hi): (Vec<f64>, Vec<f64>) = (0..sizes[0])
            .map(|_| {
                let l = rng.random_range(0.0625..0.5);
                if trial % 3 == 0 {
                    (l, l)
                } else {
                    (l, rng.random_range(l..1.0))
                }
            })
            .unzip();
        let bx = InputBox::new(lo, hi).unwrap();
        check_net(&net, &bx, &mut rng, 4, &mut cov);
    }
    assert_eq!(cov.unstable, 0, "{cov:?}");
}

/// One or two unstable neurons between a 1-d input and the outputs: DeepPoly's upper chord
/// `μ(y − l)` is attained at both ends of the input interval, its lower line `λy` at one,
/// so the relaxation's rounding (μ and its intercept rounded up) is tested to the ulp.
#[test]
fn single_unstable_neurons_where_the_relaxation_is_attained() {
    let mut rng = family_rng(19);
    let mut cov = Coverage::default();
    for trial in 0..200 {
        let width = 1 + trial % 2;
        let w: Vec<f64> = (0..width).map(|_| rng.random_range(-2.0..2.0)).collect();
        // a bias between −|w| and |w| makes y = w·x + b cross 0 inside x ∈ [−1, 1]
        let b: Vec<f64> = w
            .iter()
            .map(|v| v.abs() * rng.random_range(-0.9..0.9))
            .collect();
        let out: Vec<f64> = (0..2 * width)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let ob: Vec<f64> = (0..2).map(|_| rng.random_range(-1.0..1.0)).collect();
        let net = Network::new(vec![
            Affine::new(0, width, 1, w, b).unwrap(),
            Affine::new(1, 2, width, out, ob).unwrap(),
        ])
        .unwrap();
        let r = [1.0, 0.75, 0.5][trial % 3];
        let bx = InputBox::new(vec![-r], vec![r]).unwrap();
        check_net(&net, &bx, &mut rng, 2, &mut cov);
    }
    assert!(4 * cov.unstable >= 3 * cov.hidden, "{cov:?}");
}
