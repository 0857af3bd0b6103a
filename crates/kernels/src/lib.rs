//! Compute kernels of regulab: everything a training step spends its time in.
//!
//! * [`gemm`]: row-major f32 `C = op(A) op(B)` / `C += op(A) op(B)` on
//!   `matrixmultiply::sgemm`, with direct and zero-skipping kernels of the same bits,
//!   parallelised with rayon over fixed blocks of `C` (never over `k`), so `C`'s bits
//!   never depend on the thread count.
//! * [`dropout`]: fused Bernoulli mask + inverted scaling, 1 bit per element, with
//!   random bits positioned by (seed, layer, step, element).
//! * [`update`]: fused SGD step with L1/L2 penalties (and momentum), penalty sums.
//! * [`activation`]: sigmoid / tanh / ReLU / identity forward and backward,
//!   fused softmax + cross-entropy, argmax, column sums.
//! * [`simd`]: the one SIMD layer: the level detected (AVX-512 / AVX2 / scalar), the
//!   tokens and lane traits every kernel above is written once against, and the
//!   dispatch from a level to a kernel's instantiation.
//! * [`rng`]: derivation of independent ChaCha streams from one `u64` seed.
//! * [`chacha`]: a SIMD ChaCha8 keystream, word for word that of `rand_chacha`'s
//!   `ChaCha8Rng`, for the dropout masks.
//! * [`cpu`]: what this machine runs (CPU features, selected kernels) for manifests.
//! * [`trace`]: counters of the kernel paths taken, for tests that prove a path ran.
//!
//! Determinism contract: every function here gives the same bits whatever the size
//! of the rayon pool it runs in. Work is split into blocks whose size depends only
//! on the shape of the problem, and every reduction has a fixed order; each parallel
//! loop says why where it is. The SIMD level never changes a bit either (see
//! [`simd`]).
//!
//! The cargo feature `internals` makes public what tests and benchmarks need beyond
//! the API: the explicit-level forms (`*_with`), the single-kernel GEMM entry points
//! and the GEMM partition. Without it a kernel has one way to be called.

/// An item of the test and benchmark interface (the explicit-level `*_with` forms, the
/// single-kernel GEMM entry points, `gemm::Partition`): public with the cargo feature
/// `internals` (enabled by the benches and this crate's own tests), crate-private
/// otherwise, so users of the library see one way to call each kernel. Write the item
/// inside parentheses, `internal!(pub fn ...);`, which rustfmt formats.
macro_rules! internal {
    ($(#[$meta:meta])* pub $($item:tt)*) => {
        $(#[$meta])*
        #[cfg(feature = "internals")]
        pub $($item)*

        $(#[$meta])*
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code)]
        pub(crate) $($item)*
    };
}

pub mod activation;
pub mod chacha;
pub mod cpu;
pub mod dropout;
pub mod error;
pub mod gemm;
pub mod pinned;
pub mod rng;
pub mod simd;
pub mod trace;
pub mod update;

pub use error::KernelError;
