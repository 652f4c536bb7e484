//! The linear program behind the relaxed count's exact decision (docs/method.md, eq. (37a)):
//! for a set `S` of checks `g_i(x) = a_i·x + c_i` over a box, can all of them fail (`g_i ≤ 0`)
//! at one input? Equivalently, is
//!
//! `t*(S) = min_{x ∈ box} max_{i ∈ S} g_i(x) ≤ 0`?
//!
//! By LP duality `t*(S) = max_{y ∈ Δ_S} min_{x ∈ box} Σ_i y_i g_i(x)`, a concave function of
//! only `|S|` multipliers. A dense bounded-variable dual simplex with the bound-flipping ratio
//! test (a few dozen rows, hundreds of box-bounded columns) solves it in about a millisecond;
//! its optimum gives both a witness `x` (all of `S` fail there) and multipliers `y`. The simplex is only a search: a "cannot
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
        dot(self.coeffs[i], x) + self.constants[i]
    }
}

/// A sound lower bound of `min_{x ∈ box} Σ_i y_i g_i(x)` for multipliers `y ≥ 0` over the
/// checks `rows` (negative or NaN multipliers count as 0). If it is `> 0`, the checks with
/// `y_i > 0` cannot all satisfy `g_i ≤ 0` at one input of the box (Farkas). The combined
/// coefficients are computed in `f64`; their rounding error (at most `γ_m Σ_i |y_i a_ik|` per
/// input, `γ_m Σ_i |y_i c_i|` for the constant) times `max(|lo_k|, |hi_k|)` is subtracted,
/// and the remaining sum is bounded by [`linear_min`] (docs/method.md, eqs. (11), (37a)).
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
/// non-positive: `O(n log n)`, no LP (docs/method.md, eq. (37b)). The pair cannot fail
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

/// The dual simplex stops early once its (dual feasible) objective exceeds this.
const STOP_ABOVE: f64 = 1e-9;

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

/// Per-check data that every LP over the same checks needs (computed once per instance by
/// [`Prepared::new`]): a branch and bound asks thousands of LPs over subsets of the same checks
/// (docs/method.md, eq. (86)).
pub(crate) struct Prepared {
    /// Each check's minimum over the box (outward rounded): picks the starting row.
    mins: Vec<f64>,
    /// Each check's `Σ |a_k|` over its non-zero coefficients, and how many there are: the
    /// scale of the anti-degeneracy perturbation.
    abs_sums: Vec<(f64, usize)>,
}

impl Prepared {
    /// The per-check data of `checks`.
    pub(crate) fn new(checks: &Checks<'_>) -> Self {
        Self {
            mins: (0..checks.coeffs.len())
                .map(|i| linear_min(checks.coeffs[i], checks.constants[i], checks.lo, checks.hi))
                .collect(),
            abs_sums: checks.coeffs.iter().map(|a| abs_sum(a)).collect(),
        }
    }
}

/// `Σ |a_k|` over the non-zero `a_k`, and their number.
fn abs_sum(a: &[f64]) -> (f64, usize) {
    a.iter()
        .filter(|a| **a != 0.0)
        .fold((0.0, 0), |(s, c), a| (s + a.abs(), c + 1))
}

/// `a · x` with four partial sums (a serial sum is bound by the adder's latency; the order
/// only moves the last bits, and no proof reads this value: witnesses and LP iterates only).
pub(crate) fn dot(a: &[f64], x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ac, xc) = (a.chunks_exact(4), x.chunks_exact(4));
    let (ar, xr) = (ac.remainder(), xc.remainder());
    for (p, q) in ac.zip(xc) {
        for l in 0..4 {
            acc[l] += p[l] * q[l];
        }
    }
    let tail: f64 = ar.iter().zip(xr).map(|(p, q)| p * q).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Solves `min t` s.t. `a_i·x + c_i ≤ t` (`i ∈ rows`), `x ∈ box`, by a dense bounded-variable
/// dual simplex with the bound-flipping ratio test. Columns: the inputs, then `t` (free, always
/// basic), then one slack `s_r ≥ 0` per row (`a_r·x − t + s_r = −c_r`). Every basis is dual
/// feasible once each nonbasic input sits at the box end its reduced cost points to, so the
/// method starts from the single row with the largest minimum over the box (`y = e_r`) and
/// walks the concave dual `max_{y ∈ Δ} min_box Σ y_i g_i` up, passing many breakpoints (input
/// bound flips) per pivot. With `stop_when_positive` it returns as soon as its multipliers
/// prove `t* > 0` (then `t` and `x` are those of the last iterate, not optimal). Returns `None` on an iteration limit or a numerically singular
/// basis (the caller then falls back to the MILP). `prepared`, if given, holds the per-check
/// data of [`Prepared`] computed once per instance (docs/method.md, eq. (86)).
pub(crate) fn solve_minmax(
    checks: &Checks<'_>,
    rows: &[usize],
    stop_when_positive: bool,
    prepared: Option<&Prepared>,
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
    // start: y = e_r* for the row with the largest minimum over the box
    let mins: Vec<f64> = match prepared {
        Some(p) => rows.iter().map(|&i| p.mins[i]).collect(),
        None => rows
            .iter()
            .map(|&i| linear_min(checks.coeffs[i], checks.constants[i], checks.lo, checks.hi))
            .collect(),
    };
    let rstar = (0..m).max_by(|&a, &b| mins[a].total_cmp(&mins[b]))?;
    let mut basis: Vec<usize> = (0..m).map(|r| n + 1 + r).collect();
    basis[rstar] = tcol;
    let mut at = vec![At::Lower; nv];
    for &b in &basis {
        at[b] = At::Basic;
    }
    // A tiny cost on every input (sign matching its starting box end, size ~1e-9 of the
    // coefficients, pseudo-random) breaks the dual degeneracy that rows with many zero
    // coefficients cause (the dual step would stay 0 and the method cycle). It moves the
    // optimum by about 1e-9 of the coefficients times the box widths: harmless, since what
    // is used is a witness `x` or multipliers `y`, each checked on the unperturbed checks.
    let scale = {
        let (sum, cnt) = rows
            .iter()
            .map(|&r| match prepared {
                Some(p) => p.abs_sums[r],
                None => abs_sum(checks.coeffs[r]),
            })
            .fold((0.0, 0usize), |(s, c), (a, k)| (s + a, c + k));
        if cnt == 0 { 1.0 } else { sum / cnt as f64 }
    };
    let mut cost = vec![0.0; nv];
    cost[tcol] = 1.0;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut val = vec![0.0; nv];
    for k in 0..n {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
        let eps = scale * 1e-9 * (1.0 + u);
        // reduced cost of x_k with π = −e_r*: a_{r*,k} + cost_k
        let neg = checks.coeffs[rows[rstar]][k] < 0.0;
        cost[k] = if neg { -eps } else { eps };
        if neg {
            at[k] = At::Upper;
            val[k] = checks.hi[k];
        } else {
            val[k] = checks.lo[k];
        }
    }
    let mut binv = invert(m, &basis, &entry)?;
    recompute_basics(m, n, &basis, &binv, &mut val, &entry, checks, rows);
    let mut d = vec![0.0; nv];
    let mut pi = vec![0.0; m];
    let mut alpha_row = vec![0.0; nv];
    let ptol = 1e-10;
    let max_iter = 50 * m + 500;
    for iter in 0..max_iter {
        if iter % 40 == 39 {
            binv = invert(m, &basis, &entry)?;
            recompute_basics(m, n, &basis, &binv, &mut val, &entry, checks, rows);
        }
        // leaving: the most infeasible basic variable (t is free and never leaves)
        let mut leave: Option<(usize, f64)> = None;
        for (p, &v) in basis.iter().enumerate() {
            let viol = (lo_of(v) - val[v]).max(val[v] - hi_of(v));
            if viol > ptol * (1.0 + val[v].abs()) && leave.is_none_or(|(_, w)| viol > w) {
                leave = Some((p, viol));
            }
        }
        // duals π = c_B B^{-1}
        pi.iter_mut().for_each(|x| *x = 0.0);
        for (pp, &b) in basis.iter().enumerate() {
            if cost[b] != 0.0 {
                for r in 0..m {
                    pi[r] += cost[b] * binv[pp * m + r];
                }
            }
        }
        // Every iterate is dual feasible, so its objective t is a lower bound of t*: once it
        // is clearly positive, the multipliers already prove that the rows cannot all fail
        // (the caller checks them with outward rounding), and the optimum is not needed.
        let proven_positive = stop_when_positive && val[tcol] > STOP_ABOVE && leave.is_some();
        if proven_positive {
            let y: Vec<f64> = pi.iter().map(|p| (-p).max(0.0)).collect();
            if combination_min(checks, rows, &y) > 0.0 {
                return Some(LpOptimum {
                    t: val[tcol],
                    x: val[..n].to_vec(),
                    y,
                });
            }
        }
        let Some((p, _)) = leave else {
            let y = pi.iter().map(|p| (-p).max(0.0)).collect();
            return Some(LpOptimum {
                t: val[tcol],
                x: val[..n].to_vec(),
                y,
            });
        };
        let v = basis[p];
        let below = val[v] < lo_of(v);
        let sigma = if below { 1.0 } else { -1.0 };
        // reduced costs d and row p of B^{-1} N
        let rho = &binv[p * m..(p + 1) * m];
        for k in 0..n {
            d[k] = cost[k];
            alpha_row[k] = 0.0;
        }
        // π and ρ are sparse on early iterates (the rows met so far): exact zeros add nothing
        for r in 0..m {
            let (pr, rr) = (pi[r], rho[r]);
            let a = checks.coeffs[rows[r]];
            match (pr != 0.0, rr != 0.0) {
                (true, true) => {
                    for k in 0..n {
                        d[k] -= pr * a[k];
                        alpha_row[k] += rr * a[k];
                    }
                }
                (true, false) => {
                    for k in 0..n {
                        d[k] -= pr * a[k];
                    }
                }
                (false, true) => {
                    for k in 0..n {
                        alpha_row[k] += rr * a[k];
                    }
                }
                (false, false) => {}
            }
        }
        for r in 0..m {
            d[n + 1 + r] = -pi[r];
            alpha_row[n + 1 + r] = rho[r];
        }
        // breakpoints: nonbasic j whose reduced cost d_j + σ τ α_j reaches 0 at τ_j ≥ 0
        let mut cands: Vec<(f64, usize)> = Vec::new();
        for j in 0..nv {
            if j == tcol || at[j] == At::Basic {
                continue;
            }
            let sa = sigma * alpha_row[j];
            if j < n && checks.lo[j] == checks.hi[j] {
                continue;
            }
            let tau = match at[j] {
                At::Lower if sa < -1e-12 => d[j].max(0.0) / -sa,
                At::Upper if sa > 1e-12 => (-d[j]).max(0.0) / sa,
                _ => continue,
            };
            cands.push((tau, j));
        }
        if cands.is_empty() {
            return None;
        }
        // in increasing (τ, j) order, as a stable sort by τ would give, but only as far as
        // the ratio test goes (usually few of the hundreds of breakpoints are passed)
        let mut cands = SortedPrefix::new(
            cands
                .into_iter()
                .map(|(tau, j)| Breakpoint(tau, j))
                .collect(),
        );
        // bound-flipping: pass boxed breakpoints while the dual slope stays positive
        let mut slope = (lo_of(v) - val[v]).max(val[v] - hi_of(v));
        let mut flips: Vec<usize> = Vec::new();
        let mut enter = None;
        while let Some(Breakpoint(_, j)) = cands.next_smallest() {
            let range = hi_of(j) - lo_of(j);
            let drop = alpha_row[j].abs() * range;
            if range.is_finite() && slope - drop > 0.0 {
                slope -= drop;
                flips.push(j);
            } else {
                enter = Some(j);
                break;
            }
        }
        // if every candidate is boxed and flipping all keeps the slope positive (impossible in
        // exact arithmetic: the primal is feasible), the last one enters instead of flipping
        let q = match enter {
            Some(q) => q,
            None => flips.pop()?,
        };
        // apply the flips: x_B −= B^{-1} (Σ A_j Δ_j)
        if !flips.is_empty() {
            let mut delta = vec![0.0; m];
            for &j in &flips {
                let (from, to) = if at[j] == At::Lower {
                    (lo_of(j), hi_of(j))
                } else {
                    (hi_of(j), lo_of(j))
                };
                let dj = to - from;
                for (r, dr) in delta.iter_mut().enumerate() {
                    *dr += entry(r, j) * dj;
                }
                val[j] = to;
                at[j] = if at[j] == At::Lower {
                    At::Upper
                } else {
                    At::Lower
                };
            }
            for pp in 0..m {
                let s: f64 = (0..m).map(|r| binv[pp * m + r] * delta[r]).sum();
                val[basis[pp]] -= s;
            }
        }
        // pivot q in, v out to its violated bound
        let col: Vec<f64> = (0..m).map(|r| entry(r, q)).collect();
        let alpha: Vec<f64> = (0..m)
            .map(|pp| (0..m).map(|r| binv[pp * m + r] * col[r]).sum())
            .collect();
        let ap = alpha[p];
        if ap.abs() < 1e-12 {
            return None;
        }
        let target = if below { lo_of(v) } else { hi_of(v) };
        let step = (val[v] - target) / ap;
        for pp in 0..m {
            val[basis[pp]] -= step * alpha[pp];
        }
        val[q] += step;
        val[v] = target;
        at[v] = if below { At::Lower } else { At::Upper };
        basis[p] = q;
        at[q] = At::Basic;
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
    None
}

/// A breakpoint `(τ_j, j)` of the bound-flipping ratio test, ordered by `τ` (total order) and
/// then by `j`.
#[derive(Debug, Clone, Copy)]
struct Breakpoint(f64, usize);

impl PartialEq for Breakpoint {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Breakpoint {}

impl PartialOrd for Breakpoint {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Breakpoint {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The items of a vector in increasing order, sorted lazily in growing batches (select the
/// batch, then sort it), so that reading the first few costs `O(n)`, not a full sort.
struct SortedPrefix {
    items: Vec<Breakpoint>,
    /// Items handed out so far.
    done: usize,
    /// `items[..sorted]` is sorted and holds the smallest `sorted` items.
    sorted: usize,
    /// Size of the next batch.
    batch: usize,
}

impl SortedPrefix {
    fn new(items: Vec<Breakpoint>) -> Self {
        Self {
            items,
            done: 0,
            sorted: 0,
            batch: 32,
        }
    }

    fn next_smallest(&mut self) -> Option<Breakpoint> {
        if self.done == self.items.len() {
            return None;
        }
        if self.done == self.sorted {
            let rest = &mut self.items[self.sorted..];
            let k = self.batch.min(rest.len());
            if k < rest.len() {
                rest.select_nth_unstable(k - 1);
            }
            rest[..k].sort_unstable();
            self.sorted += k;
            self.batch *= 2;
        }
        self.done += 1;
        Some(self.items[self.done - 1])
    }
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
    let mut basic = vec![false; n + 1 + m];
    for &b in basis {
        basic[b] = true;
    }
    let is_basic = |j: usize| basic[j];
    let mut rhs: Vec<f64> = rows.iter().map(|&i| -checks.constants[i]).collect();
    // the nonbasic inputs' values (basic ones as 0), one dot product per row
    let xn: Vec<f64> = (0..n)
        .map(|k| if is_basic(k) { 0.0 } else { val[k] })
        .collect();
    for (r, rv) in rhs.iter_mut().enumerate() {
        *rv -= dot(checks.coeffs[rows[r]], &xn);
        for j in n..n + 1 + m {
            if !is_basic(j) {
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
