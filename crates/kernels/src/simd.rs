//! Runtime selection of the SIMD path for the elementwise kernels, and the lane
//! abstraction those kernels are written against.
//!
//! # Selection
//!
//! [`level`] detects once (first call) the best [`Level`] this CPU runs:
//! `Avx512` needs `avx512f`, `Avx2` needs `avx2` and `fma`, otherwise `Scalar`. The
//! environment variable `REGULAB_SIMD=scalar|avx2|avx512` lowers it (it never raises it
//! above what the CPU has; an unrecognised value is ignored). Every kernel also has a
//! `*_with(level, ..)` form that runs a chosen level, for tests and benchmarks;
//! [`available`] says which levels may be requested.
//!
//! # One source for every path
//!
//! The kernels are written once, generically over `Lanes`, a token type that proves
//! the CPU supports an instruction set and provides per-lane f32 operations. The
//! scalar path is the same generic code with one lane (`Scalar`); the AVX2 and AVX-512
//! paths instantiate it with 8 and 16 lanes inside `#[target_feature]` functions. Every
//! float operation of a lane is an IEEE-754 add, sub, mul, div (correctly rounded, no
//! fused multiply-add anywhere) or an exact operation (compare, select, bit
//! manipulation), applied in the same order in every path, so the three paths give the
//! same bits for every input. The one exception is the payload (and sign) of a NaN
//! result: it is NaN in every path, but which input NaN's payload survives is left
//! unspecified by Rust and LLVM (RFC 3514; LLVM may commute `a + b`), so it may differ.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;

use std::fmt;
use std::sync::OnceLock;

/// Which instruction set the elementwise kernels use on this machine.
///
/// Ordered from least to most capable: `Scalar < Avx2 < Avx512`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Portable scalar code.
    Scalar,
    /// AVX2 + FMA (256-bit).
    Avx2,
    /// AVX-512F (512-bit).
    Avx512,
}

impl Level {
    /// Every level, least capable first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// The name used by `REGULAB_SIMD` and in run manifests: `scalar`, `avx2`, `avx512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a name written by [`Level::as_str`] (ASCII case and surrounding blanks
    /// ignored); `None` for anything else.
    pub fn parse(name: &str) -> Option<Level> {
        let name = name.trim();
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level detected once at first use (overridable with `REGULAB_SIMD=scalar|avx2|avx512`,
/// capped at what the CPU supports).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let request = std::env::var("REGULAB_SIMD").ok();
        capped(best_available(), request.as_deref())
    })
}

/// The most capable level this CPU supports, ignoring `REGULAB_SIMD`.
pub fn best_available() -> Level {
    static BEST: OnceLock<Level> = OnceLock::new();
    *BEST.get_or_init(|| {
        Level::ALL
            .into_iter()
            .rev()
            .find(|&l| detect(l))
            .unwrap_or(Level::Scalar)
    })
}

/// Whether this CPU can run `level` (so the `*_with(level, ..)` kernels accept it).
pub fn available(level: Level) -> bool {
    level <= best_available()
}

/// `min(best, request)` when `request` names a level, else `best`.
fn capped(best: Level, request: Option<&str>) -> Level {
    match request.and_then(Level::parse) {
        Some(req) => req.min(best),
        None => best,
    }
}

/// Asks the CPU (uncached).
fn detect(level: Level) -> bool {
    match level {
        Level::Scalar => true,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => detect(Level::Avx2) && std::arch::is_x86_feature_detected!("avx512f"),
        #[cfg(not(target_arch = "x86_64"))]
        _ => false,
    }
}

/// For unit tests: the levels of `candidates` this CPU runs. Each other one is reported
/// on stderr as skipped by `test`, or fails the test when `REGULAB_REQUIRE_SIMD` (set in
/// CI) requires it, so that no machine passes by silently testing less.
#[cfg(test)]
pub(crate) fn test_levels(test: &str, candidates: &[Level]) -> Vec<Level> {
    let required = std::env::var("REGULAB_REQUIRE_SIMD")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Level::parse(&v).expect("REGULAB_REQUIRE_SIMD: scalar, avx2 or avx512"));
    let mut run = Vec::new();
    for &l in candidates {
        if available(l) {
            run.push(l);
        } else if required.is_some_and(|r| l <= r) {
            panic!(
                "{test}: SIMD level {l} is not available here, but REGULAB_REQUIRE_SIMD requires it"
            );
        } else {
            eprintln!(
                "{test}: SKIPPED SIMD level {l}: this CPU runs at most {}",
                best_available()
            );
        }
    }
    run
}

/// Panics unless `level` runs on this CPU (explicit-level kernels are a programming
/// interface for tests and benchmarks; [`level`] never returns an unavailable level).
#[track_caller]
pub(crate) fn assert_available(level: Level) {
    assert!(
        available(level),
        "SIMD level {level} requested but this CPU supports at most {}",
        best_available()
    );
}

/// Per-lane f32 operations of one instruction set. A value of an implementing type is
/// a token proving that the CPU supports that instruction set; only [`Scalar`] can be
/// created freely, the others only by `unsafe` constructors called after detection.
///
/// Every float operation below is either one correctly rounded IEEE-754 operation per
/// lane or exact, so a generic kernel computes the same bits with every implementation.
pub(crate) trait Lanes: Copy {
    /// A vector of `LANES` f32.
    type V: Copy;
    /// A per-lane boolean.
    type M: Copy;
    /// Number of f32 lanes.
    const LANES: usize;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Lanes `src[0..LANES]` (panics if `src` is shorter).
    fn load(self, src: &[f32]) -> Self::V;
    /// Lanes `src[0..src.len()]` for `src.len() < LANES`, the others 0.
    fn load_part(self, src: &[f32]) -> Self::V;
    /// Writes the lanes to `dst[0..LANES]` (panics if `dst` is shorter).
    fn store(self, v: Self::V, dst: &mut [f32]);
    /// Writes the first `dst.len() < LANES` lanes to `dst`.
    fn store_part(self, v: Self::V, dst: &mut [f32]);

    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a < b { a } else { b }` (x86 `minps`: a NaN in `b` passes through).
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a > b { a } else { b }` (x86 `maxps`: a NaN in `b` passes through).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a < b` (false if either is NaN).
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a <= b` (false if either is NaN).
    fn le(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a > b` (false if either is NaN).
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a == b` (false if either is NaN).
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// `if m { a } else { b }`.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// `|a|` (sign bit cleared).
    fn abs(self, a: Self::V) -> Self::V;
    /// `mag` with the sign bit of `sign` OR-ed in (`mag` is expected non-negative).
    fn or_sign(self, mag: Self::V, sign: Self::V) -> Self::V;
    /// For `t = n + 1.5 * 2^23` with integer `n` (|n| < 2^22), the exact powers of two
    /// `(2^(n >> 1), 2^(n - (n >> 1)))`, built by exponent bit manipulation (wrapping
    /// i32 arithmetic on the bits; meaningful for -252 <= n <= 254).
    fn pow2_halves(self, t: Self::V) -> (Self::V, Self::V);
}

/// `1.5 * 2^23`: adding it to |x| < 2^22 rounds x to the nearest integer (ties to even),
/// and the integer can be read back from the low bits of the sum.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;

/// The integer part of [`Lanes::pow2_halves`] on one lane (shared by every path).
#[inline(always)]
pub(crate) fn pow2_halves_bits(t_bits: i32) -> (i32, i32) {
    let n = t_bits.wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    (
        n1.wrapping_add(127).wrapping_shl(23),
        n2.wrapping_add(127).wrapping_shl(23),
    )
}

/// The scalar path: one lane, plain Rust f32 arithmetic.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scalar;

impl Lanes for Scalar {
    type V = f32;
    type M = bool;
    const LANES: usize = 1;

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> f32 {
        src[0]
    }
    #[inline(always)]
    fn load_part(self, _src: &[f32]) -> f32 {
        0.0
    }
    #[inline(always)]
    fn store(self, v: f32, dst: &mut [f32]) {
        dst[0] = v;
    }
    #[inline(always)]
    fn store_part(self, _v: f32, _dst: &mut [f32]) {}
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
    fn select(self, m: bool, a: f32, b: f32) -> f32 {
        if m { a } else { b }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
            assert_eq!(l.to_string(), l.as_str());
        }
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("sse"), None);
        assert_eq!(Level::parse(""), None);
    }

    #[test]
    fn env_request_caps_never_raises() {
        use Level::*;
        assert_eq!(capped(Avx512, None), Avx512);
        assert_eq!(capped(Avx512, Some("scalar")), Scalar);
        assert_eq!(capped(Avx512, Some("avx2")), Avx2);
        assert_eq!(capped(Avx2, Some("avx512")), Avx2);
        assert_eq!(capped(Scalar, Some("avx512")), Scalar);
        assert_eq!(capped(Avx2, Some("bogus")), Avx2);
    }

    #[test]
    fn detection_is_consistent() {
        assert!(available(Level::Scalar));
        assert!(available(level()));
        assert!(level() <= best_available());
        // against the CPU's features, read here and not through `detect`
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            assert_eq!(available(Level::Avx2), avx2);
            assert_eq!(available(Level::Avx512), avx2 && has!("avx512f"));
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(best_available(), Level::Scalar);
        // and the CI's requirement, with what is skipped said
        let run = test_levels("detection_is_consistent", &Level::ALL);
        assert_eq!(run.last(), Some(&best_available()));
    }

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
