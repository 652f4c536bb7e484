//! Rigorous floating-point error bounds used by the sound DeepPoly implementation.
//!
//! Why this is needed: DeepPoly computes symbolic coefficients by matrix products in `f64`.
//! A rounded coefficient is not the exact one, so a bound such as `y ≥ a·x + c` would be
//! unsound if `a` were simply replaced by `fl(a)`. We keep every claimed inequality *exact
//! over the reals for the floats we store* and move each rounding error into the constant,
//! using the classical a-priori bound for a sum of `n` products evaluated in any order with
//! round-to-nearest (Higham, *Accuracy and Stability of Numerical Algorithms*, Thm 3.1 / eq. 3.5;
//! docs/method.md, eq. (11)):
//!
//! `|fl(Σ a_i b_i) − Σ a_i b_i| ≤ γ_n Σ |a_i b_i|`,  `γ_n = n·u / (1 − n·u)`,  `u = 2^-53`.
//!
//! Underflow adds at most `2^-1074` absolute error per operation; [`ABS_TINY`] per term covers it.
//! The error estimates themselves are computed in floating point, so they are inflated by
//! [`inflate`] (a relative factor far above the `n·u` they could be off by, plus an ulp).

/// Unit roundoff of `f64` with round-to-nearest: `2^-53`.
pub const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// Absolute slack per floating-point operation for gradual underflow (generous: `> 2^-1074`).
pub const ABS_TINY: f64 = 1e-300;

/// An upper bound on `γ_n = n·u/(1 − n·u)` for a sum of `n` terms (valid for `n < 2^40`)
/// (docs/method.md, eq. (11)).
pub fn gamma(n: usize) -> f64 {
    // n·u ≤ 2^-13 for n < 2^40, so 1/(1 − n·u) < 1.001; the extra (n + 2) covers the constant
    // term and the final rounding of the sum.
    ((n + 2) as f64) * UNIT_ROUNDOFF * 1.001
}

/// Inflates a non-negative error estimate that was itself computed in floating point so the
/// result is certainly an upper bound of the exact quantity (relative slack 1e-6 ≫ n·u for
/// any sum of fewer than 10^9 terms, then one ulp up) (docs/method.md, eq. (11)).
pub fn inflate(err: f64) -> f64 {
    (err * (1.0 + 1e-6) + ABS_TINY).next_up()
}

/// `a − e` rounded so that the result is ≤ the exact real difference (for `e ≥ 0`): the
/// `c ⊖ e` of docs/method.md, eq. (11).
pub fn sub_down(a: f64, e: f64) -> f64 {
    (a - e).next_down()
}

/// `a + e` rounded so that the result is ≥ the exact real sum (for `e ≥ 0`): the
/// `c ⊕ e` of docs/method.md, eq. (11).
pub fn add_up(a: f64, e: f64) -> f64 {
    (a + e).next_up()
}

/// Sound lower and upper bounds of the linear function `a·x + c` over the box `[lo, hi]`.
///
/// Each term `min/max(a_i lo_i, a_i hi_i)` is evaluated in f64; the total rounding error is at
/// most `γ_{n}·(Σ|terms| + |c|)`, which is subtracted (lower) or added (upper)
/// (docs/method.md, eqs. (9), (15)).
pub fn linear_range(a: &[f64], c: f64, lo: &[f64], hi: &[f64]) -> (f64, f64) {
    debug_assert!(a.len() == lo.len() && a.len() == hi.len());
    let (mut smin, mut smax, mut mag) = (c, c, c.abs());
    for ((&ai, &l), &h) in a.iter().zip(lo).zip(hi) {
        if ai == 0.0 {
            continue;
        }
        let (p, q) = (ai * l, ai * h);
        let (tmin, tmax) = if p <= q { (p, q) } else { (q, p) };
        smin += tmin;
        smax += tmax;
        mag += tmin.abs().max(tmax.abs());
    }
    let err = inflate(gamma(a.len()) * mag);
    (sub_down(smin, err), add_up(smax, err))
}

/// Sound lower bound of `a·x + c` over a box (see [`linear_range`]; docs/method.md, eq. (15)).
pub fn linear_min(a: &[f64], c: f64, lo: &[f64], hi: &[f64]) -> f64 {
    linear_range(a, c, lo, hi).0
}

/// Sound upper bound of `a·x + c` over a box (see [`linear_range`]; docs/method.md, eq. (15)).
pub fn linear_max(a: &[f64], c: f64, lo: &[f64], hi: &[f64]) -> f64 {
    linear_range(a, c, lo, hi).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directed_helpers_move_the_right_way() {
        assert!(sub_down(1.0, 0.0) < 1.0);
        assert!(add_up(1.0, 0.0) > 1.0);
        assert!(inflate(0.0) > 0.0);
        assert!(inflate(1.0) > 1.0);
    }

    #[test]
    fn linear_range_contains_exact_sum_of_many_small_terms() {
        // Σ 0.1·1 over 10 terms is not exactly 1.0 in binary; the range must still contain 1.0
        let a = vec![0.1; 10];
        let lo = vec![1.0; 10];
        let (l, h) = linear_range(&a, 0.0, &lo, &lo);
        assert!(l <= 1.0 && 1.0 <= h, "{l} {h}");
        assert!(h - l < 1e-13);
    }

    #[test]
    fn linear_range_is_min_and_max_over_box() {
        let (l, h) = linear_range(&[2.0, -1.0], 0.5, &[0.0, 0.0], &[1.0, 1.0]);
        assert!((l - (-0.5)).abs() < 1e-12 && l <= -0.5);
        assert!((h - 2.5).abs() < 1e-12 && h >= 2.5);
    }
}
