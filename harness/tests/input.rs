//! Bad input from the command line (issue 12): configs that would write outside the
//! output tree, integers that do not fit, empty and oversized grids, impossible memory
//! and thread requests, data errors found only after other runs trained, and error
//! messages that say things twice or blame the wrong place. Every case exits 2 with a
//! message naming the file, field or flag, before anything is trained or written.
//!
//! Each test spawns the built `regulab` on tiny inputs: the MNIST test set shipped in
//! `data/mnist` (the t10k files only), and never allocates much.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `data/mnist` (t10k images and labels).
fn repo_mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .unwrap()
}

/// `regulab ARGS` started in `cwd`; downloads go to a mirror on this machine that
/// refuses connections (tests never reach the network).
fn regulab_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .current_dir(cwd)
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .env("REGULAB_MIRROR", "http://127.0.0.1:9/")
        .output()
        .expect("regulab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny study on the first 300 MNIST test images, plus `extra` lines at the top.
fn tiny_config(extra: &str) -> String {
    format!(
        "{extra}\nepochs = 1\n[data]\ndataset = \"{}\"\ntrain_file = \"t10k\"\n\
         test_file = \"none\"\nrange = [0, 300]\nvalidation = 100\ntrain_examples = 200\n\
         eval_batch = 100\n[model]\nhidden = [8]\n",
        repo_mnist().display()
    )
}

/// Writes `text` to `dir/study.toml`.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("study.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Every file under `dir`, relative (empty when `dir` does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn run_args<'a>(cfg: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--no-plot",
        "--no-fetch",
    ];
    v.extend_from_slice(extra);
    v
}

/// Defect 1: the config's `name` becomes a directory under `runs/`; it must be a plain
/// name (as experiment names are), never a path or empty.
#[test]
fn config_name_must_be_a_plain_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("a/b");
    std::fs::create_dir_all(&cwd).unwrap();
    let abs = tmp.path().join("abs/dir");
    for name in ["../../x", abs.to_str().unwrap(), "", "a/b", ".."] {
        let cfg = write_config(&cwd, &tiny_config(&format!("name = {name:?}")));
        let o = regulab_in(
            &cwd,
            &["run", cfg.to_str().unwrap(), "--quiet", "--no-plot"],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "name {name:?}: {err}");
        assert!(
            err.contains("field `name`") && err.contains("study.toml"),
            "name {name:?}: {err}"
        );
        assert!(!tmp.path().join("x").exists(), "name {name:?} escaped");
        assert!(
            !cwd.join("runs").exists(),
            "name {name:?} wrote {:?}",
            files_under(&cwd.join("runs"))
        );
    }
    assert!(!tmp.path().join("abs").exists());
    // a plain name is used as it is
    let cfg = write_config(&cwd, &tiny_config("name = \"fine-name_2\""));
    let o = regulab_in(
        &cwd,
        &["run", cfg.to_str().unwrap(), "--quiet", "--no-plot"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(cwd.join("runs/fine-name_2/summary.csv").is_file());
}

/// Defect 9: integers are converted with checks: 2^32 epochs is an error naming
/// `epochs`, not 0 epochs.
#[test]
fn epochs_beyond_u32_are_an_error_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for epochs in ["4294967296", "4294967297", "-1"] {
        let text = tiny_config("").replace("epochs = 1", &format!("epochs = {epochs}"));
        let cfg = write_config(tmp.path(), &text);
        let out = tmp.path().join("o");
        let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "epochs {epochs}: {err}");
        assert!(
            err.contains("`epochs`") && err.contains("study.toml"),
            "epochs {epochs}: {err}"
        );
        assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    }
    // the same through --set blames --set
    let cfg = write_config(tmp.path(), &tiny_config(""));
    let out = tmp.path().join("o");
    let o = regulab_in(
        tmp.path(),
        &run_args(&cfg, &out, &["--set", "epochs=4294967296"]),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--set epochs") && err.contains("`epochs`"),
        "{err}"
    );
    assert!(!err.contains("study.toml"), "{err}");
}

/// Defect 10: an empty grid list gives no run; it is an error naming the field, not an
/// experiment silently dropped.
#[test]
fn empty_grid_list_is_an_error_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[experiments.base]\n[experiments.l2]\nreg.l2 = []\n",
        tiny_config("")
    );
    let cfg = write_config(tmp.path(), &text);
    let out = tmp.path().join("o");
    let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`reg.l2`") && err.contains("study.toml") && err.contains("empty"),
        "{err}"
    );
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
}

/// Defect 11: the grid is counted before it is expanded; above the documented limit it
/// is refused with the count (4 keys x 50 values = 6,250,000 runs).
#[test]
fn oversized_grids_are_refused_with_the_count() {
    let tmp = tempfile::tempdir().unwrap();
    let values = |n: usize, scale: f64| {
        let v: Vec<String> = (1..=n).map(|i| format!("{}", i as f64 * scale)).collect();
        format!("[{}]", v.join(", "))
    };
    // just above the limit: 101 x 100 = 10,100 runs
    let text = format!(
        "{}\n[experiments.g]\nreg.l1 = {}\nreg.l2 = {}\n",
        tiny_config(""),
        values(101, 1e-6),
        values(100, 1e-6)
    );
    let cfg = write_config(tmp.path(), &text);
    let out = tmp.path().join("o");
    let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("10100 runs") && err.contains("10000") && err.contains("study.toml"),
        "{err}"
    );
    // 4 keys x 50 values: refused at once, without expanding 6.25 M runs
    let text = format!(
        "{}\n[experiments.g]\nreg.l1 = {}\nreg.l2 = {}\nreg.keep_input = {}\nreg.keep_hidden = {}\n",
        tiny_config(""),
        values(50, 1e-6),
        values(50, 1e-6),
        values(50, 0.02),
        values(50, 0.02)
    );
    let cfg = write_config(tmp.path(), &text);
    let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("6250000 runs"), "{err}");
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
}

/// Defect 13: `--threads` and `--jobs` are bounded (256 threads in all).
#[test]
fn thread_and_job_counts_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &tiny_config(""));
    let out = tmp.path().join("o");
    for (flag, value) in [
        ("--threads", "257"),
        ("--threads", "100000"),
        ("--jobs", "257"),
        ("--threads", "0"),
    ] {
        let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[flag, value]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    }
    // jobs x threads counts (2 runs at once x 200 threads)
    let text = format!("{}\n[experiments.a]\n[experiments.b]\n", tiny_config(""));
    let cfg2 = tmp.path().join("two.toml");
    std::fs::write(&cfg2, text).unwrap();
    let o = regulab_in(
        tmp.path(),
        &run_args(&cfg2, &out, &["--jobs", "2", "--threads", "200"]),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("256"), "{err}");
    let o = regulab_in(
        tmp.path(),
        &["verify", out.to_str().unwrap(), "--threads", "300"],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--threads"), "{err}");
    // within the limits it runs
    let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &["--threads", "3"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Defect 8: a run whose memory need exceeds what the machine has is refused before it
/// starts, with the estimate and the memory available; no manifest left `running`.
#[test]
fn impossible_memory_needs_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &tiny_config(""));
    for set in [
        "model.hidden=[100000000]",
        "batch_size=1000000000",
        "data.eval_batch=1000000000",
        "model.hidden=[4611686018427387904]",
        "model.hidden=[100000, 100000, 100000]",
    ] {
        let out = tmp.path().join("o");
        let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &["--set", set]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(
            err.contains("memory") && err.contains("available"),
            "{set}: {err}"
        );
        assert!(!err.contains("panicked"), "{set}: {err}");
        assert!(
            files_under(&out).is_empty(),
            "{set}: {:?}",
            files_under(&out)
        );
    }
}

/// Defect 15: every run is checked against the data before any trains: the error names
/// the config file and the user's field, once, and leaves no run directory.
#[test]
fn data_errors_are_found_before_any_run_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let base = format!(
        "epochs = 1\n[data]\ndataset = \"{}\"\ntrain_file = \"t10k\"\ntest_file = \"none\"\n\
         validation = 1000\ntrain_examples = 200\neval_batch = 500\n[model]\nhidden = [8]\n\
         [experiments.first]\n",
        repo_mnist().display()
    );
    for (bad, field) in [
        ("data.train_examples = 9001", "data.train_examples"),
        ("data.validation = 10000", "data.validation"),
        ("data.validation = 20000", "data.validation"),
        (
            "data.validation = 0\noptim.schedule = \"newbob\"",
            "optim.schedule",
        ),
    ] {
        let cfg = write_config(tmp.path(), &format!("{base}[experiments.second]\n{bad}\n"));
        let out = tmp.path().join("o");
        let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains(&format!("field `{field}`")) && err.contains("study.toml"),
            "{bad}: {err}"
        );
        assert!(err.contains("run `second`"), "{bad}: {err}");
        assert_eq!(err.matches("run `second`").count(), 1, "{bad}: {err}");
        assert!(!err.contains("valid_size"), "{bad}: {err}");
        assert!(
            files_under(&out).is_empty(),
            "{bad}: {:?}",
            files_under(&out)
        );
    }
}

/// Defect 18: an operating-system error is printed once.
#[test]
fn os_errors_are_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    // a config path that is a directory
    let o = regulab_in(tmp.path(), &["run", tmp.path().to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

/// Defect 18: `--set` errors blame `--set`, not the config file.
#[test]
fn set_errors_blame_the_set() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &tiny_config(""));
    let out = tmp.path().join("o");
    for (set, field) in [
        ("reg.l2=abc", "reg.l2"),
        ("reg.keep_input=2", "reg.keep_input"),
        ("model.width=3", "width"),
        ("batch_size=-1", "batch_size"),
    ] {
        let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &["--set", set]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains("--set"), "{set}: {err}");
        assert!(err.contains(field), "{set}: {err}");
        assert!(!err.contains("study.toml"), "{set}: {err}");
    }
    // an error in the file still names the file
    let cfg = write_config(
        tmp.path(),
        &format!("{}\n[reg]\nl2 = \"abc\"\n", tiny_config("")),
    );
    let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &["--set", "reg.l1=0.1"]));
    let err = stderr(&o);
    assert!(
        err.contains("study.toml") && err.contains("reg.l2"),
        "{err}"
    );
}

/// Defect 18: a data file that is a directory or a symlink loop is reported as what it
/// is, not as missing.
#[test]
fn unreadable_data_files_are_reported_as_what_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    for (what, expect) in [("dir", "is a directory"), ("loop", "symbolic links")] {
        let data = tmp.path().join(format!("data-{what}"));
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(
            repo_mnist().join("t10k-images-idx3-ubyte.gz"),
            data.join("t10k-images-idx3-ubyte.gz"),
        )
        .unwrap();
        let labels = data.join("t10k-labels-idx1-ubyte.gz");
        match what {
            "dir" => std::fs::create_dir(&labels).unwrap(),
            _ => std::os::unix::fs::symlink(&labels, &labels).unwrap(),
        }
        let text = tiny_config("").replace(
            &format!("{:?}", repo_mnist().display().to_string()),
            &format!("{:?}", data.display().to_string()),
        );
        let cfg = write_config(tmp.path(), &text);
        let out = tmp.path().join("o");
        let o = regulab_in(tmp.path(), &run_args(&cfg, &out, &[]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(expect) && err.contains("t10k-labels-idx1-ubyte.gz"),
            "{what}: {err}"
        );
        assert!(!err.contains("missing"), "{what}: {err}");
        assert!(err.matches("os error").count() <= 1, "{what}: {err}");
        // the same through the dataset lookup (--data-dir for mnist)
        let text = tiny_config("").replace(
            &format!("{:?}", repo_mnist().display().to_string()),
            "\"mnist\"",
        );
        let cfg = write_config(tmp.path(), &text);
        let o = regulab_in(
            tmp.path(),
            &run_args(&cfg, &out, &["--data-dir", data.to_str().unwrap()]),
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(expect) && err.contains("t10k-labels-idx1-ubyte"),
            "{what} (lookup): {err}"
        );
    }
}

/// Defect 18: `fetch` offers only datasets that can be fetched, and a failed fetch
/// removes the directories it created.
#[test]
fn fetch_names_real_datasets_and_cleans_up_after_failing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = regulab_in(tmp.path(), &["fetch", "cifar"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mnist") && err.contains("fashion-mnist") && !err.contains("custom"),
        "{err}"
    );
    let target = tmp.path().join("new/deeper");
    let o = regulab_in(
        tmp.path(),
        &[
            "fetch",
            "mnist",
            "--data-dir",
            target.to_str().unwrap(),
            "--mirror",
            "http://127.0.0.1:9/",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("every mirror failed"), "{err}");
    assert!(
        !tmp.path().join("new").exists(),
        "left {:?}",
        files_under(tmp.path())
    );
    // a directory that existed before stays
    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    let o = regulab_in(
        tmp.path(),
        &[
            "fetch",
            "mnist",
            "--data-dir",
            existing.to_str().unwrap(),
            "--mirror",
            "http://127.0.0.1:9/",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(existing.is_dir());
}
