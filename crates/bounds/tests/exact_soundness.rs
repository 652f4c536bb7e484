//! Exact-rational soundness test of the synthesis DeepPoly.
//!
//! The unit tests in `deeppoly.rs` compare the bounds with an `f64` forward pass and a slack of
//! `1e-9`; they cannot see an unsoundness at the level of a rounding error, which is exactly
//! where a floating-point abstract interpreter goes wrong. Here every claim DeepPoly makes is
//! checked against the *exact* network: every `f64` (weights, biases, box ends, bounds,
//! coefficients) is a dyadic rational and is converted to its exact [`BigRational`] value
//! ([`rat`]), inputs are exact rationals in the box, the forward pass is computed exactly, and
//! every comparison is an exact rational comparison with **zero slack**:
//!
//! * each pre-activation lies in its layer's concrete bounds `[l, u]`;
//! * it lies between the symbolic lower and upper forms `f^≤(x) ≤ y ≤ f^≥(x)` evaluated
//!   exactly at the same input;
//! * the output claims (`logit_difference_lower_bounds`, `robustness_margin`, `prove_output`,
//!   `logit_difference_forms`, `difference_combination_lower_bound`, `prove_property`) never
//!   exceed the exact quantity they bound, and a `proven` answer holds at the point.
//!
//! Inputs are box vertices (all of them in few dimensions) and dyadic grid points; networks
//! have coarse dyadic parameters `k·2^−a`, full 53-bit float parameters, or are quantized by
//! [`Strategy`] as the synthesis does. [`zero_slack_detects_a_bound_one_ulp_inward`] shows the
//! check has teeth: a bound attained exactly passes, the same bound one ulp inward fails.

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
    for (i, x) in points(bx, rng, grid).into_iter().enumerate() {
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

/// Exact inputs of `bx`: all vertices when the dimension is at most 5 (else 32 random ones),
/// the centre, and `grid` random grid points `lo + (hi − lo)·m/2^6`.
fn points(bx: &InputBox, rng: &mut ChaCha8Rng, grid: usize) -> Vec<Vec<Q>> {
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
        (0..32).map(|_| vertex(rng.random())).collect()
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

/// Layer sizes: input up to `max_in`, 1–3 hidden layers of width ≤ 12, 2–10 outputs.
fn random_sizes(rng: &mut ChaCha8Rng, max_in: usize) -> Vec<usize> {
    let mut sizes = vec![rng.random_range(1..=max_in)];
    for _ in 0..rng.random_range(1..=3) {
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
    let mut rng = ChaCha8Rng::seed_from_u64(11);
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
    let mut rng = ChaCha8Rng::seed_from_u64(12);
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
    let mut rng = ChaCha8Rng::seed_from_u64(13);
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
    let mut rng = ChaCha8Rng::seed_from_u64(14);
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
    let mut rng = ChaCha8Rng::seed_from_u64(15);
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
    let mut rng = ChaCha8Rng::seed_from_u64(16);
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
            for x in points(&bx, &mut rng, 8) {
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
