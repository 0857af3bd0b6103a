//! The job scheduler of `regulab run`: the runs of a plan on `jobs` worker threads,
//! each with its own rayon pool of `threads` threads.
//!
//! Why a module: how runs are spread over threads must not change a bit of any result;
//! the argument is short and lives here, next to the loop it is about.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};

use crate::config::Plan;
use crate::data::DataSets;
use crate::data::load::data_key;

use super::outputs::summary_csv;
use super::preflight::{check_plan, check_recordable};
use super::resume::check_resume_plan;
use super::train::run_one;
use super::{RunOptions, RunOutcome};

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
                    let r = pool.install(|| run_one(spec, dataset, &dir, opts, &multi));
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
