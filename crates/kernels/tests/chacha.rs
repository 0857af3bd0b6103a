//! The fast ChaCha8 keystream against `rand_chacha` 0.10's `ChaCha8Rng`, positioned as
//! regulab positions it (`rng::stream_rng` + `set_word_pos`), on every SIMD path: many
//! keys, streams, word positions (block-aligned or not, beyond 2^32, at the counter wrap)
//! and lengths.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use regulab_kernels::chacha::{ChaCha8Stream, fill_words, fill_words_with};
use regulab_kernels::rng::{self, Purpose};
use regulab_kernels::simd::Level;

/// Positions used everywhere: aligned and unaligned, a dropout-like `(step << 32) | i`,
/// and the last words before the 64-bit block counter wraps (2^68 words).
const POSITIONS: [u128; 11] = [
    0,
    1,
    15,
    16,
    17,
    255,
    256,
    (5 << 32) | 123,
    (1 << 68) - 16,
    (1 << 68) - 300,
    (1 << 68) - 1,
];

const LENGTHS: [usize; 9] = [0, 1, 15, 16, 17, 255, 256, 257, 4099];

mod common;

fn levels() -> impl Iterator<Item = Level> {
    common::levels("chacha").into_iter()
}

fn positioned(seed: u64, purpose: Purpose, stream: u64, pos: u128) -> ChaCha8Rng {
    let mut r = rng::stream_rng(seed, purpose, stream);
    r.set_word_pos(pos);
    r
}

/// `n` words with `next_u32`.
fn by_next_u32(seed: u64, purpose: Purpose, stream: u64, pos: u128, n: usize) -> Vec<u32> {
    let mut r = positioned(seed, purpose, stream, pos);
    (0..n).map(|_| r.next_u32()).collect()
}

/// `n` words with one `fill_bytes` (little-endian words, as the dropout kernel read them).
fn by_fill_bytes(seed: u64, purpose: Purpose, stream: u64, pos: u128, n: usize) -> Vec<u32> {
    let mut r = positioned(seed, purpose, stream, pos);
    let mut bytes = vec![0u8; 4 * n];
    r.fill_bytes(&mut bytes);
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn every_path_equals_rand_chacha_for_keys_streams_positions_and_lengths() {
    let purposes = [Purpose::Dropout, Purpose::Init, Purpose::Shuffle];
    let mut checked = 0;
    for (i, seed) in [0u64, 1, 42, 0xDEAD_BEEF_CAFE_F00D].into_iter().enumerate() {
        let purpose = purposes[i % purposes.len()];
        let key = rng::derive_key(seed, purpose);
        for stream in [0u64, 1, 7, u64::MAX] {
            for pos in POSITIONS {
                let want = by_next_u32(seed, purpose, stream, pos, *LENGTHS.iter().max().unwrap());
                for n in LENGTHS {
                    for level in levels() {
                        let mut got = vec![0u32; n];
                        fill_words_with(level, &key, stream, pos, &mut got);
                        assert_eq!(
                            got[..],
                            want[..n],
                            "seed {seed} stream {stream} pos {pos:#x} n {n} {level}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 4 * 4 * POSITIONS.len() * LENGTHS.len());
}

#[test]
fn fill_bytes_and_next_u32_agree_with_fill_words() {
    let key = rng::derive_key(2024, Purpose::Dropout);
    for (stream, pos) in [(1u64, 0u128), (3, (1000 << 32) | 64), (2, 17)] {
        let n = 80_000; // a 100x800 activation
        let want = by_fill_bytes(2024, Purpose::Dropout, stream, pos, n);
        assert_eq!(
            want[..100],
            by_next_u32(2024, Purpose::Dropout, stream, pos, 100)[..]
        );
        let mut got = vec![0u32; n];
        fill_words(&key, stream, pos, &mut got);
        assert_eq!(got, want, "stream {stream} pos {pos:#x}");
    }
}

#[test]
fn every_simd_path_equals_the_scalar_path() {
    let s = ChaCha8Stream::new(&rng::derive_key(5, Purpose::Dropout), 9);
    for pos in POSITIONS {
        for n in [4099usize, 1000, 33, 31] {
            let mut scalar = vec![0u32; n];
            s.fill_with(Level::Scalar, pos, &mut scalar);
            for level in levels() {
                let mut got = vec![1u32; n];
                s.fill_with(level, pos, &mut got);
                assert_eq!(got, scalar, "{level} pos {pos:#x} n {n}");
            }
        }
    }
}

#[test]
fn consecutive_fills_continue_the_stream_and_positions_wrap_at_2_pow_68() {
    let s = ChaCha8Stream::new(&rng::derive_key(77, Purpose::Shuffle), 4);
    let start = (1u128 << 68) - 700;
    let mut whole = vec![0u32; 1500];
    s.fill(start, &mut whole);
    // any split into pieces gives the same words (the dropout chunks rely on this)
    let mut pieces = vec![0u32; 1500];
    let mut at = 0;
    for len in [1usize, 15, 16, 300, 17, 255, 600, 296] {
        s.fill(start + at as u128, &mut pieces[at..at + len]);
        at += len;
    }
    assert_eq!(at, 1500);
    assert_eq!(pieces, whole);
    // positions are taken modulo 2^68, like `set_word_pos`
    let mut wrapped = vec![0u32; 800];
    s.fill(0, &mut wrapped);
    assert_eq!(wrapped, whole[700..]);
    let mut high = vec![0u32; 800];
    s.fill(3 << 68, &mut high);
    assert_eq!(high, wrapped);
    // the stream and the key both matter
    let mut other = vec![0u32; 800];
    ChaCha8Stream::new(&rng::derive_key(77, Purpose::Shuffle), 5).fill(0, &mut other);
    assert_ne!(other, wrapped);
    ChaCha8Stream::new(&rng::derive_key(78, Purpose::Shuffle), 4).fill(0, &mut other);
    assert_ne!(other, wrapped);
}
