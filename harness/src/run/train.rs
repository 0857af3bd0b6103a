//! Training one run: from scratch or from a checkpoint, epoch after epoch, writing its
//! directory as it goes (manifest, `epochs.csv` after every epoch, then the checkpoint,
//! the final model and manifest at the end).
//!
//! Why a module: this is the only code that drives a [`Trainer`]; what it starts from
//! is decided before ([`super::resume`]), and what the directory holds afterwards is
//! all the outputs need ([`super::outputs`]). The order of the writes is the resume
//! contract: the checkpoint never runs ahead of the CSV.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use regulab_model::{
    EvalStats, Evaluator, KeepSchedule, Mlp, Penalty, ScheduleKind, TrainConfig, Trainer, Workspace,
};

use crate::checkpoint::{self, Checkpoint};
use crate::config::RunSpec;
use crate::data::load::split_spec;
use crate::data::{Dataset, LabeledImages};

use super::clock::{unix_now, utc_string};
use super::digest::{WeightStats, digest};
use super::epochs::{EpochRow, epochs_csv, observed_error};
use super::executor::Spare;
use super::manifest::{
    DataIdentity, Environment, FileIdentity, Identity, Manifest, Results, RunState, Timing,
    config_sha256, write_manifest,
};
use super::preflight::{check_data, check_memory, run_memory};
use super::progress::Reporter;
use super::resume::{
    Start, decide_start, finished_outcome, remove_if_present, replay_schedule, write_or_check_init,
};
use super::spec::{build_network, schedule_of};
use super::{Halted, Progress, RunOptions, RunOutcome, Status};

/// Reused buffers of evaluation batches.
#[derive(Default)]
pub(crate) struct EvalBuffers {
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
    // Reproducibility: the batches run in order and each example's loss is summed in
    // f64 in example order (model::eval), whatever the batch size or thread count.
    for chunk in indices.chunks(batch) {
        bufs.x.resize(chunk.len() * d, 0.0);
        bufs.labels.resize(chunk.len(), 0);
        images.gather(chunk, &mut bufs.x, &mut bufs.labels)?;
        ev.add_batch(net, ws, &bufs.x, &bufs.labels)?;
    }
    Ok(ev.finish(net, penalty))
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
    train_run(spec, dataset, run_dir, opts, None, None)
}

/// Train (or resume, or skip) one run according to `opts.resume`.
///
/// With `spare`, the run trains each epoch in a larger pool when workers with no run
/// left lend it their threads ([`Spare`]).
pub(crate) fn run_one(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    opts: &RunOptions,
    spare: Option<&Spare>,
) -> Result<RunOutcome> {
    match decide_start(spec, dataset, run_dir, opts.resume)? {
        Start::Fresh => train_run(spec, dataset, run_dir, opts, None, spare),
        Start::Resume(ck, rows) => {
            train_run(spec, dataset, run_dir, opts, Some((*ck, rows)), spare)
        }
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
pub(crate) fn test_stats(
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

/// Train one run (from scratch, or from `resume`: its checkpoint and the CSV rows up to
/// it) and write its directory. `Err` only for I/O and internal errors; a diverging run
/// is an `Ok` outcome with [`Status::Diverged`].
fn train_run(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    opts: &RunOptions,
    resume: Option<(Checkpoint, Vec<EpochRow>)>,
    spare: Option<&Spare>,
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
    // the cost reported per epoch is the one whose gradient the steps follow (under
    // reg.convention = "lab2015", the coefficients over the batch size, biases included)
    let penalty = c.reg.reported_penalty(c.batch_size);
    let tc = TrainConfig {
        penalty: c.reg.penalty(),
        convention: c.reg.convention,
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
        identity: Identity {
            run: spec.name.clone(),
            experiment: spec.experiment.clone(),
            grid: spec.grid.iter().cloned().collect(),
            config: c.clone(),
            seed: c.seed,
            dataset: DataIdentity {
                name: c.data.dataset.clone(),
                kind: dataset.name.to_string(),
                files: dataset
                    .files
                    .iter()
                    .map(|f| FileIdentity {
                        name: f.name.clone(),
                        raw_len: f.raw_len,
                        raw_sha256: f.raw_sha256.clone(),
                        verified: f.verified,
                    })
                    .collect(),
            },
        },
        results: Results {
            status: RunState::Running,
            epochs_trained: 0,
            final_digest: None,
            test_accuracy: None,
            test_cost: None,
        },
        environment: Environment {
            regulab_version: env!("CARGO_PKG_VERSION").to_string(),
            kernels: regulab_kernels::cpu::report().into(),
            threads: opts.threads,
            threads_max: opts.threads,
            jobs: opts.jobs,
            data_dir: dataset.dir.as_ref().map(|d| d.display().to_string()),
            data_paths: dataset.files.iter().map(|f| f.path.clone()).collect(),
        },
        timing: Timing {
            started_unix,
            started_utc: utc_string(started_unix),
            finished_unix: None,
            finished_utc: None,
            resumed_from_epoch: resume.as_ref().map(|(ck, _)| ck.state.epoch),
            seconds: None,
        },
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
    // the pool lent threads make larger (None: the caller's pool), and its size
    let mut lent: Option<rayon::ThreadPool> = None;
    let mut threads_max = opts.threads;
    while go_on && let Some(lr) = schedule.lr_for_epoch(epoch) {
        if let Some(want) = spare.map(|s| s.share(opts.threads))
            && want > threads_max
        {
            lent = Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(want)
                    .build()
                    .context("building a larger thread pool for lent threads")?,
            );
            threads_max = want;
        }
        trainer.set_epoch(epoch)?;
        splits.shuffle_into(u64::from(epoch), &mut order)?;
        let t0 = Instant::now();
        // one epoch's training and evaluation, in whichever pool
        let mut epoch_work = || -> Result<(bool, EpochRow)> {
            let mut finite = true;
            for chunk in order.chunks(batch) {
                // a safe point: every file on disk is whole and the checkpoint is that
                // of the last completed epoch, from which --resume continues bit for bit
                crate::interrupt::check()?;
                let n = chunk.len();
                dataset
                    .train
                    .gather(chunk, &mut bx[..n * d], &mut bl[..n])?;
                // Reproducibility: the kernels split each batch over the caller's rayon
                // pool in blocks fixed by the shapes, and the dropout masks are keyed by
                // (seed, layer, step, element): the same bits for any thread count.
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
            Ok((finite, row))
        };
        let (finite, row) = match &lent {
            Some(pool) => pool.install(epoch_work),
            None => epoch_work(),
        }?;
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
    let WeightStats {
        frac_small: small_weights,
        l2_norm: weight_norm,
    } = WeightStats::of(&net);
    let seconds = started.elapsed().as_secs_f64();
    let finished_unix = unix_now();
    let has_test = test.n > 0;
    manifest.timing.finished_unix = Some(finished_unix);
    manifest.timing.finished_utc = Some(utc_string(finished_unix));
    manifest.timing.seconds = Some(seconds);
    manifest.environment.threads_max = threads_max;
    manifest.results = Results {
        status: status.into(),
        epochs_trained: rows.last().map_or(0, |r| r.epoch),
        final_digest: Some(digest.clone()),
        test_accuracy: has_test.then_some(test.accuracy),
        test_cost: has_test.then_some(test.cost),
    };
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
