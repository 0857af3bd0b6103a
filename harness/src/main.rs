//! The `regulab` command: train seeded MLP regularisation studies and export tidy CSV.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use regulab::config;
use regulab::data::{self, DatasetName};
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
    },
    /// Download a dataset's four IDX files, verifying their SHA-256.
    Fetch {
        /// mnist or fashion-mnist.
        dataset: String,
        /// Where to put the files [default: $REGULAB_DATA/<name> or data/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Mirror base URL to try instead of the defaults (repeatable, tried in order).
        #[arg(long = "mirror")]
        mirrors: Vec<String>,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Fetch {
            dataset,
            data_dir,
            mirrors,
        } => {
            let name: DatasetName = dataset.parse().map_err(anyhow::Error::msg)?;
            let dir = data::default_fetch_dir(name, data_dir.as_deref());
            let report = data::fetch(name, &dir, &mirrors, std::io::stderr().is_terminal())?;
            for f in &report.files {
                match &f.status {
                    data::FetchStatus::AlreadyPresent => {
                        println!("{}: already present, checksum ok", f.path.display())
                    }
                    data::FetchStatus::Downloaded { url } => {
                        println!("{}: downloaded from {url}, checksum ok", f.path.display())
                    }
                }
            }
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
        } => {
            let sets = sets
                .iter()
                .map(|s| config::parse_set(s))
                .collect::<Result<Vec<_>, _>>()?;
            let plan = config::load(&config_path, &sets)?;
            let data = load_or_fetch(&plan, data_dir.as_deref(), !no_fetch)?;
            let (jobs, threads) = run::default_parallelism(plan.runs.len(), jobs, threads);
            let progress = if quiet {
                Progress::Quiet
            } else if std::io::stderr().is_terminal() {
                Progress::Bars
            } else {
                Progress::Lines
            };
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&plan.name));
            let opts = RunOptions {
                out: out.clone(),
                threads,
                jobs,
                progress,
            };
            if !quiet {
                eprintln!(
                    "regulab: {} run(s) of `{}` into {} ({jobs} at a time, {threads} thread(s) each)",
                    plan.runs.len(),
                    plan.name,
                    out.display()
                );
            }
            let outcomes = run::execute(&plan, &data, &opts)?;
            print!("{}", run::comparison_table(&outcomes));
            println!("summary: {}", out.join("summary.csv").display());
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
        Err(first) if fetch => {
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
                    data::fetch(name, &dir, &[], std::io::stderr().is_terminal())
                        .map_err(|e| anyhow::anyhow!("{first:#}\n\ndownload failed too: {e}"))?;
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
