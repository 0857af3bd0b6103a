//! Elementary functions (exp, sigmoid, tanh, ReLU and their derivatives, and one f64
//! log), written once over [`Lanes`] so that the scalar, AVX2 and AVX-512 paths
//! perform the same IEEE-754 operations in the same order and give the same bits.
//!
//! No fused multiply-add is used anywhere (a scalar build cannot count on FMA
//! hardware, and `a * b + c` is never contracted by rustc); every polynomial is a plain
//! Horner scheme of separately rounded multiplies and adds.
//!
//! # exp
//!
//! ```text
//! x  <- clamp(x, -104, 89)                         (NaN passes through)
//! n  =  round_to_nearest_even(x * log2(e))           via + 1.5*2^23 - 1.5*2^23
//! r  =  (x - n * C1) - n * C2                        C1 + C2 = ln 2 (Cody-Waite),
//!                                                    C1 = 0.693359375 (9 bits: n*C1 and
//!                                                    x - n*C1 are exact)
//! p  =  ((((((P5 r + P4) r + P3) r + P2) r + P1) r + P0) r^2 + r) + 1   ~ e^r
//! e^x = (p * 2^(n>>1)) * 2^(n - (n>>1))               powers of two built from bits
//! ```
//!
//! with the Cephes `expf` coefficients. The two power-of-two factors are exact and
//! normal, so the result is `p * 2^n` rounded once: overflow gives +inf (x >= 88.73),
//! the subnormal range is rounded gradually, and x <= -104 gives +0.
//!
//! Measured against f64 references over every f32 (exhaustive runs, once; the unit
//! tests re-check dense samples against the bounds given):
//! exp over [-87, 88]: 0.991 ulp (bound `EXP_MAX_ULP` = 1); sigmoid over [-30, 30]:
//! 2.48 ulp (bound 3); tanh over [-10, 10] without 0: 1.33 ulp, relative (bound 1.5,
//! also checked on a sample up to |a| = 20).

use crate::simd::{Lanes, ROUND_MAGIC, Scalar};

/// Upper clamp of the exp argument (exp(89) overflows f32 anyway).
const EXP_HI: f32 = 89.0;
/// Lower clamp of the exp argument (exp(-104) rounds to 0 in f32 anyway).
const EXP_LO: f32 = -104.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
const C1: f32 = 355.0 / 512.0; // 0.693359375, 9 significant bits
const C2: f32 = -2.121_944_4e-4;
const P0: f32 = 0.5; // Cephes 5.0000001201e-1 rounds to 0.5 in f32
const P1: f32 = 1.666_666_6e-1;
const P2: f32 = 4.166_579_6e-2;
const P3: f32 = 8.333_452e-3;
const P4: f32 = 1.398_199_9e-3;
const P5: f32 = 1.987_569_1e-4;

/// Bound on `|exp(x) - e^x|` in units in the last place of the f32 result, for every
/// f32 `x` in [-87, 88] (normal results): the exhaustive check gave 0.991 ulp, i.e. the
/// result is always one of the two f32 neighbours of `e^x` (faithful rounding).
pub const EXP_MAX_ULP: f64 = 1.0;

/// `e^x` per lane, see the module doc.
#[inline(always)]
pub(crate) fn exp<S: Lanes>(s: S, x: S::V) -> S::V {
    let x = s.min(s.splat(EXP_HI), x);
    let x = s.max(s.splat(EXP_LO), x);
    let t = s.add(s.mul(x, s.splat(LOG2E)), s.splat(ROUND_MAGIC));
    let n = s.sub(t, s.splat(ROUND_MAGIC));
    let r = s.sub(x, s.mul(n, s.splat(C1)));
    let r = s.sub(r, s.mul(n, s.splat(C2)));
    let r2 = s.mul(r, r);
    let mut p = s.mul(s.splat(P5), r);
    p = s.add(p, s.splat(P4));
    p = s.mul(p, r);
    p = s.add(p, s.splat(P3));
    p = s.mul(p, r);
    p = s.add(p, s.splat(P2));
    p = s.mul(p, r);
    p = s.add(p, s.splat(P1));
    p = s.mul(p, r);
    p = s.add(p, s.splat(P0));
    p = s.mul(p, r2);
    p = s.add(p, r);
    p = s.add(p, s.splat(1.0));
    let (lo, hi) = s.pow2_halves(t);
    s.mul(s.mul(p, lo), hi)
}

/// Sigmoid input clamp (as in the lab).
pub(crate) const SIGMOID_CLAMP: f32 = 30.0;

/// `h = 1 / (1 + exp(0 - a))` with `a` clamped to [-30, 30] (NaN passes through).
#[inline(always)]
pub(crate) fn sigmoid<S: Lanes>(s: S, a: S::V) -> S::V {
    let a = s.min(s.splat(SIGMOID_CLAMP), a);
    let a = s.max(s.splat(-SIGMOID_CLAMP), a);
    let e = exp(s, s.sub(s.splat(0.0), a));
    s.div(s.splat(1.0), s.add(s.splat(1.0), e))
}

/// Below this |a|, tanh uses its odd polynomial; above, the exp formula.
const TANH_SPLIT: f32 = 0.625;
const T0: f32 = -3.333_328e-1;
const T1: f32 = 1.333_144_2e-1;
const T2: f32 = -5.373_971_6e-2;
const T3: f32 = 2.063_908_8e-2;
const T4: f32 = -5.704_988_7e-3;

/// `tanh(a)` per lane (Cephes `tanhf` scheme), with `m = |a|`:
///
/// ```text
/// m <  0.625:  tanh m = m + ((((((T4 z + T3) z + T2) z + T1) z + T0) z) m),  z = m^2
/// m >= 0.625:  tanh m = 1 - 2 / (exp(2m) + 1)       (exp(2m) = inf gives exactly 1)
/// tanh a = sign(a) * tanh m                          (sign bit copied: tanh(-0) = -0)
/// ```
///
/// Both branches are computed and one is selected, in every path. NaN gives NaN.
#[inline(always)]
pub(crate) fn tanh<S: Lanes>(s: S, a: S::V) -> S::V {
    let m = s.abs(a);
    let z = s.mul(m, m);
    let mut p = s.mul(s.splat(T4), z);
    p = s.add(p, s.splat(T3));
    p = s.mul(p, z);
    p = s.add(p, s.splat(T2));
    p = s.mul(p, z);
    p = s.add(p, s.splat(T1));
    p = s.mul(p, z);
    p = s.add(p, s.splat(T0));
    p = s.mul(p, z);
    p = s.mul(p, m);
    let small = s.add(m, p);
    let e = exp(s, s.add(m, m));
    let large = s.sub(s.splat(1.0), s.div(s.splat(2.0), s.add(e, s.splat(1.0))));
    let mag = s.select(s.lt(m, s.splat(TANH_SPLIT)), small, large);
    s.or_sign(mag, a)
}

/// `max(a, 0)` as `if a <= 0 { +0 } else { a }`: -0 gives +0, NaN gives NaN.
#[inline(always)]
pub(crate) fn relu<S: Lanes>(s: S, a: S::V) -> S::V {
    let zero = s.splat(0.0);
    s.select(s.le(a, zero), zero, a)
}

/// Sigmoid backward: `g * (h * (1 - h))`.
#[inline(always)]
pub(crate) fn sigmoid_grad<S: Lanes>(s: S, h: S::V, g: S::V) -> S::V {
    s.mul(g, s.mul(h, s.sub(s.splat(1.0), h)))
}

/// Tanh backward: `g * (1 - h * h)`.
#[inline(always)]
pub(crate) fn tanh_grad<S: Lanes>(s: S, h: S::V, g: S::V) -> S::V {
    s.mul(g, s.sub(s.splat(1.0), s.mul(h, h)))
}

/// ReLU backward: `if h > 0 { g } else { +0 }` (NaN `h` gives +0).
#[inline(always)]
pub(crate) fn relu_grad<S: Lanes>(s: S, h: S::V, g: S::V) -> S::V {
    let zero = s.splat(0.0);
    s.select(s.gt(h, zero), g, zero)
}

/// Scalar [`exp`].
pub(crate) fn exp_scalar(x: f32) -> f32 {
    exp(Scalar, x)
}

/// fdlibm's ln2_hi (32 trailing zero bits: k * LN2_HI_F64 is exact).
const LN2_HI_F64: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// fdlibm's ln2_lo = ln 2 - ln2_hi.
const LN2_LO_F64: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Natural log in f64 from plain IEEE operations only (machine independent, unlike a
/// platform libm that may pick an FMA variant at run time).
///
/// ```text
/// x = 2^k m,  m in [sqrt(1/2), sqrt(2)),  f = (m - 1) / (m + 1),  |f| <= 0.1716
/// ln x = k ln2_hi + (k ln2_lo + 2 f (1 + f^2/3 + f^4/5 + ... + f^22/23))
/// ```
///
/// Relative error below 1e-15. `ln(0) = -inf`, negative or NaN gives NaN, `ln(inf) = inf`.
pub(crate) fn ln_f64(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (x, k0) = if x < f64::MIN_POSITIVE {
        (x * 18_014_398_509_481_984.0, -54i64) // 2^54: subnormal to normal, exact
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut k = ((bits >> 52) & 0x7ff) as i64 - 1023 + k0;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let f = (m - 1.0) / (m + 1.0);
    let f2 = f * f;
    let f4 = f2 * f2;
    // sum_{i=0}^{11} f2^i / (2i + 1) as two interleaved Horner chains in f4 (even and
    // odd i), halving the latency of the serial chain; a fixed order of plain ops.
    let mut even = 1.0 / 21.0;
    let mut odd = 1.0 / 23.0;
    for (de, d_o) in [
        (17.0, 19.0),
        (13.0, 15.0),
        (9.0, 11.0),
        (5.0, 7.0),
        (1.0, 3.0),
    ] {
        even = even * f4 + 1.0 / de;
        odd = odd * f4 + 1.0 / d_o;
    }
    let p = even + f2 * odd;
    let kf = k as f64;
    kf * LN2_HI_F64 + (kf * LN2_LO_F64 + 2.0 * f * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error of `got` against the exact `want`, in ulps of f32 at `want` (normal range).
    fn ulp_err(got: f32, want: f64) -> f64 {
        let w = want as f32;
        let e = w.abs().max(f32::MIN_POSITIVE).log2().floor() as i32;
        let ulp = 2f64.powi(e - 23);
        (got as f64 - want).abs() / ulp
    }

    #[test]
    fn exp_ulp_bound_dense_sample() {
        // Every 61st f32 in [-87, 88] (about 35 million values), plus the ends.
        let mut worst = (0.0f64, 0.0f32);
        let mut check = |x: f32| {
            let e = ulp_err(exp_scalar(x), (x as f64).exp());
            if e > worst.0 {
                worst = (e, x);
            }
        };
        for bits in (0u32..=88f32.to_bits()).step_by(61) {
            check(f32::from_bits(bits));
        }
        for bits in (0x8000_0000u32..=(-87f32).to_bits()).step_by(61) {
            check(f32::from_bits(bits));
        }
        for x in [-87.0, 88.0, 0.0, -0.0, 1.0, -1.0, 0.5, 88.72, -87.33] {
            check(x);
        }
        assert!(
            worst.0 <= EXP_MAX_ULP,
            "exp error {} ulp at x = {:e}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn exp_special_values() {
        assert_eq!(exp_scalar(0.0), 1.0);
        assert_eq!(exp_scalar(-0.0), 1.0);
        assert_eq!(exp_scalar(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_scalar(88.8), f32::INFINITY);
        assert_eq!(exp_scalar(f32::NEG_INFINITY).to_bits(), 0);
        assert_eq!(exp_scalar(-104.0).to_bits(), 0);
        assert_eq!(exp_scalar(-1e30).to_bits(), 0);
        assert!(exp_scalar(f32::NAN).is_nan());
        // largest finite result, and gradual underflow
        let x = 88.72283;
        assert!(exp_scalar(x).is_finite());
        assert!(ulp_err(exp_scalar(x), (x as f64).exp()) <= EXP_MAX_ULP);
        let sub = exp_scalar(-100.0);
        assert!(sub > 0.0 && !sub.is_normal());
        let want = (-100f64).exp();
        assert!(
            (sub as f64 - want).abs() <= 2f64.powi(-149),
            "{sub:e} vs {want:e}"
        );
    }

    #[test]
    fn sigmoid_relative_error() {
        let mut worst = 0.0f64;
        for i in 0..=600_000 {
            let a = -30.0 + i as f32 * 1e-4;
            let want = 1.0 / (1.0 + (-(a as f64)).exp());
            worst = worst.max(ulp_err(sigmoid(Scalar, a), want));
        }
        assert!(worst <= 3.0, "sigmoid error {worst} ulp");
        assert_eq!(sigmoid(Scalar, 1e9), sigmoid(Scalar, 30.0));
        assert_eq!(sigmoid(Scalar, -1e9), sigmoid(Scalar, -30.0));
        assert_eq!(sigmoid(Scalar, 0.0), 0.5);
        assert!(sigmoid(Scalar, f32::NAN).is_nan());
    }

    #[test]
    fn tanh_relative_error() {
        let mut worst = 0.0f64;
        let mut check = |a: f32| {
            let want = (a as f64).tanh();
            if want != 0.0 {
                worst = worst.max(ulp_err(tanh(Scalar, a), want));
            }
        };
        for i in -400_000..=400_000 {
            check(i as f32 * 5e-5); // [-20, 20]
        }
        for bits in (0x3000_0000u32..0x3f20_0000).step_by(997) {
            check(f32::from_bits(bits)); // tiny up to 0.625
            check(-f32::from_bits(bits));
        }
        assert!(worst <= 1.5, "tanh error {worst} ulp");
        assert_eq!(tanh(Scalar, 0.0).to_bits(), 0);
        assert_eq!(tanh(Scalar, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(Scalar, 50.0), 1.0);
        assert_eq!(tanh(Scalar, -f32::INFINITY), -1.0);
        assert!(tanh(Scalar, f32::NAN).is_nan());
    }

    #[test]
    fn relu_edges() {
        assert_eq!(relu(Scalar, -0.0).to_bits(), 0);
        assert_eq!(relu(Scalar, -3.0).to_bits(), 0);
        assert_eq!(relu(Scalar, 2.5), 2.5);
        assert!(relu(Scalar, f32::NAN).is_nan());
        assert_eq!(relu_grad(Scalar, 0.0, 7.0), 0.0);
        assert_eq!(relu_grad(Scalar, 1.0, 7.0), 7.0);
        assert_eq!(relu_grad(Scalar, f32::NAN, 7.0), 0.0);
    }

    #[test]
    fn ln_f64_matches_std() {
        let mut x = 1e-310f64;
        while x < 1e300 {
            let want = x.ln();
            let got = ln_f64(x);
            assert!(
                (got - want).abs() <= 1e-15 * want.abs().max(1e-300) + 4e-16,
                "ln({x:e}) = {got} want {want}"
            );
            x *= 1.0137;
        }
        for x in [1.0, 2.0, 10.0, 0.5, std::f64::consts::SQRT_2] {
            assert!((ln_f64(x) - x.ln()).abs() <= 2.3e-16 * x.ln().abs().max(1.0));
        }
        assert_eq!(ln_f64(1.0), 0.0);
        assert_eq!(ln_f64(0.0), f64::NEG_INFINITY);
        assert_eq!(ln_f64(f64::INFINITY), f64::INFINITY);
        assert!(ln_f64(-1.0).is_nan() && ln_f64(f64::NAN).is_nan());
    }
}
