//! The x86-64 instantiations of the direct (no-packing) kernels: AVX-512F (16 lanes,
//! 32 vector registers) and AVX2 + FMA (8 lanes, 16 registers).
//!
//! Register tiles (`R` rows x `V` vectors; rows of a block are split into balanced
//! groups of at most `RMAX`), chosen so that `R V` accumulators, `V` vectors of `B` and
//! one broadcast fit in the register file, with at least 8 independent FMA chains
//! when `R` allows it:
//!
//! | ISA      | RMAX | R -> V                          | accumulators |
//! |----------|-----:|---------------------------------|-------------:|
//! | AVX-512F |   12 | 1-4 -> 4, 5-7 -> 3, 8-12 -> 2   | <= 24        |
//! | AVX2+FMA |    6 | 1-2 -> 4, 3 -> 3, 4-6 -> 2      | <= 12        |

use std::arch::x86_64::*;

use std::cell::RefCell;

use super::direct::{Block, PANEL, Simd, group_bounds, pack_bt_scalar, rows};
use super::sparse::{self, Pattern};

thread_local! {
    /// Per-thread buffer of one packed panel of `B^T` (`k x PANEL`), grown on demand and
    /// kept, so NT products allocate only on a thread's first (or largest) call.
    static PANEL_BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Grow this thread's panel buffer to hold NT products with inner dimension up to `k`
/// (see [`super::reserve_thread_buffers`]).
pub(crate) fn reserve_panel(k: usize) {
    PANEL_BUF.with_borrow_mut(|buf| {
        if buf.len() < k * PANEL {
            buf.resize(k * PANEL, 0.0);
        }
    });
}

/// Token: AVX-512F is available (only created inside `#[target_feature]` entry points).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

/// Token: AVX2 and FMA are available (only created inside `#[target_feature]` entry points).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

/// Mask of the first `n < 16` lanes.
#[inline(always)]
fn first16(n: usize) -> __mmask16 {
    debug_assert!(n < 16);
    ((1u32 << n) - 1) as __mmask16
}

// SAFETY (for every `unsafe` block in this impl): an `Avx512` value exists only inside
// `block_avx512`, a `#[target_feature(enable = "avx512f")]` function whose callers
// guarantee the CPU supports AVX-512F; every intrinsic used is AVX-512F. Pointer
// validity is the contract of each `unsafe fn` (see the trait); masked lanes are
// neither read nor written.
impl Simd for Avx512 {
    type V = __m512;
    const W: usize = 16;

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: p[0..16] readable (caller); unaligned load.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> __m512 {
        // SAFETY: p[0..n] readable (caller); masked-off lanes are not accessed.
        unsafe { _mm512_maskz_loadu_ps(first16(n), p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: p[0..16] writable (caller); unaligned store.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: __m512, n: usize) {
        // SAFETY: p[0..n] writable (caller); masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_ps(p, first16(n), v) }
    }
    #[inline(always)]
    unsafe fn splat(self, p: *const f32) -> __m512 {
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
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn load_mask(self, p: *const f32, mask: u32) -> __m512 {
        // SAFETY: the unmasked elements are readable (caller); masked-off lanes are
        // neither accessed nor able to fault.
        unsafe { _mm512_maskz_loadu_ps(mask as __mmask16, p) }
    }
    #[inline(always)]
    unsafe fn store_mask(self, p: *mut f32, v: __m512, mask: u32) {
        // SAFETY: the unmasked elements are writable (caller); masked-off lanes are
        // neither accessed nor able to fault.
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
    /// 16 x 16 blocks transposed in registers (4 stages of `vpermt2ps`: stage `d`
    /// swaps the off-diagonal `d x d` sub-blocks of every `2d x 2d` block), the
    /// remainders (`k % 16` rows, `w % 16` columns) copied one element at a time.
    #[inline(always)]
    unsafe fn pack_bt(self, b: *const f32, ldb: usize, k: usize, w: usize, buf: *mut f32) {
        let (k16, w16) = (k / 16 * 16, w / 16 * 16);
        // idx_lo[d][c]: row i's new lane c, idx_hi[d][c]: row i + d's (2-source indices,
        // 16.. = the second source).
        let idx = |d: usize, hi: bool| {
            let mut x = [0i32; 16];
            for (c, v) in x.iter_mut().enumerate() {
                let upper = c & d != 0;
                *v = match (hi, upper) {
                    (false, false) => c as i32,
                    (false, true) => (16 + c - d) as i32,
                    (true, false) => (c + d) as i32,
                    (true, true) => (16 + c) as i32,
                };
            }
            x
        };
        // SAFETY: see the impl comment; the loads read b[(j0 + i) ldb + p0 .. + 16] for
        // j0 + 16 <= w, p0 + 16 <= k and the stores write buf[(p0 + q) PANEL + j0 .. + 16],
        // in bounds (caller).
        unsafe {
            let perm: [[__m512i; 2]; 4] = [8, 4, 2, 1]
                .map(|d| [false, true].map(|hi| _mm512_loadu_si512(idx(d, hi).as_ptr().cast())));
            let mut p0 = 0;
            while p0 < k16 {
                let mut j0 = 0;
                while j0 < w16 {
                    let mut r: [__m512; 16] =
                        std::array::from_fn(|i| _mm512_loadu_ps(b.add((j0 + i) * ldb + p0)));
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
                        _mm512_storeu_ps(buf.add((p0 + q) * PANEL + j0), *v);
                    }
                    j0 += 16;
                }
                p0 += 16;
            }
            pack_bt_scalar(b, ldb, 0..k16, w16..w, buf);
            pack_bt_scalar(b, ldb, k16..k, 0..w, buf);
        }
    }
}

/// Lane mask (all ones in lanes `< n`) for AVX `maskload` / `maskstore`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn first8(n: usize) -> __m256i {
    debug_assert!(n < 8);
    // SAFETY: AVX2 (caller); pure register operations.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

/// Lane mask (all ones in lane `l` iff bit `l` of `mask` is set) for AVX `maskload` /
/// `maskstore`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn lanes8(mask: u32) -> __m256i {
    // SAFETY: AVX2 (caller); pure register operations.
    unsafe {
        let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let m = _mm256_and_si256(_mm256_set1_epi32(mask as i32), bits);
        _mm256_cmpeq_epi32(m, bits)
    }
}

// SAFETY (for every `unsafe` block in this impl): an `Avx2` value exists only inside
// `block_avx2`, a `#[target_feature(enable = "avx2,fma")]` function whose callers
// guarantee the CPU supports AVX2 and FMA; every intrinsic used is AVX, AVX2 or FMA.
// Pointer validity is the contract of each `unsafe fn`; `maskload`/`maskstore` do not
// access (nor fault on) masked-off lanes.
impl Simd for Avx2 {
    type V = __m256;
    const W: usize = 8;

    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: p[0..8] readable (caller); unaligned load.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> __m256 {
        // SAFETY: p[0..n] readable (caller); masked-off lanes are not accessed.
        unsafe { _mm256_maskload_ps(p, first8(n)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: p[0..8] writable (caller); unaligned store.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: __m256, n: usize) {
        // SAFETY: p[0..n] writable (caller); masked-off lanes are not written.
        unsafe { _mm256_maskstore_ps(p, first8(n), v) }
    }
    #[inline(always)]
    unsafe fn splat(self, p: *const f32) -> __m256 {
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
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn load_mask(self, p: *const f32, mask: u32) -> __m256 {
        // SAFETY: the unmasked elements are readable (caller); `maskload` neither
        // accesses nor faults on masked-off lanes.
        unsafe { _mm256_maskload_ps(p, lanes8(mask)) }
    }
    #[inline(always)]
    unsafe fn store_mask(self, p: *mut f32, v: __m256, mask: u32) {
        // SAFETY: the unmasked elements are writable (caller); `maskstore` neither
        // accesses nor faults on masked-off lanes.
        unsafe { _mm256_maskstore_ps(p, lanes8(mask), v) }
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

/// Defines one `#[target_feature]` entry point: the block's rows in balanced groups of
/// at most `$rmax`, each group run with its register tile (`R => V` table).
macro_rules! entry {
    ($(#[$doc:meta])* $name:ident, $feat:literal, $tok:ident, $rmax:literal,
     [$($r:literal => $v:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $name(blk: &Block) {
            let s = $tok(());
            if blk.trans_b {
                PANEL_BUF.with_borrow_mut(|buf| {
                    buf.resize(buf.len().max(blk.k * PANEL), 0.0);
                    let mut j = 0;
                    while j < blk.cols {
                        let w = PANEL.min(blk.cols - j);
                        // SAFETY: columns j..j + w of op(B) are rows of B inside the
                        // block (caller), `buf` holds k PANEL elements; the panel's
                        // sub-block (B now the buffer, stored k x PANEL) is inside the
                        // block of C, and this call does not nest (trans_b is false).
                        unsafe {
                            s.pack_bt(blk.b.add(j * blk.ldb), blk.ldb, blk.k, w, buf.as_mut_ptr());
                            let sub = Block {
                                b: buf.as_ptr(),
                                ldb: PANEL,
                                trans_b: false,
                                c: blk.c.add(j),
                                cols: w,
                                ..*blk
                            };
                            $name(&sub);
                        }
                        j += w;
                    }
                });
                return;
            }
            let groups = blk.rows.div_ceil($rmax);
            for g in 0..groups {
                let (r0, r1) = group_bounds(blk.rows, $rmax, g, groups);
                // SAFETY: 0 <= r0 < r1 <= rows (balanced groups); the caller vouches
                // for the block's pointers, hence for each group's (a sub-block) too,
                // and the token's feature is enabled here.
                unsafe {
                    let sub = blk.sub_rows(r0, r1);
                    match (r1 - r0, blk.trans_a) {
                        $(
                            ($r, false) => rows::<_, $r, $v, false>(s, &sub),
                            ($r, true) => rows::<_, $r, $v, true>(s, &sub),
                        )+
                        _ => unreachable!("row group of {} > {} rows", r1 - r0, $rmax),
                    }
                }
            }
        }
    };
}

entry!(
    /// The block with AVX-512F.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `blk`'s pointers must be valid for its whole block
    /// (op(A): `rows x k`, B: `k x cols`, C: `rows x cols`, with its strides), and no other
    /// thread may access that block of C meanwhile.
    block_avx512,
    "avx512f",
    Avx512,
    12,
    [1 => 4, 2 => 4, 3 => 4, 4 => 4, 5 => 3, 6 => 3, 7 => 3,
     8 => 2, 9 => 2, 10 => 2, 11 => 2, 12 => 2]
);

entry!(
    /// The block with AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; otherwise as [`block_avx512`].
    block_avx2,
    "avx2,fma",
    Avx2,
    6,
    [1 => 4, 2 => 4, 3 => 3, 4 => 2, 5 => 2, 6 => 2]
);

/// The zero-skipping kernel (module `sparse`) over one block, with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F; otherwise as `sparse::run`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sparse_avx512(blk: &Block, pat: Option<&Pattern>) {
    // SAFETY: forwarded; the token's feature is enabled here.
    unsafe { sparse::run(Avx512(()), blk, pat) }
}

/// The zero-skipping kernel over one block, with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA; otherwise as `sparse::run`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn sparse_avx2(blk: &Block, pat: Option<&Pattern>) {
    // SAFETY: forwarded; the token's feature is enabled here.
    unsafe { sparse::run(Avx2(()), blk, pat) }
}

/// `Pattern::build_rows` with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F; otherwise as `Pattern::build_rows`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pattern_rows_avx512(
    pat: &mut Pattern,
    a: *const f32,
    lda: usize,
    rows: usize,
    k: usize,
) {
    // SAFETY: forwarded; the token's feature is enabled here.
    unsafe { pat.build_rows(Avx512(()), a, lda, rows, k) }
}

/// `Pattern::build_rows` with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA; otherwise as `Pattern::build_rows`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pattern_rows_avx2(
    pat: &mut Pattern,
    a: *const f32,
    lda: usize,
    rows: usize,
    k: usize,
) {
    // SAFETY: forwarded; the token's feature is enabled here.
    unsafe { pat.build_rows(Avx2(()), a, lda, rows, k) }
}
