//! `regulab run --shard` and `regulab merge`, through the binary: shards trained at the
//! same time into one directory and merged give the bits of one `regulab run`, and
//! merge writes byte for byte what `regulab run` writes from the same run directories;
//! what shards and merge refuse.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{
    FASHION, SIX, assert_same_runs, read, run_args, run_names, summary_without_timing, text,
    write_six,
};

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regulab"));
    c.args(args)
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("SLURM_ARRAY_TASK_MIN")
        .env_remove("SLURM_ARRAY_TASK_MAX");
    c
}

fn regulab(args: &[&str]) -> Output {
    command(args).output().expect("regulab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The files of `dir/plots`, sorted.
fn figures(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `summary.csv`, `report.html` and every figure of `a` and `b` are the same bytes.
fn assert_same_outputs(a: &Path, b: &Path) {
    for f in ["summary.csv", "report.html"] {
        assert!(
            read(&a.join(f)) == read(&b.join(f)),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    let names = figures(a);
    assert_eq!(names, figures(b));
    assert!(names.len() >= 6, "{names:?}");
    for n in &names {
        assert!(
            read(&a.join("plots").join(n)) == read(&b.join("plots").join(n)),
            "plots/{n} differs"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with(".regulab") {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// The run names a command's comparison table (stdout) lists, among `names`.
fn listed<'a>(o: &Output, names: &'a [String]) -> Vec<&'a str> {
    let out = String::from_utf8_lossy(&o.stdout);
    names
        .iter()
        .filter(|n| {
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(n.as_str()))
        })
        .map(String::as_str)
        .collect()
}

#[test]
fn shards_trained_at_once_and_merged_give_the_bytes_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    // the same directory name everywhere: the report's title is the directory's name
    let single = tmp.path().join("single/six");
    let sharded = tmp.path().join("sharded/six");
    let o = regulab(&run_args(&config, &single, &["--jobs", "2"]));
    assert!(o.status.success(), "{}", text(&o));
    let names = run_names(&single);
    assert_eq!(names.len(), 6);

    // both shards at the same time, into one directory
    let shards: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            command(&run_args(&config, &sharded, &["--shard", s]))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let shards: Vec<Output> = shards
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (k, o) in shards.iter().enumerate() {
        assert!(o.status.success(), "shard {k}/2: {}", text(o));
        // shard k trained the runs of plan index k mod 2, and said how to merge
        let mine: Vec<&str> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == k)
            .map(|(_, n)| n.as_str())
            .collect();
        assert_eq!(listed(o, &names), mine, "shard {k}/2: {}", text(o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("regulab merge"),
            "{}",
            text(o)
        );
    }
    // the plan once, the same bytes as one run's; no outputs before the merge
    assert!(read(&sharded.join("plan.json")) == read(&single.join("plan.json")));
    for f in ["summary.csv", "report.html", "plots"] {
        assert!(!sharded.join(f).exists(), "a shard wrote {f}");
    }
    assert_same_runs(&sharded, &single);

    let o = regulab(&["merge", sharded.to_str().unwrap(), "--data-dir", FASHION]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("merged 6 run(s)"),
        "{}",
        text(&o)
    );
    // the same results as one run; only the seconds of training differ
    assert_eq!(
        summary_without_timing(&sharded.join("summary.csv")),
        summary_without_timing(&single.join("summary.csv"))
    );
    let drawn = figures(&sharded);
    assert_eq!(drawn, figures(&single));
    for n in &drawn {
        assert!(
            read(&sharded.join("plots").join(n)) == read(&single.join("plots").join(n)),
            "plots/{n} differs"
        );
    }
    assert!(
        read(&sharded.join("report.html")) == read(&single.join("report.html")),
        "report.html differs"
    );

    // merge writes byte for byte what `regulab run` wrote, from the same run
    // directories (timing included): merge a copy of the single run's directories,
    // finding the data through the manifests
    let copy = tmp.path().join("copy/six");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(single.join("plan.json"), copy.join("plan.json")).unwrap();
    for n in &names {
        copy_dir(&single.join(n), &copy.join(n));
    }
    let o = regulab(&["merge", copy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_outputs(&copy, &single);
}

/// Edit `dir/manifest.json` as JSON.
fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&read(&path)).unwrap();
    f(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[test]
fn merge_refuses_missing_unfinished_and_foreign_runs_and_notes_kernel_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    let out = tmp.path().join("six");
    // task 0 of a 3-task array: plan indices 0 and 3
    let o = command(&run_args(&config, &out, &["--shard", "slurm/3"]))
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_JOB_ID", "77")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let names = run_names(&out);
    assert_eq!(listed(&o, &names), [&*names[0], &*names[3]], "{}", text(&o));

    // four runs missing: refused, all listed, nothing written
    let o = regulab(&["merge", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("4 of its 6 runs"), "{err}");
    for (i, n) in names.iter().enumerate() {
        let line = format!("{n}: missing (never started)");
        assert_eq!(err.contains(&line), i % 3 != 0, "{line}: {err}");
    }
    assert!(err.contains("--partial"), "{err}");
    assert!(!out.join("summary.csv").exists());

    // a run of another config (seed 6) copied in, one left unfinished
    let other = tmp.path().join("other/six");
    let o = regulab(&run_args(
        &config,
        &other,
        &["--shard", "1/3", "--set", "seed=6", "--no-plot"],
    ));
    assert!(o.status.success(), "{}", text(&o));
    copy_dir(&other.join(&names[1]), &out.join(&names[1]));
    edit_manifest(&out.join(&names[3]), |m| {
        m["status"] = "running".into();
    });
    let o = regulab(&["merge", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("5 of its 6 runs"), "{err}");
    assert!(
        err.contains(&format!("{}: trained with another config", names[1])),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}: unfinished (3 epoch(s) trained)", names[3])),
        "{err}"
    );
    assert!(!out.join("summary.csv").exists());

    // --partial: the finished run only, the others listed; runs of two kernel classes
    // are noted
    edit_manifest(&out.join(&names[3]), |m| {
        m["status"] = "completed".into();
    });
    edit_manifest(&out.join(&names[0]), |m| {
        m["kernels"]["bits_class"] = "another-class".into();
    });
    let o = regulab(&["merge", out.to_str().unwrap(), "--partial", "--no-plot"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("left out: ").count(), 4, "{err}");
    assert!(
        err.contains("different kernel classes") && err.contains("another-class"),
        "{err}"
    );
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{summary}");
    assert!(rows[0].starts_with(&format!("{},", names[0])), "{summary}");
    assert!(rows[1].starts_with(&format!("{},", names[3])), "{summary}");
}

#[test]
fn shard_arguments_and_directories_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    let out = tmp.path().join("six");
    for (shard, says) in [
        ("3/3", "expected 0 <= I < N"),
        ("1", "expected I/N"),
        ("slurm", "not a task of a Slurm job array"),
    ] {
        let o = regulab(&run_args(&config, &out, &["--shard", shard]));
        assert_eq!(o.status.code(), Some(2), "{shard}: {}", text(&o));
        assert!(stderr(&o).contains(says), "{shard}: {}", text(&o));
        assert!(!out.exists(), "--shard {shard} created {}", out.display());
    }
    let o = regulab(&run_args(&config, &out, &["--shard", "0/2", "--overwrite"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // data that cannot be loaded: the error, and no directory left behind
    let o = regulab(&run_args(
        &config,
        &out,
        &[
            "--shard",
            "0/2",
            "--set",
            "data.dataset=/nonexistent/regulab-data",
        ],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("/nonexistent/regulab-data"),
        "{}",
        text(&o)
    );
    assert!(
        !out.exists(),
        "a shard that failed created {}",
        out.display()
    );

    // the same shard twice at once: one trains, the other is refused (its runs are in
    // use, or already hold results)
    let twice: Vec<_> = (0..2)
        .map(|_| {
            command(&run_args(&config, &out, &["--shard", "5/6", "--no-plot"]))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let twice: Vec<Output> = twice
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = twice.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{}\n{}", text(&twice[0]), text(&twice[1]));
    let refused = twice.iter().find(|o| !o.status.success()).unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(refused));
    let err = stderr(refused);
    assert!(
        err.contains("in use by another regulab command") || err.contains("already holds"),
        "{err}"
    );

    // again without --resume: refused; with it: nothing to train, done
    let o = regulab(&run_args(&config, &out, &["--shard", "5/6"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("already holds results"), "{}", text(&o));
    let o = regulab(&run_args(&config, &out, &["--shard", "5/6", "--resume"]));
    assert!(o.status.success(), "{}", text(&o));

    // another plan in the directory: refused, naming plan.json
    let o = regulab(&run_args(
        &config,
        &out,
        &["--shard", "0/6", "--set", "seed=6"],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("plan.json"), "{}", text(&o));

    // merge of a directory that is not a sweep
    let o = regulab(&["merge", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("plan.json"), "{}", text(&o));
}

#[test]
fn merge_names_the_slurm_task_of_each_missing_run_and_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_six(tmp.path(), SIX);
    let out = tmp.path().join("six");
    let o = regulab(&[
        "slurm",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--data-dir",
        FASHION,
        "--runs-per-task",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let names = run_names(&out);
    // task 1 (plan indices 1 and 4) failed and said why in its log; task 2 never ran
    let log = out.join("slurm/logs/sweep-41_1.log");
    std::fs::write(
        &log,
        "regulab sweep six: task 1 of array 41\nerror: dataset `x` not found in /nowhere\n",
    )
    .unwrap();
    std::fs::write(out.join("slurm/logs/sweep-41_0.log"), "regulab sweep six\n").unwrap();
    let o = regulab(&["merge", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    for (i, n) in names.iter().enumerate() {
        let line = err
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{n}: missing")))
            .unwrap_or_else(|| panic!("{n} not listed: {err}"));
        let task = i % 3;
        assert!(
            line.contains(&format!("Slurm array task {task} trains it")),
            "{line}"
        );
        match task {
            0 => assert!(line.contains("sweep-41_0.log") && !line.contains("failed")),
            1 => assert!(
                line.contains("and failed: error: dataset `x` not found in /nowhere")
                    && line.contains(log.to_str().unwrap()),
                "{line}"
            ),
            _ => assert!(line.contains("it has no log"), "{line}"),
        }
    }
}
