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
//! Every kernel is written once over [`crate::simd`]'s lanes (8 with AVX2, 16 with
//! AVX-512, 1 on the scalar path; a tail runs as one partial vector, the same
//! expression per lane). The safe entry points run [`simd::level`]; the `*_with`
//! variants take the level explicitly (tests and benches) and panic on a level the
//! CPU does not run, as every kernel family does.
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
//! `grad_scale = 1 / B`) against strategy B (the G-free path above): B wins at batch 10
//! and at batch 100, by 1-5 % (at most one W-sized pass: the gemm dominates). A third
//! variant, decaying and accumulating W in row blocks of 32 so each block stays in L2,
//! was no faster (many small gemm calls) and is not offered. So the model uses
//! strategy B when momentum is off, and [`sgd_momentum`] with a materialised `G`
//! otherwise (the velocity needs `G`). When l1 = l2 = 0, [`decay`] returns at once and
//! B is a single gemm.
//!
//! Why fused: one pass over `W` (and `G`, `V`) instead of separate penalty, gradient
//! and step passes, 3-4x faster than the unfused baseline. The measurements (strategy
//! A against B, fused against unfused) and the commands that repeat them are in
//! `benches/README.md`, section "Kernels: update".

use rayon::prelude::*;

use crate::simd::slices::{Op1, Op2, map, map_to, zip_map};
use crate::simd::{self, F64x8, Lanes, Level, Scalar, leveled};

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
    sgn_v(Scalar, x)
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

internal!(
    /// [`sgd`] on an explicit SIMD level.
    ///
    /// # Panics
    /// If `w` and `g` differ in length, or if this CPU does not run `level`.
    pub fn sgd_with(level: Level, w: &mut [f32], g: &[f32], s: Step) {
        simd::require(level);
        assert_eq!(w.len(), g.len(), "update::sgd: w and g lengths differ");
        crate::trace::update(w.len() >= PAR_MIN);
        if w.len() < PAR_MIN {
            sgd_at(level, w, g, s);
        } else {
            // Same bits for any pool: an elementwise pass over fixed chunks.
            w.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .for_each(|(w, g)| sgd_at(level, w, g, s));
        }
    }
);

/// `V <- mu * V - lr * (G * grad_scale + l2 * W + l1 * sgn(W)); W <- W + V`, one pass.
///
/// Exactly `d` as in [`sgd`], then `v = (mu * v) - (lr * d); w = w + v`.
///
/// # Panics
/// If `w`, `v` and `g` differ in length.
pub fn sgd_momentum(w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
    sgd_momentum_with(simd::level(), w, v, g, s, mu);
}

internal!(
    /// [`sgd_momentum`] on an explicit SIMD level.
    ///
    /// # Panics
    /// If `w`, `v` and `g` differ in length, or if this CPU does not run `level`.
    pub fn sgd_momentum_with(
        level: Level,
        w: &mut [f32],
        v: &mut [f32],
        g: &[f32],
        s: Step,
        mu: f32,
    ) {
        simd::require(level);
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
        let m = Momentum { step: s, mu };
        crate::trace::update(w.len() >= PAR_MIN);
        if w.len() < PAR_MIN {
            momentum_at(level, w, v, g, m);
        } else {
            // Same bits for any pool: an elementwise pass over fixed chunks.
            w.par_chunks_mut(CHUNK)
                .zip(v.par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|((w, v), g)| momentum_at(level, w, v, g, m));
        }
    }
);

/// Penalty-only pass of the G-free path: `W <- W - lr * (l2 * W + l1 * sgn(W))`.
///
/// Exactly `w = w - lr * ((l2 * w) + (l1 * sgn(w)))`. When `l1 == 0 && l2 == 0` it
/// returns at once and `W` is bit-for-bit unchanged.
pub fn decay(w: &mut [f32], lr: f32, l1: f32, l2: f32) {
    decay_with(simd::level(), w, lr, l1, l2);
}

internal!(
    /// [`decay`] on an explicit SIMD level.
    ///
    /// # Panics
    /// If this CPU does not run `level`.
    pub fn decay_with(level: Level, w: &mut [f32], lr: f32, l1: f32, l2: f32) {
        simd::require(level);
        if l1 == 0.0 && l2 == 0.0 {
            return;
        }
        let s = Step {
            lr,
            grad_scale: 0.0,
            l1,
            l2,
        };
        crate::trace::update(w.len() >= PAR_MIN);
        if w.len() < PAR_MIN {
            decay_at(level, w, s);
        } else {
            // Same bits for any pool: an elementwise pass over fixed chunks.
            w.par_chunks_mut(CHUNK).for_each(|w| decay_at(level, w, s));
        }
    }
);

/// [`decay`] of a row-major weight matrix with `cols` columns, each thread of a pool
/// taking its pinned columns ([`crate::pinned`]): the columns the same thread owns in
/// the products `X W` and `W += X^T D`, so the pass runs on the cores whose caches hold
/// them. Same bits as [`decay`] (an elementwise pass).
///
/// # Panics
/// If `cols` is 0 or does not divide `w.len()`.
pub fn decay_cols(w: &mut [f32], cols: usize, lr: f32, l1: f32, l2: f32) {
    assert!(
        cols > 0 && w.len().is_multiple_of(cols),
        "update::decay_cols: {} values are not rows of {cols}",
        w.len()
    );
    let threads = crate::pinned::threads();
    if threads == 1 || w.len() < PAR_MIN || (l1 == 0.0 && l2 == 0.0) {
        return decay(w, lr, l1, l2);
    }
    let level = simd::level();
    let s = Step {
        lr,
        grad_scale: 0.0,
        l1,
        l2,
    };
    crate::trace::update(true);
    let rows = w.len() / cols;
    let base = SharedW(w.as_mut_ptr());
    crate::pinned::run(threads, |t| {
        let r = crate::pinned::cols(cols, threads, t);
        for i in 0..rows {
            // SAFETY: `w` holds rows x cols values and stays mutably borrowed until
            // `run` returns (after every thread has finished); the pinned ranges of
            // different threads are disjoint, so no element is touched twice.
            let seg =
                unsafe { std::slice::from_raw_parts_mut(base.at(i * cols + r.start), r.len()) };
            decay_at(level, seg, s);
        }
    });
}

/// A weight matrix's base pointer, shared by the threads that update its disjoint
/// column ranges.
#[derive(Clone, Copy)]
struct SharedW(*mut f32);

impl SharedW {
    /// The address of element `i` (the caller keeps it within the slice).
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

// SAFETY: dereferenced only for disjoint ranges of a slice that outlives the broadcast
// (see `decay_cols`).
unsafe impl Send for SharedW {}
// SAFETY: as above; threads share only the base address.
unsafe impl Sync for SharedW {}

/// `x <- x * s`.
pub fn scale(x: &mut [f32], s: f32) {
    scale_with(simd::level(), x, s);
}

internal!(
    /// [`scale`] on an explicit SIMD level.
    ///
    /// # Panics
    /// If this CPU does not run `level`.
    pub fn scale_with(level: Level, x: &mut [f32], s: f32) {
        simd::require(level);
        crate::trace::update(x.len() >= PAR_MIN);
        if x.len() < PAR_MIN {
            scale_at(level, x, s);
        } else {
            // Same bits for any pool: an elementwise pass over fixed chunks.
            x.par_chunks_mut(CHUNK).for_each(|x| scale_at(level, x, s));
        }
    }
);

/// `dst <- src * s` (out of place: keeps `src`, e.g. a delta still needed for the
/// bias gradient). Same bits as [`scale`] on a copy of `src`.
///
/// # Panics
/// If `dst` and `src` differ in length.
pub fn scale_into(dst: &mut [f32], src: &[f32], s: f32) {
    scale_into_with(simd::level(), dst, src, s);
}

internal!(
    /// [`scale_into`] on an explicit SIMD level.
    ///
    /// # Panics
    /// If `dst` and `src` differ in length, or if this CPU does not run `level`.
    pub fn scale_into_with(level: Level, dst: &mut [f32], src: &[f32], s: f32) {
        simd::require(level);
        assert_eq!(dst.len(), src.len(), "update::scale_into: lengths differ");
        crate::trace::update(dst.len() >= PAR_MIN);
        if dst.len() < PAR_MIN {
            scale_into_at(level, dst, src, s);
        } else {
            // Same bits for any pool: an elementwise pass over fixed chunks.
            dst.par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK))
                .for_each(|(d, x)| scale_into_at(level, d, x, s));
        }
    }
);

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

internal!(
    /// [`penalty_sums`] on an explicit SIMD level.
    ///
    /// # Panics
    /// If this CPU does not run `level`.
    pub fn penalty_sums_with(level: Level, w: &[f32]) -> (f64, f64) {
        simd::require(level);
        let add = |acc: (f64, f64), b: (f64, f64)| (acc.0 + b.0, acc.1 + b.1);
        if w.len() < PAR_MIN {
            w.chunks(SUM_BLOCK)
                .map(|b| sums_at(level, b))
                .fold((0.0, 0.0), add)
        } else {
            // Same bits for any pool: blocks are reduced on their own, then added in block
            // order on this thread.
            let blocks: Vec<(f64, f64)> =
                w.par_chunks(SUM_BLOCK).map(|b| sums_at(level, b)).collect();
            blocks.into_iter().fold((0.0, 0.0), add)
        }
    }
);

// ---------------------------------------------------------------------------
// The kernels, written once over `Lanes` (one chunk each).

leveled!(
    /// [`sgd`] on one chunk.
    fn sgd_at(w: &mut [f32], g: &[f32], s: Step) => sgd_chunk
);
leveled!(
    /// [`sgd_momentum`] on one chunk.
    fn momentum_at(w: &mut [f32], v: &mut [f32], g: &[f32], m: Momentum) => momentum_chunk
);
leveled!(
    /// [`decay`] on one chunk (`s.grad_scale` unused).
    fn decay_at(w: &mut [f32], s: Step) => decay_chunk
);
leveled!(
    /// [`scale`] on one chunk.
    fn scale_at(x: &mut [f32], c: f32) => scale_chunk
);
leveled!(
    /// [`scale_into`] on one chunk.
    fn scale_into_at(dst: &mut [f32], src: &[f32], c: f32) => scale_into_chunk
);
leveled!(
    /// [`penalty_sums`] of one block.
    fn sums_at(w: &[f32]) -> (f64, f64) => sums_block
);

/// The step and momentum of [`sgd_momentum`].
#[derive(Clone, Copy, Debug)]
struct Momentum {
    step: Step,
    mu: f32,
}

/// `sgn(w)` per lane: 1 where w > 0, -1 where w < 0, +0 elsewhere (ordered compares:
/// NaN gives 0).
#[inline(always)]
fn sgn_v<S: Lanes>(s: S, w: S::V) -> S::V {
    let zero = s.zero();
    let neg = s.select(s.lt(w, zero), s.splat(-1.0), zero);
    s.select(s.gt(w, zero), s.splat(1.0), neg)
}

/// The step's constants in every lane.
#[derive(Clone, Copy)]
struct Coeffs<V> {
    lr: V,
    gs: V,
    l1: V,
    l2: V,
}

impl<V: Copy> Coeffs<V> {
    #[inline(always)]
    fn new<S: Lanes<V = V>>(s: S, st: Step) -> Self {
        Coeffs {
            lr: s.splat(st.lr),
            gs: s.splat(st.grad_scale),
            l1: s.splat(st.l1),
            l2: s.splat(st.l2),
        }
    }

    /// `d = ((g * gs) + (l2 * w)) + (l1 * sgn(w))`.
    #[inline(always)]
    fn grad<S: Lanes<V = V>>(&self, s: S, w: V, g: V) -> V {
        let t = s.add(s.mul(g, self.gs), s.mul(self.l2, w));
        s.add(t, s.mul(self.l1, sgn_v(s, w)))
    }

    /// `(w + v', v')` with `v' = (mu * v) - (lr * d)`.
    #[inline(always)]
    fn momentum<S: Lanes<V = V>>(&self, s: S, mu: V, w: V, v: V, g: V) -> (V, V) {
        let vn = s.sub(s.mul(mu, v), s.mul(self.lr, self.grad(s, w, g)));
        (s.add(w, vn), vn)
    }
}

/// `w - lr * d` as an op of `(g, w)`.
struct SgdOp<V>(Coeffs<V>);

impl<S: Lanes> Op2<S> for SgdOp<S::V> {
    #[inline(always)]
    fn f(&self, s: S, g: S::V, w: S::V) -> S::V {
        s.sub(w, s.mul(self.0.lr, self.0.grad(s, w, g)))
    }
}

/// `w - lr * ((l2 * w) + (l1 * sgn(w)))`.
struct DecayOp<V>(Coeffs<V>);

impl<S: Lanes> Op1<S> for DecayOp<S::V> {
    #[inline(always)]
    fn f(&self, s: S, w: S::V) -> S::V {
        let k = &self.0;
        let p = s.add(s.mul(k.l2, w), s.mul(k.l1, sgn_v(s, w)));
        s.sub(w, s.mul(k.lr, p))
    }
}

/// `x * c`.
struct ScaleOp<V>(V);

impl<S: Lanes> Op1<S> for ScaleOp<S::V> {
    #[inline(always)]
    fn f(&self, s: S, x: S::V) -> S::V {
        s.mul(x, self.0)
    }
}

#[inline(always)]
fn sgd_chunk<S: Lanes>(s: S, w: &mut [f32], g: &[f32], st: Step) {
    zip_map(s, &SgdOp(Coeffs::new(s, st)), g, w);
}

#[inline(always)]
fn decay_chunk<S: Lanes>(s: S, w: &mut [f32], st: Step) {
    map(s, &DecayOp(Coeffs::new(s, st)), w);
}

#[inline(always)]
fn scale_chunk<S: Lanes>(s: S, x: &mut [f32], c: f32) {
    map(s, &ScaleOp(s.splat(c)), x);
}

#[inline(always)]
fn scale_into_chunk<S: Lanes>(s: S, dst: &mut [f32], src: &[f32], c: f32) {
    map_to(s, &ScaleOp(s.splat(c)), src, dst);
}

/// `v = (mu * v) - (lr * d); w = w + v` on full vectors, then one partial vector.
#[inline(always)]
fn momentum_chunk<S: Lanes>(s: S, w: &mut [f32], v: &mut [f32], g: &[f32], m: Momentum) {
    debug_assert!(w.len() == v.len() && w.len() == g.len());
    let k = Coeffs::new(s, m.step);
    let mu = s.splat(m.mu);
    let mut wc = w.chunks_exact_mut(S::LANES);
    let mut vc = v.chunks_exact_mut(S::LANES);
    let mut gc = g.chunks_exact(S::LANES);
    for ((wv, vv), gv) in (&mut wc).zip(&mut vc).zip(&mut gc) {
        let (wn, vn) = k.momentum(s, mu, s.load(wv), s.load(vv), s.load(gv));
        s.store(vn, vv);
        s.store(wn, wv);
    }
    let (wt, vt) = (wc.into_remainder(), vc.into_remainder());
    if !wt.is_empty() {
        let (w, v, g) = (
            s.load_part(wt),
            s.load_part(vt),
            s.load_part(gc.remainder()),
        );
        let (wn, vn) = k.momentum(s, mu, w, v, g);
        s.store_part(vn, vt);
        s.store_part(wn, wt);
    }
}

/// The sums of one block in the documented lane order: element `i` into lane `i % 8`
/// of eight f64 partial sums, in index order.
#[inline(always)]
fn sums_block<S: F64x8>(s: S, w: &[f32]) -> (f64, f64) {
    let (full, tail) = w.as_chunks::<SUM_LANES>();
    let (mut abs, mut sq) = (s.zero_f64x8(), s.zero_f64x8());
    for c in full {
        let x = s.widen(c);
        abs = s.add_f64x8(abs, s.abs_f64x8(x));
        sq = s.add_f64x8(sq, s.mul_f64x8(x, x));
    }
    let (mut abs, mut sq) = (s.to_array(abs), s.to_array(sq));
    // The tail starts at a multiple of 8, so its element j belongs to lane j.
    for (l, &x) in tail.iter().enumerate() {
        let x = f64::from(x);
        abs[l] += x.abs();
        sq[l] += x * x;
    }
    (tree8(&abs), tree8(&sq))
}

/// Combines the 8 lanes of a block in the documented tree.
#[inline(always)]
fn tree8(l: &[f64; SUM_LANES]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

#[cfg(test)]
mod tests {

    /// The pinned column pass gives the bits of the plain pass in pools of 1, 2 and 3
    /// threads (ranges cut mid-row, a column count that is no multiple of 16 or of the
    /// threads), including NaN and infinite weights, and leaves a zero penalty alone.
    #[test]
    fn decay_cols_equals_decay_in_any_pool() {
        let (rows, cols) = (37, 803);
        let w0: Vec<f32> = (0..rows * cols)
            .map(|i| match i % 997 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                r => (r as f32 - 498.0) * 1e-3,
            })
            .collect();
        let mut want = w0.clone();
        decay(&mut want, 0.1, 1e-3, 1e-4);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut w = w0.clone();
            let before = crate::trace::counts();
            pool.install(|| decay_cols(&mut w, cols, 0.1, 1e-3, 1e-4));
            assert!(crate::trace::counts().since(&before).update_calls >= 1);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w), bits(&want), "{threads} threads");
            pool.install(|| decay_cols(&mut w, cols, 0.1, 0.0, 0.0));
            assert_eq!(bits(&w), bits(&want), "{threads} threads, zero penalty");
        }
    }

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
    fn element_expressions_match_closed_form() {
        // d = 4*0.25 + 0.5*1 + 0.125*1 = 1.625; w = 1 - 0.5*1.625 = 0.1875.
        let mut w = [1.0];
        sgd_chunk(Scalar, &mut w, &[4.0], S);
        assert_eq!(w, [0.1875]);
        // decay: 1 - 0.5*(0.5 + 0.125) = 0.6875.
        let mut w = [1.0];
        decay_chunk(Scalar, &mut w, S);
        assert_eq!(w, [0.6875]);
        // momentum from v = 1, mu = 0.5: v = 0.5 - 0.8125 = -0.3125; w = 0.6875.
        let (mut w, mut v) = ([1.0], [1.0]);
        let m = Momentum { step: S, mu: 0.5 };
        momentum_chunk(Scalar, &mut w, &mut v, &[4.0], m);
        assert_eq!((w, v), ([0.6875], [-0.3125]));
    }

    #[test]
    fn lane_tree_matches_documented_order() {
        // 9 elements: lane 0 gets elements 0 and 8.
        let w = [1.0f32, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 0.5];
        let (a, q) = sums_block(Scalar, &w);
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
