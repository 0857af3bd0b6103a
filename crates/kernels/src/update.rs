//! Fused SGD updates with L1/L2 penalties (with and without momentum), the
//! penalty-only pass of the G-free update path, scaling, and penalty sums in a
//! fixed order.
//!
//! # Exact operation order (the bit contract)
//!
//! Every function below evaluates, per element, exactly the expressions written
//! here, left to right, each `*`, `+`, `-` a separately rounded f32 operation. No
//! fused multiply-add is used anywhere (Rust never contracts `a * b + c`, and the
//! SIMD paths use separate `mul` / `add` / `sub` instructions), so the scalar,
//! AVX2 and AVX-512 paths give identical bits on every machine:
//!
//! ```text
//! sgn(w)       = 1 if w > 0, -1 if w < 0, 0 otherwise (w = +0, -0 or NaN)
//! d            = ((g * grad_scale) + (l2 * w)) + (l1 * sgn(w))
//! sgd:           w <- w - lr * d
//! sgd_momentum:  v <- (mu * v) - (lr * d);  w <- w + v
//! decay:         w <- w - lr * ((l2 * w) + (l1 * sgn(w)))   (nothing at all if l1 = l2 = 0)
//! scale:         x <- x * s
//! ```
//!
//! Nothing is skipped conditionally per element: zero penalties are still
//! multiplied and added, so e.g. `sgd` with `l1 = l2 = 0` is `w - lr * (g * gs + 0 + 0)`
//! in every path. The one whole-call shortcut is [`decay`] with `l1 == 0 && l2 == 0`,
//! which returns at once and leaves `w` bit-for-bit untouched (even `inf` / NaN entries,
//! which the full formula would turn into NaN), in every path alike.
//!
//! NaN: `sgn(NaN) = 0`, but `l2 * NaN` is NaN, so a NaN weight (or gradient, or
//! velocity) stays NaN; the NaN's payload bits are not part of the contract.
//!
//! # Parallelism and determinism
//!
//! Slices of at least [`PAR_MIN`] elements are cut into fixed chunks of [`CHUNK`]
//! elements (a multiple of 16, independent of the thread count) processed with
//! rayon in the current pool; smaller slices run inline. The elementwise kernels
//! cannot depend on the split; [`penalty_sums`] uses a fixed reduction tree (see
//! there), so every function gives the same bits in a pool of any size.
//!
//! # SIMD
//!
//! The safe entry points dispatch on [`simd::level`]; the `*_with` variants take
//! the level explicitly (tests and benches), lowered to what the CPU supports
//! (see [`usable`]). The AVX2 path works on 8 lanes, the AVX-512 path on 16; tails
//! run the scalar expression, which is the same expression.
//!
//! # The G-free update path (momentum off)
//!
//! For a dense layer `Z = X W + b` with batch `X` (`B x n_in`) and output delta
//! `Δ` (`B x n_out`), the weight gradient is `G = X^T Δ` and the step is
//!
//! ```text
//! W <- W - lr * (G / B + l2 * W + l1 * sgn(W))
//! ```
//!
//! Because the step is linear in `G`, it can be done without ever materialising `G`
//! (which saves writing and re-reading an `n_in x n_out` buffer, 2.5 MB for 784x800):
//!
//! 1. `decay(W, lr, l1, l2)`: `W <- W - lr * (l2 W + l1 sgn W)` (the penalty is taken
//!    at the old `W`, as in the fused formula);
//! 2. `scale_into(Δs, Δ, -lr / B)` (or `scale(Δ, -lr / B)` when `Δ` is no longer
//!    needed), with `-lr / B` computed in f32;
//! 3. `gemm(n_in, n_out, B, X, Op::T, Δs, Op::N, W, Accumulate::Add)`: `W += X^T Δs`.
//!
//! The bits differ from the fused formula (the rounding order differs, and sgemm may
//! use FMA), but they are deterministic: the same for any thread count, given the
//! pinned matrixmultiply kernel.
//!
//! Strategy A (materialise `G` with `gemm(.., Overwrite)`, then [`sgd`] with
//! `grad_scale = 1 / B`) versus strategy B (the G-free path above), l1 = 1e-4,
//! l2 = 1e-5, measured on this project's machine (2 cores, AMD EPYC with AVX-512,
//! shared with other jobs, so absolute times are noisy). Medians of 300 rounds that
//! run A, B and the bare gemm alternately, so load drifts hit all three alike:
//!
//! ```text
//! W         B    threads   A (G + sgd)   B (G-free)   gemm alone   B / A
//! 784x800   10   2           116.7 us      114.6 us      75.5 us    0.98
//! 784x800   100  2          1230.7 us     1213.5 us    1164.6 us    0.99
//! 800x800   10   2           220.9 us      210.8 us     148.0 us    0.96
//! 800x800   100  2          1250.5 us     1235.5 us    1175.9 us    0.99
//! 784x800   10   1           222.2 us      211.1 us     148.4 us    0.95
//! 784x800   100  1          1646.7 us     1627.6 us    1574.6 us    0.99
//! ```
//!
//! B wins at batch 10 and at batch 100, by 1-5 % (at most one W-sized pass: the
//! gemm dominates). The criterion group `update/strategy` runs the same pair
//! (`cargo bench -p regulab-benches --bench update -- strategy`). A third variant,
//! decaying and accumulating W in row blocks of 32 so each block stays in L2, was
//! no faster (many small gemm calls) and is not offered.
//!
//! So the model uses strategy B when momentum is off, and [`sgd_momentum`] with a
//! materialised `G` otherwise (the velocity needs `G`). When l1 = l2 = 0, [`decay`]
//! returns at once and B is a single gemm.
//!
//! Fused kernels against unfused baselines (separate penalty, gradient and step
//! passes, split over the same chunks and threads; 2 threads; criterion medians from
//! `cargo bench -p regulab-benches --bench update -- 'sgd|momentum'`):
//!
//! ```text
//! kernel          W         fused (AVX-512)   fused (scalar)   unfused    unfused / fused
//! sgd             784x800      131 us            332 us          410 us     3.1x
//! sgd             800x800      137 us            334 us          419 us     3.1x
//! sgd_momentum    784x800      174 us              -             735 us     4.2x
//! sgd_momentum    800x800      180 us              -             560 us     3.1x
//! ```

use rayon::prelude::*;

use crate::simd::{self, Level};

/// Chunk of elements one rayon task updates (a multiple of 16, 64 KiB of f32).
pub const CHUNK: usize = 16 * 1024;

/// Slices shorter than this are processed inline, without rayon.
pub const PAR_MIN: usize = 4 * CHUNK;

/// Block of elements [`penalty_sums`] reduces on its own before blocks are combined.
pub const SUM_BLOCK: usize = 4096;

/// Number of f64 partial sums inside a block of [`penalty_sums`] (element `i` of a
/// block goes to lane `i % SUM_LANES`).
pub const SUM_LANES: usize = 8;

/// Hyper-parameters of one SGD step on one parameter tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Learning rate.
    pub lr: f32,
    /// Multiplier of the summed gradient, normally 1 / batch size.
    pub grad_scale: f32,
    /// L1 weight (beta_L1).
    pub l1: f32,
    /// L2 weight (beta_L2).
    pub l2: f32,
}

/// The sign used by the L1 penalty: `1` if `x > 0`, `-1` if `x < 0`, else `0`
/// (for `+0`, `-0` and NaN).
#[inline(always)]
pub fn sgn(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Whether this CPU can run the given level's path.
pub fn supported(level: Level) -> bool {
    match level {
        Level::Scalar => true,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        #[cfg(not(target_arch = "x86_64"))]
        _ => false,
    }
}

/// The level actually run when `level` is asked for: `level` itself if the CPU
/// supports it, else the best supported level below it (ultimately `Scalar`).
pub fn usable(level: Level) -> Level {
    let order = match level {
        Level::Avx512 => &[Level::Avx512, Level::Avx2, Level::Scalar][..],
        Level::Avx2 => &[Level::Avx2, Level::Scalar][..],
        Level::Scalar => &[Level::Scalar][..],
    };
    order
        .iter()
        .copied()
        .find(|&l| supported(l))
        .unwrap_or(Level::Scalar)
}

// ---------------------------------------------------------------------------
// Public entry points.

/// `W <- W - lr * (G * grad_scale + l2 * W + l1 * sgn(W))`, sgn(0) = 0, one pass.
///
/// Exactly `d = ((g * grad_scale) + (l2 * w)) + (l1 * sgn(w)); w = w - lr * d`.
///
/// # Panics
/// If `w` and `g` differ in length.
pub fn sgd(w: &mut [f32], g: &[f32], s: Step) {
    sgd_with(simd::level(), w, g, s);
}

/// [`sgd`] on an explicit SIMD level (lowered to what the CPU supports).
///
/// # Panics
/// If `w` and `g` differ in length.
pub fn sgd_with(level: Level, w: &mut [f32], g: &[f32], s: Step) {
    assert_eq!(w.len(), g.len(), "update::sgd: w and g lengths differ");
    let level = usable(level);
    crate::trace::update(w.len() >= PAR_MIN);
    if w.len() < PAR_MIN {
        sgd_chunk(level, w, g, s);
    } else {
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(w, g)| sgd_chunk(level, w, g, s));
    }
}

/// `V <- mu * V - lr * (G * grad_scale + l2 * W + l1 * sgn(W)); W <- W + V`, one pass.
///
/// Exactly `d` as in [`sgd`], then `v = (mu * v) - (lr * d); w = w + v`.
///
/// # Panics
/// If `w`, `v` and `g` differ in length.
pub fn sgd_momentum(w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
    sgd_momentum_with(simd::level(), w, v, g, s, mu);
}

/// [`sgd_momentum`] on an explicit SIMD level (lowered to what the CPU supports).
///
/// # Panics
/// If `w`, `v` and `g` differ in length.
pub fn sgd_momentum_with(level: Level, w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
    assert_eq!(
        w.len(),
        g.len(),
        "update::sgd_momentum: w and g lengths differ"
    );
    assert_eq!(
        w.len(),
        v.len(),
        "update::sgd_momentum: w and v lengths differ"
    );
    let level = usable(level);
    crate::trace::update(w.len() >= PAR_MIN);
    if w.len() < PAR_MIN {
        momentum_chunk(level, w, v, g, s, mu);
    } else {
        w.par_chunks_mut(CHUNK)
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|((w, v), g)| momentum_chunk(level, w, v, g, s, mu));
    }
}

/// Penalty-only pass of the G-free path: `W <- W - lr * (l2 * W + l1 * sgn(W))`.
///
/// Exactly `w = w - lr * ((l2 * w) + (l1 * sgn(w)))`. When `l1 == 0 && l2 == 0` it
/// returns at once and `W` is bit-for-bit unchanged.
pub fn decay(w: &mut [f32], lr: f32, l1: f32, l2: f32) {
    decay_with(simd::level(), w, lr, l1, l2);
}

/// [`decay`] on an explicit SIMD level (lowered to what the CPU supports).
pub fn decay_with(level: Level, w: &mut [f32], lr: f32, l1: f32, l2: f32) {
    if l1 == 0.0 && l2 == 0.0 {
        return;
    }
    let level = usable(level);
    crate::trace::update(w.len() >= PAR_MIN);
    if w.len() < PAR_MIN {
        decay_chunk(level, w, lr, l1, l2);
    } else {
        w.par_chunks_mut(CHUNK)
            .for_each(|w| decay_chunk(level, w, lr, l1, l2));
    }
}

/// `x <- x * s`.
pub fn scale(x: &mut [f32], s: f32) {
    scale_with(simd::level(), x, s);
}

/// [`scale`] on an explicit SIMD level (lowered to what the CPU supports).
pub fn scale_with(level: Level, x: &mut [f32], s: f32) {
    let level = usable(level);
    crate::trace::update(x.len() >= PAR_MIN);
    if x.len() < PAR_MIN {
        scale_chunk(level, x, s);
    } else {
        x.par_chunks_mut(CHUNK)
            .for_each(|x| scale_chunk(level, x, s));
    }
}

/// `dst <- src * s` (out of place: keeps `src`, e.g. a delta still needed for the
/// bias gradient). Same bits as [`scale`] on a copy of `src`.
///
/// # Panics
/// If `dst` and `src` differ in length.
pub fn scale_into(dst: &mut [f32], src: &[f32], s: f32) {
    scale_into_with(simd::level(), dst, src, s);
}

/// [`scale_into`] on an explicit SIMD level (lowered to what the CPU supports).
///
/// # Panics
/// If `dst` and `src` differ in length.
pub fn scale_into_with(level: Level, dst: &mut [f32], src: &[f32], s: f32) {
    assert_eq!(dst.len(), src.len(), "update::scale_into: lengths differ");
    let level = usable(level);
    crate::trace::update(dst.len() >= PAR_MIN);
    if dst.len() < PAR_MIN {
        scale_into_chunk(level, dst, src, s);
    } else {
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, x)| scale_into_chunk(level, d, x, s));
    }
}

/// `(sum |w|, sum w^2)` accumulated in f64 in a fixed order (independent of threads
/// and of the SIMD level).
///
/// Order: `w` is cut into blocks of [`SUM_BLOCK`] elements. Inside a block, element
/// `i` (block-relative) is added, in index order, to lane `i % 8` of 8 f64 partial
/// sums (of `|f64(w)|` and of `f64(w) * f64(w)`), and the lanes are combined as
/// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`. Block results are then added
/// in block order, starting from `0.0`. An empty slice gives `(0.0, 0.0)`.
pub fn penalty_sums(w: &[f32]) -> (f64, f64) {
    penalty_sums_with(simd::level(), w)
}

/// [`penalty_sums`] on an explicit SIMD level (lowered to what the CPU supports).
pub fn penalty_sums_with(level: Level, w: &[f32]) -> (f64, f64) {
    let level = usable(level);
    let add = |acc: (f64, f64), b: (f64, f64)| (acc.0 + b.0, acc.1 + b.1);
    if w.len() < PAR_MIN {
        w.chunks(SUM_BLOCK)
            .map(|b| sums_block(level, b))
            .fold((0.0, 0.0), add)
    } else {
        let blocks: Vec<(f64, f64)> = w
            .par_chunks(SUM_BLOCK)
            .map(|b| sums_block(level, b))
            .collect();
        blocks.into_iter().fold((0.0, 0.0), add)
    }
}

// ---------------------------------------------------------------------------
// Per-element expressions (the reference; SIMD tails use them too).

#[inline(always)]
fn sgd1(w: f32, g: f32, s: Step) -> f32 {
    let d = g * s.grad_scale + s.l2 * w + s.l1 * sgn(w);
    w - s.lr * d
}

#[inline(always)]
fn momentum1(w: f32, v: f32, g: f32, s: Step, mu: f32) -> (f32, f32) {
    let d = g * s.grad_scale + s.l2 * w + s.l1 * sgn(w);
    let v = mu * v - s.lr * d;
    (w + v, v)
}

#[inline(always)]
fn decay1(w: f32, lr: f32, l1: f32, l2: f32) -> f32 {
    w - lr * (l2 * w + l1 * sgn(w))
}

/// Combines the 8 lanes of a block in the documented tree.
#[inline(always)]
fn tree8(l: &[f64; SUM_LANES]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// Adds `w` (block-relative index `i` to lane `i % 8`) into the lanes.
#[inline(always)]
fn sums_lanes(w: &[f32], abs: &mut [f64; SUM_LANES], sq: &mut [f64; SUM_LANES]) {
    for (i, &x) in w.iter().enumerate() {
        let x = f64::from(x);
        abs[i % SUM_LANES] += x.abs();
        sq[i % SUM_LANES] += x * x;
    }
}

// ---------------------------------------------------------------------------
// Level dispatch for one chunk (the level is already known to be supported).

fn sgd_chunk(level: Level, w: &mut [f32], g: &[f32], s: Step) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx512 only when avx512f was detected at run time.
        Level::Avx512 => unsafe { avx512::sgd(w, g, s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx2 only when avx2 was detected at run time.
        Level::Avx2 => unsafe { avx2::sgd(w, g, s) },
        _ => scalar::sgd(w, g, s),
    }
}

fn momentum_chunk(level: Level, w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx512 only when avx512f was detected at run time.
        Level::Avx512 => unsafe { avx512::momentum(w, v, g, s, mu) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx2 only when avx2 was detected at run time.
        Level::Avx2 => unsafe { avx2::momentum(w, v, g, s, mu) },
        _ => scalar::momentum(w, v, g, s, mu),
    }
}

fn decay_chunk(level: Level, w: &mut [f32], lr: f32, l1: f32, l2: f32) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx512 only when avx512f was detected at run time.
        Level::Avx512 => unsafe { avx512::decay(w, lr, l1, l2) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx2 only when avx2 was detected at run time.
        Level::Avx2 => unsafe { avx2::decay(w, lr, l1, l2) },
        _ => scalar::decay(w, lr, l1, l2),
    }
}

fn scale_chunk(level: Level, x: &mut [f32], s: f32) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx512 only when avx512f was detected at run time.
        Level::Avx512 => unsafe { avx512::scale(x, s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx2 only when avx2 was detected at run time.
        Level::Avx2 => unsafe { avx2::scale(x, s) },
        _ => scalar::scale(x, s),
    }
}

fn scale_into_chunk(level: Level, dst: &mut [f32], src: &[f32], s: f32) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx512 only when avx512f was detected at run time.
        Level::Avx512 => unsafe { avx512::scale_into(dst, src, s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx2 only when avx2 was detected at run time.
        Level::Avx2 => unsafe { avx2::scale_into(dst, src, s) },
        _ => scalar::scale_into(dst, src, s),
    }
}

fn sums_block(level: Level, w: &[f32]) -> (f64, f64) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx512 only when avx512f was detected at run time.
        Level::Avx512 => unsafe { avx512::sums(w) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` returns Avx2 only when avx2 was detected at run time.
        Level::Avx2 => unsafe { avx2::sums(w) },
        _ => scalar::sums(w),
    }
}

// ---------------------------------------------------------------------------
// Scalar path.

mod scalar {
    use super::{SUM_LANES, Step, decay1, momentum1, sgd1, sums_lanes, tree8};

    pub(super) fn sgd(w: &mut [f32], g: &[f32], s: Step) {
        for (w, &g) in w.iter_mut().zip(g) {
            *w = sgd1(*w, g, s);
        }
    }

    pub(super) fn momentum(w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
        for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(g) {
            (*w, *v) = momentum1(*w, *v, g, s, mu);
        }
    }

    pub(super) fn decay(w: &mut [f32], lr: f32, l1: f32, l2: f32) {
        for w in w.iter_mut() {
            *w = decay1(*w, lr, l1, l2);
        }
    }

    pub(super) fn scale(x: &mut [f32], s: f32) {
        for x in x.iter_mut() {
            *x *= s;
        }
    }

    pub(super) fn scale_into(dst: &mut [f32], src: &[f32], s: f32) {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = x * s;
        }
    }

    pub(super) fn sums(w: &[f32]) -> (f64, f64) {
        let mut abs = [0.0f64; SUM_LANES];
        let mut sq = [0.0f64; SUM_LANES];
        sums_lanes(w, &mut abs, &mut sq);
        (tree8(&abs), tree8(&sq))
    }
}

// ---------------------------------------------------------------------------
// AVX2 path (8 f32 lanes; f64 sums in two 4-lane halves = lanes 0..4 and 4..8).

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{SUM_LANES, Step, decay1, momentum1, sgd1, sums_lanes, tree8};

    const L: usize = 8;

    /// Broadcast hyper-parameters.
    #[derive(Clone, Copy)]
    struct K {
        lr: __m256,
        gs: __m256,
        l1: __m256,
        l2: __m256,
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn k(s: Step) -> K {
        K {
            lr: _mm256_set1_ps(s.lr),
            gs: _mm256_set1_ps(s.grad_scale),
            l1: _mm256_set1_ps(s.l1),
            l2: _mm256_set1_ps(s.l2),
        }
    }

    /// `sgn(w)`: 1 where w > 0, -1 where w < 0, +0 elsewhere (ordered compares: NaN -> 0).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sgn(w: __m256) -> __m256 {
        let zero = _mm256_setzero_ps();
        let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(w, zero);
        let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(w, zero);
        _mm256_or_ps(
            _mm256_and_ps(gt, _mm256_set1_ps(1.0)),
            _mm256_and_ps(lt, _mm256_set1_ps(-1.0)),
        )
    }

    /// `d = ((g * gs) + (l2 * w)) + (l1 * sgn(w))`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn grad(w: __m256, g: __m256, k: K) -> __m256 {
        let t = _mm256_add_ps(_mm256_mul_ps(g, k.gs), _mm256_mul_ps(k.l2, w));
        _mm256_add_ps(t, _mm256_mul_ps(k.l1, sgn(w)))
    }

    /// # Safety
    /// The CPU must support AVX2; `w.len() == g.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sgd(w: &mut [f32], g: &[f32], s: Step) {
        let k = k(s);
        let (wv, wt) = w.as_chunks_mut::<L>();
        let (gv, gt) = g.as_chunks::<L>();
        for (w, g) in wv.iter_mut().zip(gv) {
            // SAFETY: `w` and `g` are arrays of exactly L = 8 f32 (unaligned access).
            unsafe {
                let wx = _mm256_loadu_ps(w.as_ptr());
                let gx = _mm256_loadu_ps(g.as_ptr());
                let r = _mm256_sub_ps(wx, _mm256_mul_ps(k.lr, grad(wx, gx, k)));
                _mm256_storeu_ps(w.as_mut_ptr(), r);
            }
        }
        for (w, &g) in wt.iter_mut().zip(gt) {
            *w = sgd1(*w, g, s);
        }
    }

    /// # Safety
    /// The CPU must support AVX2; `w`, `v`, `g` have the same length.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn momentum(w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
        let k = k(s);
        let m = _mm256_set1_ps(mu);
        let (wv, wt) = w.as_chunks_mut::<L>();
        let (vv, vt) = v.as_chunks_mut::<L>();
        let (gv, gt) = g.as_chunks::<L>();
        for ((w, v), g) in wv.iter_mut().zip(vv.iter_mut()).zip(gv) {
            // SAFETY: `w`, `v`, `g` are arrays of exactly L = 8 f32 (unaligned access).
            unsafe {
                let wx = _mm256_loadu_ps(w.as_ptr());
                let vx = _mm256_loadu_ps(v.as_ptr());
                let gx = _mm256_loadu_ps(g.as_ptr());
                let d = grad(wx, gx, k);
                let vn = _mm256_sub_ps(_mm256_mul_ps(m, vx), _mm256_mul_ps(k.lr, d));
                _mm256_storeu_ps(v.as_mut_ptr(), vn);
                _mm256_storeu_ps(w.as_mut_ptr(), _mm256_add_ps(wx, vn));
            }
        }
        for ((w, v), &g) in wt.iter_mut().zip(vt.iter_mut()).zip(gt) {
            (*w, *v) = momentum1(*w, *v, g, s, mu);
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn decay(w: &mut [f32], lr: f32, l1: f32, l2: f32) {
        let (lrv, l1v, l2v) = (_mm256_set1_ps(lr), _mm256_set1_ps(l1), _mm256_set1_ps(l2));
        let (wv, wt) = w.as_chunks_mut::<L>();
        for w in wv.iter_mut() {
            // SAFETY: `w` is an array of exactly L = 8 f32 (unaligned access).
            unsafe {
                let wx = _mm256_loadu_ps(w.as_ptr());
                let p = _mm256_add_ps(_mm256_mul_ps(l2v, wx), _mm256_mul_ps(l1v, sgn(wx)));
                _mm256_storeu_ps(w.as_mut_ptr(), _mm256_sub_ps(wx, _mm256_mul_ps(lrv, p)));
            }
        }
        for w in wt.iter_mut() {
            *w = decay1(*w, lr, l1, l2);
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scale(x: &mut [f32], s: f32) {
        let sv = _mm256_set1_ps(s);
        let (xv, xt) = x.as_chunks_mut::<L>();
        for x in xv.iter_mut() {
            // SAFETY: `x` is an array of exactly L = 8 f32 (unaligned access).
            unsafe {
                let r = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr()), sv);
                _mm256_storeu_ps(x.as_mut_ptr(), r);
            }
        }
        for x in xt.iter_mut() {
            *x *= s;
        }
    }

    /// # Safety
    /// The CPU must support AVX2; `dst.len() == src.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scale_into(dst: &mut [f32], src: &[f32], s: f32) {
        let sv = _mm256_set1_ps(s);
        let (dv, dt) = dst.as_chunks_mut::<L>();
        let (xv, xt) = src.as_chunks::<L>();
        for (d, x) in dv.iter_mut().zip(xv) {
            // SAFETY: `d` and `x` are arrays of exactly L = 8 f32 (unaligned access).
            unsafe {
                let r = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr()), sv);
                _mm256_storeu_ps(d.as_mut_ptr(), r);
            }
        }
        for (d, &x) in dt.iter_mut().zip(xt) {
            *d = x * s;
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums(w: &[f32]) -> (f64, f64) {
        let sign = _mm256_set1_pd(-0.0);
        let (mut a_lo, mut a_hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (mut q_lo, mut q_hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (wv, wt) = w.as_chunks::<SUM_LANES>();
        for w in wv {
            // SAFETY: `w` is an array of exactly SUM_LANES = 8 f32 (unaligned access).
            let x = unsafe { _mm256_loadu_ps(w.as_ptr()) };
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x));
            a_lo = _mm256_add_pd(a_lo, _mm256_andnot_pd(sign, lo));
            a_hi = _mm256_add_pd(a_hi, _mm256_andnot_pd(sign, hi));
            q_lo = _mm256_add_pd(q_lo, _mm256_mul_pd(lo, lo));
            q_hi = _mm256_add_pd(q_hi, _mm256_mul_pd(hi, hi));
        }
        let mut abs = [0.0f64; SUM_LANES];
        let mut sq = [0.0f64; SUM_LANES];
        // SAFETY: each array holds 8 f64; the stores write lanes 0..4 and 4..8.
        unsafe {
            _mm256_storeu_pd(abs.as_mut_ptr(), a_lo);
            _mm256_storeu_pd(abs.as_mut_ptr().add(4), a_hi);
            _mm256_storeu_pd(sq.as_mut_ptr(), q_lo);
            _mm256_storeu_pd(sq.as_mut_ptr().add(4), q_hi);
        }
        // The tail starts at a multiple of 8, so its element j belongs to lane j.
        sums_lanes(wt, &mut abs, &mut sq);
        (tree8(&abs), tree8(&sq))
    }
}

// ---------------------------------------------------------------------------
// AVX-512 path (16 f32 lanes; f64 sums in 8 lanes).

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{SUM_LANES, Step, decay1, momentum1, sgd1, sums_lanes, tree8};

    const L: usize = 16;

    /// Broadcast hyper-parameters.
    #[derive(Clone, Copy)]
    struct K {
        lr: __m512,
        gs: __m512,
        l1: __m512,
        l2: __m512,
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn k(s: Step) -> K {
        K {
            lr: _mm512_set1_ps(s.lr),
            gs: _mm512_set1_ps(s.grad_scale),
            l1: _mm512_set1_ps(s.l1),
            l2: _mm512_set1_ps(s.l2),
        }
    }

    /// `sgn(w)`: 1 where w > 0, -1 where w < 0, +0 elsewhere (ordered compares: NaN -> 0).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sgn(w: __m512) -> __m512 {
        let zero = _mm512_setzero_ps();
        let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(w, zero);
        let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(w, zero);
        let neg = _mm512_maskz_mov_ps(lt, _mm512_set1_ps(-1.0));
        _mm512_mask_mov_ps(neg, gt, _mm512_set1_ps(1.0))
    }

    /// `d = ((g * gs) + (l2 * w)) + (l1 * sgn(w))`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn grad(w: __m512, g: __m512, k: K) -> __m512 {
        let t = _mm512_add_ps(_mm512_mul_ps(g, k.gs), _mm512_mul_ps(k.l2, w));
        _mm512_add_ps(t, _mm512_mul_ps(k.l1, sgn(w)))
    }

    /// # Safety
    /// The CPU must support AVX-512F; `w.len() == g.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sgd(w: &mut [f32], g: &[f32], s: Step) {
        let k = k(s);
        let (wv, wt) = w.as_chunks_mut::<L>();
        let (gv, gt) = g.as_chunks::<L>();
        for (w, g) in wv.iter_mut().zip(gv) {
            // SAFETY: `w` and `g` are arrays of exactly L = 16 f32 (unaligned access).
            unsafe {
                let wx = _mm512_loadu_ps(w.as_ptr());
                let gx = _mm512_loadu_ps(g.as_ptr());
                let r = _mm512_sub_ps(wx, _mm512_mul_ps(k.lr, grad(wx, gx, k)));
                _mm512_storeu_ps(w.as_mut_ptr(), r);
            }
        }
        for (w, &g) in wt.iter_mut().zip(gt) {
            *w = sgd1(*w, g, s);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `w`, `v`, `g` have the same length.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn momentum(w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
        let k = k(s);
        let m = _mm512_set1_ps(mu);
        let (wv, wt) = w.as_chunks_mut::<L>();
        let (vv, vt) = v.as_chunks_mut::<L>();
        let (gv, gt) = g.as_chunks::<L>();
        for ((w, v), g) in wv.iter_mut().zip(vv.iter_mut()).zip(gv) {
            // SAFETY: `w`, `v`, `g` are arrays of exactly L = 16 f32 (unaligned access).
            unsafe {
                let wx = _mm512_loadu_ps(w.as_ptr());
                let vx = _mm512_loadu_ps(v.as_ptr());
                let gx = _mm512_loadu_ps(g.as_ptr());
                let d = grad(wx, gx, k);
                let vn = _mm512_sub_ps(_mm512_mul_ps(m, vx), _mm512_mul_ps(k.lr, d));
                _mm512_storeu_ps(v.as_mut_ptr(), vn);
                _mm512_storeu_ps(w.as_mut_ptr(), _mm512_add_ps(wx, vn));
            }
        }
        for ((w, v), &g) in wt.iter_mut().zip(vt.iter_mut()).zip(gt) {
            (*w, *v) = momentum1(*w, *v, g, s, mu);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn decay(w: &mut [f32], lr: f32, l1: f32, l2: f32) {
        let (lrv, l1v, l2v) = (_mm512_set1_ps(lr), _mm512_set1_ps(l1), _mm512_set1_ps(l2));
        let (wv, wt) = w.as_chunks_mut::<L>();
        for w in wv.iter_mut() {
            // SAFETY: `w` is an array of exactly L = 16 f32 (unaligned access).
            unsafe {
                let wx = _mm512_loadu_ps(w.as_ptr());
                let p = _mm512_add_ps(_mm512_mul_ps(l2v, wx), _mm512_mul_ps(l1v, sgn(wx)));
                _mm512_storeu_ps(w.as_mut_ptr(), _mm512_sub_ps(wx, _mm512_mul_ps(lrv, p)));
            }
        }
        for w in wt.iter_mut() {
            *w = decay1(*w, lr, l1, l2);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scale(x: &mut [f32], s: f32) {
        let sv = _mm512_set1_ps(s);
        let (xv, xt) = x.as_chunks_mut::<L>();
        for x in xv.iter_mut() {
            // SAFETY: `x` is an array of exactly L = 16 f32 (unaligned access).
            unsafe {
                let r = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr()), sv);
                _mm512_storeu_ps(x.as_mut_ptr(), r);
            }
        }
        for x in xt.iter_mut() {
            *x *= s;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `dst.len() == src.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scale_into(dst: &mut [f32], src: &[f32], s: f32) {
        let sv = _mm512_set1_ps(s);
        let (dv, dt) = dst.as_chunks_mut::<L>();
        let (xv, xt) = src.as_chunks::<L>();
        for (d, x) in dv.iter_mut().zip(xv) {
            // SAFETY: `d` and `x` are arrays of exactly L = 16 f32 (unaligned access).
            unsafe {
                let r = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr()), sv);
                _mm512_storeu_ps(d.as_mut_ptr(), r);
            }
        }
        for (d, &x) in dt.iter_mut().zip(xt) {
            *d = x * s;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sums(w: &[f32]) -> (f64, f64) {
        let mut a = _mm512_setzero_pd();
        let mut q = _mm512_setzero_pd();
        let (wv, wt) = w.as_chunks::<SUM_LANES>();
        for w in wv {
            // SAFETY: `w` is an array of exactly SUM_LANES = 8 f32 (unaligned access).
            let x = _mm512_cvtps_pd(unsafe { _mm256_loadu_ps(w.as_ptr()) });
            a = _mm512_add_pd(a, _mm512_abs_pd(x));
            q = _mm512_add_pd(q, _mm512_mul_pd(x, x));
        }
        let mut abs = [0.0f64; SUM_LANES];
        let mut sq = [0.0f64; SUM_LANES];
        // SAFETY: each array holds exactly 8 f64, one __m512d.
        unsafe {
            _mm512_storeu_pd(abs.as_mut_ptr(), a);
            _mm512_storeu_pd(sq.as_mut_ptr(), q);
        }
        // The tail starts at a multiple of 8, so its element j belongs to lane j.
        sums_lanes(wt, &mut abs, &mut sq);
        (tree8(&abs), tree8(&sq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Step = Step {
        lr: 0.5,
        grad_scale: 0.25,
        l1: 0.125,
        l2: 0.5,
    };

    #[test]
    fn sgn_of_zeros_and_nan_is_zero() {
        assert_eq!(sgn(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(sgn(-0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(sgn(f32::NAN).to_bits(), 0.0f32.to_bits());
        assert_eq!(sgn(1e-45), 1.0);
        assert_eq!(sgn(-1e-45), -1.0);
        assert_eq!(sgn(f32::INFINITY), 1.0);
        assert_eq!(sgn(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn usable_never_exceeds_request_and_is_supported() {
        for l in [Level::Scalar, Level::Avx2, Level::Avx512] {
            let u = usable(l);
            assert!(supported(u));
            if supported(l) {
                assert_eq!(u, l);
            }
        }
        assert_eq!(usable(Level::Scalar), Level::Scalar);
    }

    #[test]
    fn element_expressions_match_closed_form() {
        // d = 4*0.25 + 0.5*1 + 0.125*1 = 1.625; w = 1 - 0.5*1.625 = 0.1875.
        assert_eq!(sgd1(1.0, 4.0, S), 0.1875);
        // decay: 1 - 0.5*(0.5 + 0.125) = 0.6875.
        assert_eq!(decay1(1.0, 0.5, 0.125, 0.5), 0.6875);
        // momentum from v = 1, mu = 0.5: v = 0.5 - 0.8125 = -0.3125; w = 0.6875.
        assert_eq!(momentum1(1.0, 1.0, 4.0, S, 0.5), (0.6875, -0.3125));
    }

    #[test]
    fn lane_tree_matches_documented_order() {
        // 9 elements: lane 0 gets elements 0 and 8.
        let w = [1.0f32, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 0.5];
        let (a, q) = scalar::sums(&w);
        assert_eq!(a, 36.5);
        assert_eq!(q, 204.25);
    }

    #[test]
    fn decay_noop_when_both_penalties_zero_even_for_non_finite() {
        let mut w = [f32::INFINITY, f32::NAN, -0.0, 1.5];
        let before: Vec<u32> = w.iter().map(|x| x.to_bits()).collect();
        decay(&mut w, 0.5, 0.0, 0.0);
        let after: Vec<u32> = w.iter().map(|x| x.to_bits()).collect();
        assert_eq!(before, after);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn sgd_rejects_mismatched_lengths() {
        let mut w = [0.0f32; 3];
        sgd(&mut w, &[0.0; 2], S);
    }
}
