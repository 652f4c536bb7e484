//! The CBC time-limit path that time-limited preimages rely on: when CBC stops on its
//! wall-clock limit, certquant uses the solver's *proven* bound (`Status::TimeLimit`,
//! `Solution::best_bound`) in place of the optimum, so that bound must lie on the safe side of
//! the true optimum, in both optimisation senses.
//!
//! The hard instance is a market-split problem (Cornuéjols and Dawande, 1999): `m` equality
//! rows `Σ_j a_ij x_j = d_i` over `n = 10 (m − 1)` binaries with `a_ij` uniform in `0..100`.
//! Branch and bound cannot solve these at this size: the LP relaxation stays feasible deep
//! into the tree and cuts do not help. Here the right-hand sides come from a planted binary
//! point `x*`, and the rows get slack variables `s⁺, s⁻ ≥ 0` whose sum is the objective, so
//! the true optimum is *known by construction*: `x*` with zero slack attains the least
//! possible slack sum, 0. A fixed variable adds a constant offset (of opposite sign in the two
//! senses) so that a bound reported with the wrong sign cannot pass by being 0.

use std::time::{Duration, Instant};

use certquant_milp::cbc::Cbc;
use certquant_milp::{Backend, Problem, Sense, Solution, SolveOptions, Status, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows of the market-split instance (`n = 10 (m − 1)` binaries).
const ROWS: usize = 6;
/// Time limit of the hard solves, seconds.
const LIMIT: f64 = 0.5;
/// Slack on the wall time: CBC checks its clock between nodes and cut rounds, and the
/// machine may be shared.
const WALL_SLACK: Duration = Duration::from_secs(5);
/// Magnitude of the constant objective offset.
const OFFSET: f64 = 1000.0;
/// Feasibility tolerance for the incumbent (all data are small integers).
const TOL: f64 = 1e-6;

/// A market-split instance with a planted solution and its MILP.
struct MarketSplit {
    /// Row coefficients `a_ij`.
    a: Vec<Vec<f64>>,
    /// Right-hand sides `d_i = Σ_j a_ij x*_j`.
    d: Vec<f64>,
    /// The binaries `x_j`.
    x: Vec<Var>,
    /// The slacks `(s⁺_i, s⁻_i)` of each row.
    slack: Vec<(Var, Var)>,
    /// The fixed variable `y = 1` that carries the objective offset.
    y: Var,
    /// The MILP: minimise `Σ (s⁺ + s⁻) − OFFSET y` or maximise `OFFSET y − Σ (s⁺ + s⁻)`.
    problem: Problem,
}

impl MarketSplit {
    /// The instance of `m` rows drawn from `seed`, in the given sense.
    fn new(m: usize, seed: u64, sense: Sense) -> Self {
        let n = 10 * (m - 1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a: Vec<Vec<f64>> = (0..m)
            .map(|_| (0..n).map(|_| rng.random_range(0..100u32) as f64).collect())
            .collect();
        let planted: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
        let d: Vec<f64> = a
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&planted)
                    .filter(|(_, p)| **p)
                    .map(|(c, _)| c)
                    .sum()
            })
            .collect();
        let mut problem = Problem::new();
        let x: Vec<Var> = (0..n).map(|_| problem.add_binary()).collect();
        let slack: Vec<(Var, Var)> = a
            .iter()
            .map(|row| {
                let cap: f64 = row.iter().sum();
                (problem.add_var(0.0, cap), problem.add_var(0.0, cap))
            })
            .collect();
        let y = problem.add_var(1.0, 1.0);
        for ((row, &di), &(sp, sm)) in a.iter().zip(&d).zip(&slack) {
            let terms = x.iter().zip(row).map(|(&v, &c)| (v, c));
            problem.add_row(terms.chain([(sp, 1.0), (sm, -1.0)]), di, di);
        }
        let sign = match sense {
            Sense::Minimize => 1.0,
            Sense::Maximize => -1.0,
        };
        let slacks = slack.iter().flat_map(|&(sp, sm)| [(sp, sign), (sm, sign)]);
        problem.set_objective(slacks.chain([(y, -sign * OFFSET)]), sense);
        Self {
            a,
            d,
            x,
            slack,
            y,
            problem,
        }
    }

    /// The true optimum, known by construction: the planted point has zero slack.
    fn optimum(&self, sense: Sense) -> f64 {
        match sense {
            Sense::Minimize => -OFFSET,
            Sense::Maximize => OFFSET,
        }
    }

    /// Checks that `values` is a feasible point and returns its objective.
    fn objective_of_feasible(&self, values: &[f64], sense: Sense) -> f64 {
        assert_eq!(values.len(), self.problem.num_vars());
        for &v in &self.x {
            let xv = values[v.0];
            assert!(
                (xv - xv.round()).abs() <= TOL && (-TOL..=1.0 + TOL).contains(&xv),
                "x_{} = {xv} is not binary",
                v.0
            );
        }
        assert!(
            (values[self.y.0] - 1.0).abs() <= TOL,
            "y must stay fixed at 1"
        );
        let mut slack_sum = 0.0;
        for ((row, &di), &(sp, sm)) in self.a.iter().zip(&self.d).zip(&self.slack) {
            let (p, q) = (values[sp.0], values[sm.0]);
            assert!(p >= -TOL && q >= -TOL, "negative slack {p}, {q}");
            let lhs: f64 = self.x.iter().zip(row).map(|(v, c)| c * values[v.0]).sum();
            assert!((lhs + p - q - di).abs() <= TOL * (1.0 + di), "row violated");
            slack_sum += p + q;
        }
        match sense {
            Sense::Minimize => slack_sum - OFFSET,
            Sense::Maximize => OFFSET - slack_sum,
        }
    }
}

/// Solves with a time limit, returning the solution and the wall time of the solve.
fn solve_timed(p: &Problem, limit: f64) -> (Solution, Duration) {
    let opts = SolveOptions {
        time_limit: Some(limit),
        no_cuts: false,
    };
    let start = Instant::now();
    let s = Cbc.solve(p, &opts).expect("CBC runs");
    (s, start.elapsed())
}

/// Solves the hard instance in `sense` under the time limit and checks everything the
/// time-limited preimage relies on.
fn check_time_limited(sense: Sense, seed: u64) {
    let ms = MarketSplit::new(ROWS, seed, sense);
    let (s, wall) = solve_timed(&ms.problem, LIMIT);
    assert_eq!(s.status, Status::TimeLimit, "{sense:?}: {s:?}");
    let limit = Duration::from_secs_f64(LIMIT);
    // the limit is wall-clock time: the solve neither stops early nor overruns much
    assert!(
        wall >= limit.mul_f64(0.9),
        "{sense:?}: stopped after {wall:?}"
    );
    assert!(wall <= limit + WALL_SLACK, "{sense:?}: ran {wall:?}");

    let opt = ms.optimum(sense);
    let bound = s
        .best_bound
        .expect("a time-limited solve still has a proven bound");
    // the safe side: a minimum is never above its proven lower bound's value, a maximum never
    // below its proven upper bound's
    match sense {
        Sense::Minimize => assert!(bound <= opt + TOL, "lower bound {bound} > optimum {opt}"),
        Sense::Maximize => assert!(bound >= opt - TOL, "upper bound {bound} < optimum {opt}"),
    }
    if let Some(obj) = s.objective {
        let value = ms.objective_of_feasible(&s.values, sense);
        assert!(
            (value - obj).abs() <= TOL * (1.0 + obj.abs()),
            "{value} vs {obj}"
        );
        match sense {
            Sense::Minimize => assert!(bound <= obj + TOL && opt <= obj + TOL),
            Sense::Maximize => assert!(bound >= obj - TOL && opt >= obj - TOL),
        }
    } else {
        assert!(s.values.is_empty(), "values without an incumbent");
    }
}

#[test]
fn time_limited_minimisation_keeps_a_lower_bound() {
    check_time_limited(Sense::Minimize, 1);
}

#[test]
fn time_limited_maximisation_keeps_an_upper_bound() {
    check_time_limited(Sense::Maximize, 2);
}

/// A small 0/1 knapsack `max Σ v_j x_j` s.t. `Σ w_j x_j ≤ cap`, solved to optimality well
/// within a short limit; the optimum comes from enumerating all `2^n` points.
#[test]
fn easy_problem_under_a_short_limit_is_optimal() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 12;
    let w: Vec<f64> = (0..n).map(|_| rng.random_range(5..40u32) as f64).collect();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(1..50u32) as f64).collect();
    let cap = (w.iter().sum::<f64>() / 2.0).floor();
    let best = (0u32..1 << n)
        .filter_map(|mask| {
            let pick =
                |c: &[f64]| -> f64 { (0..n).filter(|j| mask >> j & 1 == 1).map(|j| c[j]).sum() };
            (pick(&w) <= cap).then(|| pick(&v))
        })
        .fold(f64::NEG_INFINITY, f64::max);

    let mut p = Problem::new();
    let x: Vec<Var> = (0..n).map(|_| p.add_binary()).collect();
    p.add_row(
        x.iter().zip(&w).map(|(&x, &c)| (x, c)),
        f64::NEG_INFINITY,
        cap,
    );
    p.set_objective(x.iter().zip(&v).map(|(&x, &c)| (x, c)), Sense::Maximize);
    let (s, wall) = solve_timed(&p, LIMIT);
    assert_eq!(s.status, Status::Optimal, "{s:?} after {wall:?}");
    let obj = s.objective.expect("an optimal solve has an incumbent");
    assert!((obj - best).abs() <= TOL, "{obj} vs enumerated {best}");
    assert!(s.best_bound.expect("bound") >= best - TOL);
    let chosen: f64 = x.iter().zip(&w).map(|(x, c)| c * s.values[x.0]).sum();
    assert!(chosen <= cap + TOL);
}

/// Exploration aid (ignored): how far CBC gets on the hard instance with a long limit,
/// `CERTQUANT_HARD_SECONDS` (default 60). Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn hard_instance_long_run() {
    let secs: f64 = std::env::var("CERTQUANT_HARD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    for (sense, seed) in [(Sense::Minimize, 1), (Sense::Maximize, 2)] {
        let ms = MarketSplit::new(ROWS, seed, sense);
        let (s, wall) = solve_timed(&ms.problem, secs);
        println!(
            "{sense:?}: {:?} obj {:?} bound {:?} after {wall:?}",
            s.status, s.objective, s.best_bound
        );
    }
}
