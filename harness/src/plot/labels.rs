//! Naming runs by their hyperparameters, for legends and table headers.
//!
//! A run is described by its regularisation (the settings that differ from "none":
//! `L1 = 1e-3`, `L2 = 1e-4`, `keep in = 0.8`, `keep hid = 0.5`, `max-norm = 3`) and by
//! every other grid value (`lr = 0.1`); a run with none of them is "no regularisation".
//! When two runs of one figure get the same description (say, two experiments that
//! differ in a non-grid setting), their experiment names are prepended.

use serde_json::Value;

use super::rundir::RunData;
use super::style::num;

/// Regularisation keys, how they are named, and the value meaning "off".
const REG_KEYS: &[(&str, &str, f64)] = &[
    ("reg.l1", "L1", 0.0),
    ("reg.l2", "L2", 0.0),
    ("reg.keep_input", "keep in", 1.0),
    ("reg.keep_hidden", "keep hid", 1.0),
    ("reg.max_norm", "max-norm", 0.0),
];

/// The hyperparameter description of one run (see the module documentation).
pub fn describe(run: &RunData) -> String {
    let mut parts: Vec<String> = Vec::new();
    let layers = run
        .config
        .get("reg.keep_layers")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    for &(key, name, off) in REG_KEYS {
        if key == "reg.keep_hidden" && layers.is_some() {
            continue;
        }
        if let Some(v) = run.num(key)
            && v != off
        {
            parts.push(format!("{name} = {}", num(v)));
        }
    }
    if let Some(a) = layers {
        // keep probabilities: numbers, written as every number of a figure is
        let keeps: Vec<String> = a
            .iter()
            .map(|v| v.as_f64().map_or_else(|| v.to_string(), num))
            .collect();
        parts.push(format!("keep layers = [{}]", keeps.join(", ")));
    }
    for (key, label) in &run.grid {
        if key.starts_with("reg.") {
            continue;
        }
        let short = key.rsplit('.').next().unwrap_or(key);
        parts.push(format!("{short} = {label}"));
    }
    if parts.is_empty() {
        "no regularisation".to_string()
    } else {
        parts.join(", ")
    }
}

/// Legend labels for `runs`, unique within the list.
pub fn legend_labels(runs: &[&RunData]) -> Vec<String> {
    let mut labels: Vec<String> = runs.iter().map(|r| describe(r)).collect();
    let dup = |labels: &[String], i: usize| labels.iter().filter(|l| **l == labels[i]).count() > 1;
    let with_exp: Vec<bool> = (0..labels.len()).map(|i| dup(&labels, i)).collect();
    for (i, r) in runs.iter().enumerate() {
        if with_exp[i] {
            labels[i] = format!("{}: {}", r.experiment, labels[i]);
        }
    }
    let still: Vec<bool> = (0..labels.len()).map(|i| dup(&labels, i)).collect();
    for (i, r) in runs.iter().enumerate() {
        if still[i] {
            labels[i] = r.name.clone();
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::plot::rundir::flatten;

    fn run(name: &str, exp: &str, config: Value, grid: &[(&str, &str)]) -> RunData {
        let mut flat = BTreeMap::new();
        flatten("", &config, &mut flat);
        RunData {
            dir: PathBuf::new(),
            name: name.into(),
            experiment: exp.into(),
            grid: grid
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            config: flat,
            status: "completed".into(),
            test_acc: None,
            seed: 1,
            epochs: Vec::new(),
            dataset_dir: None,
        }
    }

    fn reg(l1: f64, l2: f64, ki: f64, kh: f64) -> Value {
        serde_json::json!({"reg": {"l1": l1, "l2": l2, "keep_input": ki, "keep_hidden": kh,
            "keep_layers": [], "max_norm": 0.0}, "optim": {"lr": 0.5}})
    }

    #[test]
    fn describes_regularisation_and_other_grid_values() {
        let base = run("baseline", "baseline", reg(0.0, 0.0, 1.0, 1.0), &[]);
        assert_eq!(describe(&base), "no regularisation");
        let l1 = run(
            "l1_l1=1e-3",
            "l1",
            reg(1e-3, 0.0, 1.0, 1.0),
            &[("reg.l1", "1e-3")],
        );
        assert_eq!(describe(&l1), "L1 = 1e-3");
        let d = run(
            "d",
            "dropout",
            reg(0.0, 0.0, 0.8, 0.5),
            &[("optim.lr", "0.1")],
        );
        assert_eq!(describe(&d), "keep in = 0.8, keep hid = 0.5, lr = 0.1");
    }

    #[test]
    fn duplicate_descriptions_get_the_experiment_name() {
        let a = run("a", "short", reg(0.0, 0.0, 1.0, 1.0), &[]);
        let b = run("b", "long", reg(0.0, 0.0, 1.0, 1.0), &[]);
        let c = run("c", "l2", reg(0.0, 1e-4, 1.0, 1.0), &[]);
        assert_eq!(
            legend_labels(&[&a, &b, &c]),
            [
                "short: no regularisation",
                "long: no regularisation",
                "L2 = 1e-4"
            ]
        );
    }
}
