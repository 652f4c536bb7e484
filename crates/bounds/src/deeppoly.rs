//! DeepPoly (Singh et al., POPL 2019) with full back-substitution to the input, made sound
//! under floating point.
//!
//! For every pre-activation neuron `j` of affine layer `k` it computes symbolic bounds
//! `f_j^≤(x) ≤ x_j^{2k} ≤ f_j^≥(x)` that are linear functions of the input `x` (the `f^≤, f^≥`
//! of the paper's template, Step 1 of Algorithm 1), and concrete bounds `[l_j, u_j]` over the
//! input box. ReLU `z = max(y, 0)` on an unstable neuron (`l < 0 < u`) is relaxed by
//! `z ≥ λy` (`λ ∈ {0,1}`, the area heuristic: `λ = 1` iff `u > −l`) and `z ≤ μ(y − l)`.
//!
//! # Why the bounds are sound in floating point
//! Every stored bound is a linear function whose coefficients are the stored `f64` values and
//! whose inequality holds *exactly over the reals*:
//! * the ReLU upper slope `μ` is rounded *up* and the intercept `−μl` rounded up, so the
//!   stored line lies above the exact chord, hence above the ReLU on `[l, u]`;
//! * every product/sum that forms a new coefficient or constant is rounded to nearest, and the
//!   difference to the exact result, bounded by `γ_n Σ|terms|` times the largest magnitude the
//!   multiplied variable can take (known from the previous layers' concrete bounds), is
//!   subtracted from a lower bound's constant / added to an upper bound's constant with
//!   directed rounding (see [`super::arith`]); each operator's step (ReLU, affine) states its
//!   relaxation and error bound next to its code in the crate-private `ops` module;
//! * concretisation over the box uses [`super::arith::linear_range`], which is outward rounded.

use thiserror::Error;

use super::arith::{UNIT_ROUNDOFF, add_up, gamma, linear_range};
use super::ops::affine::{AffineStep, error_weights};
use super::ops::relu::{Relaxation, ReluStep};
use super::ops::{Block, BoundStep, Rows, SparseRows, settle};
use certquant_core::model::Network;
use certquant_core::semantics::{ActFormat, Semantics, check_float32_weights};
use certquant_core::spec::{InputBox, OutputSpec};

/// Why bounds could not be computed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BoundsError {
    /// The input box does not have the network's input dimension.
    #[error("input region has dimension {got}, the network expects {expected}")]
    Dimension {
        /// Network input size.
        expected: usize,
        /// Box dimension.
        got: usize,
    },
    /// A class index is out of range.
    #[error("class {class} out of range for {classes} outputs")]
    Class {
        /// The class.
        class: usize,
        /// Number of logits.
        classes: usize,
    },
    /// The network's input map (normalisation) sends the box outside the finite floats.
    #[error("the input normalisation maps the input region to an invalid box: {0}")]
    InputMap(String),
    /// The integer semantics does not fit the network (docs/method.md §17).
    #[error("integer semantics: {0}")]
    Semantics(String),
    /// The float32 semantics does not apply to the network (docs/method.md, eq. (58b)).
    #[error("float32 semantics: {0}")]
    Float32(String),
}

/// Which side of a quantity a linear function bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `value ≥ f(x)`.
    Lower,
    /// `value ≤ f(x)`.
    Upper,
}

/// A family of linear functions `f_r(x) = a_r·x + c_r` over the input (row-major `rows × dim`).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBounds {
    dim: usize,
    coeffs: Vec<f64>,
    consts: Vec<f64>,
}

impl LinearBounds {
    /// Builds from row-major coefficients and constants.
    pub fn new(dim: usize, coeffs: Vec<f64>, consts: Vec<f64>) -> Self {
        debug_assert_eq!(coeffs.len(), dim * consts.len());
        Self {
            dim,
            coeffs,
            consts,
        }
    }

    /// Number of functions.
    pub fn rows(&self) -> usize {
        self.consts.len()
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Coefficients of row `r`.
    pub fn coeffs(&self, r: usize) -> &[f64] {
        &self.coeffs[r * self.dim..(r + 1) * self.dim]
    }

    /// Constant of row `r`.
    pub fn constant(&self, r: usize) -> f64 {
        self.consts[r]
    }

    /// Appends the rows of `other` (same dimension).
    fn append(&mut self, other: LinearBounds) {
        debug_assert_eq!(self.dim, other.dim);
        self.coeffs.extend(other.coeffs);
        self.consts.extend(other.consts);
    }

    /// Evaluates row `r` at `x` (plain f64; for tests and heuristics).
    pub fn eval(&self, r: usize, x: &[f64]) -> f64 {
        self.coeffs(r)
            .iter()
            .zip(x)
            .map(|(a, v)| a * v)
            .sum::<f64>()
            + self.consts[r]
    }
}

/// DeepPoly bounds of the pre-activations of one affine layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBounds {
    /// `f^≤`: sound lower bounds as linear functions of the input.
    pub lower: LinearBounds,
    /// `f^≥`: sound upper bounds as linear functions of the input.
    pub upper: LinearBounds,
    /// Concrete lower bounds `l` over the input box.
    pub lo: Vec<f64>,
    /// Concrete upper bounds `u` over the input box.
    pub hi: Vec<f64>,
}

/// The result of running DeepPoly on (a prefix of) a network over an input box.
///
/// (docs/method.md, eq. (6))
#[derive(Debug, Clone)]
pub struct DeepPoly<'a> {
    pub(crate) net: &'a Network,
    pub(crate) input: InputBox,
    pub(crate) input_abs: Vec<f64>,
    pub(crate) layers: Vec<LayerBounds>,
    pub(crate) relax: Vec<Relaxation>,
    /// Per computed layer `j`, `v = |W^j|·m` of eq. (13) ([`error_weights`]).
    pub(crate) aff_v: Vec<Vec<f64>>,
    /// Float32 semantics (eq. (58b)): per computed layer, the accumulation error bound `E` of
    /// each output ([`crate::float32::accumulation_errors`]); `None`: exact real layers.
    pub(crate) fl_err: Option<Vec<Vec<f64>>>,
    /// Per computed layer, the bound on how far each output of the stored layer can be from
    /// the layer the analysis is about: the float32 accumulation error `E` (eq. (58b)) plus,
    /// for a layer lowered with coefficient error, its slack `σ` (eq. (75),
    /// [`certquant_core::graph::CoefError::slack`]); empty for an exact real layer.
    pub(crate) out_err: Vec<Vec<f64>>,
}

/// Largest number of coefficients (f64 values) of one block of rows that [`DeepPoly::run_upto`]
/// back-substitutes at once (2^21 = 16 MiB): a layer's rows are processed in chunks of
/// `ROW_BLOCK / width` rows, `width` the widest layer they pass through, so that a wide
/// lowered layer (a max-pooling tournament over a convolution, tens of thousands of
/// neurons) never needs its rows dense all at once. Rows are independent, so the chunking
/// changes no result.
pub const ROW_BLOCK: usize = 1 << 21;

impl<'a> DeepPoly<'a> {
    /// Runs DeepPoly on every affine layer of `net` over `input`, a box of *raw* inputs
    /// (dimension [`Network::input_dim`]); the box is first mapped through the network's
    /// input map, outward rounded ([`Network::map_input_box`]), and every bound below is
    /// over that mapped box.
    pub fn run(net: &'a Network, input: &'a InputBox) -> Result<Self, BoundsError> {
        Self::run_upto(net, input, net.depth())
    }

    /// Runs DeepPoly on the first `layers` affine layers only (the forward step of Algorithm 1
    /// needs the bounds of layer `k` of a partially quantized network, which depend on layers
    /// `0..=k` only).
    pub fn run_upto(
        net: &'a Network,
        input: &'a InputBox,
        layers: usize,
    ) -> Result<Self, BoundsError> {
        Self::run_blocked(net, input, layers, ROW_BLOCK, &[], false)
    }

    /// DeepPoly on the network under `sem`: [`DeepPoly::run`] for [`Semantics::Real`], the
    /// integer network N̂_{S,A} of eq. (55) (every activation rounded and saturated, relaxed
    /// by eq. (58)) for [`Semantics::Integer`]. The logits are exact rationals in both, so
    /// the output proofs ([`crate::prove_property`]) apply unchanged; robustness needs a margin
    /// `> 0`, which also excludes ties of integer logits. For [`Semantics::Float32`] the
    /// binary32 network of eq. (58b): the box rounded outward onto binary32, every affine
    /// output widened by its accumulation error `E` (in back-substitution and in the logit
    /// differences, eq. (58c)); refuses weights that are not normal `f32` values, an input
    /// map, and any neuron whose evaluation could overflow.
    pub fn run_semantics(
        net: &'a Network,
        input: &'a InputBox,
        sem: &Semantics,
    ) -> Result<Self, BoundsError> {
        match sem {
            Semantics::Real => Self::run(net, input),
            Semantics::Integer(s) => {
                if s.acts.len() != net.depth() {
                    return Err(BoundsError::Semantics(format!(
                        "{} activation formats for {} affine layers",
                        s.acts.len(),
                        net.depth()
                    )));
                }
                let acts: Vec<Option<ActFormat>> = s.acts.iter().copied().map(Some).collect();
                Self::run_with_acts(net, input, net.depth(), &acts)
            }
            Semantics::Float32 => {
                check_float32_weights(net).map_err(|e| BoundsError::Float32(e.to_string()))?;
                Self::run_blocked(net, input, net.depth(), ROW_BLOCK, &[], true)
            }
        }
    }

    /// DeepPoly on the first `layers` affine layers with the activation formats `acts`:
    /// `acts[0]` quantizes the input, `acts[k]` the output of hidden layer `k − 1` (the input
    /// of layer `k`); `None`, or an index past the slice, keeps that activation real (eq. (1)).
    /// The forward search of `--semantics integer` judges a partly quantized network with it
    /// (docs/method.md, eqs. (55), (58)). A quantized input needs a network without an input
    /// map: the input box becomes `[r(lo), r(hi)]` (exact; `r` is monotone).
    pub fn run_with_acts(
        net: &'a Network,
        input: &'a InputBox,
        layers: usize,
        acts: &[Option<ActFormat>],
    ) -> Result<Self, BoundsError> {
        Self::run_blocked(net, input, layers, ROW_BLOCK, acts, false)
    }

    /// [`DeepPoly::run_with_acts`] with rows processed in blocks of at most `block` coefficients.
    fn run_blocked(
        net: &'a Network,
        input: &'a InputBox,
        layers: usize,
        block: usize,
        acts: &[Option<ActFormat>],
        float32: bool,
    ) -> Result<Self, BoundsError> {
        if input.dim() != net.input_dim() {
            return Err(BoundsError::Dimension {
                expected: net.input_dim(),
                got: input.dim(),
            });
        }
        // Soundness: the bounds are over layer 0's input, so the raw box is mapped first
        // (SOUNDNESS.md, "input map"); without a map this is the box itself. Under the integer
        // semantics the input is rounded onto A_0 instead (eq. (55)).
        let input = if float32 {
            // Soundness (eq. (58b)): the runtime sees fl32(x); [fl32↓(lo), fl32↑(hi)] holds it.
            if net.input_map().is_some() {
                return Err(BoundsError::Float32(
                    "the network has an input normalisation".into(),
                ));
            }
            let (lo, hi) = crate::float32::input_box(input.lo(), input.hi())
                .ok_or_else(|| BoundsError::Float32("the box exceeds the f32 range".into()))?;
            InputBox::new(lo, hi).map_err(|e| BoundsError::Semantics(e.to_string()))?
        } else if let Some(Some(a0)) = acts.first() {
            if net.input_map().is_some() {
                return Err(BoundsError::Semantics(
                    "the network has an input normalisation, which would run in floating point"
                        .into(),
                ));
            }
            let lo = input.lo().iter().map(|&v| a0.quantize(v)).collect();
            let hi = input.hi().iter().map(|&v| a0.quantize(v)).collect();
            InputBox::new(lo, hi).map_err(|e| BoundsError::Semantics(e.to_string()))?
        } else if net.input_map().is_some() {
            let (lo, hi) = net.map_input_box(input.lo(), input.hi());
            InputBox::new(lo, hi).map_err(|e| BoundsError::InputMap(e.to_string()))?
        } else {
            input.clone()
        };
        if input.dim() != net.layers()[0].inputs() {
            return Err(BoundsError::InputMap(format!(
                "it produces {} values, layer 0 takes {}",
                input.dim(),
                net.layers()[0].inputs()
            )));
        }
        let input_abs = input
            .lo()
            .iter()
            .zip(input.hi())
            .map(|(l, h)| l.abs().max(h.abs()))
            .collect();
        let mut dp = DeepPoly {
            net,
            input,
            input_abs,
            layers: Vec::new(),
            relax: Vec::new(),
            aff_v: Vec::new(),
            fl_err: float32.then(Vec::new),
            out_err: Vec::new(),
        };
        // Soundness (eq. (75)): a layer lowered with coefficient error (an average pool whose
        // divisor is not a power of two) is covered for real activations only; the integer
        // and float32 runtimes would compute the pool differently (a division by 9 is not a
        // shift).
        let inexact = net.inexact_layers();
        if (float32 || acts.iter().any(Option::is_some)) && !inexact.is_empty() {
            return Err(BoundsError::Semantics(format!(
                "layer {} averages over a window whose size is not a power of two; only the \
                 real semantics covers it (the integer and float32 runtimes would not divide \
                 exactly)",
                inexact[0]
            )));
        }
        dp.extend(layers, block, acts)?;
        Ok(dp)
    }

    /// Computes the affine layers `computed_layers()..layers` (capped at the depth) on top of
    /// the ones already computed, in rows blocks of at most `block` coefficients. A run from
    /// scratch starts at layer 0; [`crate::reuse`] starts at the first layer a candidate
    /// changed, the earlier layers' state being the same numbers a run from scratch computes
    /// (docs/method.md, eq. (72)).
    pub(crate) fn extend(
        &mut self,
        layers: usize,
        block: usize,
        acts: &[Option<ActFormat>],
    ) -> Result<(), BoundsError> {
        let net = self.net;
        let dp = self;
        let start = dp.layers.len();
        // the chunking of layer k depends on the widest input of layers 0..=k
        let mut widest = net.layers()[..start.min(net.depth())]
            .iter()
            .map(|l| l.inputs())
            .max()
            .unwrap_or(0);
        for k in start..layers.min(net.depth()) {
            let layer = &net.layers()[k];
            dp.aff_v.push(error_weights(layer, dp.post_abs_below(k)));
            let (n_out, n_in) = (layer.outputs(), layer.inputs());
            if let Some(fl) = &mut dp.fl_err {
                let e = crate::float32::accumulation_errors(&dp.aff_v[k], layer.bias(), n_in);
                if let Some(j) = e.iter().position(|v| !v.is_finite()) {
                    return Err(BoundsError::Float32(format!(
                        "layer {k} neuron {j} could overflow in f32 \
                         (or has more than 2^20 terms)"
                    )));
                }
                fl.push(e);
            }
            let coef = layer.coef_error().map(|e| e.slack(dp.post_abs_below(k)));
            let fl = dp.fl_err.as_ref().and_then(|f| f.get(k));
            dp.out_err
                .push(combine_errors(fl.map(Vec::as_slice), coef.as_deref()));
            widest = widest.max(n_in);
            let chunk = (block / widest).clamp(1, n_out);
            let dim = net.input_dim();
            let mut lower = LinearBounds::new(dim, Vec::with_capacity(n_out * dim), Vec::new());
            let mut upper = lower.clone();
            let (mut lo, mut hi) = (Vec::with_capacity(n_out), Vec::with_capacity(n_out));
            for start in (0..n_out).step_by(chunk) {
                let end = (start + chunk).min(n_out);
                // The layer's own rows carry its accumulation error under float32 (eq. (58b)).
                // Under coefficient error they carry its slack (eq. (75)).
                let zero = match dp.out_err[k].as_slice() {
                    [] => vec![0.0; end - start],
                    e => e[start..end].to_vec(),
                };
                let b = layer.bias()[start..end].to_vec();
                let (l, u) = if let Some(w) = layer.weights() {
                    // The layer's rows, copied bit for bit.
                    let w = w[start * n_in..end * n_in].to_vec();
                    (
                        dp.back_substitute(k, w.clone(), b.clone(), &zero, Side::Lower),
                        dp.back_substitute(k, w, b, &zero, Side::Upper),
                    )
                } else {
                    // The layer's rows, kept sparse; their constants settled as
                    // `back_substitute` settles them with its (here zero) initial error.
                    let entries: Vec<Vec<(usize, f64)>> = (start..end)
                        .map(|j| layer.row_entries(j).collect())
                        .collect();
                    let [l, u] = [Side::Lower, Side::Upper].map(|side| {
                        let mut rows = SparseRows {
                            width: n_in,
                            entries: entries.clone(),
                            consts: b.clone(),
                        };
                        settle(&mut rows.consts, &zero, side);
                        dp.walk(k, Block::Sparse(rows), side)
                    });
                    (l, u)
                };
                let (cl, ch) = dp.concretize_pair(&l, &u);
                lower.append(l);
                upper.append(u);
                lo.extend(cl);
                hi.extend(ch);
            }
            if k + 1 < net.depth() {
                dp.relax.push(match acts.get(k + 1) {
                    Some(Some(fmt)) => Relaxation::quantized(&lo, &hi, *fmt),
                    _ => Relaxation::new(&lo, &hi),
                });
            }
            dp.layers.push(LayerBounds {
                lower,
                upper,
                lo,
                hi,
            });
        }
        Ok(())
    }

    /// The network the bounds are about.
    pub fn network(&self) -> &'a Network {
        self.net
    }

    /// The box over layer 0's input that every bound is over: the raw input box mapped
    /// through the network's input map (outward), or the raw box itself without a map.
    /// Linear forms over the input (e.g. [`LinearBounds`]) are over this box.
    pub fn input(&self) -> &InputBox {
        &self.input
    }

    /// Number of affine layers bounded.
    pub fn computed_layers(&self) -> usize {
        self.layers.len()
    }

    /// Bounds of the pre-activations of affine layer `k`.
    pub fn layer(&self, k: usize) -> &LayerBounds {
        &self.layers[k]
    }

    /// All computed layers' bounds, input side first.
    pub fn layers(&self) -> &[LayerBounds] {
        &self.layers
    }

    fn concretize_pair(&self, lower: &LinearBounds, upper: &LinearBounds) -> (Vec<f64>, Vec<f64>) {
        let (lo_box, hi_box) = (self.input.lo(), self.input.hi());
        let lo = (0..lower.rows())
            .map(|r| linear_range(lower.coeffs(r), lower.constant(r), lo_box, hi_box).0)
            .collect();
        let hi = (0..upper.rows())
            .map(|r| linear_range(upper.coeffs(r), upper.constant(r), lo_box, hi_box).1)
            .collect();
        (lo, hi)
    }

    /// Back-substitutes linear expressions `a_r · z^{k−1} + c_r` (over the post-activations of
    /// affine layer `k − 1`, or over the input when `k = 0`) down to the input, returning sound
    /// bounds on `side`. `init_err[r] ≥ 0` is an error the caller already knows the expression
    /// carries (it is subtracted from lower / added to upper bounds). Requires that layers
    /// `0..k` have been computed.
    ///
    /// The walk is one bound step per operator below layer `k` (the crate-private `ops`
    /// module: ReLU, affine); each step's rounding error is settled into the constants before
    /// the next step, which keeps every intermediate row block exact over the reals.
    ///
    /// (docs/method.md, eqs. (8), (13), (14))
    pub fn back_substitute(
        &self,
        k: usize,
        a: Vec<f64>,
        mut c: Vec<f64>,
        init_err: &[f64],
        side: Side,
    ) -> LinearBounds {
        assert!(k <= self.layers.len(), "layers below {k} not computed");
        settle(&mut c, init_err, side);
        let width = if k == 0 {
            self.net.layers()[0].inputs()
        } else {
            self.net.layers()[k - 1].outputs()
        };
        self.walk(k, Block::Dense(Rows::new(width, a, c)), side)
    }

    /// The back-substitution walk of [`DeepPoly::back_substitute`] on a row block of either
    /// form (sparse rows stay sparse through sparse layers; the same floating-point
    /// operations either way), densified at the input.
    fn walk(&self, k: usize, mut block: Block, side: Side) -> LinearBounds {
        for step in self.steps_below(k) {
            debug_assert_eq!(block.width(), step.output_width());
            block = match block {
                Block::Dense(rows) => Block::Dense(step.substitute(rows, side).settle(side)),
                Block::Sparse(rows) => {
                    let (mut b, err) = step.substitute_sparse(rows, side);
                    settle(b.consts_mut(), &err, side);
                    b
                }
            };
            debug_assert_eq!(block.width(), step.input_width());
        }
        let rows = block.into_dense();
        LinearBounds::new(rows.width, rows.coeffs, rows.consts)
    }

    /// The operators between the input of affine layer `k` and the network input, output side
    /// first: for each layer `j < k`, the ReLU of layer `j` (`z^j = max(y^j, 0)`), then the
    /// affine layer `j` itself (`y^j = W z^{j−1} + b`).
    fn steps_below(&self, k: usize) -> impl Iterator<Item = Box<dyn BoundStep + '_>> + '_ {
        (0..k).rev().flat_map(move |j| {
            let relu: Box<dyn BoundStep + '_> = Box::new(ReluStep::new(&self.relax[j]));
            let fl: &[f64] = &self.out_err[j];
            let affine: Box<dyn BoundStep + '_> = Box::new(
                AffineStep::new(&self.net.layers()[j], &self.aff_v[j]).with_float_error(fl),
            );
            [relu, affine]
        })
    }

    /// Float32 semantics: `E` of eq. (58b) for the logits (the last layer), computed here if
    /// the last layer's bounds were not (`+∞` entries if it could overflow, which fails
    /// every proof). `None` for exact real layers.
    fn last_layer_errors(&self) -> Option<Vec<f64>> {
        let k = self.net.depth() - 1;
        if let Some(e) = self.out_err.get(k) {
            return (!e.is_empty()).then(|| e.clone());
        }
        let layer = &self.net.layers()[k];
        let fl = self.fl_err.as_ref().map(|_| {
            let v = error_weights(layer, self.post_abs_below(k));
            crate::float32::accumulation_errors(&v, layer.bias(), layer.inputs())
        });
        let coef = layer.coef_error().map(|e| e.slack(self.post_abs_below(k)));
        let e = combine_errors(fl.as_deref(), coef.as_deref());
        (!e.is_empty()).then_some(e)
    }

    /// `max |v|` over the box for each input `v` of affine layer `j`: the network input's
    /// magnitudes for `j = 0`, else the post-activation magnitudes of layer `j − 1`.
    fn post_abs_below(&self, j: usize) -> &[f64] {
        if j == 0 {
            &self.input_abs
        } else {
            self.relax[j - 1].post_abs()
        }
    }

    /// Sound lower bound over the box of each expression `a_r·z^{k−1} + c_r` (see
    /// [`DeepPoly::back_substitute`]).
    pub fn expr_lower_bounds(&self, k: usize, a: Vec<f64>, c: Vec<f64>, err: &[f64]) -> Vec<f64> {
        let lb = self.back_substitute(k, a, c, err, Side::Lower);
        (0..lb.rows())
            .map(|r| {
                linear_range(
                    lb.coeffs(r),
                    lb.constant(r),
                    self.input.lo(),
                    self.input.hi(),
                )
                .0
            })
            .collect()
    }

    /// Differences of logits as expressions over the last hidden layer's post-activations:
    /// row `j` is `y_a − y_j` for every `j` (the row for `j = a` is identically zero).
    /// Returns the rows, constants, and the rounding error of forming the differences.
    fn logit_differences(&self, a_class: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let last = &self.net.layers()[self.net.depth() - 1];
        let n = last.inputs();
        let m = last.outputs();
        let below_abs = self.post_abs_below(self.net.depth() - 1);
        let mut rows = vec![0.0; m * n];
        let mut consts = vec![0.0; m];
        let mut errs = vec![0.0; m];
        let ra = last.row_dense(a_class);
        let last_err = self.last_layer_errors();
        for j in 0..m {
            let rj = last.row_dense(j);
            let mut e = 0.0;
            for t in 0..n {
                let d = ra[t] - rj[t];
                rows[j * n + t] = d;
                e += d.abs() * below_abs[t];
            }
            let db = last.bias()[a_class] - last.bias()[j];
            consts[j] = db;
            // each difference is one rounding: |exact − fl| ≤ u·|fl|(1+u)
            errs[j] = (e * (1.0 + 1e-6) + db.abs()) * UNIT_ROUNDOFF * 1.01;
            // float32 (eq. (58c)): ŷ_a − ŷ_j is off the exact difference by ≤ E_a + E_j.
            if let Some(fl) = &last_err {
                errs[j] += (fl[a_class] + fl[j]) * (1.0 + 1e-6);
            }
        }
        (rows, consts, errs)
    }

    /// For every class `j`, a sound lower bound of `y_a − y_j` over the input box (entry `a`
    /// is `+∞`). Requires all layers but the last to be computed.
    ///
    /// (docs/method.md, eqs. (10), (16), (18))
    pub fn logit_difference_lower_bounds(&self, a_class: usize) -> Result<Vec<f64>, BoundsError> {
        let classes = self.net.output_dim();
        if a_class >= classes {
            return Err(BoundsError::Class {
                class: a_class,
                classes,
            });
        }
        assert!(self.layers.len() + 1 >= self.net.depth());
        let (rows, consts, errs) = self.logit_differences(a_class);
        let mut lbs = self.expr_lower_bounds(self.net.depth() - 1, rows, consts, &errs);
        lbs[a_class] = f64::INFINITY;
        Ok(lbs)
    }

    /// Lower linear forms over the input of `y_j − y_target` for every class `j` (row
    /// `target` is identically zero): `y_j − y_target ≥ L_j(x)` for every `x` in the box.
    /// These are the `f̂_j^≤ − f̂_t^≥`-style bounds of the joint output check of Algorithm 2.
    ///
    /// (docs/method.md, eq. (38))
    pub fn logit_difference_forms(&self, target: usize) -> Result<LinearBounds, BoundsError> {
        let classes = self.net.output_dim();
        if target >= classes {
            return Err(BoundsError::Class {
                class: target,
                classes,
            });
        }
        let (mut rows, mut consts, errs) = self.logit_differences(target);
        rows.iter_mut().for_each(|v| *v = -*v);
        consts.iter_mut().for_each(|v| *v = -*v);
        Ok(self.back_substitute(self.net.depth() - 1, rows, consts, &errs, Side::Lower))
    }

    /// A sound lower bound over the box of `Σ_j λ_j (y_j − y_target)` for multipliers
    /// `λ_j ≥ 0` (entry `target` ignored). If it is `> 0`, then at every input some class
    /// `j ≠ target` has `y_j > y_target`: the not-target condition holds (a Farkas-style
    /// certificate of the infeasibility of "`y_target ≥ y_j` for all `j`").
    ///
    /// Soundness: the combined row `Σ_j λ_j (W_j − W_t)` is formed in `f64`; each coefficient
    /// is within `γ_{m+1}·Σ_j λ_j |fl(W_j − W_t)|·(1 + 2u)` of the exact one (one rounding for
    /// the difference, a sum of `m` products), and that error times the largest possible
    /// post-activation is passed to [`DeepPoly::back_substitute`] as the expression's error.
    ///
    /// (docs/method.md, eq. (39))
    pub fn difference_combination_lower_bound(
        &self,
        target: usize,
        lambda: &[f64],
    ) -> Result<f64, BoundsError> {
        let classes = self.net.output_dim();
        if target >= classes || lambda.len() != classes {
            return Err(BoundsError::Class {
                class: target,
                classes,
            });
        }
        let last = &self.net.layers()[self.net.depth() - 1];
        let n = last.inputs();
        let below_abs = self.post_abs_below(self.net.depth() - 1);
        let rt = last.row_dense(target);
        let mut row = vec![0.0; n];
        let mut mag = vec![0.0; n];
        let (mut cst, mut cmag) = (0.0, 0.0);
        for (j, &l) in lambda.iter().enumerate() {
            if j == target || l == 0.0 {
                continue;
            }
            if !(l.is_finite() && l >= 0.0) {
                return Ok(f64::NEG_INFINITY);
            }
            for ((r, m), (&a, &b)) in row
                .iter_mut()
                .zip(mag.iter_mut())
                .zip(last.row_dense(j).iter().zip(rt.iter()))
            {
                let d = a - b;
                *r += l * d;
                *m += l * d.abs();
            }
            let db = last.bias()[j] - last.bias()[target];
            cst += l * db;
            cmag += l * db.abs();
        }
        let e: f64 = mag.iter().zip(below_abs).map(|(m, z)| m * z).sum();
        let mut err = gamma(classes + 1) * (1.0 + 4.0 * UNIT_ROUNDOFF) * (e * (1.0 + 1e-6) + cmag);
        // float32 (eq. (58c)): Σ_j λ_j (ŷ_j − ŷ_t) is off by ≤ Σ_j λ_j (E_j + E_t).
        if let Some(fl) = self.last_layer_errors() {
            let s: f64 = lambda
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != target)
                .map(|(j, &l)| l * (fl[j] + fl[target]))
                .sum();
            err += s * (1.0 + 1e-6);
        }
        Ok(self.expr_lower_bounds(self.net.depth() - 1, row, vec![cst], &[err])[0])
    }

    /// Robustness margin (issue 2 CLI): `min_{j≠g}` of the proven lower bound of `y_g − y_j`.
    /// The property `argmax = g` is proven iff the margin is `> 0`.
    ///
    /// (docs/method.md, eq. (18))
    pub fn robustness_margin(&self, label: usize) -> Result<f64, BoundsError> {
        Ok(self
            .logit_difference_lower_bounds(label)?
            .into_iter()
            .fold(f64::INFINITY, f64::min))
    }

    /// Checks an output condition with per-class sufficient tests (no LP):
    /// * robustness: every `y_g − y_j` has a positive lower bound;
    /// * not-target `t`: some class `j ≠ t` has `y_j − y_t > 0` proven over the whole box.
    ///
    /// Returns `(proven, margin)` where margin is the quantity compared with 0.
    ///
    /// (docs/method.md, eqs. (18), (19))
    pub fn prove_output(&self, spec: OutputSpec) -> Result<(bool, f64), BoundsError> {
        match spec {
            OutputSpec::Robust { label } => {
                let m = self.robustness_margin(label)?;
                Ok((m > 0.0, m))
            }
            OutputSpec::NotTarget { target } => {
                let classes = self.net.output_dim();
                if target >= classes {
                    return Err(BoundsError::Class {
                        class: target,
                        classes,
                    });
                }
                let mut best = f64::NEG_INFINITY;
                for j in 0..classes {
                    if j == target {
                        continue;
                    }
                    let lbs = self.logit_difference_lower_bounds(j)?;
                    best = best.max(lbs[target]);
                }
                Ok((best > 0.0, best))
            }
        }
    }
}

/// The per-output error of a layer: the float32 accumulation error plus the coefficient
/// slack (eq. (75)), each optional, summed rounding upward; empty when neither applies.
fn combine_errors(fl: Option<&[f64]>, coef: Option<&[f64]>) -> Vec<f64> {
    match (fl, coef) {
        (None, None) => Vec::new(),
        (Some(a), None) | (None, Some(a)) => a.to_vec(),
        (Some(a), Some(b)) => a.iter().zip(b).map(|(x, y)| add_up(*x, *y)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::{Affine, Network};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn random_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| {
                let (inp, out) = (s[0], s[1]);
                let w = (0..inp * out)
                    .map(|_| rng.random_range(-1.0..1.0) / (inp as f64).sqrt())
                    .collect();
                let b = (0..out).map(|_| rng.random_range(-0.3..0.3)).collect();
                Affine::new(i, out, inp, w, b).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    fn pre_activations(net: &Network, x: &[f64]) -> Vec<Vec<f64>> {
        let mut out = Vec::new();
        let mut v = x.to_vec();
        for (i, l) in net.layers().iter().enumerate() {
            let y = l.apply(&v);
            out.push(y.clone());
            v = if i + 1 < net.depth() {
                y.iter().map(|t| t.max(0.0)).collect()
            } else {
                y
            };
        }
        out
    }

    fn assert_sound(net: &Network, bx: &InputBox, rng: &mut ChaCha8Rng, samples: usize) {
        let dp = DeepPoly::run(net, bx).unwrap();
        let dim = bx.dim();
        for s in 0..samples {
            let x: Vec<f64> = (0..dim)
                .map(|i| {
                    let (l, h) = (bx.lo()[i], bx.hi()[i]);
                    match s % 3 {
                        0 => l + (h - l) * rng.random::<f64>(),
                        // box corners
                        1 => {
                            if rng.random::<bool>() {
                                l
                            } else {
                                h
                            }
                        }
                        _ => l + (h - l) * rng.random::<f64>().round(),
                    }
                })
                .collect();
            let pre = pre_activations(net, &x);
            for (k, yk) in pre.iter().enumerate() {
                let lb = dp.layer(k);
                for (j, &y) in yk.iter().enumerate() {
                    assert!(lb.lo[j] <= y && y <= lb.hi[j], "layer {k} neuron {j}");
                    assert!(lb.lower.eval(j, &x) <= y + 1e-9);
                    assert!(lb.upper.eval(j, &x) >= y - 1e-9);
                }
            }
            let logits = &pre[pre.len() - 1];
            for g in 0..logits.len() {
                let d = dp.logit_difference_lower_bounds(g).unwrap();
                for j in (0..logits.len()).filter(|&j| j != g) {
                    assert!(d[j] <= logits[g] - logits[j] + 1e-12);
                }
            }
        }
    }

    #[test]
    fn bounds_contain_sampled_points_on_random_nets() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for trial in 0..30 {
            let depth = 1 + trial % 4;
            let mut sizes = vec![1 + rng.random_range(0..8)];
            for _ in 0..depth {
                sizes.push(1 + rng.random_range(0..12));
            }
            let net = random_net(&mut rng, &sizes);
            let c: Vec<f64> = (0..sizes[0]).map(|_| rng.random::<f64>()).collect();
            let eps = [0.0, 0.01, 0.1, 0.5][trial % 4];
            let bx = InputBox::linf_ball(&c, eps).unwrap();
            assert_sound(&net, &bx, &mut rng, 60);
        }
    }

    #[test]
    fn exact_on_a_point_box() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net = random_net(&mut rng, &[5, 7, 6, 3]);
        let c: Vec<f64> = (0..5).map(|_| rng.random::<f64>()).collect();
        let bx = InputBox::linf_ball(&c, 0.0).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let y = net.forward(&c);
        let last = dp.layer(2);
        for j in 0..3 {
            assert!(last.hi[j] - last.lo[j] < 1e-12);
            assert!(last.lo[j] <= y[j] && y[j] <= last.hi[j]);
        }
    }

    #[test]
    fn hand_computed_relu_example() {
        // x1, x2 ∈ [-1, 1]; h1 = x1 + x2, h2 = x1 − x2; y = h1' + h2' (ReLU outputs).
        // DeepPoly gives for h1 ∈ [−2, 2] (unstable, u = −l → λ = 0) the upper line 0.5 h1 + 1.
        let l0 = Affine::new(0, 2, 2, vec![1.0, 1.0, 1.0, -1.0], vec![0.0, 0.0]).unwrap();
        let l1 = Affine::new(1, 1, 2, vec![1.0, 1.0], vec![0.0]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let bx = InputBox::new(vec![-1.0, -1.0], vec![1.0, 1.0]).unwrap();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let hidden = dp.layer(0);
        assert!((hidden.lo[0] + 2.0).abs() < 1e-12 && (hidden.hi[0] - 2.0).abs() < 1e-12);
        let out = dp.layer(1);
        // upper: 0.5(x1+x2)+1 + 0.5(x1−x2)+1 = x1 + 2 ≤ 3; lower: 0 (λ = 0 for both)
        assert!((out.hi[0] - 3.0).abs() < 1e-9, "{}", out.hi[0]);
        assert!(out.hi[0] >= 3.0);
        assert!(out.lo[0] <= 0.0 && out.lo[0] > -1e-9);
    }

    /// FNV-1a over the bit patterns of every number DeepPoly produces on seeded random
    /// networks (all layers' linear and concrete bounds, every logit-difference bound and
    /// form, a multiplier combination).
    fn bounds_digest() -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |v: f64| {
            for byte in v.to_bits().to_le_bytes() {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        for trial in 0..12 {
            let depth = 1 + trial % 4;
            let mut sizes = vec![2 + rng.random_range(0..10)];
            for _ in 0..depth {
                sizes.push(2 + rng.random_range(0..14));
            }
            let net = random_net(&mut rng, &sizes);
            let c: Vec<f64> = (0..sizes[0]).map(|_| rng.random::<f64>()).collect();
            let bx = InputBox::linf_ball(&c, [0.0, 0.02, 0.1, 0.4][trial % 4]).unwrap();
            let dp = DeepPoly::run(&net, &bx).unwrap();
            for lb in dp.layers() {
                for lin in [&lb.lower, &lb.upper] {
                    for r in 0..lin.rows() {
                        lin.coeffs(r).iter().for_each(|&v| eat(v));
                        eat(lin.constant(r));
                    }
                }
                lb.lo.iter().chain(&lb.hi).for_each(|&v| eat(v));
            }
            let classes = net.output_dim();
            for g in 0..classes {
                dp.logit_difference_lower_bounds(g)
                    .unwrap()
                    .into_iter()
                    .for_each(&mut eat);
                let forms = dp.logit_difference_forms(g).unwrap();
                for r in 0..forms.rows() {
                    forms.coeffs(r).iter().for_each(|&v| eat(v));
                    eat(forms.constant(r));
                }
                let lambda: Vec<f64> = (0..classes).map(|j| 0.25 + j as f64 / 3.0).collect();
                eat(dp.difference_combination_lower_bound(g, &lambda).unwrap());
            }
        }
        h
    }

    #[test]
    fn bounds_are_bit_identical_to_the_pinned_digest() {
        // Pinned when back-substitution was split into per-operator steps (ops/): any change
        // of a floating-point operation or its order shows up here. Update only on purpose.
        assert_eq!(bounds_digest(), 5_524_787_687_939_413_020);
    }

    /// Every number DeepPoly produces, for comparisons between runs.
    fn all_numbers(dp: &DeepPoly) -> Vec<f64> {
        let mut v = Vec::new();
        for lb in dp.layers() {
            for lin in [&lb.lower, &lb.upper] {
                for r in 0..lin.rows() {
                    v.extend_from_slice(lin.coeffs(r));
                    v.push(lin.constant(r));
                }
            }
            v.extend(lb.lo.iter().chain(&lb.hi));
        }
        let net = dp.network();
        if dp.computed_layers() == net.depth() {
            for g in 0..net.output_dim() {
                v.extend(dp.logit_difference_lower_bounds(g).unwrap());
                let lambda: Vec<f64> = (0..net.output_dim()).map(|j| 0.5 + j as f64).collect();
                v.push(dp.difference_combination_lower_bound(g, &lambda).unwrap());
            }
        }
        v
    }

    #[test]
    fn sparse_storage_and_row_blocks_give_identical_bounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for trial in 0..8 {
            let sizes = [6 + trial, 9, 7 + trial % 3, 4];
            let dense = random_net(&mut rng, &sizes);
            // Sparsify: zero about two thirds of the weights, keep the storage dense.
            let layers: Vec<Affine> = dense
                .layers()
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let w = l.weights().unwrap().to_vec();
                    let w = w
                        .into_iter()
                        .enumerate()
                        .map(|(e, v)| if (e + trial) % 3 == 0 { v } else { 0.0 })
                        .collect();
                    Affine::new(i, l.outputs(), l.inputs(), w, l.bias().to_vec()).unwrap()
                })
                .collect();
            let dense = Network::new(layers).unwrap();
            let sparse =
                Network::new(dense.layers().iter().map(Affine::to_sparse).collect()).unwrap();
            assert!(sparse.layers().iter().all(Affine::is_sparse));
            let c: Vec<f64> = (0..sizes[0]).map(|_| rng.random::<f64>()).collect();
            let bx = InputBox::linf_ball(&c, 0.05 * trial as f64).unwrap();
            let reference = all_numbers(&DeepPoly::run(&dense, &bx).unwrap());
            assert_eq!(
                all_numbers(&DeepPoly::run(&sparse, &bx).unwrap()),
                reference
            );
            for block in [1, 7, 20] {
                let d =
                    DeepPoly::run_blocked(&dense, &bx, dense.depth(), block, &[], false).unwrap();
                assert_eq!(all_numbers(&d), reference, "block {block}");
                let s =
                    DeepPoly::run_blocked(&sparse, &bx, sparse.depth(), block, &[], false).unwrap();
                assert_eq!(all_numbers(&s), reference, "sparse, block {block}");
            }
            assert_sound(&sparse, &bx, &mut rng, 20);
        }
    }

    #[test]
    fn rejects_wrong_dimension() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let net = random_net(&mut rng, &[3, 2]);
        let bx = InputBox::new(vec![0.0; 2], vec![1.0; 2]).unwrap();
        assert!(matches!(
            DeepPoly::run(&net, &bx),
            Err(BoundsError::Dimension { .. })
        ));
    }
}
