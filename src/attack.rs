//! Falsification: searching the input box for a concrete counterexample with random sampling,
//! box corners and projected gradient descent (PGD, signed-gradient steps on the margin).
//!
//! Used to cross-check certified results (a hit on a certified network is a soundness bug)
//! and to measure how incomplete the method is on `unknown` tasks. Plain f64 evaluation is
//! fine here: a reported counterexample is re-evaluated and only returned if the property
//! really fails at that point.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::Network;
use crate::spec::{OutputSpec, Property};

/// Budget of an attack.
#[derive(Debug, Clone)]
pub struct AttackOptions {
    /// Uniform random points sampled in the box.
    pub samples: usize,
    /// PGD restarts (the first from the box centre, the rest random).
    pub restarts: usize,
    /// PGD steps per restart.
    pub steps: usize,
    /// RNG seed.
    pub seed: u64,
}

impl Default for AttackOptions {
    fn default() -> Self {
        Self {
            samples: 200,
            restarts: 8,
            steps: 60,
            seed: 0,
        }
    }
}

/// The violation value of `spec` at logits `y`: `> −0` means the property fails
/// (robustness: `max_{j≠g} y_j − y_g ≥ 0`; not-target: `y_t − max_{j≠t} y_j ≥ 0`), and the
/// class whose gradient to follow.
fn violation(spec: OutputSpec, y: &[f64]) -> (f64, usize) {
    match spec {
        OutputSpec::Robust { label } => {
            let (j, v) = y.iter().enumerate().filter(|(j, _)| *j != label).fold(
                (usize::MAX, f64::NEG_INFINITY),
                |acc, (j, &v)| {
                    if v > acc.1 { (j, v) } else { acc }
                },
            );
            (v - y[label], j)
        }
        OutputSpec::NotTarget { target } => {
            let (j, v) = y.iter().enumerate().filter(|(j, _)| *j != target).fold(
                (usize::MAX, f64::NEG_INFINITY),
                |acc, (j, &v)| {
                    if v > acc.1 { (j, v) } else { acc }
                },
            );
            (y[target] - v, j)
        }
    }
}

/// Gradient with respect to the raw input `x` of `y[a] − y[b]` ([`gradient_along`] with
/// the direction `e_a − e_b`).
fn gradient(net: &Network, x: &[f64], a: usize, b: usize) -> Vec<f64> {
    let mut dir = vec![0.0; net.output_dim()];
    dir[a] += 1.0;
    dir[b] -= 1.0;
    gradient_along(net, x, &dir)
}

/// Gradient with respect to the raw input `x` of `dir · y(x)` (a linear function of the
/// logits): through the layers, then through the network's input map (normalisation,
/// docs/method.md eq. (1d)), so a step is taken in raw inputs. The attack follows logit
/// differences; falsification of VNN-LIB constraints follows their coefficient vectors.
pub fn gradient_along(net: &Network, x: &[f64], dir: &[f64]) -> Vec<f64> {
    // forward, keeping activation masks
    let mut masks = Vec::with_capacity(net.depth());
    let mut v = net.map_input(x);
    for (i, l) in net.layers().iter().enumerate() {
        let y = l.apply(&v);
        if i + 1 < net.depth() {
            masks.push(y.iter().map(|&t| t > 0.0).collect::<Vec<_>>());
            v = y.iter().map(|t| t.max(0.0)).collect();
        }
    }
    // backward
    let mut g = dir.to_vec();
    for i in (0..net.depth()).rev() {
        let l = &net.layers()[i];
        let mut gin = vec![0.0; l.inputs()];
        for (j, &gj) in g.iter().enumerate() {
            if gj == 0.0 {
                continue;
            }
            // Zero weights add nothing: a sparse layer is read through its stored entries.
            for (s, w) in l.row_entries(j) {
                gin[s] += gj * w;
            }
        }
        if i > 0 {
            for (gi, &m) in gin.iter_mut().zip(&masks[i - 1]) {
                if !m {
                    *gi = 0.0;
                }
            }
        }
        g = gin;
    }
    match net.input_map() {
        Some(m) => m.pullback(&g),
        None => g,
    }
}

/// Searches for an input of `prop.input` that violates `prop.output` on `net`.
/// Returns the counterexample (re-checked with a plain forward pass) or `None`.
pub fn find_counterexample(
    net: &Network,
    prop: &Property,
    opts: &AttackOptions,
) -> Option<Vec<f64>> {
    find_counterexample_of(net, prop, opts, &|x| net.forward(x))
}

/// [`find_counterexample`] on the integer program of `net` (docs/method.md §17, eq. (55)):
/// points are judged by the exact integer logits — rounding, saturation and ties included —
/// while the gradient steps follow the real-valued network `net` (the QNN the program runs).
pub fn find_integer_counterexample(
    net: &Network,
    program: &crate::semantics::IntProgram,
    prop: &Property,
    opts: &AttackOptions,
) -> Option<Vec<f64>> {
    find_counterexample_of(net, prop, opts, &|x| match program.run(x) {
        Ok(l) => program.logits_real(&l),
        Err(_) => net.forward(x),
    })
}

/// [`find_counterexample`] under the float32 semantics (docs/method.md §17, eq. (58b)): a
/// point is judged by actual binary32 forward passes of `net` in every
/// [`crate::float32::ORDERS`] summation order (sequential, reversed, pairwise, fused
/// multiply-add), logits compared in `f32` (a tie violates); a point counts if *some* order
/// violates, so every reported counterexample is a real binary32 run.
pub fn find_float32_counterexample(
    net: &Network,
    prop: &Property,
    opts: &AttackOptions,
) -> Option<Vec<f64>> {
    find_counterexample_of(net, prop, opts, &|x| {
        let runs = crate::float32::ORDERS.map(|o| {
            crate::float32::forward_f32(net, x, o)
                .into_iter()
                .map(f64::from)
                .collect::<Vec<f64>>()
        });
        let bad = runs.iter().position(|l| !prop.output.holds(l)).unwrap_or(0);
        runs[bad].clone()
    })
}

/// The attack with `logits` deciding whether a point violates the property (`net` guides the
/// gradient steps only).
fn find_counterexample_of(
    net: &Network,
    prop: &Property,
    opts: &AttackOptions,
    logits: &dyn Fn(&[f64]) -> Vec<f64>,
) -> Option<Vec<f64>> {
    let bx = &prop.input;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let violates = |x: &[f64]| !prop.output.holds(&logits(x));
    let random_point = |rng: &mut ChaCha8Rng| -> Vec<f64> {
        bx.lo()
            .iter()
            .zip(bx.hi())
            .map(|(&l, &h)| if h > l { rng.random_range(l..=h) } else { l })
            .collect()
    };
    for s in 0..opts.samples {
        let x = if s % 2 == 0 {
            random_point(&mut rng)
        } else {
            // a random corner
            bx.lo()
                .iter()
                .zip(bx.hi())
                .map(|(&l, &h)| if rng.random::<bool>() { l } else { h })
                .collect()
        };
        if violates(&x) {
            return Some(x);
        }
    }
    for r in 0..opts.restarts {
        let mut x = if r == 0 {
            bx.center()
        } else {
            random_point(&mut rng)
        };
        let width: Vec<f64> = bx.lo().iter().zip(bx.hi()).map(|(l, h)| h - l).collect();
        for step in 0..opts.steps {
            let (v, j) = violation(prop.output, &logits(&x));
            if v >= 0.0 && violates(&x) {
                return Some(x);
            }
            let (a, b) = match prop.output {
                OutputSpec::Robust { label } => (j, label),
                OutputSpec::NotTarget { target } => (target, j),
            };
            let g = gradient(net, &x, a, b);
            let lr = 0.25 * (1.0 - step as f64 / opts.steps as f64) + 0.02;
            for ((xi, gi), w) in x.iter_mut().zip(&g).zip(&width) {
                *xi += lr * w * gi.signum();
            }
            bx.project(&mut x);
        }
        if violates(&x) {
            return Some(x);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Affine;
    use crate::spec::InputBox;

    #[test]
    fn gradient_matches_finite_differences() {
        let l0 = Affine::new(
            0,
            3,
            2,
            vec![1.0, -2.0, 0.5, 1.5, -1.0, 0.3],
            vec![0.1, 0.2, 0.3],
        )
        .unwrap();
        let l1 = Affine::new(
            1,
            2,
            3,
            vec![1.0, -1.0, 2.0, 0.5, 0.7, -0.2],
            vec![0.0, 0.1],
        )
        .unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let x = [0.35, 0.2];
        let g = gradient(&net, &x, 0, 1);
        let f = |x: &[f64]| {
            let y = net.forward(x);
            y[0] - y[1]
        };
        for i in 0..2 {
            let mut xp = x.to_vec();
            xp[i] += 1e-6;
            let fd = (f(&xp) - f(&x)) / 1e-6;
            assert!((fd - g[i]).abs() < 1e-4, "{fd} vs {}", g[i]);
        }
        // The same network with sparse layers: the same gradient, bit for bit.
        let sparse = Network::new(net.layers().iter().map(Affine::to_sparse).collect()).unwrap();
        assert!(sparse.layers().iter().all(Affine::is_sparse));
        assert_eq!(gradient(&sparse, &x, 0, 1), g);
        assert_eq!(sparse.forward(&x), net.forward(&x));
        // Any direction (falsification follows a VNN-LIB constraint's coefficients).
        let a = [0.7, -1.3];
        let ga = gradient_along(&net, &x, &a);
        let fa = |x: &[f64]| {
            let y = net.forward(x);
            a[0] * y[0] + a[1] * y[1]
        };
        for i in 0..2 {
            let mut xp = x.to_vec();
            xp[i] += 1e-6;
            let fd = (fa(&xp) - fa(&x)) / 1e-6;
            assert!((fd - ga[i]).abs() < 1e-4, "{fd} vs {}", ga[i]);
        }
    }

    #[test]
    fn gradient_goes_through_the_input_normalisation() {
        use crate::graph::{Elementwise, ElementwiseKind, InputMap, Node};
        let l0 = Affine::new(0, 2, 2, vec![1.0, -2.0, 0.5, 1.5], vec![0.1, 0.2]).unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, -1.0, 0.5, 0.7], vec![0.0, 0.1]).unwrap();
        let ew = |kind, c: Vec<f64>| {
            Node::Elementwise(Elementwise::new(kind, vec![2], c, (vec![], vec![])).unwrap())
        };
        // (x − m)/s with a negative s: ignoring the map gets the sign of ∂/∂x1 wrong.
        let map = InputMap::new(
            vec![
                ew(ElementwiseKind::Sub, vec![0.1307, 0.2]),
                ew(ElementwiseKind::Div, vec![0.3081, -0.25]),
            ],
            &[],
        )
        .unwrap();
        let net = Network::new(vec![l0, l1])
            .unwrap()
            .with_input_map(map)
            .unwrap();
        let x = [0.35, 0.2];
        let g = gradient(&net, &x, 0, 1);
        let f = |x: &[f64]| {
            let y = net.forward(x);
            y[0] - y[1]
        };
        for i in 0..2 {
            let mut xp = x.to_vec();
            xp[i] += 1e-7;
            let fd = (f(&xp) - f(&x)) / 1e-7;
            assert!(
                (fd - g[i]).abs() < 1e-4 * (1.0 + fd.abs()),
                "{fd} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn finds_a_counterexample_when_one_exists_and_none_otherwise() {
        // y0 = x, y1 = 0.5: class 0 wins iff x > 0.5
        let l = Affine::new(0, 2, 1, vec![1.0, 0.0], vec![0.0, 0.5]).unwrap();
        let net = Network::new(vec![l]).unwrap();
        let prop = Property {
            input: InputBox::new(vec![0.4], vec![0.9]).unwrap(),
            output: OutputSpec::Robust { label: 0 },
        };
        let cx = find_counterexample(&net, &prop, &AttackOptions::default()).unwrap();
        assert!(cx[0] <= 0.5);
        let safe = Property {
            input: InputBox::new(vec![0.6], vec![0.9]).unwrap(),
            output: OutputSpec::Robust { label: 0 },
        };
        assert!(find_counterexample(&net, &safe, &AttackOptions::default()).is_none());
    }
}
