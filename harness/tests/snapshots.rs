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

use std::path::Path;

mod common;
use common::{FASHION, mnist_dir};

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

/// Train every case of `config_text` under every setting, check all outputs agree,
/// then snapshot each case as `<prefix>_<case>`.
fn check_cases(config_text: &str, prefix: &str, data_dir: Option<&Path>) {
    eprintln!("kernels: {}", common::check_expected_kernels());
    common::check_required_simd();
    let snapshots = common::train_under_settings(config_text, prefix, data_dir);
    assert_eq!(snapshots.len(), 5);
    for (name, snapshot) in snapshots {
        insta::assert_snapshot!(name.as_str(), snapshot);
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
