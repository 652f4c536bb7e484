//! The network under training: affine layers with their gradients and Adam state, the
//! Adam update, and the per-sample forward/backward pass (softmax cross-entropy), all in
//! `f32` with sums in one fixed order.

use rand_chacha::ChaCha8Rng;

use super::det::{det_exp, det_ln, unit_f64};
use crate::model::{Affine, ModelError};

/// Adam's decay rate of the first-moment (mean) estimate.
pub(super) const BETA1: f64 = 0.9;
/// Adam's decay rate of the second-moment (uncentred variance) estimate.
pub(super) const BETA2: f64 = 0.999;
/// Adam's denominator guard.
const EPSILON: f32 = 1e-8;

/// One affine layer under training, with its gradient and Adam state.
///
/// Weights are stored *transposed* (`inputs × outputs`, row `i` = the weights leaving input
/// `i`): both the forward product and the weight gradient then become `axpy` updates over
/// contiguous rows, which vectorise without reordering any sum and let zero inputs be skipped.
pub(super) struct Layer {
    inputs: usize,
    outputs: usize,
    /// Transposed weights, `inputs × outputs` row-major.
    wt: Vec<f32>,
    b: Vec<f32>,
    /// Gradient of the batch-mean loss, same layout as `wt` / `b`.
    gw: Vec<f32>,
    gb: Vec<f32>,
    /// Adam first and second moments, same layout as `wt` / `b`.
    mw: Vec<f32>,
    vw: Vec<f32>,
    mb: Vec<f32>,
    vb: Vec<f32>,
}

/// The scalars of one Adam update (bias corrections `c1 = 1/(1-β1^t)`, `c2 = 1/(1-β2^t)`).
pub(super) struct AdamStep {
    /// Step size.
    pub(super) lr: f32,
    /// L2 coefficient added to the weight gradients.
    pub(super) wd: f32,
    /// First-moment bias correction.
    pub(super) c1: f32,
    /// Second-moment bias correction.
    pub(super) c2: f32,
}

impl Layer {
    /// He-uniform initialisation: weights uniform in `±sqrt(6 / inputs)`, biases zero.
    /// Weights are drawn in the row-major order of the `outputs × inputs` matrix.
    pub(super) fn he_uniform(inputs: usize, outputs: usize, rng: &mut ChaCha8Rng) -> Self {
        let limit = (6.0 / inputs as f64).sqrt();
        let mut wt = vec![0.0_f32; inputs * outputs];
        for j in 0..outputs {
            for i in 0..inputs {
                wt[i * outputs + j] = ((2.0 * unit_f64(rng) - 1.0) * limit) as f32;
            }
        }
        let zeros_w = vec![0.0_f32; inputs * outputs];
        let zeros_b = vec![0.0_f32; outputs];
        Self {
            inputs,
            outputs,
            wt,
            b: zeros_b.clone(),
            gw: zeros_w.clone(),
            gb: zeros_b.clone(),
            mw: zeros_w.clone(),
            vw: zeros_w,
            mb: zeros_b.clone(),
            vb: zeros_b,
        }
    }

    /// Clears the gradient buffers before a batch.
    pub(super) fn zero_grad(&mut self) {
        self.gw.fill(0.0);
        self.gb.fill(0.0);
    }

    /// One Adam step on weights (with L2 decay) and biases (without).
    pub(super) fn adam(&mut self, s: &AdamStep) {
        adam_update(&mut self.wt, &self.gw, &mut self.mw, &mut self.vw, s, s.wd);
        adam_update(&mut self.b, &self.gb, &mut self.mb, &mut self.vb, s, 0.0);
    }

    /// The layer as a model [`Affine`] (`outputs × inputs`, values widened exactly to f64).
    pub(super) fn to_affine(&self, idx: usize) -> Result<Affine, ModelError> {
        let mut w = Vec::with_capacity(self.inputs * self.outputs);
        for j in 0..self.outputs {
            w.extend((0..self.inputs).map(|i| f64::from(self.wt[i * self.outputs + j])));
        }
        let b = self.b.iter().map(|&v| f64::from(v)).collect();
        Affine::new(idx, self.outputs, self.inputs, w, b)
    }
}

/// Adam on one parameter tensor; `wd` is the L2 coefficient added to its gradient.
fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep, wd: f32) {
    let (b1, b2) = (BETA1 as f32, BETA2 as f32);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g + wd * *p;
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= s.lr * (*m * s.c1) / ((*v * s.c2).sqrt() + EPSILON);
    }
}

/// Per-sample scratch buffers, allocated once per training run.
pub(super) struct Workspace {
    /// For each layer, the non-zero entries of its input: indices and values.
    /// For hidden layers these are exactly the active ReLUs.
    nz_idx: Vec<Vec<usize>>,
    nz_val: Vec<Vec<f32>>,
    /// Pre-activation output of each layer.
    pre: Vec<Vec<f32>>,
    /// Unnormalised softmax `e^(z_k - max z)` of the logits, in f64.
    probs: Vec<f64>,
    /// Loss gradient w.r.t. the current layer's output, and w.r.t. its input.
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
}

impl Workspace {
    /// Buffers for a network whose layer widths (input first) are `widths`.
    pub(super) fn new(widths: &[usize]) -> Self {
        let layers = widths.len() - 1;
        let widest = widths.iter().copied().max().unwrap_or(0);
        Self {
            nz_idx: widths[..layers]
                .iter()
                .map(|&w| Vec::with_capacity(w))
                .collect(),
            nz_val: widths[..layers]
                .iter()
                .map(|&w| Vec::with_capacity(w))
                .collect(),
            pre: widths[1..].iter().map(|&w| vec![0.0; w]).collect(),
            probs: Vec::with_capacity(widths[layers]),
            delta: Vec::with_capacity(widest),
            delta_prev: Vec::with_capacity(widest),
        }
    }

    /// Forward and backward pass of one sample: adds `scale ×` its loss gradient to the
    /// layers' gradient buffers and returns its cross-entropy and whether it was classified
    /// correctly.
    pub(super) fn accumulate(
        &mut self,
        layers: &mut [Layer],
        x: &[f64],
        label: usize,
        scale: f64,
    ) -> (f64, bool) {
        let last = layers.len() - 1;
        // Sparse input (exact zeros skipped).
        self.nz_idx[0].clear();
        self.nz_val[0].clear();
        for (i, &v) in x.iter().enumerate() {
            if v != 0.0 {
                self.nz_idx[0].push(i);
                self.nz_val[0].push(v as f32);
            }
        }

        // Forward.
        for (l, layer) in layers.iter().enumerate() {
            let out = layer.outputs;
            let z = &mut self.pre[l];
            z.copy_from_slice(&layer.b);
            for (&i, &v) in self.nz_idx[l].iter().zip(&self.nz_val[l]) {
                let row = &layer.wt[i * out..(i + 1) * out];
                for (z, &w) in z.iter_mut().zip(row) {
                    *z += v * w;
                }
            }
            if l < last {
                let (idx, val) = (&mut self.nz_idx[l + 1], &mut self.nz_val[l + 1]);
                idx.clear();
                val.clear();
                for (j, &v) in z.iter().enumerate() {
                    if v > 0.0 {
                        idx.push(j);
                        val.push(v);
                    }
                }
            }
        }

        // Softmax cross-entropy, evaluated in f64 with the portable exp/ln.
        let logits = &self.pre[last];
        let predicted = argmax_f32(logits);
        let max = f64::from(logits[predicted]);
        self.probs.clear();
        self.probs
            .extend(logits.iter().map(|&z| det_exp(f64::from(z) - max)));
        let sum: f64 = self.probs.iter().sum();
        self.delta.clear();
        self.delta
            .extend(self.probs.iter().enumerate().map(|(k, &e)| {
                let target = if k == label { 1.0 } else { 0.0 };
                ((e / sum - target) * scale) as f32
            }));
        let loss = det_ln(sum) - (f64::from(logits[label]) - max);

        // Backward.
        for l in (0..=last).rev() {
            let layer = &mut layers[l];
            let out = layer.outputs;
            for (&i, &v) in self.nz_idx[l].iter().zip(&self.nz_val[l]) {
                let row = &mut layer.gw[i * out..(i + 1) * out];
                for (g, &d) in row.iter_mut().zip(&self.delta) {
                    *g += v * d;
                }
            }
            for (g, &d) in layer.gb.iter_mut().zip(&self.delta) {
                *g += d;
            }
            if l > 0 {
                // Only active ReLUs pass the gradient on; they are exactly nz_idx[l].
                self.delta_prev.clear();
                self.delta_prev.resize(layer.inputs, 0.0);
                for &i in &self.nz_idx[l] {
                    let row = &layer.wt[i * out..(i + 1) * out];
                    self.delta_prev[i] = row
                        .iter()
                        .zip(&self.delta)
                        .fold(0.0_f32, |acc, (&w, &d)| acc + w * d);
                }
                std::mem::swap(&mut self.delta, &mut self.delta_prev);
            }
        }
        (loss, predicted == label)
    }
}

/// Index of the first maximal entry (ties towards the lower index, like [`crate::model::argmax`]).
fn argmax_f32(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
