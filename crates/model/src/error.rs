//! Typed errors of the model crate: bad architectures and configs, batches that do not
//! fit the network, and model files that are truncated, corrupt or do not match.

use regulab_kernels::KernelError;
use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong in the model crate. No function of the crate panics on
/// user input (a config value, a batch, a file): it returns one of these.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The layer sizes / activations do not describe a network.
    #[error("invalid architecture: {0}")]
    InvalidArchitecture(String),

    /// A hyper-parameter outside its domain (`field` names it, as in a config file).
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `"l2"`, `"momentum"`, `"init.hidden"`.
        field: &'static str,
        /// What was expected and what was found.
        reason: String,
    },

    /// A dropout schedule gave a keep probability outside (0, 1].
    #[error("dropout keep probability for layer {layer} at epoch {epoch}: {source}")]
    DropoutKeep {
        /// Dropout layer: 0 = inputs, i = output of hidden layer i.
        layer: usize,
        /// Epoch the schedule was asked about.
        epoch: u32,
        /// The kernel's validation error.
        source: KernelError,
    },

    /// A batch with no rows.
    #[error("empty batch")]
    EmptyBatch,

    /// The batch's input slice does not hold `rows x inputs` values.
    #[error("batch input has {found} values, expected {rows} rows x {inputs} inputs")]
    InputShape {
        /// Number of rows (the number of labels).
        rows: usize,
        /// Inputs per example (first layer size).
        inputs: usize,
        /// Length of the slice given.
        found: usize,
    },

    /// A label is not a valid class index.
    #[error("label {label} of example {row} is out of range: the network has {classes} outputs")]
    LabelOutOfRange {
        /// Row of the batch.
        row: usize,
        /// The label found.
        label: u32,
        /// Number of outputs.
        classes: usize,
    },

    /// A batch would need a dropout mask of 2^32 elements or more.
    #[error(
        "batch of {rows} rows x {width} units is too large (at most 2^32 - 1 elements per layer)"
    )]
    BatchTooLarge {
        /// Rows requested.
        rows: usize,
        /// Widest layer.
        width: usize,
    },

    /// A workspace built for another architecture.
    #[error("workspace was built for layer sizes {found:?}, the network has {expected:?}")]
    WorkspaceMismatch {
        /// The network's sizes.
        expected: Vec<usize>,
        /// The workspace's sizes.
        found: Vec<usize>,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The model file ends before the data its header declares.
    #[error("model file truncated: {detail}")]
    Truncated {
        /// Which part is missing (header length, header, tensor data; expected vs found bytes).
        detail: String,
    },

    /// The model file is not a valid safetensors file (bad header, bad offsets ...).
    #[error("corrupt model file: {0}")]
    Corrupt(String),

    /// A required metadata key is absent.
    #[error("model file metadata has no `{0}` entry")]
    MissingMetadata(&'static str),

    /// A metadata entry could not be understood.
    #[error("model file metadata `{key}`: {reason}")]
    BadMetadata {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A format version this code does not read.
    #[error("model file format version {found:?} is not supported (expected {expected:?})")]
    UnsupportedVersion {
        /// Version found in the file.
        found: String,
        /// Version this code writes and reads.
        expected: &'static str,
    },

    /// A tensor the architecture needs is absent.
    #[error("model file has no tensor `{name}` (expected shape {expected:?}, F32)")]
    MissingTensor {
        /// Tensor name, e.g. `layers.1.weight`.
        name: String,
        /// Its expected shape.
        expected: Vec<usize>,
    },

    /// The file holds a tensor the architecture does not have.
    #[error(
        "model file has an unexpected tensor `{name}` (not part of the architecture in its metadata)"
    )]
    UnexpectedTensor {
        /// Tensor name.
        name: String,
    },

    /// A tensor's shape does not match the architecture.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape required by the architecture.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },

    /// A tensor is not F32.
    #[error("tensor `{name}` has dtype {found}, expected F32")]
    DtypeMismatch {
        /// Tensor name.
        name: String,
        /// Dtype in the file.
        found: String,
    },

    /// The file's architecture is not the one the caller asked for.
    #[error("model file architecture {found} does not match the expected {expected}")]
    ArchitectureMismatch {
        /// Expected architecture (JSON).
        expected: String,
        /// Architecture in the file (JSON).
        found: String,
    },
}

/// Result alias of the crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
