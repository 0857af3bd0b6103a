//! Fault injection: results you can trust on disk (issue 12). Each test reproduces one
//! defect of the issue (its number in the test's doc) with the built `regulab` on the
//! repository's MNIST test set (`data/mnist`), and checks the fixed behaviour:
//!
//! * one command owns an output directory at a time (an OS lock: a second `run`,
//!   `run --resume`, `verify` or `plot` fails at once with exit 2, naming the holder);
//! * results are never replaced silently (`--resume` or `--overwrite`, which removes
//!   regulab's own files only); report, plots and summary show the plan's runs only;
//! * `--resume` checks the whole plan before training anything;
//! * the checkpoint's SHA-256 covers the whole file;
//! * `verify` never writes where a manifest points nor into the verified run, verifies
//!   every run of a sweep and checks `summary.csv` against the run directories;
//! * one diverging run does not stop the figures of the others; stale temporary files
//!   of an interrupted `plot` are removed; a data path that is not UTF-8 is refused
//!   before anything is written.
//!
//! Disk-full and signal tests are in `disk_full.rs` and `signals.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use regulab::checkpoint::{self, Checkpoint};
use regulab::config;
use regulab::run::{self, Progress, RunOptions};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regulab"));
    c.env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off");
    c
}

fn regulab(args: &[&str]) -> Output {
    bin().args(args).output().expect("regulab runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// A study of two small runs on the MNIST test set read from `data` (a directory).
fn config_text(data: &Path, epochs: u32) -> String {
    format!(
        r#"
name = "t"
seed = 5
epochs = {epochs}
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 1500]
validation = 500
train_examples = 300
[model]
hidden = [16]
[experiments.base]
[experiments.l2]
reg.l2 = 1e-3
"#,
        data.display()
    )
}

/// Write the study's config into `dir` and return its path.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_cmd(cfg: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", s(cfg), "--out", s(out), "--quiet", "--no-plot"];
    args.extend(extra);
    regulab(&args)
}

/// A finished study in `tmp/<name>`: its config and output directory.
fn finished_study(tmp: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cfg = write_config(tmp, &format!("{name}.toml"), &config_text(&mnist_dir(), 2));
    let out = tmp.join(name);
    let o = run_cmd(&cfg, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (cfg, out)
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

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Defect 2: `verify` takes no path from a manifest. A manifest whose `run` is an
/// absolute path or climbs out with `..` is refused, and nothing is written there.
#[test]
fn verify_never_writes_where_a_manifest_points() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_study(tmp.path(), "s");
    let abs = tmp.path().join("abs-target");
    for (i, bad) in [s(&abs).to_string(), "../../escaped".to_string()]
        .iter()
        .enumerate()
    {
        let copy = tmp.path().join(format!("c{i}")).join("a").join("base");
        copy_dir(&out.join("base"), &copy);
        edit_json(&copy.join("manifest.json"), |m| {
            m["run"] = bad.clone().into()
        });
        let keep = tmp.path().join(format!("keep{i}"));
        for extra in [&[][..], &["--keep", s(&keep)][..]] {
            let mut args = vec!["verify", s(&copy)];
            args.extend(extra);
            let o = regulab(&args);
            assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
            let err = stderr(&o);
            assert!(
                err.contains("manifest.json") && err.contains("`run`"),
                "{bad}: names the file and field: {err}"
            );
        }
        // nothing was written where the manifest points, nor beside the copy
        assert!(!abs.exists(), "{}", abs.display());
        assert!(!tmp.path().join(format!("c{i}")).join("escaped").exists());
        assert!(!tmp.path().join("escaped").exists());
        assert!(!keep.join("../escaped").exists());
    }
    // a valid name that is not the directory's: the rerun goes into verify's own
    // directory (named after the run directory), never into one named by the manifest
    let copy = tmp.path().join("renamed").join("base");
    copy_dir(&out.join("base"), &copy);
    edit_json(&copy.join("manifest.json"), |m| m["run"] = "l2".into());
    let keep = tmp.path().join("keep-renamed");
    let o = regulab(&["verify", s(&copy), "--keep", s(&keep)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(keep.join("base").join("manifest.json").is_file());
    assert!(!keep.join("l2").exists());
}

/// Defect 3: `verify RUN --keep DIR` where DIR is the run's parent overwrote the run
/// and reported `identical`. DIR must be new or empty and apart from the run.
#[test]
fn verify_keep_must_be_new_or_empty_and_apart_from_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_study(tmp.path(), "s");
    let run = out.join("base");
    // tamper with a result: verify must report it, never erase it
    let csv = run.join("epochs.csv");
    let original = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = original.lines().map(String::from).collect();
    let mut fields: Vec<String> = lines[2].split(',').map(String::from).collect();
    fields[6] = "0.999".into();
    lines[2] = fields.join(",");
    let tampered = lines.join("\n") + "\n";
    std::fs::write(&csv, &tampered).unwrap();
    let link = tmp.path().join("link-to-parent");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let nonempty = tmp.path().join("nonempty");
    std::fs::create_dir(&nonempty).unwrap();
    std::fs::write(nonempty.join("notes.txt"), b"mine").unwrap();
    for keep in [
        out.clone(),                    // the parent of the run (the issue's case)
        link.clone(),                   // the same through a symlink
        run.clone(),                    // the run itself
        run.join("sub"),                // inside the run
        tmp.path().join("s/./base/.."), // the parent, spelt otherwise
        nonempty.clone(),               // not empty
    ] {
        let o = regulab(&["verify", s(&run), "--keep", s(&keep)]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", keep.display(), text(&o));
        assert!(stderr(&o).contains("--keep"), "{}", text(&o));
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            tampered,
            "{}: the run is untouched",
            keep.display()
        );
        assert!(!run.join("sub").exists());
    }
    assert_eq!(names_in(&nonempty), ["notes.txt"]);
    // the whole sweep into a directory inside it: refused too
    let o = regulab(&["verify", s(&out), "--keep", s(&out.join("keep"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!out.join("keep").exists());
    // a new directory is fine, and an empty one: the tampered value is reported
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for keep in [tmp.path().join("new").join("k"), empty] {
        let o = regulab(&["verify", s(&run), "--keep", s(&keep)]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let said = String::from_utf8_lossy(&o.stdout);
        assert!(
            said.contains("DIFFERENT") && said.contains("original 0.999"),
            "{said}"
        );
        assert!(keep.join("base").join("epochs.csv").is_file());
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), tampered);
    }
}

/// The first line of the lock file's holder (pid), once it is written.
fn wait_for_lock_holder(out: &Path, child: &mut Child) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(out.join(".regulab.lock"))
            && t.contains(&format!("\"pid\":{}", child.id()))
            && out.join("base").join("epochs.csv").is_file()
        {
            return t;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first command ended early"
        );
        assert!(t0.elapsed() < Duration::from_secs(60), "no lock taken");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Defect 4: two commands in one output directory. The second (any of `run`, `run
/// --resume`, `verify`, `plot`) fails at once with exit 2, naming the directory and the
/// holder (pid, host, start); the lock dies with its holder.
#[test]
fn one_command_owns_an_output_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "long.toml",
        &config_text(&mnist_dir(), 1_000_000),
    );
    let out = tmp.path().join("out");
    let mut first = bin()
        .args(["run", s(&cfg), "--out", s(&out), "--quiet", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let holder = wait_for_lock_holder(&out, &mut first);
    let pid = first.id().to_string();
    let seed12 = ["--set", "seed=12"];
    let base = out.join("base");
    let attempts: Vec<Vec<&str>> = vec![
        vec![
            "run",
            s(&cfg),
            "--out",
            s(&out),
            "--quiet",
            seed12[0],
            seed12[1],
        ],
        vec!["run", s(&cfg), "--out", s(&out), "--quiet", "--resume"],
        vec!["run", s(&cfg), "--out", s(&out), "--quiet", "--overwrite"],
        vec!["verify", s(&out)],
        vec!["verify", s(&base)],
        vec!["plot", s(&out)],
        vec!["plot", s(&base)],
    ];
    for args in &attempts {
        let t0 = Instant::now();
        let o = regulab(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            err.contains(s(&out)) && err.contains(&format!("pid {pid}")),
            "{args:?}: names the directory and the holder: {err}"
        );
        assert!(err.contains("in use"), "{args:?}: {err}");
        assert!(t0.elapsed() < Duration::from_secs(20), "{args:?}: at once");
    }
    assert!(holder.contains("\"host\"") && holder.contains("\"started_utc\""));
    // the first command was not disturbed: its run directory is its own
    assert!(first.try_wait().unwrap().is_none(), "still training");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("base/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["seed"], 5);
    // killed: the OS releases the lock, no stale lock file stops the next command
    first.kill().unwrap();
    first.wait().unwrap();
    let o = regulab(&["verify", s(&out)]);
    assert!(!stderr(&o).contains("in use"), "{}", text(&o));
}

/// Defect 5: a rerun without `--resume` replaced the results silently.
#[test]
fn a_directory_with_results_is_refused_without_resume_or_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, out) = finished_study(tmp.path(), "s");
    let model = std::fs::read(out.join("base/model.safetensors")).unwrap();
    let summary = std::fs::read(out.join("summary.csv")).unwrap();
    for extra in [&[][..], &["--set", "seed=12"][..]] {
        let o = run_cmd(&cfg, &out, extra);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = stderr(&o);
        assert!(
            err.contains(s(&out)) && err.contains("--resume") && err.contains("--overwrite"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(out.join("base/model.safetensors")).unwrap(),
        model
    );
    assert_eq!(std::fs::read(out.join("summary.csv")).unwrap(), summary);
    // only a directory holding run directories counts: an unrelated one is fine
    let other = tmp.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let o = run_cmd(&cfg, &other, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine");
    // --resume and --overwrite together make no sense
    let o = run_cmd(&cfg, &out, &["--resume", "--overwrite"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Defect 5: `--overwrite` removes the old results first, and only regulab's files;
/// the summary, plots and report then show the new plan's runs only.
#[test]
fn overwrite_removes_only_regulabs_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_study(tmp.path(), "s");
    let o = regulab(&["plot", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.join("plots/cost_l2.svg").is_file());
    // the user's files: beside the runs, inside a run directory, among the figures
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::fs::write(out.join("l2/notes.txt"), b"mine too").unwrap();
    std::fs::write(out.join("plots/sketch.txt"), b"and mine").unwrap();
    std::fs::create_dir(out.join("mydata")).unwrap();
    std::fs::write(out.join("mydata/x.csv"), b"1,2\n").unwrap();
    // a config with one run only (another seed)
    let cfg = write_config(
        tmp.path(),
        "one.toml",
        &config_text(&mnist_dir(), 2).replace("[experiments.l2]\nreg.l2 = 1e-3\n", ""),
    );
    let o = bin()
        .args([
            "run",
            s(&cfg),
            "--out",
            s(&out),
            "--overwrite",
            "--set",
            "seed=9",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = stderr(&o);
    for removed in ["summary.csv", "report.html", "cost_l2.svg", "l2"] {
        assert!(
            err.contains(removed),
            "says what it removes: {removed}: {err}"
        );
    }
    assert!(err.contains("notes.txt"), "says what it keeps: {err}");
    // the user's files are all there; regulab's old ones are gone
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read(out.join("l2/notes.txt")).unwrap(),
        b"mine too"
    );
    assert_eq!(names_in(&out.join("l2")), ["notes.txt"]);
    assert_eq!(
        std::fs::read(out.join("plots/sketch.txt")).unwrap(),
        b"and mine"
    );
    assert_eq!(std::fs::read(out.join("mydata/x.csv")).unwrap(), b"1,2\n");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 2, "{summary}");
    assert!(summary.lines().nth(1).unwrap().starts_with("base,"));
    let plots = names_in(&out.join("plots"));
    assert!(plots.contains(&"cost_base.svg".to_string()), "{plots:?}");
    assert!(
        !plots.iter().any(|p| p.contains("l2")),
        "old figures are gone: {plots:?}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!report.contains("cost_l2") && !report.contains(">l2<"));
}

/// Defect 5: `regulab plot` drew every subdirectory, so run directories of another
/// config (copied or left in) appeared in the figures and report.
#[test]
fn report_and_plots_show_only_the_runs_of_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_study(tmp.path(), "s");
    copy_dir(&out.join("l2"), &out.join("stray"));
    edit_json(&out.join("stray/manifest.json"), |m| {
        m["run"] = "stray".into();
        m["experiment"] = "stray".into();
    });
    // without a summary.csv (a sweep that has not finished) the plan still decides
    std::fs::remove_file(out.join("summary.csv")).unwrap();
    let o = regulab(&["plot", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plots = names_in(&out.join("plots"));
    assert!(plots.contains(&"cost_l2.svg".to_string()), "{plots:?}");
    assert!(
        !plots.iter().any(|p| p.contains("stray")),
        "only the plan's runs: {plots:?}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !report.contains("stray"),
        "only the plan's runs in the report"
    );
}

/// Defect 6: a refused `--resume` had already trained other runs with other data.
/// The whole plan is checked against every run directory before training.
#[test]
fn resume_checks_the_whole_plan_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    // data in a directory of our own, so that it can change under the same config
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist_dir().join(f), data.join(f)).unwrap();
    }
    let cfg = write_config(tmp.path(), "t.toml", &config_text(&data, 2));
    let out = tmp.path().join("out");
    let o = run_cmd(&cfg, &out, &["--jobs", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // `base` (first in the plan) as if never started; `l2` finished
    std::fs::remove_dir_all(out.join("base")).unwrap();
    std::fs::remove_file(out.join("summary.csv")).unwrap();
    // other data under the same config: one pixel changed, stored uncompressed
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(data.join("t10k-images-idx3-ubyte.gz")).unwrap(),
    )
    .read_to_end(&mut raw)
    .unwrap();
    raw[16 + 300] ^= 0x40;
    std::fs::remove_file(data.join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(data.join("t10k-images-idx3-ubyte"), &raw).unwrap();
    let l2_before = std::fs::read(out.join("l2/epochs.csv")).unwrap();
    let o = run_cmd(&cfg, &out, &["--resume", "--jobs", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("l2") && err.contains("other data"), "{err}");
    assert!(
        !out.join("base").exists(),
        "nothing was trained before the refusal"
    );
    assert_eq!(std::fs::read(out.join("l2/epochs.csv")).unwrap(), l2_before);

    // a run directory that is not in the plan (another config's) is refused too
    let cfg1 = write_config(
        tmp.path(),
        "one.toml",
        &config_text(&mnist_dir(), 2).replace("[experiments.l2]\nreg.l2 = 1e-3\n", ""),
    );
    let (_, out2) = finished_study(tmp.path(), "s2");
    std::fs::remove_dir_all(out2.join("base")).unwrap();
    std::fs::remove_file(out2.join("summary.csv")).unwrap();
    let o = run_cmd(&cfg1, &out2, &["--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("l2"), "names the run directory: {err}");
    assert!(!out2.join("base").exists(), "nothing trained: {err}");
}

/// Defect 7: the checkpoint's SHA-256 covered only the tensors; a flipped bit of
/// `step` resumed silently with other dropout masks. It covers the whole file now.
#[test]
fn a_flipped_bit_in_the_checkpoint_metadata_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg_text = config_text(&mnist_dir(), 3).replace(
        "[experiments.base]",
        "[experiments.base]\nreg.keep_hidden = 0.5",
    );
    let plan = config::parse(&cfg_text, "t.toml", "t", &[]).unwrap();
    let data = run::load_datasets(&plan, None).unwrap();
    let out = tmp.path().join("out");
    let opts = |resume: bool, halt: Option<u32>| RunOptions {
        out: out.clone(),
        threads: 1,
        jobs: 1,
        progress: Progress::Quiet,
        resume,
        halt_after_epoch: halt,
    };
    run::execute(&plan, &data, &opts(false, Some(1))).unwrap_err();
    let ck = out.join("base").join(checkpoint::FILE_NAME);
    let mut bytes = std::fs::read(&ck).unwrap();
    assert_eq!(Checkpoint::read(&ck).unwrap().state.step, 30);
    let at = bytes
        .windows(10)
        .position(|w| w == b"\\\"step\\\":3")
        .expect("the step in the metadata")
        + 9;
    bytes[at] ^= 0x01; // "30" -> "20"
    std::fs::write(&ck, &bytes).unwrap();
    let e = Checkpoint::read(&ck).unwrap_err().to_string();
    assert!(e.contains("SHA-256") && e.contains(s(&ck)), "{e}");
    let e = run::execute(&plan, &data, &opts(true, None)).unwrap_err();
    assert!(format!("{e:#}").contains("SHA-256"), "{e:#}");
}

/// Defect 16: one run diverging in its first epoch stopped the figures and report of
/// every run, and `regulab plot` failed every time.
#[test]
fn a_diverging_run_does_not_stop_the_figures_of_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg_text = config_text(&mnist_dir(), 2).replace(
        "reg.l2 = 1e-3",
        "reg.l2 = 1e-3\n[experiments.boom]\noptim.lr = 1e30\nmodel.activation = \"relu\"\nmodel.init = \"glorot\"",
    );
    let cfg = write_config(tmp.path(), "d.toml", &cfg_text);
    let out = tmp.path().join("out");
    let o = regulab(&["run", s(&cfg), "--out", s(&out), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "a diverged run: {}", text(&o));
    assert!(stderr(&o).contains("diverged"), "{}", text(&o));
    for o in [o, regulab(&["plot", s(&out)])] {
        let plots = names_in(&out.join("plots"));
        for f in ["cost_base.svg", "cost_l2.svg", "weights_l2.svg"] {
            assert!(plots.contains(&f.to_string()), "{f}: {plots:?}");
        }
        assert!(out.join("report.html").is_file());
        let said = text(&o);
        assert!(
            said.contains("boom") && said.contains("skipped"),
            "a note says what was skipped: {said}"
        );
    }
    let o = regulab(&["plot", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("skipped"), "the report has the note too");
}

/// Defect 17: a kill while plotting left `plots/.regulab-*.tmp` forever.
#[test]
fn stale_temporary_files_of_a_killed_plot_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_study(tmp.path(), "s");
    std::fs::create_dir_all(out.join("plots")).unwrap();
    for f in ["plots/.regulab-AbC123.tmp", ".regulab-XyZ789.tmp"] {
        std::fs::write(out.join(f), b"<svg half").unwrap();
    }
    let o = regulab(&["plot", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let left: Vec<String> = names_in(&out.join("plots"))
        .into_iter()
        .chain(names_in(&out))
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Defect 17: a `--data-dir` that is not UTF-8 failed naming no path, after writing a
/// run directory with only init.safetensors.
#[test]
fn a_data_dir_that_is_not_utf8_is_refused_before_anything_is_written() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp
        .path()
        .join(std::ffi::OsStr::from_bytes(b"data-\xff-dir"));
    std::fs::create_dir(&data).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist_dir().join(f), data.join(f)).unwrap();
    }
    let cfg = write_config(
        tmp.path(),
        "m.toml",
        &config_text(&mnist_dir(), 1)
            .replace(&format!("\"{}\"", mnist_dir().display()), "\"mnist\""),
    );
    let out = tmp.path().join("out");
    let o = bin()
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(&data)
        .args(["--quiet", "--no-fetch"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("data-") && err.contains("-dir"),
        "names the path: {err}"
    );
    assert!(err.contains("UTF-8"), "{err}");
    assert!(!out.exists(), "nothing written: {:?}", names_in(&out));
}

/// Defect 17: `verify` on a sweep stopped at the first unfinished run and discarded the
/// reports already made, never checked `summary.csv`, and passed with a run missing.
#[test]
fn verify_checks_every_run_of_a_sweep_and_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_study(tmp.path(), "s");
    let o = regulab(&["verify", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("summary.csv"));

    // `base` (first by name) unfinished: `l2` is still verified and reported
    let a = tmp.path().join("a");
    copy_dir(&out, &a);
    edit_json(&a.join("base/manifest.json"), |m| {
        m["status"] = "running".into()
    });
    let o = regulab(&["verify", s(&a)]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("l2: identical"), "{said}");
    assert!(
        said.contains("base") && said.contains("not finished"),
        "{said}"
    );

    // a summary value changed: reported, naming summary.csv, run and column
    let b = tmp.path().join("b");
    copy_dir(&out, &b);
    let p = b.join("summary.csv");
    let summary = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = summary.lines().map(String::from).collect();
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "final_train_acc").unwrap();
    let mut fields: Vec<String> = lines[2].split(',').map(String::from).collect();
    fields[col] = "0.123".into();
    lines[2] = fields.join(",");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let o = regulab(&["verify", s(&b)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("summary.csv") && said.contains("final_train_acc") && said.contains("l2"),
        "{said}"
    );

    // a run directory of the plan missing: fails, naming it
    let c = tmp.path().join("c");
    copy_dir(&out, &c);
    std::fs::remove_dir_all(c.join("l2")).unwrap();
    let o = regulab(&["verify", s(&c)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("l2") && said.contains("missing"), "{said}");
    assert!(said.contains("base: identical"), "{said}");
}
