//! `regulab merge DIR`: the outputs of a sweep that was trained in shards (Slurm array
//! tasks, or `regulab run --shard I/N` by hand): `summary.csv`, the figures and
//! `report.html`, from `DIR/plan.json` and the run directories alone.
//!
//! The outputs are made by the function `regulab run` ends with,
//! [`crate::run::write_outputs`], which reads only `plan.json` and the run
//! directories: so they are byte for byte what one `regulab run` of the config writes
//! (tested in `tests/shard.rs`).
//!
//! Before anything is written, every run of the plan is checked ([`RunState`]):
//! missing, unfinished, trained with another config (or under another name), or on
//! other data (another file digest than the plan's first run of the same data) are
//! refused, all listed at once, with the Slurm task that should have trained each run
//! and its log when the sweep was written by `regulab slurm`; `--partial` writes the
//! outputs of the finished runs instead and lists the others. Runs trained on CPUs
//! whose kernel classes differ are noted (see the README's reproducibility section).
//!
//! Merge owns `DIR` exclusively: while a shard still trains there (holding `DIR`
//! shared) it is refused at once, naming the holder.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::lock::{self, Access};
use crate::outdir::{PlanFile, PlannedRun};
use crate::plot::PlotOptions;
use crate::run::{self, Manifest, Outputs};

/// What a planned run's directory holds.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// Finished (`completed` or `diverged`).
    Done,
    /// No directory, or no manifest in it.
    Missing,
    /// Started, not finished: the last epoch trained.
    Unfinished {
        /// Epochs its manifest records.
        epochs: u32,
    },
    /// Not this plan's run, or not on this plan's data: why.
    Foreign(String),
}

/// A run that is not merged, and why.
#[derive(Clone, Debug)]
pub struct LeftOut {
    /// The run.
    pub run: String,
    /// Its state.
    pub state: RunState,
    /// The Slurm task that trains it and that task's logs, when the sweep was written by
    /// `regulab slurm`.
    pub task: Option<String>,
}

impl LeftOut {
    /// One line: the run, its state, the task.
    pub fn describe(&self) -> String {
        let what = match &self.state {
            RunState::Done => "finished".to_string(),
            RunState::Missing => "missing (never started)".to_string(),
            RunState::Unfinished { epochs } => format!("unfinished ({epochs} epoch(s) trained)"),
            RunState::Foreign(why) => why.clone(),
        };
        match &self.task {
            Some(t) => format!("{}: {what}; {t}", self.run),
            None => format!("{}: {what}", self.run),
        }
    }
}

/// What `regulab merge` wrote.
#[derive(Debug)]
pub struct Merged {
    /// The outputs (summary, figures).
    pub outputs: Outputs,
    /// The runs left out (with `--partial`).
    pub left_out: Vec<LeftOut>,
    /// Notes (kernel classes).
    pub notes: Vec<String>,
}

/// The state of planned run `p` in `dir`, and its manifest when it has one.
fn run_state(dir: &Path, p: &PlannedRun) -> Result<(RunState, Option<Manifest>)> {
    let run_dir = dir.join(&p.name);
    let Some(m) = run::read_manifest(&run_dir)? else {
        return Ok((RunState::Missing, None));
    };
    let path = run_dir.join("manifest.json");
    let state = if m.identity.run != p.name {
        RunState::Foreign(format!(
            "{} is the manifest of run {}",
            path.display(),
            m.identity.run
        ))
    } else if run::config_sha256(&m.identity.config) != p.config_sha256 {
        RunState::Foreign(format!(
            "trained with another config than plan.json records (another config or other \
             --set options; see {})",
            path.display()
        ))
    } else if !m.results.status.is_finished()
        || !run_dir.join("model.safetensors").is_file()
        || !run_dir.join("epochs.csv").is_file()
    {
        // a finished manifest without its model or CSV: unfinished too
        RunState::Unfinished {
            epochs: m.results.epochs_trained,
        }
    } else {
        RunState::Done
    };
    Ok((state, Some(m)))
}

/// Runs of the same data (the same `data` table) must have read the same files: the
/// first finished run of each data key sets them; a run that differs is foreign.
fn check_same_data(states: &mut [(PlannedRun, RunState, Option<Manifest>)]) {
    let mut first: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (p, state, m) in states.iter_mut() {
        let (RunState::Done, Some(m)) = (&*state, m) else {
            continue;
        };
        let key = crate::data::load::data_key(&m.identity.config.data);
        let files: Vec<String> = m.data_sha256().into_iter().map(String::from).collect();
        match first.get(&key) {
            None => {
                first.insert(key, (p.name.clone(), files));
            }
            Some((other, theirs)) if *theirs != files => {
                *state = RunState::Foreign(format!(
                    "trained on other data than run {other} (the SHA-256 of its data files \
                     differ)"
                ));
            }
            Some(_) => {}
        }
    }
}

/// The largest sweep script [`slurm_tasks`] reads.
const MAX_SCRIPT_BYTES: u64 = 1 << 20;

/// The number of array tasks of the sweep script `regulab slurm` wrote in `dir`
/// (its `--shard slurm/N`), if there is one.
fn slurm_tasks(dir: &Path) -> Option<usize> {
    let path = dir
        .join(crate::slurm::script::SLURM_DIR)
        .join(crate::slurm::script::SWEEP_SCRIPT);
    // a script regulab wrote is a few kilobytes; one edited into something else is
    // not read whole
    if std::fs::metadata(&path).ok()?.len() > MAX_SCRIPT_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.find("--shard slurm/")? + "--shard slurm/".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|&n| n > 0)
}

/// The Slurm task that trains run `index` of the plan, and its logs in `dir`.
fn task_note(dir: &Path, tasks: usize, index: usize) -> String {
    let task = index % tasks;
    let logs_dir = dir.join(crate::slurm::script::SLURM_DIR).join("logs");
    let suffix = format!("_{task}.log");
    let mut logs: Vec<String> = std::fs::read_dir(&logs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sweep-") && n.ends_with(&suffix))
        .collect();
    logs.sort();
    if logs.is_empty() {
        format!(
            "Slurm array task {task} trains it; it has no log in {} (still pending, or \
             never submitted)",
            logs_dir.display()
        )
    } else {
        let paths: Vec<_> = logs.iter().map(|n| logs_dir.join(n)).collect();
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        // the newest array's log (job ids grow; the same length sorts as numbers)
        let newest = paths
            .iter()
            .max_by_key(|p| (p.as_os_str().len(), p.as_os_str().to_owned()));
        match newest.and_then(|p| last_error(p)) {
            Some(error) => format!(
                "Slurm array task {task} trains it and failed: {error}; read its log: {}",
                shown.join(", ")
            ),
            None => format!(
                "Slurm array task {task} trains it; read its log: {}",
                shown.join(", ")
            ),
        }
    }
}

/// How much of the end of a task's log is searched for its error.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// The last `error: ...` line of the log at `path` (regulab's error line, which a task
/// that failed for good ends with), within its last [`LOG_TAIL_BYTES`].
fn last_error(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    f.take(LOG_TAIL_BYTES).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines()
        .rev()
        .find(|l| l.starts_with("error: "))
        .map(|l| l.chars().take(400).collect())
}

/// The distinct kernel classes of the finished runs, with their runs, when there are
/// several.
fn kernel_note(manifests: &[(&str, &Manifest)]) -> Option<String> {
    let mut classes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, m) in manifests {
        classes
            .entry(m.environment.kernels.bits_class.as_str())
            .or_default()
            .push(name);
    }
    (classes.len() > 1).then(|| {
        let mut s = String::from(
            "the runs were trained on CPUs of different kernel classes (README, \
             Reproducibility: runs of another kernel class can differ in their last bits \
             from a one-machine run):",
        );
        for (class, runs) in &classes {
            let shown: Vec<&str> = runs.iter().take(4).copied().collect();
            let _ = write!(s, " {class}: {} run(s) ({});", runs.len(), shown.join(", "));
        }
        s.pop();
        s
    })
}

/// Merge `dir` (see the module docs): with `partial`, the outputs of the finished runs
/// even when others are not; `plot`: draw the figures and report too.
pub fn merge(dir: &Path, partial: bool, plot: Option<&PlotOptions<'_>>) -> Result<Merged> {
    if !dir.is_dir() {
        bail!("{}: no such directory", dir.display());
    }
    let _owner = lock::lock_dir(dir, Access::Exclusive, "regulab merge")?;
    let planned = PlanFile::read(dir)?.with_context(|| {
        format!(
            "{}: no plan.json: not an output directory of regulab run or regulab slurm",
            dir.display()
        )
    })?;
    let mut states = Vec::with_capacity(planned.runs.len());
    for p in &planned.runs {
        let (state, m) = run_state(dir, p)?;
        states.push((p.clone(), state, m));
    }
    check_same_data(&mut states);
    let tasks = slurm_tasks(dir);
    let left_out: Vec<LeftOut> = states
        .iter()
        .enumerate()
        .filter(|(_, (_, s, _))| *s != RunState::Done)
        .map(|(i, (p, s, _))| LeftOut {
            run: p.name.clone(),
            state: s.clone(),
            task: tasks.map(|n| task_note(dir, n, i)),
        })
        .collect();
    if !left_out.is_empty() && !partial {
        let mut msg = format!(
            "cannot merge {}: {} of its {} runs are not finished runs of its plan:",
            dir.display(),
            left_out.len(),
            planned.runs.len()
        );
        for l in &left_out {
            let _ = write!(msg, "\n  {}", l.describe());
        }
        let _ = write!(
            msg,
            "\nnothing was written. Train them (submit DIR/slurm/sweep.sbatch again, or \
             `regulab run CONFIG --out DIR --resume`), or merge the finished runs only: \
             regulab merge {} --partial",
            dir.display()
        );
        bail!(msg);
    }
    if left_out.len() == planned.runs.len() {
        bail!(
            "cannot merge {}: none of its {} runs has finished",
            dir.display(),
            planned.runs.len()
        );
    }
    let done: BTreeSet<&str> = states
        .iter()
        .filter(|(_, s, _)| *s == RunState::Done)
        .map(|(p, _, _)| p.name.as_str())
        .collect();
    let manifests: Vec<(&str, &Manifest)> = states
        .iter()
        .filter(|(_, s, _)| *s == RunState::Done)
        .filter_map(|(p, _, m)| m.as_ref().map(|m| (p.name.as_str(), m)))
        .collect();
    let notes: Vec<String> = kernel_note(&manifests).into_iter().collect();
    let outputs = run::write_outputs_of(dir, plot, &|name| done.contains(name))?;
    Ok(Merged {
        outputs,
        left_out,
        notes,
    })
}
