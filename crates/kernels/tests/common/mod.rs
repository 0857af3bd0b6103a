//! Shared by the kernel tests: which SIMD levels and GEMM flavours a test can run here,
//! said out loud. A level this CPU lacks is skipped with a line on stderr naming the
//! test and the level; with `REGULAB_REQUIRE_SIMD=avx512` (or `avx2`; CI sets it, its
//! machines have AVX-512) a skipped level at or below that one fails the test instead,
//! so a machine without it cannot pass by testing less.
#![allow(dead_code)]

use regulab_kernels::simd::{self, Level};

/// The level `REGULAB_REQUIRE_SIMD` asks for, if set.
pub fn required() -> Option<Level> {
    let v = std::env::var("REGULAB_REQUIRE_SIMD").ok()?;
    if v.trim().is_empty() {
        return None;
    }
    Some(
        Level::parse(&v)
            .unwrap_or_else(|| panic!("REGULAB_REQUIRE_SIMD={v}: expected scalar, avx2 or avx512")),
    )
}

/// Reports that `test` skips `what` because of `why`; fails instead when
/// `REGULAB_REQUIRE_SIMD` requires `level` (or more).
pub fn skip(test: &str, level: Level, what: &str, why: &str) {
    if let Some(req) = required()
        && level <= req
    {
        panic!("{test}: cannot test {what}: {why}, but REGULAB_REQUIRE_SIMD={req} requires it");
    }
    eprintln!("{test}: SKIPPED {what}: {why}");
}

/// The SIMD levels of `candidates` this CPU runs; each other one is [`skip`]ped.
pub fn levels_of(test: &str, candidates: &[Level]) -> Vec<Level> {
    let mut run = Vec::new();
    for &l in candidates {
        if simd::available(l) {
            run.push(l);
        } else {
            skip(
                test,
                l,
                &format!("SIMD level {l}"),
                &format!("this CPU runs at most {}", simd::best_available()),
            );
        }
    }
    run
}

/// Every SIMD level this CPU runs (scalar, AVX2, AVX-512); the others are skipped.
pub fn levels(test: &str) -> Vec<Level> {
    levels_of(test, &Level::ALL)
}

/// Whether matrixmultiply selects an FMA kernel here (AVX-512 or FMA-AVX2, following its
/// compile-time `MMTEST_FEATURE`): the condition for the direct and zero-skipping
/// kernels to reproduce its bits. When not, `test` is skipped (or fails, see [`skip`]).
pub fn fma_sgemm(test: &str) -> bool {
    let class = regulab_kernels::cpu::sgemm_class();
    let fma = regulab_kernels::cpu::bits_class(class) == "x86-fma";
    if !fma {
        skip(
            test,
            Level::Avx2,
            "the direct/zero-skipping kernels",
            &format!("matrixmultiply runs its non-FMA {class} kernel here"),
        );
    }
    fma
}

/// One rayon pool per size in `sizes`, for tests that compare results across pools.
pub fn pools(sizes: &[usize]) -> Vec<rayon::ThreadPool> {
    sizes
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect()
}
