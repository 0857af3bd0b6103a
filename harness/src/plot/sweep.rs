//! Final test accuracy against the strength of a regulariser: the L1 and L2
//! coefficients on a log axis, keep probabilities on a linear one. Runs that vary the
//! key form the points; runs that agree on every other grid value form one line; an
//! unregularised run of the study, if any, is the dashed reference. With several seeds
//! (runs at the same point), a point is their mean, with an error bar from the lowest
//! to the highest, and the reference is the mean of the unregularised configuration.

use super::PlotError;
use super::chart::{self, LineChart, Reference, Series, Spread};
use super::curves::configuration_of;
use super::labels;
use super::rundir::{RunData, Study};
use super::style::series_style;

/// A regularisation axis that gets a sweep figure when some grid varies it.
pub struct Axis {
    /// Dotted config key.
    pub key: &'static str,
    /// File stem of the figure.
    pub file: &'static str,
    /// What the axis shows, with units.
    pub desc: &'static str,
    /// Logarithmic axis.
    pub log: bool,
}

/// The axes, in figure order.
pub const AXES: &[Axis] = &[
    Axis {
        key: "reg.l1",
        file: "test_acc_vs_l1",
        desc: "L1 coefficient (per weight, log scale)",
        log: true,
    },
    Axis {
        key: "reg.l2",
        file: "test_acc_vs_l2",
        desc: "L2 coefficient (per weight, log scale)",
        log: true,
    },
    Axis {
        key: "reg.keep_input",
        file: "test_acc_vs_keep_input",
        desc: "input keep probability p",
        log: false,
    },
    Axis {
        key: "reg.keep_hidden",
        file: "test_acc_vs_keep_hidden",
        desc: "hidden keep probability p",
        log: false,
    },
];

/// The figure for `axis`, or `None` when the study's grids give it fewer than two values.
pub fn sweep_svg(study: &Study, axis: &Axis) -> Result<Option<String>, PlotError> {
    // (experiment, other grid values) -> points, in order of first appearance
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &study.runs {
        if !r.grid.contains_key(axis.key) {
            continue;
        }
        let (Some(x), Some(acc)) = (r.num(axis.key), r.test_acc) else {
            continue;
        };
        let others: Vec<String> = r
            .grid
            .iter()
            .filter(|(k, _)| k.as_str() != axis.key)
            .map(|(k, v)| format!("{} = {v}", k.rsplit('.').next().unwrap_or(k)))
            .collect();
        let label = if others.is_empty() {
            r.experiment.clone()
        } else {
            format!("{}: {}", r.experiment, others.join(", "))
        };
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, pts)) => pts.push((x, 100.0 * acc)),
            None => groups.push((label, vec![(x, 100.0 * acc)])),
        }
    }
    let mut xs: Vec<f64> = groups
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < 2 {
        // one value is no sweep (e.g. a single run's directory)
        return Ok(None);
    }
    let seeded = groups.iter().any(|(_, pts)| {
        pts.iter()
            .enumerate()
            .any(|(i, p)| pts[..i].iter().any(|q| q.0 == p.0))
    });
    let series = groups
        .into_iter()
        .enumerate()
        .map(|(i, (label, mut points))| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !seeded {
                return Series {
                    label,
                    points,
                    style: series_style(i),
                    spread: None,
                };
            }
            // the seeds at each x: mean, and min to max
            let mut means = Vec::new();
            let mut bars = Vec::new();
            for chunk in points.chunk_by(|a, b| a.0 == b.0) {
                let x = chunk[0].0;
                let ys: Vec<f64> = chunk.iter().map(|p| p.1).collect();
                let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                means.push((x, mean));
                bars.push((x, lo, hi));
            }
            Series {
                label,
                points: means,
                style: series_style(i),
                spread: Some(Spread::Bars(bars)),
            }
        })
        .collect();
    let legend_note = seeded.then(|| "points: mean over seeds; bars: lowest to highest".into());
    let reference = baseline(&study.runs).map(|(name, y)| Reference {
        label: format!("no regularisation ({name})"),
        y,
    });
    let key = axis.key.trim_start_matches("reg.");
    chart::render(&LineChart {
        title: format!("Test accuracy against {key}"),
        x_desc: axis.desc.into(),
        y_desc: "test accuracy (%)".into(),
        x_log: axis.log,
        y_log: false,
        x_integer: false,
        series,
        reference,
        every_marker: true,
        legend_note,
    })
    .map(Some)
}

/// The first unregularised run with a test accuracy: `(name, accuracy in %)`; with
/// several seeds, `(configuration, mean of n)` and the mean over its runs.
fn baseline(runs: &[RunData]) -> Option<(String, f64)> {
    let first = runs
        .iter()
        .find(|r| labels::describe(r) == "no regularisation" && r.test_acc.is_some())?;
    let config = configuration_of(&first.name);
    let accs: Vec<f64> = runs
        .iter()
        .filter(|r| configuration_of(&r.name) == config)
        .filter_map(|r| r.test_acc)
        .collect();
    if accs.len() == 1 {
        return Some((first.name.clone(), 100.0 * accs[0]));
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    Some((format!("{config}, mean of {}", accs.len()), 100.0 * mean))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::rundir::Epoch;

    fn run(name: &str, l2: Option<f64>, seed: u64, test_acc: f64) -> RunData {
        let mut grid = std::collections::BTreeMap::new();
        let mut config = std::collections::BTreeMap::new();
        if let Some(l2) = l2 {
            grid.insert("reg.l2".to_string(), l2.to_string());
            config.insert("reg.l2".to_string(), serde_json::json!(l2));
        }
        RunData {
            dir: "/nowhere".into(),
            name: name.into(),
            experiment: name.split('_').next().unwrap().into(),
            grid,
            config,
            status: "completed".into(),
            test_acc: Some(test_acc),
            seed,
            dataset_dir: None,
            epochs: vec![Epoch {
                epoch: 0,
                train_cost: 1.0,
                train_acc: 0.1,
                valid_cost: None,
                valid_acc: None,
            }],
        }
    }

    /// With two seeds per point: one line through the means, an error bar per point
    /// (three thin strokes each), the note in the legend, and the reference at the
    /// baseline's mean.
    #[test]
    fn seeds_give_means_with_error_bars() {
        let study = Study {
            dir: "/nowhere".into(),
            runs: vec![
                run("baseline_seed=1", None, 1, 0.80),
                run("baseline_seed=2", None, 2, 0.90),
                run("l2_l2=1e-3_seed=1", Some(1e-3), 1, 0.70),
                run("l2_l2=1e-3_seed=2", Some(1e-3), 2, 0.74),
                run("l2_l2=0.01_seed=1", Some(1e-2), 1, 0.50),
                run("l2_l2=0.01_seed=2", Some(1e-2), 2, 0.60),
            ],
            left_out: Vec::new(),
        };
        let svg = sweep_svg(&study, &AXES[1]).unwrap().unwrap();
        let thick: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
            .collect();
        assert_eq!(thick.len(), 2, "one line and its legend sample: {thick:?}");
        assert!(svg.contains("points: mean over seeds; bars: lowest to highest"));
        assert!(svg.contains("no regularisation (baseline, mean of 2)"));
        let thin_black = svg
            .lines()
            .filter(|l| {
                l.starts_with("<polyline")
                    && l.contains("stroke-width=\"1\"")
                    && l.contains("stroke=\"#000000\"")
            })
            .count();
        assert_eq!(thin_black, 2 * 3, "two error bars of three strokes");
    }
}
