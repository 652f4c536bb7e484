//! Mixed-integer linear programming behind a small trait, so that preimage computation
//! (Problem (3) of the paper) and the relaxed-mode check do not depend on one solver.
//!
//! A [`Problem`] is built solver-independently (bounded variables, binaries, ranged linear
//! rows, a linear objective); a [`Backend`] solves it and reports a [`Solution`] with a
//! status, the incumbent objective and the solver's proven bound. The default backend is
//! CBC, built from source by cargo ([`cbc::Cbc`]).

// Index loops mirror the paper's subscripts in the numeric code.
#![allow(clippy::needless_range_loop)]

// Links the static CBC libraries built by cargo.
extern crate cbc_src;

pub mod cbc;

use thiserror::Error;

/// A variable handle (index into [`Problem`]'s variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var(pub usize);

/// Optimisation direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// Minimise the objective.
    Minimize,
    /// Maximise the objective.
    Maximize,
}

#[derive(Debug, Clone)]
struct VarDef {
    lo: f64,
    hi: f64,
    integer: bool,
}

#[derive(Debug, Clone)]
struct RowDef {
    terms: Vec<(usize, f64)>,
    lo: f64,
    hi: f64,
}

/// A MILP: `min/max c·v` s.t. `lo_r ≤ a_r·v ≤ hi_r`, `lo_i ≤ v_i ≤ hi_i`, some `v_i` integer.
#[derive(Debug, Clone)]
pub struct Problem {
    vars: Vec<VarDef>,
    rows: Vec<RowDef>,
    objective: Vec<(usize, f64)>,
    sense: Sense,
}

impl Default for Problem {
    fn default() -> Self {
        Self::new()
    }
}

impl Problem {
    /// An empty minimisation problem.
    pub fn new() -> Self {
        Self {
            vars: Vec::new(),
            rows: Vec::new(),
            objective: Vec::new(),
            sense: Sense::Minimize,
        }
    }

    /// Adds a continuous variable with bounds `[lo, hi]` (infinite bounds allowed).
    pub fn add_var(&mut self, lo: f64, hi: f64) -> Var {
        self.vars.push(VarDef {
            lo,
            hi,
            integer: false,
        });
        Var(self.vars.len() - 1)
    }

    /// Adds a binary variable.
    pub fn add_binary(&mut self) -> Var {
        self.vars.push(VarDef {
            lo: 0.0,
            hi: 1.0,
            integer: true,
        });
        Var(self.vars.len() - 1)
    }

    /// Adds the row `lo ≤ Σ coef·var ≤ hi` (use ±∞ for one-sided rows). Zero coefficients
    /// are dropped.
    pub fn add_row(&mut self, terms: impl IntoIterator<Item = (Var, f64)>, lo: f64, hi: f64) {
        let terms = terms
            .into_iter()
            .filter(|(_, c)| *c != 0.0)
            .map(|(v, c)| (v.0, c))
            .collect();
        self.rows.push(RowDef { terms, lo, hi });
    }

    /// Sets the objective.
    pub fn set_objective(&mut self, terms: impl IntoIterator<Item = (Var, f64)>, sense: Sense) {
        self.objective = terms.into_iter().map(|(v, c)| (v.0, c)).collect();
        self.sense = sense;
    }

    /// Tightens a variable's bounds (used when a cutoff becomes known).
    pub fn set_bounds(&mut self, v: Var, lo: f64, hi: f64) {
        self.vars[v.0].lo = lo;
        self.vars[v.0].hi = hi;
    }

    /// The LP relaxation: the same problem with every integer variable made continuous.
    pub fn relaxation(&self) -> Problem {
        let mut p = self.clone();
        for v in &mut p.vars {
            v.integer = false;
        }
        p
    }

    /// Number of variables.
    pub fn num_vars(&self) -> usize {
        self.vars.len()
    }

    /// Number of integer variables.
    pub fn num_integers(&self) -> usize {
        self.vars.iter().filter(|v| v.integer).count()
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

/// What the solver established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Optimal within the solver's tolerances.
    Optimal,
    /// Proven infeasible.
    Infeasible,
    /// Time limit reached; `best_bound` is still a proven bound.
    TimeLimit,
    /// The relaxation is unbounded.
    Unbounded,
    /// Anything else (numerical trouble, abandoned search).
    Failed,
}

/// The result of a solve.
#[derive(Debug, Clone)]
pub struct Solution {
    /// Outcome.
    pub status: Status,
    /// Objective of the best feasible point found, if any.
    pub objective: Option<f64>,
    /// The solver's proven bound on the optimum (a lower bound when minimising).
    pub best_bound: Option<f64>,
    /// Values of the best feasible point (empty if none).
    pub values: Vec<f64>,
}

/// Options for one solve.
#[derive(Debug, Clone, Default)]
pub struct SolveOptions {
    /// Wall-clock limit in seconds (`None` = unlimited).
    pub time_limit: Option<f64>,
    /// Skip cutting planes: for the many small MILPs of the fast preimage engine (a few dozen
    /// binaries each) CBC's cut rounds cost more than they save (measured 2× on MP2).
    pub no_cuts: bool,
    /// Skip strong branching (CBC `strong=0`): on the relaxed-mode count MILP (a few dozen
    /// binaries over hundreds of continuous inputs) branching on pseudo-costs alone proves
    /// infeasibility several times faster.
    pub no_strong_branching: bool,
    /// Skip presolve and MIP preprocessing (CBC `presolve=off`, `preprocess=off`): the fast
    /// preimage engine's part MILPs (docs/method.md eq. (83)) are already small, and the
    /// reductions cost more than they save (measured: about 10% less CPU on MP3 tasks, χ
    /// unchanged).
    pub no_presolve: bool,
    /// Solver settings a user passes through (tuning experiments, debugging aids).
    pub tuning: SolverTuning,
}

/// Backend settings passed through from the user, for experiments: they change how the solver
/// searches, never what a solution means (a status and a proven bound keep their meaning).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SolverTuning {
    /// Extra `name=value` parameters handed to the backend after certquant's own (CBC: any
    /// parameter of its command line, e.g. `strong=0`).
    pub params: Vec<(String, String)>,
    /// Write every model to this directory (as `model<N>.mps`) before solving it, so solvers
    /// can be compared on the exact instances.
    pub dump_mps: Option<std::path::PathBuf>,
}

impl SolverTuning {
    /// Parses one `name=value` parameter (the CLI's `--solver-param`).
    pub fn parse_param(text: &str) -> Result<(String, String), String> {
        match text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!(
                "solver parameter {text:?} is not of the form name=value"
            )),
        }
    }
}

/// Solver failures that are not statuses (bad model, backend unavailable).
#[derive(Debug, Error)]
pub enum MilpError {
    /// The model is malformed (e.g. a variable with `lo > hi` or a NaN coefficient).
    #[error("invalid MILP model: {0}")]
    Model(String),
    /// The backend failed.
    #[error("MILP backend {backend} failed: {reason}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// Why.
        reason: String,
    },
}

/// A MILP solver (swappable and testable, like `good_lp`'s solver trait).
pub trait Backend: Send + Sync {
    /// Short name for logs and results.
    fn name(&self) -> &'static str;
    /// Solves `p`.
    fn solve(&self, p: &Problem, opts: &SolveOptions) -> Result<Solution, MilpError>;
}

impl Problem {
    /// Checks that every number is usable (finite coefficients, ordered bounds).
    pub fn validate(&self) -> Result<(), MilpError> {
        for (i, v) in self.vars.iter().enumerate() {
            if v.lo.is_nan() || v.hi.is_nan() || v.lo > v.hi {
                return Err(MilpError::Model(format!(
                    "variable {i} has bounds [{}, {}]",
                    v.lo, v.hi
                )));
            }
        }
        for (r, row) in self.rows.iter().enumerate() {
            if row.lo.is_nan() || row.hi.is_nan() || row.lo > row.hi {
                return Err(MilpError::Model(format!(
                    "row {r} has bounds [{}, {}]",
                    row.lo, row.hi
                )));
            }
            if let Some((v, c)) = row.terms.iter().find(|(_, c)| !c.is_finite()) {
                return Err(MilpError::Model(format!(
                    "row {r} has coefficient {c} on variable {v}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the shared backend conformance tests on `b`.
    pub(crate) fn conformance(b: &dyn Backend) {
        // max x + y s.t. x + 2y ≤ 4, 3x + y ≤ 6, y binary → (x, y) = (5/3, 1), obj 8/3
        let mut p = Problem::new();
        let x = p.add_var(0.0, 10.0);
        let y = p.add_binary();
        p.add_row([(x, 1.0), (y, 2.0)], f64::NEG_INFINITY, 4.0);
        p.add_row([(x, 3.0), (y, 1.0)], f64::NEG_INFINITY, 6.0);
        p.set_objective([(x, 1.0), (y, 1.0)], Sense::Maximize);
        let s = b.solve(&p, &SolveOptions::default()).unwrap();
        assert_eq!(s.status, Status::Optimal);
        assert!((s.objective.unwrap() - 8.0 / 3.0).abs() < 1e-6);
        assert!((s.values[x.0] - 5.0 / 3.0).abs() < 1e-6);
        assert!((s.values[y.0] - 1.0).abs() < 1e-6);

        // infeasible: x ≥ 2 and x ≤ 1
        let mut p = Problem::new();
        let x = p.add_var(0.0, 10.0);
        p.add_row([(x, 1.0)], 2.0, f64::INFINITY);
        p.add_row([(x, 1.0)], f64::NEG_INFINITY, 1.0);
        p.set_objective([(x, 1.0)], Sense::Minimize);
        let s = b.solve(&p, &SolveOptions::default()).unwrap();
        assert_eq!(s.status, Status::Infeasible);

        // integrality matters: min x s.t. x = 2b, x ≥ 0.5 → b = 1, x = 2
        let mut p = Problem::new();
        let x = p.add_var(0.0, 10.0);
        let bb = p.add_binary();
        p.add_row([(x, 1.0), (bb, -2.0)], 0.0, 0.0);
        p.add_row([(x, 1.0)], 0.5, f64::INFINITY);
        p.set_objective([(x, 1.0)], Sense::Minimize);
        let s = b.solve(&p, &SolveOptions::default()).unwrap();
        assert_eq!(s.status, Status::Optimal);
        assert!((s.objective.unwrap() - 2.0).abs() < 1e-6);
        assert!(s.best_bound.unwrap() <= 2.0 + 1e-6);

        // malformed
        let mut p = Problem::new();
        p.add_var(1.0, 0.0);
        assert!(b.solve(&p, &SolveOptions::default()).is_err());
    }
}
