//! Cheap candidate tests: the class a candidate QNN gives every image of a labelled data set,
//! computed with batched matrix products (a real GEMM, `matrixmultiply`) and exactly the class
//! [`Network::predict`] gives (docs/method.md, eqs. (61)–(62)).
//!
//! The accuracy floor of the property-set search (eq. (43)) evaluates thousands of candidate
//! networks on the 10,000 test images; one image at a time, in `predict`'s summation order,
//! that dominated the search (issue 16). Here:
//!
//! * images are one matrix, in chunks of [`CHUNK`] rows, ordered hardest-first (smallest
//!   top-2 margin of the reference network first, misclassified images before all), so a bad
//!   candidate exceeds its error budget within the first chunks and the rest is skipped: an
//!   exact rejection;
//! * each dense layer of a chunk is one GEMM; a sparse (lowered structured) layer uses its
//!   non-zero entries;
//! * the activations after every hidden layer are cached per chunk, keyed by the exact layers
//!   of the prefix, so a candidate that changes only later layers reuses them;
//! * a GEMM sums in another order than `predict`, so its logits may differ in the last bits.
//!   Both results lie within `δ` of the exact real-valued logits, with `δ` the rigorous bound of
//!   eq. (62); where the GEMM's top-2 gap is at most `4δ` (or anything is not finite), the
//!   image is re-run through `predict` itself. The counted class is then `predict`'s on every
//!   image, so the floor's count is exact.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use certquant_core::data::Dataset;
use certquant_core::graph::InputMap;
use certquant_core::model::{Affine, Network, argmax};
use rayon::prelude::*;

use crate::deadline::Deadline;

/// Images per chunk: a GEMM of this many rows is efficient, and a rejected candidate stops
/// after few of them.
pub const CHUNK: usize = 256;

thread_local! {
    /// Two activation buffers per thread for the layers whose outputs are not cached.
    static SCRATCH: std::cell::RefCell<(Vec<f64>, Vec<f64>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Default bound on the bytes of cached hidden activations.
pub const DEFAULT_CACHE_BYTES: usize = 768 << 20;

/// Counters of a [`BatchEval`] (for benchmarks and reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Chunks evaluated (of all candidates).
    pub chunks: usize,
    /// Layer products skipped because the chunk's activations were cached.
    pub cached_layers: usize,
    /// Images re-run through `Network::predict` because their GEMM top-2 gap was within the
    /// rounding bound (eq. (62)).
    pub rechecked: usize,
}

/// The labelled images of a data set as a matrix, ready to classify many candidate networks
/// of one shape (see the module documentation).
pub struct BatchEval {
    data: Arc<Dataset>,
    /// Dataset index of each row, hardest-first.
    index: Vec<usize>,
    labels: Vec<usize>,
    /// Mapped inputs, one matrix per chunk (`rows × width`, row-major).
    inputs: Vec<Arc<Vec<f64>>>,
    width: usize,
    input_map: Option<InputMap>,
    max_abs_input: f64,
    cache: Mutex<Cache>,
    chunks: AtomicUsize,
    cached_layers: AtomicUsize,
    rechecked: AtomicUsize,
}

impl std::fmt::Debug for BatchEval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEval")
            .field("images", &self.index.len())
            .field("width", &self.width)
            .finish()
    }
}

/// Cached activations after hidden layer `k` of one exact prefix of layers.
struct Level {
    prefix: Vec<Affine>,
    keys: Vec<u64>,
    chunks: Vec<OnceLock<Arc<Vec<f64>>>>,
    bytes: usize,
    used: AtomicU64,
}

struct Cache {
    levels: Vec<Arc<Level>>,
    clock: u64,
    budget: usize,
}

impl BatchEval {
    /// The labelled images of `data`, mapped through `reference`'s input map and ordered
    /// hardest-first by `reference`'s top-2 margin (unlabelled images are left out).
    pub fn new(reference: &Network, data: Arc<Dataset>) -> Self {
        Self::with_cache(reference, data, DEFAULT_CACHE_BYTES)
    }

    /// [`BatchEval::new`] with a bound on the cached activations in bytes (0 disables the
    /// cache).
    pub fn with_cache(reference: &Network, data: Arc<Dataset>, cache_bytes: usize) -> Self {
        let labelled: Vec<usize> = (0..data.len())
            .filter(|&i| data.label(i).is_some() && data.image(i).is_some())
            .collect();
        let width = reference.layers()[0].inputs();
        let mapped: Vec<Vec<f64>> = labelled
            .par_iter()
            .map(|&i| reference.map_input(data.image(i).unwrap_or(&[])))
            .collect();
        // hardest-first: the reference's margin (label logit − best other), ascending
        let mut margin = vec![0.0; labelled.len()];
        for (c, rows) in mapped.chunks(CHUNK).enumerate() {
            let m: Vec<f64> = rows.iter().flatten().copied().collect();
            let logits = forward_rows(reference, &m, rows.len());
            let out = reference.output_dim();
            for (r, l) in logits.chunks(out).enumerate() {
                let i = c * CHUNK + r;
                let y = data.label(labelled[i]).unwrap_or(0);
                let best_other = l
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != y)
                    .map(|(_, &v)| v)
                    .fold(f64::NEG_INFINITY, f64::max);
                margin[i] = l.get(y).copied().unwrap_or(f64::NEG_INFINITY) - best_other;
            }
        }
        let mut order: Vec<usize> = (0..labelled.len()).collect();
        order.sort_by(|&a, &b| margin[a].total_cmp(&margin[b]).then(a.cmp(&b)));
        let index: Vec<usize> = order.iter().map(|&r| labelled[r]).collect();
        let labels = index.iter().map(|&i| data.label(i).unwrap_or(0)).collect();
        let max_abs_input = mapped.iter().flatten().fold(0.0f64, |m, v| {
            if v.is_finite() {
                m.max(v.abs())
            } else {
                f64::INFINITY
            }
        });
        let inputs = order
            .chunks(CHUNK)
            .map(|rows| {
                rows.iter()
                    .flat_map(|&r| mapped[r].iter().copied())
                    .collect::<Vec<f64>>()
                    .into()
            })
            .collect();
        Self {
            data,
            index,
            labels,
            inputs,
            width,
            input_map: reference.input_map().cloned(),
            max_abs_input,
            cache: Mutex::new(Cache {
                levels: Vec::new(),
                clock: 0,
                budget: cache_bytes,
            }),
            chunks: AtomicUsize::new(0),
            cached_layers: AtomicUsize::new(0),
            rechecked: AtomicUsize::new(0),
        }
    }

    /// Number of labelled images.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no labelled image.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> BatchStats {
        BatchStats {
            chunks: self.chunks.load(Ordering::Relaxed),
            cached_layers: self.cached_layers.load(Ordering::Relaxed),
            rechecked: self.rechecked.load(Ordering::Relaxed),
        }
    }

    /// Misclassified images for `net` — the class of each image is exactly
    /// `net.predict(image)` — counted exactly up to `stop`; once the count exceeds `stop`
    /// the remaining chunks are skipped and the result is some number above `stop` (an exact
    /// rejection, eq. (61)). Chunks run in parallel, hardest first.
    pub fn errors(&self, net: &Network, stop: usize) -> usize {
        self.errors_until(net, stop, Deadline::NONE)
    }

    /// [`BatchEval::errors`] that also stops once `deadline` passes (checked before every
    /// chunk); the result is then `usize::MAX`, i.e. above any `stop`: a cut-short count
    /// rejects, it never admits (docs/method.md eq. (82)).
    pub fn errors_until(&self, net: &Network, stop: usize, deadline: Deadline) -> usize {
        if deadline.expired() {
            return usize::MAX;
        }
        if net.layers()[0].inputs() != self.width || net.input_map() != self.input_map.as_ref() {
            return self.errors_scalar(net, stop);
        }
        let levels = self.levels_for(net);
        let delta = deviation_bound(net, self.max_abs_input);
        let next = AtomicUsize::new(0);
        let wrong = AtomicUsize::new(0);
        let threads = rayon::current_num_threads().max(1);
        let cut = std::sync::atomic::AtomicBool::new(false);
        (0..threads).into_par_iter().for_each(|_| {
            loop {
                if wrong.load(Ordering::Relaxed) > stop {
                    return;
                }
                if deadline.expired() {
                    cut.store(true, Ordering::Relaxed);
                    return;
                }
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= self.inputs.len() {
                    return;
                }
                let e = self.chunk_errors(net, &levels, c, delta);
                wrong.fetch_add(e, Ordering::Relaxed);
            }
        });
        let wrong = wrong.into_inner();
        if cut.into_inner() && wrong <= stop {
            return usize::MAX;
        }
        wrong
    }

    /// The class of every labelled image (in data-set order of the labelled images) as
    /// `net.predict` gives it; for tests and audits.
    pub fn classes(&self, net: &Network) -> Vec<(usize, usize)> {
        let levels = self.levels_for(net);
        let delta = deviation_bound(net, self.max_abs_input);
        let same =
            net.layers()[0].inputs() == self.width && net.input_map() == self.input_map.as_ref();
        let mut out: Vec<(usize, usize)> = (0..self.inputs.len())
            .into_par_iter()
            .flat_map_iter(|c| {
                let rows = self.chunk_rows(c);
                let classes: Vec<usize> = if same {
                    self.chunk_classes(net, &levels, c, delta)
                } else {
                    rows.clone()
                        .map(|r| net.predict(self.data.image(self.index[r]).unwrap_or(&[])))
                        .collect()
                };
                rows.map(|r| self.index[r]).zip(classes).collect::<Vec<_>>()
            })
            .collect();
        out.sort_unstable();
        out
    }

    fn chunk_rows(&self, c: usize) -> std::ops::Range<usize> {
        c * CHUNK..((c + 1) * CHUNK).min(self.index.len())
    }

    fn chunk_errors(&self, net: &Network, levels: &[Arc<Level>], c: usize, delta: f64) -> usize {
        let classes = self.chunk_classes(net, levels, c, delta);
        self.chunk_rows(c)
            .zip(classes)
            .filter(|&(r, k)| k != self.labels[r])
            .count()
    }

    /// `predict`'s class for each row of chunk `c`.
    fn chunk_classes(
        &self,
        net: &Network,
        levels: &[Arc<Level>],
        c: usize,
        delta: f64,
    ) -> Vec<usize> {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        let rows = self.chunk_rows(c).len();
        let depth = net.depth();
        // the deepest cached activations of this chunk (or its inputs)
        let mut start = 0;
        let mut held: Option<Arc<Vec<f64>>> = Some(self.inputs[c].clone());
        for k in (0..levels.len()).rev() {
            if let Some(a) = levels[k].chunks[c].get() {
                held = Some(a.clone());
                start = k + 1;
                self.cached_layers.fetch_add(k + 1, Ordering::Relaxed);
                break;
            }
        }
        // activations that are not cached live in two per-thread scratch buffers, reused from
        // chunk to chunk and layer to layer: no fresh allocation (and page faults) per layer
        SCRATCH.with(|scratch| {
            let (mut a, mut b) = std::mem::take(&mut *scratch.borrow_mut());
            for k in start..depth {
                let src: &[f64] = held.as_deref().map_or(&a, |h| h.as_slice());
                layer_rows_into(&net.layers()[k], src, rows, &mut b);
                if k + 1 < depth {
                    b.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                match levels.get(k) {
                    Some(l) if k + 1 < depth => {
                        let kept = Arc::new(std::mem::take(&mut b));
                        let _ = l.chunks[c].set(kept.clone());
                        held = Some(kept);
                    }
                    _ => {
                        std::mem::swap(&mut a, &mut b);
                        held = None;
                    }
                }
            }
            let act: &[f64] = held.as_deref().map_or(&a, |h| h.as_slice());
            let classes = self.classify(net, act, c, delta);
            *scratch.borrow_mut() = (a, b);
            classes
        })
    }

    /// The classes of chunk `c` from its logits `act` (re-run through `predict` where the
    /// top-2 gap is within the rounding bound, eq. (62)).
    fn classify(&self, net: &Network, act: &[f64], c: usize, delta: f64) -> Vec<usize> {
        let out = net.output_dim();
        act.chunks(out)
            .zip(self.chunk_rows(c))
            .map(|(l, r)| {
                let k = argmax(l);
                let second = l
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .map(|(_, &v)| v)
                    .fold(f64::NEG_INFINITY, f64::max);
                let gap = l[k] - second;
                // eq. (62): both results lie within δ of the exact logits
                if out > 1 && !(gap.is_finite() && gap > 4.0 * delta) {
                    self.rechecked.fetch_add(1, Ordering::Relaxed);
                    net.predict(self.data.image(self.index[r]).unwrap_or(&[]))
                } else {
                    k
                }
            })
            .collect()
    }

    /// The old path: `predict` one image at a time, hardest first, with the same early stop.
    fn errors_scalar(&self, net: &Network, stop: usize) -> usize {
        let wrong = AtomicUsize::new(0);
        (0..self.inputs.len()).into_par_iter().for_each(|c| {
            if wrong.load(Ordering::Relaxed) > stop {
                return;
            }
            let e = self
                .chunk_rows(c)
                .filter(|&r| {
                    net.predict(self.data.image(self.index[r]).unwrap_or(&[])) != self.labels[r]
                })
                .count();
            wrong.fetch_add(e, Ordering::Relaxed);
        });
        wrong.into_inner()
    }

    /// The cache levels for `net`'s hidden-layer prefixes (created when missing, least
    /// recently used ones dropped beyond the budget).
    fn levels_for(&self, net: &Network) -> Vec<Arc<Level>> {
        let hidden = net.depth() - 1;
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if cache.budget == 0 || hidden == 0 {
            return Vec::new();
        }
        cache.clock += 1;
        let now = cache.clock;
        let keys: Vec<u64> = net.layers()[..hidden].iter().map(layer_key).collect();
        let mut out = Vec::with_capacity(hidden);
        for k in 0..hidden {
            let found = cache.levels.iter().find(|l| {
                l.keys.len() == k + 1 && l.keys == keys[..=k] && l.prefix == net.layers()[..=k]
            });
            let level = match found {
                Some(l) => l.clone(),
                None => {
                    let bytes = self.index.len() * net.layers()[k].outputs() * 8;
                    let l = Arc::new(Level {
                        prefix: net.layers()[..=k].to_vec(),
                        keys: keys[..=k].to_vec(),
                        chunks: (0..self.inputs.len()).map(|_| OnceLock::new()).collect(),
                        bytes,
                        used: AtomicU64::new(now),
                    });
                    cache.levels.push(l.clone());
                    l
                }
            };
            level.used.store(now, Ordering::Relaxed);
            out.push(level);
        }
        // evict least recently used levels beyond the budget (never the ones just resolved)
        loop {
            let total: usize = cache.levels.iter().map(|l| l.bytes).sum();
            if total <= cache.budget {
                break;
            }
            let victim = cache
                .levels
                .iter()
                .enumerate()
                .filter(|(_, l)| l.used.load(Ordering::Relaxed) < now)
                .min_by_key(|(_, l)| l.used.load(Ordering::Relaxed))
                .map(|(i, _)| i);
            match victim {
                Some(i) => {
                    cache.levels.swap_remove(i);
                }
                None => break,
            }
        }
        // what still does not fit is not cached: the deepest levels of this prefix go first
        // (a wide lowered chain would otherwise keep every hidden activation of every image)
        while cache.levels.iter().map(|l| l.bytes).sum::<usize>() > cache.budget {
            let Some(last) = out.pop() else { break };
            cache.levels.retain(|l| !Arc::ptr_eq(l, &last));
        }
        out
    }
}

/// A fingerprint of a layer's parameters (equality is still checked in full).
fn layer_key(l: &Affine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let (w, b) = l.params();
    (l.inputs(), l.outputs(), w.len()).hash(&mut h);
    for v in w.iter().chain(b) {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

/// `rows` inputs (row-major, `rows × layer.inputs()`) through one affine layer (no ReLU):
/// one GEMM for a dense layer, the non-zero entries for a sparse one.
fn layer_rows(layer: &Affine, x: &[f64], rows: usize) -> Vec<f64> {
    let mut y = Vec::new();
    layer_rows_into(layer, x, rows, &mut y);
    y
}

/// [`layer_rows`] into `y` (resized to `rows × layer.outputs()`, its allocation reused).
fn layer_rows_into(layer: &Affine, x: &[f64], rows: usize, y: &mut Vec<f64>) {
    let (n, m) = (layer.inputs(), layer.outputs());
    y.clear();
    y.resize(rows * m, 0.0);
    match layer.weights() {
        Some(w) => {
            // SAFETY: `x` is rows × n (row-major), `w` is m × n row-major, read as its
            // transpose (n × m, row stride 1, column stride n); `y` is rows × m row-major,
            // and every slice is exactly that long.
            assert_eq!(x.len(), rows * n);
            debug_assert_eq!(w.len(), m * n);
            unsafe {
                matrixmultiply::dgemm(
                    rows,
                    n,
                    m,
                    1.0,
                    x.as_ptr(),
                    n as isize,
                    1,
                    w.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    y.as_mut_ptr(),
                    m as isize,
                    1,
                );
            }
        }
        None => {
            // the non-zero entries once per call as flat arrays (no allocation per row),
            // then image by image (its input row stays in cache), each sum in the entries'
            // column order
            let mut start = Vec::with_capacity(m + 1);
            let mut entries: Vec<(usize, f64)> = Vec::with_capacity(layer.nnz());
            start.push(0);
            for j in 0..m {
                entries.extend(layer.row_entries(j));
                start.push(entries.len());
            }
            for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)).take(rows) {
                for (j, v) in yr.iter_mut().enumerate() {
                    *v = entries[start[j]..start[j + 1]]
                        .iter()
                        .map(|&(c, w)| w * xr[c])
                        .sum();
                }
            }
        }
    }
    let b = layer.bias();
    for row in y.chunks_mut(m) {
        row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
    }
}

/// Logits of `rows` mapped inputs (no input map applied, no rounding bound): for ordering.
fn forward_rows(net: &Network, x: &[f64], rows: usize) -> Vec<f64> {
    let mut act = x.to_vec();
    let last = net.depth() - 1;
    for (k, l) in net.layers().iter().enumerate() {
        act = layer_rows(l, &act, rows);
        if k < last {
            act.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    act
}

/// Relative slack on the bound's own floating-point evaluation (each step is a handful of
/// operations with relative error about 1e-16; 1% covers it many times over).
const SLACK: f64 = 1.01;

/// The rigorous bound `δ` of docs/method.md eq. (62): for inputs with `|x|∞ ≤ s0`, every
/// logit computed in f64 with *any* summation order (a GEMM, or `predict`'s) lies within `δ`
/// of the exact real-valued logit. Per layer with `n` inputs, row sums `R = max_j Σ_i |w_ji|`
/// and `β = max_j |b_j|`, and `γ = (n+1)u/(1−(n+1)u)` (`u = 2^-53`, Higham's bound for a dot
/// product of `n` terms plus the bias): `e' = R·e + γ·(R·s + β)`, `s' = R·s + β + e'`
/// (ReLU is 1-Lipschitz and does not increase magnitudes). `+∞` when anything overflows.
pub fn deviation_bound(net: &Network, s0: f64) -> f64 {
    let u = f64::EPSILON / 2.0;
    let (mut s, mut e) = (s0, 0.0f64);
    for layer in net.layers() {
        let nu = (layer.inputs() + 1) as f64 * u;
        if nu >= 0.5 {
            return f64::INFINITY;
        }
        let gamma = nu / (1.0 - nu) * SLACK;
        let mut r = 0.0f64;
        for j in 0..layer.outputs() {
            r = r.max(layer.row_entries(j).map(|(_, v)| v.abs()).sum::<f64>());
        }
        let r = r * SLACK;
        let beta = layer.bias().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let e_next = (r * e + gamma * (r * s + beta)) * SLACK;
        s = (r * s + beta + e_next) * SLACK;
        e = e_next;
        if !(e.is_finite() && s.is_finite()) {
            return f64::INFINITY;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_net(rng: &mut ChaCha8Rng, dims: &[usize]) -> Network {
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, d)| {
                let w = (0..d[0] * d[1])
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let b = (0..d[1]).map(|_| rng.random_range(-0.5..0.5)).collect();
                Affine::new(i, d[1], d[0], w, b).unwrap()
            })
            .collect();
        Network::new(layers).unwrap()
    }

    fn random_data(rng: &mut ChaCha8Rng, n: usize, dim: usize, classes: usize) -> Arc<Dataset> {
        let xs = (0..n * dim).map(|_| rng.random_range(0.0..1.0)).collect();
        let ys = (0..n).map(|_| rng.random_range(0..classes) as u8).collect();
        Arc::new(Dataset::from_parts(dim, xs, Some(ys)).unwrap())
    }

    #[test]
    fn classes_equal_predict_on_every_image() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let net = random_net(&mut rng, &[30, 40, 20, 5]);
        let data = random_data(&mut rng, 1000, 30, 5);
        let ev = BatchEval::new(&net, data.clone());
        for (i, k) in ev.classes(&net) {
            assert_eq!(k, net.predict(data.image(i).unwrap()), "image {i}");
        }
        // a second network of the same shape, sharing the first layer (cache hit)
        let other = net
            .with_layer(2, random_net(&mut rng, &[20, 5]).layers()[0].clone())
            .unwrap();
        let before = ev.stats().cached_layers;
        for (i, k) in ev.classes(&other) {
            assert_eq!(k, other.predict(data.image(i).unwrap()), "image {i}");
        }
        assert!(ev.stats().cached_layers > before, "the prefix is reused");
        let exact = (0..data.len())
            .filter(|&i| other.predict(data.image(i).unwrap()) != data.label(i).unwrap())
            .count();
        assert_eq!(ev.errors(&other, usize::MAX), exact);
        assert!(ev.errors(&other, 10) > 10);
    }

    #[test]
    fn ties_are_rechecked_and_broken_like_predict() {
        // two equal output rows: every image is an exact tie, predict picks the lower index
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net = random_net(&mut rng, &[8, 6, 3]);
        let l1 = &net.layers()[1];
        let w = l1.weights().unwrap().to_vec();
        let mut w2 = w.clone();
        w2[6..12].copy_from_slice(&w[12..18]);
        let mut b = l1.bias().to_vec();
        b[1] = b[2];
        let tied = net
            .with_layer(1, Affine::new(1, 3, 6, w2, b).unwrap())
            .unwrap();
        let data = random_data(&mut rng, 300, 8, 3);
        let ev = BatchEval::with_cache(&tied, data.clone(), 0);
        for (i, k) in ev.classes(&tied) {
            assert_eq!(k, tied.predict(data.image(i).unwrap()));
        }
        assert!(ev.stats().rechecked > 0);
    }

    #[test]
    fn the_bound_covers_the_difference_of_two_orders() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let net = random_net(&mut rng, &[50, 30, 4]);
        let data = random_data(&mut rng, 200, 50, 4);
        let delta = deviation_bound(&net, 1.0);
        assert!(delta > 0.0 && delta < 1e-9);
        let xs: Vec<f64> = data.pixels().to_vec();
        let gemm = forward_rows(&net, &xs, 200);
        for i in 0..200 {
            let f = net.forward(data.image(i).unwrap());
            for (a, b) in f.iter().zip(&gemm[i * 4..(i + 1) * 4]) {
                assert!((a - b).abs() <= 2.0 * delta);
            }
        }
    }
}
