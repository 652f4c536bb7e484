//! `certquant train`: the reproducible trainer that made the embedded demo network.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use certquant::data::{self, write_idx_images, write_idx_labels};
use certquant::onnx;
use certquant::train::{TrainConfig, accuracy, train as train_mlp};

use super::common::{Outcome, progress};

/// Arguments of `certquant train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Directory with train-{images-idx3,labels-idx1}-ubyte[.gz] and t10k-* (e.g. the Debian
    /// package dataset-fashion-mnist: /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    data: PathBuf,
    /// Hidden layer sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "32,16")]
    hidden: Vec<usize>,
    /// Training epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Random seed (training is deterministic for a given seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the ONNX model.
    #[arg(long)]
    out: PathBuf,
    /// Also write the first N test images and labels as raw IDX files next to the model
    /// (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte): the embedded demo data.
    #[arg(long, default_value_t = 0)]
    demo_images: usize,
}

fn find(dir: &std::path::Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{} has no {stem}[.gz]", dir.display())
}

/// Trains, reports test accuracy, writes the model (and demo data).
pub fn train(a: &TrainArgs) -> Result<Outcome> {
    let tr = data::load_idx_pair(
        &find(&a.data, "train-images-idx3-ubyte")?,
        &find(&a.data, "train-labels-idx1-ubyte")?,
    )?;
    let te = data::load_dir(&a.data)?;
    let cfg = TrainConfig {
        hidden: a.hidden.clone(),
        epochs: a.epochs,
        seed: a.seed,
        ..TrainConfig::default()
    };
    let pb = progress(a.epochs as u64, "training");
    let labels = tr.labels().context("training data has no labels")?;
    let net = train_mlp(tr.pixels(), labels, tr.dim(), 10, &cfg, |r| {
        pb.set_message(format!(
            "loss {:.4} train acc {:.4}",
            r.loss, r.train_accuracy
        ));
        pb.inc(1);
        tracing::info!(
            epoch = r.epoch,
            loss = r.loss,
            acc = r.train_accuracy,
            "epoch"
        );
    })?;
    pb.finish_and_clear();
    let test_labels = te.labels().context("test data has no labels")?;
    let acc = accuracy(&net, te.pixels(), test_labels, te.dim());
    let bytes = onnx::export_bytes(&net)?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "trained {:?} hidden, {} epochs, seed {}: test accuracy {:.4}; wrote {} ({} bytes)",
        a.hidden,
        a.epochs,
        a.seed,
        acc,
        a.out.display(),
        bytes.len()
    );
    if a.demo_images > 0 {
        let dir = a.out.parent().unwrap_or(std::path::Path::new("."));
        let n = a.demo_images.min(te.len());
        let ids: Vec<usize> = (0..n).collect();
        let sub = te.subset(&ids)?;
        let raw: Vec<u8> = (0..n)
            .flat_map(|i| sub.raw_pixel_bytes(i).unwrap_or(&[]).to_vec())
            .collect();
        let side = (te.dim() as f64).sqrt() as usize;
        std::fs::write(
            dir.join("t10k-images-idx3-ubyte"),
            write_idx_images(n, side, side, &raw)?,
        )?;
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            write_idx_labels(&test_labels[..n]),
        )?;
        println!(
            "wrote the first {n} test images and labels to {}",
            dir.display()
        );
    }
    Ok(Outcome::Proven)
}
