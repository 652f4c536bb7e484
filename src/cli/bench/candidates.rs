//! `certquant bench candidates` (issue 16): how many candidate strategies per second the
//! property-set search can test, with the old one-image-at-a-time accuracy and with the batched
//! one ([`certquant::batch`], docs/method.md eqs. (61)–(62)), on the same candidates in one run.
//!
//! A candidate test is what the search does per point of the lattice: DeepPoly proofs of the
//! properties hardest first (stopping at the first failure) and the accuracy floor. The old
//! test proves first and then computes the full accuracy ([`certquant::search::accuracy`]);
//! the new one checks the floor first with the batched evaluator (early rejection, cached
//! prefixes) and proves after. Both give the same verdict on every candidate (checked and
//! recorded); the batched error count is compared with the scalar one on every candidate.
//! A third test is the new one with DeepPoly's state reused for the layers a candidate
//! shares with the previous one ([`certquant::bounds::reuse`], eq. (72)); its margins are
//! compared bit for bit with the cold runs' where both ran.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use certquant::bench::parse_ids;
use certquant::bounds::{DeepPoly, PrefixCache};
use certquant::floor::AccuracyFloor;
use certquant::model::Network;
use certquant::quantize::Strategy;
use certquant::search::memory_order;
use certquant::spec::{InputBox, OutputSpec, Property, parse_eps};

use super::super::common::{Outcome, load_data, load_model};

/// Which candidates to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sample {
    /// The first N of the exact search's memory order (what it tests first).
    Memory,
    /// N uniform random fractional-width vectors in B_l..=B_u (seeded).
    Random,
    /// A seeded random walk from F = B_u on every layer, one layer set to a random width per
    /// step (the moves of the descent search: consecutive candidates share a layer prefix).
    Walk,
}

/// Which candidate test(s) to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PathArg {
    /// All three, on the same candidates (the default).
    Both,
    /// The old test only (proofs, then the full one-image-at-a-time accuracy).
    Scalar,
    /// The new test only (batched floor first, then proofs).
    Batched,
    /// The new test with DeepPoly prefixes reused across candidates only.
    Reuse,
}

/// Arguments of `certquant bench candidates`.
#[derive(Debug, Args)]
pub struct BenchCandidatesArgs {
    /// ONNX model (float).
    #[arg(long)]
    model: PathBuf,
    /// Labelled data (IDX directory or .npy): property inputs and the accuracy floor.
    #[arg(long)]
    data: PathBuf,
    /// Property ids: a file or a comma-separated list (those DeepPoly cannot prove on the
    /// float network are left out).
    #[arg(
        long,
        default_value = "5346,8564,7059,371,6984,5782,2127,8517,4520,8685"
    )]
    ids: String,
    /// L∞ radius.
    #[arg(long, default_value = "2/255")]
    eps: String,
    /// Number of candidates.
    #[arg(long, default_value_t = 50)]
    n: usize,
    /// Which candidates.
    #[arg(long, value_enum, default_value_t = Sample::Memory)]
    sample: Sample,
    /// Seed of `--sample random`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Smallest and largest fractional width.
    #[arg(long, default_value_t = 1)]
    min_frac: u32,
    #[arg(long, default_value_t = 16)]
    max_frac: u32,
    /// Largest accuracy drop of the floor, percentage points.
    #[arg(long, default_value_t = 1.0)]
    max_acc_drop: f64,
    /// Accuracy evaluations alone (old full count, old floor, batched count, batched floor)
    /// are timed on the first this many candidates (each also compares the two counts).
    #[arg(long, default_value_t = 50)]
    acc_n: usize,
    /// Which test(s) to time.
    #[arg(long, value_enum, default_value_t = PathArg::Both)]
    path: PathArg,
    /// JSONL output: one line per candidate and test, then one summary line per test.
    #[arg(long)]
    out: PathBuf,
}

/// `certquant bench candidates`.
pub fn candidates(a: &BenchCandidatesArgs) -> Result<Outcome> {
    let eps = parse_eps(&a.eps)?;
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    if a.min_frac == 0 || a.min_frac > a.max_frac || a.max_frac > 40 {
        bail!("--min-frac/--max-frac must satisfy 1 ≤ min ≤ max ≤ 40");
    }
    if !(a.max_acc_drop.is_finite() && a.max_acc_drop >= 0.0) {
        bail!("--max-acc-drop must be a non-negative number of percentage points");
    }
    let model = load_model(&a.model)?;
    let net = &model.net;
    let ds = load_data(&a.data, net)?;
    if !ds.has_labels() {
        bail!(
            "{}: the accuracy floor needs labelled data",
            a.data.display()
        );
    }
    let ids = parse_ids(&a.ids)?;
    // properties DeepPoly proves on the float network, hardest (smallest margin) first
    let mut props: Vec<(f64, Property)> = Vec::new();
    for &id in &ids {
        let x = super::super::common::input(&ds, id, &a.data)?;
        let label = ds.label(id).unwrap_or_else(|| net.predict(x));
        let p = Property {
            input: InputBox::linf_ball(x, eps)?,
            output: OutputSpec::Robust { label },
        };
        let (ok, m) = DeepPoly::run(net, &p.input)?.prove_output(p.output)?;
        if ok {
            props.push((m, p));
        }
    }
    props.sort_by(|x, y| x.0.total_cmp(&y.0));
    let props: Vec<Property> = props.into_iter().map(|(_, p)| p).collect();
    let cands: Vec<Vec<u32>> = match a.sample {
        Sample::Memory => memory_order(net, a.min_frac, a.max_frac)
            .take(a.n)
            .collect(),
        Sample::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
            (0..a.n)
                .map(|_| {
                    (0..net.depth())
                        .map(|_| rng.random_range(a.min_frac..=a.max_frac))
                        .collect()
                })
                .collect()
        }
        Sample::Walk => {
            let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
            let mut cur = vec![a.max_frac; net.depth()];
            (0..a.n)
                .map(|_| {
                    let k = rng.random_range(0..net.depth());
                    cur[k] = rng.random_range(a.min_frac..=a.max_frac);
                    cur.clone()
                })
                .collect()
        }
    };
    let data = Arc::new(ds);
    let t = Instant::now();
    let floor = AccuracyFloor::new(net, data.clone(), a.max_acc_drop);
    let setup = t.elapsed().as_secs_f64();
    let scalar_floor = floor.clone().scalar();
    // the reuse path gets its own batched evaluator (own cache of layer products), so that
    // its accuracy times are those of a search that runs it alone
    let floor_reuse = AccuracyFloor::new(net, data.clone(), a.max_acc_drop);
    let mut out = std::fs::File::create(&a.out)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let mut totals = [Totals::default(), Totals::default(), Totals::default()];
    let mut mismatches = 0usize;
    let cache = PrefixCache::new(props.len());
    let names = ["scalar", "batched", "reuse"];
    for fr in &cands {
        let q = Strategy::from_fracs(net, fr)?.apply(net)?;
        let mut verdicts = [None, None, None];
        let mut margins: [Option<Vec<u64>>; 3] = [None, None, None];
        for k in 0..3 {
            let wanted = match a.path {
                PathArg::Both => true,
                PathArg::Scalar => k == 0,
                PathArg::Batched => k == 1,
                PathArg::Reuse => k == 2,
            };
            if !wanted {
                continue;
            }
            let r = match k {
                0 => old_test(&q, &props, &scalar_floor)?,
                1 => new_test(&q, &props, &floor, None)?,
                _ => new_test(&q, &props, &floor_reuse, Some(&cache))?,
            };
            totals[k].add(&r);
            verdicts[k] = Some(r.passes);
            margins[k] = Some(r.margins.clone());
            writeln!(
                out,
                "{}",
                json!({
                    "kind": "candidate", "path": names[k],
                    "fracs": fr, "passes": r.passes, "proven": r.proven,
                    "deeppoly_runs": r.deeppoly, "deeppoly_s": r.dp_s,
                    "accuracy_evaluated": r.acc_evaluated, "accuracy_s": r.acc_s,
                })
            )?;
        }
        let v: Vec<bool> = verdicts.iter().flatten().copied().collect();
        if v.windows(2).any(|w| w[0] != w[1]) {
            mismatches += 1;
        }
        // the margins proven with and without reuse, bit for bit (the common prefix of
        // properties both tried)
        if let [_, Some(x), Some(y)] = &margins
            && x.iter().zip(y).any(|(p, q)| p != q)
        {
            mismatches += 1;
        }
    }
    // accuracy evaluations alone, every candidate: the old full count against the batched one
    // (exact count and early-rejecting floor)
    let mut acc = AccTimes::default();
    if a.path == PathArg::Both {
        for fr in cands.iter().take(a.acc_n) {
            let q = Strategy::from_fracs(net, fr)?.apply(net)?;
            let t = Instant::now();
            let old = scalar_floor.errors(&q, usize::MAX);
            acc.scalar_full += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let _ = scalar_floor.admits(&q);
            acc.scalar_floor += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let new = floor.errors(&q, usize::MAX);
            acc.batched_full += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let _ = floor.admits(&q);
            acc.batched_floor += t.elapsed().as_secs_f64();
            if old != new {
                mismatches += 1;
            }
        }
    }
    let stats = floor.batch().map(|b| b.stats()).unwrap_or_default();
    let n = cands.len() as f64;
    let acc_n = cands.len().min(a.acc_n) as f64;
    let per_s = |s: f64| if s > 0.0 { acc_n / s } else { f64::INFINITY };
    let summary = json!({
        "kind": "summary",
        "model": a.model.display().to_string(),
        "candidates": cands.len(),
        "sample": format!("{:?}", a.sample).to_lowercase(),
        "properties": props.len(),
        "eps": a.eps,
        "float_accuracy": floor.float_accuracy(),
        "max_errors": floor.max_errors(),
        "batched_setup_s": setup,
        "threads": rayon::current_num_threads(),
        "scalar": totals[0].json(n),
        "batched": totals[1].json(n),
        "reuse": totals[2].json(n),
        "candidate_test_speedup": totals[0].seconds() / totals[1].seconds(),
        "reuse_speedup_over_batched": totals[1].seconds() / totals[2].seconds(),
        "reuse_speedup_over_scalar": totals[0].seconds() / totals[2].seconds(),
        "deeppoly_layers_reused": cache.stats().layers_reused,
        "deeppoly_layers_computed": cache.stats().layers_computed,
        "prefix_cache_bytes": cache.state_bytes(),
        "accuracy_candidates": cands.len().min(a.acc_n),
        "accuracy_per_s": {
            "scalar_full": per_s(acc.scalar_full),
            "scalar_floor": per_s(acc.scalar_floor),
            "batched_full": per_s(acc.batched_full),
            "batched_floor": per_s(acc.batched_floor),
        },
        "rechecked_images": stats.rechecked,
        "cached_layer_products": stats.cached_layers,
        "mismatches": mismatches,
    });
    writeln!(out, "{summary}")?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if mismatches > 0 {
        bail!(
            "{mismatches} candidates got different verdicts, margins or error counts on the paths"
        );
    }
    Ok(Outcome::Proven)
}

/// One candidate test's timing.
struct TestRun {
    passes: bool,
    proven: Option<bool>,
    deeppoly: usize,
    dp_s: f64,
    acc_evaluated: bool,
    acc_s: f64,
    /// Bit patterns of the margins proven, in property order, up to the first failure.
    margins: Vec<u64>,
}

#[derive(Default)]
struct Totals {
    n: usize,
    passes: usize,
    deeppoly: usize,
    dp_s: f64,
    acc: usize,
    acc_s: f64,
}

impl Totals {
    fn add(&mut self, r: &TestRun) {
        self.n += 1;
        self.passes += usize::from(r.passes);
        self.deeppoly += r.deeppoly;
        self.dp_s += r.dp_s;
        self.acc += usize::from(r.acc_evaluated);
        self.acc_s += r.acc_s;
    }

    fn seconds(&self) -> f64 {
        self.dp_s + self.acc_s
    }

    fn json(&self, n: f64) -> serde_json::Value {
        json!({
            "tested": self.n, "passing": self.passes,
            "deeppoly_runs": self.deeppoly, "deeppoly_s": self.dp_s,
            "accuracy_evaluations": self.acc, "accuracy_s": self.acc_s,
            "seconds": self.seconds(),
            "candidates_per_s": if self.seconds() > 0.0 { n / self.seconds() } else { f64::INFINITY },
        })
    }
}

#[derive(Default)]
struct AccTimes {
    scalar_full: f64,
    scalar_floor: f64,
    batched_full: f64,
    batched_floor: f64,
}

/// Proofs hardest first, stopping at the first failure: (all proven, runs, seconds, margin
/// bits); with `cache`, DeepPoly resumes at the first layer `q` changed (eq. (72)).
fn proofs(
    q: &Network,
    props: &[Property],
    cache: Option<&PrefixCache>,
) -> Result<(bool, usize, f64, Vec<u64>)> {
    let t = Instant::now();
    let mut margins = Vec::new();
    for (i, p) in props.iter().enumerate() {
        let (ok, m) = match cache {
            Some(c) => c.prove_output(i, q, &p.input, p.output)?,
            None => DeepPoly::run(q, &p.input)?.prove_output(p.output)?,
        };
        margins.push(m.to_bits());
        if !ok {
            return Ok((false, margins.len(), t.elapsed().as_secs_f64(), margins));
        }
    }
    Ok((true, margins.len(), t.elapsed().as_secs_f64(), margins))
}

/// The search's test before issue 16: proofs, then the full one-image-at-a-time error count
/// (what [`certquant::search::accuracy`] computes) if all are proven.
fn old_test(q: &Network, props: &[Property], scalar: &AccuracyFloor) -> Result<TestRun> {
    let (proven, deeppoly, dp_s, margins) = proofs(q, props, None)?;
    let (mut passes, mut acc_s) = (false, 0.0);
    if proven {
        let t = Instant::now();
        passes = scalar.errors(q, usize::MAX) <= scalar.max_errors();
        acc_s = t.elapsed().as_secs_f64();
    }
    Ok(TestRun {
        passes,
        proven: Some(proven),
        deeppoly,
        dp_s,
        acc_evaluated: proven,
        acc_s,
        margins,
    })
}

/// The new test: the batched floor first, then the proofs (through `cache` if given).
fn new_test(
    q: &Network,
    props: &[Property],
    floor: &AccuracyFloor,
    cache: Option<&PrefixCache>,
) -> Result<TestRun> {
    let t = Instant::now();
    let admitted = floor.admits(q);
    let acc_s = t.elapsed().as_secs_f64();
    if !admitted {
        return Ok(TestRun {
            passes: false,
            proven: None,
            deeppoly: 0,
            dp_s: 0.0,
            acc_evaluated: true,
            acc_s,
            margins: Vec::new(),
        });
    }
    let (proven, deeppoly, dp_s, margins) = proofs(q, props, cache)?;
    Ok(TestRun {
        passes: proven,
        proven: Some(proven),
        deeppoly,
        dp_s,
        acc_evaluated: true,
        acc_s,
        margins,
    })
}
