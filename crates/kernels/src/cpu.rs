//! What this machine runs: CPU features and the kernels selected (STUB: API only).

use serde::Serialize;

/// A report of the paths in use, written into run manifests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelReport {
    /// CPU features that matter to us (avx2, fma, avx512f, ...), those present.
    pub cpu_features: Vec<String>,
    /// SIMD level of the elementwise kernels ("scalar", "avx2", "avx512").
    pub elementwise: String,
    /// matrixmultiply's sgemm kernel class ("avx512", "fma-avx2", "avx", "fallback").
    pub sgemm_kernel: String,
    /// matrixmultiply's version (pinned; part of the reproducibility contract).
    pub matrixmultiply_version: String,
}

/// Report for this machine.
pub fn report() -> KernelReport {
    todo!("cpu::report")
}
