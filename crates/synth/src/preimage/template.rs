//! The template `T_k(χ) = { f_j^≤(x) − α_j χ ≤ y_j ≤ f_j^≥(x) + β_j χ }` of hidden layer `k`:
//! its widths `α, β` ([`template_widths`]), which neurons' lower sides are part of the
//! preimage ([`lower_checked`]), and the fixed data every engine evaluates it with
//! ([`LayerCtx`]: sound concrete bounds, the free inputs).

use certquant_bounds::DeepPoly;
use certquant_bounds::arith::{linear_max, linear_min};

use super::TemplateKind;

/// Computes `α, β` of the template for affine layer `k` of the float network, from its
/// DeepPoly bounds `lo, hi` and its values at the centre input (see [`TemplateKind`]).
///
/// (docs/method.md, eq. (21))
pub fn template_widths(
    kind: TemplateKind,
    lo: &[f64],
    hi: &[f64],
    centre_values: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    match kind {
        TemplateKind::Code => (
            lo.iter()
                .zip(centre_values)
                .map(|(l, c)| (c - l).max(1e-3))
                .collect(),
            hi.iter()
                .zip(centre_values)
                .map(|(u, c)| (u - c).max(1e-3))
                .collect(),
        ),
        TemplateKind::Paper => {
            let w: Vec<f64> = lo.iter().zip(hi).map(|(l, u)| (u - l) / 2.0).collect();
            (w.clone(), w)
        }
    }
}

/// The fixed data of layer `k`'s problem.
pub(super) struct LayerCtx<'a> {
    /// DeepPoly of the float network over the property's box.
    pub(super) dp: &'a DeepPoly<'a>,
    /// Affine layer index of the hidden pre-activations.
    pub(super) k: usize,
    /// Lower template widths.
    pub(super) alpha: &'a [f64],
    /// Upper template widths.
    pub(super) beta: &'a [f64],
    /// Sound minimum of `f_j^≤` and maximum of `f_j^≥` over the box (`χ`-independent).
    conc_lo: Vec<f64>,
    conc_hi: Vec<f64>,
    /// Inputs that are not fixed by the box (a trigger box frees only the patch).
    pub(super) free: Vec<usize>,
    /// `f_j^≤` and `f_j^≥` with the fixed inputs folded into the constant (heuristic
    /// evaluation only: witnesses and gradients, never a bound).
    lower_fixed: Vec<f64>,
    upper_fixed: Vec<f64>,
}

impl<'a> LayerCtx<'a> {
    /// The context of layer `k` with template widths `alpha, beta`.
    pub(super) fn new(dp: &'a DeepPoly<'a>, k: usize, alpha: &'a [f64], beta: &'a [f64]) -> Self {
        let lb = dp.layer(k);
        let (bl, bh) = (dp.input().lo(), dp.input().hi());
        let n = dp.network().layers()[k].outputs();
        let free: Vec<usize> = (0..bl.len()).filter(|&i| bl[i] < bh[i]).collect();
        let fold = |coeffs: &[f64], c: f64| -> f64 {
            c + coeffs
                .iter()
                .zip(bl.iter().zip(bh))
                .filter(|(_, (l, h))| l == h)
                .map(|(a, (l, _))| a * l)
                .sum::<f64>()
        };
        Self {
            dp,
            k,
            alpha,
            beta,
            conc_lo: (0..n)
                .map(|j| linear_min(lb.lower.coeffs(j), lb.lower.constant(j), bl, bh))
                .collect(),
            conc_hi: (0..n)
                .map(|j| linear_max(lb.upper.coeffs(j), lb.upper.constant(j), bl, bh))
                .collect(),
            lower_fixed: (0..n)
                .map(|j| fold(lb.lower.coeffs(j), lb.lower.constant(j)))
                .collect(),
            upper_fixed: (0..n)
                .map(|j| fold(lb.upper.coeffs(j), lb.upper.constant(j)))
                .collect(),
            free,
        }
    }

    /// Number of neurons of layer `k`.
    pub(super) fn n(&self) -> usize {
        self.dp.network().layers()[self.k].outputs()
    }

    /// `f_j^≥(x)` (upper) or `f_j^≤(x)` (lower) at `x`, summing over the free inputs only.
    pub(super) fn eval_free(&self, j: usize, upper: bool, x: &[f64]) -> f64 {
        let lb = self.dp.layer(self.k);
        let (coeffs, c) = if upper {
            (lb.upper.coeffs(j), self.upper_fixed[j])
        } else {
            (lb.lower.coeffs(j), self.lower_fixed[j])
        };
        c + self.free.iter().map(|&i| coeffs[i] * x[i]).sum::<f64>()
    }

    /// Neuron `j`'s outward-rounded template bounds at `chi` (one entry of
    /// [`LayerCtx::y_bounds`]).
    pub(super) fn y_bound(&self, j: usize, chi: f64) -> (f64, f64) {
        (
            (self.conc_lo[j] - self.alpha[j] * chi).next_down(),
            (self.conc_hi[j] + self.beta[j] * chi).next_up(),
        )
    }

    /// Sound concrete bounds of the template at `chi`.
    pub(super) fn y_bounds(&self, chi: f64) -> (Vec<f64>, Vec<f64>) {
        let lo = (0..self.n())
            .map(|j| (self.conc_lo[j] - self.alpha[j] * chi).next_down())
            .collect();
        let hi = (0..self.n())
            .map(|j| (self.conc_hi[j] + self.beta[j] * chi).next_up())
            .collect();
        (lo, hi)
    }
}

/// Neurons whose template upper bound is `≤ 0` everywhere at this `χ` are always inactive:
/// only "stays `≤ 0`" matters for them (authors' code), so their lower side is unchecked.
///
/// (docs/method.md, eq. (29))
pub(super) fn lower_checked(ctx: &LayerCtx<'_>, chi: f64) -> Vec<bool> {
    let (_, yhi) = ctx.y_bounds(chi);
    yhi.iter().map(|&u| u > 0.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preimage::tests::robust_task;

    #[test]
    fn code_widths_come_from_the_centre_and_paper_widths_are_symmetric() {
        let (lo, hi, centre) = ([-1.0, 0.0, 2.0], [1.0, 0.5, 2.0], [0.5, 0.0, 2.0]);
        let (a, b) = template_widths(TemplateKind::Code, &lo, &hi, &centre);
        // a neuron at its bound still gets the minimum width 1e-3
        assert_eq!(a, vec![1.5, 1e-3, 1e-3]);
        assert_eq!(b, vec![0.5, 0.5, 1e-3]);
        let (a, b) = template_widths(TemplateKind::Paper, &lo, &hi, &centre);
        assert_eq!(a, vec![1.0, 0.25, 0.0]);
        assert_eq!(a, b);
    }

    #[test]
    fn template_bounds_contain_the_template_and_decide_the_lower_checks() {
        let (net, bx, centre, _) = robust_task(&[4, 8, 6, 3], 0.1, 5);
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
        for k in 0..2 {
            let lb = dp.layer(k);
            let (alpha, beta) = template_widths(TemplateKind::Code, &lb.lo, &lb.hi, &centre_pre[k]);
            let ctx = LayerCtx::new(&dp, k, &alpha, &beta);
            for chi in [0.0, 0.5, 2.0] {
                let (ylo, yhi) = ctx.y_bounds(chi);
                // the template's ends at the box corners and the centre lie within the bounds
                for x in [bx.lo().to_vec(), bx.hi().to_vec(), bx.center()] {
                    for j in 0..ctx.n() {
                        let lo = crate::preimage::tests::eval(&lb.lower, j, &x) - alpha[j] * chi;
                        let hi = crate::preimage::tests::eval(&lb.upper, j, &x) + beta[j] * chi;
                        assert!(ylo[j] <= lo && hi <= yhi[j], "layer {k} neuron {j}");
                        // eval_free folds the fixed inputs: same value up to rounding
                        assert!((ctx.eval_free(j, false, &x) - (lo + alpha[j] * chi)).abs() < 1e-9);
                    }
                }
                let checked = lower_checked(&ctx, chi);
                assert_eq!(checked, yhi.iter().map(|&u| u > 0.0).collect::<Vec<_>>());
            }
        }
    }
}
