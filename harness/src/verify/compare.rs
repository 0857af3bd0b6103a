//! Comparing a run directory with its rerun, file by file: `epochs.csv` as text
//! except the timing columns, the model files byte for byte (a difference located as
//! tensor and element), the manifest's identity and results (never its environment or
//! timing, by type).
//!
//! Why apart from the rest of `verify`: these are pure functions of two directories,
//! used by `verify` and by the tests that prove runs identical under other settings.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::run::TIMING_COLUMNS;
use crate::run::manifest::Manifest;

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

pub(super) fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>)> {
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

pub(super) fn show(v: &str) -> String {
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

/// The first difference of two manifests in what a rerun must reproduce
/// ([`Manifest::reproducible`]: identity and results; never environment or timing).
pub fn compare_manifests(original: &Path, rerun: &Path) -> Result<Option<Difference>> {
    let read = |p: &Path| -> Result<Manifest> {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a readable manifest", p.display()))
    };
    let (a, b) = (read(original)?.reproducible(), read(rerun)?.reproducible());
    Ok(
        first_value_difference("", &a, &b).map(|(location, x, y)| Difference {
            file: "manifest.json".into(),
            location,
            original: x,
            rerun: y,
        }),
    )
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
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::run;

    /// A manifest of run `r`, with its timing, environment and data paths set by
    /// `where_` (the same `where_` gives the same manifest).
    fn manifest(where_: u32) -> Manifest {
        use crate::run::manifest::*;
        let w = f64::from(where_);
        Manifest {
            identity: Identity {
                run: "r".into(),
                experiment: "e".into(),
                grid: BTreeMap::new(),
                config: crate::config::RunConfig::default(),
                seed: 1,
                dataset: DataIdentity {
                    name: "mnist".into(),
                    kind: "mnist".into(),
                    files: vec![FileIdentity {
                        name: "f".into(),
                        raw_len: 4,
                        raw_sha256: "s".into(),
                        verified: true,
                    }],
                },
            },
            results: Results {
                status: RunState::Completed,
                epochs_trained: 3,
                final_digest: Some("aa".into()),
                test_accuracy: Some(0.5),
                test_cost: None,
            },
            environment: Environment {
                regulab_version: format!("0.{where_}"),
                kernels: RecordedKernels::default(),
                threads: where_ as usize,
                threads_max: where_ as usize,
                jobs: 1,
                data_dir: Some(format!("/x{where_}")),
                data_paths: vec![PathBuf::from(format!("/x{where_}/f"))],
            },
            timing: Timing {
                started_unix: w,
                started_utc: String::new(),
                finished_unix: Some(w + 1.0),
                finished_utc: None,
                resumed_from_epoch: (where_ > 1).then_some(2),
                seconds: Some(w),
            },
        }
    }

    #[test]
    fn manifest_differences_ignore_environment_and_timing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let compare = |x: &Manifest, y: &Manifest| {
            run::manifest::write_manifest(&a, x).unwrap();
            run::manifest::write_manifest(&b, y).unwrap();
            compare_manifests(&a.join("manifest.json"), &b.join("manifest.json")).unwrap()
        };
        let (ma, mb) = (manifest(1), manifest(4));
        assert_ne!(ma, mb);
        assert_eq!(compare(&ma, &mb), None);
        let mut other = manifest(4);
        other.identity.config.reg.l2 = 0.002;
        let d = compare(&ma, &other).unwrap();
        assert_eq!(d.location, "field config.reg.l2");
        assert_eq!(d.rerun, "0.002");
        let mut other = manifest(4);
        other.identity.dataset.files[0].raw_sha256 = "t".into();
        assert_eq!(
            compare(&ma, &other).unwrap().location,
            "field dataset.files[0].raw_sha256"
        );
        let mut other = manifest(4);
        other.results.final_digest = Some("bb".into());
        assert_eq!(compare(&ma, &other).unwrap().location, "field final_digest");
    }
}
