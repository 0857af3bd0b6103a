//! `<run>/manifest.json`: what a run records so that it can be checked later.
//!
//! Why a module, and why typed groups: the manifest is written by training (when a run
//! starts and when it ends) and read back by resume (which config and data made this
//! directory?), by `verify` (rerun and compare) and by the figures. Its fields are
//! grouped by what a rerun of the same config must reproduce:
//!
//! * [`Identity`]: what the run is (name, experiment, grid values, resolved config,
//!   seed, the data's identity: kind and every file's SHA-256);
//! * [`Results`]: what it gave (status, epochs, final digest, test statistics);
//! * [`Environment`]: where it ran (regulab version, kernels, threads, jobs, where the
//!   data files were);
//! * [`Timing`]: when and for how long, and whether this execution resumed.
//!
//! `verify` compares the first two groups and never looks at the last two: what is
//! ignored is decided by the type a field is in, not by a list of names.
//!
//! On disk the fields are one flat JSON object in the order regulab has always written
//! them (`ManifestFile`), so manifests written before the grouping read back
//! unchanged and a run's `manifest.json` is byte for byte what it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regulab_kernels::cpu::KernelReport;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::data::FileRecord;

/// A run's manifest, in memory: four groups (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "ManifestFile", from = "ManifestFile")]
pub struct Manifest {
    /// What the run is: must be equal for a rerun.
    pub identity: Identity,
    /// What it gave: must be equal for a rerun.
    pub results: Results,
    /// Where it ran: never compared.
    pub environment: Environment,
    /// When and for how long: never compared.
    pub timing: Timing,
}

/// What a run is: its name and place in the plan, its config and its data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Identity {
    /// Run name.
    pub run: String,
    /// Experiment it belongs to.
    pub experiment: String,
    /// Its grid values (dotted key -> value label).
    pub grid: BTreeMap<String, String>,
    /// The resolved config.
    pub config: RunConfig,
    /// The seed (also in the config).
    pub seed: u64,
    /// The data read, by identity (not by location).
    pub dataset: DataIdentity,
}

/// The identity of a run's data: what it is, not where it was.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataIdentity {
    /// `data.dataset` as configured.
    pub name: String,
    /// What it was identified as: `mnist`, `fashion-mnist` or `custom`.
    pub kind: String,
    /// The files read, in order train images, train labels, test images, test labels.
    pub files: Vec<FileIdentity>,
}

/// One data file, by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileIdentity {
    /// Base name without `.gz`, e.g. `t10k-images-idx3-ubyte`.
    pub name: String,
    /// Length of the raw (decompressed) bytes.
    pub raw_len: u64,
    /// Hex SHA-256 of the raw bytes.
    pub raw_sha256: String,
    /// Whether the checksum was verified against a known table.
    pub verified: bool,
}

/// How a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Started, not finished (or stopped).
    Running,
    /// Trained every scheduled epoch.
    Completed,
    /// The cost became NaN or infinite; training stopped.
    Diverged,
}

impl RunState {
    /// `running`, `completed` or `diverged`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Completed => "completed",
            RunState::Diverged => "diverged",
        }
    }

    /// Whether the run has ended (completed or diverged).
    pub fn is_finished(self) -> bool {
        self != RunState::Running
    }
}

/// What a run gave.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Results {
    /// How it stands.
    pub status: RunState,
    /// Last epoch in `epochs.csv`.
    pub epochs_trained: u32,
    /// [`super::digest::digest`] of the final parameters (absent while running).
    pub final_digest: Option<String>,
    /// Test accuracy of the final model (absent without a test file).
    pub test_accuracy: Option<f64>,
    /// Test cost of the final model.
    pub test_cost: Option<f64>,
}

/// Where a run ran: nothing here changes a result.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// Version of regulab that trained the run.
    pub regulab_version: String,
    /// CPU features and kernels of the machine.
    pub kernels: RecordedKernels,
    /// Rayon threads per run.
    pub threads: usize,
    /// The largest pool the run trained in: `threads`, or more where workers with no
    /// run left lent it theirs (`regulab run`'s executor).
    pub threads_max: usize,
    /// Concurrent runs.
    pub jobs: usize,
    /// The directory the data files were read from (absolute).
    pub data_dir: Option<String>,
    /// Where each file of [`DataIdentity::files`] was read from.
    pub data_paths: Vec<PathBuf>,
}

/// The kernels a run used, as recorded ([`KernelReport`], read back; a field an older
/// manifest lacks is empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordedKernels {
    /// CPU features that matter to regulab, those present.
    pub cpu_features: Vec<String>,
    /// SIMD level of the elementwise kernels.
    pub elementwise: String,
    /// matrixmultiply's sgemm kernel class.
    pub sgemm_kernel: String,
    /// The class of machines that give the same bits.
    pub bits_class: String,
    /// matrixmultiply's version.
    pub matrixmultiply_version: String,
}

impl From<KernelReport> for RecordedKernels {
    fn from(k: KernelReport) -> RecordedKernels {
        RecordedKernels {
            cpu_features: k.cpu_features,
            elementwise: k.elementwise,
            sgemm_kernel: k.sgemm_kernel,
            bits_class: k.bits_class,
            matrixmultiply_version: k.matrixmultiply_version,
        }
    }
}

/// When a run ran.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Start of this (possibly resumed) execution, Unix seconds.
    pub started_unix: f64,
    /// The same, as UTC.
    pub started_utc: String,
    /// End, Unix seconds (absent while running).
    pub finished_unix: Option<f64>,
    /// The same, as UTC.
    pub finished_utc: Option<String>,
    /// The epoch this execution resumed after, if it resumed.
    pub resumed_from_epoch: Option<u32>,
    /// Wall-clock seconds of this execution (absent while running).
    pub seconds: Option<f64>,
}

/// `manifest.json` as it is on disk: one flat object, fields in the order regulab
/// writes them. Fields added over time have defaults, so older manifests read.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ManifestFile {
    #[serde(default)]
    regulab_version: String,
    run: String,
    experiment: String,
    #[serde(default)]
    grid: BTreeMap<String, String>,
    config: RunConfig,
    seed: u64,
    dataset: DatasetFile,
    #[serde(default)]
    kernels: RecordedKernels,
    #[serde(default)]
    threads: usize,
    #[serde(default)]
    threads_max: usize,
    #[serde(default)]
    jobs: usize,
    #[serde(default)]
    started_unix: f64,
    #[serde(default)]
    started_utc: String,
    #[serde(default)]
    finished_unix: Option<f64>,
    #[serde(default)]
    finished_utc: Option<String>,
    status: RunState,
    #[serde(default)]
    epochs_trained: u32,
    #[serde(default)]
    resumed_from_epoch: Option<u32>,
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    final_digest: Option<String>,
    #[serde(default)]
    test_accuracy: Option<f64>,
    #[serde(default)]
    test_cost: Option<f64>,
}

/// The data section of `manifest.json` on disk: identity and location together.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DatasetFile {
    name: String,
    kind: String,
    #[serde(default)]
    dir: Option<String>,
    files: Vec<FileRecord>,
}

impl From<Manifest> for ManifestFile {
    fn from(m: Manifest) -> ManifestFile {
        let Manifest {
            identity,
            results,
            environment,
            timing,
        } = m;
        let files = identity
            .dataset
            .files
            .into_iter()
            .enumerate()
            .map(|(i, f)| FileRecord {
                name: f.name,
                path: environment.data_paths.get(i).cloned().unwrap_or_default(),
                raw_len: f.raw_len,
                raw_sha256: f.raw_sha256,
                verified: f.verified,
            })
            .collect();
        ManifestFile {
            regulab_version: environment.regulab_version,
            run: identity.run,
            experiment: identity.experiment,
            grid: identity.grid,
            config: identity.config,
            seed: identity.seed,
            dataset: DatasetFile {
                name: identity.dataset.name,
                kind: identity.dataset.kind,
                dir: environment.data_dir,
                files,
            },
            kernels: environment.kernels,
            threads: environment.threads,
            threads_max: environment.threads_max,
            jobs: environment.jobs,
            started_unix: timing.started_unix,
            started_utc: timing.started_utc,
            finished_unix: timing.finished_unix,
            finished_utc: timing.finished_utc,
            status: results.status,
            epochs_trained: results.epochs_trained,
            resumed_from_epoch: timing.resumed_from_epoch,
            seconds: timing.seconds,
            final_digest: results.final_digest,
            test_accuracy: results.test_accuracy,
            test_cost: results.test_cost,
        }
    }
}

impl From<ManifestFile> for Manifest {
    fn from(f: ManifestFile) -> Manifest {
        let (files, data_paths) = f
            .dataset
            .files
            .into_iter()
            .map(|r| {
                (
                    FileIdentity {
                        name: r.name,
                        raw_len: r.raw_len,
                        raw_sha256: r.raw_sha256,
                        verified: r.verified,
                    },
                    r.path,
                )
            })
            .unzip();
        Manifest {
            identity: Identity {
                run: f.run,
                experiment: f.experiment,
                grid: f.grid,
                config: f.config,
                seed: f.seed,
                dataset: DataIdentity {
                    name: f.dataset.name,
                    kind: f.dataset.kind,
                    files,
                },
            },
            results: Results {
                status: f.status,
                epochs_trained: f.epochs_trained,
                final_digest: f.final_digest,
                test_accuracy: f.test_accuracy,
                test_cost: f.test_cost,
            },
            environment: Environment {
                regulab_version: f.regulab_version,
                kernels: f.kernels,
                threads: f.threads,
                // older manifests: no lending then
                threads_max: f.threads_max.max(f.threads),
                jobs: f.jobs,
                data_dir: f.dataset.dir,
                data_paths,
            },
            timing: Timing {
                started_unix: f.started_unix,
                started_utc: f.started_utc,
                finished_unix: f.finished_unix,
                finished_utc: f.finished_utc,
                resumed_from_epoch: f.resumed_from_epoch,
                seconds: f.seconds,
            },
        }
    }
}

impl Manifest {
    /// The fields a rerun of the same config must reproduce, as one JSON object (the
    /// [`Identity`] and [`Results`] groups, with their on-disk names): what `verify`
    /// compares.
    pub fn reproducible(&self) -> serde_json::Value {
        let mut v = as_written(&self.identity);
        if let (Some(o), serde_json::Value::Object(r)) =
            (v.as_object_mut(), as_written(&self.results))
        {
            o.extend(r);
        }
        v
    }

    /// The SHA-256 of each data file, in order.
    pub fn data_sha256(&self) -> Vec<&str> {
        self.identity
            .dataset
            .files
            .iter()
            .map(|f| f.raw_sha256.as_str())
            .collect()
    }
}

/// `t` as the JSON text of a manifest holds it (through the text, so that an `f32` is
/// its shortest form, `0.002`, not the `f64` it widens to).
fn as_written(t: &impl Serialize) -> serde_json::Value {
    serde_json::to_string(t)
        .and_then(|text| serde_json::from_str(&text))
        .expect("a manifest serialises")
}

/// The file name of a run's manifest.
pub const FILE_NAME: &str = "manifest.json";

/// Write `m` to `<run_dir>/manifest.json` atomically.
pub fn write_manifest(run_dir: &Path, m: &Manifest) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(m)?;
    json.push(b'\n');
    let path = run_dir.join(FILE_NAME);
    crate::atomic::write(&path, &json).with_context(|| format!("writing {}", path.display()))
}

/// Read `<run_dir>/manifest.json`; `None` when there is none.
pub fn read_manifest(run_dir: &Path) -> Result<Option<Manifest>> {
    let path = run_dir.join(FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{}: not a readable manifest", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// SHA-256 of a run config's JSON: the identity a checkpoint is tied to.
pub fn config_sha256(c: &RunConfig) -> String {
    crate::checkpoint::sha256_hex(&serde_json::to_vec(c).expect("a config serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest as `regulab run` writes it when a run ends.
    fn finished() -> Manifest {
        Manifest {
            identity: Identity {
                run: "l2_l2=1e-4".into(),
                experiment: "l2".into(),
                grid: BTreeMap::from([("reg.l2".to_string(), "1e-4".to_string())]),
                config: RunConfig::default(),
                seed: 7,
                dataset: DataIdentity {
                    name: "mnist".into(),
                    kind: "mnist".into(),
                    files: vec![FileIdentity {
                        name: "t10k-labels-idx1-ubyte".into(),
                        raw_len: 10_008,
                        raw_sha256: "ab".repeat(32),
                        verified: true,
                    }],
                },
            },
            results: Results {
                status: RunState::Completed,
                epochs_trained: 30,
                final_digest: Some("cd".repeat(32)),
                test_accuracy: Some(0.8958),
                test_cost: Some(0.1 + 0.2),
            },
            environment: Environment {
                regulab_version: "0.1.0".into(),
                kernels: RecordedKernels {
                    cpu_features: vec!["avx2".into(), "fma".into()],
                    elementwise: "avx2".into(),
                    sgemm_kernel: "fma-avx2".into(),
                    bits_class: "x86-fma".into(),
                    matrixmultiply_version: "0.3.10".into(),
                },
                threads: 2,
                threads_max: 2,
                jobs: 1,
                data_dir: Some("/data/mnist".into()),
                data_paths: vec![PathBuf::from("/data/mnist/t10k-labels-idx1-ubyte.gz")],
            },
            timing: Timing {
                started_unix: 1.5,
                started_utc: "1970-01-01T00:00:01Z".into(),
                finished_unix: Some(2.5),
                finished_utc: Some("1970-01-01T00:00:02Z".into()),
                resumed_from_epoch: None,
                seconds: Some(1.0),
            },
        }
    }

    /// On disk the manifest is the flat object regulab has always written, fields in
    /// that order (the groups are in memory only), and it reads back equal: floats
    /// to the bit.
    #[test]
    fn on_disk_layout_is_flat_and_reads_back() {
        let m = finished();
        let text = serde_json::to_string(&m).unwrap();
        // the keys of the top-level object, in order (depth 1, outside strings)
        let (mut keys, mut depth, mut in_str, mut cur) = (Vec::new(), 0, false, String::new());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (in_str, c) {
                (true, '\\') => {
                    chars.next();
                }
                (true, '"') => {
                    in_str = false;
                    if depth == 1 && chars.peek() == Some(&':') {
                        keys.push(std::mem::take(&mut cur));
                    }
                }
                (true, c) => cur.push(c),
                (false, '"') => {
                    in_str = true;
                    cur.clear();
                }
                (false, '{' | '[') => depth += 1,
                (false, '}' | ']') => depth -= 1,
                _ => {}
            }
        }
        let top: Vec<&str> = [
            "regulab_version",
            "run",
            "experiment",
            "grid",
            "config",
            "seed",
            "dataset",
            "kernels",
            "threads",
            "threads_max",
            "jobs",
            "started_unix",
            "started_utc",
            "finished_unix",
            "finished_utc",
            "status",
            "epochs_trained",
            "resumed_from_epoch",
            "seconds",
            "final_digest",
            "test_accuracy",
            "test_cost",
        ]
        .to_vec();
        assert_eq!(keys, top);
        assert!(text.contains(
            r#""dataset":{"name":"mnist","kind":"mnist","dir":"/data/mnist","files":[{"name":"t10k-labels-idx1-ubyte","path":"/data/mnist/t10k-labels-idx1-ubyte.gz","raw_len":10008,"#
        ));
        assert!(text.contains(
            r#""status":"completed","epochs_trained":30,"resumed_from_epoch":null,"seconds":1.0,"#
        ));
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.results.test_cost.unwrap().to_bits(),
            (0.1f64 + 0.2).to_bits()
        );
    }

    /// A manifest of an older regulab, without the fields added since (kernels' bits
    /// class, jobs, resume), reads with those empty.
    #[test]
    fn older_manifests_read() {
        let mut v = serde_json::to_value(finished()).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in ["jobs", "resumed_from_epoch", "kernels"] {
            o.remove(k);
        }
        let m: Manifest = serde_json::from_value(v).unwrap();
        assert_eq!(m.environment.jobs, 0);
        assert_eq!(m.environment.kernels, RecordedKernels::default());
        assert_eq!(m.identity, finished().identity);
    }
}
