//! `regulab verify RUN_DIR`: rerun a finished run from its manifest and compare every
//! output bit for bit, except timing.
//!
//! Steps, for a run directory (or for every run directory in a sweep directory):
//!
//! 1. read `manifest.json`: the resolved config, run name, dataset and its files;
//! 2. load the data it names (from `--data-dir` or the manifest's directory) and check
//!    every file's SHA-256 against the manifest *before* training: other data is a
//!    data error, not a difference;
//! 3. train the run afresh into a temporary directory, on this machine's kernels;
//! 4. compare, in order:
//!    * `epochs.csv`: same header, same rows, every column but the timing ones
//!      ([`TIMING_COLUMNS`]) equal as text (floats are printed in shortest round-trip
//!      form, so equal text is equal bits);
//!    * `init.safetensors` and `model.safetensors`: equal bytes (a difference is
//!      located as tensor and element);
//!    * `manifest.json`: the groups a rerun must reproduce, [`Identity`] and
//!      [`Results`] (name, config, seed, the data's checksums, status, digest, test
//!      statistics); [`Environment`] (version, kernels, threads, jobs, data paths) and
//!      [`Timing`] are never compared, by their type ([`crate::run::manifest`]).
//!
//! The kernels and version of this machine are compared with the manifest's. What can
//! change bits is reported, as the likely cause when the outputs differ: another sgemm
//! reproducibility class (`x86-fma`, i.e. AVX-512 or FMA-AVX2, against a non-FMA
//! kernel), another matrixmultiply or regulab version. What regulab guarantees not to
//! change bits (AVX-512 against FMA-AVX2, the elementwise SIMD level, other CPU
//! features) is only noted, never named as a cause.
//!
//! A sweep directory is checked as a whole: the runs of its plan (`plan.json`, else
//! `summary.csv`) must all be there (a missing one is a failure, and so is a run
//! directory outside the plan); every run is verified even when another cannot be
//! (unfinished, other data: reported, the others still verified); and every row of
//! `summary.csv` must be what the reruns give, column by column except `seconds`.
//!
//! Nothing is written but the reruns, and only into directories verify makes itself:
//! `<tmp or --keep>/<the run directory's name>`. No path is taken from a manifest (its
//! `run` must be a run name; the data directory it records is only read), and `--keep`
//! must be new or empty and neither contain nor lie inside what is verified
//! ([`check_keep`]).
//!
//! The comparisons of two run directories are in `compare.rs`, what this machine's
//! kernels and versions change in `environment.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use crate::config::{self, RunSpec};
use crate::data::{Dataset, DatasetName};
#[cfg(doc)]
use crate::run::TIMING_COLUMNS;
use crate::run::manifest::Manifest;
#[cfg(doc)]
use crate::run::manifest::{Environment, Identity, Results, Timing};
use crate::run::{self, Progress, RunOptions};

mod compare;
mod environment;

pub use compare::{
    Difference, compare_epochs, compare_manifests, compare_models, compare_run_dirs,
};
use compare::{read_csv, show};
use environment::environment_differences;
pub use environment::environment_notes;

/// Options of `regulab verify`.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Rayon threads of the rerun (any number gives the same bits).
    pub threads: usize,
    /// Where the data files are, when not where the manifest says.
    pub data_dir: Option<PathBuf>,
    /// Keep the rerun's files here (default: a temporary directory, deleted).
    pub keep: Option<PathBuf>,
}

/// The verdict on one run directory.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run directory verified.
    pub run_dir: PathBuf,
    /// Ways this machine differs from the one that trained the run that can change bits.
    pub environment: Vec<String>,
    /// Ways it differs that regulab guarantees do not change bits (noted only).
    pub environment_info: Vec<String>,
    /// The first difference of each file that differs (empty: identical).
    pub differences: Vec<Difference>,
    /// Why the run could not be verified (unfinished, data missing, ...), if so.
    pub not_verified: Option<String>,
}

impl RunReport {
    /// Whether every output was reproduced bit for bit.
    pub fn identical(&self) -> bool {
        self.not_verified.is_none() && self.differences.is_empty()
    }

    /// What `regulab verify` prints for this run.
    pub fn render(&self) -> String {
        let dir = self.run_dir.display();
        let mut s = String::new();
        if let Some(why) = &self.not_verified {
            return format!("{dir}: NOT VERIFIED: {why}\n");
        }
        if self.identical() {
            s.push_str(&format!("{dir}: identical\n"));
            for e in &self.environment {
                s.push_str(&format!("  note: {e} (yet the results are the same)\n"));
            }
            for e in &self.environment_info {
                s.push_str(&format!("  note: {e}\n"));
            }
            return s;
        }
        s.push_str(&format!(
            "{dir}: DIFFERENT; first difference: {}\n",
            self.differences[0]
        ));
        for d in &self.differences[1..] {
            s.push_str(&format!("  also: {d}\n"));
        }
        if self.environment.is_empty() {
            s.push_str(
                "  this machine's kernels and versions give the manifest's bits: the run's \
                 outputs were changed, or a change to regulab's code altered its numbers\n",
            );
        } else {
            for e in &self.environment {
                s.push_str(&format!("  likely cause: {e}\n"));
            }
        }
        for e in &self.environment_info {
            s.push_str(&format!("  note: {e} (not a cause)\n"));
        }
        s
    }
}

/// The run directories under `path`: `path` itself if it holds a `manifest.json`, else
/// its subdirectories that do (a sweep directory), sorted by name.
pub fn run_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    if path.join("manifest.json").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).with_context(|| format!("reading directory {}", path.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "{}: neither a run directory (with manifest.json) nor a sweep directory holding run directories",
            path.display()
        );
    }
    Ok(dirs)
}

/// Loaded datasets, by data key and directory, shared by the runs of a sweep.
type DataCache = BTreeMap<(String, PathBuf), Arc<Dataset>>;

/// The verdict on a run or sweep directory.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// One report per run, in plan order.
    pub runs: Vec<RunReport>,
    /// Whether a sweep directory was verified (not one run directory).
    pub sweep: bool,
    /// What is wrong with the sweep as a whole (missing runs, `summary.csv`).
    pub sweep_problems: Vec<String>,
    /// What was checked of the sweep as a whole and found right.
    pub sweep_checks: Vec<String>,
}

impl Verification {
    /// 0: every run identical and the sweep consistent; 2: a run could not be verified
    /// (unfinished, data missing or different); 1: anything else differs.
    pub fn exit_code(&self) -> u8 {
        if self.runs.iter().any(|r| r.not_verified.is_some()) {
            2
        } else if self.sweep_problems.is_empty() && self.runs.iter().all(RunReport::identical) {
            0
        } else {
            1
        }
    }

    /// What `regulab verify` prints.
    pub fn render(&self) -> String {
        let mut s: String = self.runs.iter().map(RunReport::render).collect();
        for p in &self.sweep_problems {
            s.push_str(&format!("DIFFERENT: {p}\n"));
        }
        for c in &self.sweep_checks {
            s.push_str(&format!("{c}\n"));
        }
        if self.sweep {
            let same = self.runs.iter().filter(|r| r.identical()).count();
            s.push_str(&format!("{same} of {} runs identical\n", self.runs.len()));
        }
        s
    }
}

/// The canonical form of `p`, which need not exist: its deepest existing ancestor
/// canonicalised, then the rest of the path resolved lexically.
fn canonical_maybe_missing(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the working directory")?
            .join(p)
    };
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    let canonical = loop {
        match base.canonicalize() {
            Ok(c) => break c,
            Err(_) => {
                rest.push(base.file_name().map(PathBuf::from).unwrap_or_default());
                base = base
                    .parent()
                    .ok_or_else(|| anyhow!("{}: cannot resolve the path", p.display()))?;
            }
        }
    };
    let mut out = canonical;
    for part in rest.iter().rev() {
        for c in part.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::Normal(n) => out.push(n),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Whether `dir` holds nothing but regulab's lock files (a directory verify locked).
fn empty_but_locks(dir: &Path) -> Result<bool> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("reading directory {}", dir.display()))?;
        let name = e.file_name();
        if name != crate::lock::LOCK_FILE && name != crate::lock::RUN_LOCKS_DIR {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `--keep DIR` for verifying `verified`: DIR must be new or empty (but for regulab's
/// lock files) and neither contain nor lie inside `verified` (compared canonicalised,
/// so symbolic links and `..` do not get around it).
pub fn check_keep(verified: &Path, keep: &Path) -> Result<()> {
    let v = verified
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve the path", verified.display()))?;
    let k = canonical_maybe_missing(keep)?;
    if k.starts_with(&v) || v.starts_with(&k) {
        bail!(
            "--keep {}: it {} {}, which is being verified; give a new or empty directory \
             outside it",
            keep.display(),
            if k.starts_with(&v) {
                "lies inside"
            } else {
                "contains"
            },
            verified.display()
        );
    }
    if k.exists() && !(k.is_dir() && empty_but_locks(&k)?) {
        bail!(
            "--keep {}: not an empty directory; give a new or empty one (verify writes the \
             reruns' files into it and replaces nothing)",
            keep.display()
        );
    }
    Ok(())
}

/// `--keep DIR`: check it ([`check_keep`]) and create it.
pub fn prepare_keep(verified: &Path, keep: &Path) -> Result<()> {
    check_keep(verified, keep)?;
    std::fs::create_dir_all(keep)
        .with_context(|| format!("--keep {}: creating the directory", keep.display()))
}

/// The runs a sweep directory should hold (`plan.json`, else `summary.csv`, else the
/// run directories there), and which file said so.
fn expected_runs(path: &Path) -> Result<(Vec<String>, Option<&'static str>)> {
    if let Some(plan) = crate::outdir::PlanFile::read(path)? {
        return Ok((plan.run_names(), Some(crate::outdir::PLAN_FILE)));
    }
    if let Some((_, rows)) = read_summary(path)? {
        return Ok((
            rows.into_iter().map(|(name, _)| name).collect(),
            Some(crate::outdir::SUMMARY_FILE),
        ));
    }
    let names = run_dirs(path)?
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    Ok((names, None))
}

/// A sweep's `summary.csv` (header, then each row by its run name), if there is one.
type Summary = (Vec<String>, Vec<(String, Vec<String>)>);

fn read_summary(dir: &Path) -> Result<Option<Summary>> {
    let path = dir.join(crate::outdir::SUMMARY_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let (header, rows) = read_csv(&path)?;
    let header: Vec<String> = header.iter().map(String::from).collect();
    if header.first().map(String::as_str) != Some("run") {
        bail!("{}: the first column is not `run`", path.display());
    }
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let name = r.get(0).unwrap_or_default();
        if !crate::outdir::is_run_name(name) {
            bail!(
                "{}: row {}, column `run`: {name:?} is not a run name",
                path.display(),
                i + 1
            );
        }
        out.push((name.to_string(), r.iter().map(String::from).collect()));
    }
    Ok(Some((header, out)))
}

/// Verify `path`: one run directory, or every run of a sweep directory (see the module
/// docs). `Err` for one run directory that cannot be verified, and for a path that is
/// neither; a sweep's runs that cannot be verified are reported as such.
pub fn verify_path(path: &Path, opts: &VerifyOptions) -> Result<Verification> {
    if let Some(keep) = &opts.keep {
        check_keep(path, keep)?;
    }
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let out = opts
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let mut cache = DataCache::new();
    if path.join("manifest.json").is_file() {
        // the rerun's directory is named after the run directory, never after its manifest
        let name = path
            .canonicalize()
            .with_context(|| format!("{}: cannot resolve the path", path.display()))?
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("run"));
        let (report, _) = verify_run_cached(path, &out.join(name), opts, &mut cache)?;
        return Ok(Verification {
            runs: vec![report],
            ..Verification::default()
        });
    }
    let (expected, listed_in) = expected_runs(path)?;
    let mut v = Verification {
        sweep: true,
        ..Verification::default()
    };
    let found: Vec<String> = run_dirs(path)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for extra in found.iter().filter(|f| !expected.contains(f)) {
        v.sweep_problems.push(format!(
            "{}: run directory not in {} (not verified)",
            path.join(extra).display(),
            listed_in.unwrap_or("the plan")
        ));
    }
    let mut outcomes = Vec::new();
    let _locks = if crate::lock::is_output_dir(path) {
        expected
            .iter()
            .map(|name| {
                crate::lock::lock_run(path, name, crate::lock::Access::Shared, "regulab verify")
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    for name in &expected {
        let run_dir = path.join(name);
        if !run_dir.join("manifest.json").is_file() {
            v.sweep_problems.push(format!(
                "{}: run directory missing (listed in {}){}",
                run_dir.display(),
                listed_in.unwrap_or("the plan"),
                if run_dir.is_dir() {
                    ": it holds no manifest.json (never started?)"
                } else {
                    ""
                }
            ));
            continue;
        }
        match verify_run_cached(&run_dir, &out.join(name), opts, &mut cache) {
            Ok((report, rerun)) => {
                outcomes.push(rerun);
                v.runs.push(report);
            }
            Err(e) if crate::interrupt::cause(&e).is_some() => return Err(e),
            Err(e) => v.runs.push(RunReport {
                run_dir,
                environment: Vec::new(),
                environment_info: Vec::new(),
                differences: Vec::new(),
                not_verified: Some(format!("{e:#}")),
            }),
        }
    }
    check_summary(path, &expected, &outcomes, &mut v)?;
    check_aggregate(path, &expected, &outcomes, &mut v)?;
    Ok(v)
}

/// Compare `summary.csv` with what the reruns' directories give (`outcomes`, see the
/// module docs).
fn check_summary(
    path: &Path,
    expected: &[String],
    outcomes: &[run::RunSummary],
    v: &mut Verification,
) -> Result<()> {
    let spath = path.join(crate::outdir::SUMMARY_FILE);
    let Some((header, rows)) = read_summary(path)? else {
        v.sweep_problems.push(format!(
            "{}: missing: the sweep has not finished (`regulab run CONFIG --resume` writes it)",
            spath.display()
        ));
        return Ok(());
    };
    let problems_before = v.sweep_problems.len();
    let listed: Vec<&String> = rows.iter().map(|(n, _)| n).collect();
    if listed.iter().copied().ne(expected.iter()) {
        v.sweep_problems.push(format!(
            "{}: lists the runs {}, the plan has {}",
            spath.display(),
            listed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            expected.join(", ")
        ));
    }
    for o in outcomes {
        let Some((_, row)) = rows.iter().find(|(n, _)| *n == o.spec.name) else {
            continue;
        };
        let rerun = run::summary_row(o, &header);
        let differs = header.iter().enumerate().find(|&(i, col)| {
            col != run::SUMMARY_TIMING_COLUMN
                && row.get(i).map(String::as_str) != rerun.get(i).map(String::as_str)
        });
        if let Some((i, col)) = differs {
            v.sweep_problems.push(format!(
                "{}: run {}, column {col}: original {}, rerun {}",
                spath.display(),
                o.spec.name,
                show(row.get(i).map_or("", String::as_str)),
                show(&rerun[i])
            ));
        }
    }
    if v.sweep_problems.len() == problems_before {
        v.sweep_checks.push(format!(
            "{}: every row is what the reruns give ({} of {} run(s) rerun; column seconds not compared)",
            spath.display(),
            outcomes.len(),
            rows.len()
        ));
    }
    Ok(())
}

/// Compare `aggregate.csv` (when the sweep has one) with the aggregate of the reruns
/// (`outcomes`), byte for byte: it has no timing column. Only when every run of the
/// plan (`expected`) was rerun and `plan.json` says how its runs group.
fn check_aggregate(
    path: &Path,
    expected: &[String],
    outcomes: &[run::RunSummary],
    v: &mut Verification,
) -> Result<()> {
    let apath = path.join(crate::outdir::AGGREGATE_FILE);
    if !apath.is_file() {
        return Ok(());
    }
    let Some(plan) = crate::outdir::PlanFile::read(path)? else {
        return Ok(());
    };
    if outcomes.len() != expected.len() {
        v.sweep_problems.push(format!(
            "{}: not checked: {} of the plan's {} run(s) could be rerun",
            apath.display(),
            outcomes.len(),
            expected.len()
        ));
        return Ok(());
    }
    let grid_keys = plan.grid_keys.clone().unwrap_or_default();
    let agg = run::outputs::aggregate_runs(&grid_keys, outcomes, plan.reference.as_deref());
    let rerun = crate::aggregate::aggregate_csv(&agg)?;
    let original = std::fs::read(&apath).with_context(|| format!("reading {}", apath.display()))?;
    if original == rerun {
        v.sweep_checks.push(format!(
            "{}: every row is what the reruns give",
            apath.display()
        ));
    } else {
        let (o, r) = (
            String::from_utf8_lossy(&original),
            String::from_utf8_lossy(&rerun),
        );
        let line = o
            .lines()
            .zip(r.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| o.lines().count().min(r.lines().count()));
        v.sweep_problems.push(format!(
            "{}: differs from what the reruns give, first at line {}: original {}, rerun {}",
            apath.display(),
            line + 1,
            show(o.lines().nth(line).unwrap_or("")),
            show(r.lines().nth(line).unwrap_or(""))
        ));
    }
    Ok(())
}

/// Verify one run directory.
pub fn verify_run(run_dir: &Path, opts: &VerifyOptions) -> Result<RunReport> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let rerun = tmp.path().join("rerun");
    verify_run_cached(run_dir, &rerun, opts, &mut DataCache::new()).map(|(r, _)| r)
}

/// Verify `run_dir` by rerunning it into `rerun_dir`, a directory this creates (its
/// parent must exist or be creatable).
fn verify_run_cached(
    run_dir: &Path,
    rerun_dir: &Path,
    opts: &VerifyOptions,
    cache: &mut DataCache,
) -> Result<(RunReport, run::RunSummary)> {
    let manifest_path = run_dir.join("manifest.json");
    let manifest = run::read_manifest(run_dir)?.ok_or_else(|| {
        anyhow!(
            "{}: no manifest.json: not a run directory of `regulab run`",
            run_dir.display()
        )
    })?;
    if !manifest.results.status.is_finished() {
        bail!(
            "{}: the run has not finished (status {}); finish it first with `regulab run CONFIG --resume`",
            manifest_path.display(),
            manifest.results.status.as_str()
        );
    }
    let config = manifest.identity.config.clone();
    config::validate(&config).map_err(|(field, msg)| {
        anyhow!("{}: field `config.{field}`: {msg}", manifest_path.display())
    })?;
    let name = |key: &str, v: &str| -> Result<String> {
        if !crate::outdir::is_run_name(v) {
            bail!(
                "{}: field `{key}`: {v:?} is not a run name (letters, digits, _ - = . +): \
                 not a manifest written by regulab",
                manifest_path.display()
            );
        }
        Ok(v.to_string())
    };
    let spec = RunSpec {
        experiment: name("experiment", &manifest.identity.experiment)?,
        name: name("run", &manifest.identity.run)?,
        grid: manifest.identity.grid.clone().into_iter().collect(),
        config,
    };
    let dataset = load_checked_data(&spec, &manifest, &manifest_path, opts, cache)?;

    if let Some(parent) = rerun_dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // a directory of our own: never one that exists already
    std::fs::create_dir(rerun_dir)
        .with_context(|| format!("creating the rerun's directory {}", rerun_dir.display()))?;
    let run_opts = RunOptions {
        out: rerun_dir.parent().unwrap_or(rerun_dir).to_path_buf(),
        threads: opts.threads.max(1),
        jobs: 1,
        progress: Progress::Quiet,
        resume: false,
        halt_after_epoch: None,
    };
    // Reproducibility: the rerun may use any number of threads; every kernel gives the
    // same bits for any pool size, so a difference is never the thread count's.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(run_opts.threads)
        .build()?;
    pool.install(|| run::train_fresh(&spec, &dataset, rerun_dir, &run_opts))
        .with_context(|| format!("rerunning {}", run_dir.display()))?;
    // the summary row the rerun gives, read back as the outputs read it
    let rerun = run::RunSummary::read(rerun_dir)?;
    let differences = compare_run_dirs(run_dir, rerun_dir)?;
    let (environment, environment_info) = environment_differences(&manifest.environment);
    Ok((
        RunReport {
            run_dir: run_dir.to_path_buf(),
            environment,
            environment_info,
            differences,
            not_verified: None,
        },
        rerun,
    ))
}

/// Load the data a manifest names and check every file against its recorded SHA-256.
fn load_checked_data(
    spec: &RunSpec,
    manifest: &Manifest,
    manifest_path: &Path,
    opts: &VerifyOptions,
    cache: &mut DataCache,
) -> Result<Arc<Dataset>> {
    let data = &spec.config.data;
    let dir = match (&opts.data_dir, manifest.environment.data_dir.as_deref()) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => bail!(
            "{}: no `dataset.dir` recorded; pass --data-dir",
            manifest_path.display()
        ),
    };
    let key = (run::data_key(data), dir.clone());
    let dataset = match cache.get(&key) {
        Some(d) => d.clone(),
        None => {
            let kind = match data.dataset.parse::<DatasetName>() {
                Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => known,
                _ => DatasetName::Custom,
            };
            let explicit = opts.data_dir.is_some();
            let loaded = run::load_dataset_from(data, kind, &dir).with_context(|| {
                format!(
                    "loading the data of {} from {}{}",
                    manifest_path.display(),
                    dir.display(),
                    if explicit {
                        ""
                    } else {
                        " (the directory in the manifest; pass --data-dir DIR if the files are elsewhere)"
                    }
                )
            })?;
            let d = Arc::new(loaded);
            cache.insert(key, d.clone());
            d
        }
    };
    let recorded = &manifest.identity.dataset.files;
    if recorded.len() != dataset.files.len() {
        bail!(
            "{}: records {} data files, the config reads {}",
            manifest_path.display(),
            recorded.len(),
            dataset.files.len()
        );
    }
    for (r, f) in recorded.iter().zip(&dataset.files) {
        let expected = &r.raw_sha256;
        if *expected != f.raw_sha256 {
            bail!(
                "data file {}: its SHA-256 is {}, but the run was trained on {} with SHA-256 {expected}: \
                 not the same data (pass --data-dir DIR to point at the original files)",
                f.path.display(),
                f.raw_sha256,
                r.name
            );
        }
    }
    Ok(dataset)
}
