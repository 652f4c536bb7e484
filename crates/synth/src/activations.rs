//! Activation bits for `--semantics integer` (docs/method.md §17, eqs. (54)–(58a)): given a
//! weight strategy (Algorithm 1's, or the property-set search's), choose an unsigned format
//! ⟨Q^a_k, F^a_k⟩ for the network's input and for every hidden layer's output, input side
//! first, each the fewest fractional bits such that DeepPoly still proves every property on
//! the QNN with the activations chosen so far rounded and the later ones real, and (if asked)
//! the accuracy floor holds. The last choice is judged on the fully integer network, so an
//! accepted semantics is proven by construction; the certificate rests on that final proof
//! (`certquant_bounds::prove_property` over [`DeepPoly::run_with_acts`]) and the checker
//! re-proves it.
//!
//! Integer bits are not searched, as for weights (eq. (4)): `Q^a_k` is the fewest bits whose
//! saturation value `(2^Q − 1)·2^−F` holds the layer's largest activation `V_k` — DeepPoly's
//! upper bound over every property's box and, with an accuracy floor, the largest value on
//! the floor's data set. Saturation beyond `V_k` is part of the semantics and of the bounds,
//! so this choice affects accuracy, never soundness.
//!
//! Why per layer and not by preimages: a preimage (Problem (3)) is a set of *real* hidden
//! values; rounding an activation moves it by up to `δ` in every coordinate, which is what the
//! DeepPoly check under eq. (58) measures directly.

use std::time::Instant;

use certquant_bounds::quantize::Strategy;
use certquant_bounds::{DeepPoly, OutputProof, prove_property};
use certquant_core::model::Network;
use certquant_core::semantics::{
    ActFormat, IntProgram, IntegerSemantics, MAX_ACT_BITS, strict_argmax,
};
use certquant_core::spec::Property;
use certquant_milp::Backend;

use crate::algorithm1::{SynthError, pre_activations};
use crate::floor::AccuracyFloor;
use crate::multipliers::LpMultipliers;

/// Options of the activation search.
#[derive(Debug, Clone)]
pub struct ActOptions {
    /// Smallest fractional width tried.
    pub min_frac: u32,
    /// Largest fractional width tried.
    pub max_frac: u32,
    /// Accumulator width `b_acc` (eq. (57)).
    pub acc_bits: u32,
}

impl Default for ActOptions {
    fn default() -> Self {
        Self {
            min_frac: 0,
            max_frac: 16,
            acc_bits: certquant_core::semantics::DEFAULT_ACC_BITS,
        }
    }
}

/// What the search did on one activation (input side first).
#[derive(Debug, Clone, PartialEq)]
pub struct ActLayer {
    /// The accepted format, if any.
    pub format: Option<ActFormat>,
    /// Fractional widths tried.
    pub tried: u32,
    /// The largest value the format must hold (`V_k`).
    pub range: f64,
}

/// The result of [`activation_search`].
#[derive(Debug, Clone)]
pub struct ActOutcome {
    /// Per activation, as far as the search got.
    pub layers: Vec<ActLayer>,
    /// The semantics, when every activation found a format and eq. (57) holds.
    pub semantics: Option<IntegerSemantics>,
    /// Per property, the proof on the integer network (empty unless found).
    pub proofs: Vec<OutputProof>,
    /// Why no semantics was found (`None` when one was).
    pub failure: Option<String>,
    /// DeepPoly runs.
    pub deeppoly_calls: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Chooses the activation formats of `qnn` (the network quantized by `strategy`) so that
/// every property of `props` is proven under the integer semantics, input side first (see the
/// module documentation; docs/method.md §17).
pub fn activation_search(
    qnn: &Network,
    strategy: &Strategy,
    props: &[&Property],
    floor: Option<&AccuracyFloor>,
    backend: &dyn Backend,
    opts: &ActOptions,
) -> Result<ActOutcome, SynthError> {
    let t0 = Instant::now();
    if opts.min_frac > opts.max_frac || opts.max_frac > certquant_core::semantics::MAX_ACT_FRAC {
        return Err(SynthError::Options(format!(
            "activation fractional bits {}..={} (at most {})",
            opts.min_frac,
            opts.max_frac,
            certquant_core::semantics::MAX_ACT_FRAC
        )));
    }
    if !(8..=64).contains(&opts.acc_bits) {
        return Err(SynthError::Options(format!(
            "accumulator width {} not in 8..=64",
            opts.acc_bits
        )));
    }
    if qnn.input_map().is_some() {
        return Err(SynthError::Options(
            "integer semantics: the network has an input normalisation (Sub/Div before the \
             first layer), which would run in floating point"
                .into(),
        ));
    }
    if strategy.0.len() != qnn.depth() {
        return Err(SynthError::Options(format!(
            "strategy has {} configs for {} layers",
            strategy.0.len(),
            qnn.depth()
        )));
    }
    let d = qnn.depth();
    let ranges = ranges(qnn, props, floor)?;
    let mut out = ActOutcome {
        layers: Vec::with_capacity(d),
        semantics: None,
        proofs: Vec::new(),
        failure: None,
        deeppoly_calls: props.len(),
        seconds: 0.0,
    };
    let mut chosen: Vec<Option<ActFormat>> = vec![None; d];
    let limit = (1i128 << (opts.acc_bits - 1)) - 1;
    for k in 0..d {
        let mut rec = ActLayer {
            format: None,
            tried: 0,
            range: ranges[k],
        };
        let mut why = format!(
            "no format of activation {k} with F ≤ {} works",
            opts.max_frac
        );
        'frac: for f in opts.min_frac..=opts.max_frac {
            let Some(fmt) = format_for(ranges[k], f) else {
                why = format!("activation {k} needs more than {MAX_ACT_BITS} bits at F = {f}");
                break;
            };
            rec.tried += 1;
            if accumulator_bound(qnn, strategy, k, fmt) > limit {
                // A larger F only raises the bound.
                why = format!(
                    "layer {k}'s accumulators would exceed {} bits at F^a = {f} (eq. (57))",
                    opts.acc_bits
                );
                break;
            }
            chosen[k] = Some(fmt);
            let mut proofs = Vec::with_capacity(props.len());
            for p in props {
                let dp = DeepPoly::run_with_acts(qnn, &p.input, d, &chosen)?;
                out.deeppoly_calls += 1;
                let proof = prove_property(&dp, p.output, &LpMultipliers(backend))?;
                if !proof.proven {
                    chosen[k] = None;
                    continue 'frac;
                }
                proofs.push(proof);
            }
            if let Some(floor) = floor
                && !floor.admits_by(|x| predict_with_acts(qnn, &chosen, x))
            {
                chosen[k] = None;
                continue 'frac;
            }
            rec.format = Some(fmt);
            out.proofs = proofs;
            break;
        }
        let done = rec.format.is_some();
        out.layers.push(rec);
        if !done {
            out.failure = Some(why);
            out.proofs.clear();
            out.seconds = t0.elapsed().as_secs_f64();
            return Ok(out);
        }
    }
    let acts: Vec<ActFormat> = chosen.into_iter().map(|a| a.expect("all chosen")).collect();
    let sem = IntegerSemantics::new(acts, opts.acc_bits)
        .map_err(|e| SynthError::Options(e.to_string()))?;
    match IntProgram::new(qnn, &strategy.0, &sem) {
        Ok(_) => out.semantics = Some(sem),
        Err(e) => {
            out.failure = Some(e.to_string());
            out.proofs.clear();
        }
    }
    out.seconds = t0.elapsed().as_secs_f64();
    Ok(out)
}

/// The largest value activation `k` must hold (`V_k` of the module documentation): the input
/// box's upper ends (k = 0), else DeepPoly's upper bound of hidden layer `k − 1`'s ReLU over
/// every property's box, and with a floor the largest value on its data set.
fn ranges(
    qnn: &Network,
    props: &[&Property],
    floor: Option<&AccuracyFloor>,
) -> Result<Vec<f64>, SynthError> {
    let d = qnn.depth();
    let mut v = vec![0.0f64; d];
    for p in props {
        v[0] = p.input.hi().iter().copied().fold(v[0], f64::max);
        let dp = DeepPoly::run(qnn, &p.input)?;
        for k in 1..d {
            v[k] = dp.layer(k - 1).hi.iter().copied().fold(v[k], f64::max);
        }
    }
    if let Some(floor) = floor {
        let data = floor.data();
        for i in 0..data.len() {
            if let Some(x) = data.image(i) {
                v[0] = x.iter().copied().fold(v[0], f64::max);
                let pre = pre_activations(qnn, x);
                for k in 1..d {
                    v[k] = pre[k - 1].iter().copied().fold(v[k], f64::max);
                }
            }
        }
    }
    Ok(v)
}

/// The format with `frac` fractional bits and the fewest total bits whose saturation value
/// `(2^Q − 1)·2^−F` is at least `range` (`None` past [`MAX_ACT_BITS`]).
pub fn format_for(range: f64, frac: u32) -> Option<ActFormat> {
    let need = (range.max(0.0) * (frac as f64).exp2()).ceil(); // largest code needed
    let mut q = 1u32;
    while q <= MAX_ACT_BITS && (((1u64 << q) - 1) as f64) < need {
        q += 1;
    }
    ActFormat::new(q, frac).ok()
}

/// The left side of eq. (57) for layer `k` with input format `fmt`, maximised over rows, in
/// exact integers (the weight codes of the strategy's grid).
fn accumulator_bound(qnn: &Network, strategy: &Strategy, k: usize, fmt: ActFormat) -> i128 {
    let layer = &qnn.layers()[k];
    let scale = (strategy.0[k].frac() as f64).exp2();
    let m = fmt.max_code() as i128;
    (0..layer.outputs())
        .map(|j| {
            let w: i128 = layer
                .row_entries(j)
                .map(|(_, v)| (v * scale).abs() as i128)
                .sum();
            w * m + (((layer.bias()[j] * scale).abs() as i128) << fmt.frac())
        })
        .max()
        .unwrap_or(0)
}

/// The class of `x` on `qnn` with the activations of `acts` rounded (eq. (54)) and the others
/// real, in `f64` (a guide for the accuracy floor; with every activation set, the integer
/// program gives the exact class). `None` on a tie.
pub fn predict_with_acts(qnn: &Network, acts: &[Option<ActFormat>], x: &[f64]) -> Option<usize> {
    let mut z: Vec<f64> = match acts.first() {
        Some(Some(a)) => x.iter().map(|&v| a.quantize(v)).collect(),
        _ => qnn.map_input(x),
    };
    let d = qnn.depth();
    for (k, layer) in qnn.layers().iter().enumerate() {
        let y = layer.apply(&z);
        if k + 1 == d {
            let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut top = y.iter().enumerate().filter(|(_, v)| **v == max);
            let (i, _) = top.next()?;
            return top.next().is_none().then_some(i);
        }
        z = match acts.get(k + 1) {
            Some(Some(a)) => y.iter().map(|&v| a.quantize(v)).collect(),
            _ => y.iter().map(|&v| v.max(0.0)).collect(),
        };
    }
    None
}

/// Exact accuracy of the integer program on the labelled images of `floor`'s data set (ties
/// count as errors).
pub fn integer_accuracy(program: &IntProgram, data: &certquant_core::data::Dataset) -> f64 {
    let (mut n, mut ok) = (0usize, 0usize);
    for i in 0..data.len() {
        if let (Some(x), Some(y)) = (data.image(i), data.label(i)) {
            n += 1;
            let logits = program
                .run(x)
                .expect("dimension checked by the data loader");
            ok += usize::from(strict_argmax(&logits) == Some(y));
        }
    }
    ok as f64 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use certquant_core::model::Affine;
    use certquant_core::spec::{InputBox, OutputSpec};
    use certquant_milp::cbc::Cbc;

    #[test]
    fn format_for_holds_the_range() {
        assert_eq!(format_for(1.0, 8).unwrap().total(), 9);
        assert_eq!(format_for(0.0, 3).unwrap().total(), 1);
        assert_eq!(format_for(3.75, 2).unwrap().total(), 4);
        assert_eq!(format_for(3.76, 2).unwrap().total(), 5);
        assert!(format_for(1e12, 20).is_none());
        for (v, f) in [(0.3, 4), (7.9, 0), (12.5, 6)] {
            let a = format_for(v, f).unwrap();
            assert!(a.max_value() >= v);
            assert!(ActFormat::new(a.total() - 1, f).map_or(true, |b| b.max_value() < v));
        }
    }

    #[test]
    fn finds_a_proven_semantics_and_coarser_formats_for_wider_margins() {
        // 2 → 2 → 2: y0 − y1 is large near x = (1, 0).
        let l0 = Affine::new(0, 2, 2, vec![1.0, -1.0, -1.0, 1.0], vec![0.0, 0.0]).unwrap();
        let l1 = Affine::new(1, 2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]).unwrap();
        let net = Network::new(vec![l0, l1]).unwrap();
        let strategy = Strategy::from_fracs(&net, &[2, 2]).unwrap();
        let qnn = strategy.apply(&net).unwrap();
        let prop = Property {
            input: InputBox::linf_ball(&[0.9, 0.1], 0.05).unwrap(),
            output: OutputSpec::Robust { label: 0 },
        };
        let out = activation_search(
            &qnn,
            &strategy,
            &[&prop],
            None,
            &Cbc,
            &ActOptions::default(),
        )
        .unwrap();
        let sem = out.semantics.expect("proven");
        assert_eq!(out.proofs.len(), 1);
        assert!(out.proofs[0].proven);
        // The exact program agrees at the centre.
        let p = IntProgram::new(&qnn, &strategy.0, &sem).unwrap();
        assert_eq!(strict_argmax(&p.run(&[0.9, 0.1]).unwrap()), Some(0));
        // A margin of zero cannot be proven (a tie violates).
        let tie = Property {
            input: InputBox::linf_ball(&[0.5, 0.5], 0.0).unwrap(),
            output: OutputSpec::Robust { label: 0 },
        };
        let out = activation_search(&qnn, &strategy, &[&tie], None, &Cbc, &ActOptions::default())
            .unwrap();
        assert!(out.semantics.is_none() && out.failure.is_some());
    }
}
