//! The known datasets: their names, file names, SHA-256 checksums and download mirrors.
//!
//! The identity of a data file is the SHA-256 of its *uncompressed* IDX bytes (the same
//! data is distributed in different gzip wrappers). The tables below are those of the
//! repository's `data/README.md`; a unit test keeps the two equal and checks the MNIST
//! files shipped in `data/mnist/` (and their `SHA256SUMS`) against them.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Base name (without `.gz`) of the training images file.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Base name (without `.gz`) of the training labels file.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Base name (without `.gz`) of the test images file.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Base name (without `.gz`) of the test labels file.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The four standard file names, in the order train images, train labels, test images,
/// test labels (the order of [`DatasetName::files`] and of `Dataset::files`).
pub const STANDARD_FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// What a data file must be: its base name and the checksum of its raw (decompressed) bytes.
///
/// The known tables are `static`s; tests and callers can build their own (owned strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Base file name without `.gz`, e.g. `t10k-labels-idx1-ubyte`.
    pub name: Cow<'static, str>,
    /// Length of the raw IDX bytes.
    pub raw_len: u64,
    /// Lower-case hex SHA-256 of the raw IDX bytes: the file's identity.
    pub raw_sha256: Cow<'static, str>,
    /// Lower-case hex SHA-256 of the upstream `.gz` file, when known (informational:
    /// other gzip wrappers of the same data are equally valid).
    pub gz_sha256: Option<Cow<'static, str>>,
}

const fn spec(
    name: &'static str,
    raw_len: u64,
    raw_sha256: &'static str,
    gz_sha256: Option<&'static str>,
) -> FileSpec {
    FileSpec {
        name: Cow::Borrowed(name),
        raw_len,
        raw_sha256: Cow::Borrowed(raw_sha256),
        gz_sha256: match gz_sha256 {
            Some(s) => Some(Cow::Borrowed(s)),
            None => None,
        },
    }
}

/// MNIST (standard distribution), in [`STANDARD_FILES`] order.
pub static MNIST_FILES: [FileSpec; 4] = [
    spec(
        TRAIN_IMAGES,
        47_040_016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        Some("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ),
    spec(
        TRAIN_LABELS,
        60_008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        Some("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ),
    spec(
        TEST_IMAGES,
        7_840_016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        Some("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ),
    spec(
        TEST_LABELS,
        10_008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        Some("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
];

/// Fashion-MNIST, in [`STANDARD_FILES`] order (gzip wrappers differ between
/// distributions, so no gz checksum).
pub static FASHION_MNIST_FILES: [FileSpec; 4] = [
    spec(
        TRAIN_IMAGES,
        47_040_016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        None,
    ),
    spec(
        TRAIN_LABELS,
        60_008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        None,
    ),
    spec(
        TEST_IMAGES,
        7_840_016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        None,
    ),
    spec(
        TEST_LABELS,
        10_008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        None,
    ),
];

/// Public mirrors serving the four MNIST `.gz` files, tried in this order.
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Upstream mirror of the Fashion-MNIST `.gz` files.
pub const FASHION_MNIST_MIRRORS: [&str; 1] =
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Which dataset: one of the two known ones (checksummed, fetchable) or `custom`, any
/// directory holding the four standard file names (accepted with a warning).
///
/// Spelled `mnist`, `fashion-mnist`, `custom` in configs and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// MNIST handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST.
    FashionMnist,
    /// Any IDX files with the standard names; checksums are not verified.
    Custom,
}

impl DatasetName {
    /// All names, for help texts.
    pub const ALL: [DatasetName; 3] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Custom,
    ];

    /// The spelling used in configs, paths (`data/<name>/`) and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Custom => "custom",
        }
    }

    /// The checksum table, in [`STANDARD_FILES`] order; `None` for `custom`.
    pub fn files(self) -> Option<&'static [FileSpec; 4]> {
        match self {
            DatasetName::Mnist => Some(&MNIST_FILES),
            DatasetName::FashionMnist => Some(&FASHION_MNIST_FILES),
            DatasetName::Custom => None,
        }
    }

    /// Default download mirrors (empty for `custom`).
    pub fn default_mirrors(self) -> &'static [&'static str] {
        match self {
            DatasetName::Mnist => &MNIST_MIRRORS,
            DatasetName::FashionMnist => &FASHION_MNIST_MIRRORS,
            DatasetName::Custom => &[],
        }
    }

    /// Number of classes labels are checked against: 10 for the known sets, `None` for
    /// `custom` (any byte; the class count is then `max label + 1`).
    pub fn num_classes(self) -> Option<u32> {
        match self {
            DatasetName::Mnist | DatasetName::FashionMnist => Some(10),
            DatasetName::Custom => None,
        }
    }

    /// The spec of the known file with base name `name`, if any.
    pub fn spec_for(self, name: &str) -> Option<&'static FileSpec> {
        self.files()?.iter().find(|s| s.name == name)
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`DatasetName::from_str`]: lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataset `{0}` (expected one of: mnist, fashion-mnist, custom)")]
pub struct UnknownDatasetName(pub String);

impl FromStr for DatasetName {
    type Err = UnknownDatasetName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDatasetName(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The repository's `data/` directory.
    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
    }

    fn checksums_md() -> String {
        let path = data_dir().join("README.md");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Rows `| name | col | col ... |` of the markdown table under `## heading`.
    fn table_rows(md: &str, heading: &str) -> Vec<Vec<String>> {
        let mut in_section = false;
        let mut rows = Vec::new();
        for line in md.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                in_section = h.trim().starts_with(heading);
                continue;
            }
            if in_section && line.starts_with('|') && !line.starts_with("|---") {
                let cells: Vec<String> = line
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect();
                if cells[0] != "file" {
                    rows.push(cells);
                }
            }
        }
        rows
    }

    fn num(s: &str) -> u64 {
        s.replace(',', "").parse().expect("a byte count")
    }

    #[test]
    fn mnist_constants_equal_checksums_md() {
        let rows = table_rows(&checksums_md(), "MNIST");
        assert_eq!(rows.len(), 4, "{rows:?}");
        for row in rows {
            let spec = DatasetName::Mnist.spec_for(&row[0]).expect("known name");
            assert!(num(&row[1]) > 0);
            assert_eq!(
                spec.gz_sha256.as_deref(),
                Some(row[2].as_str()),
                "{}",
                row[0]
            );
            assert_eq!(spec.raw_len, num(&row[3]), "{}", row[0]);
            assert_eq!(spec.raw_sha256, row[4], "{}", row[0]);
        }
    }

    #[test]
    fn fashion_constants_equal_checksums_md() {
        let rows = table_rows(&checksums_md(), "Fashion-MNIST");
        assert_eq!(rows.len(), 4, "{rows:?}");
        for row in rows {
            let spec = DatasetName::FashionMnist
                .spec_for(&row[0])
                .expect("known name");
            assert_eq!(spec.raw_len, num(&row[1]), "{}", row[0]);
            assert_eq!(spec.raw_sha256, row[2], "{}", row[0]);
        }
    }

    #[test]
    fn mirrors_are_the_documented_ones() {
        let md = checksums_md();
        for m in MNIST_MIRRORS.iter().chain(FASHION_MNIST_MIRRORS.iter()) {
            assert!(md.contains(&format!("`{m}`")), "{m} not in data/README.md");
        }
    }

    /// The MNIST files shipped in `data/mnist/`: `SHA256SUMS` lists exactly them, with
    /// the table's gz checksums, and the files' bytes (gz and raw) are those.
    #[test]
    fn shipped_mnist_files_match_sha256sums_and_the_table() {
        use sha2::{Digest, Sha256};
        let dir = data_dir().join("mnist");
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        let mut listed = Vec::new();
        for line in sums.lines() {
            let (hash, file) = line.split_once("  ").expect("`<sha256>  <file>` lines");
            let base = file.strip_suffix(".gz").expect("a .gz file");
            let spec = DatasetName::Mnist
                .spec_for(base)
                .expect("a known MNIST file");
            assert_eq!(spec.gz_sha256.as_deref(), Some(hash), "{file}");
            let gz = std::fs::read(dir.join(file)).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&gz)), hash, "{file}");
            let digest = crate::data::idx::raw_digest(&dir.join(file)).unwrap();
            assert_eq!(digest.sha256, spec.raw_sha256, "{file}");
            assert_eq!(digest.raw_len, spec.raw_len, "{file}");
            listed.push(base.to_string());
        }
        listed.sort();
        assert_eq!(
            listed,
            [TEST_IMAGES, TEST_LABELS, TRAIN_LABELS],
            "the test set and the training labels"
        );
    }

    #[test]
    fn names_round_trip() {
        for d in DatasetName::ALL {
            assert_eq!(d.as_str().parse::<DatasetName>(), Ok(d));
            assert_eq!(d.to_string(), d.as_str());
        }
        let err = "mnits".parse::<DatasetName>().unwrap_err();
        assert!(err.to_string().contains("mnits"));
        assert!(DatasetName::Custom.files().is_none());
        assert!(DatasetName::Custom.default_mirrors().is_empty());
    }
}
