//! The chunk kernels of the fused dropout, written once over [`crate::simd`]'s lanes:
//! the threshold compare on u32 lanes (64 random words to 64 mask bits, the words drawn
//! by [`crate::chacha`] inside the kernel) and the scaling as a select between
//! `x * inv` and `+0` on f32 lanes; the backward takes `f'` from the activation's own
//! gradient ops. Full vectors, then one partial vector at the end of a chunk.

use super::{DRAW, tail_bits};
use crate::activation::Activation;
use crate::activation::rows::{IdentityGrad, ReluGrad, SigmoidGrad, TanhGrad};
use crate::chacha::{self, ChaCha8Stream};
use crate::simd::slices::Op2;
use crate::simd::{Lanes, U32Lanes, leveled};

/// What one forward chunk draws: the stream, the word position of its element 0, the
/// integer threshold and the scale of kept elements.
pub(super) struct Draw<'a> {
    pub(super) stream: &'a ChaCha8Stream,
    pub(super) pos: u128,
    pub(super) thr: u32,
    pub(super) inv: f32,
}

leveled!(
    /// [`forward_g`] on `level`.
    pub(super) fn forward_chunk(
        d: &Draw<'_>,
        bits: &mut [u64],
        src: Option<&[f32]>,
        dst: &mut [f32],
    ) => forward_g
);

leveled!(
    /// [`backward_g`] on `level`.
    pub(super) fn backward_chunk(
        inv: f32,
        bits: &[u64],
        act: Option<(Activation, &[f32])>,
        g: &mut [f32],
    ) => backward_g
);

/// Draws the mask bits of one chunk into `bits` (`dst.len().div_ceil(64)` words) and
/// writes `dst = m ? src * inv : +0` (in place when `src` is `None`). Words are drawn
/// [`DRAW`] at a time into a stack buffer; those past the chunk's end are stale and
/// masked off.
#[inline(always)]
fn forward_g<S: U32Lanes>(
    s: S,
    d: &Draw<'_>,
    bits: &mut [u64],
    src: Option<&[f32]>,
    dst: &mut [f32],
) {
    let len = dst.len();
    assert_eq!(
        bits.len(),
        len.div_ceil(64),
        "one mask word per 64 elements"
    );
    let dp = dst.as_mut_ptr();
    let sp = match src {
        Some(x) => {
            assert_eq!(x.len(), len, "dropout: x and y lengths differ");
            x.as_ptr()
        }
        None => dp.cast_const(),
    };
    let (inv, zero) = (s.splat(d.inv), s.zero());
    let mut words = [0u32; DRAW];
    for (g, b) in bits.iter_mut().enumerate() {
        let start = g * 64;
        let n = (len - start).min(64);
        let off = start % DRAW;
        if off == 0 {
            let k = (len - start).min(DRAW);
            chacha::fill(s, d.stream, d.pos + start as u128, &mut words[..k]);
        }
        let m = compare64(s, &words[off..off + 64], d.thr) & tail_bits(n);
        *b = m;
        let mut j = 0;
        // SAFETY (both blocks): elements start + j .. start + min(j + LANES, n) lie in
        // the chunk, where both pointers are valid (equal in place: each element is read
        // before it is written).
        while j + S::LANES <= n {
            let keep = s.mask_from_bits((m >> j) as u32);
            unsafe {
                let x = s.load_ptr(sp.add(start + j));
                s.store_ptr(dp.add(start + j), s.select(keep, s.mul(x, inv), zero));
            }
            j += S::LANES;
        }
        if j < n {
            let (keep, r) = (s.mask_from_bits((m >> j) as u32), n - j);
            unsafe {
                let x = s.load_first(sp.add(start + j), r);
                s.store_first(dp.add(start + j), s.select(keep, s.mul(x, inv), zero), r);
            }
        }
    }
}

/// `sum_j [w_j < thr] << j` for the 64 words of `words`.
#[inline(always)]
fn compare64<S: U32Lanes>(s: S, words: &[u32], thr: u32) -> u64 {
    let words: &[u32; 64] = words.try_into().expect("64 words");
    let mut m = 0u64;
    let mut q = 0;
    while q < 64 {
        m |= u64::from(s.lt_bits(&words[q..], thr)) << q;
        q += S::LANES;
    }
    m
}

/// Backward of one chunk: `g = m ? f'(h) (g * inv) : +0` with the derivative op of
/// `act` (see [`backward_act`]), or `g = m ? g * inv : +0`.
#[inline(always)]
fn backward_g<S: Lanes>(
    s: S,
    inv: f32,
    bits: &[u64],
    act: Option<(Activation, &[f32])>,
    g: &mut [f32],
) {
    match act {
        None | Some((Activation::Identity, _)) => masked_grad(s, &IdentityGrad, inv, bits, None, g),
        Some((Activation::Sigmoid, h)) => masked_grad(s, &SigmoidGrad, inv, bits, Some(h), g),
        Some((Activation::Tanh, h)) => masked_grad(s, &TanhGrad, inv, bits, Some(h), g),
        Some((Activation::Relu, h)) => masked_grad(s, &ReluGrad, inv, bits, Some(h), g),
    }
}

/// `g = m ? f(h, g * inv) : +0` (`h` is `g` itself when `None`, for an `f` that ignores
/// it).
#[inline(always)]
fn masked_grad<S: Lanes, F: Op2<S>>(
    s: S,
    f: &F,
    inv: f32,
    bits: &[u64],
    h: Option<&[f32]>,
    g: &mut [f32],
) {
    let len = g.len();
    assert_eq!(
        bits.len(),
        len.div_ceil(64),
        "one mask word per 64 elements"
    );
    let gp = g.as_mut_ptr();
    let hp = match h {
        Some(h) => {
            assert_eq!(h.len(), len, "dropout: h and g lengths differ");
            h.as_ptr()
        }
        None => gp.cast_const(),
    };
    let (inv, zero) = (s.splat(inv), s.zero());
    for (blk, &m) in bits.iter().enumerate() {
        let start = blk * 64;
        let n = (len - start).min(64);
        let mut j = 0;
        // SAFETY (both blocks): elements start + j .. start + min(j + LANES, n) lie in g
        // and h (equal lengths); each element of g is read before it is written.
        while j + S::LANES <= n {
            let (keep, p) = (s.mask_from_bits((m >> j) as u32), start + j);
            unsafe {
                let t = s.mul(s.load_ptr(gp.add(p)), inv);
                let y = f.f(s, s.load_ptr(hp.add(p)), t);
                s.store_ptr(gp.add(p), s.select(keep, y, zero));
            }
            j += S::LANES;
        }
        if j < n {
            let (keep, p, r) = (s.mask_from_bits((m >> j) as u32), start + j, n - j);
            unsafe {
                let t = s.mul(s.load_first(gp.add(p), r), inv);
                let y = f.f(s, s.load_first(hp.add(p), r), t);
                s.store_first(gp.add(p), s.select(keep, y, zero), r);
            }
        }
    }
}
