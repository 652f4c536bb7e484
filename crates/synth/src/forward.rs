//! Step 3 of Algorithm 1 (and the shared forward step of Algorithm 2): for each affine layer in
//! order, the fewest fractional bits whose quantized DeepPoly bounds stay inside the preimage
//! (hidden layers, [`crate::relaxed`] for the checks and the relaxed count) or prove the output
//! condition on the fully quantized network (the last layer, `certquant_bounds::prove`)
//! (docs/method.md, eqs. (34), (35)).

use std::time::Instant;

use certquant_bounds::quantize::{QuantConfig, Strategy, config_for, quantize_layer};
use certquant_bounds::{DeepPoly, OutputProof, prove_property};
use certquant_core::model::{Affine, Network};
use certquant_core::spec::Property;
use certquant_milp::{Backend, SolveOptions};

use crate::algorithm1::{LayerRecord, Method, SynthError, SynthOptions};
use crate::multipliers::LpMultipliers;
use crate::preimage::Preimage;
use crate::relaxed::{
    Rejection, count_options, exceeds_with_carried, failing_checks, max_simultaneous,
};

/// One property's float-side material for the forward search: the property, DeepPoly on the
/// float network over its box, and its preimages (one per hidden layer, input side first).
#[derive(Clone, Copy)]
pub struct ForwardItem<'a> {
    /// The property (its box and output condition).
    pub prop: &'a Property,
    /// DeepPoly of the float network over `prop.input`.
    pub float: &'a DeepPoly<'a>,
    /// The property's preimages.
    pub preimages: &'a [Preimage],
}

/// The result of the forward search (step 3 of Algorithm 1, or of Algorithm 2 with many
/// properties sharing one strategy).
#[derive(Debug, Clone)]
pub struct Forward {
    /// Per affine layer, as far as the search got.
    pub layers: Vec<LayerRecord>,
    /// The strategy, when every layer found an accepted `F`.
    pub strategy: Option<Strategy>,
    /// The quantized network the output proofs are about.
    pub qnn: Option<Network>,
    /// Per property, the output proof on the quantized network (empty unless certified).
    pub proofs: Vec<OutputProof>,
    /// DeepPoly runs.
    pub deeppoly_calls: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// `opts.deadline` passed before a strategy was found (no strategy then).
    pub timed_out: bool,
}

/// Step 3 of Algorithm 1 for one or more properties at once: for each affine layer in order,
/// the first `F` in `B_l..=B_u` that passes *every* property's check (hidden layers:
/// containment in the preimage, relaxed per property if asked; output layer: a sound proof
/// of every output condition on the fully quantized network) is accepted. With several
/// properties this is Algorithm 2's "one shared strategy" (docs/method.md, eqs. (34), (35)).
pub fn forward_search(
    net: &Network,
    items: &[ForwardItem<'_>],
    backend: &dyn Backend,
    opts: &SynthOptions,
) -> Result<Forward, SynthError> {
    opts.validate()?;
    let t1 = Instant::now();
    let d = net.depth();
    let mut current = net.clone();
    let mut configs = Vec::with_capacity(d);
    let mut fwd = Forward {
        layers: Vec::new(),
        strategy: None,
        qnn: None,
        proofs: Vec::new(),
        deeppoly_calls: 0,
        seconds: 0.0,
        timed_out: false,
    };
    // per property, the rejected hidden-layer candidates (with `carry_rejections`, eq. (70))
    let mut carried: Vec<Vec<Rejection>> = vec![Vec::new(); items.len()];
    for k in 0..d {
        let float_layer = &net.layers()[k];
        let mut record = LayerRecord {
            config: None,
            tried: 0,
            max_simultaneous_failures: None,
            checks: 0,
            guided: false,
        };
        // the previous candidate of this layer: reaching the loop's top again means it was
        // rejected
        let mut previous: Option<Affine> = None;
        'frac: for f in opts.min_frac..=opts.max_frac {
            if opts.deadline.expired() {
                fwd.timed_out = true;
                break;
            }
            let cfg = config_for(float_layer, f)?;
            let quantized = quantize_layer(float_layer, cfg);
            record.tried += 1;
            // A candidate identical to the rejected one (a parameter-free layer such as a
            // lowered max-pool tournament level, or parameters already exact at fewer bits)
            // is rejected again without its DeepPoly runs and counts (eq. (80)). Not with
            // carried rejections, whose verdict depends on the rejections before it.
            if !opts.carry_rejections
                && previous
                    .as_ref()
                    .is_some_and(|p| same_params(p, &quantized))
            {
                continue 'frac;
            }
            previous = Some(quantized.clone());
            let cand = current
                .with_layer(k, quantized)
                .expect("quantization keeps shapes");
            if k + 1 < d {
                let mut worst_all = 0;
                for (item, carried) in items.iter().zip(carried.iter_mut()) {
                    let dq = DeepPoly::run_upto(&cand, &item.prop.input, k + 1)?;
                    // The forms are over layer 0's input: use the box DeepPoly mapped through
                    // the network's input map, not the raw property box.
                    let bx = dq.input();
                    fwd.deeppoly_calls += 1;
                    let pre = &item.preimages[k];
                    let fails =
                        failing_checks(dq.layer(k), item.float.layer(k), pre, bx.lo(), bx.hi());
                    record.checks =
                        pre.lower_checked.iter().filter(|&&c| c).count() + pre.beta.len();
                    if fails.is_empty() {
                        continue;
                    }
                    let limit = if opts.relaxed {
                        (opts.relaxed_fraction * record.checks as f64).floor() as usize
                    } else {
                        0
                    };
                    let count_solve = SolveOptions {
                        tuning: opts.preimage.solver.clone(),
                        ..count_options(opts.relaxed_time_limit)
                    };
                    let worst = if fails.len() <= limit {
                        fails.len()
                    } else if opts.carry_rejections {
                        // eqs. (70), (71): the authors' count, where a rejection stands only
                        // if the same input also fails every earlier rejected candidate again
                        match exceeds_with_carried(
                            &fails,
                            limit + 1,
                            carried,
                            bx.lo(),
                            bx.hi(),
                            backend,
                            &count_solve,
                        )? {
                            Some(count) => count,
                            None => limit,
                        }
                    } else if opts.relaxed {
                        max_simultaneous(&fails, limit, bx.lo(), bx.hi(), backend, &count_solve)?
                    } else {
                        continue 'frac;
                    };
                    tracing::debug!(
                        layer = k,
                        frac = f,
                        fails = fails.len(),
                        limit,
                        worst,
                        "hidden-layer candidate counted"
                    );
                    worst_all = worst_all.max(worst);
                    if worst > limit {
                        if opts.carry_rejections {
                            carried.push(Rejection::new(fails, limit + 1));
                        }
                        if opts.relaxed {
                            record.max_simultaneous_failures = Some(worst_all);
                        }
                        continue 'frac;
                    }
                }
                record.max_simultaneous_failures = Some(worst_all);
                // The guided method keeps the accuracy floor on every layer it accepts.
                if opts.method == Method::Guided
                    && let Some(floor) = &opts.accuracy_floor
                    && !floor.admits(&tail_at_max(net, &cand, k, opts)?)
                {
                    continue 'frac;
                }
                record.config = Some(cfg);
                current = cand;
                break;
            } else {
                // The guided method keeps the accuracy floor to the end.
                if opts.method == Method::Guided
                    && let Some(floor) = &opts.accuracy_floor
                    && !floor.admits(&cand)
                {
                    continue 'frac;
                }
                let mut proofs = Vec::with_capacity(items.len());
                for item in items {
                    let dq = DeepPoly::run(&cand, &item.prop.input)?;
                    fwd.deeppoly_calls += 1;
                    let proof = prove_property(&dq, item.prop.output, &LpMultipliers(backend))?;
                    if !proof.proven {
                        continue 'frac;
                    }
                    proofs.push(proof);
                }
                record.config = Some(cfg);
                fwd.proofs = proofs;
                current = cand;
                break;
            }
        }
        if record.config.is_none() && k + 1 < d && opts.method == Method::Guided && !fwd.timed_out {
            let guided = guided_choice(net, &current, k, items, backend, opts, &mut fwd)?;
            record.tried += guided.tried;
            if let Some((cfg, head)) = guided.choice {
                record.config = Some(cfg);
                record.guided = true;
                current = head;
            }
        }
        let accepted = record.config;
        fwd.layers.push(record);
        match accepted {
            Some(c) => configs.push(c),
            None => {
                fwd.proofs.clear();
                fwd.seconds = t1.elapsed().as_secs_f64();
                return Ok(fwd);
            }
        }
    }
    fwd.seconds = t1.elapsed().as_secs_f64();
    fwd.strategy = Some(Strategy(configs));
    fwd.qnn = Some(current);
    Ok(fwd)
}

/// The verification-guided fallback for hidden layer `k` ([`Method::Guided`]): the smallest
/// `F` in `B_l..=B_u` such that DeepPoly proves every property on `current` (layers before `k`
/// at their accepted configs) with layer `k` at `F` and every later layer at `B_u`, and that
/// network keeps the accuracy floor if one is set. Yields the
/// config and `current` with layer `k` quantized (later layers stay float for their own
/// checks), or nothing if no `F` works. A guide like the preimage check: the certificate is the
/// proof on the fully quantized network at the end of the search.
fn guided_choice(
    net: &Network,
    current: &Network,
    k: usize,
    items: &[ForwardItem<'_>],
    backend: &dyn Backend,
    opts: &SynthOptions,
    fwd: &mut Forward,
) -> Result<Guided, SynthError> {
    let tail = tail_at_max(net, current, k, opts)?;
    let mut tried = 0;
    let mut previous: Option<Affine> = None;
    'frac: for f in opts.min_frac..=opts.max_frac {
        if opts.deadline.expired() {
            fwd.timed_out = true;
            break;
        }
        tried += 1;
        let cfg = config_for(&net.layers()[k], f)?;
        let quantized = quantize_layer(&net.layers()[k], cfg);
        // the same layer as the rejected previous `F` fails the same proofs
        if previous
            .as_ref()
            .is_some_and(|p| same_params(p, &quantized))
        {
            continue 'frac;
        }
        previous = Some(quantized.clone());
        let probe = tail
            .with_layer(k, quantized.clone())
            .expect("quantization keeps shapes");
        for item in items {
            let dq = DeepPoly::run(&probe, &item.prop.input)?;
            fwd.deeppoly_calls += 1;
            if !prove_property(&dq, item.prop.output, &LpMultipliers(backend))?.proven {
                continue 'frac;
            }
        }
        if let Some(floor) = &opts.accuracy_floor
            && !floor.admits(&probe)
        {
            continue 'frac;
        }
        let head = current
            .with_layer(k, quantized)
            .expect("quantization keeps shapes");
        return Ok(Guided {
            choice: Some((cfg, head)),
            tried,
        });
    }
    Ok(Guided {
        choice: None,
        tried,
    })
}

/// Whether two quantizations of one layer have bit-identical parameters, hence are the same
/// layer (the lowering is a function of the parameters).
fn same_params(a: &Affine, b: &Affine) -> bool {
    let ((aw, ab), (bw, bb)) = (a.params(), b.params());
    let same = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(u, v)| u.to_bits() == v.to_bits())
    };
    same(aw, bw) && same(ab, bb)
}

/// What [`guided_choice`] found: the config and the network with it, and how many `F` it tried.
struct Guided {
    choice: Option<(QuantConfig, Network)>,
    tried: u32,
}

/// `base` with every layer after `k` quantized at `B_u` (from the float layers of `net`): the
/// network a choice for layer `k` is judged on before the later layers have their own bits.
fn tail_at_max(
    net: &Network,
    base: &Network,
    k: usize,
    opts: &SynthOptions,
) -> Result<Network, SynthError> {
    let mut tail = base.clone();
    for i in k + 1..net.depth() {
        let layer = &net.layers()[i];
        let cfg = config_for(layer, opts.max_frac)?;
        tail = tail
            .with_layer(i, quantize_layer(layer, cfg))
            .expect("quantization keeps shapes");
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use crate::algorithm1::{SynthOptions, SynthStatus, synthesize};
    use certquant_core::model::{Affine, Network};
    use certquant_core::spec::{InputBox, OutputSpec, Property};
    use certquant_milp::cbc::Cbc;

    /// A hidden layer whose parameters are exact at every `F` (weights ±1, 0, biases 0, like a
    /// lowered max-pool tournament level) behind a layer that quantization moves: with a
    /// collapsed preimage (χ = 0) it is rejected at every `F`, and only the first `F` costs a
    /// DeepPoly run; the others are the same layer (eq. (80)).
    #[test]
    fn identical_candidates_are_rejected_without_recounting() {
        let l0 = Affine::new(
            0,
            3,
            2,
            vec![0.71, 0.23, -0.37, 0.93, 0.51, 0.49],
            vec![0.1; 3],
        )
        .unwrap();
        let l1 = Affine::new(1, 2, 3, vec![1.0, -1.0, 0.0, 0.0, 1.0, 1.0], vec![0.0; 2]).unwrap();
        let l2 = Affine::new(2, 2, 2, vec![1.0, 0.3, -0.4, 0.2], vec![0.2, 0.0]).unwrap();
        let net = Network::new(vec![l0, l1, l2]).unwrap();
        let centre = [0.6, 0.4];
        let prop = Property {
            input: InputBox::linf_ball(&centre, 0.05).unwrap(),
            output: OutputSpec::Robust {
                label: net.predict(&centre),
            },
        };
        let run = |carry: bool| {
            let opts = SynthOptions {
                given_chi: Some(vec![10.0, 0.0]),
                min_frac: 2,
                max_frac: 9,
                carry_rejections: carry,
                relaxed: carry,
                ..SynthOptions::paper(false)
            };
            synthesize(&net, &prop, &centre, &Cbc, &opts).unwrap()
        };
        let out = run(false);
        assert_eq!(out.status, SynthStatus::Unknown, "{:?}", out.layers);
        assert!(out.layers[0].config.is_some() && out.layers[1].config.is_none());
        // every F of layer 1 was tried, one DeepPoly run for them all (plus layer 0's runs)
        assert_eq!(out.layers[1].tried, 8);
        assert_eq!(out.deeppoly_calls, out.layers[0].tried as usize + 1);
        // with carried rejections every candidate is judged on its own
        let carried = run(true);
        assert_eq!(
            carried.deeppoly_calls,
            (carried.layers[0].tried + carried.layers[1].tried) as usize,
            "{:?}",
            carried.layers
        );
    }
}
