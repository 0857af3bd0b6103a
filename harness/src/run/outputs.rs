//! The outputs of a plan beyond its run directories: `summary.csv` (one row per run),
//! `aggregate.csv` (one row per configuration: statistics over its seeds and the
//! paired comparison with the reference, [`crate::aggregate`]), the figures and
//! `report.html`, and the comparison table printed at the end of `regulab run`.
//!
//! Why a module, and why from the directories: [`write_outputs`] builds everything
//! from `plan.json` and the run directories only, never from training's memory, so the
//! same function serves `regulab run` at its end, a resumed run whose runs finished in
//! earlier commands, and runs executed apart (shards of a sweep, merged later); and
//! `verify` checks a sweep's summary against its reruns with the same row function
//! ([`summary_row`] of a [`RunSummary`] read back from the rerun's directory).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use regulab_model::{Architecture, Mlp};

use crate::aggregate::{self, Aggregate, SeedRun};
use crate::config::{RunSpec, configuration_name, flatten};
use crate::outdir::{AGGREGATE_FILE, PlanFile, SUMMARY_FILE};
use crate::plot::{PlotError, PlotOptions, PlotOutput};

use super::digest::{WeightStats, digest};
use super::epochs::{EpochRow, read_finished_epochs};
use super::manifest::{Manifest, RunState, config_sha256, read_manifest};
use super::{RunOutcome, Status};

/// One finished run as its directory records it: what a row of `summary.csv` shows.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run (its grid values in the manifest's key order).
    pub spec: RunSpec,
    /// How it ended.
    pub status: Status,
    /// Every epoch row.
    pub rows: Vec<EpochRow>,
    /// Test accuracy of the final model (absent without a test file).
    pub test_accuracy: Option<f64>,
    /// Test cost of the final model.
    pub test_cost: Option<f64>,
    /// Statistics of the final weights.
    pub weights: WeightStats,
    /// SHA-256 of the final parameters ([`digest`]).
    pub digest: String,
    /// Wall-clock seconds of the run's last execution.
    pub seconds: f64,
}

impl RunSummary {
    /// Read the finished run in `run_dir`: its manifest, `epochs.csv` (rows for epochs
    /// 0, 1, 2, ...) and `model.safetensors`, whose digest must be the manifest's.
    pub fn read(run_dir: &Path) -> Result<RunSummary> {
        let manifest = read_manifest(run_dir)?.ok_or_else(|| {
            anyhow!(
                "{}: no manifest.json (the run has not started)",
                run_dir.display()
            )
        })?;
        let status = match manifest.results.status {
            RunState::Completed => Status::Completed,
            RunState::Diverged => Status::Diverged,
            RunState::Running => bail!(
                "{}: the run has not finished (status running)",
                run_dir.join("manifest.json").display()
            ),
        };
        let rows = read_finished_epochs(&run_dir.join("epochs.csv"))?;
        let (net, digest) = load_final_model(run_dir, &manifest, None)?;
        let id = manifest.identity;
        Ok(RunSummary {
            spec: RunSpec {
                experiment: id.experiment,
                name: id.run,
                grid: id.grid.into_iter().collect(),
                config: id.config,
            },
            status,
            rows,
            test_accuracy: manifest.results.test_accuracy,
            test_cost: manifest.results.test_cost,
            weights: WeightStats::of(&net),
            digest,
            seconds: manifest.timing.seconds.unwrap_or(0.0),
        })
    }
}

/// The final model of the finished run in `run_dir` (of architecture `expected`, when
/// given) and its digest, which must be the manifest's `final_digest`.
pub(crate) fn load_final_model(
    run_dir: &Path,
    manifest: &Manifest,
    expected: Option<&Architecture>,
) -> Result<(Mlp, String)> {
    let model_path = run_dir.join("model.safetensors");
    let net = match expected {
        Some(arch) => regulab_model::io::load_expecting(&model_path, arch),
        None => regulab_model::io::load(&model_path),
    }
    .with_context(|| format!("reading {}", model_path.display()))?;
    let digest = digest(&net);
    if manifest.results.final_digest.as_deref() != Some(digest.as_str()) {
        bail!(
            "{}: its weights do not have the manifest's final_digest",
            model_path.display()
        );
    }
    Ok((net, digest))
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

/// The columns of `summary.csv` for a plan whose grids vary `grid_keys` (in the plan's
/// axis order): run, experiment, seed (the run's resolved seed: runs of two
/// configurations with the same seed are paired), the hyperparameters
/// (`SUMMARY_PARAMS` and any other grid key but `seed`), the results.
pub fn summary_header(grid_keys: &[String]) -> Vec<String> {
    let mut params: Vec<String> = SUMMARY_PARAMS.iter().map(|s| s.to_string()).collect();
    for k in grid_keys {
        if !params.contains(k) && k != "seed" {
            params.push(k.clone());
        }
    }
    let mut header: Vec<String> = vec!["run".into(), "experiment".into(), "seed".into()];
    header.extend(params);
    header.extend(SUMMARY_RESULTS.iter().map(|s| s.to_string()));
    header
}

/// The best validation accuracy of `rows` and its (first) epoch.
fn best_valid(rows: &[EpochRow]) -> Option<(f64, u32)> {
    rows.iter()
        .filter_map(|r| r.valid_acc.map(|a| (a, r.epoch)))
        .fold(None, |best: Option<(f64, u32)>, (a, e)| match best {
            Some((b, _)) if b >= a => best,
            _ => Some((a, e)),
        })
}

/// The row of `o` in a `summary.csv` with columns `header` (a column that is neither a
/// result nor a config key is empty).
pub fn summary_row(o: &RunSummary, header: &[String]) -> Vec<String> {
    let flat = flatten(&o.spec.config);
    let last = o.rows.last().expect("epoch 0 always exists");
    let best = best_valid(&o.rows);
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    header
        .iter()
        .map(|col| match col.as_str() {
            "run" => o.spec.name.clone(),
            "experiment" => o.spec.experiment.clone(),
            "seed" => o.spec.config.seed.to_string(),
            "final_train_acc" => last.train_acc.to_string(),
            "final_train_cost" => last.train_cost.to_string(),
            "final_valid_acc" => opt(last.valid_acc),
            "final_valid_cost" => opt(last.valid_cost),
            "test_acc" => opt(o.test_accuracy),
            "test_cost" => opt(o.test_cost),
            "best_valid_acc" => opt(best.map(|b| b.0)),
            "best_valid_epoch" => best.map(|b| b.1.to_string()).unwrap_or_default(),
            "frac_small_weights" => o.weights.frac_small.to_string(),
            "weight_l2_norm" => o.weights.l2_norm.to_string(),
            "epochs_trained" => last.epoch.to_string(),
            "status" => o.status.as_str().to_string(),
            "seconds" => format!("{:.3}", o.seconds),
            param => flat.get(param).cloned().unwrap_or_default(),
        })
        .collect()
}

/// `summary.csv` as bytes: one row per run of `runs`, in their order, for a plan whose
/// grids vary `grid_keys`.
pub fn summary_csv(grid_keys: &[String], runs: &[RunSummary]) -> Result<Vec<u8>> {
    let header = summary_header(grid_keys);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for o in runs {
        w.write_record(summary_row(o, &header))?;
    }
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

/// The hyperparameter columns of `aggregate.csv` for a plan whose grids vary
/// `grid_keys`: those keys but `seed` (the values that tell its configurations apart).
pub fn aggregate_params(grid_keys: &[String]) -> Vec<String> {
    grid_keys.iter().filter(|k| *k != "seed").cloned().collect()
}

/// `o` as the aggregate sees it: its configuration (named with its grid values in the
/// plan's axis order `grid_keys`, as its run name is: the manifest keeps them sorted by
/// key), seed, the values of [`aggregate::METRICS`] (the `summary.csv` columns of the
/// same names) and the values of `params` (config keys).
pub fn seed_run(o: &RunSummary, grid_keys: &[String], params: &[String]) -> SeedRun {
    let flat = flatten(&o.spec.config);
    let last = o.rows.last().expect("epoch 0 always exists");
    let mut grid = o.spec.grid.clone();
    grid.sort_by_key(|(k, _)| grid_keys.iter().position(|g| g == k).unwrap_or(usize::MAX));
    SeedRun {
        config: configuration_name(&o.spec.experiment, &grid),
        experiment: o.spec.experiment.clone(),
        seed: o.spec.config.seed,
        diverged: o.status == Status::Diverged,
        values: [
            Some(last.train_acc),
            last.valid_acc,
            o.test_accuracy,
            best_valid(&o.rows).map(|b| b.0),
        ],
        params: params
            .iter()
            .map(|p| flat.get(p).cloned().unwrap_or_default())
            .collect(),
    }
}

/// The aggregate of `runs` (every run of a plan whose grids vary `grid_keys`), compared
/// with `reference` (else `baseline` when present).
pub fn aggregate_runs(
    grid_keys: &[String],
    runs: &[RunSummary],
    reference: Option<&str>,
) -> Aggregate {
    let params = aggregate_params(grid_keys);
    let seed_runs: Vec<SeedRun> = runs
        .iter()
        .map(|o| seed_run(o, grid_keys, &params))
        .collect();
    aggregate::aggregate(&seed_runs, &params, reference)
}

/// The aggregate of output directory `dir` (as [`write_outputs`] computes it), when
/// `dir` has a `plan.json`; an error when a run of the plan has not finished.
pub fn aggregate_of_dir(dir: &Path) -> Result<Option<Aggregate>> {
    let Some(plan) = PlanFile::read(dir)? else {
        return Ok(None);
    };
    let (grid_keys, runs) = read_planned_runs(dir, &plan, &|_| true)?;
    Ok(Some(aggregate_runs(
        &grid_keys,
        &runs,
        plan.reference.as_deref(),
    )))
}

/// Every run of `plan` from its directory under `out` (finished, with the planned
/// name and config) whose name `include` accepts, and the plan's grid keys.
fn read_planned_runs(
    out: &Path,
    plan: &PlanFile,
    include: &dyn Fn(&str) -> bool,
) -> Result<(Vec<String>, Vec<RunSummary>)> {
    let mut runs = Vec::with_capacity(plan.runs.len());
    for planned in plan.runs.iter().filter(|p| include(&p.name)) {
        let dir = out.join(&planned.name);
        let run = RunSummary::read(&dir).with_context(|| format!("run `{}`", planned.name))?;
        if run.spec.name != planned.name || config_sha256(&run.spec.config) != planned.config_sha256
        {
            bail!(
                "{}: not the run `{}` that {} plans (another name or config)",
                dir.join("manifest.json").display(),
                planned.name,
                out.join(crate::outdir::PLAN_FILE).display()
            );
        }
        runs.push(run);
    }
    let grid_keys = plan.grid_keys.clone().unwrap_or_else(|| {
        // a plan.json written before it recorded them: the runs' keys in plan order
        let mut keys: Vec<String> = Vec::new();
        for r in &runs {
            for (k, _) in &r.spec.grid {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    });
    Ok((grid_keys, runs))
}

/// What [`write_outputs`] wrote.
#[derive(Debug)]
pub struct Outputs {
    /// `summary.csv`.
    pub summary: PathBuf,
    /// `aggregate.csv`.
    pub aggregate_file: PathBuf,
    /// What it holds.
    pub aggregate: Aggregate,
    /// Every run of the plan, in plan order.
    pub runs: Vec<RunSummary>,
    /// The figures and report, when asked for: drawing them is allowed to fail (the
    /// caller reports it) without losing the summary.
    pub figures: Option<Result<PlotOutput, PlotError>>,
}

/// Build the outputs of output directory `out` from its `plan.json` and run
/// directories only: `summary.csv` (every run of the plan, in plan order; each must
/// have finished, with the config the plan records), `aggregate.csv` (its
/// configurations, compared with the plan's `reference`), then, with `plot`, the
/// figures and `report.html` ([`crate::plot::plot_dir`]). The caller owns `out`.
pub fn write_outputs(out: &Path, plot: Option<&PlotOptions<'_>>) -> Result<Outputs> {
    write_outputs_of(out, plot, &|_| true)
}

/// [`write_outputs`] of the planned runs whose names `include` accepts only (the
/// finished runs of a partial merge, `regulab merge --partial`); the aggregate is over
/// those runs, and the figures leave out the runs without results
/// ([`crate::plot::plot_dir`]).
pub fn write_outputs_of(
    out: &Path,
    plot: Option<&PlotOptions<'_>>,
    include: &dyn Fn(&str) -> bool,
) -> Result<Outputs> {
    let plan = PlanFile::read(out)?.ok_or_else(|| {
        anyhow!(
            "{}: no {} (not an output directory of `regulab run`)",
            out.display(),
            crate::outdir::PLAN_FILE
        )
    })?;
    let (grid_keys, runs) = read_planned_runs(out, &plan, include)?;
    let summary = out.join(SUMMARY_FILE);
    crate::atomic::write(&summary, &summary_csv(&grid_keys, &runs)?)
        .with_context(|| format!("writing {}", summary.display()))?;
    let aggregate = aggregate_runs(&grid_keys, &runs, plan.reference.as_deref());
    let aggregate_file = out.join(AGGREGATE_FILE);
    crate::atomic::write(&aggregate_file, &aggregate::aggregate_csv(&aggregate)?)
        .with_context(|| format!("writing {}", aggregate_file.display()))?;
    let figures = plot.map(|opts| crate::plot::plot_dir(out, opts));
    Ok(Outputs {
        summary,
        aggregate_file,
        aggregate,
        runs,
        figures,
    })
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
