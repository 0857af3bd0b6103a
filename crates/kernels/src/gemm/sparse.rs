//! Zero-skipping GEMM kernels: `C (+)= op(A) B` where `op(A)` has many exact zeros (a
//! layer's input after dropout or ReLU, MNIST's background pixels), with the bits of the
//! dense kernels (module `direct`) and so of matrixmultiply.
//!
//! # Why skipping zeros keeps the bits
//!
//! Every element of `C` is built from chunk sums `s = +0; s = fma(op(A)_ip, B_pj, s)` over
//! `p` in increasing order within chunks of [`KC`], merged into `C` once per chunk. A
//! term with `op(A)_ip = ±0` and a finite `B_pj` has the exact product `±0`, so its step
//! leaves the value of `s` unchanged; at most it turns `s = -0` into `+0`. A chain that
//! starts at `+0` reaches `-0` only through a step whose exact result is `-0` or a
//! negative value that rounds to it (underflow), and the zero-skipping chain does every
//! step with a nonzero `op(A)_ip`. Hence the skipping chain ends at the dense chain's
//! value, and the two can differ only in the sign of a zero: the skipping chain at `-0`
//! where a skipped term turned the dense one into `+0` (never the other way round).
//! The kernels therefore test every chunk sum for `-0` and recompute those elements
//! (rare: it takes products below `1e-45`) with the dense chain. Every element is then
//! the dense result bit for bit, whatever the pattern of zeros.
//!
//! Not covered: an infinite or NaN `B_pj` facing a zero `op(A)_ip` (`0 * inf` is NaN in
//! the dense product and skipped here). Only a diverged run has such weights or deltas,
//! and it is reported as diverged either way. Which products take this path depends on
//! the zeros of `op(A)`, never on the thread count, so results stay independent of it.
//!
//! # Layout
//!
//! A [`Pattern`] lists, for every row `i` of `op(A)` and block `q` of [`PB`] consecutive
//! `p` (blocks never straddle a chunk), the `p` of the block with `op(A)_ip != 0`, in
//! increasing order. The kernel runs the columns of `C` in strips of up to [`VMAX`]
//! vectors (balanced, the last one masked); per strip and chunk, per block of `B`'s rows
//! (`PB x 128` floats, 16 KB: it stays in L1 while every row of `op(A)` uses it), per
//! row with entries in the block: `V` accumulators loaded from a per-thread scratch row
//! (or `+0` at the row's first entry of the chunk), per listed `p` one broadcast of
//! `op(A)_ip`, `V` loads of `B`'s row `p` and `V` FMAs, and the accumulators stored
//! back. Storing and reloading an accumulator does not change its value, so each
//! element still runs the chain above; at the end of a chunk the scratch rows are
//! checked for `-0` and merged into `C`.
//!
//! Without the blocks (each row streaming the whole strip of `B` from L2) the kernel
//! ran at a third of the dense kernels' rate per FMA; see the `sparse` bench.

// Off x86-64 only the scalar reference is used (no SIMD instantiation).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::cell::RefCell;
use std::cmp::min;

use super::direct::{Block, KC, Simd, merge};

/// Vectors of columns per strip at most (8 accumulators: enough independent FMA chains
/// to hide the FMA latency, with room for the broadcast and the loads).
pub(crate) const VMAX: usize = 4;

/// Rows of `B` per block for NN products (`B` = the weights, `k` large): 64 rows of a
/// 128-column strip are 32 KB (measured best of 32, 64 and 128 with strips of 4, 6 and
/// 8 vectors). A multiple of every vector width, dividing [`KC`].
pub(crate) const PB: usize = 64;

/// Rows of `B` per block for TN products (`B` = the deltas, `k` = the batch): one block
/// per chunk, so each row's accumulators stay in registers for the whole chunk.
pub(crate) const PB_TN: usize = KC;

/// Vectors per strip for TN products: 4 (64 columns; a batch of 100 rows is 25 KB of
/// `B`, in L1).
pub(crate) const VMAX_TN: usize = 4;

/// The nonzero pattern of `op(A)`: for row `i` and block `q` (`nb` blocks of [`PB`]),
/// the column indices `p` with `op(A)_ip != 0` are `idx[lo[e]..hi[e]]`, `e = i nb + q`,
/// in increasing order, and `val[t] = op(A)_ip` for `p = idx[t]` (a copy, so the kernel
/// reads `op(A)` sequentially).
#[derive(Debug, Default)]
pub(crate) struct Pattern {
    idx: Vec<u32>,
    val: Vec<f32>,
    lo: Vec<u32>,
    hi: Vec<u32>,
    nb: usize,
    pb: usize,
}

/// A thread's accumulator rows (`rows x VMAX x 16` floats) and their "holds a partial
/// sum of this chunk" flags.
#[derive(Debug, Default)]
struct Scratch {
    acc: Vec<f32>,
    live: Vec<bool>,
}

thread_local! {
    /// Per-thread pattern buffer, kept between calls (taken out while in use, so a
    /// nested call on the same thread finds an empty one instead of a borrowed one).
    static PATTERN: RefCell<Pattern> = RefCell::new(Pattern::default());
    /// Per-thread accumulator rows, likewise.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Takes this thread's pattern buffer (put it back with [`put_back`]).
pub(crate) fn take() -> Pattern {
    PATTERN.with_borrow_mut(std::mem::take)
}

/// Returns a buffer taken with [`take`], keeping the larger of the two allocations.
pub(crate) fn put_back(p: Pattern) {
    PATTERN.with_borrow_mut(|q| {
        if p.idx.capacity() >= q.idx.capacity() {
            *q = p;
        }
    });
}

/// Grows this thread's buffers to hold patterns of `entries` indices and accumulator
/// rows for `rows` rows (see [`super::reserve_thread_buffers`]).
pub(crate) fn reserve(entries: usize, rows: usize) {
    PATTERN.with_borrow_mut(|p| {
        p.fit(entries);
    });
    SCRATCH.with_borrow_mut(|s| s.grow(rows));
}

impl Scratch {
    fn grow(&mut self, rows: usize) {
        if self.live.len() < rows {
            self.live.resize(rows, false);
            self.acc.resize(rows * VMAX * 16, 0.0);
        }
    }
}

impl Pattern {
    /// Grows `idx` and `val` to at least `entries`.
    fn fit(&mut self, entries: usize) {
        if self.idx.len() < entries {
            self.idx.resize(entries, 0);
            self.val.resize(entries, 0.0);
        }
    }

    /// The pattern of `rows x k` row-major `A` (`a[i lda + p]`), compacted.
    ///
    /// # Safety
    /// `a[i lda + p]` must be readable for `i < rows`, `p < k`; `k <= u32::MAX` and
    /// `rows k <= u32::MAX`.
    #[inline(always)]
    pub(crate) unsafe fn build_rows<S: Simd>(
        &mut self,
        s: S,
        a: *const f32,
        lda: usize,
        rows: usize,
        k: usize,
    ) {
        let w = S::W;
        let nb = k.div_ceil(PB);
        self.nb = nb;
        self.pb = PB;
        self.lo.clear();
        self.hi.clear();
        let mut n = 0usize;
        for i in 0..rows {
            // SAFETY: row i of A is readable (caller).
            let row = unsafe { a.add(i * lda) };
            for q in 0..nb {
                let (p0, p1) = (q * PB, min(q * PB + PB, k));
                self.lo.push(n as u32);
                let mut p = p0;
                while p < p1 {
                    if self.idx.len() < n + w {
                        self.fit((n + w).max(2 * self.idx.len()));
                    }
                    // SAFETY: p + w <= p1 <= k (or one element p < k) is readable;
                    // idx and val have at least n + w entries (just ensured).
                    unsafe {
                        let dst = self.idx.as_mut_ptr().add(n);
                        let vals = self.val.as_mut_ptr().add(n);
                        if p + w <= p1 {
                            n += s.compress_nonzero(row.add(p), p as u32, dst, vals);
                            p += w;
                        } else {
                            let x = *row.add(p);
                            *dst = p as u32;
                            *vals = x;
                            n += usize::from(x != 0.0);
                            p += 1;
                        }
                    }
                }
                self.hi.push(n as u32);
            }
        }
    }

    /// The pattern of `op(A) = A^T` for `A` stored `k x rows` (`op(A)_ip = a[p lda + i]`),
    /// row `i`'s entries of block `q` listed from `i k + q PB_TN`.
    ///
    /// # Safety
    /// `a[p lda + i]` must be readable for `p < k`, `i < rows`; `rows k <= u32::MAX`.
    #[inline(always)]
    pub(crate) unsafe fn build_cols<S: Simd>(
        &mut self,
        s: S,
        a: *const f32,
        lda: usize,
        rows: usize,
        k: usize,
    ) {
        let w = S::W;
        let nb = k.div_ceil(PB_TN);
        self.nb = nb;
        self.pb = PB_TN;
        self.lo.clear();
        for i in 0..rows {
            for q in 0..nb {
                self.lo.push((i * k + q * PB_TN) as u32);
            }
        }
        self.hi.clone_from(&self.lo);
        self.fit(rows * k);
        let (idx, val, hi) = (&mut self.idx, &mut self.val, &mut self.hi);
        let mut push = |i: usize, p: usize, x: f32| {
            let slot = &mut hi[i * nb + p / PB_TN];
            idx[*slot as usize] = p as u32;
            val[*slot as usize] = x;
            *slot += 1;
        };
        for p in 0..k {
            // SAFETY: row p of A is readable (caller).
            let row = unsafe { a.add(p * lda) };
            let mut i = 0;
            while i + w <= rows {
                // SAFETY: row[i..i + w] readable (i + w <= rows).
                let mut mask = unsafe { s.nonzero_mask(row.add(i)) };
                while mask != 0 {
                    let ii = i + mask.trailing_zeros() as usize;
                    // SAFETY: ii < i + w <= rows.
                    push(ii, p, unsafe { *row.add(ii) });
                    mask &= mask - 1;
                }
                i += w;
            }
            for i in i..rows {
                // SAFETY: i < rows.
                let x = unsafe { *row.add(i) };
                if x != 0.0 {
                    push(i, p, x);
                }
            }
        }
    }
}

/// `C (+)= op(A) B` over the block `blk` (`trans_b` false) with a pattern of its rows of
/// `op(A)`: `pat` if given (built for exactly these rows), else this thread's buffer,
/// built here.
///
/// # Safety
/// `blk`'s pointers must be valid for its whole block; `blk.trans_b` false; `rows k <=
/// u32::MAX`; no other thread may access that block of `C` meanwhile.
#[inline(always)]
pub(crate) unsafe fn run<S: Simd>(s: S, blk: &Block, pat: Option<&Pattern>) {
    debug_assert!(!blk.trans_b);
    let mut scratch = SCRATCH.with_borrow_mut(std::mem::take);
    scratch.grow(blk.rows);
    // SAFETY: forwarded from the caller; a built pattern covers the block's rows; the
    // scratch holds `rows` accumulator rows.
    unsafe {
        match pat {
            Some(p) => strips(s, blk, p, &mut scratch),
            None => {
                let mut own = take();
                if blk.trans_a {
                    own.build_cols(s, blk.a, blk.lda, blk.rows, blk.k);
                } else {
                    own.build_rows(s, blk.a, blk.lda, blk.rows, blk.k);
                }
                strips(s, blk, &own, &mut scratch);
                put_back(own);
            }
        }
    }
    SCRATCH.with_borrow_mut(|t| {
        if scratch.acc.len() >= t.acc.len() {
            *t = scratch;
        }
    });
}

/// Dispatches the strips of the block to [`strip`] with their vector counts.
///
/// # Safety
/// As [`run`], with `pat` the pattern of the block's rows and `scratch` grown to them.
#[inline(always)]
unsafe fn strips<S: Simd>(s: S, blk: &Block, pat: &Pattern, scratch: &mut Scratch) {
    let w = S::W;
    let nv = blk.cols.div_ceil(w);
    let vmax = if blk.trans_a { VMAX_TN } else { VMAX };
    let groups = nv.div_ceil(vmax);
    let tail = blk.cols % w;
    macro_rules! go {
        ($v:expr, $j:expr, $last:expr, $masked:expr; $($n:literal),+) => {
            match ($v, $masked, blk.trans_a) {
                $(
                    ($n, false, false) => strip::<S, $n, false, false>(s, blk, pat, scratch, $j, $last),
                    ($n, false, true) => strip::<S, $n, false, true>(s, blk, pat, scratch, $j, $last),
                    ($n, true, false) => strip::<S, $n, true, false>(s, blk, pat, scratch, $j, $last),
                    ($n, true, true) => strip::<S, $n, true, true>(s, blk, pat, scratch, $j, $last),
                )+
                _ => unreachable!("strip of {} vectors", $v),
            }
        };
    }
    for g in 0..groups {
        let (v0, v1) = (g * nv / groups, (g + 1) * nv / groups);
        let masked = v1 == nv && tail != 0;
        let last = if masked { tail } else { w };
        // SAFETY: vectors v0..v1 cover columns inside the block (the last one masked
        // to `tail` columns when the block's width is not a multiple of W).
        unsafe { go!(v1 - v0, v0 * w, last, masked; 1, 2, 3, 4, 5, 6, 7, 8) }
    }
}

/// Columns `j .. j + (V - 1) W + last` of the block, every row: the skipping chain per
/// chunk, block by block of `B`'s rows, `-0` sums recomputed densely, merged into `C`.
///
/// # Safety
/// As [`strips`]; the columns lie inside the block.
#[inline(always)]
unsafe fn strip<S: Simd, const V: usize, const MASKED: bool, const TA: bool>(
    s: S,
    blk: &Block,
    pat: &Pattern,
    scratch: &mut Scratch,
    j: usize,
    last: usize,
) {
    let w = S::W;
    let nb = pat.nb;
    let rows = blk.rows;
    let live = &mut scratch.live[..rows];
    let accs = scratch.acc.as_mut_ptr();
    let mut p0 = 0;
    while p0 < blk.k {
        let p1 = min(p0 + KC, blk.k);
        live.fill(false);
        for q in p0 / pat.pb..p1.div_ceil(pat.pb) {
            for (i, on) in live.iter_mut().enumerate() {
                let e = i * nb + q;
                let (t0, t1) = (pat.lo[e] as usize, pat.hi[e] as usize);
                if t0 == t1 {
                    continue;
                }
                let (ps, xs) = (&pat.idx[t0..t1], &pat.val[t0..t1]);
                // SAFETY: accumulator row i of the scratch (rows x VMAX x 16 floats,
                // V W <= VMAX 16); p < k, so row p of B at columns j.. (masked lanes
                // not read) lies in the block.
                unsafe {
                    let sp = accs.add(i * VMAX * 16);
                    let mut acc = [s.zero(); V];
                    if *on {
                        for (v, x) in acc.iter_mut().enumerate() {
                            *x = s.load(sp.add(v * w));
                        }
                    }
                    for (&p, x) in ps.iter().zip(xs) {
                        let av = s.splat(x);
                        let brow = blk.b.add(p as usize * blk.ldb + j);
                        for (v, x) in acc.iter_mut().enumerate() {
                            let bv = if MASKED && v + 1 == V {
                                s.load_part(brow.add(v * w), last)
                            } else {
                                s.load(brow.add(v * w))
                            };
                            *x = s.fma(av, bv, *x);
                        }
                    }
                    for (v, x) in acc.iter().enumerate() {
                        s.store(sp.add(v * w), *x);
                    }
                }
                *on = true;
            }
        }
        let fresh = p0 == 0 && blk.overwrite;
        for (i, &on) in live.iter().enumerate() {
            for v in 0..V {
                let masked = MASKED && v + 1 == V;
                let width = if masked { last } else { w };
                // SAFETY: accumulator row i, vector v of the scratch (written above when
                // `on`); columns j + v W + l for lanes l < width lie in the block;
                // element (i, j + v W) of C as in `tile`.
                unsafe {
                    let sp = accs.add(i * VMAX * 16 + v * w);
                    let mut sum = if on { s.load(sp) } else { s.zero() };
                    let lanes = s.neg_zero_lanes(sum) & (u32::MAX >> (32 - width));
                    if lanes != 0 {
                        let mut buf = [0.0f32; 16];
                        s.store(buf.as_mut_ptr(), sum);
                        dense_lanes::<TA>(blk, i, j + v * w, (p0, p1), lanes, &mut buf);
                        sum = s.load(buf.as_ptr());
                    }
                    let cp = blk.c.add(i * blk.ldc + j + v * w);
                    merge(s, blk.flavor, cp, sum, fresh, masked.then_some(last));
                }
            }
        }
        p0 = p1;
    }
}

/// The dense chunk chain `s = +0; s = fma(op(A)_ip, B_pj, s)` for `p` in `p0..p1`, for
/// the columns `j + l` of row `i` with bit `l` set in `lanes`, into `buf[l]`.
///
/// # Safety
/// Those elements of `op(A)` and `B` must lie in the block `blk` describes.
#[cold]
#[inline(never)]
unsafe fn dense_lanes<const TA: bool>(
    blk: &Block,
    i: usize,
    j: usize,
    (p0, p1): (usize, usize),
    mut lanes: u32,
    buf: &mut [f32; 16],
) {
    while lanes != 0 {
        let l = lanes.trailing_zeros() as usize;
        let mut x = 0.0f32;
        for p in p0..p1 {
            // SAFETY: in the block (caller).
            let (a, b) = unsafe {
                let a = if TA {
                    *blk.a.add(p * blk.lda + i)
                } else {
                    *blk.a.add(i * blk.lda + p)
                };
                (a, *blk.b.add(p * blk.ldb + j + l))
            };
            x = a.mul_add(b, x);
        }
        buf[l] = x;
        lanes &= lanes - 1;
    }
}
