//! A dataset: training and test images with labels, loaded from checked IDX files.
//!
//! Checks, in order, for each images/labels pair: each file's structure (magic,
//! dimensions, exact length, see [`idx`](super::idx)), the label range (`0..=9` for the
//! known sets), equal image and label counts, then the SHA-256 of the raw bytes against
//! the known table when the file has a known name. A file that is not in the table (a
//! `custom` dataset, or an unusual name) is accepted with a [`DataWarning`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checksums::{DatasetName, FASHION_MNIST_FILES, FileSpec, MNIST_FILES};
use super::error::{DataError, DataWarning};
use super::idx::{Opened, RawDigest};
use super::images::LabeledImages;
use super::locate::{find_standard_files, locate};
use super::split::{SplitSpec, Splits};

/// The identity of one loaded file, for manifests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Base name without `.gz`, e.g. `t10k-images-idx3-ubyte`.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Length of the raw (decompressed) bytes.
    pub raw_len: u64,
    /// Hex SHA-256 of the raw bytes.
    pub raw_sha256: String,
    /// Whether the checksum was verified against a known table.
    pub verified: bool,
}

/// An images file and its labels file, loaded and checked.
#[derive(Clone, Debug)]
pub struct LoadedPair {
    /// The examples.
    pub data: LabeledImages,
    /// The images file.
    pub images: FileRecord,
    /// The labels file.
    pub labels: FileRecord,
    /// Files accepted without verification.
    pub warnings: Vec<DataWarning>,
}

/// Loads an images file and its labels file from any paths (gzip or raw), e.g. MNIST's
/// test pair to train on its first 1,000 images and validate on the next 1,000.
///
/// With a known `dataset`, labels must be below its class count and files with a known
/// base name must have the known checksum; with [`DatasetName::Custom`] any label byte
/// is accepted and the files are unverified (a warning each).
pub fn load_pair(
    images_path: &Path,
    labels_path: &Path,
    dataset: DatasetName,
) -> Result<LoadedPair, DataError> {
    // both headers first: counts and sizes are checked before any data is read
    let images = Opened::images(images_path)?;
    let labels = Opened::labels(labels_path)?;
    if images.count() != labels.count() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count(),
            labels_path: labels_path.to_path_buf(),
            labels: labels.count(),
        });
    }
    let (images, images_digest) = images.read_images()?;
    let (labels, labels_digest) = labels.read_labels(dataset.num_classes())?;
    let mut warnings = Vec::new();
    let images_record = verify(images_path, &images_digest, dataset, &mut warnings)?;
    let labels_record = verify(labels_path, &labels_digest, dataset, &mut warnings)?;
    let data = LabeledImages::new(images.rows, images.cols, images.pixels, labels)?;
    Ok(LoadedPair {
        data,
        images: images_record,
        labels: labels_record,
        warnings,
    })
}

/// The base name of a data file: its file name without a `.gz` suffix.
pub fn base_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".gz") {
        Some(base) => base.to_string(),
        None => name,
    }
}

/// Checks a file's digest against `dataset`'s table by base name.
fn verify(
    path: &Path,
    digest: &RawDigest,
    dataset: DatasetName,
    warnings: &mut Vec<DataWarning>,
) -> Result<FileRecord, DataError> {
    let name = base_name(path);
    let mut record = FileRecord {
        name: name.clone(),
        path: path.to_path_buf(),
        raw_len: digest.raw_len,
        raw_sha256: digest.sha256.clone(),
        verified: false,
    };
    match dataset.spec_for(&name) {
        Some(spec) if spec.raw_sha256 == digest.sha256 => record.verified = true,
        Some(spec) => {
            return Err(DataError::ChecksumMismatch {
                path: path.to_path_buf(),
                dataset,
                name,
                found: digest.sha256.clone(),
                expected: spec.raw_sha256.to_string(),
            });
        }
        None => {
            let why = match dataset {
                DatasetName::Custom => "custom dataset".to_string(),
                known => format!("not a standard {known} file name"),
            };
            let same = identify(&digest.sha256)
                .map(|(d, f)| format!("; it is identical to {d} {f}"))
                .unwrap_or_default();
            warnings.push(DataWarning {
                path: path.to_path_buf(),
                message: format!(
                    "{why}: checksum not verified (raw SHA-256 {}){same}",
                    digest.sha256
                ),
            });
        }
    }
    Ok(record)
}

/// Which known file has raw SHA-256 `sha256`, if any.
pub fn identify(sha256: &str) -> Option<(DatasetName, &'static str)> {
    let known: [(DatasetName, &'static [FileSpec; 4]); 2] = [
        (DatasetName::Mnist, &MNIST_FILES),
        (DatasetName::FashionMnist, &FASHION_MNIST_FILES),
    ];
    known.into_iter().find_map(|(d, files)| {
        files
            .iter()
            .find(|f| f.raw_sha256 == sha256)
            .map(|f| (d, f.name.as_ref()))
    })
}

/// A loaded dataset: the training file (split later into train/validation) and the
/// test file, with the identity of the four files.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Which dataset.
    pub name: DatasetName,
    /// The directory the files came from, if loaded from one.
    pub dir: Option<PathBuf>,
    /// The training file's examples (train + validation).
    pub train: LabeledImages,
    /// The test file's examples.
    pub test: LabeledImages,
    /// Number of classes: 10 for the known sets, `max label + 1` for custom ones.
    pub num_classes: u32,
    /// The files read, in order train images, train labels, test images, test labels.
    pub files: Vec<FileRecord>,
    /// Files accepted without verification (the caller shows these to the user).
    pub warnings: Vec<DataWarning>,
}

impl Dataset {
    /// Finds `name` (see [`locate`]) and loads it.
    pub fn load(name: DatasetName, explicit_dir: Option<&Path>) -> Result<Dataset, DataError> {
        let dir = locate(name, explicit_dir)?;
        Dataset::load_dir(name, &dir)
    }

    /// Loads the four standard files (gzip or raw) from `dir`.
    pub fn load_dir(name: DatasetName, dir: &Path) -> Result<Dataset, DataError> {
        let [train_images, train_labels, test_images, test_labels] = find_standard_files(dir)
            .map_err(|problem| DataError::NotFound {
                dataset: name,
                searched: vec![super::error::Searched {
                    dir: dir.to_path_buf(),
                    origin: "directory given",
                    problem,
                }],
                hint: "put the four standard IDX files there".to_string(),
            })?;
        let train = load_pair(&train_images, &train_labels, name)?;
        let test = load_pair(&test_images, &test_labels, name)?;
        let mut dataset = Dataset::from_pairs(name, train, test)?;
        dataset.dir = Some(dir.to_path_buf());
        Ok(dataset)
    }

    /// Assembles a dataset from two loaded pairs (e.g. subsets of one file for tests).
    ///
    /// Errors when the image sizes differ.
    pub fn from_pairs(
        name: DatasetName,
        train: LoadedPair,
        test: LoadedPair,
    ) -> Result<Dataset, DataError> {
        Dataset::from_parts(name, train, Some(test))
    }

    /// Assembles a dataset from a training pair and, when there is one, a test pair
    /// (without, the test set is empty): the one place where the two files' image
    /// sizes are checked against each other and the class count is decided (the known
    /// sets' count, else `max label + 1` of both files).
    ///
    /// Errors when the image sizes differ.
    pub fn from_parts(
        name: DatasetName,
        train: LoadedPair,
        test: Option<LoadedPair>,
    ) -> Result<Dataset, DataError> {
        let tr = &train.data;
        let mut files = vec![train.images.clone(), train.labels.clone()];
        let mut warnings = train.warnings.clone();
        let test_data = match test {
            Some(test) => {
                let te = &test.data;
                if (tr.rows(), tr.cols()) != (te.rows(), te.cols()) {
                    return Err(DataError::ShapeMismatch {
                        train_path: train.images.path.clone(),
                        train_shape: (tr.rows(), tr.cols()),
                        test_path: test.images.path.clone(),
                        test_shape: (te.rows(), te.cols()),
                    });
                }
                files.extend([test.images, test.labels]);
                warnings.extend(test.warnings);
                test.data
            }
            None => LabeledImages::new(tr.rows(), tr.cols(), Vec::new(), Vec::new())?,
        };
        let num_classes = name
            .num_classes()
            .unwrap_or_else(|| tr.label_bound().max(test_data.label_bound()));
        Ok(Dataset {
            name,
            dir: None,
            num_classes,
            files,
            warnings,
            train: train.data,
            test: test_data,
        })
    }

    /// Pixels per image, the network's input size.
    pub fn input_dim(&self) -> usize {
        self.train.dim()
    }

    /// A copy holding the pixels of training examples `train` and test examples `test`
    /// only ([`LabeledImages::keep_only`]: every label, index and file identity is
    /// kept), e.g. the one image a figure shows once training is over.
    pub fn keep_only(&self, train: &[u32], test: &[u32]) -> Dataset {
        Dataset {
            name: self.name,
            dir: self.dir.clone(),
            train: self.train.keep_only(train),
            test: self.test.keep_only(test),
            num_classes: self.num_classes,
            files: self.files.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// The train/validation split and training pool of the training file.
    pub fn splits(&self, spec: &SplitSpec, seed: u64) -> Result<Splits, DataError> {
        Splits::new(self.train.len(), spec, seed)
    }
}
