//! Lowering a layer whose fixed operators are not exact in f64: average pools whose divisor
//! `d` is not a power of two (a 3×3 window, `d = 9`; a 7×7 global pool, `d = 49`).
//!
//! `1/d` has no f64 representation, so the affine chain cannot be *the same function* as
//! the graph. Instead the layer is lowered in outward-rounded interval arithmetic
//! ([`IntervalMap`]): each pool coefficient is the enclosure `[fl↓(1/d), fl↑(1/d)]`, every
//! product and sum of the composition `Q ∘ W_op ∘ P` is rounded outward, so entry `(t, s)`
//! of the real matrix `W` lies in `[lo_ts, hi_ts]` (docs/method.md, eq. (74)). The stored
//! matrix `Ŵ` is the midpoint of each enclosure (within an ulp of the nearest float of the
//! real entry) and [`CoefError`] keeps the radius `E_ts ≥ |W_ts − Ŵ_ts|`, the same for the
//! bias: the real layer is `W v + b` with `W ∈ [Ŵ − E, Ŵ + E]`, `b ∈ [b̂ − e_b, b̂ + e_b]`.
//! Every bound of the method then adds `Σ_s E_ts·m_s + e_b,t` (eq. (75), [`CoefError::slack`])
//! to output `t`, where `m_s ≥ |v_s|` over the region.
//!
//! Directed rounding: an IEEE operation rounded to nearest is within half an ulp of the
//! real result, so `next_down`/`next_up` of it enclose the real result (also for subnormal
//! results; an overflow gives `±∞`, which the callers refuse).

use super::{GraphError, Node, SparseMap};

/// Largest `fl(x)` that is `≤` the real `x` computed to nearest as `r` (one ulp below).
fn down(r: f64) -> f64 {
    r.next_down()
}

/// Smallest `fl(x)` that is `≥` the real `x` computed to nearest as `r` (one ulp above).
fn up(r: f64) -> f64 {
    r.next_up()
}

/// Encloses the real product of `[alo, ahi]·[blo, bhi]` (outward rounded; a product that
/// underflowed to zero is widened too).
fn mul_iv(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let p = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    let lo = p.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (down(lo), up(hi))
}

/// Encloses the real sum of two intervals.
fn add_iv(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = (a.0 + b.0, a.1 + b.1);
    (
        if b.0 == 0.0 || a.0 == 0.0 {
            lo
        } else {
            down(lo)
        },
        if b.1 == 0.0 || a.1 == 0.0 { hi } else { up(hi) },
    )
}

/// An enclosure of the real `1/d` (a point for a power of two).
pub(super) fn recip(d: usize) -> (f64, f64) {
    let q = 1.0 / d as f64;
    if d.is_power_of_two() {
        (q, q)
    } else {
        (down(q), up(q))
    }
}

/// A matrix whose entries are closed intervals `[lo, hi]` enclosing real numbers, in
/// compressed rows (`(column, lo, hi)` by increasing column).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalMap {
    pub(super) cols: usize,
    pub(super) rows: Vec<Vec<(usize, f64, f64)>>,
}

impl IntervalMap {
    /// The point enclosure of an exact map.
    pub fn exact(m: &SparseMap) -> Self {
        Self {
            cols: m.cols(),
            rows: (0..m.rows())
                .map(|r| m.row(r).map(|(c, v)| (c, v, v)).collect())
                .collect(),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The enclosure of `self ∘ rhs` (`self` applied after `rhs`), outward rounded; `None` on
    /// a shape mismatch or an infinite entry.
    pub fn compose(&self, rhs: &IntervalMap) -> Option<IntervalMap> {
        if self.cols != rhs.rows() {
            return None;
        }
        let mut acc: Vec<Option<(f64, f64)>> = vec![None; rhs.cols];
        let mut touched = Vec::new();
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            for &(k, alo, ahi) in row {
                for &(j, blo, bhi) in &rhs.rows[k] {
                    let p = mul_iv((alo, ahi), (blo, bhi));
                    acc[j] = Some(match acc[j] {
                        None => {
                            touched.push(j);
                            p
                        }
                        Some(s) => add_iv(s, p),
                    });
                }
            }
            touched.sort_unstable();
            let mut out = Vec::with_capacity(touched.len());
            for &j in &touched {
                let (lo, hi) = acc[j].take()?;
                if !(lo.is_finite() && hi.is_finite()) {
                    return None;
                }
                out.push((j, lo, hi));
            }
            touched.clear();
            rows.push(out);
        }
        Some(IntervalMap {
            cols: rhs.cols,
            rows,
        })
    }
}

/// Per-entry bounds on how far a lowered layer `Ŵ v + b̂` is from the real layer of its
/// graph (docs/method.md, eq. (74)): `|W_ts − Ŵ_ts| ≤ E_ts` for the stored entries `(s, E_ts)`
/// of row `t` (an entry not listed has `E_ts = 0`: that entry of `Ŵ` is exact), and
/// `|b_t − b̂_t| ≤ bias[t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CoefError {
    /// Per output, the non-zero radii `(input, E_ts)` by increasing input.
    pub rows: Vec<Vec<(usize, f64)>>,
    /// Per output, the radius of the bias.
    pub bias: Vec<f64>,
}

impl CoefError {
    /// `σ_t ≥ Σ_s E_ts·m_s + e_b,t` for every output `t` (docs/method.md, eq. (75)): how far
    /// output `t` of the stored layer can be from the real one at any input `v` with
    /// `|v_s| ≤ m_s = input_abs[s]`. Rounded upward (every product and sum is moved one ulp
    /// up), so it is a certain upper bound; `+∞` if `input_abs` is.
    pub fn slack(&self, input_abs: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .zip(&self.bias)
            .map(|(row, &eb)| {
                row.iter()
                    .fold(eb, |acc, &(s, e)| up(acc + up(e * input_abs[s])))
            })
            .collect()
    }

    /// The largest radius of a weight or bias (for messages and tests).
    pub fn max_radius(&self) -> f64 {
        self.rows
            .iter()
            .flatten()
            .map(|&(_, e)| e)
            .chain(self.bias.iter().copied())
            .fold(0.0, f64::max)
    }
}

/// Midpoint of `[lo, hi]` and a radius `≥` its distance to either end (rounded up).
fn mid_rad(lo: f64, hi: f64) -> (f64, f64) {
    let m = 0.5 * lo + 0.5 * hi;
    let m = m.clamp(lo, hi);
    let r = up(hi - m).max(up(m - lo));
    (m, if lo == hi { 0.0 } else { r })
}

/// Whether `nodes` hold an average pool whose divisor is not a power of two for some window
/// (the lowering then goes through [`lower_enclosed`]).
pub fn has_inexact_pool(nodes: &[Node]) -> bool {
    nodes.iter().any(|n| match n {
        Node::Pool(p) => p.kind == super::PoolKind::Average && p.to_sparse().is_none(),
        _ => false,
    })
}

/// The enclosure of the composition of fixed operators (first applied first), `None` for
/// no operator.
fn fixed_enclosure(nodes: &[Node]) -> Result<Option<IntervalMap>, GraphError> {
    let mut acc: Option<IntervalMap> = None;
    for n in nodes {
        let m = match n {
            Node::Reshape(_) => continue,
            Node::MaxSum(m) => IntervalMap::exact(&m.map),
            Node::Pad(p) => IntervalMap::exact(&p.to_sparse()),
            Node::Transpose(t) => IntervalMap::exact(&t.to_sparse()),
            Node::Pool(p) => p.to_enclosure().ok_or_else(|| GraphError::Unsupported {
                node: n.op_name().into(),
                what: "only average pooling is a fixed linear operator".into(),
            })?,
            other => {
                return Err(GraphError::Unsupported {
                    node: other.op_name().into(),
                    what: "is not a fixed linear operator".into(),
                });
            }
        };
        acc = Some(match acc {
            None => m,
            Some(a) => m.compose(&a).ok_or_else(|| overflow(n))?,
        });
    }
    Ok(acc)
}

fn overflow(n: &Node) -> GraphError {
    GraphError::Unsupported {
        node: n.op_name().into(),
        what: "its enclosure overflows".into(),
    }
}

/// The layer `Q (W_op (P v) + b_op)` lowered in interval arithmetic: the stored matrix `Ŵ`
/// (compressed rows), the stored bias `b̂`, and the [`CoefError`] enclosing the real layer
/// (docs/method.md, eq. (74)).
pub fn lower_enclosed(
    pre: &[Node],
    w_op: &SparseMap,
    b_op: &[f64],
    post: &[Node],
    name: &str,
) -> Result<(SparseMap, Vec<f64>, CoefError), GraphError> {
    let fail = |what: &str| GraphError::Unsupported {
        node: name.into(),
        what: what.into(),
    };
    let mut m = IntervalMap::exact(w_op);
    if let Some(p) = fixed_enclosure(pre)? {
        m = m
            .compose(&p)
            .ok_or_else(|| fail("its enclosure overflows"))?;
    }
    let mut b: Vec<(f64, f64)> = b_op.iter().map(|&v| (v, v)).collect();
    if let Some(q) = fixed_enclosure(post)? {
        m = q
            .compose(&m)
            .ok_or_else(|| fail("its enclosure overflows"))?;
        let col = IntervalMap {
            cols: 1,
            rows: b
                .iter()
                .map(|&(lo, hi)| if lo == 0.0 { vec![] } else { vec![(0, lo, hi)] })
                .collect(),
        };
        let qb = q
            .compose(&col)
            .ok_or_else(|| fail("its bias enclosure overflows"))?;
        b = qb
            .rows
            .iter()
            .map(|r| r.first().map_or((0.0, 0.0), |&(_, lo, hi)| (lo, hi)))
            .collect();
    }
    let mut rows = Vec::with_capacity(m.rows());
    let mut err = Vec::with_capacity(m.rows());
    for r in &m.rows {
        let mut row = Vec::with_capacity(r.len());
        let mut e = Vec::new();
        for &(c, lo, hi) in r {
            let (v, rad) = mid_rad(lo, hi);
            row.push((c, v));
            if rad > 0.0 {
                e.push((c, rad));
            }
        }
        rows.push(row);
        err.push(e);
    }
    let (bias, bias_err): (Vec<f64>, Vec<f64>) = b.iter().map(|&(lo, hi)| mid_rad(lo, hi)).unzip();
    let w = SparseMap::from_rows(m.cols, rows).ok_or_else(|| fail("its shape is invalid"))?;
    Ok((
        w,
        bias,
        CoefError {
            rows: err,
            bias: bias_err,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recip_encloses_one_ninth_and_is_exact_for_powers_of_two() {
        let (lo, hi) = recip(9);
        assert!(lo < hi && 9.0 * lo < 1.0 + 1e-15 && 9.0 * hi > 1.0 - 1e-15);
        // Exact rational check: lo·9 ≤ 1 ≤ hi·9 via fused multiply-add residuals.
        assert!(lo.mul_add(9.0, -1.0) <= 0.0 && hi.mul_add(9.0, -1.0) >= 0.0);
        assert_eq!(recip(4), (0.25, 0.25));
    }

    #[test]
    fn slack_is_an_upper_bound() {
        let e = CoefError {
            rows: vec![vec![(0, 1e-17), (2, 2e-17)], vec![]],
            bias: vec![0.0, 1e-18],
        };
        let s = e.slack(&[3.0, 100.0, 5.0]);
        assert!(s[0] >= 1.3e-16 && s[0] < 1.4e-16);
        assert!(s[1] >= 1e-18);
        assert!(e.max_radius() == 2e-17);
    }
}
