//! Command-line tests of `regulab run` on real data (Fashion-MNIST from Debian's
//! `dataset-fashion-mnist`, installed by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

fn regulab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .expect("regulab runs")
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("study.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const SMALL: &str = r#"
name = "small"
seed = 11
epochs = 3
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 500
validation = 1000
[model]
hidden = [64]
[experiments.base]
[experiments.l2]
reg.l2 = [1e-3, 1e-4]
[experiments.dropout]
reg.keep_input = 0.8
reg.keep_hidden = 0.5
"#;

const EPOCH_HEADER: &str = "run,epoch,learning_rate,train_cost,train_nll,train_penalty,train_acc,valid_cost,valid_nll,valid_acc,epoch_seconds,train_pps";

/// The CSV without the timing columns (the last two).
fn without_timing(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[..f.len() - 2].join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_small(dir: &Path, out: &str, jobs: &str, threads: &str) -> Output {
    let cfg = write_config(dir, SMALL);
    let out = dir.join(out);
    regulab(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        jobs,
        "--threads",
        threads,
        "--quiet",
    ])
}

#[test]
fn small_study_end_to_end_and_jobs_do_not_change_results() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_small(dir.path(), "a", "1", "1");
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let table = String::from_utf8_lossy(&a.stdout);
    for run in ["base", "l2_l2=1e-3", "l2_l2=1e-4", "dropout"] {
        assert!(table.contains(run), "table lacks {run}:\n{table}");
        let rd = dir.path().join("a").join(run);
        for f in [
            "epochs.csv",
            "model.safetensors",
            "init.safetensors",
            "manifest.json",
        ] {
            assert!(rd.join(f).is_file(), "{run}/{f} missing");
        }
        let csv = std::fs::read_to_string(rd.join("epochs.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], EPOCH_HEADER);
        assert_eq!(lines.len(), 1 + 4, "epochs 0..=3");
        let acc = |l: &str| l.split(',').nth(6).unwrap().parse::<f64>().unwrap();
        // lines[1] is epoch 0 (the untrained model), lines[4] epoch 3
        assert!(
            acc(lines[4]) > acc(lines[2]) && acc(lines[4]) > acc(lines[1]) + 0.4,
            "{run}: training accuracy must rise: {} -> {} -> {}",
            acc(lines[1]),
            acc(lines[2]),
            acc(lines[4])
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(rd.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["status"], "completed");
        assert_eq!(manifest["seed"], 11);
        assert_eq!(manifest["dataset"]["files"].as_array().unwrap().len(), 4);
        assert!(
            manifest["dataset"]["files"][0]["raw_sha256"]
                .as_str()
                .unwrap()
                .starts_with("c59f468a")
        );
        assert!(manifest["kernels"]["sgemm_kernel"].is_string());
    }
    let summary = std::fs::read_to_string(dir.path().join("a/summary.csv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("run,experiment,"));
    assert!(lines[0].contains("test_acc") && lines[0].contains("frac_small_weights"));
    assert!(lines[2].starts_with("l2_l2=1e-3,l2,") && lines[2].contains(",1e-3,"));

    // two jobs at once, two threads each: the same numbers
    let b = run_small(dir.path(), "b", "2", "2");
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    for run in ["base", "l2_l2=1e-3", "l2_l2=1e-4", "dropout"] {
        let pa = dir.path().join("a").join(run);
        let pb = dir.path().join("b").join(run);
        assert_eq!(
            without_timing(&pa.join("epochs.csv")),
            without_timing(&pb.join("epochs.csv")),
            "{run}"
        );
        assert_eq!(
            std::fs::read(pa.join("model.safetensors")).unwrap(),
            std::fs::read(pb.join("model.safetensors")).unwrap(),
            "{run}"
        );
    }
    // the summary differs only in the timing column
    let strip = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&dir.path().join("a/summary.csv")),
        strip(&dir.path().join("b/summary.csv"))
    );
    assert!(Path::new(FASHION).is_dir());
}

/// `regulab run ... 2>&1 | head` closes the command's pipes long before it is done. Its
/// messages are then dropped, never a panic (`println!` panics on a closed pipe, exit
/// 101): the runs, the summary and the report are all written, with the bits of the same
/// command whose output was read, and the exit code is 0.
#[test]
fn closed_stdout_and_stderr_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), SMALL);
    let args = |out: &str| {
        let out = dir.path().join(out);
        ["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]
            .map(String::from)
            .into_iter()
            .chain(["--jobs", "2", "--threads", "1"].map(String::from))
            .collect::<Vec<_>>()
    };
    // read to the end: what the command writes on each stream, so the closed run below
    // has writes to fail (per-epoch lines on stderr, the table and paths on stdout)
    let args_a = args("read");
    let read = regulab(&args_a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&read.stdout),
        String::from_utf8_lossy(&read.stderr),
    );
    assert!(
        stdout.contains("summary: ") && stdout.contains("report: "),
        "{stdout}"
    );
    assert!(stderr.contains("base: epoch 3/3"), "{stderr}");

    // both read ends closed before the command writes anything
    let mut child = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args("closed"))
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("regulab runs");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "with its pipes closed: {status:?}");
    let (a, b) = (dir.path().join("read"), dir.path().join("closed"));
    for run in ["base", "l2_l2=1e-3", "l2_l2=1e-4", "dropout"] {
        assert_eq!(
            without_timing(&a.join(run).join("epochs.csv")),
            without_timing(&b.join(run).join("epochs.csv")),
            "{run}"
        );
        assert_eq!(
            std::fs::read(a.join(run).join("model.safetensors")).unwrap(),
            std::fs::read(b.join(run).join("model.safetensors")).unwrap(),
            "{run}"
        );
    }
    for f in ["summary.csv", "report.html"] {
        assert!(b.join(f).is_file(), "{f} missing after the pipes closed");
    }
}

#[test]
fn invalid_configs_fail_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("reg.keep_input = 0.0", "reg.keep_input"),
        ("reg.keep_hidden = 1.5", "reg.keep_hidden"),
        ("optim.lr = -1.0", "optim.lr"),
        ("batch_size = 0", "batch_size"),
        ("[reg]\ndropout = 0.5", "dropout"),
    ] {
        let cfg = write_config(dir.path(), text);
        let o = regulab(&["run", cfg.to_str().unwrap(), "--no-fetch"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{text}: should fail");
        assert!(err.contains(needle), "{text}: stderr lacks {needle}: {err}");
        assert!(err.contains("study.toml"), "{text}: names the file: {err}");
    }
    // train_examples larger than the training split
    let cfg = write_config(
        dir.path(),
        "[data]\ndataset = \"fashion-mnist\"\ntrain_examples = 50001\n",
    );
    let o = regulab(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("train_examples"));
}

#[test]
fn missing_dataset_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "epochs = 1\n");
    let empty = dir.path().join("nodata");
    std::fs::create_dir(&empty).unwrap();
    let o = regulab(&[
        "run",
        cfg.to_str().unwrap(),
        "--data-dir",
        empty.to_str().unwrap(),
        "--no-fetch",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("regulab fetch mnist"), "{err}");
    assert!(err.contains("data.dataset=fashion-mnist"), "{err}");
    assert!(err.contains("experiments/lab4-mnist-t10k.toml"), "{err}");

    // with the download allowed (a mirror that refuses, on this machine): the failed
    // download comes first, then where it looked and what to do, each route whole
    let o = regulab_in(dir.path(), &["run", cfg.to_str().unwrap(), "--no-plot"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let error = &err[err.find("error: ").expect("an error line")..];
    assert!(
        error.starts_with("error: downloading mnist failed"),
        "{err}"
    );
    let (download, not_found) = (
        error.find("every mirror failed").unwrap(),
        error.find("dataset mnist not found").unwrap(),
    );
    assert!(download < not_found, "{err}");
    for route in [
        "regulab fetch mnist`",
        "--data-dir DIR",
        "regulab run experiments/lab4-mnist-t10k.toml",
        "add --set data.dataset=fashion-mnist",
    ] {
        assert!(error.contains(route), "lacks {route}: {err}");
    }
    assert!(
        error.lines().all(|l| !l.starts_with("or ")),
        "no loose fragment: {err}"
    );
    // the refused download left nothing behind
    assert!(!dir.path().join("data").exists());
}

/// `regulab` started in `cwd`, with downloads going to a mirror on this machine that
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

/// A config's relative `data.dataset` directory is found from the config file's
/// directory, whatever the working directory; a missing one is reported with its
/// resolved path.
#[test]
fn relative_dataset_paths_are_resolved_against_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    std::os::unix::fs::symlink(mnist.canonicalize().unwrap(), dir.path().join("d")).unwrap();
    let text = |dataset: &str| {
        format!(
            "epochs = 1\n[data]\ndataset = \"{dataset}\"\ntrain_file = \"t10k\"\n\
             test_file = \"none\"\nrange = [0, 300]\nvalidation = 100\ntrain_examples = 200\n\
             [model]\nhidden = [8]\n"
        )
    };
    std::fs::write(conf.join("ok.toml"), text("../d")).unwrap();
    std::fs::write(conf.join("bad.toml"), text("../nowhere")).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = dir.path().join("out");
    let o = regulab_in(
        &elsewhere,
        &[
            "run",
            "../conf/ok.toml",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-plot",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = std::fs::read_to_string(out.join("main/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(
        Path::new(m["config"]["data"]["dataset"].as_str().unwrap()),
        mnist.canonicalize().unwrap(),
        "the manifest records the resolved directory"
    );
    let o = regulab_in(&elsewhere, &["run", "../conf/bad.toml", "--no-plot"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let resolved = dir.path().canonicalize().unwrap().join("nowhere");
    assert!(
        err.contains(&format!("\"{}\"", resolved.display())) && err.contains("data.dataset"),
        "{err}"
    );
    assert!(err.contains("no such directory"), "{err}");
}

/// `--resume` without the `--set` the directory was made with is refused as "made with
/// other data", before any dataset is looked for (no download attempt).
#[test]
fn resume_with_other_data_is_refused_before_looking_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "epochs = 1\n[data]\ntrain_examples = 100\nvalidation = 100\n[model]\nhidden = [8]\n",
    );
    let out = dir.path().join("o");
    let args = |extra: &[&'static str]| {
        let mut v = vec![
            "run".to_string(),
            cfg.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
            "--no-plot".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        regulab_in(dir.path(), &a)
    };
    let o = run(args(&["--set", "data.dataset=fashion-mnist"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(args(&["--resume"]));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("made with other data")
            && err.contains("`data.dataset` is fashion-mnist there, mnist now"),
        "{err}"
    );
    assert!(
        !err.contains("download") && !err.contains("not found"),
        "{err}"
    );
    // with the same --set it resumes (nothing left to train)
    let o = run(args(&["--resume", "--set", "data.dataset=fashion-mnist"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `regulab fetch fashion-mnist` uses Debian's installed copy: nothing to download by
/// default, and a verified copy with --data-dir.
#[test]
fn fetch_fashion_mnist_uses_the_installed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let o = regulab_in(dir.path(), &["fetch", "fashion-mnist"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains(FASHION) && said.contains("nothing to download"),
        "{said}"
    );
    assert!(!dir.path().join("data").exists(), "nothing written");
    let to = dir.path().join("fm");
    let o = regulab_in(dir.path(), &["fetch", "fashion-mnist", "--data-dir", "fm"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        said.matches("copied from /usr/share/datasets/fashion-mnist/")
            .count(),
        4,
        "{said}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    for n in &names {
        assert_eq!(
            std::fs::read(to.join(n)).unwrap(),
            std::fs::read(Path::new(FASHION).join(n)).unwrap()
        );
    }
    // again: every file is already there
    let o = regulab_in(dir.path(), &["fetch", "fashion-mnist", "--data-dir", "fm"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("already present")
            .count(),
        4
    );
}

/// The help texts end their sentences and show one default each.
#[test]
fn help_texts_are_whole() {
    let o = regulab(&["run", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("runs not started yet start afresh"), "{help}");
    let o = regulab(&["corrupt", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    let seed = &help[help.find("--seed").unwrap()..];
    let seed = &seed[..seed.find("\n  -").unwrap_or(seed.len())];
    assert_eq!(seed.matches("default").count(), 1, "{seed}");
}

#[test]
fn diverging_run_is_reported_and_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        r#"
        epochs = 3
        [data]
        dataset = "fashion-mnist"
        train_examples = 200
        validation = 500
        [model]
        hidden = [32]
        activation = "relu"
        output = "linear"
        [experiments.ok]
        optim.lr = 0.01
        [experiments.boom]
        optim.lr = 1e6
        "#,
    );
    let out = dir.path().join("o");
    let o = regulab(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("boom"));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("ok,") && l.contains(",completed,"))
    );
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("boom,") && l.contains(",diverged,"))
    );
    let m = std::fs::read_to_string(out.join("boom/manifest.json")).unwrap();
    assert!(m.contains("\"status\": \"diverged\""));
}

/// `regulab dropout-figure` draws the input-dropout figure; `corrupt`, its former name,
/// stays a hidden alias giving the same file, and is not listed in the help.
#[test]
fn dropout_figure_and_its_hidden_alias_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.svg"), dir.path().join("b.svg"));
    for (cmd, out) in [("dropout-figure", &a), ("corrupt", &b)] {
        let out = out.to_str().unwrap();
        let o = regulab(&[
            cmd,
            "--dataset",
            "fashion-mnist",
            "--index",
            "2",
            "--out",
            out,
        ]);
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), out, "{cmd}");
    }
    let svg = std::fs::read(&a).unwrap();
    assert!(String::from_utf8_lossy(&svg).contains("training image 2"));
    assert_eq!(svg, std::fs::read(&b).unwrap());
    let help = regulab(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "run",
            "plot",
            "dropout-figure",
            "fetch",
            "verify",
            "slurm",
            "merge",
            "help"
        ],
        "{help}"
    );
}
