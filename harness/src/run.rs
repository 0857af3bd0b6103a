//! Executing a [`Plan`]: seeded training runs, per-epoch CSV, models, manifests and
//! the sweep summary.
//!
//! Layout of an output directory `DIR` (default `runs/<config name>/`):
//!
//! ```text
//! DIR/plan.json                the plan's runs ([`crate::outdir::PlanFile`]), before training
//! DIR/summary.csv              one row per run
//! DIR/<run>/epochs.csv         one row per epoch, epoch 0 = the untrained model
//! DIR/<run>/init.safetensors   weights before training
//! DIR/<run>/model.safetensors  final weights
//! DIR/<run>/manifest.json      resolved config, data checksums, versions, kernels, status
//! DIR/<run>/checkpoint.safetensors  state after the last completed epoch (while running)
//! ```
//!
//! Every file is written atomically ([`crate::atomic`]); `epochs.csv` is rewritten
//! after each epoch, so an interrupted command leaves complete files only.
//!
//! # Checkpoints and resume
//!
//! The manifest is written when a run starts (status `running`) and again when it
//! ends (`completed` or `diverged`). After each completed epoch `e`, `epochs.csv`
//! (rows `0..=e`) is written, then the [`crate::checkpoint`] of epoch `e` (weights,
//! velocities, step, schedule): the checkpoint never runs ahead of the CSV. When the
//! run ends, the final model and manifest are written and the checkpoint is deleted
//! (the model file holds the final weights; a finished run needs no checkpoint).
//!
//! With [`RunOptions::resume`], each run of the plan continues from its directory:
//! a finished run (manifest status `completed`/`diverged` and a model file) is not
//! trained again, its summary row is rebuilt from its files (rows from `epochs.csv`,
//! test statistics by evaluating `model.safetensors`); a run with a checkpoint drops
//! the CSV rows after the checkpoint's epoch, restores the checkpoint, replays the
//! schedule over the kept rows and trains on; any other run starts afresh. A run whose
//! manifest or checkpoint was made with another config or other data is an error, found
//! for every run before any run trains ([`check_resume_plan`]).
//! Without `resume`, every run starts afresh (a stale checkpoint is deleted first);
//! refusing a directory that holds results, and owning it, is the command's part
//! ([`crate::outdir::claim`]).
//!
//! A SIGINT or SIGTERM ([`crate::interrupt`]) stops every run between two batches (and
//! no run starts after it): the files on disk are then those of each run's last
//! completed epoch, from which `--resume` continues bit for bit.
//!
//! Runs of a grid execute concurrently (`jobs` workers, each with its own rayon pool of
//! `threads` threads). No result depends on either number: every kernel gives the same
//! bits for any pool size, and each run's randomness comes only from its seed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use regulab_kernels::cpu::KernelReport;
use regulab_model::{
    EvalStats, Evaluator, KeepSchedule, LrSchedule, Mlp, Penalty, ScheduleKind, TrainConfig,
    Trainer, Workspace,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, Checkpoint};
use crate::config::{
    ConfigError, DataConfig, DataFile, Plan, RunConfig, RunSpec, flatten, grid_keys,
};
use crate::data::checksums::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::data::dataset::identify;
use crate::data::locate::{DATA_ENV, candidate_dirs, file_problem, find_file};
use crate::data::{Dataset, DatasetName, FileRecord, LabeledImages, SplitSpec, load_pair};
use crate::feedback::Feedback;
use crate::limits;

/// How much the command tells the user while it works.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Nothing.
    Quiet,
    /// Every event of the runs goes to this reporter (owned by the caller: the
    /// `regulab` command draws lines or bars on stderr).
    Report(Arc<dyn Feedback>),
}

/// Options of `regulab run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Rayon threads per run.
    pub threads: usize,
    /// Runs executed at once.
    pub jobs: usize,
    /// Feedback while running.
    pub progress: Progress,
    /// Continue the runs found in `out` (see the module docs) instead of starting afresh.
    pub resume: bool,
    /// Stop every run with [`Halted`] right after writing the checkpoint of this epoch,
    /// leaving its directory as a kill at that moment would (for tests of resume).
    pub halt_after_epoch: Option<u32>,
}

/// The error of a run stopped by [`RunOptions::halt_after_epoch`].
#[derive(Debug, thiserror::Error)]
#[error("run `{run}` halted after epoch {epoch} as asked (halt_after_epoch)")]
pub struct Halted {
    /// The run.
    pub run: String,
    /// Its last completed epoch.
    pub epoch: u32,
}

/// The datasets a plan needs, loaded once and shared by its runs.
pub type DataSets = BTreeMap<String, Arc<Dataset>>;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained every scheduled epoch.
    Completed,
    /// The cost became NaN or infinite; training stopped.
    Diverged,
}

impl Status {
    /// `completed` or `diverged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Diverged => "diverged",
        }
    }
}

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

/// What a finished run reports for the summary.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The run.
    pub spec: RunSpec,
    /// How it ended.
    pub status: Status,
    /// Every epoch row.
    pub rows: Vec<EpochRow>,
    /// Test-set statistics of the final model.
    pub test: EvalStats,
    /// Fraction of weights (not biases) with |w| < 1e-3.
    pub small_weights: f64,
    /// sqrt(sum w^2) over all weight matrices.
    pub weight_norm: f64,
    /// SHA-256 of the final parameters (little-endian f32 bits, layer order, W then b).
    pub digest: String,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
}

/// The default number of concurrent runs and threads per run for `runs` runs.
pub fn default_parallelism(
    runs: usize,
    jobs: Option<usize>,
    threads: Option<usize>,
) -> (usize, usize) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let jobs = jobs.unwrap_or_else(|| cores.min(runs.max(1))).max(1);
    let threads = threads.unwrap_or_else(|| (cores / jobs).max(1)).max(1);
    (jobs, threads)
}

/// The key of a run's data in [`DataSets`]: the dataset and which of its examples the
/// run uses (runs with equal keys share one loaded copy).
pub fn data_key(d: &DataConfig) -> String {
    format!(
        "{}|{}|{}|{:?}",
        d.dataset,
        d.train_file.as_str(),
        d.test_file.as_str(),
        d.range
    )
}

/// Pairs of files this command has loaded, by (images, labels, dataset kind): each file
/// is read (decompressed, hashed, checked) once, and the datasets made from it (e.g. one
/// per value of a grid over `data.range`) share its decoded pixels.
#[derive(Default)]
pub struct LoadedFiles(HashMap<(PathBuf, PathBuf, DatasetName), crate::data::LoadedPair>);

impl LoadedFiles {
    /// The pair `(images, labels)` as `kind`, loaded now or shared from an earlier load.
    fn pair(
        &mut self,
        images: PathBuf,
        labels: PathBuf,
        kind: DatasetName,
    ) -> Result<crate::data::LoadedPair> {
        let key = (images, labels, kind);
        if let Some(p) = self.0.get(&key) {
            return Ok(p.clone());
        }
        let pair = load_pair(&key.0, &key.1, kind)?;
        self.0.insert(key, pair.clone());
        Ok(pair)
    }
}

/// Load every dataset the plan needs (once per [`data_key`], each file once). What is
/// worth a warning is in each dataset's `warnings`, for the caller to report.
pub fn load_datasets(plan: &Plan, data_dir: Option<&Path>) -> Result<DataSets> {
    let mut sets = DataSets::new();
    let mut files = LoadedFiles::default();
    for run in &plan.runs {
        let key = data_key(&run.config.data);
        if sets.contains_key(&key) {
            continue;
        }
        let dataset = load_dataset_with(&run.config.data, data_dir, &mut files)?;
        sets.insert(key, Arc::new(dataset));
    }
    Ok(sets)
}

/// How a config splits its training file.
fn split_spec(c: &RunConfig) -> SplitSpec {
    SplitSpec {
        valid_size: c.data.validation,
        train_examples: c.data.train_examples,
    }
}

/// The training-file examples the runs of `plan` using `dataset` (those whose
/// [`data_key`] is `key`) read: each one's training pool and validation split, sorted.
/// A run whose split is invalid adds nothing (it fails with that error when it starts).
pub fn used_train_examples(plan: &Plan, key: &str, dataset: &Dataset) -> Vec<u32> {
    let mut used = vec![false; dataset.train.len()];
    for run in plan.runs.iter().filter(|r| data_key(&r.config.data) == key) {
        if let Ok(s) = dataset.splits(&split_spec(&run.config), run.config.seed) {
            for &i in s.pool().iter().chain(s.valid()) {
                used[i as usize] = true;
            }
        }
    }
    (0u32..)
        .zip(used)
        .filter(|&(_, u)| u)
        .map(|(i, _)| i)
        .collect()
}

/// `data` with the pixels of every training image no run of `plan` reads released
/// ([`LabeledImages::keep_only`]; indices and labels are unchanged, so the runs give
/// the same bits). The lab's study reads 11,000 of the 60,000 training images: 8.6 MB
/// of pixels instead of 47 MB. Test files are kept whole (every run is tested on all).
pub fn release_unused(plan: &Plan, data: DataSets) -> DataSets {
    data.into_iter()
        .map(|(key, d)| {
            let used = used_train_examples(plan, &key, &d);
            if used.len() == d.train.held_len() {
                return (key, d);
            }
            let d = Arc::unwrap_or_clone(d);
            let train = d.train.keep_only(&used);
            (key, Arc::new(Dataset { train, ..d }))
        })
        .collect()
}

/// The base names of the (images, labels) files of `file`.
fn pair_names(file: DataFile) -> Option<[&'static str; 2]> {
    match file {
        DataFile::Train => Some([TRAIN_IMAGES, TRAIN_LABELS]),
        DataFile::T10k => Some([TEST_IMAGES, TEST_LABELS]),
        DataFile::None => None,
    }
}

/// The base names of every file the config reads.
fn needed_files(d: &DataConfig) -> Vec<&'static str> {
    [d.train_file, d.test_file]
        .into_iter()
        .filter_map(pair_names)
        .flatten()
        .collect()
}

/// Load the data a config names: `mnist` / `fashion-mnist` (looked for as DESIGN.md
/// says, in `data_dir` when given; a directory qualifies when it holds the files the
/// config reads) or a directory. Only the files of `data.train_file` and
/// `data.test_file` are read; `data.range` is applied to the training file.
pub fn load_dataset(d: &DataConfig, data_dir: Option<&Path>) -> Result<Dataset> {
    load_dataset_with(d, data_dir, &mut LoadedFiles::default())
}

/// [`load_dataset`], sharing the files already in `files`.
fn load_dataset_with(
    d: &DataConfig,
    data_dir: Option<&Path>,
    files: &mut LoadedFiles,
) -> Result<Dataset> {
    match d.dataset.parse::<DatasetName>() {
        Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => {
            let dir = find_data_dir(known, data_dir, &needed_files(d))?;
            load_dataset_from_with(d, known, &dir, files)
        }
        _ => {
            let dir = Path::new(&d.dataset);
            if !dir.is_dir() {
                bail!(
                    "field `data.dataset`: \"{}\" is neither a known dataset (mnist, \
                     fashion-mnist) nor a directory holding IDX files ({}; a relative path in \
                     a config file is resolved against the file's directory, one given with \
                     --set against the working directory)",
                    d.dataset,
                    if dir.exists() {
                        "not a directory"
                    } else {
                        "no such directory"
                    }
                );
            }
            load_dataset_from_with(d, DatasetName::Custom, dir, files)
        }
    }
}

/// The first searched directory (see [`candidate_dirs`]) holding the files `needed`;
/// otherwise the error of [`crate::data::locate()`], which lists every place searched.
fn find_data_dir(
    name: DatasetName,
    explicit: Option<&Path>,
    needed: &[&str],
) -> Result<PathBuf, crate::data::DataError> {
    let env = std::env::var_os(DATA_ENV);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    for (dir, _) in candidate_dirs(name, explicit, env.as_deref(), &cwd) {
        if needed.iter().all(|f| find_file(&dir, f).is_some()) {
            return Ok(dir);
        }
    }
    crate::data::locate(name, explicit)
}

/// Load the files `d` reads from `dir`, as dataset `kind`. Files of a directory
/// ([`DatasetName::Custom`]) whose names and SHA-256 are all those of one known dataset
/// are that dataset, verified.
pub fn load_dataset_from(d: &DataConfig, kind: DatasetName, dir: &Path) -> Result<Dataset> {
    load_dataset_from_with(d, kind, dir, &mut LoadedFiles::default())
}

/// [`load_dataset_from`], sharing the files already in `loaded`.
fn load_dataset_from_with(
    d: &DataConfig,
    kind: DatasetName,
    dir: &Path,
    loaded: &mut LoadedFiles,
) -> Result<Dataset> {
    let mut load = |file: DataFile, field: &str| -> Result<Option<crate::data::LoadedPair>> {
        let Some([images, labels]) = pair_names(file) else {
            return Ok(None);
        };
        let find = |base: &str| {
            find_file(dir, base).ok_or_else(|| {
                anyhow!(
                    "{}: {} (read because field `data.{field}` = \"{}\")",
                    dir.display(),
                    file_problem(dir, base),
                    file.as_str()
                )
            })
        };
        let pair = loaded.pair(find(images)?, find(labels)?, kind)?;
        Ok(Some(pair))
    };
    let train = load(d.train_file, "train_file")?
        .ok_or_else(|| anyhow!("field `data.train_file`: expected \"train\" or \"t10k\""))?;
    let test = load(d.test_file, "test_file")?;
    let mut files = vec![train.images.clone(), train.labels.clone()];
    let mut warnings = train.warnings.clone();
    if let Some(t) = &test {
        files.extend([t.images.clone(), t.labels.clone()]);
        warnings.extend(t.warnings.iter().cloned());
    }
    let mut name = kind;
    if kind == DatasetName::Custom {
        let ids: Vec<_> = files.iter().map(|f| identify(&f.raw_sha256)).collect();
        if let Some(Some((first, _))) = ids.first()
            && ids
                .iter()
                .zip(&files)
                .all(|(id, f)| matches!(id, Some((ds, n)) if ds == first && *n == f.name))
        {
            name = *first;
            for f in &mut files {
                f.verified = true;
            }
            warnings.clear();
        }
    }
    let mut train_data = train.data;
    if let &[start, end] = d.range.as_slice() {
        if end > train_data.len() {
            bail!(
                "field `data.range`: [{start}, {end}] goes beyond the {} examples of {}",
                train_data.len(),
                files[0].path.display()
            );
        }
        train_data = train_data.subset(start..end)?;
    }
    let test_data = match test {
        Some(t) => t.data,
        None => LabeledImages::new(train_data.rows(), train_data.cols(), Vec::new(), Vec::new())?,
    };
    if (train_data.rows(), train_data.cols()) != (test_data.rows(), test_data.cols()) {
        bail!(
            "{}: images of {}x{} pixels, but the training images are {}x{}",
            files[2].path.display(),
            test_data.rows(),
            test_data.cols(),
            train_data.rows(),
            train_data.cols()
        );
    }
    let num_classes = name
        .num_classes()
        .unwrap_or_else(|| train_data.label_bound().max(test_data.label_bound()));
    Ok(Dataset {
        name,
        dir: Some(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())),
        train: train_data,
        test: test_data,
        num_classes,
        files,
        warnings,
    })
}

/// Build the network of a config.
pub fn build_network(c: &RunConfig, inputs: usize, classes: usize) -> Result<Mlp> {
    Ok(c.model.build(inputs, classes, c.seed)?)
}

fn schedule_of(c: &RunConfig) -> Result<LrSchedule> {
    let epochs = u32::try_from(c.epochs).map_err(|_| {
        anyhow!(
            "field `epochs`: expected at most {} epochs, got {}",
            u32::MAX,
            c.epochs
        )
    })?;
    Ok(c.optim.schedule(epochs))
}

/// Reused buffers of evaluation batches.
#[derive(Default)]
struct EvalBuffers {
    x: Vec<f32>,
    labels: Vec<u32>,
}

/// Evaluate `net` on examples `indices` of `images` in batches of `batch`.
fn eval_indices(
    net: &Mlp,
    ws: &mut Workspace,
    images: &LabeledImages,
    indices: &[u32],
    batch: usize,
    penalty: &Penalty,
    bufs: &mut EvalBuffers,
) -> Result<EvalStats> {
    let d = images.dim();
    let mut ev = Evaluator::new();
    for chunk in indices.chunks(batch) {
        bufs.x.resize(chunk.len() * d, 0.0);
        bufs.labels.resize(chunk.len(), 0);
        images.gather(chunk, &mut bufs.x, &mut bufs.labels)?;
        ev.add_batch(net, ws, &bufs.x, &bufs.labels)?;
    }
    Ok(ev.finish(net, penalty))
}

/// SHA-256 of the parameters: little-endian f32 bits, layer order, weights then bias.
pub fn digest(net: &Mlp) -> String {
    let mut h = Sha256::new();
    for layer in net.layers() {
        for v in layer.weight().iter().chain(layer.bias()) {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

fn weight_stats(net: &Mlp) -> (f64, f64) {
    let (mut small, mut total, mut sq) = (0usize, 0usize, 0f64);
    for layer in net.layers() {
        for &w in layer.weight() {
            small += usize::from(w.abs() < 1e-3);
            total += 1;
            sq += f64::from(w) * f64::from(w);
        }
    }
    (small as f64 / total.max(1) as f64, sq.sqrt())
}

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
    /// [`digest`] of the final parameters.
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

fn write_manifest(run_dir: &Path, m: &Manifest) -> Result<()> {
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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (proleptic Gregorian calendar, UTC).
pub fn utc_string(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reporter of one run's progress: the run's events, to the caller's [`Feedback`].
struct Reporter {
    sink: Option<Arc<dyn Feedback>>,
    name: String,
}

impl Reporter {
    fn new(mode: &Progress, name: &str, epochs: u32) -> Reporter {
        let sink = match mode {
            Progress::Quiet => None,
            Progress::Report(f) => {
                f.run_started(name, epochs);
                Some(Arc::clone(f))
            }
        };
        Reporter {
            sink,
            name: name.to_string(),
        }
    }

    fn epoch(&self, name: &str, row: &EpochRow, max_epochs: u32) {
        if let Some(f) = &self.sink {
            f.epoch(name, row, max_epochs);
        }
    }

    fn note(&self, msg: String) {
        if let Some(f) = &self.sink {
            f.note(&self.name, &msg);
        }
    }

    fn finish(&self, msg: String) {
        if let Some(f) = &self.sink {
            f.run_finished(&self.name, &msg);
        }
    }
}

/// SHA-256 of a run config's JSON: the identity a checkpoint is tied to.
pub fn config_sha256(c: &RunConfig) -> String {
    checkpoint::sha256_hex(&serde_json::to_vec(c).expect("a config serialises"))
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

/// The validation error the schedule observes after an epoch (the training error
/// without a validation split).
fn observed_error(row: &EpochRow) -> f64 {
    row.valid_acc.map_or(1.0 - row.train_acc, |a| 1.0 - a)
}

/// Where a run starts.
enum Start {
    /// From scratch.
    Fresh,
    /// From its checkpoint, with the `epochs.csv` rows up to the checkpoint's epoch.
    Resume(Box<Checkpoint>, Vec<EpochRow>),
    /// Not at all: it has finished (its manifest).
    Done(serde_json::Value),
}

/// The first field (dotted) where two configs differ, and how: `` `k` is X there, Y now``.
fn first_difference(a: &RunConfig, b: &RunConfig) -> (String, String) {
    let (fa, fb) = (flatten(a), flatten(b));
    fa.iter()
        .find(|(k, v)| fb.get(*k) != Some(*v))
        .map(|(k, v)| {
            let there = fb.get(k).map_or("absent", |s| s.as_str());
            (k.clone(), format!("`{k}` is {there} there, {v} now"))
        })
        .unwrap_or_else(|| (String::new(), "a field differs".to_string()))
}

/// Refuses to resume `spec` in a directory whose manifest (`path`) records another
/// config: the error names the run, the file and the first differing field, and says
/// "other data" when that field is one of `data.*`.
fn check_same_config(spec: &RunSpec, recorded: &RunConfig, path: &Path) -> Result<()> {
    if *recorded == spec.config {
        return Ok(());
    }
    let (field, how) = first_difference(&spec.config, recorded);
    let what = if field.starts_with("data.") {
        "other data"
    } else {
        "another config"
    };
    bail!(
        "cannot resume run `{}`: {} was made with {what} ({how}); give the options it was \
         made with (e.g. the same --set), or delete the run's directory or write to another --out",
        spec.name,
        path.display(),
    )
}

/// Before any data is loaded for `--resume`: every run directory of `plan` already in
/// `out` must have been made with its run's config (see [`check_same_config`]), so a
/// resume with other options is refused as such rather than failing to find the data;
/// and `out` must hold no run directory outside the plan, and record the same plan
/// ([`crate::outdir::check_same_plan`]).
pub fn check_resumable(plan: &Plan, out: &Path) -> Result<()> {
    for spec in &plan.runs {
        let dir = out.join(&spec.name);
        if let Some(m) = read_manifest(&dir)? {
            let path = dir.join("manifest.json");
            check_same_config(spec, &manifest_config(&m, &path)?, &path)?;
        }
    }
    crate::outdir::check_same_plan(out, plan, &crate::outdir::survey(out)?)
}

/// Before `--resume` trains anything: every run of `plan` can continue from what its
/// directory in `out` holds, with the data loaded now (everything [`run_one`] would
/// check when the run's turn comes, without writing anything), so that a refusal never
/// comes after other runs have trained.
pub fn check_resume_plan(plan: &Plan, data: &DataSets, out: &Path) -> Result<()> {
    check_resumable(plan, out)?;
    for spec in &plan.runs {
        let dataset = data
            .get(&data_key(&spec.config.data))
            .ok_or_else(|| anyhow!("run `{}`: its data was not loaded", spec.name))?;
        let run_dir = out.join(&spec.name);
        match inspect_start(spec, dataset, &run_dir)? {
            Start::Fresh => {}
            Start::Resume(ck, rows) => {
                let net = build_network(
                    &spec.config,
                    dataset.input_dim(),
                    dataset.num_classes as usize,
                )?;
                write_or_check_init(spec, &net, &run_dir.join("init.safetensors"), true, false)?;
                replay_schedule(spec, &rows, &ck)?;
            }
            Start::Done(m) => {
                load_finished_model(spec, dataset, &run_dir, &m)?;
            }
        }
    }
    Ok(())
}

/// Where `spec` starts: `resume` decides from its directory ([`inspect_start`], after
/// removing the temporary files of interrupted writes), else from scratch (a stale
/// checkpoint is deleted).
fn decide_start(spec: &RunSpec, dataset: &Dataset, run_dir: &Path, resume: bool) -> Result<Start> {
    let ck_path = run_dir.join(checkpoint::FILE_NAME);
    if !resume {
        remove_if_present(&ck_path)?;
        return Ok(Start::Fresh);
    }
    crate::outdir::remove_stale_temp_files(run_dir)?;
    let start = inspect_start(spec, dataset, run_dir)?;
    if matches!(start, Start::Done(_)) {
        // the final state is in model.safetensors
        remove_if_present(&ck_path)?;
    }
    Ok(start)
}

/// Where `spec` continues from its directory `run_dir` (reading only): finished (its
/// manifest), from its checkpoint (with the CSV rows up to it), or afresh. `Err` when
/// the directory was made with another config or other data, or its files disagree.
fn inspect_start(spec: &RunSpec, dataset: &Dataset, run_dir: &Path) -> Result<Start> {
    let ck_path = run_dir.join(checkpoint::FILE_NAME);
    let manifest = read_manifest(run_dir)?;
    if let Some(m) = &manifest {
        let path = run_dir.join("manifest.json");
        check_same_config(spec, &manifest_config(m, &path)?, &path)?;
        let recorded_files: Vec<&str> = m["dataset"]["files"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["raw_sha256"].as_str()).collect())
            .unwrap_or_default();
        let files: Vec<&str> = dataset
            .files
            .iter()
            .map(|f| f.raw_sha256.as_str())
            .collect();
        if recorded_files != files {
            bail!(
                "cannot resume run `{}`: {} records other data files (SHA-256 {:?}) than those \
                 loaded now ({:?}): the data changed since the run started; give the data it \
                 was made with (--data-dir), or use --overwrite or another --out",
                spec.name,
                path.display(),
                recorded_files,
                files
            );
        }
        let finished = matches!(m["status"].as_str(), Some("completed" | "diverged"));
        if finished && run_dir.join("model.safetensors").is_file() {
            return Ok(Start::Done(m.clone()));
        }
    }
    if !ck_path.is_file() {
        return Ok(Start::Fresh);
    }
    let ck = Checkpoint::read(&ck_path)?;
    if ck.state.config_sha256 != config_sha256(&spec.config) {
        bail!(
            "cannot resume run `{}`: {} was made with another config; delete the run's \
             directory or write to another --out",
            spec.name,
            ck_path.display()
        );
    }
    let csv_path = run_dir.join("epochs.csv");
    let mut rows = read_epochs(&csv_path)?;
    let e = ck.state.epoch as usize;
    let consistent = rows.len() > e
        && rows
            .iter()
            .take(e + 1)
            .enumerate()
            .all(|(i, r)| r.epoch as usize == i && r.run == spec.name);
    if !consistent {
        bail!(
            "cannot resume run `{}`: {} does not hold rows for epochs 0..={e} of this run, \
             as its checkpoint {} requires",
            spec.name,
            csv_path.display(),
            ck_path.display()
        );
    }
    rows.truncate(e + 1);
    Ok(Start::Resume(Box::new(ck), rows))
}

/// The learning-rate schedule of `spec` after replaying the epochs of `rows` (the CSV
/// rows up to the checkpoint `ck`), and whether training goes on; `Err` when the replay
/// does not give the checkpoint's schedule.
fn replay_schedule(
    spec: &RunSpec,
    rows: &[EpochRow],
    ck: &Checkpoint,
) -> Result<(LrSchedule, bool)> {
    let mut schedule = schedule_of(&spec.config)?;
    let mut go_on = true;
    for row in rows.iter().skip(1) {
        go_on = schedule.observe(row.epoch, observed_error(row));
    }
    let replayed = serde_json::to_string(&schedule)?;
    if replayed != ck.state.schedule {
        bail!(
            "cannot resume run `{}`: the schedule replayed from epochs.csv ({replayed}) \
             is not the checkpoint's ({}); was epochs.csv edited?",
            spec.name,
            ck.state.schedule
        );
    }
    Ok((schedule, go_on))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Train `spec` from scratch into `run_dir`, as `regulab run` does for one run but
/// without progress output or summary (what `regulab verify` reruns). Runs on the
/// caller's rayon pool.
pub fn train_fresh(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    check_data(spec, dataset, &spec.name)?;
    check_memory(
        &[(spec, run_memory(spec, dataset, opts.threads))],
        1,
        0,
        &spec.name,
    )?;
    remove_if_present(&run_dir.join(checkpoint::FILE_NAME))?;
    train_run(spec, dataset, run_dir, opts, None)
}

/// Checks every run of `plan` against its data and the machine before any is trained
/// (so a mistake in the last run of a sweep is not found after the others trained, and
/// leaves nothing behind): its split fits the training file ([`check_data`]), and the
/// memory the command needs ([`check_memory`]: the data held plus the runs that execute
/// at once) is available. Errors name the config file, the run and the field.
pub fn check_plan(plan: &Plan, data: &DataSets, opts: &RunOptions) -> Result<()> {
    let mut needs = Vec::with_capacity(plan.runs.len());
    for spec in &plan.runs {
        let dataset = data
            .get(&data_key(&spec.config.data))
            .ok_or_else(|| anyhow!("run `{}`: its data was not loaded", spec.name))?;
        check_data(spec, dataset, &plan.origin)?;
        needs.push((spec, run_memory(spec, dataset, opts.threads)));
    }
    let mut held = std::collections::BTreeSet::new();
    let mut data_bytes = 0u64;
    for d in data.values() {
        for images in [&d.train, &d.test] {
            // datasets of one file share its pixels: count them once
            if held.insert(images.pixels().as_ptr()) {
                data_bytes = data_bytes.saturating_add(images.pixels().len() as u64);
            }
            data_bytes = data_bytes.saturating_add(images.len() as u64);
        }
    }
    check_memory(&needs, opts.jobs, data_bytes, &plan.origin)
}

/// Checks that `spec`'s split fits its training file: `data.validation` leaves training
/// examples and `data.train_examples` is at most their number. `origin` (the config
/// file) prefixes the error.
fn check_data(spec: &RunSpec, dataset: &Dataset, origin: &str) -> Result<()> {
    let d = &spec.config.data;
    let invalid = |field: &str, message: String| ConfigError::Invalid {
        path: origin.to_string(),
        run: spec.name.clone(),
        field: field.to_string(),
        message,
    };
    let n = dataset.train.len();
    let file = dataset.files.first().map_or_else(
        || "the training file".to_string(),
        |f| f.path.display().to_string(),
    );
    let within = match d.range.as_slice() {
        &[a, b] => format!("data.range [{a}, {b}] of {file}"),
        _ => file,
    };
    if d.validation >= n {
        return Err(invalid(
            "data.validation",
            format!(
                "{} validation examples leave no training example: {within} holds {n} examples",
                d.validation
            ),
        )
        .into());
    }
    if let Some(k) = d.train_examples
        && k > n - d.validation
    {
        return Err(invalid(
            "data.train_examples",
            format!(
                "{k} is more than the {} training examples: {within} holds {n} examples, \
                 data.validation takes {}",
                n - d.validation,
                d.validation
            ),
        )
        .into());
    }
    Ok(())
}

/// What a run of `spec` on `dataset` with `threads` threads allocates ([`limits::run_memory`]).
fn run_memory(spec: &RunSpec, dataset: &Dataset, threads: usize) -> Option<limits::RunMemory> {
    let c = &spec.config;
    let mut sizes = vec![dataset.input_dim()];
    sizes.extend(&c.model.hidden);
    sizes.push(usize::try_from(dataset.num_classes).ok()?);
    let dropout = c.reg.drops_out();
    limits::run_memory(&limits::RunShape {
        sizes: &sizes,
        batch: c.batch_size,
        eval_batch: c.data.eval_batch,
        momentum: c.optim.momentum != 0.0,
        dropout,
        threads,
    })
}

/// Refuses to start when the runs executing at once (the `jobs` largest needs) and
/// `data_bytes` of data need more memory than is available ([`limits::available_memory`]).
fn check_memory(
    needs: &[(&RunSpec, Option<limits::RunMemory>)],
    jobs: usize,
    data_bytes: u64,
    origin: &str,
) -> Result<()> {
    let hint = "lower model.hidden, batch_size or data.eval_batch (or --jobs, --threads)";
    // sizes that overflow are refused even where the available memory is unknown
    if let Some((spec, _)) = needs.iter().find(|(_, m)| m.is_none()) {
        bail!(
            "{origin}: run `{}` needs more memory than can be counted (over {}), more than any machine has available; {hint}",
            spec.name,
            limits::Bytes(u64::MAX),
        );
    }
    let Some(available) = limits::available_memory() else {
        return Ok(());
    };
    let mut sorted: Vec<(&RunSpec, limits::RunMemory)> =
        needs.iter().filter_map(|&(s, m)| Some((s, m?))).collect();
    sorted.sort_by_key(|(_, m)| std::cmp::Reverse(m.total()));
    let at_once = jobs.clamp(1, sorted.len().max(1));
    let total = sorted[..at_once.min(sorted.len())]
        .iter()
        .fold(data_bytes, |t, (_, m)| t.saturating_add(m.total()));
    if total > available.bytes {
        let (spec, largest) = sorted[0];
        bail!(
            "{origin}: not enough memory: run `{}` needs about {largest}; with {at_once} run(s) \
             at a time and {} of data the command needs about {}, more than the {} available; \
             {hint}",
            spec.name,
            limits::Bytes(data_bytes),
            limits::Bytes(total),
            available
        );
    }
    Ok(())
}

/// Train (or resume, or skip) one run according to `opts.resume`.
fn run_one(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    match decide_start(spec, dataset, run_dir, opts.resume)? {
        Start::Fresh => train_run(spec, dataset, run_dir, opts, None),
        Start::Resume(ck, rows) => train_run(spec, dataset, run_dir, opts, Some((*ck, rows))),
        Start::Done(manifest) => {
            let o = finished_outcome(spec, dataset, run_dir, &manifest)?;
            if let Progress::Report(f) = &opts.progress {
                f.note(
                    &spec.name,
                    &format!(
                        "{}: already {} ({} epochs), not trained again",
                        spec.name,
                        o.status.as_str(),
                        o.rows.last().map_or(0, |r| r.epoch)
                    ),
                );
            }
            Ok(o)
        }
    }
}

/// Evaluate the test file (empty statistics, `n = 0`, without one).
fn test_stats(
    net: &Mlp,
    ws: &mut Workspace,
    dataset: &Dataset,
    eval_batch: usize,
    penalty: &Penalty,
    bufs: &mut EvalBuffers,
) -> Result<EvalStats> {
    let n = u32::try_from(dataset.test.len()).map_err(|_| {
        anyhow!(
            "{} test examples do not fit u32 indices",
            dataset.test.len()
        )
    })?;
    let test_idx: Vec<u32> = (0..n).collect();
    eval_indices(net, ws, &dataset.test, &test_idx, eval_batch, penalty, bufs)
}

/// The outcome of a finished run, rebuilt from its files: rows from `epochs.csv`, the
/// test statistics and weight statistics from `model.safetensors` (whose digest must
/// be the manifest's `final_digest`).
fn finished_outcome(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    manifest: &serde_json::Value,
) -> Result<RunOutcome> {
    let c = &spec.config;
    let csv_path = run_dir.join("epochs.csv");
    let rows = read_epochs(&csv_path)?;
    if rows.is_empty() || rows.iter().enumerate().any(|(i, r)| r.epoch as usize != i) {
        bail!(
            "{}: expected rows for epochs 0, 1, 2, ...",
            csv_path.display()
        );
    }
    let (net, digest) = load_finished_model(spec, dataset, run_dir, manifest)?;
    let mut ws = Workspace::new(net.architecture(), c.data.eval_batch);
    let mut bufs = EvalBuffers::default();
    let test = test_stats(
        &net,
        &mut ws,
        dataset,
        c.data.eval_batch,
        &c.reg.penalty(),
        &mut bufs,
    )?;
    let (small_weights, weight_norm) = weight_stats(&net);
    let status = match manifest["status"].as_str() {
        Some("diverged") => Status::Diverged,
        _ => Status::Completed,
    };
    Ok(RunOutcome {
        spec: spec.clone(),
        status,
        rows,
        test,
        small_weights,
        weight_norm,
        digest,
        seconds: manifest["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// The final model of a finished run and its digest, which must be the manifest's
/// `final_digest`.
fn load_finished_model(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    manifest: &serde_json::Value,
) -> Result<(Mlp, String)> {
    let arch = build_network(
        &spec.config,
        dataset.input_dim(),
        dataset.num_classes as usize,
    )?;
    let model_path = run_dir.join("model.safetensors");
    let net = regulab_model::io::load_expecting(&model_path, arch.architecture())
        .with_context(|| format!("reading {}", model_path.display()))?;
    let digest = digest(&net);
    if manifest["final_digest"].as_str() != Some(digest.as_str()) {
        bail!(
            "{}: its weights do not have the manifest's final_digest",
            model_path.display()
        );
    }
    Ok((net, digest))
}

/// Write the run's initial weights to `init_path` (when `write`); when resuming, check
/// that the file there holds them instead. The file's bytes are held only while this
/// runs.
fn write_or_check_init(
    spec: &RunSpec,
    net: &Mlp,
    init_path: &Path,
    resuming: bool,
    write: bool,
) -> Result<()> {
    let init_bytes = regulab_model::io::to_bytes(net)?;
    if resuming && init_path.is_file() {
        let found =
            std::fs::read(init_path).with_context(|| format!("reading {}", init_path.display()))?;
        if found != init_bytes {
            bail!(
                "cannot resume run `{}`: {} is not the initialisation this config gives \
                 (made by another version of regulab?)",
                spec.name,
                init_path.display()
            );
        }
    } else if write {
        crate::atomic::write(init_path, &init_bytes)
            .with_context(|| format!("writing {}", init_path.display()))?;
    }
    Ok(())
}

/// Train one run (from scratch, or from `resume`: its checkpoint and the CSV rows up to
/// it) and write its directory. `Err` only for I/O and internal errors; a diverging run
/// is an `Ok` outcome with [`Status::Diverged`].
fn train_run(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    opts: &RunOptions,
    resume: Option<(Checkpoint, Vec<EpochRow>)>,
) -> Result<RunOutcome> {
    let c = &spec.config;
    let started = Instant::now();
    let started_unix = unix_now();
    // (execute checks these for every run first; the caller names the run)
    let splits = dataset
        .splits(&split_spec(c), c.seed)
        .context("splitting the training file")?;
    if c.optim.schedule == ScheduleKind::Newbob && splits.valid().is_empty() {
        bail!("field `optim.schedule`: \"newbob\" needs a validation split (data.validation > 0)");
    }
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("creating run directory {}", run_dir.display()))?;
    let net = build_network(c, dataset.input_dim(), dataset.num_classes as usize)?;
    write_or_check_init(
        spec,
        &net,
        &run_dir.join("init.safetensors"),
        resume.is_some(),
        true,
    )?;
    let penalty = c.reg.penalty();
    let tc = TrainConfig {
        penalty,
        momentum: c.optim.momentum,
        max_norm: c.reg.max_norm(),
        seed: c.seed,
        ..TrainConfig::default()
    };
    let dropout = c.reg.keep();
    let mut schedule = schedule_of(c)?;
    let max_epochs = schedule.max_epochs();
    let reporter = Reporter::new(&opts.progress, &spec.name, max_epochs);
    let cfg_hash = config_sha256(c);
    let ck_path = run_dir.join(checkpoint::FILE_NAME);

    let mut manifest = Manifest {
        regulab_version: env!("CARGO_PKG_VERSION").to_string(),
        run: spec.name.clone(),
        experiment: spec.experiment.clone(),
        grid: spec.grid.iter().cloned().collect(),
        config: c.clone(),
        seed: c.seed,
        dataset: DatasetManifest {
            name: c.data.dataset.clone(),
            kind: dataset.name.to_string(),
            dir: dataset.dir.as_ref().map(|d| d.display().to_string()),
            files: dataset.files.clone(),
        },
        kernels: regulab_kernels::cpu::report(),
        threads: opts.threads,
        jobs: opts.jobs,
        started_unix,
        started_utc: utc_string(started_unix),
        finished_unix: None,
        finished_utc: None,
        status: "running".to_string(),
        epochs_trained: 0,
        resumed_from_epoch: resume.as_ref().map(|(ck, _)| ck.state.epoch),
        seconds: None,
        final_digest: None,
        test_accuracy: None,
        test_cost: None,
    };
    write_manifest(run_dir, &manifest)?;

    let d = dataset.input_dim();
    let batch = c.batch_size;
    let eval_batch = c.data.eval_batch;
    let mut ws = Workspace::new(net.architecture(), eval_batch);
    let mut bufs = EvalBuffers::default();
    let write_rows = |rows: &[EpochRow]| -> Result<()> {
        crate::atomic::write(&run_dir.join("epochs.csv"), &epochs_csv(rows)?)
            .with_context(|| format!("writing {}", run_dir.join("epochs.csv").display()))
    };
    let evaluate_row = |net: &Mlp,
                        ws: &mut Workspace,
                        bufs: &mut EvalBuffers,
                        epoch: u32,
                        lr: f32,
                        seconds: f64,
                        examples: usize|
     -> Result<EpochRow> {
        let tr = eval_indices(
            net,
            ws,
            &dataset.train,
            splits.pool(),
            eval_batch,
            &penalty,
            bufs,
        )?;
        let va = if splits.valid().is_empty() {
            None
        } else {
            Some(eval_indices(
                net,
                ws,
                &dataset.train,
                splits.valid(),
                eval_batch,
                &penalty,
                bufs,
            )?)
        };
        Ok(EpochRow {
            run: spec.name.clone(),
            epoch,
            learning_rate: lr,
            train_cost: tr.cost,
            train_nll: tr.nll,
            train_penalty: tr.penalty,
            train_acc: tr.accuracy,
            valid_cost: va.map(|v| v.cost),
            valid_nll: va.map(|v| v.nll),
            valid_acc: va.map(|v| v.accuracy),
            epoch_seconds: seconds,
            train_pps: if seconds > 0.0 {
                examples as f64 / seconds
            } else {
                0.0
            },
        })
    };

    let mut trainer = Trainer::new(net, tc, batch)?;
    trainer.set_dropout(Box::new(dropout) as Box<dyn KeepSchedule>)?;
    let mut rows: Vec<EpochRow>;
    let mut go_on = true;
    let mut epoch: u32;
    match resume {
        None => {
            rows = vec![evaluate_row(
                trainer.net(),
                &mut ws,
                &mut bufs,
                0,
                0.0,
                0.0,
                0,
            )?];
            write_rows(&rows)?;
            reporter.epoch(&spec.name, &rows[0], max_epochs);
            epoch = 1;
        }
        Some((ck, kept)) => {
            ck.restore_into(&mut trainer, &ck_path)?;
            (schedule, go_on) = replay_schedule(spec, &kept, &ck)?;
            rows = kept;
            // drops any row written after the checkpoint (the CSV is written first)
            write_rows(&rows)?;
            epoch = ck.state.epoch + 1;
            reporter.note(format!(
                "{}: resuming after epoch {}",
                spec.name, ck.state.epoch
            ));
            if let Some(last) = rows.last() {
                reporter.epoch(&spec.name, last, max_epochs);
            }
        }
    }

    let mut order = vec![0u32; splits.pool().len()];
    let (mut bx, mut bl) = (vec![0f32; batch * d], vec![0u32; batch]);
    let mut status = Status::Completed;
    while go_on && let Some(lr) = schedule.lr_for_epoch(epoch) {
        trainer.set_epoch(epoch)?;
        splits.shuffle_into(u64::from(epoch), &mut order)?;
        let t0 = Instant::now();
        let mut finite = true;
        for chunk in order.chunks(batch) {
            // a safe point: every file on disk is whole and the checkpoint is that of
            // the last completed epoch, from which --resume continues bit for bit
            crate::interrupt::check()?;
            let n = chunk.len();
            dataset
                .train
                .gather(chunk, &mut bx[..n * d], &mut bl[..n])?;
            let s = trainer.train_batch(&bx[..n * d], &bl[..n], lr)?;
            if !s.nll_sum.is_finite() {
                finite = false;
                break;
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        let row = evaluate_row(
            trainer.net(),
            &mut ws,
            &mut bufs,
            epoch,
            lr,
            seconds,
            order.len(),
        )?;
        let diverged = !finite
            || !row.train_cost.is_finite()
            || row.valid_cost.is_some_and(|v| !v.is_finite());
        let error = observed_error(&row);
        reporter.epoch(&spec.name, &row, max_epochs);
        rows.push(row);
        write_rows(&rows)?;
        if diverged {
            status = Status::Diverged;
            break;
        }
        go_on = schedule.observe(epoch, error);
        Checkpoint::write_trainer(
            &trainer,
            epoch,
            cfg_hash.clone(),
            serde_json::to_string(&schedule)?,
            &ck_path,
        )?;
        if opts.halt_after_epoch == Some(epoch) {
            return Err(Halted {
                run: spec.name.clone(),
                epoch,
            }
            .into());
        }
        epoch += 1;
    }
    let net = trainer.into_net();
    let test = test_stats(&net, &mut ws, dataset, eval_batch, &penalty, &mut bufs)?;
    // the evaluation buffers (about 16 MB at batch 1000) are not needed any more
    drop((ws, bufs));
    let model_path = run_dir.join("model.safetensors");
    crate::atomic::write(&model_path, &regulab_model::io::to_bytes(&net)?)
        .with_context(|| format!("writing {}", model_path.display()))?;
    let digest = digest(&net);
    let (small_weights, weight_norm) = weight_stats(&net);
    let seconds = started.elapsed().as_secs_f64();
    let finished_unix = unix_now();
    let has_test = test.n > 0;
    manifest.finished_unix = Some(finished_unix);
    manifest.finished_utc = Some(utc_string(finished_unix));
    manifest.status = status.as_str().to_string();
    manifest.epochs_trained = rows.last().map_or(0, |r| r.epoch);
    manifest.seconds = Some(seconds);
    manifest.final_digest = Some(digest.clone());
    manifest.test_accuracy = has_test.then_some(test.accuracy);
    manifest.test_cost = has_test.then_some(test.cost);
    write_manifest(run_dir, &manifest)?;
    // the run is finished: its final state is in model.safetensors
    remove_if_present(&ck_path)?;
    reporter.finish(format!(
        "{}: {} after {} epochs{}",
        spec.name,
        status.as_str(),
        rows.last().map_or(0, |r| r.epoch),
        if has_test {
            format!(", test_acc {:.4}", test.accuracy)
        } else {
            String::new()
        }
    ));
    Ok(RunOutcome {
        spec: spec.clone(),
        status,
        rows,
        test,
        small_weights,
        weight_norm,
        digest,
        seconds,
    })
}

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

/// Every path a run of `data` records in its manifest (JSON text) must be UTF-8:
/// checked before anything is written, naming the path.
pub fn check_recordable(data: &DataSets) -> Result<()> {
    for d in data.values() {
        let paths = d.dir.iter().chain(d.files.iter().map(|f| &f.path));
        if let Some(p) = paths.into_iter().find(|p| p.to_str().is_none()) {
            bail!(
                "{}: the path is not valid UTF-8; regulab records the data's paths in each \
                 run's manifest.json (JSON text): rename the directory or give a UTF-8 path \
                 to it (e.g. a symbolic link)",
                p.display()
            );
        }
    }
    Ok(())
}

/// Run every run of `plan` (concurrently, `opts.jobs` at a time) and write the summary.
///
/// Before anything is trained: the data paths ([`check_recordable`]), every run against
/// its data and the memory available ([`check_plan`]); with `opts.resume`, the whole
/// plan against the directory ([`check_resume_plan`]); then `plan.json` is written. Owning `opts.out` ([`crate::lock`]) and refusing to replace
/// results ([`crate::outdir`]) is the caller's part.
pub fn execute(plan: &Plan, data: &DataSets, opts: &RunOptions) -> Result<Vec<RunOutcome>> {
    check_recordable(data)?;
    check_plan(plan, data, opts)?;
    if opts.resume {
        check_resume_plan(plan, data, &opts.out)?;
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating output directory {}", opts.out.display()))?;
    crate::outdir::remove_stale_temp_files(&opts.out)?;
    crate::outdir::PlanFile::of(plan).write(&opts.out)?;
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<RunOutcome>>>> =
        plan.runs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..opts.jobs.min(plan.runs.len()).max(1) {
            handles.push(scope.spawn(|| -> Result<()> {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(opts.threads)
                    .build()?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = plan.runs.get(i) else {
                        return Ok(());
                    };
                    if let Err(stop) = crate::interrupt::check() {
                        // no new run starts once a signal has come
                        *results[i].lock().expect("no poisoned lock") = Some(Err(stop.into()));
                        continue;
                    }
                    let Some(dataset) = data.get(&data_key(&spec.config.data)) else {
                        *results[i].lock().expect("no poisoned lock") =
                            Some(Err(anyhow!("run `{}`: its data was not loaded", spec.name)));
                        continue;
                    };
                    let dir = opts.out.join(&spec.name);
                    let r = pool.install(|| run_one(spec, dataset, &dir, opts));
                    *results[i].lock().expect("no poisoned lock") = Some(r);
                }
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow!("a worker thread panicked"))??;
        }
        Ok(())
    })?;
    let mut outcomes = Vec::new();
    for (spec, r) in plan.runs.iter().zip(results) {
        let r = r
            .into_inner()
            .expect("no poisoned lock")
            .ok_or_else(|| anyhow!("run `{}` was not executed", spec.name))?;
        outcomes.push(r.with_context(|| format!("run `{}`", spec.name))?);
    }
    crate::atomic::write(
        &opts.out.join("summary.csv"),
        &summary_csv(plan, &outcomes)?,
    )
    .with_context(|| format!("writing {}", opts.out.join("summary.csv").display()))?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_strings() {
        assert_eq!(utc_string(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_string(951_782_400.0), "2000-02-29T00:00:00Z");
        // 1_795_611_599 = 20_782 days + 46_799 s (12:59:59)
        assert_eq!(utc_string(1_795_611_599.5), "2026-11-25T12:59:59Z");
    }

    /// A study of two runs with different seeds (so different pools) on 300 synthetic
    /// 4x4 training images, of which the runs read 2 x 40 + 100.
    fn small_study() -> (Plan, DataSets) {
        let text = r#"
            name = "small"
            seed = 1
            epochs = 2
            batch_size = 10
            [data]
            dataset = "synthetic"
            train_examples = 40
            validation = 100
            eval_batch = 64
            [model]
            hidden = [8]
            [experiments.a]
            [experiments.b]
            seed = 2
            reg.l2 = 1e-3
        "#;
        let plan = crate::config::parse(text, "small.toml", "small", &[]).unwrap();
        let images = |n: usize, salt: usize| {
            let pixels = (0..n * 16).map(|i| ((i * 37 + salt) % 251) as u8).collect();
            let labels = (0..n).map(|i| ((i * 7 + salt) % 3) as u8).collect();
            LabeledImages::new(4, 4, pixels, labels).unwrap()
        };
        let dataset = Dataset {
            name: DatasetName::Custom,
            dir: None,
            train: images(300, 0),
            test: images(50, 5),
            num_classes: 3,
            files: Vec::new(),
            warnings: Vec::new(),
        };
        let key = data_key(&plan.runs[0].config.data);
        (plan, DataSets::from([(key, Arc::new(dataset))]))
    }

    #[test]
    fn released_data_holds_what_the_runs_read_and_gives_the_same_runs() {
        let (plan, data) = small_study();
        let (key, full) = data.iter().next().unwrap();
        let used = used_train_examples(&plan, key, full);
        let mut expected: Vec<u32> = Vec::new();
        for run in &plan.runs {
            let s = full
                .splits(&split_spec(&run.config), run.config.seed)
                .unwrap();
            expected.extend(s.pool().iter().chain(s.valid()));
        }
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(used, expected);
        assert!(used.len() > 140 && used.len() < 180, "{}", used.len());

        let released = release_unused(&plan, data.clone());
        let small = &released[key];
        assert_eq!(small.train.held_len(), used.len());
        assert_eq!(small.train.len(), 300);
        assert_eq!(small.test, full.test);

        let dir = tempfile::tempdir().unwrap();
        let opts = |name: &str| RunOptions {
            out: dir.path().join(name),
            threads: 1,
            jobs: 2,
            progress: Progress::Quiet,
            resume: false,
            halt_after_epoch: None,
        };
        let a = execute(&plan, &data, &opts("full")).unwrap();
        let b = execute(&plan, &released, &opts("released")).unwrap();
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.digest, b.digest, "{}", a.spec.name);
            assert_eq!(a.test, b.test);
            let diffs = crate::verify::compare_run_dirs(
                &dir.path().join("full").join(&a.spec.name),
                &dir.path().join("released").join(&b.spec.name),
            )
            .unwrap();
            assert!(diffs.is_empty(), "{}: {diffs:?}", a.spec.name);
        }
    }

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
