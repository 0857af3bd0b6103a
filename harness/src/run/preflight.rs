//! Checks of a plan before anything is trained or written: every run's split fits
//! its training file, the memory the runs executing at once need is available, and the
//! data's paths can be recorded.
//!
//! Why before: a mistake in the last run of a sweep must not be found after the other
//! runs trained, and a refused command must leave nothing behind. Errors name the
//! config file, the run and the field.

use anyhow::{Result, anyhow, bail};

use crate::config::{ConfigError, Plan, RunSpec};
use crate::data::load::data_key;
use crate::data::{DataSets, Dataset};
use crate::limits;

use super::RunOptions;

/// Checks every run of `plan` against its data and the machine before any is trained
/// (so a mistake in the last run of a sweep is not found after the others trained, and
/// leaves nothing behind): its split fits the training file (`check_data`), and the
/// memory the command needs (`check_memory`: the data held plus the runs that execute
/// at once) is available. Errors name the config file, the run and the field.
pub fn check_plan(plan: &Plan, data: &DataSets, opts: &RunOptions) -> Result<()> {
    let mut needs = Vec::with_capacity(plan.runs.len());
    for spec in &plan.runs {
        let dataset = data
            .get(&data_key(&spec.config.data))
            .ok_or_else(|| anyhow!("run `{}`: its data was not loaded", spec.name))?;
        check_data(spec, dataset, &plan.origin)?;
        needs.push((spec, run_memory(spec, dataset, opts.threads)));
    }
    let mut held = std::collections::BTreeSet::new();
    let mut data_bytes = 0u64;
    for d in data.values() {
        for images in [&d.train, &d.test] {
            // datasets of one file share its pixels: count them once
            if held.insert(images.pixels().as_ptr()) {
                data_bytes = data_bytes.saturating_add(images.pixels().len() as u64);
            }
            data_bytes = data_bytes.saturating_add(images.len() as u64);
        }
    }
    check_memory(&needs, opts.jobs, data_bytes, &plan.origin)
}

/// Checks that `spec`'s split fits its training file: `data.validation` leaves training
/// examples and `data.train_examples` is at most their number. `origin` (the config
/// file) prefixes the error.
pub(crate) fn check_data(spec: &RunSpec, dataset: &Dataset, origin: &str) -> Result<()> {
    let d = &spec.config.data;
    let invalid = |field: &str, message: String| ConfigError::Invalid {
        path: origin.to_string(),
        run: spec.name.clone(),
        field: field.to_string(),
        message,
    };
    let n = dataset.train.len();
    let file = dataset.files.first().map_or_else(
        || "the training file".to_string(),
        |f| f.path.display().to_string(),
    );
    let within = match d.range.as_slice() {
        &[a, b] => format!("data.range [{a}, {b}] of {file}"),
        _ => file,
    };
    if d.validation >= n {
        return Err(invalid(
            "data.validation",
            format!(
                "{} validation examples leave no training example: {within} holds {n} examples",
                d.validation
            ),
        )
        .into());
    }
    if let Some(k) = d.train_examples
        && k > n - d.validation
    {
        return Err(invalid(
            "data.train_examples",
            format!(
                "{k} is more than the {} training examples: {within} holds {n} examples, \
                 data.validation takes {}",
                n - d.validation,
                d.validation
            ),
        )
        .into());
    }
    Ok(())
}

/// What a run of `spec` on `dataset` with `threads` threads allocates ([`limits::run_memory`]).
pub(crate) fn run_memory(
    spec: &RunSpec,
    dataset: &Dataset,
    threads: usize,
) -> Option<limits::RunMemory> {
    let c = &spec.config;
    let mut sizes = vec![dataset.input_dim()];
    sizes.extend(&c.model.hidden);
    sizes.push(usize::try_from(dataset.num_classes).ok()?);
    let dropout = c.reg.drops_out();
    limits::run_memory(&limits::RunShape {
        sizes: &sizes,
        batch: c.batch_size,
        eval_batch: c.data.eval_batch,
        momentum: c.optim.momentum != 0.0,
        dropout,
        threads,
    })
}

/// Refuses to start when the runs executing at once (the `jobs` largest needs) and
/// `data_bytes` of data need more memory than is available ([`limits::available_memory`]).
pub(crate) fn check_memory(
    needs: &[(&RunSpec, Option<limits::RunMemory>)],
    jobs: usize,
    data_bytes: u64,
    origin: &str,
) -> Result<()> {
    let hint = "lower model.hidden, batch_size or data.eval_batch (or --jobs, --threads)";
    // sizes that overflow are refused even where the available memory is unknown
    if let Some((spec, _)) = needs.iter().find(|(_, m)| m.is_none()) {
        bail!(
            "{origin}: run `{}` needs more memory than can be counted (over {}), more than any machine has available; {hint}",
            spec.name,
            limits::Bytes(u64::MAX),
        );
    }
    let Some(available) = limits::available_memory() else {
        return Ok(());
    };
    let mut sorted: Vec<(&RunSpec, limits::RunMemory)> =
        needs.iter().filter_map(|&(s, m)| Some((s, m?))).collect();
    sorted.sort_by_key(|(_, m)| std::cmp::Reverse(m.total()));
    let at_once = jobs.clamp(1, sorted.len().max(1));
    let total = sorted[..at_once.min(sorted.len())]
        .iter()
        .fold(data_bytes, |t, (_, m)| t.saturating_add(m.total()));
    if total > available.bytes {
        let (spec, largest) = sorted[0];
        bail!(
            "{origin}: not enough memory: run `{}` needs about {largest}; with {at_once} run(s) \
             at a time and {} of data the command needs about {}, more than the {} available; \
             {hint}",
            spec.name,
            limits::Bytes(data_bytes),
            limits::Bytes(total),
            available
        );
    }
    Ok(())
}

/// Every path a run of `data` records in its manifest (JSON text) must be UTF-8:
/// checked before anything is written, naming the path.
pub fn check_recordable(data: &DataSets) -> Result<()> {
    for d in data.values() {
        let paths = d.dir.iter().chain(d.files.iter().map(|f| &f.path));
        if let Some(p) = paths.into_iter().find(|p| p.to_str().is_none()) {
            bail!(
                "{}: the path is not valid UTF-8; regulab records the data's paths in each \
                 run's manifest.json (JSON text): rename the directory or give a UTF-8 path \
                 to it (e.g. a symbolic link)",
                p.display()
            );
        }
    }
    Ok(())
}
