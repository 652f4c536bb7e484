//! SVG plots of benchmark results (`bench robustness --plots DIR`).
//!
//! Three figures are drawn from the task records of a results file:
//! - `chi_boxplot.svg`: box plots of χ per hidden layer (as Fig. 3 of the FM 2024 paper), one
//!   box per (hidden layer, eps) with the eps boxes of a layer side by side;
//! - `bits_histogram.svg`: how often each total bit-width Q was chosen, one panel per affine
//!   layer, bars grouped by eps, over certified tasks;
//! - `times.svg`: preimage and quantization seconds per task, each sorted ascending, on a log
//!   scale, over the tasks that ran synthesis (`certified` or `unknown`, as in the summary);
//!   times under 0.1 ms are drawn at 0.1 ms.
//!
//! A figure without data is still written and says "no data", so a run always yields the same
//! three files. Values that are not finite are left out. Text is written as SVG `<text>`
//! elements (plotters without its `ttf` feature), so no font files are needed to draw.
//!
//! Box plots follow Tukey: the box spans the first to the third quartile (linear
//! interpolation, as numpy's default), the thick line is the median, whiskers reach the most
//! extreme values within 1.5 IQR of the box, and hollow circles mark values beyond them.

// one module per figure, plus the pieces they share
mod boxplot;
mod draw;
mod histogram;
mod times;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bench::TaskRecord;
use boxplot::chi_boxplot_svg;
use draw::{DrawError, EpsOrder};
use histogram::bits_histogram_svg;
use times::times_svg;

/// File name of the χ box plot.
pub const CHI_BOXPLOT: &str = "chi_boxplot.svg";
/// File name of the bit-width histogram.
pub const BITS_HISTOGRAM: &str = "bits_histogram.svg";
/// File name of the time plot.
pub const TIMES: &str = "times.svg";

/// Errors of [`write_plots`].
#[derive(Debug, Error)]
pub enum PlotError {
    /// The output directory or a plot file could not be created or written.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// plotters failed to draw a figure.
    #[error("cannot draw {file}: {message}")]
    Draw {
        /// The figure's file name.
        file: String,
        /// plotters' message.
        message: String,
    },
}

/// Writes `chi_boxplot.svg`, `bits_histogram.svg` and `times.svg` for `records` into `dir`
/// (created if missing) and returns their paths in that order.
///
/// `title` heads every figure (e.g. the model's name; may be empty). Records of every status
/// may be passed: each figure picks the ones it describes (see the module docs). A figure with
/// nothing to show says "no data" instead of failing.
pub fn write_plots(
    records: &[TaskRecord],
    dir: &Path,
    title: &str,
) -> Result<Vec<PathBuf>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let eps = EpsOrder::new(records);
    let figures: [(&str, Result<String, DrawError>); 3] = [
        (CHI_BOXPLOT, chi_boxplot_svg(records, &eps, title)),
        (BITS_HISTOGRAM, bits_histogram_svg(records, &eps, title)),
        (TIMES, times_svg(records, title)),
    ];
    let mut paths = Vec::with_capacity(figures.len());
    for (file, svg) in figures {
        let svg = svg.map_err(|DrawError(message)| PlotError::Draw {
            file: file.to_string(),
            message,
        })?;
        let path = dir.join(file);
        std::fs::write(&path, svg).map_err(|source| PlotError::Io {
            path: path.clone(),
            source,
        })?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::draw::FILL_OPACITY;
    use super::*;
    use crate::bench::LayerBits;

    fn rec(status: &str, id: usize, eps: &str, bits: &[u32], chi: &[f64], pre: f64) -> TaskRecord {
        TaskRecord {
            status: status.into(),
            id,
            eps_text: eps.into(),
            layers: bits
                .iter()
                .map(|&total| LayerBits {
                    total,
                    frac: total.saturating_sub(2),
                })
                .collect(),
            chi: chi.to_vec(),
            preimage_seconds: pre,
            quantize_seconds: pre / 100.0,
            qnn_accuracy: Some(0.9),
            wall_seconds: pre + 1.0,
            attack_counterexample: None,
            reused_preimage_seconds: None,
        }
    }

    /// Rectangles drawn with the translucent fill of boxes and bars.
    fn filled_rects(svg: &str) -> usize {
        let opacity = format!("opacity=\"{FILL_OPACITY}\"");
        svg.split("<rect")
            .skip(1)
            .filter(|r| {
                r.split('>')
                    .next()
                    .is_some_and(|attrs| attrs.contains(&opacity))
            })
            .count()
    }

    fn read(p: &Path) -> String {
        let s = std::fs::read_to_string(p).unwrap();
        assert!(
            s.starts_with("<svg"),
            "{}: {}",
            p.display(),
            &s[..s.len().min(80)]
        );
        assert!(s.trim_end().ends_with("</svg>"));
        s
    }

    #[test]
    fn writes_three_plots_with_one_box_or_bar_per_group() {
        // 2 hidden layers (3 affine), 2 eps values, plus records the figures must ignore.
        let mut recs = Vec::new();
        for id in 0..6 {
            let f = id as f64;
            recs.push(rec(
                "certified",
                id,
                "1/255",
                &[6, 4, 3],
                &[3.0 - 0.1 * f, 2.0 + 0.05 * f],
                1.0 + f,
            ));
            recs.push(rec(
                "certified",
                id,
                "2/255",
                &[7, 4 + (id as u32 % 2), 3],
                &[1.5 + 0.1 * f, 1.0],
                10.0 * (1.0 + f),
            ));
        }
        recs.push(rec("unknown", 10, "2/255", &[9], &[0.2, 0.1], 300.0));
        recs.push(rec("property-fails", 11, "1/255", &[], &[], 0.0));
        recs.push(rec("timeout", 12, "1/255", &[], &[], 0.0));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plots");
        let paths = write_plots(&recs, &out, "mnist & <test>").unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, [CHI_BOXPLOT, BITS_HISTOGRAM, TIMES]);

        let chi = read(&paths[0]);
        // 2 layers x 2 eps; the unknown record's χ counts too (χ comes before the verdict)
        assert_eq!(filled_rects(&chi), 4);
        assert!(chi.contains("hidden layer") && chi.contains("χ"));
        assert!(chi.contains("eps 1/255 (n=6)") && chi.contains("eps 2/255 (n=7)"));
        assert!(!chi.contains("no data"));
        // the title is escaped, so the document stays well-formed
        assert!(!chi.contains("<test>"));

        let bits = read(&paths[1]);
        // layer 1: Q 6 (1/255), Q 7 (2/255); layer 2: Q 4 (1/255), Q 4 and 5 (2/255);
        // layer 3: Q 3 for both: 7 (layer, eps, Q) bars; the unknown record is not counted
        assert_eq!(filled_rects(&bits), 7);
        assert!(bits.contains("affine layer 3 (output)"));
        assert!(bits.contains("12 certified tasks"));

        let times = read(&paths[2]);
        assert!(times.contains("13 tasks that ran synthesis"));
        assert_eq!(times.matches("<circle").count(), 2 * 13);
        assert_eq!(filled_rects(&times), 0);
    }

    #[test]
    fn empty_inputs_give_no_data_plots() {
        let dir = tempfile::tempdir().unwrap();
        for recs in [
            vec![],
            vec![rec("property-fails", 1, "1/255", &[], &[], 0.0)],
            vec![rec("timeout", 1, "x", &[], &[f64::NAN], f64::NAN)],
        ] {
            let paths = write_plots(&recs, dir.path(), "").unwrap();
            assert_eq!(paths.len(), 3);
            for p in &paths {
                let s = read(p);
                assert!(s.contains("no data"), "{}", p.display());
                assert_eq!(filled_rects(&s), 0);
            }
        }
    }

    #[test]
    fn odd_values_do_not_panic() {
        // one value per group, non-finite χ and times, zero times, eps that does not parse
        let recs = vec![
            rec("certified", 1, "0.01", &[2], &[f64::NAN], 0.0),
            rec(
                "certified",
                2,
                "bogus",
                &[16, 2, 2, 2],
                &[f64::INFINITY, 1.0, 1.0],
                f64::NAN,
            ),
            rec("unknown", 3, "0.01", &[], &[0.0], 1e6),
            rec("unknown", 4, "0.01", &[], &[-1e308, 1e308], 1e308),
        ];
        let dir = tempfile::tempdir().unwrap();
        let paths = write_plots(&recs, dir.path(), "odd").unwrap();
        let chi = read(&paths[0]);
        // layer 1: 0.01 has NaN, 0.0 and -1e308 -> one box; bogus only inf -> none;
        // layer 2: 0.01 1e308, bogus 1.0; layer 3: bogus 1.0
        assert_eq!(filled_rects(&chi), 4);
        let bits = read(&paths[1]);
        assert_eq!(filled_rects(&bits), 5);
        read(&paths[2]);
    }

    #[test]
    fn unwritable_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = write_plots(&[], &file.join("sub"), "").unwrap_err();
        assert!(matches!(e, PlotError::Io { .. }), "{e}");
    }
}
