//! The fixed-point format ⟨Q, F⟩ of the paper's quantization scheme, as a validated value.
//!
//! This is only the *type*: certificates record it and the checker reads it. Rounding values
//! onto the grid is done by the synthesis (`certquant-bounds::quantize`) and, independently,
//! by the checker's own integer code, so neither can lean on the other.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest supported total bit-width (keeps every integer `k` exact in f64 and `2^F` finite).
pub const MAX_TOTAL_BITS: u32 = 52;

/// Why a configuration is invalid.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum QuantError {
    /// `Q` must be at least 1 and larger than `F`, and at most [`MAX_TOTAL_BITS`].
    #[error("invalid quantization config ⟨Q={total}, F={frac}⟩: {reason}")]
    Config {
        /// Total bits.
        total: u32,
        /// Fractional bits.
        frac: u32,
        /// Why.
        reason: &'static str,
    },
    /// A strategy must give exactly one config per affine layer.
    #[error("strategy has {got} layer configs, the network has {expected} affine layers")]
    Length {
        /// Layers in the network.
        expected: usize,
        /// Configs given.
        got: usize,
    },
}

/// A fixed-point format ⟨Q, F⟩: `total` bits including sign, `frac` of them fractional.
/// Invariant: `1 ≤ total ≤ MAX_TOTAL_BITS` and `frac < total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct QuantConfig {
    total: u32,
    frac: u32,
}

#[derive(Serialize, Deserialize)]
struct RawConfig {
    total: u32,
    frac: u32,
    int: u32,
}

impl TryFrom<RawConfig> for QuantConfig {
    type Error = QuantError;
    fn try_from(r: RawConfig) -> Result<Self, QuantError> {
        let c = QuantConfig::new(r.total, r.frac)?;
        if c.int_bits() != r.int {
            return Err(QuantError::Config {
                total: r.total,
                frac: r.frac,
                reason: "int must equal total − frac",
            });
        }
        Ok(c)
    }
}

impl From<QuantConfig> for RawConfig {
    fn from(c: QuantConfig) -> Self {
        RawConfig {
            total: c.total,
            frac: c.frac,
            int: c.int_bits(),
        }
    }
}

impl QuantConfig {
    /// Builds ⟨Q, F⟩, checking the invariant.
    pub fn new(total: u32, frac: u32) -> Result<Self, QuantError> {
        let err = |reason| QuantError::Config {
            total,
            frac,
            reason,
        };
        if total == 0 {
            return Err(err("Q must be ≥ 1"));
        }
        if total > MAX_TOTAL_BITS {
            return Err(err("Q must be ≤ 52"));
        }
        if frac >= total {
            return Err(err("F must be < Q (at least one integer/sign bit)"));
        }
        Ok(Self { total, frac })
    }

    /// Total bits `Q`.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Fractional bits `F`.
    pub fn frac(&self) -> u32 {
        self.frac
    }

    /// Integer bits `I = Q − F` (sign included).
    pub fn int_bits(&self) -> u32 {
        self.total - self.frac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_invariants() {
        assert!(QuantConfig::new(0, 0).is_err());
        assert!(QuantConfig::new(3, 3).is_err());
        assert!(QuantConfig::new(53, 1).is_err());
        let json = serde_json::to_string(&QuantConfig::new(6, 4).unwrap()).unwrap();
        assert_eq!(json, r#"{"total":6,"frac":4,"int":2}"#);
        assert!(serde_json::from_str::<QuantConfig>(r#"{"total":6,"frac":4,"int":3}"#).is_err());
        assert!(serde_json::from_str::<QuantConfig>(r#"{"total":4,"frac":4,"int":0}"#).is_err());
    }
}
