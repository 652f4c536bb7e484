//! The MILP encoding of Problem (3) for hidden layer `k`: "is there a point of the template
//! `T_k(χ)` whose image leaves the next preimage (or violates the output condition)?",
//! minimising `χ`.
//!
//! # Variables
//! * `x ∈ box` — the network input, bounded by the property's box;
//! * `χ ∈ [0, χ_cap]` — the template parameter and the objective (`min χ`);
//! * `y_j ∈ [l_j, u_j]` — the pre-activations `x^{2k}_j`, where `[l_j, u_j]` are the
//!   outward-rounded concrete bounds of the template at `χ_cap` (the big-M constants);
//! * `z_j` — the post-activations `x^{2k+1}_j = ReLU(y_j)`;
//! * `δ_j ∈ {0, 1}` — the phase of an unstable ReLU (`l_j < 0 < u_j`).
//!
//! # Template and ReLU rows (the base model, [`LayerCtx::base_model`])
//! For every neuron `j`: `f_j^≤(x) − α_j χ ≤ y_j ≤ f_j^≥(x) + β_j χ`. The ReLU is exact:
//! * `u_j ≤ 0`: `z_j = 0`, no variable (the neuron drops out of every escape row);
//! * `l_j ≥ 0`: `z_j = y_j`, the same variable;
//! * otherwise the big-M encoding `z_j ≥ y_j`, `z_j ≤ y_j − l_j (1 − δ_j)`, `z_j ≤ u_j δ_j`,
//!   `z_j ∈ [0, u_j]`: `δ_j = 1` forces `z_j = y_j ≥ 0`, `δ_j = 0` forces `z_j = 0 ≥ y_j`.
//!
//! # Escape conditions ([`escape_conditions`])
//! An escape condition is a conjunction of rows `wz·z + wx·x ≥ rhs` (usually one). With
//! `v_m = W_m z + b_m` the next layer's pre-activations and `χ'` the next preimage's
//! parameter (already known: layers are solved last first):
//! * `η` — neuron `m` goes **above its upper preimage bound**:
//!   `v_m ≥ f_m^≥(x) + β_m χ'`; for a neuron whose next template lies at or below 0
//!   ([`Preimage::lower_checked`] false) the upper bound is 0: `v_m ≥ 0`;
//! * `ζ` — neuron `m` goes **below its lower preimage bound**: `v_m ≤ f_m^≤(x) − α_m χ'`;
//! * for the last hidden layer, the negated output condition, which counts as an `η` (a
//!   logit difference rising above its bound 0): robustness, `y_j − y_g ≥ 0` for one class
//!   `j ≠ g` (one condition per class); not-target, `y_t − y_j ≥ 0` for every `j ≠ t` (one
//!   condition of several rows).
//!
//! Escapes are non-strict (`≥`): the optimum `χ*` is the smallest `χ` at which some point
//! reaches the boundary, and every `χ < χ*` is safe, hence the [`safety_margin`] below it.
//!
//! # The disjunction
//! The fast engine requires one condition at a time as hard rows ([`BaseModel::require_escape`],
//! one MILP per condition). The paper engine needs "some condition holds" in one MILP
//! ([`BaseModel::require_some_escape`]): one escape binary per condition, `η_e` or `ζ_e`,
//! with `η_e = 1 ⇒ row_e ≥ rhs_e` written as `row_e − M_e η_e ≥ rhs_e − M_e`, where
//! `M_e = max(0, −m_e)(1 + 10⁻⁶) + 10⁻⁶` and `m_e` is an interval lower bound of
//! `row_e − rhs_e` (`z ∈ [0, max(u, 0)]`, `x ∈ box`), so `η_e = 0` leaves the row slack; and
//! `Σ η + Σ ζ ≥ 1`.
//!
//! [`safety_margin`]: super::safety_margin
//! [`Preimage::lower_checked`]: super::Preimage::lower_checked

use certquant_bounds::DeepPoly;
use certquant_bounds::arith::linear_min;
use certquant_core::model::Network;
use certquant_core::spec::{InputBox, OutputSpec};
use certquant_milp::{Problem, Sense, Var};

use super::Preimage;
use super::template::LayerCtx;

/// Which side of the next preimage an escape condition leaves by; decides whether its
/// binary in the paper engine's disjunction is an `η` or a `ζ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Above the upper preimage bound (also: an inactive neuron turning active, or the
    /// negated output condition).
    Above,
    /// Below the lower preimage bound.
    Below,
}

/// One escape condition: `wz·z + wx·x ≥ rhs` for all rows (a conjunction; usually one row).
#[derive(Debug, Clone)]
pub(super) struct Escape {
    /// The rows, all of which must hold.
    pub(super) rows: Vec<EscapeRow>,
    /// The side of the next preimage the condition leaves by.
    pub(super) side: Side,
    /// Human-readable tag for logs.
    pub(super) tag: String,
}

/// One row `wz·z + wx·x ≥ rhs` of an escape condition.
#[derive(Debug, Clone)]
pub(super) struct EscapeRow {
    /// Coefficients `(j, a_j)` of the post-activations `z`, by increasing `j`: every entry
    /// of a dense layer's row (zeros included, so the MILP rows are those of a dense
    /// encoding), only the non-zero ones of a sparse layer's (docs/method.md, eq. (1b): a
    /// tournament row has two or four).
    pub(super) wz: Vec<(usize, f64)>,
    /// Coefficients of the input `x` (the next template's DeepPoly function), if any.
    pub(super) wx: Option<Vec<f64>>,
    /// Right-hand side.
    pub(super) rhs: f64,
}

/// The escape binary of one condition in the paper engine's disjunction, named as in the
/// method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EscapeBinary {
    /// `η`: "above its upper preimage bound".
    Eta(Var),
    /// `ζ`: "below its lower preimage bound".
    Zeta(Var),
}

impl EscapeBinary {
    /// The binary variable.
    pub(super) fn var(self) -> Var {
        match self {
            Self::Eta(v) | Self::Zeta(v) => v,
        }
    }
}

/// The escape conditions of hidden layer `k`: leaving the next preimage (one condition per
/// neuron and side) or, for the last hidden layer, violating the output condition. The order
/// (output classes, or neurons with "above" before "below") is the order of the paper
/// engine's binaries.
///
/// (docs/method.md, eqs. (23), (24), (29))
pub(super) fn escape_conditions(
    net: &Network,
    dp: &DeepPoly<'_>,
    k: usize,
    spec: OutputSpec,
    next: Option<&Preimage>,
) -> Vec<Escape> {
    let nl = &net.layers()[k + 1];
    let mut v = Vec::new();
    if k + 2 == net.depth() {
        let row_diff = |a: usize, b: usize| -> Vec<(usize, f64)> {
            nl.row_dense(a)
                .iter()
                .zip(nl.row_dense(b).iter())
                .map(|(x, y)| x - y)
                .enumerate()
                .collect()
        };
        match spec {
            OutputSpec::Robust { label } => {
                for j in (0..nl.outputs()).filter(|&j| j != label) {
                    // y_j − y_g ≥ 0
                    v.push(Escape {
                        rows: vec![EscapeRow {
                            wz: row_diff(j, label),
                            wx: None,
                            rhs: nl.bias()[label] - nl.bias()[j],
                        }],
                        side: Side::Above,
                        tag: format!("class {j}"),
                    });
                }
            }
            OutputSpec::NotTarget { target } => {
                // t becomes a top class: y_t − y_j ≥ 0 for every j
                let rows = (0..nl.outputs())
                    .filter(|&j| j != target)
                    .map(|j| EscapeRow {
                        wz: row_diff(target, j),
                        wx: None,
                        rhs: nl.bias()[j] - nl.bias()[target],
                    })
                    .collect();
                v.push(Escape {
                    rows,
                    side: Side::Above,
                    tag: format!("target {target}"),
                });
            }
        }
    } else if let Some(p) = next {
        let nb = dp.layer(k + 1);
        let row = |m: usize, sign: f64| -> Vec<(usize, f64)> {
            match nl.weights() {
                Some(_) => nl
                    .row_dense(m)
                    .iter()
                    .map(|&c| sign * c)
                    .enumerate()
                    .collect(),
                None => nl.row_entries(m).map(|(j, c)| (j, sign * c)).collect(),
            }
        };
        for m in 0..nl.outputs() {
            if !p.lower_checked[m] {
                // A neuron whose whole next template lies at or below 0 escapes only by
                // becoming active, W_m z + b_m ≥ 0: every value ≤ 0 gives the same ReLU output
                // 0 as the template's points (the authors' code uses the same upper bound 0).
                v.push(Escape {
                    rows: vec![EscapeRow {
                        wz: row(m, 1.0),
                        wx: None,
                        rhs: -nl.bias()[m],
                    }],
                    side: Side::Above,
                    tag: format!("neuron {m} active"),
                });
                continue;
            }
            // above: W_m z + b_m ≥ f^≥_m(x) + β_m χ'
            let neg_upper: Vec<f64> = nb.upper.coeffs(m).iter().map(|c| -c).collect();
            v.push(Escape {
                rows: vec![EscapeRow {
                    wz: row(m, 1.0),
                    wx: Some(neg_upper),
                    rhs: nb.upper.constant(m) + p.beta[m] * p.chi - nl.bias()[m],
                }],
                side: Side::Above,
                tag: format!("neuron {m} above"),
            });
            // below: W_m z + b_m ≤ f^≤_m(x) − α_m χ'
            v.push(Escape {
                rows: vec![EscapeRow {
                    wz: row(m, -1.0),
                    wx: Some(nb.lower.coeffs(m).to_vec()),
                    rhs: nl.bias()[m] - nb.lower.constant(m) + p.alpha[m] * p.chi,
                }],
                side: Side::Below,
                tag: format!("neuron {m} below"),
            });
        }
    }
    v
}

impl LayerCtx<'_> {
    /// Builds the base model at cutoff `chi_cap`: `x ∈ box`, `χ ∈ [0, chi_cap]`, `y ∈ T(χ)`,
    /// `z = ReLU(y)` with big-M from the template bounds at `chi_cap`; no escape yet.
    ///
    /// (docs/method.md, eqs. (25), (26))
    pub(super) fn base_model(&self, chi_cap: f64) -> BaseModel {
        let mut p = Problem::new();
        let lbnd = self.dp.layer(self.k);
        let bx = self.dp.input();
        let x: Vec<Var> = bx
            .lo()
            .iter()
            .zip(bx.hi())
            .map(|(&l, &h)| p.add_var(l, h))
            .collect();
        let chi = p.add_var(0.0, chi_cap);
        let (ylo, yhi) = self.y_bounds(chi_cap);
        let mut z = Vec::with_capacity(self.n());
        for j in 0..self.n() {
            let y = p.add_var(ylo[j], yhi[j]);
            // f^≤(x) − αχ − y ≤ 0   and   y − f^≥(x) − βχ ≤ 0
            let lo_terms = x
                .iter()
                .zip(lbnd.lower.coeffs(j))
                .map(|(&v, &c)| (v, c))
                .chain([(chi, -self.alpha[j]), (y, -1.0)]);
            p.add_row(lo_terms, f64::NEG_INFINITY, -lbnd.lower.constant(j));
            let hi_terms = x
                .iter()
                .zip(lbnd.upper.coeffs(j))
                .map(|(&v, &c)| (v, -c))
                .chain([(chi, -self.beta[j]), (y, 1.0)]);
            p.add_row(hi_terms, f64::NEG_INFINITY, lbnd.upper.constant(j));
            let (l, u) = (ylo[j], yhi[j]);
            let zj = if u <= 0.0 {
                None
            } else if l >= 0.0 {
                Some(y)
            } else {
                let zv = p.add_var(0.0, u);
                let d = p.add_binary();
                // z ≥ y;  z ≤ y − l(1 − d);  z ≤ u·d
                p.add_row([(zv, 1.0), (y, -1.0)], 0.0, f64::INFINITY);
                p.add_row([(zv, 1.0), (y, -1.0), (d, -l)], f64::NEG_INFINITY, -l);
                p.add_row([(zv, 1.0), (d, -u)], f64::NEG_INFINITY, 0.0);
                Some(zv)
            };
            z.push(zj);
        }
        p.set_objective([(chi, 1.0)], Sense::Minimize);
        BaseModel {
            p,
            x,
            #[cfg(test)]
            chi,
            z,
            zhi: yhi.iter().map(|u| u.max(0.0)).collect(),
        }
    }
}

/// Problem (3)'s template and ReLU part for one layer, with handles to its variables.
pub(super) struct BaseModel {
    /// The MILP.
    pub(super) p: Problem,
    /// Input variables.
    pub(super) x: Vec<Var>,
    /// The objective `χ` (tests narrow its range).
    #[cfg(test)]
    pub(super) chi: Var,
    /// Post-activations `z_j` (`None`: always inactive, `z_j = 0`; equal to `y_j` when
    /// always active).
    pub(super) z: Vec<Option<Var>>,
    /// Upper bounds of `z_j` (`max(u_j, 0)`).
    pub(super) zhi: Vec<f64>,
}

impl BaseModel {
    /// The terms of `wz·z + wx·x` (always-inactive neurons dropped).
    pub(super) fn terms(&self, row: &EscapeRow) -> Vec<(Var, f64)> {
        let mut t: Vec<(Var, f64)> = row
            .wz
            .iter()
            .filter_map(|&(j, c)| self.z[j].map(|v| (v, c)))
            .collect();
        if let Some(wx) = &row.wx {
            t.extend(self.x.iter().zip(wx).map(|(&v, &c)| (v, c)));
        }
        t
    }

    /// Interval lower bound of `wz·z + wx·x − rhs` (for the escape binaries' big-M).
    pub(super) fn row_min(&self, row: &EscapeRow, bx_lo: &[f64], bx_hi: &[f64]) -> f64 {
        let mut s = -row.rhs;
        for &(j, c) in &row.wz {
            if self.z[j].is_some() && c < 0.0 {
                s += c * self.zhi[j];
            }
        }
        if let Some(wx) = &row.wx {
            s += linear_min(wx, 0.0, bx_lo, bx_hi);
        }
        s
    }

    /// Requires escape condition `e`: its rows become hard rows (fast engine, and the paper
    /// engine when there is a single condition).
    pub(super) fn require_escape(&mut self, e: &Escape) {
        for r in &e.rows {
            let t = self.terms(r);
            self.p.add_row(t, r.rhs, f64::INFINITY);
        }
    }

    /// Requires that some condition of `escapes` holds (paper engine): one escape binary
    /// per condition, in order, `η` or `ζ` by its side; `η_e = 1 ⇒ row − rhs ≥ 0` via
    /// `row − rhs ≥ −M(1 − η_e)`; then `Σ η + Σ ζ ≥ 1`. Returns the binaries.
    ///
    /// (docs/method.md, eq. (27))
    pub(super) fn require_some_escape(
        &mut self,
        escapes: &[Escape],
        bx: &InputBox,
    ) -> Vec<EscapeBinary> {
        let mut binaries = Vec::with_capacity(escapes.len());
        for e in escapes {
            let b = self.p.add_binary();
            for r in &e.rows {
                let big_m = (-self.row_min(r, bx.lo(), bx.hi())).max(0.0) * (1.0 + 1e-6) + 1e-6;
                let mut t = self.terms(r);
                t.push((b, -big_m));
                self.p.add_row(t, r.rhs - big_m, f64::INFINITY);
            }
            binaries.push(match e.side {
                Side::Above => EscapeBinary::Eta(b),
                Side::Below => EscapeBinary::Zeta(b),
            });
        }
        self.p
            .add_row(binaries.iter().map(|b| (b.var(), 1.0)), 1.0, f64::INFINITY);
        binaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preimage::tests::{eval, robust_task};
    use crate::preimage::{PreimageOptions, TemplateKind, compute_preimages, template_widths};
    use certquant_milp::cbc::Cbc;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Layer 0 of a two-hidden-layer task: DeepPoly, the computed preimages and `α, β`.
    fn task() -> (Network, InputBox, usize, Vec<Preimage>, Vec<Vec<f64>>) {
        let (net, bx, centre, label) = robust_task(&[5, 6, 5, 3], 0.15, 20);
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let centre_pre = crate::algorithm1::pre_activations(&net, &centre);
        let spec = OutputSpec::Robust { label };
        let opts = PreimageOptions::default();
        let pre = compute_preimages(&dp, &centre_pre, spec, &Cbc, &opts).unwrap();
        (net, bx, label, pre, centre_pre)
    }

    #[test]
    fn escape_binaries_are_eta_above_and_zeta_below_in_condition_order() {
        let (net, bx, label, pre, centre_pre) = task();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let spec = OutputSpec::Robust { label };
        // last hidden layer: one η per class other than the label
        let last = escape_conditions(&net, &dp, 1, spec, None);
        assert_eq!(last.len(), 2);
        assert!(last.iter().all(|e| e.side == Side::Above));
        // first hidden layer: per next neuron, η then ζ (only η if its lower side is unchecked)
        let escapes = escape_conditions(&net, &dp, 0, spec, Some(&pre[1]));
        let expected: Vec<Side> = pre[1]
            .lower_checked
            .iter()
            .flat_map(|&c| {
                if c {
                    vec![Side::Above, Side::Below]
                } else {
                    vec![Side::Above]
                }
            })
            .collect();
        assert_eq!(escapes.iter().map(|e| e.side).collect::<Vec<_>>(), expected);
        let lb = dp.layer(0);
        let (alpha, beta) = template_widths(TemplateKind::Code, &lb.lo, &lb.hi, &centre_pre[0]);
        let ctx = LayerCtx::new(&dp, 0, &alpha, &beta);
        let mut m = ctx.base_model(4.0);
        let (ints, rows) = (m.p.num_integers(), m.p.num_rows());
        let binaries = m.require_some_escape(&escapes, &bx);
        assert_eq!(binaries.len(), escapes.len());
        for (b, e) in binaries.iter().zip(&escapes) {
            match (b, e.side) {
                (EscapeBinary::Eta(_), Side::Above) | (EscapeBinary::Zeta(_), Side::Below) => {}
                other => panic!("{}: {other:?}", e.tag),
            }
        }
        assert_eq!(m.p.num_integers(), ints + escapes.len());
        assert_eq!(m.p.num_rows(), rows + escapes.len() + 1);
    }

    /// The big-M of an escape binary must leave its row slack at every point of the model:
    /// `row − rhs ≥ row_min` for `x` in the box, `y` in the template at the cap, `z = ReLU(y)`.
    #[test]
    fn escape_big_m_bounds_every_row_from_below() {
        let (net, bx, label, pre, centre_pre) = task();
        let dp = DeepPoly::run(&net, &bx).unwrap();
        let spec = OutputSpec::Robust { label };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for k in 0..2 {
            let lb = dp.layer(k);
            let (alpha, beta) = template_widths(TemplateKind::Code, &lb.lo, &lb.hi, &centre_pre[k]);
            let ctx = LayerCtx::new(&dp, k, &alpha, &beta);
            let cap = 4.0;
            let m = ctx.base_model(cap);
            let escapes = escape_conditions(&net, &dp, k, spec, pre.get(k + 1));
            for _ in 0..500 {
                let x: Vec<f64> = bx
                    .lo()
                    .iter()
                    .zip(bx.hi())
                    .map(|(&l, &h)| rng.random_range(l..=h))
                    .collect();
                let chi = rng.random_range(0.0..=cap);
                let z: Vec<f64> = (0..ctx.n())
                    .map(|j| {
                        let lo = eval(&lb.lower, j, &x) - alpha[j] * chi;
                        let hi = eval(&lb.upper, j, &x) + beta[j] * chi;
                        let y = if rng.random_bool(0.5) { lo } else { hi };
                        y.max(0.0)
                    })
                    .collect();
                for r in escapes.iter().flat_map(|e| &e.rows) {
                    let mut v = r.wz.iter().map(|&(j, a)| a * z[j]).sum::<f64>() - r.rhs;
                    if let Some(wx) = &r.wx {
                        v += wx.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>();
                    }
                    assert!(v >= m.row_min(r, bx.lo(), bx.hi()) - 1e-9, "layer {k}");
                }
            }
        }
    }
}
