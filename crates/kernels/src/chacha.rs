//! ChaCha8 keystream words, bit-identical to `rand_chacha` 0.10's `ChaCha8Rng`, computed
//! one block per u32 lane: 16 blocks at a time (AVX-512), 8 (AVX2) or one (scalar).
//!
//! Why our own: `rand_chacha` draws through `ppv-lite86` four blocks at a time, 0.7 to
//! 1 ns per 32-bit word on this project's machines, most of the time of a fused dropout
//! pass. Here every 32-bit lane of a vector register holds one block, so a whole double
//! round is 96 plain vector instructions for 16 blocks, and a transpose
//! ([`crate::simd`]'s `U32Lanes::store_transposed`) puts the words back in stream
//! order. The generator is written once over `U32Lanes`; the scalar token runs the
//! same code one block at a time and is the reference of the others.
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

use crate::simd::{self, Level, Scalar, U32Lanes, leveled};

/// Words per ChaCha block.
pub const BLOCK_WORDS: usize = 16;

/// The "expand 32-byte k" constants, state words 0..4.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// ChaCha8: 8 rounds = 4 double rounds.
const DOUBLE_ROUNDS: usize = 4;

/// Word positions are taken modulo 2^68 (a 64-bit block counter of 16-word blocks).
const POS_MASK: u128 = (1 << 68) - 1;

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

    /// The 16 words of block `block` (the scalar token's batch: the reference of every
    /// path).
    pub fn block(&self, block: u64) -> [u32; BLOCK_WORDS] {
        let mut out = [0u32; BLOCK_WORDS];
        batch(Scalar, self, block, &mut out);
        out
    }

    /// Fills `out` with the words at positions `word_pos, word_pos + 1, ...` (modulo
    /// 2^68) on the fastest path of this machine ([`simd::level`]).
    pub fn fill(&self, word_pos: u128, out: &mut [u32]) {
        self.fill_with(simd::level(), word_pos, out);
    }

    internal!(
        /// [`ChaCha8Stream::fill`] on a chosen path (same words on every path; for tests and
        /// benchmarks). Panics if `level` is not [`simd::available`].
        pub fn fill_with(&self, level: Level, word_pos: u128, out: &mut [u32]) {
            fill_at(level, self, word_pos, out);
        }
    );
}

leveled!(
    /// [`fill`] on `level`.
    fn fill_at(stream: &ChaCha8Stream, word_pos: u128, out: &mut [u32]) => fill
);

/// Fills `out` with the words of `stream` at positions `word_pos ..` (modulo 2^68): a
/// partial first block, then batches of `LANES` blocks, then a tail (more than two blocks:
/// a whole batch into a buffer; less: block by block).
#[inline(always)]
pub(crate) fn fill<S: U32Lanes>(s: S, stream: &ChaCha8Stream, word_pos: u128, out: &mut [u32]) {
    let pos = word_pos & POS_MASK;
    let mut block = (pos >> 4) as u64;
    let offset = (pos % BLOCK_WORDS as u128) as usize;
    let mut out = out;
    if offset != 0 && !out.is_empty() {
        let words = stream.block(block);
        let n = (BLOCK_WORDS - offset).min(out.len());
        let (head, rest) = out.split_at_mut(n);
        head.copy_from_slice(&words[offset..offset + n]);
        out = rest;
        block = block.wrapping_add(1);
    }
    let w = BLOCK_WORDS * S::LANES;
    let mut chunks = out.chunks_exact_mut(w);
    for chunk in &mut chunks {
        batch(s, stream, block, chunk);
        block = block.wrapping_add(S::LANES as u64);
    }
    let rest = chunks.into_remainder();
    if rest.len() > 2 * BLOCK_WORDS {
        let mut buf = [0u32; MAX_BATCH];
        batch(s, stream, block, &mut buf[..w]);
        rest.copy_from_slice(&buf[..rest.len()]);
    } else {
        for part in rest.chunks_mut(BLOCK_WORDS) {
            part.copy_from_slice(&stream.block(block)[..part.len()]);
            block = block.wrapping_add(1);
        }
    }
}

/// Words of the largest batch (16 blocks, AVX-512).
const MAX_BATCH: usize = 16 * BLOCK_WORDS;

/// Blocks `b .. b + LANES` (counter wrapping modulo 2^64) into `out` (`16 LANES` words),
/// block `b + l` at `out[16 l .. 16 l + 16]`: lane `l` of state vector `j` is word `j`
/// of block `b + l`, and the result is transposed back to stream order.
#[inline(always)]
fn batch<S: U32Lanes>(s: S, stream: &ChaCha8Stream, b: u64, out: &mut [u32]) {
    let lo: [u32; 16] = std::array::from_fn(|l| b.wrapping_add(l as u64) as u32);
    let hi: [u32; 16] = std::array::from_fn(|l| (b.wrapping_add(l as u64) >> 32) as u32);
    let mut input = [s.splat_u32(0); BLOCK_WORDS];
    for (x, &c) in input.iter_mut().zip(&SIGMA) {
        *x = s.splat_u32(c);
    }
    for (x, &k) in input[4..12].iter_mut().zip(&stream.key) {
        *x = s.splat_u32(k);
    }
    input[12] = s.load_u32(&lo);
    input[13] = s.load_u32(&hi);
    input[14] = s.splat_u32(stream.stream as u32);
    input[15] = s.splat_u32((stream.stream >> 32) as u32);
    let mut x = input;
    for _ in 0..DOUBLE_ROUNDS {
        double_round(s, &mut x);
    }
    for (x, i) in x.iter_mut().zip(input) {
        *x = s.add_u32(*x, i);
    }
    s.store_transposed(&x, out);
}

/// Fills `out` with the ChaCha8 words at positions `word_pos ..` (modulo 2^68) of stream
/// `stream` under `key`: exactly what `rand_chacha` 0.10's `ChaCha8Rng::from_seed(*key)`
/// gives after `set_stream(stream)` and `set_word_pos(word_pos)`, word after word.
pub fn fill_words(key: &[u8; 32], stream: u64, word_pos: u128, out: &mut [u32]) {
    ChaCha8Stream::new(key, stream).fill(word_pos, out);
}

internal!(
    /// [`fill_words`] on a chosen path. Panics if `level` is not [`simd::available`].
    pub fn fill_words_with(
        level: Level,
        key: &[u8; 32],
        stream: u64,
        word_pos: u128,
        out: &mut [u32],
    ) {
        ChaCha8Stream::new(key, stream).fill_with(level, word_pos, out);
    }
);

/// The quarter round `Q(a, b, c, d)`, lane by lane.
#[inline(always)]
fn quarter<S: U32Lanes>(s: S, x: &mut [S::U; BLOCK_WORDS], a: usize, b: usize, c: usize, d: usize) {
    x[a] = s.add_u32(x[a], x[b]);
    x[d] = s.rotl_u32::<16>(s.xor_u32(x[d], x[a]));
    x[c] = s.add_u32(x[c], x[d]);
    x[b] = s.rotl_u32::<12>(s.xor_u32(x[b], x[c]));
    x[a] = s.add_u32(x[a], x[b]);
    x[d] = s.rotl_u32::<8>(s.xor_u32(x[d], x[a]));
    x[c] = s.add_u32(x[c], x[d]);
    x[b] = s.rotl_u32::<7>(s.xor_u32(x[b], x[c]));
}

/// One double round (column round, then diagonal round), lane by lane.
#[inline(always)]
fn double_round<S: U32Lanes>(s: S, x: &mut [S::U; BLOCK_WORDS]) {
    quarter(s, x, 0, 4, 8, 12);
    quarter(s, x, 1, 5, 9, 13);
    quarter(s, x, 2, 6, 10, 14);
    quarter(s, x, 3, 7, 11, 15);
    quarter(s, x, 0, 5, 10, 15);
    quarter(s, x, 1, 6, 11, 12);
    quarter(s, x, 2, 7, 8, 13);
    quarter(s, x, 3, 4, 9, 14);
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

    /// One batch of every token (256 words: one AVX-512 batch, two AVX2 batches) from
    /// block-aligned positions, the counter wrap included, against scalar blocks.
    #[test]
    fn batches_equal_scalar_blocks() {
        let s = ChaCha8Stream::new(&key(3), 0x0123_4567_89AB_CDEF);
        simd::test_levels("batches_equal_scalar_blocks", &[Level::Avx2, Level::Avx512]);
        for start in [0u64, 1, 5, u64::MAX - 3, (1 << 32) - 2] {
            let want: Vec<u32> = (0..16u64)
                .flat_map(|l| s.block(start.wrapping_add(l)))
                .collect();
            for level in Level::ALL.into_iter().filter(|&l| simd::available(l)) {
                let mut out = [0u32; 256];
                s.fill_with(level, u128::from(start) * 16, &mut out);
                assert_eq!(out[..], want[..], "{level} start {start}");
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
