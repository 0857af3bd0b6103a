//! ChaCha8 keystream words, bit-identical to `rand_chacha` 0.10's `ChaCha8Rng`, computed
//! 16 blocks at a time (AVX-512), 8 at a time (AVX2) or one at a time (scalar).
//!
//! `rand_chacha` draws through `ppv-lite86` four blocks at a time, 0.7 to 1 ns per 32-bit
//! word on this project's machines: most of the time of a fused dropout pass. Here every
//! 32-bit lane of a vector register holds one block, so a whole double round is 96 plain
//! vector instructions for 16 blocks, and a 16x16 transpose puts the words back in stream
//! order.
//!
//! # The generator (as laid out by `rand_chacha` 0.10)
//!
//! The input state of block `c` of stream `s` under the 256-bit key `k` is
//!
//! ```text
//! x[0..4]   = "expand 32-byte k" = 0x61707865 0x3320646e 0x79622d32 0x6b206574
//! x[4..12]  = k read as 8 little-endian u32 (bytes 4i .. 4i + 4 give x[4 + i])
//! x[12..14] = c as (low, high) u32, a 64-bit block counter (wraps modulo 2^64)
//! x[14..16] = s as (low, high) u32, the 64-bit stream id ("nonce")
//! ```
//!
//! and the block is `x + R(R(R(R(x))))` (word-wise wrapping addition), where the double
//! round `R` is the column round `Q(0,4,8,12) Q(1,5,9,13) Q(2,6,10,14) Q(3,7,11,15)` then
//! the diagonal round `Q(0,5,10,15) Q(1,6,11,12) Q(2,7,8,13) Q(3,4,9,14)` with
//!
//! ```text
//! Q(a,b,c,d): a += b; d ^= a; d <<<= 16;  c += d; b ^= c; b <<<= 12;
//!             a += b; d ^= a; d <<<= 8;   c += d; b ^= c; b <<<= 7.
//! ```
//!
//! Word position `p` (68 bits: `rand_chacha`'s `set_word_pos` ignores the higher bits)
//! is word `p mod 16` of block `floor(p / 16) mod 2^64`; consecutive words run on through
//! consecutive blocks, and the block counter wraps from `2^64 - 1` to `0`. So
//!
//! ```text
//! fill_words(key, s, p, out)  ==  { let mut r = ChaCha8Rng::from_seed(key);
//!                                   r.set_stream(s); r.set_word_pos(p);
//!                                   for w in out { *w = r.next_u32() } }
//! ```
//!
//! Only integer additions, xors and rotations are involved, so every path gives the same
//! words by construction; the tests compare each path with `rand_chacha` anyway.

use crate::simd::{self, Level};

/// Words per ChaCha block.
pub const BLOCK_WORDS: usize = 16;

/// The "expand 32-byte k" constants, state words 0..4.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// ChaCha8: 8 rounds = 4 double rounds.
const DOUBLE_ROUNDS: usize = 4;

/// Word positions are taken modulo 2^68 (a 64-bit block counter of 16-word blocks).
const POS_MASK: u128 = (1 << 68) - 1;

/// The four double rounds of ChaCha8 on an array `$x` of 16 vectors (one state word per
/// vector, one block per lane), with the lane-wise operations `$add`, `$xor` and the
/// left rotations `$r16`, `$r12`, `$r8`, `$r7`.
#[cfg(target_arch = "x86_64")]
macro_rules! chacha8_rounds {
    ($x:ident, $add:ident, $xor:ident, $r16:ident, $r12:ident, $r8:ident, $r7:ident) => {{
        macro_rules! q {
            ($a:literal, $b:literal, $c:literal, $d:literal) => {
                $x[$a] = $add($x[$a], $x[$b]);
                $x[$d] = $r16($xor($x[$d], $x[$a]));
                $x[$c] = $add($x[$c], $x[$d]);
                $x[$b] = $r12($xor($x[$b], $x[$c]));
                $x[$a] = $add($x[$a], $x[$b]);
                $x[$d] = $r8($xor($x[$d], $x[$a]));
                $x[$c] = $add($x[$c], $x[$d]);
                $x[$b] = $r7($xor($x[$b], $x[$c]));
            };
        }
        for _ in 0..DOUBLE_ROUNDS {
            q!(0, 4, 8, 12);
            q!(1, 5, 9, 13);
            q!(2, 6, 10, 14);
            q!(3, 7, 11, 15);
            q!(0, 5, 10, 15);
            q!(1, 6, 11, 12);
            q!(2, 7, 8, 13);
            q!(3, 4, 9, 14);
        }
    }};
}

/// One ChaCha8 stream: a 256-bit key and a 64-bit stream id. Positions are free
/// parameters of [`ChaCha8Stream::fill`], so a value can be shared between threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChaCha8Stream {
    key: [u32; 8],
    stream: u64,
}

impl ChaCha8Stream {
    /// Stream `stream` of the key `key` (the seed of `ChaCha8Rng::from_seed`).
    pub fn new(key: &[u8; 32], stream: u64) -> ChaCha8Stream {
        let mut words = [0u32; 8];
        for (w, b) in words.iter_mut().zip(key.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        ChaCha8Stream { key: words, stream }
    }

    /// The 16 words of block `block` (the scalar reference of every path).
    pub fn block(&self, block: u64) -> [u32; BLOCK_WORDS] {
        let s = self.input(block);
        let mut x = s;
        for _ in 0..DOUBLE_ROUNDS {
            double_round(&mut x);
        }
        for (x, s) in x.iter_mut().zip(s) {
            *x = x.wrapping_add(s);
        }
        x
    }

    /// Fills `out` with the words at positions `word_pos, word_pos + 1, ...` (modulo
    /// 2^68) on the fastest path of this machine ([`simd::level`]).
    pub fn fill(&self, word_pos: u128, out: &mut [u32]) {
        self.fill_with(simd::level(), word_pos, out);
    }

    /// [`ChaCha8Stream::fill`] on a chosen path (same words on every path; for tests and
    /// benchmarks). Panics if `level` is not [`simd::available`].
    pub fn fill_with(&self, level: Level, word_pos: u128, out: &mut [u32]) {
        simd::assert_available(level);
        let pos = word_pos & POS_MASK;
        let mut block = (pos >> 4) as u64;
        let offset = (pos % BLOCK_WORDS as u128) as usize;
        let mut out = out;
        if offset != 0 && !out.is_empty() {
            let words = self.block(block);
            let n = (BLOCK_WORDS - offset).min(out.len());
            let (head, rest) = out.split_at_mut(n);
            head.copy_from_slice(&words[offset..offset + n]);
            out = rest;
            block = block.wrapping_add(1);
        }
        match level {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => self.fill_blocks::<256>(block, out, |b, o| {
                // SAFETY: `assert_available` above checked that this CPU runs AVX-512F.
                unsafe { x86::blocks16(&self.key, self.stream, b, o) }
            }),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => self.fill_blocks::<128>(block, out, |b, o| {
                // SAFETY: `assert_available` above checked that this CPU runs AVX2.
                unsafe { x86::blocks8(&self.key, self.stream, b, o) }
            }),
            _ => self.fill_blocks::<16>(block, out, |b, o| *o = self.block(b)),
        }
    }

    /// Fills `out` from the start of block `block`, `W / 16` blocks per call of `batch`
    /// (which writes the blocks `b, b + 1, ...` into its array). A tail of more than two
    /// blocks is computed as a whole batch into a buffer; shorter tails block by block.
    #[inline(always)]
    fn fill_blocks<const W: usize>(
        &self,
        mut block: u64,
        out: &mut [u32],
        batch: impl Fn(u64, &mut [u32; W]),
    ) {
        let mut chunks = out.chunks_exact_mut(W);
        for chunk in &mut chunks {
            let chunk: &mut [u32; W] = chunk.try_into().expect("chunks_exact gives W words");
            batch(block, chunk);
            block = block.wrapping_add((W / BLOCK_WORDS) as u64);
        }
        let rest = chunks.into_remainder();
        if rest.len() > 2 * BLOCK_WORDS {
            let mut buf = [0u32; W];
            batch(block, &mut buf);
            rest.copy_from_slice(&buf[..rest.len()]);
        } else {
            for part in rest.chunks_mut(BLOCK_WORDS) {
                part.copy_from_slice(&self.block(block)[..part.len()]);
                block = block.wrapping_add(1);
            }
        }
    }

    /// The input state of block `block`.
    fn input(&self, block: u64) -> [u32; BLOCK_WORDS] {
        let mut s = [0u32; BLOCK_WORDS];
        s[..4].copy_from_slice(&SIGMA);
        s[4..12].copy_from_slice(&self.key);
        s[12] = block as u32;
        s[13] = (block >> 32) as u32;
        s[14] = self.stream as u32;
        s[15] = (self.stream >> 32) as u32;
        s
    }
}

/// Fills `out` with the ChaCha8 words at positions `word_pos ..` (modulo 2^68) of stream
/// `stream` under `key`: exactly what `rand_chacha` 0.10's `ChaCha8Rng::from_seed(*key)`
/// gives after `set_stream(stream)` and `set_word_pos(word_pos)`, word after word.
pub fn fill_words(key: &[u8; 32], stream: u64, word_pos: u128, out: &mut [u32]) {
    ChaCha8Stream::new(key, stream).fill(word_pos, out);
}

/// [`fill_words`] on a chosen path. Panics if `level` is not [`simd::available`].
pub fn fill_words_with(level: Level, key: &[u8; 32], stream: u64, word_pos: u128, out: &mut [u32]) {
    ChaCha8Stream::new(key, stream).fill_with(level, word_pos, out);
}

/// The quarter round `Q(a, b, c, d)` on scalar words.
#[inline(always)]
fn quarter(x: &mut [u32; BLOCK_WORDS], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

/// One double round (column round, then diagonal round) on scalar words.
#[inline(always)]
fn double_round(x: &mut [u32; BLOCK_WORDS]) {
    quarter(x, 0, 4, 8, 12);
    quarter(x, 1, 5, 9, 13);
    quarter(x, 2, 6, 10, 14);
    quarter(x, 3, 7, 11, 15);
    quarter(x, 0, 5, 10, 15);
    quarter(x, 1, 6, 11, 12);
    quarter(x, 2, 7, 8, 13);
    quarter(x, 3, 4, 9, 14);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512 (16 blocks) and AVX2 (8 blocks) batches: lane `l` of vector `j` is
    //! word `j` of block `b + l`; the result is transposed back to stream order.

    use super::{BLOCK_WORDS, DOUBLE_ROUNDS, SIGMA};
    use std::arch::x86_64::*;

    /// Low and high halves of the block counters `b + l`, `l < N` (64-bit wrapping).
    #[inline(always)]
    fn counters<const N: usize>(b: u64) -> ([u32; N], [u32; N]) {
        let lo = std::array::from_fn(|l| b.wrapping_add(l as u64) as u32);
        let hi = std::array::from_fn(|l| (b.wrapping_add(l as u64) >> 32) as u32);
        (lo, hi)
    }

    /// Blocks `b .. b + 16` (counter wrapping modulo 2^64) into `out`, block `b + l` at
    /// `out[16 l .. 16 l + 16]`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn blocks16(key: &[u32; 8], stream: u64, b: u64, out: &mut [u32; 256]) {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn add(a: __m512i, b: __m512i) -> __m512i {
            _mm512_add_epi32(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn xor(a: __m512i, b: __m512i) -> __m512i {
            _mm512_xor_si512(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn r16(a: __m512i) -> __m512i {
            _mm512_rol_epi32::<16>(a)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn r12(a: __m512i) -> __m512i {
            _mm512_rol_epi32::<12>(a)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn r8(a: __m512i) -> __m512i {
            _mm512_rol_epi32::<8>(a)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn r7(a: __m512i) -> __m512i {
            _mm512_rol_epi32::<7>(a)
        }

        let (lo, hi) = counters::<16>(b);
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn splat(w: u32) -> __m512i {
            _mm512_set1_epi32(w as i32)
        }
        let mut s = [_mm512_setzero_si512(); BLOCK_WORDS];
        for j in 0..4 {
            s[j] = splat(SIGMA[j]);
        }
        for j in 0..8 {
            s[4 + j] = splat(key[j]);
        }
        // SAFETY: `lo` and `hi` are 16 u32 = 64 bytes each; unaligned loads.
        unsafe {
            s[12] = _mm512_loadu_si512(lo.as_ptr().cast());
            s[13] = _mm512_loadu_si512(hi.as_ptr().cast());
        }
        s[14] = splat(stream as u32);
        s[15] = splat((stream >> 32) as u32);

        let mut x = s;
        chacha8_rounds!(x, add, xor, r16, r12, r8, r7);
        for j in 0..BLOCK_WORDS {
            x[j] = add(x[j], s[j]);
        }

        // Transpose 16x16. After the two unpack stages, 128-bit lane L of r[p][g] holds
        // words 4g .. 4g + 4 of block 4L + p; two stages of 128-bit lane shuffles then
        // gather lane L of r[0..4][p] into the 16 words of block 4L + p.
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
        let dst = out.as_mut_ptr();
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
                // SAFETY: block 4 lane + p < 16, so its 16 words lie inside the 256 of
                // `out`; unaligned store.
                unsafe { _mm512_storeu_si512(dst.add((4 * lane + p) * BLOCK_WORDS).cast(), v) };
            }
        }
    }

    /// Blocks `b .. b + 8` (counter wrapping modulo 2^64) into `out`, block `b + l` at
    /// `out[16 l .. 16 l + 16]`.
    #[target_feature(enable = "avx2")]
    pub(super) fn blocks8(key: &[u32; 8], stream: u64, b: u64, out: &mut [u32; 128]) {
        #[inline]
        #[target_feature(enable = "avx2")]
        fn add(a: __m256i, b: __m256i) -> __m256i {
            _mm256_add_epi32(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn xor(a: __m256i, b: __m256i) -> __m256i {
            _mm256_xor_si256(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn r16(a: __m256i) -> __m256i {
            // bytes (b0 b1 b2 b3) of each word become (b2 b3 b0 b1)
            let idx = _mm256_setr_epi8(
                2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                11, 8, 9, 14, 15, 12, 13,
            );
            _mm256_shuffle_epi8(a, idx)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn r12(a: __m256i) -> __m256i {
            _mm256_or_si256(_mm256_slli_epi32::<12>(a), _mm256_srli_epi32::<20>(a))
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn r8(a: __m256i) -> __m256i {
            // bytes (b0 b1 b2 b3) of each word become (b3 b0 b1 b2)
            let idx = _mm256_setr_epi8(
                3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11,
                8, 9, 10, 15, 12, 13, 14,
            );
            _mm256_shuffle_epi8(a, idx)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn r7(a: __m256i) -> __m256i {
            _mm256_or_si256(_mm256_slli_epi32::<7>(a), _mm256_srli_epi32::<25>(a))
        }

        let (lo, hi) = counters::<8>(b);
        #[inline]
        #[target_feature(enable = "avx2")]
        fn splat(w: u32) -> __m256i {
            _mm256_set1_epi32(w as i32)
        }
        let mut s = [_mm256_setzero_si256(); BLOCK_WORDS];
        for j in 0..4 {
            s[j] = splat(SIGMA[j]);
        }
        for j in 0..8 {
            s[4 + j] = splat(key[j]);
        }
        // SAFETY: `lo` and `hi` are 8 u32 = 32 bytes each; unaligned loads.
        unsafe {
            s[12] = _mm256_loadu_si256(lo.as_ptr().cast());
            s[13] = _mm256_loadu_si256(hi.as_ptr().cast());
        }
        s[14] = splat(stream as u32);
        s[15] = splat((stream >> 32) as u32);

        let mut x = s;
        chacha8_rounds!(x, add, xor, r16, r12, r8, r7);
        for j in 0..BLOCK_WORDS {
            x[j] = add(x[j], s[j]);
        }

        // Two 8x8 transposes (words 0..8 and 8..16). After the unpack stages, 128-bit lane
        // L of r[p][g] holds words 8h + 4g .. 8h + 4g + 4 of block 4L + p.
        let dst = out.as_mut_ptr();
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
                let lo_lanes = _mm256_permute2x128_si256::<0x20>(rp[0], rp[1]); // block p
                let hi_lanes = _mm256_permute2x128_si256::<0x31>(rp[0], rp[1]); // block 4 + p
                // SAFETY: blocks p and 4 + p are < 8, and words 8h .. 8h + 8 of a block lie
                // inside its 16: all within the 128 words of `out`; unaligned stores.
                unsafe {
                    _mm256_storeu_si256(dst.add(p * BLOCK_WORDS + 8 * h).cast(), lo_lanes);
                    _mm256_storeu_si256(dst.add((4 + p) * BLOCK_WORDS + 8 * h).cast(), hi_lanes);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};

    fn reference(key: &[u8; 32], stream: u64, pos: u128, n: usize) -> Vec<u32> {
        let mut r = ChaCha8Rng::from_seed(*key);
        r.set_stream(stream);
        r.set_word_pos(pos);
        (0..n).map(|_| r.next_u32()).collect()
    }

    fn key(salt: u8) -> [u8; 32] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(salt))
    }

    fn hex_words(hex: &str) -> Vec<u32> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// Known answers: draft-strombergson-chacha-test-vectors TC1 (zero key, zero IV, 8
    /// rounds, first two blocks), and D. J. Bernstein's reference with the block counter
    /// at 2^64 - 1 (the block before TC1's, then the counter wraps to 0).
    #[test]
    fn known_answers() {
        let tc1 = hex_words(
            "3e00ef2f895f40d67f5bb8e81f09a5a12c840ec3ce9a7f3b181be188ef711a1e\
             984ce172b9216f419f445367456d5619314a42a3da86b001387bfdb80e0cfe42\
             d2aefa0deaa5c151bf0adb6c01f2a5adc0fd581259f9a2aadcf20f8fd566a26b\
             5032ec38bbc5da98ee0c6f568b872a65a08abf251deb21bb4b56e5d8821e68aa",
        );
        let wrap = hex_words(
            "df8a0bceca2fbb111f29978fa9a64407c68ced975ff55a24707265d0687e6aef\
             b3597eac46e4b0a79b3a49c8b0f1775ac3edd7eb6a6d9bcb38f276517a79e014",
        );
        let zero = ChaCha8Stream::new(&[0; 32], 0);
        for level in simd::test_levels("chacha_test_vectors", &Level::ALL) {
            let mut got = vec![0u32; 32];
            zero.fill_with(level, 0, &mut got);
            assert_eq!(got, tc1, "{level}");
            let mut got = vec![0u32; 48];
            zero.fill_with(level, (1 << 68) - 16, &mut got);
            assert_eq!(got[..16], wrap[..], "{level}");
            assert_eq!(got[16..], tc1[..], "{level}: the counter wraps to block 0");
        }
        assert_eq!(zero.block(u64::MAX)[..], wrap[..]);
    }

    #[test]
    fn batches_equal_scalar_blocks() {
        let s = ChaCha8Stream::new(&key(3), 0x0123_4567_89AB_CDEF);
        simd::test_levels("batches_equal_scalar_blocks", &[Level::Avx2, Level::Avx512]);
        for start in [0u64, 1, 5, u64::MAX - 3, (1 << 32) - 2] {
            let want: Vec<u32> = (0..16u64)
                .flat_map(|l| s.block(start.wrapping_add(l)))
                .collect();
            if simd::available(Level::Avx512) {
                let mut out = [0u32; 256];
                // SAFETY: AVX-512F checked just above.
                unsafe { x86::blocks16(&s.key, s.stream, start, &mut out) };
                assert_eq!(out[..], want[..], "avx512 start {start}");
            }
            if simd::available(Level::Avx2) {
                let mut out = [0u32; 128];
                // SAFETY: AVX2 checked just above.
                unsafe { x86::blocks8(&s.key, s.stream, start, &mut out) };
                assert_eq!(out[..], want[..128], "avx2 start {start}");
            }
        }
    }

    #[test]
    fn every_path_equals_rand_chacha_at_odd_positions_and_lengths() {
        let k = key(9);
        for pos in [0u128, 3, 16, 17, 250, (7 << 32) | 33] {
            for n in [0usize, 1, 2, 31, 33, 48, 129, 300, 520] {
                let want = reference(&k, 11, pos, n);
                for level in simd::test_levels("chacha_every_path", &Level::ALL) {
                    let mut got = vec![0u32; n];
                    fill_words_with(level, &k, 11, pos, &mut got);
                    assert_eq!(got, want, "{level} pos {pos} n {n}");
                }
            }
        }
    }
}
