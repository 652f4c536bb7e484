//! Helpers shared by the commands: loading with context, progress bars, output.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use certquant::data::{self, Dataset};
use certquant::model::Network;
use certquant::onnx;

/// What a successful command established (mapped to exit codes 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Verified / certified / done.
    Proven,
    /// Ran correctly, but the property was not proven.
    NotProven,
}

impl Outcome {
    /// `Proven` when `proven`, else `NotProven`.
    pub fn of(proven: bool) -> Self {
        if proven {
            Outcome::Proven
        } else {
            Outcome::NotProven
        }
    }
}

/// Prints a report as JSON or as text and maps its status to an [`Outcome`].
pub fn report_outcome<T: serde::Serialize>(
    report: &T,
    json: bool,
    text: impl FnOnce(&T),
    proven: bool,
) -> Result<Outcome> {
    if json {
        print_json(report)?;
    } else {
        text(report);
    }
    Ok(Outcome::of(proven))
}

/// A model file: the network and the file's bytes (for hashing into certificates).
pub struct LoadedModel {
    pub net: Network,
    pub bytes: Vec<u8>,
}

/// Reads and imports an ONNX model.
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    let net = onnx::import_bytes(&bytes).with_context(|| format!("model {}", path.display()))?;
    Ok(LoadedModel { net, bytes })
}

/// Loads a data set and checks it fits the network.
pub fn load_data(path: &Path, net: &Network) -> Result<Dataset> {
    let ds = data::load(path).with_context(|| format!("data {}", path.display()))?;
    if ds.dim() != net.input_dim() {
        bail!(
            "data {} has inputs of size {}, but the model expects {}",
            path.display(),
            ds.dim(),
            net.input_dim()
        );
    }
    Ok(ds)
}

/// The input with index `id`, or a clear error.
pub fn input<'a>(ds: &'a Dataset, id: usize, path: &Path) -> Result<&'a [f64]> {
    ds.image(id).with_context(|| {
        format!(
            "id {id} out of range: {} holds {} inputs (ids 0..={})",
            path.display(),
            ds.len(),
            ds.len().saturating_sub(1)
        )
    })
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// A spinner on stderr for one long step, hidden when stderr is not a terminal.
pub fn spinner(msg: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb.set_message(msg.to_string());
    pb
}

/// How a failed command reports `e` on stderr (also the `error` of a bench task's record).
pub fn error_text(e: &anyhow::Error) -> String {
    format!("error: {e:#}")
}

/// Prints a serialisable value as one JSON object on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Accuracy of `net` on the first `limit` labelled inputs of `ds` (in parallel).
pub fn accuracy(net: &Network, ds: &Dataset, limit: Option<usize>) -> Result<(f64, usize)> {
    accuracy_of(|x| net.predict(x), ds, limit)
}

/// Accuracy of any classifier `predict` on the first `limit` inputs of `ds`, in parallel.
pub fn accuracy_of(
    predict: impl Fn(&[f64]) -> usize + Sync,
    ds: &Dataset,
    limit: Option<usize>,
) -> Result<(f64, usize)> {
    use rayon::prelude::*;
    if !ds.has_labels() {
        bail!("the data set has no labels; accuracy needs labelled data");
    }
    let n = limit.map_or(ds.len(), |l| l.min(ds.len()));
    if n == 0 {
        bail!("no inputs to evaluate");
    }
    let correct: usize = (0..n)
        .into_par_iter()
        .filter(|&i| match (ds.image(i), ds.label(i)) {
            (Some(x), Some(y)) => predict(x) == y,
            _ => false,
        })
        .count();
    Ok((correct as f64 / n as f64, n))
}
