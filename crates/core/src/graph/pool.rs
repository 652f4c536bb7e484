//! 2-D average and max pooling (ONNX `AveragePool`, `MaxPool`, `GlobalAveragePool`).
//!
//! Average pooling is linear: output `(c, i, j)` is `(1/n) Σ` of its window, where `n` is the
//! window area (`count_include_pad = 1`) or the number of window positions inside the input
//! (`count_include_pad = 0`, ONNX's default). It lowers to a sparse map whose entries are
//! `1/n`; only a power-of-two `n` makes that entry (and its products with weights) exact in
//! f64. Other sizes (3×3 windows, a 7×7 global pool) are lowered through
//! [`Pool2d::to_enclosure`] with a bound on the coefficient error instead (docs/method.md,
//! eqs. (74), (75); `super::inexact`). Max pooling is not linear;
//! it is evaluated here and refused by the lowering (DeepPoly's max relaxation is future work).

use super::conv::window_out;
use super::{GraphError, SparseMap, numel};

/// Average or max.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Mean of the window.
    Average,
    /// Maximum of the window (padding never wins).
    Max,
}

/// A pooling window sliding over a `[C, H, W]` sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool2d {
    /// Average or max.
    pub kind: PoolKind,
    /// Input shape `[C, H, W]`.
    pub in_shape: [usize; 3],
    /// Output shape `[C, H_out, W_out]`.
    pub out_shape: [usize; 3],
    /// Window `[k_h, k_w]`.
    pub kernel: [usize; 2],
    /// Strides `[s_h, s_w]`.
    pub strides: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Average only: whether padding positions count in the divisor.
    pub count_include_pad: bool,
    /// Whether the node was a `GlobalAveragePool` (export writes it back as one).
    pub global: bool,
}

impl Pool2d {
    /// Builds a pooling layer and computes its output shape.
    pub fn new(
        kind: PoolKind,
        in_shape: [usize; 3],
        kernel: [usize; 2],
        strides: [usize; 2],
        pads: [usize; 4],
        count_include_pad: bool,
    ) -> Result<Self, GraphError> {
        let err = |what: String| GraphError::Shape {
            node: match kind {
                PoolKind::Average => "AveragePool".into(),
                PoolKind::Max => "MaxPool".into(),
            },
            what,
        };
        numel(&in_shape).ok_or_else(|| err(format!("input {in_shape:?} too large")))?;
        if pads[0] >= kernel[0]
            || pads[2] >= kernel[0]
            || pads[1] >= kernel[1]
            || pads[3] >= kernel[1]
        {
            return Err(err(format!(
                "pads {pads:?} must be smaller than the window {kernel:?}"
            )));
        }
        let h = window_out(in_shape[1], pads[0] + pads[2], kernel[0], strides[0]);
        let w = window_out(in_shape[2], pads[1] + pads[3], kernel[1], strides[1]);
        let (Some(h), Some(w)) = (h, w) else {
            return Err(err(format!(
                "window {kernel:?} with strides {strides:?} and pads {pads:?} does not fit input {in_shape:?}"
            )));
        };
        if in_shape.contains(&0) {
            return Err(err(format!("empty input {in_shape:?}")));
        }
        Ok(Self {
            kind,
            in_shape,
            out_shape: [in_shape[0], h, w],
            kernel,
            strides,
            pads,
            count_include_pad,
            global: false,
        })
    }

    /// Flat input indices of the window of output `(c, i, j)` that lie inside the input,
    /// and the window's full area.
    fn window(&self, c: usize, i: usize, j: usize) -> Vec<usize> {
        let [_, h, w] = self.in_shape;
        let mut v = Vec::with_capacity(self.kernel[0] * self.kernel[1]);
        for p in 0..self.kernel[0] {
            for q in 0..self.kernel[1] {
                let (Some(y), Some(x)) = (
                    (i * self.strides[0] + p).checked_sub(self.pads[0]),
                    (j * self.strides[1] + q).checked_sub(self.pads[1]),
                ) else {
                    continue;
                };
                if y < h && x < w {
                    v.push((c * h + y) * w + x);
                }
            }
        }
        v
    }

    /// For every output position (row-major `[C, H_out, W_out]`), the flat input indices of
    /// its window that lie inside the input.
    pub fn windows(&self) -> Vec<Vec<usize>> {
        self.outputs()
            .map(|(c, i, j)| self.window(c, i, j))
            .collect()
    }

    /// The divisor of an average window with `inside` positions in the input.
    fn divisor(&self, inside: usize) -> usize {
        if self.count_include_pad {
            self.kernel[0] * self.kernel[1]
        } else {
            inside
        }
    }

    fn outputs(&self) -> impl Iterator<Item = (usize, usize, usize)> {
        let [c, h, w] = self.out_shape;
        (0..c).flat_map(move |c| (0..h).flat_map(move |i| (0..w).map(move |j| (c, i, j))))
    }

    /// The pooling in plain f64.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        self.outputs()
            .map(|(c, i, j)| {
                let win = self.window(c, i, j);
                match self.kind {
                    PoolKind::Max => win.iter().map(|&k| x[k]).fold(f64::NEG_INFINITY, f64::max),
                    PoolKind::Average => {
                        win.iter().map(|&k| x[k]).sum::<f64>() / self.divisor(win.len()) as f64
                    }
                }
            })
            .collect()
    }

    /// Average pooling as an exact sparse map; `None` for max pooling or when some window's
    /// divisor is not a power of two (its reciprocal is not exact in f64).
    pub fn to_sparse(&self) -> Option<SparseMap> {
        if self.kind != PoolKind::Average {
            return None;
        }
        let n_in = self.in_shape.iter().product();
        let mut rows = Vec::new();
        for (c, i, j) in self.outputs() {
            let win = self.window(c, i, j);
            let n = self.divisor(win.len());
            if !n.is_power_of_two() {
                return None;
            }
            let coef = 1.0 / n as f64;
            rows.push(win.into_iter().map(|k| (k, coef)).collect());
        }
        SparseMap::from_rows(n_in, rows)
    }
}

impl Pool2d {
    /// Average pooling as an enclosure of the real map: entry `[fl↓(1/n), fl↑(1/n)]` (a
    /// point when `n` is a power of two), for windows whose divisor is not a power of two
    /// (docs/method.md, eq. (74)); `None` for max pooling.
    pub fn to_enclosure(&self) -> Option<super::inexact::IntervalMap> {
        if self.kind != PoolKind::Average {
            return None;
        }
        let rows = self
            .outputs()
            .map(|(c, i, j)| {
                let win = self.window(c, i, j);
                let (lo, hi) = super::inexact::recip(self.divisor(win.len()));
                let mut r: Vec<(usize, f64, f64)> = win.into_iter().map(|k| (k, lo, hi)).collect();
                r.sort_unstable_by_key(|e| e.0);
                r
            })
            .collect();
        Some(super::inexact::IntervalMap {
            cols: self.in_shape.iter().product(),
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_and_max_by_hand() {
        let x: Vec<f64> = (1..=16).map(f64::from).collect(); // 1×4×4
        let avg = Pool2d::new(PoolKind::Average, [1, 4, 4], [2, 2], [2, 2], [0; 4], false).unwrap();
        assert_eq!(avg.forward(&x), vec![3.5, 5.5, 11.5, 13.5]);
        assert_eq!(avg.to_sparse().unwrap().apply(&x), avg.forward(&x));
        let max = Pool2d {
            kind: PoolKind::Max,
            ..avg.clone()
        };
        assert_eq!(max.forward(&x), vec![6.0, 8.0, 14.0, 16.0]);
        assert!(max.to_sparse().is_none());
        // 3×3 windows: divisor 9 is not a power of two.
        let a3 = Pool2d::new(PoolKind::Average, [1, 4, 4], [3, 3], [1, 1], [0; 4], true).unwrap();
        assert!(a3.to_sparse().is_none());
        // Padding excluded from the divisor by default: corner window sees 1 value.
        let ap = Pool2d::new(
            PoolKind::Average,
            [1, 4, 4],
            [2, 2],
            [2, 2],
            [1, 1, 1, 1],
            false,
        )
        .unwrap();
        assert_eq!(ap.out_shape, [1, 3, 3]);
        assert_eq!(ap.forward(&x)[0], 1.0);
        let apc = Pool2d {
            count_include_pad: true,
            ..ap
        };
        assert_eq!(apc.forward(&x)[0], 0.25);
    }
}
