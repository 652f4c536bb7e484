//! The relaxation of a hidden neuron under an activation format (docs/method.md §17,
//! eq. (58)), and the input box of the integer semantics.
//!
//! # The relaxation
//! A hidden neuron with pre-activation bounds `l ≤ y ≤ u` (finite floats, `l ≤ u`) outputs
//! `z = r(y)` (eq. (54)): `y` rounded half to even onto the grid `2^−F` and clamped to
//! `[0, M]`, `M = (2^Q − 1)·2^−F`. With `h(y) = clamp(y, 0, M)` and `δ = 2^−(F+1)`:
//! `h(y) − δ ≤ r(y) ≤ h(y) + δ` (below 0 and above M, `r = h`; in between, rounding moves by
//! at most half a step), and `0 ≤ r(y) ≤ M`. So a line below `h` minus `δ` is below `r`, a
//! line above `h` plus `δ` is above it, and the constants `0` and `M` need no widening:
//!
//! ```text
//! r(l) = r(u)          z = r(l)                                   (exact: r is monotone;
//!                                                                  covers u ≤ δ and l ≥ M)
//! u ≤ M, l ≥ 0         y − δ ≤ z ≤ y + δ
//! u ≤ M, l < 0 < u     lower: y − δ if u > −l, else 0             (eq. (7)'s λ)
//!                      upper: μ(y − l) + δ,  μ = u/(u − l)        (the ReLU chord)
//! 0 ≤ l < M < u        lower: l + σ(y − l) − δ,  σ = (M − l)/(u − l)   (chord of concave h)
//!                      upper: y + δ if u − M < M − l, else M
//! l < 0 < M < u        lower: λy − δ, λ = M/u, if u > −l, else 0
//!                      upper: ν(y − l) + δ,  ν = M/(M − l)         (through (l,0), (M,M))
//! ```
//!
//! The only difference from eq. (58) is that the constant upper bound `M` is not widened
//! (`r ≤ M` always), which is tighter and still sound.
//!
//! # Why the computed relaxation is sound
//! `M` and `δ` are exact floats (`crate::semantics::saturation_and_half_step`), `l`, `u` are
//! exact reals. Each slope is a quotient of exact reals, enclosed in an interval with
//! outward rounding and intersected with `[0, 1]` (every exact slope above lies in `[0, 1]`),
//! and each intercept (`−μl + δ`, `l − σl − δ`, …) is enclosed with the outward-rounded
//! interval operations of [`crate::interval`]. So the exact line of the table has its
//! coefficients in the stored intervals — the invariant the substitution step (`relu_step`)
//! needs.

use certquant_core::model::Network;
use certquant_core::semantics::ActFormat;

use super::{Line, Prover, Relu};
use crate::interval::{Interval, div_down, div_up, sub_down, sub_up};
use crate::semantics::{act_value, saturation_and_half_step};

/// One format per affine layer input, each in the range the checker handles.
pub(super) fn check_formats(net: &Network, formats: &[Option<ActFormat>]) -> Result<(), String> {
    if formats.len() != net.depth() {
        return Err(format!(
            "{} activation formats given, the network has {} affine layers",
            formats.len(),
            net.depth()
        ));
    }
    match formats
        .iter()
        .flatten()
        .find(|a| saturation_and_half_step(**a).is_none())
    {
        Some(a) => Err(format!(
            "activation format ⟨Q={}, F={}⟩ is out of range",
            a.total(),
            a.frac()
        )),
        None => Ok(()),
    }
}

/// Under an input format `A_0`, replaces the box over layer 0's input by
/// `[r_{A_0}(lo), r_{A_0}(hi)]` (exact; `r` is monotone, so every quantized input of the
/// box lies in it). Refuses a network with an input map (the map would run in floating point).
pub(super) fn round_input_box(
    net: &Network,
    format: Option<ActFormat>,
    lo: &mut [f64],
    hi: &mut [f64],
) -> Result<(), String> {
    let Some(a) = format else {
        return Ok(());
    };
    if net.input_map().is_some() {
        return Err(
            "the input is formatted (integer semantics) but the network has an input map".into(),
        );
    }
    for v in lo.iter_mut().chain(hi.iter_mut()) {
        *v = act_value(*v, a).ok_or("a box entry is NaN")?;
    }
    Ok(())
}

/// An enclosure of the exact quotient `n/d` known to lie in `[0, 1]`, for enclosures `n ⊆
/// [0, ∞)` and `d ⊆ (0, ∞)` (the quotient of the exact reals in them).
fn unit_ratio(n: Interval, d: Interval) -> Interval {
    let lo = if d.hi > 0.0 && d.hi.is_finite() {
        div_down(n.lo, d.hi)
    } else {
        0.0
    };
    let hi = if d.lo > 0.0 { div_up(n.hi, d.lo) } else { 1.0 };
    Interval::new(lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0))
}

/// `[a − b]` enclosed.
fn diff(a: f64, b: f64) -> Interval {
    Interval::new(sub_down(a, b), sub_up(a, b))
}

impl Relu {
    /// The relaxation of `z = r_A(y)` on `[l, u]` (module documentation; docs/method.md,
    /// eq. (58)). `None` for non-finite or empty bounds or a format out of range (callers
    /// check both before).
    pub(super) fn quantized(l: f64, u: f64, a: ActFormat) -> Option<Relu> {
        if !(l.is_finite() && u.is_finite() && l <= u) {
            return None;
        }
        let (m, delta) = saturation_and_half_step(a)?;
        let (rl, ru) = (act_value(l, a)?, act_value(u, a)?);
        if rl == ru {
            return Some(Relu::Const(rl));
        }
        // Here r(l) < r(u): so l < u, u > δ > 0 and l < M.
        let pt = Interval::point;
        let zero = Line {
            slope: Interval::ZERO,
            icpt: Interval::ZERO,
        };
        let identity = |shift: f64| Line {
            slope: pt(1.0),
            icpt: pt(shift),
        };
        // slope·(y − l) + c  =  slope·y + (c − slope·l)
        let through = |slope: Interval, c: Interval| Line {
            slope,
            icpt: c - slope.scale(l),
        };
        let (lower, upper) = if u <= m {
            if l >= 0.0 {
                (identity(-delta), identity(delta))
            } else {
                let lower = if u > -l { identity(-delta) } else { zero };
                let mu = unit_ratio(pt(u), diff(u, l));
                (lower, through(mu, pt(delta)))
            }
        } else if l >= 0.0 {
            let sigma = unit_ratio(diff(m, l), diff(u, l));
            let lower = through(sigma, pt(l) - pt(delta));
            let upper = if u - m < m - l {
                identity(delta)
            } else {
                Line {
                    slope: Interval::ZERO,
                    icpt: pt(m),
                }
            };
            (lower, upper)
        } else {
            let lower = if u > -l {
                Line {
                    slope: unit_ratio(pt(m), pt(u)),
                    icpt: pt(-delta),
                }
            } else {
                zero
            };
            let nu = unit_ratio(pt(m), diff(m, l));
            (lower, through(nu, pt(delta)))
        };
        Some(Relu::Linear { lower, upper })
    }
}

impl Prover<'_> {
    /// Concrete post-activation bounds of hidden layer `k`: `[r(l), r(u)]` under an
    /// activation format (exact: `r` is monotone, eq. (58)), `[max(l, 0), max(u, 0)]` for a
    /// real ReLU.
    pub fn hidden_post_bounds(&self, k: usize) -> Vec<Interval> {
        let fmt = self.formats[k + 1];
        self.bounds[k]
            .iter()
            .map(|b| match fmt {
                None => Interval::new(b.lo.max(0.0), b.hi.max(0.0)),
                Some(a) => {
                    // Finite bounds and a checked format: both are Some.
                    let r = |v| act_value(v, a).unwrap_or(f64::NAN);
                    Interval::new(r(b.lo), r(b.hi))
                }
            })
            .collect()
    }

    /// The box over layer 0's input the bounds are computed over (after the input map, and
    /// rounded onto the input format if there is one).
    pub fn input_box(&self) -> (&[f64], &[f64]) {
        (&self.lo, &self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Side, exact_rows};
    use super::*;
    use certquant_core::model::Affine;
    use certquant_core::quant::QuantConfig;
    use certquant_core::semantics::{IntProgram, IntegerSemantics, shr_even};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random QNN with weights and biases on random grids ⟨Q_k, F_k⟩, random activation
    /// formats (coarse, so that rounding and saturation matter) and a random box in `[0, 1]`
    /// with dyadic ends.
    struct Case {
        net: Network,
        strategy: Vec<QuantConfig>,
        acts: Vec<ActFormat>,
        lo: Vec<f64>,
        hi: Vec<f64>,
    }

    fn random_case(rng: &mut ChaCha8Rng) -> Case {
        let depth = rng.random_range(1..=4);
        let mut sizes = vec![rng.random_range(1..=5)];
        for _ in 0..depth {
            sizes.push(rng.random_range(1..=6));
        }
        let mut layers = Vec::new();
        let mut strategy = Vec::new();
        for (k, s) in sizes.windows(2).enumerate() {
            let f = rng.random_range(0..=4u32);
            let q = f + rng.random_range(2..=4u32);
            let half = 1i64 << (q - 1);
            let scale = 2f64.powi(-(f as i32));
            let mut code = || rng.random_range(-half..half) as f64 * scale;
            let w = (0..s[0] * s[1]).map(|_| code()).collect();
            let b = (0..s[1]).map(|_| code()).collect();
            layers.push(Affine::new(k, s[1], s[0], w, b).unwrap());
            strategy.push(QuantConfig::new(q, f).unwrap());
        }
        let acts = (0..depth)
            .map(|k| {
                let f = if k == 0 {
                    rng.random_range(1..=6)
                } else {
                    rng.random_range(0..=4)
                };
                let q = rng.random_range(1..=f + 3).min(31);
                ActFormat::new(q, f).unwrap()
            })
            .collect();
        let n = sizes[0];
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a = rng.random_range(0..=256i32);
            let b = (a + rng.random_range(0..=96)).min(256);
            lo.push(a as f64 / 256.0);
            hi.push(b as f64 / 256.0);
        }
        Case {
            net: Network::new(layers).unwrap(),
            strategy,
            acts,
            lo,
            hi,
        }
    }

    /// Runs the exact integer program (core's [`IntProgram`], an independent reference) on
    /// many points of the box and counts the values outside the proven bounds: hidden pre-
    /// and post-activations, logits, and logit differences.
    fn violations(
        seed: u64,
        trials: usize,
        relax: impl Fn(f64, f64, ActFormat) -> Option<Relu> + Copy,
    ) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bad = 0;
        for _ in 0..trials {
            let c = random_case(&mut rng);
            let formats: Vec<_> = c.acts.iter().copied().map(Some).collect();
            let p = Prover::build(&c.net, &c.lo, &c.hi, &formats, relax, false).unwrap();
            let sem = IntegerSemantics::new(c.acts.clone(), 64).unwrap();
            let prog = IntProgram::new(&c.net, &c.strategy, &sem).unwrap();
            let d = c.net.depth();
            let last = &c.net.layers()[d - 1];
            let rows = exact_rows(last, 0, last.outputs());
            let llo = p.back_substitute(rows.clone(), d - 1, Side::Lower);
            let lhi = p.back_substitute(rows, d - 1, Side::Upper);
            let classes = c.net.output_dim();
            let pairs: Vec<_> = (0..classes)
                .flat_map(|a| (0..classes).filter(move |&b| b != a).map(move |b| (a, b)))
                .collect();
            let diff = p.logit_difference_lower_bounds(&pairs);
            let post: Vec<_> = (0..d - 1).map(|k| p.hidden_post_bounds(k)).collect();
            let n = c.lo.len();
            let samples = 400;
            for s in 0..samples + (1 << n) {
                let x: Vec<f64> = (0..n)
                    .map(|i| {
                        if s >= samples {
                            // corners
                            if ((s - samples) >> i) & 1 == 1 {
                                c.hi[i]
                            } else {
                                c.lo[i]
                            }
                        } else {
                            let t = rng.random_range(0..=1024) as f64 / 1024.0;
                            c.lo[i] + t * (c.hi[i] - c.lo[i])
                        }
                    })
                    .collect();
                let mut a = prog.input_codes(&x).unwrap();
                for (k, l) in prog.layers.iter().enumerate() {
                    let acc = l.accumulate(&a);
                    let scale = 2f64.powi(-((l.weight.frac() + l.input.frac()) as i32));
                    let y: Vec<f64> = acc.iter().map(|&z| z as f64 * scale).collect();
                    match (l.output, l.shift()) {
                        (Some(o), Some(sh)) => {
                            for (j, &v) in y.iter().enumerate() {
                                bad += usize::from(!p.hidden_bounds(k)[j].contains(v));
                            }
                            a = acc
                                .iter()
                                .map(|&z| shr_even(z, sh).clamp(0, o.max_code() as i128) as i64)
                                .collect();
                            let zs = 2f64.powi(-(o.frac() as i32));
                            for (j, &z) in a.iter().enumerate() {
                                bad += usize::from(!post[k][j].contains(z as f64 * zs));
                            }
                        }
                        _ => {
                            for (j, &v) in y.iter().enumerate() {
                                bad += usize::from(!(llo[j] <= v && v <= lhi[j]));
                            }
                            for (r, &(i, j)) in pairs.iter().enumerate() {
                                bad += usize::from(diff[r] > y[i] - y[j]);
                            }
                        }
                    }
                }
            }
        }
        bad
    }

    #[test]
    fn bounds_contain_the_exact_integer_program() {
        assert_eq!(violations(17, 150, Relu::quantized), 0);
    }

    /// The soundness test above is not vacuous: the same relaxation without the rounding
    /// error `δ` (what one would get by relaxing `clamp(y, 0, M)` instead of `r(y)`), or the
    /// plain ReLU relaxation (ignoring rounding and saturation), is caught.
    #[test]
    fn wrong_relaxations_are_caught() {
        let drop_delta = |l: f64, u: f64, a: ActFormat| {
            let (_, delta) = saturation_and_half_step(a)?;
            Some(match Relu::quantized(l, u, a)? {
                Relu::Linear {
                    mut lower,
                    mut upper,
                } => {
                    if !lower.slope.is_zero() {
                        lower.icpt = lower.icpt + Interval::point(delta);
                    }
                    if !upper.slope.is_zero() {
                        upper.icpt = upper.icpt - Interval::point(delta);
                    }
                    Relu::Linear { lower, upper }
                }
                r => r,
            })
        };
        let bad = violations(17, 150, drop_delta);
        assert!(bad > 0, "dropping δ went unnoticed");
        let plain = |l: f64, u: f64, _: ActFormat| Some(Relu::new(l, u));
        let bad = violations(17, 150, plain);
        assert!(bad > 0, "the real ReLU relaxation went unnoticed");
    }

    #[test]
    fn relaxation_cases() {
        let a = ActFormat::new(4, 2).unwrap(); // M = 3.75, δ = 1/8
        // u ≤ δ: exactly 0; l ≥ M: exactly M; one rounding bin: its value.
        assert_eq!(Relu::quantized(-3.0, 0.125, a), Some(Relu::Const(0.0)));
        assert_eq!(Relu::quantized(3.75, 9.0, a), Some(Relu::Const(3.75)));
        assert_eq!(Relu::quantized(1.13, 1.37, a), Some(Relu::Const(1.25)));
        let Some(Relu::Linear { lower, upper }) = Relu::quantized(0.5, 2.0, a) else {
            panic!()
        };
        assert_eq!(
            (lower.slope, lower.icpt),
            (Interval::point(1.0), Interval::point(-0.125))
        );
        assert_eq!(
            (upper.slope, upper.icpt),
            (Interval::point(1.0), Interval::point(0.125))
        );
        // 0 ≤ l < M < u, u − M ≥ M − l: upper is the constant M, not widened.
        let Some(Relu::Linear { upper, lower }) = Relu::quantized(3.0, 6.0, a) else {
            panic!()
        };
        assert_eq!(
            (upper.slope, upper.icpt),
            (Interval::ZERO, Interval::point(3.75))
        );
        // chord slope (3.75 − 3)/(6 − 3) = 1/4
        assert!(lower.slope.contains(0.25) && lower.slope.hi - lower.slope.lo < 1e-15);
        // l < 0 < u ≤ M with u ≤ −l: lower is the constant 0.
        let Some(Relu::Linear { lower, .. }) = Relu::quantized(-2.0, 1.0, a) else {
            panic!()
        };
        assert_eq!((lower.slope, lower.icpt), (Interval::ZERO, Interval::ZERO));
        assert_eq!(Relu::quantized(f64::NAN, 1.0, a), None);
        assert_eq!(Relu::quantized(2.0, 1.0, a), None);
    }

    /// With no format the constructor is `Prover::new`, bit for bit; an input format rounds
    /// the box exactly; bad format vectors and an input map are refused.
    #[test]
    fn formats_none_is_the_real_prover_and_bad_formats_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..20 {
            let c = random_case(&mut rng);
            let none = vec![None; c.net.depth()];
            let p = Prover::new(&c.net, &c.lo, &c.hi).unwrap();
            let q = Prover::with_formats(&c.net, &c.lo, &c.hi, &none).unwrap();
            for k in 0..c.net.depth() - 1 {
                assert_eq!(p.hidden_bounds(k), q.hidden_bounds(k));
                assert_eq!(p.relax[k], q.relax[k]);
            }
            for label in 0..c.net.output_dim() {
                let s = certquant_core::spec::OutputSpec::Robust { label };
                assert_eq!(p.margin(s).to_bits(), q.margin(s).to_bits());
            }
        }
        let l0 = Affine::new(0, 1, 2, vec![1.0, 1.0], vec![0.0]).unwrap();
        let net = Network::new(vec![l0]).unwrap();
        let a = ActFormat::new(3, 2).unwrap(); // grid 1/4, M = 1.75
        let p = Prover::with_formats(&net, &[0.3, 0.1], &[0.4, 9.0], &[Some(a)]).unwrap();
        assert_eq!(p.input_box(), (&[0.25, 0.0][..], &[0.5, 1.75][..]));
        assert!(Prover::with_formats(&net, &[0.3, 0.1], &[0.4, 9.0], &[]).is_err());
        assert!(Prover::with_formats(&net, &[0.3, 0.1], &[0.4, 9.0], &[None, None]).is_err());
    }
}
