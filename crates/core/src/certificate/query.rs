//! The certificate of a VNN-LIB query (docs/method.md §16, eqs. (48)–(51), (59), (60)).
//!
//! A VNN-LIB file describes a counterexample; `holds` claims none exists. The claim is
//! certified region by region (`core::vnnlib::Region`, one per input box of the file): the
//! region's box is the root of a **split tree**, every inner node splits its box in two at a
//! recorded cut `t` on one input `k` (`[lo, hi]` into `hi_k := t` and `lo_k := t`), and every
//! node may refute some of the region's disjuncts on its box — by one constraint, or by the
//! multipliers `λ ≥ 0` of eq. (50). A disjunct refuted on a node is refuted on all of its
//! descendants, so the proof is complete when every disjunct is refuted somewhere on every
//! root-to-leaf path.
//!
//! # Format
//! Added to [`super::Certificate`] as the optional field `vnnlib` (old certificates, which
//! have none, parse unchanged). A VNN-LIB certificate may carry no robustness properties
//! (`properties: []`). A certificate about the **float network itself** (`verify --vnnlib …
//! --certificate`) records an empty `strategy` and the same model as `original_model` and
//! `qnn`: nothing is quantized, and the checker then requires the two hashes to be equal
//! instead of re-deriving a quantization ([`super::Certificate::is_unquantized`]).
//!
//! Each region's tree is stored **flat, in preorder**: a node with a `split` is followed by
//! its left subtree (`hi_k = t`), then its right subtree (`lo_k = t`). Every node records its
//! box exactly as it was proven (bit-exact `f64`, see the module documentation of
//! [`super`]); the checker re-derives each box from the root and the cuts by substitution
//! alone — no arithmetic — and requires the recorded box to be identical, so the cover check
//! is exact and linear in the number of nodes (eq. (59)).

use serde::{Deserialize, Serialize};

/// What a certificate states about a VNN-LIB query: the file (by content) and the proof of
/// every region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryCertificate {
    /// Lower-case hex SHA-256 of the VNN-LIB file bytes (authoritative).
    pub sha256: String,
    /// Where the file was read from (informative; the checker's default for `--vnnlib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// One proof per region of the query, in the order the reader produces them
    /// (`core::vnnlib::Query::regions`).
    pub regions: Vec<RegionProof>,
}

/// The split tree of one region, flat in preorder (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionProof {
    /// The nodes, root first; a node with a split is followed by its two subtrees.
    pub nodes: Vec<ProofNode>,
}

/// One box of a split tree: where it is, which disjuncts are refuted on it, and how it is
/// split (absent on a leaf).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofNode {
    /// Lower ends of the box.
    pub lo: Vec<f64>,
    /// Upper ends of the box.
    pub hi: Vec<f64>,
    /// Disjuncts of the region refuted on this box (each at most once on a root-to-leaf path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refuted: Vec<DisjunctRefutation>,
    /// How the box is split; `None` for a leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

/// A cut of a box on input `dim` at `at` (`lo_dim < at < hi_dim`): the children are the box
/// with `hi_dim = at` (left, first in preorder) and with `lo_dim = at` (right).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// The input (flattened index).
    pub dim: usize,
    /// The cut (the midpoint when written by certquant; any inner value covers).
    pub at: f64,
}

/// A disjunct (conjunction of output constraints) refuted on a box (eqs. (49)–(51)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisjunctRefutation {
    /// Index of the disjunct in the region's output condition.
    pub disjunct: usize,
    /// Why no input of the box satisfies it.
    pub proof: RefutationProof,
    /// The upper bound the prover found (`< 0`; informative, the checker re-proves its own).
    pub upper: f64,
}

/// How a disjunct is refuted: one of its constraints is negative on the whole box, or a
/// non-negative combination of them is (eq. (50)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefutationProof {
    /// Index of the constraint (within the disjunct) proven negative.
    Constraint(usize),
    /// `λ_i ≥ 0`, one per constraint of the disjunct, some positive.
    Multipliers(Vec<f64>),
}

impl RegionProof {
    /// Number of leaves (nodes without a split).
    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.split.is_none()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refutations_serialize_with_a_tag() {
        let r = DisjunctRefutation {
            disjunct: 2,
            proof: RefutationProof::Multipliers(vec![0.5, 0.25]),
            upper: -0.125,
        };
        let t = serde_json::to_string(&r).unwrap();
        assert_eq!(
            t,
            r#"{"disjunct":2,"proof":{"multipliers":[0.5,0.25]},"upper":-0.125}"#
        );
        let c: DisjunctRefutation =
            serde_json::from_str(r#"{"disjunct":0,"proof":{"constraint":1},"upper":-1}"#).unwrap();
        assert_eq!(c.proof, RefutationProof::Constraint(1));
        assert!(
            serde_json::from_str::<DisjunctRefutation>(
                r#"{"disjunct":0,"proof":{"guess":1},"upper":-1}"#
            )
            .is_err()
        );
    }
}
