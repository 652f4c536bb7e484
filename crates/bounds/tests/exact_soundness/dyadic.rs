//! Exact dyadic rationals `m·2^e` (every `f64` is one), cross-checked against `BigRational`.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

/// An exact dyadic rational `m·2^e`: every `f64` is one, and so is every value of the exact
/// forward pass of a network with `f64` parameters on a dyadic input. Sums and products of
/// dyadics stay dyadic, so this is exact arithmetic over the rationals without the gcd a
/// general [`BigRational`] pays on every operation (DeepPoly's constants carry terms near
/// `1e-300`, i.e. denominators of `2^1000` and more, which made `BigRational` too slow to
/// check enough points). [`Q::to_rational`] gives the value as a [`BigRational`];
/// `dyadic_arithmetic_agrees_with_big_rational` checks the two agree.
#[derive(Clone)]
pub(crate) struct Q {
    m: BigInt,
    e: i64,
}

impl Q {
    /// `0`.
    pub(crate) fn zero() -> Self {
        Q {
            m: BigInt::zero(),
            e: 0,
        }
    }

    /// The value as a (normalised) [`BigRational`].
    pub(crate) fn to_rational(&self) -> BigRational {
        if self.e >= 0 {
            BigRational::from_integer(&self.m << self.e as usize)
        } else {
            BigRational::new(self.m.clone(), BigInt::one() << (-self.e) as usize)
        }
    }

    /// `self = 0`.
    pub(crate) fn is_zero(&self) -> bool {
        self.m.is_zero()
    }

    /// `self > 0`.
    pub(crate) fn is_positive(&self) -> bool {
        self.m.is_positive()
    }

    /// `self` and `other` as integers over the common power of two `2^min(e)`.
    fn aligned(&self, other: &Q) -> (BigInt, BigInt, i64) {
        let e = self.e.min(other.e);
        (
            &self.m << (self.e - e) as usize,
            &other.m << (other.e - e) as usize,
            e,
        )
    }
}

impl std::ops::Add<&Q> for &Q {
    type Output = Q;
    fn add(self, o: &Q) -> Q {
        if self.is_zero() {
            return o.clone();
        }
        if o.is_zero() {
            return self.clone();
        }
        let (a, b, e) = self.aligned(o);
        Q { m: a + b, e }
    }
}

impl std::ops::Add<&Q> for Q {
    type Output = Q;
    fn add(self, o: &Q) -> Q {
        &self + o
    }
}

impl std::ops::Add<Q> for &Q {
    type Output = Q;
    fn add(self, o: Q) -> Q {
        self + &o
    }
}

impl std::ops::AddAssign<&Q> for Q {
    fn add_assign(&mut self, o: &Q) {
        *self = &*self + o;
    }
}

impl std::ops::AddAssign<Q> for Q {
    fn add_assign(&mut self, o: Q) {
        *self = &*self + &o;
    }
}

impl std::ops::Neg for &Q {
    type Output = Q;
    fn neg(self) -> Q {
        Q {
            m: -&self.m,
            e: self.e,
        }
    }
}

impl std::ops::Sub<&Q> for &Q {
    type Output = Q;
    fn sub(self, o: &Q) -> Q {
        self + &-o
    }
}

impl std::ops::Mul<&Q> for &Q {
    type Output = Q;
    fn mul(self, o: &Q) -> Q {
        Q {
            m: &self.m * &o.m,
            e: self.e + o.e,
        }
    }
}

impl std::ops::Mul<Q> for Q {
    type Output = Q;
    fn mul(self, o: Q) -> Q {
        &self * &o
    }
}

impl Ord for Q {
    fn cmp(&self, o: &Q) -> std::cmp::Ordering {
        let (a, b, _) = self.aligned(o);
        a.cmp(&b)
    }
}

impl PartialOrd for Q {
    fn partial_cmp(&self, o: &Q) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Q {
    fn eq(&self, o: &Q) -> bool {
        self.cmp(o).is_eq()
    }
}

impl Eq for Q {}

impl std::fmt::Display for Q {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_rational())
    }
}

impl std::fmt::Debug for Q {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_rational())
    }
}

/// The exact value of a finite `f64` (sign · mantissa · 2^exponent, subnormals too).
pub(crate) fn rat(v: f64) -> Q {
    assert!(v.is_finite(), "not finite: {v}");
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mant, exp) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    if mant == 0 {
        return Q::zero();
    }
    // strip trailing zero bits so coarse values stay small
    let tz = mant.trailing_zeros();
    let m = BigInt::from(mant >> tz);
    Q {
        m: if bits >> 63 == 1 { -m } else { m },
        e: exp + tz as i64,
    }
}

/// `a / 2^s` exactly.
pub(crate) fn dyadic(a: i64, s: u32) -> Q {
    Q {
        m: BigInt::from(a),
        e: -(s as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coarse;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rat_is_the_exact_value() {
        let big = |v: f64| BigRational::from_float(v).unwrap();
        assert_eq!(rat(0.5).to_rational(), BigRational::new(1.into(), 2.into()));
        assert_eq!(
            rat(-3.0).to_rational(),
            BigRational::from_integer((-3).into())
        );
        assert!(rat(0.0).is_zero() && rat(-0.0).is_zero());
        // 0.1 is not 1/10 but the nearest double, 3602879701896397 / 2^55
        assert_eq!(rat(0.1), dyadic(3602879701896397, 55));
        // smallest subnormal and largest finite
        assert_eq!(rat(f64::from_bits(1)), dyadic(1, 1074));
        assert_eq!(rat(f64::MAX).to_rational(), big(f64::MAX));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..2000 {
            let exp = rng.random_range(0..2047u64) << 52;
            let v = f64::from_bits(rng.random::<u64>() & !(0x7ffu64 << 52) | exp);
            assert_eq!(rat(v).to_rational(), big(v), "{v:e}");
        }
    }

    #[test]
    fn dyadic_arithmetic_agrees_with_big_rational() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let value = |rng: &mut ChaCha8Rng| match rng.random_range(0..4) {
            0 => rng.random_range(-4.0..4.0),
            1 => coarse(rng, 8),
            2 => rng.random_range(-1.0..1.0) * 1e-300,
            _ => 0.0,
        };
        for _ in 0..2000 {
            let (a, b) = (value(&mut rng), value(&mut rng));
            let (x, y) = (rat(a), rat(b));
            let (p, q) = (x.to_rational(), y.to_rational());
            assert_eq!((&x + &y).to_rational(), &p + &q);
            assert_eq!((&x - &y).to_rational(), &p - &q);
            assert_eq!((&x * &y).to_rational(), &p * &q);
            assert_eq!(x.cmp(&y), p.cmp(&q));
            assert_eq!(x.is_positive(), p.is_positive());
        }
    }
}
