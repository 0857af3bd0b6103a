//! The `regulab` command: train seeded MLP regularisation studies and export tidy CSV.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use regulab::config;
use regulab::data::{self, DatasetName};
use regulab::interrupt;
use regulab::lock::{self, Access};
use regulab::outdir;
use regulab::plot;
use regulab::run::{self, Progress, RunOptions, Status};

#[derive(Parser)]
#[command(
    name = "regulab",
    version,
    about = "Seeded, bit-reproducible MLP regularisation studies (L1, L2, dropout) on the CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// there (summary.csv, report.html, plan.json, the figures in plots/, the files
        /// of its run directories), nothing else, and say what was removed.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
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
    /// Draw one training image and its input-dropout corruptions (keep p = 0.9, 0.7,
    /// 0.5, 0.2, 0.1) with the project's dropout kernel, as a 2x3 grid (SVG or PNG).
    Corrupt {
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
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text is already
/// said (a library error that prints its OS error and also returns it as its source
/// would otherwise show it twice).
fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn real_main() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Verify {
            run_dir,
            data_dir,
            threads,
            keep,
        } => {
            if let Some(t) = threads {
                regulab::limits::check_threads("--threads", t).map_err(anyhow::Error::msg)?;
            }
            let (_, threads) = run::default_parallelism(1, Some(1), threads);
            if !run_dir.is_dir() {
                anyhow::bail!("{}: no such directory", run_dir.display());
            }
            interrupt::install().context("handling SIGINT and SIGTERM")?;
            // read-only: shared with other readers, never while a command writes there
            let _owner = lock::lock_path(&run_dir, Access::Shared, "regulab verify")?;
            let _keep = match &keep {
                Some(k) => {
                    regulab::verify::prepare_keep(&run_dir, k)?;
                    Some(lock::lock_dir(
                        k,
                        Access::Exclusive,
                        "regulab verify --keep",
                    )?)
                }
                None => None,
            };
            let opts = regulab::verify::VerifyOptions {
                threads,
                data_dir,
                keep,
            };
            let verification = match regulab::verify::verify_path(&run_dir, &opts) {
                Ok(v) => v,
                Err(e) => {
                    if let Some(stop) = interrupt::cause(&e) {
                        eprintln!(
                            "regulab: verify stopped by {}; nothing was changed; run it again \
                             to verify",
                            stop.name()
                        );
                        return Ok(ExitCode::from(stop.exit_code()));
                    }
                    return Err(e);
                }
            };
            print!("{}", verification.render());
            Ok(ExitCode::from(verification.exit_code()))
        }
        Command::Fetch {
            dataset,
            data_dir,
            mirrors,
        } => {
            let name = data::fetch::fetchable(&dataset).map_err(anyhow::Error::msg)?;
            let explicit = data_dir.is_some() || std::env::var_os(data::locate::DATA_ENV).is_some();
            let installed = mirrors
                .is_empty()
                .then(|| data::fetch::installed_copy(name))
                .flatten();
            if let (Some(sys), false) = (&installed, explicit) {
                println!(
                    "{name}: installed in {} (checksums ok); regulab reads it from there, \
                     nothing to download (to copy it elsewhere: regulab fetch {name} --data-dir DIR)",
                    sys.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let dir = data::default_fetch_dir(name, data_dir.as_deref());
            let report = match &installed {
                Some(sys) => data::fetch::copy_installed(name, sys, &dir)?,
                None => data::fetch(name, &dir, &mirrors, std::io::stderr().is_terminal())?,
            };
            for f in &report.files {
                match &f.status {
                    data::FetchStatus::AlreadyPresent => {
                        println!("{}: already present, checksum ok", f.path.display())
                    }
                    data::FetchStatus::Downloaded { url } => {
                        println!("{}: downloaded from {url}, checksum ok", f.path.display())
                    }
                    data::FetchStatus::Copied { from } => {
                        println!(
                            "{}: copied from {}, checksum ok",
                            f.path.display(),
                            from.display()
                        )
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot {
            dir,
            format,
            data_dir,
            index,
        } => {
            interrupt::install().context("handling SIGINT and SIGTERM")?;
            // writes DIR/plots and DIR/report.html: the one writer of DIR
            let _owner = dir
                .is_dir()
                .then(|| lock::lock_path(&dir, Access::Exclusive, "regulab plot"))
                .transpose()?;
            let drawn = plot::plot_dir(
                &dir,
                &plot::PlotOptions {
                    format,
                    data_dir: data_dir.as_deref(),
                    dataset: None,
                    image_index: index,
                },
            );
            if let Err(plot::PlotError::Interrupted(stop)) = drawn {
                eprintln!(
                    "regulab: stopped by {} between two figures (every figure file is whole); \
                     to draw them all: regulab plot {}",
                    stop.name(),
                    shell_quote(&dir.to_string_lossy())
                );
                return Ok(ExitCode::from(stop.exit_code()));
            }
            let output = drawn?;
            for n in &output.notes {
                eprintln!("note: {n}");
            }
            println!(
                "{} figure(s) in {}",
                output.files.len(),
                dir.join("plots").display()
            );
            println!("report: {}", output.report.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Corrupt {
            dataset,
            data_dir,
            index,
            seed,
            out,
        } => {
            let (name, d) = match dataset.parse::<DatasetName>() {
                Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => {
                    (known, data::Dataset::load(known, data_dir.as_deref())?)
                }
                _ => (
                    DatasetName::Custom,
                    data::Dataset::load_dir(DatasetName::Custom, std::path::Path::new(&dataset))?,
                ),
            };
            plot::corrupt_file(&d.train, name, index, seed, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config: config_path,
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
        } => {
            let sets = sets
                .iter()
                .map(|s| config::parse_set(s))
                .collect::<Result<Vec<_>, _>>()?;
            let plan = config::load(&config_path, &sets)?;
            if let Some(t) = threads {
                regulab::limits::check_threads("--threads", t).map_err(anyhow::Error::msg)?;
            }
            if let Some(j) = jobs {
                regulab::limits::check_parallelism(j, 1, 1).map_err(anyhow::Error::msg)?;
            }
            let (jobs, threads) = run::default_parallelism(plan.runs.len(), jobs, threads);
            regulab::limits::check_parallelism(jobs, threads, plan.runs.len())
                .map_err(anyhow::Error::msg)?;
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&plan.name));
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
            interrupt::install().context("handling SIGINT and SIGTERM")?;
            let mode = if resume {
                outdir::Mode::Resume
            } else if overwrite {
                outdir::Mode::Overwrite
            } else {
                outdir::Mode::Fresh
            };
            // One owner per output directory, for the whole command. An existing
            // directory is owned before anything in it is read (for --resume: before
            // looking for data, so that a directory made with other data or another
            // config is refused as such, not with a dataset or download error); a new
            // one is created only once the data has loaded.
            let mut owner = None;
            if out.exists() {
                owner = Some(outdir::claim(&out, &plan, mode)?);
            }
            let data = load_or_fetch(&plan, data_dir.as_deref(), !no_fetch)?;
            run::check_recordable(&data)?;
            // The figures drawn after training show one training image: keep it apart,
            // so that all the data can be released before drawing.
            let preview = (!no_plot)
                .then(|| {
                    data.values()
                        .next()
                        .map(|d| d.keep_only(&[PREVIEW_IMAGE], &[]))
                })
                .flatten();
            // Training reads only the runs' pools and validation splits.
            let data = run::release_unused(&plan, data);
            let progress = if quiet {
                Progress::Quiet
            } else if std::io::stderr().is_terminal() {
                Progress::Bars
            } else {
                Progress::Lines
            };
            let opts = RunOptions {
                out: out.clone(),
                threads,
                jobs,
                progress,
                resume,
                halt_after_epoch: None,
            };
            // every run against its data and the memory available, before a new
            // output directory is created (execute checks it again, as a library)
            run::check_plan(&plan, &data, &opts)?;
            let owner = match owner {
                Some(o) => o,
                None => {
                    std::fs::create_dir_all(&out)
                        .with_context(|| format!("creating output directory {}", out.display()))?;
                    outdir::claim(&out, &plan, mode)?
                }
            };
            if mode == outdir::Mode::Overwrite && owner.survey.holds_results() {
                let removal = outdir::remove_results(&out, &owner.survey)?;
                eprintln!("regulab: --overwrite: {}", removal.describe(&out));
            }
            if !quiet {
                eprintln!(
                    "regulab: {} run(s) of `{}` into {} ({jobs} at a time, {threads} thread(s) each)",
                    plan.runs.len(),
                    plan.name,
                    out.display()
                );
            }
            let outcomes = match run::execute_runs(&plan, &run::Selection::all(&plan), &data, &opts)
            {
                Ok(o) => o,
                Err(e) => {
                    if let Some(stop) = interrupt::cause(&e) {
                        eprintln!(
                            "regulab: stopped by {} between two batches: the finished runs and \
                             every other run's last completed epoch are saved in {}",
                            stop.name(),
                            out.display()
                        );
                        eprintln!("regulab: to resume: {}", resume_command(&out));
                        return Ok(ExitCode::from(stop.exit_code()));
                    }
                    return Err(e);
                }
            };
            drop(data);
            if std::env::var_os("REGULAB_TRACE").is_some_and(|v| !v.is_empty() && v != "0") {
                // which kernel paths training took (e.g. to check a REGULAB_* switch)
                eprintln!(
                    "regulab: kernel paths: {:?}",
                    regulab_kernels::trace::counts()
                );
            }
            print!("{}", run::comparison_table(&outcomes));
            if let Some(stop) =
                write_outputs(&out, !no_plot, data_dir.as_deref(), preview.as_ref())?
            {
                eprintln!(
                    "regulab: stopped by {} while drawing the figures (the runs' results are \
                     complete); to draw them: regulab plot {}",
                    stop.name(),
                    shell_quote(&out.to_string_lossy())
                );
                return Ok(ExitCode::from(stop.exit_code()));
            }
            drop(owner);
            let diverged: Vec<&str> = outcomes
                .iter()
                .filter(|o| o.status == Status::Diverged)
                .map(|o| o.spec.name.as_str())
                .collect();
            if diverged.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: {} run(s) diverged (NaN or infinite cost): {}; lower optim.lr or check the config",
                    diverged.len(),
                    diverged.join(", ")
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Load the plan's datasets; download a missing MNIST / Fashion-MNIST first if allowed.
fn load_or_fetch(
    plan: &config::Plan,
    data_dir: Option<&std::path::Path>,
    fetch: bool,
) -> Result<run::DataSets> {
    match run::load_datasets(plan, data_dir) {
        Ok(d) => Ok(d),
        // only a dataset not found is worth a download (not a bad file or range)
        Err(first)
            if fetch
                && matches!(
                    first.downcast_ref::<data::DataError>(),
                    Some(data::DataError::NotFound { .. })
                ) =>
        {
            let mut fetched = false;
            for r in &plan.runs {
                if let Ok(name @ (DatasetName::Mnist | DatasetName::FashionMnist)) =
                    r.config.data.dataset.parse::<DatasetName>()
                    && data::locate(name, data_dir).is_err()
                {
                    let dir = data::default_fetch_dir(name, data_dir);
                    eprintln!(
                        "regulab: {name} not found; downloading into {}",
                        dir.display()
                    );
                    // a failed fetch removes the directories it made
                    data::fetch(name, &dir, &[], std::io::stderr().is_terminal()).map_err(|e| {
                        // in the order it happened: the download failed, so the data
                        // is missing; then the places searched and what to do
                        anyhow::anyhow!("downloading {name} failed: {e}\n{first:#}")
                    })?;
                    fetched = true;
                }
            }
            if !fetched {
                return Err(first);
            }
            run::load_datasets(plan, data_dir).context("loading the downloaded data")
        }
        Err(e) => Err(e),
    }
}

/// `--format` of `regulab plot`.
fn parse_format(s: &str) -> Result<plot::Format, String> {
    s.parse()
}

/// The training image shown in the input-dropout figure drawn by `regulab run`.
const PREVIEW_IMAGE: u32 = 0;

/// The outputs at the end of `regulab run`, built from the directory
/// ([`run::write_outputs`]): `summary.csv`, then (with `plot`) the figures and report,
/// whose failure is a warning (the runs' results are written already). `dataset` needs
/// to hold only training image [`PREVIEW_IMAGE`]. `Some` when a signal stopped the
/// drawing.
fn write_outputs(
    out: &std::path::Path,
    plot: bool,
    data_dir: Option<&std::path::Path>,
    dataset: Option<&data::Dataset>,
) -> Result<Option<interrupt::Interrupted>> {
    let opts = plot::PlotOptions {
        format: plot::Format::Svg,
        data_dir,
        dataset,
        image_index: PREVIEW_IMAGE as usize,
    };
    let outputs = run::write_outputs(out, plot.then_some(&opts))?;
    println!("summary: {}", outputs.summary.display());
    let Some(figures) = outputs.figures else {
        return Ok(None);
    };
    match figures {
        Ok(o) => {
            for n in &o.notes {
                eprintln!("note: {n}");
            }
            println!("report: {} ({} figures)", o.report.display(), o.files.len());
        }
        Err(plot::PlotError::Interrupted(stop)) => return Ok(Some(stop)),
        Err(e) => eprintln!(
            "warning: drawing the figures failed: {e}; retry with `regulab plot {}`",
            out.display()
        ),
    }
    Ok(None)
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that resumes this `regulab run`: its own arguments, without
/// `--overwrite`, with `--out` (when it was implicit) and `--resume`.
fn resume_command(out: &std::path::Path) -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut cmd: Vec<String> = args
        .iter()
        .take(1)
        .cloned()
        .chain(
            args.iter()
                .skip(1)
                .filter(|a| *a != "--resume" && *a != "--overwrite")
                .cloned(),
        )
        .collect();
    if !args.iter().any(|a| a == "--out" || a.starts_with("--out=")) {
        cmd.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
    }
    cmd.push("--resume".into());
    cmd.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}
