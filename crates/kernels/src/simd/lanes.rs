//! The lane traits every kernel is written against: [`Lanes`] (f32 lanes, IEEE-754
//! operations), [`Fma`] (fused multiply-add and the raw-pointer, masked and strided
//! memory operations of the GEMM kernels), [`U32Lanes`] (u32 lanes for the ChaCha
//! keystream and the dropout thresholds) and [`F64x8`] (eight f64 lanes for the
//! penalty sums).
//!
//! A value of an implementing type is a token: it proves that the CPU runs that
//! instruction set. Only [`super::Scalar`] can be created freely; the SIMD tokens are
//! created by `unsafe` constructors, called only by the dispatch of [`super::leveled`]
//! after [`super::require`]. So every method below is safe to call on a token except
//! where it takes a raw pointer (the caller vouches for the memory, as documented).
//!
//! Every float operation is one correctly rounded IEEE-754 operation per lane (`fma`
//! with a single rounding) or exact (compare, select, bit manipulation, copies), so a
//! kernel written once over these traits computes the same bits with every token.

/// Per-lane f32 operations of one instruction set.
pub(crate) trait Lanes: Copy {
    /// A vector of `LANES` f32.
    type V: Copy;
    /// A per-lane boolean.
    type M: Copy;
    /// Number of f32 lanes (also the number of u32 lanes of [`U32Lanes`]).
    const LANES: usize;

    /// Lanes `p[0..LANES]`.
    ///
    /// # Safety
    /// `p[0..LANES]` must be readable.
    unsafe fn load_ptr(self, p: *const f32) -> Self::V;
    /// Lanes `p[0..n]`, the others `+0`, for `n < LANES`; nothing else is read (a
    /// larger `n` reads at most `LANES` lanes).
    ///
    /// # Safety
    /// `p[0..min(n, LANES)]` must be readable.
    unsafe fn load_first(self, p: *const f32, n: usize) -> Self::V;
    /// Writes the lanes to `p[0..LANES]`.
    ///
    /// # Safety
    /// `p[0..LANES]` must be writable.
    unsafe fn store_ptr(self, p: *mut f32, v: Self::V);
    /// Writes the first `n < LANES` lanes to `p[0..n]`; nothing else is written (a
    /// larger `n` writes at most `LANES` lanes).
    ///
    /// # Safety
    /// `p[0..min(n, LANES)]` must be writable.
    unsafe fn store_first(self, p: *mut f32, v: Self::V, n: usize);

    /// Lanes `src[0..LANES]` (panics if `src` is shorter).
    #[inline(always)]
    fn load(self, src: &[f32]) -> Self::V {
        let src = &src[..Self::LANES];
        // SAFETY: `src` has LANES elements (checked above).
        unsafe { self.load_ptr(src.as_ptr()) }
    }
    /// Lanes `src[0..src.len()]` for `src.len() < LANES`, the others `+0`.
    #[inline(always)]
    fn load_part(self, src: &[f32]) -> Self::V {
        debug_assert!(src.len() < Self::LANES);
        // SAFETY: at most min(len, LANES) elements of `src` are read.
        unsafe { self.load_first(src.as_ptr(), src.len()) }
    }
    /// Writes the lanes to `dst[0..LANES]` (panics if `dst` is shorter).
    #[inline(always)]
    fn store(self, v: Self::V, dst: &mut [f32]) {
        let dst = &mut dst[..Self::LANES];
        // SAFETY: `dst` has LANES elements (checked above).
        unsafe { self.store_ptr(dst.as_mut_ptr(), v) }
    }
    /// Writes the first `dst.len() < LANES` lanes to `dst`.
    #[inline(always)]
    fn store_part(self, v: Self::V, dst: &mut [f32]) {
        debug_assert!(dst.len() < Self::LANES);
        // SAFETY: at most min(len, LANES) elements of `dst` are written.
        unsafe { self.store_first(dst.as_mut_ptr(), v, dst.len()) }
    }

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Every lane `+0`.
    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a < b { a } else { b }` (x86 `minps`: a NaN in `b` passes through).
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a > b { a } else { b }` (x86 `maxps`: a NaN in `b` passes through).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a < b` (false if either is NaN).
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a <= b` (false if either is NaN).
    fn le(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a > b` (false if either is NaN).
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a == b` (false if either is NaN).
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lane `l` true iff bit `l` of `bits` is set (bits `LANES..` are ignored).
    fn mask_from_bits(self, bits: u32) -> Self::M;
    /// `if m { a } else { b }`, without a branch.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// `|a|` (sign bit cleared).
    fn abs(self, a: Self::V) -> Self::V;
    /// `mag` with the sign bit of `sign` OR-ed in (`mag` is expected non-negative).
    fn or_sign(self, mag: Self::V, sign: Self::V) -> Self::V;
    /// For `t = n + 1.5 * 2^23` with integer `n` (|n| < 2^22), the exact powers of two
    /// `(2^(n >> 1), 2^(n - (n >> 1)))`, built by exponent bit manipulation (wrapping
    /// i32 arithmetic on the bits; meaningful for -252 <= n <= 254).
    fn pow2_halves(self, t: Self::V) -> (Self::V, Self::V);
}

/// `1.5 * 2^23`: adding it to |x| < 2^22 rounds x to the nearest integer (ties to even),
/// and the integer can be read back from the low bits of the sum.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;

/// The integer part of [`Lanes::pow2_halves`] on one lane (the scalar token's; the SIMD
/// tokens do the same wrapping i32 arithmetic lane by lane).
#[inline(always)]
pub(crate) fn pow2_halves_bits(t_bits: i32) -> (i32, i32) {
    let n = t_bits.wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    (
        n1.wrapping_add(127).wrapping_shl(23),
        n2.wrapping_add(127).wrapping_shl(23),
    )
}

/// What the GEMM kernels need beyond [`Lanes`]: a fused multiply-add, broadcasts and
/// gathers from raw pointers, masked loads and stores of any lane subset, and the
/// zero tests of the zero-skipping kernels. Implemented by the SIMD tokens only (the
/// GEMM's portable path is matrixmultiply, and its scalar reference uses `f32::mul_add`).
pub(crate) trait Fma: Lanes {
    /// `a * b + c` with one rounding.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Every lane `*p`.
    ///
    /// # Safety
    /// `*p` must be readable.
    unsafe fn broadcast(self, p: *const f32) -> Self::V;
    /// Lanes `p[l stride]` for `l < LANES` (a gather).
    ///
    /// # Safety
    /// Those elements must be readable, and `stride (LANES - 1) 4 <= i32::MAX`.
    unsafe fn gather(self, p: *const f32, stride: usize) -> Self::V;
    /// A hint to fetch the cache line holding `p` (never faults; `p` need not be valid).
    fn prefetch(self, p: *const f32);
    /// Lanes `p[l]` for the lanes `l` with bit `l` of `mask` set, the others `+0`; only
    /// those elements are read (the others need not be valid memory).
    ///
    /// # Safety
    /// `p[l]` must be readable for every set bit `l < LANES`.
    unsafe fn load_mask(self, p: *const f32, mask: u32) -> Self::V;
    /// Writes lane `l` to `p[l]` for the set bits `l` of `mask`; nothing else is written.
    ///
    /// # Safety
    /// `p[l]` must be writable for every set bit `l < LANES`.
    unsafe fn store_mask(self, p: *mut f32, v: Self::V, mask: u32);
    /// Bit `l` set iff `p[l] != 0` for `l < LANES` (NaN counts as nonzero, `-0` as zero).
    ///
    /// # Safety
    /// `p[0..LANES]` must be readable.
    unsafe fn nonzero_mask(self, p: *const f32) -> u32;
    /// Bit `l` set iff lane `l` of `v` is `-0` (bits `0x8000_0000`).
    fn neg_zero_lanes(self, v: Self::V) -> u32;

    /// Writes `base + l` and `p[l]` for every lane `l < LANES` with `p[l] != 0`, in
    /// increasing `l`, to `dst[0..]` and `vals[0..]`, and returns how many; it may write
    /// anything to the rest of `dst[0..LANES]` and `vals[0..LANES]`. This default is
    /// branch-free scalar code; a token with a compress instruction does better.
    ///
    /// # Safety
    /// `p[0..LANES]` must be readable, `dst[0..LANES]` and `vals[0..LANES]` writable.
    #[inline(always)]
    unsafe fn compress_nonzero(
        self,
        p: *const f32,
        base: u32,
        dst: *mut u32,
        vals: *mut f32,
    ) -> usize {
        let mut n = 0;
        for l in 0..Self::LANES {
            // SAFETY: l < LANES, and n <= l: inside p, dst and vals (caller).
            unsafe {
                let x = *p.add(l);
                *dst.add(n) = base + l as u32;
                *vals.add(n) = x;
                n += usize::from(x != 0.0);
            }
        }
        n
    }

    /// Transposes the `LANES x LANES` square at `src` (row stride `lds`) into `dst` (row
    /// stride `ldd`): `dst[q ldd + i] = src[i lds + q]`. Values are moved, never rounded.
    /// This default gathers one column at a time; a token with two-source permutes
    /// transposes in registers.
    ///
    /// # Safety
    /// `src[i lds + q]` readable and `dst[q ldd + i]` writable for `i, q < LANES`, and
    /// `lds (LANES - 1) 4 <= i32::MAX`.
    #[inline(always)]
    unsafe fn transpose_square(self, src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
        for q in 0..Self::LANES {
            // SAFETY: column q of the square is readable, row q of dst writable (caller).
            unsafe { self.store_ptr(dst.add(q * ldd), self.gather(src.add(q), lds)) };
        }
    }
}

/// Per-lane u32 operations: the ChaCha keystream (one block per lane, see
/// [`crate::chacha`]) and the dropout threshold compare.
pub(crate) trait U32Lanes: Lanes {
    /// A vector of `LANES` u32.
    type U: Copy;

    /// Every lane `x`.
    fn splat_u32(self, x: u32) -> Self::U;
    /// Lane `l` is `src[l]` (panics if `src` is shorter than `LANES`).
    fn load_u32(self, src: &[u32]) -> Self::U;
    /// Wrapping `a + b`.
    fn add_u32(self, a: Self::U, b: Self::U) -> Self::U;
    /// `a ^ b`.
    fn xor_u32(self, a: Self::U, b: Self::U) -> Self::U;
    /// `a` rotated left by `R` bits (`0 < R < 32`).
    fn rotl_u32<const R: i32>(self, a: Self::U) -> Self::U;
    /// Bit `l` set iff `src[l] < thr` (unsigned) for `l < LANES` (panics if `src` is
    /// shorter than `LANES`).
    fn lt_bits(self, src: &[u32], thr: u32) -> u32;
    /// Writes the transpose of the 16 x `LANES` words `x` (word `j` of lane `l` in
    /// `x[j]`) to `out`: lane `l`'s 16 words at `out[16 l .. 16 l + 16]` (panics unless
    /// `out.len() == 16 LANES`).
    fn store_transposed(self, x: &[Self::U; 16], out: &mut [u32]);
}

/// Eight f64 lanes, whatever the token's width (two registers with AVX2, one with
/// AVX-512, an array on the scalar path): the fixed-width partial sums of
/// `update::penalty_sums`, whose order is part of the bit contract.
pub(crate) trait F64x8: Copy {
    /// Eight f64.
    type D: Copy;

    /// Every lane `+0`.
    fn zero_f64x8(self) -> Self::D;
    /// `src` widened to f64 (exact).
    fn widen(self, src: &[f32; 8]) -> Self::D;
    /// `a + b`.
    fn add_f64x8(self, a: Self::D, b: Self::D) -> Self::D;
    /// `a * b`.
    fn mul_f64x8(self, a: Self::D, b: Self::D) -> Self::D;
    /// `|a|` (sign bit cleared).
    fn abs_f64x8(self, a: Self::D) -> Self::D;
    /// The lanes, in order.
    fn to_array(self, a: Self::D) -> [f64; 8];
}
