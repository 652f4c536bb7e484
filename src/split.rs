//! Verifying a VNN-LIB query: DeepPoly refutation of every disjunct on every input box, with
//! falsification as soon as that does not settle the query and input splitting where one box
//! is not enough (docs/method.md,
//! eqs. (49)–(53)).
//!
//! A box whose disjuncts are not all refuted is split in two at the midpoint of the input with
//! the largest **smear** `width_i · Σ_d |u_{d,i}|` (the input coefficients of the upper forms of
//! the unrefuted disjuncts' most promising constraints: how much that input moves the bound
//! that is still too weak). A disjunct refuted on a box stays refuted on its sub-boxes, so only
//! the open disjuncts go down. Sub-boxes are independent and are processed in parallel
//! (rayon), level by level, within a budget of splits and a deadline. Unproven boxes are also
//! attacked (a short PGD), so splitting can end in `violated` too.
//!
//! The answer `holds` needs every leaf refuted **and** the whole proof re-checked by the
//! independent checker (`certquant_check::query`): the search is recorded as one split tree
//! per region ([`RegionProof`], the form a certificate stores), whose cover of the region's box
//! is checked exactly (eq. (59)) and whose refutations (constraint or multipliers of each
//! disjunct on each box) are re-proven with the checker's own interval arithmetic (eqs. (51),
//! (60)).

use std::time::Instant;

use rayon::prelude::*;

use crate::bounds::{DeepPoly, ProposeMultipliers, refute_conjunction};
use crate::certificate::{DisjunctRefutation, ProofNode, RefutationProof, RegionProof, Split};
use crate::check::linear_spec::Refutation;
use crate::check::query::check_query_proof;
use crate::falsify::{Counterexample, FalsifyOptions, falsify, falsify_box};
use crate::model::Network;
use crate::spec::InputBox;
use crate::vnnlib::Query;

/// Budget and knobs of [`verify_query`].
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Largest number of box splits (0: DeepPoly on the query's boxes only).
    pub max_splits: usize,
    /// Stop with `timeout` after this instant.
    pub deadline: Option<Instant>,
    /// Falsification, run once DeepPoly on the query's own boxes does not settle it.
    pub falsify: FalsifyOptions,
    /// Falsification budget on each unproven box during splitting.
    pub leaf_falsify: FalsifyOptions,
    /// Re-prove a found proof with the independent checker before answering `holds` (on by
    /// default). A caller that tests many candidates may switch it off and re-prove only the
    /// proof it keeps (`quantize_query`; SOUNDNESS.md row 51).
    pub recheck: bool,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            max_splits: 10_000,
            deadline: None,
            falsify: FalsifyOptions::default(),
            leaf_falsify: FalsifyOptions {
                samples: 8,
                restarts: 1,
                steps: 15,
                seed: 1,
            },
            recheck: true,
        }
    }
}

/// The answer for a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No counterexample exists (every disjunct refuted on every leaf, re-proven by the
    /// checker).
    Holds,
    /// A confirmed counterexample.
    Violated(Box<Counterexample>),
    /// Neither (budget of splits exhausted, or a box that cannot be split further).
    Unknown,
    /// The deadline passed first.
    Timeout,
}

/// What [`verify_query`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOutcome {
    /// The answer.
    pub verdict: Verdict,
    /// Boxes split.
    pub splits: usize,
    /// Boxes on which DeepPoly ran.
    pub boxes: usize,
    /// Proof records (a box and the disjuncts refuted there) re-proven by the checker.
    pub leaves: usize,
    /// Deepest split level reached.
    pub depth: usize,
    /// The largest proven upper bound among refuted disjuncts (the weakest refutation, `< 0`)
    /// when the answer is `holds`.
    pub worst_upper: Option<f64>,
    /// Why the answer is `unknown` (empty otherwise).
    pub note: String,
    /// When the answer is `holds`: the proof, one split tree per region, as re-checked by the
    /// independent checker (what a certificate records).
    pub proof: Option<Vec<RegionProof>>,
}

/// One box of the search: its place in the tree, its region, its ends and the disjuncts still
/// open on it.
#[derive(Debug, Clone)]
struct Node {
    id: usize,
    region: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
    open: Vec<usize>,
    depth: usize,
}

/// The disjuncts refuted on a box: (disjunct, how, proven upper bound).
type Claims = Vec<(usize, Refutation, f64)>;

/// A processed box of the search tree: its ends, what was refuted there, and its split
/// (input, cut, left child, right child) if it has one.
#[derive(Debug, Clone)]
struct TreeNode {
    lo: Vec<f64>,
    hi: Vec<f64>,
    claims: Claims,
    split: Option<(usize, f64, usize, usize)>,
}

/// What processing one node gave.
enum Step {
    Proven(Claims),
    Split(Claims, usize, Box<Node>, Box<Node>),
    Stuck(Claims, String),
    Found(Box<Counterexample>),
    Late,
}

/// Decides `query` on `net` (see the module documentation). Errors are bad inputs (the
/// query's dimensions do not fit the network).
pub fn verify_query(
    net: &Network,
    query: &Query,
    proposer: &(dyn ProposeMultipliers + Sync),
    opts: &SplitOptions,
) -> anyhow::Result<VerifyOutcome> {
    if query.num_inputs != net.input_dim() {
        anyhow::bail!(
            "the property declares {} inputs X_i, the network takes {}",
            query.num_inputs,
            net.input_dim()
        );
    }
    if query.num_outputs != net.output_dim() {
        anyhow::bail!(
            "the property declares {} outputs Y_j, the network has {}",
            query.num_outputs,
            net.output_dim()
        );
    }
    let mut out = VerifyOutcome {
        verdict: Verdict::Unknown,
        splits: 0,
        boxes: 0,
        leaves: 0,
        depth: 0,
        worst_upper: None,
        note: String::new(),
        proof: None,
    };
    let late = || opts.deadline.is_some_and(|d| Instant::now() >= d);
    // falsification runs once DeepPoly on the query's own boxes has not settled everything
    let mut falsified = false;
    let mut frontier: Vec<Node> = query
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| Node {
            id: i,
            region: i,
            lo: r.lo.clone(),
            hi: r.hi.clone(),
            open: (0..r.output.len()).collect(),
            depth: 0,
        })
        .collect();
    // the search tree: node `i < regions` is region i's root; ids are indices
    let mut tree: Vec<Option<TreeNode>> = vec![None; frontier.len()];
    while !frontier.is_empty() {
        if late() {
            out.verdict = Verdict::Timeout;
            return Ok(out);
        }
        out.boxes += frontier.len();
        out.depth = out
            .depth
            .max(frontier.iter().map(|n| n.depth).max().unwrap_or(0));
        let steps: Vec<Step> = frontier
            .par_iter()
            .map(|n| process(net, query, n, proposer, opts))
            .collect::<anyhow::Result<_>>()?;
        let mut next = Vec::new();
        for (n, s) in frontier.iter().zip(steps) {
            let done = |tree: &mut Vec<Option<TreeNode>>, claims: Claims, split| {
                tree[n.id] = Some(TreeNode {
                    lo: n.lo.clone(),
                    hi: n.hi.clone(),
                    claims,
                    split,
                });
            };
            match s {
                Step::Found(cx) => {
                    out.verdict = Verdict::Violated(cx);
                    return Ok(out);
                }
                Step::Late => {
                    out.verdict = Verdict::Timeout;
                    return Ok(out);
                }
                Step::Proven(claims) => done(&mut tree, claims, None),
                Step::Split(claims, dim, mut a, mut b) => {
                    let (ia, ib) = (tree.len(), tree.len() + 1);
                    done(&mut tree, claims, Some((dim, a.hi[dim], ia, ib)));
                    tree.push(None);
                    tree.push(None);
                    a.id = ia;
                    b.id = ib;
                    next.push(*a);
                    next.push(*b);
                    out.splits += 1;
                }
                Step::Stuck(claims, why) => {
                    done(&mut tree, claims, None);
                    if out.note.is_empty() {
                        out.note = why;
                    }
                }
            }
        }
        if !falsified && (!next.is_empty() || !out.note.is_empty()) {
            falsified = true;
            if let Some(cx) = falsify(net, query, &opts.falsify, opts.deadline) {
                out.verdict = Verdict::Violated(Box::new(cx));
                return Ok(out);
            }
            if late() {
                out.verdict = Verdict::Timeout;
                return Ok(out);
            }
        }
        if !out.note.is_empty() {
            return Ok(out);
        }
        if out.splits > opts.max_splits {
            out.note = format!("more than --max-splits {} splits needed", opts.max_splits);
            return Ok(out);
        }
        frontier = next;
    }
    // every disjunct of every region is refuted on a cover of its box: the independent
    // checker re-checks the cover and re-proves every refutation
    let proof = match preorder(&tree, query.regions.len()) {
        Ok(p) => p,
        Err(e) => {
            out.note = format!("internal: the search tree is malformed: {e}");
            return Ok(out);
        }
    };
    let (reasons, checks) = if opts.recheck {
        check_query_proof(net, query, &proof)
    } else {
        (Vec::new(), Vec::new())
    };
    if let Some(r) = reasons.first() {
        out.note = format!("the independent checker did not accept the proof: {r}");
        return Ok(out);
    }
    out.leaves = proof
        .iter()
        .map(|p| p.nodes.iter().filter(|n| !n.refuted.is_empty()).count())
        .sum();
    out.worst_upper = checks
        .iter()
        .map(|c| c.worst_upper)
        .filter(|u| !u.is_nan())
        .reduce(f64::max);
    out.proof = Some(proof);
    out.verdict = Verdict::Holds;
    Ok(out)
}

/// The search tree of every region, flat in preorder (the certificate's form).
fn preorder(tree: &[Option<TreeNode>], regions: usize) -> Result<Vec<RegionProof>, String> {
    (0..regions)
        .map(|root| {
            let mut nodes = Vec::new();
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                let t = tree
                    .get(id)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| format!("node {id} was never processed"))?;
                let refuted = t
                    .claims
                    .iter()
                    .map(|(d, r, u)| DisjunctRefutation {
                        disjunct: *d,
                        proof: match r {
                            Refutation::Constraint(i) => RefutationProof::Constraint(*i),
                            Refutation::Multipliers(l) => RefutationProof::Multipliers(l.clone()),
                        },
                        upper: *u,
                    })
                    .collect();
                nodes.push(ProofNode {
                    lo: t.lo.clone(),
                    hi: t.hi.clone(),
                    refuted,
                    split: t.split.map(|(dim, at, _, _)| Split { dim, at }),
                });
                if let Some((_, _, left, right)) = t.split {
                    stack.push(right);
                    stack.push(left);
                }
            }
            Ok(RegionProof { nodes })
        })
        .collect()
}

/// DeepPoly on one node's box: refute its open disjuncts, else split (or attack) it.
fn process(
    net: &Network,
    query: &Query,
    n: &Node,
    proposer: &(dyn ProposeMultipliers + Sync),
    opts: &SplitOptions,
) -> anyhow::Result<Step> {
    if opts.deadline.is_some_and(|d| Instant::now() >= d) {
        return Ok(Step::Late);
    }
    let region = &query.regions[n.region];
    let bx = InputBox::new(n.lo.clone(), n.hi.clone())?;
    let dp = DeepPoly::run(net, &bx)?;
    let mut claims = Vec::new();
    let mut open = Vec::new();
    let mut smear = vec![0.0; n.lo.len()];
    for &d in &n.open {
        let p = refute_conjunction(&dp, &region.output[d], proposer)?;
        if p.refuted {
            let claim = match (p.constraint, p.multipliers) {
                (Some(i), _) => Refutation::Constraint(i),
                (None, Some(l)) => Refutation::Multipliers(l),
                (None, None) => anyhow::bail!("internal: a refutation without its proof"),
            };
            claims.push((d, claim, p.upper));
        } else {
            open.push(d);
            // influence of each input on the weakest-but-best constraint's upper bound
            let best = (0..p.forms.rows())
                .map(|r| {
                    let u = crate::bounds::arith::linear_max(
                        p.forms.coeffs(r),
                        p.forms.constant(r),
                        bx.lo(),
                        bx.hi(),
                    );
                    (u, r)
                })
                .fold(
                    (f64::INFINITY, usize::MAX),
                    |a, b| if b.0 < a.0 { b } else { a },
                );
            if best.1 != usize::MAX {
                for (s, c) in smear.iter_mut().zip(p.forms.coeffs(best.1)) {
                    *s += c.abs();
                }
            }
        }
    }
    if open.is_empty() {
        return Ok(Step::Proven(claims));
    }
    // attack the unproven part (inside the exact box)
    let lo: Vec<f64> =
        n.lo.iter()
            .zip(&region.inner_lo)
            .map(|(a, b)| a.max(*b))
            .collect();
    let hi: Vec<f64> =
        n.hi.iter()
            .zip(&region.inner_hi)
            .map(|(a, b)| a.min(*b))
            .collect();
    if n.depth > 0
        && let Some(cx) = falsify_box(
            net,
            region,
            n.region,
            &lo,
            &hi,
            &opts.leaf_falsify,
            opts.deadline,
        )
    {
        return Ok(Step::Found(Box::new(cx)));
    }
    if opts.max_splits == 0 {
        return Ok(Step::Stuck(
            claims,
            "DeepPoly does not refute every disjunct (no splitting allowed)".into(),
        ));
    }
    let (dim, score) = smear
        .iter()
        .zip(n.lo.iter().zip(&n.hi))
        .map(|(s, (l, h))| s * (h - l))
        .enumerate()
        .fold(
            (usize::MAX, 0.0),
            |a, (i, v)| if v > a.1 { (i, v) } else { a },
        );
    let mid = if dim == usize::MAX {
        f64::NAN
    } else {
        n.lo[dim] + (n.hi[dim] - n.lo[dim]) / 2.0
    };
    if !(score > 0.0 && mid > n.lo[dim] && mid < n.hi[dim]) {
        return Ok(Step::Stuck(
            claims,
            "a box that cannot be split further is not proven".into(),
        ));
    }
    let mut left = Node {
        id: n.id,
        region: n.region,
        lo: n.lo.clone(),
        hi: n.hi.clone(),
        open: open.clone(),
        depth: n.depth + 1,
    };
    let mut right = left.clone();
    left.hi[dim] = mid;
    right.lo[dim] = mid;
    Ok(Step::Split(claims, dim, Box::new(left), Box::new(right)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Affine;

    fn none() -> impl ProposeMultipliers + Sync {
        |_: &crate::bounds::LinearBounds, _: &[f64], _: &[f64], _: usize| None
    }

    /// `y = |x_0| + |x_1|` written with ReLUs, on `[−1, 1]²`: DeepPoly's triangle relaxation
    /// cannot prove `y ≥ -0.5`, one split per input makes every ReLU stable.
    fn abs_net() -> Network {
        let l0 = Affine::new(
            0,
            4,
            2,
            vec![1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, -1.0],
            vec![0.0; 4],
        )
        .unwrap();
        let l1 = Affine::new(1, 1, 4, vec![1.0; 4], vec![0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    #[test]
    fn verdicts_on_a_tiny_network() {
        let net = abs_net();
        let q = |cond: &str| {
            crate::vnnlib::parse(&format!(
                "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)\
                 (assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 -1))(assert (<= X_1 1))\
                 (assert {cond})"
            ))
            .unwrap()
        };
        let p = none();
        // holds: y ≥ 0 > −0.5 everywhere, i.e. the counterexample y ≤ −0.5 does not exist
        let r = verify_query(&net, &q("(<= Y_0 -0.5)"), &p, &SplitOptions::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Holds, "{r:?}");
        // violated: y ≥ 1.5 at a corner
        let r = verify_query(&net, &q("(>= Y_0 1.5)"), &p, &SplitOptions::default()).unwrap();
        assert!(matches!(r.verdict, Verdict::Violated(_)), "{r:?}");
        // dimensions must fit
        let mut bad = q("(>= Y_0 1.5)");
        bad.num_outputs = 3;
        assert!(verify_query(&net, &bad, &p, &SplitOptions::default()).is_err());
    }

    /// `h_1 = h_2 = relu(x_0 + x_1)` and `y = h_1 − h_2` (identically 0) on `[−1, 1]²`: the
    /// triangle relaxation forgets that the two neurons are equal and bounds `y` by 1, so the
    /// counterexample condition `y ≥ 0.5` is refuted only after splitting.
    fn twin_net() -> Network {
        let l0 = Affine::new(0, 2, 2, vec![1.0, 1.0, 1.0, 1.0], vec![0.0; 2]).unwrap();
        let l1 = Affine::new(1, 1, 2, vec![1.0, -1.0], vec![0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    #[test]
    fn a_property_provable_only_with_splitting() {
        let net = twin_net();
        let q = crate::vnnlib::parse(
            "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)\
             (assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 -1))(assert (<= X_1 1))\
             (assert (>= Y_0 0.5))",
        )
        .unwrap();
        let p = none();
        let no_split = SplitOptions {
            max_splits: 0,
            ..SplitOptions::default()
        };
        let r = verify_query(&net, &q, &p, &no_split).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
        let r = verify_query(&net, &q, &p, &SplitOptions::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Holds, "{r:?}");
        assert!(r.splits > 0 && r.leaves > 1, "{r:?}");
        // the proof: one preorder split tree, a node per box DeepPoly ran on, accepted by
        // the checker on its own
        let proof = r.proof.clone().expect("holds carries its proof");
        assert_eq!(proof.len(), 1);
        assert_eq!(proof[0].nodes.len(), r.boxes);
        assert_eq!(proof[0].leaves(), r.splits + 1);
        assert!(proof[0].nodes[0].split.is_some());
        assert!(
            crate::check::query::check_query_proof(&net, &q, &proof)
                .0
                .is_empty()
        );
        let mut cut = proof.clone();
        cut[0].nodes.truncate(r.boxes - 1);
        assert!(
            !crate::check::query::check_query_proof(&net, &q, &cut)
                .0
                .is_empty()
        );
        // a budget too small for the proof is unknown, not holds
        let tight = SplitOptions {
            max_splits: 1,
            ..SplitOptions::default()
        };
        let r = verify_query(&net, &q, &p, &tight).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
        // an expired deadline is a timeout
        let past = SplitOptions {
            deadline: Some(Instant::now()),
            ..SplitOptions::default()
        };
        assert_eq!(
            verify_query(&net, &q, &p, &past).unwrap().verdict,
            Verdict::Timeout
        );
    }
}
