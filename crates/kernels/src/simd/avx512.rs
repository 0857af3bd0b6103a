//! The AVX-512F token: 16 f32 (or u32) lanes in a `__m512` (`__m512i`), masks in
//! `__mmask16` registers, 32 vector registers.

use std::arch::x86_64::*;

use super::lanes::{F64x8, Fma, Lanes, ROUND_MAGIC, U32Lanes};

/// Token proving the CPU supports AVX-512F (and so AVX2 and FMA).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// # Safety
    /// The CPU must support AVX-512F, AVX2 and FMA: call only after
    /// `simd::require(Level::Avx512)`.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx512 {
        Avx512(())
    }
}

/// Mask of the first `min(n, 16)` lanes.
#[inline(always)]
fn first(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// The two-source indices of stage `d` (8, 4, 2, 1) of a 16 x 16 transpose: stage `d`
/// swaps the off-diagonal `d x d` sub-blocks of every `2d x 2d` block, row `i` taking
/// `PERM[..][0]` (its lanes `c` with `c & d == 0` kept, the others from row `i + d`) and
/// row `i + d` taking `PERM[..][1]` (16.. = the second source).
const PERM: [[[i32; 16]; 2]; 4] = [
    [perm(8, false), perm(8, true)],
    [perm(4, false), perm(4, true)],
    [perm(2, false), perm(2, true)],
    [perm(1, false), perm(1, true)],
];

const fn perm(d: usize, hi: bool) -> [i32; 16] {
    let mut x = [0i32; 16];
    let mut c = 0;
    while c < 16 {
        let upper = c & d != 0;
        x[c] = match (hi, upper) {
            (false, false) => c,
            (false, true) => 16 + c - d,
            (true, false) => c + d,
            (true, true) => 16 + c,
        } as i32;
        c += 1;
    }
    x
}

// SAFETY (for every `unsafe` block in the impls below): an `Avx512` value exists only
// if `Avx512::new_unchecked` was called, whose contract is that the CPU supports
// AVX-512F (and AVX2, FMA); every intrinsic used needs at most those. Raw-pointer
// accesses are the contract of each `unsafe fn` (see the traits); masked-off lanes are
// neither accessed nor able to fault.
impl Lanes for Avx512 {
    type V = __m512;
    type M = __mmask16;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn load_ptr(self, p: *const f32) -> __m512 {
        // SAFETY: p[0..16] readable (caller); unaligned load.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_first(self, p: *const f32, n: usize) -> __m512 {
        // SAFETY: p[0..min(n, 16)] readable (caller); masked load.
        unsafe { _mm512_maskz_loadu_ps(first(n), p) }
    }
    #[inline(always)]
    unsafe fn store_ptr(self, p: *mut f32, v: __m512) {
        // SAFETY: p[0..16] writable (caller); unaligned store.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, v: __m512, n: usize) {
        // SAFETY: p[0..min(n, 16)] writable (caller); masked store.
        unsafe { _mm512_mask_storeu_ps(p, first(n), v) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn le(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, b) }
    }
    #[inline(always)]
    fn gt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn eq(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn mask_from_bits(self, bits: u32) -> __mmask16 {
        bits as __mmask16
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment. mask_blend takes the second source where m is set.
        unsafe { _mm512_mask_blend_ps(m, b, a) }
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(0x7fff_ffff),
            ))
        }
    }
    #[inline(always)]
    fn or_sign(self, mag: __m512, sign: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe {
            let s = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32(i32::MIN));
            _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(mag), s))
        }
    }
    #[inline(always)]
    fn pow2_halves(self, t: __m512) -> (__m512, __m512) {
        // The same wrapping i32 arithmetic as `lanes::pow2_halves_bits`, lane by lane.
        // SAFETY: see the impl comment.
        unsafe {
            let n = _mm512_sub_epi32(
                _mm512_castps_si512(t),
                _mm512_set1_epi32(ROUND_MAGIC.to_bits() as i32),
            );
            let n1 = _mm512_srai_epi32::<1>(n);
            let n2 = _mm512_sub_epi32(n, n1);
            let bias = _mm512_set1_epi32(127);
            let a = _mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias));
            let b = _mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias));
            (_mm512_castsi512_ps(a), _mm512_castsi512_ps(b))
        }
    }
}

impl Fma for Avx512 {
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn broadcast(self, p: *const f32) -> __m512 {
        // SAFETY: *p readable (caller).
        unsafe { _mm512_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn gather(self, p: *const f32, stride: usize) -> __m512 {
        // SAFETY: p[l stride] readable for l < 16 and the byte offsets fit in i32
        // (caller).
        unsafe {
            let idx = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(stride as i32),
            );
            _mm512_i32gather_ps::<4>(idx, p)
        }
    }
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        // SAFETY: a prefetch hint never faults, whatever the address; SSE is baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_mask(self, p: *const f32, mask: u32) -> __m512 {
        // SAFETY: the unmasked elements are readable (caller).
        unsafe { _mm512_maskz_loadu_ps(mask as __mmask16, p) }
    }
    #[inline(always)]
    unsafe fn store_mask(self, p: *mut f32, v: __m512, mask: u32) {
        // SAFETY: the unmasked elements are writable (caller).
        unsafe { _mm512_mask_storeu_ps(p, mask as __mmask16, v) }
    }
    #[inline(always)]
    unsafe fn nonzero_mask(self, p: *const f32) -> u32 {
        // SAFETY: p[0..16] readable (caller). NEQ_UQ: NaN compares not equal.
        unsafe { _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(_mm512_loadu_ps(p), _mm512_setzero_ps()) as u32 }
    }
    #[inline(always)]
    fn neg_zero_lanes(self, v: __m512) -> u32 {
        // SAFETY: see the impl comment.
        unsafe {
            _mm512_cmpeq_epi32_mask(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MIN)) as u32
        }
    }
    /// `vpcompressd` / `vcompressps` into registers (the memory forms are slow on some
    /// CPUs), then full stores.
    #[inline(always)]
    unsafe fn compress_nonzero(
        self,
        p: *const f32,
        base: u32,
        dst: *mut u32,
        vals: *mut f32,
    ) -> usize {
        // SAFETY: p[0..16] readable, dst[0..16] and vals[0..16] writable (caller).
        unsafe {
            let x = _mm512_loadu_ps(p);
            let mask = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(x, _mm512_setzero_ps());
            let idx = _mm512_add_epi32(
                _mm512_set1_epi32(base as i32),
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            );
            _mm512_storeu_si512(dst.cast(), _mm512_maskz_compress_epi32(mask, idx));
            _mm512_storeu_ps(vals, _mm512_maskz_compress_ps(mask, x));
            mask.count_ones() as usize
        }
    }
    /// In registers: 4 stages of `vpermt2ps` (see [`PERM`]).
    #[inline(always)]
    unsafe fn transpose_square(self, src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
        // SAFETY: rows i < 16 of the square are readable and rows q < 16 of dst
        // writable (caller); the index tables are 16 i32 each.
        // (Plain loops, no closures: a closure would not have the caller's features.)
        unsafe {
            let mut perm = [[_mm512_setzero_si512(); 2]; 4];
            for (p, ix) in perm.iter_mut().zip(&PERM) {
                p[0] = _mm512_loadu_si512(ix[0].as_ptr().cast());
                p[1] = _mm512_loadu_si512(ix[1].as_ptr().cast());
            }
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, x) in r.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(src.add(i * lds));
            }
            for (stage, d) in [8usize, 4, 2, 1].into_iter().enumerate() {
                for i in 0..16 {
                    if i & d == 0 {
                        let (x, y) = (r[i], r[i + d]);
                        r[i] = _mm512_permutex2var_ps(x, perm[stage][0], y);
                        r[i + d] = _mm512_permutex2var_ps(x, perm[stage][1], y);
                    }
                }
            }
            for (q, v) in r.iter().enumerate() {
                _mm512_storeu_ps(dst.add(q * ldd), *v);
            }
        }
    }
}

impl U32Lanes for Avx512 {
    type U = __m512i;

    #[inline(always)]
    fn splat_u32(self, x: u32) -> __m512i {
        // SAFETY: see the impl comment.
        unsafe { _mm512_set1_epi32(x as i32) }
    }
    #[inline(always)]
    fn load_u32(self, src: &[u32]) -> __m512i {
        let src = &src[..16];
        // SAFETY: `src` has 16 words (checked above); unaligned load.
        unsafe { _mm512_loadu_si512(src.as_ptr().cast()) }
    }
    #[inline(always)]
    fn add_u32(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: see the impl comment.
        unsafe { _mm512_add_epi32(a, b) }
    }
    #[inline(always)]
    fn xor_u32(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: see the impl comment.
        unsafe { _mm512_xor_si512(a, b) }
    }
    #[inline(always)]
    fn rotl_u32<const R: i32>(self, a: __m512i) -> __m512i {
        // SAFETY: see the impl comment.
        unsafe { _mm512_rol_epi32::<R>(a) }
    }
    #[inline(always)]
    fn lt_bits(self, src: &[u32], thr: u32) -> u32 {
        // SAFETY: see the impl comment.
        unsafe {
            u32::from(_mm512_cmplt_epu32_mask(
                self.load_u32(src),
                _mm512_set1_epi32(thr as i32),
            ))
        }
    }
    #[inline(always)]
    fn store_transposed(self, x: &[__m512i; 16], out: &mut [u32]) {
        assert_eq!(out.len(), 256, "16 blocks of 16 words");
        let dst = out.as_mut_ptr();
        // Transpose 16x16. After the two unpack stages, 128-bit lane L of r[p][g] holds
        // words 4g .. 4g + 4 of block 4L + p; two stages of 128-bit lane shuffles then
        // gather lane L of r[0..4][p] into the 16 words of block 4L + p.
        // SAFETY: see the impl comment; block 4 lane + p < 16, so its 16 words lie inside
        // the 256 of `out`.
        unsafe {
            let mut r = [[_mm512_setzero_si512(); 4]; 4];
            for g in 0..4 {
                let a0 = _mm512_unpacklo_epi32(x[4 * g], x[4 * g + 1]);
                let a1 = _mm512_unpackhi_epi32(x[4 * g], x[4 * g + 1]);
                let a2 = _mm512_unpacklo_epi32(x[4 * g + 2], x[4 * g + 3]);
                let a3 = _mm512_unpackhi_epi32(x[4 * g + 2], x[4 * g + 3]);
                r[0][g] = _mm512_unpacklo_epi64(a0, a2);
                r[1][g] = _mm512_unpackhi_epi64(a0, a2);
                r[2][g] = _mm512_unpacklo_epi64(a1, a3);
                r[3][g] = _mm512_unpackhi_epi64(a1, a3);
            }
            for (p, rp) in r.iter().enumerate() {
                // (r0.L0, r0.L1, r1.L0, r1.L1), (r2.L0, r2.L1, r3.L0, r3.L1), and lanes 2, 3
                let s0 = _mm512_shuffle_i32x4::<0x44>(rp[0], rp[1]);
                let s1 = _mm512_shuffle_i32x4::<0x44>(rp[2], rp[3]);
                let s2 = _mm512_shuffle_i32x4::<0xEE>(rp[0], rp[1]);
                let s3 = _mm512_shuffle_i32x4::<0xEE>(rp[2], rp[3]);
                let o = [
                    _mm512_shuffle_i32x4::<0x88>(s0, s1), // lane 0 of r0..r3: block p
                    _mm512_shuffle_i32x4::<0xDD>(s0, s1), // lane 1: block 4 + p
                    _mm512_shuffle_i32x4::<0x88>(s2, s3), // lane 2: block 8 + p
                    _mm512_shuffle_i32x4::<0xDD>(s2, s3), // lane 3: block 12 + p
                ];
                for (lane, v) in o.into_iter().enumerate() {
                    _mm512_storeu_si512(dst.add((4 * lane + p) * 16).cast(), v);
                }
            }
        }
    }
}

impl F64x8 for Avx512 {
    type D = __m512d;

    #[inline(always)]
    fn zero_f64x8(self) -> __m512d {
        // SAFETY: see the impl comment.
        unsafe { _mm512_setzero_pd() }
    }
    #[inline(always)]
    fn widen(self, src: &[f32; 8]) -> __m512d {
        // SAFETY: see the impl comment; `src` is 8 f32 (unaligned load).
        unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(src.as_ptr())) }
    }
    #[inline(always)]
    fn add_f64x8(self, a: __m512d, b: __m512d) -> __m512d {
        // SAFETY: see the impl comment.
        unsafe { _mm512_add_pd(a, b) }
    }
    #[inline(always)]
    fn mul_f64x8(self, a: __m512d, b: __m512d) -> __m512d {
        // SAFETY: see the impl comment.
        unsafe { _mm512_mul_pd(a, b) }
    }
    #[inline(always)]
    fn abs_f64x8(self, a: __m512d) -> __m512d {
        // SAFETY: see the impl comment.
        unsafe { _mm512_abs_pd(a) }
    }
    #[inline(always)]
    fn to_array(self, a: __m512d) -> [f64; 8] {
        let mut out = [0.0f64; 8];
        // SAFETY: see the impl comment; `out` holds 8 f64.
        unsafe { _mm512_storeu_pd(out.as_mut_ptr(), a) };
        out
    }
}
