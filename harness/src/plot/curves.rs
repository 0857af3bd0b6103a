//! Learning curves: validation accuracy against epoch (one line per run, the lab's
//! requested figure) and training against validation cost per run (over-fitting shows
//! as the validation cost turning up while the training cost keeps falling).
//!
//! Epoch 0 (the untrained model, about chance level) is left out of the curves so that
//! the trained epochs use the whole height of the plot; it stays in `epochs.csv`.

use super::PlotError;
use super::chart::{self, LineChart, Series};
use super::labels;
use super::rundir::{Epoch, RunData};
use super::style::series_style;

/// The epochs a curve shows: from epoch 1 on (all of them if training never started).
fn shown(epochs: &[Epoch]) -> impl Iterator<Item = &Epoch> {
    let skip_zero = epochs.iter().any(|e| e.epoch > 0);
    epochs.iter().filter(move |e| !skip_zero || e.epoch > 0)
}

/// Validation accuracy (%) against epoch, one line per run; training accuracy when no
/// run has a validation split. `title` names the experiment(s).
pub fn accuracy_svg(runs: &[&RunData], title: &str) -> Result<String, PlotError> {
    let valid = runs
        .iter()
        .any(|r| r.epochs.iter().any(|e| e.valid_acc.is_some()));
    let labels = labels::legend_labels(runs);
    let series = runs
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (r, label))| Series {
            label,
            points: shown(&r.epochs)
                .map(|e| {
                    let acc = if valid {
                        e.valid_acc.unwrap_or(f64::NAN)
                    } else {
                        e.train_acc
                    };
                    (f64::from(e.epoch), 100.0 * acc)
                })
                .collect(),
            style: series_style(i),
        })
        .collect();
    let which = if valid { "Validation" } else { "Training" };
    chart::render(&LineChart {
        title: format!("{which} accuracy: {title}"),
        x_desc: "epoch".into(),
        y_desc: format!("{} accuracy (%)", which.to_lowercase()),
        x_log: false,
        x_integer: true,
        series,
        reference: None,
        every_marker: false,
    })
}

/// Training and validation cost (data + penalty, nats per example) against epoch.
pub fn cost_svg(run: &RunData) -> Result<String, PlotError> {
    let mut series = vec![Series {
        label: "training cost".into(),
        points: shown(&run.epochs)
            .map(|e| (f64::from(e.epoch), e.train_cost))
            .collect(),
        style: series_style(0),
    }];
    if run.epochs.iter().any(|e| e.valid_cost.is_some()) {
        series.push(Series {
            label: "validation cost".into(),
            points: shown(&run.epochs)
                .map(|e| (f64::from(e.epoch), e.valid_cost.unwrap_or(f64::NAN)))
                .collect(),
            style: series_style(2),
        });
    }
    chart::render(&LineChart {
        title: format!("Cost: {} ({})", run.name, labels::describe(run)),
        x_desc: "epoch".into(),
        y_desc: "cost (nats per example)".into(),
        x_log: false,
        x_integer: true,
        series,
        reference: None,
        every_marker: false,
    })
}
