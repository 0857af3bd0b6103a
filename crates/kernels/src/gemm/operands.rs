//! The operands of one product: a descriptor per matrix ([`MatRef`]), the validated
//! product ([`Product`]), the pointer to `C` that its blocks share ([`SharedC`]), and
//! the two ways a block of `C` is handed to a kernel: one `sgemm` call
//! ([`Product::sgemm`]) or a [`Block`] of raw pointers for the direct and zero-skipping
//! kernels ([`Product::block`]).
//!
//! Why a descriptor: a product has a shape, two operands each with its own storage and
//! transposition, a merge mode and a destination. Passed one by one they made every
//! function on the way to a kernel take nine or ten arguments, and each re-derived the
//! strides. Here the slice lengths are checked once, the strides derived once, and a
//! block is a range of rows and columns of the product.

use std::ops::Range;

use super::direct::{Block, Flavor};
use super::{Accumulate, Op};

/// One operand `op(X)` of a product, `rows x cols` as used: `X` is row-major in `data`,
/// `rows x cols` for [`Op::N`], `cols x rows` for [`Op::T`] (read transposed through
/// its strides, never copied).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) op: Op,
}

impl MatRef<'_> {
    /// Row and column strides of `op(X)`, in elements.
    pub(crate) fn strides(&self) -> (usize, usize) {
        match self.op {
            Op::N => (self.cols, 1),
            Op::T => (1, self.rows),
        }
    }

    /// The row stride of the stored `X` (its leading dimension).
    pub(crate) fn ld(&self) -> usize {
        match self.op {
            Op::N => self.cols,
            Op::T => self.rows,
        }
    }

    /// A pointer to element `(i, j)` of `op(X)` (`i <= rows`, `j <= cols`, one of them
    /// strictly less, so the element or the end of a row or column of it).
    fn at(&self, i: usize, j: usize) -> *const f32 {
        let (rs, cs) = self.strides();
        // `wrapping_add`: an offset one past a row or column may equal `data.len()`.
        self.data.as_ptr().wrapping_add(i * rs + j * cs)
    }
}

/// A validated product `C (m x n) (+)= op(A) op(B)`: `op(A)` is `m x k`, `op(B)` is
/// `k x n`, and `C` (a separate, mutably borrowed slice) has `m n` elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Product<'a> {
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) a: MatRef<'a>,
    pub(crate) b: MatRef<'a>,
    pub(crate) acc: Accumulate,
}

impl<'a> Product<'a> {
    /// Checks every slice length against the shape.
    ///
    /// # Panics
    /// If `a`, `b` or `c` does not have `m k`, `k n` or `m n` elements (or a size
    /// overflows `usize`).
    pub(crate) fn new(
        (m, n, k): (usize, usize, usize),
        (a, op_a): (&'a [f32], Op),
        (b, op_b): (&'a [f32], Op),
        c: &[f32],
        acc: Accumulate,
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
        let mat = |data, rows, cols, op| MatRef {
            data,
            rows,
            cols,
            op,
        };
        Product {
            m,
            n,
            k,
            a: mat(a, m, k, op_a),
            b: mat(b, k, n, op_b),
            acc,
        }
    }

    /// Whether there is no product to compute (`m`, `n` or `k` is 0); in that case `c`
    /// has been set to its final value (zeros for Overwrite, unchanged for Add).
    pub(crate) fn handle_degenerate(&self, c: &mut [f32]) -> bool {
        if self.m == 0 || self.n == 0 || self.k == 0 {
            if self.acc == Accumulate::Overwrite {
                c.fill(0.0);
            }
            true
        } else {
            false
        }
    }

    /// One `sgemm` over the block `rows x cols` of `C` (alpha = 1, beta = 0 or 1).
    ///
    /// # Safety
    /// `c` is the start of the `m x n` slice this product was validated against, all of
    /// `m, n, k` are positive, `rows` / `cols` are non-empty and lie within `0..m` /
    /// `0..n`, and no other thread accesses the elements of this block meanwhile.
    pub(crate) unsafe fn sgemm(&self, c: SharedC, rows: Range<usize>, cols: Range<usize>) {
        debug_assert!(rows.start < rows.end && rows.end <= self.m);
        debug_assert!(cols.start < cols.end && cols.end <= self.n);
        // Strides are element counts of slices that fit in isize::MAX bytes.
        let s = |(r, c): (usize, usize)| (r as isize, c as isize);
        let ((rsa, csa), (rsb, csb)) = (s(self.a.strides()), s(self.b.strides()));
        // SAFETY: the pointers address element (rows.start, 0) of op(A), (0, cols.start)
        // of op(B) and (rows.start, cols.start) of C, all inside their slices (validated
        // lengths, non-empty ranges within bounds). sgemm reads op(A)'s rows `rows`,
        // op(B)'s columns `cols` and writes C's block `rows x cols` (row stride n), all in
        // bounds; the caller guarantees exclusive access to that block. With beta = 0,
        // sgemm does not read C.
        unsafe {
            matrixmultiply::sgemm(
                rows.len(),
                self.k,
                cols.len(),
                1.0,
                self.a.at(rows.start, 0),
                rsa,
                csa,
                self.b.at(0, cols.start),
                rsb,
                csb,
                self.acc.beta(),
                c.0.add(rows.start * self.n + cols.start),
                self.n as isize,
                1,
            );
        }
    }

    /// The [`Block`] `rows x cols` of `C` for the direct and zero-skipping kernels
    /// (pointers at the block's origin).
    ///
    /// # Safety
    /// As [`Product::sgemm`].
    pub(crate) unsafe fn block(
        &self,
        c: SharedC,
        rows: Range<usize>,
        cols: Range<usize>,
        flavor: Flavor,
    ) -> Block {
        debug_assert!(rows.start < rows.end && rows.end <= self.m);
        debug_assert!(cols.start < cols.end && cols.end <= self.n);
        // SAFETY: element (rows.start, cols.start) of C lies inside its slice (caller);
        // the kernels read op(A)'s rows `rows` (k columns), op(B)'s columns `cols` (k
        // rows) and read and write C's block `rows x cols` (row stride n), all in bounds.
        Block {
            k: self.k,
            a: self.a.at(rows.start, 0),
            lda: self.a.ld(),
            trans_a: self.a.op == Op::T,
            b: self.b.at(0, cols.start),
            ldb: self.b.ld(),
            trans_b: self.b.op == Op::T,
            c: unsafe { c.0.add(rows.start * self.n + cols.start) },
            ldc: self.n,
            rows: rows.len(),
            cols: cols.len(),
            overwrite: self.acc == Accumulate::Overwrite,
            flavor,
        }
    }
}

/// `C`'s base pointer, shared by the tasks that write its disjoint blocks.
#[derive(Clone, Copy)]
pub(crate) struct SharedC(pub(crate) *mut f32);

// SAFETY: the pointer is only dereferenced by the kernels a block is handed to, and the
// blocks handed to concurrent tasks are disjoint sets of elements of `C`, which outlives
// the parallel loop (it is borrowed mutably by the caller for its whole duration).
unsafe impl Send for SharedC {}
// SAFETY: as above; tasks share only the base address, never an element.
unsafe impl Sync for SharedC {}
