//! The checker's DeepPoly and the synthesis' DeepPoly prove the same margins on the same
//! networks. This test lives outside both crates on purpose: `certquant-check` must not depend
//! on `certquant-bounds`, not even as a dev-dependency (`cargo tree -p certquant-check`).

use certquant::bounds::DeepPoly;
use certquant::check::prove::Prover;
use certquant::model::{Affine, Network};
use certquant::spec::{InputBox, OutputSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random network whose weights are `k/16` and biases `k/256` (small integers `k`).
fn dyadic_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(l, s)| {
            let (n_in, n_out) = (s[0], s[1]);
            let w = (0..n_in * n_out)
                .map(|_| rng.random_range(-24i32..=24) as f64 / 16.0)
                .collect();
            let b = (0..n_out)
                .map(|_| rng.random_range(-300i32..=300) as f64 / 256.0)
                .collect();
            Affine::new(l, n_out, n_in, w, b).unwrap()
        })
        .collect();
    Network::new(layers).unwrap()
}

#[test]
fn margins_agree_with_the_synthesis_deeppoly() {
    // Not a soundness argument (that one is above): a check that the relaxation family is
    // the same, so the checker proves what the synthesis proved.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..20 {
        let net = dyadic_net(&mut rng, &[8, 12, 10, 4]);
        let center: Vec<f64> = (0..8).map(|_| rng.random_range(0.0..1.0)).collect();
        let bx = InputBox::linf_ball(&center, 0.02).unwrap();
        let p = Prover::new(&net, bx.lo(), bx.hi()).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        for label in 0..4 {
            let ours = p.margin(OutputSpec::Robust { label });
            let theirs = dp.robustness_margin(label).unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9 * (1.0 + theirs.abs()),
                "{ours} vs {theirs}"
            );
            let (_, t2) = dp
                .prove_output(OutputSpec::NotTarget { target: label })
                .unwrap();
            let o2 = p.margin(OutputSpec::NotTarget { target: label });
            assert!((o2 - t2).abs() <= 1e-9 * (1.0 + t2.abs()), "{o2} vs {t2}");
        }
    }
}
