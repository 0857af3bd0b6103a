//! The outputs of a plan beyond its run directories: `summary.csv` (one row per run)
//! and the comparison table printed at the end of `regulab run`.
//!
//! Why a module: the summary is one function of what the runs wrote; `verify` checks a
//! sweep's summary against its reruns with the same row function.

use anyhow::{Result, anyhow};

use crate::config::{Plan, flatten, grid_keys};

use super::RunOutcome;

/// The hyperparameter columns every summary has (then any other grid keys).
const SUMMARY_PARAMS: &[&str] = &[
    "model.hidden",
    "model.activation",
    "epochs",
    "batch_size",
    "optim.lr",
    "optim.momentum",
    "reg.l1",
    "reg.l2",
    "reg.keep_input",
    "reg.keep_hidden",
    "reg.max_norm",
];

/// The result columns of `summary.csv`, after the run, experiment and hyperparameter
/// columns.
const SUMMARY_RESULTS: &[&str] = &[
    "final_train_acc",
    "final_train_cost",
    "final_valid_acc",
    "final_valid_cost",
    "test_acc",
    "test_cost",
    "best_valid_acc",
    "best_valid_epoch",
    "frac_small_weights",
    "weight_l2_norm",
    "epochs_trained",
    "status",
    "seconds",
];

/// The column of `summary.csv` that is a timing (allowed to differ between reruns).
pub const SUMMARY_TIMING_COLUMN: &str = "seconds";

/// The columns of `summary.csv` for `plan`: run, experiment, the hyperparameters
/// ([`SUMMARY_PARAMS`] and any other grid key), the results.
pub fn summary_header(plan: &Plan) -> Vec<String> {
    let mut params: Vec<String> = SUMMARY_PARAMS.iter().map(|s| s.to_string()).collect();
    for k in grid_keys(plan) {
        if !params.contains(&k) {
            params.push(k);
        }
    }
    let mut header: Vec<String> = vec!["run".into(), "experiment".into()];
    header.extend(params);
    header.extend(SUMMARY_RESULTS.iter().map(|s| s.to_string()));
    header
}

/// The row of `o` in a `summary.csv` with columns `header` (a column that is neither a
/// result nor a config key is empty).
pub fn summary_row(o: &RunOutcome, header: &[String]) -> Vec<String> {
    let flat = flatten(&o.spec.config);
    let last = o.rows.last().expect("epoch 0 always exists");
    let best = o
        .rows
        .iter()
        .filter_map(|r| r.valid_acc.map(|a| (a, r.epoch)))
        .fold(None, |best: Option<(f64, u32)>, (a, e)| match best {
            Some((b, _)) if b >= a => best,
            _ => Some((a, e)),
        });
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let tested = o.test.n > 0;
    header
        .iter()
        .map(|col| match col.as_str() {
            "run" => o.spec.name.clone(),
            "experiment" => o.spec.experiment.clone(),
            "final_train_acc" => last.train_acc.to_string(),
            "final_train_cost" => last.train_cost.to_string(),
            "final_valid_acc" => opt(last.valid_acc),
            "final_valid_cost" => opt(last.valid_cost),
            "test_acc" => opt(tested.then_some(o.test.accuracy)),
            "test_cost" => opt(tested.then_some(o.test.cost)),
            "best_valid_acc" => opt(best.map(|b| b.0)),
            "best_valid_epoch" => best.map(|b| b.1.to_string()).unwrap_or_default(),
            "frac_small_weights" => o.small_weights.to_string(),
            "weight_l2_norm" => o.weight_norm.to_string(),
            "epochs_trained" => last.epoch.to_string(),
            "status" => o.status.as_str().to_string(),
            "seconds" => format!("{:.3}", o.seconds),
            param => flat.get(param).cloned().unwrap_or_default(),
        })
        .collect()
}

/// `summary.csv` as bytes: one row per run, in plan order.
pub fn summary_csv(plan: &Plan, outcomes: &[RunOutcome]) -> Result<Vec<u8>> {
    let header = summary_header(plan);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for o in outcomes {
        w.write_record(summary_row(o, &header))?;
    }
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

/// The comparison table printed at the end of `regulab run`.
pub fn comparison_table(outcomes: &[RunOutcome]) -> String {
    let width = outcomes
        .iter()
        .map(|o| o.spec.name.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let mut s = format!(
        "{:<width$}  {:>6}  {:>9}  {:>9}  {:>9}  {:>8}  {:>9}\n",
        "run", "epochs", "train_acc", "valid_acc", "best_vacc", "test_acc", "status"
    );
    for o in outcomes {
        let last = o.rows.last().expect("epoch 0 always exists");
        let best = o
            .rows
            .iter()
            .filter_map(|r| r.valid_acc)
            .fold(f64::NAN, f64::max);
        let pct = |v: f64| {
            if v.is_nan() {
                "-".to_string()
            } else {
                format!("{:.2}%", 100.0 * v)
            }
        };
        s.push_str(&format!(
            "{:<width$}  {:>6}  {:>9}  {:>9}  {:>9}  {:>8}  {:>9}\n",
            o.spec.name,
            last.epoch,
            pct(last.train_acc),
            pct(last.valid_acc.unwrap_or(f64::NAN)),
            pct(best),
            pct(o.test.accuracy),
            o.status.as_str()
        ));
    }
    s
}
