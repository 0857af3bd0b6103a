//! `regulab slurm`: the job scripts it writes (a snapshot with the paths normalised),
//! what it refuses, and what it does to the output directory; then, on a real Slurm
//! cluster (a one-node cluster on this machine, `scripts/slurm-local.sh`): a sweep
//! submitted, merged and compared bit for bit with one machine's `regulab run`, tasks
//! requeued while they train, and a task that fails for good named by `merge`.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{
    FASHION, SIX, assert_same_runs, read, run_args, run_names, summary_without_timing, text,
    write_six,
};

fn regulab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .expect("regulab runs")
}

/// A script with this machine's paths replaced by placeholders.
fn normalise(script: &str, tmp: &Path) -> String {
    script
        .replace(env!("CARGO_BIN_EXE_regulab"), "[REGULAB]")
        .replace(&tmp.display().to_string(), "[TMP]")
        .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
}

#[test]
fn scripts_are_written_with_every_option_and_match_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    let out = tmp.path().join("out");
    let o = regulab(&[
        "slurm",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "optim.lr=0.25",
        "--data-dir",
        "/usr/share/datasets/fashion-mnist",
        "--partition",
        "short",
        "--time",
        "0:30:00",
        "--cpus-per-task",
        "2",
        "--mem",
        "2G",
        "--max-parallel",
        "2",
        "--runs-per-task",
        "4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("6 run(s) of `six` in 2 array task(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sbatch --dependency=afterany:ARRAY_JOB_ID"),
        "{stdout}"
    );
    let sweep = std::fs::read_to_string(out.join("slurm/sweep.sbatch")).unwrap();
    let merge = std::fs::read_to_string(out.join("slurm/merge.sbatch")).unwrap();
    assert!(out.join("slurm/logs").is_dir());
    // the plan every shard checks itself against
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["runs"].as_array().unwrap().len(), 6);
    insta::assert_snapshot!("sweep_sbatch", normalise(&sweep, tmp.path()));
    insta::assert_snapshot!("merge_sbatch", normalise(&merge, tmp.path()));
    // both are valid bash
    for f in ["sweep.sbatch", "merge.sbatch"] {
        let o = Command::new("bash")
            .arg("-n")
            .arg(out.join("slurm").join(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{f}: {}", text(&o));
    }
}

#[test]
fn a_directory_with_the_sweep_already_is_refused_without_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    let out = tmp.path().join("out");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "slurm".to_string(),
            config.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| regulab(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run(args(&[])).status.success());
    let again = run(args(&[]));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already holds results") && err.contains("--resume"),
        "{err}"
    );
    // resubmitting the same sweep is what --resume is for
    let resumed = run(args(&["--resume"]));
    assert!(resumed.status.success(), "{}", text(&resumed));
    // another plan in the same directory is refused, naming plan.json
    let other = run(args(&["--resume", "--set", "seed=6"]));
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("plan.json"),
        "{}",
        text(&other)
    );
}

#[test]
fn bad_slurm_values_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    let out = tmp.path().join("out");
    for (flag, value, says) in [
        ("--time", "2 hours", "expected a Slurm time"),
        ("--mem", "4GB", "expected a size"),
        ("--partition", "a;b", "expected a partition name"),
        ("--runs-per-task", "0", "at least 1"),
        ("--cpus-per-task", "1000", "1 to 256"),
    ] {
        let o = regulab(&[
            "slurm",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            flag,
            value,
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag) && err.contains(says), "{flag}: {err}");
        assert!(
            !out.exists(),
            "{flag} {value}: {} was created",
            out.display()
        );
    }
    let spaced = tmp.path().join("with space");
    let o = regulab(&[
        "slurm",
        config.to_str().unwrap(),
        "--out",
        spaced.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("white space"));
}

// ---------------------------------------------------------------------------------
// On a real Slurm cluster: `scripts/slurm-local.sh start` runs one on this machine
// (.ci/run starts it before the tests and exports SLURM_CONF). Without a cluster these
// tests fail, unless REGULAB_SKIP_SLURM=1 skips them explicitly (and they say so).

/// The cluster has this machine's CPUs: one Slurm test at a time, so that each gets
/// them and the figures it prints measure one sweep.
static CLUSTER: Mutex<()> = Mutex::new(());

/// Written to stderr past the test harness's capture, so that it is seen when the
/// test passes too (a skip, a measurement).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The cluster the tests submit to: `SLURM_CONF`, else scripts/slurm-local.sh's
/// default directory. `None` (after saying so) when REGULAB_SKIP_SLURM=1; any other
/// missing piece fails the test.
fn cluster(test: &str) -> Option<PathBuf> {
    if std::env::var("REGULAB_SKIP_SLURM").as_deref() == Ok("1") {
        say(&format!(
            "REGULAB_SKIP_SLURM=1: SKIPPED {test} (it needs a Slurm cluster: \
             scripts/slurm-local.sh start)"
        ));
        return None;
    }
    let conf = std::env::var_os("SLURM_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/regulab-slurm/slurm.conf"));
    let how = "install slurmctld slurmd slurm-client munge and start a cluster with \
               `scripts/slurm-local.sh start` (as root; then export \
               SLURM_CONF=/tmp/regulab-slurm/slurm.conf), or set REGULAB_SKIP_SLURM=1 to \
               skip the Slurm tests explicitly";
    assert!(
        conf.is_file(),
        "{test}: no Slurm cluster: {} does not exist; {how}",
        conf.display()
    );
    let o = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap_or_else(|e| panic!("{test}: cannot run sinfo ({e}); {how}"));
    let states = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && states
                .lines()
                .any(|s| ["idle", "mixed", "allocated"].contains(&s.trim())),
        "{test}: the Slurm cluster of {} has no usable node ({}); {how}",
        conf.display(),
        text(&o)
    );
    Some(conf)
}

/// A Slurm command against the test cluster.
fn slurm_cmd(conf: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("SLURM_CONF", conf)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// The jobs a test submitted: cancelled when the test ends however it ends (a
/// finished job is not affected), so that a failed test leaves nothing queued.
struct Jobs {
    conf: PathBuf,
    array: String,
    merge: String,
}

impl Drop for Jobs {
    fn drop(&mut self) {
        let _ = slurm_cmd(&self.conf, "scancel", &[&self.array, &self.merge]);
    }
}

impl Jobs {
    /// `regulab slurm CONFIG --out OUT --data-dir FASHION --time 10 EXTRA --submit`: the
    /// array's and the merge job's ids.
    fn submit(conf: &Path, config: &Path, out: &Path, extra: &[&str]) -> Jobs {
        let mut all = vec![
            "slurm",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            FASHION,
            "--time",
            "10",
        ];
        all.extend_from_slice(extra);
        all.push("--submit");
        let o = Command::new(env!("CARGO_BIN_EXE_regulab"))
            .args(&all)
            .env("SLURM_CONF", conf)
            .env_remove("REGULAB_DATA")
            .env("REGULAB_KERNEL_CACHE", "off")
            .output()
            .unwrap();
        assert!(o.status.success(), "regulab slurm --submit: {}", text(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        // "submitted: array job A (N tasks), merge job M (after the array)"
        let line = stdout
            .lines()
            .find(|l| l.starts_with("submitted: array job "))
            .unwrap_or_else(|| panic!("no job ids: {stdout}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let merge = words
            .iter()
            .position(|w| *w == "merge")
            .and_then(|i| words.get(i + 2))
            .unwrap_or_else(|| panic!("no merge job id: {line}"));
        let id = |w: &str| {
            assert!(
                w.bytes().all(|b| b.is_ascii_digit()),
                "job id {w:?}: {line}"
            );
            w.to_string()
        };
        Jobs {
            conf: conf.to_path_buf(),
            array: id(words[3]),
            merge: id(merge),
        }
    }

    /// Wait until neither the array nor the merge job is pending or running, at most
    /// `limit`.
    fn wait(&self, limit: Duration, out: &Path) {
        let start = Instant::now();
        let ids = format!("{},{}", self.array, self.merge);
        loop {
            let o = slurm_cmd(&self.conf, "squeue", &["-h", "-o", "%i %T", "-j", &ids]);
            let q = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if o.status.success() && q.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "jobs {ids} not finished after {limit:?}: {q}\nlogs: {}",
                logs(out)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `JobState`, `ExitCode` and `Restarts` of job `id` (an array task is
    /// `ARRAY_TASK`), from `scontrol show job` (the cluster keeps finished jobs for an
    /// hour).
    fn state(&self, id: &str) -> (String, String, u32) {
        let o = slurm_cmd(&self.conf, "scontrol", &["show", "job", "-o", id]);
        assert!(o.status.success(), "scontrol show job {id}: {}", text(&o));
        let line = String::from_utf8_lossy(&o.stdout).to_string();
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k} in {line}"))
                .to_string()
        };
        (
            field("JobState"),
            field("ExitCode"),
            field("Restarts").parse().unwrap(),
        )
    }

    fn task(&self, t: usize) -> (String, String, u32) {
        self.state(&format!("{}_{t}", self.array))
    }
}

/// Every log of `out/slurm/logs`, for failure messages.
fn logs(out: &Path) -> String {
    let mut s = String::new();
    if let Ok(rd) = std::fs::read_dir(out.join("slurm/logs")) {
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            s.push_str(&format!(
                "\n== {}\n{}",
                p.display(),
                std::fs::read_to_string(&p).unwrap_or_default()
            ));
        }
    }
    s
}

/// `regulab run CONFIG --out OUT --data-dir FASHION --quiet` and `extra`, on this
/// machine; how long it took.
fn run_locally(config: &Path, out: &Path, extra: &[&str]) -> Duration {
    let start = Instant::now();
    let o = regulab(&run_args(config, out, extra));
    assert!(o.status.success(), "local run: {}", text(&o));
    start.elapsed()
}

/// Every run of `a` has the bits of the same run of `b` (epochs.csv without timing,
/// the initial and final models), and so do the summaries (without timing).
fn assert_same_bits(a: &Path, b: &Path) {
    assert_same_runs(a, b);
    assert_eq!(
        summary_without_timing(&a.join("summary.csv")),
        summary_without_timing(&b.join("summary.csv"))
    );
}

#[test]
fn a_sweep_through_slurm_gives_the_bits_of_one_machine_and_a_merged_report() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(conf) = cluster("a_sweep_through_slurm_gives_the_bits_of_one_machine") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), &SIX.replace("\"six\"", "\"slurm-six\""));
    // the same directory name on both sides: the report's title is the directory's name
    let out = tmp.path().join("cluster/slurm-six");
    let local = tmp.path().join("local/slurm-six");

    let submitted = Instant::now();
    let jobs = Jobs::submit(&conf, &config, &out, &["--max-parallel", "2"]);
    jobs.wait(Duration::from_secs(300), &out);
    let through_slurm = submitted.elapsed();
    let on_one_machine = run_locally(&config, &local, &["--jobs", "2"]);
    say(&format!(
        "6 runs (784-64-10, 500 examples, 3 epochs): through Slurm, submission to merged \
         report {:.1} s; regulab run --jobs 2 on this machine {:.1} s",
        through_slurm.as_secs_f64(),
        on_one_machine.as_secs_f64()
    ));

    // every task trained its run and succeeded, then the merge job
    let names = run_names(&out);
    assert_eq!(names.len(), 6);
    for (t, name) in names.iter().enumerate() {
        assert_eq!(
            jobs.task(t),
            ("COMPLETED".to_string(), "0:0".to_string(), 0),
            "task {t}: {}",
            logs(&out)
        );
        let log =
            std::fs::read_to_string(out.join(format!("slurm/logs/sweep-{}_{t}.log", jobs.array)))
                .unwrap();
        // R = 1: task t trains the run of plan index t, and only it
        assert!(log.contains(&format!("shard {t}/6 done")), "{log}");
        for (i, other) in names.iter().enumerate() {
            let listed = log
                .lines()
                .any(|l| l.split_whitespace().next() == Some(other.as_str()));
            assert_eq!(listed, i == t, "task {t}, run {other}: {log}");
        }
        assert!(out.join(name).join("model.safetensors").is_file());
    }
    assert_eq!(
        jobs.state(&jobs.merge).0,
        "COMPLETED",
        "merge job: {}",
        logs(&out)
    );
    let merge_log =
        std::fs::read_to_string(out.join(format!("slurm/logs/merge-{}.log", jobs.merge))).unwrap();
    assert!(merge_log.contains("merged 6 run(s)"), "{merge_log}");

    // the bits of one machine: every run, the summary, the figures, the report
    assert_same_bits(&out, &local);
    let mut figures = 0;
    for e in std::fs::read_dir(local.join("plots")).unwrap().flatten() {
        let merged = out.join("plots").join(e.file_name());
        assert!(
            read(&merged) == read(&e.path()),
            "{:?} differs",
            e.file_name()
        );
        figures += 1;
    }
    assert!(figures >= 6, "{figures} figures");
    assert!(
        read(&out.join("report.html")) == read(&local.join("report.html")),
        "report.html differs"
    );
}

/// Two runs long enough to be caught while they train (784-256-10, 4,000 examples,
/// 20 epochs: about 0.4 s an epoch here).
const SLOW: &str = r#"
name = "slurm-requeue"
seed = 9
epochs = 20
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 4000
validation = 1000
eval_batch = 500
[model]
hidden = [256]
[experiments.l2]
reg.l2 = [1e-4, 1e-5]
"#;

/// Rows of a run's epochs.csv so far (0 before it exists), and whether its manifest
/// says it is still running.
fn progress(run_dir: &Path) -> (usize, bool) {
    let rows = std::fs::read_to_string(run_dir.join("epochs.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0);
    let running = std::fs::read(run_dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|m| m["status"] == "running");
    (rows, running)
}

#[test]
fn tasks_requeued_while_they_train_resume_and_give_the_same_bits() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(conf) = cluster("tasks_requeued_while_they_train_resume") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("slow.toml");
    std::fs::write(&config, SLOW).unwrap();
    let out = tmp.path().join("cluster/slurm-requeue");
    let local = tmp.path().join("local/slurm-requeue");
    let jobs = Jobs::submit(&conf, &config, &out, &[]);
    let names = run_names(&out);
    // Task 1 is requeued by `scontrol requeue` (what preemption does: SIGTERM, then
    // the job queued again); task 0 gets the time-limit warning its script asks for
    // (SIGUSR1 to the batch script), upon which the script stops regulab and requeues
    // the task itself. Each once an epoch after epoch 0 is on disk and its run still
    // trains.
    let start = Instant::now();
    let mut pending = vec![(1usize, None), (0usize, None)];
    while pending.iter().any(|(_, at)| at.is_none()) {
        for (task, at) in pending.iter_mut().filter(|(_, at)| at.is_none()) {
            let (rows, running) = progress(&out.join(&names[*task]));
            if rows >= 3 && running {
                let id = format!("{}_{task}", jobs.array);
                let o = if *task == 1 {
                    slurm_cmd(&conf, "scontrol", &["requeue", &id])
                } else {
                    slurm_cmd(&conf, "scancel", &["--batch", "--signal=USR1", &id])
                };
                assert!(o.status.success(), "interrupting {id}: {}", text(&o));
                *at = Some(rows);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the runs were never seen training: {}",
            logs(&out)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    jobs.wait(Duration::from_secs(400), &out);
    run_locally(&config, &local, &["--jobs", "2", "--no-plot"]);

    for (task, at) in &pending {
        let at = at.unwrap();
        assert_eq!(
            jobs.task(*task),
            ("COMPLETED".to_string(), "0:0".to_string(), 1),
            "task {task}: {}",
            logs(&out)
        );
        // the second attempt resumed its run from a checkpoint taken after the
        // interruption was sent, not from the start
        let manifest: serde_json::Value =
            serde_json::from_slice(&read(&out.join(&names[*task]).join("manifest.json"))).unwrap();
        let resumed = manifest["resumed_from_epoch"].as_u64();
        assert!(
            resumed.is_some_and(|e| e as usize + 2 >= at && e < 20),
            "task {task}: {} did not resume mid-run (interrupted with {at} epoch rows): \
             resumed_from_epoch {:?}\n{}",
            names[*task],
            manifest["resumed_from_epoch"],
            logs(&out)
        );
        let log = std::fs::read_to_string(
            out.join(format!("slurm/logs/sweep-{}_{task}.log", jobs.array)),
        )
        .unwrap();
        assert!(
            log.contains("restart 0") && log.contains("restart 1"),
            "{log}"
        );
        if *task == 0 {
            assert!(log.contains("time limit near: requeueing task 0"), "{log}");
        }
    }
    assert_eq!(jobs.state(&jobs.merge).0, "COMPLETED", "{}", logs(&out));
    assert_same_bits(&out, &local);
}

#[test]
fn a_task_that_fails_for_good_is_named_by_merge_with_its_log() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(conf) = cluster("a_task_that_fails_for_good_is_named_by_merge") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(
        tmp.path(),
        r#"
name = "slurm-fail"
seed = 3
epochs = 2
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 300
validation = 500
eval_batch = 500
[model]
hidden = [32]
[experiments.good]
[experiments.bad]
data.dataset = "/nonexistent/regulab-test-data"
"#,
    );
    let out = tmp.path().join("slurm-fail");
    let jobs = Jobs::submit(&conf, &config, &out, &[]);
    jobs.wait(Duration::from_secs(300), &out);
    // the good run's task is not affected by the other's data
    assert_eq!(jobs.task(0).0, "COMPLETED", "{}", logs(&out));
    let (state, code, _) = jobs.task(1);
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("FAILED", "2:0"),
        "{}",
        logs(&out)
    );
    let task_log = out.join(format!("slurm/logs/sweep-{}_1.log", jobs.array));
    assert!(
        std::fs::read_to_string(&task_log)
            .unwrap()
            .contains("/nonexistent/regulab-test-data"),
        "{}",
        logs(&out)
    );

    // the merge job ran (afterany), refused, and said which task failed and where its
    // log is
    let (state, code, _) = jobs.state(&jobs.merge);
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("FAILED", "2:0"),
        "{}",
        logs(&out)
    );
    let merge_log =
        std::fs::read_to_string(out.join(format!("slurm/logs/merge-{}.log", jobs.merge))).unwrap();
    for says in [
        "cannot merge",
        "1 of its 2 runs",
        "bad: missing (never started)",
        "Slurm array task 1 trains it and failed: error:",
        "/nonexistent/regulab-test-data",
        task_log.to_str().unwrap(),
        "--partial",
    ] {
        assert!(
            merge_log.contains(says),
            "{says:?} not in the merge log:\n{merge_log}"
        );
    }
    assert!(
        !out.join("summary.csv").exists(),
        "a refused merge wrote summary.csv"
    );

    // --partial merges the finished run and lists the other
    let o = regulab(&["merge", out.to_str().unwrap(), "--partial", "--no-plot"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("left out: bad: missing"), "{err}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{summary}");
    assert!(rows[0].starts_with("good,"), "{summary}");
}
