//! Outward-rounded interval arithmetic on `f64`, the only arithmetic the checker's bound
//! propagation uses.
//!
//! # Why every operation is sound whatever the rounding mode
//! IEEE 754 guarantees that a basic operation (`+`, `−`, `×`, `÷`) returns the exact real
//! result rounded to a neighbouring float: under any of the four rounding modes the returned
//! value `r` is either `RD(x)` (the largest float `≤ x`) or `RU(x)` (the smallest float
//! `≥ x`), and `RU(x)` is `x` itself or the successor of `RD(x)`. Hence
//! `r.next_down() ≤ RD(x) ≤ x` and `r.next_up() ≥ RU(x) ≥ x`: stepping one float outward
//! after the operation gives a certain lower / upper bound of the exact result. On overflow
//! the rounded value is `±inf` or `±MAX`, and the same step still bounds the exact value (it
//! turns `+inf` into `MAX` for a lower bound only when the exact value exceeds `MAX`).
//!
//! Two cases are exact and are not widened, so that exact zeros stay zero (which keeps
//! coefficient vectors sparse and avoids spurious sign splits): a product with a zero factor
//! is `0`, and a sum with a zero operand is the other operand. A product `0 × ±inf` (an
//! unbounded endpoint) is `0` as well, because interval endpoints stand for sets of finite
//! reals, and `0` times any real is `0`.
//!
//! No `NaN` can arise from finite inputs: a lower endpoint is never `+inf` (it is produced by
//! `next_down`, by `0`, or by negating an upper endpoint, which is never `−inf`), so sums of
//! lower endpoints never meet `+inf + −inf`, and the zero rule removes `0 × inf`.
//!
//! Nothing here depends on `certquant-bounds`: this is the checker's own arithmetic
//! (docs/method.md, eq. (46)).

/// A float `≤` the exact sum `a + b`.
#[inline]
pub fn add_down(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        a
    } else if a == 0.0 {
        b
    } else {
        (a + b).next_down()
    }
}

/// A float `≥` the exact sum `a + b`.
#[inline]
pub fn add_up(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        a
    } else if a == 0.0 {
        b
    } else {
        (a + b).next_up()
    }
}

/// A float `≤` the exact difference `a − b`.
#[inline]
pub fn sub_down(a: f64, b: f64) -> f64 {
    add_down(a, -b)
}

/// A float `≥` the exact difference `a − b`.
#[inline]
pub fn sub_up(a: f64, b: f64) -> f64 {
    add_up(a, -b)
}

/// A float `≤` the exact product `a·b` (exactly `0` if a factor is zero).
#[inline]
pub fn mul_down(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        (a * b).next_down()
    }
}

/// A float `≥` the exact product `a·b` (exactly `0` if a factor is zero).
#[inline]
pub fn mul_up(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        (a * b).next_up()
    }
}

/// A float `≤` the exact quotient `a / b` (`b ≠ 0`).
#[inline]
pub fn div_down(a: f64, b: f64) -> f64 {
    debug_assert!(b != 0.0);
    if a == 0.0 { 0.0 } else { (a / b).next_down() }
}

/// A float `≥` the exact quotient `a / b` (`b ≠ 0`).
#[inline]
pub fn div_up(a: f64, b: f64) -> f64 {
    debug_assert!(b != 0.0);
    if a == 0.0 { 0.0 } else { (a / b).next_up() }
}

/// A closed interval `[lo, hi]` of reals with float endpoints (possibly infinite).
///
/// Used as an *enclosure*: an interval computed by the operations below contains the exact
/// real result of the same operation applied to any reals taken from the operand intervals
/// (inclusion isotonicity with outward rounding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// `[0, 0]`.
    pub const ZERO: Interval = Interval { lo: 0.0, hi: 0.0 };

    /// `[lo, hi]` (callers guarantee `lo ≤ hi`).
    #[inline]
    pub fn new(lo: f64, hi: f64) -> Self {
        debug_assert!(lo <= hi, "[{lo}, {hi}]");
        Self { lo, hi }
    }

    /// The degenerate interval `[v, v]` (exact: a float is a real).
    #[inline]
    pub fn point(v: f64) -> Self {
        Self { lo: v, hi: v }
    }

    /// Whether this is exactly `[0, 0]`.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.lo == 0.0 && self.hi == 0.0
    }

    /// Whether the real `v` lies in the interval.
    pub fn contains(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// Enclosure of `a·w` for the exact float `w`.
    #[inline]
    pub fn scale(self, w: f64) -> Self {
        if w >= 0.0 {
            Self {
                lo: mul_down(self.lo, w),
                hi: mul_up(self.hi, w),
            }
        } else {
            Self {
                lo: mul_down(self.hi, w),
                hi: mul_up(self.lo, w),
            }
        }
    }

    /// Lower end of the enclosure of `a·b` (the smallest of the four endpoint products,
    /// each rounded down).
    #[inline]
    pub fn mul_lo(self, o: Interval) -> f64 {
        mul_down(self.lo, o.lo)
            .min(mul_down(self.lo, o.hi))
            .min(mul_down(self.hi, o.lo))
            .min(mul_down(self.hi, o.hi))
    }

    /// Upper end of the enclosure of `a·b` (the largest of the four endpoint products,
    /// each rounded up).
    #[inline]
    pub fn mul_hi(self, o: Interval) -> f64 {
        mul_up(self.lo, o.lo)
            .max(mul_up(self.lo, o.hi))
            .max(mul_up(self.hi, o.lo))
            .max(mul_up(self.hi, o.hi))
    }

    /// The enclosure of `max(a, 0)` for every `a` in the interval: `[max(lo,0), max(hi,0)]`.
    #[inline]
    pub fn pos_part(self) -> Self {
        Self {
            lo: self.lo.max(0.0),
            hi: self.hi.max(0.0),
        }
    }

    /// The enclosure of `max(−a, 0)` for every `a` in the interval: `[max(−hi,0), max(−lo,0)]`.
    #[inline]
    pub fn neg_part(self) -> Self {
        Self {
            lo: (-self.hi).max(0.0),
            hi: (-self.lo).max(0.0),
        }
    }
}

/// Enclosure of `a + b`.
impl std::ops::Add for Interval {
    type Output = Interval;
    #[inline]
    fn add(self, o: Interval) -> Interval {
        Interval {
            lo: add_down(self.lo, o.lo),
            hi: add_up(self.hi, o.hi),
        }
    }
}

/// Enclosure of `−a` (exact).
impl std::ops::Neg for Interval {
    type Output = Interval;
    #[inline]
    fn neg(self) -> Interval {
        Interval {
            lo: -self.hi,
            hi: -self.lo,
        }
    }
}

/// Enclosure of `a − b`.
impl std::ops::Sub for Interval {
    type Output = Interval;
    #[inline]
    fn sub(self, o: Interval) -> Interval {
        self + (-o)
    }
}

/// Enclosure of `a·b`.
impl std::ops::Mul for Interval {
    type Output = Interval;
    #[inline]
    fn mul(self, o: Interval) -> Interval {
        Interval {
            lo: self.mul_lo(o),
            hi: self.mul_hi(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `v·2^shift` as an integer, for a dyadic `v` on that grid (exact).
    fn exact_scaled(v: f64, shift: i32) -> i128 {
        // v * 2^shift must be an integer for the values used below.
        let s = v * 2f64.powi(shift);
        assert_eq!(s.fract(), 0.0);
        s as i128
    }

    #[test]
    fn directed_operations_bound_the_exact_result() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut inexact = 0;
        for _ in 0..20000 {
            // a = k/2^40 (|k| < 2^40) and b = k'/2^20 (|k'| < 2^52): a + b needs up to 72
            // bits, so sums really round; c·d with c, d = k/2^20 (|k| < 2^30) needs up to 60.
            // All are exact integers in i128 at scale 2^40.
            let mut dy = |bits: u32, grid: i32| {
                rng.random_range(-(1i64 << bits)..(1i64 << bits)) as f64 * 2f64.powi(-grid)
            };
            let (a, b, c, d) = (dy(40, 40), dy(52, 20), dy(30, 20), dy(30, 20));
            let ea = exact_scaled(a, 40);
            let eb = exact_scaled(b, 40);
            // x ≤ n/2^40 ⟺ ⌈x·2^40⌉ ≤ n for an integer n (the scaling is exact); ≥ with ⌊⌋.
            let le = |x: f64, n: i128| (x * 2f64.powi(40)).ceil() as i128 <= n;
            let ge = |x: f64, n: i128| (x * 2f64.powi(40)).floor() as i128 >= n;
            assert!(le(add_down(a, b), ea + eb));
            assert!(ge(add_up(a, b), ea + eb));
            assert!(le(sub_down(a, b), ea - eb));
            assert!(ge(sub_up(a, b), ea - eb));
            let prod = exact_scaled(c, 20) * exact_scaled(d, 20); // c·d at scale 2^40
            let pd = mul_down(c, d);
            let pu = mul_up(c, d);
            assert!(le(pd, prod) && ge(pu, prod));
            if ((a + b) * 2f64.powi(40)) as i128 != ea + eb {
                inexact += 1;
            }
        }
        assert!(
            inexact > 10000,
            "the test must exercise rounded sums ({inexact})"
        );
    }

    #[test]
    fn zero_is_kept_exact_and_infinities_do_not_make_nan() {
        assert_eq!(add_down(0.0, 0.0), 0.0);
        assert_eq!(add_up(3.0, 0.0), 3.0);
        assert_eq!(mul_down(0.0, f64::INFINITY), 0.0);
        let a = Interval::new(f64::NEG_INFINITY, 2.0);
        let b = Interval::new(-1.0, 0.0);
        let p = a * b;
        assert!(!p.lo.is_nan() && !p.hi.is_nan());
        assert_eq!(p.hi, f64::INFINITY);
        let s = a + Interval::new(1.0, f64::INFINITY);
        assert_eq!(s.lo, f64::NEG_INFINITY);
        assert_eq!(s.hi, f64::INFINITY);
        // overflow: the exact sum MAX + MAX is above MAX, so MAX is a valid lower bound
        assert_eq!(add_down(f64::MAX, f64::MAX), f64::MAX);
        assert_eq!(add_up(f64::MAX, f64::MAX), f64::INFINITY);
    }

    #[test]
    fn interval_products_enclose_sampled_products() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..5000 {
            let mut iv = || {
                let x: f64 = rng.random_range(-5.0..5.0);
                let y: f64 = rng.random_range(-5.0..5.0);
                Interval::new(x.min(y), x.max(y))
            };
            let (a, b) = (iv(), iv());
            let p = a * b;
            for &x in &[a.lo, a.hi, (a.lo + a.hi) / 2.0] {
                for &y in &[b.lo, b.hi, (b.lo + b.hi) / 2.0] {
                    if a.contains(x) && b.contains(y) {
                        // x*y rounded to nearest lies within one ulp of the exact product;
                        // the enclosure is outward by at least that much.
                        assert!(p.lo <= x * y && x * y <= p.hi);
                    }
                }
            }
            let w: f64 = rng.random_range(-3.0..3.0);
            let s = a.scale(w);
            assert!(s.lo <= a.lo * w && a.lo * w <= s.hi);
            assert!(s.lo <= a.hi * w && a.hi * w <= s.hi);
            let pp = a.pos_part();
            let np = a.neg_part();
            for &x in &[a.lo, a.hi] {
                assert!(pp.contains(x.max(0.0)) && np.contains((-x).max(0.0)));
            }
        }
    }
}
