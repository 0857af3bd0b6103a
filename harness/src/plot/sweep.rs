//! Final test accuracy against the strength of a regulariser: the L1 and L2
//! coefficients on a log axis, keep probabilities on a linear one. Runs that vary the
//! key form the points; runs that agree on every other grid value form one line; an
//! unregularised run of the study, if any, is the dashed reference.

use super::PlotError;
use super::chart::{self, LineChart, Reference, Series};
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
    let series = groups
        .into_iter()
        .enumerate()
        .map(|(i, (label, mut points))| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                label,
                points,
                style: series_style(i),
            }
        })
        .collect();
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
        x_integer: false,
        series,
        reference,
        every_marker: true,
    })
    .map(Some)
}

/// The first unregularised run with a test accuracy: `(name, accuracy in %)`.
fn baseline(runs: &[RunData]) -> Option<(String, f64)> {
    runs.iter()
        .find(|r| labels::describe(r) == "no regularisation" && r.test_acc.is_some())
        .map(|r| (r.name.clone(), 100.0 * r.test_acc.unwrap_or(f64::NAN)))
}
