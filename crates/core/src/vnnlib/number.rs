//! Decimal numbers of a VNN-LIB file as enclosures of their exact value.
//!
//! `0.03` is not a binary number: `fl(0.03)` is off by up to half an ulp. Every number is read
//! as an interval `[lo, hi]` of floats that contains the exact decimal: a single float when
//! the decimal is exactly representable (checked with integer arithmetic), else the two
//! neighbours of the correctly rounded value. Sums and products of such intervals are
//! rounded outward (one ulp, unless the operation is proven exact by TwoSum / FMA), so every
//! coefficient and constant of a constraint is an enclosure of the exact rational one
//! (SOUNDNESS.md, VNN-LIB rows; docs/method.md, eq. (48)).

/// A closed interval of reals with float ends, `lo ≤ hi`, both finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iv {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Iv {
    /// The single float `v`.
    pub fn point(v: f64) -> Self {
        Iv { lo: v, hi: v }
    }

    /// Whether the interval is one float.
    pub fn is_point(&self) -> bool {
        self.lo == self.hi
    }

    /// `−self` (exact).
    pub fn negated(self) -> Self {
        Iv {
            lo: -self.hi,
            hi: -self.lo,
        }
    }

    /// Outward-rounded sum; `None` on overflow.
    pub fn plus(self, o: Iv) -> Option<Iv> {
        let lo = sum_down(self.lo, o.lo);
        let hi = sum_up(self.hi, o.hi);
        (lo.is_finite() && hi.is_finite()).then_some(Iv { lo, hi })
    }

    /// Outward-rounded product; `None` on overflow.
    pub fn times(self, o: Iv) -> Option<Iv> {
        let cands = [
            (self.lo, o.lo),
            (self.lo, o.hi),
            (self.hi, o.lo),
            (self.hi, o.hi),
        ];
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for (a, b) in cands {
            lo = lo.min(prod_down(a, b));
            hi = hi.max(prod_up(a, b));
        }
        (lo.is_finite() && hi.is_finite()).then_some(Iv { lo, hi })
    }
}

/// The exact rounding error of `a + b` is zero (TwoSum), else one step outward.
fn sum_err(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (s, err)
}

fn sum_down(a: f64, b: f64) -> f64 {
    let (s, e) = sum_err(a, b);
    if e < 0.0 || !e.is_finite() {
        s.next_down()
    } else {
        s
    }
}

fn sum_up(a: f64, b: f64) -> f64 {
    let (s, e) = sum_err(a, b);
    if e > 0.0 || !e.is_finite() {
        s.next_up()
    } else {
        s
    }
}

/// `a·b` and the sign of its exact error (`fma(a, b, −p)`; exact for normal results).
fn prod_err(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let e = a.mul_add(b, -p);
    // Products in the subnormal range can round without fma seeing it: treat as inexact.
    if p != 0.0 && p.abs() < f64::MIN_POSITIVE * 4.0 {
        return (p, f64::NAN);
    }
    if p == 0.0 && a != 0.0 && b != 0.0 {
        return (p, f64::NAN);
    }
    (p, e)
}

fn prod_down(a: f64, b: f64) -> f64 {
    let (p, e) = prod_err(a, b);
    if e < 0.0 || e.is_nan() {
        p.next_down()
    } else {
        p
    }
}

fn prod_up(a: f64, b: f64) -> f64 {
    let (p, e) = prod_err(a, b);
    if e > 0.0 || e.is_nan() {
        p.next_up()
    } else {
        p
    }
}

/// Whether `text` has the form of a decimal number: optional sign, digits with an optional
/// point, optional exponent.
pub fn looks_numeric(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// Reads a decimal (`12`, `-0.5`, `1.5e-3`, `.25`) as an enclosure of its exact value, or a
/// reason why it is not one.
pub fn parse_number(text: &str) -> Result<Iv, String> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mant.find('.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_ok(int_part)
        || !digits_ok(frac_part)
    {
        return Err("not a decimal number".into());
    }
    let exp10: i64 = match exp {
        None => 0,
        Some(e) => {
            let eb = e.strip_prefix(['-', '+']).unwrap_or(e);
            if eb.is_empty() || !digits_ok(eb) || eb.len() > 6 {
                return Err("bad exponent".into());
            }
            e.parse::<i64>().map_err(|_| "bad exponent".to_string())?
        }
    };
    let v: f64 = text
        .parse::<f64>()
        .map_err(|_| "not a decimal number".to_string())?;
    if !v.is_finite() {
        return Err("out of the range of f64".into());
    }
    let digits: String = format!("{int_part}{frac_part}");
    let scale = exp10 - frac_part.len() as i64;
    if decimal_is_exact(&digits, scale, v) {
        let _ = neg;
        return Ok(Iv::point(v));
    }
    Ok(Iv {
        lo: v.next_down(),
        hi: v.next_up(),
    })
}

/// Whether `digits · 10^scale` is exactly the float `|v|` (conservative: `false` when unsure).
fn decimal_is_exact(digits: &str, scale: i64, v: f64) -> bool {
    let d = digits.trim_start_matches('0');
    if d.is_empty() {
        return v == 0.0;
    }
    if d.len() > 38 {
        return false;
    }
    let Ok(mut m) = d.parse::<u128>() else {
        return false;
    };
    let mut scale = scale;
    while m % 10 == 0 {
        m /= 10;
        scale += 1;
    }
    const TWO53: u128 = 1 << 53;
    let int_value = if scale >= 0 {
        if scale > 38 {
            return false;
        }
        match 10u128
            .checked_pow(scale as u32)
            .and_then(|p| m.checked_mul(p))
        {
            Some(x) if x <= TWO53 => x as f64,
            _ => return false,
        }
    } else {
        let k = (-scale) as u32;
        if k > 55 {
            return false;
        }
        let five = 5u128.pow(k);
        if m % five != 0 {
            return false;
        }
        let q = m / five;
        if q > TWO53 {
            return false;
        }
        // q / 2^k, both exact in f64 (q ≤ 2^53, k ≤ 55: a normal number)
        q as f64 / (1u128 << k) as f64
    };
    int_value == v.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_decimals_are_points() {
        for (t, v) in [
            ("0", 0.0),
            ("0.0", 0.0),
            ("-0.5", -0.5),
            ("1", 1.0),
            ("12.25", 12.25),
            ("2.5e2", 250.0),
            ("1e0", 1.0),
            (".75", 0.75),
            ("1E-1", 0.1),
        ] {
            let iv = parse_number(t).unwrap();
            if t == "1E-1" {
                assert!(!iv.is_point() && iv.lo < 0.1 && 0.1 < iv.hi, "{t}");
            } else {
                assert_eq!(iv, Iv::point(v), "{t}");
            }
        }
    }

    #[test]
    fn inexact_decimals_are_enclosed() {
        let iv = parse_number("0.029999999329447746").unwrap();
        assert!(iv.lo < iv.hi);
        let f32v = 0.03f32 as f64; // 0.0299999993294477462768554687…
        // the exact decimal is just below fl32(0.03); the enclosure must contain it
        assert!(iv.lo < f32v && f32v <= iv.hi);
        let iv = parse_number("0.1").unwrap();
        assert!(iv.lo < 0.1 && 0.1 < iv.hi);
    }

    #[test]
    fn malformed_numbers_are_errors() {
        for t in [
            "", "-", ".", "1e", "1e+", "1.2.3", "inf", "nan", "0x10", "1e999999", "1e400",
        ] {
            assert!(parse_number(t).is_err(), "{t}");
        }
    }

    #[test]
    fn interval_arithmetic_is_outward_and_exact_when_it_can_be() {
        let a = Iv::point(1.0);
        let b = Iv::point(2.0);
        assert_eq!(a.plus(b).unwrap(), Iv::point(3.0));
        assert_eq!(a.times(b).unwrap(), Iv::point(2.0));
        let t = Iv::point(0.1).plus(Iv::point(0.2)).unwrap();
        assert!(t.lo < t.hi && t.lo <= 0.30000000000000004 && t.hi >= 0.30000000000000004);
        let p = Iv::point(0.1).times(Iv::point(3.0)).unwrap();
        assert!(p.lo < p.hi);
        assert!(Iv::point(f64::MAX).plus(Iv::point(f64::MAX)).is_none());
    }
}
