//! Deterministic parallel f32 GEMM on `matrixmultiply::sgemm`, with no-packing kernels of
//! the same bits for small batches.
//!
//! All matrices are dense row-major slices. `op(A)` is `m x k`: with [`Op::N`] `a`
//! holds `m x k` (row stride k), with [`Op::T`] `a` holds `k x m` (row stride m) and is
//! read transposed through strides. Likewise `op(B)` is `k x n`. `c` is `m x n`.
//!
//! ```text
//! Overwrite:  C_ij  = sum_p op(A)_ip op(B)_pj        (sgemm with alpha = 1, beta = 0)
//! Add:        C_ij += sum_p op(A)_ip op(B)_pj        (sgemm with alpha = 1, beta = 1)
//! ```
//!
//! # Why the bits do not depend on the thread count
//!
//! [`gemm`] cuts `C` into a grid of rectangular blocks ([`Partition`]) whose bounds depend
//! only on `(m, n, k)` and runs one `sgemm` per block; `k` is never split. In
//! matrixmultiply 0.3.11 (pinned), the value of `C_ij` is built as follows, whatever the
//! block it lies in:
//! * `k` is cut into chunks of `kc = 256` from `p = 0`, independently of `m` and `n`;
//! * within a chunk, the micro-kernel accumulates `a_ip * b_pj` with one FMA per `p`, in
//!   increasing `p`, from zero;
//! * the chunk sum `s` is merged into `C` as `C = fma(alpha, s, beta * C)` (full 16x16
//!   tiles) or `C = C * beta + s` (edge tiles, via a buffer computed with beta = 0); for
//!   the first chunk with beta = 0 both write `s` without reading `C`, and afterwards
//!   (beta = 1) both give `round(C + s)`.
//!
//! So the result of an element does not depend on which tile or block it lies in, and
//! any partition of `C` gives the bits of one `sgemm` call ([`gemm_serial`]); the tests
//! check this for several partitions and pool sizes. `alpha` is always 1 and `beta` is
//! 0 or 1: other values take paths whose roundings differ between full and edge tiles.
//!
//! # Partition rule (measured; see [`Partition::for_shape`])
//!
//! Median times on the 2-core AVX-512 development machine (AMD EPYC, 2 MiB L2 per
//! core, other work running intermittently, so +-10 %): one `sgemm` call on one thread
//! vs [`gemm_blocked`] with a given `rows x cols` grid in a 2-thread pool (ratio =
//! speed-up). `(m, k, n)`, ops as stored; **bold** = the grid [`Partition::for_shape`]
//! picks.
//!
//! | product                          | 1 call  | 1x4              | 1x8        | 2x2        | 4x1            | 4x2    |
//! |----------------------------------|--------:|-----------------:|-----------:|-----------:|---------------:|-------:|
//! | 10x784x800 NN (forward, B=10)    | 265 us  | **141 us 1.88x** | 1.82x      | 1.70x      | 1.00x          | 1.70x  |
//! | 10x800x784 NT (input grad, B=10) | 461 us  | **259 us 1.78x** | 1.86x      | 1.78x      | 1.00x          | 1.78x  |
//! | 784x10x800 TN (weight grad, B=10)| 137 us  | 1.30x            | -          | 1.72x      | **79 us 1.72x**| 1.09x  |
//! | 100x784x800 NN (forward, B=100)  | 1369 us | **750 us 1.83x** | 1.70x      | 1.57x      | 1.46x          | 1.44x  |
//! | 100x800x784 NT (input grad)      | 1550 us | **859 us 1.81x** | 1.69x      | 1.49x      | 1.19x          | 1.19x  |
//! | 784x100x800 TN (weight grad)     | 1135 us | 1.95x            | 1.91x      | **1.89x**  | 1.88x          | 1.78x  |
//! | 1000x784x800 NN (forward, B=1000)| 12.2 ms | 1.87x            | 1.72x      | 1.92x      | 1.91x          | **6.26 ms 1.95x** |
//!
//! (4x4 on the last shape: 1.80x.) With `m` = 10 there is one 16-row tile, so part
//! counts are capped: 2x2 and 4x2 run as 1x2, 4x1 as a single block (no gain). Column
//! blocks keep each core on its own slice of `W`; for `m` = 100,
//! row blocks re-pack all of `B` per block and lose to column blocks; more than 4-8
//! blocks only adds packing. For the write-bound weight gradient (`k` = 10) the cores
//! together reach the write bandwidth whichever grid has row blocks.
//!
//! # Direct (no-packing) kernels for small batches
//!
//! `sgemm` packs all of `op(B)` into a buffer on every call: at batch 10 the forward
//! `X (10x784) . W (784x800)` packs 2.5 MB of weights to run 12.5 MFLOP. [`gemm`]
//! therefore sends NN products (`A`, `B` as stored) with few rows of `C`, TN products
//! (`A^T B`, the weight gradient) with a small `k`, and NT products (`A B^T`, the input
//! gradient) to kernels that read `B` in place (module `direct`): a register tile of up
//! to 12 rows x 32 columns (AVX-512; 6 x 16 with AVX2), one FMA per `p` and element,
//! merged into `C` once per `kc` chunk. For NT, `B^T` is first copied by panels of 64
//! columns (`k x 64`, 16 x 16 register transposes with AVX-512, gathers with AVX2) into
//! a per-thread buffer kept between calls; the copy moves values, never rounds.
//! Their arithmetic is element for element that of matrixmultiply's FMA kernels (read
//! in its source, `gemm.rs` and `sgemm_kernel.rs`), so they give the bits of
//! [`gemm_serial`] and results do not depend on the batch size (evaluation at batch
//! 1000 and training at batch 10 round alike):
//!
//! ```text
//! for each chunk [p0, p1) of kc = 256:  s = +0;  s = fma(op(A)_ip, B_pj, s) for p = p0..p1
//! first chunk, Overwrite:  C_ij = s          (KernelAvx512: 1 * s)
//!                          C_ij = s + (+0)   (KernelFmaAvx2: fma(1, s, +0); -0 -> +0)
//! otherwise:               C_ij = C_ij + s   (both: fma(1, s, 1 * C_ij), one rounding)
//! ```
//!
//! They run only where matrixmultiply selects an FMA kernel (`avx512f`, or `fma` and
//! `avx2`; [`direct_path`]); elsewhere every product goes to `sgemm`. Known corner, in
//! matrixmultiply itself and only with its FMA-AVX2 kernel (not on AVX-512 machines):
//! for an element with `C_ij = -0` before a chunk whose sum is `-0` (all products
//! underflowing to negative zero), a full 8x8 tile writes `-0` and an edge tile `+0`, so
//! its sign depends on the tile position; the direct kernels write `-0` (full tiles).
//!
//! Measured (1 thread, medians, same machine; the FMA peak here is 117 GFLOP/s per
//! core, measured with 24 independent `vfmadd231ps zmm` chains; `sgemm` -> direct):
//!
//! | product                            | sgemm    | direct AVX-512   | direct AVX2 |
//! |------------------------------------|---------:|-----------------:|------------:|
//! | 10x784x800 NN (forward, B=10)      | 264 us   | 112 us (112 GF/s)| 157 us      |
//! | 10x800x10 NN (output layer, B=10)  | 8.7 us   | 2.5 us           | -           |
//! | 784x10x800 TN (weight grad, B=10)  | 134 us   | 128 us           | 129 us      |
//! | 100x784x800 NN (forward, B=100)    | 1347 us  | 1099 us          | 1119 us     |
//! | 100x800x800 NN                     | 1386 us  | 1137 us          | 1453 us     |
//! | 1000x784x800 NN (evaluation)       | 12.05 ms | 11.27 ms         | 11.62 ms    |
//! | 784x100x800 TN (weight grad, B=100)| 1130 us  | 1105 us          | 1267 us     |
//! | 784x256x800 TN                     | 2868 us  | 2856 us          | 4507 us     |
//! | 784x1000x800 TN                    | 11.61 ms | 11.78 ms         | 21.0 ms     |
//! | 10x800x784 NT (input grad, B=10)   | 453 us   | 179 us           | 353 us      |
//! | 10x10x800 NT (output layer, B=10)  | 8.6 us   | 4.1 us           | 4.5 us      |
//! | 100x800x784 NT (input grad, B=100) | 1585 us  | 1191 us          | 1389 us     |
//! | 1000x800x784 NT                    | 13.67 ms | 11.53 ms         | 11.98 ms    |
//!
//! Hence the thresholds [`DIRECT_AVX512`] and [`DIRECT_AVX2`]. The blocks of `C` are
//! those of [`Partition::for_shape`] either way (1 x 4 column blocks for the batch-10
//! forward, 4 x 1 row blocks for its weight gradient: splitting the weight gradient by
//! columns instead measured 2x slower on 2 threads, the cores' prefetchers fighting
//! over the lines at block edges).
//!
//! # Zero-skipping kernels for operands with many zeros
//!
//! A layer's input after dropout (keep 0.5) and ReLU is about three quarters zeros, and
//! four fifths of MNIST's pixels are 0. [`gemm`] counts the nonzero entries of `A`
//! (stopping early on dense operands) and sends NN and TN products whose `op(A)` is
//! at most [`SPARSE_MAX_DENSITY`] nonzero, and whose `C` has at least [`SPARSE_MIN_N`]
//! columns, to kernels (module `sparse`) that list each row's nonzero `p` and run the
//! element chains above over those terms only. A skipped term `0 * B_pj` (finite) only
//! ever changes the sign of a zero chain sum; the kernels recompute any chunk sum that
//! ends at `-0` with the full chain, so every element keeps the bits of one `sgemm`
//! call (the module doc of `sparse` has the argument; tests check every density,
//! chunk edge and pool size, and a constructed `-0` case). Which kernel runs depends on
//! the zeros of the operand, never on the thread count; `REGULAB_ZERO_SKIP=off` turns
//! the zero-skipping kernels off ([`zero_skipping_enabled`]), for timing the dense
//! path.
//!
//! Measured (1 thread, medians, `cargo bench -p regulab-benches --bench sparse --
//! density/`): the kernel alone vs the dense path, by density of `op(A)`:
//!
//! | product                      | dense   | 0.1    | 0.25   | 0.4    | 0.6     | 0.8     |
//! |------------------------------|--------:|-------:|-------:|-------:|--------:|--------:|
//! | 100x800x800 NN (forward)     | 1150 us | 364 us | 557 us | -      | 1034 us | -       |
//! | 800x100x800 TN (weight grad) | 1150 us | 403 us | 705 us | 1052 us| 1519 us | 1631 us |
//! | 10x784x800 NN (forward, B=10)| 125 us  | 36 us  | 61 us  | 98 us  | 117 us  | 156 us  |
//!
//! A listed term costs one load of `B` per FMA (the dense kernels share each load
//! between up to 12 rows), so the kernels pay off up to a density of about one half.

mod direct;
mod sparse;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::ops::Range;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::simd::{self, Level};
use crate::trace::{self, GemmPath};
use direct::{Block, Flavor};
use sparse::Pattern;

/// Whether an operand is used as stored or transposed (through strides, never copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// `C = op(A) op(B)` (beta = 0) or `C += op(A) op(B)` (beta = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// Overwrite C (beta = 0; C's old contents, even NaN, are never read).
    Overwrite,
    /// Add into C (beta = 1).
    Add,
}

impl Accumulate {
    /// The `beta` handed to `sgemm`: 0 or 1 (the only values whose bits are block-independent).
    fn beta(self) -> f32 {
        match self {
            Accumulate::Overwrite => 0.0,
            Accumulate::Add => 1.0,
        }
    }
}

/// Side of matrixmultiply's AVX-512 micro-tile (MR = NR = 16); block bounds are multiples
/// of it so that blocks add as few edge tiles as possible.
pub const TILE: usize = 16;

/// Below this much kernel work ([`kernel_flops`]) a product runs as one `sgemm` call: splitting it
/// costs more (task spawn, re-packing) than it saves.
pub const SERIAL_MAX_FLOPS: usize = 2_000_000;

/// Work aimed at per block for large products, in flops (sets the number of blocks).
pub const TARGET_BLOCK_FLOPS: usize = 64_000_000;

/// Upper bound on the number of blocks: each block re-packs its slices of `A` and `B`.
pub const MAX_PARTS: usize = 8;

/// Products with `k` at most this are write-bound (each element of `C` costs a few
/// FMAs): they are split by rows only, so every block is one contiguous range of `C`.
pub const WRITE_BOUND_MAX_K: usize = TILE;

/// A grid of blocks over `C` (`m x n`): `row_parts x col_parts` blocks whose bounds are
/// multiples of [`TILE`] (except at the matrix edge), as even as the tiles allow.
///
/// A partition is a function of the shape only, never of the thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    m: usize,
    n: usize,
    row_parts: usize,
    col_parts: usize,
}

impl Partition {
    /// A grid of `row_parts x col_parts` blocks over an `m x n` matrix. Part counts are
    /// capped at the number of tiles in that dimension (and raised to 1), so every block
    /// is non-empty when `m, n > 0`.
    pub fn grid(m: usize, n: usize, row_parts: usize, col_parts: usize) -> Self {
        Self {
            m,
            n,
            row_parts: row_parts.clamp(1, m.div_ceil(TILE).max(1)),
            col_parts: col_parts.clamp(1, n.div_ceil(TILE).max(1)),
        }
    }

    /// The partition [`gemm`] uses for `C (m x n) = op(A) (m x k) . op(B) (k x n)`:
    ///
    /// * `W = kernel_flops(m, n, k) < SERIAL_MAX_FLOPS` (2 MFLOP; e.g. 10x800x10, and
    ///   100x10x800, 1.8 MFLOP, where 2 threads measured 0.86x): one block, no rayon;
    ///   100x800x10 (2.9 MFLOP of padded tiles, 61 us) is split and measured 1.5-1.7x;
    /// * otherwise `P = 4 * ceil(W / (4 * TARGET_BLOCK_FLOPS))` blocks, capped at
    ///   `MAX_PARTS`: a multiple of 4, so pools of 1, 2 and 4 threads get equal shares;
    /// * the grid `R x C = P` minimises the packing traffic `C m + R n` (every column block
    ///   packs its rows of `A`, every row block packs its columns of `B`), with at most
    ///   one part per 16-wide tile in each direction. So with a small batch (`m` = 10)
    ///   the columns are split and each core streams its own slice of the weights `B`;
    ///   with few columns (`n` = 10) the rows are split; large square-ish products get a
    ///   2-D grid;
    /// * write-bound products (`k <= WRITE_BOUND_MAX_K`, e.g. the weight gradient
    ///   `X^T D` at batch 10) are split by rows only: contiguous blocks of `C`;
    /// * if no grid of `P` blocks fits the tiles, the largest `P' < P` that fits is used.
    pub fn for_shape(m: usize, n: usize, k: usize) -> Self {
        let flops = kernel_flops(m, n, k);
        if flops < SERIAL_MAX_FLOPS {
            return Self::grid(m, n, 1, 1);
        }
        let (tm, tn) = (m.div_ceil(TILE), n.div_ceil(TILE));
        let parts = (4 * flops.div_ceil(4 * TARGET_BLOCK_FLOPS)).min(MAX_PARTS);
        if k <= WRITE_BOUND_MAX_K && tm >= parts {
            return Self::grid(m, n, parts, 1);
        }
        for p in (1..=parts).rev() {
            let best = (1..=p)
                .filter(|r| p.is_multiple_of(*r) && *r <= tm && p / r <= tn)
                .min_by_key(|r| {
                    (p / r)
                        .saturating_mul(m)
                        .saturating_add(r.saturating_mul(n))
                });
            if let Some(r) = best {
                return Self::grid(m, n, r, p / r);
            }
        }
        Self::grid(m, n, 1, 1)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.row_parts * self.col_parts
    }

    /// Whether there are no blocks (never: an empty matrix is one empty block).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row and column part counts.
    pub fn parts(&self) -> (usize, usize) {
        (self.row_parts, self.col_parts)
    }

    /// Rows and columns of block `idx` (row-major order over the grid).
    ///
    /// # Panics
    /// If `idx >= self.len()`.
    pub fn block(&self, idx: usize) -> (Range<usize>, Range<usize>) {
        assert!(idx < self.len(), "block {idx} out of {} blocks", self.len());
        let (bi, bj) = (idx / self.col_parts, idx % self.col_parts);
        (
            split_tiles(self.m, self.row_parts, bi),
            split_tiles(self.n, self.col_parts, bj),
        )
    }
}

/// Flops the 16x16 micro-kernel executes for `m x k . k x n`, padding included:
/// `2 ceil16(m) ceil16(n) k` (a 10-row product costs as much as a 16-row one), saturating.
pub fn kernel_flops(m: usize, n: usize, k: usize) -> usize {
    let pad = |x: usize| x.div_ceil(TILE).saturating_mul(TILE);
    2usize
        .saturating_mul(pad(m))
        .saturating_mul(pad(n))
        .saturating_mul(k)
}

/// Part `j` of `parts` of `0..len`, cut at multiples of [`TILE`]: tiles
/// `[j T / parts, (j + 1) T / parts)` with `T = ceil(len / TILE)`.
fn split_tiles(len: usize, parts: usize, j: usize) -> Range<usize> {
    let tiles = len.div_ceil(TILE);
    let lo = (j * tiles / parts * TILE).min(len);
    let hi = ((j + 1) * tiles / parts * TILE).min(len);
    lo..hi
}

/// Validated operands of one product: shapes and element strides (row, column).
#[derive(Clone, Copy, Debug)]
struct Operands {
    m: usize,
    n: usize,
    k: usize,
    op_a: Op,
    op_b: Op,
    rsa: isize,
    csa: isize,
    rsb: isize,
    csb: isize,
}

impl Operands {
    /// Checks slice lengths against the shape and derives the strides.
    #[allow(clippy::too_many_arguments)]
    fn new(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
        c: &[f32],
    ) -> Self {
        let len = |x: usize, y: usize, what: &str| {
            x.checked_mul(y)
                .unwrap_or_else(|| panic!("gemm: {what} size {x} x {y} overflows usize"))
        };
        let (la, lb, lc) = (len(m, k, "A"), len(k, n, "B"), len(m, n, "C"));
        assert!(
            a.len() == la,
            "gemm: a has {} elements, expected m*k = {m}*{k} = {la}",
            a.len()
        );
        assert!(
            b.len() == lb,
            "gemm: b has {} elements, expected k*n = {k}*{n} = {lb}",
            b.len()
        );
        assert!(
            c.len() == lc,
            "gemm: c has {} elements, expected m*n = {m}*{n} = {lc}",
            c.len()
        );
        // Strides are element counts; every slice fits in isize::MAX bytes and strides are
        // only used when all of m, n, k > 0, so each stride is at most a slice length.
        let s = |x: usize| x as isize;
        let (rsa, csa) = match op_a {
            Op::N => (s(k), 1),
            Op::T => (1, s(m)),
        };
        let (rsb, csb) = match op_b {
            Op::N => (s(n), 1),
            Op::T => (1, s(k)),
        };
        Self {
            m,
            n,
            k,
            op_a,
            op_b,
            rsa,
            csa,
            rsb,
            csb,
        }
    }

    /// The product by the portable scalar reference of the direct kernels' arithmetic.
    fn reference(&self, flavor: Flavor, a: &[f32], b: &[f32], c: &mut [f32], acc: Accumulate) {
        let strides = |rs: isize, cs: isize| (rs as usize, cs as usize);
        direct::reference(
            flavor,
            (self.m, self.n, self.k),
            a,
            strides(self.rsa, self.csa),
            b,
            strides(self.rsb, self.csb),
            c,
            acc == Accumulate::Overwrite,
        );
    }

    /// Whether there is no product to compute (`m`, `n` or `k` is 0); in that case `C` has
    /// been set to its final value (zeros for Overwrite, unchanged for Add).
    fn handle_degenerate(&self, c: &mut [f32], acc: Accumulate) -> bool {
        if self.m == 0 || self.n == 0 || self.k == 0 {
            if acc == Accumulate::Overwrite {
                c.fill(0.0);
            }
            true
        } else {
            false
        }
    }
}

/// `C`'s base pointer, shared by the tasks that write its disjoint blocks.
#[derive(Clone, Copy)]
struct SharedC(*mut f32);

// SAFETY: the pointer is only dereferenced (by sgemm) inside `run_block`, and the blocks
// handed to concurrent tasks are disjoint sets of elements of `C`, which outlives the
// parallel loop (it is borrowed mutably by `gemm_blocked` for its whole duration).
unsafe impl Send for SharedC {}
// SAFETY: as above; tasks share only the base address, never an element.
unsafe impl Sync for SharedC {}

/// One `sgemm` over the block `rows x cols` of `C`.
///
/// # Safety
/// `ops` must have been validated against `a`, `b` and the `m x n` allocation at `c`, all
/// of `m, n, k` must be positive, `rows`/`cols` must lie within `0..m`/`0..n` and be
/// non-empty, and no other thread may access the elements of this block meanwhile.
unsafe fn run_block(
    ops: &Operands,
    a: &[f32],
    b: &[f32],
    c: SharedC,
    rows: Range<usize>,
    cols: Range<usize>,
    beta: f32,
) {
    debug_assert!(rows.start < rows.end && rows.end <= ops.m);
    debug_assert!(cols.start < cols.end && cols.end <= ops.n);
    let a_off = rows.start as isize * ops.rsa;
    let b_off = cols.start as isize * ops.csb;
    let c_off = rows.start * ops.n + cols.start;
    // SAFETY: the offsets address element (rows.start, 0) of op(A), (0, cols.start) of
    // op(B) and (rows.start, cols.start) of C, all inside their slices (validated lengths,
    // non-empty ranges within bounds). sgemm reads op(A)'s rows `rows`, op(B)'s columns
    // `cols` and writes C's block `rows x cols` (row stride n), all in bounds; the caller
    // guarantees exclusive access to that block. With beta = 0, sgemm does not read C.
    unsafe {
        matrixmultiply::sgemm(
            rows.len(),
            ops.k,
            cols.len(),
            1.0,
            a.as_ptr().offset(a_off),
            ops.rsa,
            ops.csa,
            b.as_ptr().offset(b_off),
            ops.rsb,
            ops.csb,
            beta,
            c.0.add(c_off),
            ops.n as isize,
            1,
        );
    }
}

/// Thresholds deciding which products [`gemm`] sends to the direct kernels of one
/// instruction set (measured; see the module doc). A product is `C (m x n) (+)= op(A)
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

/// The instruction set of a direct kernel (what [`Level::Avx512`] / [`Level::Avx2`] run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// The ISA running `level`'s direct kernels; `None` for [`Level::Scalar`].
    fn of(level: Level) -> Option<Isa> {
        match level {
            Level::Avx512 => Some(Isa::Avx512),
            Level::Avx2 => Some(Isa::Avx2),
            Level::Scalar => None,
        }
    }
}

/// The rounding flavor of the FMA kernel matrixmultiply 0.3.11 selects in this build on
/// this CPU ([`crate::cpu::sgemm_class`]: its `sgemm_kernel::detect`, following its
/// compile-time `MMTEST_FEATURE` filter: `avx512f` -> `KernelAvx512`, else `fma` and
/// `avx2` -> `KernelFmaAvx2`), or `None` if it selects a non-FMA kernel (whose bits no
/// direct kernel reproduces) or was built with its blocking override
/// (`MATMUL_SGEMM_KC` other than 256 at compile time), which we do not follow.
fn mm_fma_flavor() -> Option<Flavor> {
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

/// The direct kernel [`gemm`] runs for this product, if any, with its rounding flavor.
fn direct_isa(m: usize, n: usize, k: usize, op_a: Op, op_b: Op) -> Option<(Isa, Flavor)> {
    let flavor = mm_fma_flavor()?;
    let isa = Isa::of(simd::level())?;
    let t = match isa {
        Isa::Avx512 => &DIRECT_AVX512,
        Isa::Avx2 => &DIRECT_AVX2,
    };
    direct_shape(t, m, n, k, op_a, op_b).then_some((isa, flavor))
}

/// The SIMD level of the direct (no-packing) kernel [`gemm`] uses for
/// `C (m x n) (+)= op(A) op(B)` on this machine, or `None` when it calls matrixmultiply.
///
/// Some only if (1) matrixmultiply selects an FMA kernel here (so a direct kernel can
/// reproduce its bits), (2) the elementwise level [`simd::level`] is AVX2 or AVX-512
/// (`REGULAB_SIMD=scalar` turns the direct kernels off), (3) the product is NN, TN or NT
/// within that level's thresholds ([`DIRECT_AVX512`], [`DIRECT_AVX2`]). A function of
/// the shape and the machine, never of the thread count.
pub fn direct_path(m: usize, n: usize, k: usize, op_a: Op, op_b: Op) -> Option<Level> {
    direct_isa(m, n, k, op_a, op_b).map(|(isa, _)| match isa {
        Isa::Avx512 => Level::Avx512,
        Isa::Avx2 => Level::Avx2,
    })
}

/// Single-threaded `C (+)= op(A) op(B)` by the direct (no-packing) kernel of a chosen
/// level, whatever the shape: [`Level::Avx512`] and [`Level::Avx2`] run the SIMD kernels
/// [`gemm`] dispatches to; [`Level::Scalar`] runs the portable reference of the same
/// arithmetic (`f32::mul_add`, slow), for tests.
///
/// On a machine where matrixmultiply selects an FMA kernel, every level gives the bits of
/// [`gemm_serial`] (the module doc gives the arithmetic); elsewhere the result follows the
/// AVX-512 kernel's arithmetic and differs from matrixmultiply's.
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`, or if `level` is not available on
/// this CPU ([`simd::available`]).
#[allow(clippy::too_many_arguments)]
pub fn gemm_direct(
    level: Level,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    acc: Accumulate,
) {
    let ops = Operands::new(m, n, k, a, op_a, b, op_b, c);
    simd::assert_available(level);
    if ops.handle_degenerate(c, acc) {
        return;
    }
    let flavor = mm_fma_flavor().unwrap_or(Flavor::Avx512);
    match Isa::of(level) {
        None => ops.reference(flavor, a, b, c, acc),
        Some(isa) => {
            let base = SharedC(c.as_mut_ptr());
            // SAFETY: ops validated against a, b, c; m, n, k > 0; the block is all of C,
            // mutably borrowed here and accessed by this thread only; `level` (hence
            // `isa`) is available on this CPU (asserted above).
            unsafe { run_direct(isa, flavor, &ops, a, b, base, 0..m, 0..n, acc) }
        }
    }
}

/// The [`Block`] `rows x cols` of a validated product (pointers at the block's origin).
///
/// # Safety
/// As [`run_block`].
#[allow(clippy::too_many_arguments)]
unsafe fn make_block(
    flavor: Flavor,
    ops: &Operands,
    a: &[f32],
    b: &[f32],
    c: SharedC,
    rows: Range<usize>,
    cols: Range<usize>,
    acc: Accumulate,
) -> Block {
    debug_assert!(rows.start < rows.end && rows.end <= ops.m);
    debug_assert!(cols.start < cols.end && cols.end <= ops.n);
    let (a_off, lda) = match ops.op_a {
        Op::N => (rows.start * ops.k, ops.k),
        Op::T => (rows.start, ops.m),
    };
    let (b_off, ldb) = match ops.op_b {
        Op::N => (cols.start, ops.n),
        Op::T => (cols.start * ops.k, ops.k),
    };
    // SAFETY: the offsets address element (rows.start, 0) of op(A), (0, cols.start) of B
    // and (rows.start, cols.start) of C, inside their validated slices (caller); the
    // kernels read op(A)'s rows `rows` (k columns), B's columns `cols` (k rows) and
    // read/write C's block `rows x cols` (row stride n), all in bounds.
    unsafe {
        Block {
            k: ops.k,
            a: a.as_ptr().add(a_off),
            lda,
            trans_a: ops.op_a == Op::T,
            b: b.as_ptr().add(b_off),
            ldb,
            trans_b: ops.op_b == Op::T,
            c: c.0.add(rows.start * ops.n + cols.start),
            ldc: ops.n,
            rows: rows.len(),
            cols: cols.len(),
            overwrite: acc == Accumulate::Overwrite,
            flavor,
        }
    }
}

/// The direct kernel of `isa` over the block `rows x cols` of `C`.
///
/// # Safety
/// As [`run_block`]; in addition the CPU must support `isa`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_direct(
    isa: Isa,
    flavor: Flavor,
    ops: &Operands,
    a: &[f32],
    b: &[f32],
    c: SharedC,
    rows: Range<usize>,
    cols: Range<usize>,
    acc: Accumulate,
) {
    // SAFETY: the block is valid and exclusively ours (caller); the CPU supports `isa`.
    unsafe { run_isa(isa, &make_block(flavor, ops, a, b, c, rows, cols, acc)) }
}

/// The zero-skipping kernel of `isa` over the block `rows x cols` of `C`, with `pat`
/// (the pattern of op(A)'s rows `rows`) or building its own.
///
/// # Safety
/// As [`run_direct`]; `op_b` is [`Op::N`] and `m k <= u32::MAX`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_sparse(
    isa: Isa,
    flavor: Flavor,
    ops: &Operands,
    a: &[f32],
    b: &[f32],
    c: SharedC,
    rows: Range<usize>,
    cols: Range<usize>,
    acc: Accumulate,
    pat: Option<&Pattern>,
) {
    // SAFETY: the block is valid and exclusively ours (caller); the CPU supports `isa`.
    unsafe {
        let blk = make_block(flavor, ops, a, b, c, rows, cols, acc);
        run_sparse_isa(isa, &blk, pat);
    }
}

/// Builds the pattern of all rows of `op(A) = A` (NN products) with `isa`.
///
/// # Safety
/// The CPU must support `isa`; `ops` validated against `a`, `op_a` N, `m k <= u32::MAX`.
unsafe fn build_pattern(isa: Isa, ops: &Operands, a: &[f32], pat: &mut Pattern) {
    debug_assert_eq!(ops.op_a, Op::N);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `a` holds m x k elements (validated); the CPU supports `isa` (caller).
    unsafe {
        match isa {
            Isa::Avx512 => x86::pattern_rows_avx512(pat, a.as_ptr(), ops.k, ops.m, ops.k),
            Isa::Avx2 => x86::pattern_rows_avx2(pat, a.as_ptr(), ops.k, ops.m, ops.k),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no {isa:?} kernels on this architecture ({ops:?} {a:?} {pat:?})");
}

/// Calls the zero-skipping entry point of `isa`.
///
/// # Safety
/// The CPU must support `isa`; `blk` as `sparse::run` requires.
#[cfg(target_arch = "x86_64")]
unsafe fn run_sparse_isa(isa: Isa, blk: &Block, pat: Option<&Pattern>) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => x86::sparse_avx512(blk, pat),
            Isa::Avx2 => x86::sparse_avx2(blk, pat),
        }
    }
}

/// No SIMD kernels off x86-64 (no SIMD level is available there).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn run_sparse_isa(isa: Isa, _blk: &Block, _pat: Option<&Pattern>) {
    unreachable!("no {isa:?} zero-skipping kernel on this architecture");
}

/// Calls the entry point of `isa`.
///
/// # Safety
/// The CPU must support `isa`; `blk` as the entry points require.
#[cfg(target_arch = "x86_64")]
unsafe fn run_isa(isa: Isa, blk: &Block) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => x86::block_avx512(blk),
            Isa::Avx2 => x86::block_avx2(blk),
        }
    }
}

/// No SIMD direct kernels off x86-64 ([`direct_path`] is always `None` there and no
/// SIMD level is available).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn run_isa(isa: Isa, _blk: &Block) {
    unreachable!("no {isa:?} direct kernel on this architecture");
}

/// Reserve, on every thread of the current rayon pool (and the calling thread), the
/// per-thread buffers of the direct and zero-skipping kernels: the buffer the direct NT
/// kernel packs `B^T` panels into, for inner dimensions up to `max_k` (`max_k * 64`
/// floats), and the nonzero pattern (`max_a` indices and a little more) and
/// accumulator rows (`max_rows * 512` bytes) of the zero-skipping kernels, for products
/// with up to `max_a` elements in `A` and `max_rows` rows of `op(A)`. Without it a thread allocates these the first
/// time it runs such a block, which with work stealing may be any later minibatch; with
/// it, training steps allocate nothing at all after the first.
pub fn reserve_thread_buffers(max_k: usize, max_rows: usize, max_a: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let both = || {
            x86::reserve_panel(max_k);
            sparse::reserve(max_a + max_rows * sparse::PB + 16, max_rows);
        };
        both();
        rayon::broadcast(|_| both());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (max_k, max_rows, max_a);
}

/// Parallel `C (+)= op(A) op(B)` in the current rayon pool; bits independent of the pool size.
///
/// Blocks of `C` follow [`Partition::for_shape`]`(m, n, k)`; the bits equal those of
/// [`gemm_serial`].
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    acc: Accumulate,
) {
    if let Some((isa, flavor)) = sparse_isa(m, n, k, op_b)
        && let Some(nnz) = sparse_nonzeros(a, m, k)
    {
        let ops = Operands::new(m, n, k, a, op_a, b, op_b, c);
        return gemm_sparse_par(isa, flavor, &ops, a, b, c, acc, nnz);
    }
    gemm_blocked(
        m,
        n,
        k,
        a,
        op_a,
        b,
        op_b,
        c,
        acc,
        Partition::for_shape(m, n, k),
    );
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
fn sparse_isa(m: usize, n: usize, k: usize, op_b: Op) -> Option<(Isa, Flavor)> {
    if !zero_skipping_enabled() {
        return None;
    }
    let indexable = m
        .checked_mul(k + sparse::PB)
        .is_some_and(|e| e <= u32::MAX as usize);
    if op_b != Op::N || n < SPARSE_MIN_N || m == 0 || k == 0 || !indexable {
        return None;
    }
    Some((Isa::of(simd::level())?, mm_fma_flavor()?))
}

/// Whether the zero-skipping kernels may run: yes unless the environment variable
/// `REGULAB_ZERO_SKIP` is `off` (or `0`) when first asked, e.g. to time the dense
/// path alone, or [`set_zero_skipping`] said otherwise. Either way the bits are the same.
pub fn zero_skipping_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    match ZERO_SKIP_OVERRIDE.load(std::sync::atomic::Ordering::Relaxed) {
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
static ZERO_SKIP_OVERRIDE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Turns the zero-skipping kernels on or off for this whole process from now on,
/// whatever `REGULAB_ZERO_SKIP` says: for benchmarks that time both paths in one run.
/// Never changes a result (both paths give the same bits).
pub fn set_zero_skipping(on: bool) {
    ZERO_SKIP_OVERRIDE.store(if on { 1 } else { 2 }, std::sync::atomic::Ordering::Relaxed);
}

/// The number of nonzero entries of `a` (`m k` elements) if it is at most
/// [`SPARSE_MAX_DENSITY`] of them; `None` as soon as the count passes that, or when the
/// first 1024 entries are more than 1.25 times that dense (a dense operand, e.g.
/// sigmoid activations, costs a 4 KB look). The decision only picks between two kernels
/// of identical bits, so a sample may decide it.
fn sparse_nonzeros(a: &[f32], m: usize, k: usize) -> Option<usize> {
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

/// Whether [`gemm`] runs `C (m x n) (+)= op(A) op(B)` with this `a` (`m x k` elements) on
/// the zero-skipping kernels, and at which SIMD level: when the machine has the direct
/// kernels ([`direct_path`]'s conditions), `op(B)` is `B`, `n >= SPARSE_MIN_N` and at
/// most [`SPARSE_MAX_DENSITY`] of `a`'s entries are nonzero (and, to decide dense
/// operands at a glance, at most 1.25 times that share of its first 1024). A function of the shape,
/// the zeros of `a` and the machine, never of the thread count; either way the bits
/// are those of [`gemm_serial`] (finite `b`; see the module doc).
pub fn sparse_path(m: usize, n: usize, k: usize, a: &[f32], op_b: Op) -> Option<Level> {
    let (isa, _) = sparse_isa(m, n, k, op_b)?;
    sparse_nonzeros(a, m, k)?;
    Some(match isa {
        Isa::Avx512 => Level::Avx512,
        Isa::Avx2 => Level::Avx2,
    })
}

/// The zero-skipping product in the current rayon pool: NN products split by columns
/// (each block reads its slice of `B`; the pattern of `A`'s rows is built once, here),
/// TN products by rows (each block builds the pattern of its rows of `A^T`); 4 blocks,
/// or 1 below [`SERIAL_MAX_FLOPS`] of useful work (`2 nnz n`).
#[allow(clippy::too_many_arguments)]
fn gemm_sparse_par(
    isa: Isa,
    flavor: Flavor,
    ops: &Operands,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    acc: Accumulate,
    nnz: usize,
) {
    let (m, n) = (ops.m, ops.n);
    let parts = if nnz.saturating_mul(2 * n) < SERIAL_MAX_FLOPS {
        1
    } else {
        4
    };
    let partition = match ops.op_a {
        Op::N => Partition::grid(m, n, 1, parts),
        Op::T => Partition::grid(m, n, parts, 1),
    };
    let base = SharedC(c.as_mut_ptr());
    let mut shared = (ops.op_a == Op::N && partition.len() > 1).then(sparse::take);
    if let Some(pat) = shared.as_mut() {
        // SAFETY: ops validated against a; op_a is N; m k <= u32::MAX (sparse_isa); the
        // CPU supports `isa` (sparse_isa took it from simd::level()).
        unsafe { build_pattern(isa, ops, a, pat) };
    }
    let pat = shared.as_ref();
    trace::gemm(GemmPath::Sparse, partition.len());
    let one = |idx: usize| {
        let (rows, cols) = partition.block(idx);
        // SAFETY: as in `gemm_blocked` (validated operands, disjoint non-empty blocks,
        // C borrowed until the loop joins); op_b is N and m k <= u32::MAX
        // (sparse_isa); the shared pattern covers all rows, which every NN block has.
        unsafe { run_sparse(isa, flavor, ops, a, b, base, rows, cols, acc, pat) }
    };
    if partition.len() == 1 {
        one(0);
    } else {
        (0..partition.len()).into_par_iter().for_each(one);
    }
    if let Some(p) = shared {
        sparse::put_back(p);
    }
}

/// Single-threaded `C (+)= op(A) B` by the zero-skipping kernel of a chosen level,
/// whatever the density of `A` (for tests and benches): [`Level::Avx512`] and
/// [`Level::Avx2`] run the SIMD kernels [`gemm`] dispatches to, [`Level::Scalar`] the
/// portable dense reference. Bits as [`gemm_direct`]'s for finite `b`.
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`, if `op_b` is not [`Op::N`], if
/// `m (k + 128) > u32::MAX`, or if `level` is not available on this CPU.
#[allow(clippy::too_many_arguments)]
pub fn gemm_sparse(
    level: Level,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    c: &mut [f32],
    acc: Accumulate,
) {
    let ops = Operands::new(m, n, k, a, op_a, b, Op::N, c);
    simd::assert_available(level);
    assert!(
        m.checked_mul(k + sparse::PB)
            .is_some_and(|e| e <= u32::MAX as usize),
        "gemm_sparse: m (k + {}) = {m} x ({k} + {}) exceeds u32",
        sparse::PB,
        sparse::PB
    );
    if ops.handle_degenerate(c, acc) {
        return;
    }
    let flavor = mm_fma_flavor().unwrap_or(Flavor::Avx512);
    match Isa::of(level) {
        None => ops.reference(flavor, a, b, c, acc),
        Some(isa) => {
            let base = SharedC(c.as_mut_ptr());
            // SAFETY: ops validated; m, n, k > 0; the block is all of C, borrowed here;
            // `level` is available (asserted); op_b N and m k <= u32::MAX (checked).
            unsafe { run_sparse(isa, flavor, &ops, a, b, base, 0..m, 0..n, acc, None) }
        }
    }
}

/// `C (+)= op(A) op(B)` with an explicit partition of `C`: one `sgemm` (or one direct
/// kernel call, when [`direct_path`] says so) per block, the blocks run in parallel in
/// the current rayon pool (a single block runs on the calling thread). Any partition
/// gives the bits of [`gemm_serial`]; this entry point exists to test that and to
/// measure alternatives.
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`, or the partition was made for another
/// `m x n`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_blocked(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    acc: Accumulate,
    partition: Partition,
) {
    let ops = Operands::new(m, n, k, a, op_a, b, op_b, c);
    assert!(
        partition.m == m && partition.n == n,
        "gemm: partition made for {}x{}, C is {m}x{n}",
        partition.m,
        partition.n
    );
    if ops.handle_degenerate(c, acc) {
        return;
    }
    let beta = acc.beta();
    let base = SharedC(c.as_mut_ptr());
    let direct = direct_isa(m, n, k, op_a, op_b);
    trace::gemm(GemmPath::dense(direct.is_some()), partition.len());
    let one = |idx: usize| {
        let (rows, cols) = partition.block(idx);
        // SAFETY: ops validated against a, b, c; m, n, k > 0; the partition's blocks are
        // non-empty, within bounds and pairwise disjoint, and each index is run once, so
        // no two tasks touch the same element; `c` stays mutably borrowed until all
        // tasks have finished (the parallel loop below joins before returning).
        // `direct_isa` returned an ISA only if this CPU supports it.
        unsafe {
            match direct {
                Some((isa, flavor)) => run_direct(isa, flavor, &ops, a, b, base, rows, cols, acc),
                None => run_block(&ops, a, b, base, rows, cols, beta),
            }
        }
    };
    if partition.len() == 1 {
        one(0);
    } else {
        (0..partition.len()).into_par_iter().for_each(one);
    }
}

/// Single-threaded `C (+)= op(A) op(B)`: one `sgemm` call (the baseline of the benches).
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_serial(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    acc: Accumulate,
) {
    let ops = Operands::new(m, n, k, a, op_a, b, op_b, c);
    if ops.handle_degenerate(c, acc) {
        return;
    }
    let base = SharedC(c.as_mut_ptr());
    // SAFETY: ops validated against a, b, c; m, n, k > 0; the block is all of C, which is
    // mutably borrowed here and accessed by this thread only.
    unsafe { run_block(&ops, a, b, base, 0..m, 0..n, acc.beta()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of any partition tile `C` exactly: every element in exactly one block.
    #[test]
    fn partitions_cover_c_exactly_once() {
        for &(m, n) in &[
            (1, 1),
            (10, 800),
            (784, 800),
            (17, 33),
            (100, 784),
            (1000, 10),
        ] {
            for &(rp, cp) in &[(1, 1), (1, 4), (4, 1), (3, 5), (8, 8), (100, 100)] {
                let p = Partition::grid(m, n, rp, cp);
                let mut hits = vec![0u8; m * n];
                for idx in 0..p.len() {
                    let (rows, cols) = p.block(idx);
                    assert!(!rows.is_empty() && !cols.is_empty(), "{m}x{n} {rp}x{cp}");
                    assert!(rows.start.is_multiple_of(TILE) && cols.start.is_multiple_of(TILE));
                    for i in rows {
                        for j in cols.clone() {
                            hits[i * n + j] += 1;
                        }
                    }
                }
                assert!(hits.iter().all(|&h| h == 1), "{m}x{n} {rp}x{cp}");
            }
        }
    }

    /// The partitions of the lab's products are the documented ones (module doc), and
    /// the same in pools of 1, 2, 3 and 8 threads (and outside any pool): a rule that
    /// consulted the thread count would differ between some two of them.
    #[test]
    fn partition_depends_on_shape_only() {
        // (m, n, k) -> (row parts, column parts)
        let expected = [
            ((10, 800, 10), (1, 1)),    // output layer, batch 10: below SERIAL_MAX_FLOPS
            ((10, 800, 784), (1, 4)),   // forward, batch 10: column blocks
            ((784, 800, 10), (4, 1)),   // weight gradient, batch 10: write-bound, rows
            ((100, 800, 784), (1, 4)),  // forward, batch 100
            ((784, 800, 100), (2, 2)),  // weight gradient, batch 100
            ((1000, 800, 784), (4, 2)), // evaluation, batch 1000: 8 blocks
        ];
        let check = |threads: usize| {
            for ((m, n, k), parts) in expected {
                assert_eq!(
                    Partition::for_shape(m, n, k).parts(),
                    parts,
                    "{m}x{n}x{k} in a pool of {threads} threads"
                );
            }
        };
        check(rayon::current_num_threads());
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                assert_eq!(rayon::current_num_threads(), threads);
                check(threads)
            });
        }
    }
}
