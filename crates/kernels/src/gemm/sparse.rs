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
//! increasing order, with copies of those values. The kernel runs the columns of `C` in
//! strips of up to [`VMAX`] vectors (balanced; vectors aligned to `B`'s cache lines,
//! the ends masked); per strip and chunk, per block of `B`'s rows (`PB x 64` floats,
//! 32 KB: it stays in L1 while every row of `op(A)` uses it), per row with entries in
//! the block: `V` accumulators loaded from a per-thread scratch row (or `+0` at the
//! row's first entry of the chunk), per listed `p` one broadcast of `op(A)_ip`, `V` loads
//! of `B`'s row `p` and `V` FMAs, and the accumulators stored back. Storing and
//! reloading an accumulator does not change its value, so each element still runs the
//! chain above; at the end of a chunk the scratch rows are checked for `-0` and merged
//! into `C`.
//!
//! What made it fast (measured; the figures are in `benches/README.md`, section
//! "Kernels: GEMM zero-skipping"): the blocks of `B`'s rows (without them each row
//! streams its strip of `B` from L2), vectors aligned to `B`'s cache lines (a load
//! across two lines costs two, and the time swung with the allocator's placement of
//! `B`), and scratch flags padded apart per thread (false sharing doubled the time on
//! 2 threads).

// Off x86-64 only the scalar reference is used (no SIMD instantiation).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::cell::RefCell;
use std::cmp::min;

use super::direct::{Block, Flavor, KC, merge};
use crate::simd::{Fma, leveled};

/// Vectors of 16 floats per strip at most (NN products): 4 AVX-512 accumulators per row,
/// enough independent FMA chains for one FMA per cycle (chosen with [`PB`] among 4 or 8
/// vectors and 64- or 128-row blocks: the fastest pair on 2 threads; see
/// `benches/README.md`); AVX2 runs the same 64 columns as 8 vectors of 8.
pub(crate) const VMAX: usize = 4;

/// Rows of `B` per block for NN products (`B` = the weights, `k` large): 128 rows of a
/// 64-column strip are 32 KB, L1's size (chosen with [`VMAX`]). A
/// multiple of every vector width, dividing [`KC`].
pub(crate) const PB: usize = 128;

/// Rows of `B` per block for TN products (`B` = the deltas, `k` = the batch): one block
/// per chunk, so each row's accumulators stay in registers for the whole chunk.
pub(crate) const PB_TN: usize = KC;

/// Vectors of 16 floats per strip for TN products: 4 (64 columns; a batch of 100 rows is 25 KB of
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
/// sum of this chunk" flags, each with [`PAD`] bytes unused at both ends: the flags are
/// written constantly, and two threads' small buffers can sit side by side on the heap;
/// without the padding they would share cache lines (false sharing measured 2x slower
/// on 2 threads).
#[derive(Debug, Default)]
struct Scratch {
    acc: Vec<f32>,
    live: Vec<bool>,
}

/// Bytes left unused at both ends of a thread's scratch buffers (a cache line).
const PAD: usize = 64;

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
        if self.live.len() < rows + 2 * PAD {
            self.live.resize(rows + 2 * PAD, false);
            self.acc.resize(rows * VMAX * 16 + 2 * PAD / 4, 0.0);
        }
    }

    /// The flags of `rows` rows and a pointer to the first accumulator row (each row
    /// `VMAX x 16` floats), both inside the padding.
    fn rows(&mut self, rows: usize) -> (&mut [bool], *mut f32) {
        let acc = self.acc[PAD / 4..PAD / 4 + rows * VMAX * 16].as_mut_ptr();
        (&mut self.live[PAD..PAD + rows], acc)
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
    unsafe fn build_rows<S: Fma>(
        &mut self,
        s: S,
        a: *const f32,
        lda: usize,
        rows: usize,
        k: usize,
    ) {
        let w = S::LANES;
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
    unsafe fn build_cols<S: Fma>(
        &mut self,
        s: S,
        a: *const f32,
        lda: usize,
        rows: usize,
        k: usize,
    ) {
        let w = S::LANES;
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

leveled!(
    /// [`run`] on `level` (a SIMD level).
    ///
    /// # Safety
    /// As [`run`].
    pub(crate) vector unsafe fn run_at(blk: &Block, pat: Option<&Pattern>) => run
);

leveled!(
    /// [`Pattern::build_rows`] on `level` (a SIMD level) into `pat`.
    ///
    /// # Safety
    /// As [`Pattern::build_rows`].
    pub(crate) vector unsafe fn build_rows_at(
        pat: &mut Pattern,
        a: *const f32,
        lda: usize,
        rows: usize,
        k: usize,
    ) => build_rows
);

/// [`Pattern::build_rows`] with the token first, for [`build_rows_at`].
///
/// # Safety
/// As [`Pattern::build_rows`].
#[inline(always)]
unsafe fn build_rows<S: Fma>(
    s: S,
    pat: &mut Pattern,
    a: *const f32,
    lda: usize,
    rows: usize,
    k: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe { pat.build_rows(s, a, lda, rows, k) }
}

/// `C (+)= op(A) B` over the block `blk` (`trans_b` false) with a pattern of its rows of
/// `op(A)`: `pat` if given (built for exactly these rows), else this thread's buffer,
/// built here.
///
/// # Safety
/// `blk`'s pointers must be valid for its whole block; `blk.trans_b` false; `rows k <=
/// u32::MAX`; no other thread may access that block of `C` meanwhile.
#[inline(always)]
unsafe fn run<S: Fma>(s: S, blk: &Block, pat: Option<&Pattern>) {
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
/// Vectors are aligned to `B`'s rows where the row stride allows (a multiple of `W`):
/// the block's columns are numbered from `-mis`, `mis` being `B`'s misalignment in
/// floats, so every load of `B` lies within one cache line (a load across two lines
/// costs two); the first vector's lanes below `mis` and the last vector's lanes past
/// the block are masked off, never read or written.
///
/// # Safety
/// As [`run`], with `pat` the pattern of the block's rows and `scratch` grown to them.
#[inline(always)]
unsafe fn strips<S: Fma>(s: S, blk: &Block, pat: &Pattern, scratch: &mut Scratch) {
    let w = S::LANES;
    let mis = if blk.ldb.is_multiple_of(w) {
        (blk.b as usize / 4) % w
    } else {
        0
    };
    let total = blk.cols + mis;
    let nv = total.div_ceil(w);
    let full = u32::MAX >> (32 - w);
    let lead = full & !((1u32 << mis) - 1);
    let tail = full >> (nv * w - total);
    // VMAX (VMAX_TN) vectors of 16 floats: the same bytes per strip at every width, so
    // AVX2 runs 8 vectors where AVX-512 runs 4, as many independent FMA chains per row
    // (measured on an AMD EPYC, AVX2: with 4 vectors of 8 lanes the FMA units wait on
    // the chains' latency)
    let vmax = (if blk.trans_a { VMAX_TN } else { VMAX }) * 16 / w;
    let groups = nv.div_ceil(vmax);
    macro_rules! go {
        ($v:expr, $j:expr, $m:expr, $first:expr, $last:expr; $($n:literal),+) => {
            match ($v, $first, $last, blk.trans_a) {
                $(
                    ($n, false, false, false) => strip::<S, $n, false, false, false>(s, blk, pat, scratch, $j, $m),
                    ($n, false, false, true) => strip::<S, $n, false, false, true>(s, blk, pat, scratch, $j, $m),
                    ($n, false, true, false) => strip::<S, $n, false, true, false>(s, blk, pat, scratch, $j, $m),
                    ($n, false, true, true) => strip::<S, $n, false, true, true>(s, blk, pat, scratch, $j, $m),
                    ($n, true, false, false) => strip::<S, $n, true, false, false>(s, blk, pat, scratch, $j, $m),
                    ($n, true, false, true) => strip::<S, $n, true, false, true>(s, blk, pat, scratch, $j, $m),
                    ($n, true, true, false) => strip::<S, $n, true, true, false>(s, blk, pat, scratch, $j, $m),
                    ($n, true, true, true) => strip::<S, $n, true, true, true>(s, blk, pat, scratch, $j, $m),
                )+
                _ => unreachable!("strip of {} vectors", $v),
            }
        };
    }
    // `go!` instantiates strips of 1 to 8 vectors: the widths a balanced split into
    // groups of at most `vmax` vectors can produce (`vmax` is largest at 8 lanes).
    const _: () = assert!(VMAX * 16 / 8 <= 8 && VMAX_TN * 16 / 8 <= 8);
    // The strips and the chunks of k, in one of two orders. At 16 lanes (AVX-512):
    // each strip all chunks, the order these kernels were tuned in on the Intel Xeon.
    // At 8 lanes: each chunk all strips, so a chunk's part of the pattern is read again
    // from a near cache by every strip; measured on an AMD EPYC (AVX2), 1000x800x784 on
    // Fashion-MNIST images with 8-vector strips: 22.3-22.8 ms strip-major, 19.5-19.8
    // chunk-major (MNIST 10.1-10.3 and 8.0-8.1). Each element's chain is the same.
    let chunks = blk.k.div_ceil(KC);
    for step in 0..groups * chunks {
        let (g, c) = if w >= 16 {
            (step / chunks, step % chunks)
        } else {
            (step % groups, step / groups)
        };
        let chunk = (c * KC, min(c * KC + KC, blk.k));
        let (v0, v1) = (g * nv / groups, (g + 1) * nv / groups);
        let (first, last) = (v0 == 0 && lead != full, v1 == nv && tail != full);
        let masks = [
            if v0 == 0 { lead } else { full },
            if v1 == nv { tail } else { full },
        ];
        // SAFETY: vectors v0..v1 cover the block's columns v0 W - mis .. v1 W - mis,
        // masked to 0..cols (the masks select exactly the lanes inside the block).
        unsafe { go!(v1 - v0, v0 * w, (mis, masks, chunk), first, last; 1, 2, 3, 4, 5, 6, 7, 8) }
    }
}

/// Vectors of columns `j - mis ..` of the block (`V` of them, the first masked to
/// `masks[0]` if `FIRST`, the last to `masks[1]` if `LAST`), every row, over the chunk
/// `p0..p1` of `k`: the skipping chain, block by block of `B`'s rows, `-0` sums
/// recomputed densely, merged into `C` (the caller takes a strip's chunks in order).
///
/// # Safety
/// As [`strips`]; the unmasked lanes lie inside the block.
#[inline(always)]
unsafe fn strip<S: Fma, const V: usize, const FIRST: bool, const LAST: bool, const TA: bool>(
    s: S,
    blk: &Block,
    pat: &Pattern,
    scratch: &mut Scratch,
    j: usize,
    (mis, masks, (p0, p1)): (usize, [u32; 2], (usize, usize)),
) {
    let w = S::LANES;
    let full = u32::MAX >> (32 - w);
    // lanes of vector v: all, or the masks at the strip's ends
    let lanes = |v: usize| -> u32 {
        let mut m = full;
        if FIRST && v == 0 {
            m &= masks[0];
        }
        if LAST && v + 1 == V {
            m &= masks[1];
        }
        m
    };
    let masked = |v: usize| (FIRST && v == 0) || (LAST && v + 1 == V);
    let nb = pat.nb;
    let rows = blk.rows;
    let (live, accs) = scratch.rows(rows);
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
            // V W <= VMAX 16); p < k, so row p of B at the unmasked columns lies in
            // the block (masked lanes are not accessed; the address of a vector is
            // formed with wrapping arithmetic and only its lanes inside the block
            // are read).
            unsafe {
                let sp = accs.add(i * VMAX * 16);
                let mut acc = [s.zero(); V];
                if *on {
                    for (v, x) in acc.iter_mut().enumerate() {
                        *x = s.load_ptr(sp.add(v * w));
                    }
                }
                for (&p, x) in ps.iter().zip(xs) {
                    let av = s.broadcast(x);
                    let brow = blk
                        .b
                        .wrapping_add(p as usize * blk.ldb + j)
                        .wrapping_sub(mis);
                    for (v, x) in acc.iter_mut().enumerate() {
                        let bv = if masked(v) {
                            s.load_mask(brow.wrapping_add(v * w), lanes(v))
                        } else {
                            s.load_ptr(brow.wrapping_add(v * w))
                        };
                        *x = s.fma(av, bv, *x);
                    }
                }
                for (v, x) in acc.iter().enumerate() {
                    s.store_ptr(sp.add(v * w), *x);
                }
            }
            *on = true;
        }
    }
    let fresh = p0 == 0 && blk.overwrite;
    for (i, &on) in live.iter().enumerate() {
        for v in 0..V {
            let m = lanes(v);
            // SAFETY: accumulator row i, vector v of the scratch (written above when
            // `on`); the unmasked lanes of element (i, j + v W - mis) onwards of C
            // lie in the block, exclusive to this thread (caller); masked lanes are
            // not accessed.
            unsafe {
                let sp = accs.add(i * VMAX * 16 + v * w);
                let mut sum = if on { s.load_ptr(sp) } else { s.zero() };
                let col = (j + v * w).wrapping_sub(mis);
                let neg = s.neg_zero_lanes(sum) & m;
                if neg != 0 {
                    let mut buf = [0.0f32; 16];
                    s.store_ptr(buf.as_mut_ptr(), sum);
                    dense_lanes::<TA>(blk, i, col, (p0, p1), neg, &mut buf);
                    sum = s.load_ptr(buf.as_ptr());
                }
                let cp = blk.c.wrapping_add(i * blk.ldc).wrapping_add(col);
                if masked(v) {
                    let out = if fresh {
                        fresh_sum(s, blk.flavor, sum)
                    } else {
                        s.add(s.load_mask(cp, m), sum)
                    };
                    s.store_mask(cp, out, m);
                } else {
                    merge(s, blk.flavor, cp, sum, fresh, None);
                }
            }
        }
    }
}

/// The first chunk's sum as an Overwrite writes it (see `direct::merge`).
#[inline(always)]
fn fresh_sum<S: Fma>(s: S, flavor: Flavor, sum: S::V) -> S::V {
    if flavor == Flavor::FmaAvx2 {
        s.add(sum, s.zero())
    } else {
        sum
    }
}

/// The dense chunk chain `s = +0; s = fma(op(A)_ip, B_pj, s)` for `p` in `p0..p1`, for
/// the columns `j + l` (wrapping: `j` may be "negative" when lane 0 is masked off) of
/// row `i` with bit `l` set in `lanes`, into `buf[l]`.
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
                (a, *blk.b.add(p * blk.ldb + j.wrapping_add(l)))
            };
            x = a.mul_add(b, x);
        }
        buf[l] = x;
        lanes &= lanes - 1;
    }
}
