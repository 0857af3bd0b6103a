//! `regulab verify RUN_DIR`: rerun a finished run from its manifest and compare every
//! output bit for bit, except timing.
//!
//! Steps, for a run directory (or for every run directory in a sweep directory):
//!
//! 1. read `manifest.json`: the resolved config, run name, dataset and its files;
//! 2. load the data it names (from `--data-dir` or the manifest's directory) and check
//!    every file's SHA-256 against the manifest *before* training: other data is a
//!    data error, not a difference;
//! 3. train the run afresh into a temporary directory, on this machine's kernels;
//! 4. compare, in order:
//!    * `epochs.csv`: same header, same rows, every column but the timing ones
//!      ([`TIMING_COLUMNS`]) equal as text (floats are printed in shortest round-trip
//!      form, so equal text is equal bits);
//!    * `init.safetensors` and `model.safetensors`: equal bytes (a difference is
//!      located as tensor and element);
//!    * `manifest.json`: every field but timings, `threads`, `jobs`,
//!      `resumed_from_epoch`, `kernels`, `regulab_version` and file paths
//!      ([`MANIFEST_IGNORED`]).
//!
//! The kernels and version of this machine are compared with the manifest's. What can
//! change bits is reported, as the likely cause when the outputs differ: another sgemm
//! reproducibility class (`x86-fma`, i.e. AVX-512 or FMA-AVX2, against a non-FMA
//! kernel), another matrixmultiply or regulab version. What regulab guarantees not to
//! change bits (AVX-512 against FMA-AVX2, the elementwise SIMD level, other CPU
//! features) is only noted, never named as a cause.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::config::{self, RunSpec};
use crate::data::{Dataset, DatasetName};
use crate::run::{self, Progress, RunOptions, TIMING_COLUMNS};

/// Top-level manifest fields not compared (they legitimately differ between reruns).
pub const MANIFEST_IGNORED: &[&str] = &[
    "started_unix",
    "started_utc",
    "finished_unix",
    "finished_utc",
    "seconds",
    "threads",
    "jobs",
    "resumed_from_epoch",
    "kernels",
    "regulab_version",
];

/// Options of `regulab verify`.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Rayon threads of the rerun (any number gives the same bits).
    pub threads: usize,
    /// Where the data files are, when not where the manifest says.
    pub data_dir: Option<PathBuf>,
    /// Keep the rerun's files here (default: a temporary directory, deleted).
    pub keep: Option<PathBuf>,
}

/// One difference between an original output and its rerun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The file, e.g. `epochs.csv`.
    pub file: String,
    /// Where in it, e.g. `row 3 (epoch 2), column valid_cost`.
    pub location: String,
    /// The original value.
    pub original: String,
    /// The rerun's value.
    pub rerun: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: original {}, rerun {}",
            self.file, self.location, self.original, self.rerun
        )
    }
}

/// The verdict on one run directory.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run directory verified.
    pub run_dir: PathBuf,
    /// Ways this machine differs from the one that trained the run that can change bits.
    pub environment: Vec<String>,
    /// Ways it differs that regulab guarantees do not change bits (noted only).
    pub environment_info: Vec<String>,
    /// The first difference of each file that differs (empty: identical).
    pub differences: Vec<Difference>,
}

impl RunReport {
    /// Whether every output was reproduced bit for bit.
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }

    /// What `regulab verify` prints for this run.
    pub fn render(&self) -> String {
        let dir = self.run_dir.display();
        let mut s = String::new();
        if self.identical() {
            s.push_str(&format!("{dir}: identical\n"));
            for e in &self.environment {
                s.push_str(&format!("  note: {e} (yet the results are the same)\n"));
            }
            for e in &self.environment_info {
                s.push_str(&format!("  note: {e}\n"));
            }
            return s;
        }
        s.push_str(&format!(
            "{dir}: DIFFERENT; first difference: {}\n",
            self.differences[0]
        ));
        for d in &self.differences[1..] {
            s.push_str(&format!("  also: {d}\n"));
        }
        if self.environment.is_empty() {
            s.push_str(
                "  this machine's kernels and versions give the manifest's bits: the run's \
                 outputs were changed, or a change to regulab's code altered its numbers\n",
            );
        } else {
            for e in &self.environment {
                s.push_str(&format!("  likely cause: {e}\n"));
            }
        }
        for e in &self.environment_info {
            s.push_str(&format!("  note: {e} (not a cause)\n"));
        }
        s
    }
}

/// How this machine's kernels and versions differ from those in a manifest, in ways
/// that can change bits: the sgemm reproducibility class
/// ([`regulab_kernels::cpu::bits_class`] of the recorded `sgemm_kernel`), the
/// matrixmultiply or regulab version.
pub fn environment_notes(manifest: &Value) -> Vec<String> {
    environment_differences(manifest).0
}

/// Both kinds of differences: (can change bits, guaranteed not to: the sgemm kernel
/// within the `x86-fma` class, the elementwise SIMD level, the CPU features).
fn environment_differences(manifest: &Value) -> (Vec<String>, Vec<String>) {
    use regulab_kernels::cpu::bits_class;
    let here = regulab_kernels::cpu::report();
    let k = &manifest["kernels"];
    let (mut notes, mut info) = (Vec::new(), Vec::new());
    let differs = |what: &str, recorded: Option<&str>, now: &str| {
        (recorded != Some(now)).then(|| {
            format!(
                "{what} differs: the run used {}, this machine {now:?}",
                recorded.map_or("(not recorded)".to_string(), |r| format!("{r:?}"))
            )
        })
    };
    let sgemm = k["sgemm_kernel"].as_str();
    if let Some(d) = differs(
        "matrixmultiply's sgemm kernel class",
        sgemm,
        &here.sgemm_kernel,
    ) {
        if sgemm.map(bits_class) == Some(bits_class(&here.sgemm_kernel)) {
            info.push(format!(
                "{d} (both in the {} class, which gives the same bits)",
                bits_class(&here.sgemm_kernel)
            ));
        } else {
            notes.push(d);
        }
    }
    info.extend(differs(
        "the elementwise SIMD level",
        k["elementwise"].as_str(),
        &here.elementwise,
    ));
    notes.extend(differs(
        "the matrixmultiply version",
        k["matrixmultiply_version"].as_str(),
        &here.matrixmultiply_version,
    ));
    notes.extend(differs(
        "the regulab version",
        manifest["regulab_version"].as_str(),
        env!("CARGO_PKG_VERSION"),
    ));
    let features = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (then, now) = (features(&k["cpu_features"]), here.cpu_features.clone());
    if then != now {
        info.push(format!(
            "the CPU features differ: the run's machine had [{}], this one has [{}]",
            then.join(" "),
            now.join(" ")
        ));
    }
    (notes, info)
}

/// The run directories under `path`: `path` itself if it holds a `manifest.json`, else
/// its subdirectories that do (a sweep directory), sorted by name.
pub fn run_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    if path.join("manifest.json").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).with_context(|| format!("reading directory {}", path.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "{}: neither a run directory (with manifest.json) nor a sweep directory holding run directories",
            path.display()
        );
    }
    Ok(dirs)
}

/// Loaded datasets, by data key and directory, shared by the runs of a sweep.
type DataCache = BTreeMap<(String, PathBuf), Arc<Dataset>>;

/// Verify `path`: one run directory, or every run of a sweep directory.
pub fn verify_path(path: &Path, opts: &VerifyOptions) -> Result<Vec<RunReport>> {
    let mut cache = DataCache::new();
    run_dirs(path)?
        .iter()
        .map(|dir| verify_run_cached(dir, opts, &mut cache))
        .collect()
}

/// Verify one run directory.
pub fn verify_run(run_dir: &Path, opts: &VerifyOptions) -> Result<RunReport> {
    verify_run_cached(run_dir, opts, &mut DataCache::new())
}

fn verify_run_cached(
    run_dir: &Path,
    opts: &VerifyOptions,
    cache: &mut DataCache,
) -> Result<RunReport> {
    let manifest_path = run_dir.join("manifest.json");
    let manifest = run::read_manifest(run_dir)?.ok_or_else(|| {
        anyhow!(
            "{}: no manifest.json: not a run directory of `regulab run`",
            run_dir.display()
        )
    })?;
    match manifest["status"].as_str() {
        Some("completed" | "diverged") => {}
        other => bail!(
            "{}: the run has not finished (status {}); finish it first with `regulab run CONFIG --resume`",
            manifest_path.display(),
            other.unwrap_or("missing")
        ),
    }
    let config = run::manifest_config(&manifest, &manifest_path)?;
    config::validate(&config).map_err(|(field, msg)| {
        anyhow!("{}: field `config.{field}`: {msg}", manifest_path.display())
    })?;
    let text = |key: &str| -> Result<String> {
        manifest[key]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("{}: field `{key}` missing", manifest_path.display()))
    };
    let spec = RunSpec {
        experiment: text("experiment")?,
        name: text("run")?,
        grid: manifest["grid"]
            .as_object()
            .map(|g| {
                g.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        config,
    };
    let dataset = load_checked_data(&spec, &manifest, &manifest_path, opts, cache)?;

    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let out = opts
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let rerun_dir = out.join(&spec.name);
    let run_opts = RunOptions {
        out: out.clone(),
        threads: opts.threads.max(1),
        jobs: 1,
        progress: Progress::Quiet,
        resume: false,
        halt_after_epoch: None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(run_opts.threads)
        .build()?;
    pool.install(|| run::train_fresh(&spec, &dataset, &rerun_dir, &run_opts))
        .with_context(|| format!("rerunning {}", run_dir.display()))?;
    let differences = compare_run_dirs(run_dir, &rerun_dir)?;
    Ok(RunReport {
        run_dir: run_dir.to_path_buf(),
        environment: environment_differences(&manifest).0,
        environment_info: environment_differences(&manifest).1,
        differences,
    })
}

/// Load the data a manifest names and check every file against its recorded SHA-256.
fn load_checked_data(
    spec: &RunSpec,
    manifest: &Value,
    manifest_path: &Path,
    opts: &VerifyOptions,
    cache: &mut DataCache,
) -> Result<Arc<Dataset>> {
    let data = &spec.config.data;
    let dir = match (&opts.data_dir, manifest["dataset"]["dir"].as_str()) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => bail!(
            "{}: no `dataset.dir` recorded; pass --data-dir",
            manifest_path.display()
        ),
    };
    let key = (run::data_key(data), dir.clone());
    let dataset = match cache.get(&key) {
        Some(d) => d.clone(),
        None => {
            let kind = match data.dataset.parse::<DatasetName>() {
                Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => known,
                _ => DatasetName::Custom,
            };
            let explicit = opts.data_dir.is_some();
            let loaded = run::load_dataset_from(data, kind, &dir).with_context(|| {
                format!(
                    "loading the data of {} from {}{}",
                    manifest_path.display(),
                    dir.display(),
                    if explicit {
                        ""
                    } else {
                        " (the directory in the manifest; pass --data-dir DIR if the files are elsewhere)"
                    }
                )
            })?;
            let d = Arc::new(loaded);
            cache.insert(key, d.clone());
            d
        }
    };
    let recorded = manifest["dataset"]["files"]
        .as_array()
        .ok_or_else(|| anyhow!("{}: field `dataset.files` missing", manifest_path.display()))?;
    if recorded.len() != dataset.files.len() {
        bail!(
            "{}: records {} data files, the config reads {}",
            manifest_path.display(),
            recorded.len(),
            dataset.files.len()
        );
    }
    for (r, f) in recorded.iter().zip(&dataset.files) {
        let expected = r["raw_sha256"].as_str().unwrap_or("(none)");
        if expected != f.raw_sha256 {
            bail!(
                "data file {}: its SHA-256 is {}, but the run was trained on {} with SHA-256 {expected}: \
                 not the same data (pass --data-dir DIR to point at the original files)",
                f.path.display(),
                f.raw_sha256,
                r["name"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(dataset)
}

/// Compare the outputs of two run directories (see the module docs); the first
/// difference of each differing file, in the order epochs.csv, init.safetensors,
/// model.safetensors, manifest.json.
pub fn compare_run_dirs(original: &Path, rerun: &Path) -> Result<Vec<Difference>> {
    let mut diffs = Vec::new();
    diffs.extend(compare_epochs(
        &original.join("epochs.csv"),
        &rerun.join("epochs.csv"),
    )?);
    for name in ["init.safetensors", "model.safetensors"] {
        diffs.extend(compare_models(
            name,
            &original.join(name),
            &rerun.join(name),
        )?);
    }
    diffs.extend(compare_manifests(
        &original.join("manifest.json"),
        &rerun.join("manifest.json"),
    )?);
    Ok(diffs)
}

fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>)> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header = r
        .headers()
        .with_context(|| format!("reading {}", path.display()))?
        .clone();
    let rows = r
        .records()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((header, rows))
}

/// The first difference of two `epochs.csv` outside the timing columns.
pub fn compare_epochs(original: &Path, rerun: &Path) -> Result<Option<Difference>> {
    let file = "epochs.csv".to_string();
    let (ha, ra) = read_csv(original)?;
    let (hb, rb) = read_csv(rerun)?;
    if ha != hb {
        return Ok(Some(Difference {
            file,
            location: "header".into(),
            original: ha.iter().collect::<Vec<_>>().join(","),
            rerun: hb.iter().collect::<Vec<_>>().join(","),
        }));
    }
    for (i, (a, b)) in ra.iter().zip(&rb).enumerate() {
        for (col, name) in ha.iter().enumerate() {
            if TIMING_COLUMNS.contains(&name) {
                continue;
            }
            let (va, vb) = (a.get(col).unwrap_or(""), b.get(col).unwrap_or(""));
            if va != vb {
                return Ok(Some(Difference {
                    file,
                    location: format!(
                        "row {} (epoch {}), column {name}",
                        i + 1,
                        a.get(1).unwrap_or("?")
                    ),
                    original: show(va),
                    rerun: show(vb),
                }));
            }
        }
    }
    if ra.len() != rb.len() {
        return Ok(Some(Difference {
            file,
            location: "number of rows".into(),
            original: ra.len().to_string(),
            rerun: rb.len().to_string(),
        }));
    }
    Ok(None)
}

fn show(v: &str) -> String {
    if v.is_empty() {
        "(empty)".into()
    } else {
        v.to_string()
    }
}

/// The first difference of two model files: equal bytes, else the first differing
/// tensor element (in the file's `[out, in]` layout).
pub fn compare_models(name: &str, original: &Path, rerun: &Path) -> Result<Option<Difference>> {
    let a = std::fs::read(original).with_context(|| format!("reading {}", original.display()))?;
    let b = std::fs::read(rerun).with_context(|| format!("reading {}", rerun.display()))?;
    if a == b {
        return Ok(None);
    }
    let diff = |location: String, original: String, rerun: String| {
        Some(Difference {
            file: name.to_string(),
            location,
            original,
            rerun,
        })
    };
    let (Ok(na), Ok(nb)) = (
        regulab_model::io::from_bytes(&a),
        regulab_model::io::from_bytes(&b),
    ) else {
        let at = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        return Ok(diff(
            format!("byte {at} (the original is not a readable model file, or the rerun)"),
            format!("{} bytes", a.len()),
            format!("{} bytes", b.len()),
        ));
    };
    if na.architecture() != nb.architecture() {
        return Ok(diff(
            "architecture".into(),
            na.architecture().to_json(),
            nb.architecture().to_json(),
        ));
    }
    for (i, (la, lb)) in na.layers().iter().zip(nb.layers()).enumerate() {
        let n_out = la.n_out();
        if let Some(k) = la
            .weight()
            .iter()
            .zip(lb.weight())
            .position(|(x, y)| x.to_bits() != y.to_bits())
        {
            let (r, c) = (k / n_out, k % n_out);
            return Ok(diff(
                format!("tensor {}[{c}, {r}]", regulab_model::io::weight_name(i)),
                bits(la.weight()[k]),
                bits(lb.weight()[k]),
            ));
        }
        if let Some(k) = la
            .bias()
            .iter()
            .zip(lb.bias())
            .position(|(x, y)| x.to_bits() != y.to_bits())
        {
            return Ok(diff(
                format!("tensor {}[{k}]", regulab_model::io::bias_name(i)),
                bits(la.bias()[k]),
                bits(lb.bias()[k]),
            ));
        }
    }
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    Ok(diff(
        format!("byte {at} (same tensors, different header)"),
        format!("{} bytes", a.len()),
        format!("{} bytes", b.len()),
    ))
}

fn bits(v: f32) -> String {
    format!("{v:?} (bits {:#010x})", v.to_bits())
}

/// The first difference of two manifests outside [`MANIFEST_IGNORED`] and file paths.
pub fn compare_manifests(original: &Path, rerun: &Path) -> Result<Option<Difference>> {
    let read = |p: &Path| -> Result<Value> {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", p.display()))
    };
    let (mut a, mut b) = (read(original)?, read(rerun)?);
    for v in [&mut a, &mut b] {
        strip_manifest(v);
    }
    Ok(
        first_value_difference("", &a, &b).map(|(location, x, y)| Difference {
            file: "manifest.json".into(),
            location,
            original: x,
            rerun: y,
        }),
    )
}

/// Remove the fields a rerun may change: [`MANIFEST_IGNORED`], the data directory and
/// the paths of the data files (identity is their checksum).
fn strip_manifest(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        for k in MANIFEST_IGNORED {
            o.remove(*k);
        }
    }
    if let Some(d) = v.get_mut("dataset").and_then(|d| d.as_object_mut()) {
        d.remove("dir");
        if let Some(files) = d.get_mut("files").and_then(|f| f.as_array_mut()) {
            for f in files.iter_mut().filter_map(|f| f.as_object_mut()) {
                f.remove("path");
            }
        }
    }
}

fn first_value_difference(path: &str, a: &Value, b: &Value) -> Option<(String, String, String)> {
    let field = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_value_difference(&field(k), va, vb) {
                            return Some(d);
                        }
                    }
                    None => {
                        return Some((
                            format!("field {}", field(k)),
                            va.to_string(),
                            "(absent)".into(),
                        ));
                    }
                }
            }
            y.iter().find(|(k, _)| !x.contains_key(*k)).map(|(k, vb)| {
                (
                    format!("field {}", field(k)),
                    "(absent)".into(),
                    vb.to_string(),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_value_difference(&format!("{path}[{i}]"), va, vb)),
        _ if a == b => None,
        _ => Some((format!("field {path}"), a.to_string(), b.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_differences_ignore_timing_and_paths() {
        let a = serde_json::json!({
            "run": "r", "seconds": 1.0, "threads": 1, "final_digest": "aa",
            "dataset": {"dir": "/x", "files": [{"path": "/x/f", "raw_sha256": "s"}]},
            "config": {"reg": {"l2": 0.001}}
        });
        let mut b = a.clone();
        b["seconds"] = 2.0.into();
        b["threads"] = 4.into();
        b["dataset"]["dir"] = "/y".into();
        b["dataset"]["files"][0]["path"] = "/y/f".into();
        let (mut sa, mut sb) = (a.clone(), b.clone());
        strip_manifest(&mut sa);
        strip_manifest(&mut sb);
        assert_eq!(first_value_difference("", &sa, &sb), None);
        sb["config"]["reg"]["l2"] = 0.002.into();
        assert_eq!(
            first_value_difference("", &sa, &sb),
            Some(("field config.reg.l2".into(), "0.001".into(), "0.002".into()))
        );
        sb = sa.clone();
        sb["dataset"]["files"][0]["raw_sha256"] = "t".into();
        assert_eq!(
            first_value_difference("", &sa, &sb).unwrap().0,
            "field dataset.files[0].raw_sha256"
        );
    }

    #[test]
    fn environment_notes_name_the_kernel() {
        let here = regulab_kernels::cpu::report();
        let mut m = serde_json::json!({
            "regulab_version": env!("CARGO_PKG_VERSION"),
            "kernels": serde_json::to_value(&here).unwrap(),
        });
        assert!(environment_notes(&m).is_empty());
        m["kernels"]["sgemm_kernel"] = "some-other-class".into();
        let notes = environment_notes(&m);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("sgemm kernel class") && notes[0].contains("some-other-class"));
    }

    /// AVX-512 and FMA-AVX2 are one class: a run made on the other one is not a likely
    /// cause, only a note; nor is another elementwise level; a non-FMA class still is.
    #[test]
    fn the_two_fma_classes_are_one() {
        let here = regulab_kernels::cpu::report();
        let other_fma = match here.sgemm_kernel.as_str() {
            "avx512" => "fma-avx2",
            _ => "avx512",
        };
        let mut m = serde_json::json!({
            "regulab_version": env!("CARGO_PKG_VERSION"),
            "kernels": serde_json::to_value(&here).unwrap(),
        });
        m["kernels"]["sgemm_kernel"] = other_fma.into();
        m["kernels"]["elementwise"] = "scalar".into();
        let (notes, info) = environment_differences(&m);
        if here.bits_class == "x86-fma" {
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(info.len(), 2, "{info:?}");
            assert!(info[0].contains(other_fma) && info[0].contains("same bits"));
        } else {
            assert_eq!(notes.len(), 1, "{notes:?}");
        }
        m["kernels"]["sgemm_kernel"] = "avx".into();
        let notes = environment_notes(&m);
        assert_eq!(
            notes.len(),
            usize::from(here.sgemm_kernel != "avx"),
            "{notes:?}"
        );
    }
}
