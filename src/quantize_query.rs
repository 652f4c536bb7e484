//! Certified quantization of a VNN-LIB property (`synth vnnlib`; docs/method.md §16, the
//! paragraph "Quantizing for a VNN-LIB property").
//!
//! The property is first decided on the float network ([`verify_query`]: DeepPoly refutation,
//! falsification, input splitting). If it holds, per-layer fractional widths `F_i` are searched
//! with every candidate judged by the **full split proof on the QNN** (eqs. (49)–(53), the
//! network quantized by eq. (3) with `Q_i = I_i + F_i`, eq. (4)): a candidate passes only when
//! [`verify_query`] answers `holds` on it, i.e. every leaf of its split trees is refuted and the
//! independent checker re-proved the trees (eqs. (59), (60)). The answer is therefore certified
//! by construction; its proof is the one the certificate records.
//!
//! The search: start at `F_i = B_u` on every layer (if that fails there is no answer); then,
//! layer by layer (most parameters first), bisection for the lowest `F_i` that passes with the
//! other layers fixed; then a second pass lowering any layer by one bit while that passes. Every
//! tested point is remembered. Where passing is not monotone in `F_i` the result still passes,
//! it is only perhaps not the layer's minimum.

use std::collections::HashMap;
use std::time::Instant;

use crate::bounds::ProposeMultipliers;
use crate::certificate::RegionProof;
use crate::falsify::Counterexample;
use crate::floor::AccuracyFloor;
use crate::model::Network;
use crate::quantize::Strategy;
use crate::split::{SplitOptions, Verdict, VerifyOutcome, verify_query};
use crate::vnnlib::Query;
use certquant_synth::descent::{FracOracle, bisect_layers, largest_first, lower_while_passing};

/// Knobs of [`quantize_query`].
#[derive(Debug, Clone)]
pub struct QuantizeQueryOptions {
    /// Smallest fractional width tried (`B_l`).
    pub min_frac: u32,
    /// Largest fractional width tried (`B_u`), also the starting point.
    pub max_frac: u32,
    /// Budget of the float proof; its deadline bounds the whole search.
    pub split: SplitOptions,
    /// Largest number of splits per candidate proof. `None`: twice the float proof's splits
    /// plus 32, at most `split.max_splits` (a failing candidate in many input dimensions would
    /// otherwise spend the whole budget on splits that cannot help).
    pub candidate_max_splits: Option<usize>,
    /// Optional accuracy floor (docs/method.md, eq. (43)): a candidate passes only if its QNN
    /// also keeps the accuracy on labelled data. A VNN-LIB property alone says nothing about
    /// the rest of the input space, so without a floor the lowest passing bits can cost much
    /// accuracy (BENCHMARKS.md).
    pub accuracy_floor: Option<AccuracyFloor>,
}

impl Default for QuantizeQueryOptions {
    fn default() -> Self {
        Self {
            min_frac: 1,
            max_frac: 16,
            split: SplitOptions::default(),
            candidate_max_splits: None,
            accuracy_floor: None,
        }
    }
}

/// The answer of [`quantize_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryStatus {
    /// A strategy whose QNN provably satisfies the property (its proof is in the outcome).
    Certified,
    /// A counterexample on the float network: no quantization can be certified.
    Violated,
    /// The float property is not proven, or no strategy in range passed (or time ran out).
    Unknown,
}

/// A passing candidate: the strategy, its QNN, the QNN's ONNX bytes (the network the proofs
/// are about, as the checker reads it back) and one proof per query searched for.
#[derive(Debug, Clone)]
pub struct Passing {
    /// Fractional width per affine layer, input side first.
    pub fracs: Vec<u32>,
    /// The strategy ⟨I_i + F_i, F_i⟩.
    pub strategy: Strategy,
    /// The quantized network.
    pub qnn: Network,
    /// `onnx::export_bytes(qnn)`; importing it gives `qnn` exactly (checked).
    pub qnn_bytes: Vec<u8>,
    /// Per query: the split trees of the QNN's proof, re-proven by the checker.
    pub proofs: Vec<Vec<RegionProof>>,
    /// Per query: the QNN proof's statistics (splits, boxes, weakest refutation).
    pub outcomes: Vec<VerifyOutcome>,
}

impl Passing {
    /// Splits of the QNN proofs, all queries together.
    pub fn splits(&self) -> usize {
        self.outcomes.iter().map(|o| o.splits).sum()
    }

    /// The weakest refutation's proven upper bound over all queries (`< 0`).
    pub fn worst_upper(&self) -> Option<f64> {
        self.outcomes
            .iter()
            .filter_map(|o| o.worst_upper)
            .reduce(f64::max)
    }
}

/// What [`quantize_query`] did.
#[derive(Debug, Clone)]
pub struct QuantizeQueryOutcome {
    /// The answer.
    pub status: QueryStatus,
    /// The decision on the float network.
    pub float: VerifyOutcome,
    /// The counterexample (violated only).
    pub counterexample: Option<Counterexample>,
    /// The chosen point (certified only).
    pub chosen: Option<Passing>,
    /// Candidates proven (or refuted) on a QNN.
    pub tested: usize,
    /// Why the answer is `unknown` (empty otherwise), or a note about the search's end.
    pub note: String,
}

/// Decides `query` on `net` and, if it holds, searches a certified strategy (module
/// documentation). Errors are bad inputs (dimensions, bit range).
pub fn quantize_query(
    net: &Network,
    query: &Query,
    proposer: &(dyn ProposeMultipliers + Sync),
    opts: &QuantizeQueryOptions,
) -> anyhow::Result<QuantizeQueryOutcome> {
    if opts.min_frac > opts.max_frac {
        anyhow::bail!(
            "--min-frac {} is larger than --max-frac {}",
            opts.min_frac,
            opts.max_frac
        );
    }
    // validates the range against the network (Q = I + F ≤ 52)
    Strategy::from_fracs(net, &vec![opts.max_frac; net.depth()])?;
    let float = verify_query(net, query, proposer, &opts.split)?;
    let mut out = QuantizeQueryOutcome {
        status: QueryStatus::Unknown,
        float: float.clone(),
        counterexample: None,
        chosen: None,
        tested: 0,
        note: String::new(),
    };
    match &float.verdict {
        Verdict::Holds => {}
        Verdict::Violated(cx) => {
            out.status = QueryStatus::Violated;
            out.counterexample = Some((**cx).clone());
            return Ok(out);
        }
        Verdict::Unknown => {
            out.note = format!(
                "the property is not proven on the float network: {}",
                float.note
            );
            return Ok(out);
        }
        Verdict::Timeout => {
            out.note = "the time budget ran out before the float network's proof".into();
            return Ok(out);
        }
    }
    let searched = search_strategy(net, &[(query, float.splits)], proposer, opts)?;
    out.tested = searched.tested;
    out.note = searched.note;
    if let Some(best) = searched.chosen {
        out.status = QueryStatus::Certified;
        out.chosen = Some(best);
    }
    Ok(out)
}

/// What [`search_strategy`] found: the chosen point (if any), candidates tested, and why there
/// is none or how the search ended.
#[derive(Debug, Clone)]
pub struct Searched {
    /// The lowest passing point found (every query proven on its QNN).
    pub chosen: Option<Passing>,
    /// Candidates proven (or refuted) on a QNN.
    pub tested: usize,
    /// Why there is no answer, or a note about the search's end (empty otherwise).
    pub note: String,
}

/// The per-layer search for the lowest fractional widths at which **every** query of
/// `queries` (each with the number of splits of its float proof, which sets its candidate
/// budget) is proven on the QNN by the full split proof (docs/method.md eq. (67)): start at
/// `B_u`, bisect each layer, then lower any layer by one bit while all queries still pass.
/// The queries must all hold on the float network (the caller decides them first).
pub fn search_strategy(
    net: &Network,
    queries: &[(&Query, usize)],
    proposer: &(dyn ProposeMultipliers + Sync),
    opts: &QuantizeQueryOptions,
) -> anyhow::Result<Searched> {
    if queries.is_empty() {
        anyhow::bail!("internal: a strategy search without queries");
    }
    let mut out = Searched {
        chosen: None,
        tested: 0,
        note: String::new(),
    };
    let budgets = queries
        .iter()
        .map(|(_, splits)| {
            opts.candidate_max_splits
                .unwrap_or(2 * splits + 32)
                .min(opts.split.max_splits)
        })
        .collect();
    let mut walk = Walk {
        net,
        queries: queries.iter().map(|(q, _)| *q).collect(),
        budgets,
        proposer,
        opts: &opts.split,
        floor: opts.accuracy_floor.as_ref(),
        seen: HashMap::new(),
        tested: 0,
        late: false,
        first: 0,
        passed: Vec::new(),
    };
    let d = net.depth();
    let (lo, hi) = (opts.min_frac, opts.max_frac);
    let mut cur = vec![hi; d];
    let Some(mut best) = walk.test(&cur)? else {
        out.tested = walk.tested;
        out.note = if walk.late {
            "the time budget ran out before a strategy was proven".into()
        } else {
            format!(
                "not proven on the QNN with F = {hi} (B_u) on every layer{}",
                if opts.accuracy_floor.is_some() {
                    ", or below the accuracy floor"
                } else {
                    ""
                }
            )
        };
        return Ok(out);
    };
    let params: Vec<u64> = net.params_per_layer().iter().map(|&p| p as u64).collect();
    // layers without parameters (a lowered pooling tournament) cost no memory at any width:
    // lowering them saves nothing, so they stay at B_u and cost no candidate
    let order: Vec<usize> = largest_first(&params)
        .into_iter()
        .filter(|&i| params[i] > 0)
        .collect();
    // per layer: bisection for the lowest passing F with the others fixed; then one bit down
    // on any layer while that passes (the moves of the property-set descent)
    bisect_layers(&mut walk, &order, lo, &mut cur, &mut best)?;
    lower_while_passing(&mut walk, &order, lo, &mut cur, &mut best)?;
    if walk.late {
        out.note =
            "the time budget ran out during the search: the best strategy proven so far".into();
    }
    out.tested = walk.tested;
    // candidates were proven by DeepPoly alone; the independent checker re-proves the kept
    // point (the lowest passing one is the last found; should the checker reject it, the one
    // before it, and so on; SOUNDNESS.md row 51)
    drop(best);
    let mut rejected = 0;
    while let Some(mut p) = walk.passed.pop() {
        if recheck(&mut p, &walk.queries) {
            out.chosen = Some(p);
            break;
        }
        rejected += 1;
    }
    if rejected > 0 {
        let why = format!(
            "internal: the independent checker rejected the proof of {rejected} passing point(s)"
        );
        out.note = if out.note.is_empty() {
            why
        } else {
            format!("{}; {why}", out.note)
        };
    }
    Ok(out)
}

/// Re-proves every query's split trees of `p` with the independent checker
/// (`check::query::check_query_proof`); fills in the weakest refutations. `false` if any is
/// rejected.
fn recheck(p: &mut Passing, queries: &[&Query]) -> bool {
    for ((q, proof), o) in queries.iter().zip(&p.proofs).zip(&mut p.outcomes) {
        let (reasons, checks) = crate::check::query::check_query_proof(&p.qnn, q, proof);
        if !reasons.is_empty() {
            return false;
        }
        o.worst_upper = checks
            .iter()
            .map(|c| c.worst_upper)
            .filter(|u| !u.is_nan())
            .reduce(f64::max);
    }
    true
}

/// The answer for one query of a set (see [`quantize_queries`]).
#[derive(Debug, Clone)]
pub struct SetMember {
    /// The decision on the float network.
    pub float: VerifyOutcome,
    /// Whether the query is part of the searched set (it holds on the float network).
    pub kept: bool,
}

/// What [`quantize_queries`] did.
#[derive(Debug, Clone)]
pub struct QuantizeSetOutcome {
    /// `certified` iff a strategy proves every kept query (and at least one query is kept);
    /// per-query answers on the float network are in `members`.
    pub status: QueryStatus,
    /// Per query, in the order given.
    pub members: Vec<SetMember>,
    /// The chosen point: one proof per kept query, in order (certified only).
    pub chosen: Option<Passing>,
    /// Candidates proven (or refuted) on a QNN.
    pub tested: usize,
    /// Why no strategy, or how the search ended.
    pub note: String,
}

/// A **property set** of VNN-LIB queries, one QNN for all (docs/method.md eq. (67)): every
/// query is decided on the float network first ([`verify_query`]); those that hold form the
/// set, and [`search_strategy`] looks for the lowest per-layer bits at which every one of them
/// is proven on the QNN by its full split proof (leaves of the input splitting as sub-properties
/// wherever one box is not enough). Queries that do not hold on the float network are left
/// out and reported (`members`); a caller treats them as not certifiable.
pub fn quantize_queries(
    net: &Network,
    queries: &[Query],
    proposer: &(dyn ProposeMultipliers + Sync),
    opts: &QuantizeQueryOptions,
) -> anyhow::Result<QuantizeSetOutcome> {
    if opts.min_frac > opts.max_frac {
        anyhow::bail!(
            "--min-frac {} is larger than --max-frac {}",
            opts.min_frac,
            opts.max_frac
        );
    }
    if queries.is_empty() {
        anyhow::bail!("no VNN-LIB properties given");
    }
    Strategy::from_fracs(net, &vec![opts.max_frac; net.depth()])?;
    let mut members = Vec::with_capacity(queries.len());
    let n = queries.len();
    for (i, q) in queries.iter().enumerate() {
        // each float proof gets an equal share of half the time left, so that one hard file
        // cannot starve the others and the search keeps at least half the budget
        let split = SplitOptions {
            deadline: opts.split.deadline.map(|d| {
                let now = Instant::now();
                now + d.saturating_duration_since(now) / (2 * (n - i)) as u32
            }),
            ..opts.split.clone()
        };
        let float = verify_query(net, q, proposer, &split)?;
        members.push(SetMember {
            kept: float.verdict == Verdict::Holds,
            float,
        });
    }
    let kept: Vec<(&Query, usize)> = queries
        .iter()
        .zip(&members)
        .filter(|(_, m)| m.kept)
        .map(|(q, m)| (q, m.float.splits))
        .collect();
    let mut out = QuantizeSetOutcome {
        status: QueryStatus::Unknown,
        members,
        chosen: None,
        tested: 0,
        note: String::new(),
    };
    if kept.is_empty() {
        out.note = "no property holds on the float network".into();
        return Ok(out);
    }
    let searched = search_strategy(net, &kept, proposer, opts)?;
    out.tested = searched.tested;
    out.note = searched.note;
    if let Some(best) = searched.chosen {
        out.status = QueryStatus::Certified;
        out.chosen = Some(best);
    }
    Ok(out)
}

/// The search's memory of tested points.
struct Walk<'a> {
    net: &'a Network,
    /// The queries every candidate must prove.
    queries: Vec<&'a Query>,
    /// Largest number of splits per query's candidate proof.
    budgets: Vec<usize>,
    /// The query that failed last: tried first on the next candidate (it most likely fails
    /// again, which saves the proofs of the others).
    first: usize,
    proposer: &'a (dyn ProposeMultipliers + Sync),
    opts: &'a SplitOptions,
    floor: Option<&'a AccuracyFloor>,
    seen: HashMap<Vec<u32>, bool>,
    tested: usize,
    late: bool,
    /// Passing points in the order found (each lower than the one before), not yet re-proven
    /// by the independent checker.
    passed: Vec<Passing>,
}

impl FracOracle for Walk<'_> {
    type Pass = Passing;
    type Error = anyhow::Error;

    fn test(&mut self, fracs: &[u32]) -> anyhow::Result<Option<Passing>> {
        Walk::test(self, fracs)
    }

    fn stop(&self) -> bool {
        self.late
    }
}

impl Walk<'_> {
    /// Proves every query on the QNN of `fracs`; `Some` iff all hold (a failing point is not
    /// tested again). A timeout marks the walk late.
    fn test(&mut self, fracs: &[u32]) -> anyhow::Result<Option<Passing>> {
        if self.late || self.seen.get(fracs) == Some(&false) {
            return Ok(None);
        }
        if self.opts.deadline.is_some_and(|d| Instant::now() >= d) {
            self.late = true;
            return Ok(None);
        }
        self.tested += 1;
        let strategy = Strategy::from_fracs(self.net, fracs)?;
        let applied = strategy.apply(self.net)?;
        // the proof must be about the network the checker reads back from the ONNX file
        let qnn_bytes = crate::onnx::export_bytes(&applied)?;
        let qnn = crate::onnx::import_bytes(&qnn_bytes)?;
        if qnn != applied || self.floor.is_some_and(|f| !f.admits(&qnn)) {
            self.seen.insert(fracs.to_vec(), false);
            return Ok(None);
        }
        let n = self.queries.len();
        let mut proofs = vec![Vec::new(); n];
        let mut outcomes = vec![None; n];
        // the last failing query first, then the others in order
        for k in (0..n).map(|i| (self.first + i) % n) {
            let opts = SplitOptions {
                max_splits: self.budgets[k],
                // the checker re-proves only the point the search keeps (search_strategy)
                recheck: false,
                ..self.opts.clone()
            };
            let outcome = verify_query(&qnn, self.queries[k], self.proposer, &opts)?;
            match (&outcome.verdict, &outcome.proof) {
                (Verdict::Holds, Some(proof)) => proofs[k] = proof.clone(),
                (Verdict::Timeout, _) => {
                    self.late = true;
                    return Ok(None);
                }
                _ => {
                    self.first = k;
                    self.seen.insert(fracs.to_vec(), false);
                    return Ok(None);
                }
            }
            outcomes[k] = Some(outcome);
        }
        self.seen.insert(fracs.to_vec(), true);
        let pass = Passing {
            fracs: fracs.to_vec(),
            strategy,
            qnn,
            qnn_bytes,
            proofs,
            outcomes: outcomes.into_iter().flatten().collect(),
        };
        self.passed.push(pass.clone());
        Ok(Some(pass))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Affine;

    fn none() -> impl ProposeMultipliers + Sync {
        |_: &crate::bounds::LinearBounds, _: &[f64], _: &[f64], _: usize| None
    }

    /// `y = w·relu(x)`: the output weight `w` is the one quantization moves.
    fn scale_net(w: f64) -> Network {
        let l0 = Affine::new(0, 1, 1, vec![1.0], vec![0.0]).unwrap();
        let l1 = Affine::new(1, 1, 1, vec![w], vec![0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    fn query(cond: &str) -> Query {
        crate::vnnlib::parse(&format!(
            "(declare-const X_0 Real)(declare-const Y_0 Real)\
             (assert (>= X_0 0.9))(assert (<= X_0 1))(assert {cond})"
        ))
        .unwrap()
    }

    #[test]
    fn the_lowest_passing_bits_are_found_and_proven() {
        // y ∈ [0.9w, w] on x ∈ [0.9, 1]; counterexample: y ≥ 0.35 or y ≤ 0.26; w = 0.3 holds
        // on the float network. Quantized w: F=1 → 0.5, F=2, 3 → 0.25 (both violate),
        // F=4 → 0.3125 (y ∈ [0.28, 0.32]: holds).
        let net = scale_net(0.3);
        let q = query("(or (>= Y_0 0.35) (<= Y_0 0.26))");
        let r = quantize_query(&net, &q, &none(), &QuantizeQueryOptions::default()).unwrap();
        assert_eq!(r.status, QueryStatus::Certified, "{}", r.note);
        let c = r.chosen.unwrap();
        assert_eq!(c.fracs[1], 4, "{:?}", c.fracs);
        assert_eq!(c.qnn.layers()[1].weights().unwrap()[0], 0.3125);
        assert!(
            crate::check::query::check_query_proof(&c.qnn, &q, &c.proofs[0])
                .0
                .is_empty()
        );
        // one bit less on layer 1 is not provable (a counterexample on that QNN)
        let lower = Strategy::from_fracs(&net, &[c.fracs[0], 3])
            .unwrap()
            .apply(&net)
            .unwrap();
        let v = verify_query(&lower, &q, &none(), &SplitOptions::default()).unwrap();
        assert!(matches!(v.verdict, Verdict::Violated(_)), "{v:?}");
    }

    #[test]
    fn violated_unknown_and_bad_ranges() {
        let net = scale_net(0.3);
        // violated on the float network: y = 0.3 at x = 1
        let r = quantize_query(
            &net,
            &query("(>= Y_0 0.29)"),
            &none(),
            &QuantizeQueryOptions::default(),
        )
        .unwrap();
        assert_eq!(r.status, QueryStatus::Violated);
        assert!(r.counterexample.is_some() && r.chosen.is_none());
        // holds on the float network, but even B_u = 2 gives w = 0.25: no strategy
        let r = quantize_query(
            &net,
            &query("(<= Y_0 0.26)"),
            &none(),
            &QuantizeQueryOptions {
                max_frac: 2,
                ..QuantizeQueryOptions::default()
            },
        )
        .unwrap();
        assert_eq!(r.status, QueryStatus::Unknown);
        assert!(r.note.contains("B_u"), "{}", r.note);
        assert!(
            quantize_query(
                &net,
                &query("(<= Y_0 0.26)"),
                &none(),
                &QuantizeQueryOptions {
                    min_frac: 5,
                    max_frac: 4,
                    ..QuantizeQueryOptions::default()
                },
            )
            .is_err()
        );
    }

    #[test]
    fn the_accuracy_floor_rejects_bits_that_cost_accuracy() {
        // y_0 = 0.3·relu(x), y_1 = 0.2: x = 1 is class 0, x = 0.5 class 1. With F = 1 on the
        // output layer (w = 0.5, b = 0) x = 0.5 becomes class 0; the property (y_0 < 0.5 on
        // [0, 0.1]) holds at every F.
        let l0 = Affine::new(0, 1, 1, vec![1.0], vec![0.0]).unwrap();
        let l1 = Affine::new(1, 2, 1, vec![0.3, 0.0], vec![0.0, 0.2]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let q = crate::vnnlib::parse(
            "(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\
             (assert (>= X_0 0))(assert (<= X_0 0.1))(assert (>= Y_0 0.5))",
        )
        .unwrap();
        let plain = quantize_query(&net, &q, &none(), &QuantizeQueryOptions::default()).unwrap();
        assert_eq!(plain.status, QueryStatus::Certified, "{}", plain.note);
        assert_eq!(plain.chosen.unwrap().fracs, vec![1, 1]);
        let data = crate::data::Dataset::from_parts(1, vec![1.0, 0.5], Some(vec![0, 1])).unwrap();
        let floor = AccuracyFloor::new(&net, std::sync::Arc::new(data), 0.0);
        assert_eq!(floor.float_accuracy(), 1.0);
        let r = quantize_query(
            &net,
            &q,
            &none(),
            &QuantizeQueryOptions {
                accuracy_floor: Some(floor.clone()),
                ..QuantizeQueryOptions::default()
            },
        )
        .unwrap();
        assert_eq!(r.status, QueryStatus::Certified, "{}", r.note);
        let c = r.chosen.unwrap();
        assert!(c.fracs[1] > 1, "{:?}", c.fracs);
        assert!(floor.admits(&c.qnn));
        assert_eq!(c.qnn.predict(&[0.5]), 1);
    }

    /// Eq. (82) on the split-proof search: an expired deadline answers `unknown` (the float
    /// proof times out); a deadline during the search gives the best point proven so far,
    /// and that point's proof is one the independent checker accepts.
    #[test]
    fn a_deadline_never_certifies_an_unproven_point() {
        use std::time::{Duration, Instant};
        let net = scale_net(0.3);
        let q = query("(or (>= Y_0 0.35) (<= Y_0 0.26))");
        let at = |d: Instant| QuantizeQueryOptions {
            split: SplitOptions {
                deadline: Some(d),
                ..SplitOptions::default()
            },
            ..QuantizeQueryOptions::default()
        };
        let r = quantize_query(&net, &q, &none(), &at(Instant::now())).unwrap();
        assert_eq!(r.status, QueryStatus::Unknown);
        assert!(
            r.chosen.is_none() && r.note.contains("time budget"),
            "{}",
            r.note
        );
        for micros in [1, 100, 1000, 10_000, 100_000] {
            let d = Instant::now() + Duration::from_micros(micros);
            let r = quantize_query(&net, &q, &none(), &at(d)).unwrap();
            match r.status {
                QueryStatus::Certified => {
                    let c = r.chosen.unwrap();
                    assert_eq!(c.qnn, c.strategy.apply(&net).unwrap());
                    assert!(
                        crate::check::query::check_query_proof(&c.qnn, &q, &c.proofs[0])
                            .0
                            .is_empty()
                    );
                    assert!(c.fracs[1] >= 4, "{:?}", c.fracs);
                }
                _ => assert!(r.chosen.is_none() && r.note.contains("time budget")),
            }
        }
    }
}
