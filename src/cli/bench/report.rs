//! The end of a bench: its summary (a table on stdout, JSON with `--json`, a file with
//! `--summary`) and the soundness-bug check, shared by the benches and `bench merge`.

use std::path::Path;

use anyhow::{Context, Result, bail};

use certquant::bench::{
    BackdoorRecord, EngineComparison, EngineRecord, Summary, TaskRecord, TaskStatus,
    compare_engines, summarize, summarize_backdoor,
};

use super::super::common::{Outcome, print_json};

/// Where and how a summary goes.
#[derive(Debug, Clone, Copy)]
pub struct SummaryTarget<'a> {
    /// The results file (named in the soundness-bug message).
    pub out: &'a Path,
    /// Write the summary as JSON here.
    pub summary: Option<&'a Path>,
    /// Print JSON on stdout instead of a table.
    pub json: bool,
}

impl SummaryTarget<'_> {
    /// Writes `value` to the `--summary` file, if any.
    fn write(&self, value: &impl serde::Serialize) -> Result<()> {
        if let Some(p) = self.summary {
            std::fs::write(p, serde_json::to_string_pretty(value)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(())
    }

    /// Fails if any record is a soundness bug.
    fn no_soundness_bugs<'s>(&self, statuses: impl Iterator<Item = &'s str>) -> Result<()> {
        let bugs = statuses
            .filter(|s| *s == TaskStatus::SoundnessBug.as_str())
            .count();
        if bugs > 0 {
            bail!(
                "{bugs} certified result(s) were contradicted by a concrete counterexample (see {})",
                self.out.display()
            );
        }
        Ok(())
    }
}

/// The summary of `bench robustness` records of `model`, with optional SVG plots in `plots`.
pub fn robustness(
    model: &Path,
    recs: &[TaskRecord],
    plots: Option<&Path>,
    to: SummaryTarget<'_>,
) -> Result<Outcome> {
    let summary = summarize(recs);
    // plots first, so that a failure leaves stdout empty (exit 2 prints nothing there)
    let mut plot_paths = Vec::new();
    if let Some(dir) = plots {
        let title = model.file_stem().map_or_else(
            || model.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        plot_paths = certquant::plots::write_plots(recs, dir, &title)
            .with_context(|| format!("cannot write plots to {}", dir.display()))?;
    }
    to.write(&summary)?;
    if to.json {
        print_json(&summary)?;
    } else {
        print_summary(model, &summary);
    }
    to.no_soundness_bugs(recs.iter().map(|r| r.status.as_str()))?;
    for p in &plot_paths {
        if to.json {
            eprintln!("plot {}", p.display());
        } else {
            println!("  plot {}", p.display());
        }
    }
    Ok(Outcome::Proven)
}

/// Prints a summary as a table row in the paper's Table 2 vocabulary.
pub fn print_summary(model: &Path, s: &Summary) {
    let bits: Vec<String> = s.avg_bits.iter().map(|b| format!("{b:.2}")).collect();
    println!("model {}", model.display());
    println!(
        "  tasks {}  #S/#F {}/{}  (timeouts {}, errors {}, property fails {})",
        s.tasks, s.certified, s.not_certified, s.timeouts, s.errors, s.property_fails
    );
    println!("  avg bits per layer ({})", bits.join(", "));
    if s.attacked > 0 {
        println!(
            "  attacked {} tasks: no counterexample on any certified QNN; {} unknown task(s) have a real counterexample",
            s.attacked, s.unknown_with_counterexample
        );
    }
    if let Some(a) = s.avg_qnn_accuracy {
        println!("  avg QNN accuracy {:.2}%", a * 100.0);
    }
    let reused = if s.reused_preimages > 0 {
        format!(
            " ({} reused: seconds of their original run)",
            s.reused_preimages
        )
    } else {
        String::new()
    };
    println!(
        "  preimage s{reused}: mean {:.2} median {:.2};  quantization s: mean {:.3} median {:.3};  wall s median {:.2}",
        s.mean_preimage_seconds,
        s.median_preimage_seconds,
        s.mean_quantize_seconds,
        s.median_quantize_seconds,
        s.median_wall_seconds
    );
}

/// The summary of `bench backdoor` records of `model`.
pub fn backdoor(model: &Path, recs: &[BackdoorRecord], to: SummaryTarget<'_>) -> Result<Outcome> {
    let s = summarize_backdoor(recs);
    to.write(&s)?;
    if to.json {
        print_json(&s)?;
    } else {
        let bits: Vec<String> = s.avg_bits.iter().map(|b| format!("{b:.2}")).collect();
        println!("model {}", model.display());
        println!(
            "  tasks {}  #S/#F {}/{}  (H1 accepted {}, timeouts {}, errors {})",
            s.tasks, s.certified, s.unknown, s.h1_rejected, s.timeouts, s.errors
        );
        println!("  avg bits per layer ({})", bits.join(", "));
        if let Some(acc) = s.avg_qnn_accuracy {
            println!("  avg QNN accuracy {:.2}%", acc * 100.0);
        }
        println!(
            "  seconds per task: mean {:.1} median {:.1};  mean SPRT rounds {:.1}",
            s.mean_seconds, s.median_seconds, s.mean_rounds
        );
    }
    to.no_soundness_bugs(recs.iter().map(|r| r.status.as_str()))?;
    Ok(Outcome::Proven)
}

/// The engine comparison of `bench preimages`: one row per model, of that model's records.
pub fn preimages(models: &[(String, Vec<EngineRecord>)], to: SummaryTarget<'_>) -> Result<Outcome> {
    let report: Vec<(&String, EngineComparison)> = models
        .iter()
        .map(|(m, recs)| (m, compare_engines(recs)))
        .collect();
    let json: Vec<serde_json::Value> = report
        .iter()
        .map(|(m, c)| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            v["model"] = serde_json::json!(m);
            v
        })
        .collect();
    to.write(&json)?;
    if to.json {
        print_json(&json)?;
    } else {
        println!(
            "model | pairs | median fast s | median paper s | paper/fast | paper time-limited | layers compared | max rel. χ diff | fast > paper"
        );
        for (m, c) in &report {
            println!(
                "{m} | {} | {:.2} | {:.2} | {:.1} | {} | {} | {:.2e} | {}",
                c.pairs,
                c.median_fast_seconds,
                c.median_paper_seconds,
                c.ratio,
                c.paper_time_limited,
                c.layers_compared,
                c.max_relative_difference,
                c.fast_above_paper
            );
        }
    }
    if report.iter().any(|(_, c)| c.fast_above_paper > 0) {
        bail!("the fast engine reported a χ above the paper engine's optimum (see the table)");
    }
    Ok(Outcome::Proven)
}
