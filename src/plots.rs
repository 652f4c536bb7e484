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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use crate::bench::TaskRecord;
use crate::spec::parse_eps;

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

/// A drawing error before the file name is attached.
#[derive(Debug)]
struct DrawError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawError>;

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

// ---------------------------------------------------------------------------------------------
// shared pieces

/// Categorical colours (Tableau 10), by eps group or series.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

const FONT: &str = "sans-serif";
// plotters writes font-size = size / 1.24 into the SVG
const TITLE_SIZE: u32 = 24;
const LABEL_SIZE: u32 = 18;
const TICK_SIZE: u32 = 16;
const LEGEND_ROW: i32 = 26;
/// Minor grid lines.
const LIGHT: RGBColor = RGBColor(240, 240, 240);

/// Opacity of box and bar fills (the tests recognise boxes and bars by it).
const FILL_OPACITY: f64 = 0.35;

/// The eps texts of all records, ordered by value (texts that do not parse go last), so
/// that an eps keeps its colour across figures.
struct EpsOrder(Vec<String>);

impl EpsOrder {
    fn new(records: &[TaskRecord]) -> Self {
        let mut texts: Vec<String> = records.iter().map(|r| r.eps_text.clone()).collect();
        texts.sort();
        texts.dedup();
        let key = |t: &str| parse_eps(t).ok().filter(|v| v.is_finite());
        texts.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(b),
        });
        EpsOrder(texts)
    }

    /// Index of an eps text (its colour).
    fn index(&self, eps: &str) -> usize {
        self.0.iter().position(|t| t == eps).unwrap_or(0)
    }
}

/// Width in pixels for a figure at least `base` wide whose heading must fit.
fn fit_width(base: u32, heading: &str) -> u32 {
    let needed = heading.chars().count() as f64 * TITLE_SIZE as f64 / 1.24 * 0.6 + 40.0;
    base.max(needed.ceil() as u32).min(4000)
}

fn heading(title: &str, what: &str) -> String {
    if title.trim().is_empty() {
        what.to_string()
    } else {
        format!("{} — {what}", title.trim())
    }
}

/// Renders one SVG document of `size` pixels into a string.
fn render(size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> Result<String, DrawError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Draws the heading and returns the area below it.
fn titled<'a>(root: &Area<'a>, text: &str) -> Result<Area<'a>, DrawError> {
    Ok(root.titled(text, (FONT, TITLE_SIZE).into_font().color(&BLACK))?)
}

/// Draws "no data" and why in the middle of `area`.
fn no_data(area: &Area, why: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let (cx, cy) = (w as i32 / 2, h as i32 / 2);
    let centre = Pos::new(HPos::Center, VPos::Center);
    let big = TextStyle::from((FONT, 28).into_font())
        .pos(centre)
        .color(&BLACK);
    area.draw_text("no data", &big, (cx, cy - 18))?;
    let small = TextStyle::from((FONT, LABEL_SIZE).into_font())
        .pos(centre)
        .color(&RGBColor(90, 90, 90));
    area.draw_text(why, &small, (cx, cy + 16))?;
    Ok(())
}

/// Rough width in pixels of a legend label (SVG text has no metrics; this errs wide).
fn text_width(text: &str) -> i32 {
    (text.chars().count() as f64 * LABEL_SIZE as f64 / 1.24 * 0.56).ceil() as i32 + 4
}

/// Rows needed for a legend of `items` in `width` pixels.
fn legend_rows(items: &[(String, RGBColor)], width: i32) -> i32 {
    let mut rows = 1;
    let mut x = 10;
    for (label, _) in items {
        let w = 22 + text_width(label) + 18;
        if x + w > width - 10 && x > 10 {
            rows += 1;
            x = 10;
        }
        x += w;
    }
    rows
}

/// Draws a legend (swatch + label per item, wrapped into rows) at the top of `area` and
/// returns the area below it.
fn legend<'a>(area: &Area<'a>, items: &[(String, RGBColor)]) -> Result<Area<'a>, DrawError> {
    if items.is_empty() {
        return Ok(area.clone());
    }
    let width = area.dim_in_pixel().0 as i32;
    let rows = legend_rows(items, width);
    let (top, rest) = area.split_vertically(rows * LEGEND_ROW + 6);
    let style = TextStyle::from((FONT, LABEL_SIZE).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center))
        .color(&BLACK);
    let (mut x, mut y) = (10, LEGEND_ROW / 2 + 2);
    for (label, c) in items {
        let w = 22 + text_width(label) + 18;
        if x + w > width - 10 && x > 10 {
            x = 10;
            y += LEGEND_ROW;
        }
        // full-opacity swatch: distinct from the translucent boxes and bars
        top.draw(&Rectangle::new([(x, y - 6), (x + 16, y + 6)], c.filled()))?;
        top.draw_text(label, &style, (x + 22, y))?;
        x += w;
    }
    Ok(rest)
}

/// Formats an integer-valued axis position, leaving other positions blank.
fn integer_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}

/// Linear-interpolated percentile of sorted, non-empty data.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Tukey box-plot statistics.
#[derive(Debug, Clone, PartialEq)]
struct BoxStats {
    q1: f64,
    median: f64,
    q3: f64,
    whisker_lo: f64,
    whisker_hi: f64,
    outliers: Vec<f64>,
}

impl BoxStats {
    /// Statistics of the finite values of `values` (`None` if there are none).
    fn new(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let (q1, median, q3) = (
            percentile(&v, 0.25),
            percentile(&v, 0.5),
            percentile(&v, 0.75),
        );
        let iqr = q3 - q1;
        let (lo_fence, hi_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        let inside = || {
            v.iter()
                .copied()
                .filter(|&x| x >= lo_fence && x <= hi_fence)
        };
        Some(BoxStats {
            q1,
            median,
            q3,
            whisker_lo: inside().fold(q1, f64::min),
            whisker_hi: inside().fold(q3, f64::max),
            outliers: v
                .iter()
                .copied()
                .filter(|&x| x < lo_fence || x > hi_fence)
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// χ box plot

fn chi_boxplot_svg(
    records: &[TaskRecord],
    eps: &EpsOrder,
    title: &str,
) -> Result<String, DrawError> {
    let with_chi: Vec<&TaskRecord> = records.iter().filter(|r| !r.chi.is_empty()).collect();
    let hidden = with_chi.iter().map(|r| r.chi.len()).max().unwrap_or(0);
    // eps groups present, in eps order, each with its records' χ per layer
    let mut groups: BTreeMap<usize, Vec<&TaskRecord>> = BTreeMap::new();
    for r in &with_chi {
        groups.entry(eps.index(&r.eps_text)).or_default().push(r);
    }
    let k = groups.len().max(1);
    let width = (160 + hidden * k * 56).clamp(720, 1800) as u32;
    let head = heading(
        title,
        &format!("χ per hidden layer ({} tasks)", with_chi.len()),
    );
    render((fit_width(width, &head), 520), |root| {
        let body = titled(root, &head)?;
        let boxes: Vec<(usize, usize, usize, BoxStats)> = groups
            .iter()
            .enumerate()
            .flat_map(|(slot, (&ci, recs))| {
                (0..hidden).filter_map(move |l| {
                    let v: Vec<f64> = recs.iter().filter_map(|r| r.chi.get(l).copied()).collect();
                    BoxStats::new(&v).map(|s| (l, slot, ci, s))
                })
            })
            .collect();
        if boxes.is_empty() {
            return no_data(&body, "no record has χ values");
        }
        let items: Vec<(String, RGBColor)> = groups
            .iter()
            .map(|(&ci, recs)| (format!("eps {} (n={})", eps.0[ci], recs.len()), color(ci)))
            .collect();
        let body = legend(&body, &items)?;
        let all = boxes.iter().flat_map(|(.., s)| {
            [s.whisker_lo, s.whisker_hi]
                .into_iter()
                .chain(s.outliers.iter().copied())
        });
        let (lo, hi) = all.fold((0.0f64, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        let hi = if hi > lo {
            hi + 0.06 * (hi - lo)
        } else {
            lo + 1.0
        };
        // absurd magnitudes would overflow the axis: draw them at its edge instead
        let (lo, hi) = if hi.is_finite() {
            (lo, hi)
        } else {
            (lo.max(-1e300), 1e300)
        };
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..hidden as f64 + 0.5, lo..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(hidden + 1)
            .x_label_formatter(&integer_label)
            .y_labels(8)
            .x_desc("hidden layer (input side first)")
            .y_desc("χ")
            .axis_desc_style((FONT, LABEL_SIZE))
            .label_style((FONT, TICK_SIZE))
            .light_line_style(LIGHT)
            .draw()?;
        // separators between layers
        for l in 1..hidden {
            let x = l as f64 + 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, lo), (x, hi)],
                RGBColor(200, 200, 200).stroke_width(1),
            )))?;
        }
        let slot_w = 0.8 / k as f64;
        for (l, slot, ci, s) in &boxes {
            let xc = (l + 1) as f64 - 0.4 + (*slot as f64 + 0.5) * slot_w;
            draw_box(&mut chart, xc, 0.7 * slot_w, s, color(*ci))?;
        }
        Ok(())
    })
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Draws one box of width `w` (data units) centred at `xc`.
fn draw_box(chart: &mut Chart, xc: f64, w: f64, s: &BoxStats, c: RGBColor) -> DrawResult {
    let (x0, x1) = (xc - w / 2.0, xc + w / 2.0);
    let line = c.stroke_width(2);
    chart.draw_series(std::iter::once(Rectangle::new(
        [(x0, s.q1), (x1, s.q3)],
        c.mix(FILL_OPACITY).filled(),
    )))?;
    chart.draw_series(std::iter::once(Rectangle::new(
        [(x0, s.q1), (x1, s.q3)],
        line,
    )))?;
    let cap = w / 4.0;
    let paths = [
        vec![(x0, s.median), (x1, s.median)],
        vec![(xc, s.q3), (xc, s.whisker_hi)],
        vec![(xc, s.q1), (xc, s.whisker_lo)],
        vec![(xc - cap, s.whisker_hi), (xc + cap, s.whisker_hi)],
        vec![(xc - cap, s.whisker_lo), (xc + cap, s.whisker_lo)],
    ];
    for (i, p) in paths.into_iter().enumerate() {
        let style = if i == 0 { c.stroke_width(4) } else { line };
        chart.draw_series(std::iter::once(PathElement::new(p, style)))?;
    }
    chart.draw_series(
        s.outliers
            .iter()
            .map(|&y| Circle::new((xc, y), 4, c.stroke_width(2))),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// bit-width histogram

fn bits_histogram_svg(
    records: &[TaskRecord],
    eps: &EpsOrder,
    title: &str,
) -> Result<String, DrawError> {
    let certified: Vec<&TaskRecord> = records
        .iter()
        .filter(|r| r.status == "certified" && !r.layers.is_empty())
        .collect();
    let depth = certified.iter().map(|r| r.layers.len()).max().unwrap_or(0);
    // counts[layer][(eps colour index, Q)]
    let mut counts: Vec<BTreeMap<(usize, u32), usize>> = vec![BTreeMap::new(); depth];
    let mut groups: BTreeMap<usize, usize> = BTreeMap::new(); // eps colour index -> tasks
    for r in &certified {
        let ci = eps.index(&r.eps_text);
        *groups.entry(ci).or_default() += 1;
        for (l, b) in r.layers.iter().enumerate() {
            *counts[l].entry((ci, b.total)).or_default() += 1;
        }
    }
    let q_all = counts.iter().flat_map(|m| m.keys().map(|&(_, q)| q));
    let (qmin, qmax) = q_all.fold((u32::MAX, 0), |(a, b), q| (a.min(q), b.max(q)));
    let nq = if depth > 0 {
        (qmax - qmin + 1) as usize
    } else {
        0
    };
    let k = groups.len().max(1);
    let slot_of: BTreeMap<usize, usize> =
        groups.keys().enumerate().map(|(s, &ci)| (ci, s)).collect();
    let width = (140 + nq * k * 22).clamp(720, 1800) as u32;
    let panel_h = 230;
    let height = (110 + depth.max(1) * panel_h) as u32;
    let head = heading(
        title,
        &format!(
            "total bits Q per affine layer ({} certified tasks)",
            certified.len()
        ),
    );
    render((fit_width(width, &head), height), |root| {
        let body = titled(root, &head)?;
        if depth == 0 {
            return no_data(&body, "no certified record");
        }
        let items: Vec<(String, RGBColor)> = groups
            .iter()
            .map(|(&ci, n)| (format!("eps {} (n={n})", eps.0[ci]), color(ci)))
            .collect();
        let body = legend(&body, &items)?;
        let panels = body.split_evenly((depth, 1));
        for (l, panel) in panels.iter().enumerate() {
            let m = &counts[l];
            let ymax = m.values().copied().max().unwrap_or(0).max(1) as f64;
            let n_layer: usize = m.values().sum();
            let mean_q = m
                .iter()
                .map(|(&(_, q), &c)| q as f64 * c as f64)
                .sum::<f64>()
                / n_layer.max(1) as f64;
            let side = if l + 1 == depth {
                " (output)"
            } else if l == 0 {
                " (input side)"
            } else {
                ""
            };
            let caption = format!("affine layer {}{side}: mean Q {mean_q:.2}", l + 1);
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, (FONT, LABEL_SIZE + 1))
                .margin(8)
                .margin_right(24)
                .x_label_area_size(if l + 1 == depth { 44 } else { 24 })
                .y_label_area_size(60)
                .build_cartesian_2d(qmin as f64 - 0.5..qmax as f64 + 0.5, 0.0..ymax * 1.2)?;
            let mut mesh = chart.configure_mesh();
            mesh.disable_x_mesh()
                .x_labels(nq + 1)
                .x_label_formatter(&integer_label)
                .y_labels(5)
                .y_label_formatter(&integer_label)
                .y_desc("tasks")
                .axis_desc_style((FONT, LABEL_SIZE))
                .label_style((FONT, TICK_SIZE))
                .light_line_style(LIGHT);
            if l + 1 == depth {
                mesh.x_desc("total bits Q");
            }
            mesh.draw()?;
            let slot_w = 0.8 / k as f64;
            let count_style = TextStyle::from((FONT, TICK_SIZE - 2).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom))
                .color(&BLACK);
            for (&(ci, q), &c) in m {
                let slot = slot_of.get(&ci).copied().unwrap_or(0);
                let x0 = q as f64 - 0.4 + slot as f64 * slot_w;
                let (x0, x1) = (x0 + 0.06 * slot_w, x0 + 0.94 * slot_w);
                let col = color(ci);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, c as f64)],
                    col.mix(FILL_OPACITY).filled(),
                )))?;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, c as f64)],
                    col.stroke_width(1),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    c.to_string(),
                    ((x0 + x1) / 2.0, c as f64),
                    count_style.clone(),
                )))?;
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// times

/// Smallest time drawn on the log axis (shorter times are drawn at it).
const MIN_SECONDS: f64 = 1e-4;
/// Largest time drawn (keeps the axis finite).
const MAX_SECONDS: f64 = 1e12;

/// Axis label of a time in seconds: integers from 1 up, else as many decimals as needed.
fn seconds_label(v: &f64) -> String {
    if *v >= 1.0 {
        format!("{v:.0}")
    } else if *v > 0.0 {
        let d = (-v.log10()).ceil().max(1.0) as usize;
        format!("{v:.d$}")
    } else {
        "0".into()
    }
}

/// A time in seconds for the legend, to about three significant digits.
fn seconds_text(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn times_svg(records: &[TaskRecord], title: &str) -> Result<String, DrawError> {
    let ran: Vec<&TaskRecord> = records
        .iter()
        .filter(|r| r.status == "certified" || r.status == "unknown")
        .collect();
    let sorted = |f: fn(&TaskRecord) -> f64| -> Vec<f64> {
        let mut v: Vec<f64> = ran
            .iter()
            .map(|r| f(r))
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| x.clamp(MIN_SECONDS, MAX_SECONDS))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let series = [
        // reused preimages (`--preimages-from`) are shown with the seconds they first took
        (
            "preimage",
            sorted(|r| r.reused_preimage_seconds.unwrap_or(r.preimage_seconds)),
        ),
        ("quantization", sorted(|r| r.quantize_seconds)),
    ];
    let n = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let head = heading(
        title,
        &format!("seconds per task ({} tasks that ran synthesis)", ran.len()),
    );
    render((fit_width(860, &head), 520), |root| {
        let body = titled(root, &head)?;
        if n == 0 {
            return no_data(&body, "no certified or unknown record");
        }
        let items: Vec<(String, RGBColor)> = series
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| !v.is_empty())
            .map(|(i, (name, v))| {
                (
                    format!("{name}: median {} s", seconds_text(crate::bench::median(v))),
                    color(i),
                )
            })
            .collect();
        let body = legend(&body, &items)?;
        let all = series.iter().flat_map(|(_, v)| v.iter().copied());
        let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
        // a hair below the decade so that its tick is drawn
        let lo = 10f64.powf(lo.log10().floor()) * 0.999;
        let mut hi = 10f64.powf(hi.log10().ceil());
        if hi <= lo * 1.5 {
            hi = lo * 10.0;
        }
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..n as f64 + 0.5, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(n.min(10) + 1)
            .x_label_formatter(&integer_label)
            .y_labels(12)
            .y_label_formatter(&seconds_label)
            .x_desc("task rank (each series sorted ascending)")
            .y_desc("seconds (log scale)")
            .axis_desc_style((FONT, LABEL_SIZE))
            .label_style((FONT, TICK_SIZE))
            .light_line_style(LIGHT)
            .draw()?;
        for (i, (_, v)) in series.iter().enumerate() {
            let c = color(i);
            let pts: Vec<(f64, f64)> = v
                .iter()
                .enumerate()
                .map(|(j, &y)| ((j + 1) as f64, y))
                .collect();
            chart.draw_series(std::iter::once(PathElement::new(
                pts.clone(),
                c.stroke_width(2),
            )))?;
            if pts.len() <= 200 {
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
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

    #[test]
    fn tukey_statistics() {
        let s = BoxStats::new(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.0, 3.0, 4.0));
        assert_eq!((s.whisker_lo, s.whisker_hi), (1.0, 4.0));
        assert_eq!(s.outliers, vec![100.0]);
        assert!(BoxStats::new(&[f64::NAN]).is_none());
        assert_eq!(seconds_label(&0.001), "0.001");
        assert_eq!(seconds_label(&0.05), "0.05");
        assert_eq!(seconds_label(&100.0), "100");
        assert_eq!(seconds_text(1.107), "1.11");
        assert_eq!(seconds_text(0.0323), "0.032");
    }
}
