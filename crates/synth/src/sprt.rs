//! Wald's sequential probability ratio test as used by Algorithm 2 (backdoor-freeness).
//!
//! Each round draws `K` inputs; the round is a *success* when the best of them has a
//! first-layer preimage `χ ≥ ε` (no trigger can flip that input, with room to quantize). If
//! the network had a backdoor that flips a fraction `θ` of the inputs, a round would fail with
//! probability at least `θ^K`. The hypotheses on the success probability `p` are
//! `H0: p ≥ p0 = 1 − θ^K + δ` (no such backdoor) and `H1: p ≤ p1 = 1 − θ^K − δ`; after `n`
//! rounds with `z` successes the likelihood ratio is
//! `(p1/p0)^z · ((1−p1)/(1−p0))^(n−z)`; `≤ ϱ/(1−σ)` accepts H0, `≥ (1−ϱ)/σ` accepts H1
//! (σ, ϱ: the type-I and type-II error bounds). See docs/method.md, eqs. (41) and (42).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Invalid test parameters.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("invalid SPRT parameters: {0}")]
pub struct SprtError(pub String);

/// Parameters of the test (the paper's: θ = 0.9, K = 5, σ = ϱ = δ = 0.05).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SprtParams {
    /// θ: the backdoor success rate the test guards against.
    pub theta: f64,
    /// K: inputs per round.
    pub k: usize,
    /// σ: type-I error bound.
    pub sigma: f64,
    /// ϱ: type-II error bound.
    pub rho: f64,
    /// δ: half-width of the indifference region around `1 − θ^K`.
    pub delta: f64,
}

impl SprtParams {
    /// The paper's parameters.
    pub fn paper() -> Self {
        Self {
            theta: 0.9,
            k: 5,
            sigma: 0.05,
            rho: 0.05,
            delta: 0.05,
        }
    }

    /// Checks that the parameters define a test: `θ ∈ (0,1)`, `K ≥ 1`, `σ, ϱ ∈ (0, 1/2)`,
    /// `δ > 0` and `0 < p1 < p0 < 1`.
    pub fn validate(&self) -> Result<(), SprtError> {
        let open01 = |v: f64| v.is_finite() && v > 0.0 && v < 1.0;
        if !open01(self.theta) {
            return Err(SprtError(format!("theta {} must be in (0, 1)", self.theta)));
        }
        if self.k == 0 || self.k > 10_000 {
            return Err(SprtError(format!("k {} must be in 1..=10000", self.k)));
        }
        for (name, v) in [("type1 (sigma)", self.sigma), ("type2 (rho)", self.rho)] {
            if !(v.is_finite() && v > 0.0 && v < 0.5) {
                return Err(SprtError(format!("{name} {v} must be in (0, 0.5)")));
            }
        }
        if !(self.delta.is_finite() && self.delta > 0.0) {
            return Err(SprtError(format!("delta {} must be > 0", self.delta)));
        }
        let (p0, p1) = (self.p0(), self.p1());
        if !(p1 > 0.0 && p0 < 1.0) {
            return Err(SprtError(format!(
                "1 − theta^k ± delta must lie in (0, 1): p0 = {p0}, p1 = {p1}"
            )));
        }
        Ok(())
    }

    /// `p0 = 1 − θ^K + δ` (docs/method.md, eq. (42)).
    pub fn p0(&self) -> f64 {
        1.0 - self.theta.powi(self.k as i32) + self.delta
    }

    /// `p1 = 1 − θ^K − δ` (docs/method.md, eq. (42)).
    pub fn p1(&self) -> f64 {
        1.0 - self.theta.powi(self.k as i32) - self.delta
    }
}

/// Which hypothesis the test accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hypothesis {
    /// No backdoor with success rate θ (statistically).
    H0,
    /// A backdoor may exist: give up.
    H1,
}

/// The running test.
#[derive(Debug, Clone, PartialEq)]
pub struct Sprt {
    params: SprtParams,
    rounds: usize,
    successes: usize,
}

impl Sprt {
    /// A new test (parameters are validated).
    pub fn new(params: SprtParams) -> Result<Self, SprtError> {
        params.validate()?;
        Ok(Self {
            params,
            rounds: 0,
            successes: 0,
        })
    }

    /// Records one round; returns the decision if the test stops now.
    pub fn record(&mut self, success: bool) -> Option<Hypothesis> {
        self.rounds += 1;
        self.successes += usize::from(success);
        self.decision()
    }

    /// `ln` of the likelihood ratio after the recorded rounds (`ln Λ_n`, docs/method.md, eq. (42)).
    pub fn log_ratio(&self) -> f64 {
        let (p0, p1) = (self.params.p0(), self.params.p1());
        let z = self.successes as f64;
        let f = (self.rounds - self.successes) as f64;
        z * (p1 / p0).ln() + f * ((1.0 - p1) / (1.0 - p0)).ln()
    }

    /// The decision for the rounds so far (`None`: keep sampling) (docs/method.md, eq. (42)).
    pub fn decision(&self) -> Option<Hypothesis> {
        let (s, r) = (self.params.sigma, self.params.rho);
        let lr = self.log_ratio();
        if lr <= (r / (1.0 - s)).ln() {
            Some(Hypothesis::H0)
        } else if lr >= ((1.0 - r) / s).ln() {
            Some(Hypothesis::H1)
        } else {
            None
        }
    }

    /// Rounds so far.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Successful rounds so far.
    pub fn successes(&self) -> usize {
        self.successes
    }

    /// The parameters.
    pub fn params(&self) -> &SprtParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seq: &[bool]) -> (Option<Hypothesis>, usize, usize) {
        let mut t = Sprt::new(SprtParams::paper()).unwrap();
        for &s in seq {
            if let Some(h) = t.record(s) {
                return (Some(h), t.rounds(), t.successes());
            }
        }
        (None, t.rounds(), t.successes())
    }

    #[test]
    fn paper_parameters_by_hand() {
        // θ^K = 0.9^5 = 0.59049: p0 = 0.45951, p1 = 0.35951
        let p = SprtParams::paper();
        assert!((p.p0() - 0.45951).abs() < 1e-12 && (p.p1() - 0.35951).abs() < 1e-12);
        // ratio per success 0.35951/0.45951 = 0.782377; H0 needs ratio ≤ 0.05/0.95 = 0.052632:
        // 11 successes give 0.067232, 12 give 0.052601 → H0 after exactly 12 rounds
        assert_eq!(run(&[true; 30]), (Some(Hypothesis::H0), 12, 12));
        // ratio per failure 0.64049/0.54049 = 1.185017; H1 needs ≥ 19: 17 failures give
        // 17.919, 18 give 21.235 → H1 after exactly 18 rounds
        assert_eq!(run(&[false; 30]), (Some(Hypothesis::H1), 18, 0));
        // one failure first costs 2 more successes: H0 at n = 14, z = 13
        let mut seq = vec![false];
        seq.extend([true; 30]);
        assert_eq!(run(&seq), (Some(Hypothesis::H0), 14, 13));
        // 3 successes per failure: H0 at n = 19, z = 15
        let seq: Vec<bool> = (0..60).map(|i| i % 4 != 3).collect();
        assert_eq!(run(&seq), (Some(Hypothesis::H0), 19, 15));
        // alternating stays undecided (p = 0.5 sits between the two hypotheses' drift)
        let seq: Vec<bool> = (0..60).map(|i| i % 2 == 0).collect();
        assert_eq!(run(&seq), (None, 60, 30));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let ok = SprtParams::paper();
        for bad in [
            SprtParams { theta: 1.0, ..ok },
            SprtParams { theta: 0.0, ..ok },
            SprtParams { k: 0, ..ok },
            SprtParams { sigma: 0.5, ..ok },
            SprtParams { rho: 0.0, ..ok },
            SprtParams { delta: 0.0, ..ok },
            SprtParams { delta: 0.5, ..ok }, // p1 < 0
            SprtParams {
                theta: f64::NAN,
                ..ok
            },
        ] {
            assert!(Sprt::new(bad).is_err(), "{bad:?}");
        }
    }
}
