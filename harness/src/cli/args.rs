//! The parse level of the command line: the words the user typed, as clap reads them.
//! Nothing here is checked beyond its type; [`super::options`] resolves each command's
//! arguments into its typed options.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use regulab::plot;

#[derive(Parser)]
#[command(
    name = "regulab",
    version,
    about = "Seeded, bit-reproducible MLP regularisation studies (L1, L2, dropout) on the CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train every run of an experiment config; write CSV, models and manifests.
    Run {
        /// The experiment config (TOML), e.g. experiments/lab4.toml.
        config: PathBuf,
        /// Output directory [default: runs/<config name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Directory holding the dataset's IDX files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Threads per run [default: cores / jobs].
        #[arg(long)]
        threads: Option<usize>,
        /// Runs trained at once [default: min(cores, runs)].
        #[arg(long)]
        jobs: Option<usize>,
        /// Override a config value for every run, e.g. --set reg.l2=1e-4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Print nothing but errors and the final table.
        #[arg(long)]
        quiet: bool,
        /// Do not download a missing MNIST / Fashion-MNIST.
        #[arg(long)]
        no_fetch: bool,
        /// Do not draw the figures and DIR/report.html after training (`regulab plot`).
        #[arg(long)]
        no_plot: bool,
        /// Continue the runs in the output directory: finished runs are kept, interrupted
        /// ones go on from their last completed epoch, runs not started yet start afresh.
        /// The whole plan is checked against the directory before anything is trained.
        #[arg(long)]
        resume: bool,
        /// Replace the results in the output directory: first remove regulab's files
        /// there (summary.csv, aggregate.csv, report.html, plan.json, the figures in
        /// plots/, the files of its run directories), nothing else, and say what was
        /// removed.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Train only the runs whose index in the plan is I modulo N (0 <= I < N), into
        /// an output directory other shards share; no summary, figures or report (see
        /// `regulab merge`). `slurm`: I and N of this Slurm array task
        /// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT or MIN/MAX); `slurm/N`: N given.
        #[arg(long, value_name = "I/N|slurm|slurm/N", conflicts_with = "overwrite")]
        shard: Option<regulab::shard::ShardArg>,
    },
    /// Draw the figures of a run or sweep directory into DIR/plots/ and write DIR/report.html.
    Plot {
        /// A directory written by `regulab run` (a sweep, or one run's directory).
        dir: PathBuf,
        /// Format of the figure files (the report always embeds SVG).
        #[arg(long, default_value = "svg", value_parser = parse_format)]
        format: plot::Format,
        /// Directory holding the dataset's IDX files (for the input-dropout grid).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Training image shown in the input-dropout grid.
        #[arg(long, default_value_t = 0)]
        index: usize,
    },
    /// Draw the input-dropout figure: one training image and its corruptions by input
    /// dropout (keep p = 0.9, 0.7, 0.5, 0.2, 0.1) with the project's dropout kernel, as a
    /// 2x3 grid (SVG or PNG).
    // `corrupt`, its former name, stays accepted (a hidden alias).
    #[command(alias = "corrupt")]
    DropoutFigure {
        /// mnist, fashion-mnist, or a directory holding the IDX files.
        #[arg(long, default_value = "mnist")]
        dataset: String,
        /// Directory holding the dataset's IDX files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Index of the image in the training file.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Dropout seed (the lab study's seed unless given).
        #[arg(long, default_value_t = 20261125)]
        seed: u64,
        /// Output file; .png for PNG, otherwise SVG.
        #[arg(long)]
        out: PathBuf,
    },
    /// Download a dataset's four IDX files, verifying their SHA-256.
    Fetch {
        /// mnist or fashion-mnist.
        dataset: String,
        /// Where to put the files [default: $REGULAB_DATA/<name> or data/<name>; for
        /// fashion-mnist, Debian's installed copy is used where it is].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Mirror base URL to try instead of the defaults (repeatable, tried in order).
        #[arg(long = "mirror")]
        mirrors: Vec<String>,
    },
    /// Rerun finished runs from their manifests and compare every output bit for bit
    /// (except timing). Exit 0: identical; 1: different; 2: usage or data error.
    Verify {
        /// A run directory (with manifest.json), or a sweep directory of them.
        run_dir: PathBuf,
        /// Directory holding the data files [default: the one in the manifest].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Threads of the rerun [default: all cores; any number gives the same bits].
        #[arg(long)]
        threads: Option<usize>,
        /// Keep the rerun's files in this directory [default: a temporary one].
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Write Slurm job scripts for a sweep (DIR/slurm/sweep.sbatch, a job array, and
    /// DIR/slurm/merge.sbatch), and with --submit submit them.
    Slurm {
        /// The experiment config (TOML).
        config: PathBuf,
        /// Output directory, on a file system every node sees [default: runs/<config name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Directory holding the dataset's IDX files, as the nodes see it.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Override a config value for every run (repeatable), as with `regulab run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Partition of the jobs [default: the cluster's].
        #[arg(long)]
        partition: Option<String>,
        /// Time limit of each task, e.g. 2:00:00 or 1-00:00 [default: the partition's].
        #[arg(long)]
        time: Option<String>,
        /// CPUs of each task; regulab trains with this many threads.
        #[arg(long, default_value_t = 1)]
        cpus_per_task: u32,
        /// Memory of each task, e.g. 4G [default: the partition's].
        #[arg(long)]
        mem: Option<String>,
        /// At most this many tasks at once [default: no limit].
        #[arg(long)]
        max_parallel: Option<u32>,
        /// Runs per array task: the array has ceil(runs / R) tasks.
        #[arg(long, default_value_t = 1)]
        runs_per_task: u32,
        /// The regulab binary the jobs run [default: this one].
        #[arg(long)]
        regulab: Option<PathBuf>,
        /// Submit both scripts with sbatch (the merge job after the array) and print the job ids.
        #[arg(long)]
        submit: bool,
        /// The output directory holds this sweep's results already: keep them (the
        /// tasks continue them).
        #[arg(long)]
        resume: bool,
        /// Remove regulab's results in the output directory first (as `regulab run --overwrite`).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
    },
    /// Build summary.csv, the figures and report.html of a sweep trained in shards
    /// (`regulab run --shard`, Slurm array tasks) from its run directories: the files one
    /// `regulab run` of the config writes. Refuses missing, unfinished or foreign runs.
    Merge {
        /// The sweep's output directory (with plan.json).
        dir: PathBuf,
        /// Merge the finished runs even when others are missing or unfinished (they are
        /// listed).
        #[arg(long)]
        partial: bool,
        /// Do not draw the figures and DIR/report.html.
        #[arg(long)]
        no_plot: bool,
        /// Directory holding the dataset's IDX files (for the input-dropout grid).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// `--format` of `regulab plot`.
fn parse_format(s: &str) -> Result<plot::Format, String> {
    s.parse()
}
