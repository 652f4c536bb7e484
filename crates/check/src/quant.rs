//! Independent re-derivation of the quantized network from the original network and the
//! certificate's strategy, in integer arithmetic.
//!
//! The scheme (docs/method.md, eqs. (3), (4)): for a layer with config ⟨Q, F⟩ every weight
//! and bias `v` becomes `k·2^−F` with `k = clamp(round(v·2^F), −2^(Q−1), 2^(Q−1) − 1)`,
//! rounding half away from zero; and `Q − F` must be the layer's integer bits
//! `I = 1` if `m = 0`, `2` if `m = 1`, else `⌈log2 m⌉ + 1`, where `m = max |round(v)|`.
//!
//! Nothing here calls `certquant_bounds::quantize`: a finite `f64` is taken apart into its integer
//! significand and binary exponent (`v = ±s·2^e`), so `v·2^F = ±s·2^(e+F)` and its rounding
//! are computed exactly with shifts on integers. The expected value `k·2^−F` is then formed
//! exactly (`|k| ≤ 2^51`, times a power of two) and compared with the shipped value by exact
//! real equality (`+0` and `−0` are the same real number, hence the same weight;
//! docs/method.md, eq. (44)).

use certquant_core::model::{Affine, Network};

/// Magnitudes at or above this are reported as "saturated" (they exceed every clamp range,
/// since `Q ≤ 52`, and every integer-bit rule answer ≤ 128).
const SATURATED: u128 = 1 << 120;

/// `v = (−1)^neg · significand · 2^exponent` exactly, for finite `v`.
fn decompose(v: f64) -> (bool, u64, i32) {
    let bits = v.to_bits();
    let neg = bits >> 63 == 1;
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    if biased == 0 {
        (neg, frac, -1074)
    } else {
        (neg, frac | (1u64 << 52), biased - 1075)
    }
}

/// `round(|v|·2^shift)` with ties away from zero, exactly, as a magnitude (saturating at
/// `2^120`, above every clamp range), together with the sign of `v`. `v` must be finite.
pub fn round_scaled(v: f64, shift: i32) -> (bool, u128) {
    debug_assert!(v.is_finite());
    let (neg, sig, exp) = decompose(v);
    if sig == 0 {
        return (neg, 0);
    }
    let e = exp + shift;
    let mag = if e >= 0 {
        // sig < 2^53, so sig·2^e < 2^120 for e ≤ 67.
        if e > 67 {
            SATURATED
        } else {
            (sig as u128) << e
        }
    } else {
        let s = (-e) as u32;
        if s >= 54 {
            // sig < 2^53 ≤ 2^(s−1): strictly below one half, rounds to 0.
            0
        } else {
            let q = (sig >> s) as u128;
            let rem = sig & ((1u64 << s) - 1);
            let half = 1u64 << (s - 1);
            if rem >= half { q + 1 } else { q }
        }
    };
    (neg, mag.min(SATURATED))
}

/// The integer code `k` of `v` under ⟨total, frac⟩: `clamp(round(v·2^frac), −2^(total−1),
/// 2^(total−1) − 1)`, rounding half away from zero (docs/method.md, eq. (3)). Requires
/// `1 ≤ total ≤ 52`, `frac < total`.
pub fn code(v: f64, total: u32, frac: u32) -> i64 {
    let (neg, mag) = round_scaled(v, frac as i32);
    let max_pos = (1i128 << (total - 1)) - 1;
    let min_neg = -(1i128 << (total - 1));
    let k = if neg { -(mag as i128) } else { mag as i128 };
    k.clamp(min_neg, max_pos) as i64
}

/// `k·2^−frac` as an exact `f64` (`|k| ≤ 2^51`, `frac ≤ 51`: no rounding, no underflow).
pub fn value_of_code(k: i64, frac: u32) -> f64 {
    debug_assert!(k.unsigned_abs() <= 1 << 51 && frac <= 51);
    // 2^−frac built from its bit pattern: biased exponent 1023 − frac, zero fraction.
    let scale = f64::from_bits(((1023 - frac) as u64) << 52);
    k as f64 * scale
}

/// The quantized value of `v` under ⟨total, frac⟩ (exact).
pub fn quantize(v: f64, total: u32, frac: u32) -> f64 {
    value_of_code(code(v, total, frac), frac)
}

/// The integer-bit rule (docs/method.md, eq. (4)) for one layer: `m = max |round(v)|` over its
/// weights and biases; `1` if `m = 0`, `2` if `m = 1`, else `⌈log2 m⌉ + 1`.
pub fn integer_bits(layer: &Affine) -> u32 {
    let (w, b) = layer.params();
    let m = w
        .iter()
        .chain(b)
        .map(|&v| round_scaled(v, 0).1)
        .max()
        .unwrap_or(0);
    match m {
        0 => 1,
        1 => 2,
        _ => (128 - (m - 1).leading_zeros()) + 1,
    }
}

/// The first disagreement between the re-derived and the shipped QNN.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Affine layer (0-based, input side first).
    pub layer: usize,
    /// `"weight [row, col]"` or `"bias [row]"`.
    pub position: String,
    /// Flat index within the layer: weights row-major first, then the biases.
    pub index: usize,
    /// The value re-derived from the original network and the strategy.
    pub expected: f64,
    /// The value in the shipped QNN.
    pub found: f64,
    /// How many parameters of the network disagree in total.
    pub count: usize,
}

/// Compares the shipped `qnn` with the quantization of `original` under `strategy`
/// (`(total, frac)` per layer, already validated: `1 ≤ total ≤ 52`, `frac < total`).
/// Returns the reasons for rejection (shape differences, or the first parameter mismatch and
/// the number of mismatching parameters). The caller checks strategy length and the
/// integer-bit rule (docs/method.md, eq. (44)).
pub fn compare_qnn(original: &Network, strategy: &[(u32, u32)], qnn: &Network) -> Vec<String> {
    let mut reasons = Vec::new();
    if original.depth() != qnn.depth() || strategy.len() != original.depth() {
        reasons.push(format!(
            "the QNN has {} affine layers, the original {} and the strategy {}",
            qnn.depth(),
            original.depth(),
            strategy.len()
        ));
        return reasons;
    }
    let mut first: Option<Mismatch> = None;
    let mut count = 0usize;
    for (l, ((orig, shipped), &(total, frac))) in original
        .layers()
        .iter()
        .zip(qnn.layers())
        .zip(strategy)
        .enumerate()
    {
        if orig.inputs() != shipped.inputs() || orig.outputs() != shipped.outputs() {
            reasons.push(format!(
                "layer {l}: the QNN layer is {}×{}, the original {}×{}",
                shipped.outputs(),
                shipped.inputs(),
                orig.outputs(),
                orig.inputs()
            ));
            continue;
        }
        // The structure around the weights (convolution geometry, padding, pooling, layout)
        // must be the original's; only the parameters may differ.
        let shape_of = |a: &Affine| a.to_origin().canonical();
        if shape_of(orig) != shape_of(shipped) {
            reasons.push(format!(
                "layer {l}: the QNN layer's operators (kind, geometry, padding, pooling or layout) differ from the original's"
            ));
            continue;
        }
        let (ow, ob) = orig.params();
        let (sw, sb) = shipped.params();
        if ow.len() != sw.len() || ob.len() != sb.len() {
            reasons.push(format!(
                "layer {l}: the QNN layer has a different parameter count"
            ));
            continue;
        }
        let n_w = ow.len();
        let conv = matches!(orig.to_origin().op, certquant_core::graph::Node::Conv(_));
        let params = ow.iter().chain(ob);
        let shipped_params = sw.iter().chain(sb);
        for (idx, (&v, &found)) in params.zip(shipped_params).enumerate() {
            let expected = quantize(v, total, frac);
            // Exact real equality (f64 `==` on finite values; ±0 are the same real).
            if expected != found {
                count += 1;
                if first.is_none() {
                    let position = if idx < n_w && conv {
                        format!("kernel [{idx}]")
                    } else if idx < n_w {
                        format!("weight [{}, {}]", idx / orig.inputs(), idx % orig.inputs())
                    } else {
                        format!("bias [{}]", idx - n_w)
                    };
                    first = Some(Mismatch {
                        layer: l,
                        position,
                        index: idx,
                        expected,
                        found,
                        count: 0,
                    });
                }
            }
        }
    }
    if let Some(mut m) = first {
        m.count = count;
        reasons.push(format!(
            "the QNN is not the quantization of the original under the strategy: first \
             mismatch at layer {} {} (flat index {}): expected {:?}, found {:?} ({} \
             parameter(s) differ)",
            m.layer, m.position, m.index, m.expected, m.found, m.count
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::Affine;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn decompose_is_exact() {
        for v in [
            1.0,
            -1.5,
            0.1,
            f64::MIN_POSITIVE,
            5e-324,
            -f64::MAX,
            123456.789,
        ] {
            let (neg, s, e) = decompose(v);
            let back = (s as f64) * 2f64.powi(e.max(-1022)) * 2f64.powi((e + 1022).min(0));
            assert_eq!(if neg { -back } else { back }, v, "{v}");
        }
    }

    #[test]
    fn ties_round_away_from_zero_and_codes_clamp() {
        // grid 0.5 (F = 1), 8 bits
        assert_eq!(quantize(0.25, 8, 1), 0.5);
        assert_eq!(quantize(-0.25, 8, 1), -0.5);
        assert_eq!(quantize(0.75, 8, 1), 1.0);
        assert_eq!(quantize(-0.75, 8, 1), -1.0);
        assert_eq!(quantize(0.2, 8, 1), 0.0);
        assert_eq!(quantize(-0.2, 8, 1), 0.0);
        // ⟨4,2⟩: codes −8..7, step 0.25
        assert_eq!(quantize(5.0, 4, 2), 1.75);
        assert_eq!(quantize(-7.0, 4, 2), -2.0);
        assert_eq!(code(1.9, 4, 2), 7);
        assert_eq!(code(-2.125, 4, 2), -8);
        // subnormal and huge inputs
        assert_eq!(code(5e-324, 52, 51), 0);
        assert_eq!(code(f64::MAX, 52, 0), (1 << 51) - 1);
        assert_eq!(code(-f64::MAX, 52, 51), -(1 << 51));
        // just below and at one half ulp of the grid
        let half = 2f64.powi(-11); // F = 10: half of 2^-10
        assert_eq!(code(half, 20, 10), 1);
        assert_eq!(code(half.next_down(), 20, 10), 0);
        assert_eq!(code(-half, 20, 10), -1);
    }

    #[test]
    fn agrees_with_float_rounding_on_random_values() {
        // f64::round is half-away-from-zero and v·2^F is exact: an independent oracle.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..100_000 {
            let v: f64 = rng.random_range(-8.0..8.0) * 2f64.powi(rng.random_range(-12..3));
            let total = rng.random_range(2..=24u32);
            let frac = rng.random_range(0..total);
            let scale = 2f64.powi(frac as i32);
            let max = 2f64.powi(total as i32 - 1);
            let oracle = (v * scale).round().clamp(-max, max - 1.0) / scale;
            assert_eq!(quantize(v, total, frac), oracle, "{v} ⟨{total},{frac}⟩");
        }
    }

    #[test]
    fn integer_bits_rule() {
        let mk = |v: f64| Affine::new(0, 1, 1, vec![v], vec![0.0]).unwrap();
        assert_eq!(integer_bits(&mk(0.4)), 1);
        assert_eq!(integer_bits(&mk(-0.5)), 2); // |round(−0.5)| = 1
        assert_eq!(integer_bits(&mk(1.4)), 2);
        assert_eq!(integer_bits(&mk(2.0)), 2);
        assert_eq!(integer_bits(&mk(2.5)), 3); // round(2.5) = 3
        assert_eq!(integer_bits(&mk(-4.2)), 3);
        assert_eq!(integer_bits(&mk(4.5)), 4); // round(4.5) = 5
        assert_eq!(integer_bits(&mk(100.0)), 8);
        assert_eq!(integer_bits(&mk(1e300)), 121); // saturated: far above any valid Q
        let both = Affine::new(0, 1, 1, vec![0.1], vec![-3.0]).unwrap();
        assert_eq!(integer_bits(&both), 3);
    }

    #[test]
    fn mismatches_are_located() {
        let l0 = Affine::new(0, 2, 2, vec![0.3, -0.7, 1.2, 0.05], vec![0.4, -0.2]).unwrap();
        let net = Network::new(vec![l0]).unwrap();
        let strategy = [(6u32, 4u32)];
        let q = Network::new(vec![
            net.layers()[0].map_params(|v| quantize(v, 6, 4)).unwrap(),
        ])
        .unwrap();
        assert!(compare_qnn(&net, &strategy, &q).is_empty());
        let mut w = q.layers()[0].weights().expect("dense").to_vec();
        w[3] += 1.0 / 16.0;
        let bad = Network::new(vec![
            Affine::new(0, 2, 2, w, q.layers()[0].bias().to_vec()).unwrap(),
        ])
        .unwrap();
        let r = compare_qnn(&net, &strategy, &bad);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("layer 0 weight [1, 1]"), "{}", r[0]);
        assert!(compare_qnn(&net, &[(7, 5)], &q)[0].contains("mismatch"));
    }
}
