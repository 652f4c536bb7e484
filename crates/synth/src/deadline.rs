//! A wall-clock deadline for the synthesis searches (issue 15; docs/method.md eqs. (81),
//! (82)): Algorithm 1's preimages and forward search, the property-set search (exact and
//! descent) and the accuracy floor check it between candidates (or layers, or chunks of
//! images). On expiry a search answers with the best *proven* point it holds, or with a
//! timeout — never with an unproven one (SOUNDNESS.md row 51): a deadline only ever makes a
//! search stop early, it never turns a failed check into a passed one.

use std::time::{Duration, Instant};

/// "Stop after this instant", or no limit. Typed rather than a bare number of seconds so that
/// a budget is fixed once (at the start of a command) and every stage shares the same end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No limit.
    pub const NONE: Deadline = Deadline(None);

    /// Stop at `t`.
    pub fn at(t: Instant) -> Self {
        Self(Some(t))
    }

    /// Stop `budget` after now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now().checked_add(budget))
    }

    /// The CLI's `--timeout S` from `start`: the searches get `fraction · S` (eq. (81)), the
    /// rest is left for the outputs (accuracy, attack, certificate and its re-check). `None`
    /// (no timeout) is no limit; a non-finite or negative product is refused by the callers'
    /// validation and here treated as "already expired" (never as "no limit").
    pub fn from_timeout(start: Instant, timeout: Option<f64>, fraction: f64) -> Self {
        match timeout {
            None => Self::NONE,
            Some(s) => {
                let secs = s * fraction;
                if secs.is_finite() && secs >= 0.0 {
                    Self(start.checked_add(Duration::from_secs_f64(secs.min(1e9))))
                } else {
                    Self(Some(start))
                }
            }
        }
    }

    /// The instant, if any (for APIs that take an `Option<Instant>`).
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// Whether the deadline has passed (never for [`Deadline::NONE`]).
    pub fn expired(self) -> bool {
        self.0.is_some_and(|t| Instant::now() >= t)
    }

    /// Time left (`None`: no limit; zero once expired).
    pub fn remaining(self) -> Option<Duration> {
        self.0.map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// The earlier of two deadlines (eq. (82): a stage's own budget never outlives the
    /// command's).
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Self(Some(a.min(b))),
            (Some(a), None) | (None, Some(a)) => Self(Some(a)),
            (None, None) => Self::NONE,
        }
    }
}

impl From<Option<Instant>> for Deadline {
    fn from(t: Option<Instant>) -> Self {
        Self(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_the_earlier_of_two() {
        assert!(!Deadline::NONE.expired());
        assert_eq!(Deadline::NONE.remaining(), None);
        let past = Deadline::at(Instant::now());
        assert!(past.expired());
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        let later = Deadline::after(Duration::from_secs(3600));
        assert!(!later.expired());
        assert_eq!(later.min(past), past);
        assert_eq!(past.min(Deadline::NONE), past);
        assert_eq!(Deadline::NONE.min(Deadline::NONE), Deadline::NONE);
    }

    #[test]
    fn a_timeout_gives_its_fraction_and_bad_numbers_expire() {
        let start = Instant::now();
        assert_eq!(Deadline::from_timeout(start, None, 0.9), Deadline::NONE);
        let d = Deadline::from_timeout(start, Some(10.0), 0.9);
        assert_eq!(d.instant(), Some(start + Duration::from_secs_f64(9.0)));
        for bad in [f64::NAN, -1.0, f64::NEG_INFINITY] {
            assert!(Deadline::from_timeout(start, Some(bad), 0.9).expired());
        }
        // an absurdly long budget is capped, not an overflow
        assert!(!Deadline::from_timeout(start, Some(f64::MAX), 1.0).expired());
    }
}
