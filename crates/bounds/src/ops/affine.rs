//! The affine step: rows over the outputs `y = W v' + b` of an affine layer become rows over
//! its inputs `v'` (the previous layer's post-activations, or the network input).

use certquant_core::model::Affine;

use super::{Block, BoundStep, Rows, SparseRows, Substituted};
use crate::arith::gamma;
use crate::deeppoly::Side;

/// Back-substitution through one affine layer (rows over `y` → rows over `v'`).
///
/// (docs/method.md, eqs. (8), (13))
#[derive(Debug, Clone, Copy)]
pub struct AffineStep<'a> {
    layer: &'a Affine,
    v: &'a [f64],
    /// Float32 semantics: per output `t`, `E_t` of eq. (58b) (empty: exact real layer).
    fl: &'a [f64],
}

/// `v_t = Σ_s |W_ts|·m_s` for every output `t` of `layer`, where `m_s = input_abs[s]` bounds
/// `|v'_s|` over the box: the largest effect a coefficient error can have
/// (docs/method.md, eq. (13)). Depends only on the layer and the bounds below it, so
/// [`crate::deeppoly::DeepPoly`] computes it once per layer. A dense layer sums every entry
/// in column order; a sparse one its non-zero entries in the same order (the skipped terms
/// are zero).
pub fn error_weights(layer: &Affine, input_abs: &[f64]) -> Vec<f64> {
    debug_assert_eq!(input_abs.len(), layer.inputs());
    let n_in = layer.inputs();
    match layer.weights() {
        Some(w) => (0..layer.outputs())
            .map(|t| {
                w[t * n_in..(t + 1) * n_in]
                    .iter()
                    .zip(input_abs)
                    .map(|(wv, m)| wv.abs() * m)
                    .sum::<f64>()
            })
            .collect(),
        None => (0..layer.outputs())
            .map(|t| {
                layer
                    .row_entries(t)
                    .map(|(s, wv)| wv.abs() * input_abs[s])
                    .sum::<f64>()
            })
            .collect(),
    }
}

impl<'a> AffineStep<'a> {
    /// The step through `layer`, with `v = error_weights(layer, input_abs)` for bounds
    /// `|v'_s| ≤ input_abs[s]` over the box (the bound turns coefficient rounding errors into
    /// an error of the constant).
    pub fn new(layer: &'a Affine, v: &'a [f64]) -> Self {
        debug_assert_eq!(v.len(), layer.outputs());
        Self { layer, v, fl: &[] }
    }

    /// The same step for a layer evaluated in binary32 (docs/method.md, eq. (58b)): output
    /// `t` is `W_t v' + b_t + e_t` with `|e_t| ≤ fl[t]`, so a row with coefficient `a_t`
    /// reports `|a_t|·fl[t]` more error (moved into its constant by `settle`). An empty
    /// `fl` is the exact layer.
    pub fn with_float_error(mut self, fl: &'a [f64]) -> Self {
        debug_assert!(fl.is_empty() || fl.len() == self.layer.outputs());
        self.fl = fl;
        self
    }

    /// `Σ_t |a_t|·E_t` over a row's coefficients (0 for the exact layer), inflated for its
    /// own `f64` evaluation.
    fn float_error(&self, coeffs: impl Iterator<Item = (usize, f64)>) -> f64 {
        if self.fl.is_empty() {
            return 0.0;
        }
        coeffs.map(|(t, a)| a.abs() * self.fl[t]).sum::<f64>() * (1.0 + 1e-6)
    }
}

impl BoundStep for AffineStep<'_> {
    fn output_width(&self) -> usize {
        self.layer.outputs()
    }

    fn input_width(&self) -> usize {
        self.layer.inputs()
    }

    // Substitution (no relaxation: the weights and bias are the exact floats of the network):
    // `a·y + c = a·(W v' + b) + c = (aᵀW)·v' + (a·b + c)`, an equality over the reals, so the
    // lower and the upper side are computed alike (only `settle` tells them apart).
    // New coefficient `s` is `fl(Σ_t a_t·W_ts)` accumulated over `t` in order from 0, the new
    // constant `fl(c + Σ_t a_t·b_t)` (rows' zero coefficients are skipped: they add nothing).
    //
    // Rounding error reported for the row:
    // * coefficients: `|(aW)_s − fl(aW)_s| ≤ γ_width·Σ_t |a_t||W_ts|`, and `|v'_s| ≤ m_s`
    //   (`input_abs`); summed over `s` that is at most `γ·Σ_t |a_t|·v_t` with
    //   `v_t = Σ_s |W_ts|·m_s`. `v` and the sum are computed in `f64`, hence the relative
    //   inflation `1 + 10⁻⁶`;
    // * the constant, a sum of `width` products and `c`: `γ_width·mag`, with `mag` the sum of
    //   the magnitudes of its terms.
    // One `γ` for both, `γ_max(width, n_in)`, is an upper bound of each.
    //
    // A sparse layer accumulates `a_t·W_ts` over its non-zero entries only, in the same order
    // over `t` (the skipped products are zero), with the same error formula.
    fn substitute(&self, rows: Rows, _side: Side) -> Substituted {
        let layer = self.layer;
        let width = rows.width;
        let n_in = layer.inputs();
        debug_assert_eq!(width, layer.outputs());
        let b = layer.bias();
        let v = self.v;
        let g = gamma(width.max(n_in));
        let n_rows = rows.rows();
        let mut coeffs = vec![0.0; n_rows * n_in];
        let mut consts = rows.consts;
        let mut err = vec![0.0; n_rows];
        let dense = layer.weights();
        let sparse = layer.sparse_weights();
        for r in 0..n_rows {
            let row = &rows.coeffs[r * width..(r + 1) * width];
            let out = &mut coeffs[r * n_in..(r + 1) * n_in];
            let mut cst = consts[r];
            let mut mag = consts[r].abs();
            let mut prop = 0.0;
            for t in 0..width {
                let at = row[t];
                if at == 0.0 {
                    continue;
                }
                if let Some(w) = dense {
                    let wrow = &w[t * n_in..(t + 1) * n_in];
                    for (o, &wv) in out.iter_mut().zip(wrow) {
                        *o += at * wv;
                    }
                } else if let Some(m) = sparse {
                    let (cols, vals) = m.row_slices(t);
                    for (&s, &wv) in cols.iter().zip(vals) {
                        out[s] += at * wv;
                    }
                }
                let term = at * b[t];
                cst += term;
                mag += term.abs();
                prop += at.abs() * v[t];
            }
            err[r] =
                g * (prop * (1.0 + 1e-6) + mag) + self.float_error(row.iter().copied().enumerate());
            consts[r] = cst;
        }
        Substituted {
            rows: Rows::new(n_in, coeffs, consts),
            err,
        }
    }

    // The same sums over the rows' non-zero coefficients, in the same order over `t`: through
    // a sparse layer each new coefficient is accumulated in a scratch row (starting at 0, as
    // the dense output does) and the touched columns are kept, sorted; through a dense layer
    // the output is dense.
    fn substitute_sparse(&self, rows: SparseRows, _side: Side) -> (Block, Vec<f64>) {
        let layer = self.layer;
        let width = rows.width;
        let n_in = layer.inputs();
        debug_assert_eq!(width, layer.outputs());
        let b = layer.bias();
        let v = self.v;
        let g = gamma(width.max(n_in));
        let n_rows = rows.entries.len();
        let mut consts = rows.consts;
        let mut err = vec![0.0; n_rows];
        let this = *self;
        // The constant and the error of row `r` (identical for both outputs).
        let mut finish = |r: usize, e: &[(usize, f64)]| {
            let mut cst = consts[r];
            let mut mag = consts[r].abs();
            let mut prop = 0.0;
            for &(t, at) in e {
                if at == 0.0 {
                    continue;
                }
                let term = at * b[t];
                cst += term;
                mag += term.abs();
                prop += at.abs() * v[t];
            }
            err[r] = g * (prop * (1.0 + 1e-6) + mag) + this.float_error(e.iter().copied());
            consts[r] = cst;
        };
        let block = match (layer.weights(), layer.sparse_weights()) {
            (Some(w), _) => {
                let mut coeffs = vec![0.0; n_rows * n_in];
                for (r, e) in rows.entries.iter().enumerate() {
                    let out = &mut coeffs[r * n_in..(r + 1) * n_in];
                    for &(t, at) in e {
                        if at == 0.0 {
                            continue;
                        }
                        for (o, &wv) in out.iter_mut().zip(&w[t * n_in..(t + 1) * n_in]) {
                            *o += at * wv;
                        }
                    }
                    finish(r, e);
                }
                Block::Dense(Rows {
                    width: n_in,
                    coeffs,
                    consts: Vec::new(),
                })
            }
            (None, Some(m)) => {
                let mut acc = vec![0.0; n_in];
                let mut mark = vec![false; n_in];
                let mut touched: Vec<usize> = Vec::new();
                let mut entries = Vec::with_capacity(n_rows);
                for (r, e) in rows.entries.iter().enumerate() {
                    for &(t, at) in e {
                        if at == 0.0 {
                            continue;
                        }
                        let (cols, vals) = m.row_slices(t);
                        for (&s, &wv) in cols.iter().zip(vals) {
                            acc[s] += at * wv;
                            if !mark[s] {
                                mark[s] = true;
                                touched.push(s);
                            }
                        }
                    }
                    touched.sort_unstable();
                    let row: Vec<(usize, f64)> = touched.iter().map(|&s| (s, acc[s])).collect();
                    for &s in &touched {
                        acc[s] = 0.0;
                        mark[s] = false;
                    }
                    touched.clear();
                    entries.push(row);
                    finish(r, e);
                }
                Block::Sparse(SparseRows {
                    width: n_in,
                    entries,
                    consts: Vec::new(),
                })
            }
            (None, None) => unreachable!("a layer is dense or sparse"),
        };
        let block = match block {
            Block::Dense(r) => Block::Dense(Rows::new(n_in, r.coeffs, consts)),
            Block::Sparse(r) => Block::Sparse(SparseRows { consts, ..r }),
        };
        (block, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Affine {
        // y0 = 0.1 v0 − 0.3 v1 + 0.2, y1 = 0.7 v0 + 0.9 v1 − 0.4
        Affine::new(0, 2, 2, vec![0.1, -0.3, 0.7, 0.9], vec![0.2, -0.4]).unwrap()
    }

    #[test]
    fn substitutes_the_layer_and_reports_a_small_positive_error() {
        let l = layer();
        let m = [1.0, 2.0];
        let rows = Rows::new(2, vec![1.0, 0.0, 0.0, -2.0], vec![0.5, 0.0]);
        let v = error_weights(&l, &m);
        let s = AffineStep::new(&l, &v).substitute(rows, Side::Lower);
        assert_eq!(s.rows.width, 2);
        assert_eq!(&s.rows.coeffs[..2], &[0.1, -0.3]);
        assert_eq!(&s.rows.coeffs[2..], &[-1.4, -1.8]);
        assert!((s.rows.consts[0] - 0.7).abs() < 1e-15);
        assert!((s.rows.consts[1] - 0.8).abs() < 1e-15);
        // γ·(|a|·v + mag): positive, and tiny next to the values
        assert!(s.err.iter().all(|&e| e > 0.0 && e < 1e-14));
    }

    #[test]
    fn settled_rows_bound_the_affine_expression_on_both_sides() {
        let l = layer();
        let m = [1.0, 1.0];
        let a = vec![0.3, -1.7];
        let rows = Rows::new(2, a.clone(), vec![0.1]);
        let v = error_weights(&l, &m);
        let step = AffineStep::new(&l, &v);
        let lower = step
            .substitute(rows.clone(), Side::Lower)
            .settle(Side::Lower);
        let upper = step.substitute(rows, Side::Upper).settle(Side::Upper);
        assert_eq!(lower.coeffs, upper.coeffs);
        assert!(lower.consts[0] < upper.consts[0]);
        for x in [[-1.0, -1.0], [0.3, -0.6], [1.0, 0.25]] {
            let y = l.apply(&x);
            let exact = a[0] * y[0] + a[1] * y[1] + 0.1;
            let eval = |r: &Rows| r.coeffs[0] * x[0] + r.coeffs[1] * x[1] + r.consts[0];
            assert!(eval(&lower) <= exact + 1e-12 && exact <= eval(&upper) + 1e-12);
        }
    }
}
