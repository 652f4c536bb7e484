//! Deterministic numerics: random numbers from [`ChaCha8Rng`] through our own
//! integer/float conversions, a seed-only shuffle, and `exp`/`ln` from IEEE-754 basic
//! operations, so that training gives the same bits on every platform.
//!
//! Why not `libm`, which is portable too: it is another algorithm, and nothing makes its last
//! bits agree with these on every input, so switching could make the README's `certquant train`
//! command stop reproducing the committed demo network (`assets/demo/fashion_mlp.onnx`) and
//! with it the demo's output, which must stay as it is.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

/// Uniform in `[0, 1)` from the top 53 bits of one `u64` (exact, platform-independent).
pub(super) fn unit_f64(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1_u64 << 53) as f64)
}

/// Uniform integer in `0..n` (`n > 0`) by rejection sampling, without modulo bias.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    // Values below `2^64 mod n` would make the low residues more likely; reject them.
    let threshold = n.wrapping_neg() % n;
    loop {
        let x = rng.next_u64();
        if x >= threshold {
            return x % n;
        }
    }
}

/// Fisher–Yates shuffle with [`below`], so the permutation depends only on the seed.
pub(super) fn shuffle(v: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// High part of `ln 2` (fdlibm's split): its low 32 bits are zero, so `k·LN2_HI` is exact
/// for `|k| < 2^11`.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 - LN2_HI`, rounded.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// `e^x` for `x ≤ 0` from basic IEEE operations only (portable bits; relative error ~1e-16).
/// Values below `e^-708` are returned as 0, which is harmless next to the softmax maximum `1`.
pub(super) fn det_exp(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < -708.0 {
        return 0.0;
    }
    // x = k·ln2 + r with |r| ≤ ln2/2.
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series to degree 13 in Horner form: error < 1e-17 on |r| ≤ 0.35.
    let mut p = 1.0;
    for i in (1..=13).rev() {
        p = 1.0 + p * r / f64::from(i);
    }
    // 2^k is a normal number for -1022 ≤ k ≤ 1 (k ≥ -1022 since x ≥ -708).
    let scale = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    p * scale
}

/// Natural logarithm of a positive normal `y` from basic IEEE operations only (portable bits).
/// Used for the reported loss, where `y` is a softmax denominator in `[1, classes]`.
pub(super) fn det_ln(y: f64) -> f64 {
    if !(y.is_normal() && y > 0.0) {
        return f64::NAN;
    }
    let bits = y.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1_u64 << 52) - 1)) | (1023_u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2·atanh(s), s = (m-1)/(m+1), |s| ≤ 0.172: odd series to s^23.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut sum = 0.0;
    for k in (0..12).rev() {
        sum = 1.0 / f64::from(2 * k + 1) + s2 * sum;
    }
    let e = e as f64;
    (e * LN2_HI + 2.0 * s * sum) + e * LN2_LO
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn portable_exp_and_ln_are_accurate() {
        let mut x = 0.0;
        while x > -750.0 {
            let (ours, std) = (det_exp(x), x.exp());
            if x >= -708.0 {
                assert!((ours - std).abs() <= 4.0 * f64::EPSILON * std, "exp({x})");
            } else {
                assert!(ours == 0.0 && std < 1e-307);
            }
            x -= 0.137;
        }
        assert_eq!(det_exp(0.0), 1.0);
        let mut y = 1e-300;
        while y < 1e300 {
            let (ours, std) = (det_ln(y), y.ln());
            assert!(
                (ours - std).abs() <= 4.0 * f64::EPSILON * std.abs().max(1.0),
                "ln({y})"
            );
            y *= 1.377;
        }
        assert_eq!(det_ln(1.0), 0.0);
        assert!(det_ln(0.0).is_nan() && det_ln(-1.0).is_nan());
    }

    #[test]
    fn shuffle_is_a_permutation_and_uniform_ish() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut counts = [0_usize; 5];
        for _ in 0..5000 {
            let mut v: Vec<usize> = (0..5).collect();
            shuffle(&mut v, &mut rng);
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
            counts[v[0]] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
    }
}
