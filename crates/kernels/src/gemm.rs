//! Deterministic parallel f32 GEMM: `C = op(A) op(B)` or `C += op(A) op(B)` on
//! row-major slices, the bits of one `matrixmultiply::sgemm` call whatever the thread
//! count, the batch size or the kernel that runs.
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
//! Why the module is built this way: nearly all of a training step's time is in these
//! products, and a seeded run must give the same bits on one thread or many, at batch
//! 10 or 1000. So [`gemm`] runs one of three kernels that compute every element by the
//! same FMA chain (matrixmultiply's packed `sgemm`; the direct, no-packing kernels of
//! module `direct`; the zero-skipping kernels of module `sparse` for operands with many
//! zeros), over blocks of `C` (never over `k`), and picks the kernel by timing them
//! on the running CPU (module `tune`). A split product gives each thread of the pool
//! the same columns every time (module [`crate::pinned`]).
//!
//! | file            | what                                                           |
//! |-----------------|----------------------------------------------------------------|
//! | `gemm.rs`       | the API and the parallel loops over the blocks of `C`          |
//! | `operands.rs`   | the operand descriptor `MatRef`, the validated `Product`       |
//! | `partition.rs`  | the partition policy: which blocks of `C` (`Partition`)        |
//! | `dispatch.rs`   | which kernels may run: FMA flavour, fixed thresholds, switches |
//! | `tune.rs`       | which kernel does run: timed at first use of each signature    |
//! | `direct.rs`     | the direct kernels (register tiles, `B` read in place)         |
//! | `sparse.rs`     | the zero-skipping kernels (`op(A)`'s nonzeros listed per row)  |
//!
//! # Why the bits do not depend on the thread count
//!
//! [`gemm`] cuts `C` into a grid of rectangular blocks (`Partition`) and runs one
//! kernel call per block; `k` is never split. In
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
//! The direct and zero-skipping kernels compute the same chains (their module docs give
//! the arithmetic, read in matrixmultiply's `gemm.rs` and `sgemm_kernel.rs`), so the
//! kernel that runs never changes a bit either.
//!
//! The single-kernel entry points (`gemm_blocked` with an explicit partition,
//! `gemm_direct`, `gemm_sparse`) are for tests and benchmarks: public with the cargo
//! feature `internals`. The positional arguments follow BLAS (`m, n, k`, then each
//! operand with its `op`), the order every caller and test uses; inside the module a
//! product travels as one `Product`.

mod direct;
mod dispatch;
mod operands;
mod partition;
mod sparse;
mod tune;

use std::time::Instant;

use rayon::prelude::*;

use crate::pinned;
use crate::simd::{self, Level};
use crate::trace::{self, GemmPath};
use direct::Flavor;
use operands::{Product, SharedC};

pub use dispatch::{
    DIRECT_AVX2, DIRECT_AVX512, DirectThresholds, SPARSE_MAX_DENSITY, SPARSE_MIN_N, direct_path,
    set_zero_skipping, sparse_path, zero_skipping_enabled,
};
internal!(
    pub use partition::Partition;
);
pub use partition::{
    MAX_PARTS, SERIAL_MAX_FLOPS, TARGET_BLOCK_FLOPS, TILE, WRITE_BOUND_MAX_K, kernel_flops,
};
pub use tune::{
    CALIBRATION_REVISION, Candidates, Choice, Decision, GroupChoice, Kernel, Key, Learned, Plan,
    ROUNDS, STREAK, TRIAL, choice, decisions, density_class, learned, seed, set_choice,
};

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

/// Parallel `C (+)= op(A) op(B)` in the current rayon pool; bits independent of the pool size.
///
/// The kernel is the fastest measured on this CPU for this signature (module `tune`:
/// matrixmultiply's `sgemm` or the direct kernels over the blocks of
/// `Partition::for_shape(m, n, k)`, or the zero-skipping kernels with their own split);
/// whichever runs, the bits equal those of [`gemm_serial`].
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`.
#[allow(clippy::too_many_arguments)] // BLAS order, see the module doc
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
    let p = Product::new((m, n, k), (a, op_a), (b, op_b), c, acc);
    let policy = tune::choice();
    if policy == Choice::Fixed {
        let kernel = if dispatch::sparse_level(m, n, k, op_b).is_some() {
            Kernel::Sparse
        } else {
            Kernel::Sgemm // `run` takes the fixed dense rule
        };
        let plan = Plan {
            kernel,
            split: true,
        };
        let partition = Partition::for_shape(m, n, k);
        return run(
            plan,
            &p,
            c,
            (partition, Spread::Steal),
            dispatch::direct_level(m, n, k, op_a, op_b),
        );
    }
    let direct = dispatch::direct_machine().filter(|_| (op_a, op_b) != (Op::T, Op::T));
    let sparse = dispatch::sparse_level(m, n, k, op_b).is_some();
    // In a pool of several threads a split runs pinned, one column block per thread
    // (whatever the shape's rule says); in a pool of one the shape's blocks run in turn
    // (a different traversal of `B` and `C`, sometimes faster). Wherever the partition
    // has several blocks, one block on this thread is a candidate too: even a product
    // the shape's rule keeps whole is split across a pool's threads, and where waking
    // them costs more than the product (measured on an AMD EPYC VM: a 10x800x10 product
    // took 13 us split in exploration and 1.07 ms in the steady loop, once its group
    // had settled on one block and the other threads slept), it must be able to follow
    // its group's decision.
    let shape = Partition::for_shape(m, n, k);
    let threads = pinned::threads();
    let (partition, spread) = match threads {
        1 => (shape, Spread::Steal),
        // row parts too where the rows are many (evaluation): as many as the shape's
        // rule gives each thread blocks, each of at least PINNED_MIN_ROWS rows, so that
        // a core slowed down by the machine can leave its last row blocks to the other
        t => {
            let rows = (shape.len() / t).min(m / PINNED_MIN_ROWS).max(1);
            (Partition::pinned(m, n, t, rows), Spread::Pinned)
        }
    };
    let splits = partition.len() > 1;
    let candidates = tune::Candidates::new(direct.is_some(), sparse, splits);
    let key = tune::Key::new(m, n, k, (op_a, op_b), acc);
    let (plan, ticket) = tune::pick(key, candidates, policy, || tune::density_class(p.a.data));
    let t0 = ticket.map(|_| Instant::now());
    let dense = match plan.kernel {
        Kernel::Direct => direct,
        Kernel::Sgemm => None,
        Kernel::Sparse => dispatch::direct_level(m, n, k, op_a, op_b),
    };
    run(plan, &p, c, (partition, spread), dense);
    if let (Some(ticket), Some(t0)) = (ticket, t0) {
        tune::record(ticket, t0.elapsed());
    }
}

/// Least rows of a row part of a pinned partition. Measured on the lab's shapes on 2
/// threads (2026-12-08): evaluation's 1000x800x784 split in 4 row parts per thread ran
/// at 222-248 GFLOP/s against 197-217 in one; a training product at batch 100 split in
/// 2 row parts of 48-52 rows made (ii) 57-63k examples/s against 70-71k in one.
pub const PINNED_MIN_ROWS: usize = 256;

/// How the blocks of a split product are given to the threads of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spread {
    /// Work stealing over the blocks (the fixed policy: the shape's partition).
    Steal,
    /// Block `i` on thread `i % threads` (module [`crate::pinned`]).
    Pinned,
}

/// Runs `plan` on the product: the zero-skipping kernel when `op(A)` is sparse enough
/// ([`dispatch::sparse_nonzeros`]) and `B` all finite (a skipped `0 * inf` would be NaN
/// in the dense product), else the dense kernel `dense` (the direct kernel at that
/// level and flavor, or `sgemm` for `None`) over `partition`, spread over the pool as
/// it says; with `plan.split` false, as one block on this thread.
fn run(
    plan: Plan,
    p: &Product<'_>,
    c: &mut [f32],
    (partition, spread): (Partition, Spread),
    dense: Option<(Level, Flavor)>,
) {
    if plan.kernel == Kernel::Sparse
        && let Some((level, flavor)) = dispatch::sparse_level(p.m, p.n, p.k, p.b.op)
        && let Some(nnz) = dispatch::sparse_nonzeros(p.a.data, p.m, p.k)
        && dispatch::all_finite(level, p.b.data)
    {
        let spread = plan.split.then_some(spread);
        return sparse_par(level, flavor, p, c, nnz, spread);
    }
    let partition = if plan.split {
        partition
    } else {
        Partition::grid(p.m, p.n, 1, 1)
    };
    blocked(p, c, partition, dense, spread);
}

/// Single-threaded `C (+)= op(A) op(B)`: one `sgemm` call (the baseline of the benches).
///
/// # Panics
/// If a slice length does not match `m`, `n`, `k`.
#[allow(clippy::too_many_arguments)] // BLAS order, see the module doc
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
    let p = Product::new((m, n, k), (a, op_a), (b, op_b), c, acc);
    if p.handle_degenerate(c) {
        return;
    }
    // SAFETY: p validated against c; m, n, k > 0; the block is all of C, which is
    // mutably borrowed here and accessed by this thread only.
    unsafe { p.sgemm(SharedC(c.as_mut_ptr()), 0..m, 0..n) }
}

internal!(
    /// `C (+)= op(A) op(B)` with an explicit partition of `C`: one `sgemm` (or one direct
    /// kernel call, when [`direct_path`] says so) per block, the blocks run in parallel in
    /// the current rayon pool (a single block runs on the calling thread). Any partition
    /// gives the bits of [`gemm_serial`]; this entry point exists to test that and to
    /// measure alternatives.
    ///
    /// # Panics
    /// If a slice length does not match `m`, `n`, `k`, or the partition was made for
    /// another `m x n`.
    #[allow(clippy::too_many_arguments)] // BLAS order, see the module doc
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
        let p = Product::new((m, n, k), (a, op_a), (b, op_b), c, acc);
        assert!(
            partition.m == m && partition.n == n,
            "gemm: partition made for {}x{}, C is {m}x{n}",
            partition.m,
            partition.n
        );
        let direct = dispatch::direct_level(m, n, k, op_a, op_b);
        blocked(&p, c, partition, direct, Spread::Steal);
    }
);

internal!(
    /// Single-threaded `C (+)= op(A) op(B)` by the direct (no-packing) kernel of a chosen
    /// level, whatever the shape: [`Level::Avx512`] and [`Level::Avx2`] run the SIMD
    /// kernels [`gemm`] dispatches to; [`Level::Scalar`] runs the portable reference of
    /// the same arithmetic (`f32::mul_add`, slow), for tests.
    ///
    /// On a machine where matrixmultiply selects an FMA kernel, every level gives the
    /// bits of [`gemm_serial`] (module `direct` gives the arithmetic); elsewhere the
    /// result follows the AVX-512 kernel's arithmetic and differs from matrixmultiply's.
    ///
    /// # Panics
    /// If a slice length does not match `m`, `n`, `k`, or if `level` is not available
    /// on this CPU ([`simd::available`]).
    #[allow(clippy::too_many_arguments)] // BLAS order, see the module doc
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
        let p = Product::new((m, n, k), (a, op_a), (b, op_b), c, acc);
        // SAFETY: `whole` hands over a block that is all of C, exclusively ours, at a
        // SIMD level.
        whole(level, &p, c, |blk| unsafe { direct::run(level, blk) });
    }
);

internal!(
    /// Single-threaded `C (+)= op(A) B` by the zero-skipping kernel of a chosen level,
    /// whatever the density of `A` (for tests and benches): [`Level::Avx512`] and
    /// [`Level::Avx2`] run the SIMD kernels [`gemm`] dispatches to, [`Level::Scalar`] the
    /// portable dense reference. Bits as [`gemm_direct`]'s for finite `b`.
    ///
    /// # Panics
    /// If a slice length does not match `m`, `n`, `k`, if `m (k + 128) > u32::MAX`, or
    /// if `level` is not available on this CPU.
    #[allow(clippy::too_many_arguments)] // BLAS order, see the module doc
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
        let p = Product::new((m, n, k), (a, op_a), (b, Op::N), c, acc);
        assert!(
            m.checked_mul(k + sparse::PB)
                .is_some_and(|e| e <= u32::MAX as usize),
            "gemm_sparse: m (k + {}) = {m} x ({k} + {}) exceeds u32",
            sparse::PB,
            sparse::PB
        );
        // SAFETY: `whole` hands over a block that is all of C, exclusively ours, at a
        // SIMD level; op_b is N and m k <= u32::MAX (checked above).
        whole(level, &p, c, |blk| unsafe {
            sparse::run_at(level, blk, None)
        });
    }
);

/// Reserve, on every thread of the current rayon pool (and the calling thread), the
/// per-thread buffers of the direct and zero-skipping kernels: the buffer the direct NT
/// kernel packs `B^T` panels into, for inner dimensions up to `max_k` (`max_k * 64`
/// floats), and the nonzero pattern (`max_a` indices and a little more) and
/// accumulator rows (`max_rows * 512` bytes) of the zero-skipping kernels, for products
/// with up to `max_a` elements in `A` and `max_rows` rows of `op(A)`. Without it a
/// thread allocates these the first time it runs such a block, which with work stealing
/// may be any later minibatch; with it, training steps allocate nothing at all after
/// the first.
pub fn reserve_thread_buffers(max_k: usize, max_rows: usize, max_a: usize) {
    let both = || {
        direct::reserve_panel(max_k);
        sparse::reserve(max_a + max_rows * sparse::PB + 16, max_rows);
    };
    both();
    rayon::broadcast(|_| both());
}

/// All of `C` on this thread by one kernel at an explicit `level` (the single-kernel
/// entry points): `kernel` gets the block covering all of `C` at a SIMD level, while
/// [`Level::Scalar`] runs the portable reference of the same arithmetic.
fn whole(level: Level, p: &Product<'_>, c: &mut [f32], kernel: impl FnOnce(&direct::Block)) {
    simd::require(level);
    if p.handle_degenerate(c) {
        return;
    }
    let flavor = dispatch::mm_fma_flavor().unwrap_or(Flavor::Avx512);
    if level == Level::Scalar {
        direct::reference(flavor, p, c);
    } else {
        // SAFETY: p validated against c; m, n, k > 0; the block is all of C, mutably
        // borrowed here and accessed by this thread only.
        kernel(&unsafe { p.block(SharedC(c.as_mut_ptr()), 0..p.m, 0..p.n, flavor) });
    }
}

/// The dense product over `partition`: one direct kernel call per block at `direct`'s
/// level and flavor, or one `sgemm` per block for `None`, the blocks spread over the
/// pool by `spread`.
fn blocked(
    p: &Product<'_>,
    c: &mut [f32],
    partition: Partition,
    direct: Option<(Level, Flavor)>,
    spread: Spread,
) {
    if p.handle_degenerate(c) {
        return;
    }
    let base = SharedC(c.as_mut_ptr());
    trace::gemm(GemmPath::dense(direct.is_some()), partition.len());
    let one = |idx: usize| {
        let (rows, cols) = partition.block(idx);
        // SAFETY: p validated against c; m, n, k > 0; the partition's blocks are
        // non-empty, within bounds and pairwise disjoint, and each index is run once, so
        // no two tasks touch the same element; `c` stays mutably borrowed until all
        // tasks have finished (the parallel loop below joins before returning).
        // `direct_level` returns SIMD levels only.
        unsafe {
            match direct {
                Some((level, flavor)) => direct::run(level, &p.block(base, rows, cols, flavor)),
                None => p.sgemm(base, rows, cols),
            }
        }
    };
    // Same bits for any pool and spread: every element is computed by one kernel call,
    // the same whichever block it lies in.
    spread_blocks(partition.len(), spread, one);
}

/// Runs `one(i)` for every block `i` in `0..parts`: on this thread if there is one,
/// else over the pool as `spread` says; returns when all have run.
fn spread_blocks(parts: usize, spread: Spread, one: impl Fn(usize) + Sync + Send) {
    match spread {
        _ if parts == 1 => one(0),
        Spread::Steal => (0..parts).into_par_iter().for_each(one),
        Spread::Pinned => pinned::run(parts, one),
    }
}

/// The zero-skipping product in the current rayon pool, spread as `spread` says (one
/// block for `None`, or below [`SERIAL_MAX_FLOPS`] of useful work, `2 nnz n`). Stolen:
/// 4 blocks, NN products split by columns (each block reads its slice of `B`; the
/// pattern of `A`'s rows is built once, here), TN products by rows (each block builds
/// the pattern of its rows of `A^T`). Pinned: the pinned partition, each column block
/// of a TN product building the pattern of all rows.
fn sparse_par(
    level: Level,
    flavor: Flavor,
    p: &Product<'_>,
    c: &mut [f32],
    nnz: usize,
    spread: Option<Spread>,
) {
    let (m, n) = (p.m, p.n);
    let spread = spread.filter(|_| nnz.saturating_mul(2 * n) >= SERIAL_MAX_FLOPS);
    let partition = match (spread, p.a.op) {
        (None, _) => Partition::grid(m, n, 1, 1),
        // columns always: an NN block's shared pattern is of all rows
        (Some(Spread::Pinned), _) => Partition::grid(m, n, 1, pinned::threads()),
        (Some(Spread::Steal), Op::N) => Partition::grid(m, n, 1, 4),
        (Some(Spread::Steal), Op::T) => Partition::grid(m, n, 4, 1),
    };
    let spread = spread.unwrap_or(Spread::Steal);
    let base = SharedC(c.as_mut_ptr());
    let mut shared = (p.a.op == Op::N && partition.len() > 1).then(sparse::take);
    if let Some(pat) = shared.as_mut() {
        // SAFETY: `a` holds m x k elements (validated), read as m rows of stride k (op_a
        // is N); m k <= u32::MAX and `level` is a SIMD level (sparse_level).
        unsafe { sparse::build_rows_at(level, pat, p.a.data.as_ptr(), p.k, m, p.k) };
    }
    let pat = shared.as_ref();
    trace::gemm(GemmPath::Sparse, partition.len());
    let one = |idx: usize| {
        let (rows, cols) = partition.block(idx);
        // SAFETY: as in `blocked` (validated operands, disjoint non-empty blocks, C
        // borrowed until the loop joins); op_b is N and m k <= u32::MAX (sparse_level);
        // the shared pattern covers all rows, which every NN block has.
        unsafe { sparse::run_at(level, &p.block(base, rows, cols, flavor), pat) }
    };
    // Same bits for any pool: every element is computed by one kernel call whatever
    // its block.
    spread_blocks(partition.len(), spread, one);
    if let Some(pat) = shared {
        sparse::put_back(pat);
    }
}
