//! The kernel switches change speed, not numbers, end to end: the same small study is
//! run by the `regulab` binary by default and under `REGULAB_ZERO_SKIP=off`,
//! `REGULAB_SIMD=scalar`, `REGULAB_SIMD=avx2`, `REGULAB_KERNEL_CHOICE=rotate` (every
//! product takes the next eligible kernel, call after call) and
//! `REGULAB_KERNEL_CHOICE=fixed` (the shape thresholds instead of timings), and every output (epochs.csv outside
//! the timing columns, both model files, the manifest outside timing and kernels) must
//! be the same bits as the default run's.
//!
//! The study is at sizes where the switched kernels run: the lab's 784-800-10 sigmoid
//! network at batch 10 on MNIST test images (direct kernels, zero-skipping on the
//! pixels) and 784-800-800-10 ReLU at batch 100 with dropout and L2 (zero-skipping on
//! the ReLU and dropout zeros, dropout and updates in chunks). Each run prints its
//! kernel path counters (`REGULAB_TRACE=1`), and the test asserts that each switch did
//! what it says: zero-skipping ran by default and not with `REGULAB_ZERO_SKIP=off`;
//! the manifest records the SIMD level asked for; scalar turns the direct and
//! zero-skipping kernels off, AVX2 keeps them; rotation runs all three kernels.

use std::path::{Path, PathBuf};
use std::process::Command;

use regulab::verify::compare_run_dirs;
use regulab_kernels::simd::{self, Level};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// A counter from the `regulab: kernel paths: Counts { .. }` line of `stderr`.
fn counter(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("regulab: kernel paths:"))
        .unwrap_or_else(|| panic!("no kernel paths line in:\n{stderr}"));
    let at = line.find(&format!("{name}: ")).expect("counter printed") + name.len() + 2;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

struct Switched {
    label: &'static str,
    stderr: String,
    out: PathBuf,
}

fn run(dir: &Path, cfg: &Path, label: &'static str, env: &[(&str, &str)]) -> Switched {
    let out = dir.join(label);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regulab"));
    cmd.args(["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--quiet", "--no-plot", "--jobs", "1", "--threads", "2"])
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .env_remove("REGULAB_SIMD")
        .env_remove("REGULAB_ZERO_SKIP")
        .env_remove("REGULAB_KERNEL_CHOICE")
        .env("REGULAB_TRACE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("regulab runs");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{label}: {stderr}");
    Switched { label, stderr, out }
}

fn elementwise(out: &Path, run: &str) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(run).join("manifest.json")).unwrap())
            .unwrap();
    m["kernels"]["elementwise"].as_str().unwrap().to_string()
}

#[test]
fn zero_skip_and_simd_switches_give_the_default_bits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("switches.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
name = "switches"
seed = 5
epochs = 1
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 1500]
validation = 500
train_examples = 500
[experiments.sigmoid_b10]
batch_size = 10
model.hidden = [800]
[experiments.relu_b100]
batch_size = 100
model.hidden = [800, 800]
model.activation = "relu"
optim.lr = 0.05
reg.l2 = 1e-4
reg.keep_input = 0.8
reg.keep_hidden = 0.5
"#,
            mnist_dir().display()
        ),
    )
    .unwrap();
    let best = simd::best_available();
    let fma = matches!(
        regulab_kernels::cpu::report().sgemm_kernel.as_str(),
        "avx512" | "fma-avx2"
    );
    let default = run(dir.path(), &cfg, "default", &[]);
    let mut others = vec![
        run(
            dir.path(),
            &cfg,
            "zero_skip_off",
            &[("REGULAB_ZERO_SKIP", "off")],
        ),
        run(dir.path(), &cfg, "scalar", &[("REGULAB_SIMD", "scalar")]),
        run(
            dir.path(),
            &cfg,
            "rotate",
            &[("REGULAB_KERNEL_CHOICE", "rotate")],
        ),
        run(
            dir.path(),
            &cfg,
            "fixed",
            &[("REGULAB_KERNEL_CHOICE", "fixed")],
        ),
    ];
    if best >= Level::Avx2 {
        others.push(run(dir.path(), &cfg, "avx2", &[("REGULAB_SIMD", "avx2")]));
    } else {
        eprintln!("SKIPPED the REGULAB_SIMD=avx2 run: this CPU has no AVX2 + FMA");
    }
    if let Ok(want) = std::env::var("REGULAB_REQUIRE_SIMD") {
        assert!(
            want != "avx512" || best == Level::Avx512,
            "REGULAB_REQUIRE_SIMD=avx512 but this CPU's best level is {best:?}"
        );
    }

    // each switch did what it says
    let c = |s: &Switched, n: &str| counter(&s.stderr, n);
    for s in std::iter::once(&default).chain(&others) {
        assert!(c(s, "gemm_multi_block") > 0, "{}: {}", s.label, s.stderr);
        assert!(c(s, "dropout_multi_chunk") > 0, "{}: {}", s.label, s.stderr);
        assert!(c(s, "update_multi_chunk") > 0, "{}: {}", s.label, s.stderr);
    }
    if fma && best >= Level::Avx2 {
        assert!(c(&default, "gemm_sparse") > 0 && c(&default, "gemm_direct") > 0);
        assert_eq!(c(&others[0], "gemm_sparse"), 0, "REGULAB_ZERO_SKIP=off");
        assert!(c(&others[0], "gemm_direct") > 0);
        assert_eq!(
            c(&others[1], "gemm_sparse") + c(&others[1], "gemm_direct"),
            0
        );
        let rotate = &others[2];
        for kernel in ["gemm_sparse", "gemm_direct", "gemm_sgemm"] {
            assert!(c(rotate, kernel) > 0, "rotate: {kernel}: {}", rotate.stderr);
        }
        assert!(c(&others[3], "gemm_sparse") > 0 && c(&others[3], "gemm_direct") > 0);
        if let Some(avx2) = others.get(4) {
            assert!(c(avx2, "gemm_sparse") > 0 && c(avx2, "gemm_direct") > 0);
        }
    } else {
        eprintln!(
            "SKIPPED the direct/zero-skipping counter checks: no FMA sgemm kernel or no \
             AVX2 here (they are off on this CPU)"
        );
    }
    for run in ["sigmoid_b10", "relu_b100"] {
        assert_eq!(elementwise(&others[1].out, run), "scalar");
        if let Some(avx2) = others.get(4) {
            assert_eq!(elementwise(&avx2.out, run), "avx2");
        }
        assert_eq!(elementwise(&default.out, run), best.as_str());
    }

    // and none changed a bit
    for s in &others {
        for run in ["sigmoid_b10", "relu_b100"] {
            let diffs = compare_run_dirs(&default.out.join(run), &s.out.join(run)).unwrap();
            assert!(diffs.is_empty(), "{} {run}: {diffs:?}", s.label);
        }
    }
}
