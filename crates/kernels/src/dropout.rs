//! Fused dropout: Bernoulli(keep) mask + inverted scaling in one pass (STUB: API only).

use crate::KernelError;
use crate::activation::Activation;

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
}

/// Coordinates of a mask: element `i` uses random word `(step << 32) | i` of stream
/// `layer` of the key derived from `(seed, Purpose::Dropout)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskKey {
    /// Experiment seed.
    pub seed: u64,
    /// 0 = inputs, i = output of hidden layer i.
    pub layer: u32,
    /// Global minibatch counter.
    pub step: u64,
}

/// A dropout mask stored as 1 bit per element (bit set = kept); reusable buffer.
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
}

/// `y = x * m / keep` with `m ~ Bernoulli(keep)` drawn from `key`; records `m` in `mask`.
/// keep = 1 copies `x` and sets every bit.
pub fn forward(key: MaskKey, keep: Keep, x: &[f32], y: &mut [f32], mask: &mut Mask) {
    let _ = (key, keep, x, y, mask);
    todo!("dropout::forward")
}

/// `g = g * m / keep` with the mask recorded by [`forward`].
pub fn backward(keep: Keep, mask: &Mask, g: &mut [f32]) {
    let _ = (keep, mask, g);
    todo!("dropout::backward")
}

/// Fused `g = g * m / keep * f'(.)` where `f'` is expressed through the activation's
/// output `h` (before dropout), as in [`crate::activation::backward`].
pub fn backward_act(keep: Keep, mask: &Mask, act: Activation, h: &[f32], g: &mut [f32]) {
    let _ = (keep, mask, act, h, g);
    todo!("dropout::backward_act")
}
