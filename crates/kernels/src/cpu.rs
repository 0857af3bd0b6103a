//! What this machine runs: CPU features and the kernels selected, for run manifests.
//!
//! The bits of a run depend on the matrixmultiply version and on the sgemm kernel it
//! selects at run time (AVX-512 / FMA+AVX2 / AVX / portable fallback: FMA and non-FMA
//! kernels round differently), and on the SIMD level of our elementwise kernels. A
//! manifest records all three so a rerun on another machine can be checked.
//!
//! The two FMA classes, AVX-512 and FMA-AVX2, give the same bits in regulab (its GEMM
//! merges their one difference, the sign of a zero first chunk, identically; the
//! snapshot tests run under both in CI), so a manifest also records the
//! [`KernelReport::bits_class`]: `x86-fma` for both, the sgemm class otherwise.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::simd::{self, Fma, Level, leveled};

/// Independent FMA chains of [`fma_peak`]: enough to cover the FMA latency (4 cycles)
/// times the FMA units (2 per core on these Xeons), with room to spare.
pub const PEAK_CHAINS: usize = 12;

/// One measurement of this core's f32 FMA peak at `level` (AVX2 or AVX-512), in GFLOP/s:
/// [`PEAK_CHAINS`] independent chains `acc = fma(acc, x, y)` of full vectors for `iters`
/// steps, on the calling thread; `None` at the scalar level or when the CPU lacks it.
/// The reference of the GEMM benchmarks' "share of the peak" (taken as the best of
/// several measurements, in the same run).
pub fn fma_peak(level: Level, iters: usize) -> Option<f64> {
    if level == Level::Scalar || !simd::available(level) {
        return None;
    }
    leveled!(
        vector unsafe fn chains(iters: usize, out: *mut f32) => chains_at
    );
    let mut out = [0.0f32; 16];
    let t0 = Instant::now();
    // SAFETY: `out` holds 16 floats, a full vector at either level; the level is a
    // SIMD level this CPU runs (checked above).
    unsafe { chains(level, iters, out.as_mut_ptr()) };
    let dt = t0.elapsed().max(Duration::from_nanos(1));
    std::hint::black_box(out);
    let lanes = if level == Level::Avx512 { 16 } else { 8 };
    let flops = 2.0 * (PEAK_CHAINS * lanes) as f64 * iters as f64;
    Some(flops / dt.as_secs_f64() / 1e9)
}

/// The chains of [`fma_peak`], their sum stored at `out` (so none is optimised away).
///
/// # Safety
/// `out` writable for one vector.
#[inline(always)]
unsafe fn chains_at<S: Fma>(s: S, iters: usize, out: *mut f32) {
    let (x, y) = (s.splat(0.999_999), s.splat(1e-7));
    let mut acc = [s.splat(1.0); PEAK_CHAINS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = s.fma(*a, x, y);
        }
    }
    let sum = acc.iter().fold(s.zero(), |t, a| s.add(t, *a));
    // SAFETY: as the caller vouches.
    unsafe { s.store_ptr(out, sum) };
}

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
    /// matrixmultiply's sgemm kernel class ("avx512", "fma-avx2", "avx", "fallback"),
    /// as it selects it in this build (following its compile-time `MMTEST_FEATURE`).
    pub sgemm_kernel: String,
    /// The class of machines that give the same bits ([`bits_class`]): `x86-fma` for
    /// both FMA kernel classes, otherwise the sgemm class itself.
    pub bits_class: String,
    /// matrixmultiply's version (pinned; part of the reproducibility contract).
    pub matrixmultiply_version: String,
}

/// Report for this machine.
pub fn report() -> KernelReport {
    let present = present_features();
    let sgemm = sgemm_class();
    KernelReport {
        cpu_features: present.iter().map(|f| f.to_string()).collect(),
        elementwise: simd::level().as_str().to_string(),
        sgemm_kernel: sgemm.to_string(),
        bits_class: bits_class(sgemm).to_string(),
        matrixmultiply_version: MATRIXMULTIPLY_VERSION.to_string(),
    }
}

/// The sgemm kernel class matrixmultiply selects in this build on this CPU: the CPU's
/// features, filtered by [`mm_allows`], in matrixmultiply's detection order
/// ([`sgemm_kernel`]).
pub fn sgemm_class() -> &'static str {
    let allowed: Vec<&str> = present_features()
        .into_iter()
        .filter(|f| mm_allows(f))
        .collect();
    sgemm_kernel(&allowed)
}

/// The reproducibility class of an sgemm kernel class: `x86-fma` for `avx512` and
/// `fma-avx2` (same bits in regulab), otherwise the class itself (`avx`, `fallback`,
/// ...: other roundings, other bits).
pub fn bits_class(sgemm_kernel: &str) -> &str {
    match sgemm_kernel {
        "avx512" | "fma-avx2" => "x86-fma",
        other => other,
    }
}

/// matrixmultiply's compile-time feature filter, read the same way in this crate: when
/// `MMTEST_FEATURE` was set (non-empty) while building, matrixmultiply detects only the
/// comma-separated features it lists (exact words; its `allow_feature`), e.g.
/// `MMTEST_FEATURE=fma,avx2` forces its FMA-AVX2 kernel on an AVX-512 CPU. Cargo builds
/// both crates in one environment (and rebuilds both when the variable changes).
pub fn mm_allows(feature: &str) -> bool {
    mm_allows_in(option_env!("MMTEST_FEATURE"), feature)
}

/// [`mm_allows`] with the variable's value given.
fn mm_allows_in(mmtest_feature: Option<&str>, feature: &str) -> bool {
    match mmtest_feature {
        None | Some("") => true,
        Some(list) => list.split(',').any(|f| f == feature),
    }
}

/// The entries of [`FEATURES`] this CPU has ([`simd`]'s one probe).
fn present_features() -> Vec<&'static str> {
    FEATURES.into_iter().filter(|f| simd::cpu_has(f)).collect()
}

/// The sgemm kernel class matrixmultiply 0.3.11 selects given the features it may use
/// (its `sgemm_kernel::detect`, built with the `avx512` feature): avx512f -> "avx512",
/// else fma and avx2 ->
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

/// The CPU model, as the processor names it (x86-64: `cpuid`'s vendor, family, model
/// and stepping, and its brand string), e.g. `AuthenticAMD family 25 model 1 stepping 1:
/// AMD EPYC`; `None` where it cannot be read (other architectures). Kernel speeds are a
/// property of the model, so kept kernel choices are filed under it.
pub fn model() -> Option<String> {
    model_at()
}

#[cfg(target_arch = "x86_64")]
fn model_at() -> Option<String> {
    use std::arch::x86_64::{__cpuid, CpuidResult};
    #[allow(unused_unsafe)] // `__cpuid` is safe on newer toolchains
    // SAFETY: cpuid is available on every x86-64 CPU; leaves above the maximum are not
    // asked (checked below).
    let id = |leaf: u32| -> CpuidResult { unsafe { __cpuid(leaf) } };
    let bytes = |regs: &[u32]| -> Vec<u8> { regs.iter().flat_map(|r| r.to_le_bytes()).collect() };
    let text = |b: Vec<u8>| {
        String::from_utf8_lossy(&b)
            .trim_matches(char::from(0))
            .trim()
            .to_string()
    };
    let v = id(0);
    let vendor = text(bytes(&[v.ebx, v.edx, v.ecx]));
    if v.eax < 1 {
        return Some(vendor);
    }
    let sig = id(1).eax;
    let (stepping, base_model, base_family) = (sig & 0xf, (sig >> 4) & 0xf, (sig >> 8) & 0xf);
    let (ext_model, ext_family) = ((sig >> 16) & 0xf, (sig >> 20) & 0xff);
    let family = if base_family == 0xf {
        base_family + ext_family
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        (ext_model << 4) | base_model
    } else {
        base_model
    };
    let mut name = format!("{vendor} family {family} model {model} stepping {stepping}");
    if id(0x8000_0000).eax >= 0x8000_0004 {
        let brand: Vec<u8> = (0x8000_0002..=0x8000_0004u32)
            .flat_map(|l| {
                let r = id(l);
                bytes(&[r.eax, r.ebx, r.ecx, r.edx])
            })
            .collect();
        let brand = text(brand);
        if !brand.is_empty() {
            name.push_str(": ");
            name.push_str(&brand.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    Some(name)
}

#[cfg(not(target_arch = "x86_64"))]
fn model_at() -> Option<String> {
    None
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

    /// On x86-64 the model names the vendor and the family, model and stepping numbers.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_cpu_model_is_read() {
        let m = model().expect("cpuid");
        assert!(
            ["GenuineIntel ", "AuthenticAMD ", "HygonGenuine "]
                .iter()
                .any(|v| m.starts_with(v))
                || m.contains(" family "),
            "{m}"
        );
        assert!(
            m.contains(" family ") && m.contains(" model ") && m.contains(" stepping "),
            "{m}"
        );
        assert_eq!(model(), Some(m), "the same every time");
    }

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
        #[cfg(target_arch = "x86_64")]
        assert!(present.contains(&"sse2"), "sse2 is baseline on x86_64");
        assert_eq!(r.bits_class, bits_class(&r.sgemm_kernel));
    }

    #[test]
    fn mmtest_feature_filter_reads_like_matrixmultiplys() {
        assert!(mm_allows_in(None, "avx512f"));
        assert!(mm_allows_in(Some(""), "avx512f"));
        assert!(mm_allows_in(Some("fma,avx2"), "fma"));
        assert!(mm_allows_in(Some("fma,avx2"), "avx2"));
        assert!(!mm_allows_in(Some("fma,avx2"), "avx512f"));
        assert!(!mm_allows_in(Some("avx2,fma"), "avx"));
        assert!(!mm_allows_in(Some("fma,avx2"), "fma,"));
        assert_eq!(bits_class("avx512"), bits_class("fma-avx2"));
        assert_ne!(bits_class("avx"), bits_class("fma-avx2"));
        assert_ne!(bits_class("fallback"), bits_class("avx"));
    }

    /// What matrixmultiply's sgemm really computes here, told from its bits: an FMA
    /// kernel rounds `a b + s` once (`-(1 + 2^-11) + (1 + 2^-12)^2` gives `2^-24`, two
    /// roundings give 0), and of the two FMA kernels only AVX-512's keeps the sign of a
    /// `-0` first chunk sum (`-1e-30 * 1e-30`, written with beta = 0). This observes the
    /// kernel matrixmultiply selects (including its `MMTEST_FEATURE` filter) instead of
    /// recomputing the report's rule, so the report cannot drift from it unnoticed.
    #[test]
    fn report_names_the_sgemm_kernel_matrixmultiply_really_runs() {
        use crate::gemm::{Accumulate, Op, gemm_serial};
        let one = |a: &[f32], b: &[f32]| {
            let mut c = [f32::NAN];
            let k = a.len();
            gemm_serial(1, 1, k, a, Op::N, b, Op::N, &mut c, Accumulate::Overwrite);
            c[0]
        };
        let x = 1.0 + 2f32.powi(-12);
        let fused = one(&[-(1.0 + 2f32.powi(-11)), x], &[1.0, x]);
        let zero = one(&[-1e-30], &[1e-30]);
        assert_eq!(zero, 0.0);
        let observed = match (fused, zero.is_sign_negative()) {
            (f, true) if f == 2f32.powi(-24) => "avx512",
            (f, false) if f == 2f32.powi(-24) => "fma-avx2",
            (0.0, false) => "non-fma",
            other => panic!("unexpected sgemm bits {other:?}"),
        };
        let reported = report().sgemm_kernel;
        eprintln!("sgemm: reported {reported}, observed {observed}");
        match reported.as_str() {
            "avx512" | "fma-avx2" => assert_eq!(observed, reported),
            _ => assert_eq!(observed, "non-fma", "reported {reported}"),
        }
    }
}
