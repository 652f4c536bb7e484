//! `certquant demo`: the main job on the embedded demo network (a small MLP trained by
//! `certquant train` on Fashion-MNIST, © Zalando SE, MIT licence) and 20 embedded test images.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use certquant::bounds::DeepPoly;
use certquant::data::idx_pair_from_bytes;
use certquant::onnx;
use certquant::spec::{InputBox, parse_eps};
use certquant::synth::SynthStatus;

use super::common::{LoadedModel, Outcome, accuracy, print_json};
use super::synth::{RobustnessReport, Task, print_table, run_task};
use super::{MethodArg, PreimageArg, SemanticsArg, SynthOpts, TemplateArg};

/// The embedded demo network (ONNX, Gemm/Relu form).
pub const DEMO_MODEL: &[u8] = include_bytes!("../../assets/demo/fashion_mlp.onnx");
const DEMO_IMAGES: &[u8] = include_bytes!("../../assets/demo/t10k-images-idx3-ubyte");
const DEMO_LABELS: &[u8] = include_bytes!("../../assets/demo/t10k-labels-idx1-ubyte");
const DEMO_EPS: &str = "1/255";

#[derive(Serialize)]
struct VerifyRow {
    id: usize,
    label: usize,
    prediction: usize,
    verified: bool,
    margin: f64,
}

#[derive(Serialize)]
struct DemoReport {
    model_layers: Vec<usize>,
    accuracy_on_demo_images: f64,
    eps: String,
    verify: Vec<VerifyRow>,
    synth: Vec<RobustnessReport>,
    certificate_check_valid: Option<bool>,
    backdoor: super::backdoor::BackdoorReport,
    backdoor_certificate_check_valid: Option<bool>,
    integer: Option<IntegerStep>,
}

/// Step 5 of the demo: the integer-only program (docs/method.md §17), certified, re-checked and
/// exported.
#[derive(Serialize)]
struct IntegerStep {
    /// The synthesis under `--semantics integer`.
    report: RobustnessReport,
    /// The independent check of its certificate.
    check_valid: Option<bool>,
    /// The exported C pair and integer ONNX model (when certified).
    exports: Vec<String>,
    /// Accuracy of the integer program on the 20 embedded images (ties count as errors).
    accuracy: Option<f64>,
}

/// The demo's synthesis options: the defaults, a 60 s MILP limit, and attacks on every QNN.
fn demo_opts(relaxed: bool) -> SynthOpts {
    SynthOpts {
        relaxed,
        min_frac: None,
        max_frac: 16,
        template: TemplateArg::Code,
        preimage: PreimageArg::Fast,
        chi_max: certquant_synth::preimage::CHI_MAX_DEFAULT,
        time_limit: Some(60.0),
        gap: 0.0,
        attack: true,
        relaxed_time_limit: 10.0,
        carry_rejections: false,
        method: MethodArg::Paper,
        guided_max_drop: 1.0,
        solver_param: Vec::new(),
        dump_mps: None,
        semantics: SemanticsArg::Real,
        acc_bits: 32,
        act_max_frac: 16,
    }
}

/// Runs the demo.
pub fn demo(out: &Path, json: bool) -> Result<Outcome> {
    let net = onnx::import_bytes(DEMO_MODEL).context("embedded demo model")?;
    let model = LoadedModel {
        net,
        bytes: DEMO_MODEL.to_vec(),
    };
    let ds = idx_pair_from_bytes(DEMO_IMAGES, DEMO_LABELS, "embedded demo images")?;
    let mut sizes = vec![model.net.input_dim()];
    sizes.extend(model.net.layers().iter().map(|l| l.outputs()));
    let (acc, n) = accuracy(&model.net, &ds, None)?;
    if !json {
        println!(
            "certquant demo — a {sizes:?} ReLU network trained by `certquant train` on Fashion-MNIST"
        );
        println!(
            "(Fashion-MNIST © Zalando SE, MIT licence); {n} embedded test images, accuracy {acc:.3}\n"
        );
        println!("1. DeepPoly robustness proofs at eps = {DEMO_EPS} on the float network:");
    }
    let eps = parse_eps(DEMO_EPS)?;
    let mut verify = Vec::new();
    for id in 0..ds.len() {
        let x = ds.image(id).context("demo image")?;
        let label = ds.label(id).context("demo label")?;
        let bx = InputBox::linf_ball(x, eps)?;
        let dp = DeepPoly::run(&model.net, &bx)?;
        let margin = dp.robustness_margin(label)?;
        verify.push(VerifyRow {
            id,
            label,
            prediction: model.net.predict(x),
            verified: margin > 0.0,
            margin,
        });
    }
    if !json {
        let proven: Vec<String> = verify
            .iter()
            .filter(|r| r.verified)
            .map(|r| r.id.to_string())
            .collect();
        println!(
            "   proven for {} of {} images (ids {})\n",
            proven.len(),
            verify.len(),
            proven.join(" ")
        );
    }
    // Synthesis on the first three proven images: strict mode, and relaxed for the first.
    let ids: Vec<usize> = verify
        .iter()
        .filter(|r| r.verified)
        .map(|r| r.id)
        .take(3)
        .collect();
    let mut reports = Vec::new();
    let mut wrote = false;
    for (i, &id) in ids.iter().enumerate() {
        for relaxed in [false, true] {
            if relaxed && i > 0 {
                continue;
            }
            let opts = demo_opts(relaxed);
            let task = Task {
                model: &model,
                model_path: Path::new("<embedded demo model>"),
                ds: &ds,
                data_path: Path::new("<embedded demo images>"),
                id,
                eps_text: DEMO_EPS,
                given_chi: None,
            };
            let write_here = (!wrote).then_some(out);
            let (report, outcome) = run_task(&task, &opts, true, write_here)?;
            if report.status == SynthStatus::Certified && write_here.is_some() {
                wrote = true;
            }
            if !json {
                println!(
                    "2. Certified quantization ({} mode), image {id}:",
                    if relaxed { "relaxed" } else { "strict" }
                );
                print_table(&report, &outcome);
                println!();
            }
            reports.push(report);
        }
    }
    // 3. Independent re-check of the written certificate (shares no bound code with synthesis).
    let mut check_valid = None;
    if wrote {
        let cert = certquant::check::read_certificate(&out.join("certificate.json"))?;
        let (qnn, qnn_bytes) = certquant::check::read_model(&out.join("qnn.onnx"))?;
        let report =
            certquant::check::check_certificate(&cert, &model.net, &model.bytes, &qnn, &qnn_bytes);
        if !json {
            println!(
                "3. Independent check of {}/certificate.json: {}{}",
                out.display(),
                if report.valid { "VALID" } else { "INVALID" },
                report
                    .properties
                    .first()
                    .map(|p| format!(" (re-proven margin {:.5})", p.margin))
                    .unwrap_or_default()
            );
            for r in &report.reasons {
                println!("   {r}");
            }
        }
        check_valid = Some(report.valid);
    }
    // 4. Backdoor-freeness (Algorithm 2) for one trigger and target. With only 20 embedded
    // images the rounds use K = 2 (the paper's K = 5 needs at least 60 images).
    let bd_dir = out.join("backdoor");
    let bd_args = super::backdoor::BackdoorArgs {
        target: 0,
        trigger_size: 3,
        trigger_pos: "10,10".into(),
        timeout: None,
        sprt: super::backdoor::SprtArgs {
            k: 2,
            theta: 0.9,
            chi_threshold: 0.01,
            type1: 0.05,
            type2: 0.05,
            delta: 0.05,
            seed: 1,
            max_rounds: 10,
            no_screen: false,
        },
    };
    let bd_task = super::backdoor::BackdoorTask {
        model: &model,
        model_path: Path::new("<embedded demo model>"),
        ds: &ds,
        data_path: Path::new("<embedded demo images>"),
    };
    let bd_opts = demo_opts(false);
    let (bd, _) =
        super::backdoor::run_backdoor(&bd_task, &bd_args, &bd_opts, Some(&bd_dir), &mut |_, _| {})?;
    let mut bd_check = None;
    if let Some(c) = &bd.certificate {
        let cert = certquant::check::read_certificate(Path::new(c))?;
        let (qnn, qnn_bytes) = certquant::check::read_model(&bd_dir.join("qnn.onnx"))?;
        let r =
            certquant::check::check_certificate(&cert, &model.net, &model.bytes, &qnn, &qnn_bytes);
        bd_check = Some(r.valid);
    }
    if !json {
        println!(
            "\n4. Backdoor-freeness (Algorithm 2): no 3×3 patch at row 10, column 10 may make class 0 win"
        );
        println!(
            "   SPRT with K = 2 (20 embedded images): {} rounds, {} successes → {}",
            bd.rounds,
            bd.successes,
            match bd.hypothesis {
                Some(certquant::sprt::Hypothesis::H0) => "H0 (no backdoor)",
                Some(certquant::sprt::Hypothesis::H1) => "H1 (a backdoor may exist)",
                None => "undecided",
            }
        );
        if !bd.layers.is_empty() {
            let cfgs: Vec<String> = bd
                .layers
                .iter()
                .map(|c| format!("⟨{},{}⟩", c.total(), c.frac()))
                .collect();
            println!(
                "   shared strategy {} proven for the {} kept images; certificate check: {}",
                cfgs.join(" "),
                bd.kept_ids.len(),
                match bd_check {
                    Some(true) => "VALID",
                    Some(false) => "INVALID",
                    None => "—",
                }
            );
        }
    }
    // 5. The integer-only program a device runs: the first proven image under
    // `--semantics integer`, re-checked and exported as C and integer ONNX.
    let integer = match ids.first() {
        Some(&id) => Some(integer_step(&model, &ds, id, &out.join("integer"), json)?),
        None => None,
    };
    let all_certified = !reports.is_empty()
        && reports.iter().all(|r| r.status == SynthStatus::Certified)
        && integer
            .as_ref()
            .is_some_and(|i| i.check_valid == Some(true))
        && check_valid != Some(false)
        && bd.status == certquant::backdoor::BackdoorStatus::Certified
        && bd_check == Some(true);
    if json {
        print_json(&DemoReport {
            model_layers: sizes,
            accuracy_on_demo_images: acc,
            eps: DEMO_EPS.to_string(),
            verify,
            synth: reports,
            certificate_check_valid: check_valid,
            backdoor: bd,
            backdoor_certificate_check_valid: bd_check,
            integer,
        })?;
    } else if wrote {
        println!(
            "\nThe quantized networks and their certificates are in {}/ and {}/ (qnn.onnx, certificate.json);\nre-check them any time with: certquant check --certificate {}/certificate.json",
            out.display(),
            bd_dir.display(),
            out.display()
        );
    }
    Ok(if all_certified {
        Outcome::Proven
    } else {
        Outcome::NotProven
    })
}

/// Step 5: `synth robustness --semantics integer` on demo image `id`, written to `dir`, its
/// certificate re-checked, and the proven program exported to `dir/c/qnn.{h,c}` and
/// `dir/qnn_int.onnx`.
fn integer_step(
    model: &LoadedModel,
    ds: &certquant::data::Dataset,
    id: usize,
    dir: &Path,
    json: bool,
) -> Result<IntegerStep> {
    let mut opts = demo_opts(false);
    opts.semantics = SemanticsArg::Integer;
    let task = Task {
        model,
        model_path: Path::new("<embedded demo model>"),
        ds,
        data_path: Path::new("<embedded demo images>"),
        id,
        eps_text: DEMO_EPS,
        given_chi: None,
    };
    let (report, outcome) = run_task(&task, &opts, true, Some(dir))?;
    let mut step = IntegerStep {
        report,
        check_valid: None,
        exports: Vec::new(),
        accuracy: None,
    };
    if let Some(c) = &step.report.certificate {
        let cert_bytes = std::fs::read(c).with_context(|| format!("cannot read {c}"))?;
        let cert = certquant::check::read_certificate(Path::new(c))?;
        let (qnn, qnn_bytes) = certquant::check::read_model(&dir.join("qnn.onnx"))?;
        let r =
            certquant::check::check_certificate(&cert, &model.net, &model.bytes, &qnn, &qnn_bytes);
        step.check_valid = Some(r.valid);
        let certquant::semantics::Semantics::Integer(sem) = &cert.semantics else {
            anyhow::bail!("the integer step wrote a certificate of another semantics")
        };
        let program = certquant::semantics::IntProgram::new(&qnn, &cert.strategy, sem)?;
        step.accuracy = Some(certquant::activations::integer_accuracy(&program, ds));
        let provenance = certquant::deploy::Provenance {
            qnn_sha256: certquant::certificate::sha256_hex(&qnn_bytes),
            certificate_sha256: Some(certquant::certificate::sha256_hex(&cert_bytes)),
        };
        let c_dir = dir.join("c");
        std::fs::create_dir_all(&c_dir)
            .with_context(|| format!("cannot create {}", c_dir.display()))?;
        let e = certquant::deploy::c::export_c(&program, "qnn", &provenance)?;
        for (file, text) in [("qnn.h", &e.header), ("qnn.c", &e.source)] {
            let p = c_dir.join(file);
            std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
            step.exports.push(p.display().to_string());
        }
        let p = dir.join("qnn_int.onnx");
        std::fs::write(&p, onnx::export_int_bytes(&program, &provenance)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        step.exports.push(p.display().to_string());
    }
    if !json {
        println!("\n5. Integer-only inference (--semantics integer), image {id}:");
        print_table(&step.report, &outcome);
        if let Some(a) = step.accuracy {
            println!(
                "   certificate check: {}; integer program accuracy on the embedded images {:.3}",
                match step.check_valid {
                    Some(true) => "VALID",
                    Some(false) => "INVALID",
                    None => "—",
                },
                a
            );
            println!("   exported (bit-exact): {}", step.exports.join(", "));
        }
    }
    Ok(step)
}
