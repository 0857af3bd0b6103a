//! `reg.convention` end to end: a run under the 2015 lab's convention (`lab2015`,
//! coefficients `c`) trains and reports exactly what the `mean` convention does with
//! `c / B` and the biases penalised, and the same numbers under `mean` give another run.
//! The convention is recorded in the run's manifest (and only when it is `lab2015`).
//! The update formulas themselves are checked in the model crate (`tests/convention.rs`,
//! `tests/gradcheck.rs`).

use std::path::{Path, PathBuf};

use regulab::config;
use regulab::run::{self, Progress, RunOptions};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// `epochs.csv` of a run without its `run` column and the timing columns.
fn epochs_numbers(run_dir: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(run_dir.join("epochs.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| &header[i] != "run" && !run::TIMING_COLUMNS.contains(&&header[i]))
        .collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            keep.iter().map(|&i| rec[i].to_string()).collect()
        })
        .collect()
}

fn manifest(run_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn lab2015_is_mean_over_the_batch_size_with_biases_end_to_end() {
    // the lab's table values at batch 10: 1e-4 / 10 and 1e-5 / 10 round to the f32
    // of 1e-5 and 1e-6 (checked in the model's tests/convention.rs)
    let text = format!(
        r#"
name = "convention"
seed = 5
epochs = 2
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 1500]
validation = 500
train_examples = 500
[model]
hidden = [32]
[experiments.lab]
reg.convention = "lab2015"
reg.l1 = 1e-4
reg.l2 = 1e-5
[experiments.mean_equivalent]
reg.l1 = 1e-5
reg.l2 = 1e-6
reg.penalize_biases = true
[experiments.mean_same_numbers]
reg.l1 = 1e-4
reg.l2 = 1e-5
"#,
        mnist_dir().display()
    );
    let plan = config::parse(&text, "convention.toml", "convention", &[]).unwrap();
    assert_eq!(
        plan.runs[0].config.reg.convention,
        regulab_model::PenaltyConvention::Lab2015
    );
    let data = run::load_datasets(&plan, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let opts = RunOptions {
        out: out.clone(),
        threads: 1,
        jobs: 1,
        progress: Progress::Quiet,
        resume: false,
        halt_after_epoch: None,
    };
    let outcomes = run::execute(&plan, &data, &opts).unwrap();
    let [lab, equivalent, same] = &outcomes[..] else {
        panic!("three runs")
    };
    assert_eq!(lab.digest, equivalent.digest);
    assert_ne!(lab.digest, same.digest, "the convention changes the run");
    let lab_rows = epochs_numbers(&out.join("lab"));
    assert_eq!(lab_rows, epochs_numbers(&out.join("mean_equivalent")));
    assert_ne!(lab_rows, epochs_numbers(&out.join("mean_same_numbers")));
    // the reported penalty is the one the steps follow: nonzero, and biases count
    let penalty: f64 = lab_rows[2][4].parse().unwrap();
    assert!(penalty > 0.0, "{lab_rows:?}");

    // recorded in the manifest under lab2015 only (mean runs keep their old bytes)
    let m = manifest(&out.join("lab"));
    assert_eq!(m["config"]["reg"]["convention"], "lab2015", "{m}");
    let m = manifest(&out.join("mean_equivalent"));
    assert!(m["config"]["reg"].get("convention").is_none(), "{m}");
    // and a finished lab2015 run verifies (its rerun reads the convention back)
    let opts = regulab::verify::VerifyOptions {
        threads: 1,
        data_dir: None,
        keep: None,
    };
    let report = regulab::verify::verify_run(&out.join("lab"), &opts).unwrap();
    assert!(report.identical(), "{}", report.render());
}
