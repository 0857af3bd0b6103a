//! Disk full, for real: `regulab` writes into a small tmpfs mounted in a private mount
//! namespace (`unshare -m`, as root: CI runs as root), which is filled up while it
//! works. Whatever write hits ENOSPC (the epoch CSV, the checkpoint, a figure), the
//! command fails with exit 2 naming the file, nothing is left half-written (no
//! temporary file, every file there is a complete earlier version), and once space is
//! freed, `--resume` (or `regulab plot` again) gives exactly the files of a run that
//! never failed.
//!
//! Without root these tests cannot mount: they say so and fail under `CI=true`, and
//! elsewhere print that they did not run (no silent skip).

use std::path::{Path, PathBuf};
use std::process::Command;

use regulab::checkpoint::{self, Checkpoint};
use regulab::run;
use regulab::verify::compare_run_dirs;

/// One run, large enough (a few tens of ms per epoch) that the test stops the
/// process (SIGSTOP) long before its next write once it sees a checkpoint.
fn config_text() -> String {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .unwrap();
    format!(
        r#"
name = "full"
seed = 8
epochs = 4
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 3500]
validation = 500
train_examples = 3000
[model]
hidden = [128]
[experiments.r]
optim.momentum = 0.5
reg.keep_hidden = 0.5
"#,
        mnist.display()
    )
}

/// Whether this process may mount a tmpfs in a private namespace; otherwise, under
/// `CI=true` a failure, elsewhere a printed notice that the test did not run.
fn can_mount(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && umount \"$d\"; r=$?; rmdir \"$d\"; exit $r")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "{test}: DID NOT RUN: mounting a tmpfs in a private mount namespace (unshare -m) \
             needs root; run the tests as root (as CI does) to check disk-full behaviour"
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
    }
    ok
}

/// Run `script` (bash) in a private mount namespace with a `size_kb` tmpfs mounted
/// at `$T`; `$W` is the test's directory (outside the tmpfs), `$BIN` regulab.
fn in_small_tmpfs(work: &Path, size_kb: u32, script: &str) {
    let mnt = work.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let full =
        format!("set -u\nmount -t tmpfs -o size={size_kb}k tmpfs \"$T\" || exit 90\n{script}");
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", &full])
        .env("T", &mnt)
        .env("W", work)
        .env("BIN", env!("CARGO_BIN_EXE_regulab"))
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "script failed ({:?}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The shell lines that fill the tmpfs `$T`, leaving `leave_kb` free.
fn fill(leave_kb: u32) -> String {
    format!(
        "dd if=/dev/zero of=\"$T/keep\" bs=1k count={leave_kb} 2>/dev/null\n\
         dd if=/dev/zero of=\"$T/fill\" bs=4k 2>/dev/null\n\
         rm -f \"$T/keep\"\n"
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir` whose name marks a temporary file.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(temp_files(&p));
        } else if p.file_name().unwrap().to_string_lossy().contains(".tmp") {
            v.push(p);
        }
    }
    v
}

fn reference(work: &Path, cfg: &Path) -> PathBuf {
    let out = work.join("reference");
    let o = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .arg("run")
        .arg(cfg)
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--no-plot", "--jobs", "1", "--threads", "1"])
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Train in the tmpfs; once the checkpoint of epoch 1 exists, stop the process, fill
/// the disk leaving `leave_kb`, let it go on (its next writes fail), keep a copy of
/// what it left, free the space and resume.
fn fail_then_resume(test: &str, leave_kb: u32) -> Option<(tempfile::TempDir, PathBuf)> {
    if !can_mount(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("full.toml");
    std::fs::write(&cfg, config_text()).unwrap();
    let reference = reference(tmp.path(), &cfg);
    let script = format!(
        r#"
CFG="$W/full.toml"
ARGS="--quiet --no-plot --jobs 1 --threads 1"
"$BIN" run "$CFG" --out "$T/out" $ARGS 2>"$W/err1" &
pid=$!
n=0
while [ ! -f "$T/out/r/checkpoint.safetensors" ]; do
  kill -0 $pid 2>/dev/null || {{ echo "ended before its first checkpoint" >&2; exit 91; }}
  n=$((n+1)); [ $n -lt 60000 ] || exit 92
  sleep 0.001
done
kill -STOP $pid
{fill}
kill -CONT $pid
wait $pid; echo $? >"$W/rc1"
cp -a "$T/out" "$W/after"
rm -f "$T/fill"
"$BIN" run "$CFG" --out "$T/out" $ARGS --resume 2>"$W/err2"; echo $? >"$W/rc2"
cp -a "$T/out" "$W/final"
"#,
        fill = fill(leave_kb)
    );
    in_small_tmpfs(tmp.path(), 6 * 1024, &script);
    Some((tmp, reference))
}

/// The checks common to both cases: exit 2 naming `file` and ENOSPC, the checkpoint
/// of epoch 1 intact, CSV rows `0..=csv_epochs`, no temporary file; the resumed run is
/// identical to the reference.
fn check(work: &Path, reference: &Path, file: &str, csv_epochs: u32) {
    let err1 = read(&work.join("err1"));
    assert_eq!(read(&work.join("rc1")).trim(), "2", "{err1}");
    assert!(
        err1.contains(file) && err1.contains("No space left on device"),
        "names the file that could not be written: {err1}"
    );
    let after = work.join("after");
    assert!(temp_files(&after).is_empty(), "{:?}", temp_files(&after));
    let r = after.join("r");
    let rows = run::read_epochs(&r.join("epochs.csv")).unwrap();
    let epochs: Vec<u32> = rows.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, (0..=csv_epochs).collect::<Vec<_>>());
    let ck = Checkpoint::read(&r.join(checkpoint::FILE_NAME)).unwrap();
    assert_eq!(ck.state.epoch, 1);
    assert_eq!(
        std::fs::read(r.join("init.safetensors")).unwrap(),
        std::fs::read(reference.join("r/init.safetensors")).unwrap()
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "running");
    assert!(!r.join("model.safetensors").exists());

    let err2 = read(&work.join("err2"));
    assert_eq!(read(&work.join("rc2")).trim(), "0", "{err2}");
    let final_dir = work.join("final");
    let diffs = compare_run_dirs(&reference.join("r"), &final_dir.join("r")).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    assert!(temp_files(&final_dir).is_empty());
    let strip = |p: &Path| -> Vec<String> {
        read(&p.join("summary.csv"))
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip(reference), strip(&final_dir));
}

#[test]
fn disk_full_while_writing_the_epoch_csv() {
    let Some((work, reference)) = fail_then_resume("disk_full_while_writing_the_epoch_csv", 0)
    else {
        return;
    };
    // the CSV of epoch 2 could not be written: the one of epoch 1 is there, whole
    check(work.path(), &reference, "epochs.csv", 1);
}

#[test]
fn disk_full_while_writing_the_checkpoint() {
    // room for the CSV (one page), not for the checkpoint (hundreds of KB)
    let Some((work, reference)) = fail_then_resume("disk_full_while_writing_the_checkpoint", 8)
    else {
        return;
    };
    // the CSV of epoch 2 was written, its checkpoint not: the one of epoch 1 is there
    check(work.path(), &reference, "checkpoint.safetensors", 2);
}

#[test]
fn disk_full_while_writing_the_figures() {
    let test = "disk_full_while_writing_the_figures";
    if !can_mount(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let cfg = work.join("full.toml");
    std::fs::write(
        &cfg,
        config_text().replace("epochs = 4", "epochs = 2").replace(
            "[experiments.r]",
            "[experiments.l2]\nreg.l2 = 1e-3\n[experiments.r]",
        ),
    )
    .unwrap();
    // room for some figures, not all of them
    let script = format!(
        r#"
"$BIN" run "$W/full.toml" --out "$T/out" --quiet --no-plot || exit 93
mkdir -p "$W/ref" && cp -a "$T/out" "$W/ref/out"
{fill}
"$BIN" plot "$T/out" >/dev/null 2>"$W/err1"; echo $? >"$W/rc1"
cp -a "$T/out" "$W/after"
rm -f "$T/fill"
"$BIN" plot "$T/out" >/dev/null 2>"$W/err2"; echo $? >"$W/rc2"
mkdir -p "$W/final" && cp -a "$T/out" "$W/final/out"
"#,
        fill = fill(48)
    );
    in_small_tmpfs(work, 6 * 1024, &script);
    let ref_out = work.join("ref/out");
    let o = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .arg("plot")
        .arg(&ref_out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let err1 = read(&work.join("err1"));
    assert_eq!(read(&work.join("rc1")).trim(), "2", "{err1}");
    assert!(
        err1.contains("No space left on device") && err1.contains("plots/"),
        "{err1}"
    );
    let after = work.join("after");
    assert!(temp_files(&after).is_empty(), "{:?}", temp_files(&after));
    // every figure written before the disk filled up is complete
    let written: Vec<_> = std::fs::read_dir(after.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !written.is_empty(),
        "some figures fit before the disk was full"
    );
    for f in &written {
        assert_eq!(
            std::fs::read(after.join("plots").join(f)).unwrap(),
            std::fs::read(ref_out.join("plots").join(f)).unwrap(),
            "{f:?}"
        );
    }
    assert!(
        !after.join("report.html").exists(),
        "the report is written last"
    );
    // with space again, the same figures and report as where the disk never filled
    assert_eq!(
        read(&work.join("rc2")).trim(),
        "0",
        "{}",
        read(&work.join("err2"))
    );
    let final_out = work.join("final/out");
    let mut names: Vec<_> = std::fs::read_dir(ref_out.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() > written.len(), "{names:?} vs {written:?}");
    for f in &names {
        assert_eq!(
            std::fs::read(final_out.join("plots").join(f)).unwrap(),
            std::fs::read(ref_out.join("plots").join(f)).unwrap(),
            "{f:?}"
        );
    }
    assert_eq!(
        std::fs::read(final_out.join("report.html")).unwrap(),
        std::fs::read(ref_out.join("report.html")).unwrap()
    );
}
