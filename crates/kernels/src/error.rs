//! Typed errors of the kernels crate (bad arguments a user can cause through a config).

use thiserror::Error;

/// An argument outside the domain a kernel accepts.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    /// A dropout keep probability outside (0, 1] (or not finite).
    #[error("keep probability must be in (0, 1], got {0}")]
    KeepOutOfRange(f32),
}
