//! The default MILP backend: COIN-OR CBC, compiled from source by the `cbc-src` crate (so the
//! build needs nothing but cargo). CBC's own output is switched off (log level 0) so that it
//! never mixes with the tool's JSON on stdout.

use coin_cbc::{Col, Model};

use super::{Backend, MilpError, Problem, Sense, Solution, SolveOptions, Status};

/// CBC via `coin_cbc`. Calls are serialised by `coin_cbc`'s global lock (CBC is not
/// re-entrant); parallelism across tasks therefore uses worker processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cbc;

impl Backend for Cbc {
    fn name(&self) -> &'static str {
        "cbc"
    }

    fn solve(&self, p: &Problem, opts: &SolveOptions) -> Result<Solution, MilpError> {
        p.validate()?;
        let mut m = Model::default();
        m.set_log_level(0);
        m.set_parameter("log", "0");
        m.set_parameter("slog", "0");
        // CBC's primal heuristics cost more than they give on the preimage MILPs, whose
        // incumbents come from our own projected-gradient witnesses (measured: ~2× faster).
        m.set_parameter("heur", "off");
        if opts.no_cuts {
            m.set_parameter("cuts", "off");
        }
        if opts.no_strong_branching {
            m.set_parameter("strong", "0");
        }
        if opts.no_presolve {
            m.set_parameter("presolve", "off");
            m.set_parameter("preprocess", "off");
        }
        for (k, v) in &opts.tuning.params {
            m.set_parameter(k, v);
        }
        if let Some(t) = opts.time_limit {
            // CBC counts CPU seconds by default; the limit is documented (and used) as
            // wall-clock time, which differs whenever the machine is shared.
            m.set_parameter("timeMode", "elapsed");
            m.set_parameter("sec", &format!("{}", t.max(0.01)));
        }
        let cols: Vec<Col> = p
            .vars
            .iter()
            .map(|v| {
                let c = if v.integer {
                    m.add_integer()
                } else {
                    m.add_col()
                };
                m.set_col_lower(c, v.lo);
                m.set_col_upper(c, v.hi);
                c
            })
            .collect();
        for row in &p.rows {
            let r = m.add_row();
            m.set_row_lower(r, row.lo);
            m.set_row_upper(r, row.hi);
            for &(v, c) in &row.terms {
                m.set_weight(r, cols[v], c);
            }
        }
        for &(v, c) in &p.objective {
            m.set_obj_coeff(cols[v], c);
        }
        // No MIP start is ever passed: CBC 2.10 may answer a model "infeasible" when given a
        // feasible start although it has a better solution (coin-or/Cbc#449; observed on the
        // fast engine's part models, docs/method.md eq. (83)), which would enlarge a preimage.
        m.set_obj_sense(match p.sense {
            Sense::Minimize => coin_cbc::Sense::Minimize,
            Sense::Maximize => coin_cbc::Sense::Maximize,
        });
        if let Some(dir) = &opts.tuning.dump_mps {
            // debugging aid: write every model as MPS for solver comparisons (CBC appends
            // `.mps` to the name it is given)
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.join(format!("model{k}"));
            let name =
                std::ffi::CString::new(path.to_string_lossy().into_owned()).map_err(|_| {
                    MilpError::Backend {
                        backend: "cbc",
                        reason: format!("MPS dump path {} contains a NUL byte", path.display()),
                    }
                })?;
            m.to_raw().write_mps(&name);
        }
        let built = std::time::Instant::now();
        let sol = m.solve();
        tracing::debug!(
            vars = p.vars.len(),
            rows = p.rows.len(),
            ints = p.num_integers(),
            solve_s = built.elapsed().as_secs_f64(),
            "cbc solve"
        );
        let raw = sol.raw();
        let values: Vec<f64> = cols.iter().map(|&c| sol.col(c)).collect();
        let bound = raw.best_possible_value();
        let bound = bound.is_finite().then_some(bound);
        let status = if raw.is_proven_optimal() {
            Status::Optimal
        } else if raw.is_proven_infeasible() {
            Status::Infeasible
        } else if raw.is_continuous_unbounded() {
            Status::Unbounded
        } else if raw.is_seconds_limit_reached() {
            Status::TimeLimit
        } else {
            Status::Failed
        };
        // A feasible incumbent exists when CBC says so (optimal, or stopped with a solution).
        let has_incumbent = status == Status::Optimal
            || (status == Status::TimeLimit && raw.number_primal_infeasibilities() == 0 && {
                let obj = raw.obj_value();
                obj.is_finite() && obj.abs() < 1e50
            });
        Ok(Solution {
            status,
            objective: has_incumbent.then(|| raw.obj_value()),
            best_bound: if status == Status::Optimal {
                Some(bound.unwrap_or(raw.obj_value()))
            } else {
                bound
            },
            values: if has_incumbent { values } else { Vec::new() },
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cbc_passes_backend_conformance() {
        super::super::tests::conformance(&super::Cbc);
    }
}

#[cfg(test)]
mod tuning_tests {
    use super::*;

    fn small() -> Problem {
        let mut p = Problem::new();
        let x = p.add_var(0.0, 10.0);
        let y = p.add_binary();
        p.add_row([(x, 1.0), (y, 2.0)], f64::NEG_INFINITY, 4.0);
        p.set_objective([(x, 1.0), (y, 1.0)], Sense::Maximize);
        p
    }

    #[test]
    fn tuning_dumps_models_and_passes_parameters_without_changing_answers() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Cbc.solve(&small(), &SolveOptions::default()).unwrap();
        let tuned = SolveOptions {
            no_strong_branching: true,
            tuning: crate::SolverTuning {
                params: vec![("cuts".into(), "off".into())],
                dump_mps: Some(dir.path().to_path_buf()),
            },
            ..SolveOptions::default()
        };
        let s = Cbc.solve(&small(), &tuned).unwrap();
        assert_eq!((s.status, plain.status), (Status::Optimal, Status::Optimal));
        assert!((s.objective.unwrap() - plain.objective.unwrap()).abs() < 1e-9);
        let dumped: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(dumped.len(), 1, "{dumped:?}");
        assert!(dumped[0].starts_with("model") && dumped[0].ends_with(".mps"));
        let text = std::fs::read_to_string(dir.path().join(&dumped[0])).unwrap();
        assert!(text.contains("ROWS") && text.contains("COLUMNS"));
    }

    #[test]
    fn solver_parameters_must_be_name_value() {
        assert_eq!(
            crate::SolverTuning::parse_param(" strong = 0 "),
            Ok(("strong".into(), "0".into()))
        );
        for bad in ["strong", "=0", "strong=", ""] {
            assert!(crate::SolverTuning::parse_param(bad).is_err(), "{bad}");
        }
    }
}
