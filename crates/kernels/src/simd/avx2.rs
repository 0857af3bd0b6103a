//! The AVX2 + FMA token: 8 f32 (or u32) lanes in a `__m256` (`__m256i`), masks as
//! all-ones / all-zeros lanes, 16 vector registers.

use std::arch::x86_64::*;

use super::lanes::{F64x8, Fma, Lanes, ROUND_MAGIC, U32Lanes};

/// Token proving the CPU supports AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// # Safety
    /// The CPU must support AVX2 and FMA: call only after `simd::require(Level::Avx2)`.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx2 {
        Avx2(())
    }

    /// Mask (all-ones lanes) of the first `min(n, 8)` lanes.
    #[inline(always)]
    fn first(self, n: usize) -> __m256i {
        // SAFETY: `self` proves the CPU supports AVX2.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), idx)
        }
    }

    /// Mask (all-ones lanes) of the lanes `l` with bit `l` of `bits` set.
    #[inline(always)]
    fn lanes(self, bits: u32) -> __m256i {
        // SAFETY: `self` proves the CPU supports AVX2.
        unsafe {
            let pick = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
            let m = _mm256_and_si256(_mm256_set1_epi32(bits as i32), pick);
            _mm256_cmpeq_epi32(m, pick)
        }
    }
}

// SAFETY (for every `unsafe` block in the impls below): an `Avx2` value exists only if
// `Avx2::new_unchecked` was called, whose contract is that the CPU supports AVX2 and
// FMA; every intrinsic used needs at most AVX, AVX2 or FMA. Raw-pointer accesses are
// the contract of each `unsafe fn` (see the traits); `maskload` / `maskstore` neither
// access nor fault on masked-off lanes.
impl Lanes for Avx2 {
    type V = __m256;
    type M = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn load_ptr(self, p: *const f32) -> __m256 {
        // SAFETY: p[0..8] readable (caller); unaligned load.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_first(self, p: *const f32, n: usize) -> __m256 {
        // SAFETY: p[0..min(n, 8)] readable (caller); masked-off lanes are not accessed.
        unsafe { _mm256_maskload_ps(p, self.first(n)) }
    }
    #[inline(always)]
    unsafe fn store_ptr(self, p: *mut f32, v: __m256) {
        // SAFETY: p[0..8] writable (caller); unaligned store.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, v: __m256, n: usize) {
        // SAFETY: p[0..min(n, 8)] writable (caller); masked-off lanes are not written.
        unsafe { _mm256_maskstore_ps(p, self.first(n), v) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_setzero_ps() }
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
    fn mask_from_bits(self, bits: u32) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_castsi256_ps(self.lanes(bits)) }
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
        // The same wrapping i32 arithmetic as `lanes::pow2_halves_bits`, lane by lane.
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

impl Fma for Avx2 {
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn broadcast(self, p: *const f32) -> __m256 {
        // SAFETY: *p readable (caller).
        unsafe { _mm256_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn gather(self, p: *const f32, stride: usize) -> __m256 {
        // SAFETY: p[l stride] readable for l < 8 and the byte offsets fit in i32
        // (caller).
        unsafe {
            let idx = _mm256_mullo_epi32(
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                _mm256_set1_epi32(stride as i32),
            );
            _mm256_i32gather_ps::<4>(p, idx)
        }
    }
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        // SAFETY: a prefetch hint never faults, whatever the address; SSE is baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_mask(self, p: *const f32, mask: u32) -> __m256 {
        // SAFETY: the unmasked elements are readable (caller).
        unsafe { _mm256_maskload_ps(p, self.lanes(mask)) }
    }
    #[inline(always)]
    unsafe fn store_mask(self, p: *mut f32, v: __m256, mask: u32) {
        // SAFETY: the unmasked elements are writable (caller).
        unsafe { _mm256_maskstore_ps(p, self.lanes(mask), v) }
    }
    #[inline(always)]
    unsafe fn nonzero_mask(self, p: *const f32) -> u32 {
        // SAFETY: p[0..8] readable (caller). NEQ_UQ: NaN compares not equal.
        unsafe {
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(
                _mm256_loadu_ps(p),
                _mm256_setzero_ps(),
            )) as u32
        }
    }
    #[inline(always)]
    fn neg_zero_lanes(self, v: __m256) -> u32 {
        // SAFETY: see the impl comment.
        unsafe {
            let eq = _mm256_cmpeq_epi32(_mm256_castps_si256(v), _mm256_set1_epi32(i32::MIN));
            _mm256_movemask_ps(_mm256_castsi256_ps(eq)) as u32
        }
    }
}

impl U32Lanes for Avx2 {
    type U = __m256i;

    #[inline(always)]
    fn splat_u32(self, x: u32) -> __m256i {
        // SAFETY: see the impl comment.
        unsafe { _mm256_set1_epi32(x as i32) }
    }
    #[inline(always)]
    fn load_u32(self, src: &[u32]) -> __m256i {
        let src = &src[..8];
        // SAFETY: `src` has 8 words (checked above); unaligned load.
        unsafe { _mm256_loadu_si256(src.as_ptr().cast()) }
    }
    #[inline(always)]
    fn add_u32(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: see the impl comment.
        unsafe { _mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    fn xor_u32(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: see the impl comment.
        unsafe { _mm256_xor_si256(a, b) }
    }
    #[inline(always)]
    fn rotl_u32<const R: i32>(self, a: __m256i) -> __m256i {
        // SAFETY: see the impl comment.
        unsafe {
            match R {
                // Byte rotations are one shuffle: bytes (b0 b1 b2 b3) of each word become
                // (b2 b3 b0 b1) for 16 and (b3 b0 b1 b2) for 8.
                16 => _mm256_shuffle_epi8(
                    a,
                    _mm256_setr_epi8(
                        2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4,
                        5, 10, 11, 8, 9, 14, 15, 12, 13,
                    ),
                ),
                8 => _mm256_shuffle_epi8(
                    a,
                    _mm256_setr_epi8(
                        3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5,
                        6, 11, 8, 9, 10, 15, 12, 13, 14,
                    ),
                ),
                _ => _mm256_or_si256(
                    _mm256_sll_epi32(a, _mm_cvtsi32_si128(R)),
                    _mm256_srl_epi32(a, _mm_cvtsi32_si128(32 - R)),
                ),
            }
        }
    }
    #[inline(always)]
    fn lt_bits(self, src: &[u32], thr: u32) -> u32 {
        // Unsigned a < b as signed (b ^ 2^31) > (a ^ 2^31).
        // SAFETY: see the impl comment.
        unsafe {
            let flip = _mm256_set1_epi32(i32::MIN);
            let a = _mm256_xor_si256(self.load_u32(src), flip);
            let b = _mm256_xor_si256(_mm256_set1_epi32(thr as i32), flip);
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(b, a))) as u32
        }
    }
    #[inline(always)]
    fn store_transposed(self, x: &[__m256i; 16], out: &mut [u32]) {
        assert_eq!(out.len(), 128, "8 blocks of 16 words");
        let dst = out.as_mut_ptr();
        // Two 8x8 transposes (words 0..8 and 8..16). After the unpack stages, 128-bit lane
        // L of r[p][g] holds words 8h + 4g .. 8h + 4g + 4 of lane (block) 4L + p.
        // SAFETY: see the impl comment; blocks p and 4 + p are < 8, and words 8h .. 8h + 8
        // of a block lie inside its 16: all within the 128 words of `out`.
        unsafe {
            for h in 0..2 {
                let v = &x[8 * h..8 * h + 8];
                let mut r = [[_mm256_setzero_si256(); 2]; 4];
                for g in 0..2 {
                    let a0 = _mm256_unpacklo_epi32(v[4 * g], v[4 * g + 1]);
                    let a1 = _mm256_unpackhi_epi32(v[4 * g], v[4 * g + 1]);
                    let a2 = _mm256_unpacklo_epi32(v[4 * g + 2], v[4 * g + 3]);
                    let a3 = _mm256_unpackhi_epi32(v[4 * g + 2], v[4 * g + 3]);
                    r[0][g] = _mm256_unpacklo_epi64(a0, a2);
                    r[1][g] = _mm256_unpackhi_epi64(a0, a2);
                    r[2][g] = _mm256_unpacklo_epi64(a1, a3);
                    r[3][g] = _mm256_unpackhi_epi64(a1, a3);
                }
                for (p, rp) in r.iter().enumerate() {
                    let lo = _mm256_permute2x128_si256::<0x20>(rp[0], rp[1]); // block p
                    let hi = _mm256_permute2x128_si256::<0x31>(rp[0], rp[1]); // block 4 + p
                    _mm256_storeu_si256(dst.add(p * 16 + 8 * h).cast(), lo);
                    _mm256_storeu_si256(dst.add((4 + p) * 16 + 8 * h).cast(), hi);
                }
            }
        }
    }
}

impl F64x8 for Avx2 {
    /// Lanes 0..4 and 4..8.
    type D = (__m256d, __m256d);

    #[inline(always)]
    fn zero_f64x8(self) -> Self::D {
        // SAFETY: see the impl comment.
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }
    #[inline(always)]
    fn widen(self, src: &[f32; 8]) -> Self::D {
        // SAFETY: see the impl comment; `src` is 8 f32 (unaligned load).
        unsafe {
            let x = _mm256_loadu_ps(src.as_ptr());
            (
                _mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)),
            )
        }
    }
    #[inline(always)]
    fn add_f64x8(self, a: Self::D, b: Self::D) -> Self::D {
        // SAFETY: see the impl comment.
        unsafe { (_mm256_add_pd(a.0, b.0), _mm256_add_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn mul_f64x8(self, a: Self::D, b: Self::D) -> Self::D {
        // SAFETY: see the impl comment.
        unsafe { (_mm256_mul_pd(a.0, b.0), _mm256_mul_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn abs_f64x8(self, a: Self::D) -> Self::D {
        // SAFETY: see the impl comment.
        unsafe {
            let sign = _mm256_set1_pd(-0.0);
            (_mm256_andnot_pd(sign, a.0), _mm256_andnot_pd(sign, a.1))
        }
    }
    #[inline(always)]
    fn to_array(self, a: Self::D) -> [f64; 8] {
        let mut out = [0.0f64; 8];
        // SAFETY: see the impl comment; `out` holds 8 f64, stored as lanes 0..4 and 4..8.
        unsafe {
            _mm256_storeu_pd(out.as_mut_ptr(), a.0);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), a.1);
        }
        out
    }
}
