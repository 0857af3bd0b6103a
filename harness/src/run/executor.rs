//! The job scheduler of `regulab run`: the selected runs of a plan on `jobs` worker
//! threads, each with its own rayon pool of `threads` threads.
//!
//! Why a module, and why a selection: the plan says what the runs are; which of them
//! this command executes is a separate argument ([`Selection`]), so that a sweep can be
//! cut into shards that run apart and are merged afterwards by
//! [`super::outputs::write_outputs`], which reads only the directories. How runs are
//! spread over threads must not change a bit of any result; the argument is short and
//! lives here, next to the loop it is about.
//!
//! Cores are not left idle at the end of a plan: a worker that finds no run left lends
//! its threads to the runs still going ([`Spare`]), and each of them trains its next
//! epochs in a pool that much larger. The last run of a study, alone on the machine,
//! then uses every core. And the workers take the runs longest first ([`work`]), so
//! that the runs left at the end are short ones.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};

use crate::config::{Plan, RunSpec};
use crate::data::DataSets;
use crate::data::load::data_key;

use super::preflight::{check_plan, check_recordable};
use super::resume::check_resume_plan;
use super::train::run_one;
use super::{RunOptions, RunOutcome};

/// Which runs of a plan a command executes: indices into `plan.runs`, in order, each
/// once; and whether the output directory is shared with other commands executing
/// other runs of the plan ([`Selection::shard`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection(Vec<usize>, Sharing);

/// Whether the output directory is this command's alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sharing {
    /// Owned exclusively: stale temporary files in it are removed, `plan.json` written.
    Owned,
    /// Shared with other shards: nothing outside the selected runs' directories is
    /// touched except `plan.json`, written only when absent.
    Shared,
}

impl Selection {
    /// Every run of `plan`.
    pub fn all(plan: &Plan) -> Selection {
        Selection((0..plan.runs.len()).collect(), Sharing::Owned)
    }

    /// Shard `index` of `count` of `plan`: the runs whose index `i` in the plan has
    /// `i mod count = index`, into a directory other shards write at the same time.
    pub fn shard(plan: &Plan, index: usize, count: usize) -> Result<Selection> {
        if count == 0 || index >= count {
            bail!("shard {index}/{count}: expected 0 <= I < N");
        }
        Ok(Selection(
            (index..plan.runs.len()).step_by(count).collect(),
            Sharing::Shared,
        ))
    }

    /// The indices of the selected runs in the plan.
    pub fn indices(&self) -> &[usize] {
        &self.0
    }

    /// Runs `indices` of `plan`: each must be a run of the plan, given once, in
    /// increasing order.
    pub fn of(plan: &Plan, indices: Vec<usize>) -> Result<Selection> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= plan.runs.len()) {
            bail!(
                "run index {bad}: the plan of {} has {} runs",
                plan.origin,
                plan.runs.len()
            );
        }
        if indices.windows(2).any(|w| w[0] >= w[1]) {
            bail!("run indices must be increasing and distinct: {indices:?}");
        }
        Ok(Selection(indices, Sharing::Owned))
    }

    /// The selected runs of `plan`, in order.
    pub fn runs<'p>(&self, plan: &'p Plan) -> Vec<&'p RunSpec> {
        self.0.iter().map(|&i| &plan.runs[i]).collect()
    }

    /// `plan` with the selected runs only: what this command loads data for and checks
    /// (a shard neither needs nor loads the data of other shards' runs, so a bad data
    /// path in one run fails only the task that trains it).
    pub fn plan(&self, plan: &Plan) -> Plan {
        Plan {
            name: plan.name.clone(),
            origin: plan.origin.clone(),
            runs: self.runs(plan).into_iter().cloned().collect(),
            seeds: plan.seeds,
            reference: plan.reference.clone(),
        }
    }
}

/// Threads of workers that found no run left, lent to the runs still going: a run takes
/// its share (the spare threads over the runs in progress) at the start of each epoch
/// ([`super::train`]). Only the pool size changes, and no kernel's bits depend on it.
#[derive(Debug, Default)]
pub(crate) struct Spare {
    threads: AtomicUsize,
    running: AtomicUsize,
}

impl Spare {
    /// The pool size a run of `own` threads may train in now: `own` and its share of
    /// the spare threads.
    pub(crate) fn share(&self, own: usize) -> usize {
        let running = self.running.load(Ordering::Relaxed).max(1);
        own + self.threads.load(Ordering::Relaxed) / running
    }
}

/// A run's expected work, for the order in which the workers take the runs: epochs
/// times the examples an epoch runs through the network (the training pool about
/// three times, forward and backward, then the pool and the validation split
/// evaluated) times the weights. Only the order of execution depends on it.
fn work(spec: &RunSpec, data: &DataSets) -> f64 {
    let c = &spec.config;
    let Some(dataset) = data.get(&data_key(&c.data)) else {
        return 0.0;
    };
    let total = dataset.train.len();
    let pool = c
        .data
        .train_examples
        .unwrap_or_else(|| total.saturating_sub(c.data.validation));
    let mut widths = vec![dataset.input_dim()];
    widths.extend(&c.model.hidden);
    widths.push(dataset.num_classes as usize);
    let weights: f64 = widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum();
    c.epochs as f64 * (4 * pool + c.data.validation) as f64 * weights
}

/// The positions of `runs` in the order the workers take them: most [`work`] first,
/// in plan order among equals.
fn longest_first(runs: &[&RunSpec], data: &DataSets) -> Vec<usize> {
    let work: Vec<f64> = runs.iter().map(|r| work(r, data)).collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    // a stable sort: plan order among equals
    order.sort_by(|&a, &b| work[b].total_cmp(&work[a]));
    order
}

/// Execute the runs `selection` of `plan` (concurrently, `opts.jobs` at a time, longest
/// first) into their directories in `opts.out`; their outcomes, in selection order.
///
/// Before anything is trained: the data paths ([`check_recordable`]), every selected
/// run against its data and the memory available ([`check_plan`]); with
/// `opts.resume`, the plan against the directory and each selected run against what its
/// directory holds ([`check_resume_plan`]); then `plan.json` (the whole plan) is
/// written (for a [`Selection::shard`], only when absent, and stale temporary files
/// are left: other shards may be writing). Owning `opts.out` ([`crate::lock`]) and
/// refusing to replace results ([`crate::outdir`]) is the caller's part, and so are the
/// outputs
/// ([`super::outputs::write_outputs`]).
pub fn execute_runs(
    plan: &Plan,
    selection: &Selection,
    data: &DataSets,
    opts: &RunOptions,
) -> Result<Vec<RunOutcome>> {
    let runs = selection.runs(plan);
    check_recordable(data)?;
    check_plan(&selection.plan(plan), data, opts)?;
    if opts.resume {
        check_resume_plan(plan, &runs, data, &opts.out)?;
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating output directory {}", opts.out.display()))?;
    match selection.1 {
        Sharing::Owned => {
            crate::outdir::remove_stale_temp_files(&opts.out)?;
            crate::outdir::PlanFile::of(plan).write(&opts.out)?;
        }
        Sharing::Shared => {
            let planned = crate::outdir::PlanFile::of(plan);
            if planned.write_new(&opts.out)?.runs != planned.runs {
                bail!(
                    "{}: the plan of another config",
                    opts.out.join(crate::outdir::PLAN_FILE).display()
                );
            }
        }
    }
    let next = AtomicUsize::new(0);
    let order = longest_first(&runs, data);
    let spare = Spare::default();
    let results: Vec<Mutex<Option<Result<RunOutcome>>>> =
        runs.iter().map(|_| Mutex::new(None)).collect();
    // Reproducibility: a run's bits depend only on its config and data, never on which
    // worker takes it, in what order, or how many threads its pool has (every kernel
    // gives the same bits for any pool size); each result goes to its run's slot.
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..opts.jobs.min(runs.len()).max(1) {
            handles.push(scope.spawn(|| -> Result<()> {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(opts.threads)
                    .build()?;
                loop {
                    let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        // nothing left for this worker: its threads go to the others
                        spare.threads.fetch_add(opts.threads, Ordering::Relaxed);
                        return Ok(());
                    };
                    let spec = runs[i];
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
                    spare.running.fetch_add(1, Ordering::Relaxed);
                    let r = pool.install(|| run_one(spec, dataset, &dir, opts, Some(&spare)));
                    spare.running.fetch_sub(1, Ordering::Relaxed);
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
    let mut outcomes = Vec::with_capacity(runs.len());
    for (spec, r) in runs.iter().zip(results) {
        let r = r
            .into_inner()
            .expect("no poisoned lock")
            .ok_or_else(|| anyhow!("run `{}` was not executed", spec.name))?;
        outcomes.push(r.with_context(|| format!("run `{}`", spec.name))?);
    }
    Ok(outcomes)
}
