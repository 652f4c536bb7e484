//! Falsification of VNN-LIB queries: random points, box corners and PGD on the most promising
//! disjunct of the counterexample condition (maximise the smallest constraint margin).
//!
//! A candidate found in plain f64 is **confirmed** before it is reported: it must lie in the
//! region's inner box (inside the exact decimal box of the file), and a sound enclosure of the
//! network's exact real output at that point (DeepPoly on the one-point box, outward rounded)
//! must satisfy every constraint of the disjunct for every coefficient and constant within the
//! file's enclosures (`≥ 0`, or `> 0` for a strict comparison). So `violated` never rests on
//! a rounding accident (docs/method.md, eq. (52)).

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::attack::gradient_along;
use crate::bounds::DeepPoly;
use crate::bounds::arith::{inflate, linear_range};
use crate::model::Network;
use crate::spec::InputBox;
use crate::vnnlib::{OutputConstraint, Query, Region};

/// Budget of one falsification run.
#[derive(Debug, Clone)]
pub struct FalsifyOptions {
    /// Uniform random points and random corners sampled per region.
    pub samples: usize,
    /// PGD restarts per region (the first from the box centre).
    pub restarts: usize,
    /// PGD steps per restart.
    pub steps: usize,
    /// RNG seed.
    pub seed: u64,
}

impl Default for FalsifyOptions {
    fn default() -> Self {
        Self {
            samples: 200,
            restarts: 20,
            steps: 100,
            seed: 0,
        }
    }
}

/// A confirmed counterexample.
#[derive(Debug, Clone, PartialEq)]
pub struct Counterexample {
    /// Index of the region (input box) of the query.
    pub region: usize,
    /// Index of the disjunct it satisfies.
    pub disjunct: usize,
    /// The input (in the exact box of the file).
    pub x: Vec<f64>,
    /// The float network's output at `x` (what the file records).
    pub y: Vec<f64>,
    /// The constraint of the disjunct with the smallest proven margin.
    pub weakest: usize,
    /// Its line in the VNN-LIB file.
    pub weakest_line: usize,
    /// A proven lower bound of that smallest margin (`≥ 0`; `> 0` if the comparison is strict).
    pub margin: f64,
}

impl Counterexample {
    /// The VNN-COMP counterexample text `((X_0 v) … (Y_0 v) …)`, shortest round-trip decimals
    /// (each parses back to exactly the float that was checked).
    pub fn vnncomp_text(&self) -> String {
        let mut s = String::from("(");
        for (i, v) in self.x.iter().enumerate() {
            let sep = if i == 0 { "" } else { "\n " };
            s.push_str(&format!("{sep}(X_{i} {v:?})"));
        }
        for (j, v) in self.y.iter().enumerate() {
            s.push_str(&format!("\n (Y_{j} {v:?})"));
        }
        s.push_str(")\n");
        s
    }
}

/// The float value of `a·y + c` with the stored coefficients and the constant's lower end
/// (what the search maximises; the confirmation is separate and sound).
fn value(c: &OutputConstraint, y: &[f64]) -> f64 {
    c.coeffs.iter().zip(y).map(|(a, v)| a * v).sum::<f64>() + c.constant.0
}

/// The smallest constraint value of a conjunction at output `y` and its index (`+∞` for an
/// empty conjunction, which every output satisfies).
fn min_margin(conj: &[OutputConstraint], y: &[f64]) -> (f64, usize) {
    conj.iter()
        .enumerate()
        .map(|(i, c)| (value(c, y), i))
        .fold(
            (f64::INFINITY, 0),
            |acc, v| if v.0 < acc.0 { v } else { acc },
        )
}

/// Soundly confirms that `x` is a counterexample of disjunct `disjunct` of `region`: returns
/// the weakest constraint and a proven lower bound of its margin, or `None`.
pub fn confirm(net: &Network, region: &Region, disjunct: usize, x: &[f64]) -> Option<(usize, f64)> {
    let conj = region.output.get(disjunct)?;
    let inside = x.len() == region.inner_lo.len()
        && x.iter()
            .zip(region.inner_lo.iter().zip(&region.inner_hi))
            .all(|(v, (l, h))| v.is_finite() && l <= v && v <= h);
    if !inside {
        return None;
    }
    let point = InputBox::new(x.to_vec(), x.to_vec()).ok()?;
    let dp = DeepPoly::run(net, &point).ok()?;
    let out = dp.layer(net.depth() - 1);
    let (ylo, yhi) = (&out.lo, &out.hi);
    if !ylo.iter().chain(yhi).all(|v| v.is_finite()) {
        return None;
    }
    let yabs: Vec<f64> = ylo
        .iter()
        .zip(yhi)
        .map(|(l, h)| l.abs().max(h.abs()))
        .collect();
    let mut weakest = (f64::INFINITY, 0usize);
    for (i, c) in conj.iter().enumerate() {
        if c.coeffs.len() != ylo.len() {
            return None;
        }
        // min over y in the enclosure of a·y + c_lo, minus Σ e_j |y_j| for the coefficients
        let lb = linear_range(&c.coeffs, c.constant.0, ylo, yhi).0;
        let e: f64 = c.errs.iter().zip(&yabs).map(|(e, y)| e * y).sum();
        let lb = (lb - inflate(e * (1.0 + 1e-6))).next_down();
        let ok = if c.strict { lb > 0.0 } else { lb >= 0.0 };
        if !ok {
            return None;
        }
        if lb < weakest.0 {
            weakest = (lb, i);
        }
    }
    Some((weakest.1, weakest.0.min(f64::MAX)))
}

/// Searches `[lo, hi]` (a sub-box of the region's inner box) for a counterexample of `region`
/// (index `ri` in its query). Stops at `deadline`.
pub fn falsify_box(
    net: &Network,
    region: &Region,
    ri: usize,
    lo: &[f64],
    hi: &[f64],
    opts: &FalsifyOptions,
    deadline: Option<Instant>,
) -> Option<Counterexample> {
    if region.output.is_empty() || lo.iter().zip(hi).any(|(l, h)| l > h) {
        return None;
    }
    let late = || deadline.is_some_and(|d| Instant::now() >= d);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ (ri as u64).wrapping_mul(0x9e37_79b9));
    let found = |x: &[f64]| -> Option<Counterexample> {
        let y = net.forward(x);
        for (d, conj) in region.output.iter().enumerate() {
            if min_margin(conj, &y).0 >= 0.0
                && let Some((w, m)) = confirm(net, region, d, x)
            {
                return Some(Counterexample {
                    region: ri,
                    disjunct: d,
                    x: x.to_vec(),
                    y,
                    weakest: w,
                    weakest_line: conj[w].line,
                    margin: m,
                });
            }
        }
        None
    };
    let random_point = |rng: &mut ChaCha8Rng| -> Vec<f64> {
        lo.iter()
            .zip(hi)
            .map(|(&l, &h)| if h > l { rng.random_range(l..=h) } else { l })
            .collect()
    };
    // the most promising disjunct: the one with the largest smallest margin seen
    let mut best: (f64, usize) = (f64::NEG_INFINITY, 0);
    let centre: Vec<f64> = lo.iter().zip(hi).map(|(l, h)| l + (h - l) / 2.0).collect();
    for s in 0..opts.samples + 1 {
        if late() {
            return None;
        }
        let x = match s {
            0 => centre.clone(),
            s if s % 2 == 1 => random_point(&mut rng),
            _ => lo
                .iter()
                .zip(hi)
                .map(|(&l, &h)| if rng.random::<bool>() { l } else { h })
                .collect(),
        };
        if let Some(cx) = found(&x) {
            return Some(cx);
        }
        let y = net.forward(&x);
        for (d, conj) in region.output.iter().enumerate() {
            let m = min_margin(conj, &y).0;
            if m > best.0 {
                best = (m, d);
            }
        }
    }
    let width: Vec<f64> = lo.iter().zip(hi).map(|(l, h)| h - l).collect();
    for r in 0..opts.restarts {
        // even restarts follow, at every step, the disjunct closest to being satisfied (as
        // the robustness attack follows the strongest other class); odd restarts stay on one
        // disjunct, the most promising first, then each other in turn
        let fixed = (r % 2 == 1).then(|| {
            let k = r / 2;
            if k == 0 {
                best.1
            } else {
                (best.1 + k) % region.output.len()
            }
        });
        let mut x = if r == 0 {
            centre.clone()
        } else {
            random_point(&mut rng)
        };
        for step in 0..opts.steps {
            if late() {
                return None;
            }
            let y = net.forward(&x);
            let d = fixed.unwrap_or_else(|| {
                (0..region.output.len())
                    .map(|d| (min_margin(&region.output[d], &y).0, d))
                    .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a })
                    .1
            });
            let conj = &region.output[d];
            let (m, i) = min_margin(conj, &y);
            if m >= 0.0
                && let Some(cx) = found(&x)
            {
                return Some(cx);
            }
            let Some(c) = conj.get(i) else { break };
            let g = gradient_along(net, &x, &c.coeffs);
            let lr = 0.25 * (1.0 - step as f64 / opts.steps as f64) + 0.02;
            for (((xi, gi), w), (l, h)) in x.iter_mut().zip(&g).zip(&width).zip(lo.iter().zip(hi)) {
                *xi = (*xi + lr * w * gi.signum()).clamp(*l, *h);
            }
        }
        if let Some(cx) = found(&x) {
            return Some(cx);
        }
    }
    None
}

/// Searches every region of `query` with a non-empty inner box for a confirmed counterexample.
pub fn falsify(
    net: &Network,
    query: &Query,
    opts: &FalsifyOptions,
    deadline: Option<Instant>,
) -> Option<Counterexample> {
    query.regions.iter().enumerate().find_map(|(ri, r)| {
        if !r.inner_nonempty() {
            return None;
        }
        falsify_box(net, r, ri, &r.inner_lo, &r.inner_hi, opts, deadline)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Affine;

    fn query(text: &str) -> Query {
        crate::vnnlib::parse(text).unwrap()
    }

    /// `y = (x_0 + x_1, x_0 − x_1)`.
    fn net() -> Network {
        let l = Affine::new(0, 2, 2, vec![1.0, 1.0, 1.0, -1.0], vec![0.0, 0.0]).unwrap();
        Network::new(vec![l]).unwrap()
    }

    const HEAD: &str = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\n\
                        (assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n";

    #[test]
    fn finds_and_confirms_a_counterexample_of_the_right_disjunct() {
        // y_0 ≥ 1.9 and y_1 ≥ -0.1: only near the corner (1, 1)
        let q = query(&format!(
            "{HEAD}(assert (or (and (>= Y_0 5)) (and (>= Y_0 1.9) (>= Y_1 -0.1))))"
        ));
        let cx = falsify(&net(), &q, &FalsifyOptions::default(), None).unwrap();
        assert_eq!(cx.disjunct, 1);
        assert!(
            cx.x[0] + cx.x[1] >= 1.9 && cx.x[0] - cx.x[1] >= -0.1,
            "{cx:?}"
        );
        assert!(cx.margin >= 0.0);
        let text = cx.vnncomp_text();
        assert!(text.starts_with("((X_0 ") && text.contains("\n (Y_1 ") && text.ends_with("))\n"));
    }

    #[test]
    fn nothing_is_reported_where_the_property_holds_or_only_ties_a_strict_bound() {
        let q = query(&format!("{HEAD}(assert (>= Y_0 2.5))"));
        assert!(falsify(&net(), &q, &FalsifyOptions::default(), None).is_none());
        // y_0 > 2 is never met (y_0 ≤ 2); y_0 >= 1.99 is, near the corner (1, 1)
        let q = query(&format!("{HEAD}(assert (> Y_0 2))"));
        assert!(falsify(&net(), &q, &FalsifyOptions::default(), None).is_none());
        let q = query(&format!("{HEAD}(assert (>= Y_0 1.99))"));
        let cx = falsify(&net(), &q, &FalsifyOptions::default(), None).unwrap();
        assert!(cx.x[0] + cx.x[1] >= 1.99);
    }

    #[test]
    fn a_point_outside_the_exact_box_is_not_confirmed() {
        // X_0 ≤ 0.1 (inexact): the float 0.1 itself lies above the exact decimal
        let q = query(
            "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 0.1))\
             (assert (>= Y_0 0))",
        );
        let l = Affine::new(0, 1, 1, vec![1.0], vec![0.0]).unwrap();
        let net = Network::new(vec![l]).unwrap();
        let r = &q.regions[0];
        assert!(confirm(&net, r, 0, &[0.05]).is_some());
        assert!(confirm(&net, r, 0, &[0.1]).is_none());
        assert!(confirm(&net, r, 0, &[-0.0001]).is_none());
    }
}
