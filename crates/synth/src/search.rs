//! One certified strategy for a whole set of properties: verification-guided search.
//!
//! Algorithm 1 returns one strategy per property; a deployment ships one network. Here the
//! search space is the paper's scheme itself — `F_i ∈ [B_l, B_u]` per affine layer, `Q_i =
//! I_i + F_i` — and each candidate is judged by the same sound check Algorithm 1 ends with:
//! DeepPoly on the quantized network proves every property. With `d ≤ 4` layers and
//! millisecond DeepPoly this is practical, contrary to the paper's "(B_u − B_l)^d" remark.
//!
//! * [`Objective::Memory`] (default): minimise weight memory `Σ Q_i · params_i`, subject to an
//!   optional accuracy floor; ties go to the higher accuracy. Candidates are enumerated in
//!   non-decreasing memory order (a best-first walk over the lattice of `F` vectors, each step
//!   adding one bit to one layer), so the first candidate that passes is optimal.
//! * [`Objective::Paper`]: the paper's per-layer-minimal order (lexicographic in `F_1, F_2, …`).
//!
//! Evaluation stops a candidate at its first unproven property; properties are kept
//! hardest-first (smallest float margin, and a property that refutes a candidate moves to the
//! front). Candidates are evaluated in parallel batches (rayon). See docs/method.md, eq. (43).
//!
//! The accuracy floor is tested before the proofs, with the batched evaluator
//! ([`crate::batch`], eqs. (61)–(62)): hardest images first, an exact rejection once the error
//! budget is exceeded, hidden activations of unchanged layer prefixes reused.
//! [`SearchMethod::Descent`] ([`crate::descent`], eq. (63)) replaces the exponential
//! enumeration by a walk polynomial in depth.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use certquant_bounds::quantize::{QuantError, Strategy, integer_bits};
use certquant_bounds::{BoundsError, DeepPoly, PrefixCache};
use certquant_core::data::Dataset;
use certquant_core::model::Network;
use certquant_core::spec::Property;

use crate::batch::BatchEval;
use crate::deadline::Deadline;

/// Errors of the search.
#[derive(Debug, Error)]
pub enum SearchError {
    /// Bound computation failed.
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    /// Invalid bit-widths.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Bad options.
    #[error("invalid search options: {0}")]
    Options(String),
}

/// What to minimise (docs/method.md, eqs. (5), (43)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Weight memory `Σ Q_i · params_i`.
    #[default]
    Memory,
    /// The paper's per-layer-minimal (lexicographic) order.
    Paper,
}

/// How the lattice of `F` vectors is searched (docs/method.md, eqs. (43), (63)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SearchMethod {
    /// Best-first enumeration in the objective's order: optimal, exponential in depth.
    #[default]
    Exact,
    /// Per-layer bisection, coordinate descent and bit moves from `B_u` ([`crate::descent`]):
    /// polynomial in depth, a passing point that no single tried move improves.
    Descent,
}

/// Search options.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Objective.
    pub objective: Objective,
    /// Exact enumeration or descent.
    pub method: SearchMethod,
    /// Smallest fractional width per layer.
    pub min_frac: u32,
    /// Largest fractional width per layer.
    pub max_frac: u32,
    /// Minimum test accuracy of the QNN (if accuracy data is given).
    pub min_accuracy: Option<f64>,
    /// Give up after this many candidates.
    pub max_candidates: usize,
    /// Candidates evaluated in parallel per batch.
    pub batch: usize,
    /// Wall-clock end of the search (docs/method.md eqs. (81), (82)), checked before every
    /// candidate (and between chunks of the accuracy floor's images): on expiry the search
    /// answers with the best candidate proven so far, if any ([`SearchOutcome::timed_out`]).
    pub deadline: Deadline,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            objective: Objective::Memory,
            method: SearchMethod::Exact,
            min_frac: 1,
            max_frac: 16,
            min_accuracy: None,
            max_candidates: 200_000,
            batch: 16,
            deadline: Deadline::NONE,
        }
    }
}

/// Per-property status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PropertyStatus {
    /// Proven on the chosen QNN.
    Certified,
    /// DeepPoly cannot prove it on the float network: left out of the search.
    PropertyFails,
    /// Not proven by the chosen strategy (only when the search failed).
    Unknown,
}

/// The search result.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// The chosen strategy (None if no candidate passed).
    pub strategy: Option<Strategy>,
    /// The chosen QNN.
    pub qnn: Option<Network>,
    /// Status per input property (same order as given).
    pub status: Vec<PropertyStatus>,
    /// Float-network DeepPoly margin per property.
    pub float_margins: Vec<f64>,
    /// Proven QNN margin per property (for certified ones).
    pub qnn_margins: Vec<Option<f64>>,
    /// QNN accuracy on the accuracy data (if given).
    pub qnn_accuracy: Option<f64>,
    /// Candidates evaluated.
    pub candidates: usize,
    /// DeepPoly runs.
    pub deeppoly_calls: usize,
    /// Affine layers of those runs whose DeepPoly state was reused from the previous
    /// candidate (eq. (72)), and layers computed.
    pub deeppoly_layers: (usize, usize),
    /// Accuracy evaluations.
    pub accuracy_evaluations: usize,
    /// Seconds.
    pub seconds: f64,
    /// [`SearchOptions::deadline`] passed: `strategy` is the best point proven so far (not
    /// necessarily the search's optimum), or none.
    pub timed_out: bool,
}

/// Accuracy of `net` on a labelled data set (parallel, one image at a time; unlabelled images
/// count as wrong).
pub fn accuracy(net: &Network, ds: &Dataset) -> f64 {
    let n = ds.len();
    let ok = (0..n)
        .into_par_iter()
        .filter(|&i| match (ds.image(i), ds.label(i)) {
            (Some(x), Some(y)) => net.predict(x) == y,
            _ => false,
        })
        .count();
    ok as f64 / n.max(1) as f64
}

/// A candidate that proves every property: strategy, QNN, margins.
pub(crate) type Passing = (Strategy, Network, Vec<f64>);

/// The accuracy side of a candidate test: [`accuracy`] computed exactly with the batched
/// evaluator, and "accuracy ≥ floor" as an error budget with early rejection (eq. (61)).
struct AccuracyTest {
    eval: BatchEval,
    deadline: Deadline,
    /// All images (unlabelled ones count as wrong, as in [`accuracy`]).
    n: usize,
    labelled: usize,
    /// With a floor: the most misclassified labelled images whose accuracy keeps it
    /// (`None` inside: no number of errors does).
    budget: Option<Option<usize>>,
}

impl AccuracyTest {
    fn new(net: &Network, ds: &Dataset, floor: Option<f64>, deadline: Deadline) -> Self {
        let eval = BatchEval::new(net, std::sync::Arc::new(ds.clone()));
        let (n, labelled) = (ds.len(), eval.len());
        let acc = |e: usize| (labelled - e) as f64 / n.max(1) as f64;
        // the largest e with acc(e) ≥ floor (acc does not increase with e)
        let budget = floor.map(|f| {
            if acc(0) < f {
                return None;
            }
            let (mut lo, mut hi) = (0usize, labelled);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if acc(mid) >= f {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            Some(lo)
        });
        Self {
            eval,
            deadline,
            n,
            labelled,
            budget,
        }
    }

    /// Whether `q` keeps the floor (always true without one).
    fn admits(&self, q: &Network) -> bool {
        match self.budget {
            None => true,
            Some(None) => false,
            // past the deadline the count is cut short: a rejection, never an admission
            Some(Some(b)) => self.eval.errors_until(q, b, self.deadline) <= b,
        }
    }

    /// [`accuracy`] of `q`, exactly.
    fn accuracy(&self, q: &Network) -> f64 {
        let e = self.eval.errors(q, usize::MAX);
        (self.labelled - e.min(self.labelled)) as f64 / self.n.max(1) as f64
    }
}

/// The candidate test shared by the exact and the descent search: the accuracy floor first
/// (cheap, batched), then DeepPoly proofs of every property, hardest first.
pub(crate) struct Evaluator<'a> {
    net: &'a Network,
    props: Vec<&'a Property>,
    order: Mutex<Vec<usize>>,
    deeppoly: AtomicUsize,
    /// DeepPoly state of the last candidate per property, reused for the layers the next
    /// candidate leaves unchanged (eq. (72)).
    prefix: PrefixCache,
    accuracy: Option<AccuracyTest>,
    accuracy_evals: AtomicUsize,
    deadline: Deadline,
    /// Set once a test found the deadline passed.
    late: std::sync::atomic::AtomicBool,
}

impl<'a> Evaluator<'a> {
    /// The properties with a positive float margin, hardest (smallest margin) first.
    fn new(
        net: &'a Network,
        props: Vec<&'a Property>,
        margins: &[f64],
        accuracy_data: Option<&Dataset>,
        floor: Option<f64>,
        deadline: Deadline,
    ) -> Self {
        let mut order: Vec<usize> = (0..props.len()).collect();
        order.sort_by(|&a, &b| margins[a].total_cmp(&margins[b]));
        let n = props.len();
        Self {
            net,
            props,
            order: Mutex::new(order),
            deeppoly: AtomicUsize::new(0),
            prefix: PrefixCache::new(n),
            accuracy: accuracy_data.map(|d| AccuracyTest::new(net, d, floor, deadline)),
            accuracy_evals: AtomicUsize::new(0),
            deadline,
            late: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the deadline has passed (remembered once seen).
    pub(crate) fn late(&self) -> bool {
        if self.late.load(Ordering::Relaxed) {
            return true;
        }
        let l = self.deadline.expired();
        if l {
            self.late.store(true, Ordering::Relaxed);
        }
        l
    }

    /// The float network.
    pub(crate) fn net(&self) -> &Network {
        self.net
    }

    /// Tests the candidate with fractional widths `fr`: floor, then proofs (in parallel over
    /// the properties if `parallel`). Returns the strategy, QNN and margins if it passes.
    /// Past the deadline nothing passes (the candidate is not tested).
    pub(crate) fn test(&self, fr: &[u32], parallel: bool) -> Result<Option<Passing>, SearchError> {
        if self.late() {
            return Ok(None);
        }
        let s = Strategy::from_fracs(self.net, fr)?;
        let q = s.apply(self.net)?;
        if let Some(a) = &self.accuracy
            && a.budget.is_some()
        {
            self.accuracy_evals.fetch_add(1, Ordering::Relaxed);
            if !a.admits(&q) {
                if self.deadline.expired() {
                    self.late.store(true, Ordering::Relaxed);
                }
                return Ok(None);
            }
        }
        let m = if parallel {
            self.prove_all_parallel(&q)?
        } else {
            self.prove_all(&q)?
        };
        Ok(m.map(|m| (s, q, m)))
    }

    /// The exact accuracy of a chosen QNN (None without accuracy data).
    pub(crate) fn accuracy(&self, q: &Network) -> Option<f64> {
        self.accuracy.as_ref().map(|a| {
            self.accuracy_evals.fetch_add(1, Ordering::Relaxed);
            a.accuracy(q)
        })
    }

    fn current_order(&self) -> Vec<usize> {
        match self.order.lock() {
            Ok(o) => o.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Moves property `i` to the front of the order (it refuted a candidate).
    fn promote(&self, i: usize) {
        if let Ok(mut o) = self.order.lock()
            && let Some(k) = o.iter().position(|&x| x == i)
            && k > 0
        {
            let v = o.remove(k);
            o.insert(0, v);
        }
    }

    fn prove_one(&self, qnn: &Network, i: usize) -> Result<Option<f64>, BoundsError> {
        let p = self.props[i];
        let (ok, m) = self.prefix.prove_output(i, qnn, &p.input, p.output)?;
        self.deeppoly.fetch_add(1, Ordering::Relaxed);
        Ok(ok.then_some(m))
    }

    /// Proves every property on `qnn`; returns the margins (in the caller's property order)
    /// or `None` at the first failure (moving the refuting property to the front).
    fn prove_all(&self, qnn: &Network) -> Result<Option<Vec<f64>>, BoundsError> {
        let mut margins = vec![0.0; self.props.len()];
        for i in self.current_order() {
            match self.prove_one(qnn, i)? {
                Some(m) => margins[i] = m,
                None => {
                    self.promote(i);
                    return Ok(None);
                }
            }
        }
        Ok(Some(margins))
    }

    /// [`Evaluator::prove_all`] with the properties shared among the threads, still taken
    /// hardest first; all stop at the first failure.
    fn prove_all_parallel(&self, qnn: &Network) -> Result<Option<Vec<f64>>, BoundsError> {
        let order = self.current_order();
        let next = AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let margins: Mutex<Vec<f64>> = Mutex::new(vec![0.0; self.props.len()]);
        let threads = rayon::current_num_threads().max(1);
        let errs: Vec<BoundsError> = (0..threads)
            .into_par_iter()
            .filter_map(|_| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return None;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let &i = order.get(k)?;
                    match self.prove_one(qnn, i) {
                        Ok(Some(m)) => {
                            if let Ok(mut g) = margins.lock() {
                                g[i] = m;
                            }
                        }
                        Ok(None) => {
                            failed.store(true, Ordering::Relaxed);
                            self.promote(i);
                            return None;
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Some(e);
                        }
                    }
                }
            })
            .collect();
        if let Some(e) = errs.into_iter().next() {
            return Err(e);
        }
        if failed.into_inner() {
            return Ok(None);
        }
        Ok(Some(margins.into_inner().unwrap_or_default()))
    }
}

/// Enumerates `F` vectors in the objective's order, lazily (docs/method.md, eq. (43)).
struct Frontier {
    objective: Objective,
    lo: u32,
    hi: u32,
    ints: Vec<u32>,
    params: Vec<u64>,
    heap: BinaryHeap<Reverse<(u64, Vec<u32>)>>,
    seen: HashSet<Vec<u32>>,
    lex: Option<Vec<u32>>,
}

impl Frontier {
    fn new(net: &Network, lo: u32, hi: u32, objective: Objective) -> Self {
        let ints = net.layers().iter().map(integer_bits).collect();
        let params = net.params_per_layer().iter().map(|&p| p as u64).collect();
        let start = vec![lo; net.depth()];
        let mut f = Frontier {
            objective,
            lo,
            hi,
            ints,
            params,
            heap: BinaryHeap::new(),
            seen: HashSet::new(),
            lex: Some(start.clone()),
        };
        let m = f.memory(&start);
        f.heap.push(Reverse((m, start.clone())));
        f.seen.insert(start);
        f
    }

    fn memory(&self, fr: &[u32]) -> u64 {
        fr.iter()
            .zip(&self.ints)
            .zip(&self.params)
            .map(|((f, i), p)| (*f + *i) as u64 * p)
            .sum()
    }

    fn next(&mut self) -> Option<(u64, Vec<u32>)> {
        match self.objective {
            Objective::Memory => {
                let Reverse((m, fr)) = self.heap.pop()?;
                for i in 0..fr.len() {
                    if fr[i] < self.hi {
                        let mut g = fr.clone();
                        g[i] += 1;
                        if self.seen.insert(g.clone()) {
                            let mg = self.memory(&g);
                            self.heap.push(Reverse((mg, g)));
                        }
                    }
                }
                Some((m, fr))
            }
            Objective::Paper => {
                let cur = self.lex.take()?;
                // odometer, last layer fastest: lexicographic in (F_1, F_2, …)
                let mut nxt = cur.clone();
                let mut i = nxt.len();
                loop {
                    if i == 0 {
                        break;
                    }
                    i -= 1;
                    if nxt[i] < self.hi {
                        nxt[i] += 1;
                        for v in nxt.iter_mut().skip(i + 1) {
                            *v = self.lo;
                        }
                        self.lex = Some(nxt);
                        break;
                    }
                }
                let m = self.memory(&cur);
                Some((m, cur))
            }
        }
    }
}

/// The `F` vectors of `net` with entries in `lo..=hi` in non-decreasing weight memory (the
/// exact search's order, eq. (43)), lazily; for benchmarks of the candidate test.
pub fn memory_order(net: &Network, lo: u32, hi: u32) -> impl Iterator<Item = Vec<u32>> {
    let mut f = Frontier::new(net, lo, hi, Objective::Memory);
    std::iter::from_fn(move || f.next().map(|(_, fr)| fr))
}

/// Finds one strategy proving every property (those DeepPoly proves on the float network),
/// by exact enumeration or by descent as `opts.method` says (docs/method.md, eqs. (43), (63)).
pub fn search(
    net: &Network,
    props: &[Property],
    accuracy_data: Option<&Dataset>,
    opts: &SearchOptions,
) -> Result<SearchOutcome, SearchError> {
    let t0 = Instant::now();
    if opts.min_frac > opts.max_frac || opts.max_frac > 40 {
        return Err(SearchError::Options(format!(
            "fractional range {}..={} is empty or too wide",
            opts.min_frac, opts.max_frac
        )));
    }
    if opts.min_accuracy.is_some() && accuracy_data.is_none() {
        return Err(SearchError::Options(
            "an accuracy floor needs accuracy data".into(),
        ));
    }
    // Float-network proofs: properties DeepPoly cannot prove are left out.
    let mut float_margins = Vec::with_capacity(props.len());
    for p in props {
        p.output
            .validate(net.output_dim())
            .map_err(|e| SearchError::Options(e.to_string()))?;
        let dp = DeepPoly::run(net, &p.input)?;
        float_margins.push(dp.prove_output(p.output)?.1);
    }
    let active: Vec<usize> = (0..props.len())
        .filter(|&i| float_margins[i] > 0.0)
        .collect();
    let active_margins: Vec<f64> = active.iter().map(|&i| float_margins[i]).collect();
    let ev = Evaluator::new(
        net,
        active.iter().map(|&i| &props[i]).collect(),
        &active_margins,
        accuracy_data,
        opts.min_accuracy,
        opts.deadline,
    );
    let (best, candidates) = match opts.method {
        SearchMethod::Exact => exact(&ev, opts)?,
        SearchMethod::Descent => crate::descent::descent(&ev, opts)?,
    };
    let mut status: Vec<PropertyStatus> = float_margins
        .iter()
        .map(|&m| {
            if m > 0.0 {
                PropertyStatus::Unknown
            } else {
                PropertyStatus::PropertyFails
            }
        })
        .collect();
    let mut qnn_margins = vec![None; props.len()];
    let (strategy, qnn, qnn_accuracy) = match best {
        Some((s, q, m, acc)) => {
            for (k, &i) in active.iter().enumerate() {
                status[i] = PropertyStatus::Certified;
                qnn_margins[i] = Some(m[k]);
            }
            (Some(s), Some(q), acc)
        }
        None => (None, None, None),
    };
    Ok(SearchOutcome {
        strategy,
        qnn,
        status,
        float_margins,
        qnn_margins,
        qnn_accuracy,
        candidates,
        deeppoly_calls: ev.deeppoly.load(Ordering::Relaxed),
        deeppoly_layers: {
            let st = ev.prefix.stats();
            (st.layers_reused, st.layers_computed)
        },
        accuracy_evaluations: ev.accuracy_evals.load(Ordering::Relaxed),
        seconds: t0.elapsed().as_secs_f64(),
        timed_out: ev.late.load(Ordering::Relaxed),
    })
}

/// A chosen candidate: strategy, QNN, margins (active properties) and exact accuracy.
pub(crate) type Chosen = (Strategy, Network, Vec<f64>, Option<f64>);

/// Best-first enumeration (eq. (43)): the first passing candidate in memory order is optimal
/// (ties within its memory go to the higher accuracy); in the paper's order, the first one.
fn exact(ev: &Evaluator<'_>, opts: &SearchOptions) -> Result<(Option<Chosen>, usize), SearchError> {
    let mut frontier = Frontier::new(ev.net, opts.min_frac, opts.max_frac, opts.objective);
    let mut candidates = 0;
    // best passing candidate: (memory, accuracy, strategy, qnn, margins)
    type Best = (u64, Option<f64>, Strategy, Network, Vec<f64>);
    let mut best: Option<Best> = None;
    'outer: while candidates < opts.max_candidates && !ev.late() {
        let mut batch = Vec::with_capacity(opts.batch);
        while batch.len() < opts.batch {
            match frontier.next() {
                Some(c) => batch.push(c),
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        candidates += batch.len();
        let results: Vec<Result<Option<Passing>, SearchError>> =
            batch.par_iter().map(|(_, fr)| ev.test(fr, false)).collect();
        for ((mem, _), r) in batch.iter().zip(results) {
            if opts.objective == Objective::Memory && best.as_ref().is_some_and(|b| *mem > b.0) {
                break 'outer;
            }
            let Some((s, q, m)) = r? else { continue };
            let acc = ev.accuracy(&q);
            let better = match &best {
                None => true,
                Some(b) => acc.unwrap_or(0.0) > b.1.unwrap_or(0.0),
            };
            if better {
                best = Some((*mem, acc, s, q, m));
            }
            if opts.objective == Objective::Paper {
                break 'outer;
            }
        }
    }
    Ok((best.map(|(_, a, s, q, m)| (s, q, m, a)), candidates))
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::Affine;

    fn net() -> Network {
        let l0 = Affine::new(
            0,
            3,
            2,
            vec![0.7, -0.3, 0.2, 0.9, -0.5, 0.4],
            vec![0.1, 0.0, -0.1],
        )
        .unwrap();
        let l1 = Affine::new(
            1,
            2,
            3,
            vec![1.1, -0.6, 0.3, -0.8, 0.9, 0.2],
            vec![0.05, -0.05],
        )
        .unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    #[test]
    fn frontier_enumerates_in_memory_order_without_repeats() {
        let n = net();
        let mut f = Frontier::new(&n, 1, 4, Objective::Memory);
        let mut last = 0;
        let mut seen = HashSet::new();
        while let Some((m, fr)) = f.next() {
            assert!(m >= last);
            last = m;
            assert!(seen.insert(fr));
        }
        assert_eq!(seen.len(), 16);
    }

    #[test]
    fn frontier_paper_order_is_lexicographic() {
        let n = net();
        let mut f = Frontier::new(&n, 1, 2, Objective::Paper);
        let all: Vec<Vec<u32>> = std::iter::from_fn(|| f.next().map(|x| x.1)).collect();
        assert_eq!(all, vec![vec![1, 1], vec![1, 2], vec![2, 1], vec![2, 2]]);
    }

    #[test]
    fn search_finds_the_cheapest_strategy_exhaustively() {
        use certquant_core::spec::{InputBox, OutputSpec};
        let n = net();
        let props: Vec<Property> = [[0.9, 0.1], [0.8, 0.3]]
            .iter()
            .map(|c| {
                let label = n.predict(c);
                Property {
                    input: InputBox::linf_ball(c, 0.02).unwrap(),
                    output: OutputSpec::Robust { label },
                }
            })
            .collect();
        let opts = SearchOptions {
            max_frac: 8,
            ..SearchOptions::default()
        };
        let out = search(&n, &props, None, &opts).unwrap();
        let s = out.strategy.expect("some strategy proves both");
        let mem = s.memory_bits(&n);
        // exhaustive: no cheaper strategy proves both
        for f0 in 1..=8 {
            for f1 in 1..=8 {
                let c = Strategy::from_fracs(&n, &[f0, f1]).unwrap();
                if c.memory_bits(&n) < mem {
                    let q = c.apply(&n).unwrap();
                    let all = props.iter().all(|p| {
                        DeepPoly::run(&q, &p.input)
                            .unwrap()
                            .prove_output(p.output)
                            .unwrap()
                            .0
                    });
                    assert!(!all, "{f0},{f1} is cheaper and proves both");
                }
            }
        }
    }
}
