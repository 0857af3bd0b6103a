//! Histograms of the final weights of each run: L1 drives many weights to (almost)
//! exactly zero (a spike at 0), L2 shrinks them all towards zero (a narrower bell).
//!
//! All runs of a study share one set of bins, `BINS` equal bins over `[-M, M]` with
//! `M` the largest `|w|` of any run, so their histograms compare directly. Only weight
//! matrices are counted, not biases (as the penalties and `summary.csv` do).

use plotters::prelude::*;

use super::PlotError;
use super::chart::trim_float;
use super::labels;
use super::rundir::RunData;
use super::style::{self, INK};

/// Number of histogram bins.
pub const BINS: usize = 61;

/// Below this magnitude a weight counts as zero (as `frac_small_weights` in the summary).
pub use crate::run::digest::SMALL;
use crate::run::digest::WeightStats;

/// The final weights of one run and their statistics.
#[derive(Clone, Debug)]
pub struct Weights {
    /// Every weight (not bias), layer after layer.
    pub values: Vec<f32>,
    /// Their statistics (those of `summary.csv`).
    pub stats: WeightStats,
    /// `max |w|`.
    pub max_abs: f32,
}

/// Load a run's final weights.
pub fn load(run: &RunData) -> Result<Weights, PlotError> {
    let path = run.model_path();
    let net = regulab_model::io::load(&path).map_err(|e| PlotError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut values = Vec::with_capacity(net.layers().iter().map(|l| l.weight().len()).sum());
    for l in net.layers() {
        values.extend_from_slice(l.weight());
    }
    drop(net);
    let stats = WeightStats::of_values(values.iter().copied());
    let max_abs = values
        .iter()
        .filter(|w| w.is_finite())
        .fold(0f32, |m, w| m.max(w.abs()));
    Ok(Weights {
        stats,
        max_abs,
        values,
    })
}

impl Weights {
    /// This run's share of the common range: the 99th percentile of the finite `|w|`
    /// (the element of rank `round(0.99 (n - 1))`), 0 without any.
    pub fn range(&self) -> f32 {
        let mut a = Vec::with_capacity(self.values.len());
        a.extend(self.values.iter().copied());
        p99_abs(a)
    }

    /// [`range`](Self::range), reusing the weights' own buffer.
    pub fn into_range(self) -> f32 {
        p99_abs(self.values)
    }
}

/// The 99th percentile of the finite `|v|` of `a` (0 without any), in place.
fn p99_abs(mut a: Vec<f32>) -> f32 {
    a.retain(|v| v.is_finite());
    for v in &mut a {
        *v = v.abs();
    }
    if a.is_empty() {
        return 0.0;
    }
    let k = ((a.len() - 1) as f64 * 0.99).round() as usize;
    let (_, v, _) = a.select_nth_unstable_by(k, f32::total_cmp);
    *v
}

/// Counts of the finite `values` in `BINS` equal bins over `[-m, m]`, and the number
/// of values outside that range (not binned).
pub fn histogram(values: &[f32], m: f32) -> (Vec<usize>, usize) {
    let mut counts = vec![0usize; BINS];
    let mut outside = 0;
    let m = f64::from(m.max(f32::MIN_POSITIVE));
    for &w in values.iter().filter(|w| w.is_finite()) {
        let w = f64::from(w);
        if w.abs() > m {
            outside += 1;
            continue;
        }
        let t = (w + m) / (2.0 * m) * BINS as f64;
        counts[(t.floor().max(0.0) as usize).min(BINS - 1)] += 1;
    }
    (counts, outside)
}

/// The range of a study's histograms: the largest over runs of the 99th percentile
/// of `|w|` (a few outlying weights would otherwise squeeze every bar into the middle).
pub fn common_range(runs: &[&Weights]) -> f32 {
    range_of(runs.iter().map(|w| w.range()))
}

/// The common range from each run's [`Weights::range`] (so that a study's runs can be
/// loaded one at a time).
pub fn range_of(ranges: impl IntoIterator<Item = f32>) -> f32 {
    ranges.into_iter().fold(0f32, f32::max).max(1e-6)
}

/// The histogram figure of one run, bins over `[-m, m]`.
pub fn histogram_svg(run: &RunData, w: &Weights, m: f32) -> Result<String, PlotError> {
    style::init_fonts();
    let (counts, outside) = histogram(&w.values, m);
    let total = w.values.len().max(1) as f64;
    let shares: Vec<f64> = counts.iter().map(|&c| 100.0 * c as f64 / total).collect();
    let top = shares.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.15;
    let m = f64::from(m.max(f32::MIN_POSITIVE));
    let width = 2.0 * m / BINS as f64;
    // the title wraps rather than being clipped (long run names)
    let (title, title_h) = super::chart::title_layout(&format!(
        "Final weights: {} ({})",
        run.name,
        labels::describe(run)
    ));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (style::WIDTH, style::HEIGHT + title_h - 40))
            .into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| PlotError::Draw(e.to_string()))?;
        let body = super::chart::draw_title(&root, &title, title_h)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(-m..m, 0.0..top)
            .map_err(|e| PlotError::Draw(e.to_string()))?;
        let fmt = |v: &f64| trim_float(*v);
        chart
            .configure_mesh()
            .x_desc("weight value")
            .y_desc("share of weights per bin (%)")
            .axis_desc_style(style::text(style::AXIS_SIZE))
            .label_style(style::text(style::TICK_SIZE))
            .x_labels(9)
            .y_labels(8)
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .light_line_style(TRANSPARENT)
            .bold_line_style(style::GRID.stroke_width(1))
            .axis_style(INK.stroke_width(1))
            .draw()
            .map_err(|e| PlotError::Draw(e.to_string()))?;
        let fill = RGBColor(0x80, 0x80, 0x80).filled();
        let edge = INK.stroke_width(1);
        for (b, &s) in shares.iter().enumerate() {
            if s <= 0.0 {
                continue;
            }
            let x0 = -m + b as f64 * width;
            let corners = [(x0, 0.0), (x0 + width, s)];
            chart
                .draw_series([Rectangle::new(corners, fill), Rectangle::new(corners, edge)])
                .map_err(|e| PlotError::Draw(e.to_string()))?;
        }
        let note = format!(
            "{} weights: {} % with |w| < 1e-3, L2 norm {:.2}, max |w| {:.3}, {} beyond ±{}",
            w.values.len(),
            style::pct(w.stats.frac_small, 1),
            w.stats.l2_norm,
            w.max_abs,
            outside,
            trim_float(m)
        );
        let (x, y) = chart.backend_coord(&(-m, top));
        root.draw(&Text::new(
            note,
            (x + 8, y + 8),
            style::text(style::LEGEND_SIZE),
        ))
        .map_err(|e| PlotError::Draw(e.to_string()))?;
        root.present().map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_cover_the_range() {
        let (c, outside) = histogram(&[-1.0, 0.0, 1.0, 2.0, -3.0, f32::NAN], 1.0);
        assert_eq!(c.len(), BINS);
        assert_eq!(c.iter().sum::<usize>(), 3);
        assert_eq!(outside, 2);
        assert_eq!(c[0], 1);
        assert_eq!(c[BINS / 2], 1, "0 falls in the middle bin");
        assert_eq!(c[BINS - 1], 1, "m itself is in the last bin");
    }

    #[test]
    fn common_range_ignores_a_few_outliers() {
        let mut values: Vec<f32> = (0..10_000).map(|i| (i as f32 / 10_000.0) - 0.5).collect();
        values[..50].fill(50.0);
        let w = Weights {
            values,
            stats: WeightStats {
                frac_small: 0.0,
                l2_norm: 0.0,
            },
            max_abs: 50.0,
        };
        let m = common_range(&[&w]);
        assert!((0.48..=0.5).contains(&m), "{m}");
        assert_eq!(m, w.range());
        assert_eq!(m, w.clone().into_range());
        // run by run, as the figures are made
        let wide = Weights {
            values: vec![-2.0, 1.0],
            ..w.clone()
        };
        assert_eq!(range_of([w.range(), wide.range()]), 2.0);
        assert_eq!(common_range(&[&w, &wide]), 2.0);
        assert_eq!(range_of([]), 1e-6);
    }
}
