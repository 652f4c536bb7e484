//! Which arithmetic a certificate speaks of, and the integer-only program of
//! `--semantics integer` (docs/method.md §17, eqs. (54)–(57)).
//!
//! The paper's semantics ([`Semantics::Real`]) quantizes weights and biases and computes
//! activations over the reals (eq. (1)). [`Semantics::Integer`] is what an integer runtime
//! executes: every activation — the network's input and the output of every hidden ReLU — is
//! rounded half to even onto an unsigned fixed-point format [`ActFormat`] and saturated
//! (eq. (54)); accumulators are integers of a declared width (eq. (57)); requantization is a
//! shift (eq. (56)); logits are compared as integers.
//!
//! [`IntProgram`] is that program: integer weight codes, shifts and clamps, evaluated with
//! exact integer arithmetic. It is the reference every export (ONNX, C) must reproduce bit
//! for bit. Nothing here proves anything: the synthesis bounds it in `certquant-bounds`, the
//! independent checker re-proves it and re-checks eq. (57) with its own code.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::Network;
use crate::quant::QuantConfig;

/// Largest activation width (codes stay far inside `i64`, and `u32` in C).
pub const MAX_ACT_BITS: u32 = 31;
/// Largest activation fractional width (keeps `v·2^F` exact and finite in `f64`).
pub const MAX_ACT_FRAC: u32 = 40;
/// Default accumulator width (eq. (57)).
pub const DEFAULT_ACC_BITS: u32 = 32;

/// Why a semantics or a program is invalid.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SemanticsError {
    /// An activation format out of range.
    #[error("invalid activation format ⟨Q={total}, F={frac}⟩: {reason}")]
    Format {
        /// Total bits.
        total: u32,
        /// Fractional bits.
        frac: u32,
        /// Why.
        reason: &'static str,
    },
    /// Accumulator width out of range.
    #[error("invalid accumulator width {0}: must be in 8..=64")]
    AccBits(u32),
    /// One activation format per affine layer input is needed.
    #[error(
        "integer semantics has {got} activation formats, the network needs {expected} (its input and every hidden layer's output)"
    )]
    Length {
        /// Affine layers of the network.
        expected: usize,
        /// Formats given.
        got: usize,
    },
    /// The strategy does not fit the network.
    #[error("strategy has {got} layer configs, the network has {expected} affine layers")]
    Strategy {
        /// Affine layers of the network.
        expected: usize,
        /// Configs given.
        got: usize,
    },
    /// The network maps its input before layer 1 (eq. (1c)); that map would run in floating point.
    #[error(
        "integer semantics: the network has an input normalisation (Sub/Div before the first layer); fold it into the first layer or use --semantics real"
    )]
    InputMap,
    /// A weight or bias of the QNN is not on its layer's grid.
    #[error(
        "integer semantics: layer {layer} has a {what} {value} that is not a code of ⟨Q={total}, F={frac}⟩ (only weights on the layer's own grid run as integers; folded pooling is not supported)"
    )]
    OffGrid {
        /// Affine layer, from 0.
        layer: usize,
        /// "weight" or "bias".
        what: &'static str,
        /// The value.
        value: f64,
        /// Q.
        total: u32,
        /// F.
        frac: u32,
    },
    /// Eq. (57) fails: an accumulator could overflow on some input.
    #[error(
        "integer semantics: layer {layer}, row {row}: accumulator bound {bound} exceeds the {acc_bits}-bit range (eq. (57)); use fewer activation bits or a wider accumulator"
    )]
    Overflow {
        /// Affine layer, from 0.
        layer: usize,
        /// Output neuron.
        row: usize,
        /// Σ |w|·max code + |β|·2^{F^a}.
        bound: i128,
        /// Declared width.
        acc_bits: u32,
    },
    /// A weight or bias that binary32 cannot hold exactly as a normal number (eq. (58b)).
    #[error(
        "layer {layer} has a {what} {value} that is not a normal f32 (use at most 24 weight bits)"
    )]
    NotFloat32 {
        /// Affine layer, from 0.
        layer: usize,
        /// "weight" or "bias".
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// An input vector of the wrong length.
    #[error("input has {got} values, the network has {expected} inputs")]
    InputLength {
        /// Network inputs.
        expected: usize,
        /// Values given.
        got: usize,
    },
}

/// An unsigned fixed-point activation format ⟨Q^a, F^a⟩ (eq. (54)): codes `0 ..= 2^Q − 1`,
/// value `code · 2^−F`. Unlike a weight format ([`QuantConfig`]) there is no sign bit and `F`
/// may exceed `Q` (values below 1 only).
/// Invariant: `1 ≤ total ≤ MAX_ACT_BITS`, `frac ≤ MAX_ACT_FRAC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawAct", into = "RawAct")]
pub struct ActFormat {
    total: u32,
    frac: u32,
}

#[derive(Serialize, Deserialize)]
struct RawAct {
    total: u32,
    frac: u32,
}

impl TryFrom<RawAct> for ActFormat {
    type Error = SemanticsError;
    fn try_from(r: RawAct) -> Result<Self, SemanticsError> {
        ActFormat::new(r.total, r.frac)
    }
}

impl From<ActFormat> for RawAct {
    fn from(a: ActFormat) -> Self {
        RawAct {
            total: a.total,
            frac: a.frac,
        }
    }
}

impl ActFormat {
    /// Builds ⟨Q^a, F^a⟩, checking the invariant.
    pub fn new(total: u32, frac: u32) -> Result<Self, SemanticsError> {
        let err = |reason| SemanticsError::Format {
            total,
            frac,
            reason,
        };
        if total == 0 {
            return Err(err("Q must be ≥ 1"));
        }
        if total > MAX_ACT_BITS {
            return Err(err("Q must be ≤ 31"));
        }
        if frac > MAX_ACT_FRAC {
            return Err(err("F must be ≤ 40"));
        }
        Ok(Self { total, frac })
    }

    /// Total bits `Q^a` (all of them magnitude: activations are unsigned).
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Fractional bits `F^a`.
    pub fn frac(&self) -> u32 {
        self.frac
    }

    /// The largest code, `2^Q − 1`.
    pub fn max_code(&self) -> i64 {
        (1i64 << self.total) - 1
    }

    /// The saturation value `M = (2^Q − 1)·2^−F` (exact in `f64`).
    pub fn max_value(&self) -> f64 {
        self.max_code() as f64 * (-(self.frac as f64)).exp2()
    }

    /// Half the grid step, `δ = 2^−(F+1)`: the largest rounding error below saturation.
    pub fn half_step(&self) -> f64 {
        (-(self.frac as f64) - 1.0).exp2()
    }

    /// The code of `r(v)` (eq. (54)): `clamp(⌊v·2^F⌉_even, 0, 2^Q − 1)`. `v·2^F` is exact
    /// in `f64` (a power-of-two scaling), so the only rounding is the intended one. NaN maps
    /// to 0.
    pub fn code(&self, v: f64) -> i64 {
        let k = (v * (self.frac as f64).exp2()).round_ties_even();
        if k.is_nan() || k <= 0.0 {
            0
        } else if k >= self.max_code() as f64 {
            self.max_code()
        } else {
            k as i64
        }
    }

    /// `r(v)` itself (eq. (54)), exact in `f64`.
    pub fn quantize(&self, v: f64) -> f64 {
        self.code(v) as f64 * (-(self.frac as f64)).exp2()
    }

    /// The code of a pixel `k/255`, computed with integers from the exact rational
    /// `k·2^F/255` (never a tie: 255 is odd and divides `k·2^F` only for k ∈ {0, 255}).
    pub fn pixel_code(&self, k: u8) -> i64 {
        let n = (k as i128) << self.frac;
        let (q, r) = (n / 255, n % 255);
        let v = q + i128::from(2 * r > 255);
        v.min(self.max_code() as i128) as i64
    }
}

/// The integer semantics of a strategy (eqs. (55)–(57)): one activation format per affine
/// layer input — `acts[0]` for the network's input, `acts[k]` for the output of hidden layer
/// `k` (code numbering: the input of `layer(k)`) — and the accumulator width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegerSemantics {
    /// `A_0, …, A_{d−1}`.
    pub acts: Vec<ActFormat>,
    /// Accumulator width `b_acc` in bits (eq. (57)).
    pub acc_bits: u32,
}

impl IntegerSemantics {
    /// Builds the semantics, checking the accumulator width (8..=64).
    pub fn new(acts: Vec<ActFormat>, acc_bits: u32) -> Result<Self, SemanticsError> {
        if !(8..=64).contains(&acc_bits) {
            return Err(SemanticsError::AccBits(acc_bits));
        }
        Ok(Self { acts, acc_bits })
    }

    /// Checks that the formats fit a network of `depth` affine layers.
    pub fn fits(&self, depth: usize) -> Result<(), SemanticsError> {
        if !(8..=64).contains(&self.acc_bits) {
            return Err(SemanticsError::AccBits(self.acc_bits));
        }
        if self.acts.len() != depth {
            return Err(SemanticsError::Length {
                expected: depth,
                got: self.acts.len(),
            });
        }
        Ok(())
    }

    /// Activation memory in bits: `Σ_k Q^a_k · n_k` over the formatted vectors (the input and
    /// every hidden layer's output), the buffers an integer runtime holds.
    pub fn activation_bits(&self, net: &Network) -> u64 {
        self.acts
            .iter()
            .zip(net.layers())
            .map(|(a, l)| a.total as u64 * l.inputs() as u64)
            .sum()
    }
}

/// The arithmetic a certificate speaks of.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Semantics {
    /// The paper's: quantized weights, real-valued activations (eq. (1)).
    #[default]
    Real,
    /// Integer-only inference (eqs. (54)–(57)).
    Integer(IntegerSemantics),
    /// The weight-quantized network evaluated in IEEE binary32 — inputs rounded to `f32`,
    /// every dot product and bias summed in any order, with or without FMA, ReLU exact,
    /// logits compared in `f32` with a tie a violation (docs/method.md §17, eqs. (58b),
    /// (58c)). Needs every weight and bias to be a normal (or zero) `f32`
    /// ([`check_float32_weights`]) and no input map (it would add its own roundings).
    Float32,
}

impl Semantics {
    /// `true` for [`Semantics::Real`] (certificates omit the field then, so older ones read
    /// unchanged).
    pub fn is_real(&self) -> bool {
        matches!(self, Semantics::Real)
    }

    /// The integer semantics, if this is one.
    pub fn integer(&self) -> Option<&IntegerSemantics> {
        match self {
            Semantics::Integer(s) => Some(s),
            Semantics::Real | Semantics::Float32 => None,
        }
    }

    /// `true` for [`Semantics::Float32`].
    pub fn is_float32(&self) -> bool {
        matches!(self, Semantics::Float32)
    }
}

/// The unit roundoff of IEEE binary32, `u = 2^−24`.
pub const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Checks that every weight and bias of `net` runs unchanged in binary32 (docs/method.md
/// §17, eq. (58b)): it is `0` or a *normal* `f32` (exactly representable, and not flushed by
/// a denormals-are-zero runtime). A ⟨Q, F⟩ weight with `Q ≤ 24` and `F ≤ 126` always is;
/// the check reads the values themselves. (An input map, which the semantics also refuses,
/// is checked where the box meets the network.)
pub fn check_float32_weights(net: &Network) -> Result<(), SemanticsError> {
    for (k, layer) in net.layers().iter().enumerate() {
        let bad = |v: f64| v != 0.0 && !((v as f32) as f64 == v && (v as f32).is_normal());
        for j in 0..layer.outputs() {
            if let Some((_, v)) = layer.row_entries(j).find(|&(_, v)| bad(v)) {
                return Err(SemanticsError::NotFloat32 {
                    layer: k,
                    what: "weight",
                    value: v,
                });
            }
        }
        if let Some(&v) = layer.bias().iter().find(|&&v| bad(v)) {
            return Err(SemanticsError::NotFloat32 {
                layer: k,
                what: "bias",
                value: v,
            });
        }
    }
    Ok(())
}

/// `⌊a·2^−s⌉_even` (a left shift when `s ≤ 0`): the requantization of eq. (56).
pub fn shr_even(a: i128, s: i32) -> i128 {
    if s <= 0 {
        return a << (-s) as u32;
    }
    let s = s as u32;
    let q = a >> s; // floor
    let r = a - (q << s); // 0 ≤ r < 2^s
    let half = 1i128 << (s - 1);
    if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// One layer of the integer program (eq. (56)), rows in compressed form.
#[derive(Debug, Clone, PartialEq)]
pub struct IntLayer {
    /// Inputs (columns).
    pub inputs: usize,
    /// `row_ptr[i]..row_ptr[i+1]` index row `i`'s entries in `cols`/`codes`.
    pub row_ptr: Vec<usize>,
    /// Column of each non-zero weight code.
    pub cols: Vec<usize>,
    /// Weight codes `w = Ŵ·2^{F_k}` (non-zero only).
    pub codes: Vec<i64>,
    /// Bias codes `β = b̂·2^{F_k}`.
    pub bias: Vec<i64>,
    /// The layer's weight format ⟨Q_k, F_k⟩.
    pub weight: QuantConfig,
    /// Format of the layer's input codes.
    pub input: ActFormat,
    /// Format of the output codes (`None` for the logits: no requantization).
    pub output: Option<ActFormat>,
}

impl IntLayer {
    /// Output neurons.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// The shift `s_k = F_k + F^a_{k−1} − F^a_k` of eq. (56) (`None` for the logits).
    pub fn shift(&self) -> Option<i32> {
        self.output
            .map(|o| self.weight.frac() as i32 + self.input.frac() as i32 - o.frac() as i32)
    }

    /// The accumulators `acc_i = Σ_j w_ij α_j + β_i·2^{F^a}` (eq. (56)), exact.
    pub fn accumulate(&self, input: &[i64]) -> Vec<i128> {
        (0..self.outputs())
            .map(|i| {
                let mut acc = (self.bias[i] as i128) << self.input.frac();
                for e in self.row_ptr[i]..self.row_ptr[i + 1] {
                    acc += self.codes[e] as i128 * input[self.cols[e]] as i128;
                }
                acc
            })
            .collect()
    }

    /// The left side of eq. (57) for row `i`: `Σ_j |w_ij|·(2^{Q^a} − 1) + |β_i|·2^{F^a}`.
    pub fn accumulator_bound(&self, i: usize) -> i128 {
        let m = self.input.max_code() as i128;
        let s: i128 = self.codes[self.row_ptr[i]..self.row_ptr[i + 1]]
            .iter()
            .map(|&w| (w as i128).abs() * m)
            .sum();
        s + ((self.bias[i] as i128).abs() << self.input.frac())
    }
}

/// The integer-only program of a QNN under an [`IntegerSemantics`] (eqs. (55), (56)): what an
/// integer runtime executes and what every export must reproduce exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct IntProgram {
    /// Layers, input side first.
    pub layers: Vec<IntLayer>,
    /// Accumulator width (eq. (57)), already checked.
    pub acc_bits: u32,
}

impl IntProgram {
    /// Builds the program of `qnn` (the network quantized by `strategy`, eq. (5)) under
    /// `sem`. Refuses an input map, weights off their grid, and any accumulator that could
    /// overflow on some input (eq. (57)).
    pub fn new(
        qnn: &Network,
        strategy: &[QuantConfig],
        sem: &IntegerSemantics,
    ) -> Result<Self, SemanticsError> {
        let depth = qnn.depth();
        if strategy.len() != depth {
            return Err(SemanticsError::Strategy {
                expected: depth,
                got: strategy.len(),
            });
        }
        sem.fits(depth)?;
        if qnn.input_map().is_some() {
            return Err(SemanticsError::InputMap);
        }
        let mut layers = Vec::with_capacity(depth);
        for (k, (layer, &cfg)) in qnn.layers().iter().zip(strategy).enumerate() {
            let code = |what, v: f64| {
                let c = v * (cfg.frac() as f64).exp2();
                let max = (cfg.total() as f64 - 1.0).exp2();
                if c.fract() != 0.0 || c < -max || c > max - 1.0 {
                    Err(SemanticsError::OffGrid {
                        layer: k,
                        what,
                        value: v,
                        total: cfg.total(),
                        frac: cfg.frac(),
                    })
                } else {
                    Ok(c as i64)
                }
            };
            let mut row_ptr = vec![0];
            let (mut cols, mut codes) = (Vec::new(), Vec::new());
            for j in 0..layer.outputs() {
                for (c, v) in layer.row_entries(j) {
                    let w = code("weight", v)?;
                    if w != 0 {
                        cols.push(c);
                        codes.push(w);
                    }
                }
                row_ptr.push(cols.len());
            }
            let bias = layer
                .bias()
                .iter()
                .map(|&v| code("bias", v))
                .collect::<Result<Vec<_>, _>>()?;
            layers.push(IntLayer {
                inputs: layer.inputs(),
                row_ptr,
                cols,
                codes,
                bias,
                weight: cfg,
                input: sem.acts[k],
                output: sem.acts.get(k + 1).copied(),
            });
        }
        let program = Self {
            layers,
            acc_bits: sem.acc_bits,
        };
        program.check_overflow()?;
        Ok(program)
    }

    /// Eq. (57) on every row of every layer.
    pub fn check_overflow(&self) -> Result<(), SemanticsError> {
        let limit = (1i128 << (self.acc_bits - 1)) - 1;
        for (k, l) in self.layers.iter().enumerate() {
            for i in 0..l.outputs() {
                let bound = l.accumulator_bound(i);
                if bound > limit {
                    return Err(SemanticsError::Overflow {
                        layer: k,
                        row: i,
                        bound,
                        acc_bits: self.acc_bits,
                    });
                }
            }
        }
        Ok(())
    }

    /// The largest accumulator bound over all layers and rows (eq. (57)); an export whose
    /// runtime accumulates in `f32` is exact iff this is ≤ 2^24.
    pub fn max_accumulator_bound(&self) -> i128 {
        self.layers
            .iter()
            .flat_map(|l| (0..l.outputs()).map(move |i| l.accumulator_bound(i)))
            .max()
            .unwrap_or(0)
    }

    /// Network inputs.
    pub fn input_dim(&self) -> usize {
        self.layers[0].inputs
    }

    /// The input format `A_0`.
    pub fn input_format(&self) -> ActFormat {
        self.layers[0].input
    }

    /// Fractional bits of the logits: they are `acc · 2^−(F_d + F^a_{d−1})`.
    pub fn logit_frac(&self) -> u32 {
        let l = self.layers.last().expect("non-empty program");
        l.weight.frac() + l.input.frac()
    }

    /// Input codes of real inputs (eq. (54) with `A_0`).
    pub fn input_codes(&self, x: &[f64]) -> Result<Vec<i64>, SemanticsError> {
        self.check_len(x.len())?;
        let a = self.input_format();
        Ok(x.iter().map(|&v| a.code(v)).collect())
    }

    /// Input codes of raw 8-bit pixels (`k/255`, exact).
    pub fn pixel_codes(&self, pixels: &[u8]) -> Result<Vec<i64>, SemanticsError> {
        self.check_len(pixels.len())?;
        let a = self.input_format();
        Ok(pixels.iter().map(|&k| a.pixel_code(k)).collect())
    }

    fn check_len(&self, got: usize) -> Result<(), SemanticsError> {
        if got != self.input_dim() {
            return Err(SemanticsError::InputLength {
                expected: self.input_dim(),
                got,
            });
        }
        Ok(())
    }

    /// Runs the program on input codes: the integer logits (accumulators of the last
    /// layer, eq. (56)). `codes` must have [`IntProgram::input_dim`] entries.
    pub fn run_codes(&self, codes: &[i64]) -> Vec<i64> {
        let mut a: Vec<i64> = codes.to_vec();
        for l in &self.layers {
            let acc = l.accumulate(&a);
            match (l.output, l.shift()) {
                (Some(o), Some(s)) => {
                    let max = o.max_code() as i128;
                    a = acc
                        .into_iter()
                        .map(|z| shr_even(z, s).clamp(0, max) as i64)
                        .collect();
                }
                _ => return acc.into_iter().map(|z| z as i64).collect(),
            }
        }
        unreachable!("the last layer has no output format")
    }

    /// Integer logits of raw pixels.
    pub fn run_pixels(&self, pixels: &[u8]) -> Result<Vec<i64>, SemanticsError> {
        Ok(self.run_codes(&self.pixel_codes(pixels)?))
    }

    /// Integer logits of real inputs.
    pub fn run(&self, x: &[f64]) -> Result<Vec<i64>, SemanticsError> {
        Ok(self.run_codes(&self.input_codes(x)?))
    }

    /// The logits as reals, `acc · 2^−(F_d + F^a_{d−1})` (exact for |acc| < 2^53).
    pub fn logits_real(&self, logits: &[i64]) -> Vec<f64> {
        let s = (-(self.logit_frac() as f64)).exp2();
        logits.iter().map(|&z| z as f64 * s).collect()
    }
}

/// The class of integer logits: the unique largest, `None` on a tie (a tie is a violation of
/// every robustness property, eq. (55)).
pub fn strict_argmax(logits: &[i64]) -> Option<usize> {
    let max = *logits.iter().max()?;
    let mut it = logits.iter().enumerate().filter(|(_, v)| **v == max);
    let (i, _) = it.next()?;
    it.next().is_none().then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Affine;

    #[test]
    fn formats_validate_and_round_half_even() {
        assert!(ActFormat::new(0, 0).is_err());
        assert!(ActFormat::new(32, 0).is_err());
        assert!(ActFormat::new(4, 41).is_err());
        let a = ActFormat::new(4, 2).unwrap(); // codes 0..=15, step 1/4, M = 3.75
        assert_eq!(a.code(0.125), 0); // 0.5 → 0 (even)
        assert_eq!(a.code(0.375), 2); // 1.5 → 2
        assert_eq!(a.code(0.625), 2); // 2.5 → 2
        assert_eq!(a.code(-3.0), 0);
        assert_eq!(a.code(100.0), 15);
        assert_eq!(a.max_value(), 3.75);
        assert_eq!(a.half_step(), 0.125);
        assert_eq!(a.code(f64::NAN), 0);
        // F > Q: values below 1 only.
        let b = ActFormat::new(3, 5).unwrap();
        assert_eq!(b.max_value(), 7.0 / 32.0);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"total":4,"frac":2}"#);
        assert!(serde_json::from_str::<ActFormat>(r#"{"total":0,"frac":2}"#).is_err());
    }

    #[test]
    fn pixel_code_equals_real_rounding() {
        for (q, f) in [(9, 8), (8, 8), (5, 4), (3, 1), (12, 11), (20, 18)] {
            let a = ActFormat::new(q, f).unwrap();
            for k in 0..=255u8 {
                assert_eq!(a.pixel_code(k), a.code(k as f64 / 255.0), "k={k} ⟨{q},{f}⟩");
            }
        }
    }

    #[test]
    fn shift_rounds_half_to_even_both_signs() {
        assert_eq!(shr_even(5, 1), 2); // 2.5
        assert_eq!(shr_even(7, 1), 4); // 3.5
        assert_eq!(shr_even(-5, 1), -2); // -2.5
        assert_eq!(shr_even(-7, 1), -4); // -3.5
        assert_eq!(shr_even(6, 2), 2); // 1.5
        assert_eq!(shr_even(5, 2), 1); // 1.25
        assert_eq!(shr_even(3, -2), 12);
        for a in -100i128..100 {
            for s in 1..5 {
                let exact = (a as f64 / (1u32 << s) as f64).round_ties_even() as i128;
                assert_eq!(shr_even(a, s), exact, "{a} >> {s}");
            }
        }
    }

    fn tiny() -> (Network, Vec<QuantConfig>) {
        // 2 → 2 → 2; weights on the grids ⟨4,2⟩ and ⟨3,1⟩.
        let l0 = Affine::new(0, 2, 2, vec![0.75, -0.5, 0.25, 1.0], vec![0.25, -0.25]).unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, -0.5, 0.5, 0.5], vec![0.0, 0.5]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let s = vec![
            QuantConfig::new(4, 2).unwrap(),
            QuantConfig::new(3, 1).unwrap(),
        ];
        (net, s)
    }

    #[test]
    fn program_computes_the_rational_semantics() {
        let (net, s) = tiny();
        let a0 = ActFormat::new(5, 4).unwrap();
        let a1 = ActFormat::new(3, 2).unwrap();
        let sem = IntegerSemantics::new(vec![a0, a1], 16).unwrap();
        let p = IntProgram::new(&net, &s, &sem).unwrap();
        for x in [[0.3, 0.9], [1.0, 0.0], [0.05, 0.5], [0.77, 0.61]] {
            // Eq. (55) with f64 (exact here: every value is a short dyadic).
            let z0: Vec<f64> = x.iter().map(|&v| a0.quantize(v)).collect();
            let y1 = net.layers()[0].apply(&z0);
            let z1: Vec<f64> = y1.iter().map(|&v| a1.quantize(v)).collect();
            let y2 = net.layers()[1].apply(&z1);
            let got = p.logits_real(&p.run(&x).unwrap());
            assert_eq!(got, y2, "x = {x:?}");
        }
        assert_eq!(p.logit_frac(), 1 + 2);
        assert!(p.run(&[0.0]).is_err());
    }

    #[test]
    fn refuses_overflow_off_grid_and_bad_lengths() {
        let (net, s) = tiny();
        let a = ActFormat::new(30, 4).unwrap();
        let sem = IntegerSemantics::new(vec![a, a], 16).unwrap();
        assert!(matches!(
            IntProgram::new(&net, &s, &sem),
            Err(SemanticsError::Overflow { layer: 0, .. })
        ));
        let sem = IntegerSemantics::new(vec![a], 32).unwrap();
        assert!(matches!(
            IntProgram::new(&net, &s, &sem),
            Err(SemanticsError::Length { .. })
        ));
        let coarse = vec![QuantConfig::new(3, 1).unwrap(), s[1]];
        let small = ActFormat::new(4, 2).unwrap();
        let sem = IntegerSemantics::new(vec![small, small], 32).unwrap();
        assert!(matches!(
            IntProgram::new(&net, &coarse, &sem),
            Err(SemanticsError::OffGrid { layer: 0, .. })
        ));
        assert!(IntegerSemantics::new(vec![], 4).is_err());
    }

    #[test]
    fn ties_are_not_a_class() {
        assert_eq!(strict_argmax(&[1, 3, 2]), Some(1));
        assert_eq!(strict_argmax(&[3, 1, 3]), None);
        assert_eq!(strict_argmax(&[]), None);
    }

    #[test]
    fn semantics_serializes_tagged_and_defaults_to_real() {
        let s = Semantics::Integer(
            IntegerSemantics::new(vec![ActFormat::new(8, 8).unwrap()], 32).unwrap(),
        );
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"integer","acts":[{"total":8,"frac":8}],"acc_bits":32}"#
        );
        assert_eq!(serde_json::from_str::<Semantics>(&j).unwrap(), s);
        assert!(Semantics::default().is_real());
        let f = serde_json::to_string(&Semantics::Float32).unwrap();
        assert_eq!(f, r#"{"kind":"float32"}"#);
        assert_eq!(
            serde_json::from_str::<Semantics>(&f).unwrap(),
            Semantics::Float32
        );
        assert!(Semantics::Float32.integer().is_none() && Semantics::Float32.is_float32());
    }

    #[test]
    fn float32_weights_must_be_normal_f32() {
        let (net, _) = tiny();
        assert!(check_float32_weights(&net).is_ok());
        let l = Affine::new(0, 1, 1, vec![0.1], vec![0.0]).unwrap();
        assert!(matches!(
            check_float32_weights(&Network::new(vec![l]).unwrap()),
            Err(SemanticsError::NotFloat32 { layer: 0, .. })
        ));
        let l = Affine::new(0, 1, 1, vec![0.5], vec![1e-40]).unwrap();
        assert!(matches!(
            check_float32_weights(&Network::new(vec![l]).unwrap()),
            Err(SemanticsError::NotFloat32 { what: "bias", .. })
        ));
    }
}
