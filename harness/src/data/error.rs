//! Errors and warnings of the data module.
//!
//! Every error about a file names the file's path, what was found and what was expected.
//! Warnings are returned to the caller (the library never prints).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::checksums::DatasetName;

/// A problem with the data: unreadable, malformed or unexpected files, missing datasets,
/// invalid splits or batch requests.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The file starts like gzip (1f 8b) but does not decompress.
    #[error("{}: corrupt gzip data: {reason}", path.display())]
    CorruptGzip {
        /// The file.
        path: PathBuf,
        /// What the decompressor reported.
        reason: String,
    },

    /// The first four bytes are not the IDX magic number for this kind of file.
    #[error(
        "{}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})",
        path.display()
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The big-endian u32 found (0 padded when the file is shorter than 4 bytes).
        found: u32,
        /// The IDX magic required.
        expected: u32,
        /// What was expected, e.g. "IDX3 u8 images".
        what: &'static str,
    },

    /// The header declares impossible dimensions (zero image size, or too large).
    #[error("{}: bad dimensions {dims:?}: {reason}", path.display())]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// The dimensions of the header.
        dims: Vec<u32>,
        /// Why they are rejected.
        reason: &'static str,
    },

    /// The (decompressed) file is shorter than its header says.
    #[error(
        "{}: truncated: {found} bytes, expected {expected} ({header})",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Raw bytes present.
        found: u64,
        /// Raw bytes the header implies.
        expected: u64,
        /// The header, e.g. "header: 10000 x 28 x 28".
        header: String,
    },

    /// The (decompressed) file is longer than its header says.
    #[error(
        "{}: {}{extra} trailing bytes after the {expected} bytes its header describes ({header})",
        path.display(),
        if *at_least { "at least " } else { "" }
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes found after the end of the data (reading stops after a small probe).
        extra: u64,
        /// Whether there may be more (the probe was filled).
        at_least: bool,
        /// Raw bytes the header implies.
        expected: u64,
        /// The header, e.g. "header: 10000 x 28 x 28".
        header: String,
    },

    /// A gzip file that expands far more than real data does: a "gzip bomb".
    #[error(
        "{}: gzip data expands more than {ratio}-fold ({raw} raw bytes from {compressed} \
         compressed bytes so far): refused as a likely gzip bomb (real IDX files compress a \
         few-fold)",
        path.display()
    )]
    GzipBomb {
        /// The file.
        path: PathBuf,
        /// Raw bytes decompressed when it was refused.
        raw: u64,
        /// Compressed bytes read by then.
        compressed: u64,
        /// The largest ratio accepted.
        ratio: u64,
    },

    /// The header declares more data than the memory available.
    #[error(
        "{}: its header declares {declared} bytes of data ({header}), more than the memory \
         available: {available}",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Data bytes declared.
        declared: u64,
        /// The header, e.g. "header: 10000 x 28 x 28".
        header: String,
        /// The memory available and where that figure comes from.
        available: String,
    },

    /// A file read for its checksum holds more raw bytes than the file expected.
    #[error("{}: more raw bytes than the {expected} expected", path.display())]
    LongerThanExpected {
        /// The file.
        path: PathBuf,
        /// Raw bytes expected at most.
        expected: u64,
    },

    /// Images and labels files hold different numbers of examples.
    #[error(
        "{} has {images} images but {} has {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// Number of images.
        images: u64,
        /// The labels file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: u64,
    },

    /// A label is not a valid class.
    #[error(
        "{}: label {label} at index {index} is out of range 0..={max}",
        path.display()
    )]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// The offending label.
        label: u8,
        /// Its index (example number).
        index: usize,
        /// The largest valid label.
        max: u32,
    },

    /// A file with a known name does not have the known content.
    #[error(
        "{}: SHA-256 of the raw bytes is {found}, expected {expected} for {dataset} {name}; \
         the file is damaged or not the {dataset} file (delete it and fetch again)",
        path.display()
    )]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The dataset whose table was used.
        dataset: DatasetName,
        /// The base file name looked up.
        name: String,
        /// Hex SHA-256 found.
        found: String,
        /// Hex SHA-256 expected.
        expected: String,
    },

    /// Training and test images have different sizes.
    #[error(
        "{} holds {}x{} images but {} holds {}x{} images",
        train_path.display(),
        train_shape.0,
        train_shape.1,
        test_path.display(),
        test_shape.0,
        test_shape.1
    )]
    ShapeMismatch {
        /// The training images file.
        train_path: PathBuf,
        /// (rows, cols) of the training images.
        train_shape: (usize, usize),
        /// The test images file.
        test_path: PathBuf,
        /// (rows, cols) of the test images.
        test_shape: (usize, usize),
    },

    /// The dataset was found nowhere; the message lists the places searched and says
    /// what to run or where to put which files.
    #[error("{}", not_found_message(*dataset, searched, hint))]
    NotFound {
        /// The dataset looked for.
        dataset: DatasetName,
        /// Every directory searched, in order, with what was missing there.
        searched: Vec<Searched>,
        /// What to do about it (command to run, files to put where).
        hint: String,
    },

    /// A split or training-pool setting is invalid; `field` is the config field.
    #[error("{field} = {value}: {reason}")]
    InvalidSplit {
        /// The config field, e.g. `train_examples`.
        field: &'static str,
        /// Its value.
        value: usize,
        /// Why it is invalid.
        reason: String,
    },

    /// A batch request does not fit the data or the buffers (a caller bug).
    #[error("batch gather: {0}")]
    Gather(String),

    /// In-memory data given to a constructor is inconsistent.
    #[error("invalid image data: {0}")]
    InvalidData(String),
}

/// One directory searched by the dataset lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Searched {
    /// The directory.
    pub dir: PathBuf,
    /// Why it was searched: `--data-dir`, `REGULAB_DATA`, `workspace`, `system`, or
    /// `directory given` (a direct `Dataset::load_dir`).
    pub origin: &'static str,
    /// What was wrong there, e.g. "does not exist" or "missing t10k-images-idx3-ubyte[.gz]".
    pub problem: String,
}

fn not_found_message(dataset: DatasetName, searched: &[Searched], hint: &str) -> String {
    let mut s = format!("dataset {dataset} not found; searched, in order:");
    for place in searched {
        s.push_str(&format!(
            "\n  {} ({}): {}",
            place.dir.display(),
            place.origin,
            place.problem
        ));
    }
    s.push('\n');
    s.push_str(hint);
    s
}

/// Something the caller should tell the user, without failing (e.g. an unverified file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataWarning {
    /// The file concerned.
    pub path: PathBuf,
    /// What to tell the user.
    pub message: String,
}

impl fmt::Display for DataWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}
