//! Pieces shared by the figures: the drawing-error type, colours and fonts, the eps order
//! that keeps an eps's colour across figures, and helpers for headings, "no data" notes and
//! legends.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::bench::TaskRecord;
use crate::spec::parse_eps;

/// A drawing error before the file name is attached.
#[derive(Debug)]
pub(super) struct DrawError(pub(super) String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

/// A drawing area of an SVG document.
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// The result of drawing into an area.
pub(super) type DrawResult = Result<(), DrawError>;

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

/// The colour of eps group or series `i` (cycling through [`COLORS`]).
pub(super) fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// Font family of all text.
pub(super) const FONT: &str = "sans-serif";
// plotters writes font-size = size / 1.24 into the SVG
/// Font size of figure headings.
pub(super) const TITLE_SIZE: u32 = 24;
/// Font size of axis descriptions, legends and panel captions.
pub(super) const LABEL_SIZE: u32 = 18;
/// Font size of tick labels.
pub(super) const TICK_SIZE: u32 = 16;
/// Height of a legend row in pixels.
const LEGEND_ROW: i32 = 26;
/// Minor grid lines.
pub(super) const LIGHT: RGBColor = RGBColor(240, 240, 240);

/// Opacity of box and bar fills (the tests recognise boxes and bars by it).
pub(super) const FILL_OPACITY: f64 = 0.35;

/// The eps texts of all records, ordered by value (texts that do not parse go last), so
/// that an eps keeps its colour across figures.
pub(super) struct EpsOrder(pub(super) Vec<String>);

impl EpsOrder {
    pub(super) fn new(records: &[TaskRecord]) -> Self {
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
    pub(super) fn index(&self, eps: &str) -> usize {
        self.0.iter().position(|t| t == eps).unwrap_or(0)
    }
}

/// Width in pixels for a figure at least `base` wide whose heading must fit.
pub(super) fn fit_width(base: u32, heading: &str) -> u32 {
    let needed = heading.chars().count() as f64 * TITLE_SIZE as f64 / 1.24 * 0.6 + 40.0;
    base.max(needed.ceil() as u32).min(4000)
}

/// The figure heading: `what`, prefixed by `title` when there is one.
pub(super) fn heading(title: &str, what: &str) -> String {
    if title.trim().is_empty() {
        what.to_string()
    } else {
        format!("{} — {what}", title.trim())
    }
}

/// Renders one SVG document of `size` pixels into a string.
pub(super) fn render(
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<String, DrawError> {
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
pub(super) fn titled<'a>(root: &Area<'a>, text: &str) -> Result<Area<'a>, DrawError> {
    Ok(root.titled(text, (FONT, TITLE_SIZE).into_font().color(&BLACK))?)
}

/// Draws "no data" and why in the middle of `area`.
pub(super) fn no_data(area: &Area, why: &str) -> DrawResult {
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
pub(super) fn legend<'a>(
    area: &Area<'a>,
    items: &[(String, RGBColor)],
) -> Result<Area<'a>, DrawError> {
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
pub(super) fn integer_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}
