//! The one kind of chart most figures are: lines with markers on linear or log axes,
//! a legend beside the plot (below it when the labels are long), optionally a dashed
//! horizontal reference line, and optionally a spread per series: a shaded band or
//! error bars (e.g. min to max over seeds).
//!
//! The title spans the whole figure and wraps onto further lines (at spaces, then at
//! `_`) rather than being clipped at the edges.
//!
//! SVG structure (relied on by the tests): every data series is exactly one
//! `<polyline stroke-width="2">` in the plot plus one in its legend sample; axes, ticks,
//! grid lines and error bars have stroke width 1; markers and dashes are `<circle>`,
//! `<rect>` and `<polygon>` elements (a band is one more `<polygon>`); every legend entry
//! is one `<text>` holding its label.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use super::PlotError;
use super::style::{self, INK, LINE_WIDTH, SeriesStyle};

/// The spread drawn around a series' points: `(x, low, high)` triples.
#[derive(Clone, Debug, PartialEq)]
pub enum Spread {
    /// A shaded band from `low` to `high` along the line.
    Band(Vec<(f64, f64, f64)>),
    /// A vertical error bar from `low` to `high` at each `x`.
    Bars(Vec<(f64, f64, f64)>),
}

impl Spread {
    fn triples(&self) -> &[(f64, f64, f64)] {
        match self {
            Spread::Band(t) | Spread::Bars(t) => t,
        }
    }
}

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// Colour and marker.
    pub style: SeriesStyle,
    /// Band or error bars around the points, if any.
    pub spread: Option<Spread>,
}

/// A dashed horizontal reference line (e.g. the unregularised baseline).
#[derive(Clone, Debug)]
pub struct Reference {
    /// Legend label.
    pub label: String,
    /// Its height.
    pub y: f64,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct LineChart {
    /// Title above the plot (wrapped to the figure's width).
    pub title: String,
    /// x-axis description, with units.
    pub x_desc: String,
    /// y-axis description, with units.
    pub y_desc: String,
    /// Logarithmic x axis.
    pub x_log: bool,
    /// Logarithmic y axis (every shown value must be positive).
    pub y_log: bool,
    /// x values are integers (epochs): integer tick labels.
    pub x_integer: bool,
    /// Series in legend order.
    pub series: Vec<Series>,
    /// Optional reference line.
    pub reference: Option<Reference>,
    /// Markers on every point (sweeps) rather than about a dozen per line (curves).
    pub every_marker: bool,
    /// A last legend entry of text only (e.g. what the bands or bars show).
    pub legend_note: Option<String>,
}

/// A legend entry: a series' sample, the reference's dashes, or text only.
#[derive(Clone, Copy, Debug)]
enum Sample {
    Series(SeriesStyle),
    Dashes,
    None,
}

/// Height of one legend row, px.
const LEGEND_ROW: u32 = 26;
/// Width of a legend entry's sample (line and marker) and gaps, px.
const LEGEND_SAMPLE: u32 = 60;

/// Split `title` into lines no wider than `width` px as `measure` measures them: at
/// spaces, and inside a word that alone is too wide after each `_` (a run name).
pub fn wrap_title(title: &str, width: u32, measure: &dyn Fn(&str) -> u32) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    for word in title.split(' ') {
        if measure(word) <= width || !word.contains('_') {
            pieces.push(word.to_string());
            continue;
        }
        let mut part = String::new();
        for ch in word.chars() {
            part.push(ch);
            if ch == '_' {
                pieces.push(std::mem::take(&mut part) + "\u{0}");
            }
        }
        pieces.push(part);
    }
    // pieces ending in NUL join the next without a space
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut glue = "";
    for piece in pieces {
        let (text, next_glue) = match piece.strip_suffix('\u{0}') {
            Some(t) => (t.to_string(), ""),
            None => (piece, " "),
        };
        let candidate = format!("{line}{glue}{text}");
        if !line.is_empty() && measure(&candidate) > width {
            lines.push(std::mem::take(&mut line));
            line = text;
        } else {
            line = candidate;
        }
        glue = next_glue;
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// The chart as SVG text.
pub fn render(chart: &LineChart) -> Result<String, PlotError> {
    style::init_fonts();
    let shown = |x: f64, y: f64| {
        x.is_finite() && y.is_finite() && (!chart.x_log || x > 0.0) && (!chart.y_log || y > 0.0)
    };
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for s in &chart.series {
        pts.extend(s.points.iter().copied());
        if let Some(sp) = &s.spread {
            for &(x, lo, hi) in sp.triples() {
                pts.push((x, lo));
                pts.push((x, hi));
            }
        }
    }
    let (mut xlo, mut xhi, mut ylo, mut yhi) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in pts.into_iter().filter(|&(x, y)| shown(x, y)) {
        xlo = xlo.min(x);
        xhi = xhi.max(x);
        ylo = ylo.min(y);
        yhi = yhi.max(y);
    }
    if let Some(r) = &chart.reference
        && r.y.is_finite()
        && (!chart.y_log || r.y > 0.0)
    {
        ylo = ylo.min(r.y);
        yhi = yhi.max(r.y);
    }
    if !xlo.is_finite() {
        return Err(PlotError::NoData(chart.title.clone()));
    }
    let (ylo, yhi) = if chart.y_log {
        (ylo / 1.15, yhi * 1.15)
    } else {
        style::padded(ylo, yhi, 0.06)
    };
    let legend: Vec<(String, Sample)> = chart
        .series
        .iter()
        .map(|s| (s.label.clone(), Sample::Series(s.style)))
        .chain(
            chart
                .reference
                .iter()
                .map(|r| (r.label.clone(), Sample::Dashes)),
        )
        .chain(chart.legend_note.iter().map(|n| (n.clone(), Sample::None)))
        .collect();
    // text sizes, measured with the embedded font
    let mut measure_svg = String::new();
    let probe = SVGBackend::with_string(&mut measure_svg, (1, 1)).into_drawing_area();
    let legend_font = style::text(style::LEGEND_SIZE);
    let mut text_w = 0u32;
    for (label, _) in &legend {
        let (w, _) = probe
            .estimate_text_size(label, &legend_font)
            .map_err(draw_err)?;
        text_w = text_w.max(w);
    }
    drop(probe);
    let (title_lines, title_h) = title_layout(&chart.title);
    // the legend beside the plot while it takes at most 3/10 of the width, else below
    // it in as many columns as fit
    let entry_w = text_w + LEGEND_SAMPLE;
    let beside = entry_w <= style::WIDTH * 3 / 10;
    let (columns, rows) = if beside {
        (1, legend.len() as u32)
    } else {
        let columns = ((style::WIDTH - 20) / entry_w.max(1)).max(1);
        (columns, (legend.len() as u32).div_ceil(columns))
    };
    let height = if beside {
        (style::HEIGHT + title_h - 40).max(title_h + 50 + LEGEND_ROW * rows)
    } else {
        style::HEIGHT + title_h - 40 + LEGEND_ROW * rows + 10
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (style::WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let body = draw_title(&root, &title_lines, title_h)?;
        let (plot_area, legend_area) = if beside {
            body.split_horizontally(style::WIDTH - entry_w)
        } else {
            body.split_vertically(height - title_h - LEGEND_ROW * rows - 10)
        };
        let y = (ylo, yhi);
        match (chart.x_log, chart.y_log) {
            (true, false) => draw_plot(
                chart,
                &root,
                &plot_area,
                (xlo / 1.5..xhi * 1.5).log_scale(),
                ylo..yhi,
            )?,
            (true, true) => draw_plot(
                chart,
                &root,
                &plot_area,
                (xlo / 1.5..xhi * 1.5).log_scale(),
                (y.0..y.1).log_scale(),
            )?,
            (false, false) => {
                draw_plot(chart, &root, &plot_area, x_range(chart, xlo, xhi), ylo..yhi)?
            }
            (false, true) => draw_plot(
                chart,
                &root,
                &plot_area,
                x_range(chart, xlo, xhi),
                (y.0..y.1).log_scale(),
            )?,
        }
        let top = if beside { 20 } else { 12 };
        draw_legend(&legend_area, &legend, columns, entry_w, top)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// A figure title wrapped to the figure's width ([`wrap_title`], measured in the
/// embedded bold font) and the height the lines take at the top of the figure.
pub fn title_layout(title: &str) -> (Vec<String>, u32) {
    style::init_fonts();
    let mut probe_svg = String::new();
    let probe = SVGBackend::with_string(&mut probe_svg, (1, 1)).into_drawing_area();
    let font = style::bold(style::TITLE_SIZE);
    let measure = |t: &str| {
        probe
            .estimate_text_size(t, &font)
            .map_or(u32::MAX, |(w, _)| w)
    };
    let lines = wrap_title(title, style::WIDTH - 24, &measure);
    let height = 14 + lines.len() as u32 * (style::TITLE_SIZE as u32 + 6);
    (lines, height)
}

/// Draw the title `lines` ([`title_layout`]) centred at the top of `root`; the area
/// below them (from `height` down).
pub fn draw_title<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    lines: &[String],
    height: u32,
) -> Result<DrawingArea<SVGBackend<'a>, Shift>, PlotError> {
    let font = style::bold(style::TITLE_SIZE).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Top,
    ));
    for (i, line) in lines.iter().enumerate() {
        let y = 10 + i as i32 * (style::TITLE_SIZE as i32 + 6);
        root.draw(&Text::new(
            line.as_str(),
            (style::WIDTH as i32 / 2, y),
            font.clone(),
        ))
        .map_err(draw_err)?;
    }
    Ok(root.split_vertically(height).1)
}

/// The x range of a linear axis: whole epochs, or padded.
fn x_range(chart: &LineChart, xlo: f64, xhi: f64) -> std::ops::Range<f64> {
    let (a, b) = if chart.x_integer {
        (xlo, xhi.max(xlo + 1.0))
    } else {
        style::padded(xlo, xhi, 0.05)
    };
    a..b
}

fn draw_plot<'a, XR, YR>(
    chart: &LineChart,
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    x: XR,
    y: YR,
) -> Result<(), PlotError>
where
    XR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    YR: AsRangedCoord<Value = f64>,
    YR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut ctx = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(draw_err)?;
    let xfmt = |v: &f64| {
        if chart.x_integer {
            format!("{}", v.round())
        } else {
            style::num(*v)
        }
    };
    let yfmt = |v: &f64| {
        if chart.y_log {
            style::num(*v)
        } else {
            trim_float(*v)
        }
    };
    let x_labels = if chart.x_integer {
        // whole epochs only
        let xr = ctx.x_range();
        ((xr.end - xr.start).round() as usize + 1).clamp(2, 11)
    } else {
        8
    };
    ctx.configure_mesh()
        .x_desc(&chart.x_desc)
        .y_desc(&chart.y_desc)
        .axis_desc_style(style::text(style::AXIS_SIZE))
        .label_style(style::text(style::TICK_SIZE))
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .light_line_style(TRANSPARENT)
        .bold_line_style(style::GRID.stroke_width(1))
        .axis_style(INK.stroke_width(1))
        .draw()
        .map_err(draw_err)?;
    if let Some(r) = &chart.reference {
        let xr = ctx.x_range();
        let (x0, y) = ctx.backend_coord(&(xr.start, r.y));
        let (x1, _) = ctx.backend_coord(&(xr.end, r.y));
        dashes(root, x0, x1, y)?;
    }
    let ok = |x: f64, y: f64| {
        x.is_finite() && y.is_finite() && (!chart.x_log || x > 0.0) && (!chart.y_log || y > 0.0)
    };
    // bands first, under every line
    for s in &chart.series {
        if let Some(Spread::Band(t)) = &s.spread {
            let t: Vec<(f64, f64, f64)> = t
                .iter()
                .copied()
                .filter(|&(x, lo, hi)| ok(x, lo) && ok(x, hi))
                .collect();
            let outline: Vec<(f64, f64)> = t
                .iter()
                .map(|&(x, _, hi)| (x, hi))
                .chain(t.iter().rev().map(|&(x, lo, _)| (x, lo)))
                .collect();
            if outline.len() >= 4 {
                ctx.draw_series(std::iter::once(Polygon::new(
                    outline,
                    s.style.color.mix(0.18).filled(),
                )))
                .map_err(draw_err)?;
            }
        }
    }
    // backend coordinates are the whole figure's: draw on `root`
    let local = |p: (i32, i32)| p;
    for (i, s) in chart.series.iter().enumerate() {
        if let Some(Spread::Bars(t)) = &s.spread {
            for &(x, lo, hi) in t.iter().filter(|&&(x, lo, hi)| ok(x, lo) && ok(x, hi)) {
                let (px, p_lo) = local(ctx.backend_coord(&(x, lo)));
                let (_, p_hi) = local(ctx.backend_coord(&(x, hi)));
                let bar = s.style.color.stroke_width(1);
                for seg in [
                    vec![(px, p_lo), (px, p_hi)],
                    vec![(px - 4, p_lo), (px + 4, p_lo)],
                    vec![(px - 4, p_hi), (px + 4, p_hi)],
                ] {
                    root.draw(&PathElement::new(seg, bar)).map_err(draw_err)?;
                }
            }
        }
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| ok(x, y))
            .collect();
        ctx.draw_series(LineSeries::new(
            pts.iter().copied(),
            s.style.color.stroke_width(LINE_WIDTH),
        ))
        .map_err(draw_err)?;
        // About a dozen markers per line, staggered between series so they do not
        // hide each other.
        let stride = if chart.every_marker {
            1
        } else {
            pts.len().div_ceil(12).max(1)
        };
        for (j, p) in pts.iter().enumerate() {
            if (j + i) % stride == 0 || j + 1 == pts.len() {
                style::draw_marker(
                    root,
                    s.style.marker,
                    local(ctx.backend_coord(p)),
                    s.style.color,
                )
                .map_err(draw_err)?;
            }
        }
    }
    Ok(())
}

/// A dashed horizontal line from `x0` to `x1` at height `y`, as 2 px high rectangles.
fn dashes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x0: i32,
    x1: i32,
    y: i32,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    let mut x = x0;
    while x < x1 {
        let end = (x + 8).min(x1);
        area.draw(&Rectangle::new([(x, y - 1), (end, y + 1)], INK.filled()))
            .map_err(draw_err)?;
        x += 14;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Sample)],
    columns: u32,
    entry_w: u32,
    top: i32,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    let font = style::text(style::LEGEND_SIZE).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    let left = if columns > 1 { 10 } else { 0 };
    for (i, (label, st)) in entries.iter().enumerate() {
        let (row, col) = (i as u32 / columns, i as u32 % columns);
        let x = left + (col * entry_w) as i32;
        let y = top + (LEGEND_ROW * row) as i32;
        match st {
            Sample::Series(st) => {
                area.draw(&PathElement::new(
                    vec![(x + 4, y), (x + 40, y)],
                    st.color.stroke_width(LINE_WIDTH),
                ))
                .map_err(draw_err)?;
                style::draw_marker(area, st.marker, (x + 22, y), st.color).map_err(draw_err)?;
            }
            Sample::Dashes => dashes(area, x + 4, x + 40, y)?,
            Sample::None => {}
        }
        let text_x = if matches!(st, Sample::None) {
            x + 4
        } else {
            x + 48
        };
        area.draw(&Text::new(label.as_str(), (text_x, y), font.clone()))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// A tick value without float noise: at most 4 significant decimals, trailing zeros cut.
pub fn trim_float(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long titles wrap at spaces, and inside a run name after its `_`s; nothing is
    /// lost or reordered.
    #[test]
    fn titles_wrap_to_the_width() {
        let measure = |t: &str| 10 * t.chars().count() as u32;
        assert_eq!(wrap_title("Cost: short", 200, &measure), ["Cost: short"]);
        let title =
            "Cost: dropout_keep_input=0.5_keep_hidden=0.5 (input keep 0.5, hidden keep 0.5)";
        let lines = wrap_title(title, 300, &measure);
        assert!(lines.len() >= 3, "{lines:?}");
        for l in &lines {
            assert!(measure(l) <= 300, "{l:?} of {lines:?}");
        }
        assert_eq!(lines.concat().replace(' ', ""), title.replace(' ', ""));
        assert!(lines.iter().any(|l| l.ends_with('_')), "{lines:?}");
        // a single word wider than the line and without `_` stays whole
        assert_eq!(wrap_title("abcdefghij", 50, &measure), ["abcdefghij"]);
    }

    #[test]
    fn tick_values_are_trimmed() {
        assert_eq!(trim_float(0.30000000000000004), "0.3");
        assert_eq!(trim_float(85.0), "85");
        assert_eq!(trim_float(-0.00001), "0");
        assert_eq!(trim_float(1.25), "1.25");
    }
}
