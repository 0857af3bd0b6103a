//! `<run>/manifest.json`: what a run records so that it can be checked later.
//!
//! Why a module: the manifest is written by training (when a run starts and when it
//! ends), read by resume (which config and data made this directory?), by `verify`
//! (rerun and compare) and by the figures; its fields are defined once, here.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use regulab_kernels::cpu::KernelReport;
use serde::Serialize;

use crate::config::RunConfig;
use crate::data::FileRecord;

/// `<run>/manifest.json`: what a run needs to be checked later ([`crate::verify`]).
///
/// Fields that differ between reruns of the same config: `started_*`, `finished_*`,
/// `seconds` (timing), `threads`, `jobs` (never change a result), `resumed_from_epoch`,
/// `kernels` and `regulab_version` (results are the same when these are).
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// Version of regulab that trained the run.
    pub regulab_version: String,
    /// Run name.
    pub run: String,
    /// Experiment it belongs to.
    pub experiment: String,
    /// Its grid values.
    pub grid: BTreeMap<String, String>,
    /// The resolved config.
    pub config: RunConfig,
    /// The seed (also in the config).
    pub seed: u64,
    /// The data read.
    pub dataset: DatasetManifest,
    /// CPU features and kernels of this machine.
    pub kernels: KernelReport,
    /// Rayon threads per run.
    pub threads: usize,
    /// Concurrent runs.
    pub jobs: usize,
    /// Start of this (possibly resumed) execution, Unix seconds.
    pub started_unix: f64,
    /// The same, as UTC.
    pub started_utc: String,
    /// End, Unix seconds (absent while running).
    pub finished_unix: Option<f64>,
    /// The same, as UTC.
    pub finished_utc: Option<String>,
    /// `running`, `completed` or `diverged`.
    pub status: String,
    /// Last epoch in `epochs.csv`.
    pub epochs_trained: u32,
    /// The epoch this execution resumed after, if it resumed.
    pub resumed_from_epoch: Option<u32>,
    /// Wall-clock seconds of this execution (absent while running).
    pub seconds: Option<f64>,
    /// [`super::digest::digest`] of the final parameters.
    pub final_digest: Option<String>,
    /// Test accuracy of the final model (absent without a test file).
    pub test_accuracy: Option<f64>,
    /// Test cost of the final model.
    pub test_cost: Option<f64>,
}

/// The data section of a manifest.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetManifest {
    /// `data.dataset` as configured.
    pub name: String,
    /// What it was identified as: `mnist`, `fashion-mnist` or `custom`.
    pub kind: String,
    /// The directory the files were read from (absolute).
    pub dir: Option<String>,
    /// The files read, with their SHA-256.
    pub files: Vec<FileRecord>,
}

/// Write `m` to `<run_dir>/manifest.json` atomically.
pub fn write_manifest(run_dir: &Path, m: &Manifest) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(m)?;
    json.push(b'\n');
    let path = run_dir.join("manifest.json");
    crate::atomic::write(&path, &json).with_context(|| format!("writing {}", path.display()))
}

/// Read `<run_dir>/manifest.json` as JSON; `None` when there is none.
pub fn read_manifest(run_dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = run_dir.join("manifest.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{}: not a readable manifest", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The run config recorded in a manifest.
pub fn manifest_config(m: &serde_json::Value, path: &Path) -> Result<RunConfig> {
    serde_json::from_value(m["config"].clone())
        .with_context(|| format!("{}: field `config`", path.display()))
}

/// SHA-256 of a run config's JSON: the identity a checkpoint is tied to.
pub fn config_sha256(c: &RunConfig) -> String {
    crate::checkpoint::sha256_hex(&serde_json::to_vec(c).expect("a config serialises"))
}
