//! Command-line tests of `regulab verify`: reruns reproduce every output bit for bit;
//! a changed output is reported with file, row, column and both values (exit 1); other
//! data is caught by checksum before training (exit 2); a different kernel class is
//! named as the likely cause.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn regulab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .expect("regulab runs")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A sweep trained once for all tests: an L1 run on the MNIST test set and a dropout
/// run on Fashion-MNIST. Tests copy run directories before changing them.
fn sweep() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let mnist = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/mnist")
            .canonicalize()
            .unwrap();
        let cfg = tmp.path().join("v.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"
name = "v"
seed = 3
epochs = 2
[model]
hidden = [24]
[experiments.mnist_l1]
reg.l1 = 1e-4
data.dataset = "{}"
data.train_file = "t10k"
data.test_file = "none"
data.range = [0, 1500]
data.validation = 500
data.train_examples = 1000
[experiments.fashion_dropout]
reg.keep_input = 0.8
reg.keep_hidden = 0.5
data.dataset = "fashion-mnist"
data.train_examples = 300
data.validation = 500
"#,
                mnist.display()
            ),
        )
        .unwrap();
        let out = tmp.path().join("sweep");
        let o = regulab(&[
            "run",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--jobs",
            "2",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        (tmp, out)
    })
    .1
}

/// A private copy of one run directory of the sweep.
fn copy_run(run: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(run);
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(sweep().join(run)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    (tmp, dst)
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", dir.to_str().unwrap()];
    args.extend(extra);
    regulab(&args)
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut Value)) {
    let p = dir.join("manifest.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Replace field `col` of CSV line `line` (0 = header).
fn edit_csv(dir: &Path, line: usize, col: usize, value: &str) -> String {
    let p = dir.join("epochs.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<String> = lines[line].split(',').map(String::from).collect();
    let old = std::mem::replace(&mut fields[col], value.to_string());
    lines[line] = fields.join(",");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    old
}

#[test]
fn verify_reproduces_runs_and_sweeps_with_any_thread_count() {
    for threads in ["1", "3"] {
        let o = verify(&sweep().join("mnist_l1"), &["--threads", threads]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("mnist_l1: identical"), "{out}");
    }
    let o = verify(sweep(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("fashion_dropout: identical"), "{out}");
    assert!(out.contains("2 of 2 runs identical"), "{out}");
}

#[test]
fn verify_reports_the_first_difference_of_each_file() {
    let (_tmp, dir) = copy_run("mnist_l1");
    // timing columns may differ
    edit_csv(&dir, 2, 10, "123.5");
    edit_csv(&dir, 2, 11, "7");
    let o = verify(&dir, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "timing is not compared: {}",
        text(&o)
    );

    // a result column may not: line 3 = row 3 = epoch 2, column 8 = valid_nll
    let old = edit_csv(&dir, 3, 8, "0.25");
    // one weight of the final model: the first f32 of the tensor data
    let model = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header] ^= 0x01;
    std::fs::write(&model, &bytes).unwrap();
    edit_manifest(&dir, |m| m["final_digest"] = "0000".into());

    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let first = out.lines().next().unwrap();
    assert!(first.contains("DIFFERENT"), "{out}");
    assert!(
        first.contains(&format!(
            "epochs.csv: row 3 (epoch 2), column valid_nll: original 0.25, rerun {old}"
        )),
        "{out}"
    );
    assert!(
        out.contains("model.safetensors: tensor layers.0.bias[0]"),
        "{out}"
    );
    assert!(
        out.contains("manifest.json: field final_digest: original \"0000\""),
        "{out}"
    );
    assert!(!out.contains("init.safetensors"), "{out}");
}

#[test]
fn verify_names_a_different_kernel_class_as_the_likely_cause() {
    let (_tmp, dir) = copy_run("mnist_l1");
    edit_manifest(&dir, |m| {
        m["kernels"]["sgemm_kernel"] = "imaginary-kernel".into();
    });
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("note: matrixmultiply's sgemm kernel class differs"),
        "{out}"
    );
    edit_csv(&dir, 3, 6, "0.5");
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("likely cause: matrixmultiply's sgemm kernel class differs: the run used \"imaginary-kernel\""),
        "{out}"
    );
}

#[test]
fn verify_checks_the_data_by_checksum_before_training() {
    let (_tmp, dir) = copy_run("fashion_dropout");
    edit_manifest(&dir, |m| {
        m["dataset"]["files"][2]["raw_sha256"] = "ab".repeat(32).into();
    });
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("not the same data"),
        "{err}"
    );

    // the data elsewhere: --data-dir
    let (_tmp2, dir) = copy_run("mnist_l1");
    edit_manifest(&dir, |m| m["dataset"]["dir"] = "/nonexistent/mnist".into());
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--data-dir"));
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let o = verify(&dir, &["--data-dir", mnist.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn verify_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let o = verify(tmp.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither a run directory"));
    let (_t, dir) = copy_run("mnist_l1");
    edit_manifest(&dir, |m| m["status"] = "running".into());
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
}
