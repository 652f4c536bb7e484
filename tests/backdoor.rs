//! Algorithm 2 end to end on hand-made networks (no ../shared needed): a planted backdoor
//! must make the SPRT accept H1; a backdoor-free network must get a certified shared strategy
//! that no random or gradient-chosen patch breaks.

use certquant::attack::{AttackOptions, find_counterexample};
use certquant::backdoor::{BackdoorOptions, BackdoorStatus, synthesize_backdoor};
use certquant::data::Dataset;
use certquant::milp::cbc::Cbc;
use certquant::model::{Affine, Network};
use certquant::spec::Trigger;
use certquant::sprt::{Hypothesis, SprtParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TARGET: usize = 3;

/// 784 → 2 → 10. Hidden neuron 0 sums the 3×3 patch at (1,1) minus 4 (so it fires only when
/// the patch is bright); hidden neuron 1 sums a few pixels elsewhere. `planted` wires neuron 0
/// to the target's logit (a real backdoor: a white patch flips every image to the target).
fn net(planted: bool) -> Network {
    let patch = Trigger {
        row: 1,
        col: 1,
        size: 3,
    }
    .pixels(28);
    let mut w0 = vec![0.0; 2 * 784];
    for &i in &patch {
        w0[i] = 1.0;
    }
    for i in 400..420 {
        w0[784 + i] = 0.05;
    }
    let l0 = Affine::new(0, 2, 784, w0, vec![-4.0, 0.1]).unwrap();
    let mut w1 = vec![0.0; 10 * 2];
    let mut b1 = vec![0.0; 10];
    for j in 0..10 {
        w1[j * 2 + 1] = 0.5 + 0.1 * j as f64;
        b1[j] = 1.0;
    }
    if planted {
        w1[TARGET * 2] = 10.0;
        b1[TARGET] = -1.0;
    } else {
        b1[TARGET] = -5.0;
    }
    let l1 = Affine::new(1, 10, 2, w1, b1).unwrap();
    Network::new(vec![l0, l1]).unwrap()
}

/// Random images whose 3×3 corner patch is dark, labelled with classes other than the target.
fn data(n: usize) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut px = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        for p in 0..784 {
            let (r, c) = (p / 28, p % 28);
            let v = if r < 3 && c < 3 {
                0.0
            } else {
                (rng.random_range(0..=255u32) as f64) / 255.0
            };
            px.push(v);
        }
        labels.push(if i % 9 >= TARGET {
            (i % 9 + 1) as u8
        } else {
            (i % 9) as u8
        });
    }
    Dataset::from_parts(784, px, Some(labels)).unwrap()
}

fn options() -> BackdoorOptions {
    let mut o = BackdoorOptions::paper(
        Trigger {
            row: 1,
            col: 1,
            size: 3,
        },
        TARGET,
    );
    // K = 1 keeps the test small: p0 = 0.15, p1 = 0.05, H0 after 3 successes, H1 after 27
    // failures.
    o.sprt = SprtParams {
        k: 1,
        ..SprtParams::paper()
    };
    o.seed = 7;
    o
}

#[test]
fn a_planted_backdoor_makes_the_test_accept_h1() {
    let net = net(true);
    let ds = data(40);
    let mut rounds = 0;
    let out = synthesize_backdoor(&net, &ds, &Cbc, &options(), &mut |_, _| rounds += 1).unwrap();
    assert_eq!(out.status, BackdoorStatus::H1Rejected);
    assert_eq!(out.hypothesis, Some(Hypothesis::H1));
    assert_eq!((out.rounds.len(), out.successes, rounds), (27, 0, 27));
    assert!(out.forward.is_none() && out.kept.is_empty());
    // and the backdoor is real: the attack finds a patch reaching the target
    let id = out.rounds[0].images[0].id;
    let prop = certquant::spec::Property {
        input: certquant::spec::InputBox::with_trigger(ds.image(id).unwrap(), &options().trigger)
            .unwrap(),
        output: certquant::spec::OutputSpec::NotTarget { target: TARGET },
    };
    assert!(find_counterexample(&net, &prop, &AttackOptions::default()).is_some());
    // no image of the target class was drawn
    for r in &out.rounds {
        for im in &r.images {
            assert_ne!(ds.label(im.id), Some(TARGET));
        }
    }
}

#[test]
fn a_backdoor_free_net_gets_a_certified_shared_strategy() {
    let net = net(false);
    let ds = data(40);
    let out = synthesize_backdoor(&net, &ds, &Cbc, &options(), &mut |_, _| {}).unwrap();
    assert_eq!(out.status, BackdoorStatus::Certified, "{:?}", out.rounds);
    assert_eq!((out.rounds.len(), out.successes), (3, 3));
    assert_eq!(out.kept.len(), 3);
    let fwd = out.forward.unwrap();
    let (qnn, strategy) = (fwd.qnn.unwrap(), fwd.strategy.unwrap());
    assert_eq!(strategy.apply(&net).unwrap(), qnn);
    assert_eq!(fwd.proofs.len(), 3);
    for (k, proof) in out.kept.iter().zip(&fwd.proofs) {
        assert!(proof.proven && proof.margin > 0.0);
        let cx = find_counterexample(
            &qnn,
            &k.prop,
            &AttackOptions {
                samples: 400,
                restarts: 8,
                steps: 60,
                seed: 11,
            },
        );
        assert!(
            cx.is_none(),
            "a patch reaches the target on a certified QNN"
        );
    }
    // the same seed draws the same images
    let again = synthesize_backdoor(&net, &ds, &Cbc, &options(), &mut |_, _| {}).unwrap();
    let ids = |o: &certquant::backdoor::BackdoorOutcome| -> Vec<usize> {
        o.rounds
            .iter()
            .flat_map(|r| r.images.iter().map(|i| i.id))
            .collect()
    };
    assert_eq!(
        ids(&again),
        out.rounds
            .iter()
            .flat_map(|r| r.images.iter().map(|i| i.id))
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_backdoor_options_are_errors() {
    let clean = net(false);
    let ds = data(5);
    let mut o = options();
    o.trigger = Trigger {
        row: 27,
        col: 27,
        size: 3,
    };
    assert!(synthesize_backdoor(&clean, &ds, &Cbc, &o, &mut |_, _| {}).is_err());
    let mut o = options();
    o.target = 10;
    assert!(synthesize_backdoor(&clean, &ds, &Cbc, &o, &mut |_, _| {}).is_err());
    let mut o = options();
    o.sprt.theta = 1.5;
    assert!(synthesize_backdoor(&clean, &ds, &Cbc, &o, &mut |_, _| {}).is_err());
    let mut o = options();
    o.chi_threshold = f64::NAN;
    assert!(synthesize_backdoor(&clean, &ds, &Cbc, &o, &mut |_, _| {}).is_err());
    // the data runs out before a decision: timeout, not a verdict
    let mut o = options();
    o.sprt.k = 5;
    let out = synthesize_backdoor(&net(true), &ds, &Cbc, &o, &mut |_, _| {}).unwrap();
    assert_eq!(out.status, BackdoorStatus::Timeout);
    assert_eq!(out.hypothesis, None);
}

/// 784 → 2 → 10 where only a *combination* of classes keeps the target away: with `p` the
/// top-left pixel (inside the 3×3 trigger at (1,1)), `y_1 = ReLU(p)`, `y_2 = ReLU(1 − p)`,
/// `y_3 = 0.4`, the rest `−1`. Since `max(p, 1 − p) ≥ 0.5 > 0.4`, class 3 never wins, but
/// neither class 1 nor class 2 beats it on the whole box: the output check needs LP
/// multipliers, and the independent checker must re-prove them.
#[test]
fn a_joint_not_target_proof_is_certified_and_rechecked() {
    use certquant::certificate::{
        Certificate, CertifiedProperty, FORMAT, ModelRef, PropertySource, sha256_hex,
    };
    let mut w0 = vec![0.0; 2 * 784];
    w0[0] = 1.0;
    w0[784] = -1.0;
    let l0 = Affine::new(0, 2, 784, w0, vec![0.0, 1.0]).unwrap();
    let mut w1 = vec![0.0; 20];
    let mut b1 = vec![-1.0; 10];
    w1[2] = 1.0; // y_1 = h_0
    w1[2 * 2 + 1] = 1.0; // y_2 = h_1
    b1[1] = 0.0;
    b1[2] = 0.0;
    b1[TARGET] = 0.4f32 as f64; // as an ONNX file holds it
    let l1 = Affine::new(1, 10, 2, w1, b1).unwrap();
    let net = Network::new(vec![l0, l1]).unwrap();
    let ds = data(10);
    let out = synthesize_backdoor(&net, &ds, &Cbc, &options(), &mut |_, _| {}).unwrap();
    assert_eq!(out.status, BackdoorStatus::Certified, "{:?}", out.rounds);
    let fwd = out.forward.unwrap();
    let (qnn, strategy) = (fwd.qnn.unwrap(), fwd.strategy.unwrap());
    assert!(
        fwd.proofs.iter().all(|p| p.multipliers.is_some()),
        "this property needs the joint proof"
    );
    // the independent checker re-proves every property from the multipliers
    let orig_bytes = certquant::onnx::export_bytes(&net).unwrap();
    let qnn_bytes = certquant::onnx::export_bytes(&qnn).unwrap();
    let props: Vec<CertifiedProperty> = out
        .kept
        .iter()
        .zip(&fwd.proofs)
        .map(|(k, p)| CertifiedProperty {
            input: k.prop.input.clone(),
            output: k.prop.output,
            source: PropertySource {
                data: None,
                id: Some(k.id),
                // the images are k/255 by construction
                pixels: Some(
                    ds.image(k.id)
                        .unwrap()
                        .iter()
                        .map(|v| (v * 255.0).round() as u8)
                        .collect(),
                ),
                eps_text: None,
                eps: None,
                trigger: Some(options().trigger),
            },
            margin: p.margin,
            multipliers: p.multipliers.clone(),
        })
        .collect();
    let mut cert = Certificate {
        format: FORMAT.into(),
        tool: "test".into(),
        original_model: ModelRef {
            sha256: sha256_hex(&orig_bytes),
            file: None,
        },
        qnn: ModelRef {
            sha256: sha256_hex(&qnn_bytes),
            file: None,
        },
        strategy: strategy.0.clone(),
        semantics: Default::default(),
        chi: vec![],
        verifier: "test".into(),
        properties: props,
        statistical: None,
        vnnlib: None,
        vnnlib_set: Vec::new(),
    };
    let report = certquant::check::check_certificate(&cert, &net, &orig_bytes, &qnn, &qnn_bytes);
    assert!(report.valid, "{:?}", report.reasons);
    // without the multipliers, or with wrong ones, the same claim is refused
    cert.properties[0].multipliers = None;
    let r = certquant::check::check_certificate(&cert, &net, &orig_bytes, &qnn, &qnn_bytes);
    assert!(!r.valid);
    let mut lam = vec![0.0; 10];
    lam[1] = 1.0;
    cert.properties[0].multipliers = Some(lam);
    let r = certquant::check::check_certificate(&cert, &net, &orig_bytes, &qnn, &qnn_bytes);
    assert!(!r.valid);
    // and no patch value reaches the target on the QNN
    for k in &out.kept {
        assert!(find_counterexample(&qnn, &k.prop, &AttackOptions::default()).is_none());
    }
}

/// Algorithm 2's shared forward step with the guided fallback (docs/method.md, eq. (64)):
/// where the first layer's preimages of the kept images collapse (χ = 0, so no `F ≤ B_u`
/// keeps the quantized layer inside them) the paper's search stops, and the guided search
/// takes the fewest bits with which every kept property is still proven with the later
/// layer at `B_u`, then finishes with a sound proof of every kept property on the QNN.
#[test]
fn the_guided_forward_step_goes_on_where_the_kept_preimages_collapse() {
    use certquant::bounds::DeepPoly;
    use certquant::floor::AccuracyFloor;
    use certquant::synth::{ForwardItem, Method, forward_search};

    let net = net(false);
    let ds = data(40);
    let out = synthesize_backdoor(&net, &ds, &Cbc, &options(), &mut |_, _| {}).unwrap();
    assert_eq!(out.status, BackdoorStatus::Certified);
    let collapsed: Vec<_> = out
        .kept
        .iter()
        .map(|k| {
            let mut pre = k.preimages.clone();
            pre[0].chi = 0.0;
            (k.prop.clone(), pre)
        })
        .collect();
    let dps: Vec<_> = collapsed
        .iter()
        .map(|(p, _)| DeepPoly::run(&net, &p.input).unwrap())
        .collect();
    let items: Vec<ForwardItem<'_>> = collapsed
        .iter()
        .zip(&dps)
        .map(|((prop, pre), dp)| ForwardItem {
            prop,
            float: dp,
            preimages: pre,
        })
        .collect();
    let mut paper = options().synth;
    paper.min_frac = 1;
    paper.max_frac = 3;
    let stuck = forward_search(&net, &items, &Cbc, &paper).unwrap();
    assert!(stuck.strategy.is_none(), "{:?}", stuck.layers);
    assert_eq!(stuck.layers.len(), 1);
    // guided, with an accuracy floor on the labelled data (float − 1 point)
    let guided = certquant::synth::SynthOptions {
        method: Method::Guided,
        accuracy_floor: Some(AccuracyFloor::new(
            &net,
            std::sync::Arc::new(ds.clone()),
            1.0,
        )),
        ..paper.clone()
    };
    let on = forward_search(&net, &items, &Cbc, &guided).unwrap();
    let (qnn, strategy) = (on.qnn.clone().unwrap(), on.strategy.clone().unwrap());
    assert!(
        on.layers[0].guided && !on.layers[1].guided,
        "{:?}",
        on.layers
    );
    assert_eq!(strategy.apply(&net).unwrap(), qnn);
    assert_eq!(on.proofs.len(), items.len());
    for item in &items {
        let dq = DeepPoly::run(&qnn, &item.prop.input).unwrap();
        assert!(dq.prove_output(item.prop.output).unwrap().0);
        assert!(find_counterexample(&qnn, item.prop, &AttackOptions::default()).is_none());
    }
    let floor = guided.accuracy_floor.as_ref().unwrap();
    assert!(floor.admits(&qnn));
}
