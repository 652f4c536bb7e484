//! The linear program behind the relaxed count's exact decision (docs/method.md, eq. (38)):
//! for a set `S` of checks `g_i(x) = a_i·x + c_i` over a box, can all of them fail (`g_i ≤ 0`)
//! at one input? Equivalently, is
//!
//! `t*(S) = min_{x ∈ box} max_{i ∈ S} g_i(x) ≤ 0`?
//!
//! By LP duality `t*(S) = max_{y ∈ Δ_S} min_{x ∈ box} Σ_i y_i g_i(x)`, a concave function of
//! only `|S|` multipliers. A dense bounded-variable primal simplex (a few dozen rows, hundreds
//! of box-bounded columns) solves it in about a millisecond; its optimum gives both a witness
//! `x` (all of `S` fail there) and multipliers `y`. The simplex is only a search: a "cannot
//! fail together" answer is accepted only when [`combination_min`] — outward rounded —
//! proves `min_box Σ y_i g_i > 0` for the returned `y`, so a wrong pivot can cost time, never
//! soundness. Pairs use an exact 1-D breakpoint search instead ([`pair_multiplier`]).

use certquant_bounds::arith::{gamma, inflate, linear_min, sub_down};

/// The checks of one count instance: `g_i(x) = coeffs[i]·x + constants[i]` over `[lo, hi]`.
pub(crate) struct Checks<'a> {
    /// Per check, its coefficients (one per input).
    pub coeffs: Vec<&'a [f64]>,
    /// Per check, its constant.
    pub constants: Vec<f64>,
    /// The box.
    pub lo: &'a [f64],
    /// The box.
    pub hi: &'a [f64],
}

impl Checks<'_> {
    /// `g_i(x)` in plain floating point (witness counting only, never a proof).
    pub fn value(&self, i: usize, x: &[f64]) -> f64 {
        self.coeffs[i]
            .iter()
            .zip(x)
            .map(|(a, v)| a * v)
            .sum::<f64>()
            + self.constants[i]
    }
}

/// A sound lower bound of `min_{x ∈ box} Σ_i y_i g_i(x)` for multipliers `y ≥ 0` over the
/// checks `rows` (negative or NaN multipliers count as 0). If it is `> 0`, the checks with
/// `y_i > 0` cannot all satisfy `g_i ≤ 0` at one input of the box (Farkas). The combined
/// coefficients are computed in `f64`; their rounding error (at most `γ_m Σ_i |y_i a_ik|` per
/// input, `γ_m Σ_i |y_i c_i|` for the constant) times `max(|lo_k|, |hi_k|)` is subtracted,
/// and the remaining sum is bounded by [`linear_min`] (docs/method.md, eqs. (11), (38)).
pub(crate) fn combination_min(checks: &Checks<'_>, rows: &[usize], y: &[f64]) -> f64 {
    let n = checks.lo.len();
    let mut w = vec![0.0; n];
    let mut wabs = vec![0.0; n];
    let (mut c, mut cabs) = (0.0, 0.0);
    for (&i, &yi) in rows.iter().zip(y) {
        if yi.is_nan() || yi <= 0.0 {
            continue;
        }
        for ((wk, ak), &a) in w.iter_mut().zip(wabs.iter_mut()).zip(checks.coeffs[i]) {
            *wk += yi * a;
            *ak += (yi * a).abs();
        }
        c += yi * checks.constants[i];
        cabs += (yi * checks.constants[i]).abs();
    }
    let g = gamma(rows.len() + 1);
    let mut err = g * cabs;
    for ((ak, l), h) in wabs.iter().zip(checks.lo).zip(checks.hi) {
        err += g * ak * l.abs().max(h.abs());
    }
    let v = sub_down(linear_min(&w, c, checks.lo, checks.hi), inflate(err));
    if v.is_nan() { f64::NEG_INFINITY } else { v }
}

/// The multiplier `λ ∈ [0, 1]` maximising `h(λ) = min_box (λ g_i + (1 − λ) g_j)`, found
/// exactly by walking the breakpoints of this concave piecewise-linear function (where a
/// combined coefficient `λ a_ik + (1 − λ) a_jk` changes sign) until its slope turns
/// non-positive: `O(n log n)`, no LP (docs/method.md, eq. (38)). The pair cannot fail
/// together iff `h(λ) > 0`; that is decided by [`combination_min`] on `(λ, 1 − λ)`.
pub(crate) fn pair_multiplier(checks: &Checks<'_>, i: usize, j: usize) -> f64 {
    let (ai, aj) = (checks.coeffs[i], checks.coeffs[j]);
    // slope of h just right of λ = 0: (c_i − c_j) + Σ_k (a_ik − a_jk) x_k(0+), where x_k is
    // the box end minimising the combined coefficient's term
    let mut slope = checks.constants[i] - checks.constants[j];
    let mut breaks: Vec<(f64, f64)> = Vec::new();
    for k in 0..ai.len() {
        let (l, h) = (checks.lo[k], checks.hi[k]);
        let d = ai[k] - aj[k];
        // coefficient at λ: aj + λ d; its sign just right of 0 picks x_k
        let w0 = if aj[k] != 0.0 { aj[k] } else { d };
        let x0 = if w0 > 0.0 { l } else { h };
        slope += d * x0;
        // a sign change strictly inside (0, 1)
        if d != 0.0 {
            let lam = -aj[k] / d;
            if lam > 0.0 && lam < 1.0 {
                let x1 = if x0 == l { h } else { l };
                breaks.push((lam, d * (x1 - x0)));
            }
        }
    }
    if slope <= 0.0 {
        return 0.0;
    }
    breaks.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (lam, change) in breaks {
        slope += change;
        if slope <= 0.0 {
            return lam;
        }
    }
    1.0
}

/// The optimum of the min-max LP over the checks `rows`.
pub(crate) struct LpOptimum {
    /// `t*`: the optimal value (floating point, not a proof).
    pub t: f64,
    /// The optimal input.
    pub x: Vec<f64>,
    /// The optimal multipliers, one per row of `rows` (`≥ 0`, summing to about 1).
    pub y: Vec<f64>,
}

/// Where a nonbasic variable sits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Lower,
    Upper,
    Basic,
}

/// Solves `min t` s.t. `a_i·x + c_i ≤ t` (`i ∈ rows`), `x ∈ box`, by a dense bounded-variable
/// primal simplex started at the box vertex nearest to `start` (a parent's optimum, say).
/// Columns: the inputs, then `t` (free), then one slack `s_r ≥ 0` per row
/// (`a_r·x − t + s_r = −c_r`). Returns `None` when the iteration limit is hit (the caller
/// then falls back to the MILP). Dantzig pricing, Bland's rule after a run of degenerate
/// pivots, the basis inverse rebuilt every 50 pivots.
pub(crate) fn solve_minmax(
    checks: &Checks<'_>,
    rows: &[usize],
    start: &[f64],
) -> Option<LpOptimum> {
    let m = rows.len();
    let n = checks.lo.len();
    if m == 0 {
        return None;
    }
    let nv = n + 1 + m;
    let tcol = n;
    let lo_of = |j: usize| -> f64 {
        if j < n {
            checks.lo[j]
        } else if j == tcol {
            f64::NEG_INFINITY
        } else {
            0.0
        }
    };
    let hi_of = |j: usize| -> f64 { if j < n { checks.hi[j] } else { f64::INFINITY } };
    // column j's entry in row r
    let entry = |r: usize, j: usize| -> f64 {
        if j < n {
            checks.coeffs[rows[r]][j]
        } else if j == tcol {
            -1.0
        } else if j - n - 1 == r {
            1.0
        } else {
            0.0
        }
    };
    let mut val = vec![0.0; nv];
    let mut at = vec![At::Lower; nv];
    for k in 0..n {
        let (l, h) = (checks.lo[k], checks.hi[k]);
        let s = start.get(k).copied().unwrap_or(l);
        if s - l <= h - s {
            val[k] = l;
        } else {
            val[k] = h;
            at[k] = At::Upper;
        }
    }
    let g: Vec<f64> = rows.iter().map(|&i| checks.value(i, &val[..n])).collect();
    let rstar = (0..m).max_by(|&a, &b| g[a].total_cmp(&g[b]))?;
    val[tcol] = g[rstar];
    let mut basis: Vec<usize> = (0..m).map(|r| n + 1 + r).collect();
    basis[rstar] = tcol;
    at[tcol] = At::Basic;
    for r in 0..m {
        val[n + 1 + r] = (val[tcol] - g[r]).max(0.0);
        if r != rstar {
            at[n + 1 + r] = At::Basic;
        }
    }
    val[n + 1 + rstar] = 0.0;
    let mut binv = invert(m, &basis, &entry)?;
    let tol = 1e-11;
    let mut degenerate = 0usize;
    let max_iter = 20 * (n + m) + 1000;
    let mut dvec = vec![0.0; n];
    for iter in 0..max_iter {
        if iter % 50 == 49 {
            binv = invert(m, &basis, &entry)?;
            recompute_basics(m, n, &basis, &binv, &mut val, &entry, checks, rows);
        }
        // duals π = c_B B^{-1}: the row of B^{-1} at t's position
        let tpos = basis.iter().position(|&b| b == tcol)?;
        let pi = &binv[tpos * m..(tpos + 1) * m];
        let bland = degenerate > 30;
        let mut best: Option<(usize, f64)> = None;
        let consider = |j: usize, d: f64, best: &mut Option<(usize, f64)>| {
            let ok = match at[j] {
                At::Lower => d < -tol,
                At::Upper => d > tol,
                At::Basic => false,
            };
            if ok && (best.is_none() || (!bland && d.abs() > best.map_or(0.0, |b| b.1.abs()))) {
                *best = Some((j, d));
            }
        };
        // reduced costs of the inputs: d = −Σ_r π_r a_r, accumulated row by row
        dvec.iter_mut().for_each(|d| *d = 0.0);
        for (r, &p) in pi.iter().enumerate() {
            if p != 0.0 {
                for (d, a) in dvec.iter_mut().zip(checks.coeffs[rows[r]]) {
                    *d -= p * a;
                }
            }
        }
        for k in 0..n {
            if at[k] == At::Basic || checks.lo[k] == checks.hi[k] {
                continue;
            }
            consider(k, dvec[k], &mut best);
            if bland && best.is_some() {
                break;
            }
        }
        if !(bland && best.is_some()) {
            for (r, p) in pi.iter().enumerate() {
                if at[n + 1 + r] != At::Basic {
                    consider(n + 1 + r, -p, &mut best);
                    if bland && best.is_some() {
                        break;
                    }
                }
            }
        }
        let Some((q, dq)) = best else {
            // optimal
            let x = val[..n].to_vec();
            let y = pi.iter().map(|p| (-p).max(0.0)).collect();
            return Some(LpOptimum { t: val[tcol], x, y });
        };
        let dir = if dq < 0.0 { 1.0 } else { -1.0 };
        // α = B^{-1} A_q
        let col: Vec<f64> = (0..m).map(|r| entry(r, q)).collect();
        let alpha: Vec<f64> = (0..m)
            .map(|p| (0..m).map(|r| binv[p * m + r] * col[r]).sum())
            .collect();
        // ratio test: basic p changes at rate −dir·α_p
        let mut theta = hi_of(q) - lo_of(q);
        let mut leave: Option<usize> = None;
        let piv_tol = 1e-9;
        for p in 0..m {
            let v = basis[p];
            let rate = -dir * alpha[p];
            let room = if rate < -piv_tol {
                (val[v] - lo_of(v)) / -rate
            } else if rate > piv_tol {
                (hi_of(v) - val[v]) / rate
            } else {
                continue;
            };
            let room = room.max(0.0);
            let better = room < theta
                || (room == theta
                    && leave.is_some_and(|l: usize| {
                        if bland {
                            basis[p] < basis[l]
                        } else {
                            alpha[p].abs() > alpha[l].abs()
                        }
                    }));
            if better {
                theta = room;
                leave = Some(p);
            }
        }
        if !theta.is_finite() {
            return None; // unbounded: impossible over a box, so numerical trouble
        }
        degenerate = if theta <= 1e-14 { degenerate + 1 } else { 0 };
        for p in 0..m {
            val[basis[p]] -= dir * theta * alpha[p];
        }
        val[q] += dir * theta;
        match leave {
            None => {
                // bound flip
                at[q] = if at[q] == At::Lower {
                    At::Upper
                } else {
                    At::Lower
                };
                val[q] = if at[q] == At::Lower {
                    lo_of(q)
                } else {
                    hi_of(q)
                };
            }
            Some(p) => {
                let v = basis[p];
                let rate = -dir * alpha[p];
                if rate < 0.0 {
                    at[v] = At::Lower;
                    val[v] = lo_of(v);
                } else {
                    at[v] = At::Upper;
                    val[v] = hi_of(v);
                }
                basis[p] = q;
                at[q] = At::Basic;
                // B^{-1} update: row p /= α_p, row r −= α_r row p
                let ap = alpha[p];
                for r in 0..m {
                    binv[p * m + r] /= ap;
                }
                for row in 0..m {
                    if row != p && alpha[row] != 0.0 {
                        let f = alpha[row];
                        for r in 0..m {
                            binv[row * m + r] -= f * binv[p * m + r];
                        }
                    }
                }
            }
        }
    }
    None
}

/// Basic values from the nonbasic ones: `x_B = B^{-1}(−c − N x_N)`.
#[allow(clippy::too_many_arguments)]
fn recompute_basics(
    m: usize,
    n: usize,
    basis: &[usize],
    binv: &[f64],
    val: &mut [f64],
    entry: &dyn Fn(usize, usize) -> f64,
    checks: &Checks<'_>,
    rows: &[usize],
) {
    let is_basic: std::collections::HashSet<usize> = basis.iter().copied().collect();
    let mut rhs: Vec<f64> = rows.iter().map(|&i| -checks.constants[i]).collect();
    for (r, rv) in rhs.iter_mut().enumerate() {
        for (k, &x) in val.iter().enumerate().take(n) {
            if !is_basic.contains(&k) {
                *rv -= checks.coeffs[rows[r]][k] * x;
            }
        }
        for j in n..n + 1 + m {
            if !is_basic.contains(&j) {
                *rv -= entry(r, j) * val[j];
            }
        }
    }
    for p in 0..m {
        val[basis[p]] = (0..m).map(|r| binv[p * m + r] * rhs[r]).sum();
    }
}

/// `B^{-1}` (row-major `m × m`) of the basis columns, by Gauss–Jordan with partial pivoting;
/// `None` if singular.
fn invert(m: usize, basis: &[usize], entry: &dyn Fn(usize, usize) -> f64) -> Option<Vec<f64>> {
    let mut a = vec![0.0; m * m];
    for (p, &j) in basis.iter().enumerate() {
        for r in 0..m {
            a[r * m + p] = entry(r, j);
        }
    }
    let mut inv = vec![0.0; m * m];
    for r in 0..m {
        inv[r * m + r] = 1.0;
    }
    for c in 0..m {
        let piv = (c..m).max_by(|&x, &y| a[x * m + c].abs().total_cmp(&a[y * m + c].abs()))?;
        if a[piv * m + c].abs() < 1e-12 {
            return None;
        }
        if piv != c {
            for k in 0..m {
                a.swap(piv * m + k, c * m + k);
                inv.swap(piv * m + k, c * m + k);
            }
        }
        let d = a[c * m + c];
        for k in 0..m {
            a[c * m + k] /= d;
            inv[c * m + k] /= d;
        }
        for r in 0..m {
            if r != c {
                let f = a[r * m + c];
                if f != 0.0 {
                    for k in 0..m {
                        a[r * m + k] -= f * a[c * m + k];
                        inv[r * m + k] -= f * inv[c * m + k];
                    }
                }
            }
        }
    }
    // `a` is now the identity: the basis matrix B with columns in basis order, rows in row
    // order, so inv = B^{-1} maps row space to basis positions
    Some(inv)
}
