//! A property-set search polynomial in depth (issue 16; docs/method.md, eq. (63)).
//!
//! The exact search ([`crate::search`]) enumerates the lattice of fractional widths in memory
//! order; with `d` layers and 16 widths per layer that is up to `16^d` candidates, hopeless at
//! seven layers. This walk starts at a passing point and only ever moves to passing points:
//!
//! 1. **Start** at `F_i = B_u` on every layer; if that fails (a property or the floor), there
//!    is no answer.
//! 2. **Bisection** per layer, largest layer (most parameters) first: the smallest `F_i` that
//!    still passes with the other layers fixed, assuming monotonicity in `F_i` (where it does
//!    not hold the result is still a passing point, only perhaps not the layer's minimum).
//! 3. **Coordinate descent**: lower any layer by one bit while that passes, until none can.
//! 4. **Bit moves**: lower one layer by 1–2 bits and raise another by 1–2 where that saves
//!    memory; the cheapest passing move is taken (tested in parallel batches), then 3 again.
//!
//! Every tested point is remembered, so a round that changes nothing costs no tests. The
//! candidate test is the exact search's ([`crate::search`]): accuracy floor first, then
//! DeepPoly proofs hardest first. The result proves every property and keeps the floor; it is
//! a local optimum of these moves, not necessarily the global one (BENCHMARKS.md compares).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::search::{Chosen, Evaluator, Passing, SearchError, SearchOptions};

/// The descent walk (see the module documentation). Returns the chosen candidate (with its
/// exact accuracy) and the number of candidates tested.
pub(crate) fn descent(
    ev: &Evaluator<'_>,
    opts: &SearchOptions,
) -> Result<(Option<Chosen>, usize), SearchError> {
    let net = ev.net();
    let d = net.depth();
    let (lo, hi) = (opts.min_frac, opts.max_frac);
    let params: Vec<u64> = net.params_per_layer().iter().map(|&p| p as u64).collect();
    let memory = |fr: &[u32]| -> u64 { fr.iter().zip(&params).map(|(&f, &p)| f as u64 * p).sum() };
    let mut walk = Walk {
        ev,
        seen: HashMap::new(),
        tested: 0,
        limit: opts.max_candidates,
    };
    let mut cur = vec![hi; d];
    let Some(mut best) = walk.test(&cur)? else {
        return Ok((None, walk.tested));
    };
    // layers without parameters cost no memory at any width: no candidate is spent on them
    let order: Vec<usize> = largest_first(&params)
        .into_iter()
        .filter(|&i| params[i] > 0)
        .collect();
    // 2. bisection per layer
    bisect_layers(&mut walk, &order, lo, &mut cur, &mut best)?;
    loop {
        // 3. coordinate descent
        lower_while_passing(&mut walk, &order, lo, &mut cur, &mut best)?;
        // 4. bit moves: cheapest first, in parallel batches; the first batch with a passing
        // move gives the cheapest passing one of that batch
        let mut moves: Vec<(u64, Vec<u32>)> = Vec::new();
        for i in 0..d {
            for down in 1..=2 {
                if cur[i] < lo + down {
                    continue;
                }
                for j in (0..d).filter(|&j| j != i) {
                    for up in 1..=2 {
                        if cur[j] + up > hi {
                            continue;
                        }
                        let mut c = cur.clone();
                        c[i] -= down;
                        c[j] += up;
                        let m = memory(&c);
                        if m < memory(&cur) && !walk.seen.contains_key(&c) {
                            moves.push((m, c));
                        }
                    }
                }
            }
        }
        moves.sort();
        let mut moved = false;
        for batch in moves.chunks(opts.batch.max(1)) {
            if walk.exhausted() {
                break;
            }
            let found = walk.test_batch(batch.iter().map(|(_, c)| c.clone()).collect())?;
            if let Some((c, p)) = found {
                cur = c;
                best = p;
                moved = true;
                break;
            }
        }
        if !moved || walk.exhausted() {
            break;
        }
    }
    let acc = ev.accuracy(&best.1);
    Ok((Some((best.0, best.1, best.2, acc)), walk.tested))
}

/// A test of fractional widths for the per-layer moves ([`bisect_layers`],
/// [`lower_while_passing`]), shared by this search and `synth vnnlib`'s: `Some` iff the point
/// passes; `stop` ends the moves (a budget).
pub trait FracOracle {
    /// What a passing point yields.
    type Pass;
    /// Why a test could not be made.
    type Error;
    /// Tests one point.
    fn test(&mut self, fracs: &[u32]) -> Result<Option<Self::Pass>, Self::Error>;
    /// Whether the budget is spent.
    fn stop(&self) -> bool;
}

/// Layer indices by parameter count, largest first (ties: input side first): the order in
/// which the moves visit the layers (the largest saves the most memory per bit).
pub fn largest_first(params: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..params.len()).collect();
    order.sort_by(|&a, &b| params[b].cmp(&params[a]).then(a.cmp(&b)));
    order
}

/// Step 2 of the module documentation: per layer in `order`, bisection for the smallest
/// `F_i ≥ lo` that passes with the other layers fixed. `cur` passes on entry (its pass in
/// `best`) and on exit.
pub fn bisect_layers<O: FracOracle>(
    o: &mut O,
    order: &[usize],
    lo: u32,
    cur: &mut [u32],
    best: &mut O::Pass,
) -> Result<(), O::Error> {
    for &i in order {
        let (mut a, mut b) = (lo, cur[i]);
        while a < b && !o.stop() {
            let mid = a + (b - a) / 2;
            let mut c = cur.to_vec();
            c[i] = mid;
            match o.test(&c)? {
                Some(p) => {
                    b = mid;
                    *best = p;
                }
                None => a = mid + 1,
            }
        }
        cur[i] = b;
    }
    Ok(())
}

/// Step 3 of the module documentation: lower any layer by one bit while that passes, until
/// none can. `cur` passes on entry (its pass in `best`) and on exit.
pub fn lower_while_passing<O: FracOracle>(
    o: &mut O,
    order: &[usize],
    lo: u32,
    cur: &mut [u32],
    best: &mut O::Pass,
) -> Result<(), O::Error> {
    let mut changed = true;
    while changed && !o.stop() {
        changed = false;
        for &i in order {
            while cur[i] > lo && !o.stop() {
                let mut c = cur.to_vec();
                c[i] -= 1;
                match o.test(&c)? {
                    Some(p) => {
                        cur.copy_from_slice(&c);
                        *best = p;
                        changed = true;
                    }
                    None => break,
                }
            }
        }
    }
    Ok(())
}

impl FracOracle for Walk<'_, '_> {
    type Pass = Passing;
    type Error = SearchError;

    fn test(&mut self, fracs: &[u32]) -> Result<Option<Passing>, SearchError> {
        Walk::test(self, fracs)
    }

    fn stop(&self) -> bool {
        self.exhausted()
    }
}

/// The walk's memory of tested points.
struct Walk<'e, 'a> {
    ev: &'e Evaluator<'a>,
    /// Tested points and whether they passed.
    seen: HashMap<Vec<u32>, bool>,
    tested: usize,
    limit: usize,
}

impl Walk<'_, '_> {
    /// The candidate budget is spent or the deadline passed (the walk's `best` stays the
    /// last proven point: "best so far").
    fn exhausted(&self) -> bool {
        self.tested >= self.limit || self.ev.late()
    }

    /// Tests one point (proofs shared among the threads); a point seen before that failed is
    /// not tested again. Points seen before that passed are tested again only to rebuild
    /// their QNN (the walk never returns to one: it only moves to cheaper points).
    fn test(&mut self, fr: &[u32]) -> Result<Option<Passing>, SearchError> {
        if self.seen.get(fr) == Some(&false) {
            return Ok(None);
        }
        self.tested += 1;
        let r = self.ev.test(fr, true)?;
        self.seen.insert(fr.to_vec(), r.is_some());
        Ok(r)
    }

    /// Tests several points at once (one per thread, proofs sequential); the first passing
    /// one in the given order.
    fn test_batch(
        &mut self,
        pts: Vec<Vec<u32>>,
    ) -> Result<Option<(Vec<u32>, Passing)>, SearchError> {
        let pts: Vec<Vec<u32>> = pts
            .into_iter()
            .filter(|p| !self.seen.contains_key(p))
            .collect();
        self.tested += pts.len();
        let results: Vec<Result<Option<Passing>, SearchError>> =
            pts.par_iter().map(|p| self.ev.test(p, false)).collect();
        let mut first = None;
        for (p, r) in pts.into_iter().zip(results) {
            let r = r?;
            self.seen.insert(p.clone(), r.is_some());
            if first.is_none()
                && let Some(pass) = r
            {
                first = Some((p, pass));
            }
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use crate::search::{PropertyStatus, SearchMethod, SearchOptions, search};
    use certquant_bounds::DeepPoly;
    use certquant_core::model::{Affine, Network};
    use certquant_core::spec::{InputBox, OutputSpec, Property};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn net(seed: u64, dims: &[usize]) -> Network {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, d)| {
                let w = (0..d[0] * d[1])
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let b = (0..d[1]).map(|_| rng.random_range(-0.2..0.2)).collect();
                Affine::new(i, d[1], d[0], w, b).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    fn props(n: &Network, seed: u64, k: usize) -> Vec<Property> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        while out.len() < k {
            let c: Vec<f64> = (0..n.input_dim())
                .map(|_| rng.random_range(0.0..1.0))
                .collect();
            let label = n.predict(&c);
            let p = Property {
                input: InputBox::linf_ball(&c, 0.01).unwrap(),
                output: OutputSpec::Robust { label },
            };
            if DeepPoly::run(n, &p.input)
                .unwrap()
                .prove_output(p.output)
                .unwrap()
                .0
            {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn descent_passes_and_is_never_better_than_exact() {
        for seed in 0..4 {
            let n = net(seed, &[4, 6, 5, 3]);
            let ps = props(&n, seed + 100, 3);
            let base = SearchOptions {
                max_frac: 8,
                ..SearchOptions::default()
            };
            let exact = search(&n, &ps, None, &base).unwrap();
            let descent = search(
                &n,
                &ps,
                None,
                &SearchOptions {
                    method: SearchMethod::Descent,
                    ..base.clone()
                },
            )
            .unwrap();
            let (se, sd) = (exact.strategy.unwrap(), descent.strategy.unwrap());
            // descent's answer passes: re-prove every property on its QNN
            let q = descent.qnn.unwrap();
            assert_eq!(q, sd.apply(&n).unwrap());
            for p in &ps {
                assert!(
                    DeepPoly::run(&q, &p.input)
                        .unwrap()
                        .prove_output(p.output)
                        .unwrap()
                        .0
                );
            }
            assert!(se.memory_bits(&n) <= sd.memory_bits(&n), "exact is optimal");
        }
    }

    /// Eq. (82): past the deadline neither search answers with an unproven point. Expired
    /// at the start: no strategy and `timed_out`; a tiny deadline: whatever comes back (the
    /// best so far, or nothing) proves every property on its QNN.
    #[test]
    fn a_deadline_gives_the_best_proven_point_or_nothing() {
        use crate::deadline::Deadline;
        use std::time::{Duration, Instant};
        let n = net(5, &[4, 12, 10, 8, 3]);
        let ps = props(&n, 105, 4);
        for method in [SearchMethod::Exact, SearchMethod::Descent] {
            let base = SearchOptions {
                max_frac: 10,
                method,
                ..SearchOptions::default()
            };
            let expired = SearchOptions {
                deadline: Deadline::at(Instant::now()),
                ..base.clone()
            };
            let o = search(&n, &ps, None, &expired).unwrap();
            assert!(o.timed_out && o.strategy.is_none() && o.qnn.is_none());
            assert!(o.status.iter().all(|s| *s != PropertyStatus::Certified));
            for micros in [1, 50, 200, 1000, 5000] {
                let tiny = SearchOptions {
                    deadline: Deadline::after(Duration::from_micros(micros)),
                    ..base.clone()
                };
                let o = search(&n, &ps, None, &tiny).unwrap();
                if let (Some(s), Some(q)) = (&o.strategy, &o.qnn) {
                    assert_eq!(*q, s.apply(&n).unwrap());
                    for p in &ps {
                        let dp = DeepPoly::run(q, &p.input).unwrap();
                        assert!(
                            dp.prove_output(p.output).unwrap().0,
                            "{method:?} {micros} µs"
                        );
                    }
                } else {
                    assert!(o.timed_out, "no strategy only on a timeout");
                }
            }
            let full = search(&n, &ps, None, &base).unwrap();
            assert!(!full.timed_out && full.strategy.is_some());
        }
    }
}
