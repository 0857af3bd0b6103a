//! Deterministic parallel f32 GEMM on `matrixmultiply::sgemm` (STUB: API only).
//!
//! All matrices are dense row-major slices. `op(A)` is `m x k`: with [`Op::N`] `a`
//! holds `m x k` (row stride k), with [`Op::T`] `a` holds `k x m` (row stride m) and is
//! read transposed through strides. Likewise `op(B)` is `k x n`. `c` is `m x n`.

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

/// Parallel `C (+)= op(A) op(B)` in the current rayon pool; bits independent of the pool size.
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
    let _ = (m, n, k, a, op_a, b, op_b, c, acc);
    todo!("gemm")
}

/// Single-threaded `C (+)= op(A) op(B)`: one `sgemm` call (the baseline of the benches).
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
    let _ = (m, n, k, a, op_a, b, op_b, c, acc);
    todo!("gemm_serial")
}
