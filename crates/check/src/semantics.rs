//! The checker's own code for the integer-only semantics (docs/method.md §17, eqs. (54)–(58)).
//!
//! A certificate with [`Semantics::Integer`] claims its properties for the program an integer
//! runtime executes: activations rounded half to even onto unsigned fixed-point formats and
//! saturated (eq. (54)), integer accumulators of a declared width (eq. (57)). This module
//! re-establishes what that claim rests on besides the bounds, without calling
//! `certquant_core::semantics` for anything but the *format numbers* (`Q^a`, `F^a`, `b_acc`):
//! * [`act_code`] / [`act_value`]: eq. (54) from the `f64` bit pattern with integer shifts
//!   (never `ActFormat::code`); the prover quantizes the input box with it
//!   ([`crate::prove::Prover::with_formats`]);
//! * [`weight_codes`]: the integer codes `w = Ŵ·2^F` of a QNN layer, read from the QNN's
//!   bits with [`crate::quant::round_scaled`] and accepted only if they are exact and in range;
//! * [`check_overflow`]: eq. (57) for every row of every layer, in `i128` with checked
//!   arithmetic;
//! * [`check_integer_semantics`]: all of the above for a certificate, plus the shape rules
//!   (one format per layer input, no input map), returning the formats the prover needs.

use certquant_core::certificate::Certificate;
use certquant_core::model::{Affine, Network};
use certquant_core::semantics::{ActFormat, IntegerSemantics, Semantics};

use crate::quant::{round_scaled, value_of_code};

/// Largest activation width the checker accepts (codes below `2^31`).
const MAX_Q: u32 = 31;
/// Largest activation fractional width the checker accepts (`code·2^−F` exact in `f64`).
const MAX_F: u32 = 40;

/// `v = (−1)^neg · sig · 2^exp` exactly, for finite `v` (the checker's own decomposition).
fn split(v: f64) -> (bool, u64, i32) {
    let bits = v.to_bits();
    let neg = bits >> 63 == 1;
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1u64 << 52) - 1);
    if biased == 0 {
        (neg, mantissa, -1074)
    } else {
        (neg, mantissa | (1u64 << 52), biased - 1075)
    }
}

/// `⌊sig·2^e⌉` with ties to even, exactly, saturating at `2^62` (above every activation
/// code). `sig < 2^53`.
fn round_even_shifted(sig: u64, e: i32) -> u64 {
    const SAT: u64 = 1 << 62;
    if sig == 0 {
        return 0;
    }
    if e >= 0 {
        // sig < 2^53: sig·2^e < 2^62 iff it fits; otherwise saturate.
        if e >= 62 || (sig >> (62 - e)) != 0 {
            SAT
        } else {
            sig << e
        }
    } else {
        let s = (-e) as u32;
        if s > 54 {
            // sig < 2^53 < 2^(s−1): strictly below one half.
            return 0;
        }
        let q = sig >> s;
        let rem = sig - (q << s);
        let half = 1u64 << (s - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    }
}

/// The code of `r_A(v)` (eq. (54)): `clamp(⌊v·2^F⌉_even, 0, 2^Q − 1)`, computed exactly from
/// the bit pattern of `v` (`v·2^F = ±sig·2^(exp+F)`, rounded with integer shifts). `−∞` and
/// every negative value give `0`, `+∞` gives `2^Q − 1`; NaN gives `None` (no proof may rest
/// on it).
pub fn act_code(v: f64, a: ActFormat) -> Option<i64> {
    let (total, frac) = checked_format(a)?;
    let max = (1u64 << total) - 1;
    if v.is_nan() {
        return None;
    }
    if v.is_infinite() {
        return Some(if v > 0.0 { max as i64 } else { 0 });
    }
    let (neg, sig, exp) = split(v);
    if neg {
        // A negative real rounds to a non-positive integer: clamped to 0.
        return Some(0);
    }
    Some(round_even_shifted(sig, exp + frac as i32).min(max) as i64)
}

/// `r_A(v)` itself (eq. (54)): `act_code(v)·2^−F`, exact in `f64` (`code < 2^31`, `F ≤ 40`).
pub fn act_value(v: f64, a: ActFormat) -> Option<f64> {
    let (_, frac) = checked_format(a)?;
    act_code(v, a).map(|k| value_of_code(k, frac))
}

/// The saturation value `M = (2^Q − 1)·2^−F` and the half step `δ = 2^−(F+1)` of a format
/// (both exact in `f64`), or `None` if the format is outside the range the checker handles.
pub fn saturation_and_half_step(a: ActFormat) -> Option<(f64, f64)> {
    let (total, frac) = checked_format(a)?;
    let m = value_of_code((1i64 << total) - 1, frac);
    // 2^−(F+1) from its bit pattern: biased exponent 1023 − F − 1 (F ≤ 40: normal).
    let delta = f64::from_bits(u64::from(1022 - frac) << 52);
    Some((m, delta))
}

/// `(Q^a, F^a)` if `1 ≤ Q^a ≤ 31` and `F^a ≤ 40` (the core type enforces this on parsing;
/// the checker re-checks what its arithmetic needs).
fn checked_format(a: ActFormat) -> Option<(u32, u32)> {
    let (total, frac) = (a.total(), a.frac());
    ((1..=MAX_Q).contains(&total) && frac <= MAX_F).then_some((total, frac))
}

/// The integer codes of one QNN layer under its weight format ⟨total, frac⟩ (eq. (3)):
/// per row, the `(column, code)` of every non-zero weight, and the bias codes. Each code is
/// read from the shipped value's bits ([`round_scaled`]) and accepted only if it reproduces
/// the value exactly and lies in `[−2^(Q−1), 2^(Q−1) − 1]`; otherwise the reason names the
/// entry (a weight that is not on the grid cannot run as an integer).
#[allow(clippy::type_complexity)]
pub fn weight_codes(
    layer: &Affine,
    index: usize,
    total: u32,
    frac: u32,
) -> Result<(Vec<Vec<(usize, i64)>>, Vec<i64>), String> {
    if !(1..=52).contains(&total) || frac >= total {
        return Err(format!(
            "layer {index}: invalid weight format ⟨Q={total}, F={frac}⟩"
        ));
    }
    let max = (1i64 << (total - 1)) - 1;
    let min = -(1i64 << (total - 1));
    let code = |what: String, v: f64| -> Result<i64, String> {
        let off = || {
            format!(
                "layer {index} {what}: {v} is not a code of ⟨Q={total}, F={frac}⟩, so it \
                 cannot run as an integer (folded pooling is not supported under integer \
                 semantics)"
            )
        };
        if !v.is_finite() {
            return Err(off());
        }
        let (neg, mag) = round_scaled(v, frac as i32);
        if mag > (1u128 << 52) {
            return Err(off());
        }
        let k = if neg { -(mag as i64) } else { mag as i64 };
        if k < min || k > max || value_of_code(k, frac) != v {
            return Err(off());
        }
        Ok(k)
    };
    let mut rows = Vec::with_capacity(layer.outputs());
    for i in 0..layer.outputs() {
        let mut row = Vec::new();
        for (j, v) in layer.row_entries(i) {
            let k = code(format!("weight [{i}, {j}]"), v)?;
            if k != 0 {
                row.push((j, k));
            }
        }
        rows.push(row);
    }
    let bias = layer
        .bias()
        .iter()
        .enumerate()
        .map(|(i, &v)| code(format!("bias [{i}]"), v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, bias))
}

/// Eq. (57) for every row of every layer of `qnn` under the weight formats `strategy`
/// (`(Q, F)` per layer) and the activation formats `acts` (one per layer input):
/// `Σ_j |w_ij|·(2^{Q^a_{k−1}} − 1) + |β_i|·2^{F^a_{k−1}} ≤ 2^{b_acc−1} − 1`, in `i128`
/// with checked arithmetic (an overflow of `i128` counts as exceeding the range). The sum of
/// absolute values bounds every partial sum too, in any order. Returns one reason per layer
/// (its row with the largest bound, and how many rows exceed), e.g. `layer 2 row 17:
/// accumulator bound … exceeds the 16-bit range`.
pub fn check_overflow(
    qnn: &Network,
    strategy: &[(u32, u32)],
    acts: &[ActFormat],
    acc_bits: u32,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if !(8..=64).contains(&acc_bits) {
        reasons.push(format!(
            "accumulator width {acc_bits} is outside 8..=64 bits"
        ));
        return reasons;
    }
    let limit: i128 = (1i128 << (acc_bits - 1)) - 1;
    for (k, ((layer, &(total, frac)), &a)) in
        qnn.layers().iter().zip(strategy).zip(acts).enumerate()
    {
        let Some((q_a, f_a)) = checked_format(a) else {
            reasons.push(format!(
                "layer {k}: invalid input activation format ⟨Q={}, F={}⟩",
                a.total(),
                a.frac()
            ));
            continue;
        };
        let (rows, bias) = match weight_codes(layer, k, total, frac) {
            Ok(c) => c,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        let max_code = (1i128 << q_a) - 1;
        // `None` stands for a bound beyond i128 (then certainly beyond the range).
        let mut worst: Option<(usize, Option<i128>)> = None;
        let mut over = 0usize;
        for (i, (row, &b)) in rows.iter().zip(&bias).enumerate() {
            let bound = row
                .iter()
                .try_fold(
                    (b as i128).abs().checked_mul(1i128 << f_a),
                    |acc, &(_, w)| Some(acc?.checked_add((w as i128).abs().checked_mul(max_code)?)),
                )
                .flatten();
            if bound.is_none_or(|s| s > limit) {
                over += 1;
                let larger = match worst {
                    None => true,
                    Some((_, w)) => w.is_some_and(|w| bound.is_none_or(|s| s > w)),
                };
                if larger {
                    worst = Some((i, bound));
                }
            }
        }
        if let Some((i, bound)) = worst {
            let shown = bound.map_or_else(|| "> 2^127".to_string(), |s| s.to_string());
            reasons.push(format!(
                "layer {k} row {i}: accumulator bound {shown} (Σ|w|·(2^{q_a} − 1) + \
                 |β|·2^{f_a}) exceeds the {acc_bits}-bit range (max {limit}; eq. (57)); \
                 {over} of {} rows of the layer exceed it",
                rows.len()
            ));
        }
    }
    reasons
}

/// The integer-semantics checks of a certificate on the shipped `qnn`: `Ok(None)` for the
/// real semantics; for [`Semantics::Integer`] the per-layer-input formats the prover needs
/// (`Some` each; docs/method.md, eqs. (54)–(57)), or the reasons the semantics is rejected:
/// a format count other than the network's depth, an accumulator width outside 8..=64, an
/// input map on either network (it would run in floating point), a strategy that does not
/// fit, a QNN weight off its grid, or an accumulator that could overflow (eq. (57)).
pub fn check_integer_semantics(
    cert: &Certificate,
    original: &Network,
    qnn: &Network,
) -> Result<Option<Vec<Option<ActFormat>>>, Vec<String>> {
    let sem: &IntegerSemantics = match &cert.semantics {
        // The float32 semantics has no formats; `Prover::float32` checks its network.
        Semantics::Real | Semantics::Float32 => return Ok(None),
        Semantics::Integer(s) => s,
    };
    let mut reasons = Vec::new();
    let depth = qnn.depth();
    if sem.acts.len() != depth {
        reasons.push(format!(
            "integer semantics has {} activation formats, the network needs {depth} (its \
             input and every hidden layer's output)",
            sem.acts.len()
        ));
    }
    if original.input_map().is_some() || qnn.input_map().is_some() {
        reasons.push(
            "integer semantics: the network has an input map (normalisation before the first \
             layer), which would run in floating point; fold it into the first layer"
                .into(),
        );
    }
    if cert.strategy.len() != depth {
        reasons.push(format!(
            "integer semantics: the strategy has {} layer configs, the QNN {depth} affine \
             layers",
            cert.strategy.len()
        ));
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let strategy: Vec<(u32, u32)> = cert
        .strategy
        .iter()
        .map(|c| (c.total(), c.frac()))
        .collect();
    reasons.extend(check_overflow(qnn, &strategy, &sem.acts, sem.acc_bits));
    if reasons.is_empty() {
        Ok(Some(sem.acts.iter().copied().map(Some).collect()))
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn fmt(q: u32, f: u32) -> ActFormat {
        ActFormat::new(q, f).unwrap()
    }

    /// `⌊n/d⌉` with ties to even for `n ≥ 0`, `d > 0`, in integers (test reference).
    fn div_round_even(n: i128, d: i128) -> i128 {
        let (q, r) = (n / d, n % d);
        if 2 * r > d || (2 * r == d && q % 2 == 1) {
            q + 1
        } else {
            q
        }
    }

    #[test]
    fn rounding_is_half_to_even_and_saturates() {
        let a = fmt(4, 2); // codes 0..=15, step 1/4
        let cases = [
            (0.125, 0), // 0.5 → 0
            (0.375, 2), // 1.5 → 2
            (0.625, 2), // 2.5 → 2
            (0.875, 4), // 3.5 → 4
            (0.126, 1),
            (-0.0, 0),
            (-3.0, 0),
            (3.75, 15),
            (3.875, 15), // 15.5 → 16 → clamp
            (1e300, 15),
            (5e-324, 0),
            (f64::INFINITY, 15),
            (f64::NEG_INFINITY, 0),
        ];
        for (v, k) in cases {
            assert_eq!(act_code(v, a), Some(k), "v = {v}");
        }
        assert_eq!(act_code(f64::NAN, a), None);
        assert_eq!(act_value(0.625, a), Some(0.5));
        assert_eq!(saturation_and_half_step(a), Some((3.75, 0.125)));
        let b = fmt(31, 40);
        assert_eq!(
            saturation_and_half_step(b),
            Some((((1u64 << 31) - 1) as f64 * 2f64.powi(-40), 2f64.powi(-41)))
        );
    }

    /// Against an exact rational reference: `v = n/2^s` with random integers.
    #[test]
    fn rounding_matches_exact_integer_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(54);
        for _ in 0..20_000 {
            let q = rng.random_range(1..=31u32);
            let f = rng.random_range(0..=40u32);
            let s = rng.random_range(0..=60i32);
            let n: i64 = rng.random_range(-(1i64 << 52)..(1i64 << 52));
            let v = n as f64 * 2f64.powi(-s); // exact
            // v·2^f = n·2^(f−s)
            let e = f as i32 - s;
            let want = if n <= 0 {
                0
            } else if e >= 0 {
                ((n as i128) << e).min((1i128 << q) - 1)
            } else {
                div_round_even(n as i128, 1i128 << (-e)).min((1i128 << q) - 1)
            };
            assert_eq!(
                act_code(v, fmt(q, f)),
                Some(want as i64),
                "{n}/2^{s} ⟨{q},{f}⟩"
            );
        }
    }

    /// A pixel enters as `r(k/255)` of the exact rational (eq. (55)); a radius-0 box holds
    /// the float `fl(k/255)`. Exhaustively, for every pixel and every `F ≤ 40`, both round to
    /// the same code (`k·2^F/255` is at least `1/510` from a half-integer, far more than the
    /// float error).
    #[test]
    fn float_pixels_round_like_exact_pixels() {
        for f in 0..=MAX_F {
            let a = fmt(31, f);
            for k in 0..=255i128 {
                let exact = div_round_even(k << f, 255).min((1 << 31) - 1);
                let got = act_code(k as f64 / 255.0, a).unwrap();
                assert_eq!(got as i128, exact, "k={k} F={f}");
            }
        }
    }

    fn tiny() -> Network {
        use certquant_core::model::Affine;
        // weights on ⟨4,2⟩ (codes −8..=7) and ⟨3,1⟩
        let l0 = Affine::new(0, 2, 2, vec![0.75, -0.5, 0.25, 1.0], vec![0.25, -0.25]).unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, -0.5, 0.5, 0.5], vec![0.0, 0.5]).unwrap();
        Network::new(vec![l0, l1]).unwrap()
    }

    #[test]
    fn overflow_is_checked_per_row_with_the_exact_bound() {
        let net = tiny();
        let s = [(4, 2), (3, 1)];
        let (rows, bias) = weight_codes(&net.layers()[0], 0, 4, 2).unwrap();
        assert_eq!(rows, vec![vec![(0, 3), (1, -2)], vec![(0, 1), (1, 4)]]);
        assert_eq!(bias, vec![1, -1]);
        // layer 0 row 1 with ⟨Q^a=10, F^a=4⟩: (1 + 4)·1023 + 1·16 = 5131 ≤ 2^15 − 1.
        let a = [fmt(10, 4), fmt(10, 4)];
        assert!(check_overflow(&net, &s, &a, 16).is_empty());
        // with ⟨13, 4⟩: 5·8191 + 16 = 40971 > 32767 (row 0: 5·8191 + 16 too).
        let a = [fmt(13, 4), fmt(3, 1)];
        let r = check_overflow(&net, &s, &a, 16);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].starts_with("layer 0 row 0: accumulator bound 40971"),
            "{r:?}"
        );
        assert!(r[0].contains("16-bit"), "{r:?}");
        let a = [fmt(12, 0), fmt(3, 1)]; // row 0: 5·4095 + 1 = 20476
        assert!(check_overflow(&net, &s, &a, 16).is_empty());
        assert!(!check_overflow(&net, &s, &a, 15).is_empty());
        assert!(!check_overflow(&net, &s, &a, 7).is_empty());
        // off-grid weights cannot run as integers
        let r = check_overflow(&net, &[(3, 1), (3, 1)], &a, 32);
        assert!(r[0].contains("not a code"), "{r:?}");
    }
}
