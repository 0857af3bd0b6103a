//! Direct GEMM kernels for small batches: `C (+)= op(A) op(B)` with `op(B) = B` read in
//! place (no packing; `op(B) = B^T` is first copied by panels of [`PANEL`] columns),
//! element for element the arithmetic of matrixmultiply 0.3.11's FMA kernels.
//!
//! For every element, with `k` cut into chunks `[p0, p1)` of [`KC`] = 256 from `p = 0`:
//!
//! ```text
//! s = +0;  for p in p0..p1 (increasing):  s = fma(op(A)_ip, op(B)_pj, s)  (one rounding)
//! first chunk, Overwrite:   C_ij = s            (matrixmultiply's AVX-512 kernel: 1 * s)
//!                           C_ij = s + (+0)     (its FMA-AVX2 kernel: fma(1, s, +0))
//! otherwise:                C_ij = C_ij + s     (both: fma(1, s, 1 * C_ij))
//! ```
//!
//! The two Overwrite forms differ only when `s` is `-0` (e.g. every product of the chunk
//! is `-0` or a negative value that underflows to it): `s + (+0)` is `+0`. See the
//! parent module for the one corner case where matrixmultiply's FMA-AVX2 kernel itself
//! depends on the tile position.
//!
//! The SIMD kernels keep a register tile of `R` rows of `C` by `V` vectors of columns:
//! per `p`, `V` loads of `B`'s row `p`, `R` broadcasts of `op(A)`, `R V` FMAs; per
//! chunk, one merge of the tile into `C`. Every lane computes exactly the chain above
//! for its own `(i, j)`: lanes never mix, and masked-off lanes are neither read nor
//! written in memory. The loop nest, labelled as matrixmultiply labels its own
//! (`gemm_loop`: LOOP 5 over `nc` column panels, 4 over `kc` chunks, 3 over `mc` row
//! panels, 2 and 1 over the packed micro-panels), outermost first:
//!
//! ```text
//! LOOP 5  (block)  columns in panels: NT: of PANEL = 64, B^T copied into k x 64;
//!                  NN, TN: of PANEL_FLOATS / k (B's slice stays in L2), read in place
//! LOOP 4  (block)  rows in balanced groups of R <= RMAX (the ISA's tile table, Tiles)
//! LOOP 3  (rows)   columns in strips of V vectors, then single vectors, then one masked
//! LOOP 2  (tile)   k in chunks of KC = 256: acc = +0, then the merge into C
//! LOOP 1  (tile)   p in the chunk: V loads of B's row p, R broadcasts, R V FMAs
//! ```
//!
//! Unlike matrixmultiply, `k` is the innermost blocked loop (LOOP 2 inside a tile): the
//! tile stays in registers across a whole chunk and `B` is read in place, which is what
//! pays at small `m` (the reason for these kernels); the chunks are still the same
//! 256-wide ranges from `p = 0`, so the per-element chains are matrixmultiply's.

// Off x86-64 only the scalar reference is used (no SIMD instantiation).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::cell::RefCell;
use std::cmp::min;

use super::Accumulate;
use super::operands::Product;
use crate::simd::{Fma, leveled};

/// Columns of `B^T` per packed panel (a multiple of every `W`).
pub(crate) const PANEL: usize = 64;

/// matrixmultiply's `kc` for f32 (`archparam::S_KC`): `k` is summed in chunks of this.
pub(crate) const KC: usize = 256;

/// NN kernels hint the cache lines of `B` this many rows ahead of the row they use
/// (`B` is read in column strips, a stride of one row per step, which the hardware
/// prefetchers follow poorly); 0 turns the hints off.
const PREFETCH_ROWS: usize = 8;

/// Whether a tile hints the cache lines of the next tile's `C` before its k loop (the
/// weight gradient adds into `W`, 2.5 MB for the lab's first layer, which is in L3 when
/// the tile reaches it). Measured on the Intel Xeon: +3 % on that product (121 -> 125
/// GFLOP/s, medians), neutral elsewhere.
const PREFETCH_C: bool = true;

/// Blocks with `B` read in place run in column panels of at most `PANEL_FLOATS / k`
/// columns (a multiple of [`PANEL`], at least one), so that the slice of `B` every row
/// group sweeps stays in L2 (about 768 KB of the 2 MB of these Xeons) while the rows of
/// `A` stream past it. Measured on the Intel Xeon, one block on one thread: X W at
/// batch 1000 (784x800 weights) 77 -> 150 GFLOP/s, at batch 100 73 -> 130 (medians).
const PANEL_FLOATS: usize = 196_608;

/// How the chunk sum of the first chunk is written with Overwrite (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// matrixmultiply's `KernelAvx512`: `C = 1 * s` (keeps `-0`).
    Avx512,
    /// matrixmultiply's `KernelFmaAvx2`: `C = fma(1, s, +0)` (`-0` becomes `+0`).
    FmaAvx2,
}

/// One block of a product for the SIMD kernels: `C[0..rows, 0..cols] (+)= op(A) B` with
/// all pointers at the block's origin.
///
/// * `op(A)_ip` is at `a + i lda + p` (`trans_a` false: A stored row-major `rows x k`)
///   or at `a + p lda + i` (`trans_a` true: A stored `k x rows`, read transposed);
/// * `B_pj` at `b + p ldb + j` (`trans_b` false: B stored `k x cols`), or at
///   `b + j ldb + p` (`trans_b` true: B stored `cols x k`, read transposed: the entry
///   points copy it, one panel of columns at a time, into a `k x PANEL` buffer);
/// * `C_ij` at `c + i ldc + j`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) k: usize,
    pub(crate) a: *const f32,
    pub(crate) lda: usize,
    pub(crate) trans_a: bool,
    pub(crate) b: *const f32,
    pub(crate) ldb: usize,
    pub(crate) trans_b: bool,
    pub(crate) c: *mut f32,
    pub(crate) ldc: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) overwrite: bool,
    pub(crate) flavor: Flavor,
}

impl Block {
    /// The same block restricted to its rows `r0..r1`.
    ///
    /// # Safety
    /// `r0 <= r1 <= self.rows`; the pointers of `self` must be valid for its whole block.
    #[inline(always)]
    pub(crate) unsafe fn sub_rows(&self, r0: usize, r1: usize) -> Block {
        debug_assert!(r0 <= r1 && r1 <= self.rows);
        let a_off = if self.trans_a { r0 } else { r0 * self.lda };
        // SAFETY: rows r0..r1 lie inside the block, so the offsets stay inside the
        // allocations the caller vouches for (element (r0, 0) of op(A) and of C; when
        // r0 == rows the offset is one past the last row, never dereferenced).
        unsafe {
            Block {
                a: self.a.add(a_off),
                c: self.c.add(r0 * self.ldc),
                rows: r1 - r0,
                ..*self
            }
        }
    }
}

thread_local! {
    /// Per-thread buffer of one packed panel of `B^T` (`k x PANEL`), grown on demand and
    /// kept, so NT products allocate only on a thread's first (or largest) call.
    static PANEL_BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Grow this thread's panel buffer to hold NT products with inner dimension up to `k`
/// (see [`super::reserve_thread_buffers`]).
pub(crate) fn reserve_panel(k: usize) {
    PANEL_BUF.with_borrow_mut(|buf| {
        if buf.len() < k * PANEL {
            buf.resize(k * PANEL, 0.0);
        }
    });
}

/// Copies the panel of columns `0..w` (`w <= PANEL`) of `op(B) = B^T`, B stored `w x k`
/// from `b` with row stride `ldb`, into `buf` as `k x PANEL` row-major:
/// `buf[p PANEL + j] = b[j ldb + p]` (columns `w..PANEL` are left as they are): squares
/// of `LANES x LANES` by the token's transpose, the remainders one element at a time.
/// Values are moved, never rounded.
///
/// # Safety
/// `b[j ldb + p]` readable for `j < w`, `p < k`; `buf[0..k PANEL]` writable.
#[inline(always)]
unsafe fn pack_bt<S: Fma>(s: S, b: *const f32, ldb: usize, k: usize, w: usize, buf: *mut f32) {
    debug_assert!(w <= PANEL);
    let l = S::LANES;
    let strided_ok = ldb
        .checked_mul(4 * (l - 1))
        .is_some_and(|x| x <= i32::MAX as usize);
    let (kl, wl) = if strided_ok {
        (k / l * l, w / l * l)
    } else {
        (0, 0)
    };
    // SAFETY: every square and remainder lies in rows j < w, columns p < k of B and rows
    // p < k, columns j < w of `buf` (caller); the stride bound is checked above.
    unsafe {
        for p0 in (0..kl).step_by(l) {
            for j0 in (0..wl).step_by(l) {
                s.transpose_square(b.add(j0 * ldb + p0), ldb, buf.add(p0 * PANEL + j0), PANEL);
            }
        }
        pack_bt_scalar(b, ldb, 0..kl, wl..w, buf);
        pack_bt_scalar(b, ldb, kl..k, 0..w, buf);
    }
}

/// The scalar part of a panel copy: `buf[p PANEL + j] = b[j ldb + p]` for `p` in `ps`,
/// `j` in `js`.
///
/// # Safety
/// As [`pack_bt`], for those indices.
#[inline(always)]
pub(crate) unsafe fn pack_bt_scalar(
    b: *const f32,
    ldb: usize,
    ps: std::ops::Range<usize>,
    js: std::ops::Range<usize>,
    buf: *mut f32,
) {
    for p in ps {
        for j in js.clone() {
            // SAFETY: in bounds (caller).
            unsafe { *buf.add(p * PANEL + j) = *b.add(j * ldb + p) };
        }
    }
}

/// One register tile `R x V` vectors at column `j` of `blk`, over all of `k`: the
/// chain of the module doc for every element of the tile (LOOPs 2 and 1). With `MASKED`,
/// the last vector covers only `last` (`1 <= last < LANES`) columns.
///
/// # Safety
/// `blk`'s pointers must be valid for its whole block (rows `0..R`, columns
/// `j..j + (V - 1) LANES + last` or `j..j + V LANES`), `R <= blk.rows`, and no other thread may
/// access that part of `C` meanwhile.
#[inline(always)]
unsafe fn tile<S: Fma, const R: usize, const V: usize, const MASKED: bool, const TA: bool>(
    s: S,
    blk: &Block,
    j: usize,
    last: usize,
) {
    let w = S::LANES;
    if PREFETCH_C {
        // The next tile's lines of C (its R rows lie a row of C apart, which the hardware
        // prefetchers do not follow): requested now, they arrive while this tile runs
        // its k loop. Beyond the block's columns the hint is wasted, never wrong.
        for i in 0..R {
            let next = blk.c.wrapping_add(i * blk.ldc + j + V * w);
            for line in 0..(V * w).div_ceil(16) {
                s.prefetch(next.wrapping_add(16 * line));
            }
        }
    }
    let mut p0 = 0;
    // LOOP 2: k in chunks of KC from p = 0 (matrixmultiply's LOOP 4 ranges).
    while p0 < blk.k {
        let p1 = min(p0 + KC, blk.k);
        let mut acc = [[s.zero(); V]; R];
        // LOOP 1: one FMA per p and element, in increasing p.
        for p in p0..p1 {
            // SAFETY (all accesses in this loop): p < k and the columns j.. of the
            // tile lie in the block, as the caller guarantees; masked lanes are not read.
            unsafe {
                let brow = blk.b.add(p * blk.ldb + j);
                if !TA && PREFETCH_ROWS > 0 {
                    let ahead = brow.wrapping_add(PREFETCH_ROWS * blk.ldb);
                    for line in 0..(V * w).div_ceil(16) {
                        s.prefetch(ahead.wrapping_add(16 * line));
                    }
                }
                let mut bv = [s.zero(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = if MASKED && v + 1 == V {
                        s.load_first(brow.add(v * w), last)
                    } else {
                        s.load_ptr(brow.add(v * w))
                    };
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let ap = if TA {
                        blk.a.add(p * blk.lda + i)
                    } else {
                        blk.a.add(i * blk.lda + p)
                    };
                    let av = s.broadcast(ap);
                    for (x, &b) in row.iter_mut().zip(&bv) {
                        *x = s.fma(av, b, *x);
                    }
                }
            }
        }
        let fresh = p0 == 0 && blk.overwrite;
        for (i, row) in acc.iter().enumerate() {
            for (v, &sum) in row.iter().enumerate() {
                let masked = MASKED && v + 1 == V;
                // SAFETY: element (i, j + v LANES) of the block's C, with LANES (or `last`,
                // masked) columns inside the block; exclusive access per the caller.
                unsafe {
                    let cp = blk.c.add(i * blk.ldc + j + v * w);
                    merge(s, blk.flavor, cp, sum, fresh, masked.then_some(last));
                }
            }
        }
        p0 = p1;
    }
}

/// Merges a chunk sum `sum` into the `LANES` elements of `C` at `cp` (only the first `n`
/// with `part = Some(n)`), as the module doc says: `C = s` (or `s + (+0)` with the
/// FMA-AVX2 flavor) for the first chunk of an Overwrite, `C = C + s` otherwise.
///
/// # Safety
/// `cp[0..LANES]` (or `cp[0..n]`) must be readable and writable by this thread only.
#[inline(always)]
pub(crate) unsafe fn merge<S: Fma>(
    s: S,
    flavor: Flavor,
    cp: *mut f32,
    sum: S::V,
    fresh: bool,
    part: Option<usize>,
) {
    // SAFETY: cp[0..LANES] or cp[0..n] accessible (caller); masked lanes are not accessed.
    unsafe {
        let out = if fresh {
            if flavor == Flavor::FmaAvx2 {
                s.add(sum, s.zero())
            } else {
                sum
            }
        } else {
            let old = match part {
                Some(n) => s.load_first(cp, n),
                None => s.load_ptr(cp),
            };
            s.add(old, sum)
        };
        match part {
            Some(n) => s.store_first(cp, out, n),
            None => s.store_ptr(cp, out),
        }
    }
}

/// All columns of `blk` for its `R` rows (LOOP 3): strips of `V` vectors, then single
/// vectors, then one masked vector.
///
/// # Safety
/// As [`tile`], for the whole block; `blk.rows == R`.
#[inline(always)]
unsafe fn rows<S: Fma, const R: usize, const V: usize, const TA: bool>(s: S, blk: &Block) {
    debug_assert_eq!(blk.rows, R);
    let w = S::LANES;
    let n = blk.cols;
    let mut j = 0;
    // LOOP 3: strips of V vectors, single vectors, one masked vector.
    // SAFETY (the three loops): each tile covers columns inside 0..n of the block.
    unsafe {
        while j + V * w <= n {
            tile::<S, R, V, false, TA>(s, blk, j, w);
            j += V * w;
        }
        while j + w <= n {
            tile::<S, R, 1, false, TA>(s, blk, j, w);
            j += w;
        }
        if j < n {
            tile::<S, R, 1, true, TA>(s, blk, j, n - j);
        }
    }
}

/// The number of row groups for `rows` rows with at most `rmax` per group, and the
/// bounds of group `g`: `[g rows / groups, (g + 1) rows / groups)` (balanced).
#[inline(always)]
pub(crate) fn group_bounds(rows: usize, rmax: usize, g: usize, groups: usize) -> (usize, usize) {
    debug_assert_eq!(groups, rows.div_ceil(rmax));
    (g * rows / groups, (g + 1) * rows / groups)
}

/// The register tiles of one instruction set: `R` rows by `V` vectors for every group
/// size `R <= RMAX`, chosen so that `R V` accumulators, `V` vectors of `B` and one
/// broadcast fit in the register file, with at least 8 independent FMA chains when `R`
/// allows it:
///
/// | ISA      | RMAX | R -> V                          | accumulators |
/// |----------|-----:|---------------------------------|-------------:|
/// | AVX-512F |   12 | 1-4 -> 4, 5-7 -> 3, 8-12 -> 2   | <= 24        |
/// | AVX2+FMA |    6 | 1-2 -> 4, 3 -> 3, 4-6 -> 2      | <= 12        |
pub(crate) trait Tiles: Fma {
    /// Rows per group at most.
    const RMAX: usize;
    /// All columns of `blk` (`trans_b` false) for its `blk.rows <= RMAX` rows.
    ///
    /// # Safety
    /// As [`tile`], for the whole block.
    unsafe fn group(self, blk: &Block);
}

/// Implements [`Tiles`] for a token from its `R => V` table.
macro_rules! tiles {
    ($tok:ty, $rmax:literal, [$($r:literal => $v:literal),+ $(,)?]) => {
        impl Tiles for $tok {
            const RMAX: usize = $rmax;
            #[inline(always)]
            unsafe fn group(self, blk: &Block) {
                // SAFETY: forwarded from the caller; R is the block's row count.
                unsafe {
                    match (blk.rows, blk.trans_a) {
                        $(
                            ($r, false) => rows::<_, $r, $v, false>(self, blk),
                            ($r, true) => rows::<_, $r, $v, true>(self, blk),
                        )+
                        _ => unreachable!("row group of {} > {} rows", blk.rows, $rmax),
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
tiles!(crate::simd::Avx512, 12, [1 => 4, 2 => 4, 3 => 4, 4 => 4, 5 => 3, 6 => 3, 7 => 3,
    8 => 2, 9 => 2, 10 => 2, 11 => 2, 12 => 2]);
#[cfg(target_arch = "x86_64")]
tiles!(crate::simd::Avx2, 6, [1 => 4, 2 => 4, 3 => 3, 4 => 2, 5 => 2, 6 => 2]);

leveled!(
    /// The direct kernel over one block on `level` (a SIMD level).
    ///
    /// # Safety
    /// `blk`'s pointers must be valid for its whole block (op(A): `rows x k`, B: `k x
    /// cols`, C: `rows x cols`, with its strides), and no other thread may access that
    /// block of C meanwhile.
    pub(crate) vector unsafe fn run(blk: &Block) => block
);

/// One block: LOOP 5 (NN/TN: column panels of `B` read in place; NT: panels of `B^T`
/// copied into this thread's buffer) and LOOP 4
/// (balanced row groups of at most `RMAX`), each group run by its register tile.
///
/// # Safety
/// As [`run`].
#[inline(always)]
unsafe fn block<S: Tiles>(s: S, blk: &Block) {
    if !blk.trans_b {
        // LOOP 5 for NN/TN: column panels whose slice of B stays in L2 (one panel when it
        // all fits). Every element is still one tile's chain over all of k.
        // (one row group sweeps B once: no panels then)
        let width = if blk.rows <= S::RMAX {
            blk.cols
        } else {
            (PANEL_FLOATS / blk.k.max(1) / PANEL * PANEL).max(PANEL)
        };
        let mut j = 0;
        while j < blk.cols {
            let w = width.min(blk.cols - j);
            // SAFETY: columns j..j + w lie inside the block (caller), so the sub-block's
            // B and C pointers do.
            unsafe {
                let sub = Block {
                    b: blk.b.add(j),
                    c: blk.c.add(j),
                    cols: w,
                    ..*blk
                };
                row_groups(s, &sub);
            }
            j += w;
        }
        return;
    }
    // The buffer is taken out of the thread-local for the loop, not used inside a
    // `with_borrow_mut` closure: a closure is a function of its own, without this
    // instantiation's target features, and the kernel inlined into it would lose them.
    let mut buf = PANEL_BUF.with_borrow_mut(std::mem::take);
    buf.resize(buf.len().max(blk.k * PANEL), 0.0);
    let mut j = 0;
    while j < blk.cols {
        let w = PANEL.min(blk.cols - j);
        // SAFETY: columns j..j + w of op(B) are rows of B inside the block (caller),
        // `buf` holds k PANEL elements; the panel's sub-block (B now the buffer, stored
        // k x PANEL) is inside the block of C.
        unsafe {
            pack_bt(
                s,
                blk.b.add(j * blk.ldb),
                blk.ldb,
                blk.k,
                w,
                buf.as_mut_ptr(),
            );
            let sub = Block {
                b: buf.as_ptr(),
                ldb: PANEL,
                trans_b: false,
                c: blk.c.add(j),
                cols: w,
                ..*blk
            };
            row_groups(s, &sub);
        }
        j += w;
    }
    PANEL_BUF.set(buf);
}

/// LOOP 4: the block's rows (`trans_b` false) in balanced groups of at most `RMAX`.
///
/// # Safety
/// As [`run`], with `blk.trans_b` false.
#[inline(always)]
unsafe fn row_groups<S: Tiles>(s: S, blk: &Block) {
    let groups = blk.rows.div_ceil(S::RMAX);
    for g in 0..groups {
        let (r0, r1) = group_bounds(blk.rows, S::RMAX, g, groups);
        // SAFETY: 0 <= r0 < r1 <= rows (balanced groups); the caller vouches for the
        // block's pointers, hence for each group's (a sub-block) too.
        unsafe { s.group(&blk.sub_rows(r0, r1)) };
    }
}

/// Portable reference of the same arithmetic (slow: `f32::mul_add` is an exact fused
/// multiply-add, in software where the CPU has none), for any operand storage, into all
/// of `c` (`m x n`).
pub(crate) fn reference(flavor: Flavor, p: &Product<'_>, c: &mut [f32]) {
    let (m, n, k) = (p.m, p.n, p.k);
    let (a, (rsa, csa)) = (p.a.data, p.a.strides());
    let (b, (rsb, csb)) = (p.b.data, p.b.strides());
    let overwrite = p.acc == Accumulate::Overwrite;
    for i in 0..m {
        for j in 0..n {
            let cij = &mut c[i * n + j];
            let mut p0 = 0;
            while p0 < k {
                let p1 = min(p0 + KC, k);
                let mut s = 0.0f32;
                for p in p0..p1 {
                    s = a[i * rsa + p * csa].mul_add(b[p * rsb + j * csb], s);
                }
                *cij = if p0 == 0 && overwrite {
                    match flavor {
                        Flavor::Avx512 => s,
                        Flavor::FmaAvx2 => s + 0.0,
                    }
                } else {
                    *cij + s
                };
                p0 = p1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::Op;

    /// The product `C (m x n) (+)= A B` of row-major `A`, `B` (Overwrite if `overwrite`).
    fn product<'a>(
        (m, n, k): (usize, usize, usize),
        a: &'a [f32],
        b: &'a [f32],
        overwrite: bool,
    ) -> Product<'a> {
        let acc = if overwrite {
            Accumulate::Overwrite
        } else {
            Accumulate::Add
        };
        Product::new((m, n, k), (a, Op::N), (b, Op::N), &vec![0.0; m * n], acc)
    }

    #[test]
    fn groups_are_balanced_and_cover_the_rows() {
        for rows in 1usize..60 {
            for rmax in [4, 6, 12] {
                let groups = rows.div_ceil(rmax);
                let mut next = 0;
                for g in 0..groups {
                    let (r0, r1) = group_bounds(rows, rmax, g, groups);
                    assert_eq!(r0, next);
                    assert!(r1 > r0 && r1 - r0 <= rmax, "{rows} {rmax} {g}");
                    next = r1;
                }
                assert_eq!(next, rows);
            }
        }
    }

    /// The reference on hand-made values: chunks of 256, FMA (single rounding) within a
    /// chunk, a rounded add between chunks, and the two Overwrite flavors on `-0`.
    #[test]
    fn reference_closed_forms() {
        // fma vs mul-then-add: s = -(1 + 2^-11), then s = fma(x, x, s) with x = 1 + 2^-12,
        // x^2 = 1 + 2^-11 + 2^-24 exactly: the fused step gives 2^-24, a rounded product
        // (a tie, to even: 1 + 2^-11) would give 0.
        let x = 1.0 + 2f32.powi(-12);
        let a = [1.0, x];
        let b = [-(1.0 + 2f32.powi(-11)), x];
        let mut c = [f32::NAN];
        reference(Flavor::Avx512, &product((1, 1, 2), &a, &b, true), &mut c);
        assert_eq!(c[0], 2f32.powi(-24));

        // Chunks of 256: 2^24 then 1 + 1 in the next chunk. One chain would lose each 1
        // (2^24 + 1 is a tie, rounded to even 2^24); summed in its own chunk the 2 is kept.
        let k = 258;
        let a = vec![1.0f32; k];
        let mut b = vec![0.0f32; k];
        b[0] = 2f32.powi(24);
        b[256] = 1.0;
        b[257] = 1.0;
        let mut c = [f32::NAN];
        reference(Flavor::Avx512, &product((1, 1, k), &a, &b, true), &mut c);
        assert_eq!(c[0], 2f32.powi(24) + 2.0);
        // Add: C = round(C + s) per chunk: (1 + 2^24) -> 2^24, then + 2.
        let mut c = [1.0f32];
        reference(Flavor::Avx512, &product((1, 1, k), &a, &b, false), &mut c);
        assert_eq!(c[0], 2f32.powi(24) + 2.0);

        // -0: a tiny negative product rounds to -0.
        let a = [-1e-30f32];
        let b = [1e-30f32];
        for (flavor, want) in [(Flavor::Avx512, 0x8000_0000u32), (Flavor::FmaAvx2, 0)] {
            let mut c = [f32::NAN];
            reference(flavor, &product((1, 1, 1), &a, &b, true), &mut c);
            assert_eq!(c[0].to_bits(), want, "{flavor:?}");
        }
    }
}
