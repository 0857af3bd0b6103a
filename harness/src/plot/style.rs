//! The look of every figure: sizes, the embedded font, a greyscale-safe palette,
//! marker shapes, and stable number formatting.
//!
//! Series are told apart by colour *and* marker shape: the colours (Okabe–Ito, ordered
//! so that neighbours differ in lightness) survive colour-blindness, the markers survive
//! greyscale printing. Text is laid out with the metrics of DejaVu Sans, embedded in the
//! binary (the `dejavu` crate), so the layout never depends on the machine's fonts.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Width of a standard figure, px (the SVG's user units).
pub const WIDTH: u32 = 760;
/// Height of a standard figure, px.
pub const HEIGHT: u32 = 460;
/// Font size of figure titles, px.
pub const TITLE_SIZE: f64 = 22.0;
/// Font size of axis descriptions, px.
pub const AXIS_SIZE: f64 = 18.0;
/// Font size of tick labels, px.
pub const TICK_SIZE: f64 = 16.0;
/// Font size of legend entries, px.
pub const LEGEND_SIZE: f64 = 16.0;
/// Stroke width of data lines, px.
pub const LINE_WIDTH: u32 = 2;
/// Half-size of a marker, px.
pub const MARKER: i32 = 5;

/// The font family every text element names (registered as DejaVu Sans).
pub const FAMILY: &str = "sans-serif";

/// Text colour and axis colour.
pub const INK: RGBColor = RGBColor(0x1a, 0x1a, 0x1a);
/// Grid-line colour.
pub const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// Okabe–Ito colours, ordered so that consecutive series differ in lightness.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xe6, 0x9f, 0x00), // orange
    RGBColor(0x00, 0x72, 0xb2), // blue
    RGBColor(0x56, 0xb4, 0xe9), // sky blue
    RGBColor(0xd5, 0x5e, 0x00), // vermillion
    RGBColor(0x00, 0x9e, 0x73), // bluish green
    RGBColor(0xcc, 0x79, 0xa7), // reddish purple
];

/// Register DejaVu Sans with plotters (once per process) for text layout.
pub fn init_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate; a failure
        // here would be a build defect, and text layout then falls back to an error
        // reported by the first figure.
        let _ = register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// A text style of `size` px in the figure font.
pub fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&INK)
}

/// A bold text style of `size` px in the figure font (titles).
pub fn bold(size: f64) -> TextStyle<'static> {
    (FAMILY, size, FontStyle::Bold).into_font().color(&INK)
}

/// Marker shapes, distinguishable without colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Disc,
    /// Hollow square.
    Square,
    /// Filled triangle pointing up.
    Triangle,
    /// Hollow diamond.
    Diamond,
    /// Plus sign.
    Cross,
    /// Hollow circle.
    Ring,
    /// Filled square.
    Block,
    /// Hollow triangle pointing down.
    Nabla,
}

/// Every marker, in the order series use them.
pub const MARKERS: [Marker; 8] = [
    Marker::Disc,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
    Marker::Ring,
    Marker::Block,
    Marker::Nabla,
];

/// How series `i` of a figure is drawn: its colour and its marker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesStyle {
    /// Line and marker colour.
    pub color: RGBColor,
    /// Marker shape.
    pub marker: Marker,
}

/// The style of series `i` (colours and markers cycle independently: 56 distinct pairs).
pub fn series_style(i: usize) -> SeriesStyle {
    SeriesStyle {
        color: PALETTE[i % PALETTE.len()],
        marker: MARKERS[i % MARKERS.len()],
    }
}

/// Draw `marker` centred on the pixel `c` of `area`.
///
/// Markers are filled shapes only (`<circle>`, `<rect>`, `<polygon>`); hollow ones are a
/// coloured shape with a white one inside, so no marker is a `<polyline>` (the data
/// lines are).
pub fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    marker: Marker,
    c: (i32, i32),
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let r = MARKER;
    let (x, y) = c;
    let fill = ShapeStyle::from(&color).filled();
    let white = WHITE.filled();
    let square = |r: i32| [(x - r, y - r), (x + r, y + r)];
    let triangle_up = |r: i32| vec![(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)];
    let triangle_down = |r: i32| vec![(x - r - 1, y - r), (x + r + 1, y - r), (x, y + r + 1)];
    let diamond = |r: i32| {
        vec![
            (x, y - r - 1),
            (x + r + 1, y),
            (x, y + r + 1),
            (x - r - 1, y),
        ]
    };
    match marker {
        Marker::Disc => area.draw(&Circle::new(c, r, fill)),
        Marker::Ring => {
            area.draw(&Circle::new(c, r, fill))?;
            area.draw(&Circle::new(c, r - 2, white))
        }
        Marker::Block => area.draw(&Rectangle::new(square(r), fill)),
        Marker::Square => {
            area.draw(&Rectangle::new(square(r), fill))?;
            area.draw(&Rectangle::new(square(r - 2), white))
        }
        Marker::Triangle => area.draw(&Polygon::new(triangle_up(r), fill)),
        Marker::Nabla => {
            area.draw(&Polygon::new(triangle_down(r + 1), fill))?;
            area.draw(&Polygon::new(triangle_down(r - 2), white))
        }
        Marker::Diamond => {
            area.draw(&Polygon::new(diamond(r + 1), fill))?;
            area.draw(&Polygon::new(diamond(r - 2), white))
        }
        Marker::Cross => {
            area.draw(&Rectangle::new(
                [(x - r - 1, y - 1), (x + r + 1, y + 1)],
                fill,
            ))?;
            area.draw(&Rectangle::new(
                [(x - 1, y - r - 1), (x + 1, y + r + 1)],
                fill,
            ))
        }
    }
}

/// A number for a label: shortest round-trip form, scientific below 0.01 or from 1e4
/// (`1e-4`, `0.5`, `800`), so the same value always prints the same way.
pub fn num(v: f64) -> String {
    if v != 0.0 && v.is_finite() && (v.abs() < 1e-2 || v.abs() >= 1e4) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A fraction as a percentage with `digits` decimals, e.g. `0.8958 -> "89.58"`.
pub fn pct(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{:.digits$}", 100.0 * v)
    } else {
        "-".to_string()
    }
}

/// `[lo, hi]` widened by `pad` of its span on both sides (a unit span if empty).
pub fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { 0.05 * lo.abs() };
        (lo - d, hi + d)
    } else {
        (lo - pad * span, hi + pad * span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_stably() {
        assert_eq!(num(1e-4), "1e-4");
        assert_eq!(num(1e-5), "1e-5");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(800.0), "800");
        assert_eq!(num(0.0), "0");
        assert_eq!(pct(0.89584, 2), "89.58");
        assert_eq!(pct(f64::NAN, 2), "-");
    }

    #[test]
    fn styles_differ_for_the_first_56_series() {
        let styles: Vec<SeriesStyle> = (0..56).map(series_style).collect();
        for i in 0..styles.len() {
            for j in 0..i {
                assert_ne!(styles[i], styles[j], "series {i} and {j}");
            }
        }
    }

    #[test]
    fn padding() {
        assert_eq!(padded(0.0, 1.0, 0.1), (-0.1, 1.1));
        let (lo, hi) = padded(2.0, 2.0, 0.1);
        assert!(lo < 2.0 && hi > 2.0);
        assert_eq!(padded(f64::NAN, 1.0, 0.1), (0.0, 1.0));
    }
}
