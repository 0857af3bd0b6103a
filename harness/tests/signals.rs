//! SIGINT (Ctrl-C) and SIGTERM (what Slurm sends before SIGKILL) stop `regulab run` at
//! a safe point, between two batches and never inside a write: it exits 130 / 143 and
//! prints the exact command that resumes, and the resumed run is bit-identical to one
//! that was never interrupted. The signals are real, sent to the running binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regulab::checkpoint::{self, Checkpoint};
use regulab::run;
use regulab::verify::compare_run_dirs;

const RUNS: [&str; 2] = ["dropout", "l2"];

fn config_text() -> String {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .unwrap();
    format!(
        r#"
name = "sig"
seed = 21
epochs = 5
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 3000]
validation = 500
train_examples = 2000
[model]
hidden = [64]
[experiments.dropout]
optim.momentum = 0.9
optim.lr = 0.05
reg.keep_input = 0.8
reg.keep_hidden = 0.5
[experiments.l2]
reg.l2 = 1e-3
"#,
        mnist.display()
    )
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn send(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}

/// Wait until `ready` holds (checking that the child is still running).
fn wait_until(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "regulab ended before {what}"
        );
        assert!(t0.elapsed() < Duration::from_secs(120), "no {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Interrupt `child` with `signal` once `ready`; returns the resume command it printed.
fn interrupt(
    mut child: Child,
    signal: &str,
    code: i32,
    ready: impl Fn() -> bool,
    out: &Path,
) -> String {
    wait_until(&mut child, "the moment to interrupt", ready);
    std::thread::sleep(Duration::from_millis(
        u64::from(std::process::id() % 7) * 10,
    ));
    let t0 = Instant::now();
    send(&child, signal);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "{signal}: {err}");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "{signal}: stops at the next batch"
    );
    assert!(err.contains(&format!("SIG{signal}")), "{err}");
    // nothing half-written: no temporary file, every CSV and checkpoint reads
    for r in RUNS {
        let dir = out.join(r);
        if !dir.exists() {
            continue;
        }
        for e in std::fs::read_dir(&dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!n.ends_with(".tmp") && !n.contains(".tmp"), "{r}/{n}");
        }
        let rows = run::read_epochs(&dir.join("epochs.csv")).unwrap();
        assert!(rows.iter().enumerate().all(|(i, r)| r.epoch as usize == i));
        let ck = dir.join(checkpoint::FILE_NAME);
        if ck.exists() {
            let c = Checkpoint::read(&ck).unwrap();
            assert!(rows.len() as u32 > c.state.epoch);
        }
    }
    let line = err
        .lines()
        .find_map(|l| l.split_once("to resume: ").map(|(_, c)| c.to_string()))
        .unwrap_or_else(|| panic!("{signal}: says how to resume: {err}"));
    assert!(line.contains("--resume"), "{line}");
    line
}

fn resume_cmd(line: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", &format!("exec {line}")])
        .env("REGULAB_KERNEL_CACHE", "off");
    c
}

fn status_of(out: &Path, run: &str) -> Option<serde_json::Value> {
    std::fs::read(out.join(run).join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

#[test]
fn sigint_and_sigterm_stop_between_batches_and_resume_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sig config.toml");
    std::fs::write(&cfg, config_text()).unwrap();
    let regulab = env!("CARGO_BIN_EXE_regulab");
    let common = |out: &PathBuf| {
        let mut c = Command::new(regulab);
        c.env("REGULAB_KERNEL_CACHE", "off");
        c.arg("run").arg(&cfg).arg("--out").arg(out).args([
            "--quiet",
            "--no-plot",
            "--jobs",
            "1",
            "--threads",
            "1",
        ]);
        c
    };
    let reference = tmp.path().join("reference");
    let o = common(&reference).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Ctrl-C after the first checkpoint of the first run
    let out = tmp.path().join("out dir");
    let child = spawn(&mut common(&out));
    let ck = out.join(RUNS[0]).join(checkpoint::FILE_NAME);
    let line = interrupt(child, "INT", 130, || ck.exists(), &out);
    assert!(line.contains("'"), "paths with spaces are quoted: {line}");

    // the printed command resumes; SIGTERM once it has resumed the first run
    let child = spawn(&mut resume_cmd(&line));
    let resumed = || status_of(&out, RUNS[0]).is_some_and(|m| m["resumed_from_epoch"].is_u64());
    let line2 = interrupt(child, "TERM", 143, resumed, &out);
    assert_eq!(line2, line, "the same command resumes again");

    let o = resume_cmd(&line2).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for r in RUNS {
        let diffs = compare_run_dirs(&reference.join(r), &out.join(r)).unwrap();
        assert!(diffs.is_empty(), "{r}: {diffs:?}");
    }
    let strip = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("summary.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip(&reference), strip(&out));
}
