//! Deployment exports of the integer program of docs/method.md §17: dependency-free C99
//! ([`c`]) and an integer-operator ONNX model (`crate::onnx::export_int_bytes`).
//!
//! Both exports are generated from an [`IntProgram`] — the exact program a certificate with
//! `--semantics integer` speaks of — and must reproduce [`IntProgram::run_pixels`] bit for bit.
//! This module holds what both share: the per-layer requantization plan (how eq. (56)'s
//! `clamp(shr_even(acc, s), 0, 2^Q − 1)` is computed without anything implementation-defined),
//! the choice of the smallest integer types, the provenance written into the files, and the
//! error type naming what cannot be exported exactly.
//!
//! **Why negative accumulators never reach a shift.** `shr_even(·, s)` is monotone and maps 0
//! to 0, so an accumulator `a ≤ 0` always gives a code `≤ 0`, which the clamp makes 0. Both
//! exports therefore test `a ≤ 0` first and shift only positive values, where a right shift is
//! exact floor division in every language (C99 leaves `>>` of a negative value
//! implementation-defined, 6.5.7). The logits are not requantized, so they may be negative.

pub mod c;

use thiserror::Error;

use crate::semantics::IntProgram;

/// Why a program cannot be exported exactly.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeployError {
    /// The export name is not a usable C identifier.
    #[error(
        "invalid export name {0:?}: use a C identifier of at most 64 characters (letters, digits, '_', not starting with a digit)"
    )]
    Name(String),
    /// A requantization shift the exports cannot write with 64-bit integers.
    #[error(
        "layer {layer}: requantization shift s = {shift} (eq. (56)) with {acc_bits}-bit accumulators cannot be written exactly with 64-bit integers; use a narrower accumulator or other fractional widths"
    )]
    Shift {
        /// Affine layer, from 0.
        layer: usize,
        /// The shift `s_k`.
        shift: i32,
        /// Accumulator width.
        acc_bits: u32,
    },
    /// The program has no layer.
    #[error("the integer program has no layer")]
    Empty,
}

/// How one hidden layer turns its accumulators into output codes (eq. (56)), with
/// `M = 2^{Q^a} − 1` the output's largest code. Every variant first maps `a ≤ 0` to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requant {
    /// `s ≥ 1`: `q = a >> s` (a > 0), `r = a − q·2^s`; `q + 1` when `r + (q mod 2) > 2^{s−1}`
    /// (above half, or exactly half with `q` odd: half to even), then `min(·, M)`.
    Right {
        /// The shift `s`, `1 ..= 62`.
        shift: u32,
        /// `M`.
        max: i64,
    },
    /// `s ≤ 0`: `a·2^t` with `t = −s`, saturated at `M`; computed as `a > M >> t ? M : a·2^t`
    /// so the product never exceeds `M`.
    Left {
        /// `t = −s`, `0 ..= 62`.
        shift: u32,
        /// `M`.
        max: i64,
    },
    /// `s ≥ b_acc`: every accumulator has `|a| < 2^{s−1}`, so `shr_even` gives 0 (a tie at
    /// exactly `2^{s−1}` would also round to the even 0): the layer's output is all zeros.
    Zero,
}

impl Requant {
    /// Applies the plan to one accumulator (the reference the generated code mirrors).
    pub fn apply(&self, a: i128) -> i64 {
        if a <= 0 {
            return 0;
        }
        match *self {
            Requant::Zero => 0,
            Requant::Right { shift, max } => {
                let q = a >> shift;
                let r = a - (q << shift);
                let up = r + (q & 1) > 1i128 << (shift - 1);
                (q + i128::from(up)).min(max as i128) as i64
            }
            Requant::Left { shift, max } => {
                if a > (max >> shift) as i128 {
                    max
                } else {
                    (a << shift) as i64
                }
            }
        }
    }
}

/// The requantization plan of every hidden layer (`None` for the logits layer), refusing a
/// shift that 64-bit code cannot write: `s = 63` with 64-bit accumulators, or `t > 62`.
pub fn requant_plan(program: &IntProgram) -> Result<Vec<Option<Requant>>, DeployError> {
    if program.layers.is_empty() {
        return Err(DeployError::Empty);
    }
    let acc_bits = program.acc_bits;
    program
        .layers
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let (Some(out), Some(s)) = (l.output, l.shift()) else {
                return Ok(None);
            };
            let max = out.max_code();
            let err = DeployError::Shift {
                layer: k,
                shift: s,
                acc_bits,
            };
            Ok(Some(if s >= acc_bits as i32 {
                Requant::Zero
            } else if s >= 1 {
                if s > 62 {
                    return Err(err);
                }
                Requant::Right {
                    shift: s as u32,
                    max,
                }
            } else {
                let t = s.unsigned_abs();
                if t > 62 {
                    return Err(err);
                }
                Requant::Left { shift: t, max }
            }))
        })
        .collect()
}

/// Where an exported program comes from, written into the generated files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// SHA-256 of the QNN file the program was built from.
    pub qnn_sha256: String,
    /// SHA-256 of the certificate file; `None` for an uncertified export (formats given by
    /// hand: nothing has been proven about this program).
    pub certificate_sha256: Option<String>,
}

impl Provenance {
    /// One line for the generated files.
    pub fn describe(&self) -> String {
        match &self.certificate_sha256 {
            Some(c) => format!("certificate sha256 {c}, QNN sha256 {}", self.qnn_sha256),
            None => format!(
                "UNCERTIFIED (formats given by hand, no certificate), QNN sha256 {}",
                self.qnn_sha256
            ),
        }
    }
}

/// Bytes of the smallest signed two's-complement integer (1, 2, 4 or 8) holding `lo..=hi`.
pub fn signed_bytes(lo: i128, hi: i128) -> usize {
    [1usize, 2, 4, 8]
        .into_iter()
        .find(|&b| {
            let m = 1i128 << (8 * b - 1);
            lo >= -m && hi < m
        })
        .unwrap_or(16)
}

/// Bytes of the smallest unsigned integer (1, 2, 4 or 8) holding `0..=hi`.
pub fn unsigned_bytes(hi: u128) -> usize {
    [1usize, 2, 4, 8]
        .into_iter()
        .find(|&b| hi < 1u128 << (8 * b))
        .unwrap_or(16)
}

/// Checks that `name` is a C identifier of at most 64 characters (it prefixes every exported
/// symbol and names the files).
pub fn check_name(name: &str) -> Result<(), DeployError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 64
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DeployError::Name(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantics::shr_even;

    #[test]
    fn plan_equals_the_reference_requantization() {
        for max in [1i64, 7, 255, 511, (1 << 31) - 1] {
            for shift in 1..6u32 {
                let p = Requant::Right { shift, max };
                for a in -200i128..2000 {
                    let want = shr_even(a, shift as i32).clamp(0, max as i128) as i64;
                    assert_eq!(p.apply(a), want, "a={a} s={shift} M={max}");
                }
            }
            for shift in 0..40u32 {
                let p = Requant::Left { shift, max };
                for a in [-5i128, -1, 0, 1, 2, 3, 100, 1 << 20, (1 << 40) + 1] {
                    let want = shr_even(a, -(shift as i32)).clamp(0, max as i128) as i64;
                    assert_eq!(p.apply(a), want, "a={a} t={shift} M={max}");
                }
            }
        }
        // Ties go to even: 3/2 → 2, 5/2 → 2, 7/4 → 2 (not a tie), 6/4 → 2, 10/4 → 2.
        let p = Requant::Right {
            shift: 1,
            max: 1000,
        };
        assert_eq!((p.apply(3), p.apply(5), p.apply(7)), (2, 2, 4));
    }

    #[test]
    fn plan_refuses_only_what_64_bit_code_cannot_write() {
        use crate::model::{Affine, Network};
        use crate::quant::QuantConfig;
        use crate::semantics::{ActFormat, IntegerSemantics};
        // s = F_w + F^a_0 − F^a_1 = 30 + 33 − 0 = 63.
        let l0 = Affine::new(0, 1, 1, vec![(-30f64).exp2()], vec![0.0]).unwrap();
        let l1 = Affine::new(1, 1, 1, vec![1.0], vec![0.0]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let s = vec![
            QuantConfig::new(31, 30).unwrap(),
            QuantConfig::new(2, 0).unwrap(),
        ];
        let acts = vec![
            ActFormat::new(1, 33).unwrap(),
            ActFormat::new(1, 0).unwrap(),
        ];
        let program = |acc| {
            IntProgram::new(&net, &s, &IntegerSemantics::new(acts.clone(), acc).unwrap()).unwrap()
        };
        let e = requant_plan(&program(64)).unwrap_err();
        assert_eq!(
            e,
            DeployError::Shift {
                layer: 0,
                shift: 63,
                acc_bits: 64
            }
        );
        assert!(e.to_string().contains("s = 63"));
        assert_eq!(
            requant_plan(&program(32)).unwrap(),
            vec![Some(Requant::Zero), None]
        );
    }

    #[test]
    fn integer_sizes_and_names() {
        assert_eq!(signed_bytes(-128, 127), 1);
        assert_eq!(signed_bytes(-129, 127), 2);
        assert_eq!(signed_bytes(0, 128), 2);
        assert_eq!(signed_bytes(-(1 << 31), (1 << 31) - 1), 4);
        assert_eq!(signed_bytes(0, 1 << 31), 8);
        assert_eq!(unsigned_bytes(255), 1);
        assert_eq!(unsigned_bytes(256), 2);
        assert_eq!(unsigned_bytes(u32::MAX as u128), 4);
        assert!(check_name("mnist_q1").is_ok());
        assert!(check_name("_x").is_ok());
        for bad in ["", "1abc", "a-b", "a b", "ä", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
