//! How this machine's kernels and versions differ from those a run recorded, split
//! into what can change bits (named as the likely cause when outputs differ) and what
//! regulab guarantees does not (only noted).
//!
//! Why a module: the rules of which differences matter follow the kernels' bit classes
//! ([`regulab_kernels::cpu::bits_class`]) and are tested on their own.

use crate::run::manifest::Environment;

/// How this machine's kernels and versions differ from those in a manifest, in ways
/// that can change bits: the sgemm reproducibility class
/// ([`regulab_kernels::cpu::bits_class`] of the recorded `sgemm_kernel`), the
/// matrixmultiply or regulab version.
pub fn environment_notes(recorded: &Environment) -> Vec<String> {
    environment_differences(recorded).0
}

/// Both kinds of differences: (can change bits, guaranteed not to: the sgemm kernel
/// within the `x86-fma` class, the elementwise SIMD level, the CPU features).
pub(super) fn environment_differences(recorded: &Environment) -> (Vec<String>, Vec<String>) {
    use regulab_kernels::cpu::bits_class;
    let here = regulab_kernels::cpu::report();
    let k = &recorded.kernels;
    // an empty field is one an older manifest did not record
    let given = |s: &str| (!s.is_empty()).then_some(s).map(str::to_string);
    let (mut notes, mut info) = (Vec::new(), Vec::new());
    let differs = |what: &str, recorded: Option<&str>, now: &str| {
        (recorded != Some(now)).then(|| {
            format!(
                "{what} differs: the run used {}, this machine {now:?}",
                recorded.map_or("(not recorded)".to_string(), |r| format!("{r:?}"))
            )
        })
    };
    let sgemm_kernel = given(&k.sgemm_kernel);
    let sgemm = sgemm_kernel.as_deref();
    if let Some(d) = differs(
        "matrixmultiply's sgemm kernel class",
        sgemm,
        &here.sgemm_kernel,
    ) {
        if sgemm.map(bits_class) == Some(bits_class(&here.sgemm_kernel)) {
            info.push(format!(
                "{d} (both in the {} class, which gives the same bits)",
                bits_class(&here.sgemm_kernel)
            ));
        } else {
            notes.push(d);
        }
    }
    info.extend(differs(
        "the elementwise SIMD level",
        given(&k.elementwise).as_deref(),
        &here.elementwise,
    ));
    notes.extend(differs(
        "the matrixmultiply version",
        given(&k.matrixmultiply_version).as_deref(),
        &here.matrixmultiply_version,
    ));
    notes.extend(differs(
        "the regulab version",
        given(&recorded.regulab_version).as_deref(),
        env!("CARGO_PKG_VERSION"),
    ));
    let (then, now) = (k.cpu_features.clone(), here.cpu_features.clone());
    if then != now {
        info.push(format!(
            "the CPU features differ: the run's machine had [{}], this one has [{}]",
            then.join(" "),
            now.join(" ")
        ));
    }
    (notes, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's environment, as a manifest records it.
    fn this_machine() -> Environment {
        Environment {
            regulab_version: env!("CARGO_PKG_VERSION").into(),
            kernels: regulab_kernels::cpu::report().into(),
            threads: 1,
            threads_max: 1,
            jobs: 1,
            data_dir: None,
            data_paths: Vec::new(),
        }
    }

    #[test]
    fn environment_notes_name_the_kernel() {
        let mut m = this_machine();
        assert!(environment_notes(&m).is_empty());
        m.kernels.sgemm_kernel = "some-other-class".into();
        let notes = environment_notes(&m);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("sgemm kernel class") && notes[0].contains("some-other-class"));
    }

    /// AVX-512 and FMA-AVX2 are one class: a run made on the other one is not a likely
    /// cause, only a note; nor is another elementwise level; a non-FMA class still is.
    #[test]
    fn the_two_fma_classes_are_one() {
        let here = regulab_kernels::cpu::report();
        let other_fma = match here.sgemm_kernel.as_str() {
            "avx512" => "fma-avx2",
            _ => "avx512",
        };
        let mut m = this_machine();
        m.kernels.sgemm_kernel = other_fma.into();
        m.kernels.elementwise = "scalar".into();
        let (notes, info) = environment_differences(&m);
        if here.bits_class == "x86-fma" {
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(info.len(), 2, "{info:?}");
            assert!(info[0].contains(other_fma) && info[0].contains("same bits"));
        } else {
            assert_eq!(notes.len(), 1, "{notes:?}");
        }
        m.kernels.sgemm_kernel = "avx".into();
        let notes = environment_notes(&m);
        assert_eq!(
            notes.len(),
            usize::from(here.sgemm_kernel != "avx"),
            "{notes:?}"
        );
    }
}
