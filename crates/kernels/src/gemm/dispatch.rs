//! The dispatch rules: which kernels a machine and a shape allow, and the fixed shape
//! thresholds. Three kernels give the same bits (the parent module says why):
//! matrixmultiply's packed `sgemm`, the direct (no-packing) kernels of module `direct`,
//! and the zero-skipping kernels of module `sparse`.
//!
//! Since issue 16, [`super::gemm`] chooses among the kernels a machine allows
//! ([`direct_machine`], [`sparse_level`]) by timing them (module `tune`). The shape
//! thresholds below are what it did before, measured on an AMD EPYC; they remain the
//! `REGULAB_KERNEL_CHOICE=fixed` policy (for before/after timings), the dense kernel of
//! a zero-skipping plan whose operand turns out dense, and what [`direct_path`] and
//! [`sparse_path`] report. The rest of this doc describes them as measured then.
//!
//! # Direct kernels for small batches
//!
//! `sgemm` packs all of `op(B)` into a buffer on every call: at batch 10 the forward
//! `X (10x784) . W (784x800)` packs 2.5 MB of weights to run 12.5 MFLOP. So NN products
//! (`A`, `B` as stored) with few rows of `C`, TN products (`A^T B`, the weight gradient)
//! with a small `k`, and NT products (`A B^T`, the input gradient) go to kernels that read
//! `B` in place ([`DIRECT_AVX512`], [`DIRECT_AVX2`]: where they won, measured on the
//! lab's shapes). They reproduce matrixmultiply's FMA kernels, so they run only where
//! matrixmultiply selects one (`avx512f`, or `fma` and `avx2`; [`direct_path`]) and at a
//! SIMD level (`REGULAB_SIMD=scalar` turns them off); elsewhere every product goes to
//! `sgemm`. The blocks of `C` are those of the partition either way (splitting the
//! batch-10 weight gradient by columns instead measured 2x slower on 2 threads, the
//! cores' prefetchers fighting over the lines at block edges).
//!
//! Known corner, in matrixmultiply itself and only with its FMA-AVX2 kernel (not on
//! AVX-512 machines): for an element with `C_ij = -0` before a chunk whose sum is `-0`
//! (all products underflowing to negative zero), a full 8x8 tile writes `-0` and an edge
//! tile `+0`, so its sign depends on the tile position; the direct kernels write `-0`
//! (full tiles).
//!
//! # Zero-skipping kernels for operands with many zeros
//!
//! A layer's input after dropout (keep 0.5) and ReLU is about three quarters zeros, and
//! four fifths of MNIST's pixels are 0. NN and TN products whose `op(A)` is at most
//! [`SPARSE_MAX_DENSITY`] nonzero (counted, stopping early on dense operands), and whose
//! `C` has at least [`SPARSE_MIN_N`] columns, go to kernels that list each row's nonzero
//! `p` and run the element chains over those terms only. A listed term costs one load
//! of `B` per FMA (the dense kernels share each load between up to 12 rows), so they
//! pay off up to a density of about one half. `REGULAB_ZERO_SKIP=off` turns them off
//! ([`zero_skipping_enabled`]), for timing the dense path.
//!
//! The measurements behind the thresholds (each kernel against `sgemm`, the
//! zero-skipping kernel by density) are in `benches/README.md`, sections "Kernels: GEMM
//! direct kernels" and "Kernels: GEMM zero-skipping".

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Op;
use super::direct::Flavor;
use super::sparse;
use crate::simd::{self, Level, leveled};

/// Thresholds deciding which products [`super::gemm`] sends to the direct kernels of
/// one instruction set (measured; see the module doc). A product is `C (m x n) (+)= op(A)
/// op(B)` with inner dimension `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectThresholds {
    /// NN (`A`, `B` as stored) goes direct if `m <= nn_max_m` ...
    pub nn_max_m: usize,
    /// ... or if `B` has at most this many elements (`k n`; its slices stay in L2).
    pub nn_max_b: usize,
    /// TN (`A^T B`, the weight gradient) goes direct if `k <= tn_max_k`.
    pub tn_max_k: usize,
    /// NT (`A B^T`, the input gradient through `W^T`) goes direct if `m <= nt_max_m`
    /// (the kernel copies `B^T` by panels of 64 columns, once per block).
    pub nt_max_m: usize,
}

/// Thresholds of the AVX-512 direct kernels: NN if `m <= 24` or `k n <= 2^20`
/// (direct won at every measured `m` from 10 to 1000 on the lab's 784x800 and 800x800
/// weights); TN if `k <= 256` (equal to sgemm at k = 256, 1 % slower at k = 1000); NT
/// if `m <= 1024` (won at every measured `m` from 1 to 1000).
pub const DIRECT_AVX512: DirectThresholds = DirectThresholds {
    nn_max_m: 24,
    nn_max_b: 1 << 20,
    tn_max_k: 256,
    nt_max_m: 1024,
};

/// Thresholds of the AVX2 direct kernels (8 lanes, 16 registers: groups of 6 rows, so
/// `B` is re-read more often): NN if `m <= 24` (e.g. 10x784x800: 157 us vs 264 us;
/// at m = 100 on 800x800 sgemm wins); TN if `k <= 16` (at k = 64, sgemm wins); NT if
/// `m <= 1024` (its panel copy gathers instead of transposing in registers, and still
/// won at m = 10, 100 and 1000).
pub const DIRECT_AVX2: DirectThresholds = DirectThresholds {
    nn_max_m: 24,
    nn_max_b: 0,
    tn_max_k: 16,
    nt_max_m: 1024,
};

/// The SIMD level the direct and zero-skipping kernels run at: [`simd::level`], or
/// `None` when that is [`Level::Scalar`] (they have no scalar instantiation).
fn vector_level() -> Option<Level> {
    Some(simd::level()).filter(|&l| l != Level::Scalar)
}

/// The rounding flavor of the FMA kernel matrixmultiply 0.3.11 selects in this build on
/// this CPU ([`crate::cpu::sgemm_class`]: its `sgemm_kernel::detect`, following its
/// compile-time `MMTEST_FEATURE` filter: `avx512f` -> `KernelAvx512`, else `fma` and
/// `avx2` -> `KernelFmaAvx2`), or `None` if it selects a non-FMA kernel (whose bits no
/// direct kernel reproduces) or was built with its blocking override
/// (`MATMUL_SGEMM_KC` other than 256 at compile time), which we do not follow.
pub(super) fn mm_fma_flavor() -> Option<Flavor> {
    static FLAVOR: OnceLock<Option<Flavor>> = OnceLock::new();
    *FLAVOR.get_or_init(|| {
        if option_env!("MATMUL_SGEMM_KC").is_some_and(|v| v.trim() != "256") {
            return None;
        }
        match crate::cpu::sgemm_class() {
            "avx512" => Some(Flavor::Avx512),
            "fma-avx2" => Some(Flavor::FmaAvx2),
            _ => None,
        }
    })
}

/// The level and flavor the direct kernels run at on this machine, whatever the shape
/// (for the measured choice of module `tune`): `None` where matrixmultiply selects no
/// FMA kernel or the SIMD level is scalar.
pub(super) fn direct_machine() -> Option<(Level, Flavor)> {
    Some((vector_level()?, mm_fma_flavor()?))
}

/// Whether every value of `x` is finite (no infinity, no NaN), in one pass at `level`:
/// the zero-skipping kernels skip `0 * B_pj`, which is exact only for finite `B_pj`.
pub(super) fn all_finite(level: Level, x: &[f32]) -> bool {
    leveled!(
        fn at(x: &[f32]) -> bool => all_finite_at
    );
    at(level, x)
}

/// [`all_finite`] on one token's instruction set: an or-reduction of "not finite" over
/// blocks (no early exit inside a block, so it vectorises), stopping at the first bad
/// block.
#[inline(always)]
fn all_finite_at<S>(_: S, x: &[f32]) -> bool {
    x.chunks(1024).all(|block| {
        block.iter().fold(0u32, |bad, v| {
            bad | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)
        }) == 0
    })
}

/// Whether `t` sends this product to a direct kernel (see [`DirectThresholds`]); TT
/// never does (no use for it).
fn direct_shape(t: &DirectThresholds, m: usize, n: usize, k: usize, op_a: Op, op_b: Op) -> bool {
    match (op_a, op_b) {
        (Op::N, Op::N) => m <= t.nn_max_m || k.saturating_mul(n) <= t.nn_max_b,
        (Op::T, Op::N) => k <= t.tn_max_k,
        (Op::N, Op::T) => m <= t.nt_max_m,
        (Op::T, Op::T) => false,
    }
}

/// The direct kernel [`super::gemm`] runs for this product, if any: its level and rounding
/// flavor.
pub(super) fn direct_level(
    m: usize,
    n: usize,
    k: usize,
    op_a: Op,
    op_b: Op,
) -> Option<(Level, Flavor)> {
    let flavor = mm_fma_flavor()?;
    let level = vector_level()?;
    let t = match level {
        Level::Avx2 => &DIRECT_AVX2,
        _ => &DIRECT_AVX512,
    };
    direct_shape(t, m, n, k, op_a, op_b).then_some((level, flavor))
}

/// The SIMD level of the direct (no-packing) kernel [`super::gemm`] uses for
/// `C (m x n) (+)= op(A) op(B)` on this machine, or `None` when it calls matrixmultiply.
///
/// Some only if (1) matrixmultiply selects an FMA kernel here (so a direct kernel can
/// reproduce its bits), (2) the elementwise level [`simd::level`] is AVX2 or AVX-512
/// (`REGULAB_SIMD=scalar` turns the direct kernels off), (3) the product is NN, TN or NT
/// within that level's thresholds ([`DIRECT_AVX512`], [`DIRECT_AVX2`]). A function of
/// the shape and the machine, never of the thread count.
pub fn direct_path(m: usize, n: usize, k: usize, op_a: Op, op_b: Op) -> Option<Level> {
    direct_level(m, n, k, op_a, op_b).map(|(level, _)| level)
}

/// Products whose `op(A)` has at most this fraction of nonzero entries run on the
/// zero-skipping kernels (measured; see the module doc).
pub const SPARSE_MAX_DENSITY: f64 = 0.5;

/// The zero-skipping kernels run only for `C` with at least this many columns: with
/// fewer, a row has too few independent FMA chains to hide their latency.
pub const SPARSE_MIN_N: usize = 64;

/// The ISA and flavor of the zero-skipping kernels for this shape, if the machine and
/// the shape allow them (`op(B) = B`, `n >= SPARSE_MIN_N`, `m k` indexable by `u32`, and
/// the same conditions on the machine as the direct kernels).
pub(super) fn sparse_level(m: usize, n: usize, k: usize, op_b: Op) -> Option<(Level, Flavor)> {
    if !zero_skipping_enabled() {
        return None;
    }
    let indexable = m
        .checked_mul(k + sparse::PB)
        .is_some_and(|e| e <= u32::MAX as usize);
    if op_b != Op::N || n < SPARSE_MIN_N || m == 0 || k == 0 || !indexable {
        return None;
    }
    Some((vector_level()?, mm_fma_flavor()?))
}

/// Whether the zero-skipping kernels may run: yes unless the environment variable
/// `REGULAB_ZERO_SKIP` is `off` (or `0`) when first asked, e.g. to time the dense
/// path alone, or [`set_zero_skipping`] said otherwise. Either way the bits are the same.
pub fn zero_skipping_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    match ZERO_SKIP_OVERRIDE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => *ON.get_or_init(|| {
            !matches!(
                std::env::var("REGULAB_ZERO_SKIP").as_deref().map(str::trim),
                Ok("off" | "0")
            )
        }),
    }
}

/// 0: follow `REGULAB_ZERO_SKIP`; 1: on; 2: off ([`set_zero_skipping`]).
static ZERO_SKIP_OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// Turns the zero-skipping kernels on or off for this whole process from now on,
/// whatever `REGULAB_ZERO_SKIP` says: for benchmarks that time both paths in one run.
/// Never changes a result (both paths give the same bits).
pub fn set_zero_skipping(on: bool) {
    ZERO_SKIP_OVERRIDE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// The number of nonzero entries of `a` (`m k` elements) if it is at most
/// [`SPARSE_MAX_DENSITY`] of them; `None` as soon as the count passes that, or when the
/// first 1024 entries are more than 1.25 times that dense (a dense operand, e.g.
/// sigmoid activations, costs a 4 KB look). The decision only picks between two kernels
/// of identical bits, so a sample may decide it.
pub(super) fn sparse_nonzeros(a: &[f32], m: usize, k: usize) -> Option<usize> {
    let nonzeros = |x: &[f32]| x.iter().map(|v| usize::from(*v != 0.0)).sum::<usize>();
    let head = &a[..a.len().min(1024)];
    if nonzeros(head) as f64 > 1.25 * SPARSE_MAX_DENSITY * head.len() as f64 {
        return None;
    }
    let limit = (SPARSE_MAX_DENSITY * (m * k) as f64) as usize;
    let mut nnz = 0;
    for chunk in a.chunks(4096) {
        nnz += nonzeros(chunk);
        if nnz > limit {
            return None;
        }
    }
    Some(nnz)
}

/// Whether [`super::gemm`] runs `C (m x n) (+)= op(A) op(B)` with this `a` (`m x k` elements) on
/// the zero-skipping kernels, and at which SIMD level: when the machine has the direct
/// kernels ([`direct_path`]'s conditions), `op(B)` is `B`, `n >= SPARSE_MIN_N` and at
/// most [`SPARSE_MAX_DENSITY`] of `a`'s entries are nonzero (and, to decide dense
/// operands at a glance, at most 1.25 times that share of its first 1024). A function of the shape,
/// the zeros of `a` and the machine, never of the thread count; either way the bits
/// are those of [`super::gemm_serial`] (finite `b`; see the module doc).
pub fn sparse_path(m: usize, n: usize, k: usize, a: &[f32], op_b: Op) -> Option<Level> {
    let (level, _) = sparse_level(m, n, k, op_b)?;
    sparse_nonzeros(a, m, k)?;
    Some(level)
}
