//! DeepPoly on an input-normalised network: the raw box is mapped through `(x − m)/s` before
//! it meets layer 0. Each test below fails if the map is ignored (the unmapped network gives
//! the opposite verdict), and the bounds contain every sampled output.

use certquant_bounds::{DeepPoly, LinearBounds, ProposeMultipliers, prove_property};
use certquant_core::graph::{Elementwise, ElementwiseKind, InputMap, Node};
use certquant_core::model::{Affine, Network};
use certquant_core::spec::{InputBox, OutputSpec};

struct NoMultipliers;
impl ProposeMultipliers for NoMultipliers {
    fn propose(&self, _: &LinearBounds, _: &[f64], _: &[f64], _: usize) -> Option<Vec<f64>> {
        None
    }
}

/// z = (x − [0.5, 0.1307]) / [0.25, 0.3081]; h = ReLU([z0, z1 − z0]); y = [h0, 1.5 + 0·h1].
fn normalised() -> Network {
    let ew = |kind, c: Vec<f64>| {
        Node::Elementwise(Elementwise::new(kind, vec![2], c, (vec![2], vec![])).unwrap())
    };
    let map = InputMap::new(
        vec![
            ew(ElementwiseKind::Sub, vec![0.5, 0.1307]),
            ew(ElementwiseKind::Div, vec![0.25, 0.3081]),
        ],
        &[],
    )
    .unwrap();
    let l0 = Affine::new(0, 2, 2, vec![1.0, 0.0, -1.0, 1.0], vec![0.0, 0.0]).unwrap();
    let l1 = Affine::new(1, 2, 2, vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.5]).unwrap();
    Network::new(vec![l0, l1])
        .unwrap()
        .with_input_map(map)
        .unwrap()
}

fn proven(net: &Network, bx: &InputBox, spec: OutputSpec) -> bool {
    let dp = DeepPoly::run(net, bx).unwrap();
    prove_property(&dp, spec, &NoMultipliers).unwrap().proven
}

#[test]
fn the_map_decides_the_verdict() {
    let net = normalised();
    let unmapped = Network::new(net.layers().to_vec()).unwrap();
    // x0 ∈ [0.95, 1] → z0 ∈ [1.8, 2] > 1.5: class 0 everywhere; raw x0 ≤ 1 < 1.5 is not.
    let bx = InputBox::new(vec![0.95, 0.0], vec![1.0, 1.0]).unwrap();
    assert!(proven(&net, &bx, OutputSpec::Robust { label: 0 }));
    assert!(proven(&net, &bx, OutputSpec::NotTarget { target: 1 }));
    assert!(!proven(&unmapped, &bx, OutputSpec::Robust { label: 0 }));
    // x0 ∈ [0.9, 1]: class 1 is *not* robust (x0 = 1 gives class 0), though the unmapped
    // network would "prove" it — the unsound verdict an ignored map produces.
    let bx = InputBox::new(vec![0.9, 0.0], vec![1.0, 1.0]).unwrap();
    assert_eq!(net.predict(&[1.0, 0.0]), 0);
    assert!(!proven(&net, &bx, OutputSpec::Robust { label: 1 }));
    assert!(proven(&unmapped, &bx, OutputSpec::Robust { label: 1 }));
}

#[test]
fn bounds_contain_sampled_outputs_and_the_box_is_mapped() {
    let net = normalised();
    let bx = InputBox::new(vec![0.0, 0.2], vec![1.0, 0.9]).unwrap();
    let dp = DeepPoly::run(&net, &bx).unwrap();
    let m = dp.input();
    assert!(
        m.lo()[0] <= -2.0 && m.hi()[0] >= 2.0 && m.lo()[0] > -2.0001,
        "{m:?}"
    );
    for s in 0..=20 {
        for t in 0..=20 {
            let x = [f64::from(s) / 20.0, 0.2 + 0.7 * f64::from(t) / 20.0];
            let y = net.forward(&x);
            let last = dp.layer(1);
            for (j, v) in y.iter().enumerate() {
                assert!(last.lo[j] <= *v && *v <= last.hi[j], "{x:?}: {j}");
            }
        }
    }
    // A raw box of the wrong length is refused by its raw length.
    assert!(DeepPoly::run(&net, &InputBox::new(vec![0.0], vec![1.0]).unwrap()).is_err());
}

/// The `norm_*` operator fixtures (Sub/Div and Mul/Add before a Gemm or a Conv): DeepPoly's
/// logit bounds over a raw box contain the typed graph's outputs (evaluated without the
/// lowering) at sampled points and random corners.
#[test]
fn normalised_fixtures_are_bounded_soundly() {
    use rand::{Rng, SeedableRng};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("norm_") && name.ends_with(".onnx")) {
            continue;
        }
        let net = certquant_core::onnx::import(&path).unwrap();
        let graph = certquant_core::onnx::import_graph(&path).unwrap();
        assert!(net.input_map().is_some(), "{name}");
        let n = net.input_dim();
        for eps in [0.0, 0.01, 0.1] {
            let c: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let bx = InputBox::linf_ball(&c, eps).unwrap();
            let dp = DeepPoly::run(&net, &bx).unwrap();
            let last = dp.layer(net.depth() - 1);
            for s in 0..40 {
                let x: Vec<f64> = bx
                    .lo()
                    .iter()
                    .zip(bx.hi())
                    .map(|(&l, &h)| match s % 2 {
                        0 if h > l => rng.random_range(l..=h),
                        _ if rng.random::<bool>() => h,
                        _ => l,
                    })
                    .collect();
                for (j, &y) in graph.forward(&x).iter().enumerate() {
                    let tol = 1e-9 * (1.0 + y.abs());
                    assert!(
                        last.lo[j] - tol <= y && y <= last.hi[j] + tol,
                        "{name} eps {eps}: logit {j} = {y} ∉ [{}, {}]",
                        last.lo[j],
                        last.hi[j]
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} normalised fixtures");
}
