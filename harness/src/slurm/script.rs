//! The text of `DIR/slurm/sweep.sbatch` and `DIR/slurm/merge.sbatch`: pure functions of
//! a [`Sweep`], every line explained by a comment, so that a person can read and edit
//! the scripts before submitting them.
//!
//! Everything put into a script is checked first ([`Sweep::check`]): values on
//! `#SBATCH` lines (which sbatch splits at white space and does not unquote) are
//! limited to the characters their Slurm syntax needs, and every value on a shell
//! command line is single-quoted when it needs to be ([`quote`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where a task's log goes, relative to the output directory: `%A` is the array's job
/// id, `%a` the task id (sbatch's file name patterns).
pub const SWEEP_LOG_PATTERN: &str = "slurm/logs/sweep-%A_%a.log";

/// Where the merge job's log goes, relative to the output directory (`%j`: its job id).
pub const MERGE_LOG_PATTERN: &str = "slurm/logs/merge-%j.log";

/// The directory of the scripts, relative to the output directory.
pub const SLURM_DIR: &str = "slurm";

/// The job array's script, in [`SLURM_DIR`].
pub const SWEEP_SCRIPT: &str = "sweep.sbatch";

/// The merge job's script, in [`SLURM_DIR`].
pub const MERGE_SCRIPT: &str = "merge.sbatch";

/// Seconds before its time limit that a task is warned (SIGUSR1 to the batch script),
/// so that regulab stops at a safe point and the task requeues itself. Slurm may send
/// the signal up to a minute late, so this leaves at least a minute.
pub const WARN_SECONDS: u32 = 120;

/// How often a task requeues itself after a time-limit warning, at most (a task whose
/// epoch never fits in its time limit would otherwise be requeued for ever).
pub const MAX_REQUEUES: u32 = 20;

/// The path of task `task`'s log in array job `array_job` (see [`SWEEP_LOG_PATTERN`]).
pub fn task_log(out: &Path, array_job: &str, task: u32) -> PathBuf {
    out.join(
        SWEEP_LOG_PATTERN
            .replace("%A", array_job)
            .replace("%a", &task.to_string()),
    )
}

/// What each task asks of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// `--partition` (none: the cluster's default partition).
    pub partition: Option<String>,
    /// `--time` of each task, in a Slurm time format (none: the partition's default).
    pub time: Option<String>,
    /// `--cpus-per-task`: regulab trains with this many threads.
    pub cpus_per_task: u32,
    /// `--mem` of each task, e.g. `4G` (none: the partition's default).
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=...%K`; none: no limit).
    pub max_parallel: Option<u32>,
    /// Runs per task (`R`): the array has `ceil(runs / R)` tasks.
    pub runs_per_task: u32,
}

/// A sweep to write job scripts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// The config's name (a plain name: letters, digits, `_ - .`).
    pub name: String,
    /// Runs in its plan.
    pub runs: usize,
    /// The config file, absolute.
    pub config: PathBuf,
    /// `--set KEY=VALUE` options, as given (each already parsed once).
    pub sets: Vec<String>,
    /// `--data-dir`, absolute.
    pub data_dir: Option<PathBuf>,
    /// The output directory, absolute.
    pub out: PathBuf,
    /// The regulab binary every task runs, absolute.
    pub regulab: PathBuf,
    /// regulab's version, for the header.
    pub version: String,
    /// What each task asks for.
    pub resources: Resources,
}

/// A sweep whose scripts cannot be written.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScriptError {
    /// A value that does not fit its option.
    #[error("{option} {value:?}: expected {expected}")]
    Invalid {
        /// The option, e.g. `--time`.
        option: &'static str,
        /// What was given.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
}

fn invalid(option: &'static str, value: &str, expected: &'static str) -> ScriptError {
    ScriptError::Invalid {
        option,
        value: value.to_string(),
        expected,
    }
}

impl Sweep {
    /// Number of array tasks: `ceil(runs / runs_per_task)` (at least 1).
    pub fn tasks(&self) -> u32 {
        let r = self.resources.runs_per_task.max(1) as usize;
        u32::try_from(self.runs.div_ceil(r).max(1)).unwrap_or(u32::MAX)
    }

    /// Check every value that goes into the scripts.
    pub fn check(&self) -> Result<(), ScriptError> {
        let res = &self.resources;
        if self.runs == 0 {
            return Err(invalid("CONFIG", &self.name, "a plan with runs"));
        }
        if let Some(p) = &res.partition
            && !is_partition(p)
        {
            return Err(invalid(
                "--partition",
                p,
                "a partition name (letters, digits, _ - .), or several separated by commas",
            ));
        }
        if let Some(t) = &res.time
            && !is_slurm_time(t)
        {
            return Err(invalid(
                "--time",
                t,
                "a Slurm time: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS, \
                 DAYS-HOURS:MINUTES or DAYS-HOURS:MINUTES:SECONDS",
            ));
        }
        if let Some(m) = &res.mem
            && !is_mem(m)
        {
            return Err(invalid(
                "--mem",
                m,
                "a size in megabytes, or with a unit K, M, G or T (e.g. 4G)",
            ));
        }
        let max_threads = u32::try_from(crate::limits::MAX_THREADS).unwrap_or(u32::MAX);
        if !(1..=max_threads).contains(&res.cpus_per_task) {
            return Err(invalid(
                "--cpus-per-task",
                &res.cpus_per_task.to_string(),
                "1 to 256 (regulab's thread limit)",
            ));
        }
        if res.max_parallel == Some(0) {
            return Err(invalid("--max-parallel", "0", "at least 1"));
        }
        if res.runs_per_task == 0 {
            return Err(invalid("--runs-per-task", "0", "at least 1"));
        }
        for (option, path) in [
            ("--out", Some(&self.out)),
            ("--regulab", Some(&self.regulab)),
            ("CONFIG", Some(&self.config)),
            ("--data-dir", self.data_dir.as_ref()),
        ] {
            let Some(path) = path else { continue };
            let Some(text) = path.to_str().filter(|_| path.is_absolute()) else {
                return Err(invalid(
                    option,
                    &path.to_string_lossy(),
                    "an absolute UTF-8 path",
                ));
            };
            // the output directory goes on #SBATCH --output lines, which sbatch splits
            // at white space and where % starts a file name pattern
            if option == "--out"
                && text
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "%\"'\\".contains(c))
            {
                return Err(invalid(
                    option,
                    text,
                    "a path without white space, quotes, backslashes or % (it goes on \
                     #SBATCH lines); a symbolic link to the directory will do",
                ));
            }
        }
        Ok(())
    }
}

/// A partition list: `name[,name...]`.
fn is_partition(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|p| {
            !p.is_empty()
                && p.len() <= 64
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        })
}

/// A Slurm time limit (sbatch(1), `--time`): `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`,
/// `D-H:M:S`, every part decimal digits.
fn is_slurm_time(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    days.is_none_or(digits) && parts.iter().all(|p| digits(p)) && (1..=3).contains(&parts.len())
}

/// A memory size: digits, then optionally one of `K M G T`.
fn is_mem(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit = s.len() - digits.len();
    !digits.is_empty()
        && digits.len() <= 12
        && unit <= 1
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

/// `s` single-quoted for a POSIX shell unless it is made of `[A-Za-z0-9_./=:,+@%-]` only.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// A script being written: `# comment` lines, then the line they explain.
struct Script(String);

impl Script {
    fn comment(&mut self, text: &str) -> &mut Self {
        for l in text.lines() {
            if l.is_empty() {
                self.0.push_str("#\n");
            } else {
                let _ = writeln!(self.0, "# {l}");
            }
        }
        self
    }

    fn line(&mut self, text: &str) -> &mut Self {
        self.0.push_str(text);
        self.0.push('\n');
        self
    }

    fn blank(&mut self) -> &mut Self {
        self.0.push('\n');
        self
    }

    /// The `#SBATCH` lines both scripts share: partition and time limit (`of`: whose).
    fn placement(&mut self, res: &Resources, of: &str) -> &mut Self {
        match &res.partition {
            Some(p) => self
                .comment("The partition (queue) to run in.")
                .line(&format!("#SBATCH --partition={p}")),
            None => self.comment("No --partition: the cluster's default partition."),
        };
        match &res.time {
            Some(t) => self
                .comment(&format!("Wall-time limit of {of}."))
                .line(&format!("#SBATCH --time={t}")),
            None => self.comment("No --time: the partition's default time limit."),
        };
        self
    }
}

/// `DIR/slurm/sweep.sbatch`: the job array that trains the sweep's runs.
pub fn sweep_script(s: &Sweep) -> String {
    let res = &s.resources;
    let tasks = s.tasks();
    let last = tasks - 1;
    let per_task = if tasks as usize == s.runs {
        "1 run per task".to_string()
    } else {
        format!("up to {} runs per task", s.runs.div_ceil(tasks as usize))
    };
    let mut w = Script(String::new());
    w.line("#!/bin/bash")
        .comment(&format!(
            "The sweep `{name}` as a Slurm job array, written by `regulab slurm` (regulab {version}).\n\
             \n\
             {runs} runs of {config}\n\
             into {out}: {tasks} array tasks (0-{last}), {per_task}. Task t trains the runs\n\
             whose index i in the plan ({out}/plan.json) has i mod {tasks} = t.\n\
             \n\
             Submit it, then the merge job (regulab slurm --submit does both):\n\
             \x20 sbatch --parsable {me}\n\
             \x20 sbatch --dependency=afterany:ARRAY_JOB_ID {merge}\n\
             Watch: squeue --me (sacct -j ARRAY_JOB_ID where the cluster keeps accounting);\n\
             each task's log: {out}/{log}.\n\
             \n\
             Submitting this script again continues the sweep: finished runs are kept and\n\
             unfinished ones go on from their last completed epoch. Some tasks only:\n\
             \x20 sbatch --array={some} {me}\n\
             \n\
             The #SBATCH lines are sbatch's options (read up to the first command); edit them\n\
             to suit your cluster.",
            name = s.name,
            version = s.version,
            runs = s.runs,
            config = s.config.display(),
            out = s.out.display(),
            me = s.out.join(SLURM_DIR).join(SWEEP_SCRIPT).display(),
            merge = s.out.join(SLURM_DIR).join(MERGE_SCRIPT).display(),
            log = SWEEP_LOG_PATTERN,
            some = if last == 0 { "0".to_string() } else { format!("0,{last}") },
        ))
        .blank()
        .comment("The jobs' name in squeue (the merge job's adds -merge).")
        .line(&format!("#SBATCH --job-name=regulab-{}", s.name));
    match res.max_parallel {
        Some(k) => w
            .comment(&format!(
                "Tasks 0 to {last}, one per shard of the plan; %{k}: at most {k} run at once."
            ))
            .line(&format!("#SBATCH --array=0-{last}%{k}")),
        None => w
            .comment(&format!(
                "Tasks 0 to {last}, one per shard of the plan (append %K to run at most K at once)."
            ))
            .line(&format!("#SBATCH --array=0-{last}")),
    };
    w.placement(res, "each task (not of the whole array)")
        .comment("One process on one node per task: regulab trains with threads, not MPI.")
        .line("#SBATCH --nodes=1")
        .line("#SBATCH --ntasks=1")
        .comment("CPUs of each task: regulab's threads (any number gives the same bits).")
        .line(&format!("#SBATCH --cpus-per-task={}", res.cpus_per_task));
    match &res.mem {
        Some(m) => w
            .comment("Memory of each task.")
            .line(&format!("#SBATCH --mem={m}")),
        None => w.comment("No --mem: the partition's default memory per task."),
    };
    w.comment("Preempted, or its node failed: the task is queued again and resumes.")
        .line("#SBATCH --requeue")
        .comment(&format!(
            "SIGUSR1 to this script {WARN_SECONDS} s before the time limit: regulab stops at a\n\
             safe point and the task requeues itself (at the end of this script)."
        ))
        .line(&format!("#SBATCH --signal=B:USR1@{WARN_SECONDS}"))
        .comment(
            "One log per task (%A: the array's job id, %a: the task id), appended to when the\n\
             task runs again.",
        )
        .line(&format!(
            "#SBATCH --output={}/{SWEEP_LOG_PATTERN}",
            s.out.display()
        ))
        .line("#SBATCH --open-mode=append")
        .blank()
        .comment("An unset variable is an error.")
        .line("set -u")
        .comment(
            "The regulab binary every task runs (regulab slurm --regulab; by default the one\n\
             that wrote this script); every node must see it at this path.",
        )
        .line(&format!("regulab={}", quote_path(&s.regulab)))
        .comment("How often a task may requeue itself after a time-limit warning, at most.")
        .line(&format!("max_requeues={MAX_REQUEUES}"))
        .comment("Who, where and when, at the top of each attempt in the log.")
        .line(&format!(
            "echo \"regulab sweep {}: task $SLURM_ARRAY_TASK_ID of array $SLURM_ARRAY_JOB_ID \
             (job $SLURM_JOB_ID, restart ${{SLURM_RESTART_COUNT:-0}}) on $(hostname) at \
             $(date -u +%FT%TZ)\"",
            s.name
        ))
        .blank();

    let mut args = vec![
        "\"$regulab\" run".to_string(),
        quote_path(&s.config),
        format!("--out {}", quote_path(&s.out)),
    ];
    args.extend(s.sets.iter().map(|set| format!("--set {}", quote(set))));
    if let Some(d) = &s.data_dir {
        args.push(format!("--data-dir {}", quote_path(d)));
    }
    args.extend([
        format!("--shard slurm/{tasks}"),
        "--resume --no-fetch --jobs 1".to_string(),
        "--threads \"${SLURM_CPUS_PER_TASK:-1}\" --quiet &".to_string(),
    ]);
    w.comment(&format!(
        "Train this task's runs. --shard slurm/{tasks}: the runs of task $SLURM_ARRAY_TASK_ID of\n\
         {tasks}; --resume: go on from the last completed epoch of a run already started, keep\n\
         the finished ones; --no-fetch: never download (fetch the data before submitting);\n\
         --jobs 1: one run after another, each with --threads; --quiet: errors only.\n\
         In the background, so that this script can take the signals below."
    ))
    .line(&args.join(" \\\n    "))
    .line("pid=$!")
    .blank()
    .comment(
        "SIGUSR1 (the time limit is near): ask regulab to stop at its next safe point.\n\
         SIGTERM (scancel, preemption, requeue): Slurm sends it to regulab too; wait for it.",
    )
    .line("near_limit=0")
    .line("trap 'near_limit=1; kill -TERM \"$pid\" 2>/dev/null' USR1")
    .line("trap 'echo \"SIGTERM: regulab stops at its next safe point\"' TERM")
    .comment("`wait` returns when a signal is trapped: wait until regulab itself has exited.")
    .line("status=0")
    .line("wait \"$pid\" || status=$?")
    .line("while kill -0 \"$pid\" 2>/dev/null; do")
    .line("  status=0")
    .line("  wait \"$pid\" || status=$?")
    .line("done")
    .blank()
    .comment(
        "regulab exits 143 when SIGTERM stopped it, every completed epoch saved. Near the\n\
         time limit, queue this task again: it resumes where it stopped.",
    )
    .line(
        "if [ \"$near_limit\" = 1 ] && [ \"$status\" = 143 ] \\\n    \
         && [ \"${SLURM_RESTART_COUNT:-0}\" -lt \"$max_requeues\" ]; then",
    )
    .line("  echo \"time limit near: requeueing task $SLURM_ARRAY_TASK_ID (job $SLURM_JOB_ID)\"")
    .line("  scontrol requeue \"$SLURM_JOB_ID\"")
    .line("fi")
    .comment("regulab's status is the task's: 0 done, 1 a run diverged, 2 an error (above).")
    .line("exit \"$status\"");
    w.0
}

/// `DIR/slurm/merge.sbatch`: builds the sweep's outputs once the array has ended.
pub fn merge_script(s: &Sweep) -> String {
    let res = &s.resources;
    let mut w = Script(String::new());
    w.line("#!/bin/bash")
        .comment(&format!(
            "Merge the sweep `{name}`: written by `regulab slurm` (regulab {version}).\n\
             \n\
             Submitted after the job array of {sweep} with\n\
             \x20 sbatch --dependency=afterany:ARRAY_JOB_ID {me}\n\
             afterany: it starts once every task has ended, however it ended (with afterok a\n\
             failed task would leave it pending for ever, and nothing would say which task).\n\
             `regulab merge` then writes summary.csv, the figures and report.html into\n\
             {out}, byte for byte what one `regulab run` of the config writes; or, when runs\n\
             are missing or unfinished, it writes nothing, names them with the log of the task\n\
             that should have trained them, and exits 2. It can be run by hand at any time:\n\
             \x20 {regulab} merge {out}",
            name = s.name,
            version = s.version,
            sweep = s.out.join(SLURM_DIR).join(SWEEP_SCRIPT).display(),
            me = s.out.join(SLURM_DIR).join(MERGE_SCRIPT).display(),
            out = s.out.display(),
            regulab = s.regulab.display(),
        ))
        .blank()
        .comment("The job's name in squeue.")
        .line(&format!("#SBATCH --job-name=regulab-{}-merge", s.name))
        .placement(res, "the merge job")
        .comment("One CPU on one node: merging reads the run directories and draws the figures.")
        .line("#SBATCH --nodes=1")
        .line("#SBATCH --ntasks=1")
        .line("#SBATCH --cpus-per-task=1");
    if let Some(m) = &res.mem {
        w.comment("Memory of the job.")
            .line(&format!("#SBATCH --mem={m}"));
    }
    w.comment("The merge job's log (%j: its job id).")
        .line(&format!(
            "#SBATCH --output={}/{MERGE_LOG_PATTERN}",
            s.out.display()
        ))
        .blank()
        .comment("The regulab binary the merge job runs: the one the sweep's tasks run.")
        .line(&format!("regulab={}", quote_path(&s.regulab)))
        .comment("Add --partial to merge the finished runs only (the others are listed).")
        .line(&format!("exec \"$regulab\" merge {}", quote_path(&s.out)));
    w.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> Sweep {
        Sweep {
            name: "lab".into(),
            runs: 11,
            config: "/home/u/lab.toml".into(),
            sets: vec![
                "data.dataset=fashion-mnist".into(),
                "reg.l2=[1e-4, 1e-5]".into(),
            ],
            data_dir: None,
            out: "/scratch/u/runs/lab".into(),
            regulab: "/home/u/bin/regulab".into(),
            version: "0.1.0".into(),
            resources: Resources {
                partition: Some("short".into()),
                time: Some("0-02:00:00".into()),
                cpus_per_task: 2,
                mem: Some("4G".into()),
                max_parallel: Some(4),
                runs_per_task: 3,
            },
        }
    }

    #[test]
    fn task_count_is_runs_over_runs_per_task_rounded_up() {
        let mut s = sweep();
        for (runs, r, tasks) in [(11, 3, 4), (12, 3, 4), (1, 5, 1), (6, 1, 6), (7, 7, 1)] {
            s.runs = runs;
            s.resources.runs_per_task = r;
            assert_eq!(s.tasks(), tasks, "{runs} runs, {r} per task");
        }
    }

    #[test]
    fn slurm_values_are_checked() {
        for ok in ["30", "30:00", "2:00:00", "1-0", "1-12:00", "7-00:00:00"] {
            assert!(is_slurm_time(ok), "{ok}");
        }
        for bad in [
            "",
            "1h",
            "1:2:3:4",
            "-5",
            "1-",
            "1-2:3:4:5",
            "1 ; rm",
            "$(x)",
        ] {
            assert!(!is_slurm_time(bad), "{bad}");
        }
        for ok in ["4G", "4000", "512M", "1t"] {
            assert!(is_mem(ok), "{ok}");
        }
        for bad in ["", "G", "4GB", "0", "0G", "4 G", "-4G"] {
            assert!(!is_mem(bad), "{bad}");
        }
        for ok in ["short", "gpu-a100", "a,b", "x.y_z"] {
            assert!(is_partition(ok), "{ok}");
        }
        for bad in ["", "a,", "a b", "a;b", "$(x)"] {
            assert!(!is_partition(bad), "{bad}");
        }
        let mut s = sweep();
        s.resources.time = Some("2 hours".into());
        let e = s.check().unwrap_err().to_string();
        assert!(
            e.starts_with("--time \"2 hours\": expected a Slurm time"),
            "{e}"
        );
        let mut s = sweep();
        s.out = "/scratch/my runs".into();
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("--out") && e.contains("white space"), "{e}");
        let mut s = sweep();
        s.regulab = "target/release/regulab".into();
        assert!(s.check().unwrap_err().to_string().contains("absolute"));
        let mut s = sweep();
        s.resources.runs_per_task = 0;
        assert!(s.check().is_err());
        let mut s = sweep();
        s.resources.cpus_per_task = 257;
        assert!(s.check().is_err());
        assert_eq!(sweep().check(), Ok(()));
    }

    #[test]
    fn shell_values_are_quoted() {
        assert_eq!(quote("a=b"), "a=b");
        assert_eq!(quote("reg.l2=[1e-4, 1e-5]"), "'reg.l2=[1e-4, 1e-5]'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn every_sbatch_option_has_a_comment_above_it() {
        for text in [sweep_script(&sweep()), merge_script(&sweep())] {
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "#!/bin/bash");
            let mut options = 0;
            for (i, l) in lines.iter().enumerate() {
                if l.starts_with("#SBATCH") {
                    options += 1;
                    // the comment above it, or above the group of options it belongs to
                    let above = lines[..i]
                        .iter()
                        .rev()
                        .find(|p| !p.starts_with("#SBATCH"))
                        .unwrap();
                    assert!(above.starts_with("# "), "no comment above {l:?}");
                }
            }
            assert!(options >= 5, "{text}");
        }
    }

    #[test]
    fn the_task_count_is_in_the_shard_option_and_the_array() {
        let text = sweep_script(&sweep());
        assert!(text.contains("#SBATCH --array=0-3%4\n"), "{text}");
        assert!(text.contains("--shard slurm/4 "), "{text}");
        assert!(text.contains("--set 'reg.l2=[1e-4, 1e-5]'"), "{text}");
        let mut s = sweep();
        s.resources.max_parallel = None;
        s.resources.partition = None;
        let text = sweep_script(&s);
        assert!(text.contains("#SBATCH --array=0-3\n"), "{text}");
        assert!(!text.contains("--partition="), "{text}");
    }

    #[test]
    fn task_logs_follow_the_pattern() {
        assert_eq!(
            task_log(Path::new("/o"), "123", 4),
            Path::new("/o/slurm/logs/sweep-123_4.log")
        );
    }
}
