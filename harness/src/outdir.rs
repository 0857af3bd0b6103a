//! An output directory of `regulab run` as a whole: its plan, what in it is regulab's,
//! and the rule that results are never replaced silently.
//!
//! * `DIR/plan.json` ([`PlanFile`]) records the runs of the plan that wrote `DIR`
//!   (names, experiments, each resolved config's SHA-256), written before training.
//!   `regulab plot` and `regulab verify` read the runs it lists, never whatever
//!   subdirectories happen to be there; `--resume` continues only the same plan.
//! * regulab's own files ([`survey`]): `summary.csv`, `aggregate.csv`, `report.html`,
//!   `plan.json`, the figures in `plots/`, run directories (subdirectories holding any
//!   of [`RUN_FILES`]) and the temporary files of interrupted atomic writes. Anything
//!   else is the user's and is never removed.
//! * A directory holding results is refused unless the command says `--resume` or
//!   `--overwrite` ([`remove_results`]: regulab's files only, listed as removed).
//!
//! Every name read from a file (a run in `plan.json` or `summary.csv`) must be a run
//! name ([`is_run_name`]) before it is joined to a path.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::Plan;

/// The plan of an output directory.
pub const PLAN_FILE: &str = "plan.json";
/// One row per run, written when every run has finished.
pub const SUMMARY_FILE: &str = "summary.csv";
/// One row per configuration (statistics over its seeds), written with the summary.
pub const AGGREGATE_FILE: &str = "aggregate.csv";
/// The HTML report.
pub const REPORT_FILE: &str = "report.html";
/// The figures.
pub const PLOTS_DIR: &str = "plots";
/// The files `regulab run` writes into a run directory.
pub const RUN_FILES: &[&str] = &[
    "epochs.csv",
    "init.safetensors",
    "model.safetensors",
    "manifest.json",
    crate::checkpoint::FILE_NAME,
];

/// Value of [`PlanFile::format`].
pub const PLAN_FORMAT: &str = "regulab-plan";

/// Whether `name` can be a run's name, and so a directory name: 1 to 200 of letters,
/// digits and `_ - = . +`, not starting with `.` (as the config gives them).
pub fn is_run_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-=.+".contains(c))
}

/// Whether file name `name` is a temporary file of an interrupted atomic write
/// ([`crate::atomic::is_temp_file`]), or one of the `.<name>.safetensors.tmp*` files the
/// model saves of regulab before issue 5 left (recognised so that `--overwrite` still
/// clears old directories; nothing writes them any more).
pub fn is_temp_file(name: &str) -> bool {
    crate::atomic::is_temp_file(name)
        || (name.starts_with('.') && name.contains(".safetensors.tmp"))
}

/// Remove the temporary files of interrupted atomic writes directly in `dir` (not in
/// its subdirectories). Only call it while owning `dir` ([`crate::lock`]): another
/// command's write in progress would lose its temporary file.
pub fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_temp_file(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
            remove_file_if_present(&e.path())?;
        }
    }
    Ok(())
}

fn remove_file_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// One run of a [`PlanFile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedRun {
    /// Run name (its directory).
    pub name: String,
    /// Experiment it belongs to.
    pub experiment: String,
    /// SHA-256 of its resolved config ([`crate::run::config_sha256`]).
    pub config_sha256: String,
}

/// `DIR/plan.json`: the runs of the plan that writes `DIR`, in plan order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// [`PLAN_FORMAT`].
    pub format: String,
    /// The config's name.
    pub name: String,
    /// Every run.
    pub runs: Vec<PlannedRun>,
    /// The keys the plan's grids vary, in the config's axis order (the summary's extra
    /// columns; the runs' manifests record grid values by key only). Absent when no
    /// grid varies anything, and in files written before regulab recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_keys: Option<Vec<String>>,
    /// The configuration `aggregate.csv` compares with, when the config's `reference`
    /// key names one (absent otherwise: the default, `baseline` when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl PlanFile {
    /// The record of `plan`.
    pub fn of(plan: &Plan) -> PlanFile {
        PlanFile {
            format: PLAN_FORMAT.to_string(),
            name: plan.name.clone(),
            runs: plan
                .runs
                .iter()
                .map(|r| PlannedRun {
                    name: r.name.clone(),
                    experiment: r.experiment.clone(),
                    config_sha256: crate::run::config_sha256(&r.config),
                })
                .collect(),
            grid_keys: Some(crate::config::grid_keys(plan)).filter(|k| !k.is_empty()),
            reference: plan.reference.clone(),
        }
    }

    /// Read `dir/plan.json` (`None` without one); every run name is checked.
    pub fn read(dir: &Path) -> Result<Option<PlanFile>> {
        let path = dir.join(PLAN_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let plan: PlanFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a plan written by regulab", path.display()))?;
        if plan.format != PLAN_FORMAT {
            bail!(
                "{}: field `format`: expected \"{PLAN_FORMAT}\"",
                path.display()
            );
        }
        if let Some(bad) = plan.runs.iter().find(|r| !is_run_name(&r.name)) {
            bail!(
                "{}: field `runs[].name`: {:?} is not a run name (letters, digits, _ - = . +)",
                path.display(),
                bad.name
            );
        }
        Ok(Some(plan))
    }

    /// Write `dir/plan.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        let path = dir.join(PLAN_FILE);
        crate::atomic::write(&path, &json).with_context(|| format!("writing {}", path.display()))
    }

    /// Write `dir/plan.json` unless there is one already, atomically and never
    /// replacing one (a hard link of a whole temporary file, which fails when the name
    /// exists): shards starting together write it once. Returns the plan file that is
    /// there afterwards (this one, or the one found).
    pub fn write_new(&self, dir: &Path) -> Result<PlanFile> {
        let path = dir.join(PLAN_FILE);
        if let Some(found) = PlanFile::read(dir)? {
            return Ok(found);
        }
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        // an atomic-write temporary name: shards never remove them (the directory is
        // shared), a command owning the directory removes one left by a crash
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}plan-", crate::atomic::TEMP_PREFIX))
            .suffix(crate::atomic::TEMP_SUFFIX)
            .tempfile_in(dir)
            .with_context(|| format!("writing {}", path.display()))?;
        std::fs::write(tmp.path(), &json)
            .and_then(|()| std::fs::File::open(tmp.path())?.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => Ok(self.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                PlanFile::read(dir)?.with_context(|| format!("{} vanished", path.display()))
            }
            Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }

    /// The run names, in plan order.
    pub fn run_names(&self) -> Vec<String> {
        self.runs.iter().map(|r| r.name.clone()).collect()
    }
}

/// What of regulab's a directory holds (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// regulab's files directly in the directory: summary, report, plan, and run files
    /// when the directory is itself a run directory.
    pub files: Vec<String>,
    /// Figure files in `plots/`.
    pub figures: Vec<String>,
    /// Run directories, by name.
    pub runs: Vec<String>,
}

impl Survey {
    /// Whether the directory holds any result of regulab.
    pub fn holds_results(&self) -> bool {
        !(self.files.is_empty() && self.figures.is_empty() && self.runs.is_empty())
    }

    /// A short description: `summary.csv, plots/ (8 figures), 3 run directories (a, b, c)`.
    pub fn describe(&self) -> String {
        let mut parts = self.files.clone();
        if !self.figures.is_empty() {
            parts.push(format!("{PLOTS_DIR}/ ({} figures)", self.figures.len()));
        }
        if !self.runs.is_empty() {
            parts.push(format!(
                "{} run director{} ({})",
                self.runs.len(),
                if self.runs.len() == 1 { "y" } else { "ies" },
                list(&self.runs, 6)
            ));
        }
        parts.join(", ")
    }
}

/// `a, b, c and 4 more`.
fn list(names: &[String], at_most: usize) -> String {
    let mut s = names
        .iter()
        .take(at_most)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > at_most {
        s.push_str(&format!(" and {} more", names.len() - at_most));
    }
    s
}

/// The names of the entries of `dir` (empty when it does not exist), sorted.
fn entries(dir: &Path) -> Result<Vec<(String, std::fs::FileType)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading directory {}", dir.display())),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("reading directory {}", dir.display()))?;
        let t = e
            .file_type()
            .with_context(|| format!("reading {}", e.path().display()))?;
        v.push((e.file_name().to_string_lossy().into_owned(), t));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// Whether `dir` holds any of [`RUN_FILES`].
fn is_run_dir(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).is_file())
}

/// What of regulab's `dir` holds (nothing when it does not exist). Symbolic links are
/// never followed.
pub fn survey(dir: &Path) -> Result<Survey> {
    let mut s = Survey::default();
    for (name, t) in entries(dir)? {
        let own_file = [SUMMARY_FILE, AGGREGATE_FILE, REPORT_FILE, PLAN_FILE]
            .contains(&name.as_str())
            || RUN_FILES.contains(&name.as_str());
        if t.is_file() && own_file {
            s.files.push(name);
        } else if t.is_dir() && name == PLOTS_DIR {
            s.figures = entries(&dir.join(PLOTS_DIR))?
                .into_iter()
                .filter(|(n, t)| t.is_file() && crate::plot::is_figure_file(n))
                .map(|(n, _)| n)
                .collect();
        } else if t.is_dir() && is_run_dir(&dir.join(&name)) {
            s.runs.push(name);
        }
    }
    Ok(s)
}

/// What [`remove_results`] did.
#[derive(Clone, Debug, Default)]
pub struct Removal {
    /// What was removed, relative to the directory (directories end with `/`).
    pub removed: Vec<String>,
    /// What was left because it is not regulab's, relative to the directory.
    pub kept: Vec<String>,
}

impl Removal {
    /// What `--overwrite` prints.
    pub fn describe(&self, dir: &Path) -> String {
        let mut s = format!(
            "removed from {}: {}",
            dir.display(),
            if self.removed.is_empty() {
                "nothing".to_string()
            } else {
                self.removed.join(", ")
            }
        );
        if !self.kept.is_empty() {
            s.push_str(&format!(
                "\nkept (not written by regulab): {}",
                self.kept.join(", ")
            ));
        }
        s
    }
}

/// Remove regulab's own entries of `sub` (a run directory or `plots/`): the files
/// `own` says are regulab's and temporary files; then the directory itself when
/// nothing else is left in it. Returns whether it was removed.
fn remove_own(
    dir: &Path,
    sub: &str,
    own: impl Fn(&str, &std::fs::FileType) -> bool,
    removal: &mut Removal,
) -> Result<bool> {
    let path = dir.join(sub);
    let mut files = Vec::new();
    for (name, t) in entries(&path)? {
        if own(&name, &t) || (t.is_file() && is_temp_file(&name)) {
            if t.is_dir() {
                std::fs::remove_dir_all(path.join(&name))
                    .with_context(|| format!("removing {}", path.join(&name).display()))?;
                files.push(format!("{name}/"));
            } else {
                remove_file_if_present(&path.join(&name))?;
                files.push(name);
            }
        } else {
            removal.kept.push(format!("{sub}/{name}"));
        }
    }
    let emptied = std::fs::read_dir(&path)
        .with_context(|| format!("reading directory {}", path.display()))?
        .next()
        .is_none();
    if emptied {
        std::fs::remove_dir(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    removal.removed.push(if emptied {
        format!("{sub}/ ({})", files.join(" "))
    } else {
        format!("{sub}/{{{}}}", files.join(","))
    });
    Ok(emptied)
}

/// `--overwrite`: remove the results `survey` found in `dir` (regulab's files only, see
/// the module docs; a run directory's own lock file and figures too) and say what.
/// Only call it while owning `dir` ([`crate::lock`]).
pub fn remove_results(dir: &Path, survey: &Survey) -> Result<Removal> {
    let mut removal = Removal::default();
    for f in &survey.files {
        remove_file_if_present(&dir.join(f))?;
        removal.removed.push(f.clone());
    }
    if dir.join(PLOTS_DIR).is_dir() && !survey.figures.is_empty() {
        remove_own(
            dir,
            PLOTS_DIR,
            |n, t| t.is_file() && crate::plot::is_figure_file(n),
            &mut removal,
        )?;
    }
    for run in &survey.runs {
        remove_own(
            dir,
            run,
            |n, t| {
                (t.is_file()
                    && (RUN_FILES.contains(&n) || n == REPORT_FILE || n == crate::lock::LOCK_FILE))
                    || (t.is_dir() && n == PLOTS_DIR)
            },
            &mut removal,
        )?;
    }
    remove_stale_temp_files(dir)?;
    let touched: BTreeSet<&str> = survey.runs.iter().map(String::as_str).collect();
    for (name, _) in entries(dir)? {
        let ours = name == crate::lock::LOCK_FILE
            || name == crate::lock::RUN_LOCKS_DIR
            || name == PLOTS_DIR
            || touched.contains(name.as_str());
        if !ours {
            removal.kept.push(name);
        }
    }
    Ok(removal)
}

/// Before `--resume` trains anything: every run directory in `dir` must be one of
/// `plan`'s, and `dir/plan.json`, if there, must record the same runs.
pub fn check_same_plan(dir: &Path, plan: &Plan, survey: &Survey) -> Result<()> {
    let names: BTreeSet<&str> = plan.runs.iter().map(|r| r.name.as_str()).collect();
    if let Some(stray) = survey.runs.iter().find(|r| !names.contains(r.as_str())) {
        bail!(
            "cannot resume in {}: it holds run directory `{stray}`, which this config's plan \
             does not have (made with another config or other --set?); give the options it \
             was made with, or use --overwrite or another --out",
            dir.display()
        );
    }
    if let Some(recorded) = PlanFile::read(dir)? {
        let now = PlanFile::of(plan);
        if recorded.runs != now.runs {
            let (was, is) = (recorded.run_names(), now.run_names());
            let how = if was != is {
                format!(
                    "it records the runs {}; this config gives {}",
                    list(&was, 8),
                    list(&is, 8)
                )
            } else {
                let r = recorded
                    .runs
                    .iter()
                    .zip(&now.runs)
                    .find(|(a, b)| a != b)
                    .map_or("?", |(a, _)| a.name.as_str());
                format!("run `{r}` has another config there")
            };
            bail!(
                "cannot resume in {}: {} is the plan of another config ({how}); give the \
                 config and --set options it was made with, or use --overwrite or another --out",
                dir.display(),
                dir.join(PLAN_FILE).display()
            );
        }
    }
    Ok(())
}

/// How `regulab run` treats results already in its output directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A directory holding results is refused.
    Fresh,
    /// Continue them (`--resume`): the plan must be theirs.
    Resume,
    /// Replace them (`--overwrite`): the caller removes them ([`remove_results`]) once
    /// everything else has been checked.
    Overwrite,
}

/// An output directory owned by this command.
#[derive(Debug)]
pub struct Owner {
    /// The exclusive lock, held until dropped.
    pub lock: crate::lock::DirLock,
    /// What of regulab's the directory held when it was claimed.
    pub survey: Survey,
}

/// Own `dir` (which must exist) for `regulab run` ([`crate::lock`], exclusive), then
/// check what it holds against `mode`: results are refused without `--resume` or
/// `--overwrite`; with `--resume` the directory must be this plan's
/// ([`crate::run::check_resumable`]).
pub fn claim(dir: &Path, plan: &Plan, mode: Mode) -> Result<Owner> {
    let lock = crate::lock::lock_dir(dir, crate::lock::Access::Exclusive, "regulab run")?;
    let survey = survey(dir)?;
    if survey.holds_results() {
        match mode {
            Mode::Fresh => bail!(
                "{} already holds results ({}); to continue them give --resume, to replace \
                 them --overwrite (which first removes regulab's files there and nothing \
                 else), or write to another --out",
                dir.display(),
                survey.describe()
            ),
            Mode::Resume => crate::run::check_resumable(plan, dir)?,
            Mode::Overwrite => {}
        }
    }
    Ok(Owner { lock, survey })
}

/// An output directory that one shard of a plan writes into, beside other shards.
#[derive(Debug)]
pub struct ShardOwner {
    /// The directory, held shared (other shards hold it too; `regulab run`, `merge`,
    /// `plot` and `--overwrite`, which need it whole, are excluded).
    pub dir_lock: crate::lock::DirLock,
    /// The shard's run directories, held exclusively.
    pub run_locks: Vec<crate::lock::DirLock>,
}

/// Own `dir` (which must exist) for one shard of `plan` whose runs are named
/// `shard_runs`: `dir` shared, each of the shard's runs exclusively (a run another
/// command trains is refused at once, naming its holder). Then, before anything is
/// trained: every run directory in `dir` must be one of `plan`'s and `plan.json`, if
/// there, must be `plan`'s ([`check_same_plan`]); the shard's own runs may hold results
/// only with `--resume`; and `plan.json` is written if it is not there yet
/// ([`PlanFile::write_new`]: the same bytes whichever shard writes it). `--overwrite`
/// is refused: it would remove the other shards' results.
pub fn claim_shard(dir: &Path, plan: &Plan, shard_runs: &[&str], mode: Mode) -> Result<ShardOwner> {
    use crate::lock::{Access, lock_dir, lock_run};
    if mode == Mode::Overwrite {
        bail!(
            "--overwrite with --shard: a shard owns only its own runs in {}, not the \
             directory; remove the results with `regulab run CONFIG --out {} --overwrite` \
             (or by hand) before the shards start",
            dir.display(),
            dir.display()
        );
    }
    let command = "regulab run --shard";
    let dir_lock = lock_dir(dir, Access::Shared, command)?;
    let run_locks = shard_runs
        .iter()
        .map(|r| lock_run(dir, r, Access::Exclusive, command))
        .collect::<Result<Vec<_>, _>>()?;
    let survey = survey(dir)?;
    check_same_plan(dir, plan, &survey)?;
    if mode == Mode::Fresh {
        let mine: BTreeSet<&str> = shard_runs.iter().copied().collect();
        let held: Vec<String> = survey
            .runs
            .iter()
            .filter(|r| mine.contains(r.as_str()))
            .cloned()
            .collect();
        if !held.is_empty() {
            bail!(
                "{} already holds results of this shard's runs ({}); to continue them give \
                 --resume, or write to another --out",
                dir.display(),
                list(&held, 6)
            );
        }
    }
    let now = PlanFile::of(plan);
    let found = now.write_new(dir)?;
    if found.runs != now.runs {
        bail!(
            "{}: the plan of another config (written by another shard while this one \
             started); give the config and --set options it was made with, or another --out",
            dir.join(PLAN_FILE).display()
        );
    }
    Ok(ShardOwner {
        dir_lock,
        run_locks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names() {
        for ok in ["base", "l2_l2=1e-3", "a+b", "x.y"] {
            assert!(is_run_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "/abs", "a/b", ".hidden", "a b", "é"] {
            assert!(!is_run_name(bad), "{bad}");
        }
    }

    #[test]
    fn survey_and_overwrite_touch_regulabs_files_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for f in ["summary.csv", "report.html", "plan.json", "notes.txt"] {
            std::fs::write(p.join(f), f).unwrap();
        }
        std::fs::create_dir_all(p.join("plots")).unwrap();
        for f in ["cost_a.svg", "valid_acc.png", ".regulab-x.tmp", "mine.svg"] {
            std::fs::write(p.join("plots").join(f), f).unwrap();
        }
        std::fs::create_dir_all(p.join("a")).unwrap();
        for f in ["epochs.csv", "manifest.json", "notes.txt", ".regulab-y.tmp"] {
            std::fs::write(p.join("a").join(f), f).unwrap();
        }
        std::fs::create_dir_all(p.join("b")).unwrap();
        std::fs::write(p.join("b/init.safetensors"), b"x").unwrap();
        std::fs::create_dir_all(p.join("data")).unwrap();
        std::fs::write(p.join("data/epochs.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(p.join("b"), p.join("link")).unwrap();

        let s = survey(p).unwrap();
        assert_eq!(s.files, ["plan.json", "report.html", "summary.csv"]);
        assert_eq!(s.figures, ["cost_a.svg", "valid_acc.png"]);
        assert_eq!(s.runs, ["a", "b"]);
        assert!(s.holds_results());
        assert!(
            s.describe().contains("2 run directories (a, b)"),
            "{}",
            s.describe()
        );

        let r = remove_results(p, &s).unwrap();
        let text = r.describe(p);
        assert!(
            text.contains("summary.csv") && text.contains("b/ (init.safetensors)"),
            "{text}"
        );
        let mut left: Vec<String> = walk(p);
        left.sort();
        assert_eq!(
            left,
            [
                "a/notes.txt",
                "data/epochs.txt",
                "link",
                "notes.txt",
                "plots/mine.svg"
            ]
        );
        assert!(r.kept.contains(&"a/notes.txt".to_string()), "{:?}", r.kept);
        assert!(r.kept.contains(&"notes.txt".to_string()), "{:?}", r.kept);
        assert!(!survey(p).unwrap().holds_results());
    }

    fn walk(p: &Path) -> Vec<String> {
        let mut v = Vec::new();
        for (n, t) in entries(p).unwrap() {
            if t.is_dir() {
                v.extend(walk(&p.join(&n)).into_iter().map(|c| format!("{n}/{c}")));
            } else {
                v.push(n);
            }
        }
        v
    }
}
