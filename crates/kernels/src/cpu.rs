//! What this machine runs: CPU features and the kernels selected, for run manifests.
//!
//! The bits of a run depend on the matrixmultiply version and on the sgemm kernel it
//! selects at run time (AVX-512 / FMA+AVX2 / AVX / portable fallback: FMA and non-FMA
//! kernels round differently), and on the SIMD level of our elementwise kernels. A
//! manifest records all three so a rerun on another machine can be checked.

use serde::Serialize;

use crate::simd::{self, Level};

/// The matrixmultiply version this crate is built against (pinned with `=` in the
/// workspace `Cargo.toml`; a unit test checks they agree).
pub const MATRIXMULTIPLY_VERSION: &str = "0.3.11";

/// The CPU features reported, in this order, when present.
pub const FEATURES: [&str; 8] = [
    "sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl",
];

/// A report of the paths in use, written into run manifests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelReport {
    /// CPU features that matter to us (avx2, fma, avx512f, ...), those present.
    pub cpu_features: Vec<String>,
    /// SIMD level of the elementwise kernels ("scalar", "avx2", "avx512").
    pub elementwise: String,
    /// matrixmultiply's sgemm kernel class ("avx512", "fma-avx2", "avx", "fallback").
    pub sgemm_kernel: String,
    /// matrixmultiply's version (pinned; part of the reproducibility contract).
    pub matrixmultiply_version: String,
}

/// Report for this machine.
pub fn report() -> KernelReport {
    let present = present_features();
    KernelReport {
        cpu_features: present.iter().map(|f| f.to_string()).collect(),
        elementwise: simd::level().as_str().to_string(),
        sgemm_kernel: sgemm_class().to_string(),
        matrixmultiply_version: MATRIXMULTIPLY_VERSION.to_string(),
    }
}

/// Lowercase name of an elementwise SIMD level: [`Level::as_str`], the one spelling.
pub fn level_name(level: Level) -> &'static str {
    level.as_str()
}

/// The entries of [`FEATURES`] this CPU has ([`simd`]'s one probe).
fn present_features() -> Vec<&'static str> {
    FEATURES.into_iter().filter(|f| simd::cpu_has(f)).collect()
}

/// The sgemm kernel class matrixmultiply selects on this CPU (see [`sgemm_kernel`]).
pub(crate) fn sgemm_class() -> &'static str {
    sgemm_kernel(&present_features())
}

/// The sgemm kernel class matrixmultiply 0.3.11 selects (its `sgemm_kernel::detect`,
/// built with the `avx512` feature): avx512f -> "avx512", else fma and avx2 ->
/// "fma-avx2", else avx -> "avx", else "fallback". On other targets, as there: "neon"
/// on aarch64 with NEON, "wasm-simd128" on wasm32 with simd128, else "fallback".
fn sgemm_kernel(present: &[&str]) -> &'static str {
    if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
        let has = |f: &str| present.contains(&f);
        if has("avx512f") {
            "avx512"
        } else if has("fma") && has("avx2") {
            "fma-avx2"
        } else if has("avx") {
            "avx"
        } else {
            "fallback"
        }
    } else if has_neon() {
        "neon"
    } else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "wasm-simd128"
    } else {
        "fallback"
    }
}

/// Whether matrixmultiply's aarch64 NEON kernel is available.
#[cfg(target_arch = "aarch64")]
fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// Not aarch64: no NEON kernel.
#[cfg(not(target_arch = "aarch64"))]
fn has_neon() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_pins_the_reported_matrixmultiply_version() {
        let manifest = include_str!("../../../Cargo.toml");
        let expected = format!("matrixmultiply = {{ version = \"={MATRIXMULTIPLY_VERSION}\"");
        assert!(
            manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&expected)),
            "workspace Cargo.toml must pin `{expected}`"
        );
    }

    #[test]
    fn sgemm_kernel_follows_matrixmultiply_detect_order() {
        if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
            assert_eq!(
                sgemm_kernel(&["sse2", "avx", "avx2", "fma", "avx512f"]),
                "avx512"
            );
            assert_eq!(sgemm_kernel(&["avx512f"]), "avx512");
            assert_eq!(sgemm_kernel(&["sse2", "avx", "avx2", "fma"]), "fma-avx2");
            assert_eq!(sgemm_kernel(&["sse2", "avx", "avx2"]), "avx");
            assert_eq!(sgemm_kernel(&["sse2", "avx", "fma"]), "avx");
            assert_eq!(sgemm_kernel(&["sse2"]), "fallback");
        }
    }

    #[test]
    fn report_is_consistent() {
        let r = report();
        assert_eq!(r.matrixmultiply_version, MATRIXMULTIPLY_VERSION);
        // Features come from the known list, in its order, without duplicates.
        let idx: Vec<usize> = r
            .cpu_features
            .iter()
            .map(|f| FEATURES.iter().position(|g| g == f).expect("known feature"))
            .collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        assert!(["scalar", "avx2", "avx512"].contains(&r.elementwise.as_str()));
        let present: Vec<&str> = r.cpu_features.iter().map(String::as_str).collect();
        assert_eq!(r.sgemm_kernel, sgemm_kernel(&present));
        #[cfg(target_arch = "x86_64")]
        assert!(present.contains(&"sse2"), "sse2 is baseline on x86_64");
    }
}
