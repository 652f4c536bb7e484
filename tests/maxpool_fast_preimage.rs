//! The fast preimage engine on verivital's `Convnet_maxpool`, whose hidden layers 0–3 feed the
//! sparse max-pooling tournament levels (docs/method.md, eq. (85)): it runs (it used to be
//! refused), and every layer's χ is at least the abstraction-only engine's (a relaxation
//! bound of the same optimum). Skipped when `../shared` is absent.

use certquant::bounds::DeepPoly;
use certquant::milp::cbc::Cbc;
use certquant::preimage::{Engine, PreimageOptions, compute_preimages};
use certquant::spec::{InputBox, OutputSpec};
use certquant::synth::pre_activations;

#[test]
fn fast_preimages_run_on_the_tournament_layers_and_dominate_abstract() {
    let Some(sh) = certquant::shared::shared_dir("benchmarks/vnncomp2021") else {
        return;
    };
    let Some(mnist) = certquant::shared::shared_dir("data/mnist") else {
        return;
    };
    let net = certquant::onnx::import(&sh.join("verivital/Convnet_maxpool.onnx")).expect("imports");
    assert!(net.layers()[1].is_sparse());
    let ds = certquant::data::load_dir(&mnist).expect("mnist");
    let x = ds.image(0).expect("image 0");
    let bx = InputBox::linf_ball(x, 1.0 / 255.0).expect("box");
    let spec = OutputSpec::Robust {
        label: ds.label(0).expect("label 0"),
    };
    let dp = DeepPoly::run(&net, &bx).expect("deeppoly");
    assert!(dp.prove_output(spec).expect("prove").0);
    let centre = pre_activations(&net, x);
    let run = |engine| {
        let opts = PreimageOptions {
            engine,
            ..PreimageOptions::default()
        };
        compute_preimages(&dp, &centre, spec, &Cbc, &opts).expect("preimages")
    };
    let (fast, abs) = (run(Engine::Fast), run(Engine::Abstract));
    assert_eq!(fast.len(), 5);
    for (f, a) in fast.iter().zip(&abs) {
        assert!(
            f.chi >= a.chi - 1e-9,
            "layer {}: fast {} below abstract {}",
            f.layer,
            f.chi,
            a.chi
        );
    }
    // the last hidden layer's preimage does not collapse (χ ≈ 1.50 on the 2026-12-01 build)
    assert!(fast[4].chi > 0.5, "{}", fast[4].chi);
    // the paper engine's single MILP still refuses a layer feeding a sparse one
    let opts = PreimageOptions {
        engine: Engine::Paper,
        ..PreimageOptions::default()
    };
    assert!(compute_preimages(&dp, &centre, spec, &Cbc, &opts).is_err());
}
