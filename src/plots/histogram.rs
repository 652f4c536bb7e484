//! The bit-width histogram (`bits_histogram.svg`): how often each total bit-width Q was
//! chosen, one panel per affine layer, bars grouped by eps, over certified tasks.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    DrawError, EpsOrder, FILL_OPACITY, FONT, LABEL_SIZE, LIGHT, TICK_SIZE, color, fit_width,
    heading, integer_label, legend, no_data, render, titled,
};
use crate::bench::TaskRecord;

/// The bit-width histogram of the certified records, as an SVG document.
pub(super) fn bits_histogram_svg(
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
