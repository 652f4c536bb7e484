//! The fixed-point scheme of the paper (§2, "Quantization"): per affine layer a config ⟨Q, F⟩,
//! `û = clamp(round(u·2^F), −2^{Q−1}, 2^{Q−1} − 1) / 2^F`, rounding half away from zero,
//! applied to weights and biases only (activations stay real-valued).
//!
//! `Q = I + F` where `I` is the fewest integer bits for the layer: with
//! `m = max |round(v)|` over the layer's weights and biases, `I = 1` if `m = 0`, `2` if `m = 1`,
//! else `⌈log2 m⌉ + 1` (docs/method.md, eqs. (3), (4), (5)).
//!
//! Every quantized value is `k·2^−F` with `|k| ≤ 2^{Q−1}`, exactly representable in `f64`
//! (and in `f32` when `Q ≤ 25`), so a quantized network is computed without rounding here.

use serde::{Deserialize, Serialize};

use certquant_core::model::{Affine, Network};
pub use certquant_core::quant::{MAX_TOTAL_BITS, QuantConfig, QuantError};

/// Rounding onto the grid of a ⟨Q, F⟩ format: the synthesis side of the scheme. It lives here,
/// not on the core type, so that the independent checker (which depends on the core crate
/// only) cannot call it and must re-derive every quantized value with its own integer code.
pub trait Rounding {
    /// Quantizes one value: `clamp(round(u·2^F), −2^{Q−1}, 2^{Q−1}−1) / 2^F`
    /// (docs/method.md, eq. (3)).
    fn quantize(&self, u: f64) -> f64;
    /// The integer code `k` of a value already on this grid (`v = k·2^−F`), if it is one.
    fn code_of(&self, v: f64) -> Option<i64>;
}

impl Rounding for QuantConfig {
    /// Quantizes one value: `clamp(round(u·2^F), −2^{Q−1}, 2^{Q−1}−1) / 2^F`
    /// (docs/method.md, eq. (3)).
    /// `f64::round` rounds half away from zero, as the scheme requires; scaling by a power of
    /// two is exact, so the only rounding is the intended one.
    fn quantize(&self, u: f64) -> f64 {
        let scale = pow2(self.frac() as i32);
        let k = (u * scale).round();
        let max = pow2(self.total() as i32 - 1);
        k.clamp(-max, max - 1.0) / scale
    }

    /// The integer code `k` of a value already on this grid (`v = k·2^−F`), if it is one.
    fn code_of(&self, v: f64) -> Option<i64> {
        let k = v * pow2(self.frac() as i32);
        let max = pow2(self.total() as i32 - 1);
        (k.fract() == 0.0 && k >= -max && k <= max - 1.0).then_some(k as i64)
    }
}

fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// Integer bits `I` of a layer (docs/method.md, eq. (4)): `m = max |round(v)|`; `I = 1` if `m = 0`,
/// `2` if `m = 1`, else `⌈log2 m⌉ + 1`.
pub fn integer_bits(layer: &Affine) -> u32 {
    let (w, b) = layer.params();
    let m = w
        .iter()
        .chain(b)
        .map(|v| v.round().abs())
        .fold(0.0, f64::max);
    if m == 0.0 {
        1
    } else if m == 1.0 {
        2
    } else {
        // m is an integer ≥ 2 below 2^63 for any sane network; ceil(log2) via bit length of m−1.
        let mi = m as u64;
        let ceil_log2 = 64 - (mi - 1).leading_zeros();
        ceil_log2 + 1
    }
}

/// The config ⟨I + F, F⟩ for `layer` with `frac` fractional bits (Alg. 1 step 3;
/// docs/method.md, eq. (4)).
pub fn config_for(layer: &Affine, frac: u32) -> Result<QuantConfig, QuantError> {
    QuantConfig::new(integer_bits(layer) + frac, frac)
}

/// Quantizes all weights and biases of one layer with `cfg` (docs/method.md, eq. (3)); for a
/// structured layer (a convolution, a dense layer after pooling) these are the parameters of
/// its weighted operator ([`Affine::params`]), and the layer is lowered again.
pub fn quantize_layer(layer: &Affine, cfg: QuantConfig) -> Affine {
    // Quantized values are k·2^−F with |k| < 2^51 and F ≤ 51: finite, and their products
    // with the power-of-two coefficients of a lowering and sums of a few of them are exact,
    // so the lowering cannot fail (SOUNDNESS.md, "Structured layers").
    layer
        .map_params(|v| cfg.quantize(v))
        .expect("a quantized structured layer lowers exactly")
}

/// A quantization strategy: one ⟨Q, F⟩ per affine layer, input side first
/// (docs/method.md, eq. (5)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Strategy(pub Vec<QuantConfig>);

impl Strategy {
    /// Builds the strategy that uses `fracs[i]` fractional bits and the natural integer bits on
    /// layer `i` of `net`.
    pub fn from_fracs(net: &Network, fracs: &[u32]) -> Result<Self, QuantError> {
        if fracs.len() != net.depth() {
            return Err(QuantError::Length {
                expected: net.depth(),
                got: fracs.len(),
            });
        }
        net.layers()
            .iter()
            .zip(fracs)
            .map(|(l, &f)| config_for(l, f))
            .collect::<Result<Vec<_>, _>>()
            .map(Strategy)
    }

    /// Applies the strategy to every layer of `net`.
    pub fn apply(&self, net: &Network) -> Result<Network, QuantError> {
        if self.0.len() != net.depth() {
            return Err(QuantError::Length {
                expected: net.depth(),
                got: self.0.len(),
            });
        }
        let layers = net
            .layers()
            .iter()
            .zip(&self.0)
            .map(|(l, &c)| quantize_layer(l, c))
            .collect();
        Ok(net.with_layers(layers).expect("quantization keeps shapes"))
    }

    /// Weight memory in bits: `Σ_i Q_i · params_i` (the deployment cost minimised by issue 8;
    /// docs/method.md, eq. (5)).
    pub fn memory_bits(&self, net: &Network) -> u64 {
        self.0
            .iter()
            .zip(net.params_per_layer())
            .map(|(c, p)| c.total() as u64 * p as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_ties_go_away_from_zero() {
        let c = QuantConfig::new(8, 1).unwrap(); // grid 0.5
        assert_eq!(c.quantize(0.25), 0.5);
        assert_eq!(c.quantize(-0.25), -0.5);
        assert_eq!(c.quantize(0.75), 1.0);
        assert_eq!(c.quantize(-0.75), -1.0);
        assert_eq!(c.quantize(0.2), 0.0);
        assert_eq!(c.quantize(-0.2), 0.0);
    }

    #[test]
    fn saturation_clamps_to_signed_range() {
        let c = QuantConfig::new(4, 2).unwrap(); // codes −8..7, step 0.25 → [−2, 1.75]
        assert_eq!(c.quantize(5.0), 1.75);
        assert_eq!(c.quantize(1.75), 1.75);
        assert_eq!(c.quantize(1.9), 1.75);
        assert_eq!(c.quantize(-2.0), -2.0);
        assert_eq!(c.quantize(-7.0), -2.0);
        assert_eq!(c.code_of(1.75), Some(7));
        assert_eq!(c.code_of(2.0), None);
        assert_eq!(c.code_of(0.1), None);
    }

    #[test]
    fn integer_bits_follow_the_paper() {
        let mk = |v: f64| Affine::new(0, 1, 1, vec![v], vec![0.0]).unwrap();
        assert_eq!(integer_bits(&mk(0.4)), 1); // rounds to 0
        assert_eq!(integer_bits(&mk(-0.6)), 2); // |round| = 1
        assert_eq!(integer_bits(&mk(1.4)), 2);
        assert_eq!(integer_bits(&mk(2.0)), 2); // ceil(log2 2) + 1
        assert_eq!(integer_bits(&mk(3.0)), 3);
        assert_eq!(integer_bits(&mk(-4.2)), 3);
        assert_eq!(integer_bits(&mk(5.0)), 4);
        assert_eq!(integer_bits(&mk(100.0)), 8);
    }

    #[test]
    fn quantized_values_lie_on_the_grid() {
        let c = QuantConfig::new(10, 7).unwrap();
        for i in -1000..1000 {
            let v = i as f64 * 0.00731;
            let q = c.quantize(v);
            assert!(c.code_of(q).is_some());
            if v.abs() < 3.9 {
                assert!((q - v).abs() <= 0.5 / 128.0 + 1e-15);
            }
        }
    }
}
