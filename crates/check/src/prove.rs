//! The checker's own DeepPoly: back-substitution with *interval* coefficients.
//!
//! Same relaxation family as the synthesis side (so the same properties are provable): for a
//! ReLU `z = max(y, 0)` with sound pre-activation bounds `l ≤ y ≤ u`,
//! * `u ≤ 0`: `z = 0`; `l ≥ 0`: `z = y`;
//! * otherwise `z ≥ λy` with `λ = 1` iff `u > −l` (the area heuristic), and
//!   `z ≤ μ*(y − l)` with the exact chord slope `μ* = u/(u − l)`.
//!
//! # Why every bound is sound
//! A bound is kept as rows of interval coefficients `A` and an interval constant `C` over the
//! variables `v` of some layer (pre-activations `y`, post-activations `z`, or the input `x`).
//! The invariant, for a lower bound of a target quantity `t(x)`, is
//!
//! > there are *real* `a ∈ A` (componentwise) and `c ∈ C` with `t(x) ≥ a·v(x) + c` for every
//! > input `x` of the box (upper bounds: `≤`), where `v(x)` is the exact real value of the
//! > network's neurons.
//!
//! Each step maps the exact real coefficients of the previous stage to exact real
//! coefficients of the next, and computes the new intervals with outward-rounded interval
//! operations ([`super::interval`]), which enclose the exact results:
//! * **affine** `v = W v' + b` (weights are exact floats): `a·v + c = (aᵀW)·v' + (a·b + c)`;
//! * **ReLU**, lower side: write `a = a⁺ − a⁻` (`a⁺ = max(a,0) ∈ pos_part(A)`,
//!   `a⁻ = max(−a,0) ∈ neg_part(A)`, which also covers intervals straddling 0); then
//!   `a z ≥ a⁺(λy) − a⁻(μ*y + c*)` because `λy ≤ z ≤ μ*y + c*` on `[l, u]` with
//!   `c* = −μ*l`; `μ*` and `c*` are enclosed in intervals, so the new coefficient
//!   `a⁺λ − a⁻μ*` and constant `−a⁻c*` lie in the computed intervals. Upper side symmetric.
//! * **concretisation** over the box `[lo, hi]`: `min_x a·x + c ≥ Σ_i min(a_i lo_i, a_i hi_i)
//!   + c`, which is `≥` the lower end of the interval evaluation `Σ A_i·[lo_i, hi_i] + C`.
//!
//! The concrete bounds `[l, u]` of every hidden neuron are computed this way (full
//! back-substitution to the input), so the relaxations used for later layers are valid for
//! every input of the box. Any non-finite bound (overflow) makes the proof fail rather than
//! risk an unsound relaxation.
//!
//! Nothing here uses `certquant-bounds`; only the network's weights and the box are read.
//! The relaxation is docs/method.md, eq. (7); the interval version, eq. (46); margins, eq. (47).
//!
//! Under the integer semantics (docs/method.md §17) a hidden neuron's output is the rounded
//! and saturated `r(y)` of eq. (54) instead of `max(y, 0)`: [`Prover::with_formats`] takes one
//! optional activation format per layer input, quantizes the input box exactly, and relaxes
//! each such neuron by eq. (58) ([`quantized`]); the substitution step is the same with two
//! more relaxation kinds (a constant, and general interval-coefficient lines).

pub mod float32;
pub mod quantized;

use rayon::prelude::*;

use super::interval::{
    Interval, add_down, add_up, div_down, div_up, mul_down, mul_up, sub_down, sub_up,
};
use certquant_core::model::{Affine, Network};
use certquant_core::semantics::ActFormat;
use certquant_core::spec::OutputSpec;

/// Which side of the target a bound is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `t(x) ≥ bound`.
    Lower,
    /// `t(x) ≤ bound`.
    Upper,
}

/// The relaxation of one ReLU, fixed once its pre-activation bounds are known
/// (docs/method.md, eqs. (7), (46); under the integer semantics, eq. (58)).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Relu {
    /// Integer semantics, `r(l) = r(u)`: the output is exactly this constant (`r` is
    /// monotone).
    Const(f64),
    /// Integer semantics: `lower.slope·y + lower.icpt ≤ z ≤ upper.slope·y + upper.icpt` for
    /// exact reals in the intervals (eq. (58), widened by the rounding error).
    Linear {
        /// The lower line.
        lower: Line,
        /// The upper line.
        upper: Line,
    },
    /// `u ≤ 0`: `z = 0`.
    Dead,
    /// `l ≥ 0`: `z = y`.
    Active,
    /// `l < 0 < u`: `λy ≤ z ≤ μ*y + c*` with `μ* ∈ slope`, `c* ∈ icpt`.
    Unstable {
        /// `λ = 1` (else `0`).
        lambda_one: bool,
        /// Enclosure of `u/(u − l)`.
        slope: Interval,
        /// Enclosure of `−μ*·l`.
        icpt: Interval,
    },
}

/// A line `slope·y + icpt` with enclosed coefficients: some exact real line with
/// coefficients in the intervals is a valid bound.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Line {
    slope: Interval,
    icpt: Interval,
}

impl Relu {
    fn new(l: f64, u: f64) -> Self {
        if u <= 0.0 {
            Relu::Dead
        } else if l >= 0.0 {
            Relu::Active
        } else {
            // u > 0 > l, both finite (checked by the caller): u − l > 0.
            let d = Interval::new(sub_down(u, l), sub_up(u, l));
            let lo = if d.hi > 0.0 { div_down(u, d.hi) } else { 0.0 };
            let hi = if d.lo > 0.0 { div_up(u, d.lo) } else { 1.0 };
            // The exact slope lies in (0, 1): intersecting with [0, 1] keeps it.
            let slope = Interval::new(lo.max(0.0), hi.min(1.0));
            let icpt = slope.scale(-l);
            Relu::Unstable {
                lambda_one: u > -l,
                slope,
                icpt,
            }
        }
    }
}

/// Linear bounds with interval coefficients: `rows × width` coefficients and one constant
/// per row.
#[derive(Debug, Clone)]
pub struct Rows {
    width: usize,
    coef: Vec<Interval>,
    cst: Vec<Interval>,
}

impl Rows {
    /// Builds rows from row-major coefficients (`cst.len()` rows of `width`).
    pub fn new(width: usize, coef: Vec<Interval>, cst: Vec<Interval>) -> Self {
        assert_eq!(coef.len(), width * cst.len());
        Self { width, coef, cst }
    }

    fn rows(&self) -> usize {
        self.cst.len()
    }
}

/// Largest number of interval coefficients of one block of rows [`Prover::new`] bounds at
/// once (2^20, 16 MiB): a layer's rows go in chunks of `ROW_BLOCK / width` rows, `width` the
/// widest layer they pass through, so the rows of a wide lowered layer (a max-pooling
/// tournament level) are never all dense at once. Rows are independent: the chunking
/// changes no bound.
pub const ROW_BLOCK: usize = 1 << 20;

/// Pre-activation bounds of every hidden layer and the resulting relaxations, for one network
/// over one box: the state needed to bound any linear function of the logits.
#[derive(Debug, Clone)]
pub struct Prover<'a> {
    net: &'a Network,
    /// The box over layer 0's input: the raw box mapped through the input map (and rounded
    /// onto the input format under the integer semantics).
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Concrete bounds `[l, u]` of the pre-activations of each hidden layer.
    bounds: Vec<Vec<Interval>>,
    relax: Vec<Vec<Relu>>,
    /// The activation format of each layer input (`None`: real input / real ReLU).
    formats: Vec<Option<ActFormat>>,
    /// Float32 semantics: per affine layer (the logits' too), the accumulation error bound of
    /// each output (eq. (58b), [`float32::errors`]); empty under the other semantics.
    fl_err: Vec<Vec<f64>>,
}

impl<'a> Prover<'a> {
    /// Bounds every hidden layer of `net` over the raw box `[lo, hi]`, first mapped through
    /// the network's input map by [`crate::input_map::map_box`] (the checker's own code).
    ///
    /// Fails (with a reason) if the box does not fit the network or a bound overflowed.
    pub fn new(net: &'a Network, lo: &'a [f64], hi: &'a [f64]) -> Result<Self, String> {
        Self::with_formats(net, lo, hi, &vec![None; net.depth()])
    }

    /// Like [`Prover::new`], for a semantics given per affine layer input: `formats[0]` for
    /// the network's input, `formats[k]` for the output of hidden layer `k` (the input of
    /// layer `k`). `None` is the real semantics there (the input as is, a real ReLU,
    /// eq. (7)); `Some(A)` rounds onto `A` (eq. (54)): the box becomes
    /// `[r_A(lo), r_A(hi)]` (exact, [`crate::semantics::act_value`]; `r` is monotone), and a
    /// hidden neuron is relaxed by eq. (58). With every entry `None` this is exactly
    /// [`Prover::new`] (same code path, bit-identical bounds).
    ///
    /// Fails (with a reason) also if `formats` does not have one entry per affine layer, or
    /// the input is formatted and the network has an input map (which would run in floating
    /// point; docs/method.md §17).
    pub fn with_formats(
        net: &'a Network,
        lo: &'a [f64],
        hi: &'a [f64],
        formats: &[Option<ActFormat>],
    ) -> Result<Self, String> {
        Self::build(net, lo, hi, formats, Relu::quantized, false)
    }

    /// Like [`Prover::new`], for the float32 semantics (docs/method.md §17, eqs. (58b),
    /// (58c)): the box rounded outward onto binary32, and every affine output — hidden and
    /// logits — widened by `[−E_j, E_j]`, its accumulation error in any summation order.
    /// Fails also if a weight is not a normal `f32`, the network has an input map, or a
    /// neuron could overflow in `f32`.
    pub fn float32(net: &'a Network, lo: &'a [f64], hi: &'a [f64]) -> Result<Self, String> {
        float32::check_network(net)?;
        Self::build(net, lo, hi, &vec![None; net.depth()], Relu::quantized, true)
    }

    /// [`Prover::with_formats`] with the relaxation of formatted neurons as a parameter (tests
    /// substitute a deliberately wrong one to show the soundness test catches it).
    fn build(
        net: &'a Network,
        lo: &'a [f64],
        hi: &'a [f64],
        formats: &[Option<ActFormat>],
        quantized: impl Fn(f64, f64, ActFormat) -> Option<Relu>,
        fl32: bool,
    ) -> Result<Self, String> {
        quantized::check_formats(net, formats)?;
        if lo.len() != net.input_dim() || hi.len() != net.input_dim() {
            return Err(format!(
                "the box has dimension {}, the network takes {} inputs",
                lo.len(),
                net.input_dim()
            ));
        }
        if let Some(i) = (0..lo.len()).find(|&i| !(lo[i].is_finite() && hi[i].is_finite())) {
            return Err(format!("box entry {i} is not finite"));
        }
        if let Some(i) = (0..lo.len()).find(|&i| lo[i] > hi[i]) {
            return Err(format!("box entry {i} is empty"));
        }
        // Soundness: the raw box is mapped through the input normalisation with the
        // checker's own outward-rounded arithmetic before it meets layer 0.
        let (mut lo, mut hi) = crate::input_map::map_box(net, lo, hi)?;
        // Soundness: under an input format, [r(lo), r(hi)] (exact; r is monotone).
        quantized::round_input_box(net, formats[0], &mut lo, &mut hi)?;
        // Soundness: under float32, [fl32↓(lo), fl32↑(hi)] holds every fl32(x) (eq. (58b)).
        if fl32 {
            float32::round_box(&mut lo, &mut hi)?;
        }
        if lo.len() != net.layers()[0].inputs() {
            return Err(format!(
                "the input map produces {} values, layer 0 takes {}",
                lo.len(),
                net.layers()[0].inputs()
            ));
        }
        // Soundness (docs/method.md, eq. (75)): layers whose real coefficients are not floats
        // (average pools over 9 or 49 values) are enclosed with the checker's own code, and
        // their outputs widened by `σ`; only the real semantics covers them.
        let coef = crate::inexact::coef_errors(net)?;
        if let Some(k) = coef.iter().position(Option::is_some)
            && (fl32 || formats.iter().any(Option::is_some))
        {
            return Err(format!(
                "layer {k} averages over a window whose size is not a power of two; only the \
                 real semantics covers it"
            ));
        }
        let mut p = Prover {
            net,
            lo,
            hi,
            bounds: Vec::new(),
            relax: Vec::new(),
            formats: formats.to_vec(),
            fl_err: Vec::new(),
        };
        let mut widest = 0;
        for k in 0..net.depth() - 1 {
            let layer = &net.layers()[k];
            widest = widest.max(layer.inputs());
            let chunk = (ROW_BLOCK / widest).clamp(1, layer.outputs());
            let e = p.output_errors_of(k, fl32, coef[k].as_ref())?;
            p.fl_err.push(e);
            let mut b = Vec::with_capacity(layer.outputs());
            let mut r = Vec::with_capacity(layer.outputs());
            for start in (0..layer.outputs()).step_by(chunk) {
                let end = (start + chunk).min(layer.outputs());
                let mut rows = exact_rows(layer, start, end);
                if let Some(e) = p.fl_err.get(k).filter(|e| !e.is_empty()) {
                    widen(&mut rows.cst, &e[start..end]);
                }
                let (lower, upper) = rayon::join(
                    || p.back_substitute(rows.clone(), k, Side::Lower),
                    || p.back_substitute(rows.clone(), k, Side::Upper),
                );
                for (i, (&l, &u)) in lower.iter().zip(&upper).enumerate() {
                    if !(l.is_finite() && u.is_finite()) {
                        return Err(format!(
                            "bounds of layer {k} neuron {} overflowed",
                            start + i
                        ));
                    }
                    // Both enclose the true range, which is non-empty, so l ≤ u.
                    b.push(Interval::new(l, u));
                    r.push(match formats[k + 1] {
                        None => Relu::new(l, u),
                        Some(a) => quantized(l, u, a).ok_or_else(|| {
                            format!("layer {k} neuron {}: no relaxation", start + i)
                        })?,
                    });
                }
            }
            p.bounds.push(b);
            p.relax.push(r);
        }
        let k = net.depth() - 1;
        let e = p.output_errors_of(k, fl32, coef[k].as_ref())?;
        p.fl_err.push(e);
        Ok(p)
    }

    /// The bound on how far each output of stored layer `k` can be from the layer the proof
    /// is about: the float32 accumulation error (eq. (58b)) or the coefficient slack `σ` of a
    /// layer enclosed by [`crate::inexact`] (eq. (75)); empty for an exact real layer.
    fn output_errors_of(
        &self,
        k: usize,
        fl32: bool,
        coef: Option<&crate::inexact::LayerError>,
    ) -> Result<Vec<f64>, String> {
        let layer = &self.net.layers()[k];
        let m = self.input_magnitudes(k);
        let mut e = if fl32 {
            float32::errors(k, layer, &m)?
        } else {
            Vec::new()
        };
        if let Some(c) = coef {
            let s = c.slack(&m);
            e = if e.is_empty() {
                s
            } else {
                e.iter().zip(&s).map(|(a, b)| add_up(*a, *b)).collect()
            };
        }
        Ok(e)
    }

    /// The error bound of each logit (float32 accumulation, or the coefficient slack of eq.
    /// (75) of a layer enclosed by [`crate::inexact`]); empty when the
    /// logits are exact.
    pub fn output_errors(&self) -> &[f64] {
        self.errors_of(self.net.depth() - 1)
    }

    /// `max |v|` over the box of each input `v` of affine layer `k` (for eq. (58b)): the
    /// (rounded) box's magnitudes for `k = 0`, else `max(u, 0)` of layer `k − 1` (an exact
    /// ReLU's output lies in `[max(l, 0), max(u, 0)]`).
    fn input_magnitudes(&self, k: usize) -> Vec<f64> {
        if k == 0 {
            self.lo
                .iter()
                .zip(&self.hi)
                .map(|(l, h)| l.abs().max(h.abs()))
                .collect()
        } else {
            self.bounds[k - 1].iter().map(|b| b.hi.max(0.0)).collect()
        }
    }

    /// Concrete pre-activation bounds `[l, u]` of hidden layer `k`.
    pub fn hidden_bounds(&self, k: usize) -> &[Interval] {
        &self.bounds[k]
    }

    /// Sound bounds on `side` over the box of linear functions given as rows over the *input*
    /// of affine layer `k` (the post-activations of layer `k − 1`, or the input if `k = 0`).
    ///
    /// Panics if `k` is not a layer of the network or the rows do not have its input width.
    /// See docs/method.md, eqs. (8), (46).
    pub fn back_substitute(&self, mut rows: Rows, k: usize, side: Side) -> Vec<f64> {
        assert!(k < self.net.depth(), "layer {k} out of range");
        assert_eq!(rows.width, self.net.layers()[k].inputs(), "row width");
        for s in (0..k).rev() {
            relu_step(&mut rows, &self.relax[s], side);
            rows = affine_step(&rows, &self.net.layers()[s], self.errors_of(s));
        }
        concretize(&rows, &self.lo, &self.hi, side)
    }

    /// Sound lower bounds over the box of `y_a − y_b` for each pair `(a, b)` (panics if a
    /// class index is out of range; docs/method.md, eq. (10)).
    pub fn logit_difference_lower_bounds(&self, pairs: &[(usize, usize)]) -> Vec<f64> {
        if pairs.is_empty() {
            return Vec::new();
        }
        let last = &self.net.layers()[self.net.depth() - 1];
        let n = last.inputs();
        let mut coef = Vec::with_capacity(pairs.len() * n);
        let mut cst = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            let (ra, rb) = (last.row_dense(a), last.row_dense(b));
            coef.extend(
                ra.iter()
                    .zip(rb.iter())
                    .map(|(&x, &y)| Interval::new(sub_down(x, y), sub_up(x, y))),
            );
            let (ba, bb) = (last.bias()[a], last.bias()[b]);
            let mut c = Interval::new(sub_down(ba, bb), sub_up(ba, bb));
            // float32 (eq. (58c)): ŷ_a − ŷ_b is within E_a + E_b of the exact difference.
            if let Some(e) = self
                .fl_err
                .get(self.net.depth() - 1)
                .filter(|e| !e.is_empty())
            {
                let w = add_up(e[a], e[b]);
                c = c + Interval::new(-w, w);
            }
            cst.push(c);
        }
        self.back_substitute(Rows::new(n, coef, cst), self.net.depth() - 1, Side::Lower)
    }

    /// The margin of an output condition (class indices must be in range):
    /// * `Robust{label}`: `min_{j≠label}` lower bound of `y_label − y_j` (`+∞` if there is no
    ///   other class);
    /// * `NotTarget{target}`: `max_{j≠target}` lower bound of `y_j − y_target` (`−∞` if there
    ///   is no other class).
    ///
    /// The condition is proven iff the margin is `> 0` (docs/method.md, eq. (47)).
    pub fn margin(&self, spec: OutputSpec) -> f64 {
        let classes = self.net.output_dim();
        match spec {
            OutputSpec::Robust { label } => {
                let pairs: Vec<_> = (0..classes)
                    .filter(|&j| j != label)
                    .map(|j| (label, j))
                    .collect();
                self.logit_difference_lower_bounds(&pairs)
                    .into_iter()
                    .fold(f64::INFINITY, min_nan)
            }
            OutputSpec::NotTarget { target } => {
                let pairs: Vec<_> = (0..classes)
                    .filter(|&j| j != target)
                    .map(|j| (j, target))
                    .collect();
                self.logit_difference_lower_bounds(&pairs)
                    .into_iter()
                    .fold(f64::NEG_INFINITY, max_nan)
            }
        }
    }
}

impl Prover<'_> {
    /// A sound lower bound over the box of `Σ_j λ_j (y_j − y_target)` (the not-target proof
    /// by multipliers of `certquant_bounds::joint`); `−∞` unless every `λ_j` is finite and
    /// `≥ 0` with at least one positive, `λ` has one entry per class, and `target` exists.
    /// The combined row is enclosed with interval arithmetic, so no rounding is trusted
    /// (docs/method.md, eqs. (39), (47)).
    pub fn difference_combination_lower_bound(&self, target: usize, lambda: &[f64]) -> f64 {
        let classes = self.net.output_dim();
        let usable = target < classes
            && lambda.len() == classes
            && lambda.iter().all(|l| l.is_finite() && *l >= 0.0)
            && lambda
                .iter()
                .enumerate()
                .any(|(j, &l)| j != target && l > 0.0);
        if !usable {
            return f64::NEG_INFINITY;
        }
        let last = &self.net.layers()[self.net.depth() - 1];
        let n = last.inputs();
        let rt = last.row_dense(target);
        let bt = last.bias()[target];
        let mut coef = vec![Interval::ZERO; n];
        let mut cst = Interval::ZERO;
        for (j, &l) in lambda.iter().enumerate() {
            if j == target || l == 0.0 {
                continue;
            }
            for ((c, &a), &b) in coef.iter_mut().zip(last.row_dense(j).iter()).zip(rt.iter()) {
                *c = *c + Interval::new(sub_down(a, b), sub_up(a, b)).scale(l);
            }
            let (a, b) = (last.bias()[j], bt);
            cst = cst + Interval::new(sub_down(a, b), sub_up(a, b)).scale(l);
            // float32 (eq. (58c)): λ_j (ŷ_j − ŷ_t) is within λ_j (E_j + E_t) of the exact one.
            if let Some(e) = self
                .fl_err
                .get(self.net.depth() - 1)
                .filter(|e| !e.is_empty())
            {
                let w = mul_up(l, add_up(e[j], e[target]));
                cst = cst + Interval::new(-w, w);
            }
        }
        let lb = self.back_substitute(
            Rows::new(n, coef, vec![cst]),
            self.net.depth() - 1,
            Side::Lower,
        )[0];
        if lb.is_nan() { f64::NEG_INFINITY } else { lb }
    }
}

impl Prover<'_> {
    /// The float32 accumulation errors of affine layer `k` (empty: exact layer).
    fn errors_of(&self, k: usize) -> &[f64] {
        self.fl_err.get(k).map_or(&[], Vec::as_slice)
    }
}

/// Adds `[−e_r, e_r]` to each constant (an affine output off by at most `e_r`, eq. (58b)).
fn widen(cst: &mut [Interval], e: &[f64]) {
    for (c, &w) in cst.iter_mut().zip(e) {
        *c = *c + Interval::new(-w, w);
    }
}

/// `min` that propagates NaN (a NaN bound must never be dropped).
fn min_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `max` that propagates NaN.
fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Rows `start..end` of an affine layer, `W_j x + b_j`, exactly (point intervals; the zero
/// entries of a sparse layer are exact zeros).
fn exact_rows(layer: &Affine, start: usize, end: usize) -> Rows {
    let n = layer.inputs();
    let mut coef = vec![Interval::ZERO; (end - start) * n];
    for (j, row) in (start..end).zip(coef.chunks_mut(n)) {
        for (i, w) in layer.row_entries(j) {
            row[i] = Interval::point(w);
        }
    }
    Rows::new(
        n,
        coef,
        layer.bias()[start..end]
            .iter()
            .map(|&b| Interval::point(b))
            .collect(),
    )
}

/// Substitutes the ReLU relaxation of one hidden layer: rows over its post-activations `z`
/// become rows over its pre-activations `y`.
fn relu_step(rows: &mut Rows, relax: &[Relu], side: Side) {
    let width = rows.width;
    assert_eq!(width, relax.len());
    rows.coef
        .par_chunks_mut(width)
        .zip(rows.cst.par_iter_mut())
        .for_each(|(row, cst)| {
            for (a, r) in row.iter_mut().zip(relax) {
                if a.is_zero() {
                    continue;
                }
                match *r {
                    Relu::Const(c) => {
                        // a·z = a·c exactly: the constant's enclosure, no coefficient left.
                        *cst = *cst + a.scale(c);
                        *a = Interval::ZERO;
                    }
                    Relu::Linear { lower, upper } => {
                        let (p, n) = (a.pos_part(), a.neg_part());
                        // a z ≥ a⁺·lower(y) − a⁻·upper(y), a z ≤ a⁺·upper(y) − a⁻·lower(y)
                        let (plus, minus) = match side {
                            Side::Lower => (lower, upper),
                            Side::Upper => (upper, lower),
                        };
                        *a = p * plus.slope - n * minus.slope;
                        *cst = *cst + (p * plus.icpt - n * minus.icpt);
                    }
                    Relu::Dead => *a = Interval::ZERO,
                    Relu::Active => {}
                    Relu::Unstable {
                        lambda_one,
                        slope,
                        icpt,
                    } => {
                        let (p, n) = (a.pos_part(), a.neg_part());
                        match side {
                            Side::Lower => {
                                // a z ≥ a⁺·λy − a⁻·(μ*y + c*)
                                let lam = if lambda_one { p } else { Interval::ZERO };
                                *a = lam - n * slope;
                                *cst = *cst - n * icpt;
                            }
                            Side::Upper => {
                                // a z ≤ a⁺·(μ*y + c*) − a⁻·λy
                                let lam = if lambda_one { n } else { Interval::ZERO };
                                *a = p * slope - lam;
                                *cst = *cst + p * icpt;
                            }
                        }
                    }
                }
            }
        });
}

/// Substitutes `v = W v' + b` (exact float weights): rows over the layer's outputs become rows
/// over its inputs.
///
/// Only the non-zero weights contribute (a zero weight adds an exact zero), so a sparse layer
/// is read through its stored entries.
///
/// Under float32 (`fl` non-empty) output `t` is `W_t v' + b_t + e_t`, `|e_t| ≤ fl[t]`
/// (eq. (58b)): the constant also gains `a_t·[−fl[t], fl[t]]`.
fn affine_step(rows: &Rows, layer: &Affine, fl: &[f64]) -> Rows {
    let (n_out, n_in) = (layer.outputs(), layer.inputs());
    assert_eq!(rows.width, n_out);
    let b = layer.bias();
    let mut coef = vec![Interval::ZERO; rows.rows() * n_in];
    let mut cst = rows.cst.clone();
    coef.par_chunks_mut(n_in)
        .zip(cst.par_iter_mut())
        .zip(rows.coef.par_chunks(n_out))
        .for_each(|((out, c), row)| {
            for (t, a) in row.iter().enumerate() {
                if a.is_zero() {
                    continue;
                }
                *c = *c + a.scale(b[t]);
                if let Some(&e) = fl.get(t) {
                    let w = mul_up(a.lo.abs().max(a.hi.abs()), e);
                    *c = *c + Interval::new(-w, w);
                }
                let (alo, ahi) = (a.lo, a.hi);
                // [alo, ahi]·wv with outward rounding, accumulated outward.
                let add = |o: &mut Interval, wv: f64| {
                    let (plo, phi) = if wv > 0.0 {
                        (mul_down(alo, wv), mul_up(ahi, wv))
                    } else {
                        (mul_down(ahi, wv), mul_up(alo, wv))
                    };
                    o.lo = add_down(o.lo, plo);
                    o.hi = add_up(o.hi, phi);
                };
                match layer.weights() {
                    Some(w) => {
                        for (o, &wv) in out.iter_mut().zip(&w[t * n_in..(t + 1) * n_in]) {
                            if wv != 0.0 {
                                add(o, wv);
                            }
                        }
                    }
                    None => {
                        for (s, wv) in layer.row_entries(t) {
                            add(&mut out[s], wv);
                        }
                    }
                }
            }
        });
    Rows::new(n_in, coef, cst)
}

/// Sound bound on `side` over the box `[lo, hi]` of each row (rows over the input).
fn concretize(rows: &Rows, lo: &[f64], hi: &[f64], side: Side) -> Vec<f64> {
    let width = rows.width;
    assert_eq!(width, lo.len());
    rows.coef
        .par_chunks(width)
        .zip(rows.cst.par_iter())
        .map(|(row, c)| {
            let mut acc = match side {
                Side::Lower => c.lo,
                Side::Upper => c.hi,
            };
            for ((a, &l), &h) in row.iter().zip(lo).zip(hi) {
                if a.is_zero() {
                    continue;
                }
                let x = Interval::new(l, h);
                acc = match side {
                    Side::Lower => add_down(acc, a.mul_lo(x)),
                    Side::Upper => add_up(acc, a.mul_hi(x)),
                };
            }
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random network whose weights are `k/16` and biases `k/256` (small integers `k`), so
    /// that the exact forward pass of a dyadic input is computable in `i128`.
    fn dyadic_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(l, s)| {
                let (n_in, n_out) = (s[0], s[1]);
                let w = (0..n_in * n_out)
                    .map(|_| rng.random_range(-24i32..=24) as f64 / 16.0)
                    .collect();
                let b = (0..n_out)
                    .map(|_| rng.random_range(-300i32..=300) as f64 / 256.0)
                    .collect();
                Affine::new(l, n_out, n_in, w, b).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    /// Exact forward pass on an input `x = xi / 2^8` (integers `xi`): returns, per affine
    /// layer, the pre-activations as integers scaled by `2^(8 + 4·(k+1))` and that exponent.
    fn exact_forward(net: &Network, xi: &[i128]) -> Vec<(Vec<i128>, i32)> {
        let mut v: Vec<i128> = xi.to_vec();
        let mut scale = 8; // v = integer / 2^scale
        let mut out = Vec::new();
        for (k, layer) in net.layers().iter().enumerate() {
            let new_scale = scale + 4; // w = kw / 2^4
            let mut y = Vec::with_capacity(layer.outputs());
            for j in 0..layer.outputs() {
                let mut s: i128 = 0;
                for (i, &wv) in layer.row_dense(j).iter().enumerate() {
                    s += (wv * 16.0) as i128 * v[i];
                }
                // bias k/2^8 at scale new_scale ≥ 12
                s += (layer.bias()[j] * 256.0) as i128 * (1i128 << (new_scale - 8));
                y.push(s);
            }
            out.push((y.clone(), new_scale));
            if k + 1 < net.depth() {
                v = y.into_iter().map(|t| t.max(0)).collect();
            }
            scale = new_scale;
        }
        out
    }

    /// The exact rational `n / 2^s` as an f64 (exact: |n| < 2^53 here).
    fn exact_f64(n: i128, s: i32) -> f64 {
        assert!(n.unsigned_abs() < 1 << 53);
        n as f64 / 2f64.powi(s)
    }

    #[test]
    fn bounds_contain_exact_values_at_sampled_points_and_corners() {
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        for trial in 0..60 {
            let depth = rng.random_range(1..=4);
            let mut sizes = vec![rng.random_range(1..=6)];
            for _ in 0..depth {
                sizes.push(rng.random_range(1..=7));
            }
            let net = dyadic_net(&mut rng, &sizes);
            let n = sizes[0];
            // box ends are dyadic k/2^8 in [-1, 1]
            let mut lo_i = Vec::new();
            let mut hi_i = Vec::new();
            for _ in 0..n {
                let a = rng.random_range(-256i128..=256);
                let w = rng.random_range(0i128..=128);
                lo_i.push(a);
                hi_i.push(a + w);
            }
            let lo: Vec<f64> = lo_i.iter().map(|&v| v as f64 / 256.0).collect();
            let hi: Vec<f64> = hi_i.iter().map(|&v| v as f64 / 256.0).collect();
            let p = Prover::new(&net, &lo, &hi).unwrap();
            // logit bounds: each logit as a difference with... use pairs (j, j) would be 0;
            // instead bound every logit by rows e_j over the last layer's input.
            let last = &net.layers()[net.depth() - 1];
            let logit_rows = exact_rows(last, 0, last.outputs());
            let llo = p.back_substitute(logit_rows.clone(), net.depth() - 1, Side::Lower);
            let lhi = p.back_substitute(logit_rows, net.depth() - 1, Side::Upper);
            let classes = net.output_dim();
            let pairs: Vec<(usize, usize)> = (0..classes)
                .flat_map(|a| (0..classes).filter(move |&b| b != a).map(move |b| (a, b)))
                .collect();
            let diff = p.logit_difference_lower_bounds(&pairs);
            let samples = 300;
            for s in 0..samples + (1 << n.min(6)) {
                let xi: Vec<i128> = if s < samples {
                    (0..n)
                        .map(|i| rng.random_range(lo_i[i]..=hi_i[i]))
                        .collect()
                } else {
                    let c = s - samples; // corners
                    (0..n)
                        .map(|i| if (c >> i) & 1 == 1 { hi_i[i] } else { lo_i[i] })
                        .collect()
                };
                let ex = exact_forward(&net, &xi);
                for (k, (ys, sc)) in ex.iter().enumerate() {
                    for (j, &yv) in ys.iter().enumerate() {
                        let y = exact_f64(yv, *sc);
                        if k + 1 < net.depth() {
                            let b = p.hidden_bounds(k)[j];
                            assert!(b.contains(y), "trial {trial} layer {k} neuron {j}");
                        } else {
                            assert!(llo[j] <= y && y <= lhi[j], "trial {trial} logit {j}");
                        }
                    }
                }
                let (logits, sc) = &ex[ex.len() - 1];
                for (r, &(a, b)) in pairs.iter().enumerate() {
                    let d = exact_f64(logits[a] - logits[b], *sc);
                    assert!(diff[r] <= d, "trial {trial} pair {a},{b}");
                }
            }
        }
    }

    /// The same network with every layer stored sparse gives the same bounds, bit for bit,
    /// whatever the row blocks.
    #[test]
    fn sparse_layers_give_the_same_bounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(77);
        for _ in 0..10 {
            let net = dyadic_net(&mut rng, &[5, 8, 6, 3]);
            // zero about half the weights
            let layers: Vec<Affine> = net
                .layers()
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let w = l.weights().unwrap();
                    let w = w
                        .iter()
                        .enumerate()
                        .map(|(e, &v)| if e % 2 == i % 2 { v } else { 0.0 })
                        .collect();
                    Affine::new(i, l.outputs(), l.inputs(), w, l.bias().to_vec()).unwrap()
                })
                .collect();
            let dense = Network::new(layers).unwrap();
            let sparse =
                Network::new(dense.layers().iter().map(Affine::to_sparse).collect()).unwrap();
            let lo: Vec<f64> = (0..5).map(|i| -0.25 + i as f64 / 16.0).collect();
            let hi: Vec<f64> = lo.iter().map(|v| v + 0.125).collect();
            let (p, q) = (
                Prover::new(&dense, &lo, &hi).unwrap(),
                Prover::new(&sparse, &lo, &hi).unwrap(),
            );
            for k in 0..2 {
                assert_eq!(p.hidden_bounds(k), q.hidden_bounds(k));
            }
            for label in 0..3 {
                let spec = OutputSpec::Robust { label };
                assert_eq!(p.margin(spec).to_bits(), q.margin(spec).to_bits());
            }
        }
    }

    #[test]
    fn relu_relaxation_encloses_the_chord() {
        for &(l, u) in &[(-1.0, 2.0), (-3.0, 0.1), (-1e-300, 1e-300), (-0.1, 0.3)] {
            match Relu::new(l, u) {
                Relu::Unstable {
                    lambda_one,
                    slope,
                    icpt,
                } => {
                    assert_eq!(lambda_one, u > -l);
                    let mu = u / (u - l);
                    assert!(slope.lo <= mu && mu <= slope.hi && slope.hi <= 1.0);
                    assert!(icpt.lo <= -mu * l && -mu * l <= icpt.hi);
                }
                r => panic!("{r:?}"),
            }
        }
        assert_eq!(Relu::new(-1.0, 0.0), Relu::Dead);
        assert_eq!(Relu::new(0.0, 1.0), Relu::Active);
    }

    #[test]
    fn multipliers_are_reproven_not_trusted() {
        // logits (−0.1, x, −x) over x ∈ [−1, 1]: argmax ≠ 0 everywhere, but only a
        // combination of classes 1 and 2 shows it
        let l = Affine::new(0, 3, 1, vec![0.0, 1.0, -1.0], vec![-0.1, 0.0, 0.0]).unwrap();
        let net = Network::new(vec![l]).unwrap();
        let (lo, hi) = ([-1.0], [1.0]);
        let p = Prover::new(&net, &lo, &hi).unwrap();
        assert!(p.margin(OutputSpec::NotTarget { target: 0 }) <= 0.0);
        assert!(p.difference_combination_lower_bound(0, &[0.0, 0.5, 0.5]) > 0.0);
        // wrong, negative, non-finite, all-zero or mis-sized multipliers prove nothing
        for bad in [
            vec![0.0, 1.0, 0.0],
            vec![0.0, 1.0, -0.5],
            vec![0.0, f64::INFINITY, 1.0],
            vec![1.0, 0.0, 0.0],
            vec![0.0, 0.5],
        ] {
            assert!(
                p.difference_combination_lower_bound(0, &bad) <= 0.0,
                "{bad:?}"
            );
        }
        assert_eq!(
            p.difference_combination_lower_bound(3, &[0.0, 0.5, 0.5]),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn trivial_output_conditions() {
        let l = Affine::new(0, 1, 2, vec![1.0, -1.0], vec![0.5]).unwrap();
        let net = Network::new(vec![l]).unwrap();
        let p = Prover::new(&net, &[0.0, 0.0], &[1.0, 1.0]).unwrap();
        assert_eq!(p.margin(OutputSpec::Robust { label: 0 }), f64::INFINITY);
        assert_eq!(
            p.margin(OutputSpec::NotTarget { target: 0 }),
            f64::NEG_INFINITY
        );
        assert!(Prover::new(&net, &[0.0], &[1.0]).is_err());
        assert!(Prover::new(&net, &[0.0, f64::NAN], &[1.0, 1.0]).is_err());
        assert!(Prover::new(&net, &[0.0, 2.0], &[1.0, 1.0]).is_err());
    }
}
