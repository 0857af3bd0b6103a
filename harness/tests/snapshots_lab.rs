//! Snapshot cases at the lab's sizes, on real data, under the job/thread settings of
//! `snapshots.rs` (1, 2 and 4 threads per run, 1 and 3 runs at once, the first setting
//! twice): every output must agree under all settings and match the committed snapshot.
//!
//! * `lab_sigmoid_*`: the lab's 784-800-10 sigmoid network at batch 10, on the MNIST
//!   test set of the repository's `data/mnist` (train on a pool of 500 of its first
//!   1,000 images, validate on the next 1,000), without regularisation and with L2.
//! * `lab_relu_*`: 784-800-800-10 ReLU at batch 100 with dropout (keep 0.8 inputs, 0.5
//!   hidden) and L2 1e-4, on Fashion-MNIST (Debian's `dataset-fashion-mnist`; pool of
//!   1,000, validation 1,000), with and without momentum.
//!
//! Two epochs each: quick, yet every kernel path of training and evaluation runs at the
//! sizes it runs at in the lab. The test asserts that it did, from the kernels' path
//! counters ([`regulab_kernels::trace`]): GEMMs cut into several blocks, the direct
//! kernels, the zero-skipping kernels (MNIST pixels, ReLU and dropout zeros), dropout
//! and update passes cut into several chunks. If a threshold moves so that a path stops
//! running at these sizes, this test fails instead of silently proving less. The
//! counters are process-global, so this binary holds this one test only.

use std::path::Path;

use regulab_kernels::simd::{self, Level};
use regulab_kernels::trace::{self, Counts};

mod common;
use common::{FASHION, mnist_dir};

/// Whether this machine runs the direct and zero-skipping GEMM kernels: an FMA sgemm
/// kernel class (they reproduce its bits) and an AVX2 or AVX-512 elementwise level.
fn direct_kernels_here() -> bool {
    let report = regulab_kernels::cpu::report();
    matches!(report.sgemm_kernel.as_str(), "avx512" | "fma-avx2") && simd::level() != Level::Scalar
}

/// The paths a case vouches for, checked against the counters of its training.
fn assert_paths_ran(case: &str, d: &Counts, dropout: bool) {
    eprintln!("{case}: kernel paths taken: {d:?}");
    assert!(
        d.gemm_multi_block > 0,
        "{case}: no GEMM was split into blocks: {d:?}"
    );
    assert!(
        d.update_multi_chunk > 0,
        "{case}: no update pass ran in chunks: {d:?}"
    );
    if dropout {
        assert!(
            d.dropout_multi_chunk > 0,
            "{case}: no dropout pass ran in chunks: {d:?}"
        );
    }
    if direct_kernels_here() {
        assert!(
            d.gemm_direct > 0,
            "{case}: the direct kernels never ran: {d:?}"
        );
        assert!(
            d.gemm_sparse > 0,
            "{case}: the zero-skipping kernels never ran: {d:?}"
        );
    } else {
        eprintln!(
            "{case}: SKIPPED the direct and zero-skipping kernel checks: this machine runs \
             sgemm class {:?} at elementwise level {:?}, where they are off",
            regulab_kernels::cpu::report().sgemm_kernel,
            simd::level()
        );
    }
}

/// Train a case's runs under every setting and snapshot them; the counter delta of
/// its training.
fn case(text: &str, prefix: &str, data_dir: Option<&Path>, runs: usize) -> Counts {
    let before = trace::counts();
    let snapshots = common::train_under_settings(text, prefix, data_dir);
    let delta = trace::counts().since(&before);
    assert_eq!(snapshots.len(), runs);
    for (name, snapshot) in snapshots {
        insta::assert_snapshot!(name.as_str(), snapshot);
    }
    delta
}

#[test]
fn lab_sizes_same_bits_any_threads_or_jobs_and_their_kernels_ran() {
    eprintln!("kernels: {}", common::check_expected_kernels());
    common::check_required_simd();

    let sigmoid = format!(
        r#"
name = "lab_sigmoid"
seed = 20261125
epochs = 2
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 2000]
validation = 1000
train_examples = 500
[model]
hidden = [800]
activation = "sigmoid"
[experiments.none]
[experiments.l2]
reg.l2 = 1e-4
"#,
        mnist_dir().display()
    );
    let d = case(&sigmoid, "lab_sigmoid", None, 2);
    assert_paths_ran("784-800-10 sigmoid, batch 10", &d, false);

    let relu = r#"
name = "lab_relu"
seed = 20261125
epochs = 2
batch_size = 100
[data]
dataset = "fashion-mnist"
train_examples = 1000
validation = 1000
test_file = "none"
[model]
hidden = [800, 800]
activation = "relu"
[optim]
lr = 0.05
[reg]
l2 = 1e-4
keep_input = 0.8
keep_hidden = 0.5
[experiments.sgd]
[experiments.momentum]
optim.momentum = 0.9
optim.lr = 0.01
"#;
    let d = case(relu, "lab_relu", Some(Path::new(FASHION)), 2);
    assert_paths_ran(
        "784-800-800-10 ReLU, batch 100, dropout 0.8/0.5, L2",
        &d,
        true,
    );
}
