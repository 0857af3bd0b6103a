//! The kernel-choice cache: which GEMM kernel each product signature runs on, as timed
//! on this CPU model by an earlier `regulab run`, so that later runs skip the timing.
//!
//! The kernels crate times its kernels at the first calls of each product signature and
//! keeps the fastest for the rest of the process (`regulab_kernels::gemm::tune`). That
//! calibration costs about half a second per signature and pool size for the lab's
//! evaluation product, in every process. This module keeps its outcome in one JSON file,
//! in a section per machine key ([`machine_key`]: the CPU model, the SIMD level and
//! sgemm kernel in use, the regulab version and the kernels' calibration revision), so
//! that a home directory shared by the nodes of a cluster serves each CPU model with
//! its own choices. A kept choice applies only to a signature with the same eligible
//! kernels and the same density class of its sparse operand; anything else is timed as
//! before. Kernel choices never change a bit, so neither does the cache.
//!
//! Where: `REGULAB_KERNEL_CACHE` names the file (`off` turns the cache off); unset, it is
//! `$XDG_CACHE_HOME/regulab/kernel-choices.json`, else
//! `$HOME/.cache/regulab/kernel-choices.json`. The file is read at the start of a run
//! and rewritten at the end (atomically: read again, this machine's section merged,
//! written to a temporary file and renamed), keeping other machines' sections. A file
//! that cannot be read or does not parse is reported as a warning, naming the file and
//! the field, and left as it is; the run then times its kernels as if there were no
//! cache. Two processes that finish at the same moment may each miss the other's new
//! entries (the last rename wins); the next run times those signatures again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use regulab_kernels::gemm::{self, Candidates, GroupChoice, Kernel, Key, Learned, Plan};
use serde::{Deserialize, Serialize};

/// The environment variable naming the cache file (`off` or empty: no cache).
pub const ENV: &str = "REGULAB_KERNEL_CACHE";

/// The file's name in the default directory.
pub const FILE_NAME: &str = "kernel-choices.json";

/// The format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Largest file read, in bytes (a full section is about 1 KB per 4 signatures).
pub const MAX_BYTES: u64 = 4 << 20;

/// Most machine sections kept in one file.
pub const MAX_MACHINES: usize = 64;

/// Most signatures, and most group decisions, kept per machine: the newest (this run's
/// first, then the file's in its order).
pub const MAX_ENTRIES: usize = 2048;

/// Largest dimension, pool size or batch accepted from the file (larger values are no
/// product regulab runs).
const MAX_DIM: u64 = 1 << 32;

/// The file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    format: u32,
    machines: Vec<Section>,
}

/// One machine key's choices.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    machine: String,
    plans: Vec<PlanRow>,
    groups: Vec<GroupRow>,
}

/// A signature's choice (see `gemm::Learned`); plans as `gemm::Plan` displays them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRow {
    m: u64,
    n: u64,
    k: u64,
    trans_a: bool,
    trans_b: bool,
    add: bool,
    threads: u64,
    density: u8,
    candidates: Vec<String>,
    chosen: String,
}

/// A group's split decision (see `gemm::GroupChoice`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRow {
    threads: u64,
    batch: u64,
    split: bool,
}

/// The key of this machine's section: the CPU model, the SIMD level and sgemm kernel in
/// use, the regulab version and the kernels' calibration revision; `None` where the CPU
/// model cannot be read.
pub fn machine_key() -> Option<String> {
    let report = regulab_kernels::cpu::report();
    Some(format!(
        "{}; simd {}; sgemm {}; regulab {}; calibration {}",
        regulab_kernels::cpu::model()?,
        report.elementwise,
        report.sgemm_kernel,
        env!("CARGO_PKG_VERSION"),
        gemm::CALIBRATION_REVISION
    ))
}

/// Where the cache lives, from the environment (see the module doc): `None` when it is
/// off or no directory is known.
pub fn location_from(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match var(ENV) {
        Some(v) if v.trim().is_empty() || v.trim() == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => {
            let absolute = |v: String| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
            let base = var("XDG_CACHE_HOME")
                .and_then(absolute)
                .or_else(|| var("HOME").and_then(absolute).map(|h| h.join(".cache")))?;
            Some(base.join("regulab").join(FILE_NAME))
        }
    }
}

/// An open cache: its file and this machine's key.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    machine: String,
    /// The entries seeded from the file.
    seeded: usize,
}

impl Cache {
    /// Opens the cache named by the environment and seeds the kernel choice with this
    /// machine's section. `Ok(None)` when the cache is off or the CPU model unknown; an
    /// error (to be reported as a warning) when the file exists but cannot be used.
    pub fn open() -> Result<Option<Cache>> {
        let Some(path) = location_from(|k| std::env::var(k).ok()) else {
            return Ok(None);
        };
        let Some(machine) = machine_key() else {
            return Ok(None);
        };
        Cache::open_at(path, machine).map(Some)
    }

    /// [`Cache::open`] for an explicit file and machine key.
    pub fn open_at(path: PathBuf, machine: String) -> Result<Cache> {
        let file = read(&path)?;
        let mut seeded = 0;
        if let Some(section) = file.machines.iter().find(|s| s.machine == machine) {
            let (plans, groups) = section_entries(&path, section)?;
            gemm::seed(&plans, &groups);
            seeded = plans.len();
        }
        Ok(Cache {
            path,
            machine,
            seeded,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Signatures seeded from the file.
    pub fn seeded(&self) -> usize {
        self.seeded
    }

    /// Writes this process's choices into this machine's section (merged with the
    /// file as it is now: this process's entries replace the same signatures', the
    /// others are kept, newest first, up to [`MAX_ENTRIES`]), atomically. Returns the
    /// signatures in the section. The file is left as it is if it no longer parses.
    pub fn save(&self) -> Result<usize> {
        let (plans, groups) = gemm::learned();
        let mut file = read(&self.path)?;
        let old = file
            .machines
            .iter()
            .position(|s| s.machine == self.machine)
            .map(|i| file.machines.remove(i));
        let mut new = Section {
            machine: self.machine.clone(),
            plans: plans.iter().map(plan_row).collect(),
            groups: groups.iter().map(group_row).collect(),
        };
        if let Some(old) = old {
            let same_plan = |a: &PlanRow, b: &PlanRow| {
                (
                    a.m, a.n, a.k, a.trans_a, a.trans_b, a.add, a.threads, a.density,
                ) == (
                    b.m, b.n, b.k, b.trans_a, b.trans_b, b.add, b.threads, b.density,
                )
            };
            for row in old.plans {
                if !new.plans.iter().any(|r| same_plan(r, &row)) {
                    new.plans.push(row);
                }
            }
            for row in old.groups {
                if !new
                    .groups
                    .iter()
                    .any(|r| (r.threads, r.batch) == (row.threads, row.batch))
                {
                    new.groups.push(row);
                }
            }
        }
        new.plans.truncate(MAX_ENTRIES);
        new.groups.truncate(MAX_ENTRIES);
        let count = new.plans.len();
        file.machines.insert(0, new);
        file.machines.truncate(MAX_MACHINES);
        file.format = FORMAT;
        let mut text = serde_json::to_vec_pretty(&file).context("encoding the kernel cache")?;
        text.push(b'\n');
        crate::atomic::write(&self.path, &text)
            .with_context(|| format!("writing the kernel cache {}", self.path.display()))?;
        Ok(count)
    }
}

/// The file's contents: empty if it does not exist; an error naming the file and the
/// field if it cannot be read, is too large, or does not parse as this format.
fn read(path: &Path) -> Result<CacheFile> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(CacheFile {
                format: FORMAT,
                machines: Vec::new(),
            });
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if meta.len() > MAX_BYTES {
        bail!(
            "{}: {} bytes, expected at most {MAX_BYTES}",
            path.display(),
            meta.len()
        );
    }
    // read at most one byte more than allowed: a file that grew since is refused too
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read;
            f.take(MAX_BYTES + 1).read_to_end(&mut bytes)
        })
        .with_context(|| format!("reading {}", path.display()))?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_BYTES) {
        bail!("{}: more than {MAX_BYTES} bytes", path.display());
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let file: CacheFile = serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow!("{}: field `{}`: {}", path.display(), e.path(), e.inner()))?;
    if file.format != FORMAT {
        bail!(
            "{}: field `format`: {}, expected {FORMAT} (written by another version of regulab)",
            path.display(),
            file.format
        );
    }
    if file.machines.len() > MAX_MACHINES {
        bail!(
            "{}: field `machines`: {} sections, expected at most {MAX_MACHINES}",
            path.display(),
            file.machines.len()
        );
    }
    Ok(file)
}

/// A section's entries, validated: every number in range, every plan a known plan, the
/// chosen plan among the candidates; an error names the field.
fn section_entries(path: &Path, s: &Section) -> Result<(Vec<Learned>, Vec<GroupChoice>)> {
    let at = |what: String, expected: &str| -> anyhow::Error {
        anyhow!(
            "{}: section `{}`, field `{what}`: expected {expected}",
            path.display(),
            s.machine
        )
    };
    if s.plans.len() > MAX_ENTRIES || s.groups.len() > MAX_ENTRIES {
        return Err(at(
            "plans".into(),
            &format!("at most {MAX_ENTRIES} plans and groups"),
        ));
    }
    let dim = |v: u64, what: String| -> Result<usize> {
        if (1..=MAX_DIM).contains(&v) {
            usize::try_from(v).map_err(|_| at(what, "a size this machine can address"))
        } else {
            Err(at(what, &format!("a whole number from 1 to {MAX_DIM}")))
        }
    };
    let mut plans = Vec::with_capacity(s.plans.len());
    for (i, r) in s.plans.iter().enumerate() {
        let f = |name: &str| format!("plans[{i}].{name}");
        let key = Key {
            m: dim(r.m, f("m"))?,
            n: dim(r.n, f("n"))?,
            k: dim(r.k, f("k"))?,
            trans_a: r.trans_a,
            trans_b: r.trans_b,
            add: r.add,
            threads: dim(r.threads, f("threads"))?,
        };
        if r.density > 10 {
            return Err(at(f("density"), "a density class from 0 to 10"));
        }
        let plan = |text: &str, what: String| {
            parse_plan(text).ok_or_else(|| {
                at(
                    what,
                    "sgemm, direct or sparse, optionally followed by ` (one block)`",
                )
            })
        };
        let candidates = r
            .candidates
            .iter()
            .enumerate()
            .map(|(j, c)| plan(c, f(&format!("candidates[{j}]"))))
            .collect::<Result<Vec<Plan>>>()?;
        if Candidates::from_plans(&candidates).is_none() {
            return Err(at(f("candidates"), "1 to 6 plans"));
        }
        let chosen = plan(&r.chosen, f("chosen"))?;
        if !candidates.contains(&chosen) {
            return Err(at(f("chosen"), "one of the row's candidates"));
        }
        plans.push(Learned {
            key,
            density: r.density,
            candidates,
            chosen,
        });
    }
    let mut groups = Vec::with_capacity(s.groups.len());
    for (i, g) in s.groups.iter().enumerate() {
        groups.push(GroupChoice {
            threads: dim(g.threads, format!("groups[{i}].threads"))?,
            batch: dim(g.batch, format!("groups[{i}].batch"))?,
            split: g.split,
        });
    }
    Ok((plans, groups))
}

/// A plan as displayed (`sgemm`, `direct (one block)`, ...).
fn parse_plan(text: &str) -> Option<Plan> {
    let (name, split) = match text.strip_suffix(" (one block)") {
        Some(name) => (name, false),
        None => (text, true),
    };
    let kernel = [Kernel::Sgemm, Kernel::Direct, Kernel::Sparse]
        .into_iter()
        .find(|k| k.as_str() == name)?;
    Some(Plan { kernel, split })
}

/// `v` as written to the file: usize fits u64 on every supported target, and a value
/// that did not would be refused when read back (above [`MAX_DIM`]).
fn to_u64(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn plan_row(l: &Learned) -> PlanRow {
    let k = l.key;
    let n = to_u64;
    PlanRow {
        m: n(k.m),
        n: n(k.n),
        k: n(k.k),
        trans_a: k.trans_a,
        trans_b: k.trans_b,
        add: k.add,
        threads: n(k.threads),
        density: l.density,
        candidates: l.candidates.iter().map(ToString::to_string).collect(),
        chosen: l.chosen.to_string(),
    }
}

fn group_row(g: &GroupChoice) -> GroupRow {
    let n = to_u64;
    GroupRow {
        threads: n(g.threads),
        batch: n(g.batch),
        split: g.split,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_follows_the_variable_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(location_from(env(&[(ENV, "off"), ("HOME", "/h")])), None);
        assert_eq!(location_from(env(&[(ENV, " "), ("HOME", "/h")])), None);
        assert_eq!(location_from(env(&[(ENV, "c.json")])), p("c.json"));
        assert_eq!(
            location_from(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            p("/x/regulab/kernel-choices.json")
        );
        // a relative XDG_CACHE_HOME is ignored (the XDG rule)
        assert_eq!(
            location_from(env(&[("XDG_CACHE_HOME", "x"), ("HOME", "/h")])),
            p("/h/.cache/regulab/kernel-choices.json")
        );
        assert_eq!(location_from(env(&[])), None);
    }

    #[test]
    fn plans_read_as_they_display() {
        for kernel in [Kernel::Sgemm, Kernel::Direct, Kernel::Sparse] {
            for split in [true, false] {
                let plan = Plan { kernel, split };
                assert_eq!(parse_plan(&plan.to_string()), Some(plan));
            }
        }
        assert_eq!(parse_plan("blas"), None);
        assert_eq!(parse_plan("direct (two blocks)"), None);
    }

    fn row() -> PlanRow {
        PlanRow {
            m: 1000,
            n: 800,
            k: 784,
            trans_a: false,
            trans_b: false,
            add: false,
            threads: 1,
            density: 5,
            candidates: vec!["sgemm".into(), "direct".into(), "sparse".into()],
            chosen: "direct".into(),
        }
    }

    fn write_section(path: &Path, machine: &str, plans: Vec<PlanRow>) {
        let file = CacheFile {
            format: FORMAT,
            machines: vec![Section {
                machine: machine.into(),
                plans,
                groups: vec![GroupRow {
                    threads: 2,
                    batch: 10,
                    split: false,
                }],
            }],
        };
        std::fs::write(path, serde_json::to_vec(&file).unwrap()).unwrap();
    }

    /// Every malformed entry is refused with the file, the section and the field named.
    #[test]
    fn bad_entries_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        type Spoil = Box<dyn Fn(&mut PlanRow)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (Box::new(|r| r.m = 0), "plans[0].m"),
            (Box::new(|r| r.k = MAX_DIM + 1), "plans[0].k"),
            (Box::new(|r| r.threads = 0), "plans[0].threads"),
            (Box::new(|r| r.density = 11), "plans[0].density"),
            (Box::new(|r| r.candidates.clear()), "plans[0].candidates"),
            (
                Box::new(|r| r.candidates[1] = "blas".into()),
                "plans[0].candidates[1]",
            ),
            (
                Box::new(|r| r.chosen = "sgemm (one block)".into()),
                "plans[0].chosen",
            ),
        ];
        for (spoil, field) in cases {
            let mut r = row();
            spoil(&mut r);
            write_section(&path, "m1", vec![row(), r].into_iter().rev().collect());
            let err = Cache::open_at(path.clone(), "m1".into()).unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains(&path.display().to_string())
                    && msg.contains("section `m1`")
                    && msg.contains(&format!("field `{field}`")),
                "{field}: {msg}"
            );
        }
        // syntax and shape: the path of the field
        std::fs::write(&path, br#"{"format": 1, "machines": [{"machine": 3}]}"#).unwrap();
        let msg = format!(
            "{:#}",
            Cache::open_at(path.clone(), "m1".into()).unwrap_err()
        );
        assert!(msg.contains("field `machines[0].machine`"), "{msg}");
        std::fs::write(&path, br#"{"format": 2, "machines": []}"#).unwrap();
        let msg = format!(
            "{:#}",
            Cache::open_at(path.clone(), "m1".into()).unwrap_err()
        );
        assert!(msg.contains("field `format`: 2, expected 1"), "{msg}");
        // too large: refused before reading
        std::fs::write(&path, vec![b' '; MAX_BYTES as usize + 1]).unwrap();
        let msg = format!(
            "{:#}",
            Cache::open_at(path.clone(), "m1".into()).unwrap_err()
        );
        assert!(msg.contains("expected at most"), "{msg}");
    }

    /// Saving keeps other machines' sections and this section's other entries, and a
    /// file that stopped parsing is left as it is.
    #[test]
    fn saving_merges_and_keeps_other_machines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let other = PlanRow {
            m: 17,
            chosen: "sgemm".into(),
            ..row()
        };
        write_section(&path, "another cpu", vec![other.clone()]);
        let mine = PlanRow { m: 19, ..row() };
        let mut file: CacheFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file.machines.push(Section {
            machine: "this cpu".into(),
            plans: vec![mine.clone()],
            groups: vec![],
        });
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let cache = Cache::open_at(path.clone(), "this cpu".into()).unwrap();
        assert_eq!(cache.seeded(), 1);
        let n = cache.save().unwrap();
        let back: CacheFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let section = |m: &str| back.machines.iter().find(|s| s.machine == m).unwrap();
        assert_eq!(section("another cpu").plans, vec![other]);
        let own = &section("this cpu").plans;
        assert_eq!(own.len(), n);
        assert!(own.contains(&mine), "the file's entry is kept: {own:?}");
        // this process's decisions are in it too (the seeded one at least)
        assert!(n >= 1);
        // a file that no longer parses is not replaced
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(cache.save().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    }
}
