//! [`Lanes`] on AVX2: 8 f32 lanes in a `__m256`, masks as all-ones / all-zeros lanes.

use super::{Lanes, ROUND_MAGIC};
use std::arch::x86_64::*;

/// Token proving the CPU supports AVX2 (and FMA, which the kernels do not use).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// # Safety
    /// The CPU must support AVX2: call only after `simd::available(Level::Avx2)`.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx2 {
        Avx2(())
    }

    /// Mask (all-ones lanes) of the first `n < 8` lanes.
    #[inline(always)]
    fn first(self, n: usize) -> __m256i {
        // SAFETY: `self` proves the CPU supports AVX2.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
        }
    }
}

// SAFETY (for every `unsafe` block in this impl): an `Avx2` value exists only if
// `Avx2::new_unchecked` was called, whose contract is that the CPU supports AVX2; the
// intrinsics used need at most AVX2. Pointer accesses are bounded by the slice lengths
// checked right before them.
impl Lanes for Avx2 {
    type V = __m256;
    type M = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m256 {
        let src = &src[..8];
        // SAFETY: `src` has 8 elements (checked above); unaligned load.
        unsafe { _mm256_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn load_part(self, src: &[f32]) -> __m256 {
        debug_assert!(src.len() < 8);
        // SAFETY: only the first `src.len() < 8` lanes are read (masked load, no fault
        // on masked-off lanes).
        unsafe { _mm256_maskload_ps(src.as_ptr(), self.first(src.len())) }
    }
    #[inline(always)]
    fn store(self, v: __m256, dst: &mut [f32]) {
        let dst = &mut dst[..8];
        // SAFETY: `dst` has 8 elements (checked above); unaligned store.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn store_part(self, v: __m256, dst: &mut [f32]) {
        debug_assert!(dst.len() < 8);
        // SAFETY: only the first `dst.len() < 8` lanes are written (masked store).
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr(), self.first(dst.len()), v) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn le(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_cmp_ps::<_CMP_LE_OQ>(a, b) }
    }
    #[inline(always)]
    fn gt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn eq(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment. blendv takes the second source where m is set.
        unsafe { _mm256_blendv_ps(b, a, m) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff))) }
    }
    #[inline(always)]
    fn or_sign(self, mag: __m256, sign: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe {
            let s = _mm256_and_ps(sign, _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN)));
            _mm256_or_ps(mag, s)
        }
    }
    #[inline(always)]
    fn pow2_halves(self, t: __m256) -> (__m256, __m256) {
        // The same wrapping i32 arithmetic as `simd::pow2_halves_bits`, lane by lane.
        // SAFETY: see the impl comment.
        unsafe {
            let n = _mm256_sub_epi32(
                _mm256_castps_si256(t),
                _mm256_set1_epi32(ROUND_MAGIC.to_bits() as i32),
            );
            let n1 = _mm256_srai_epi32::<1>(n);
            let n2 = _mm256_sub_epi32(n, n1);
            let bias = _mm256_set1_epi32(127);
            let a = _mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias));
            let b = _mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias));
            (_mm256_castsi256_ps(a), _mm256_castsi256_ps(b))
        }
    }
}
