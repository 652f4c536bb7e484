//! A small, reproducible trainer for the ReLU MLPs that [`crate::model::Network`] describes.
//!
//! The project ships a demo network that it trains with its own code, so that anyone can
//! rebuild the exact same float32 weights from the data set and a seed. That is why this
//! trainer is deliberately plain and *bit-for-bit deterministic*:
//!
//! * all randomness (He-uniform initialisation, per-epoch shuffling) comes from one
//!   [`ChaCha8Rng`] seeded with [`TrainConfig::seed`], and is turned into numbers with our
//!   own integer/float conversions instead of library samplers whose algorithms may change;
//! * every sum is taken in one fixed, sequential order on a single thread (no reductions
//!   whose order depends on the thread count);
//! * the only transcendental functions (`exp` in the softmax, `ln` in the reported loss)
//!   are implemented here from IEEE-754 basic operations, which are correctly rounded on
//!   every platform, instead of the platform `libm`, whose last bits differ between systems.
//!
//! Training itself is textbook: softmax cross-entropy on the logits, mini-batch gradients
//! averaged over the batch, L2 weight decay added to the weight gradients (not the biases),
//! and Adam (`β1 = 0.9`, `β2 = 0.999`, `ε = 1e-8`). Parameters, activations and gradients are
//! kept in `f32` for speed; the returned [`Network`] therefore holds float32 values widened
//! exactly to `f64`, so exporting it to a float32 ONNX file loses nothing.
//!
//! Inputs that are exactly zero (the background of an image, inactive ReLUs) are skipped in
//! the matrix products, which roughly halves the work on image data without changing results
//! beyond the sign of a zero.

// `det`: the portable random numbers and exp/ln; `mlp`: layers, Adam and the per-sample pass
mod det;
mod mlp;

use crate::model::{ModelError, Network};
use det::shuffle;
use mlp::{AdamStep, BETA1, BETA2, Layer, Workspace};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

/// Hyper-parameters of [`train`].
///
/// The defaults ([`TrainConfig::default`]) are the settings of the project's demo network:
/// a 784-32-16-10 MLP for Fashion-MNIST, small enough for MILP-based analysis and about
/// 100 KB as a float32 ONNX file.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Widths of the hidden (ReLU) layers, input side first. Default `[32, 16]`.
    /// An empty list trains a linear softmax classifier.
    pub hidden: Vec<usize>,
    /// Number of passes over the training data. Default `10`.
    pub epochs: usize,
    /// Samples per mini-batch; the last batch of an epoch may be smaller. Default `64`.
    pub batch_size: usize,
    /// Adam step size. Default `1e-3`.
    pub learning_rate: f64,
    /// L2 penalty coefficient `λ` (the gradient of `λ/2·‖W‖²` is added to the weight
    /// gradients, biases are not decayed). Small weights keep the later bound computations
    /// tight. Default `1e-5`.
    pub weight_decay: f64,
    /// Seed of the [`ChaCha8Rng`] behind initialisation and shuffling; the same seed gives
    /// the same network on every run and machine. Default `1`.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            hidden: vec![32, 16],
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-5,
            seed: 1,
        }
    }
}

/// Progress of one finished epoch, handed to the `on_epoch` callback of [`train`].
///
/// Both numbers are measured on the fly: each batch is scored by the forward pass that also
/// computes its gradient, i.e. with the weights as they were *before* that batch's update.
/// This costs nothing extra and is the usual "running" training metric; it slightly
/// understates what the network reaches by the end of the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// 1-based number of the epoch that just finished.
    pub epoch: usize,
    /// Mean softmax cross-entropy (natural log) over the epoch's samples, without the L2 term.
    pub loss: f64,
    /// Fraction of the epoch's samples whose largest logit was the true class.
    pub train_accuracy: f64,
}

/// Why [`train`] refused its input or could not produce a network.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TrainError {
    /// There are no training samples.
    #[error("no training samples")]
    EmptyData,
    /// The image buffer does not hold exactly `labels × dim` values.
    #[error("{images} image values do not match {labels} labels × {dim} values per image")]
    SizeMismatch {
        /// Length of the image buffer.
        images: usize,
        /// Number of labels.
        labels: usize,
        /// Values per image.
        dim: usize,
    },
    /// A label is not a valid class index.
    #[error("label {label} of sample {index} is not below the number of classes ({classes})")]
    LabelOutOfRange {
        /// 0-based sample index.
        index: usize,
        /// The offending label.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// An image value is NaN or infinite.
    #[error("image value at position {index} is not finite ({value})")]
    NonFiniteInput {
        /// Position in the flat image buffer.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A size is zero or a rate is not a usable number.
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    /// The loss became NaN or infinite (learning rate too large for the data).
    #[error("training diverged in epoch {epoch} (loss {loss})")]
    Diverged {
        /// 1-based epoch in which it happened.
        epoch: usize,
        /// The non-finite mean loss of that epoch.
        loss: f64,
    },
    /// The trained parameters did not form a valid network (cannot happen for finite values).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Trains a ReLU MLP `dim → cfg.hidden… → classes` with softmax cross-entropy and Adam.
///
/// `images` holds `labels.len()` samples of `dim` values each, row-major, normally scaled to
/// `[0, 1]` (any finite values are accepted); every label must be `< classes`. `on_epoch` is
/// called after each epoch with its [`EpochReport`] (use it for progress output).
///
/// The result is deterministic for a given input and [`TrainConfig::seed`] — identical on
/// every run and every machine — and every weight and bias of it is exactly representable
/// in `f32` (see the module documentation for how this is ensured).
///
/// # Errors
/// [`TrainError::InvalidConfig`] for `dim`, `classes`, a hidden width, `epochs` or
/// `batch_size` equal to zero, or a learning rate / weight decay that is not finite (or not
/// positive / negative respectively); [`TrainError::EmptyData`], [`TrainError::SizeMismatch`],
/// [`TrainError::LabelOutOfRange`] and [`TrainError::NonFiniteInput`] for bad data;
/// [`TrainError::Diverged`] if the loss stops being finite.
pub fn train(
    images: &[f64],
    labels: &[u8],
    dim: usize,
    classes: usize,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Network, TrainError> {
    validate(images, labels, dim, classes, cfg)?;
    let n = labels.len();

    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let widths: Vec<usize> = std::iter::once(dim)
        .chain(cfg.hidden.iter().copied())
        .chain(std::iter::once(classes))
        .collect();
    let mut layers: Vec<Layer> = widths
        .windows(2)
        .map(|w| Layer::he_uniform(w[0], w[1], &mut rng))
        .collect();
    let mut work = Workspace::new(&widths);
    let mut order: Vec<usize> = (0..n).collect();
    let (mut beta1_t, mut beta2_t) = (1.0_f64, 1.0_f64);

    for epoch in 1..=cfg.epochs {
        shuffle(&mut order, &mut rng);
        let mut loss_sum = 0.0_f64;
        let mut correct = 0_usize;
        for batch in order.chunks(cfg.batch_size) {
            layers.iter_mut().for_each(Layer::zero_grad);
            let scale = 1.0 / batch.len() as f64;
            for &s in batch {
                let x = &images[s * dim..(s + 1) * dim];
                let (loss, hit) = work.accumulate(&mut layers, x, usize::from(labels[s]), scale);
                loss_sum += loss;
                correct += usize::from(hit);
            }
            beta1_t *= BETA1;
            beta2_t *= BETA2;
            let step = AdamStep {
                lr: cfg.learning_rate as f32,
                wd: cfg.weight_decay as f32,
                c1: (1.0 / (1.0 - beta1_t)) as f32,
                c2: (1.0 / (1.0 - beta2_t)) as f32,
            };
            layers.iter_mut().for_each(|l| l.adam(&step));
        }
        let report = EpochReport {
            epoch,
            loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
        };
        if !report.loss.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                loss: report.loss,
            });
        }
        on_epoch(&report);
    }

    let affines = layers
        .iter()
        .enumerate()
        .map(|(idx, l)| l.to_affine(idx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Network::new(affines)?)
}

/// Fraction of samples that `net` classifies correctly (its largest logit, computed in `f64`
/// by [`Network::predict`], is the label).
///
/// `images` holds `labels.len()` samples of `dim` values each, row-major. Returns NaN when
/// the input is unusable — no samples, `dim` different from the network's input size, or an
/// image buffer whose length is not `labels.len() × dim` — so that a mistake shows up in any
/// printed or compared result instead of passing as a plausible accuracy.
pub fn accuracy(net: &Network, images: &[f64], labels: &[u8], dim: usize) -> f64 {
    let sizes_ok = labels.len().checked_mul(dim) == Some(images.len());
    if labels.is_empty() || dim == 0 || dim != net.input_dim() || !sizes_ok {
        return f64::NAN;
    }
    let correct = images
        .chunks_exact(dim)
        .zip(labels)
        .filter(|&(x, &y)| net.predict(x) == usize::from(y))
        .count();
    correct as f64 / labels.len() as f64
}

/// Checks the configuration first, then the data, so that errors are reported in a stable order.
fn validate(
    images: &[f64],
    labels: &[u8],
    dim: usize,
    classes: usize,
    cfg: &TrainConfig,
) -> Result<(), TrainError> {
    let invalid = |what: String| Err(TrainError::InvalidConfig(what));
    if dim == 0 {
        return invalid("input dimension is 0".into());
    }
    if classes == 0 {
        return invalid("number of classes is 0".into());
    }
    if let Some(pos) = cfg.hidden.iter().position(|&w| w == 0) {
        return invalid(format!("hidden layer {pos} has width 0"));
    }
    if cfg.epochs == 0 {
        return invalid("epochs is 0".into());
    }
    if cfg.batch_size == 0 {
        return invalid("batch size is 0".into());
    }
    // Rates are used in f32, so they must also be finite (and non-zero) there.
    let lr32 = cfg.learning_rate as f32;
    if !(cfg.learning_rate.is_finite() && lr32.is_finite() && lr32 > 0.0) {
        return invalid(format!(
            "learning rate {} is not a positive finite number",
            cfg.learning_rate
        ));
    }
    if !(cfg.weight_decay.is_finite() && (cfg.weight_decay as f32).is_finite())
        || cfg.weight_decay < 0.0
    {
        return invalid(format!(
            "weight decay {} is not a non-negative finite number",
            cfg.weight_decay
        ));
    }
    if labels.is_empty() {
        return Err(TrainError::EmptyData);
    }
    if labels.len().checked_mul(dim) != Some(images.len()) {
        return Err(TrainError::SizeMismatch {
            images: images.len(),
            labels: labels.len(),
            dim,
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        return Err(TrainError::LabelOutOfRange {
            index,
            label,
            classes,
        });
    }
    if let Some((index, &value)) = images.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(TrainError::NonFiniteInput { index, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::det::unit_f64;
    use super::*;
    use crate::model::Affine;
    use rand::Rng;

    /// Two Gaussian blobs in 4-D around 0.3 and 0.7 (σ = 0.08), labels 0/1, inside [0, 1].
    fn blobs(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut images = Vec::with_capacity(4 * n);
        let mut labels = Vec::with_capacity(n);
        for s in 0..n {
            let label = (s % 2) as u8;
            let centre = if label == 0 { 0.3 } else { 0.7 };
            for _ in 0..4 {
                // Box–Muller.
                let u1: f64 = rng.random::<f64>().max(1e-12);
                let u2: f64 = rng.random();
                let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                images.push((centre + 0.08 * g).clamp(0.0, 1.0));
            }
            labels.push(label);
        }
        (images, labels)
    }

    fn small_cfg(seed: u64) -> TrainConfig {
        TrainConfig {
            hidden: vec![8, 4],
            epochs: 20,
            batch_size: 16,
            learning_rate: 1e-2,
            weight_decay: 1e-5,
            seed,
        }
    }

    #[test]
    fn learns_separable_blobs() {
        let (x, y) = blobs(400, 7);
        let (xt, yt) = blobs(200, 8);
        let mut reports = Vec::new();
        let net = train(&x, &y, 4, 2, &small_cfg(3), |r| reports.push(*r)).unwrap();
        assert_eq!(net.input_dim(), 4);
        assert_eq!(net.output_dim(), 2);
        assert_eq!(net.depth(), 3);
        assert!(accuracy(&net, &x, &y, 4) > 0.95);
        assert!(accuracy(&net, &xt, &yt, 4) > 0.95);
        assert_eq!(reports.len(), 20);
        assert!(reports.iter().enumerate().all(|(i, r)| r.epoch == i + 1));
        assert!(reports[19].loss < reports[0].loss);
        assert!(reports[19].train_accuracy > 0.95);
    }

    #[test]
    fn linear_classifier_without_hidden_layers() {
        let (x, y) = blobs(200, 11);
        let cfg = TrainConfig {
            hidden: vec![],
            ..small_cfg(1)
        };
        let net = train(&x, &y, 4, 2, &cfg, |_| {}).unwrap();
        assert_eq!(net.depth(), 1);
        assert!(accuracy(&net, &x, &y, 4) > 0.95);
    }

    #[test]
    fn deterministic_per_seed() {
        let (x, y) = blobs(200, 5);
        let mut r1 = Vec::new();
        let mut r2 = Vec::new();
        let a = train(&x, &y, 4, 2, &small_cfg(42), |r| r1.push(*r)).unwrap();
        let b = train(&x, &y, 4, 2, &small_cfg(42), |r| r2.push(*r)).unwrap();
        let c = train(&x, &y, 4, 2, &small_cfg(43), |_| {}).unwrap();
        assert_eq!(a, b);
        assert_eq!(r1, r2);
        assert_ne!(a, c);
    }

    /// Pins the exact result of a small run. If this fails on some platform, training is not
    /// portable there; if it fails after an intentional change of the algorithm, update it
    /// (and rebuild the shipped demo network).
    #[test]
    fn pinned_result() {
        // Data from portable arithmetic only (the blobs use the platform's ln/cos):
        // uniform points in [0,1]^4, labelled by which side of x0 + x1 = 1 they lie on.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x: Vec<f64> = (0..4 * 64).map(|_| unit_f64(&mut rng)).collect();
        let y: Vec<u8> = x.chunks(4).map(|p| u8::from(p[0] + p[1] > 1.0)).collect();
        let cfg = TrainConfig {
            hidden: vec![3],
            epochs: 3,
            batch_size: 8,
            ..TrainConfig::default()
        };
        let net = train(&x, &y, 4, 2, &cfg, |_| {}).unwrap();
        // FNV-1a over the f32 bit patterns of all parameters, layer by layer.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for layer in net.layers() {
            for &v in layer.params().0.iter().chain(layer.bias()) {
                for byte in (v as f32).to_bits().to_le_bytes() {
                    h = (h ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        assert_eq!(h, PINNED_HASH, "hash is {h:#018x}");
    }
    const PINNED_HASH: u64 = 0x2590_8f2a_0493_2edc;

    #[test]
    fn weights_are_f32_values() {
        let (x, y) = blobs(100, 2);
        let net = train(&x, &y, 4, 2, &small_cfg(9), |_| {}).unwrap();
        for layer in net.layers() {
            for &v in layer.params().0.iter().chain(layer.bias()) {
                assert_eq!(f64::from(v as f32), v);
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let (x, y) = blobs(10, 1);
        let ok = TrainConfig::default();
        let run = |x: &[f64], y: &[u8], dim, classes, cfg: &TrainConfig| {
            train(x, y, dim, classes, cfg, |_| {}).unwrap_err()
        };
        assert_eq!(run(&[], &[], 4, 2, &ok), TrainError::EmptyData);
        assert!(matches!(
            run(&x[..39], &y, 4, 2, &ok),
            TrainError::SizeMismatch {
                images: 39,
                labels: 10,
                dim: 4
            }
        ));
        let mut bad_labels = y.clone();
        bad_labels[6] = 2;
        assert!(matches!(
            run(&x, &bad_labels, 4, 2, &ok),
            TrainError::LabelOutOfRange {
                index: 6,
                label: 2,
                classes: 2
            }
        ));
        let mut nan = x.clone();
        nan[5] = f64::NAN;
        assert!(matches!(
            run(&nan, &y, 4, 2, &ok),
            TrainError::NonFiniteInput { index: 5, .. }
        ));
        assert!(matches!(
            run(&x, &y, 0, 2, &ok),
            TrainError::InvalidConfig(_)
        ));
        assert!(matches!(
            run(&x, &y, 4, 0, &ok),
            TrainError::InvalidConfig(_)
        ));
        let bad_cfgs = [
            TrainConfig {
                hidden: vec![4, 0],
                ..ok.clone()
            },
            TrainConfig {
                epochs: 0,
                ..ok.clone()
            },
            TrainConfig {
                batch_size: 0,
                ..ok.clone()
            },
            TrainConfig {
                learning_rate: 0.0,
                ..ok.clone()
            },
            TrainConfig {
                learning_rate: f64::INFINITY,
                ..ok.clone()
            },
            TrainConfig {
                learning_rate: 1e300,
                ..ok.clone()
            },
            TrainConfig {
                weight_decay: -1.0,
                ..ok.clone()
            },
            TrainConfig {
                weight_decay: f64::NAN,
                ..ok.clone()
            },
        ];
        for cfg in &bad_cfgs {
            assert!(
                matches!(run(&x, &y, 4, 2, cfg), TrainError::InvalidConfig(_)),
                "{cfg:?}"
            );
        }
    }

    #[test]
    fn divergence_is_reported() {
        let (x, y) = blobs(50, 4);
        let x: Vec<f64> = x.iter().map(|v| v * 1e30).collect();
        let cfg = TrainConfig {
            learning_rate: 1e30,
            ..small_cfg(1)
        };
        let err = train(&x, &y, 4, 2, &cfg, |_| {}).unwrap_err();
        assert!(
            matches!(err, TrainError::Diverged { epoch: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn accuracy_counts_and_rejects_mismatches() {
        // Identity on 2 inputs: predicts the larger coordinate.
        let id = Affine::new(0, 2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]).unwrap();
        let net = Network::new(vec![id]).unwrap();
        let x = [1.0, 0.0, 0.0, 1.0, 0.2, 0.1, 0.0, 0.5];
        let y = [0, 1, 1, 1];
        assert_eq!(accuracy(&net, &x, &y, 2), 0.75);
        assert!(accuracy(&net, &x, &y, 4).is_nan());
        assert!(accuracy(&net, &x[..7], &y, 2).is_nan());
        assert!(accuracy(&net, &[], &[], 2).is_nan());
    }
}
