//! Independent, positionable random streams derived from one `u64` seed.
//!
//! Every random decision of regulab comes from a ChaCha8 generator whose 256-bit key
//! is derived from `(seed, purpose)` by SplitMix64 expansion, whose 64-bit stream id
//! names the sub-purpose (e.g. the layer), and whose word position names the element.
//! Because `rand_chacha` lets us seek (`set_stream`, `set_word_pos`), a value depends
//! only on these coordinates, never on how work was split among threads.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// What a stream is used for; each purpose gets an unrelated key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Purpose {
    /// Initial weights (stream = layer index).
    Init = 0x1D17_0000_0000_0001,
    /// Training subset and per-epoch shuffles (stream = 0 for the pool, 1 + epoch for shuffles).
    Shuffle = 0x5AFF_0000_0000_0002,
    /// Dropout masks (stream = layer index, word position = (step << 32) | element).
    Dropout = 0xD809_0000_0000_0003,
}

/// One step of SplitMix64 (Steele, Lea, Flood 2014): a bijective mixer of `u64`s.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 256-bit ChaCha key for `(seed, purpose)`.
pub fn derive_key(seed: u64, purpose: Purpose) -> [u8; 32] {
    let mut state = seed ^ (purpose as u64);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    key
}

/// A ChaCha8 generator for `(seed, purpose)` positioned at the start of `stream`.
pub fn stream_rng(seed: u64, purpose: Purpose, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(derive_key(seed, purpose));
    rng.set_stream(stream);
    rng.set_word_pos(0);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn purposes_and_seeds_give_different_keys() {
        let a = derive_key(1, Purpose::Init);
        assert_ne!(a, derive_key(1, Purpose::Dropout));
        assert_ne!(a, derive_key(2, Purpose::Init));
        assert_eq!(a, derive_key(1, Purpose::Init));
    }

    /// rand_chacha 0.10: `set_stream` keeps the word position (unlike the `chacha20`
    /// crate, whose `set_stream` resets it). Our positioning relies on this.
    #[test]
    fn set_stream_keeps_word_position_and_seek_is_exact() {
        let mut r = stream_rng(7, Purpose::Dropout, 3);
        let first: Vec<u32> = (0..40).map(|_| r.next_u32()).collect();
        // seek into the middle of the stream
        let mut s = stream_rng(7, Purpose::Dropout, 3);
        s.set_word_pos(17);
        assert_eq!(s.next_u32(), first[17]);
        // change stream after positioning: position is kept
        let mut t = stream_rng(7, Purpose::Dropout, 0);
        t.set_word_pos(17);
        t.set_stream(3);
        assert_eq!(t.get_word_pos(), 17);
        assert_eq!(t.next_u32(), first[17]);
        // and a different stream gives different words
        let mut u = stream_rng(7, Purpose::Dropout, 4);
        let other: Vec<u32> = (0..40).map(|_| u.next_u32()).collect();
        assert_ne!(first, other);
    }
}
