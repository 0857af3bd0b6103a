//! The scalar token: one lane, plain Rust f32 and u32 arithmetic. It is the portable
//! path of every elementwise kernel and the reference the SIMD tokens are tested
//! against.

use super::lanes::{F64x8, Lanes, U32Lanes, pow2_halves_bits};

/// The scalar path: one lane (available on every CPU, so freely constructed).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scalar;

impl Lanes for Scalar {
    type V = f32;
    type M = bool;
    const LANES: usize = 1;

    #[inline(always)]
    unsafe fn load_ptr(self, p: *const f32) -> f32 {
        // SAFETY: p[0] readable (caller).
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn load_first(self, p: *const f32, n: usize) -> f32 {
        if n == 0 {
            0.0
        } else {
            // SAFETY: p[0] readable (caller, n >= 1).
            unsafe { *p }
        }
    }
    #[inline(always)]
    unsafe fn store_ptr(self, p: *mut f32, v: f32) {
        // SAFETY: p[0] writable (caller).
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, v: f32, n: usize) {
        if n != 0 {
            // SAFETY: p[0] writable (caller, n >= 1).
            unsafe { *p = v }
        }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        if a > b { a } else { b }
    }
    #[inline(always)]
    fn lt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn le(self, a: f32, b: f32) -> bool {
        a <= b
    }
    #[inline(always)]
    fn gt(self, a: f32, b: f32) -> bool {
        a > b
    }
    #[inline(always)]
    fn eq(self, a: f32, b: f32) -> bool {
        a == b
    }
    #[inline(always)]
    fn mask_from_bits(self, bits: u32) -> bool {
        bits & 1 == 1
    }
    #[inline(always)]
    fn select(self, m: bool, a: f32, b: f32) -> f32 {
        // Random masks (dropout) would make a branch mispredict on half the elements.
        std::hint::select_unpredictable(m, a, b)
    }
    #[inline(always)]
    fn abs(self, a: f32) -> f32 {
        f32::from_bits(a.to_bits() & 0x7fff_ffff)
    }
    #[inline(always)]
    fn or_sign(self, mag: f32, sign: f32) -> f32 {
        f32::from_bits(mag.to_bits() | (sign.to_bits() & 0x8000_0000))
    }
    #[inline(always)]
    fn pow2_halves(self, t: f32) -> (f32, f32) {
        let (a, b) = pow2_halves_bits(t.to_bits() as i32);
        (f32::from_bits(a as u32), f32::from_bits(b as u32))
    }
}

impl U32Lanes for Scalar {
    type U = u32;

    #[inline(always)]
    fn splat_u32(self, x: u32) -> u32 {
        x
    }
    #[inline(always)]
    fn load_u32(self, src: &[u32]) -> u32 {
        src[0]
    }
    #[inline(always)]
    fn add_u32(self, a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
    #[inline(always)]
    fn xor_u32(self, a: u32, b: u32) -> u32 {
        a ^ b
    }
    #[inline(always)]
    fn rotl_u32<const R: i32>(self, a: u32) -> u32 {
        a.rotate_left(R as u32)
    }
    #[inline(always)]
    fn lt_bits(self, src: &[u32], thr: u32) -> u32 {
        u32::from(src[0] < thr)
    }
    #[inline(always)]
    fn store_transposed(self, x: &[u32; 16], out: &mut [u32]) {
        out.copy_from_slice(x);
    }
}

impl F64x8 for Scalar {
    type D = [f64; 8];

    #[inline(always)]
    fn zero_f64x8(self) -> [f64; 8] {
        [0.0; 8]
    }
    #[inline(always)]
    fn widen(self, src: &[f32; 8]) -> [f64; 8] {
        src.map(f64::from)
    }
    #[inline(always)]
    fn add_f64x8(self, a: [f64; 8], b: [f64; 8]) -> [f64; 8] {
        std::array::from_fn(|l| a[l] + b[l])
    }
    #[inline(always)]
    fn mul_f64x8(self, a: [f64; 8], b: [f64; 8]) -> [f64; 8] {
        std::array::from_fn(|l| a[l] * b[l])
    }
    #[inline(always)]
    fn abs_f64x8(self, a: [f64; 8]) -> [f64; 8] {
        a.map(f64::abs)
    }
    #[inline(always)]
    fn to_array(self, a: [f64; 8]) -> [f64; 8] {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::lanes::ROUND_MAGIC;

    #[test]
    fn pow2_halves_exact() {
        for n in -252i32..=254 {
            let t = n as f32 + ROUND_MAGIC;
            let (a, b) = Scalar.pow2_halves(t);
            let want = 2f64.powi(n);
            assert_eq!(a as f64 * b as f64, want, "n = {n}");
            assert!(a.is_normal() && b.is_normal());
        }
    }
}
