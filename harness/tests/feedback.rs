//! The library never prints: what `run::execute` has to say goes to the caller's
//! `Feedback` (the command draws it as lines or bars). Trains a tiny study on the
//! MNIST test set shipped in `data/mnist`, records every event, and checks them; then
//! the command's own lines on stderr, and `--quiet`.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use regulab::config;
use regulab::feedback::Feedback;
use regulab::run::{self, EpochRow, Progress, RunOptions};

fn config_text() -> String {
    format!(
        "epochs = 2\nbatch_size = 50\n\
         [data]\ndataset = {:?}\ntrain_file = \"t10k\"\ntest_file = \"none\"\n\
         range = [0, 600]\nvalidation = 100\ntrain_examples = 200\neval_batch = 100\n\
         [model]\nhidden = [16]\n\
         [experiments.a]\n[experiments.b]\nreg.l2 = 1e-3\n",
        common::mnist_dir().to_str().unwrap()
    )
}

/// Every event, as text.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn of(&self, run: &str) -> Vec<String> {
        let prefix = format!("{run} ");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

impl Feedback for Recorder {
    fn run_started(&self, run: &str, max_epochs: u32) {
        self.push(format!("{run} started {max_epochs}"));
    }
    fn epoch(&self, run: &str, row: &EpochRow, max_epochs: u32) {
        assert_eq!(row.run, run);
        self.push(format!("{run} epoch {}/{max_epochs}", row.epoch));
    }
    fn note(&self, run: &str, message: &str) {
        self.push(format!("{run} note {message}"));
    }
    fn run_finished(&self, run: &str, summary: &str) {
        self.push(format!("{run} finished {summary}"));
    }
}

#[test]
fn execute_reports_every_event_to_the_callers_feedback() {
    let plan = config::parse(&config_text(), "feedback.toml", "feedback", &[]).unwrap();
    let data = run::load_datasets(&plan, None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let opts = |resume: bool| RunOptions {
        out: tmp.path().join("out"),
        threads: 1,
        jobs: 2,
        progress: Progress::Report(recorder.clone()),
        resume,
        halt_after_epoch: None,
    };
    run::execute(&plan, &data, &opts(false)).unwrap();
    for name in ["a", "b"] {
        let events = recorder.of(name);
        assert_eq!(
            events[..4],
            ["started 2", "epoch 0/2", "epoch 1/2", "epoch 2/2"],
            "{name}: {events:?}"
        );
        assert_eq!(events.len(), 5, "{name}: {events:?}");
        assert!(
            events[4].starts_with(&format!("finished {name}: completed after 2 epochs")),
            "{events:?}"
        );
    }
    // resuming finished runs trains nothing, and says so
    recorder.0.lock().unwrap().clear();
    run::execute(&plan, &data, &opts(true)).unwrap();
    for name in ["a", "b"] {
        assert_eq!(
            recorder.of(name),
            [format!(
                "note {name}: already completed (2 epochs), not trained again"
            )]
        );
    }
}

/// `regulab run` draws the events as lines on stderr (not a terminal here); `--quiet`
/// leaves only the table on stdout.
#[test]
fn the_command_prints_epoch_lines_unless_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("feedback.toml");
    std::fs::write(&cfg, config_text()).unwrap();
    let run = |out: &str, quiet: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regulab"));
        c.env("REGULAB_KERNEL_CACHE", "off");
        c.args([
            "run",
            cfg.to_str().unwrap(),
            "--no-plot",
            "--no-fetch",
            "--jobs",
            "1",
        ]);
        c.args(["--out", tmp.path().join(out).to_str().unwrap()]);
        if quiet {
            c.arg("--quiet");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run("loud", false);
    for line in [
        "a: epoch 0/2 train_cost ",
        "b: epoch 2/2 train_cost ",
        "b: completed after 2 epochs",
    ] {
        assert!(stderr.contains(line), "stderr lacks {line:?}: {stderr}");
    }
    assert!(stdout.contains("summary: "), "{stdout}");
    let (quiet_out, quiet_err) = run("quiet", true);
    assert!(quiet_err.is_empty(), "{quiet_err}");
    assert!(quiet_out.contains("summary: "), "{quiet_out}");
}
