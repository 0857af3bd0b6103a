//! The high level of the command line: each command's arguments resolved into typed
//! options. `--set`s are parsed into TOML values, thread and job counts checked
//! against the limits, `--resume` / `--overwrite` turned into an [`outdir::Mode`],
//! `--quiet` and the terminal into a [`ProgressStyle`], and paths that must be UTF-8
//! checked, all before any file is read; a command's code never sees a raw flag.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use regulab::config;
use regulab::limits;
use regulab::outdir;
use regulab::plot;

use super::args::{self, Cli};

/// One command with its resolved options.
#[derive(Debug)]
pub enum Command {
    /// `regulab run`.
    Run(RunOptions),
    /// `regulab plot`.
    Plot(PlotOptions),
    /// `regulab dropout-figure`: one image and its input-dropout corruptions.
    DropoutFigure(DropoutFigureOptions),
    /// `regulab fetch`.
    Fetch(FetchOptions),
    /// `regulab verify`.
    Verify(VerifyOptions),
    /// `regulab slurm`: job scripts for a sweep.
    Slurm(SlurmOptions),
    /// `regulab merge`: the outputs of a sweep trained in shards.
    Merge(MergeOptions),
}

/// Options of `regulab merge`.
#[derive(Debug)]
pub struct MergeOptions {
    /// The sweep's output directory.
    pub dir: PathBuf,
    /// Merge the finished runs only, listing the others.
    pub partial: bool,
    /// Draw the figures and the report.
    pub plot: bool,
    /// Where the data is (for the input-dropout grid).
    pub data_dir: Option<PathBuf>,
}

/// How `regulab run` reports while it trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressStyle {
    /// Nothing but errors and the final table (`--quiet`).
    Quiet,
    /// One line per epoch on stderr (stderr is not a terminal).
    Lines,
    /// Progress bars (stderr is a terminal).
    Bars,
}

/// Options of `regulab run`.
#[derive(Debug)]
pub struct RunOptions {
    /// The experiment config.
    pub config: PathBuf,
    /// `--set` overrides, parsed.
    pub sets: Vec<(String, toml::Value)>,
    /// Output directory; `None`: `runs/<config name>`.
    pub out: Option<PathBuf>,
    /// Where the data is (a UTF-8 path: manifests record it).
    pub data_dir: Option<PathBuf>,
    /// Threads per run (checked against the limit); `None`: cores / jobs.
    pub threads: Option<usize>,
    /// Runs at once (checked against the limit); `None`: min(cores, runs).
    pub jobs: Option<usize>,
    /// What to do with results already in the output directory.
    pub mode: outdir::Mode,
    /// How to report progress.
    pub progress: ProgressStyle,
    /// Download a missing MNIST / Fashion-MNIST.
    pub fetch: bool,
    /// Draw the figures and the report after training.
    pub plot: bool,
    /// Train one shard of the plan only (`--shard`).
    pub shard: Option<regulab::shard::ShardArg>,
}

impl RunOptions {
    /// Whether `--resume` was given.
    pub fn resume(&self) -> bool {
        self.mode == outdir::Mode::Resume
    }
}

/// Options of `regulab plot`.
#[derive(Debug)]
pub struct PlotOptions {
    /// The run or sweep directory.
    pub dir: PathBuf,
    /// Figure file format.
    pub format: plot::Format,
    /// Where the data is (for the input-dropout grid).
    pub data_dir: Option<PathBuf>,
    /// Training image of the input-dropout grid.
    pub index: usize,
}

/// Options of `regulab dropout-figure` (alias `corrupt`).
#[derive(Debug)]
pub struct DropoutFigureOptions {
    /// `mnist`, `fashion-mnist`, or a directory with the IDX files.
    pub dataset: String,
    /// Where the data is.
    pub data_dir: Option<PathBuf>,
    /// Index of the training image.
    pub index: usize,
    /// Dropout seed.
    pub seed: u64,
    /// Output file (`.png`: PNG, else SVG).
    pub out: PathBuf,
}

/// Options of `regulab fetch`.
#[derive(Debug)]
pub struct FetchOptions {
    /// The dataset, one regulab can fetch.
    pub dataset: regulab::data::DatasetName,
    /// Where the files go.
    pub data_dir: Option<PathBuf>,
    /// Mirrors to try instead of the defaults.
    pub mirrors: Vec<String>,
}

/// Options of `regulab verify`.
#[derive(Debug)]
pub struct VerifyOptions {
    /// A run directory or a sweep directory.
    pub run_dir: PathBuf,
    /// What the reruns need.
    pub verify: regulab::verify::VerifyOptions,
}

/// Options of `regulab slurm`.
#[derive(Debug)]
pub struct SlurmOptions {
    /// The experiment config, absolute (the jobs read it).
    pub config: PathBuf,
    /// `--set` overrides as typed (they go into the scripts) ...
    pub set_args: Vec<String>,
    /// ... and parsed.
    pub sets: Vec<(String, toml::Value)>,
    /// Output directory (absolute); `None`: `runs/<config name>` made absolute.
    pub out: Option<PathBuf>,
    /// Where the data is, absolute, as the nodes see it.
    pub data_dir: Option<PathBuf>,
    /// The regulab binary the jobs run, absolute.
    pub regulab: PathBuf,
    /// What each task asks of the cluster.
    pub resources: regulab::slurm::Resources,
    /// Submit the scripts with sbatch.
    pub submit: bool,
    /// What to do with results already in the output directory.
    pub mode: outdir::Mode,
}

impl Command {
    /// Parse the process's arguments (clap exits with its usage message on a parse
    /// error) and resolve them.
    pub fn from_env() -> Result<Command> {
        use clap::Parser;
        Command::resolve(Cli::parse().command)
    }

    /// Resolve parse-level arguments into typed options; `Err` names the argument.
    pub fn resolve(command: args::Command) -> Result<Command> {
        Ok(match command {
            args::Command::Run {
                config,
                out,
                data_dir,
                threads,
                jobs,
                sets,
                quiet,
                no_fetch,
                no_plot,
                resume,
                overwrite,
                shard,
            } => {
                let sets = sets
                    .iter()
                    .map(|s| config::parse_set(s))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(t) = threads {
                    limits::check_threads("--threads", t).map_err(anyhow::Error::msg)?;
                }
                if let Some(j) = jobs {
                    limits::check_parallelism(j, 1, 1).map_err(anyhow::Error::msg)?;
                }
                if let Some(d) = &data_dir
                    && d.to_str().is_none()
                {
                    anyhow::bail!(
                        "--data-dir {}: the path is not valid UTF-8; regulab records the data's \
                         paths in each run's manifest.json (JSON text): rename the directory or \
                         give a UTF-8 path to it (e.g. a symbolic link)",
                        d.display()
                    );
                }
                let mode = mode_of(resume, overwrite);
                let progress = if quiet {
                    ProgressStyle::Quiet
                } else if std::io::stderr().is_terminal() {
                    ProgressStyle::Bars
                } else {
                    ProgressStyle::Lines
                };
                Command::Run(RunOptions {
                    config,
                    sets,
                    out,
                    data_dir,
                    threads,
                    jobs,
                    mode,
                    progress,
                    fetch: !no_fetch,
                    plot: !no_plot,
                    shard,
                })
            }
            args::Command::Plot {
                dir,
                format,
                data_dir,
                index,
            } => Command::Plot(PlotOptions {
                dir,
                format,
                data_dir,
                index,
            }),
            args::Command::DropoutFigure {
                dataset,
                data_dir,
                index,
                seed,
                out,
            } => Command::DropoutFigure(DropoutFigureOptions {
                dataset,
                data_dir,
                index,
                seed,
                out,
            }),
            args::Command::Fetch {
                dataset,
                data_dir,
                mirrors,
            } => Command::Fetch(FetchOptions {
                dataset: regulab::data::fetch::fetchable(&dataset).map_err(anyhow::Error::msg)?,
                data_dir,
                mirrors,
            }),
            args::Command::Slurm {
                config,
                out,
                data_dir,
                sets,
                partition,
                time,
                cpus_per_task,
                mem,
                max_parallel,
                runs_per_task,
                regulab,
                submit,
                resume,
                overwrite,
            } => {
                use regulab::slurm::absolute;
                let parsed = sets
                    .iter()
                    .map(|s| config::parse_set(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let regulab = match regulab {
                    Some(p) => absolute(&p)?,
                    None => std::env::current_exe()
                        .map_err(|e| anyhow::anyhow!("finding this regulab binary: {e}"))?,
                };
                Command::Slurm(SlurmOptions {
                    config: absolute(&config)?,
                    set_args: sets,
                    sets: parsed,
                    out: out.as_deref().map(absolute).transpose()?,
                    data_dir: data_dir.as_deref().map(absolute).transpose()?,
                    regulab,
                    resources: regulab::slurm::Resources {
                        partition,
                        time,
                        cpus_per_task,
                        mem,
                        max_parallel,
                        runs_per_task,
                    },
                    submit,
                    mode: mode_of(resume, overwrite),
                })
            }
            args::Command::Merge {
                dir,
                partial,
                no_plot,
                data_dir,
            } => Command::Merge(MergeOptions {
                dir,
                partial,
                plot: !no_plot,
                data_dir,
            }),
            args::Command::Verify {
                run_dir,
                data_dir,
                threads,
                keep,
            } => {
                if let Some(t) = threads {
                    limits::check_threads("--threads", t).map_err(anyhow::Error::msg)?;
                }
                let (_, threads) = regulab::run::default_parallelism(1, Some(1), threads);
                Command::Verify(VerifyOptions {
                    run_dir,
                    verify: regulab::verify::VerifyOptions {
                        threads,
                        data_dir,
                        keep,
                    },
                })
            }
        })
    }
}

/// `--resume` / `--overwrite` as an output directory mode (clap makes them exclusive).
fn mode_of(resume: bool, overwrite: bool) -> outdir::Mode {
    if resume {
        outdir::Mode::Resume
    } else if overwrite {
        outdir::Mode::Overwrite
    } else {
        outdir::Mode::Fresh
    }
}
