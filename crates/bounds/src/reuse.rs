//! DeepPoly for a stream of candidate networks that share layer prefixes (issue 16).
//!
//! The property-set search (`certquant-synth`, exact enumeration and descent) proves the same
//! properties on many quantized candidates, and consecutive candidates often differ in one
//! layer only. DeepPoly's state below affine layer `k` — the concrete bounds `[l, u]` of
//! layers `0..k`, their ReLU relaxations and the error weights `v` of eq. (13) — is a function
//! of the input box (after the input map) and of the parameters of layers `0..k` alone: the
//! bounds of layer `j` back-substitute through layers `j, j − 1, …, 0` and never look at a
//! later layer. So for a candidate whose first `c` layers equal (bit for bit) those of the
//! previous candidate proven on the same box, the run can start at layer `c` with the earlier
//! state kept, and every number it computes is the one a run from scratch computes
//! (docs/method.md, eq. (72); SOUNDNESS.md row 45).
//!
//! [`PrefixCache`] keeps, per property (a *slot*), the state of the last network proven there
//! and decides the reusable prefix itself by comparing the layers exactly; the caller's
//! promise is only "slot `i` is always the same box", and even that is checked. What it keeps
//! is small: the per-neuron vectors of every computed layer and a copy of those layers'
//! parameters, not the symbolic bounds `f^≤, f^≥` (the output proof does not read them; see
//! [`PrefixCache::state_bytes`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use certquant_core::model::{Affine, Network};
use certquant_core::spec::{InputBox, OutputSpec};

use crate::deeppoly::{BoundsError, DeepPoly, LayerBounds, LinearBounds, ROW_BLOCK};
use crate::ops::relu::Relaxation;

/// The state of DeepPoly below some layer, detached from the network it was computed on.
struct Parked {
    /// The raw input box (before the input map) it was computed over.
    raw: InputBox,
    /// Copies of the computed layers of that network (what a new network is compared with).
    net_layers: Vec<Affine>,
    /// Whether that network had an input map, and which.
    input_map: Option<certquant_core::graph::InputMap>,
    /// The box over layer 0's input (after the input map).
    input: InputBox,
    input_abs: Vec<f64>,
    /// Concrete bounds per computed layer; the symbolic ones are dropped (empty).
    layers: Vec<LayerBounds>,
    relax: Vec<Relaxation>,
    aff_v: Vec<Vec<f64>>,
    /// Per computed layer, the output error bound (the coefficient slack of eq. (75); empty
    /// for an exact layer).
    out_err: Vec<Vec<f64>>,
}

impl Parked {
    /// Bytes held (heap; the vectors' lengths).
    fn bytes(&self) -> usize {
        let f = std::mem::size_of::<f64>();
        let params: usize = self.net_layers.iter().map(|l| l.nnz() + l.outputs()).sum();
        let neurons: usize = self.layers.iter().map(|l| l.lo.len()).sum();
        // lo, hi; six relaxation vectors; v
        f * (params + 9 * neurons + 3 * self.raw.dim() + 2 * self.input.dim())
    }

    /// How many leading layers of `net` equal the parked ones bit for bit (at most `limit`).
    fn common_prefix(&self, net: &Network, limit: usize) -> usize {
        self.net_layers
            .iter()
            .zip(net.layers())
            .take(limit)
            .take_while(|(a, b)| same_bits(a, b))
            .count()
    }
}

/// Exact equality of what DeepPoly reads of a layer: shape, bias bits, and the matrix entries
/// (bit for bit for dense storage; entry by entry for sparse storage, whose rows DeepPoly reads
/// through [`Affine::row_entries`]).
fn same_bits(a: &Affine, b: &Affine) -> bool {
    if a.inputs() != b.inputs()
        || a.outputs() != b.outputs()
        || a.is_sparse() != b.is_sparse()
        || a.coef_error() != b.coef_error()
    {
        return false;
    }
    let bits = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
    };
    if !bits(a.bias(), b.bias()) {
        return false;
    }
    match (a.weights(), b.weights()) {
        (Some(x), Some(y)) => bits(x, y),
        _ => (0..a.outputs()).all(|j| {
            a.row_entries(j)
                .map(|(c, v)| (c, v.to_bits()))
                .eq(b.row_entries(j).map(|(c, v)| (c, v.to_bits())))
        }),
    }
}

fn same_box(a: &InputBox, b: &InputBox) -> bool {
    let bits = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
    };
    bits(a.lo(), b.lo()) && bits(a.hi(), b.hi())
}

/// Counters of a [`PrefixCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixStats {
    /// Proofs run through the cache.
    pub runs: usize,
    /// Affine layers whose DeepPoly state was taken from the cache.
    pub layers_reused: usize,
    /// Affine layers computed.
    pub layers_computed: usize,
}

/// Per-slot DeepPoly prefixes for a stream of candidate networks (see the module
/// documentation): [`PrefixCache::prove_output`] gives bit for bit the result of
/// `DeepPoly::run(net, input)?.prove_output(spec)`, starting at the first layer that differs
/// from the network last proven in the same slot.
///
/// Memory: one parked state per slot, the last one only ([`PrefixCache::state_bytes`]).
/// Thread-safe: a slot in use by another thread is skipped (the proof then runs from scratch
/// and parks its own state), so results never depend on the interleaving.
#[derive(Debug)]
pub struct PrefixCache {
    slots: Vec<Mutex<Option<Parked>>>,
    runs: AtomicUsize,
    reused: AtomicUsize,
    computed: AtomicUsize,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("layers", &self.layers.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl PrefixCache {
    /// A cache with `slots` slots (one per property).
    pub fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
            runs: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
            computed: AtomicUsize::new(0),
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> PrefixStats {
        PrefixStats {
            runs: self.runs.load(Ordering::Relaxed),
            layers_reused: self.reused.load(Ordering::Relaxed),
            layers_computed: self.computed.load(Ordering::Relaxed),
        }
    }

    /// Bytes the parked states hold now: per slot the parameters of the network's
    /// hidden layers plus nine `f64` per hidden neuron and the boxes.
    pub fn state_bytes(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.lock().ok().and_then(|g| g.as_ref().map(Parked::bytes)))
            .sum()
    }

    /// `DeepPoly::run(net, input)?.prove_output(spec)` (the real semantics), reusing the state
    /// of the layers `net` shares with the network last proven in `slot` over the same box.
    /// Panics if `slot` is out of range.
    ///
    /// (docs/method.md, eqs. (18), (19), (72))
    pub fn prove_output(
        &self,
        slot: usize,
        net: &Network,
        input: &InputBox,
        spec: OutputSpec,
    ) -> Result<(bool, f64), BoundsError> {
        let (dp, old_layers, old_map) = self.start(slot, net, input)?;
        let r = dp.prove_output(spec);
        self.park(slot, dp, input, old_layers, old_map);
        r
    }

    /// DeepPoly on every layer the output proof reads (all but the last), from the slot's
    /// prefix where it applies; also returns the parked layer copies and input map to reuse.
    #[allow(clippy::type_complexity)]
    fn start<'a>(
        &self,
        slot: usize,
        net: &'a Network,
        input: &'a InputBox,
    ) -> Result<
        (
            DeepPoly<'a>,
            Vec<Affine>,
            Option<certquant_core::graph::InputMap>,
        ),
        BoundsError,
    > {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let need = net.depth().saturating_sub(1);
        // a slot in use elsewhere (or poisoned) counts as empty
        let parked = self.slots[slot]
            .try_lock()
            .ok()
            .and_then(|mut g| g.take())
            .filter(|p| {
                same_box(&p.raw, input)
                    && p.input_map.as_ref() == net.input_map()
                    && p.input.dim() == net.layers()[0].inputs()
            });
        let mut dp;
        let (mut old_layers, mut old_map) = (Vec::new(), None);
        match parked {
            Some(p) => {
                let keep = p.common_prefix(net, need);
                let Parked {
                    mut net_layers,
                    input_map,
                    input: mapped,
                    input_abs,
                    mut layers,
                    mut relax,
                    mut aff_v,
                    mut out_err,
                    ..
                } = p;
                net_layers.truncate(keep);
                layers.truncate(keep);
                relax.truncate(keep);
                aff_v.truncate(keep);
                out_err.truncate(keep);
                dp = DeepPoly {
                    net,
                    input: mapped,
                    input_abs,
                    layers,
                    relax,
                    aff_v,
                    fl_err: None,
                    out_err,
                };
                old_layers = net_layers;
                old_map = input_map;
                self.reused.fetch_add(keep, Ordering::Relaxed);
            }
            None => dp = DeepPoly::run_upto(net, input, 0)?,
        }
        self.computed
            .fetch_add(need - dp.computed_layers(), Ordering::Relaxed);
        dp.extend(need, ROW_BLOCK, &[])?;
        Ok((dp, old_layers, old_map))
    }

    /// Parks `dp`'s state in `slot` (dropping the symbolic bounds), unless the slot was
    /// filled meanwhile by another thread.
    fn park(
        &self,
        slot: usize,
        dp: DeepPoly<'_>,
        raw: &InputBox,
        mut net_layers: Vec<Affine>,
        old_map: Option<certquant_core::graph::InputMap>,
    ) {
        let net = dp.net;
        let DeepPoly {
            input,
            input_abs,
            mut layers,
            relax,
            aff_v,
            out_err,
            ..
        } = dp;
        let kept = net_layers.len();
        net_layers.extend(net.layers()[kept..layers.len()].iter().cloned());
        for l in &mut layers[kept..] {
            let dim = l.lower.dim();
            l.lower = LinearBounds::new(dim, Vec::new(), Vec::new());
            l.upper = LinearBounds::new(dim, Vec::new(), Vec::new());
        }
        let input_map = match old_map {
            Some(m) if Some(&m) == net.input_map() => Some(m),
            _ => net.input_map().cloned(),
        };
        let p = Parked {
            raw: raw.clone(),
            net_layers,
            input_map,
            input,
            input_abs,
            layers,
            relax,
            aff_v,
            out_err,
        };
        if let Ok(mut g) = self.slots[slot].try_lock()
            && g.is_none()
        {
            *g = Some(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::Strategy;
    use certquant_core::model::Affine;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_net(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Network {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| {
                let (inp, out) = (s[0], s[1]);
                let w = (0..inp * out)
                    .map(|_| rng.random_range(-1.0..1.0) / (inp as f64).sqrt())
                    .collect();
                let b = (0..out).map(|_| rng.random_range(-0.3..0.3)).collect();
                Affine::new(i, out, inp, w, b).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    /// Every number of a cold run that the reused run also has: all concrete bounds, the
    /// relaxations' effect (through the margins), the symbolic bounds of recomputed layers.
    fn concrete(dp: &DeepPoly) -> Vec<u64> {
        dp.layers()
            .iter()
            .flat_map(|l| l.lo.iter().chain(&l.hi).map(|v| v.to_bits()))
            .chain(dp.aff_v.iter().flatten().map(|v| v.to_bits()))
            .collect()
    }

    #[test]
    fn reused_prefixes_give_the_cold_run_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(72);
        let mut reused = 0;
        for trial in 0..12 {
            let depth = 2 + trial % 4;
            let mut sizes = vec![3 + rng.random_range(0..8)];
            for _ in 0..depth {
                sizes.push(2 + rng.random_range(0..12));
            }
            let net = random_net(&mut rng, &sizes);
            let props: Vec<(InputBox, OutputSpec)> = (0..3)
                .map(|i| {
                    let c: Vec<f64> = (0..sizes[0]).map(|_| rng.random::<f64>()).collect();
                    let label = net.predict(&c);
                    let eps = [0.0, 0.01, 0.05, 0.2][(trial + i) % 4];
                    let spec = if i == 2 {
                        OutputSpec::NotTarget {
                            target: (label + 1) % net.output_dim(),
                        }
                    } else {
                        OutputSpec::Robust { label }
                    };
                    (InputBox::linf_ball(&c, eps).unwrap(), spec)
                })
                .collect();
            let cache = PrefixCache::new(props.len());
            // a random walk over fractional widths: change one or two layers per step, or
            // jump (every layer new), or repeat the candidate
            let mut fr: Vec<u32> = (0..depth).map(|_| rng.random_range(1..=10)).collect();
            for _ in 0..25 {
                match rng.random_range(0..5) {
                    0 => fr = (0..depth).map(|_| rng.random_range(1..=10)).collect(),
                    1 => {}
                    _ => {
                        for _ in 0..rng.random_range(1..=2) {
                            let k = rng.random_range(0..depth);
                            fr[k] = rng.random_range(1..=10);
                        }
                    }
                }
                let q = Strategy::from_fracs(&net, &fr)
                    .unwrap()
                    .apply(&net)
                    .unwrap();
                for (i, (bx, spec)) in props.iter().enumerate() {
                    let cold = DeepPoly::run(&q, bx).unwrap();
                    let want = cold.prove_output(*spec).unwrap();
                    // the state the cache would continue from equals the cold run's
                    let (dp, old, map) = cache.start(i, &q, bx).unwrap();
                    let a = concrete(&dp);
                    let b = concrete(&DeepPoly::run_upto(&q, bx, q.depth() - 1).unwrap());
                    assert_eq!(a, b, "trial {trial} slot {i} fracs {fr:?}");
                    for k in old.len()..dp.computed_layers() {
                        assert_eq!(dp.layer(k), cold.layer(k), "symbolic bounds, layer {k}");
                    }
                    let got = dp.prove_output(*spec).unwrap();
                    cache.park(i, dp, bx, old, map);
                    assert_eq!(got.0, want.0);
                    assert_eq!(got.1.to_bits(), want.1.to_bits(), "margin {got:?} {want:?}");
                    // and through the public entry point (now from the state just parked)
                    let again = cache.prove_output(i, &q, bx, *spec).unwrap();
                    assert_eq!(again.1.to_bits(), want.1.to_bits());
                }
            }
            let s = cache.stats();
            assert_eq!(s.runs, 2 * 25 * props.len());
            reused += s.layers_reused;
            assert!(cache.state_bytes() > 0);
        }
        assert!(reused > 0, "the walk must reuse some layers");
    }

    #[test]
    fn a_different_box_or_network_is_never_reused() {
        let mut rng = ChaCha8Rng::seed_from_u64(73);
        let a = random_net(&mut rng, &[4, 6, 5, 3]);
        let b = random_net(&mut rng, &[4, 6, 5, 3]);
        let c: Vec<f64> = (0..4).map(|_| rng.random::<f64>()).collect();
        let (b1, b2) = (
            InputBox::linf_ball(&c, 0.05).unwrap(),
            InputBox::linf_ball(&c, 0.1).unwrap(),
        );
        let spec = OutputSpec::Robust {
            label: a.predict(&c),
        };
        let cache = PrefixCache::new(1);
        for (net, bx) in [(&a, &b1), (&a, &b2), (&b, &b2), (&a, &b2)] {
            let got = cache.prove_output(0, net, bx, spec).unwrap();
            let want = DeepPoly::run(net, bx).unwrap().prove_output(spec).unwrap();
            assert_eq!(got.1.to_bits(), want.1.to_bits());
        }
        // nothing was shared: other box, other layers, other layers again
        assert_eq!(cache.stats().layers_reused, 0);
        cache.prove_output(0, &a, &b2, spec).unwrap();
        assert_eq!(cache.stats().layers_reused, 2);
    }
}
