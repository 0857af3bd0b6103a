//! Sweeps on a Slurm cluster: `regulab slurm` writes two job scripts and may submit them.
//!
//! A sweep of `n` runs becomes a job array (`DIR/slurm/sweep.sbatch`) of
//! `tasks = ceil(n / R)` tasks for `R` runs per task. Task `t` trains the runs whose
//! index `i` in the plan (the order of `DIR/plan.json`: experiments in the config's
//! order, each one's grid expanded with the last key varying fastest) satisfies
//! `i mod tasks = t`, through `regulab run --shard slurm/<tasks>`. That rule gives every
//! task `floor(n / tasks)` or `ceil(n / tasks)` runs, at most `R`, and it depends only on
//! the task id and the task count written into the script, not on the array's shape at
//! run time: `sbatch --array=3,5 sweep.sbatch` reruns exactly tasks 3 and 5.
//!
//! Every task runs with `--resume`: a task that is requeued (preemption, node failure,
//! `scontrol requeue`, or the script itself when the time limit nears) or submitted
//! again continues its runs from their last completed epoch and skips the finished
//! ones, so the final files are those of one uninterrupted run.
//!
//! `DIR/slurm/merge.sbatch` runs `regulab merge DIR` once the array has ended. It is
//! submitted with `--dependency=afterany:<array>`, not `afterok`: with `afterok` a single
//! failed task leaves the merge job pending for ever (DependencyNeverSatisfied) and
//! nobody learns which task failed; with `afterany` the merge job always runs, and
//! either writes `summary.csv`, the figures and `report.html`, or fails naming the runs
//! that are missing and the log of the task that should have trained them.
//!
//! [`script`] writes the text (pure functions, tested against a snapshot); [`submit`]
//! calls `sbatch`.

pub mod script;
pub mod submit;

pub use script::{Resources, Sweep};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::Plan;
use crate::outdir;

/// The scripts `regulab slurm` wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// `DIR/slurm/sweep.sbatch`.
    pub sweep: PathBuf,
    /// `DIR/slurm/merge.sbatch`.
    pub merge: PathBuf,
    /// What `--overwrite` removed first, as it prints it.
    pub removed: Option<String>,
}

/// Slurm's default `MaxArraySize` is 1001: task ids 0 to 1000.
pub const DEFAULT_MAX_ARRAY_TASKS: u32 = 1001;

/// Own `sweep.out` (created if needed) like `regulab run` does ([`outdir::claim`]:
/// results there are refused unless `mode` says resume or overwrite, and must then be
/// `plan`'s), write its `plan.json` (the plan every shard checks itself against) and
/// both scripts, and release the directory for the tasks.
pub fn write_scripts(sweep: &Sweep, plan: &Plan, mode: outdir::Mode) -> Result<Written> {
    sweep.check()?;
    let out = &sweep.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating output directory {}", out.display()))?;
    let owner = outdir::claim(out, plan, mode)?;
    let removed = if mode == outdir::Mode::Overwrite && owner.survey.holds_results() {
        Some(outdir::remove_results(out, &owner.survey)?.describe(out))
    } else {
        None
    };
    outdir::PlanFile::of(plan).write(out)?;
    let dir = out.join(script::SLURM_DIR);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let write = |name: &str, text: String| -> Result<PathBuf> {
        let path = dir.join(name);
        crate::atomic::write(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let written = Written {
        sweep: write(script::SWEEP_SCRIPT, script::sweep_script(sweep))?,
        merge: write(script::MERGE_SCRIPT, script::merge_script(sweep))?,
        removed,
    };
    drop(owner);
    Ok(written)
}

/// `path` made absolute against the working directory (not resolving symbolic links,
/// which on a cluster may be how a shared file system is reached).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("{}: cannot make it absolute", path.display()))
}
