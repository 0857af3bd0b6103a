//! Checkpoint and resume: a run interrupted at any moment and resumed gives the same
//! files (except timing) as a run that never stopped.
//!
//! * `sigkill_at_random_moments_then_resume_is_identical`: the real thing — `regulab run`
//!   is killed with SIGKILL twice at random moments, resumed with other thread and job
//!   counts, and compared with an uninterrupted run.
//! * `resume_restores_velocity_step_and_drops_rows_after_the_checkpoint`: deterministic
//!   interruptions ([`RunOptions::halt_after_epoch`]) of a run with momentum and
//!   dropout; a checkpoint with zeroed velocities or a reset step gives other bits
//!   (so both are really restored), and CSV rows past the checkpoint are recomputed.
//! * `resume_keeps_finished_runs_and_refuses_another_config`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regulab::checkpoint::{self, Checkpoint};
use regulab::config::{self, Plan};
use regulab::run::{self, DataSets, Progress, RunOptions};
use regulab::verify::compare_run_dirs;

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// Two runs on the MNIST test set (5,000 training images, 1,000 validation): momentum
/// with dropout, and L2.
fn config_text(epochs: u32) -> String {
    format!(
        r#"
name = "resume"
seed = 77
epochs = {epochs}
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 6000]
validation = 1000
train_examples = 5000
[model]
hidden = [64]
[experiments.momentum_dropout]
optim.lr = 0.05
optim.momentum = 0.9
reg.keep_input = 0.8
reg.keep_hidden = 0.5
[experiments.l2]
reg.l2 = 1e-3
"#,
        mnist_dir().display()
    )
}

fn random_below(n: u64) -> u64 {
    RandomState::new().hash_one(Instant::now()) % n
}

fn assert_same_runs(reference: &Path, other: &Path, runs: &[&str]) {
    for run in runs {
        let diffs = compare_run_dirs(&reference.join(run), &other.join(run)).unwrap();
        assert!(diffs.is_empty(), "{run}: {diffs:?}");
        assert!(
            !other.join(run).join(checkpoint::FILE_NAME).exists(),
            "{run}: a finished run keeps no checkpoint"
        );
    }
    // the summary differs only in its last column (seconds)
    let strip = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("summary.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip(reference), strip(other));
}

fn regulab_run(cfg: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regulab"));
    c.args([
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
    .args(extra)
    .env_remove("REGULAB_DATA")
    .env("REGULAB_KERNEL_CACHE", "off")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

fn status_of(out: &Path, run: &str) -> String {
    let m = std::fs::read(out.join(run).join("manifest.json"));
    m.ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["status"].as_str().map(String::from))
        .unwrap_or_else(|| "not started".into())
}

#[test]
fn sigkill_at_random_moments_then_resume_is_identical() {
    let runs = ["momentum_dropout", "l2"];
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("resume.toml");
    std::fs::write(&cfg, config_text(6)).unwrap();
    let reference = tmp.path().join("reference");
    let o = regulab_run(&cfg, &reference, &["--jobs", "1", "--threads", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let out = tmp.path().join("killed");
    let first_ck = out.join(runs[0]).join(checkpoint::FILE_NAME);
    // 1st kill: one run at a time, after the first run's first checkpoint + 0..150 ms
    // 2nd kill: resumed with two runs at once, after 0..300 ms
    let attempts: [(&[&str], u64); 2] = [
        (&["--jobs", "1", "--threads", "2"], 150),
        (&["--jobs", "2", "--threads", "1", "--resume"], 300),
    ];
    let mut interrupted = Vec::new();
    for (i, (args, max_delay)) in attempts.iter().enumerate() {
        let mut child = regulab_run(&cfg, &out, args).spawn().unwrap();
        let t0 = Instant::now();
        if i == 0 {
            while !first_ck.exists() {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "regulab ended before its first checkpoint"
                );
                assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let delay = random_below(*max_delay);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        let states: Vec<String> = runs.iter().map(|r| status_of(&out, r)).collect();
        eprintln!("kill {i} after {delay} ms (exit {status:?}): {states:?}");
        interrupted.push(states.iter().any(|s| s != "completed"));
    }
    assert!(
        interrupted[0],
        "the first kill must interrupt the sweep (it comes early in a 12-epoch sweep)"
    );
    // nothing half-written: every epochs.csv parses and numbers its rows 0, 1, 2, ...
    for run in runs {
        let p = out.join(run).join("epochs.csv");
        if p.exists() {
            let rows = run::read_epochs(&p).unwrap();
            assert!(rows.iter().enumerate().all(|(i, r)| r.epoch as usize == i));
        }
    }
    let o = regulab_run(&cfg, &out, &["--resume", "--jobs", "2", "--threads", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_runs(&reference, &out, &runs);
    // no temporary file of an interrupted atomic write is left behind
    for run in runs {
        let hidden: Vec<String> = std::fs::read_dir(out.join(run))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{run}: {hidden:?}");
    }
}

fn plan(epochs: u32) -> Plan {
    config::parse(&config_text(epochs), "resume.toml", "resume", &[]).unwrap()
}

fn opts(out: &Path, resume: bool, halt: Option<u32>) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        threads: 2,
        jobs: 2,
        progress: Progress::Quiet,
        resume,
        halt_after_epoch: halt,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Halt every run after `epoch`, then resume; returns the output directory.
fn halted(base: &Path, name: &str, plan: &Plan, data: &DataSets, epoch: u32) -> PathBuf {
    let out = base.join(name);
    let err = run::execute(plan, data, &opts(&out, false, Some(epoch))).unwrap_err();
    assert!(format!("{err:#}").contains("halted after epoch"), "{err:#}");
    out
}

#[test]
fn resume_restores_velocity_step_and_drops_rows_after_the_checkpoint() {
    let runs = ["momentum_dropout", "l2"];
    let plan = plan(4);
    let data = run::load_datasets(&plan, None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    run::execute(&plan, &data, &opts(&reference, false, None)).unwrap();

    // interrupted right after the checkpoint of epoch 2
    let a = halted(tmp.path(), "a", &plan, &data, 2);
    let md = a.join(runs[0]);
    let ck = Checkpoint::read(&md.join(checkpoint::FILE_NAME)).unwrap();
    assert_eq!(ck.state.epoch, 2);
    assert_eq!(ck.state.step, 2 * 500, "2 epochs of 500 batches");
    assert!(ck.velocity.is_some(), "momentum keeps velocities");
    assert_eq!(status_of(&a, runs[0]), "running");
    assert_eq!(run::read_epochs(&md.join("epochs.csv")).unwrap().len(), 3);
    // ... and the same with velocities zeroed, or the step counter reset
    let zeroed = tmp.path().join("zeroed");
    let reset = tmp.path().join("reset");
    for (dir, edit) in [(&zeroed, 0), (&reset, 1)] {
        copy_dir(&a, dir);
        let p = dir.join(runs[0]).join(checkpoint::FILE_NAME);
        let mut c = Checkpoint::read(&p).unwrap();
        if edit == 0 {
            for (w, b) in c.velocity.as_mut().unwrap() {
                w.fill(0.0);
                b.fill(0.0);
            }
        } else {
            c.state.step = 0;
        }
        c.write(&p).unwrap();
    }
    // interrupted after the CSV row of epoch 3 but before its checkpoint: the
    // checkpoint of epoch 2 with the CSV of epoch 3
    let b = halted(tmp.path(), "b", &plan, &data, 3);
    for run in runs {
        std::fs::copy(
            a.join(run).join(checkpoint::FILE_NAME),
            b.join(run).join(checkpoint::FILE_NAME),
        )
        .unwrap();
        assert_eq!(
            run::read_epochs(&b.join(run).join("epochs.csv"))
                .unwrap()
                .len(),
            4
        );
    }

    for dir in [&a, &b, &zeroed, &reset] {
        run::execute(&plan, &data, &opts(dir, true, None)).unwrap();
    }
    assert_same_runs(&reference, &a, &runs);
    assert_same_runs(&reference, &b, &runs);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join(runs[0]).join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["resumed_from_epoch"], 2);
    // the tampered checkpoints really change the result: velocity and step are restored
    for dir in [&zeroed, &reset] {
        let diffs = compare_run_dirs(&reference.join(runs[0]), &dir.join(runs[0])).unwrap();
        assert!(
            diffs.iter().any(|d| d.file == "model.safetensors"),
            "{}: {diffs:?}",
            dir.display()
        );
        assert!(
            diffs
                .iter()
                .any(|d| d.file == "epochs.csv" && d.location.contains("epoch 3")),
            "rows up to the checkpoint are kept, epoch 3 differs: {diffs:?}"
        );
    }
}

#[test]
fn resume_keeps_finished_runs_and_refuses_another_config() {
    let plan = plan(2);
    let data = run::load_datasets(&plan, None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let first = run::execute(&plan, &data, &opts(&out, false, None)).unwrap();
    let csv_before = std::fs::read(out.join("l2/epochs.csv")).unwrap();
    let summary_before = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    // resuming a finished sweep trains nothing: even the timing columns stay
    let again = run::execute(&plan, &data, &opts(&out, true, None)).unwrap();
    assert_eq!(
        std::fs::read(out.join("l2/epochs.csv")).unwrap(),
        csv_before
    );
    for (x, y) in first.iter().zip(&again) {
        assert_eq!(x.rows, y.rows);
        assert_eq!(x.digest, y.digest);
        // no test file here: NaN statistics, compared as text
        assert_eq!(format!("{:?}", x.test), format!("{:?}", y.test));
        assert_eq!(x.weight_norm.to_bits(), y.weight_norm.to_bits());
    }
    assert_eq!(
        std::fs::read_to_string(out.join("summary.csv")).unwrap(),
        summary_before,
        "the summary is rebuilt identically from the files"
    );
    // another config in the same directory is refused, naming the run and the field
    let sets = vec![config::parse_set("reg.l2=1e-2").unwrap()];
    let other = config::parse(&config_text(2), "resume.toml", "resume", &sets).unwrap();
    let err = run::execute(&other, &data, &opts(&out, true, None)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cannot resume run") && msg.contains("reg.l2"),
        "{msg}"
    );
}
