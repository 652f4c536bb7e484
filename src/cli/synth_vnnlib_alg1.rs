//! The Algorithm-1 route of `synth robustness --vnnlib …` (docs/method.md eqs. (77), (78)).
//!
//! When every file is robustness-shaped ([`certquant::robust_query`]), its regions are plain
//! robustness properties `Property { box, Robust { L } }`. A region DeepPoly cannot prove on
//! the float network in one box is decided by input splitting (`verify_query`), and the
//! leaves' boxes of its proof replace it (each leaf is proven by DeepPoly alone, eq. (78)).
//! Then:
//! * one property in all: Algorithm 1 (`synthesize`: preimages χ per layer, forward search,
//!   `--method paper|guided`, `--preimage`, `--relaxed`), exactly as `--data --id`;
//! * several (files, boxes or leaves): the property-set search of `--ids`
//!   (`--search auto|exact|descent`, accuracy floor from `--accuracy-data`).
//!
//! Either way the chosen QNN then gets the **final proof** of today's route: `verify_query` on
//! the QNN as the checker reads it back, for every kept file. Only if every file holds is the
//! answer `certified`, and the certificate (`vnnlib` / `vnnlib_set`, split trees per file) is
//! written and re-checked by the independent checker.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use certquant::floor::AccuracyFloor;
use certquant::milp::cbc::Cbc;
use certquant::model::Network;
use certquant::quantize::Strategy;
use certquant::quantize_query::{Passing, QueryStatus};
use certquant::search::{SearchMethod, SearchOptions, search};
use certquant::spec::Property;
use certquant::split::{SplitOptions, Verdict, verify_query};
use certquant::synth::{SynthStatus, synthesize};
use certquant::vnnlib::Query;
use certquant_synth::deadline::Deadline;
use certquant_synth::multipliers::LpMultipliers;

use super::common::{LoadedModel, accuracy};
use super::set::{SearchArg, search_method};
use super::synth::synth_options;
use super::synth_vnnlib_set::{SetFileReport, SynthVnnlibSetReport, VnnlibSetRequest};
use super::{MethodArg, SemanticsArg};

/// The robustness properties of every file, or the first file's reason for not being one.
pub fn recognise(files: &[PathBuf], queries: &[Query]) -> Result<Vec<Vec<Property>>, String> {
    files
        .iter()
        .zip(queries)
        .map(|(f, q)| {
            certquant::robust_query::robust_properties(q)
                .map_err(|e| format!("{}: {e}", f.display()))
        })
        .collect()
}

/// Split options for float and final proofs under the request's budget (90 % of
/// `--timeout`, docs/method.md eq. (81)).
fn split_opts(r: &VnnlibSetRequest, start: Instant) -> SplitOptions {
    SplitOptions {
        max_splits: r.max_splits,
        deadline: Deadline::from_timeout(start, r.timeout, PROOF_SHARE).instant(),
        ..SplitOptions::default()
    }
}

/// Share of `--timeout` for the proofs (the float decision and the final proof on the QNN);
/// the rest is for the outputs (accuracy, attack, certificate and its re-check).
const PROOF_SHARE: f64 = 0.9;

/// Share of `--timeout` for the synthesis itself (Algorithm 1 or the property-set search):
/// it ends earlier than the proofs' share so that the best point found still gets its final
/// proof (docs/method.md eq. (81)).
const SEARCH_SHARE: f64 = 0.75;

/// Runs the Algorithm-1 route (module documentation) on recognised files; the report has the
/// shape of today's route, with `route` and `chi` filled in.
#[allow(clippy::too_many_arguments)]
pub fn run(
    r: &VnnlibSetRequest,
    m: &LoadedModel,
    files: &[PathBuf],
    queries: &[Query],
    props: Vec<Vec<Property>>,
    data: Option<&certquant::data::Dataset>,
    start: Instant,
) -> Result<(SynthVnnlibSetReport, Option<Passing>, Vec<usize>)> {
    r.opts.ensure_finite()?;
    if r.opts.semantics != SemanticsArg::Real {
        anyhow::bail!("--vnnlib certifies under the real semantics only");
    }
    let net = &m.net;
    let split = split_opts(r, start);
    let proposer = LpMultipliers(&Cbc);
    let mut report = SynthVnnlibSetReport {
        status: QueryStatus::Unknown,
        files: Vec::with_capacity(files.len()),
        layers: Vec::new(),
        memory_bits: None,
        float_accuracy: data.map(|d| certquant::search::accuracy(net, d)),
        qnn_accuracy: None,
        candidates: 0,
        seconds: 0.0,
        attack_counterexample: None,
        note: String::new(),
        qnn_model: None,
        certificate: None,
        certificate_valid: None,
        route: "algorithm1".into(),
        chi: Vec::new(),
        properties: 0,
    };
    // 1. per file: the regions DeepPoly proves on the float network in one box, else the
    //    leaves of the split proof (or the file's float status when it does not hold)
    let mut kept = Vec::new();
    let mut set: Vec<Property> = Vec::new();
    for (i, (f, ps)) in files.iter().zip(props).enumerate() {
        let one_box = ps.iter().all(|p| deeppoly_proves(net, p, &proposer));
        let mut row = SetFileReport {
            file: f.display().to_string(),
            float: "holds".into(),
            certified: false,
            float_splits: 0,
            qnn_splits: None,
            note: String::new(),
        };
        if one_box {
            set.extend(ps);
            kept.push(i);
        } else {
            let v = verify_query(net, &queries[i], &proposer, &split)?;
            row.float_splits = v.splits;
            match (&v.verdict, &v.proof) {
                (Verdict::Holds, Some(proof)) => {
                    let labels: Vec<_> = ps.iter().map(|p| p.output).collect();
                    for (region, tree) in proof.iter().enumerate() {
                        for n in tree.nodes.iter().filter(|n| n.split.is_none()) {
                            set.push(Property {
                                input: certquant::spec::InputBox::new(n.lo.clone(), n.hi.clone())?,
                                output: labels[region],
                            });
                        }
                    }
                    row.note = format!("input splitting: {} leaf box(es)", v.leaves);
                    kept.push(i);
                }
                (Verdict::Violated(cx), _) => {
                    row.float = "violated".into();
                    row.note = format!(
                        "counterexample on the float network (region {}, disjunct {}, margin {:e})",
                        cx.region, cx.disjunct, cx.margin
                    );
                }
                (Verdict::Timeout, _) => {
                    row.float = "timeout".into();
                    row.note = "the time budget ran out".into();
                }
                _ => {
                    row.float = "unknown".into();
                    row.note = v.note.clone();
                }
            }
        }
        report.files.push(row);
    }
    report.properties = set.len();
    if set.is_empty() {
        report.note = "no property holds on the float network".into();
        return Ok((report, None, kept));
    }
    // 2. Algorithm 1 on one property, the set search on several, both under the search's
    //    share of the budget (eqs. (81), (82))
    let deadline = Deadline::from_timeout(start, r.timeout, SEARCH_SHARE);
    let (strategy, qnn) = if set.len() == 1 {
        let prop = &set[0];
        let mut sopts = synth_options(r.opts);
        sopts.deadline = deadline;
        if let Some(d) = data
            && r.opts.method == MethodArg::Guided
        {
            sopts.accuracy_floor = Some(
                AccuracyFloor::new(net, std::sync::Arc::new(d.clone()), r.max_acc_drop)
                    .with_deadline(deadline),
            );
        }
        let o = synthesize(net, prop, &prop.input.center(), &Cbc, &sopts)?;
        report.chi = o.preimages.iter().map(|p| p.chi).collect();
        report.candidates = o.deeppoly_calls;
        report.note = match o.status {
            SynthStatus::Certified => String::new(),
            SynthStatus::Timeout => {
                "the time budget ran out during Algorithm 1 (timeout): nothing certified".into()
            }
            s => format!("Algorithm 1 ended with {s:?}"),
        };
        (o.strategy, o.qnn)
    } else {
        report.route = "set-search".into();
        let method = search_method(r.search, net.depth());
        let min_accuracy = report.float_accuracy.map(|a| a - r.max_acc_drop / 100.0);
        let opts = SearchOptions {
            min_frac: r.opts.min_frac.unwrap_or(1),
            max_frac: r.opts.max_frac,
            min_accuracy,
            method: match method {
                SearchArg::Descent => SearchMethod::Descent,
                _ => SearchMethod::Exact,
            },
            deadline,
            ..SearchOptions::default()
        };
        let o = search(net, &set, data, &opts)?;
        report.candidates = o.candidates;
        report.note = match (&o.strategy, o.timed_out) {
            (None, false) => "the property-set search found no strategy".into(),
            (None, true) => {
                "the time budget ran out during the property-set search (timeout): no strategy proven".into()
            }
            (Some(_), true) => {
                "the time budget ran out during the property-set search: the best strategy proven so far".into()
            }
            (Some(_), false) => String::new(),
        };
        (o.strategy, o.qnn)
    };
    let (Some(strategy), Some(qnn)) = (strategy, qnn) else {
        return Ok((report, None, kept));
    };
    // 3. the final proof on the QNN the checker reads back, file by file
    let Some(pass) = final_proof(strategy, &qnn, &kept, queries, &split, &mut report)? else {
        return Ok((report, None, kept));
    };
    report.status = QueryStatus::Certified;
    report.layers = pass.strategy.0.clone();
    report.memory_bits = Some(pass.strategy.memory_bits(net));
    if let Some(d) = data {
        report.qnn_accuracy = Some(accuracy(&pass.qnn, d, None)?.0);
    }
    Ok((report, Some(pass), kept))
}

/// Whether DeepPoly (with LP multipliers) proves `p` on `net` in one box.
fn deeppoly_proves(net: &Network, p: &Property, proposer: &LpMultipliers<'_>) -> bool {
    certquant::bounds::DeepPoly::run(net, &p.input)
        .ok()
        .and_then(|dp| certquant::bounds::prove_property(&dp, p.output, proposer).ok())
        .is_some_and(|o| o.proven)
}

/// `verify_query` on the QNN for every kept file: `Some` (the passing point, with the split
/// trees the certificate records) iff all hold; otherwise the report says which did not.
fn final_proof(
    strategy: Strategy,
    qnn: &Network,
    kept: &[usize],
    queries: &[Query],
    split: &SplitOptions,
    report: &mut SynthVnnlibSetReport,
) -> Result<Option<Passing>> {
    let qnn_bytes = certquant::onnx::export_bytes(qnn)?;
    let back = certquant::onnx::import_bytes(&qnn_bytes)?;
    if &back != qnn {
        report.note = "internal: the QNN does not read back from ONNX unchanged".into();
        return Ok(None);
    }
    let proposer = LpMultipliers(&Cbc);
    let mut proofs = Vec::with_capacity(kept.len());
    let mut outcomes = Vec::with_capacity(kept.len());
    for &i in kept {
        let v = verify_query(&back, &queries[i], &proposer, split)?;
        match (&v.verdict, &v.proof) {
            (Verdict::Holds, Some(p)) => {
                report.files[i].certified = true;
                report.files[i].qnn_splits = Some(v.splits);
                proofs.push(p.clone());
                outcomes.push(v);
            }
            _ => {
                for f in &mut report.files {
                    f.certified = false;
                }
                report.note = format!(
                    "the final split proof on the chosen QNN does not hold for {} ({}): not certified",
                    report.files[i].file,
                    match v.verdict {
                        Verdict::Holds => "no proof tree",
                        Verdict::Violated(_) => "violated",
                        Verdict::Unknown => "unknown",
                        Verdict::Timeout => "timeout",
                    }
                );
                return Ok(None);
            }
        }
    }
    let fracs = strategy.0.iter().map(|c| c.frac()).collect();
    Ok(Some(Passing {
        fracs,
        strategy,
        qnn: back,
        qnn_bytes,
        proofs,
        outcomes,
    }))
}
