//! The one SIMD layer of the kernels: which instruction set runs (one detection
//! policy), the tokens that prove it, the lane traits every kernel is written against,
//! and the dispatch from a [`Level`] to a kernel's instantiation.
//!
//! Why one layer: every elementwise kernel (activations, dropout, the SGD update), the
//! ChaCha keystream and the GEMM kernels need the same three things, a way to ask the
//! CPU, a proof that the answer was asked before an intrinsic runs, and one source of
//! code for every instruction set so that the paths cannot drift apart in their bits.
//! Written per kernel they drifted in their rules (which features a level needs, what
//! an unavailable level does); here each is written once.
//!
//! # Levels and the detection policy
//!
//! [`best_available`] asks the CPU once: [`Level::Avx512`] needs `avx512f`, `avx2` and
//! `fma`; [`Level::Avx2`] needs `avx2` and `fma`; [`Level::Scalar`] runs everywhere.
//! [`level`] is the level the kernels use: the best available, lowered by the
//! environment variable `REGULAB_SIMD=scalar|avx2|avx512` (it never raises it above
//! what the CPU has; an unrecognised value is ignored). [`available`] says which levels
//! may be requested explicitly.
//!
//! # An unavailable level is a panic, everywhere
//!
//! Every kernel family has a form taking the level explicitly (`*_with`, `fill_with`,
//! `gemm_direct`, `gemm_sparse`; with the `internals` feature, for tests and
//! benchmarks). They all go through `leveled!`, which calls `require`: a level the
//! CPU does not run panics with one message ("SIMD level avx512 requested but this CPU
//! supports at most avx2"), never silently runs another level. [`level`] never returns
//! such a level, so the normal entry points cannot panic this way.
//!
//! # Tokens and traits
//!
//! A token type (`Scalar`, `Avx2`, `Avx512`) implements the lane traits of
//! `simd::lanes`: `Lanes` (f32 lanes: IEEE-754 `+ - * /`, compares, selects, masked
//! partial loads and stores), `Fma` (the GEMM kernels: fused multiply-add, broadcasts,
//! gathers, masked loads and stores of any lane subset, zero tests), `U32Lanes`
//! (ChaCha: wrapping add, xor, rotations, transposed stores; unsigned compares for the
//! dropout threshold) and `F64x8` (eight f64 lanes, for the penalty sums). A SIMD token
//! is created only after `require` and only inside a function compiled with its target
//! features, so its methods are safe wherever they do not take a raw pointer.
//!
//! # Adding a kernel
//!
//! Write it once as an `#[inline(always)]` generic function taking the token first
//! (`fn k<S: Lanes>(s: S, ..)`, or `S: Fma` for a GEMM kernel, `S: U32Lanes` for integer
//! lanes), and define its entry with `leveled!` (`fn` for every level, `vector unsafe
//! fn` for pointer kernels without a scalar instantiation). Per-ISA tuning (register
//! tile tables, as the direct GEMM's `Tiles`) is a small trait implemented per token
//! beside the kernel. An operation the traits lack goes into the trait, with a portable
//! default where one exists (as `Fma::transpose_square`), and into the conformance tests
//! of `simd::conformance`, which compare every token with the scalar one. Keep kernel
//! code out of closures (`with_borrow_mut(|b| ..)`, `array::from_fn(|i| ..)`): a closure
//! is a function of its own, compiled without the instantiation's target features, and
//! every intrinsic inlined into it becomes a call (the bits stay, the speed goes: the
//! direct NT GEMM once ran 55x slower that way).
//!
//! # Same bits on every level
//!
//! A kernel is written once, generically over the traits, and instantiated per token
//! by `leveled!`. Every float operation of a lane is an IEEE-754 add, sub, mul, div,
//! a fused multiply-add (GEMM only, with its single rounding) or an exact operation
//! (compare, select, bit manipulation), applied in the same order in every path, so
//! the paths give the same bits for every input. The one exception is the payload (and
//! sign) of a NaN result: it is NaN in every path, but which input NaN's payload
//! survives is left unspecified by Rust and LLVM (RFC 3514; LLVM may commute `a + b`),
//! so it may differ.

#[cfg(test)]
mod conformance;
mod lanes;
mod scalar;
pub(crate) mod slices;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;
pub(crate) use lanes::{F64x8, Fma, Lanes, ROUND_MAGIC, U32Lanes};
pub(crate) use scalar::Scalar;

use std::fmt;
use std::sync::OnceLock;

/// Which instruction set the kernels use on this machine.
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

/// Asks the CPU (uncached), by the policy of the module doc.
fn detect(level: Level) -> bool {
    match level {
        Level::Scalar => true,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => cpu_has("avx2") && cpu_has("fma"),
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => detect(Level::Avx2) && cpu_has("avx512f"),
        #[cfg(not(target_arch = "x86_64"))]
        _ => false,
    }
}

/// Whether this CPU has the x86 feature `name` (`sse2`, `avx`, `avx2`, `fma`, `avx512f`,
/// `avx512bw`, `avx512dq` or `avx512vl`; false for any other name and on other
/// architectures). The one place the kernels ask the CPU: the levels above, the
/// manifest's feature list and matrixmultiply's kernel class ([`crate::cpu`]) all read
/// it.
pub(crate) fn cpu_has(name: &str) -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        use std::is_x86_feature_detected as has;
        match name {
            "sse2" => has!("sse2"),
            "avx" => has!("avx"),
            "avx2" => has!("avx2"),
            "fma" => has!("fma"),
            "avx512f" => has!("avx512f"),
            "avx512bw" => has!("avx512bw"),
            "avx512dq" => has!("avx512dq"),
            "avx512vl" => has!("avx512vl"),
            _ => false,
        }
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        let _ = name;
        false
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

/// The one policy for an explicitly requested level: returns if this CPU runs `level`,
/// panics otherwise (the explicit-level kernels are a programming interface for tests
/// and benchmarks; [`level`] never returns an unavailable level).
#[track_caller]
pub(crate) fn require(level: Level) {
    let best = ceiling();
    assert!(
        level <= best,
        "SIMD level {level} requested but this CPU supports at most {best}"
    );
}

/// What [`require`] accepts: [`best_available`], lowered in unit tests by
/// [`tests::with_ceiling`] to test the policy on a CPU that has every level.
fn ceiling() -> Level {
    #[cfg(test)]
    if let Some(c) = tests::CEILING.get() {
        return c.min(best_available());
    }
    best_available()
}

/// Defines `fn $name(level: Level, args..) -> R` that runs the generic kernel
/// `$generic(token, args..)` instantiated for `level`'s token, after [`require`]
/// (so an unavailable level panics, see the module doc):
///
/// * `fn`: every level (the scalar token is the portable path);
/// * `vector unsafe fn`: the SIMD levels only (the GEMM kernels, whose portable path
///   is matrixmultiply and whose scalar reference is separate); [`Level::Scalar`]
///   panics. The caller vouches for the raw pointers the arguments carry.
///
/// Each SIMD instantiation is a nested function compiled with that level's target
/// features; the generic kernel and the token methods are `#[inline(always)]`, so the
/// intrinsics are inlined into it.
macro_rules! leveled {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        => $generic:path) => {
        $(#[$doc])*
        $vis fn $name(level: $crate::simd::Level, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: called only after `require(Avx2)`, so the CPU runs AVX2 + FMA.
                let s = unsafe { $crate::simd::Avx2::new_unchecked() };
                $generic(s, $($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: called only after `require(Avx512)`, so the CPU runs AVX-512F.
                let s = unsafe { $crate::simd::Avx512::new_unchecked() };
                $generic(s, $($arg),*)
            }
            $crate::simd::require(level);
            match level {
                $crate::simd::Level::Scalar => $generic($crate::simd::Scalar, $($arg),*),
                // SAFETY: `require` checked that the CPU runs this level.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("only the scalar level is available off x86-64"),
            }
        }
    };
    ($(#[$doc:meta])* $vis:vis vector unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?)
        $(-> $ret:ty)? => $generic:path) => {
        $(#[$doc])*
        $vis unsafe fn $name(level: $crate::simd::Level, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: called only after `require(Avx2)`, so the CPU runs AVX2 + FMA;
                // the pointers are the caller's to vouch for.
                unsafe { $generic($crate::simd::Avx2::new_unchecked(), $($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: called only after `require(Avx512)`, so the CPU runs AVX-512F;
                // the pointers are the caller's to vouch for.
                unsafe { $generic($crate::simd::Avx512::new_unchecked(), $($arg),*) }
            }
            $crate::simd::require(level);
            match level {
                // SAFETY: `require` checked that the CPU runs this level; the rest is
                // forwarded from the caller.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                _ => unreachable!(
                    "{}: no {level} instantiation (SIMD levels only)",
                    stringify!($name)
                ),
            }
        }
    };
}
pub(crate) use leveled;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    thread_local! {
        /// A lower [`ceiling`] for `require` on this thread (see [`with_ceiling`]).
        pub(super) static CEILING: Cell<Option<Level>> = const { Cell::new(None) };
    }

    /// Runs `f` on this thread with `require` accepting at most `ceiling`, as on a CPU
    /// whose best level is `ceiling`, and returns its panic message if it panicked.
    pub(crate) fn with_ceiling(ceiling: Level, f: impl FnOnce()) -> Option<String> {
        CEILING.set(Some(ceiling));
        let r = catch_unwind(AssertUnwindSafe(f));
        CEILING.set(None);
        r.err().map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    }

    type ExplicitCall = Box<dyn Fn(Level)>;

    /// One explicit-level call of every kernel family on a small input (so nothing runs
    /// on another thread, where the ceiling is not set).
    fn explicit_level_calls() -> Vec<(&'static str, ExplicitCall)> {
        use crate::activation::{self as act, Activation};
        use crate::dropout::{self, Keep, Mask, MaskKey};
        use crate::gemm::{self, Accumulate, Op};
        use crate::{chacha, update};
        let step = update::Step {
            lr: 0.5,
            grad_scale: 1.0,
            l1: 0.0,
            l2: 0.0,
        };
        let key = MaskKey {
            seed: 1,
            layer: 0,
            step: 0,
        };
        let keep = Keep::new(0.5).unwrap();
        fn v() -> Vec<f32> {
            vec![0.5; 20]
        }
        vec![
            (
                "update::sgd_with",
                Box::new(move |l| update::sgd_with(l, &mut v(), &v(), step)),
            ),
            (
                "update::sgd_momentum_with",
                Box::new(move |l| {
                    update::sgd_momentum_with(l, &mut v(), &mut v(), &v(), step, 0.9)
                }),
            ),
            // l1 = l2 = 0 returns before any kernel runs: the level is checked anyway.
            (
                "update::decay_with",
                Box::new(|l| update::decay_with(l, &mut v(), 0.5, 0.0, 0.0)),
            ),
            (
                "update::scale_with",
                Box::new(|l| update::scale_with(l, &mut v(), 2.0)),
            ),
            (
                "update::scale_into_with",
                Box::new(|l| update::scale_into_with(l, &mut v(), &v(), 2.0)),
            ),
            (
                "update::penalty_sums_with",
                Box::new(|l| {
                    update::penalty_sums_with(l, &v());
                }),
            ),
            (
                "dropout::forward_with",
                Box::new(move |l| {
                    dropout::forward_with(l, key, keep, &v(), &mut v(), &mut Mask::new())
                }),
            ),
            (
                // keep = 1 is a copy: the level is checked anyway.
                "dropout::forward_inplace_with",
                Box::new(move |l| {
                    let one = Keep::new(1.0).unwrap();
                    dropout::forward_inplace_with(l, key, one, &mut v(), &mut Mask::new())
                }),
            ),
            (
                "dropout::backward_with",
                Box::new(move |l| {
                    let mut m = Mask::new();
                    dropout::forward_with(Level::Scalar, key, keep, &v(), &mut v(), &mut m);
                    dropout::backward_with(l, keep, &m, &mut v());
                }),
            ),
            (
                "dropout::backward_act_with",
                Box::new(move |l| {
                    let mut m = Mask::new();
                    dropout::forward_with(Level::Scalar, key, keep, &v(), &mut v(), &mut m);
                    dropout::backward_act_with(l, keep, &m, Activation::Tanh, &v(), &mut v());
                }),
            ),
            (
                "chacha::fill_words_with",
                Box::new(|l| chacha::fill_words_with(l, &[7; 32], 0, 3, &mut [0; 40])),
            ),
            (
                "activation::forward_with",
                Box::new(|l| act::forward_with(l, Activation::Sigmoid, &mut v(), &[0.0; 4])),
            ),
            (
                "activation::backward_with",
                Box::new(|l| act::backward_with(l, Activation::Relu, &v(), &mut v())),
            ),
            (
                "activation::exp_with",
                Box::new(|l| act::exp_with(l, &mut v())),
            ),
            (
                "activation::softmax_xent_with",
                Box::new(|l| {
                    let (mut g, mut loss) = (v(), [0.0; 5]);
                    act::softmax_xent_with(l, &v(), &[0.0; 4], &[1; 5], &mut g, &mut loss);
                }),
            ),
            (
                "activation::mse_with",
                Box::new(|l| {
                    act::mse_with(l, &v(), &[0.0; 4], &v(), &mut v(), &mut [0.0; 5]);
                }),
            ),
            (
                "activation::col_sums_with",
                Box::new(|l| act::col_sums_with(l, &v(), 4, &mut [0.0; 4])),
            ),
            (
                "gemm::gemm_direct",
                Box::new(|l| {
                    let c = &mut [0.0; 16];
                    gemm::gemm_direct(l, 4, 4, 5, &v(), Op::N, &v(), Op::N, c, Accumulate::Add)
                }),
            ),
            (
                "gemm::gemm_sparse",
                Box::new(|l| {
                    let c = &mut [0.0; 16];
                    gemm::gemm_sparse(l, 4, 4, 5, &v(), Op::N, &v(), c, Accumulate::Overwrite)
                }),
            ),
        ]
    }

    /// The one policy: every explicit-level entry point panics on a level above what the
    /// CPU runs (here: above a lowered ceiling), with the same message, and runs a level
    /// at the ceiling.
    #[test]
    fn every_explicit_level_entry_point_panics_on_an_unavailable_level() {
        use Level::*;
        let calls = explicit_level_calls();
        let mut checked = 0;
        for (ceiling, above) in [(Scalar, Avx2), (Scalar, Avx512), (Avx2, Avx512)] {
            if !available(ceiling) {
                eprintln!("skipped: ceiling {ceiling} is not available on this CPU");
                continue;
            }
            for (name, call) in &calls {
                let msg = with_ceiling(ceiling, || call(above))
                    .unwrap_or_else(|| panic!("{name} ran {above} above a ceiling of {ceiling}"));
                assert_eq!(
                    msg,
                    format!("SIMD level {above} requested but this CPU supports at most {ceiling}"),
                    "{name}"
                );
                assert_eq!(
                    with_ceiling(ceiling, || call(ceiling)),
                    None,
                    "{name} at {ceiling}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 2 * calls.len(), "{checked} checks");
    }

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
}
