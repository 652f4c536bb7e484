//! The accuracy floor: a quantized candidate is admitted only if its accuracy on a labelled data
//! set stays within a given drop of the float network's (docs/method.md, eq. (43)). Checking a
//! candidate stops as soon as its misclassifications exceed the budget, an exact rejection.
//! Networks are classified in batches ([`crate::batch`], exactly `Network::predict`'s class per
//! image, docs/method.md eqs. (61)–(62)); [`AccuracyFloor::scalar`] keeps the one-image-at-a-time
//! path for comparison.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use certquant_core::data::Dataset;
use certquant_core::model::Network;
use rayon::prelude::*;

use crate::batch::BatchEval;
use crate::deadline::Deadline;

/// Images per parallel chunk: small enough to stop early, large enough to keep both cores busy.
const CHUNK: usize = 256;

/// "At most `max_errors` misclassified images of `data`": the float network's errors plus the
/// allowed drop.
#[derive(Clone)]
pub struct AccuracyFloor {
    data: Arc<Dataset>,
    max_errors: usize,
    float_accuracy: f64,
    batch: Option<Arc<BatchEval>>,
    deadline: Deadline,
}

impl std::fmt::Debug for AccuracyFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccuracyFloor")
            .field("images", &self.data.len())
            .field("max_errors", &self.max_errors)
            .field("float_accuracy", &self.float_accuracy)
            .field("batched", &self.batch.is_some())
            .finish()
    }
}

impl AccuracyFloor {
    /// The floor "accuracy ≥ float accuracy − `max_drop_points`/100" on the labelled images of
    /// `data` (unlabelled images do not count).
    /// Candidates are classified in batches ([`BatchEval`], ordered hardest-first by `float`).
    pub fn new(float: &Network, data: Arc<Dataset>, max_drop_points: f64) -> Self {
        let n = labelled(&data);
        let batch = Arc::new(BatchEval::new(float, data.clone()));
        let float_errors = batch.errors(float, usize::MAX);
        let float_accuracy = 1.0 - float_errors as f64 / n.max(1) as f64;
        let slack = (max_drop_points.max(0.0) / 100.0 * n as f64).floor() as usize;
        Self {
            data,
            max_errors: float_errors + slack,
            float_accuracy,
            batch: Some(batch),
            deadline: Deadline::NONE,
        }
    }

    /// The same floor with a deadline (docs/method.md eq. (82)): once it has passed,
    /// [`AccuracyFloor::admits`] rejects without finishing the count (a candidate is never
    /// admitted on a partial count). Exact counts ([`AccuracyFloor::errors`]) ignore it.
    pub fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same floor judged one image at a time with `Network::predict` (the path before
    /// issue 16; same answers, for benchmarks).
    pub fn scalar(mut self) -> Self {
        self.batch = None;
        self
    }

    /// The batched evaluator, if this floor uses one (its counters, for reports).
    pub fn batch(&self) -> Option<&BatchEval> {
        self.batch.as_deref()
    }

    /// The largest number of misclassified labelled images the floor allows.
    pub fn max_errors(&self) -> usize {
        self.max_errors
    }

    /// Misclassified labelled images of `net`, exact up to `stop` (above it: some larger
    /// number).
    pub fn errors(&self, net: &Network, stop: usize) -> usize {
        match &self.batch {
            Some(b) => b.errors(net, stop),
            None => errors(net, &self.data, stop),
        }
    }

    /// The float network's accuracy on the data set.
    pub fn float_accuracy(&self) -> f64 {
        self.float_accuracy
    }

    /// Whether `net` misclassifies at most the allowed number of images.
    /// Past the floor's deadline: `false` (see [`AccuracyFloor::with_deadline`]).
    pub fn admits(&self, net: &Network) -> bool {
        let e = match &self.batch {
            Some(b) => b.errors_until(net, self.max_errors, self.deadline),
            None if self.deadline.expired() => usize::MAX,
            None => errors(net, &self.data, self.max_errors),
        };
        e <= self.max_errors
    }

    /// Whether a classifier misclassifies at most the allowed number of images; `None` (e.g.
    /// a tie of integer logits, eq. (55)) counts as a misclassification. For networks run
    /// under another semantics than eq. (1) (`crate::activations`).
    pub fn admits_by(&self, predict: impl Fn(&[f64]) -> Option<usize> + Sync) -> bool {
        errors_by(&predict, &self.data, self.max_errors) <= self.max_errors
    }

    /// The labelled images (for reporting accuracies under another semantics).
    pub fn data(&self) -> &Dataset {
        &self.data
    }
}

fn labelled(data: &Dataset) -> usize {
    (0..data.len()).filter(|&i| data.label(i).is_some()).count()
}

/// Misclassified labelled images of `data`, counted exactly up to `stop`; once the count is
/// above `stop` the rest is skipped (the result is then some number above `stop`).
fn errors(net: &Network, data: &Dataset, stop: usize) -> usize {
    errors_by(&|x: &[f64]| Some(net.predict(x)), data, stop)
}

/// [`errors`] for any classifier (`None` = wrong).
fn errors_by(
    predict: &(impl Fn(&[f64]) -> Option<usize> + Sync),
    data: &Dataset,
    stop: usize,
) -> usize {
    let wrong = AtomicUsize::new(0);
    let starts: Vec<usize> = (0..data.len()).step_by(CHUNK).collect();
    starts.par_iter().for_each(|&s| {
        if wrong.load(Ordering::Relaxed) > stop {
            return;
        }
        let e = (s..(s + CHUNK).min(data.len()))
            .filter(|&i| match (data.image(i), data.label(i)) {
                (Some(x), Some(y)) => predict(x) != Some(y),
                _ => false,
            })
            .count();
        wrong.fetch_add(e, Ordering::Relaxed);
    });
    wrong.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::Affine;

    /// One input, two classes: class 1 iff `x > t`.
    fn threshold(t: f64) -> Network {
        Network::new(vec![
            Affine::new(0, 2, 1, vec![0.0, 1.0], vec![0.0, -t]).unwrap(),
        ])
        .unwrap()
    }

    fn data() -> Arc<Dataset> {
        // 1000 points x = i/1000, label 1 iff x > 0.5
        let xs: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let ys: Vec<u8> = xs.iter().map(|&x| u8::from(x > 0.5)).collect();
        Arc::new(Dataset::from_parts(1, xs, Some(ys)).unwrap())
    }

    #[test]
    fn the_floor_counts_exactly_and_rejects_past_the_budget() {
        let d = data();
        let floor = AccuracyFloor::new(&threshold(0.5), d.clone(), 1.0);
        assert_eq!(floor.float_accuracy(), 1.0);
        // moving the threshold by k/1000 misclassifies k points; the budget is 10
        assert!(floor.admits(&threshold(0.5099)));
        assert!(floor.admits(&threshold(0.5100)));
        assert!(!floor.admits(&threshold(0.5111)));
        assert!(!floor.admits(&threshold(0.9)));
        assert_eq!(errors(&threshold(0.9), &d, usize::MAX), 400);
        assert!(errors(&threshold(0.9), &d, 10) > 10);
        let old = floor.clone().scalar();
        for t in [0.5099, 0.51, 0.5111, 0.9] {
            assert_eq!(floor.admits(&threshold(t)), old.admits(&threshold(t)));
        }
    }

    /// Past its deadline the floor rejects (a cut-short count never admits); exact counts
    /// are unaffected.
    #[test]
    fn an_expired_deadline_rejects() {
        let d = data();
        let at = crate::deadline::Deadline::at(std::time::Instant::now());
        for floor in [
            AccuracyFloor::new(&threshold(0.5), d.clone(), 1.0),
            AccuracyFloor::new(&threshold(0.5), d.clone(), 1.0).scalar(),
        ] {
            assert!(floor.admits(&threshold(0.5)));
            let late = floor.clone().with_deadline(at);
            assert!(!late.admits(&threshold(0.5)));
            assert_eq!(late.errors(&threshold(0.9), usize::MAX), 400);
        }
    }
}
