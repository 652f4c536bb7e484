//! The float32 semantics (docs/method.md §17, eqs. (58b), (58c)): the weight-quantized network
//! evaluated in IEEE binary32, every dot product summed in any order, with or without FMA.
//!
//! DeepPoly bounds that network by treating each affine layer's float32 output as the exact
//! real affine map plus an additive error, `ŷ_j = W_j ẑ + b_j + e_j` with `|e_j| ≤ E_j`
//! (eq. (58b)). This module computes the `E_j` and the input box of the semantics;
//! [`crate::deeppoly::DeepPoly::run_semantics`] moves `|a_j|·E_j` into the constant of every
//! back-substituted row (`ops::affine`), and into the logit differences.

use crate::arith::inflate;

/// Unit roundoff of binary32, `u = 2^−24`.
pub const U32: f64 = 1.0 / 16_777_216.0;

/// The smallest normal binary32 magnitude, `2^−126`: the largest absolute error of one
/// operation whose result underflows (gradual underflow or flush-to-zero).
pub const F32_TINY: f64 = f32::MIN_POSITIVE as f64;

/// Largest `Σ|w||ẑ| + |b|` accepted for one neuron (`2^120`): the partial sums and products
/// then stay below `(1 + γ)·2^120 < f32::MAX ≈ 2^128`, so the evaluation never overflows
/// (a condition of eq. (58b)).
pub const MAX_MAGNITUDE: f64 = 1.329_227_995_784_916e36; // 2^120

/// Largest number of terms of one float32 dot product (`2^20`; keeps `γ32` below `0.07`).
pub const MAX_TERMS: usize = 1 << 20;

/// An upper bound of `γ32_m = m·u/(1 − m·u)`, `u = 2^−24`, computed with directed
/// rounding (`m·u` is exact for `m < 2^29`). `None` past [`MAX_TERMS`].
pub fn gamma32(m: usize) -> Option<f64> {
    if m > MAX_TERMS {
        return None;
    }
    let mu = m as f64 * U32;
    let den = (1.0 - mu).next_down();
    Some((mu / den).next_up())
}

/// The bound `E_j` of eq. (58b) for every output of an affine layer with `n` inputs:
/// `γ32_{n+1}·(v_j + |b_j|) + 4(n+1)·2^−126`, where `v_j = Σ_i |w_ji|·max|ẑ_i|`
/// (`ops::affine::error_weights`, computed in `f64`, hence the `1 + 10⁻⁶`
/// inflation). `+∞` for a neuron whose magnitude exceeds [`MAX_MAGNITUDE`] (the caller
/// refuses it: the float32 evaluation could overflow).
pub fn accumulation_errors(v: &[f64], bias: &[f64], n: usize) -> Vec<f64> {
    let Some(g) = gamma32(n + 1) else {
        return vec![f64::INFINITY; v.len()];
    };
    let tiny = 4.0 * (n + 1) as f64 * F32_TINY;
    v.iter()
        .zip(bias)
        .map(|(&vj, &b)| {
            let s = vj * (1.0 + 1e-6) + b.abs();
            if s.is_nan() || s > MAX_MAGNITUDE {
                f64::INFINITY
            } else {
                inflate(g * s + tiny)
            }
        })
        .collect()
}

/// The box of binary32 inputs of a real box: `[fl32↓(lo), fl32↑(hi)]` (each end rounded
/// outward to a binary32 value), which contains `fl32(x)` for every `x` of the box
/// (rounding to nearest is monotone). `None` if an end is beyond the binary32 range.
pub fn input_box(lo: &[f64], hi: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut l = Vec::with_capacity(lo.len());
    let mut h = Vec::with_capacity(hi.len());
    for (&a, &b) in lo.iter().zip(hi) {
        let (fa, fb) = (round_down(a)?, round_up(b)?);
        l.push(fa);
        h.push(fb);
    }
    Some((l, h))
}

/// The largest binary32 value `≤ v`, as `f64` (`None` if not finite in binary32).
pub fn round_down(v: f64) -> Option<f64> {
    let f = v as f32;
    let f = if (f as f64) > v { f.next_down() } else { f };
    f.is_finite().then_some(f as f64)
}

/// The smallest binary32 value `≥ v`, as `f64` (`None` if not finite in binary32).
pub fn round_up(v: f64) -> Option<f64> {
    let f = v as f32;
    let f = if (f as f64) < v { f.next_up() } else { f };
    f.is_finite().then_some(f as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma32_bounds_the_exact_value() {
        let g = gamma32(101).unwrap();
        let exact = 101.0 * U32 / (1.0 - 101.0 * U32);
        assert!(g >= exact && g < exact * (1.0 + 1e-12));
        assert!(gamma32(MAX_TERMS + 1).is_none());
    }

    #[test]
    fn input_box_rounds_outward_onto_f32() {
        let (l, h) = input_box(&[0.1, 1.0 / 255.0, -0.3], &[0.2, 1.0, 0.7]).unwrap();
        for (x, (lo, hi)) in [0.1, 1.0 / 255.0, -0.3].iter().zip(l.iter().zip(&h)) {
            assert!(*lo <= *x && (*lo as f32) as f64 == *lo);
            assert!(*hi >= *lo && (*hi as f32) as f64 == *hi);
        }
        // fl32(1/255) lies in the box (it may round either way).
        let p = (1.0f64 / 255.0) as f32 as f64;
        assert!(l[1] <= p && p <= h[1]);
        assert!(h[0] >= 0.2 && h[2] >= 0.7 && h[1] == 1.0);
        assert!(input_box(&[-1e300], &[0.0]).is_none());
    }

    #[test]
    fn errors_are_positive_and_refuse_overflow() {
        let e = accumulation_errors(&[3.0, 1e37], &[0.5, 0.0], 10);
        assert!(e[0] > 11.0 * U32 * 3.5 && e[0] < 1e-5);
        assert!(e[1].is_infinite());
    }
}
