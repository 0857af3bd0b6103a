//! Reading what `regulab run` wrote: a sweep directory (`summary.csv` + one directory
//! per run) or a single run directory (`epochs.csv`, `manifest.json`,
//! `model.safetensors`).
//!
//! A sweep's runs are those of its plan, in plan order: `plan.json` (written by `regulab
//! run` before training), else `summary.csv` (directories written before `plan.json`
//! existed), else (neither: an old, unfinished sweep) every run directory in name
//! order. A run of the plan that has no results yet is left out, with a note; a
//! directory that is not in the plan is never shown. Every run name read from a file
//! must be a run name ([`crate::outdir::is_run_name`]) before it becomes a path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::PlotError;
use crate::run::manifest::Manifest;

/// The per-epoch columns the figures use (other columns are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Epoch {
    /// 0 = the untrained model.
    pub epoch: u32,
    /// Training cost (data + penalty).
    pub train_cost: f64,
    /// Training accuracy, fraction.
    pub train_acc: f64,
    /// Validation cost (absent without a validation split).
    pub valid_cost: Option<f64>,
    /// Validation accuracy, fraction.
    pub valid_acc: Option<f64>,
}

/// One run directory, read.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run's directory.
    pub dir: PathBuf,
    /// Run name.
    pub name: String,
    /// Experiment it belongs to.
    pub experiment: String,
    /// Grid values (dotted key -> value label), in key order.
    pub grid: BTreeMap<String, String>,
    /// The resolved config flattened to dotted keys (JSON values).
    pub config: BTreeMap<String, Value>,
    /// `completed` or `diverged`.
    pub status: String,
    /// Test accuracy of the final model (fraction).
    pub test_acc: Option<f64>,
    /// The run's seed.
    pub seed: u64,
    /// Every epoch row.
    pub epochs: Vec<Epoch>,
    /// Where the dataset was read from (from the manifest), if recorded.
    pub dataset_dir: Option<PathBuf>,
}

impl RunData {
    /// A config value as a number (`None` when absent or not a number).
    pub fn num(&self, key: &str) -> Option<f64> {
        self.config.get(key).and_then(Value::as_f64)
    }

    /// The model file of the final weights.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// Best validation accuracy and its epoch.
    pub fn best_valid(&self) -> Option<(f64, u32)> {
        self.epochs
            .iter()
            .filter_map(|e| e.valid_acc.filter(|a| a.is_finite()).map(|a| (a, e.epoch)))
            .fold(None, |best, (a, e)| match best {
                Some((b, _)) if b >= a => best,
                _ => Some((a, e)),
            })
    }
}

/// A run or sweep directory, read.
#[derive(Clone, Debug)]
pub struct Study {
    /// The directory given.
    pub dir: PathBuf,
    /// Its runs, in plan order.
    pub runs: Vec<RunData>,
    /// Runs of the plan left out, and why (not started, not finished).
    pub left_out: Vec<String>,
}

impl Study {
    /// Experiment names in order of first appearance.
    pub fn experiments(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !v.contains(&r.experiment.as_str()) {
                v.push(&r.experiment);
            }
        }
        v
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PlotError + '_ {
    move |source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Flatten a JSON object to dotted keys (`{"reg": {"l1": 0}}` -> `reg.l1`).
pub fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Read one run directory: its manifest (typed, [`crate::run::manifest`]) and
/// `epochs.csv`.
pub fn read_run(dir: &Path) -> Result<RunData, PlotError> {
    let mpath = dir.join(crate::run::manifest::FILE_NAME);
    let text = std::fs::read_to_string(&mpath).map_err(io_err(&mpath))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| PlotError::Format {
        path: mpath.clone(),
        message: e.to_string(),
    })?;
    // the config as the manifest's JSON has it (f32 values in their shortest form)
    let config_json: Value = serde_json::to_string(&m.identity.config)
        .and_then(|t| serde_json::from_str(&t))
        .map_err(|e| PlotError::Format {
            path: mpath.clone(),
            message: format!("field `config`: {e}"),
        })?;
    let mut config = BTreeMap::new();
    flatten("", &config_json, &mut config);
    let epath = dir.join("epochs.csv");
    let mut reader = csv::Reader::from_path(&epath).map_err(|e| PlotError::Format {
        path: epath.clone(),
        message: e.to_string(),
    })?;
    let epochs = reader
        .deserialize::<Epoch>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PlotError::Format {
            path: epath.clone(),
            message: e.to_string(),
        })?;
    if epochs.is_empty() {
        return Err(PlotError::Format {
            path: epath,
            message: "no epoch rows".into(),
        });
    }
    Ok(RunData {
        dir: dir.to_path_buf(),
        name: m.identity.run,
        experiment: m.identity.experiment,
        grid: m.identity.grid,
        config,
        status: m.results.status.as_str().to_string(),
        test_acc: m.results.test_accuracy,
        seed: m.identity.seed,
        epochs,
        dataset_dir: m.environment.data_dir.map(PathBuf::from),
    })
}

/// The names of the runs of sweep directory `dir`, in plan order (see the module docs).
fn planned_runs(dir: &Path) -> Result<Vec<String>, PlotError> {
    let format_err = |path: &Path, message: String| PlotError::Format {
        path: path.to_path_buf(),
        message,
    };
    match crate::outdir::PlanFile::read(dir) {
        Ok(Some(plan)) => return Ok(plan.run_names()),
        Ok(None) => {}
        Err(e) => {
            return Err(format_err(
                &dir.join(crate::outdir::PLAN_FILE),
                format!("{e:#}"),
            ));
        }
    }
    let spath = dir.join(crate::outdir::SUMMARY_FILE);
    if spath.is_file() {
        let mut reader =
            csv::Reader::from_path(&spath).map_err(|e| format_err(&spath, e.to_string()))?;
        let mut order = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| format_err(&spath, e.to_string()))?;
            let name = rec.get(0).unwrap_or_default();
            if !crate::outdir::is_run_name(name) {
                return Err(format_err(
                    &spath,
                    format!("column `run`: {name:?} is not a run name"),
                ));
            }
            order.push(name.to_string());
        }
        return Ok(order);
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let p = entry.path();
        if entry.file_type().map_err(io_err(&p))?.is_dir()
            && p.join("epochs.csv").is_file()
            && p.join("manifest.json").is_file()
        {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Read a sweep directory or a single run directory.
pub fn read_study(dir: &Path) -> Result<Study, PlotError> {
    if !dir.is_dir() {
        return Err(PlotError::NotARunDir {
            path: dir.to_path_buf(),
        });
    }
    if dir.join("epochs.csv").is_file() {
        return Ok(Study {
            dir: dir.to_path_buf(),
            runs: vec![read_run(dir)?],
            left_out: Vec::new(),
        });
    }
    let mut runs = Vec::new();
    let mut left_out = Vec::new();
    for name in planned_runs(dir)? {
        let rd = dir.join(&name);
        if rd.join("epochs.csv").is_file() && rd.join("manifest.json").is_file() {
            runs.push(read_run(&rd)?);
        } else {
            left_out.push(format!("run {name} left out: it has no results yet"));
        }
    }
    if runs.is_empty() {
        return Err(PlotError::NotARunDir {
            path: dir.to_path_buf(),
        });
    }
    Ok(Study {
        dir: dir.to_path_buf(),
        runs,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_nested_objects() {
        let v: Value = serde_json::json!({"reg": {"l1": 0.001, "keep_layers": []}, "seed": 3});
        let mut out = BTreeMap::new();
        flatten("", &v, &mut out);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["reg.keep_layers", "reg.l1", "seed"]);
        assert_eq!(out["reg.l1"].as_f64(), Some(0.001));
    }

    #[test]
    fn empty_dir_is_not_a_run_dir() {
        let d = tempfile::tempdir().unwrap();
        let e = read_study(d.path()).unwrap_err();
        assert!(matches!(e, PlotError::NotARunDir { .. }), "{e}");
        assert!(e.to_string().contains("regulab run"), "{e}");
    }
}
