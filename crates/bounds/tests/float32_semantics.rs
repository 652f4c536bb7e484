//! Exact soundness of DeepPoly under the float32 semantics (docs/method.md §17, eqs. (58b),
//! (58c)): every binary32 evaluation of the network — inputs rounded to `f32`, each dot
//! product summed in a random order, with or without fused multiply-add — lies inside the
//! bounds; and a constructed network whose binary32 result falls outside the bounds once the
//! accumulation error is dropped (the test has teeth).

use certquant_bounds::DeepPoly;
use certquant_core::model::{Affine, Network};
use certquant_core::semantics::Semantics;
use certquant_core::spec::InputBox;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random network with weights and biases `k/2^6` (normal `f32` values).
fn dyadic_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let v = |rng: &mut ChaCha8Rng| rng.random_range(-64i32..=64) as f64 / 64.0;
            let weights = (0..w[0] * w[1]).map(|_| v(rng)).collect();
            let bias = (0..w[1]).map(|_| v(rng)).collect();
            Affine::new(k, w[1], w[0], weights, bias).unwrap()
        })
        .collect();
    Network::new(layers).unwrap()
}

/// One binary32 dot product plus bias, terms in a random order, each step a plain
/// multiply-add or a fused one (chosen at random).
fn random_dot(rng: &mut ChaCha8Rng, terms: &[(f32, f32)], bias: f32) -> f32 {
    let mut t: Vec<(f32, f32)> = terms.to_vec();
    t.push((bias, 1.0));
    t.shuffle(rng);
    let fma = rng.random::<bool>();
    t.iter().fold(
        0.0f32,
        |s, &(w, z)| {
            if fma { w.mul_add(z, s) } else { s + w * z }
        },
    )
}

/// The binary32 pre-activations of every layer at `x`, in random summation orders.
fn forward(rng: &mut ChaCha8Rng, net: &Network, x: &[f64]) -> Vec<Vec<f32>> {
    let mut z: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut out = Vec::new();
    for layer in net.layers() {
        let y: Vec<f32> = (0..layer.outputs())
            .map(|j| {
                let terms: Vec<(f32, f32)> = layer
                    .row_entries(j)
                    .map(|(i, w)| (w as f32, z[i]))
                    .collect();
                random_dot(rng, &terms, layer.bias()[j] as f32)
            })
            .collect();
        z = y.iter().map(|v| v.max(0.0)).collect();
        out.push(y);
    }
    out
}

#[test]
fn binary32_runs_in_any_order_stay_inside_the_bounds() {
    let mut rng = ChaCha8Rng::seed_from_u64(58);
    let mut checked = 0;
    for trial in 0..30 {
        let sizes = [5, 8, 7, 4];
        let net = dyadic_net(&mut rng, &sizes);
        let centre: Vec<f64> = (0..5).map(|_| rng.random_range(-1.0..1.0)).collect();
        let eps = if trial % 3 == 0 { 0.0 } else { 0.05 };
        let bx = InputBox::linf_ball(&centre, eps).unwrap();
        let dp = DeepPoly::run_semantics(&net, &bx, &Semantics::Float32).unwrap();
        let label = rng.random_range(0..4);
        let lbs = dp.logit_difference_lower_bounds(label).unwrap();
        for _ in 0..200 {
            let x: Vec<f64> = bx
                .lo()
                .iter()
                .zip(bx.hi())
                .map(|(&l, &h)| if h > l { rng.random_range(l..=h) } else { l })
                .collect();
            let ys = forward(&mut rng, &net, &x);
            for (k, y) in ys.iter().enumerate() {
                let b = dp.layer(k);
                for (j, &v) in y.iter().enumerate() {
                    let v = v as f64;
                    assert!(
                        b.lo[j] <= v && v <= b.hi[j],
                        "trial {trial} layer {k} neuron {j}: {v} outside [{}, {}]",
                        b.lo[j],
                        b.hi[j]
                    );
                }
            }
            let logits = ys.last().unwrap();
            for (j, &lb) in lbs.iter().enumerate() {
                if j != label {
                    // f32 − f32 is exact in f64 here (magnitudes within 2^29 of each other)
                    assert!(logits[label] as f64 - logits[j] as f64 >= lb);
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 30 * 200);
}

/// `y0 = x0 + 2^−24·x1 + 2^−24·x2`, `y1 = x0` on the point `x = (1, 1, 1)`.
fn tie_net() -> (Network, InputBox) {
    let t = 2f64.powi(-24);
    let l = Affine::new(0, 2, 3, vec![1.0, t, t, 1.0, 0.0, 0.0], vec![0.0, 0.0]).unwrap();
    (
        Network::new(vec![l]).unwrap(),
        InputBox::new(vec![1.0; 3], vec![1.0; 3]).unwrap(),
    )
}

#[test]
fn dropping_the_accumulation_error_lets_a_binary32_run_escape() {
    let (net, bx) = tie_net();
    // Sequential binary32: 1 + 2^−24 ties to 1, twice: y0 = 1 = y1 (a tie: a violation).
    let t = 2f32.powi(-24);
    let y0 = (1.0f32 + t) + t;
    assert_eq!(y0, 1.0);
    let real = DeepPoly::run(&net, &bx).unwrap();
    assert!(
        real.layer(0).lo[0] > y0 as f64,
        "the real bound excludes the f32 run"
    );
    let real_margin = real.robustness_margin(0).unwrap();
    assert!(real_margin > 0.0, "real semantics proves y0 > y1");
    let fl = DeepPoly::run_semantics(&net, &bx, &Semantics::Float32).unwrap();
    assert!(fl.layer(0).lo[0] <= y0 as f64);
    assert!(
        fl.robustness_margin(0).unwrap() <= 0.0,
        "float32 must not prove it"
    );
}

#[test]
fn refuses_weights_binary32_cannot_hold() {
    let l = Affine::new(0, 2, 1, vec![0.1, 1.0], vec![0.0, 0.0]).unwrap();
    let net = Network::new(vec![l]).unwrap();
    let bx = InputBox::new(vec![0.0], vec![1.0]).unwrap();
    let e = DeepPoly::run_semantics(&net, &bx, &Semantics::Float32).unwrap_err();
    assert!(e.to_string().contains("not a normal f32"), "{e}");
}
