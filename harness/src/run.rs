//! Executing a [`Plan`]: seeded training runs, per-epoch CSV, models, manifests and
//! the sweep summary.
//!
//! Layout of an output directory `DIR` (default `runs/<config name>/`):
//!
//! ```text
//! DIR/summary.csv              one row per run
//! DIR/<run>/epochs.csv         one row per epoch, epoch 0 = the untrained model
//! DIR/<run>/init.safetensors   weights before training
//! DIR/<run>/model.safetensors  final weights
//! DIR/<run>/manifest.json      resolved config, data checksums, versions, kernels, status
//! ```
//!
//! Every file is written atomically ([`crate::atomic`]); `epochs.csv` is rewritten
//! after each epoch, so an interrupted command leaves complete files only.
//!
//! Runs of a grid execute concurrently (`jobs` workers, each with its own rayon pool of
//! `threads` threads). No result depends on either number: every kernel gives the same
//! bits for any pool size, and each run's randomness comes only from its seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use regulab_model::{
    Activation, Architecture, DropoutSchedule, EvalStats, Evaluator, FixedDropout, Init,
    LrSchedule, Mlp, NewBob, Output, Penalty, TrainConfig, Trainer, Workspace,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{
    ActivationName, InitName, OutputName, Plan, RunConfig, RunSpec, ScheduleName, flatten,
    grid_keys,
};
use crate::data::{Dataset, DatasetName, LabeledImages, SplitSpec};

/// How much the command tells the user while it works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing but errors.
    Quiet,
    /// One line per epoch on stderr.
    Lines,
    /// Progress bars (stderr is a terminal).
    Bars,
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
    fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Diverged => "diverged",
        }
    }
}

/// One row of `epochs.csv`. Floats are printed in Rust's shortest round-trip form.
#[derive(Clone, Debug, PartialEq, Serialize)]
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

/// Load every dataset the plan names (once each).
pub fn load_datasets(plan: &Plan, data_dir: Option<&Path>) -> Result<DataSets> {
    let mut sets = DataSets::new();
    for run in &plan.runs {
        let key = run.config.data.dataset.clone();
        if sets.contains_key(&key) {
            continue;
        }
        let dataset = load_dataset(&key, data_dir)?;
        for w in &dataset.warnings {
            eprintln!("warning: {w}");
        }
        sets.insert(key, Arc::new(dataset));
    }
    Ok(sets)
}

/// Load one dataset by config name: `mnist`, `fashion-mnist`, or a directory.
pub fn load_dataset(name: &str, data_dir: Option<&Path>) -> Result<Dataset> {
    match name.parse::<DatasetName>() {
        Ok(DatasetName::Custom) | Err(_) => {
            let dir = Path::new(name);
            if !dir.is_dir() {
                bail!(
                    "field `data.dataset`: \"{name}\" is neither a known dataset (mnist, fashion-mnist) nor a directory holding the four IDX files"
                );
            }
            Dataset::load_dir(DatasetName::Custom, dir)
                .with_context(|| format!("loading dataset from {}", dir.display()))
        }
        Ok(known) => Dataset::load(known, data_dir).map_err(|e| {
            let mut msg = e.to_string();
            if known == DatasetName::Mnist {
                msg.push_str(
                    "\nor run the same study on Fashion-MNIST (apt-get install dataset-fashion-mnist): --set data.dataset=fashion-mnist",
                );
            }
            anyhow!(msg)
        }),
    }
}

/// Build the network of a config.
pub fn build_network(c: &RunConfig, inputs: usize, classes: usize) -> Result<Mlp> {
    let act = match c.model.activation {
        ActivationName::Sigmoid => Activation::Sigmoid,
        ActivationName::Tanh => Activation::Tanh,
        ActivationName::Relu => Activation::Relu,
        ActivationName::Identity => Activation::Identity,
    };
    let output = match c.model.output {
        OutputName::Softmax => Output::Softmax,
        OutputName::Linear => Output::Linear,
    };
    let mut sizes = vec![inputs];
    sizes.extend(&c.model.hidden);
    sizes.push(classes);
    let arch = Architecture::new(sizes, act, output)?;
    let init = match c.model.init {
        InitName::Uniform => Init::Uniform {
            hidden: c.model.init_hidden,
            output: c.model.init_output,
        },
        InitName::Glorot => Init::Glorot,
    };
    Ok(Mlp::new(arch, &init, c.seed)?)
}

fn penalty_of(c: &RunConfig) -> Penalty {
    Penalty {
        penalize_biases: c.reg.penalize_biases,
        ..Penalty::new(c.reg.l1, c.reg.l2)
    }
}

fn schedule_of(c: &RunConfig) -> LrSchedule {
    let epochs = c.epochs as u32;
    match c.optim.schedule {
        ScheduleName::Fixed => LrSchedule::Fixed {
            lr: c.optim.lr,
            max_epochs: epochs,
        },
        ScheduleName::List => LrSchedule::List {
            rates: c.optim.lr_list.clone(),
        },
        ScheduleName::Exponential => LrSchedule::Exponential {
            lr: c.optim.lr,
            decay: c.optim.decay,
            max_epochs: epochs,
        },
        ScheduleName::Newbob => LrSchedule::NewBob(NewBob::new(
            c.optim.lr,
            f64::from(c.optim.newbob_threshold),
            epochs,
        )),
    }
}

fn dropout_of(c: &RunConfig) -> FixedDropout {
    let mut d = FixedDropout::new(c.reg.keep_input, c.reg.keep_hidden);
    for (i, &k) in c.reg.keep_layers.iter().enumerate() {
        d = d.with_layer(i + 1, k);
    }
    d
}

/// Evaluate `net` on examples `indices` of `images` in batches of `batch`.
fn eval_indices(
    net: &Mlp,
    ws: &mut Workspace,
    images: &LabeledImages,
    indices: &[u32],
    batch: usize,
    penalty: &Penalty,
    xbuf: &mut Vec<f32>,
    lbuf: &mut Vec<u32>,
) -> Result<EvalStats> {
    let d = images.dim();
    let mut ev = Evaluator::new();
    for chunk in indices.chunks(batch) {
        xbuf.resize(chunk.len() * d, 0.0);
        lbuf.resize(chunk.len(), 0);
        images.gather(chunk, xbuf, lbuf)?;
        ev.add_batch(net, ws, xbuf, lbuf)?;
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
    Ok(w.into_inner().map_err(|e| anyhow!("{e}"))?)
}

#[derive(Serialize)]
struct Manifest<'a> {
    regulab_version: &'static str,
    run: &'a str,
    experiment: &'a str,
    grid: BTreeMap<&'a str, &'a str>,
    config: &'a RunConfig,
    seed: u64,
    dataset: DatasetManifest<'a>,
    kernels: regulab_kernels::cpu::KernelReport,
    threads: usize,
    jobs: usize,
    started_unix: f64,
    started_utc: String,
    finished_unix: Option<f64>,
    finished_utc: Option<String>,
    status: &'a str,
    epochs_trained: u32,
    final_digest: Option<&'a str>,
    test_accuracy: Option<f64>,
    test_cost: Option<f64>,
}

#[derive(Serialize)]
struct DatasetManifest<'a> {
    name: &'a str,
    dir: Option<String>,
    files: &'a [crate::data::FileRecord],
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

/// Reporter of one run's progress.
struct Reporter {
    mode: Progress,
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter {
    fn new(mode: Progress, multi: &indicatif::MultiProgress, name: &str, epochs: u32) -> Reporter {
        let bar = (mode == Progress::Bars).then(|| {
            let b = multi.add(indicatif::ProgressBar::new(u64::from(epochs)));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>28} [{bar:30}] {pos}/{len} epochs {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(name.to_string());
            b
        });
        Reporter { mode, bar }
    }

    fn epoch(&self, name: &str, row: &EpochRow, max_epochs: u32) {
        let valid = row
            .valid_acc
            .map(|a| format!(" valid_acc {a:.4}"))
            .unwrap_or_default();
        match (self.mode, &self.bar) {
            (Progress::Bars, Some(b)) => {
                b.set_position(u64::from(row.epoch));
                b.set_message(format!("train_cost {:.4}{valid}", row.train_cost));
            }
            (Progress::Lines, _) => eprintln!(
                "{name}: epoch {}/{max_epochs} train_cost {:.4} train_acc {:.4}{valid}",
                row.epoch, row.train_cost, row.train_acc
            ),
            _ => {}
        }
    }

    fn finish(&self, msg: String) {
        match (self.mode, &self.bar) {
            (Progress::Bars, Some(b)) => b.finish_with_message(msg),
            (Progress::Lines, _) => eprintln!("{msg}"),
            _ => {}
        }
    }
}

/// Train one run and write its directory. `Err` only for I/O and internal errors; a
/// diverging run is an `Ok` outcome with [`Status::Diverged`].
fn train_run(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    opts: &RunOptions,
    multi: &indicatif::MultiProgress,
) -> Result<RunOutcome> {
    let c = &spec.config;
    let started = Instant::now();
    let started_unix = unix_now();
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("creating run directory {}", run_dir.display()))?;
    let splits = dataset
        .splits(
            &SplitSpec {
                valid_size: c.data.validation,
                train_examples: c.data.train_examples,
            },
            c.seed,
        )
        .with_context(|| format!("run `{}`: splitting the training file", spec.name))?;
    if c.optim.schedule == ScheduleName::Newbob && splits.valid().is_empty() {
        bail!(
            "run `{}`: field `optim.schedule`: \"newbob\" needs a validation split (data.validation > 0)",
            spec.name
        );
    }
    let mut net = build_network(c, dataset.input_dim(), dataset.num_classes as usize)?;
    regulab_model::io::save(&net, &run_dir.join("init.safetensors"))?;
    let penalty = penalty_of(c);
    let tc = TrainConfig {
        penalty,
        momentum: c.optim.momentum,
        max_norm: (c.reg.max_norm > 0.0).then_some(c.reg.max_norm),
        seed: c.seed,
        ..TrainConfig::default()
    };
    let dropout = dropout_of(c);
    let mut schedule = schedule_of(c);
    let max_epochs = schedule.max_epochs();
    let reporter = Reporter::new(opts.progress, multi, &spec.name, max_epochs);

    let d = dataset.input_dim();
    let batch = c.batch_size;
    let eval_batch = c.data.eval_batch;
    let mut ws = Workspace::new(net.architecture(), eval_batch);
    let (mut xbuf, mut lbuf) = (Vec::new(), Vec::new());
    let mut rows: Vec<EpochRow> = Vec::new();
    let write_rows = |rows: &[EpochRow]| -> Result<()> {
        crate::atomic::write(&run_dir.join("epochs.csv"), &epochs_csv(rows)?)
            .with_context(|| format!("writing {}", run_dir.join("epochs.csv").display()))
    };
    let evaluate_row = |net: &Mlp,
                        ws: &mut Workspace,
                        xbuf: &mut Vec<f32>,
                        lbuf: &mut Vec<u32>,
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
            xbuf,
            lbuf,
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
                xbuf,
                lbuf,
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

    rows.push(evaluate_row(
        &net, &mut ws, &mut xbuf, &mut lbuf, 0, 0.0, 0.0, 0,
    )?);
    write_rows(&rows)?;
    reporter.epoch(&spec.name, &rows[0], max_epochs);

    let mut trainer = Trainer::new(net, tc, batch)?;
    trainer.set_dropout(Box::new(dropout) as Box<dyn DropoutSchedule>)?;
    let mut order = vec![0u32; splits.pool().len()];
    let (mut bx, mut bl) = (vec![0f32; batch * d], vec![0u32; batch]);
    let mut status = Status::Completed;
    let mut epoch = 1u32;
    while let Some(lr) = schedule.lr_for_epoch(epoch) {
        trainer.set_epoch(epoch)?;
        splits.shuffle_into(u64::from(epoch), &mut order)?;
        let t0 = Instant::now();
        let mut finite = true;
        for chunk in order.chunks(batch) {
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
            &mut xbuf,
            &mut lbuf,
            epoch,
            lr,
            seconds,
            order.len(),
        )?;
        let diverged = !finite
            || !row.train_cost.is_finite()
            || row.valid_cost.is_some_and(|v| !v.is_finite());
        let valid_error = row.valid_acc.map_or(1.0 - row.train_acc, |a| 1.0 - a);
        reporter.epoch(&spec.name, &row, max_epochs);
        rows.push(row);
        write_rows(&rows)?;
        if diverged {
            status = Status::Diverged;
            break;
        }
        if !schedule.observe(epoch, valid_error) {
            break;
        }
        epoch += 1;
    }
    net = trainer.into_net();
    let test_idx: Vec<u32> = (0..dataset.test.len() as u32).collect();
    let test = eval_indices(
        &net,
        &mut ws,
        &dataset.test,
        &test_idx,
        eval_batch,
        &penalty,
        &mut xbuf,
        &mut lbuf,
    )?;
    regulab_model::io::save(&net, &run_dir.join("model.safetensors"))?;
    let digest = digest(&net);
    let (small_weights, weight_norm) = weight_stats(&net);
    let seconds = started.elapsed().as_secs_f64();
    let finished_unix = unix_now();
    let manifest = Manifest {
        regulab_version: env!("CARGO_PKG_VERSION"),
        run: &spec.name,
        experiment: &spec.experiment,
        grid: spec
            .grid
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        config: c,
        seed: c.seed,
        dataset: DatasetManifest {
            name: &c.data.dataset,
            dir: dataset.dir.as_ref().map(|d| d.display().to_string()),
            files: &dataset.files,
        },
        kernels: regulab_kernels::cpu::report(),
        threads: opts.threads,
        jobs: opts.jobs,
        started_unix,
        started_utc: utc_string(started_unix),
        finished_unix: Some(finished_unix),
        finished_utc: Some(utc_string(finished_unix)),
        status: status.as_str(),
        epochs_trained: rows.last().map_or(0, |r| r.epoch),
        final_digest: Some(&digest),
        test_accuracy: Some(test.accuracy),
        test_cost: Some(test.cost),
    };
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    crate::atomic::write(&run_dir.join("manifest.json"), &json)?;
    reporter.finish(format!(
        "{}: {} after {} epochs, test_acc {:.4}",
        spec.name,
        status.as_str(),
        rows.last().map_or(0, |r| r.epoch),
        test.accuracy
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

/// `summary.csv` as bytes: one row per run, in plan order.
pub fn summary_csv(plan: &Plan, outcomes: &[RunOutcome]) -> Result<Vec<u8>> {
    let mut params: Vec<String> = SUMMARY_PARAMS.iter().map(|s| s.to_string()).collect();
    for k in grid_keys(plan) {
        if !params.contains(&k) {
            params.push(k);
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["run".into(), "experiment".into()];
    header.extend(params.iter().cloned());
    header.extend(
        [
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
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for o in outcomes {
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
        let mut rec = vec![o.spec.name.clone(), o.spec.experiment.clone()];
        rec.extend(
            params
                .iter()
                .map(|p| flat.get(p).cloned().unwrap_or_default()),
        );
        rec.extend([
            last.train_acc.to_string(),
            last.train_cost.to_string(),
            opt(last.valid_acc),
            opt(last.valid_cost),
            o.test.accuracy.to_string(),
            o.test.cost.to_string(),
            opt(best.map(|b| b.0)),
            best.map(|b| b.1.to_string()).unwrap_or_default(),
            o.small_weights.to_string(),
            o.weight_norm.to_string(),
            last.epoch.to_string(),
            o.status.as_str().to_string(),
            format!("{:.3}", o.seconds),
        ]);
        w.write_record(&rec)?;
    }
    Ok(w.into_inner().map_err(|e| anyhow!("{e}"))?)
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

/// Run every run of `plan` (concurrently, `opts.jobs` at a time) and write the summary.
pub fn execute(plan: &Plan, data: &DataSets, opts: &RunOptions) -> Result<Vec<RunOutcome>> {
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating output directory {}", opts.out.display()))?;
    let multi = indicatif::MultiProgress::new();
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
                    let dataset = &data[&spec.config.data.dataset];
                    let dir = opts.out.join(&spec.name);
                    let r = pool.install(|| train_run(spec, dataset, &dir, opts, &multi));
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
        assert_eq!(utc_string(1_795_611_599.5), "2026-11-25T09:39:59Z");
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
