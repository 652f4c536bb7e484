//! `eval` and `verify`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use certquant::bounds::DeepPoly;
use certquant::spec::{InputBox, parse_eps};

use super::PointArgs;
use super::common::{Outcome, accuracy_of, input, load_data, load_model, print_json};

#[derive(Serialize)]
struct EvalReport {
    accuracy: f64,
    n: usize,
}

/// `certquant eval`: accuracy of the model's typed graph (every supported operator, also
/// those the proofs cannot take yet, such as `MaxPool`), each data vector read row-major
/// into the model's input shape.
pub fn eval(model: &Path, data: &Path, limit: Option<usize>, json: bool) -> Result<Outcome> {
    let g = certquant::onnx::import_graph(model)
        .with_context(|| format!("model {}", model.display()))?;
    let ds = certquant::data::load(data).with_context(|| format!("data {}", data.display()))?;
    if ds.dim() != g.input_len() {
        bail!(
            "data {} has inputs of size {}, but the model expects {} (input shape [N, {}])",
            data.display(),
            ds.dim(),
            g.input_len(),
            g.input_dims()
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (acc, n) = accuracy_of(|x| g.predict(x), &ds, limit)?;
    if json {
        print_json(&EvalReport { accuracy: acc, n })?;
    } else {
        println!("accuracy {:.4} on {n} inputs ({})", acc, model.display());
    }
    Ok(Outcome::Proven)
}

/// A local-robustness question about one input: the loaded model, the radius, the label to
/// keep, the prediction at the centre and the input box.
struct PointProperty {
    model: super::common::LoadedModel,
    eps: f64,
    label: usize,
    prediction: usize,
    input: InputBox,
}

/// Loads model and data and builds the robustness box of input `id` (shared by `verify` and
/// `attack`). The label defaults to the data set's, else the network's prediction.
fn point_property(
    model: &Path,
    data: &Path,
    id: usize,
    eps: &str,
    label: Option<usize>,
) -> Result<PointProperty> {
    let eps = parse_eps(eps)?;
    let m = load_model(model)?;
    let ds = load_data(data, &m.net)?;
    let x = input(&ds, id, data)?;
    let prediction = m.net.predict(x);
    let label = label.or(ds.label(id)).unwrap_or(prediction);
    if label >= m.net.output_dim() {
        bail!(
            "label {label} out of range: the model has {} outputs",
            m.net.output_dim()
        );
    }
    let input = InputBox::linf_ball(x, eps)?;
    Ok(PointProperty {
        model: m,
        eps,
        label,
        prediction,
        input,
    })
}

#[derive(Serialize)]
struct VerifyReport {
    verified: bool,
    id: usize,
    eps: f64,
    label: usize,
    prediction: usize,
    margin: f64,
    seconds: f64,
}

/// `certquant verify`: DeepPoly proof of local robustness.
pub fn verify(r: &PointArgs) -> Result<Outcome> {
    let PointProperty {
        model: m,
        eps,
        label,
        prediction,
        input: bx,
    } = point_property(&r.model, &r.data.data, r.id, &r.eps, r.label)?;
    let t = std::time::Instant::now();
    let dp = DeepPoly::run(&m.net, &bx)?;
    let margin = dp.robustness_margin(label)?;
    let seconds = t.elapsed().as_secs_f64();
    let verified = margin > 0.0;
    if r.json {
        print_json(&VerifyReport {
            verified,
            id: r.id,
            eps,
            label,
            prediction,
            margin,
            seconds,
        })?;
    } else {
        println!(
            "id {} eps {} label {label} prediction {prediction}: {} (margin {margin:.6}, {:.1} ms)",
            r.id,
            r.eps,
            if verified { "VERIFIED" } else { "not verified" },
            seconds * 1e3
        );
    }
    Ok(if verified {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}

#[derive(Serialize)]
struct AttackReport {
    counterexample_found: bool,
    id: usize,
    eps: f64,
    label: usize,
    counterexample_prediction: Option<usize>,
    seconds: f64,
}

/// `certquant attack`: random sampling, box corners and PGD inside the box.
/// Exit 0 when no counterexample is found, 1 when one is (it is printed with --json).
pub fn attack(r: &PointArgs, seed: u64) -> Result<Outcome> {
    use certquant::attack::{AttackOptions, find_counterexample};
    use certquant::spec::{OutputSpec, Property};
    let p = point_property(&r.model, &r.data.data, r.id, &r.eps, r.label)?;
    let (m, eps, label) = (&p.model, p.eps, p.label);
    let prop = Property {
        input: p.input.clone(),
        output: OutputSpec::Robust { label },
    };
    let t = std::time::Instant::now();
    let opts = AttackOptions {
        seed,
        ..AttackOptions::default()
    };
    let cx = find_counterexample(&m.net, &prop, &opts);
    let report = AttackReport {
        counterexample_found: cx.is_some(),
        id: r.id,
        eps,
        label,
        counterexample_prediction: cx.as_ref().map(|p| m.net.predict(p)),
        seconds: t.elapsed().as_secs_f64(),
    };
    if r.json {
        print_json(&report)?;
    } else if let Some(p) = report.counterexample_prediction {
        println!(
            "id {} eps {}: COUNTEREXAMPLE found (predicted {p}, label {label})",
            r.id, r.eps
        );
    } else {
        println!(
            "id {} eps {}: no counterexample found ({:.2} s)",
            r.id, r.eps, report.seconds
        );
    }
    Ok(if cx.is_some() {
        Outcome::NotProven
    } else {
        Outcome::Proven
    })
}
