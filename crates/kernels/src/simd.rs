//! Runtime selection of the SIMD path for the elementwise kernels (STUB: API only).

/// Which instruction set the elementwise kernels use on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Portable scalar code.
    Scalar,
    /// AVX2 + FMA (256-bit).
    Avx2,
    /// AVX-512F (512-bit).
    Avx512,
}

/// The level detected once at first use (overridable with `REGULAB_SIMD=scalar|avx2|avx512`,
/// capped at what the CPU supports).
pub fn level() -> Level {
    Level::Scalar
}
