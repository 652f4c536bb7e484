//! The χ box plot (`chi_boxplot.svg`, as Fig. 3 of the FM 2024 paper): one Tukey box per
//! (hidden layer, eps), the eps boxes of a layer side by side.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::draw::{
    DrawError, DrawResult, EpsOrder, FILL_OPACITY, FONT, LABEL_SIZE, LIGHT, TICK_SIZE, color,
    fit_width, heading, integer_label, legend, no_data, render, titled,
};
use crate::bench::TaskRecord;

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

/// The χ box plot of the records that have χ values, as an SVG document.
pub(super) fn chi_boxplot_svg(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tukey_statistics() {
        let s = BoxStats::new(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.0, 3.0, 4.0));
        assert_eq!((s.whisker_lo, s.whisker_hi), (1.0, 4.0));
        assert_eq!(s.outliers, vec![100.0]);
        assert!(BoxStats::new(&[f64::NAN]).is_none());
    }
}
