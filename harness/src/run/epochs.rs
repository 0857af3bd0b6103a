//! `epochs.csv`: one row per epoch of a run, epoch 0 being the untrained model.
//!
//! Why a module: the rows are written after every epoch by training, read back by
//! resume (to replay the learning-rate schedule) and by the outputs (summary), and
//! compared by `verify`; the column set and the float format (shortest round-trip, so
//! equal text is equal bits) are defined once, here.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

/// One row of `epochs.csv`. Floats are printed in Rust's shortest round-trip form
/// (and read back exactly: Rust's float parsing is correctly rounded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// Run name.
    pub run: String,
    /// 0 = the untrained model.
    pub epoch: u32,
    /// Learning rate used in this epoch (0 for epoch 0).
    pub learning_rate: f32,
    /// Cost (data + penalty) on the training pool, no dropout, after the epoch.
    pub train_cost: f64,
    /// Mean data cost on the training pool.
    pub train_nll: f64,
    /// Penalty part of the cost.
    pub train_penalty: f64,
    /// Accuracy (fraction) on the training pool.
    pub train_acc: f64,
    /// Cost on the validation split (empty when there is none).
    pub valid_cost: Option<f64>,
    /// Mean data cost on the validation split.
    pub valid_nll: Option<f64>,
    /// Accuracy on the validation split.
    pub valid_acc: Option<f64>,
    /// Wall-clock seconds of the epoch's training (timing: differs between reruns).
    pub epoch_seconds: f64,
    /// Training examples per second (timing: differs between reruns).
    pub train_pps: f64,
}

/// The columns of `epochs.csv` that are timings (the only ones allowed to differ).
pub const TIMING_COLUMNS: &[&str] = &["epoch_seconds", "train_pps"];

/// `epochs.csv` as bytes.
pub fn epochs_csv(rows: &[EpochRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record([
            "run",
            "epoch",
            "learning_rate",
            "train_cost",
            "train_nll",
            "train_penalty",
            "train_acc",
            "valid_cost",
            "valid_nll",
            "valid_acc",
            "epoch_seconds",
            "train_pps",
        ])?;
    }
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

/// Read an `epochs.csv`.
pub fn read_epochs(path: &Path) -> Result<Vec<EpochRow>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{}: row {}", path.display(), i + 1)))
        .collect()
}

/// Read the `epochs.csv` of a finished run: rows for epochs 0, 1, 2, ... (at least 0).
pub fn read_finished_epochs(path: &Path) -> Result<Vec<EpochRow>> {
    let rows = read_epochs(path)?;
    if rows.is_empty() || rows.iter().enumerate().any(|(i, r)| r.epoch as usize != i) {
        bail!("{}: expected rows for epochs 0, 1, 2, ...", path.display());
    }
    Ok(rows)
}

/// The validation error the schedule observes after an epoch (the training error
/// without a validation split).
pub fn observed_error(row: &EpochRow) -> f64 {
    row.valid_acc.map_or(1.0 - row.train_acc, |a| 1.0 - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_floats_round_trip() {
        let row = EpochRow {
            run: "r".into(),
            epoch: 1,
            learning_rate: 0.1,
            train_cost: 0.1 + 0.2,
            train_nll: 1.0 / 3.0,
            train_penalty: 1e-17,
            train_acc: 0.5,
            valid_cost: None,
            valid_nll: None,
            valid_acc: None,
            epoch_seconds: 0.25,
            train_pps: 4000.0,
        };
        let text = String::from_utf8(epochs_csv(&[row]).unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "run,epoch,learning_rate,train_cost,train_nll,train_penalty,train_acc,valid_cost,valid_nll,valid_acc,epoch_seconds,train_pps"
        );
        let fields: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(fields[2].parse::<f32>().unwrap(), 0.1f32);
        assert_eq!(fields[3].parse::<f64>().unwrap(), 0.1 + 0.2);
        assert_eq!(fields[4].parse::<f64>().unwrap(), 1.0 / 3.0);
        assert_eq!(fields[5].parse::<f64>().unwrap(), 1e-17);
        assert_eq!(fields[7], "");
    }
}
