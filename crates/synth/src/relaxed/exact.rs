//! The exact decision of the relaxed count (docs/method.md, eqs. (37a)–(37c)): can at least `K` of
//! `m` checks fail at one input of the box? A failing set must be pairwise compatible, so
//! first every pair is tested by exact 1-D duality ([`super::minmax::pair_multiplier`]) and
//! the largest clique of the compatibility graph bounds the count; then a branch and bound
//! over the checks left out (at most `m − K` of them) asks the min-max LP
//! ([`super::minmax::solve_minmax`]) of each candidate set: feasible gives a witness input
//! ("yes"), infeasible gives Farkas multipliers whose support is a *conflict* (a set that
//! cannot fail together, proven by the outward-rounded [`super::minmax::combination_min`]),
//! and every candidate must leave out one member of every known conflict. "No" is returned
//! only when every branch is closed by proven conflicts or by the clique bound.

use std::time::Instant;

use certquant_bounds::arith::linear_max;

use super::minmax::{Checks, Prepared, combination_min, pair_multiplier, solve_minmax};

/// A check counts as failing at a witness input when `g(x) ≤` this (plain floating point).
/// Only "yes" answers use it, and "yes" is the pessimistic answer (the layer's `F` is
/// rejected), as the MILP's own feasibility tolerance (`10^{-7}` for CBC) was.
pub(crate) const WITNESS_TOL: f64 = 1e-9;

/// The answer of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// At least `K` checks fail at the input: `count` of them (all `m` checks counted there).
    AtLeast {
        /// How many checks fail at `x`.
        count: usize,
        /// The witness input.
        x: Vec<f64>,
    },
    /// Proven: no input makes `K` or more checks fail.
    Below,
    /// Not decided (deadline, or the LP could not settle a set either way).
    Undecided,
}

/// What the search did (for logs and tests).
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    /// Pairs proven unable to fail together.
    pub incompatible_pairs: usize,
    /// The largest clique of the compatibility graph, if computed.
    pub max_clique: Option<usize>,
    /// Min-max LPs solved.
    pub lps: usize,
    /// Branch-and-bound nodes.
    pub nodes: usize,
    /// Conflicts known at the end (pairs included).
    pub conflicts: usize,
    /// Of `lps`, those spent shrinking conflicts.
    pub shrink_lps: usize,
    /// Seconds spent in min-max LPs.
    pub lp_seconds: f64,
}

/// How many of the checks fail at `x` (`g ≤ WITNESS_TOL`).
pub(crate) fn count_at(checks: &Checks<'_>, x: &[f64]) -> usize {
    (0..checks.coeffs.len())
        .filter(|&i| checks.value(i, x) <= WITNESS_TOL)
        .count()
}

/// Decides whether at least `k` of the checks can fail (`g ≤ 0`) at one input of the box,
/// giving up at `deadline` (docs/method.md, eqs. (37a)–(37c)). Checks that fail on the whole box
/// (outward-rounded maximum `≤ 0`, e.g. a constant check) count at every input, so they only
/// lower `k` for the others and never enter an LP (where such a row makes the LP degenerate).
pub(crate) fn decide(checks: &Checks<'_>, k: usize, deadline: Instant) -> (Decision, Stats) {
    decide_groups(checks, &vec![0; checks.coeffs.len()], &[k], deadline)
}

/// The grouped question of docs/method.md, eq. (70): check `i` belongs to group `group[i]`;
/// is there one input of the box at which, for every group `g`, at least `need[g]` of its
/// checks fail? With one group this is [`decide`]. The search is the same branch and bound:
/// a failing set is a clique of the compatibility graph, every proven conflict must lose a
/// member, and group `g` may lose at most `m_g − need[g]` members. `AtLeast`'s count is over
/// all checks.
pub(crate) fn decide_groups(
    checks: &Checks<'_>,
    group: &[usize],
    need: &[usize],
    deadline: Instant,
) -> (Decision, Stats) {
    let (fail_all, rest): (Vec<usize>, Vec<usize>) = (0..checks.coeffs.len()).partition(|&i| {
        linear_max(checks.coeffs[i], checks.constants[i], checks.lo, checks.hi) <= 0.0
    });
    if fail_all.is_empty() {
        return decide_rest(checks, group, need, deadline);
    }
    let mut need = need.to_vec();
    for &i in &fail_all {
        need[group[i]] = need[group[i]].saturating_sub(1);
    }
    let sub = Checks {
        coeffs: rest.iter().map(|&i| checks.coeffs[i]).collect(),
        constants: rest.iter().map(|&i| checks.constants[i]).collect(),
        lo: checks.lo,
        hi: checks.hi,
    };
    let sub_group: Vec<usize> = rest.iter().map(|&i| group[i]).collect();
    let (d, stats) = decide_rest(&sub, &sub_group, &need, deadline);
    let d = match d {
        Decision::AtLeast { x, .. } => Decision::AtLeast {
            count: count_at(checks, &x),
            x,
        },
        other => other,
    };
    (d, stats)
}

/// Per group, how many of its checks fail at `x` (`g ≤ WITNESS_TOL`).
pub(crate) fn group_counts(
    checks: &Checks<'_>,
    group: &[usize],
    groups: usize,
    x: &[f64],
) -> Vec<usize> {
    let mut counts = vec![0; groups];
    for (i, &g) in group.iter().enumerate() {
        if checks.value(i, x) <= WITNESS_TOL {
            counts[g] += 1;
        }
    }
    counts
}

/// [`decide_groups`] once no check fails on the whole box.
fn decide_rest(
    checks: &Checks<'_>,
    group: &[usize],
    need: &[usize],
    deadline: Instant,
) -> (Decision, Stats) {
    let m = checks.coeffs.len();
    let groups = need.len();
    let mut stats = Stats::default();
    if need.iter().all(|&k| k == 0) {
        let x = checks.lo.to_vec();
        return (
            Decision::AtLeast {
                count: count_at(checks, &x),
                x,
            },
            stats,
        );
    }
    let members: Vec<Vec<usize>> = (0..groups)
        .map(|g| (0..m).filter(|&i| group[i] == g).collect())
        .collect();
    if members.iter().zip(need).any(|(mem, &k)| mem.len() < k) {
        return (Decision::Below, stats);
    }
    let total: usize = need.iter().sum();
    // 1. pairwise compatibility by exact 1-D duality
    let mut compat = vec![vec![true; m]; m];
    let mut conflicts: Vec<Vec<usize>> = Vec::new();
    for i in 0..m {
        if Instant::now() > deadline {
            return (Decision::Undecided, stats);
        }
        for j in i + 1..m {
            let lam = pair_multiplier(checks, i, j);
            if combination_min(checks, &[i, j], &[lam, 1.0 - lam]) > 0.0 {
                compat[i][j] = false;
                compat[j][i] = false;
                conflicts.push(vec![i, j]);
            }
        }
    }
    stats.incompatible_pairs = conflicts.len();
    // 2. the failing set is a clique of the compatibility graph, with `need[g]` members of
    //    every group g
    let all: Vec<usize> = (0..m).collect();
    if coloring_bound(&compat, &all) < total
        || members
            .iter()
            .zip(need)
            .any(|(mem, &k)| k > 0 && coloring_bound(&compat, mem) < k)
    {
        stats.max_clique = None;
        return (Decision::Below, stats);
    }
    if let Some(w) = max_clique(&compat, 200_000) {
        stats.max_clique = Some(w);
        if w < total {
            return (Decision::Below, stats);
        }
    }
    // 3. branch and bound over the left-out checks
    let mut bb = Search {
        checks,
        compat: &compat,
        group,
        need,
        drops: members
            .iter()
            .zip(need)
            .map(|(mem, &k)| mem.len() - k)
            .collect(),
        conflicts: Vec::new(),
        conflict_bits: Vec::new(),
        words: m.div_ceil(64),
        deadline,
        stats,
        witnessed: Vec::new(),
        prepared: Prepared::new(checks),
    };
    for c in conflicts {
        bb.push_conflict(c);
    }
    let mut dropped = vec![false; m];
    let mut forced = vec![false; m];
    let mut ndropped = vec![0; groups];
    let d = bb.node(&mut dropped, &mut forced, &mut ndropped);
    bb.stats.conflicts = bb.conflicts.len();
    (d, bb.stats)
}

/// The branch and bound of eq. (37c) (grouped: eq. (70)): its checks, the compatibility graph,
/// each check's group, the count each group needs, how many checks of each group may be left
/// out, and the conflicts proven so far.
struct Search<'a, 'b> {
    checks: &'a Checks<'b>,
    compat: &'a [Vec<bool>],
    group: &'a [usize],
    need: &'a [usize],
    drops: Vec<usize>,
    conflicts: Vec<Vec<usize>>,
    /// The conflicts as bit sets, `words` words each, in the order of `conflicts`.
    conflict_bits: Vec<u64>,
    /// Words per bit set (`⌈m / 64⌉`).
    words: usize,
    deadline: Instant,
    stats: Stats,
    /// Sets of checks seen failing together at one input (at LP iterates), as bit sets: every
    /// subset of one can fail together.
    witnessed: Vec<Vec<u64>>,
    /// Per-check data shared by all LPs.
    prepared: Prepared,
}

impl Search<'_, '_> {
    /// Explores the candidates that leave out `dropped` (and maybe more) but keep `forced`;
    /// `ndropped[g]` checks of group `g` are left out so far.
    /// `Below` here means: no such candidate can fail together.
    fn node(
        &mut self,
        dropped: &mut [bool],
        forced: &mut [bool],
        ndropped: &mut [usize],
    ) -> Decision {
        self.stats.nodes += 1;
        let m = dropped.len();
        let groups = self.need.len();
        loop {
            if Instant::now() > self.deadline {
                return Decision::Undecided;
            }
            let left: usize = (0..groups).map(|g| self.drops[g] - ndropped[g]).sum();
            // a member may still be left out if it is not forced and its group has drops left
            let free_to_drop =
                |e: usize| !forced[e] && ndropped[self.group[e]] < self.drops[self.group[e]];
            // the unhit conflict with the fewest members still free to leave out (bit sets:
            // thousands of conflicts are scanned at every node)
            let words = self.words;
            let mut dropped_bits = vec![0u64; words];
            let mut free_bits = vec![0u64; words];
            let mut forced_bits = vec![0u64; words];
            for e in 0..m {
                if dropped[e] {
                    dropped_bits[e / 64] |= 1 << (e % 64);
                }
                if free_to_drop(e) {
                    free_bits[e / 64] |= 1 << (e % 64);
                }
                if forced[e] {
                    forced_bits[e / 64] |= 1 << (e % 64);
                }
            }
            let mut pick: Option<(usize, usize)> = None;
            let mut open: Vec<(usize, usize)> = Vec::new();
            for (ci, c) in self.conflict_bits.chunks_exact(words).enumerate() {
                if c.iter().zip(&dropped_bits).any(|(a, b)| a & b != 0) {
                    continue;
                }
                let free: usize = c
                    .iter()
                    .zip(&free_bits)
                    .map(|(a, b)| (a & b).count_ones() as usize)
                    .sum();
                if free == 0 {
                    return Decision::Below;
                }
                open.push((free, ci));
                if pick.is_none_or(|(f, _)| free < f) {
                    pick = Some((free, ci));
                }
            }
            if let Some((_, ci)) = pick {
                if left == 0 {
                    return Decision::Below;
                }
                // packing bound: disjoint open conflicts each need a drop of their own
                open.sort_unstable();
                let mut used = vec![0u64; words];
                let mut packed = 0;
                for &(_, cj) in &open {
                    let c = &self.conflict_bits[cj * words..(cj + 1) * words];
                    if c.iter()
                        .zip(&used)
                        .zip(&forced_bits)
                        .all(|((a, u), f)| a & u & !f == 0)
                    {
                        for (u, a) in used.iter_mut().zip(c) {
                            *u |= a;
                        }
                        packed += 1;
                    }
                }
                if packed > left {
                    return Decision::Below;
                }
                let kept: Vec<usize> = (0..m).filter(|&i| !dropped[i]).collect();
                let total: usize = self.need.iter().sum();
                if coloring_bound(self.compat, &kept) < total {
                    return Decision::Below;
                }
                if groups > 1 {
                    for g in 0..groups {
                        let kept_g: Vec<usize> = kept
                            .iter()
                            .copied()
                            .filter(|&i| self.group[i] == g)
                            .collect();
                        if self.need[g] > 0 && coloring_bound(self.compat, &kept_g) < self.need[g] {
                            return Decision::Below;
                        }
                    }
                }
                let branch: Vec<usize> = self.conflicts[ci]
                    .iter()
                    .copied()
                    .filter(|&e| free_to_drop(e))
                    .collect();
                let mut newly_forced = Vec::new();
                let mut result = Decision::Below;
                for e in branch {
                    dropped[e] = true;
                    ndropped[self.group[e]] += 1;
                    let r = self.node(dropped, forced, ndropped);
                    ndropped[self.group[e]] -= 1;
                    dropped[e] = false;
                    match r {
                        Decision::Below => {}
                        other => {
                            result = other;
                            break;
                        }
                    }
                    forced[e] = true;
                    newly_forced.push(e);
                }
                for e in newly_forced {
                    forced[e] = false;
                }
                return result;
            }
            // every known conflict is left out: ask the LP about the kept set
            let rows: Vec<usize> = (0..m).filter(|&i| !dropped[i]).collect();
            self.stats.lps += 1;
            let t0 = Instant::now();
            let opt = solve_minmax(self.checks, &rows, true, Some(&self.prepared));
            self.stats.lp_seconds += t0.elapsed().as_secs_f64();
            let Some(opt) = opt else {
                return Decision::Undecided;
            };
            // one pass over the checks' values at the LP's point
            let values: Vec<f64> = (0..m).map(|i| self.checks.value(i, &opt.x)).collect();
            self.witnessed.push(failing_bits(&values));
            let mut counts = vec![0; groups];
            for (i, v) in values.iter().enumerate() {
                if *v <= WITNESS_TOL {
                    counts[self.group[i]] += 1;
                }
            }
            if counts.iter().zip(self.need).all(|(c, k)| c >= k) {
                return Decision::AtLeast {
                    count: counts.iter().sum(),
                    x: opt.x,
                };
            }
            if combination_min(self.checks, &rows, &opt.y) > 0.0 {
                let conflict: Vec<usize> = rows
                    .iter()
                    .zip(&opt.y)
                    .filter(|(_, y)| **y > 0.0)
                    .map(|(&i, _)| i)
                    .collect();
                let conflict = self.shrink(conflict);
                self.push_conflict(conflict);
                continue;
            }
            tracing::debug!(t = opt.t, ?counts, "relaxed count: LP undecided");
            return Decision::Undecided;
        }
    }
}

impl Search<'_, '_> {
    /// Records a proven conflict (list and bit set).
    fn push_conflict(&mut self, conflict: Vec<usize>) {
        let start = self.conflict_bits.len();
        self.conflict_bits.resize(start + self.words, 0);
        for &e in &conflict {
            self.conflict_bits[start + e / 64] |= 1 << (e % 64);
        }
        self.conflicts.push(conflict);
    }

    /// Shrinks a proven conflict towards an irreducible one (a deletion filter): a member is
    /// left out whenever the rest is still proven unable to fail together. Smaller conflicts
    /// prune many more candidates.
    fn shrink(&mut self, mut conflict: Vec<usize>) -> Vec<usize> {
        // members shown necessary stay necessary in every smaller conflict: if `C \ {e}`
        // can fail together, so can every subset of it
        let mut necessary: Vec<usize> = Vec::new();
        if conflict.len() <= SHRINK_ABOVE {
            return conflict;
        }
        while conflict.len() > 2 {
            let Some(&e) = conflict.iter().find(|e| !necessary.contains(e)) else {
                break;
            };
            if Instant::now() > self.deadline {
                break;
            }
            let rest: Vec<usize> = conflict.iter().copied().filter(|&f| f != e).collect();
            // a known compatible pair, or an input seen where all of `rest` fail, shows
            // `rest` can fail together without an LP (a wrong "can" only leaves the conflict
            // larger than needed, never wrong)
            if (rest.len() == 2 && self.compat[rest[0]][rest[1]])
                || self
                    .witnessed
                    .iter()
                    .any(|w| rest.iter().all(|&i| w[i / 64] >> (i % 64) & 1 == 1))
            {
                necessary.push(e);
                continue;
            }
            self.stats.lps += 1;
            self.stats.shrink_lps += 1;
            let t0 = Instant::now();
            let opt = solve_minmax(self.checks, &rest, true, Some(&self.prepared));
            self.stats.lp_seconds += t0.elapsed().as_secs_f64();
            match opt {
                Some(opt) if combination_min(self.checks, &rest, &opt.y) > 0.0 => {
                    // keep only the support of the new certificate
                    conflict = rest
                        .iter()
                        .zip(&opt.y)
                        .filter(|(_, y)| **y > 0.0)
                        .map(|(&f, _)| f)
                        .collect();
                }
                Some(opt) => {
                    self.witnessed.push(failing_set(self.checks, &opt.x));
                    necessary.push(e);
                }
                None => necessary.push(e),
            }
        }
        conflict
    }
}

/// Proven conflicts with more members than this are shrunk by [`Search::shrink`] (one LP per
/// member); smaller ones are kept as the LP's certificate gives them. Measured on the MP1
/// fixture (`tests/fixtures/relaxed_count_mp1_8620_layer0.json`): the certificates of the
/// early-stopped LPs are almost always irreducible already (4,571 conflicts, 5,344 shrink LPs
/// removing a member from 7 of them), so shrinking every conflict doubled the LPs for nothing.
const SHRINK_ABOVE: usize = 8;

/// The checks failing at `x` (`g ≤ WITNESS_TOL`), as a bit set.
fn failing_set(checks: &Checks<'_>, x: &[f64]) -> Vec<u64> {
    let values: Vec<f64> = (0..checks.coeffs.len())
        .map(|i| checks.value(i, x))
        .collect();
    failing_bits(&values)
}

/// The checks whose value is `≤ WITNESS_TOL`, as a bit set.
fn failing_bits(values: &[f64]) -> Vec<u64> {
    let mut set = vec![0u64; values.len().div_ceil(64)];
    for (i, v) in values.iter().enumerate() {
        if *v <= WITNESS_TOL {
            set[i / 64] |= 1 << (i % 64);
        }
    }
    set
}

/// An upper bound on the largest clique among `verts`: the number of colours of a greedy
/// colouring (largest degree first).
fn coloring_bound(adj: &[Vec<bool>], verts: &[usize]) -> usize {
    // neighbours within `verts` as bit sets over local indices: a colour class admits a
    // vertex iff their intersection is empty (one word operation per 64 vertices)
    let k = verts.len();
    let words = k.div_ceil(64);
    let mut nb = vec![0u64; k * words];
    for (i, &v) in verts.iter().enumerate() {
        for (j, &u) in verts.iter().enumerate() {
            if u != v && adj[v][u] {
                nb[i * words + j / 64] |= 1 << (j % 64);
            }
        }
    }
    let deg: Vec<u32> = nb
        .chunks_exact(words.max(1))
        .take(k)
        .map(|w| w.iter().map(|x| x.count_ones()).sum())
        .collect();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(deg[i]));
    let mut classes: Vec<Vec<u64>> = Vec::new();
    for &i in &order {
        let row = &nb[i * words..(i + 1) * words];
        let c = match classes
            .iter()
            .position(|cl| cl.iter().zip(row).all(|(a, b)| a & b == 0))
        {
            Some(c) => c,
            None => {
                classes.push(vec![0u64; words]);
                classes.len() - 1
            }
        };
        classes[c][i / 64] |= 1 << (i % 64);
    }
    classes.len()
}

/// The size of a largest clique (Bron–Kerbosch with pivoting), or `None` after `budget`
/// recursive calls.
fn max_clique(adj: &[Vec<bool>], budget: usize) -> Option<usize> {
    fn bk(
        adj: &[Vec<bool>],
        r: usize,
        p: Vec<usize>,
        x: Vec<usize>,
        best: &mut usize,
        calls: &mut usize,
    ) -> bool {
        *calls = calls.saturating_sub(1);
        if *calls == 0 {
            return false;
        }
        if p.is_empty() {
            *best = (*best).max(r);
            return true;
        }
        if r + p.len() <= *best {
            return true;
        }
        let pivot = p
            .iter()
            .chain(&x)
            .copied()
            .max_by_key(|&u| p.iter().filter(|&&v| v != u && adj[u][v]).count())
            .expect("p is not empty");
        let cand: Vec<usize> = p
            .iter()
            .copied()
            .filter(|&v| v == pivot || !adj[pivot][v])
            .collect();
        let (mut p, mut x) = (p, x);
        for v in cand {
            let np = p.iter().copied().filter(|&u| u != v && adj[v][u]).collect();
            let nx = x.iter().copied().filter(|&u| u != v && adj[v][u]).collect();
            if !bk(adj, r + 1, np, nx, best, calls) {
                return false;
            }
            p.retain(|&u| u != v);
            x.push(v);
        }
        true
    }
    let mut best = 0;
    let mut calls = budget;
    bk(
        adj,
        0,
        (0..adj.len()).collect(),
        Vec::new(),
        &mut best,
        &mut calls,
    )
    .then_some(best)
}
