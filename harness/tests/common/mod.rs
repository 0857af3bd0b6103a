//! Shared by the test binaries: for the snapshot tests (`snapshots.rs`,
//! `snapshots_lab.rs`), train the runs of a config under several job/thread settings,
//! check that every output agrees, and build the text each snapshot records; for the
//! sweep tests (`shard.rs`, `slurm.rs`), their six-run config and output helpers. The `insta` assertions stay in the binaries
//! themselves (a snapshot's file name comes from the module that asserts it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use regulab::config;
use regulab::run::{self, Progress, RunOptions, TIMING_COLUMNS};
use regulab::verify::compare_run_dirs;

/// Debian's Fashion-MNIST (`dataset-fashion-mnist`, installed by `.ci/run`).
pub const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// Six runs: 784-64-10 on 500 Fashion-MNIST examples, 3 epochs.
pub const SIX: &str = r#"
name = "six"
seed = 5
epochs = 3
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 500
validation = 1000
eval_batch = 500
[model]
hidden = [64]
[experiments.base]
[experiments.l2]
reg.l2 = [1e-3, 1e-4, 1e-5]
[experiments.dropout]
reg.keep_input = 0.8
reg.keep_hidden = [0.5, 0.8]
"#;

/// Write `text` as `dir/six.toml` (the sweep tests' config file); its path.
pub fn write_six(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("six.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A command's exit status, stdout and stderr, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// (jobs, threads per run) settings; the first is repeated at the end.
pub const SETTINGS: &[(usize, usize)] = &[(1, 1), (1, 2), (1, 4), (3, 1), (3, 2), (1, 1)];

/// The MNIST test set and training labels shipped in the repository's `data/mnist`.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// CSV text without the timing columns.
pub fn without_timing(path: &Path) -> String {
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

/// [`run::digest`] of a model file.
pub fn model_digest(path: &Path) -> String {
    run::digest(&regulab_model::io::load(path).unwrap())
}

/// Train every run of `config_text` under every setting of [`SETTINGS`], check that all
/// outputs agree, and return each run's name and snapshot text (from the first setting).
pub fn train_under_settings(
    config_text: &str,
    prefix: &str,
    data_dir: Option<&Path>,
) -> Vec<(String, String)> {
    let plan = config::parse(config_text, "snapshots.toml", "snapshots", &[]).unwrap();
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
    let mut snapshots = Vec::new();
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
        assert_eq!(
            csv.lines().count(),
            1 + 1 + spec.config.epochs,
            "header + epochs 0..={}",
            spec.config.epochs
        );
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
        snapshots.push((format!("{prefix}_{}", spec.name), snapshot));
    }
    snapshots
}

/// The CI check of the FMA-AVX2 build: when `REGULAB_EXPECT_SGEMM` is set (e.g.
/// `fma-avx2`), this process must really run that sgemm kernel class, and when
/// `REGULAB_EXPECT_SIMD` is set, that elementwise SIMD level; otherwise the snapshots
/// would prove nothing about them. Returns what was checked, for the log.
pub fn check_expected_kernels() -> String {
    let report = regulab_kernels::cpu::report();
    let mut checked = format!(
        "sgemm kernel class {}, elementwise level {}",
        report.sgemm_kernel, report.elementwise
    );
    if let Some(want) = std::env::var("REGULAB_EXPECT_SGEMM")
        .ok()
        .filter(|v| !v.is_empty())
    {
        assert_eq!(
            report.sgemm_kernel, want,
            "REGULAB_EXPECT_SGEMM={want}, but this build runs {:?}",
            report.sgemm_kernel
        );
        checked.push_str(" (= REGULAB_EXPECT_SGEMM)");
    }
    if let Some(want) = std::env::var("REGULAB_EXPECT_SIMD")
        .ok()
        .filter(|v| !v.is_empty())
    {
        assert_eq!(
            report.elementwise, want,
            "REGULAB_EXPECT_SIMD={want}, but this process runs {:?}",
            report.elementwise
        );
        checked.push_str(" (= REGULAB_EXPECT_SIMD)");
    }
    checked
}

/// `REGULAB_REQUIRE_SIMD=avx512` (or `avx2`), set in CI: fail unless this process runs
/// at least that elementwise level, so that a machine (or a setting) without it cannot
/// pass by skipping the checks that need it.
pub fn check_required_simd() {
    use regulab_kernels::simd::{self, Level};
    let Some(want) = std::env::var("REGULAB_REQUIRE_SIMD")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return;
    };
    let want = match want.as_str() {
        "scalar" => Level::Scalar,
        "avx2" => Level::Avx2,
        "avx512" => Level::Avx512,
        other => panic!("REGULAB_REQUIRE_SIMD={other}: expected scalar, avx2 or avx512"),
    };
    assert!(
        simd::level() >= want,
        "REGULAB_REQUIRE_SIMD={want:?}, but this process runs the elementwise level {:?}",
        simd::level()
    );
}

/// The runs of a sweep directory, in plan order (its plan.json).
pub fn run_names(out: &Path) -> Vec<String> {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// The bytes of `p` (a panic names the file).
pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// summary.csv without its `seconds` column.
pub fn summary_without_timing(path: &Path) -> String {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| &header[i] != regulab::run::SUMMARY_TIMING_COLUMN)
        .collect();
    assert!(keep.len() < header.len(), "no timing column in {header:?}");
    let mut out = String::new();
    for rec in std::iter::once(Ok(header.clone())).chain(r.records()) {
        let rec = rec.unwrap();
        out.push_str(&keep.iter().map(|&i| &rec[i]).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Every run of `a` has the bits of the same run of `b`: `epochs.csv` without its
/// timing columns, the initial and final models byte for byte.
pub fn assert_same_runs(a: &Path, b: &Path) {
    let names = run_names(a);
    assert_eq!(names, run_names(b));
    for name in &names {
        let (ra, rb) = (a.join(name), b.join(name));
        assert_eq!(
            without_timing(&ra.join("epochs.csv")),
            without_timing(&rb.join("epochs.csv")),
            "{name}: epochs.csv"
        );
        for f in ["init.safetensors", "model.safetensors"] {
            assert!(read(&ra.join(f)) == read(&rb.join(f)), "{name}/{f} differs");
        }
    }
}

/// `regulab run CONFIG --out OUT --data-dir FASHION --quiet` and `extra`.
pub fn run_args<'a>(config: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "run",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--data-dir",
        FASHION,
        "--quiet",
    ];
    a.extend_from_slice(extra);
    a
}
