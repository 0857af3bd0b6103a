//! The partition policy: which blocks of `C` a product is cut into, run in parallel.
//!
//! Why a policy of its own: the partition is what makes [`super::gemm`] parallel and
//! what keeps it deterministic. Its bounds depend only on `(m, n, k)`, never on the
//! pool size, and `k` is never split, so every element of `C` is computed by one kernel
//! call whatever the thread count (the parent module says why the block an element lies
//! in never changes its bits). Within that constraint the grid is chosen for speed on
//! two cores: tiny products run as one call (a task hand-off costs more than they
//! take); otherwise a multiple of 4 blocks (equal shares for pools of 1, 2 and 4
//! threads), as few as the work allows (each block re-packs its slices of `A` and `B`),
//! in the grid that packs least. So a small batch (`m` = 10) splits the columns and
//! each core streams its own slice of the weights; few columns (`n` = 10) split the
//! rows; the write-bound weight gradient (`k` <= 16) gets row blocks, contiguous in `C`.
//! With `m` = 10 there is one 16-row tile, so part counts are capped by the tiles.
//!
//! The measurements behind the rule (every grid against one `sgemm` call, on the lab's
//! products) are in `benches/README.md`, section "Kernels: GEMM partition".
//!
//! Since the kernel choice is measured (module `tune`), this shape rule has two uses
//! left: it is the partition of the `fixed` policy, and it says which products are
//! worth splitting at all (those it cuts into several blocks). Under the measured
//! policy a split product runs on [`Partition::pinned`]: one column part per thread
//! of the pool, the same columns on the same thread in every product (module
//! [`crate::pinned`]). That partition depends on the pool size; the bits do not (an
//! element's value does not depend on its block, as above).

use std::ops::Range;

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

internal!(
    /// A grid of blocks over `C` (`m x n`): `row_parts x col_parts` blocks whose bounds
    /// are multiples of [`TILE`] (except at the matrix edge), as even as the tiles allow.
    ///
    /// A partition is a function of the shape only, never of the thread count.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Partition {
        pub(super) m: usize,
        pub(super) n: usize,
        row_parts: usize,
        col_parts: usize,
    }
);

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // test and bench interface
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

    /// The partition [`super::gemm`] uses for `C (m x n) = op(A) (m x k) . op(B) (k x n)`:
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

    /// The pinned partition for a pool of `threads` (module [`crate::pinned`]): the
    /// columns of `C` cut into `threads` parts at [`crate::pinned::cols`], so that
    /// thread `t` owns the same columns of a weight matrix in every product and pass
    /// of a step, and the rows into `rows` parts (blocks in row-major order, so block
    /// `i` is in column part `i % threads`: its owner's); the rows only, into
    /// `threads * rows` parts, when there are fewer column tiles than threads.
    pub fn pinned(m: usize, n: usize, threads: usize, rows: usize) -> Self {
        if n.div_ceil(TILE) >= threads {
            Self::grid(m, n, rows, threads)
        } else {
            Self::grid(m, n, threads.saturating_mul(rows), 1)
        }
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
/// `[j T / parts, (j + 1) T / parts)` with `T = ceil(len / TILE)` (the cut of
/// [`crate::pinned::cols`], so a pinned partition's blocks are the pinned ranges).
fn split_tiles(len: usize, parts: usize, j: usize) -> Range<usize> {
    crate::pinned::cols(len, parts, j)
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
