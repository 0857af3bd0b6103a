//! Learning curves: validation accuracy against epoch (one line per run, the lab's
//! requested figure; with several seeds, one line per configuration: the mean over its
//! seeds with a band from the lowest to the highest) and training against validation
//! cost per run (over-fitting shows as the validation cost turning up while the
//! training cost keeps falling; on a log axis when the cost spans more than a factor
//! of 10, so that a spike in the first epochs does not flatten the rest).
//!
//! Epoch 0 (the untrained model, about chance level) is left out of the curves so that
//! the trained epochs use the whole height of the plot; it stays in `epochs.csv`.

use super::PlotError;
use super::chart::{self, LineChart, Series, Spread};
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
            spread: None,
        })
        .collect();
    let which = if valid { "Validation" } else { "Training" };
    chart::render(&LineChart {
        title: format!("{which} accuracy: {title}"),
        x_desc: "epoch".into(),
        y_desc: format!("{} accuracy (%)", which.to_lowercase()),
        x_log: false,
        y_log: false,
        x_integer: true,
        series,
        reference: None,
        every_marker: false,
        legend_note: None,
    })
}

/// The configuration of a run named `name`: the name without its `_seed=...` part
/// (the suffix of `seeds = N`, or the value of a grid over `seed`).
pub fn configuration_of(name: &str) -> String {
    match name.find("_seed=") {
        Some(at) => {
            let rest = &name[at + "_seed=".len()..];
            let end = rest
                .find('_')
                .map_or(name.len(), |i| at + "_seed=".len() + i);
            format!("{}{}", &name[..at], &name[end..])
        }
        None => name.to_string(),
    }
}

/// `runs` grouped by configuration ([`configuration_of`]), in order of first appearance.
pub fn by_configuration<'a>(runs: &[&'a RunData]) -> Vec<(String, Vec<&'a RunData>)> {
    let mut groups: Vec<(String, Vec<&'a RunData>)> = Vec::new();
    for &r in runs {
        let c = configuration_of(&r.name);
        match groups.iter_mut().find(|(g, _)| *g == c) {
            Some((_, v)) => v.push(r),
            None => groups.push((c, vec![r])),
        }
    }
    groups
}

/// Validation accuracy (%) against epoch, one line per configuration of `groups`: at
/// each epoch every one of its runs reached, the mean over its runs (seeds) and a band
/// from the lowest to the highest; training accuracy when no run has a validation split.
pub fn accuracy_mean_svg(
    groups: &[(String, Vec<&RunData>)],
    title: &str,
) -> Result<String, PlotError> {
    let valid = groups
        .iter()
        .flat_map(|(_, g)| g)
        .any(|r| r.epochs.iter().any(|e| e.valid_acc.is_some()));
    let acc = |e: &Epoch| {
        if valid {
            e.valid_acc.unwrap_or(f64::NAN)
        } else {
            e.train_acc
        }
    };
    let series = groups
        .iter()
        .enumerate()
        .map(|(i, (config, runs))| {
            let last = runs
                .iter()
                .map(|r| r.epochs.last().map_or(0, |e| e.epoch))
                .min()
                .unwrap_or(0);
            let mut points = Vec::new();
            let mut band = Vec::new();
            for epoch in 1..=last {
                let xs: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.epochs.iter().find(|e| e.epoch == epoch))
                    .map(|e| 100.0 * acc(e))
                    .collect();
                if xs.len() != runs.len() || xs.iter().any(|x| !x.is_finite()) {
                    continue;
                }
                let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                points.push((f64::from(epoch), mean));
                band.push((f64::from(epoch), lo, hi));
            }
            Series {
                label: config.clone(),
                points,
                style: series_style(i),
                spread: Some(Spread::Band(band)),
            }
        })
        .collect();
    let which = if valid { "Validation" } else { "Training" };
    let mut sizes: Vec<usize> = groups.iter().map(|(_, g)| g.len()).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let seeds = match sizes.as_slice() {
        [n] => format!("{n} seeds"),
        _ => "its seeds".to_string(),
    };
    chart::render(&LineChart {
        title: format!("{which} accuracy over seeds: {title}"),
        x_desc: "epoch".into(),
        y_desc: format!("{} accuracy (%)", which.to_lowercase()),
        x_log: false,
        y_log: false,
        x_integer: true,
        series,
        reference: None,
        every_marker: false,
        legend_note: Some(format!(
            "lines: mean over {seeds}; bands: lowest to highest"
        )),
    })
}

/// Training and validation cost (data + penalty, nats per example) against epoch; the
/// cost axis is logarithmic when the shown costs are positive and span more than a
/// factor of 10.
pub fn cost_svg(run: &RunData) -> Result<String, PlotError> {
    let mut series = vec![Series {
        label: "training cost".into(),
        points: shown(&run.epochs)
            .map(|e| (f64::from(e.epoch), e.train_cost))
            .collect(),
        style: series_style(0),
        spread: None,
    }];
    if run.epochs.iter().any(|e| e.valid_cost.is_some()) {
        series.push(Series {
            label: "validation cost".into(),
            points: shown(&run.epochs)
                .map(|e| (f64::from(e.epoch), e.valid_cost.unwrap_or(f64::NAN)))
                .collect(),
            style: series_style(2),
            spread: None,
        });
    }
    let costs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|c| c.is_finite())
        .collect();
    let lo = costs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = costs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y_log = lo > 0.0 && hi > 10.0 * lo;
    chart::render(&LineChart {
        title: format!("Cost: {} ({})", run.name, labels::describe(run)),
        x_desc: "epoch".into(),
        y_desc: if y_log {
            "cost (nats per example, log scale)".into()
        } else {
            "cost (nats per example)".into()
        },
        x_log: false,
        y_log,
        x_integer: true,
        series,
        reference: None,
        every_marker: false,
        legend_note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, curve: &[(f64, f64)]) -> RunData {
        RunData {
            dir: "/nowhere".into(),
            name: name.into(),
            experiment: name.split('_').next().unwrap().into(),
            grid: Default::default(),
            config: Default::default(),
            status: "completed".into(),
            test_acc: None,
            seed: 1,
            dataset_dir: None,
            epochs: curve
                .iter()
                .enumerate()
                .map(|(e, &(cost, acc))| Epoch {
                    epoch: e as u32,
                    train_cost: cost,
                    train_acc: acc,
                    valid_cost: Some(cost * 1.1),
                    valid_acc: Some(acc),
                })
                .collect(),
        }
    }

    /// A cost spiking to 37 in the first epochs gets a log axis; a tame one does not.
    #[test]
    fn spiking_costs_get_a_log_axis() {
        let spike = run(
            "l1",
            &[(2.3, 0.1), (37.0, 0.2), (3.0, 0.5), (0.9, 0.7), (0.8, 0.8)],
        );
        let svg = cost_svg(&spike).unwrap();
        assert!(svg.contains("cost (nats per example, log scale)"));
        let tame = run("base", &[(2.3, 0.1), (1.2, 0.5), (0.9, 0.7), (0.8, 0.8)]);
        let svg = cost_svg(&tame).unwrap();
        assert!(svg.contains("cost (nats per example)") && !svg.contains("log scale"));
    }

    /// Over seeds: one line (and one band) per configuration, at the mean.
    #[test]
    fn mean_curves_average_the_seeds() {
        let a1 = run("a_seed=1", &[(1.0, 0.1), (1.0, 0.50), (1.0, 0.60)]);
        let a2 = run("a_seed=2", &[(1.0, 0.1), (1.0, 0.70), (1.0, 0.80)]);
        let b1 = run("b_seed=1", &[(1.0, 0.1), (1.0, 0.40), (1.0, 0.45)]);
        let groups = by_configuration(&[&a1, &b1, &a2]);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].0.as_str(), groups[0].1.len()), ("a", 2));
        let svg = accuracy_mean_svg(&groups, "test").unwrap();
        assert!(svg.matches("stroke-width=\"2\"").count() >= 4);
        assert!(svg.contains("lines: mean over its seeds; bands: lowest to highest"));
        // a translucent band polygon per configuration
        assert_eq!(svg.matches("<polygon opacity=\"0.18\"").count(), 2, "{svg}");
    }

    #[test]
    fn configuration_drops_the_seed_part() {
        assert_eq!(configuration_of("l2_l2=1e-5_seed=3"), "l2_l2=1e-5");
        assert_eq!(configuration_of("a_seed=12_l2=1e-4"), "a_l2=1e-4");
        assert_eq!(configuration_of("baseline"), "baseline");
    }
}
