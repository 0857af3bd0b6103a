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
//!
//! # Modules
//!
//! One module per concept, so that each can change alone:
//!
//! * [`spec`]: the config mapped to the model's types (network, penalty, schedules);
//! * [`preflight`]: the checks of a whole plan before anything is trained;
//! * [`resume`]: where each run starts from what its directory holds;
//! * [`train`]: training one run and writing its directory;
//! * [`progress`]: what the user sees meanwhile;
//! * [`epochs`], [`manifest`]: the two files every run writes as it goes;
//! * [`digest`](mod@digest): the parameter digest and weight statistics;
//! * [`outputs`]: `summary.csv` and the comparison table;
//! * [`executor`]: the runs on `jobs` worker threads;
//! * [`clock`]: Unix time and its UTC text.
//!
//! Loading the data is [`crate::data::load`]'s.

pub mod clock;
pub mod digest;
pub mod epochs;
pub mod executor;
pub mod manifest;
pub mod outputs;
pub mod preflight;
pub mod progress;
pub mod resume;
pub mod spec;
pub mod train;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use regulab_model::EvalStats;
use serde::Serialize;

use crate::config::{Plan, RunSpec};
use crate::feedback::Feedback;

pub use crate::data::DataSets;
pub use crate::data::load::{
    data_key, load_dataset, load_dataset_from, load_datasets, release_unused, used_train_examples,
};
pub use clock::utc_string;
pub use digest::digest;
pub use epochs::{EpochRow, TIMING_COLUMNS, epochs_csv, read_epochs};
pub use executor::{Selection, execute_runs};
pub use manifest::{Manifest, config_sha256, read_manifest};
pub use outputs::{
    Outputs, RunSummary, SUMMARY_TIMING_COLUMN, comparison_table, summary_csv, summary_header,
    summary_row, write_outputs, write_outputs_of,
};
pub use preflight::{check_plan, check_recordable};
pub use resume::{check_resumable, check_resume_plan};
pub use spec::build_network;
pub use train::train_fresh;

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

impl From<Status> for manifest::RunState {
    fn from(s: Status) -> manifest::RunState {
        match s {
            Status::Completed => manifest::RunState::Completed,
            Status::Diverged => manifest::RunState::Diverged,
        }
    }
}

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

/// Execute every run of `plan` ([`execute_runs`]), then write `summary.csv` from the
/// directory ([`write_outputs`], without figures): what `regulab run` does, for
/// library callers and tests.
pub fn execute(plan: &Plan, data: &DataSets, opts: &RunOptions) -> Result<Vec<RunOutcome>> {
    let outcomes = execute_runs(plan, &Selection::all(plan), data, opts)?;
    write_outputs(&opts.out, None)?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load::split_spec;
    use crate::data::{Dataset, DatasetName, LabeledImages};
    use std::path::Path;
    use std::sync::Arc;

    /// A study of two runs with different seeds (so different pools) on 300 synthetic
    /// 4x4 training images, of which the runs read 2 x 40 + 100.
    fn small_study() -> (Plan, DataSets) {
        study_of(
            r#"
            [experiments.a]
            [experiments.b]
            seed = 2
            reg.l2 = 1e-3
        "#,
        )
    }

    /// [`small_study`]'s settings and data with the experiments `experiments` (TOML).
    fn study_of(experiments: &str) -> (Plan, DataSets) {
        let head = r#"
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
        "#;
        let text = format!("{head}{experiments}");
        let plan = crate::config::parse(&text, "small.toml", "small", &[]).unwrap();
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

    /// Options of a quiet, fresh execution into `dir/name`, `jobs` runs at a time.
    fn quiet(dir: &Path, name: &str, jobs: usize) -> RunOptions {
        RunOptions {
            out: dir.join(name),
            threads: 1,
            jobs,
            progress: Progress::Quiet,
            resume: false,
            halt_after_epoch: None,
        }
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
        let opts = |name: &str| quiet(dir.path(), name, 2);
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

    /// The runs of a plan executed apart (one selection each, as the shards of a sweep
    /// would be) and merged by `write_outputs` from the directory give the summary of
    /// one execution of the whole plan.
    #[test]
    fn runs_executed_apart_merge_into_the_same_summary() {
        let (plan, data) = small_study();
        let dir = tempfile::tempdir().unwrap();
        let opts = |name: &str| quiet(dir.path(), name, 1);
        let whole = opts("whole");
        execute(&plan, &data, &whole).unwrap();
        let apart = opts("apart");
        for (i, spec) in plan.runs.iter().enumerate() {
            let only = Selection::of(&plan, vec![i]).unwrap();
            let done = execute_runs(&plan, &only, &data, &apart).unwrap();
            assert_eq!(done.len(), 1);
            assert_eq!(done[0].spec.name, spec.name);
        }
        assert!(!apart.out.join("summary.csv").exists());
        let outputs = write_outputs(&apart.out, None).unwrap();
        assert!(outputs.figures.is_none());
        let names: Vec<&str> = outputs.runs.iter().map(|r| r.spec.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // every column but the last (seconds, a timing)
        let without_seconds = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| l.rsplit_once(',').unwrap().0.to_string())
                .collect()
        };
        let summary = without_seconds(&whole.out.join("summary.csv"));
        assert_eq!(summary.len(), 3);
        assert_eq!(summary, without_seconds(&outputs.summary));
        // a run of the plan missing from the directory is an error naming it
        std::fs::remove_dir_all(apart.out.join("b")).unwrap();
        let e = format!("{:#}", write_outputs(&apart.out, None).unwrap_err());
        assert!(e.contains("run `b`"), "{e}");
        // a selection holds runs of the plan, each once, in order
        assert!(Selection::of(&plan, vec![2]).is_err());
        assert!(Selection::of(&plan, vec![1, 0]).is_err());
        assert!(Selection::of(&plan, vec![0, 0]).is_err());
    }

    /// [`study_of`] with a run `short` of one epoch and a run `long` of `epochs`, in
    /// that order.
    fn short_and_long(epochs: usize) -> (Plan, DataSets) {
        study_of(&format!(
            "[experiments.short]\nepochs = 1\n[experiments.long]\nepochs = {epochs}\n"
        ))
    }

    /// The manifest of run `run` in `out`.
    fn manifest_of(out: &Path, run: &str) -> manifest::Manifest {
        manifest::read_manifest(&out.join(run)).unwrap().unwrap()
    }

    /// A worker with no run left lends its threads to the run still going, which trains
    /// its later epochs in a larger pool, and every run keeps its bits.
    #[test]
    fn idle_workers_lend_their_threads_and_the_bits_stay() {
        let (plan, data) = short_and_long(40);
        let dir = tempfile::tempdir().unwrap();
        let threads_max = |out: &Path, run: &str| manifest_of(out, run).environment.threads_max;
        let two = quiet(dir.path(), "two", 2);
        let a = execute(&plan, &data, &two).unwrap();
        // the short run ends after one epoch; its worker's thread goes to the long one
        assert_eq!(threads_max(&two.out, "short"), 1);
        assert_eq!(threads_max(&two.out, "long"), 2);
        let one = quiet(dir.path(), "one", 1);
        let b = execute(&plan, &data, &one).unwrap();
        assert_eq!(threads_max(&one.out, "long"), 1);
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.digest, b.digest, "{}", a.spec.name);
            assert_eq!(a.rows.len(), b.rows.len());
            for (x, y) in a.rows.iter().zip(&b.rows) {
                assert_eq!(x.train_cost.to_bits(), y.train_cost.to_bits());
                assert_eq!(
                    x.valid_cost.map(f64::to_bits),
                    y.valid_cost.map(f64::to_bits)
                );
            }
        }
    }

    /// The workers take the runs longest first; the outcomes and the summary keep the
    /// plan's order.
    #[test]
    fn runs_start_longest_first_and_outputs_keep_the_plan_order() {
        let (plan, data) = short_and_long(3);
        let dir = tempfile::tempdir().unwrap();
        let opts = quiet(dir.path(), "one", 1);
        let done = execute(&plan, &data, &opts).unwrap();
        let names: Vec<&str> = done.iter().map(|o| o.spec.name.as_str()).collect();
        assert_eq!(names, ["short", "long"]);
        let timing = |run: &str| manifest_of(&opts.out, run).timing;
        // one worker: the long run finished before the short one started
        let (short, long) = (timing("short"), timing("long"));
        assert!(
            long.finished_unix.unwrap() <= short.started_unix,
            "{long:?} {short:?}"
        );
        let summary = std::fs::read_to_string(opts.out.join("summary.csv")).unwrap();
        let rows: Vec<&str> = summary
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(rows, ["short", "long"]);
    }
}
