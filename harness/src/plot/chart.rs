//! The one kind of chart most figures are: lines with markers on linear or log axes,
//! a legend beside the plot, optionally a dashed horizontal reference line.
//!
//! SVG structure (relied on by the tests): every data series is exactly one
//! `<polyline stroke-width="2">` in the plot plus one in its legend sample; axes, ticks
//! and grid lines have stroke width 1; markers and dashes are `<circle>`, `<rect>` and
//! `<polygon>` elements; every legend entry is one `<text>` holding its label.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use super::PlotError;
use super::style::{self, INK, LINE_WIDTH, SeriesStyle};

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// Colour and marker.
    pub style: SeriesStyle,
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
    /// Title above the plot.
    pub title: String,
    /// x-axis description, with units.
    pub x_desc: String,
    /// y-axis description, with units.
    pub y_desc: String,
    /// Logarithmic x axis.
    pub x_log: bool,
    /// x values are integers (epochs): integer tick labels.
    pub x_integer: bool,
    /// Series in legend order.
    pub series: Vec<Series>,
    /// Optional reference line.
    pub reference: Option<Reference>,
    /// Markers on every point (sweeps) rather than about a dozen per line (curves).
    pub every_marker: bool,
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// The chart as SVG text.
pub fn render(chart: &LineChart) -> Result<String, PlotError> {
    style::init_fonts();
    let pts = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.x_log || *x > 0.0))
    };
    let (mut xlo, mut xhi, mut ylo, mut yhi) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in pts() {
        xlo = xlo.min(x);
        xhi = xhi.max(x);
        ylo = ylo.min(y);
        yhi = yhi.max(y);
    }
    if let Some(r) = &chart.reference
        && r.y.is_finite()
    {
        ylo = ylo.min(r.y);
        yhi = yhi.max(r.y);
    }
    if !xlo.is_finite() {
        return Err(PlotError::NoData(chart.title.clone()));
    }
    let (ylo, yhi) = style::padded(ylo, yhi, 0.06);
    let legend: Vec<(String, Option<SeriesStyle>)> = chart
        .series
        .iter()
        .map(|s| (s.label.clone(), Some(s.style)))
        .chain(chart.reference.iter().map(|r| (r.label.clone(), None)))
        .collect();
    let height = style::HEIGHT.max(90 + 26 * legend.len() as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (style::WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let font = style::text(style::LEGEND_SIZE);
        let mut text_w = 0u32;
        for (label, _) in &legend {
            let (w, _) = root.estimate_text_size(label, &font).map_err(draw_err)?;
            text_w = text_w.max(w);
        }
        let legend_w = (text_w + 60).min(style::WIDTH * 9 / 20);
        let (plot_area, legend_area) = root.split_horizontally(style::WIDTH - legend_w);
        if chart.x_log {
            let (a, b) = (xlo / 1.5, xhi * 1.5);
            draw_plot(chart, &root, &plot_area, (a..b).log_scale(), (ylo, yhi))?;
        } else {
            let (a, b) = if chart.x_integer {
                (xlo, xhi.max(xlo + 1.0))
            } else {
                style::padded(xlo, xhi, 0.05)
            };
            draw_plot(chart, &root, &plot_area, a..b, (ylo, yhi))?;
        }
        draw_legend(&legend_area, &legend)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

fn draw_plot<'a, XR>(
    chart: &LineChart,
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    x: XR,
    (ylo, yhi): (f64, f64),
) -> Result<(), PlotError>
where
    XR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, style::bold(style::TITLE_SIZE))
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(x, ylo..yhi)
        .map_err(draw_err)?;
    let xfmt = |v: &f64| {
        if chart.x_integer {
            format!("{}", v.round())
        } else {
            style::num(*v)
        }
    };
    let yfmt = |v: &f64| trim_float(*v);
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
    for (i, s) in chart.series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.x_log || *x > 0.0))
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
                style::draw_marker(root, s.style.marker, ctx.backend_coord(p), s.style.color)
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
    entries: &[(String, Option<SeriesStyle>)],
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    let font = style::text(style::LEGEND_SIZE).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    let top = 60;
    for (i, (label, st)) in entries.iter().enumerate() {
        let y = top + 26 * i as i32;
        match st {
            Some(st) => {
                area.draw(&PathElement::new(
                    vec![(4, y), (40, y)],
                    st.color.stroke_width(LINE_WIDTH),
                ))
                .map_err(draw_err)?;
                style::draw_marker(area, st.marker, (22, y), st.color).map_err(draw_err)?;
            }
            None => dashes(area, 4, 40, y)?,
        }
        area.draw(&Text::new(label.as_str(), (48, y), font.clone()))
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

    #[test]
    fn tick_values_are_trimmed() {
        assert_eq!(trim_float(0.30000000000000004), "0.3");
        assert_eq!(trim_float(85.0), "85");
        assert_eq!(trim_float(-0.00001), "0");
        assert_eq!(trim_float(1.25), "1.25");
    }
}
