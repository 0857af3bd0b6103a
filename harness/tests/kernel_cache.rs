//! The kernel-choice cache end to end (`REGULAB_KERNEL_CACHE`, module
//! `regulab::kernel_cache`): a first run times its kernels and keeps the choices in the
//! file, under this machine's section; a second run reads them, takes every kept
//! signature without timing it (the trace says `cached`) and gives the same bits; a
//! file that does not parse is reported, left as it is, and changes no result.

mod common;

use std::path::Path;
use std::process::Command;

use common::mnist_dir;
use regulab::verify::compare_run_dirs;

/// `regulab run` of `cfg` into `dir/label` with the cache at `cache` and the trace on;
/// returns its stderr.
fn run(dir: &Path, cfg: &Path, label: &str, cache: &str) -> String {
    run_env(dir, cfg, label, &[("REGULAB_KERNEL_CACHE", Some(cache))])
}

/// [`run`] with these variables set (`Some`) or removed (`None`).
fn run_env(dir: &Path, cfg: &Path, label: &str, env: &[(&str, Option<&str>)]) -> String {
    let out = dir.join(label);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regulab"));
    cmd.args(["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--quiet", "--no-plot", "--jobs", "1", "--threads", "1"])
        .env_remove("REGULAB_DATA")
        .env_remove("REGULAB_SIMD")
        .env_remove("REGULAB_ZERO_SKIP")
        .env_remove("REGULAB_KERNEL_CHOICE")
        .env("REGULAB_TRACE", "1");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let o = cmd.output().expect("regulab runs");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{label}: {stderr}");
    stderr
}

fn choices(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("regulab: kernel choice: "))
        .collect()
}

#[test]
fn kept_choices_skip_the_timing_and_change_no_bit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cache.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
name = "cache"
seed = 3
epochs = 4
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 1000]
validation = 500
train_examples = 500
[experiments.sigmoid_b10]
batch_size = 10
model.hidden = [800]
"#,
            mnist_dir().display()
        ),
    )
    .unwrap();
    let file = dir.path().join("cache dir").join("choices.json");
    let cache = file.to_str().unwrap();

    // first run: nothing kept yet; its decisions are written
    let first = run(dir.path(), &cfg, "first", cache);
    assert!(
        first.contains(&format!("kernel cache {cache}: 0 kept choice(s)")),
        "{first}"
    );
    assert!(!choices(&first).is_empty(), "{first}");
    assert!(
        choices(&first).iter().all(|l| !l.contains("cached")),
        "{first}"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let sections = json["machines"].as_array().unwrap();
    assert_eq!(sections.len(), 1, "{json}");
    let model = regulab_kernels::cpu::model().expect("an x86-64 CPU model");
    let machine = sections[0]["machine"].as_str().unwrap();
    assert!(machine.starts_with(&model), "{machine} / {model}");
    let kept = sections[0]["plans"].as_array().unwrap().len();
    assert!(kept > 0, "the training products were decided: {json}");
    let decided = choices(&first)
        .iter()
        .filter(|l| !l.contains(": exploring"))
        .count();
    assert_eq!(kept, decided, "every decided signature is kept: {first}");

    // second run: every kept signature is taken from the file, untimed; same bits
    let second = run(dir.path(), &cfg, "second", cache);
    assert!(
        second.contains(&format!("kernel cache {cache}: {kept} kept choice(s)")),
        "{second}"
    );
    let cached = choices(&second)
        .iter()
        .filter(|l| l.ends_with(", cached (decided by an earlier process on this CPU model)"))
        .count();
    assert_eq!(cached, kept, "{second}");
    let diffs = compare_run_dirs(
        &dir.path().join("first/sigmoid_b10"),
        &dir.path().join("second/sigmoid_b10"),
    )
    .unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");

    // a file that does not parse: a warning naming it, the file untouched, same bits
    std::fs::write(&file, b"{\"format\": 1, \"machines\": [ oops").unwrap();
    let third = run(dir.path(), &cfg, "third", cache);
    assert!(
        third.contains("warning: kernel cache not used")
            && third.contains(cache)
            && third.contains("left as it is"),
        "{third}"
    );
    assert!(
        choices(&third).iter().all(|l| !l.contains("cached")),
        "{third}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"{\"format\": 1, \"machines\": [ oops"
    );
    let diffs = compare_run_dirs(
        &dir.path().join("first/sigmoid_b10"),
        &dir.path().join("third/sigmoid_b10"),
    )
    .unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");

    // unset: the file under $HOME/.cache (XDG_CACHE_HOME unset); off: none at all
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let h = home.to_str().unwrap();
    let default = home.join(".cache/regulab/kernel-choices.json");
    let unset = [
        ("HOME", Some(h)),
        ("XDG_CACHE_HOME", None),
        ("REGULAB_KERNEL_CACHE", None),
    ];
    let fourth = run_env(dir.path(), &cfg, "fourth", &unset);
    let line = format!("kernel cache {}: 0 kept choice(s)", default.display());
    assert!(fourth.contains(&line), "{fourth}");
    assert!(default.is_file());
    std::fs::remove_dir_all(home.join(".cache")).unwrap();
    let off = [
        ("HOME", Some(h)),
        ("XDG_CACHE_HOME", None),
        ("REGULAB_KERNEL_CACHE", Some("off")),
    ];
    let fifth = run_env(dir.path(), &cfg, "fifth", &off);
    assert!(!fifth.contains("kernel cache"), "{fifth}");
    assert!(!home.join(".cache").exists());
}
