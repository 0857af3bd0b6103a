//! `regulab slurm`: the job scripts it writes (a snapshot with the paths normalised),
//! what it refuses, and what it does to the output directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn regulab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .env_remove("REGULAB_DATA")
        .output()
        .expect("regulab runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Six runs: 784-64-10 on 500 Fashion-MNIST examples, 3 epochs.
const SIX: &str = r#"
name = "six"
seed = 5
epochs = 3
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 500
validation = 1000
eval_batch = 500
[model]
hidden = [64]
[experiments.base]
[experiments.l2]
reg.l2 = [1e-3, 1e-4, 1e-5]
[experiments.dropout]
reg.keep_input = 0.8
reg.keep_hidden = [0.5, 0.8]
"#;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("six.toml");
    std::fs::write(&p, text).unwrap();
    p
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
    let config = write_config(tmp.path(), SIX);
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
    let config = write_config(tmp.path(), SIX);
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
    let config = write_config(tmp.path(), SIX);
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
