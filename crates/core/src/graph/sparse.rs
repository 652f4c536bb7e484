//! Sparse linear maps with exact composition: how a layer's fixed operators (padding,
//! layout changes, average pooling) and its convolution become one affine map without
//! a single rounding (docs/method.md, "Networks with structure").
//!
//! A [`SparseMap`] is a matrix in compressed-row form. [`SparseMap::compose`] multiplies two
//! of them and refuses (returns `None`) as soon as one product or sum of the result is not
//! exactly representable in f64; the lowering then refuses the layer instead of proving
//! something about a slightly different network.

use super::MAX_ELEMENTS;

/// Below this magnitude a product's rounding error may itself underflow, so an exactness
/// test by fused multiply-add is no longer conclusive (2^-1022 · 2^53).
const TINY: f64 = f64::MIN_POSITIVE * 9_007_199_254_740_992.0;

/// `a·b` if it is exactly representable in f64, else `None`.
pub fn exact_mul(a: f64, b: f64) -> Option<f64> {
    if a == 0.0 || b == 0.0 {
        return Some(a * b);
    }
    let p = a * b;
    if !p.is_finite() || p.abs() < TINY {
        return None;
    }
    (a.mul_add(b, -p) == 0.0).then_some(p)
}

/// `a + b` if it is exactly representable in f64 (Knuth's TwoSum error is zero), else `None`.
pub fn exact_add(a: f64, b: f64) -> Option<f64> {
    let s = a + b;
    if !s.is_finite() {
        return None;
    }
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (err == 0.0).then_some(s)
}

/// A `rows × cols` matrix in compressed-row form (entries of one row sorted by column).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMap {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col: Vec<usize>,
    val: Vec<f64>,
}

impl SparseMap {
    /// Builds a map from one list of `(column, value)` entries per row (columns need not be
    /// sorted; zero values are dropped; duplicate columns are summed exactly or refused).
    pub fn from_rows(cols: usize, rows: Vec<Vec<(usize, f64)>>) -> Option<Self> {
        let n_rows = rows.len();
        let mut row_ptr = Vec::with_capacity(n_rows + 1);
        row_ptr.push(0);
        let mut col = Vec::new();
        let mut val = Vec::new();
        for mut r in rows {
            r.sort_by_key(|e| e.0);
            let start = col.len();
            for (c, v) in r {
                if c >= cols {
                    return None;
                }
                if col.len() > start && col[col.len() - 1] == c {
                    let last = val.len() - 1;
                    val[last] = exact_add(val[last], v)?;
                } else {
                    col.push(c);
                    val.push(v);
                }
            }
            row_ptr.push(col.len());
        }
        let mut m = Self {
            rows: n_rows,
            cols,
            row_ptr,
            col,
            val,
        };
        m.drop_zeros();
        Some(m)
    }

    /// The `n × n` identity.
    pub fn identity(n: usize) -> Self {
        Self {
            rows: n,
            cols: n,
            row_ptr: (0..=n).collect(),
            col: (0..n).collect(),
            val: vec![1.0; n],
        }
    }

    /// A dense row-major `rows × cols` matrix as a sparse map (zeros dropped).
    pub fn from_dense(rows: usize, cols: usize, w: &[f64]) -> Self {
        debug_assert_eq!(w.len(), rows * cols);
        let mut row_ptr = Vec::with_capacity(rows + 1);
        row_ptr.push(0);
        let mut col = Vec::new();
        let mut val = Vec::new();
        for r in 0..rows {
            for (c, &v) in w[r * cols..(r + 1) * cols].iter().enumerate() {
                if v != 0.0 {
                    col.push(c);
                    val.push(v);
                }
            }
            row_ptr.push(col.len());
        }
        Self {
            rows,
            cols,
            row_ptr,
            col,
            val,
        }
    }

    fn drop_zeros(&mut self) {
        let mut row_ptr = Vec::with_capacity(self.rows + 1);
        row_ptr.push(0);
        let mut col = Vec::with_capacity(self.col.len());
        let mut val = Vec::with_capacity(self.val.len());
        for r in 0..self.rows {
            for k in self.row_ptr[r]..self.row_ptr[r + 1] {
                if self.val[k] != 0.0 {
                    col.push(self.col[k]);
                    val.push(self.val[k]);
                }
            }
            row_ptr.push(col.len());
        }
        self.row_ptr = row_ptr;
        self.col = col;
        self.val = val;
    }

    /// Number of rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored (non-zero) entries.
    pub fn nnz(&self) -> usize {
        self.val.len()
    }

    /// The `(column, value)` entries of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        (self.row_ptr[r]..self.row_ptr[r + 1]).map(move |k| (self.col[k], self.val[k]))
    }

    /// Row `r` as its column indices and values (sorted by column), borrowed: the
    /// allocation-free form of [`SparseMap::row`] for hot loops.
    pub fn row_slices(&self, r: usize) -> (&[usize], &[f64]) {
        let (a, b) = (self.row_ptr[r], self.row_ptr[r + 1]);
        (&self.col[a..b], &self.val[a..b])
    }

    /// `M x` in plain f64.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        (0..self.rows)
            .map(|r| self.row(r).map(|(c, v)| v * x[c]).sum())
            .collect()
    }

    /// `self · rhs` (apply `rhs` first), computed exactly; `None` if the shapes do not fit,
    /// the result would exceed [`MAX_ELEMENTS`] stored entries, or some entry of the
    /// product is not exactly representable in f64.
    pub fn compose(&self, rhs: &SparseMap) -> Option<SparseMap> {
        if self.cols != rhs.rows {
            return None;
        }
        let mut acc = vec![0.0f64; rhs.cols];
        let mut touched: Vec<usize> = Vec::new();
        let mut mark = vec![false; rhs.cols];
        let mut rows = Vec::with_capacity(self.rows);
        let mut total = 0usize;
        for r in 0..self.rows {
            for (a, va) in self.row(r) {
                for (c, vb) in rhs.row(a) {
                    let p = exact_mul(va, vb)?;
                    acc[c] = exact_add(acc[c], p)?;
                    if !mark[c] {
                        mark[c] = true;
                        touched.push(c);
                    }
                }
            }
            touched.sort_unstable();
            let row: Vec<(usize, f64)> = touched.iter().map(|&c| (c, acc[c])).collect();
            for &c in &touched {
                acc[c] = 0.0;
                mark[c] = false;
            }
            touched.clear();
            total = total.checked_add(row.len())?;
            if total > MAX_ELEMENTS {
                return None;
            }
            rows.push(row);
        }
        Self::from_rows(rhs.cols, rows)
    }

    /// The dense row-major matrix, or `None` if it would exceed [`MAX_ELEMENTS`] entries.
    pub fn to_dense(&self) -> Option<Vec<f64>> {
        let n = self.rows.checked_mul(self.cols)?;
        if n > MAX_ELEMENTS {
            return None;
        }
        let mut w = vec![0.0; n];
        for r in 0..self.rows {
            for (c, v) in self.row(r) {
                w[r * self.cols + c] = v;
            }
        }
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_is_exact_or_refused() {
        let a = SparseMap::from_rows(2, vec![vec![(0, 0.5), (1, 0.25)]]).unwrap();
        let b = SparseMap::from_dense(2, 2, &[1.0, 2.0, 3.0, 4.0]);
        let ab = a.compose(&b).unwrap();
        assert_eq!(ab.to_dense().unwrap(), vec![1.25, 2.0]);
        // 0.1 · 3 is not exact in f64.
        let c = SparseMap::from_rows(1, vec![vec![(0, 0.1)]]).unwrap();
        let d = SparseMap::from_rows(1, vec![vec![(0, 3.0)]]).unwrap();
        assert!(c.compose(&d).is_none());
        // 1 + 2^-60 is not exact either.
        let e = SparseMap::from_rows(2, vec![vec![(0, 1.0), (1, 1.0)]]).unwrap();
        let f = SparseMap::from_rows(1, vec![vec![(0, 1.0)], vec![(0, 2f64.powi(-60))]]).unwrap();
        assert!(e.compose(&f).is_none());
        assert!(
            a.compose(&SparseMap::identity(3)).is_none(),
            "shape mismatch"
        );
    }

    #[test]
    fn identity_and_apply() {
        let m = SparseMap::from_dense(2, 3, &[1.0, 0.0, -2.0, 0.0, 0.5, 0.0]);
        assert_eq!(m.nnz(), 3);
        assert_eq!(m.apply(&[1.0, 2.0, 3.0]), vec![-5.0, 1.0]);
        assert_eq!(SparseMap::identity(3).compose(&m.clone()), None);
        assert_eq!(m.compose(&SparseMap::identity(3)), Some(m));
    }
}
