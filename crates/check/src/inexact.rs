//! The checker's own bound on the coefficient error of layers that cannot be lowered
//! exactly: an average pool whose divisor is not a power of two (3×3 windows: `1/9`; a 7×7
//! global pool: `1/49`) has no f64 coefficients, so the importer stores a rounded `Ŵ`.
//!
//! Nothing from the importer's error bound is trusted. For each such layer the checker
//! re-derives every column of the *real* layer from the operator descriptions with its own
//! code (`crate::lower::run`) in outward-rounded interval arithmetic (`1/n` enclosed by
//! `[x/n rounded down, x/n rounded up]`), and takes as radius of entry `(t, s)` the distance
//! from the stored `Ŵ_ts` to the far end of the enclosure, rounded up (docs/method.md,
//! eq. (74)). Whatever `Ŵ` the importer produced, the real layer lies in `Ŵ ± E`; the prover
//! then widens output `t` by `σ_t = Σ_s E_ts·m_s + e_b,t` (eq. (75)), `m_s ≥ |v_s|`.

use std::collections::BTreeMap;

use certquant_core::graph::{Node, PoolKind};
use certquant_core::model::{Affine, LayerOrigin, Network};

use crate::interval::{Interval, add_up, mul_up, sub_up};
use crate::lower::{Tournaments, run};

/// Per-entry radii `E_ts` (non-zero ones, by output) and bias radii `e_b,t` of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerError {
    rows: Vec<Vec<(usize, f64)>>,
    bias: Vec<f64>,
}

impl LayerError {
    /// `σ_t ≥ Σ_s E_ts·m_s + e_b,t` for every output `t`, rounded upward (eq. (75)).
    pub fn slack(&self, m: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .zip(&self.bias)
            .map(|(row, &eb)| {
                row.iter()
                    .fold(eb, |acc, &(s, e)| add_up(acc, mul_up(e, m[s])))
            })
            .collect()
    }
}

/// Whether the layer has an average pool among its fixed operators.
pub(crate) fn has_average_pool(o: &LayerOrigin) -> bool {
    o.pre
        .iter()
        .chain(&o.post)
        .any(|n| matches!(n, Node::Pool(p) if p.kind == PoolKind::Average))
}

/// Whether the checker's exact lowering re-derives the layer (bias and every column).
fn exact(o: &LayerOrigin, n_in: usize, cache: &mut Tournaments) -> bool {
    run::<f64>(o, Vec::new(), true, cache).is_some()
        && (0..n_in).all(|i| run(o, vec![(i, 1.0)], false, cache).is_some())
}

/// `max(hi − w, w − lo, 0)` rounded up: the distance from `w` to the far end of `[lo, hi]`.
fn radius(iv: Interval, w: f64) -> f64 {
    if iv.lo == w && iv.hi == w {
        return 0.0; // the stored entry is the real one
    }
    sub_up(iv.hi, w).max(sub_up(w, iv.lo)).max(0.0)
}

/// For every layer of `net`: `None` if it is exact (no origin, or the checker's exact
/// lowering re-derives it), else the checker's own [`LayerError`]. Fails (with a reason) if a
/// layer with an average pool cannot be enclosed either.
pub fn coef_errors(net: &Network) -> Result<Vec<Option<LayerError>>, String> {
    net.layers()
        .iter()
        .enumerate()
        .map(|(k, layer)| match layer.origin() {
            Some(o) if has_average_pool(o) => {
                let mut cache = Tournaments::default();
                if exact(o, layer.inputs(), &mut cache) {
                    Ok(None)
                } else {
                    enclose(o, layer, &mut cache).map(Some).ok_or_else(|| {
                        format!("layer {k}: its real coefficients cannot be enclosed")
                    })
                }
            }
            _ => Ok(None),
        })
        .collect()
}

/// The radii of `layer`'s stored `Ŵ`, `b̂` around the checker's enclosure of the real layer.
fn enclose(o: &LayerOrigin, layer: &Affine, cache: &mut Tournaments) -> Option<LayerError> {
    let (n_in, n_out) = (layer.inputs(), layer.outputs());
    let mut b = vec![Interval::ZERO; n_out];
    for (t, v) in run::<Interval>(o, Vec::new(), true, cache)? {
        *b.get_mut(t)? = v;
    }
    let bias = (0..n_out).map(|t| radius(b[t], layer.bias()[t])).collect();
    let mut enc: Vec<BTreeMap<usize, Interval>> = vec![BTreeMap::new(); n_out];
    for i in 0..n_in {
        for (t, v) in run(o, vec![(i, Interval::point(1.0))], false, cache)? {
            enc.get_mut(t)?.insert(i, v);
        }
    }
    let mut rows = Vec::with_capacity(n_out);
    for (t, row) in enc.iter_mut().enumerate() {
        let mut out: BTreeMap<usize, f64> = BTreeMap::new();
        // Stored entries: against the enclosure (zero where there is none).
        for (s, w) in layer.row_entries(t) {
            let iv = row.remove(&s).unwrap_or(Interval::ZERO);
            out.insert(s, radius(iv, w));
        }
        // Real entries the stored row does not have (stored zero).
        for (s, iv) in std::mem::take(row) {
            out.insert(s, radius(iv, 0.0));
        }
        rows.push(out.into_iter().filter(|&(_, r)| r > 0.0).collect());
    }
    Some(LayerError { rows, bias })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Network {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/onnx")
            .join(name);
        certquant_core::onnx::import_bytes(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A 3×3 pool (divisors 4, 6, 9) is enclosed with radii of a few ulps; a stored entry
    /// moved away from the real value gets a radius covering the move.
    #[test]
    fn a_three_by_three_pool_is_enclosed_and_a_moved_entry_is_covered() {
        use certquant_core::graph::SparseMap;
        let net = fixture("avgpool_cip0_op11.onnx");
        let errs = coef_errors(&net).unwrap();
        let k = errs
            .iter()
            .position(Option::is_some)
            .expect("an enclosed layer");
        let e = errs[k].as_ref().unwrap();
        let biggest = e.rows.iter().flatten().map(|&(_, r)| r).fold(0.0, f64::max);
        assert!(biggest > 0.0 && biggest < 1e-14, "{biggest}");
        // Move one stored entry by 1e-3: the checker's radius for it covers the move.
        let layer = &net.layers()[k];
        let mut rows: Vec<Vec<(usize, f64)>> = (0..layer.outputs())
            .map(|j| layer.row_entries(j).collect())
            .collect();
        rows[0][0].1 += 1e-3;
        let col = rows[0][0].0;
        let map = SparseMap::from_rows(layer.inputs(), rows).unwrap();
        let origin = std::sync::Arc::new(layer.origin().unwrap().clone());
        let moved = Affine::new_sparse(k, map, layer.bias().to_vec(), origin).unwrap();
        let mut cache = Tournaments::default();
        let e2 = enclose(moved.origin().unwrap(), &moved, &mut cache).unwrap();
        let r = e2.rows[0].iter().find(|&&(s, _)| s == col).unwrap().1;
        assert!(r >= 1e-3, "{r}");
        // The slack grows with the input magnitudes.
        let m = vec![1.0; layer.inputs()];
        assert!(e2.slack(&m)[0] >= 1e-3 && e.slack(&m)[0] < 1e-13);
    }

    #[test]
    fn radius_reaches_the_far_end() {
        let iv = Interval::new(0.1, 0.3);
        assert!(radius(iv, 0.2) >= 0.1);
        assert!(radius(iv, 0.5) >= 0.4);
        assert_eq!(radius(Interval::point(2.0), 2.0), 0.0);
    }
}
