//! Exact-rational soundness test of the synthesis DeepPoly.
//!
//! The unit tests in `deeppoly.rs` compare the bounds with an `f64` forward pass and a slack of
//! `1e-9`; they cannot see an unsoundness at the level of a rounding error, which is exactly
//! where a floating-point abstract interpreter goes wrong. Here every claim DeepPoly makes is
//! checked against the *exact* network: every `f64` (weights, biases, box ends, bounds,
//! coefficients) is a dyadic rational and is converted to its exact [`BigRational`] value
//! ([`rat`]), inputs are exact rationals in the box, the forward pass is computed exactly, and
//! every comparison is an exact rational comparison with **zero slack**:
//!
//! * each pre-activation lies in its layer's concrete bounds `[l, u]`;
//! * it lies between the symbolic lower and upper forms `f^≤(x) ≤ y ≤ f^≥(x)` evaluated
//!   exactly at the same input;
//! * the output claims (`logit_difference_lower_bounds`, `robustness_margin`, `prove_output`,
//!   `logit_difference_forms`, `difference_combination_lower_bound`, `prove_property`) never
//!   exceed the exact quantity they bound, and a `proven` answer holds at the point.
//!
//! Inputs are box vertices (all of them in few dimensions) and dyadic grid points; networks
//! have coarse dyadic parameters `k·2^−a`, full 53-bit float parameters, or are quantized by
//! [`Strategy`] as the synthesis does. [`zero_slack_detects_a_bound_one_ulp_inward`] shows the
//! check has teeth: a bound attained exactly passes, the same bound one ulp inward fails.

use certquant_bounds::quantize::{Strategy, config_for, quantize_layer};
use certquant_bounds::{DeepPoly, LayerBounds, LinearBounds, OutputProof, prove_property};
use certquant_core::model::{Affine, Network};
use certquant_core::spec::{InputBox, OutputSpec};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An exact dyadic rational `m·2^e`: every `f64` is one, and so is every value of the exact
/// forward pass of a network with `f64` parameters on a dyadic input. Sums and products of
/// dyadics stay dyadic, so this is exact arithmetic over the rationals without the gcd a
/// general [`BigRational`] pays on every operation (DeepPoly's constants carry terms near
/// `1e-300`, i.e. denominators of `2^1000` and more, which made `BigRational` too slow to
/// check enough points). [`Q::to_rational`] gives the value as a [`BigRational`];
/// `dyadic_arithmetic_agrees_with_big_rational` checks the two agree.
#[derive(Clone)]
struct Q {
    m: BigInt,
    e: i64,
}

impl Q {
    fn zero() -> Self {
        Q {
            m: BigInt::zero(),
            e: 0,
        }
    }

    /// The value as a (normalised) [`BigRational`].
    fn to_rational(&self) -> BigRational {
        if self.e >= 0 {
            BigRational::from_integer(&self.m << self.e as usize)
        } else {
            BigRational::new(self.m.clone(), BigInt::one() << (-self.e) as usize)
        }
    }

    fn is_zero(&self) -> bool {
        self.m.is_zero()
    }

    fn is_positive(&self) -> bool {
        self.m.is_positive()
    }

    /// `self` and `other` as integers over the common power of two `2^min(e)`.
    fn aligned(&self, other: &Q) -> (BigInt, BigInt, i64) {
        let e = self.e.min(other.e);
        (
            &self.m << (self.e - e) as usize,
            &other.m << (other.e - e) as usize,
            e,
        )
    }
}

impl std::ops::Add<&Q> for &Q {
    type Output = Q;
    fn add(self, o: &Q) -> Q {
        if self.is_zero() {
            return o.clone();
        }
        if o.is_zero() {
            return self.clone();
        }
        let (a, b, e) = self.aligned(o);
        Q { m: a + b, e }
    }
}

impl std::ops::Add<&Q> for Q {
    type Output = Q;
    fn add(self, o: &Q) -> Q {
        &self + o
    }
}

impl std::ops::Add<Q> for &Q {
    type Output = Q;
    fn add(self, o: Q) -> Q {
        self + &o
    }
}

impl std::ops::AddAssign<&Q> for Q {
    fn add_assign(&mut self, o: &Q) {
        *self = &*self + o;
    }
}

impl std::ops::AddAssign<Q> for Q {
    fn add_assign(&mut self, o: Q) {
        *self = &*self + &o;
    }
}

impl std::ops::Neg for &Q {
    type Output = Q;
    fn neg(self) -> Q {
        Q {
            m: -&self.m,
            e: self.e,
        }
    }
}

impl std::ops::Sub<&Q> for &Q {
    type Output = Q;
    fn sub(self, o: &Q) -> Q {
        self + &-o
    }
}

impl std::ops::Mul<&Q> for &Q {
    type Output = Q;
    fn mul(self, o: &Q) -> Q {
        Q {
            m: &self.m * &o.m,
            e: self.e + o.e,
        }
    }
}

impl std::ops::Mul<Q> for Q {
    type Output = Q;
    fn mul(self, o: Q) -> Q {
        &self * &o
    }
}

impl Ord for Q {
    fn cmp(&self, o: &Q) -> std::cmp::Ordering {
        let (a, b, _) = self.aligned(o);
        a.cmp(&b)
    }
}

impl PartialOrd for Q {
    fn partial_cmp(&self, o: &Q) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Q {
    fn eq(&self, o: &Q) -> bool {
        self.cmp(o).is_eq()
    }
}

impl Eq for Q {}

impl std::fmt::Display for Q {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_rational())
    }
}

impl std::fmt::Debug for Q {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_rational())
    }
}

/// The exact value of a finite `f64` (sign · mantissa · 2^exponent, subnormals too).
fn rat(v: f64) -> Q {
    assert!(v.is_finite(), "not finite: {v}");
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mant, exp) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    if mant == 0 {
        return Q::zero();
    }
    // strip trailing zero bits so coarse values stay small
    let tz = mant.trailing_zeros();
    let m = BigInt::from(mant >> tz);
    Q {
        m: if bits >> 63 == 1 { -m } else { m },
        e: exp + tz as i64,
    }
}

/// `a / 2^s` exactly.
fn dyadic(a: i64, s: u32) -> Q {
    Q {
        m: BigInt::from(a),
        e: -(s as i64),
    }
}

/// `bound ≤ exact`, exactly; `Err` names the claim when it does not hold.
fn le(bound: f64, exact: &Q, what: impl Fn() -> String) -> Result<(), String> {
    if rat(bound) <= *exact {
        Ok(())
    } else {
        Err(format!(
            "{}: claimed lower bound {bound:e} exceeds the exact value {exact}",
            what()
        ))
    }
}

/// A network with exact parameters and an exact forward pass.
struct ExactNet {
    /// Per layer: rows of `W` and `b`, exactly.
    layers: Vec<(Vec<Vec<Q>>, Vec<Q>)>,
}

impl ExactNet {
    fn new(net: &Network) -> Self {
        let layers = net
            .layers()
            .iter()
            .map(|l| {
                let w = (0..l.outputs())
                    .map(|j| l.row(j).iter().map(|&v| rat(v)).collect())
                    .collect();
                (w, l.bias().iter().map(|&v| rat(v)).collect())
            })
            .collect();
        Self { layers }
    }

    /// The same forward pass in [`BigRational`] (slow; a cross-check of the dyadic one).
    fn pre_activations_rational(net: &Network, x: &[Q]) -> Vec<Vec<BigRational>> {
        let q = |v: f64| rat(v).to_rational();
        let mut out: Vec<Vec<BigRational>> = Vec::new();
        let mut z: Vec<BigRational> = x.iter().map(Q::to_rational).collect();
        for (k, l) in net.layers().iter().enumerate() {
            let y: Vec<BigRational> = (0..l.outputs())
                .map(|j| {
                    let s: BigRational = l.row(j).iter().zip(&z).map(|(&w, v)| q(w) * v).sum();
                    s + q(l.bias()[j])
                })
                .collect();
            if k + 1 < net.depth() {
                z = y
                    .iter()
                    .map(|v| {
                        if v.is_positive() {
                            v.clone()
                        } else {
                            BigRational::zero()
                        }
                    })
                    .collect();
            }
            out.push(y);
        }
        out
    }

    /// Every pre-activation `y^k = W_k z^{k−1} + b_k` (ReLU between layers), exactly.
    fn pre_activations(&self, x: &[Q]) -> Vec<Vec<Q>> {
        let mut out: Vec<Vec<Q>> = Vec::with_capacity(self.layers.len());
        let mut z: Vec<Q> = x.to_vec();
        for (k, (w, b)) in self.layers.iter().enumerate() {
            let y: Vec<Q> = w.iter().zip(b).map(|(row, bj)| dot(row, &z) + bj).collect();
            if k + 1 < self.layers.len() {
                z = y
                    .iter()
                    .map(|v| {
                        if v.is_positive() {
                            v.clone()
                        } else {
                            Q::zero()
                        }
                    })
                    .collect();
            }
            out.push(y);
        }
        out
    }
}

/// `Σ a_i x_i` exactly (zero terms skipped: they are exact zeros either way).
fn dot(a: &[Q], x: &[Q]) -> Q {
    let mut s = Q::zero();
    for (ai, xi) in a.iter().zip(x) {
        if !ai.is_zero() && !xi.is_zero() {
            s += ai * xi;
        }
    }
    s
}

/// A family of linear forms with exact coefficients.
#[derive(Clone)]
struct ExactForms {
    coeffs: Vec<Vec<Q>>,
    consts: Vec<Q>,
}

impl ExactForms {
    fn new(lb: &LinearBounds) -> Self {
        Self {
            coeffs: (0..lb.rows())
                .map(|r| lb.coeffs(r).iter().map(|&v| rat(v)).collect())
                .collect(),
            consts: (0..lb.rows()).map(|r| rat(lb.constant(r))).collect(),
        }
    }

    /// Row `r` at `x`, exactly.
    fn eval(&self, r: usize, x: &[Q]) -> Q {
        dot(&self.coeffs[r], x) + &self.consts[r]
    }
}

/// One layer's claims, exactly.
#[derive(Clone)]
struct ExactLayer {
    lo: Vec<Q>,
    hi: Vec<Q>,
    lower: ExactForms,
    upper: ExactForms,
}

impl ExactLayer {
    fn new(lb: &LayerBounds) -> Self {
        Self {
            lo: lb.lo.iter().map(|&v| rat(v)).collect(),
            hi: lb.hi.iter().map(|&v| rat(v)).collect(),
            lower: ExactForms::new(&lb.lower),
            upper: ExactForms::new(&lb.upper),
        }
    }

    /// `l ≤ y ≤ u` and `f^≤(x) ≤ y ≤ f^≥(x)` for every neuron, exactly.
    fn check(&self, k: usize, y: &[Q], x: &[Q]) -> Result<(), String> {
        for (j, yj) in y.iter().enumerate() {
            let at = |what: &str| format!("layer {k} neuron {j}: {what} (exact y = {yj})");
            if self.lo[j] > *yj {
                return Err(at(&format!("concrete lower bound {} > y", self.lo[j])));
            }
            if self.hi[j] < *yj {
                return Err(at(&format!("concrete upper bound {} < y", self.hi[j])));
            }
            let f = self.lower.eval(j, x);
            if f > *yj {
                return Err(at(&format!("symbolic lower form {f} > y")));
            }
            let f = self.upper.eval(j, x);
            if f < *yj {
                return Err(at(&format!("symbolic upper form {f} < y")));
            }
        }
        Ok(())
    }
}

/// Everything DeepPoly claims about one network over one box, collected once and then
/// checked at many exact points.
#[derive(Clone)]
struct Claims {
    layers: Vec<ExactLayer>,
    /// `[g][j]`: `logit_difference_lower_bounds(g)[j] ≤ y_g − y_j`.
    diff_lower: Vec<Vec<f64>>,
    /// `[g]`: `robustness_margin(g) ≤ min_{j≠g} y_g − y_j`.
    margin: Vec<f64>,
    /// `[g]`: `prove_output(Robust { g })`.
    robust: Vec<(bool, f64)>,
    /// `[t]`: `prove_output(NotTarget { t })`.
    not_target: Vec<(bool, f64)>,
    /// `[t]`: `logit_difference_forms(t)`, row `j` `≤ y_j − y_t`.
    forms: Vec<ExactForms>,
    /// `(t, λ, difference_combination_lower_bound(t, λ))`.
    combos: Vec<(usize, Vec<f64>, f64)>,
    /// `prove_property` for every class as label and as target (with `combos`' multipliers).
    properties: Vec<(OutputSpec, OutputProof)>,
}

impl Claims {
    fn collect(dp: &DeepPoly<'_>, rng: &mut ChaCha8Rng) -> Self {
        let m = dp.network().output_dim();
        let layers = dp.layers().iter().map(ExactLayer::new).collect();
        let diff_lower = (0..m)
            .map(|g| dp.logit_difference_lower_bounds(g).unwrap())
            .collect();
        let margin = (0..m).map(|g| dp.robustness_margin(g).unwrap()).collect();
        let robust = (0..m)
            .map(|g| dp.prove_output(OutputSpec::Robust { label: g }).unwrap())
            .collect();
        let not_target = (0..m)
            .map(|t| {
                dp.prove_output(OutputSpec::NotTarget { target: t })
                    .unwrap()
            })
            .collect();
        let forms = (0..m)
            .map(|t| ExactForms::new(&dp.logit_difference_forms(t).unwrap()))
            .collect();
        let mut combos = Vec::new();
        for t in 0..m {
            // uniform weights, then random full-precision ones with some zeros
            let uniform: Vec<f64> = (0..m)
                .map(|j| if j == t { 0.0 } else { 1.0 / (m - 1) as f64 })
                .collect();
            let random: Vec<f64> = (0..m)
                .map(|j| {
                    if j == t || rng.random_range(0..4) == 0 {
                        0.0
                    } else {
                        rng.random::<f64>() * 3.0
                    }
                })
                .collect();
            for lambda in [uniform, random] {
                let v = dp.difference_combination_lower_bound(t, &lambda).unwrap();
                combos.push((t, lambda, v));
            }
        }
        let mut properties = Vec::new();
        for c in 0..m {
            let spec = OutputSpec::Robust { label: c };
            let never = |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| None;
            properties.push((spec, prove_property(dp, spec, &never).unwrap()));
            let lambda = combos[2 * c].1.clone();
            let propose =
                move |_: &LinearBounds, _: &[f64], _: &[f64], _: usize| Some(lambda.clone());
            let spec = OutputSpec::NotTarget { target: c };
            properties.push((spec, prove_property(dp, spec, &propose).unwrap()));
        }
        Self {
            layers,
            diff_lower,
            margin,
            robust,
            not_target,
            forms,
            combos,
            properties,
        }
    }

    /// Checks every claim at the exact input `x` of the box.
    fn check(&self, net: &ExactNet, x: &[Q]) -> Result<(), String> {
        let pre = net.pre_activations(x);
        for (k, (layer, y)) in self.layers.iter().zip(&pre).enumerate() {
            layer.check(k, y, x)?;
        }
        let logits = &pre[pre.len() - 1];
        let m = logits.len();
        let diff = |a: usize, b: usize| &logits[a] - &logits[b];
        // min_{j≠g} (y_g − y_j) and max_{j≠t} (y_j − y_t); None without another class
        let min_margin = |g: usize| (0..m).filter(|&j| j != g).map(|j| diff(g, j)).min();
        let best_other = |t: usize| (0..m).filter(|&j| j != t).map(|j| diff(j, t)).max();
        for g in 0..m {
            for j in (0..m).filter(|&j| j != g) {
                le(self.diff_lower[g][j], &diff(g, j), || {
                    format!("logit_difference_lower_bounds({g})[{j}]")
                })?;
                let form = self.forms[g].eval(j, x);
                if form > diff(j, g) {
                    return Err(format!(
                        "logit_difference_forms({g}) row {j}: form {form} exceeds y_{j} − y_{g}"
                    ));
                }
            }
            if let Some(mm) = min_margin(g) {
                le(self.margin[g], &mm, || format!("robustness_margin({g})"))?;
                let (proven, v) = self.robust[g];
                le(v, &mm, || format!("prove_output(Robust {{ {g} }}) margin"))?;
                if proven && !mm.is_positive() {
                    return Err(format!(
                        "prove_output(Robust {{ {g} }}) proven, y = {logits:?}"
                    ));
                }
            }
            if let Some(best) = best_other(g) {
                let (proven, v) = self.not_target[g];
                le(v, &best, || {
                    format!("prove_output(NotTarget {{ {g} }}) margin")
                })?;
                if proven && !best.is_positive() {
                    return Err(format!(
                        "prove_output(NotTarget {{ {g} }}) proven, y = {logits:?}"
                    ));
                }
            }
        }
        for (t, lambda, v) in &self.combos {
            let exact = combination(lambda, *t, logits);
            le(*v, &exact, || {
                format!("difference_combination_lower_bound({t}, {lambda:?})")
            })?;
        }
        for (spec, proof) in &self.properties {
            let what = || format!("prove_property({spec:?})");
            let bound = match (*spec, &proof.multipliers) {
                (OutputSpec::Robust { label }, _) => {
                    let cm = proof
                        .class_margins
                        .as_ref()
                        .expect("robust has class margins");
                    for j in (0..m).filter(|&j| j != label) {
                        le(cm[j], &diff(label, j), what)?;
                    }
                    min_margin(label)
                }
                (OutputSpec::NotTarget { target }, Some(lambda)) => {
                    Some(combination(lambda, target, logits))
                }
                (OutputSpec::NotTarget { target }, None) => best_other(target),
            };
            if let Some(b) = bound {
                le(proof.margin, &b, what)?;
            }
            if proof.proven && !holds_exactly(*spec, logits) {
                return Err(format!("{}: proven but fails at y = {logits:?}", what()));
            }
        }
        Ok(())
    }
}

/// `Σ_j λ_j (y_j − y_t)` exactly.
fn combination(lambda: &[f64], t: usize, logits: &[Q]) -> Q {
    let mut s = Q::zero();
    for (j, &l) in lambda.iter().enumerate() {
        if j != t && l != 0.0 {
            s += rat(l) * (&logits[j] - &logits[t]);
        }
    }
    s
}

/// Whether the output condition holds strictly at exact logits.
fn holds_exactly(spec: OutputSpec, y: &[Q]) -> bool {
    match spec {
        OutputSpec::Robust { label } => (0..y.len()).all(|j| j == label || y[label] > y[j]),
        OutputSpec::NotTarget { target } => (0..y.len()).any(|j| j != target && y[j] > y[target]),
    }
}

/// What a family of checks covered (to assert the interesting cases were exercised).
#[derive(Default, Debug)]
struct Coverage {
    points: usize,
    hidden: usize,
    unstable: usize,
    proven: usize,
}

/// Runs DeepPoly on `net` over `bx` and checks every claim at the box's vertices and `grid`
/// dyadic grid points, exactly; panics with a reproducer on the first violation.
fn check_net(net: &Network, bx: &InputBox, rng: &mut ChaCha8Rng, grid: usize, cov: &mut Coverage) {
    let dp = DeepPoly::run(net, bx).unwrap();
    let claims = Claims::collect(&dp, rng);
    let exact = ExactNet::new(net);
    for (i, x) in points(bx, rng, grid).into_iter().enumerate() {
        if i < 2 {
            let dyadic: Vec<Vec<BigRational>> = exact
                .pre_activations(&x)
                .iter()
                .map(|y| y.iter().map(Q::to_rational).collect())
                .collect();
            assert_eq!(dyadic, ExactNet::pre_activations_rational(net, &x));
        }
        if let Err(e) = claims.check(&exact, &x) {
            panic!("UNSOUND: {e}\nx = {x:?}\nnet = {net:?}\nbox = {bx:?}");
        }
        cov.points += 1;
    }
    for lb in &dp.layers()[..dp.layers().len() - 1] {
        cov.hidden += lb.lo.len();
        cov.unstable += lb
            .lo
            .iter()
            .zip(&lb.hi)
            .filter(|(l, h)| **l < 0.0 && **h > 0.0)
            .count();
    }
    cov.proven += claims
        .robust
        .iter()
        .chain(&claims.not_target)
        .filter(|p| p.0)
        .count();
}

/// Exact inputs of `bx`: all vertices when the dimension is at most 5 (else 32 random ones),
/// the centre, and `grid` random grid points `lo + (hi − lo)·m/2^6`.
fn points(bx: &InputBox, rng: &mut ChaCha8Rng, grid: usize) -> Vec<Vec<Q>> {
    let lo: Vec<Q> = bx.lo().iter().map(|&v| rat(v)).collect();
    let hi: Vec<Q> = bx.hi().iter().map(|&v| rat(v)).collect();
    let n = lo.len();
    let vertex = |bits: u64| -> Vec<Q> {
        (0..n)
            .map(|i| {
                if bits >> i & 1 == 1 {
                    hi[i].clone()
                } else {
                    lo[i].clone()
                }
            })
            .collect()
    };
    let mut out: Vec<Vec<Q>> = if n <= 5 {
        (0..1u64 << n).map(vertex).collect()
    } else {
        (0..32).map(|_| vertex(rng.random())).collect()
    };
    let at = |i: usize, m: i64| &lo[i] + (&hi[i] - &lo[i]) * dyadic(m, 6);
    out.push((0..n).map(|i| at(i, 32)).collect());
    for _ in 0..grid {
        out.push((0..n).map(|i| at(i, rng.random_range(0..=64))).collect());
    }
    out
}

/// A coarse dyadic value `k·2^−a` with `a ≤ a_max` and `|value| ≤ 1`.
fn coarse(rng: &mut ChaCha8Rng, a_max: u32) -> f64 {
    let a = rng.random_range(0..=a_max);
    let k = rng.random_range(-(1i64 << a)..=(1i64 << a));
    k as f64 / (1u64 << a) as f64
}

/// Layer sizes: input up to `max_in`, 1–3 hidden layers of width ≤ 12, 2–10 outputs.
fn random_sizes(rng: &mut ChaCha8Rng, max_in: usize) -> Vec<usize> {
    let mut sizes = vec![rng.random_range(1..=max_in)];
    for _ in 0..rng.random_range(1..=3) {
        sizes.push(rng.random_range(1..=12));
    }
    sizes.push(rng.random_range(2..=10));
    sizes
}

/// A network whose parameters are drawn by `param(rng, fan_in)` (biases by `bias(rng)`).
fn make_net(
    rng: &mut ChaCha8Rng,
    sizes: &[usize],
    param: impl Fn(&mut ChaCha8Rng, usize) -> f64,
    bias: impl Fn(&mut ChaCha8Rng) -> f64,
) -> Network {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(i, s)| {
            let w = (0..s[0] * s[1]).map(|_| param(rng, s[0])).collect();
            let b = (0..s[1]).map(|_| bias(rng)).collect();
            Affine::new(i, s[1], s[0], w, b).unwrap()
        })
        .collect();
    Network::new(layers).unwrap()
}

/// Coarse dyadic weights `k·2^−a` (`a ≤ 8`) scaled by a power of two near `1/√fan_in`.
fn dyadic_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
    let param = |r: &mut ChaCha8Rng, fan_in: usize| {
        let shift = (fan_in as f64).sqrt().log2().round() as i32;
        coarse(r, 8) * 2f64.powi(-shift)
    };
    make_net(rng, sizes, param, |r| coarse(r, 8) * 0.25)
}

/// Full 53-bit float weights, as a trained network has (still dyadic, hence exact here).
fn float_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
    let param =
        |r: &mut ChaCha8Rng, fan_in: usize| r.random_range(-1.0..1.0) / (fan_in as f64).sqrt();
    make_net(rng, sizes, param, |r| r.random_range(-0.3..0.3))
}

/// A box with dyadic ends `k/2^8 ± k'/2^a`; each dimension is degenerate (`lo = hi`) with
/// probability `degenerate`.
fn dyadic_box(rng: &mut ChaCha8Rng, dim: usize, degenerate: f64) -> InputBox {
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for _ in 0..dim {
        let c = rng.random_range(0..=256) as f64 / 256.0;
        let r = if rng.random_bool(degenerate) {
            0.0
        } else {
            let a = rng.random_range(2..=10);
            rng.random_range(1..=1i64 << (a - 1)) as f64 / (1u64 << a) as f64
        };
        lo.push(c - r);
        hi.push(c + r);
    }
    InputBox::new(lo, hi).unwrap()
}

#[test]
fn rat_is_the_exact_value() {
    let big = |v: f64| BigRational::from_float(v).unwrap();
    assert_eq!(rat(0.5).to_rational(), BigRational::new(1.into(), 2.into()));
    assert_eq!(
        rat(-3.0).to_rational(),
        BigRational::from_integer((-3).into())
    );
    assert!(rat(0.0).is_zero() && rat(-0.0).is_zero());
    // 0.1 is not 1/10 but the nearest double, 3602879701896397 / 2^55
    assert_eq!(rat(0.1), dyadic(3602879701896397, 55));
    // smallest subnormal and largest finite
    assert_eq!(rat(f64::from_bits(1)), dyadic(1, 1074));
    assert_eq!(rat(f64::MAX).to_rational(), big(f64::MAX));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..2000 {
        let exp = rng.random_range(0..2047u64) << 52;
        let v = f64::from_bits(rng.random::<u64>() & !(0x7ffu64 << 52) | exp);
        assert_eq!(rat(v).to_rational(), big(v), "{v:e}");
    }
}

#[test]
fn dyadic_arithmetic_agrees_with_big_rational() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let value = |rng: &mut ChaCha8Rng| match rng.random_range(0..4) {
        0 => rng.random_range(-4.0..4.0),
        1 => coarse(rng, 8),
        2 => rng.random_range(-1.0..1.0) * 1e-300,
        _ => 0.0,
    };
    for _ in 0..2000 {
        let (a, b) = (value(&mut rng), value(&mut rng));
        let (x, y) = (rat(a), rat(b));
        let (p, q) = (x.to_rational(), y.to_rational());
        assert_eq!((&x + &y).to_rational(), &p + &q);
        assert_eq!((&x - &y).to_rational(), &p - &q);
        assert_eq!((&x * &y).to_rational(), &p * &q);
        assert_eq!(x.cmp(&y), p.cmp(&q));
        assert_eq!(x.is_positive(), p.is_positive());
    }
}

#[test]
fn coarse_dyadic_networks_on_dyadic_boxes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut cov = Coverage::default();
    for _ in 0..40 {
        let sizes = random_sizes(&mut rng, 6);
        let net = dyadic_net(&mut rng, &sizes);
        let bx = dyadic_box(&mut rng, sizes[0], 0.25);
        check_net(&net, &bx, &mut rng, 16, &mut cov);
    }
    assert!(cov.unstable > 0 && cov.proven > 0, "{cov:?}");
}

#[test]
fn full_precision_networks_on_synthesis_boxes() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut cov = Coverage::default();
    for trial in 0..40 {
        let sizes = random_sizes(&mut rng, 8);
        let net = float_net(&mut rng, &sizes);
        let bx = if trial % 2 == 0 {
            // as the CLI builds them: an L∞ ball around a pixel-like centre, clipped to [0, 1]
            let c: Vec<f64> = (0..sizes[0])
                .map(|_| rng.random_range(0..=255) as f64 / 255.0)
                .collect();
            let eps = [0.0, 1.0 / 255.0, 0.02, 0.1, 0.3][trial / 2 % 5];
            InputBox::linf_ball(&c, eps).unwrap()
        } else {
            dyadic_box(&mut rng, sizes[0], 0.25)
        };
        check_net(&net, &bx, &mut rng, 16, &mut cov);
    }
    assert!(cov.unstable > 0 && cov.proven > 0, "{cov:?}");
}

#[test]
fn boxes_with_mostly_unstable_relus() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 5);
        let net = if trial % 2 == 0 {
            dyadic_net(&mut rng, &sizes)
        } else {
            float_net(&mut rng, &sizes)
        };
        // a box around 0: every first-layer neuron with a small bias straddles 0
        let r = [1.0, 0.5, 2.0][trial % 3];
        let lo: Vec<f64> = (0..sizes[0])
            .map(|i| if i % 4 == 3 { 0.25 } else { -r })
            .collect();
        let hi: Vec<f64> = (0..sizes[0])
            .map(|i| if i % 4 == 3 { 0.25 } else { r })
            .collect();
        let bx = InputBox::new(lo, hi).unwrap();
        check_net(&net, &bx, &mut rng, 24, &mut cov);
    }
    assert!(2 * cov.unstable >= cov.hidden, "{cov:?}");
}

#[test]
fn point_boxes() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 8);
        let net = if trial % 2 == 0 {
            dyadic_net(&mut rng, &sizes)
        } else {
            float_net(&mut rng, &sizes)
        };
        let c: Vec<f64> = (0..sizes[0]).map(|_| rng.random::<f64>()).collect();
        let bx = InputBox::linf_ball(&c, 0.0).unwrap();
        check_net(&net, &bx, &mut rng, 0, &mut cov);
    }
    assert!(cov.proven > 0, "{cov:?}");
}

#[test]
fn networks_quantized_as_the_synthesis_does() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut cov = Coverage::default();
    for trial in 0..30 {
        let sizes = random_sizes(&mut rng, 6);
        let real = float_net(&mut rng, &sizes);
        let fracs: Vec<u32> = (0..real.depth())
            .map(|_| rng.random_range(0..=12))
            .collect();
        let strategy = Strategy::from_fracs(&real, &fracs).unwrap();
        let net = strategy.apply(&real).unwrap();
        let bx = if trial % 2 == 0 {
            let c: Vec<f64> = (0..sizes[0])
                .map(|_| rng.random_range(0..=255) as f64 / 255.0)
                .collect();
            InputBox::linf_ball(&c, [0.01, 0.05, 0.2][trial / 2 % 3]).unwrap()
        } else {
            dyadic_box(&mut rng, sizes[0], 0.25)
        };
        check_net(&net, &bx, &mut rng, 16, &mut cov);
    }
    assert!(cov.unstable > 0 && cov.proven > 0, "{cov:?}");
}

/// Algorithm 1's forward step bounds layer `k` of a network whose layers `0..=k` are
/// quantized and the rest are not, with `run_upto`; those partial bounds must be sound too.
#[test]
fn partially_quantized_prefixes_with_run_upto() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for _ in 0..20 {
        let sizes = random_sizes(&mut rng, 6);
        let mut net = float_net(&mut rng, &sizes);
        let bx = dyadic_box(&mut rng, sizes[0], 0.25);
        for k in 0..net.depth() {
            let layer = &net.layers()[k];
            let cfg = config_for(layer, rng.random_range(1..=10)).unwrap();
            net = net.with_layer(k, quantize_layer(layer, cfg)).unwrap();
            let dp = DeepPoly::run_upto(&net, &bx, k + 1).unwrap();
            assert_eq!(dp.computed_layers(), k + 1);
            let layers: Vec<ExactLayer> = dp.layers().iter().map(ExactLayer::new).collect();
            let exact = ExactNet::new(&net);
            for x in points(&bx, &mut rng, 8) {
                let pre = exact.pre_activations(&x);
                for (j, layer) in layers.iter().enumerate() {
                    if let Err(e) = layer.check(j, &pre[j], &x) {
                        panic!(
                            "UNSOUND (run_upto {}): {e}\nnet = {net:?}\nbox = {bx:?}",
                            k + 1
                        );
                    }
                }
            }
        }
    }
}

/// How many `next_up` steps lead from `a` to `b` (`a ≤ b`), capped at 1000.
fn ulps_between(mut a: f64, b: f64) -> usize {
    let mut n = 0;
    while a < b && n < 1000 {
        a = a.next_up();
        n += 1;
    }
    n
}

/// The identity-like network `y = ReLU(x)` (two layers `W = I`, `b = 0`) on a positive box,
/// so `y = x` and every bound is attained at a vertex.
fn identity_net() -> (Network, InputBox) {
    let id = |i| Affine::new(i, 2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]).unwrap();
    let net = Network::new(vec![id(0), id(1)]).unwrap();
    let bx = InputBox::new(vec![0.25, 0.5], vec![0.75, 1.0]).unwrap();
    (net, bx)
}

/// The tightest true claims about [`identity_net`]: concrete bounds equal to the box, forms
/// `y_j = x_j`, logit-difference bounds `lo_g − hi_j`; each is attained at some vertex.
fn tight_identity_claims(bx: &InputBox) -> (Claims, LayerBounds) {
    let ident = || LinearBounds::new(2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]);
    let layer = LayerBounds {
        lower: ident(),
        upper: ident(),
        lo: bx.lo().to_vec(),
        hi: bx.hi().to_vec(),
    };
    let (lo, hi) = (bx.lo(), bx.hi());
    // min over the box of y_g − y_j = lo_g − hi_j (exact in f64 for these ends)
    let d = |g: usize, j: usize| lo[g] - hi[j];
    let diff_lower = vec![vec![f64::INFINITY, d(0, 1)], vec![d(1, 0), f64::INFINITY]];
    let margin = vec![d(0, 1), d(1, 0)];
    let robust = margin.iter().map(|&m| (false, m)).collect();
    let not_target = vec![(false, d(1, 0)), (false, d(0, 1))];
    // rows j of the forms for target t: y_j − y_t = x_j − x_t, constant 0
    let forms = (0..2)
        .map(|t| {
            let mut c = vec![0.0; 4];
            for j in (0..2).filter(|&j| j != t) {
                c[j * 2 + j] = 1.0;
                c[j * 2 + t] = -1.0;
            }
            ExactForms::new(&LinearBounds::new(2, c, vec![0.0, 0.0]))
        })
        .collect();
    // λ = 1 on the other class: the combination is y_j − y_t, minimum lo_j − hi_t
    let combos = vec![(0, vec![0.0, 1.0], d(1, 0)), (1, vec![1.0, 0.0], d(0, 1))];
    let properties = vec![
        (
            OutputSpec::Robust { label: 0 },
            OutputProof {
                proven: false,
                margin: d(0, 1),
                class_margins: Some(diff_lower[0].clone()),
                multipliers: None,
            },
        ),
        (
            OutputSpec::NotTarget { target: 0 },
            OutputProof {
                proven: false,
                margin: d(1, 0),
                class_margins: None,
                multipliers: None,
            },
        ),
    ];
    let claims = Claims {
        layers: vec![ExactLayer::new(&layer), ExactLayer::new(&layer)],
        diff_lower,
        margin,
        robust,
        not_target,
        forms,
        combos,
        properties,
    };
    (claims, layer)
}

/// The check has teeth: it compares with zero slack. On [`identity_net`] DeepPoly's own bounds
/// are sound and only a few ulps from the values attained at the vertices; the tightest true
/// claims (equal to the attained values) pass; and every one of them moved one ulp inward
/// (`next_up` on a lower bound, `next_down` on an upper one) is caught at some vertex.
#[test]
fn zero_slack_detects_a_bound_one_ulp_inward() {
    let (net, bx) = identity_net();
    let dp = DeepPoly::run(&net, &bx).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let exact = ExactNet::new(&net);
    let vertices = points(&bx, &mut rng, 0);
    let passes = |c: &Claims| vertices.iter().all(|x| c.check(&exact, x).is_ok());
    assert!(passes(&Claims::collect(&dp, &mut rng)));

    // DeepPoly is sound here, and within a few ulps of the attained values: a rounding-level
    // unsoundness would be of the same size as this gap, far below the old tests' 1e-9.
    for lb in dp.layers() {
        for j in 0..2 {
            let below = ulps_between(lb.lo[j], bx.lo()[j]);
            let above = ulps_between(bx.hi()[j], lb.hi[j]);
            assert!(
                (1..=32).contains(&below),
                "{below}: lo {} vs {}",
                lb.lo[j],
                bx.lo()[j]
            );
            assert!(
                (1..=32).contains(&above),
                "{above}: hi {} vs {}",
                lb.hi[j],
                bx.hi()[j]
            );
        }
    }
    let margins = dp.logit_difference_lower_bounds(0).unwrap();
    assert!(
        (1..=32).contains(&ulps_between(margins[1], -0.75)),
        "{}",
        margins[1]
    );

    let (tight, layer) = tight_identity_claims(&bx);
    assert!(passes(&tight), "the attained values are true bounds");

    // one ulp inward, claim by claim
    let mut moved: Vec<(String, Claims)> = Vec::new();
    let mut push = |what: String, edit: &dyn Fn(&mut Claims)| {
        let mut c = tight.clone();
        edit(&mut c);
        moved.push((what, c));
    };
    type LayerEdit = fn(&mut LayerBounds, usize);
    let layer_edits: [(&str, LayerEdit); 6] = [
        ("lo", |lb, j| lb.lo[j] = lb.lo[j].next_up()),
        ("hi", |lb, j| lb.hi[j] = lb.hi[j].next_down()),
        ("lower constant", |lb, j| {
            lb.lower = moved_form(&lb.lower, j, None, f64::next_up)
        }),
        ("upper constant", |lb, j| {
            lb.upper = moved_form(&lb.upper, j, None, f64::next_down)
        }),
        ("lower coefficient", |lb, j| {
            lb.lower = moved_form(&lb.lower, j, Some(j), f64::next_up)
        }),
        ("upper coefficient", |lb, j| {
            lb.upper = moved_form(&lb.upper, j, Some(j), f64::next_down)
        }),
    ];
    for k in 0..2 {
        for j in 0..2 {
            for (name, edit) in layer_edits {
                let mut lb = layer.clone();
                edit(&mut lb, j);
                push(format!("layer {k} neuron {j} {name}"), &|c| {
                    c.layers[k] = ExactLayer::new(&lb)
                });
            }
        }
    }
    for g in 0..2 {
        let j = 1 - g;
        push(format!("diff_lower[{g}][{j}]"), &|c| {
            c.diff_lower[g][j] = c.diff_lower[g][j].next_up()
        });
        push(format!("margin[{g}]"), &|c| {
            c.margin[g] = c.margin[g].next_up()
        });
        push(format!("robust[{g}]"), &|c| {
            c.robust[g].1 = c.robust[g].1.next_up()
        });
        push(format!("robust[{g}] proven"), &|c| c.robust[g].0 = true);
        push(format!("not_target[{g}]"), &|c| {
            c.not_target[g].1 = c.not_target[g].1.next_up()
        });
        push(format!("combos[{g}]"), &|c| {
            c.combos[g].2 = c.combos[g].2.next_up()
        });
        push(format!("properties[{g}]"), &|c| {
            c.properties[g].1.margin = c.properties[g].1.margin.next_up()
        });
    }
    push("forms[0] row 1 constant".into(), &|c| {
        c.forms[0].consts[1] = rat(f64::from_bits(1))
    });
    push("properties[0] class margin".into(), &|c| {
        let cm = c.properties[0].1.class_margins.as_mut().unwrap();
        cm[1] = cm[1].next_up();
    });
    for (what, c) in &moved {
        assert!(!passes(c), "{what} moved one ulp inward was not caught");
    }
    assert_eq!(moved.len(), 4 * 6 + 2 * 7 + 2);
}

/// `form` with row `r`'s constant (`coeff = None`) or coefficient `coeff` replaced by `f(v)`.
fn moved_form(
    form: &LinearBounds,
    r: usize,
    coeff: Option<usize>,
    f: fn(f64) -> f64,
) -> LinearBounds {
    let mut coeffs: Vec<f64> = (0..form.rows())
        .flat_map(|i| form.coeffs(i).to_vec())
        .collect();
    let mut consts: Vec<f64> = (0..form.rows()).map(|i| form.constant(i)).collect();
    match coeff {
        Some(t) => coeffs[r * form.dim() + t] = f(coeffs[r * form.dim() + t]),
        None => consts[r] = f(consts[r]),
    }
    LinearBounds::new(form.dim(), coeffs, consts)
}
