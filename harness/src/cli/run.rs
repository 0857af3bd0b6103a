//! `regulab run`: owns the output directory, loads (or downloads) the data, trains every
//! run of the plan, prints the comparison table (and, with several seeds, the table of
//! configurations with their intervals and verdicts) and draws the figures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use regulab::config::{self, Plan};
use regulab::data::{self, fetch::missing_downloads};
use regulab::interrupt;
use regulab::kernel_cache::{self, Cache as KernelCache};
use regulab::outdir;
use regulab::plot;
use regulab::run::{self, DataSets, Progress, Status};
use regulab::shard::Shard;

use super::console::{self, err, out};
use super::feedback::{Bars, Lines};
use super::options::{ProgressStyle, RunOptions};
use super::{report_warnings, shell_quote};

/// The training image shown in the input-dropout figure drawn by `regulab run`.
const PREVIEW_IMAGE: u32 = 0;

/// Opens the kernel-choice cache ([`KernelCache`]); a file it cannot use is reported as
/// a warning and left as it is, and the kernels are then timed as without a cache.
fn open_kernel_cache() -> Option<KernelCache> {
    match KernelCache::open() {
        Ok(cache) => {
            if trace_on()
                && let Some(c) = &cache
            {
                err!(
                    "regulab: kernel cache {}: {} kept choice(s) for this machine",
                    c.path().display(),
                    c.seeded()
                );
            }
            cache
        }
        Err(e) => {
            err!(
                "regulab: warning: kernel cache not used: {e:#}; the file is left as it is \
                 (remove it to start a new one, or set {}=off)",
                kernel_cache::ENV
            );
            None
        }
    }
}

/// Keeps this process's kernel choices in the cache, if one is open (a failure is a
/// warning: the runs' results do not depend on it).
fn save_kernel_cache(cache: Option<KernelCache>) {
    if let Some(c) = cache
        && let Err(e) = c.save()
    {
        err!("regulab: warning: kernel choices not kept: {e:#}");
    }
}

/// Whether `REGULAB_TRACE` asks for the kernel paths and choices on stderr.
fn trace_on() -> bool {
    std::env::var_os("REGULAB_TRACE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Run `regulab run`; exit 0 when every run completed, 1 when one diverged.
pub fn execute(o: RunOptions) -> Result<ExitCode> {
    let plan = config::load(&o.config, &o.sets)?;
    if let Some(arg) = o.shard {
        let shard = Shard::resolve(arg, |k| std::env::var(k).ok())?;
        return execute_shard(o, plan, shard);
    }
    let (jobs, threads) = run::default_parallelism(plan.runs.len(), o.jobs, o.threads);
    regulab::limits::check_parallelism(jobs, threads, plan.runs.len())
        .map_err(anyhow::Error::msg)?;
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&plan.name));
    interrupt::install().context("handling SIGINT and SIGTERM")?;
    // One owner per output directory, for the whole command. An existing directory is
    // owned before anything in it is read (for --resume: before looking for data, so
    // that a directory made with other data or another config is refused as such, not
    // with a dataset or download error); a new one is created only once the data has
    // loaded.
    let mut owner = None;
    if out.exists() {
        owner = Some(outdir::claim(&out, &plan, o.mode)?);
    }
    let data = load_or_fetch(&plan, o.data_dir.as_deref(), o.fetch)?;
    run::check_recordable(&data)?;
    // The figures drawn after training show one training image: keep it apart, so
    // that all the data can be released before drawing.
    let preview = o
        .plot
        .then(|| {
            data.values()
                .next()
                .map(|d| d.keep_only(&[PREVIEW_IMAGE], &[]))
        })
        .flatten();
    // Training reads only the runs' pools and validation splits.
    let data = run::release_unused(&plan, data);
    let opts = library_options(&o, &out, jobs, threads);
    // every run against its data and the memory available, before a new output
    // directory is created (execute checks it again, as a library)
    run::check_plan(&plan, &data, &opts)?;
    let owner = match owner {
        Some(owner) => owner,
        None => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("creating output directory {}", out.display()))?;
            outdir::claim(&out, &plan, o.mode)?
        }
    };
    if o.mode == outdir::Mode::Overwrite && owner.survey.holds_results() {
        let removal = outdir::remove_results(&out, &owner.survey)?;
        err!("regulab: --overwrite: {}", removal.describe(&out));
    }
    if o.progress != ProgressStyle::Quiet {
        err!(
            "regulab: {} run(s) of `{}` into {} ({jobs} at a time, {threads} thread(s) each)",
            plan.runs.len(),
            plan.name,
            out.display()
        );
    }
    let cache = open_kernel_cache();
    let executed = run::execute_runs(&plan, &run::Selection::all(&plan), &data, &opts);
    save_kernel_cache(cache);
    let outcomes = match executed {
        Ok(outcomes) => outcomes,
        Err(e) => {
            if let Some(stop) = interrupt::cause(&e) {
                err!(
                    "regulab: stopped by {} between two batches: the finished runs and every \
                     other run's last completed epoch are saved in {}",
                    stop.name(),
                    out.display()
                );
                err!("regulab: to resume: {}", resume_command(&out));
                return Ok(ExitCode::from(stop.exit_code()));
            }
            return Err(e);
        }
    };
    drop(data);
    if trace_on() {
        // which kernel paths training took (e.g. to check a REGULAB_* switch)
        err!(
            "regulab: kernel paths: {:?}",
            regulab_kernels::trace::counts()
        );
        // and which kernel each product signature settled on, with the measured costs
        let mut choices: Vec<String> = regulab_kernels::gemm::decisions()
            .iter()
            .map(ToString::to_string)
            .collect();
        choices.sort();
        for c in choices {
            err!("regulab: kernel choice: {c}");
        }
    }
    console::stdout(format_args!("{}", run::comparison_table(&outcomes)));
    if let Some(stop) = write_outputs(&out, o.plot, o.data_dir.as_deref(), preview.as_ref())? {
        err!(
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
        err!(
            "error: {} run(s) diverged (NaN or infinite cost): {}; lower optim.lr or check the config",
            diverged.len(),
            diverged.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}

/// Load the plan's datasets (reporting their warnings); when one is not found, download
/// the missing MNIST / Fashion-MNIST first if allowed ([`missing_downloads`]).
/// The library's options of a `regulab run` into `out` (a whole plan or a shard).
fn library_options(o: &RunOptions, out: &Path, jobs: usize, threads: usize) -> run::RunOptions {
    let progress = match o.progress {
        ProgressStyle::Quiet => Progress::Quiet,
        ProgressStyle::Lines => Progress::Report(Arc::new(Lines)),
        ProgressStyle::Bars => Progress::Report(Arc::new(Bars::default())),
    };
    run::RunOptions {
        out: out.to_path_buf(),
        threads,
        jobs,
        progress,
        resume: o.resume(),
        halt_after_epoch: None,
    }
}

fn load_or_fetch(plan: &Plan, data_dir: Option<&Path>, fetch: bool) -> Result<DataSets> {
    let loaded = match run::load_datasets(plan, data_dir) {
        // only a dataset not found is worth a download (not a bad file or range)
        Err(first)
            if fetch
                && matches!(
                    first.downcast_ref::<data::DataError>(),
                    Some(data::DataError::NotFound { .. })
                ) =>
        {
            let downloads = missing_downloads(
                plan.runs.iter().map(|r| r.config.data.dataset.as_str()),
                data_dir,
            );
            if downloads.is_empty() {
                return Err(first);
            }
            for (name, dir) in downloads {
                err!(
                    "regulab: {name} not found; downloading into {}",
                    dir.display()
                );
                // a failed fetch removes the directories it made
                data::fetch(name, &dir, &[], super::stderr_is_terminal()).map_err(|e| {
                    // in the order it happened: the download failed, so the data is
                    // missing; then the places searched and what to do
                    anyhow::anyhow!("downloading {name} failed: {e}\n{first:#}")
                })?;
            }
            run::load_datasets(plan, data_dir).context("loading the downloaded data")?
        }
        other => other?,
    };
    report_warnings(loaded.values().flat_map(|d| &d.warnings));
    Ok(loaded)
}

/// The outputs at the end of `regulab run`, built from the directory
/// ([`run::write_outputs`]): `summary.csv`, then (with `plot`) the figures and report,
/// whose failure is a warning (the runs' results are written already). `dataset` needs
/// to hold only training image [`PREVIEW_IMAGE`]. `Some` when a signal stopped the
/// drawing.
fn write_outputs(
    out: &Path,
    plot: bool,
    data_dir: Option<&Path>,
    dataset: Option<&data::Dataset>,
) -> Result<Option<interrupt::Interrupted>> {
    let opts = plot::PlotOptions {
        format: plot::Format::Svg,
        data_dir,
        dataset,
        image_index: PREVIEW_IMAGE as usize,
    };
    let outputs = run::write_outputs(out, plot.then_some(&opts))?;
    out!("summary: {}", outputs.summary.display());
    // over seeds: the configurations with their intervals and verdicts
    if outputs.aggregate.rows.iter().any(|r| r.seeds.len() > 1) {
        out!();
        console::stdout(format_args!(
            "{}",
            regulab::aggregate::text_table(&outputs.aggregate)
        ));
        out!("aggregate: {}", outputs.aggregate_file.display());
    }
    let Some(figures) = outputs.figures else {
        return Ok(None);
    };
    match figures {
        Ok(o) => {
            for n in &o.notes {
                err!("note: {n}");
            }
            out!("report: {} ({} figures)", o.report.display(), o.files.len());
        }
        Err(plot::PlotError::Interrupted(stop)) => return Ok(Some(stop)),
        Err(e) => err!(
            "warning: drawing the figures failed: {e}; retry with `regulab plot {}`",
            out.display()
        ),
    }
    Ok(None)
}

/// The command that resumes this `regulab run`: its own arguments, without
/// `--overwrite`, with `--out` (when it was implicit) and `--resume`.
fn resume_command(out: &Path) -> String {
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

/// `regulab run --shard`: train the shard's runs of the plan into the shared output
/// directory (held shared, each of its runs exclusively: [`outdir::claim_shard`]); no
/// summary, figures or report (`regulab merge` writes them once every shard is done).
fn execute_shard(o: RunOptions, plan: Plan, shard: Shard) -> Result<ExitCode> {
    let selection = run::Selection::shard(&plan, shard.index as usize, shard.count as usize)?;
    let names: Vec<&str> = selection
        .indices()
        .iter()
        .map(|&i| plan.runs[i].name.as_str())
        .collect();
    let runs = names.len();
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&plan.name));
    if runs == 0 {
        out!(
            "{shard} of `{}` has no runs (the plan has {}); nothing to do",
            plan.name,
            plan.runs.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (jobs, threads) = run::default_parallelism(runs, o.jobs, o.threads);
    regulab::limits::check_parallelism(jobs, threads, runs).map_err(anyhow::Error::msg)?;
    interrupt::install().context("handling SIGINT and SIGTERM")?;
    // As `regulab run`: an existing directory is owned (here: shared, with this shard's
    // runs) before anything in it is read; a new one is created only once the data has
    // loaded and checked, by whichever shard comes first.
    let mut owner = None;
    if out.exists() {
        owner = Some(outdir::claim_shard(&out, &plan, &names, o.mode)?);
    }
    // the data of this shard's runs only
    let mine = selection.plan(&plan);
    let data = load_or_fetch(&mine, o.data_dir.as_deref(), o.fetch)?;
    run::check_recordable(&data)?;
    let data = run::release_unused(&mine, data);
    let opts = library_options(&o, &out, jobs, threads);
    run::check_plan(&mine, &data, &opts)?;
    let owner = match owner {
        Some(owner) => owner,
        None => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("creating output directory {}", out.display()))?;
            outdir::claim_shard(&out, &plan, &names, o.mode)?
        }
    };
    if o.progress != ProgressStyle::Quiet {
        err!(
            "regulab: {shard}: {runs} of the {} run(s) of `{}` into {} ({jobs} at a time, \
             {threads} thread(s) each)",
            plan.runs.len(),
            plan.name,
            out.display()
        );
    }
    let cache = open_kernel_cache();
    let executed = run::execute_runs(&plan, &selection, &data, &opts);
    save_kernel_cache(cache);
    let outcomes = match executed {
        Ok(outcomes) => outcomes,
        Err(e) => {
            if let Some(stop) = interrupt::cause(&e) {
                err!(
                    "regulab: {shard} stopped by {} between two batches: its finished runs \
                     and every other run's last completed epoch are saved in {}; run it again \
                     with --resume to continue",
                    stop.name(),
                    out.display()
                );
                return Ok(ExitCode::from(stop.exit_code()));
            }
            return Err(e);
        }
    };
    drop(data);
    drop(owner);
    console::stdout(format_args!("{}", run::comparison_table(&outcomes)));
    out!(
        "{shard} done; when every shard is: regulab merge {}",
        shell_quote(&out.to_string_lossy())
    );
    let diverged = outcomes
        .iter()
        .filter(|o| o.status == Status::Diverged)
        .count();
    Ok(ExitCode::from(u8::from(diverged > 0)))
}
