//! Issue 16: the batched accuracy of candidates gives `predict`'s class on every image (also on
//! structured and normalised networks), the descent search returns a strategy that proves
//! every property and keeps the floor, and the CLI exposes both (`--search`, `bench
//! candidates`). The ../shared tests print "skipped" and return when it is absent.

mod common;

use std::sync::Arc;

use certquant::batch::BatchEval;
use certquant::bounds::DeepPoly;
use certquant::data::{self, Dataset};
use certquant::model::Network;
use certquant::onnx;
use certquant::quantize::Strategy;
use certquant::search::{SearchMethod, SearchOptions, accuracy, search};
use certquant::spec::{InputBox, OutputSpec, Property};
use common::{demo_data, demo_model, root, run, run_json, s};

fn demo() -> Arc<Dataset> {
    Arc::new(data::load_dir(&demo_data()).unwrap())
}

fn agree(float: &Network, q: &Network, ds: &Arc<Dataset>) {
    let ev = BatchEval::new(float, ds.clone());
    let classes = ev.classes(q);
    assert_eq!(classes.len(), ds.len());
    let mut wrong = 0;
    for (i, k) in classes {
        let x = ds.image(i).unwrap();
        assert_eq!(k, q.predict(x), "image {i}");
        wrong += usize::from(k != ds.label(i).unwrap());
    }
    assert_eq!(ev.errors(q, usize::MAX), wrong);
}

#[test]
fn batched_classes_equal_predict_on_dense_structured_and_normalised_networks() {
    let ds = demo();
    let fixtures = root().join("tests/fixtures/onnx");
    let nets = [
        onnx::import(&demo_model()).unwrap(),
        onnx::import(&fixtures.join("convnet_avgpool_28_op9.onnx")).unwrap(),
        onnx::import(&fixtures.join("convnet_maxpool_28_op9.onnx")).unwrap(),
        onnx::import(&fixtures.join("norm_mnist_scalar_op9.onnx")).unwrap(),
    ];
    for net in &nets {
        agree(net, net, &ds);
        for f in [1, 3, 8] {
            let q = Strategy::from_fracs(net, &vec![f; net.depth()])
                .unwrap()
                .apply(net)
                .unwrap();
            agree(net, &q, &ds);
        }
    }
}

#[test]
fn descent_proves_every_property_keeps_the_floor_and_never_beats_exact_on_mp2() {
    let Some(sh) = certquant::shared::shared_dir("models/quadapter") else {
        return;
    };
    let Some(mnist) = certquant::shared::shared_dir("data/mnist") else {
        return;
    };
    let net = onnx::import(&sh.join("mnist_2blk_100_100.onnx")).unwrap();
    let ds = data::load_dir(&mnist).unwrap();
    let props: Vec<Property> = (0..40)
        .filter_map(|id| {
            let p = Property {
                input: InputBox::linf_ball(ds.image(id).unwrap(), 2.0 / 255.0).unwrap(),
                output: OutputSpec::Robust {
                    label: ds.label(id).unwrap(),
                },
            };
            let ok = DeepPoly::run(&net, &p.input)
                .unwrap()
                .prove_output(p.output)
                .unwrap()
                .0;
            ok.then_some(p)
        })
        .take(5)
        .collect();
    let test = ds.subset(&(0..2000).collect::<Vec<_>>()).unwrap();
    let floor = accuracy(&net, &test) - 0.01;
    let exact_opts = SearchOptions {
        max_frac: 10,
        min_accuracy: Some(floor),
        ..SearchOptions::default()
    };
    let exact = search(&net, &props, Some(&test), &exact_opts).unwrap();
    let descent = search(
        &net,
        &props,
        Some(&test),
        &SearchOptions {
            method: SearchMethod::Descent,
            ..exact_opts
        },
    )
    .unwrap();
    let (se, sd) = (exact.strategy.unwrap(), descent.strategy.unwrap());
    let q = descent.qnn.unwrap();
    assert_eq!(q, sd.apply(&net).unwrap());
    for p in &props {
        let dp = DeepPoly::run(&q, &p.input).unwrap();
        assert!(dp.prove_output(p.output).unwrap().0);
    }
    // the floor, recomputed one image at a time
    let acc = accuracy(&q, &test);
    assert!(acc >= floor, "{acc} < {floor}");
    assert_eq!(descent.qnn_accuracy, Some(acc));
    assert_eq!(
        exact.qnn_accuracy,
        Some(accuracy(&exact.qnn.unwrap(), &test))
    );
    assert!(se.memory_bits(&net) <= sd.memory_bits(&net));
}

#[test]
fn cli_search_descent_and_bench_candidates() {
    let (m, d) = (demo_model(), demo_data());
    let (code, v) = run_json(&[
        "synth",
        "robustness",
        "--model",
        s(&m),
        "--data",
        s(&d),
        "--ids",
        "0,1,2",
        "--eps",
        "1/255",
        "--accuracy-data",
        s(&d),
        "--search",
        "descent",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["search"], "descent");
    assert_eq!(v["status"], "certified");
    assert!(v["qnn_accuracy"].as_f64().unwrap() >= v["min_accuracy"].as_f64().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.jsonl");
    let o = run(&[
        "bench",
        "candidates",
        "--model",
        s(&m),
        "--data",
        s(&d),
        "--ids",
        "0,1,2",
        "--eps",
        "1/255",
        "--n",
        "6",
        "--sample",
        "random",
        "--out",
        s(&out),
    ]);
    common::assert_success(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "summary");
    assert_eq!(last["mismatches"], 0);
    assert_eq!(last["scalar"]["tested"], 6);
    assert_eq!(last["batched"]["tested"], 6);
    // bad input: exit 2 with a message
    let o = run(&[
        "bench",
        "candidates",
        "--model",
        s(&m),
        "--data",
        s(&d),
        "--n",
        "0",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--n"));
}
