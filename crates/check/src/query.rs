//! The checker's re-proof of a VNN-LIB certificate (docs/method.md §16, eqs. (51), (59), (60)).
//!
//! A [`QueryCertificate`] claims that a VNN-LIB query has no counterexample on the network.
//! The checker re-establishes it from the VNN-LIB file bytes alone:
//! 1. **Identity.** The file's SHA-256 equals the recorded one.
//! 2. **Statement.** The file is read with the core VNN-LIB reader (`certquant_core::vnnlib`)
//!    into regions: an outer box `B̄_r` that contains the exact box of the file, and the
//!    output condition as a disjunction of conjunctions of enclosed linear constraints. This
//!    is the one piece of the statement the checker **trusts** rather than re-derives, for the
//!    same reason it trusts the ONNX importer: it is the shared reading of the input files
//!    (tied to the certificate by their hashes), its rounding is outward and documented
//!    (SOUNDNESS.md), and it is tested and fuzzed on its own. Nothing the prover computes
//!    passes through it.
//! 3. **Cover** (eq. (59)). Every region's split tree, walked in preorder with a stack, is a
//!    tree; its root box contains `B̄_r`; every cut lies strictly inside its box; and every
//!    recorded box is bit-identical to the box derived from the root by substituting the cuts.
//!    Derivation is substitution, and comparison of `f64`s is exact: the leaves cover the root
//!    exactly (`[lo_k, t] ∪ [t, hi_k] = [lo_k, hi_k]`), with no rounding anywhere.
//! 4. **Proof** (eq. (60)). On every root-to-leaf path every disjunct of the region is
//!    refuted exactly once, and every refutation is re-proven on its node's box by
//!    [`linear_spec::reprove_box`](crate::linear_spec::reprove_box) (eq. (51)), the checker's
//!    own interval DeepPoly. A disjunct refuted on a box is refuted on every sub-box, so then
//!    every point of `B̄_r` lies in a leaf on which every disjunct is refuted: no counterexample.
//!
//! Nothing here uses `certquant-bounds`.

use rayon::prelude::*;
use serde::Serialize;

use certquant_core::certificate::{QueryCertificate, RefutationProof, RegionProof, sha256_hex};
use certquant_core::model::Network;
use certquant_core::vnnlib::{Query, Region};

use crate::linear_spec::{Refutation, reprove_box};

/// The re-proof of one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionCheck {
    /// Index of the region in the query.
    pub index: usize,
    /// Nodes of its split tree.
    pub nodes: usize,
    /// Leaves of its split tree.
    pub leaves: usize,
    /// Refutations re-proven.
    pub refutations: usize,
    /// Whether the tree covers the region and every refutation was re-proven.
    pub proven: bool,
    /// The largest re-proven upper bound (the weakest refutation, `< 0` when proven; `NaN`,
    /// JSON `null`, when nothing was re-proven).
    pub worst_upper: f64,
}

/// The re-proof of a VNN-LIB certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryCheck {
    /// The VNN-LIB file the certificate names (informative).
    pub file: Option<String>,
    /// Whether the file's hash matches.
    pub hash_ok: bool,
    /// Per region of the query: the re-proof (empty when the file could not be read).
    pub regions: Vec<RegionCheck>,
}

/// Checks a VNN-LIB certificate against the VNN-LIB file bytes and the network the query is
/// about. Returns the reasons for rejection (empty iff valid) and the per-region report.
pub fn check_query_certificate(
    cert: &QueryCertificate,
    query_bytes: &[u8],
    net: &Network,
) -> (Vec<String>, QueryCheck) {
    let mut reasons = Vec::new();
    let h = sha256_hex(query_bytes);
    let hash_ok = h.eq_ignore_ascii_case(&cert.sha256);
    if !hash_ok {
        reasons.push(format!(
            "VNN-LIB file hash mismatch: the file has sha256 {h}, the certificate says {}",
            cert.sha256
        ));
    }
    let mut report = QueryCheck {
        file: cert.file.clone(),
        hash_ok,
        regions: Vec::new(),
    };
    let query = match certquant_core::vnnlib::parse_bytes(query_bytes) {
        Ok(q) => q,
        Err(e) => {
            reasons.push(format!("the VNN-LIB file cannot be read: {e}"));
            return (reasons, report);
        }
    };
    let (r, regions) = check_query_proof(net, &query, &cert.regions);
    reasons.extend(r);
    report.regions = regions;
    (reasons, report)
}

/// Checks the split trees `proofs` (one per region) of `query` on `net`: cover (eq. (59))
/// and re-proof of every refutation (eqs. (51), (60)). Returns the reasons for rejection
/// (empty iff every region is proven) and the per-region report.
pub fn check_query_proof(
    net: &Network,
    query: &Query,
    proofs: &[RegionProof],
) -> (Vec<String>, Vec<RegionCheck>) {
    let mut reasons = Vec::new();
    if query.num_inputs != net.input_dim() || query.num_outputs != net.output_dim() {
        reasons.push(format!(
            "the query declares {} inputs and {} outputs, the network has {} and {}",
            query.num_inputs,
            query.num_outputs,
            net.input_dim(),
            net.output_dim()
        ));
        return (reasons, Vec::new());
    }
    if proofs.len() != query.regions.len() {
        reasons.push(format!(
            "the certificate proves {} region(s), the query has {}",
            proofs.len(),
            query.regions.len()
        ));
        return (reasons, Vec::new());
    }
    let mut checks = Vec::with_capacity(proofs.len());
    for (index, (region, proof)) in query.regions.iter().zip(proofs).enumerate() {
        let (local, check) = check_region(net, region, proof, index);
        reasons.extend(local.into_iter().map(|r| format!("region {index}: {r}")));
        checks.push(check);
    }
    (reasons, checks)
}

/// A refutation to re-prove: the node, its box, and the claims (disjunct, proof) made there.
struct Job<'a> {
    node: usize,
    lo: &'a [f64],
    hi: &'a [f64],
    claims: Vec<(usize, Refutation)>,
}

/// A box of the walk still to be matched by a node, and the disjuncts refuted above it.
struct Frame {
    lo: Vec<f64>,
    hi: Vec<f64>,
    refuted: Vec<bool>,
}

/// The structural walk (eq. (59), and the path condition of (60)): the refutations to
/// re-prove, or the first reason the tree is not a proof of the region.
fn walk<'a>(region: &Region, proof: &'a RegionProof, n: usize) -> Result<Vec<Job<'a>>, String> {
    let disjuncts = region.output.len();
    let Some(root) = proof.nodes.first() else {
        return Err("the split tree has no nodes".into());
    };
    if root.lo.len() != n || root.hi.len() != n {
        return Err(format!(
            "the root box has dimension {}/{}, the network takes {n} inputs",
            root.lo.len(),
            root.hi.len()
        ));
    }
    for i in 0..n {
        let (l, h) = (root.lo[i], root.hi[i]);
        if !(l.is_finite() && h.is_finite() && l <= h) {
            return Err(format!(
                "root box entry {i} [{l:?}, {h:?}] is not a finite interval"
            ));
        }
        if !(l <= region.lo[i] && h >= region.hi[i]) {
            return Err(format!(
                "the root box does not contain the query's box: input {i} is [{l:?}, {h:?}], \
                 the query's is [{:?}, {:?}]",
                region.lo[i], region.hi[i]
            ));
        }
    }
    let mut stack = vec![Frame {
        lo: root.lo.clone(),
        hi: root.hi.clone(),
        refuted: vec![false; disjuncts],
    }];
    let mut jobs = Vec::new();
    for (i, node) in proof.nodes.iter().enumerate() {
        let Some(Frame {
            lo,
            hi,
            mut refuted,
        }) = stack.pop()
        else {
            return Err(format!(
                "node {i} lies outside the tree (the tree is complete after node {})",
                i - 1
            ));
        };
        // exact comparison: the recorded box must be the derived one, bit for bit (−0 = +0)
        if node.lo != lo || node.hi != hi {
            return Err(format!(
                "node {i}: its box is not the one the splits above it give"
            ));
        }
        let mut claims = Vec::with_capacity(node.refuted.len());
        for r in &node.refuted {
            let d = r.disjunct;
            if d >= disjuncts {
                return Err(format!(
                    "node {i}: disjunct {d} does not exist (the region has {disjuncts})"
                ));
            }
            if refuted[d] {
                return Err(format!(
                    "node {i}: disjunct {d} is refuted twice on one path"
                ));
            }
            refuted[d] = true;
            let claim = match &r.proof {
                RefutationProof::Constraint(c) => Refutation::Constraint(*c),
                RefutationProof::Multipliers(l) => Refutation::Multipliers(l.clone()),
            };
            claims.push((d, claim));
        }
        if !claims.is_empty() {
            jobs.push(Job {
                node: i,
                lo: &node.lo,
                hi: &node.hi,
                claims,
            });
        }
        match node.split {
            Some(s) => {
                let k = s.dim;
                if k >= n {
                    return Err(format!("node {i}: split on input {k}, there are {n}"));
                }
                if !(s.at.is_finite() && lo[k] < s.at && s.at < hi[k]) {
                    return Err(format!(
                        "node {i}: cut {:?} is not strictly inside [{:?}, {:?}] of input {k}",
                        s.at, lo[k], hi[k]
                    ));
                }
                let mut right_lo = lo.clone();
                right_lo[k] = s.at;
                let mut left_hi = hi.clone();
                left_hi[k] = s.at;
                stack.push(Frame {
                    lo: right_lo,
                    hi: hi.clone(),
                    refuted: refuted.clone(),
                });
                stack.push(Frame {
                    lo,
                    hi: left_hi,
                    refuted,
                });
            }
            None => {
                if let Some(d) = refuted.iter().position(|r| !r) {
                    return Err(format!(
                        "leaf node {i}: disjunct {d} is refuted neither on its box nor on a box \
                         containing it"
                    ));
                }
            }
        }
    }
    if !stack.is_empty() {
        return Err(format!(
            "the split tree is incomplete: {} subtree(s) missing after node {} (the leaves \
             do not cover the box)",
            stack.len(),
            proof.nodes.len() - 1
        ));
    }
    Ok(jobs)
}

/// Checks one region's tree (see the module documentation).
fn check_region(
    net: &Network,
    region: &Region,
    proof: &RegionProof,
    index: usize,
) -> (Vec<String>, RegionCheck) {
    let mut check = RegionCheck {
        index,
        nodes: proof.nodes.len(),
        leaves: proof.leaves(),
        refutations: 0,
        proven: false,
        worst_upper: f64::NAN,
    };
    let jobs = match walk(region, proof, net.input_dim()) {
        Ok(j) => j,
        Err(e) => return (vec![e], check),
    };
    let results: Vec<Result<Vec<f64>, String>> = jobs
        .par_iter()
        .map(|j| {
            let outs: Vec<_> = j
                .claims
                .iter()
                .map(|(d, _)| region.output[*d].clone())
                .collect();
            let claims: Vec<_> = j.claims.iter().map(|(_, c)| c.clone()).collect();
            reprove_box(net, j.lo, j.hi, &outs, &claims)
        })
        .collect();
    let mut reasons = Vec::new();
    for (j, res) in jobs.iter().zip(results) {
        match res {
            Ok(ubs) => {
                for ((d, _), u) in j.claims.iter().zip(ubs) {
                    if u < 0.0 {
                        check.refutations += 1;
                        check.worst_upper = if check.worst_upper.is_nan() {
                            u
                        } else {
                            check.worst_upper.max(u)
                        };
                    } else {
                        reasons.push(format!(
                            "node {}: the refutation of disjunct {d} is not re-proven (upper \
                             bound {u:?}, must be < 0)",
                            j.node
                        ));
                    }
                }
            }
            Err(e) => reasons.push(format!("node {}: no proof: {e}", j.node)),
        }
    }
    check.proven = reasons.is_empty();
    (reasons, check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::certificate::{DisjunctRefutation, ProofNode, Split};
    use certquant_core::model::Affine;

    /// `y = relu(x_0) − relu(x_0)` (identically 0) on `[−1, 1]²`: the triangle relaxation
    /// forgets that the two neurons are equal and bounds `y` by 1 on the whole box, so the
    /// counterexample `y ≥ 0.5` is refuted only on the halves of `x_0`'s split at 0 (where
    /// both neurons are stable).
    fn twin() -> Network {
        let l0 = Affine::new(0, 2, 2, vec![1.0, 0.0, 1.0, 0.0], vec![0.0; 2]).unwrap();
        let l1 = Affine::new(1, 1, 2, vec![1.0, -1.0], vec![0.0]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    const TEXT: &str = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)\
             (assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 -1))(assert (<= X_1 1))\
             (assert (>= Y_0 0.5))";

    fn query() -> Query {
        certquant_core::vnnlib::parse(TEXT).unwrap()
    }

    fn node(lo: [f64; 2], hi: [f64; 2], split: Option<(usize, f64)>, refute: bool) -> ProofNode {
        ProofNode {
            lo: lo.to_vec(),
            hi: hi.to_vec(),
            refuted: if refute {
                vec![DisjunctRefutation {
                    disjunct: 0,
                    proof: RefutationProof::Constraint(0),
                    upper: -0.1,
                }]
            } else {
                Vec::new()
            },
            split: split.map(|(dim, at)| Split { dim, at }),
        }
    }

    /// Split `x_0` at 0; the right half is refuted as a whole and split again on `x_1` (its
    /// leaves inherit the refutation from their parent).
    fn tree() -> RegionProof {
        RegionProof {
            nodes: vec![
                node([-1.0, -1.0], [1.0, 1.0], Some((0, 0.0)), false),
                node([-1.0, -1.0], [0.0, 1.0], None, true),
                node([0.0, -1.0], [1.0, 1.0], Some((1, 0.0)), true),
                node([0.0, -1.0], [1.0, 0.0], None, false),
                node([0.0, 0.0], [1.0, 1.0], None, false),
            ],
        }
    }

    #[test]
    fn a_covering_tree_is_reproven_and_tampering_is_rejected() {
        let (net, q) = (twin(), query());
        let (r, checks) = check_query_proof(&net, &q, &[tree()]);
        assert!(r.is_empty(), "{r:?}");
        assert!(checks[0].proven && checks[0].leaves == 3 && checks[0].refutations == 2);
        assert!(checks[0].worst_upper < 0.0);
        // the whole box alone is not enough (the triangle relaxation)
        let whole = RegionProof {
            nodes: vec![node([-1.0, -1.0], [1.0, 1.0], None, true)],
        };
        let (r, _) = check_query_proof(&net, &q, &[whole]);
        assert!(r[0].contains("not re-proven"), "{r:?}");
        // a leaf removed: a gap in the cover
        let mut p = tree();
        p.nodes.remove(1);
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("node 1: its box"), "{r:?}");
        let mut p = tree();
        p.nodes.pop();
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("incomplete"), "{r:?}");
        // a leaf box shrunk
        let mut p = tree();
        p.nodes[4].hi[0] = 0.9;
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("node 4: its box"), "{r:?}");
        // a root that does not contain the query's box
        let mut p = tree();
        p.nodes[0].lo[1] = -0.5;
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("does not contain"), "{r:?}");
        // a cut outside its box, an extra node, a missing refutation, a double one
        let mut p = tree();
        p.nodes[0].split = Some(Split { dim: 0, at: 1.0 });
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("strictly inside"), "{r:?}");
        let mut p = tree();
        p.nodes.push(node([0.0, 0.0], [1.0, 1.0], None, true));
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("outside the tree"), "{r:?}");
        let mut p = tree();
        p.nodes[1].refuted.clear();
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("leaf node 1"), "{r:?}");
        let mut p = tree();
        p.nodes[3].refuted = p.nodes[2].refuted.clone();
        let (r, _) = check_query_proof(&net, &q, &[p]);
        assert!(r[0].contains("twice"), "{r:?}");
        // a wrong constraint index or wrong multipliers prove nothing
        for wrong in [
            RefutationProof::Constraint(1),
            RefutationProof::Multipliers(vec![0.0]),
            RefutationProof::Multipliers(vec![1.0, 1.0]),
        ] {
            let mut p = tree();
            p.nodes[1].refuted[0].proof = wrong;
            let (r, _) = check_query_proof(&net, &q, &[p]);
            assert!(r[0].contains("node 1: the refutation"), "{r:?}");
        }
        // region count
        assert!(!check_query_proof(&net, &q, &[]).0.is_empty());
    }

    #[test]
    fn the_file_is_identified_by_its_hash() {
        let net = twin();
        let cert = QueryCertificate {
            sha256: sha256_hex(TEXT.as_bytes()),
            file: None,
            regions: vec![tree()],
        };
        let (r, c) = check_query_certificate(&cert, TEXT.as_bytes(), &net);
        assert!(r.is_empty() && c.hash_ok, "{r:?}");
        // the query changed: the hash no longer matches (and the same tree does not prove
        // the weaker threshold)
        let changed = TEXT.replace("0.5", "0.0");
        let (r, c) = check_query_certificate(&cert, changed.as_bytes(), &net);
        assert!(!c.hash_ok && r[0].contains("hash mismatch"), "{r:?}");
        assert!(r.len() > 1, "{r:?}");
        let (r, _) = check_query_certificate(&cert, b"(assert", &net);
        assert!(r.iter().any(|s| s.contains("cannot be read")), "{r:?}");
    }
}
