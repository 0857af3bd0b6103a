//! Snapshot tests on real data: for each regulariser (none, L1, L2, L1+L2, dropout on
//! inputs and hidden layer) a short run on Fashion-MNIST (Debian's
//! `dataset-fashion-mnist`) and one on the real MNIST test set (the repository's
//! `data/mnist`: train on its first 1,000 images, validate on the next 1,000).
//!
//! Each case is trained under several settings — 1, 2 and 4 threads per run, 1 and 3
//! runs at once, and the first setting twice — and every output (epochs.csv outside
//! the timing columns, init and final model bytes, manifest outside timings) must be
//! the same under all of them; then ONE snapshot per case records the epochs CSV at
//! full precision and the digests of the initial and final weights. With `CI=true` a
//! missing or changed snapshot fails (`INSTA_UPDATE=always cargo test -p regulab --test
//! snapshots` rewrites them after an intended change).

use std::path::{Path, PathBuf};

use regulab::config;
use regulab::run::{self, Progress, RunOptions, TIMING_COLUMNS};
use regulab::verify::compare_run_dirs;

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// (jobs, threads per run) settings; the first is repeated at the end.
const SETTINGS: &[(usize, usize)] = &[(1, 1), (1, 2), (1, 4), (3, 1), (3, 2), (1, 1)];

/// The regulariser cases, as experiment tables.
const CASES: &str = r#"
[experiments.none]
[experiments.l1]
reg.l1 = 1e-3
[experiments.l2]
reg.l2 = 1e-3
[experiments.l1_l2]
reg.l1 = 1e-4
reg.l2 = 1e-3
[experiments.dropout]
reg.keep_input = 0.8
reg.keep_hidden = 0.5
"#;

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// CSV text without the timing columns.
fn without_timing(path: &Path) -> String {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !TIMING_COLUMNS.contains(&&header[i]))
        .collect();
    let line = |rec: &csv::StringRecord| {
        keep.iter()
            .map(|&i| rec[i].to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = line(&header);
    for rec in r.records() {
        out.push('\n');
        out.push_str(&line(&rec.unwrap()));
    }
    out
}

fn model_digest(path: &Path) -> String {
    run::digest(&regulab_model::io::load(path).unwrap())
}

/// Train every case of `config_text` under every setting, check all outputs agree,
/// then snapshot each case as `<prefix>_<case>`.
fn check_cases(config_text: &str, prefix: &str, data_dir: Option<&Path>) {
    let plan = config::parse(config_text, "snapshots.toml", "snapshots", &[]).unwrap();
    assert_eq!(plan.runs.len(), 5);
    let data = run::load_datasets(&plan, data_dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for (k, &(jobs, threads)) in SETTINGS.iter().enumerate() {
        let out = tmp.path().join(format!("s{k}_jobs{jobs}_threads{threads}"));
        let opts = RunOptions {
            out: out.clone(),
            threads,
            jobs,
            progress: Progress::Quiet,
            resume: false,
            halt_after_epoch: None,
        };
        let outcomes = run::execute(&plan, &data, &opts).unwrap();
        assert!(outcomes.iter().all(|o| o.status == run::Status::Completed));
        outs.push(out);
    }
    for spec in &plan.runs {
        let first = outs[0].join(&spec.name);
        for other in &outs[1..] {
            let diffs = compare_run_dirs(&first, &other.join(&spec.name)).unwrap();
            assert!(
                diffs.is_empty(),
                "{prefix} {}: {} differs from {}: {diffs:?}",
                spec.name,
                other.display(),
                outs[0].display()
            );
        }
        let csv = without_timing(&first.join("epochs.csv"));
        assert_eq!(csv.lines().count(), 1 + 4, "header + epochs 0..=3");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(first.join("manifest.json")).unwrap()).unwrap();
        let final_digest = model_digest(&first.join("model.safetensors"));
        assert_eq!(
            manifest["final_digest"].as_str(),
            Some(final_digest.as_str())
        );
        let snapshot = format!(
            "run: {}\ndataset: {} ({} files, all verified: {})\ninit_weights_sha256: {}\n\
             final_weights_sha256: {final_digest}\ntest_accuracy: {}\ntest_cost: {}\n\
             epochs.csv without {}:\n{csv}\n",
            spec.name,
            manifest["dataset"]["kind"].as_str().unwrap(),
            manifest["dataset"]["files"].as_array().unwrap().len(),
            manifest["dataset"]["files"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["verified"] == true),
            model_digest(&first.join("init.safetensors")),
            manifest["test_accuracy"],
            manifest["test_cost"],
            TIMING_COLUMNS.join(", "),
        );
        insta::assert_snapshot!(format!("{prefix}_{}", spec.name).as_str(), snapshot);
    }
}

#[test]
fn fashion_mnist_regularisers_same_bits_any_threads_or_jobs() {
    let text = format!(
        r#"
name = "snap_fashion"
seed = 20261125
epochs = 3
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 500
validation = 1000
[model]
hidden = [32]
{CASES}"#
    );
    check_cases(&text, "fashion", Some(Path::new(FASHION)));
}

#[test]
fn mnist_test_set_regularisers_same_bits_any_threads_or_jobs() {
    let text = format!(
        r#"
name = "snap_mnist"
seed = 20261125
epochs = 3
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 2000]
validation = 1000
train_examples = 1000
[model]
hidden = [32]
{CASES}"#,
        mnist_dir().display()
    );
    check_cases(&text, "mnist", None);
}
