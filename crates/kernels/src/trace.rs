//! Path counters: how often each kernel path was dispatched in this process, so tests
//! can prove that the paths they vouch for really ran (a snapshot test at the lab's
//! sizes asserts, for example, that some GEMM was split into several blocks and that
//! the zero-skipping kernel ran), and notice when a moved threshold makes a path vanish.
//!
//! Each hook is called once per kernel call, at dispatch time (after the path and the
//! number of blocks or chunks are decided, before any work), and adds 1 to one to three
//! process-global counters with `Relaxed` atomics: a few nanoseconds against a call that
//! takes microseconds, so the counters are always compiled in (no feature flag) and
//! count in release builds too. They never influence a result.
//!
//! Counters are process-global and only grow: take [`counts`] before and after the work
//! of interest and compare with [`Counts::since`]. Other threads of the same process
//! (e.g. other tests of one test binary) count too, so a test that asserts on a delta
//! should run where nothing else calls the kernels at the same time (its own test
//! binary), or assert only that paths ran, which other work cannot undo.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the path counters (or the difference of two, [`Counts::since`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Products dispatched by `gemm::gemm` / `gemm::gemm_blocked` (non-degenerate).
    pub gemm_calls: u64,
    /// ... of which were cut into more than one block of `C` (run in parallel).
    pub gemm_multi_block: u64,
    /// ... of which ran on the direct (no-packing) kernels.
    pub gemm_direct: u64,
    /// ... of which ran on the zero-skipping kernels.
    pub gemm_sparse: u64,
    /// ... of which ran on matrixmultiply's sgemm.
    pub gemm_sgemm: u64,
    /// Dropout passes with keep < 1 (forward and backward).
    pub dropout_calls: u64,
    /// ... of which were cut into more than one chunk (run in parallel).
    pub dropout_multi_chunk: u64,
    /// Passes of the update kernels (`sgd`, `sgd_momentum`, a non-trivial `decay`,
    /// `scale`, `scale_into`).
    pub update_calls: u64,
    /// ... of which were cut into more than one chunk (run in parallel).
    pub update_multi_chunk: u64,
}

impl Counts {
    /// What was counted between `earlier` and `self` (field by field).
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            gemm_calls: self.gemm_calls.wrapping_sub(earlier.gemm_calls),
            gemm_multi_block: self.gemm_multi_block.wrapping_sub(earlier.gemm_multi_block),
            gemm_direct: self.gemm_direct.wrapping_sub(earlier.gemm_direct),
            gemm_sparse: self.gemm_sparse.wrapping_sub(earlier.gemm_sparse),
            gemm_sgemm: self.gemm_sgemm.wrapping_sub(earlier.gemm_sgemm),
            dropout_calls: self.dropout_calls.wrapping_sub(earlier.dropout_calls),
            dropout_multi_chunk: self
                .dropout_multi_chunk
                .wrapping_sub(earlier.dropout_multi_chunk),
            update_calls: self.update_calls.wrapping_sub(earlier.update_calls),
            update_multi_chunk: self
                .update_multi_chunk
                .wrapping_sub(earlier.update_multi_chunk),
        }
    }
}

static GEMM_CALLS: AtomicU64 = AtomicU64::new(0);
static GEMM_MULTI_BLOCK: AtomicU64 = AtomicU64::new(0);
static GEMM_DIRECT: AtomicU64 = AtomicU64::new(0);
static GEMM_SPARSE: AtomicU64 = AtomicU64::new(0);
static GEMM_SGEMM: AtomicU64 = AtomicU64::new(0);
static DROPOUT_CALLS: AtomicU64 = AtomicU64::new(0);
static DROPOUT_MULTI_CHUNK: AtomicU64 = AtomicU64::new(0);
static UPDATE_CALLS: AtomicU64 = AtomicU64::new(0);
static UPDATE_MULTI_CHUNK: AtomicU64 = AtomicU64::new(0);

/// The counters now.
pub fn counts() -> Counts {
    Counts {
        gemm_calls: GEMM_CALLS.load(Relaxed),
        gemm_multi_block: GEMM_MULTI_BLOCK.load(Relaxed),
        gemm_direct: GEMM_DIRECT.load(Relaxed),
        gemm_sparse: GEMM_SPARSE.load(Relaxed),
        gemm_sgemm: GEMM_SGEMM.load(Relaxed),
        dropout_calls: DROPOUT_CALLS.load(Relaxed),
        dropout_multi_chunk: DROPOUT_MULTI_CHUNK.load(Relaxed),
        update_calls: UPDATE_CALLS.load(Relaxed),
        update_multi_chunk: UPDATE_MULTI_CHUNK.load(Relaxed),
    }
}

/// The kernel a GEMM was dispatched to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GemmPath {
    /// The direct (no-packing) kernels.
    Direct,
    /// The zero-skipping kernels.
    Sparse,
    /// matrixmultiply's sgemm.
    Sgemm,
}

impl GemmPath {
    /// The path of a dense product: direct kernels or sgemm.
    #[inline]
    pub(crate) fn dense(direct: bool) -> GemmPath {
        if direct {
            GemmPath::Direct
        } else {
            GemmPath::Sgemm
        }
    }
}

/// Hook: one GEMM dispatched to `path`, cut into `blocks` blocks of `C`.
#[inline]
pub(crate) fn gemm(path: GemmPath, blocks: usize) {
    GEMM_CALLS.fetch_add(1, Relaxed);
    if blocks > 1 {
        GEMM_MULTI_BLOCK.fetch_add(1, Relaxed);
    }
    match path {
        GemmPath::Direct => &GEMM_DIRECT,
        GemmPath::Sparse => &GEMM_SPARSE,
        GemmPath::Sgemm => &GEMM_SGEMM,
    }
    .fetch_add(1, Relaxed);
}

/// Hook: one dropout pass (keep < 1), in more than one chunk if `multi_chunk`.
#[inline]
pub(crate) fn dropout(multi_chunk: bool) {
    DROPOUT_CALLS.fetch_add(1, Relaxed);
    if multi_chunk {
        DROPOUT_MULTI_CHUNK.fetch_add(1, Relaxed);
    }
}

/// Hook: one update pass, in more than one chunk if `multi_chunk`.
#[inline]
pub(crate) fn update(multi_chunk: bool) {
    UPDATE_CALLS.fetch_add(1, Relaxed);
    if multi_chunk {
        UPDATE_MULTI_CHUNK.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_the_field_by_field_difference() {
        let a = Counts {
            gemm_calls: 5,
            gemm_multi_block: 4,
            gemm_direct: 3,
            gemm_sparse: 2,
            gemm_sgemm: 1,
            dropout_calls: 9,
            dropout_multi_chunk: 8,
            update_calls: 7,
            update_multi_chunk: 6,
        };
        assert_eq!(a.since(&Counts::default()), a);
        assert_eq!(a.since(&a), Counts::default());
        let b = Counts {
            gemm_calls: 7,
            dropout_multi_chunk: 10,
            ..a
        };
        let d = b.since(&a);
        assert_eq!((d.gemm_calls, d.dropout_multi_chunk), (2, 2));
        assert_eq!(
            Counts {
                gemm_calls: 0,
                dropout_multi_chunk: 0,
                ..d
            },
            Counts::default()
        );
    }

    #[test]
    fn hooks_count_once_per_call() {
        let before = counts();
        gemm(GemmPath::Sparse, 4);
        gemm(GemmPath::Direct, 1);
        dropout(true);
        update(false);
        let d = counts().since(&before);
        // other unit tests of this crate may run kernels at the same time: at least
        assert!(d.gemm_calls >= 2 && d.gemm_multi_block >= 1, "{d:?}");
        assert!(d.gemm_sparse >= 1 && d.gemm_direct >= 1, "{d:?}");
        assert!(d.dropout_calls >= 1 && d.dropout_multi_chunk >= 1, "{d:?}");
        assert!(d.update_calls >= 1, "{d:?}");
    }
}
