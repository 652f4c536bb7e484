//! The time plot (`times.svg`): preimage and quantization seconds per task, each series
//! sorted ascending, on a log scale.

use plotters::prelude::*;

use super::draw::{
    DrawError, FONT, LABEL_SIZE, LIGHT, TICK_SIZE, color, fit_width, heading, integer_label,
    legend, no_data, render, titled,
};
use crate::bench::TaskRecord;

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

/// The time plot of the records that ran synthesis, as an SVG document.
pub(super) fn times_svg(records: &[TaskRecord], title: &str) -> Result<String, DrawError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_formatting() {
        assert_eq!(seconds_label(&0.001), "0.001");
        assert_eq!(seconds_label(&0.05), "0.05");
        assert_eq!(seconds_label(&100.0), "100");
        assert_eq!(seconds_text(1.107), "1.11");
        assert_eq!(seconds_text(0.0323), "0.032");
    }
}
