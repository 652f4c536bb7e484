//! Everything DeepPoly claims about one network over one box, and the exact check of those
//! claims at one input.

use certquant_bounds::{DeepPoly, LayerBounds, LinearBounds, OutputProof, prove_property};
use certquant_core::model::Network;
use certquant_core::spec::OutputSpec;
use num_rational::BigRational;
use num_traits::{Signed, Zero};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::dyadic::{Q, rat};

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
pub(crate) struct ExactNet {
    /// Per layer: rows of `W` and `b`, exactly.
    pub(crate) layers: Vec<(Vec<Vec<Q>>, Vec<Q>)>,
}

impl ExactNet {
    /// The exact parameters of `net`.
    pub(crate) fn new(net: &Network) -> Self {
        let layers = net
            .layers()
            .iter()
            .map(|l| {
                let w = (0..l.outputs())
                    .map(|j| l.row_dense(j).iter().map(|&v| rat(v)).collect())
                    .collect();
                (w, l.bias().iter().map(|&v| rat(v)).collect())
            })
            .collect();
        Self { layers }
    }

    /// The same forward pass in [`BigRational`] (slow; a cross-check of the dyadic one).
    pub(crate) fn pre_activations_rational(net: &Network, x: &[Q]) -> Vec<Vec<BigRational>> {
        let q = |v: f64| rat(v).to_rational();
        let mut out: Vec<Vec<BigRational>> = Vec::new();
        let mut z: Vec<BigRational> = x.iter().map(Q::to_rational).collect();
        for (k, l) in net.layers().iter().enumerate() {
            let y: Vec<BigRational> = (0..l.outputs())
                .map(|j| {
                    let s: BigRational =
                        l.row_dense(j).iter().zip(&z).map(|(&w, v)| q(w) * v).sum();
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
    pub(crate) fn pre_activations(&self, x: &[Q]) -> Vec<Vec<Q>> {
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
pub(crate) struct ExactForms {
    /// Row-wise coefficients.
    pub(crate) coeffs: Vec<Vec<Q>>,
    /// Constants.
    pub(crate) consts: Vec<Q>,
}

impl ExactForms {
    /// The exact values of `lb`'s stored floats.
    pub(crate) fn new(lb: &LinearBounds) -> Self {
        Self {
            coeffs: (0..lb.rows())
                .map(|r| lb.coeffs(r).iter().map(|&v| rat(v)).collect())
                .collect(),
            consts: (0..lb.rows()).map(|r| rat(lb.constant(r))).collect(),
        }
    }

    /// Row `r` at `x`, exactly.
    pub(crate) fn eval(&self, r: usize, x: &[Q]) -> Q {
        dot(&self.coeffs[r], x) + &self.consts[r]
    }
}

/// One layer's claims, exactly.
#[derive(Clone)]
pub(crate) struct ExactLayer {
    /// Concrete lower bounds.
    pub(crate) lo: Vec<Q>,
    /// Concrete upper bounds.
    pub(crate) hi: Vec<Q>,
    /// Symbolic lower forms.
    pub(crate) lower: ExactForms,
    /// Symbolic upper forms.
    pub(crate) upper: ExactForms,
}

impl ExactLayer {
    /// The exact values of `lb`'s stored floats.
    pub(crate) fn new(lb: &LayerBounds) -> Self {
        Self {
            lo: lb.lo.iter().map(|&v| rat(v)).collect(),
            hi: lb.hi.iter().map(|&v| rat(v)).collect(),
            lower: ExactForms::new(&lb.lower),
            upper: ExactForms::new(&lb.upper),
        }
    }

    /// `l ≤ y ≤ u` and `f^≤(x) ≤ y ≤ f^≥(x)` for every neuron, exactly.
    pub(crate) fn check(&self, k: usize, y: &[Q], x: &[Q]) -> Result<(), String> {
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
pub(crate) struct Claims {
    /// Every layer's bounds, exactly.
    pub(crate) layers: Vec<ExactLayer>,
    /// `[g][j]`: `logit_difference_lower_bounds(g)[j] ≤ y_g − y_j`.
    pub(crate) diff_lower: Vec<Vec<f64>>,
    /// `[g]`: `robustness_margin(g) ≤ min_{j≠g} y_g − y_j`.
    pub(crate) margin: Vec<f64>,
    /// `[g]`: `prove_output(Robust { g })`.
    pub(crate) robust: Vec<(bool, f64)>,
    /// `[t]`: `prove_output(NotTarget { t })`.
    pub(crate) not_target: Vec<(bool, f64)>,
    /// `[t]`: `logit_difference_forms(t)`, row `j` `≤ y_j − y_t`.
    pub(crate) forms: Vec<ExactForms>,
    /// `(t, λ, difference_combination_lower_bound(t, λ))`.
    pub(crate) combos: Vec<(usize, Vec<f64>, f64)>,
    /// `prove_property` for every class as label and as target (with `combos`' multipliers).
    pub(crate) properties: Vec<(OutputSpec, OutputProof)>,
}

impl Claims {
    /// Asks `dp` everything it can claim; `rng` draws the multipliers of the combinations.
    pub(crate) fn collect(dp: &DeepPoly<'_>, rng: &mut ChaCha8Rng) -> Self {
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
    pub(crate) fn check(&self, net: &ExactNet, x: &[Q]) -> Result<(), String> {
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
pub(crate) fn combination(lambda: &[f64], t: usize, logits: &[Q]) -> Q {
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
