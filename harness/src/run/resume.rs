//! Resume decisions: where each run of a plan continues from what its directory holds.
//!
//! A finished run (manifest status `completed`/`diverged` and a model file) is not
//! trained again: its outcome is rebuilt from its files. A run with a checkpoint drops
//! the CSV rows after the checkpoint's epoch, restores it, replays the schedule over
//! the kept rows and trains on. Anything else starts afresh. A directory made with
//! another config or other data is refused, for every run before any run trains
//! ([`check_resume_plan`]).
//!
//! Why a module: these decisions only read (except `decide_start`, which removes a
//! stale checkpoint or temporary files), so the whole plan can be checked before
//! training; training then gets a `Start` and never looks at the directory itself.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use regulab_model::{LrSchedule, Mlp, Workspace};

use crate::checkpoint::{self, Checkpoint};
use crate::config::{Plan, RunConfig, RunSpec, flatten};
use crate::data::load::data_key;
use crate::data::{DataSets, Dataset};

use super::digest::WeightStats;
use super::epochs::{EpochRow, observed_error, read_epochs, read_finished_epochs};
use super::manifest::{Manifest, RunState, config_sha256, read_manifest};
use super::outputs::load_final_model;
use super::spec::{build_network, schedule_of};
use super::train::{EvalBuffers, test_stats};
use super::{RunOutcome, Status};

/// Where a run starts.
pub(crate) enum Start {
    /// From scratch.
    Fresh,
    /// From its checkpoint, with the `epochs.csv` rows up to the checkpoint's epoch.
    Resume(Box<Checkpoint>, Vec<EpochRow>),
    /// Not at all: it has finished (its manifest).
    Done(Box<Manifest>),
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
/// `out` must have been made with its run's config (see `check_same_config`), so a
/// resume with other options is refused as such rather than failing to find the data;
/// and `out` must hold no run directory outside the plan, and record the same plan
/// ([`crate::outdir::check_same_plan`]).
pub fn check_resumable(plan: &Plan, out: &Path) -> Result<()> {
    for spec in &plan.runs {
        let dir = out.join(&spec.name);
        if let Some(m) = read_manifest(&dir)? {
            let path = dir.join("manifest.json");
            check_same_config(spec, &m.identity.config, &path)?;
        }
    }
    crate::outdir::check_same_plan(out, plan, &crate::outdir::survey(out)?)
}

/// Before `--resume` trains anything: every run of `plan` can continue from what its
/// directory in `out` holds, with the data loaded now (everything `run_one` would
/// check when the run's turn comes, without writing anything), so that a refusal never
/// comes after other runs have trained.
pub fn check_resume_plan(
    plan: &Plan,
    runs: &[&RunSpec],
    data: &DataSets,
    out: &Path,
) -> Result<()> {
    check_resumable(plan, out)?;
    for &spec in runs {
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
pub(crate) fn decide_start(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    resume: bool,
) -> Result<Start> {
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
        check_same_config(spec, &m.identity.config, &path)?;
        let recorded_files = m.data_sha256();
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
        if m.results.status.is_finished() && run_dir.join("model.safetensors").is_file() {
            return Ok(Start::Done(Box::new(m.clone())));
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
pub(crate) fn replay_schedule(
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

/// Remove `path` if it exists.
pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// The outcome of a finished run, rebuilt from its files: rows from `epochs.csv`, the
/// test statistics and weight statistics from `model.safetensors` (whose digest must
/// be the manifest's `final_digest`).
pub(crate) fn finished_outcome(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    manifest: &Manifest,
) -> Result<RunOutcome> {
    let c = &spec.config;
    let rows = read_finished_epochs(&run_dir.join("epochs.csv"))?;
    let (net, digest) = load_finished_model(spec, dataset, run_dir, manifest)?;
    let mut ws = Workspace::new(net.architecture(), c.data.eval_batch);
    let mut bufs = EvalBuffers::default();
    let test = test_stats(
        &net,
        &mut ws,
        dataset,
        c.data.eval_batch,
        &c.reg.reported_penalty(c.batch_size),
        &mut bufs,
    )?;
    let WeightStats {
        frac_small: small_weights,
        l2_norm: weight_norm,
    } = WeightStats::of(&net);
    let status = match manifest.results.status {
        RunState::Diverged => Status::Diverged,
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
        seconds: manifest.timing.seconds.unwrap_or(0.0),
    })
}

/// The final model of a finished run and its digest, which must be the manifest's
/// `final_digest`.
fn load_finished_model(
    spec: &RunSpec,
    dataset: &Dataset,
    run_dir: &Path,
    manifest: &Manifest,
) -> Result<(Mlp, String)> {
    let arch = build_network(
        &spec.config,
        dataset.input_dim(),
        dataset.num_classes as usize,
    )?;
    load_final_model(run_dir, manifest, Some(arch.architecture()))
}

/// Write the run's initial weights to `init_path` (when `write`); when resuming, check
/// that the file there holds them instead. The file's bytes are held only while this
/// runs.
pub(crate) fn write_or_check_init(
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
