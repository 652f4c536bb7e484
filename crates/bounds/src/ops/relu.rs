//! The ReLU step: rows over the post-activations `z = max(y, 0)` of a hidden layer become rows
//! over its pre-activations `y`, through the DeepPoly relaxation of each neuron.

use certquant_core::semantics::ActFormat;

use super::{Block, BoundStep, Rows, SparseRows, Substituted};
use crate::arith::{UNIT_ROUNDOFF, gamma};
use crate::deeppoly::Side;

/// The relaxation of one hidden layer's activation: `z ≥ ls·y + li` and `z ≤ us·y + ui` per
/// neuron, exact over the reals for the stored floats on the neuron's pre-activation range
/// `[l, u]`, plus the magnitudes the rounding-error terms of the neighbouring steps need.
/// `z = max(y, 0)` under the real semantics ([`Relaxation::new`], `li = 0`), `z = r(y)` of an
/// activation format under the integer semantics ([`Relaxation::quantized`]).
///
/// (docs/method.md, eqs. (7), (12), (58))
#[derive(Debug, Clone)]
pub struct Relaxation {
    ls: Vec<f64>,
    li: Vec<f64>,
    us: Vec<f64>,
    ui: Vec<f64>,
    /// `max |y|` over the box (for rounding-error terms of the ReLU substitution).
    pre_abs: Vec<f64>,
    /// `max |z|` over the box (for rounding-error terms of the next affine substitution).
    post_abs: Vec<f64>,
}

impl Relaxation {
    /// The relaxation of a layer whose pre-activations satisfy `lo ≤ y ≤ hi` (sound concrete
    /// bounds over the box).
    //
    // Relaxation of `z = max(y, 0)` on `y ∈ [l, u]`:
    // * `l ≥ 0`: `z = y` (`ls = us = 1`, `ui = 0`);
    // * `u ≤ 0`: `z = 0` (`ls = us = ui = 0`);
    // * `l < 0 < u` (unstable): lower `z ≥ λy` with `λ ∈ {0, 1}` (both are below the ReLU on
    //   all of ℝ), chosen by the area heuristic `λ = 1` iff `u > −l`; upper the chord
    //   `z ≤ μ*(y − l)` with `μ* = u/(u − l)`.
    // Soundness in floating point: `u/(u − l)` takes two roundings (the difference, the
    // quotient), each at most half an ulp, so three `next_up`s give `μ ≥ μ*`, capped at 1
    // (`μ* < 1`). The intercept `−μl > 0` is rounded up, so `ui ≥ −μl` exactly. The stored
    // line `μy + ui` then lies above the chord's end points `(l, 0)` (`μl + ui ≥ 0`) and
    // `(u, u)` (`μu + ui ≥ μ(u − l) ≥ u`), hence above the ReLU on `[l, u]`.
    /// (docs/method.md, eqs. (7), (12))
    pub fn new(lo: &[f64], hi: &[f64]) -> Self {
        let n = lo.len();
        let mut r = Relaxation::zeros(n);
        for j in 0..n {
            let (l, u) = (lo[j], hi[j]);
            r.pre_abs[j] = l.abs().max(u.abs());
            r.post_abs[j] = u.max(0.0);
            if l >= 0.0 {
                r.ls[j] = 1.0;
                r.us[j] = 1.0;
            } else if u <= 0.0 {
                // always inactive: z = 0
            } else {
                r.ls[j] = if u > -l { 1.0 } else { 0.0 };
                // exact slope u/(u−l) ≤ 1; two roundings → three ulps up is above it.
                let mu = (u / (u - l)).next_up().next_up().next_up().min(1.0);
                r.us[j] = mu;
                // −μl > 0 rounded up: the line μy + ui passes above (l, 0) and (u, u).
                r.ui[j] = (-mu * l).next_up();
            }
        }
        r
    }

    /// The relaxation of `z = r(y)`, the activation rounded half to even onto the unsigned
    /// format `fmt` and saturated at `M` (docs/method.md, eqs. (54), (58)), on `lo ≤ y ≤ hi`.
    //
    // With `h(y) = clamp(y, 0, M)` and `δ = 2^−(F+1)`: `h − δ ≤ r ≤ h + δ` and `0 ≤ r ≤ M`
    // (`r(y) = h(y)` for `y ≤ 0` and `y ≥ M`; between, rounding to the nearest grid point moves
    // by at most `δ`). Per neuron, with `r` monotone:
    // * `r(u) = 0` (so `u ≤ δ`): `z = 0` exactly;
    // * `r(l) = M`: `z = M` exactly (`ls = us = 0`, `li = ui = M`);
    // * `u ≤ M` (no saturation on the range): the ReLU lines of `new`, lower minus `δ` unless it
    //   is the constant 0 (`z ≥ 0` holds), upper plus `δ`;
    // * `0 ≤ l < M < u`: `h` is concave there. Lower: the chord from `(l, l)` to `(u, M)`,
    //   slope `s* = (M − l)/(u − l)`; with `ls = fl(s*)` any float, the intercept
    //   `li ≤ min(l − ls·l, M − ls·u) − δ` (each product rounded up before the subtraction,
    //   which is rounded down) puts the stored line below `h − δ` at both ends, hence on the
    //   range. Upper: `z ≤ y + δ` (`h ≤ y` for `y ≥ 0`) if `u − M < M − l`, else `z ≤ M`
    //   (saturation; no `δ` needed);
    // * `l < 0 < M < u`: lower `λy − δ` with `λ = fl↓(M/u) ≤ M/u` if `u > −l` (below `h − δ` at
    //   `l`, `0` and `u`, `h` concave on `[0, u]` and 0 left of 0), else `z ≥ 0`. Upper: the
    //   line through `(l, 0)` and `(M, M)`, slope `μ* = M/(M − l) < 1`: `μ ≥ μ*` (three ulps up,
    //   capped at 1), `ui ≥ −μl + δ` rounded up; it lies above `h` at `l` and `M`, so on
    //   `[l, M]` (h convex there), and it rises above `M` beyond.
    /// (docs/method.md, eq. (58))
    pub fn quantized(lo: &[f64], hi: &[f64], fmt: ActFormat) -> Self {
        let n = lo.len();
        let m = fmt.max_value();
        let delta = fmt.half_step();
        let mut r = Relaxation::zeros(n);
        for j in 0..n {
            let (l, u) = (lo[j], hi[j]);
            r.pre_abs[j] = l.abs().max(u.abs());
            // r(u) ≥ z: exact (r is monotone and computed exactly).
            r.post_abs[j] = fmt.quantize(u);
            if fmt.code(u) == 0 {
                continue; // z = 0
            }
            if fmt.code(l) == fmt.max_code() {
                r.li[j] = m;
                r.ui[j] = m;
                continue; // z = M
            }
            if u <= m {
                if l >= 0.0 {
                    r.ls[j] = 1.0;
                    r.li[j] = (-delta).next_down();
                    r.us[j] = 1.0;
                    r.ui[j] = delta.next_up();
                } else {
                    if u > -l {
                        r.ls[j] = 1.0;
                        r.li[j] = (-delta).next_down();
                    }
                    let mu = (u / (u - l)).next_up().next_up().next_up().min(1.0);
                    r.us[j] = mu;
                    r.ui[j] = ((-mu * l).next_up() + delta).next_up();
                }
            } else if l >= 0.0 {
                let s = (m - l) / (u - l);
                let at_l = (l - (s * l).next_up()).next_down();
                let at_u = (m - (s * u).next_up()).next_down();
                r.ls[j] = s;
                r.li[j] = (at_l.min(at_u) - delta).next_down();
                if u - m < m - l {
                    r.us[j] = 1.0;
                    r.ui[j] = delta.next_up();
                } else {
                    r.ui[j] = m;
                }
            } else {
                if u > -l {
                    r.ls[j] = (m / u).next_down().max(0.0);
                    r.li[j] = (-delta).next_down();
                }
                let mu = (m / (m - l)).next_up().next_up().next_up().min(1.0);
                r.us[j] = mu;
                r.ui[j] = ((-mu * l).next_up() + delta).next_up();
            }
        }
        r
    }

    /// `n` neurons with every line `0` (the relaxation of a dead neuron), to be filled in.
    fn zeros(n: usize) -> Self {
        Relaxation {
            ls: vec![0.0; n],
            li: vec![0.0; n],
            us: vec![0.0; n],
            ui: vec![0.0; n],
            pre_abs: vec![0.0; n],
            post_abs: vec![0.0; n],
        }
    }

    /// Number of neurons.
    pub fn width(&self) -> usize {
        self.ls.len()
    }

    /// `max |z|` per neuron over the box: how large a post-activation can be, which bounds
    /// the effect of a coefficient error in the affine step above this layer.
    pub fn post_abs(&self) -> &[f64] {
        &self.post_abs
    }
}

/// Back-substitution through the ReLUs of one hidden layer (rows over `z` → rows over `y`).
///
/// (docs/method.md, eqs. (8), (14))
#[derive(Debug, Clone, Copy)]
pub struct ReluStep<'a> {
    relax: &'a Relaxation,
}

impl<'a> ReluStep<'a> {
    /// The step through the layer relaxed by `relax`.
    pub fn new(relax: &'a Relaxation) -> Self {
        Self { relax }
    }
}

impl BoundStep for ReluStep<'_> {
    fn output_width(&self) -> usize {
        self.relax.width()
    }

    fn input_width(&self) -> usize {
        self.relax.width()
    }

    // Substitution, lower side (the upper side swaps the two lines): for each coefficient
    // `a_t ≠ 0` of a row,
    // * `a_t > 0`: `a_t z_t ≥ a_t·ls_t·y_t` (the lower line, scaled by a positive number);
    // * `a_t < 0`: `a_t z_t ≥ a_t·(us_t y_t + ui_t)` (the upper line, the inequality flips);
    // (`a_t = 0` contributes nothing and stays 0). The new coefficient is `fl(a_t·s_t)` and the
    // new constant `fl(c + Σ a_t·ui_t)`, evaluated left to right over `t`.
    //
    // Rounding error reported for the row:
    // * coefficients: `fl(a·s)` is exact for `s ∈ {0, 1}`; otherwise
    //   `|a·s − fl(a·s)| ≤ u·|fl(a·s)|·(1 + u)`, and the variable it multiplies has
    //   `|y_t| ≤ pre_abs_t`, so the sum of `|fl(a·s)|·pre_abs_t` times `u·(1 + 2u)` covers the
    //   coefficient errors (the extra `u` the rounding of that sum);
    // * the constant is a sum of at most `width` products and `c`: `γ_width·mag`, with `mag`
    //   the sum of the magnitudes of its terms.
    fn substitute(&self, mut rows: Rows, side: Side) -> Substituted {
        let width = rows.width;
        debug_assert_eq!(width, self.relax.width());
        let mut err = vec![0.0; rows.rows()];
        for r in 0..rows.rows() {
            let row = &mut rows.coeffs[r * width..(r + 1) * width];
            let (cst, e) = self.row(row.iter_mut().enumerate(), rows.consts[r], width, side);
            err[r] = e;
            rows.consts[r] = cst;
        }
        Substituted { rows, err }
    }

    // The same per-row computation over the non-zero coefficients only (in column order, as
    // the dense loop visits them).
    fn substitute_sparse(&self, mut rows: SparseRows, side: Side) -> (Block, Vec<f64>) {
        let width = rows.width;
        debug_assert_eq!(width, self.relax.width());
        let mut err = vec![0.0; rows.entries.len()];
        for (r, e) in rows.entries.iter_mut().enumerate() {
            let (cst, er) = self.row(
                e.iter_mut().map(|(c, v)| (*c, v)),
                rows.consts[r],
                width,
                side,
            );
            err[r] = er;
            rows.consts[r] = cst;
        }
        (Block::Sparse(rows), err)
    }
}

impl ReluStep<'_> {
    /// One row: replaces each coefficient `a_t` by `fl(a_t·s_t)` in place and returns the new
    /// constant and the row's error bound (see `substitute`).
    fn row<'r>(
        &self,
        row: impl Iterator<Item = (usize, &'r mut f64)>,
        c: f64,
        width: usize,
        side: Side,
    ) -> (f64, f64) {
        let rx = self.relax;
        let mut cst = c;
        let mut mag = c.abs();
        let mut coef_err = 0.0;
        for (t, a) in row {
            let at = *a;
            if at == 0.0 {
                continue;
            }
            let use_lower = (at >= 0.0) == (side == Side::Lower);
            let (slope, icpt) = if use_lower {
                (rx.ls[t], rx.li[t])
            } else {
                (rx.us[t], rx.ui[t])
            };
            let na = at * slope;
            if slope != 0.0 && slope != 1.0 {
                coef_err += na.abs() * rx.pre_abs[t];
            }
            if icpt != 0.0 {
                let term = at * icpt;
                cst += term;
                mag += term.abs();
            }
            *a = na;
        }
        // Σ|a·s − fl(a·s)|·|y| ≤ u·Σ|fl(a·s)|·(1+u)·|y|; constant sum: γ_n·mag.
        let err = coef_err * UNIT_ROUNDOFF * (1.0 + 2.0 * UNIT_ROUNDOFF) + gamma(width) * mag;
        (cst, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One neuron of each kind: active `[1, 2]`, dead `[−2, −1]`, unstable `[−1, 3]` (λ = 1)
    /// and unstable `[−3, 1]` (λ = 0).
    fn relax() -> Relaxation {
        Relaxation::new(&[1.0, -2.0, -1.0, -3.0], &[2.0, -1.0, 3.0, 1.0])
    }

    #[test]
    fn relaxation_lines_enclose_the_relu_on_the_range() {
        let rx = relax();
        let (lo, hi) = ([1.0, -2.0, -1.0, -3.0], [2.0, -1.0, 3.0, 1.0]);
        for j in 0..4 {
            for s in 0..=20 {
                let y = lo[j] + (hi[j] - lo[j]) * f64::from(s) / 20.0;
                let z = y.max(0.0);
                assert!(rx.ls[j] * y <= z, "neuron {j} y {y}");
                assert!(rx.us[j] * y + rx.ui[j] >= z, "neuron {j} y {y}");
            }
        }
        assert_eq!(rx.post_abs(), &[2.0, 0.0, 3.0, 1.0]);
        assert_eq!((rx.ls[2], rx.ls[3]), (1.0, 0.0));
    }

    #[test]
    fn picks_the_line_by_coefficient_sign_and_side() {
        let rx = relax();
        let rows = Rows::new(4, vec![1.0, 1.0, 2.0, -1.0], vec![0.5]);
        let lower = ReluStep::new(&rx).substitute(rows.clone(), Side::Lower);
        // active keeps 1, dead → 0, unstable a > 0 takes λ = 1, a < 0 takes −μ (μ ≈ 1/4)
        assert_eq!(&lower.rows.coeffs[..3], &[1.0, 0.0, 2.0]);
        assert!((lower.rows.coeffs[3] + 0.25).abs() < 1e-15 && lower.rows.coeffs[3] <= -0.25);
        // constant: 0.5 − ui₃ with ui₃ ≈ 3/4
        assert!((lower.rows.consts[0] + 0.25).abs() < 1e-15);
        assert!(lower.err[0] > 0.0 && lower.err[0] < 1e-14);
        let upper = ReluStep::new(&rx).substitute(rows, Side::Upper);
        // a > 0 on the unstable neuron takes the chord μ ≈ 3/4, a < 0 takes λ = 0
        assert!((upper.rows.coeffs[2] - 1.5).abs() < 1e-15 && upper.rows.coeffs[2] >= 1.5);
        assert_eq!(upper.rows.coeffs[3], 0.0);
        // constant: 0.5 + 2·ui₂ with ui₂ ≈ 3/4
        assert!((upper.rows.consts[0] - 2.0).abs() < 1e-14);
    }

    #[test]
    fn settled_rows_bound_the_relu_expression() {
        let rx = relax();
        let a = vec![0.3, -0.7, 1.1, -0.9];
        let rows = Rows::new(4, a.clone(), vec![0.1]);
        let lower = ReluStep::new(&rx)
            .substitute(rows.clone(), Side::Lower)
            .settle(Side::Lower);
        let upper = ReluStep::new(&rx)
            .substitute(rows, Side::Upper)
            .settle(Side::Upper);
        let (lo, hi) = ([1.0, -2.0, -1.0, -3.0], [2.0, -1.0, 3.0, 1.0]);
        for s in 0..=10 {
            let y: Vec<f64> = (0..4)
                .map(|j| lo[j] + (hi[j] - lo[j]) * ((s * (j + 3)) % 11) as f64 / 10.0)
                .collect();
            let exact: f64 = a.iter().zip(&y).map(|(a, y)| a * y.max(0.0)).sum::<f64>() + 0.1;
            let eval = |r: &Rows| -> f64 {
                r.coeffs.iter().zip(&y).map(|(a, y)| a * y).sum::<f64>() + r.consts[0]
            };
            assert!(eval(&lower) <= exact + 1e-12 && exact <= eval(&upper) + 1e-12);
        }
    }
}
