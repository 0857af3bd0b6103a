//! Loading the data a plan's configs name: which directory (an explicit `--data-dir`,
//! `REGULAB_DATA`, the workspace's `data/`, the Debian package), which files
//! (`data.train_file`, `data.test_file`), which examples (`data.range`), and sharing:
//! every dataset a plan needs is loaded once per [`data_key`], each file once.
//!
//! Why here and not in the run module: loading is the data's concern, and it must
//! check files the one way [`Dataset`] does ([`Dataset::from_parts`] checks the image
//! sizes and decides the class count for every path in). `regulab run`, `verify` and
//! `plot` all load through these functions. Warnings (unverified files) are returned in
//! each [`Dataset`], never printed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};

use crate::config::{DataConfig, DataFile, Plan, RunConfig};
use crate::data::checksums::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::data::dataset::identify;
use crate::data::locate::{DATA_ENV, candidate_dirs, file_problem, find_file};
use crate::data::{Dataset, DatasetName, LoadedPair, SplitSpec, load_pair};

/// The datasets a plan needs, loaded once and shared by its runs.
pub type DataSets = BTreeMap<String, Arc<Dataset>>;

/// The key of a run's data in [`DataSets`]: the dataset and which of its examples the
/// run uses (runs with equal keys share one loaded copy).
pub fn data_key(d: &DataConfig) -> String {
    format!(
        "{}|{}|{}|{:?}",
        d.dataset,
        d.train_file.as_str(),
        d.test_file.as_str(),
        d.range
    )
}

/// Pairs of files this command has loaded, by (images, labels, dataset kind): each file
/// is read (decompressed, hashed, checked) once, and the datasets made from it (e.g. one
/// per value of a grid over `data.range`) share its decoded pixels.
#[derive(Default)]
pub struct LoadedFiles(HashMap<(PathBuf, PathBuf, DatasetName), LoadedPair>);

impl LoadedFiles {
    /// The pair `(images, labels)` as `kind`, loaded now or shared from an earlier load.
    fn pair(&mut self, images: PathBuf, labels: PathBuf, kind: DatasetName) -> Result<LoadedPair> {
        let key = (images, labels, kind);
        if let Some(p) = self.0.get(&key) {
            return Ok(p.clone());
        }
        let pair = load_pair(&key.0, &key.1, kind)?;
        self.0.insert(key, pair.clone());
        Ok(pair)
    }
}

/// Load every dataset the plan needs (once per [`data_key`], each file once). Files
/// accepted without verification are in each dataset's `warnings`, for the caller to show.
pub fn load_datasets(plan: &Plan, data_dir: Option<&Path>) -> Result<DataSets> {
    let mut sets = DataSets::new();
    let mut files = LoadedFiles::default();
    for run in &plan.runs {
        let key = data_key(&run.config.data);
        if sets.contains_key(&key) {
            continue;
        }
        let dataset = load_dataset_with(&run.config.data, data_dir, &mut files)?;
        sets.insert(key, Arc::new(dataset));
    }
    Ok(sets)
}

/// How a config splits its training file.
pub fn split_spec(c: &RunConfig) -> SplitSpec {
    SplitSpec {
        valid_size: c.data.validation,
        train_examples: c.data.train_examples,
    }
}

/// The training-file examples the runs of `plan` using `dataset` (those whose
/// [`data_key`] is `key`) read: each one's training pool and validation split, sorted.
/// A run whose split is invalid adds nothing (it fails with that error when it starts).
pub fn used_train_examples(plan: &Plan, key: &str, dataset: &Dataset) -> Vec<u32> {
    let mut used = vec![false; dataset.train.len()];
    for run in plan.runs.iter().filter(|r| data_key(&r.config.data) == key) {
        if let Ok(s) = dataset.splits(&split_spec(&run.config), run.config.seed) {
            for &i in s.pool().iter().chain(s.valid()) {
                used[i as usize] = true;
            }
        }
    }
    (0u32..)
        .zip(used)
        .filter(|&(_, u)| u)
        .map(|(i, _)| i)
        .collect()
}

/// `data` with the pixels of every training image no run of `plan` reads released
/// ([`crate::data::LabeledImages::keep_only`]; indices and labels are unchanged, so the runs give
/// the same bits). The lab's study reads 11,000 of the 60,000 training images: 8.6 MB
/// of pixels instead of 47 MB. Test files are kept whole (every run is tested on all).
pub fn release_unused(plan: &Plan, data: DataSets) -> DataSets {
    data.into_iter()
        .map(|(key, d)| {
            let used = used_train_examples(plan, &key, &d);
            if used.len() == d.train.held_len() {
                return (key, d);
            }
            let d = Arc::unwrap_or_clone(d);
            let train = d.train.keep_only(&used);
            (key, Arc::new(Dataset { train, ..d }))
        })
        .collect()
}

/// The base names of the (images, labels) files of `file`.
fn pair_names(file: DataFile) -> Option<[&'static str; 2]> {
    match file {
        DataFile::Train => Some([TRAIN_IMAGES, TRAIN_LABELS]),
        DataFile::T10k => Some([TEST_IMAGES, TEST_LABELS]),
        DataFile::None => None,
    }
}

/// The base names of every file the config reads.
fn needed_files(d: &DataConfig) -> Vec<&'static str> {
    [d.train_file, d.test_file]
        .into_iter()
        .filter_map(pair_names)
        .flatten()
        .collect()
}

/// Load the data a config names: `mnist` / `fashion-mnist` (looked for as DESIGN.md
/// says, in `data_dir` when given; a directory qualifies when it holds the files the
/// config reads) or a directory. Only the files of `data.train_file` and
/// `data.test_file` are read; `data.range` is applied to the training file.
pub fn load_dataset(d: &DataConfig, data_dir: Option<&Path>) -> Result<Dataset> {
    load_dataset_with(d, data_dir, &mut LoadedFiles::default())
}

/// [`load_dataset`], sharing the files already in `files`.
fn load_dataset_with(
    d: &DataConfig,
    data_dir: Option<&Path>,
    files: &mut LoadedFiles,
) -> Result<Dataset> {
    match d.dataset.parse::<DatasetName>() {
        Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => {
            let dir = find_data_dir(known, data_dir, &needed_files(d))?;
            load_dataset_from_with(d, known, &dir, files)
        }
        _ => {
            let dir = Path::new(&d.dataset);
            if !dir.is_dir() {
                bail!(
                    "field `data.dataset`: \"{}\" is neither a known dataset (mnist, \
                     fashion-mnist) nor a directory holding IDX files ({}; a relative path in \
                     a config file is resolved against the file's directory, one given with \
                     --set against the working directory)",
                    d.dataset,
                    if dir.exists() {
                        "not a directory"
                    } else {
                        "no such directory"
                    }
                );
            }
            load_dataset_from_with(d, DatasetName::Custom, dir, files)
        }
    }
}

/// The first searched directory (see [`candidate_dirs`]) holding the files `needed`;
/// otherwise the error of [`crate::data::locate()`], which lists every place searched.
fn find_data_dir(
    name: DatasetName,
    explicit: Option<&Path>,
    needed: &[&str],
) -> Result<PathBuf, crate::data::DataError> {
    let env = std::env::var_os(DATA_ENV);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    for (dir, _) in candidate_dirs(name, explicit, env.as_deref(), &cwd) {
        if needed.iter().all(|f| find_file(&dir, f).is_some()) {
            return Ok(dir);
        }
    }
    crate::data::locate(name, explicit)
}

/// Load the files `d` reads from `dir`, as dataset `kind`. Files of a directory
/// ([`DatasetName::Custom`]) whose names and SHA-256 are all those of one known dataset
/// are that dataset, verified.
pub fn load_dataset_from(d: &DataConfig, kind: DatasetName, dir: &Path) -> Result<Dataset> {
    load_dataset_from_with(d, kind, dir, &mut LoadedFiles::default())
}

/// [`load_dataset_from`], sharing the files already in `loaded`.
fn load_dataset_from_with(
    d: &DataConfig,
    kind: DatasetName,
    dir: &Path,
    loaded: &mut LoadedFiles,
) -> Result<Dataset> {
    let mut load = |file: DataFile, field: &str| -> Result<Option<LoadedPair>> {
        let Some([images, labels]) = pair_names(file) else {
            return Ok(None);
        };
        let find = |base: &str| {
            find_file(dir, base).ok_or_else(|| {
                anyhow!(
                    "{}: {} (read because field `data.{field}` = \"{}\")",
                    dir.display(),
                    file_problem(dir, base),
                    file.as_str()
                )
            })
        };
        let pair = loaded.pair(find(images)?, find(labels)?, kind)?;
        Ok(Some(pair))
    };
    let mut train = load(d.train_file, "train_file")?
        .ok_or_else(|| anyhow!("field `data.train_file`: expected \"train\" or \"t10k\""))?;
    let test = load(d.test_file, "test_file")?;
    if let &[start, end] = d.range.as_slice() {
        if end > train.data.len() {
            bail!(
                "field `data.range`: [{start}, {end}] goes beyond the {} examples of {}",
                train.data.len(),
                train.images.path.display()
            );
        }
        train.data = train.data.subset(start..end)?;
    }
    let mut dataset = Dataset::from_parts(kind, train, test)?;
    if kind == DatasetName::Custom {
        recognise(&mut dataset);
    }
    dataset.dir = Some(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
    Ok(dataset)
}

/// A [`DatasetName::Custom`] dataset whose files' names and SHA-256 are all those of one
/// known dataset becomes that dataset, its files verified (and their warnings gone).
fn recognise(dataset: &mut Dataset) {
    let ids: Vec<_> = dataset
        .files
        .iter()
        .map(|f| identify(&f.raw_sha256))
        .collect();
    if let Some(Some((first, _))) = ids.first()
        && ids
            .iter()
            .zip(&dataset.files)
            .all(|(id, f)| matches!(id, Some((ds, n)) if ds == first && *n == f.name))
    {
        dataset.name = *first;
        dataset.num_classes = first.num_classes().unwrap_or(dataset.num_classes);
        for f in &mut dataset.files {
            f.verified = true;
        }
        dataset.warnings.clear();
    }
}
