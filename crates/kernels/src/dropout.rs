//! Fused dropout: Bernoulli(keep) mask + inverted scaling in one pass, 1 bit per element.
//!
//! # Randomness
//! Element `i` of the mask with key `(seed, layer, step)` is decided by the 32-bit word
//! `u_i` at word position `(step << 32) | i` of ChaCha8 stream `layer` keyed by
//! [`rng::derive_key`]`(seed, Purpose::Dropout)`:
//!
//! ```text
//! m_i = [u_i < T],   T = floor(keep * 2^32)   (computed exactly in f64)
//! ```
//!
//! so `P(m_i = 1) = T / 2^32`, within `2^-32` of `keep`. Only integer comparisons are used
//! (no float distribution of `rand`, whose values may change between versions). A mask
//! depends only on `(seed, layer, step, i)`: the work is split into fixed chunks of
//! [`CHUNK`] elements, each with its own positioned generator, so the mask is the same
//! whatever the size of the rayon pool. Masks must have fewer than `2^32` elements.
//!
//! Steps are distinct only modulo `2^36`: ChaCha's 64-bit block counter of 16-word blocks
//! makes word positions wrap modulo `2^68` (as `rand_chacha`'s `set_word_pos`, which
//! ignores the higher bits), so `step` and `step + 2^36` give the same mask. At one step
//! per minibatch that is 6.9e10 minibatches, far beyond any experiment.
//!
//! The words are those of `rand_chacha` 0.10's `ChaCha8Rng` positioned with `set_stream`
//! and `set_word_pos`; they are computed by [`crate::chacha`] inside the chunk kernel,
//! 16 blocks at a time on AVX-512 (bit-identical to `rand_chacha` on every path).
//!
//! # Scaling
//! `inv_keep = 1.0_f32 / keep` is computed once, in f32, and every kernel multiplies by
//! that same value: forward `y_i = m_i ? x_i * inv_keep : +0`, backward
//! `g_i = m_i ? g_i * inv_keep : +0`. Zeroing and a multiplication by one f32 are exact,
//! correctly rounded operations, so the scalar, AVX2 and AVX-512 paths give the same bits.
//! With keep = 1 the forward pass is a plain copy (bit-identical to no dropout) and draws
//! no random words.
//!
//! # One source for every path
//!
//! The chunk kernels are written once over [`crate::simd`]'s lanes: the threshold compare
//! on u32 lanes (64 words to 64 mask bits), the scaling as a select between `x * inv`
//! and `+0` on f32 lanes. The fused backward takes the activation's derivative from the
//! same ops as [`crate::activation::backward`], so the two cannot compute `f'` apart.

#[cfg(test)]
use rand_chacha::ChaCha8Rng;
#[cfg(test)]
use rand_core::Rng;
use rayon::prelude::*;

mod chunk;

use crate::KernelError;
use crate::activation::Activation;
use crate::chacha::ChaCha8Stream;
use crate::rng::{self, Purpose};
use crate::simd::{self, Level};
use chunk::{Draw, backward_chunk, forward_chunk};

/// Elements per parallel work item. A multiple of 64 (each chunk owns whole `u64` words of
/// the mask) and of 256 (each chunk draws its random words 256 at a time: 16 ChaCha
/// blocks, one AVX-512 batch of [`crate::chacha`]). Fixed, so the split never depends on the number of threads.
pub const CHUNK: usize = 16_384;

/// Random words drawn at a time into a stack buffer: 16 ChaCha blocks, one AVX-512 batch.
const DRAW: usize = 256;

const _: () = assert!(CHUNK.is_multiple_of(64) && CHUNK.is_multiple_of(DRAW) && CHUNK > 0);

/// Mask words per chunk.
const CHUNK_WORDS: usize = CHUNK / 64;

/// Masks must have fewer elements than this: the element index is the low 32 bits of the
/// random word position.
pub const MAX_LEN: u64 = 1 << 32;

/// A validated keep probability in (0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keep(f32);

impl Keep {
    /// `Err` unless `0 < p <= 1`.
    pub fn new(p: f32) -> Result<Keep, KernelError> {
        if p.is_finite() && p > 0.0 && p <= 1.0 {
            Ok(Keep(p))
        } else {
            Err(KernelError::KeepOutOfRange(p))
        }
    }
    /// The probability.
    pub fn get(self) -> f32 {
        self.0
    }
    /// The scale of kept elements, `1.0_f32 / keep` (one f32 division, used by every kernel).
    pub fn inv(self) -> f32 {
        1.0 / self.0
    }
    /// The integer threshold `T = floor(keep * 2^32)`: element kept iff its word `u < T`.
    /// `2^32` for keep = 1 (always kept).
    pub fn threshold(self) -> u64 {
        (f64::from(self.0) * 4_294_967_296.0).floor() as u64
    }
    /// True when nothing is dropped.
    pub fn is_one(self) -> bool {
        self.0 == 1.0
    }
}

/// Coordinates of a mask: element `i` uses random word `(step << 32) | i` of stream
/// `layer` of the key derived from `(seed, Purpose::Dropout)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskKey {
    /// Experiment seed.
    pub seed: u64,
    /// 0 = inputs, i = output of hidden layer i.
    pub layer: u32,
    /// Global minibatch counter (masks repeat with period `2^36` in the step, see the
    /// module documentation).
    pub step: u64,
}

impl MaskKey {
    /// The ChaCha8 stream of this key: stream `layer` of the key derived from
    /// `(seed, Purpose::Dropout)`.
    fn generator(self) -> ChaCha8Stream {
        ChaCha8Stream::new(
            &rng::derive_key(self.seed, Purpose::Dropout),
            u64::from(self.layer),
        )
    }
    /// The word position of element `i`: `(step << 32) | i` (taken modulo `2^68`).
    fn position(self, i: usize) -> u128 {
        (u128::from(self.step) << 32) | i as u128
    }
    /// The same stream as a `rand_chacha` generator at position 0 (the tests' reference).
    #[cfg(test)]
    fn base_rng(self) -> ChaCha8Rng {
        rng::stream_rng(self.seed, Purpose::Dropout, u64::from(self.layer))
    }
}

/// A dropout mask stored as 1 bit per element (bit set = kept); reusable buffer.
///
/// Element `i` is bit `i % 64` of word `i / 64`; bits past [`Mask::len`] are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    bits: Vec<u64>,
    len: usize,
}

impl Mask {
    /// An empty mask (grows on first use, then reused without allocation).
    pub fn new() -> Mask {
        Mask::default()
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when the mask covers no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Whether element `i` is kept.
    pub fn kept(&self, i: usize) -> bool {
        assert!(i < self.len);
        (self.bits[i / 64] >> (i % 64)) & 1 == 1
    }
    /// Number of kept elements.
    pub fn count_kept(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// The packed bits: element `i` is bit `i % 64` of word `i / 64`, unused high bits of
    /// the last word are zero.
    pub fn words(&self) -> &[u64] {
        &self.bits
    }
    /// Sets the length to `len`; allocates only when `len` exceeds every earlier length.
    fn resize(&mut self, len: usize) {
        check_len(len);
        self.bits.resize(len.div_ceil(64), 0);
        self.len = len;
    }
    /// Every element kept (the mask of keep = 1).
    fn fill_kept(&mut self, len: usize) {
        self.resize(len);
        self.bits.fill(u64::MAX);
        let full = len / 64;
        if let Some(last) = self.bits.get_mut(full) {
            *last = tail_bits(len - full * 64);
        }
    }
}

/// Panics unless `len < 2^32` (element indices occupy the low 32 bits of the position).
fn check_len(len: usize) {
    assert!(
        (len as u64) < MAX_LEN,
        "dropout mask of {len} elements: at most 2^32 - 1 elements are supported \
         (the element index is the low 32 bits of the random word position)"
    );
}

/// The low `n` bits set (`n` in 1..=64).
#[inline(always)]
fn tail_bits(n: usize) -> u64 {
    debug_assert!((1..=64).contains(&n));
    u64::MAX >> (64 - n)
}

/// `y = x * m / keep` with `m ~ Bernoulli(keep)` drawn from `key`; records `m` in `mask`.
/// keep = 1 copies `x` and sets every bit.
///
/// Exactly: `y_i = x_i * inv_keep` if kept, `+0.0` if dropped, with
/// `inv_keep = `[`Keep::inv`]. Panics if `x.len() != y.len()` or `x.len() >= 2^32`.
pub fn forward(key: MaskKey, keep: Keep, x: &[f32], y: &mut [f32], mask: &mut Mask) {
    forward_with(simd::level(), key, keep, x, y, mask);
}

internal!(
    /// [`forward`] on a chosen SIMD path (same bits on every path; for tests and benchmarks).
    /// Panics if `level` is not [`simd::available`].
    pub fn forward_with(
        level: Level,
        key: MaskKey,
        keep: Keep,
        x: &[f32],
        y: &mut [f32],
        mask: &mut Mask,
    ) {
        simd::require(level);
        assert_eq!(x.len(), y.len(), "dropout::forward: x and y lengths differ");
        if keep.is_one() {
            mask.fill_kept(x.len());
            y.copy_from_slice(x);
            return;
        }
        forward_at(level, key, keep, Some(x), y, mask);
    }
);

/// In place `x = x * m / keep`, otherwise as [`forward`] (same mask, same bits).
pub fn forward_inplace(key: MaskKey, keep: Keep, x: &mut [f32], mask: &mut Mask) {
    forward_inplace_with(simd::level(), key, keep, x, mask);
}

internal!(
    /// [`forward_inplace`] on a chosen SIMD path. Panics if `level` is not [`simd::available`].
    pub fn forward_inplace_with(
        level: Level,
        key: MaskKey,
        keep: Keep,
        x: &mut [f32],
        mask: &mut Mask,
    ) {
        simd::require(level);
        if keep.is_one() {
            mask.fill_kept(x.len());
            return;
        }
        forward_at(level, key, keep, None, x, mask);
    }
);

/// `g = g * m / keep` with the mask recorded by [`forward`].
///
/// Exactly: `g_i = g_i * inv_keep` if kept, `+0.0` if dropped (for keep = 1,
/// `g_i * 1.0 == g_i` for every non-NaN value). Panics if `g.len() != mask.len()`.
pub fn backward(keep: Keep, mask: &Mask, g: &mut [f32]) {
    backward_with(simd::level(), keep, mask, g);
}

internal!(
    /// [`backward`] on a chosen SIMD path. Panics if `level` is not [`simd::available`].
    pub fn backward_with(level: Level, keep: Keep, mask: &Mask, g: &mut [f32]) {
        simd::require(level);
        backward_at(level, keep, mask, None, g);
    }
);

/// Fused `g = g * m / keep * f'(.)` where `f'` is expressed through the activation's
/// output `h` (before dropout), as in [`crate::activation::backward`].
///
/// Exactly, for kept elements (dropped ones get `+0.0`), with `t = g_i * inv_keep`:
/// * sigmoid: `g_i = t * (h_i * (1 - h_i))`
/// * tanh: `g_i = t * (1 - h_i * h_i)`
/// * ReLU: `g_i = t` if `h_i > 0`, else `+0.0` (a select, not a product by 0)
/// * identity: `g_i = t`
///
/// each operation rounded to f32 separately (no fused multiply-add).
/// Panics if `g.len() != mask.len()` or `h.len() != g.len()`.
pub fn backward_act(keep: Keep, mask: &Mask, act: Activation, h: &[f32], g: &mut [f32]) {
    backward_act_with(simd::level(), keep, mask, act, h, g);
}

internal!(
    /// [`backward_act`] on a chosen SIMD path. Panics if `level` is not [`simd::available`].
    pub fn backward_act_with(
        level: Level,
        keep: Keep,
        mask: &Mask,
        act: Activation,
        h: &[f32],
        g: &mut [f32],
    ) {
        simd::require(level);
        assert_eq!(
            h.len(),
            g.len(),
            "dropout::backward_act: h and g lengths differ"
        );
        backward_at(level, keep, mask, Some((act, h)), g);
    }
);

// ------------------------------------------------------------------------------------
// Drivers: chunking and parallelism.

/// Forward with keep < 1: `dst = m ? src * inv : +0`, or in place (`src` `None`: `dst`
/// is read).
fn forward_at(
    level: Level,
    key: MaskKey,
    keep: Keep,
    src: Option<&[f32]>,
    dst: &mut [f32],
    mask: &mut Mask,
) {
    let n = dst.len();
    mask.resize(n);
    // keep < 1 here, so T <= 2^32 - 256 fits in a u32.
    let thr = u32::try_from(keep.threshold()).expect("keep < 1 gives a 32-bit threshold");
    let stream = key.generator();
    crate::trace::dropout(n > CHUNK);
    let draw = |c: usize| Draw {
        stream: &stream,
        pos: key.position(c * CHUNK),
        thr,
        inv: keep.inv(),
    };
    if n <= CHUNK {
        forward_chunk(level, &draw(0), &mut mask.bits, src, dst);
        return;
    }
    // Same bits for any pool: chunk c draws the words at its own fixed positions and
    // writes only its own elements and mask words.
    let bits = mask.bits.par_chunks_mut(CHUNK_WORDS);
    match src {
        Some(x) => bits
            .zip(x.par_chunks(CHUNK).zip(dst.par_chunks_mut(CHUNK)))
            .enumerate()
            .for_each(|(c, (bits, (x, y)))| forward_chunk(level, &draw(c), bits, Some(x), y)),
        None => bits
            .zip(dst.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (bits, y))| forward_chunk(level, &draw(c), bits, None, y)),
    }
}

/// Backward (optionally fused with an activation derivative).
fn backward_at(
    level: Level,
    keep: Keep,
    mask: &Mask,
    act: Option<(Activation, &[f32])>,
    g: &mut [f32],
) {
    assert_eq!(
        mask.len(),
        g.len(),
        "dropout backward: mask and gradient lengths differ"
    );
    let inv = keep.inv();
    crate::trace::dropout(g.len() > CHUNK);
    if g.len() <= CHUNK {
        backward_chunk(level, inv, &mask.bits, act, g);
        return;
    }
    // Same bits for any pool: an elementwise pass over fixed chunks with their own
    // mask words.
    let bits = mask.bits.par_chunks(CHUNK_WORDS);
    match act {
        None => bits
            .zip(g.par_chunks_mut(CHUNK))
            .for_each(|(bits, g)| backward_chunk(level, inv, bits, None, g)),
        Some((a, h)) => bits
            .zip(h.par_chunks(CHUNK).zip(g.par_chunks_mut(CHUNK)))
            .for_each(|(bits, (h, g))| backward_chunk(level, inv, bits, Some((a, h)), g)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    fn key(seed: u64, layer: u32, step: u64) -> MaskKey {
        MaskKey { seed, layer, step }
    }

    /// Deterministic pseudo-random test data including negatives, zeros, subnormals,
    /// infinities and NaN.
    fn data(n: usize, salt: u32) -> Vec<f32> {
        let mut s = 0x9E37_79B9u32 ^ salt;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                match i % 97 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f32::INFINITY,
                    3 => f32::NAN,
                    4 => 1e-40,
                    _ => (s as f32 / u32::MAX as f32) * 4.0 - 2.0,
                }
            })
            .collect()
    }

    fn bits_of(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The CPU really has this level (otherwise the test of that level is skipped, and
    /// said so, or fails under `REGULAB_REQUIRE_SIMD`).
    fn available(level: Level) -> bool {
        !simd::test_levels("dropout", &[level]).is_empty()
    }

    /// Sequential reference of the decision rule, straight from the definition.
    fn reference_mask(k: MaskKey, keep: Keep, n: usize) -> Vec<bool> {
        let mut r = k.base_rng();
        r.set_word_pos(u128::from(k.step) << 32);
        let t = keep.threshold();
        (0..n).map(|_| u64::from(r.next_u32()) < t).collect()
    }

    #[test]
    fn masks_follow_the_definition() {
        let keep = Keep::new(0.3).unwrap();
        let k = key(11, 2, 5);
        for n in [
            1,
            63,
            64,
            65,
            1000,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK + 77,
        ] {
            let x = vec![1.0f32; n];
            let mut y = vec![0.0f32; n];
            let mut m = Mask::new();
            forward(k, keep, &x, &mut y, &mut m);
            let want = reference_mask(k, keep, n);
            let got: Vec<bool> = (0..n).map(|i| m.kept(i)).collect();
            assert_eq!(got, want, "n = {n}");
            // unused bits of the last word are zero
            assert_eq!(m.count_kept(), want.iter().filter(|&&b| b).count());
        }
        // spot-check the per-element seek of a large step
        let k = key(3, 7, (1 << 33) + 5);
        let n = 3 * CHUNK + 5;
        let mut m = Mask::new();
        forward_inplace(k, keep, &mut vec![1.0; n], &mut m);
        for i in [0, 17, CHUNK - 1, CHUNK, 2 * CHUNK + 3, n - 1] {
            let mut r = k.base_rng();
            r.set_word_pos((u128::from(k.step) << 32) | i as u128);
            assert_eq!(
                m.kept(i),
                u64::from(r.next_u32()) < keep.threshold(),
                "i = {i}"
            );
        }
    }

    #[test]
    fn simd_paths_equal_scalar_bit_for_bit() {
        let k = key(5, 1, 9);
        for keep in [0.1f32, 0.5, 0.8, 0.999] {
            let keep = Keep::new(keep).unwrap();
            for n in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, CHUNK + 13] {
                let x = data(n, n as u32);
                let h: Vec<f32> = data(n, 7).iter().map(|v| v * 0.4 + 0.1).collect();
                let g0 = data(n, 99);
                let mut ref_y = vec![0.0; n];
                let mut ref_m = Mask::new();
                forward_at(Level::Scalar, k, keep, Some(&x), &mut ref_y, &mut ref_m);
                for level in LEVELS.into_iter().filter(|&l| available(l)) {
                    let mut y = vec![0.0; n];
                    let mut m = Mask::new();
                    forward_at(level, k, keep, Some(&x), &mut y, &mut m);
                    assert_eq!(m, ref_m, "{level:?} n={n}");
                    assert_eq!(bits_of(&y), bits_of(&ref_y), "{level:?} n={n}");
                    let mut xi = x.clone();
                    let mut mi = Mask::new();
                    forward_at(level, k, keep, None, &mut xi, &mut mi);
                    assert_eq!(mi, ref_m);
                    assert_eq!(bits_of(&xi), bits_of(&ref_y), "{level:?} in place n={n}");

                    let acts = [
                        None,
                        Some(Activation::Sigmoid),
                        Some(Activation::Tanh),
                        Some(Activation::Relu),
                        Some(Activation::Identity),
                    ];
                    for act in acts {
                        let mut want = g0.clone();
                        backward_at(
                            Level::Scalar,
                            keep,
                            &ref_m,
                            act.map(|a| (a, &h[..])),
                            &mut want,
                        );
                        let mut got = g0.clone();
                        backward_at(level, keep, &ref_m, act.map(|a| (a, &h[..])), &mut got);
                        assert_eq!(bits_of(&got), bits_of(&want), "{level:?} {act:?} n={n}");
                    }
                }
            }
        }
    }

    #[test]
    fn scalar_backward_act_matches_its_documented_formula() {
        let keep = Keep::new(0.6).unwrap();
        let n = 300;
        let x = vec![1.0f32; n];
        let mut y = vec![0.0; n];
        let mut m = Mask::new();
        forward(key(1, 0, 0), keep, &x, &mut y, &mut m);
        let h: Vec<f32> = data(n, 3).iter().map(|v| v * 0.5).collect();
        let g = data(n, 4);
        let inv = 1.0f32 / 0.6;
        for act in [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::Identity,
        ] {
            let mut got = g.clone();
            backward_act(keep, &m, act, &h, &mut got);
            for i in 0..n {
                let t = g[i] * inv;
                let want = if !m.kept(i) {
                    0.0
                } else {
                    match act {
                        Activation::Sigmoid => t * (h[i] * (1.0 - h[i])),
                        Activation::Tanh => t * (1.0 - h[i] * h[i]),
                        Activation::Relu => {
                            if h[i] > 0.0 {
                                t
                            } else {
                                0.0
                            }
                        }
                        Activation::Identity => t,
                    }
                };
                assert_eq!(got[i].to_bits(), want.to_bits(), "{act:?} i={i}");
            }
        }
    }

    /// Word positions wrap modulo 2^68 (the 64-bit block counter), so the step only
    /// matters modulo 2^36 (documented in the module docs): step and step + 2^36 give the
    /// same mask, on the `rand_chacha` reference as on every path of ours.
    #[test]
    fn steps_are_distinct_modulo_2_pow_36() {
        let keep = Keep::new(0.5).unwrap();
        let n = 2 * CHUNK + 300;
        let k = key(8, 1, 5);
        let wrapped = key(8, 1, 5 + (1 << 36));
        assert_eq!(
            reference_mask(k, keep, 500),
            reference_mask(wrapped, keep, 500)
        );
        for level in LEVELS.into_iter().filter(|&l| available(l)) {
            let mut a = Mask::new();
            forward_inplace_with(level, k, keep, &mut vec![1.0; n], &mut a);
            let mut b = Mask::new();
            forward_inplace_with(level, wrapped, keep, &mut vec![1.0; n], &mut b);
            assert_eq!(a, b, "{level:?}");
            let mut c = Mask::new();
            forward_inplace_with(
                level,
                key(8, 1, 5 + (1 << 35)),
                keep,
                &mut vec![1.0; n],
                &mut c,
            );
            assert_ne!(a, c, "{level:?}: 2^35 steps later is another mask");
        }
    }

    #[test]
    fn threshold_is_exact() {
        assert_eq!(Keep::new(0.5).unwrap().threshold(), 1 << 31);
        assert_eq!(Keep::new(1.0).unwrap().threshold(), 1 << 32);
        assert_eq!(Keep::new(0.25).unwrap().threshold(), 1 << 30);
        // largest f32 below 1: still fits in 32 bits, so the u32 compare is exact
        let below_one = f32::from_bits(1.0f32.to_bits() - 1);
        assert_eq!(Keep::new(below_one).unwrap().threshold(), (1 << 32) - 256);
        // 0.1_f32 = 13421773 / 2^27 exactly, so T = floor(13421773 * 32) = 429496736
        assert_eq!(Keep::new(0.1).unwrap().threshold(), 429_496_736);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    #[should_panic(expected = "at most 2^32 - 1 elements")]
    fn masks_of_2_pow_32_elements_are_rejected() {
        check_len((1usize << 32) - 1); // the largest supported length passes
        check_len(1 << 32);
    }
}
