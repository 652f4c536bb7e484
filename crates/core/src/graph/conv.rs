//! 2-D convolution (ONNX `Conv` with `group = 1` and `dilations = 1`).
//!
//! `y[o, i, j] = b[o] + Σ_{c, p, q} K[o, c, p, q] · x̃[c, i·s_h + p, j·s_w + q]` where `x̃` is
//! `x` padded with zeros (`pads = [top, left, bottom, right]`). It is linear in `x`, so it
//! lowers to a sparse matrix with one row per output and `C·k_h·k_w` entries per row
//! (fewer at the borders); the entries are the kernel values themselves, so quantizing the
//! kernel and lowering commute exactly.

use super::{GraphError, SparseMap, numel};

/// A 2-D convolution on a `[C, H, W]` sample.
///
/// Invariant (checked by [`Conv2d::new`]): positive sizes and strides, `w` has
/// `C_out·C·k_h·k_w` entries (`[C_out, C, k_h, k_w]` row-major), `b` has `C_out` entries,
/// all finite; the padded input is at least as large as the kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    /// Input shape `[C, H, W]`.
    pub in_shape: [usize; 3],
    /// Output shape `[C_out, H_out, W_out]`.
    pub out_shape: [usize; 3],
    /// Kernel size `[k_h, k_w]`.
    pub kernel: [usize; 2],
    /// Strides `[s_h, s_w]`.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Kernel, `[C_out, C, k_h, k_w]` row-major.
    pub w: Vec<f64>,
    /// Bias, one per output channel.
    pub b: Vec<f64>,
}

/// Output length of a sliding window: `⌊(n + pads − k)/s⌋ + 1`, or `None` if the window does
/// not fit or the stride is 0.
pub(crate) fn window_out(n: usize, pad: usize, k: usize, s: usize) -> Option<usize> {
    let padded = n.checked_add(pad)?;
    if s == 0 || k == 0 || padded < k {
        return None;
    }
    Some((padded - k) / s + 1)
}

impl Conv2d {
    /// Builds a convolution and computes its output shape.
    pub fn new(
        in_shape: [usize; 3],
        kernel: [usize; 2],
        strides: [usize; 2],
        pads: [usize; 4],
        w: Vec<f64>,
        b: Vec<f64>,
    ) -> Result<Self, GraphError> {
        let err = |what: String| GraphError::Shape {
            node: "Conv".into(),
            what,
        };
        let c_out = b.len();
        let per_out = numel(&[in_shape[0], kernel[0], kernel[1]])
            .ok_or_else(|| err("kernel too large".into()))?;
        if c_out == 0 || per_out == 0 || in_shape.contains(&0) {
            return Err(err(format!(
                "empty convolution (input {in_shape:?}, kernel {kernel:?}, {c_out} outputs)"
            )));
        }
        if Some(w.len()) != c_out.checked_mul(per_out) {
            return Err(err(format!(
                "kernel has {} values, expected {c_out}×{}×{}×{}",
                w.len(),
                in_shape[0],
                kernel[0],
                kernel[1]
            )));
        }
        let h = window_out(in_shape[1], pads[0] + pads[2], kernel[0], strides[0]);
        let wd = window_out(in_shape[2], pads[1] + pads[3], kernel[1], strides[1]);
        let (Some(h), Some(wd)) = (h, wd) else {
            return Err(err(format!(
                "kernel {kernel:?} with strides {strides:?} and pads {pads:?} does not fit input {in_shape:?}"
            )));
        };
        let out_shape = [c_out, h, wd];
        numel(&out_shape).ok_or_else(|| err(format!("output {out_shape:?} too large")))?;
        if let Some(v) = w.iter().chain(&b).find(|v| !v.is_finite()) {
            return Err(err(format!("kernel or bias is not finite ({v})")));
        }
        Ok(Self {
            in_shape,
            out_shape,
            kernel,
            strides,
            pads,
            w,
            b,
        })
    }

    /// The input positions and kernel indices that output `(o, i, j)` reads:
    /// `(input flat index, kernel flat index)` pairs (padding positions are skipped).
    fn taps(&self, o: usize, i: usize, j: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let [c_in, h, w] = self.in_shape;
        let [kh, kw] = self.kernel;
        (0..c_in).flat_map(move |c| {
            (0..kh).flat_map(move |p| {
                (0..kw).filter_map(move |q| {
                    let y = (i * self.strides[0] + p).checked_sub(self.pads[0])?;
                    let x = (j * self.strides[1] + q).checked_sub(self.pads[1])?;
                    (y < h && x < w)
                        .then_some(((c * h + y) * w + x, ((o * c_in + c) * kh + p) * kw + q))
                })
            })
        })
    }

    /// The convolution in plain f64.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let [co, ho, wo] = self.out_shape;
        let mut y = Vec::with_capacity(co * ho * wo);
        for o in 0..co {
            for i in 0..ho {
                for j in 0..wo {
                    let s: f64 = self.taps(o, i, j).map(|(xi, ki)| self.w[ki] * x[xi]).sum();
                    y.push(s + self.b[o]);
                }
            }
        }
        y
    }

    /// The linear part as a sparse map (entries are kernel values; zeros dropped).
    pub fn to_sparse(&self) -> SparseMap {
        let [co, ho, wo] = self.out_shape;
        let n_in = self.in_shape.iter().product();
        let rows = (0..co)
            .flat_map(|o| (0..ho).flat_map(move |i| (0..wo).map(move |j| (o, i, j))))
            .map(|(o, i, j)| {
                self.taps(o, i, j)
                    .map(|(xi, ki)| (xi, self.w[ki]))
                    .collect::<Vec<_>>()
            })
            .collect();
        SparseMap::from_rows(n_in, rows).expect("taps read distinct in-range inputs")
    }

    /// The bias of every output (each channel's bias repeated over its positions).
    pub fn lowered_bias(&self) -> Vec<f64> {
        let [co, ho, wo] = self.out_shape;
        (0..co)
            .flat_map(|o| std::iter::repeat_n(self.b[o], ho * wo))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_computed_convolution() {
        // 1 channel 3×3 input, 2×2 kernel, stride 1, pad 1 on the left only.
        let c = Conv2d::new(
            [1, 3, 3],
            [2, 2],
            [1, 1],
            [0, 1, 0, 0],
            vec![1.0, 2.0, 3.0, 4.0],
            vec![0.5],
        )
        .unwrap();
        assert_eq!(c.out_shape, [1, 2, 3]);
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        // Output (0,0): window cols -1..0 rows 0..1: 2·1 + 4·4 = 18 (+0.5).
        let y = c.forward(&x);
        assert_eq!(y[0], 18.5);
        // Output (0,1): cols 0..1: 1·1+2·2+3·4+4·5 = 37.
        assert_eq!(y[1], 37.5);
        assert_eq!(
            c.to_sparse().apply(&x),
            y.iter().map(|v| v - 0.5).collect::<Vec<_>>()
        );
        assert!(Conv2d::new([1, 1, 1], [2, 2], [1, 1], [0; 4], vec![0.0; 4], vec![0.0]).is_err());
        assert!(Conv2d::new([1, 3, 3], [2, 2], [0, 1], [0; 4], vec![0.0; 4], vec![0.0]).is_err());
    }
}
