//! Limits on what one command may ask of the machine, checked before anything is
//! allocated or started: runs per plan, threads and concurrent runs, and the memory a
//! run needs against the memory the machine has.
//!
//! Every number here comes from input (a config, a flag, a file's header), so each is
//! bounded with checked arithmetic before it sizes an allocation; an input beyond a
//! limit is refused with a message naming the limit and what was asked (exit 2).
//!
//! * **Runs per plan**: at most [`MAX_RUNS_PER_PLAN`] (10,000). The count is the final
//!   number of runs the plan would have (the sum over experiments of the product of
//!   their grid axes, and of any other factor that multiplies runs), computed before
//!   the grid is expanded. A study larger than that is several studies: split it.
//! * **Threads**: `--threads` at most [`MAX_THREADS`] (256) and `--jobs` at most
//!   [`MAX_JOBS`] (256); the threads of the runs that execute at once (jobs x threads)
//!   at most [`MAX_THREADS`] too. Results never depend on either number, so more
//!   threads than cores only cost memory and time (each thread keeps its own GEMM
//!   scratch buffers); 256 is well above the cores of any machine regulab is run on,
//!   and the same on every machine, so a command that works on one works on another.
//! * **Memory**: [`run_memory`] estimates what a run allocates (parameters,
//!   velocities, gradients, the training and evaluation workspaces and batch buffers,
//!   each thread's GEMM scratch, the model file being written); a command needs the
//!   data it holds plus the estimates of the runs that execute at once, and refuses to
//!   start when that exceeds [`available_memory`] (`MemAvailable` of `/proc/meminfo`,
//!   lowered by a cgroup memory limit or an address-space `ulimit` when one applies).

use std::fmt;

/// Most runs one plan may have.
pub const MAX_RUNS_PER_PLAN: usize = 10_000;

/// Most threads per run (`--threads`), and most threads of all the runs executing at
/// once (`jobs x threads`).
pub const MAX_THREADS: usize = 256;

/// Most concurrent runs (`--jobs`).
pub const MAX_JOBS: usize = 256;

/// Checks a plan's final run count (`None`: it overflowed `u64`).
pub fn check_run_count(runs: Option<u64>) -> Result<(), String> {
    match runs {
        Some(n) if n <= MAX_RUNS_PER_PLAN as u64 => Ok(()),
        Some(n) => Err(format!(
            "the plan has {n} runs, more than the limit of {MAX_RUNS_PER_PLAN} runs per plan; \
             split it into several configs"
        )),
        None => Err(format!(
            "the plan has more than {} runs, more than the limit of {MAX_RUNS_PER_PLAN} runs \
             per plan; split it into several configs",
            u64::MAX
        )),
    }
}

/// Checks `--threads` (`flag` names it) for one run.
pub fn check_threads(flag: &str, threads: usize) -> Result<(), String> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(())
    } else {
        Err(format!(
            "{flag} {threads}: expected 1 to {MAX_THREADS} threads (any number gives the same \
             results; more threads than cores only cost memory)"
        ))
    }
}

/// Checks `--jobs` and `--threads` of `regulab run`: each within its limit, and the
/// threads of the runs executing at once (`min(jobs, runs) x threads`) at most
/// [`MAX_THREADS`].
pub fn check_parallelism(jobs: usize, threads: usize, runs: usize) -> Result<(), String> {
    if !(1..=MAX_JOBS).contains(&jobs) {
        return Err(format!(
            "--jobs {jobs}: expected 1 to {MAX_JOBS} runs at a time"
        ));
    }
    check_threads("--threads", threads)?;
    let at_once = jobs.min(runs.max(1));
    if at_once.saturating_mul(threads) > MAX_THREADS {
        return Err(format!(
            "--jobs {jobs} --threads {threads}: {at_once} runs at a time with {threads} threads \
             each make {} threads, more than the limit of {MAX_THREADS}; lower --jobs or --threads",
            at_once.saturating_mul(threads)
        ));
    }
    Ok(())
}

/// A number of bytes, printed in binary units (`1.5 GiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut v = self.0 as f64;
        let mut u = 0;
        while v >= 1024.0 && u + 1 < UNITS.len() {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 {
            write!(f, "{} bytes", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[u])
        }
    }
}

/// What one run allocates, by part (bytes; see [`run_memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunMemory {
    /// Weights and biases, and the model file's bytes while it is written.
    pub parameters: u64,
    /// Velocities (momentum) and weight-gradient buffers.
    pub optimizer: u64,
    /// Training and evaluation workspaces (activations, deltas, masks) and batch buffers.
    pub workspaces: u64,
    /// Each thread's GEMM scratch (packed panels, zero-skipping patterns).
    pub threads: u64,
}

impl RunMemory {
    /// The sum of the parts (saturating).
    pub fn total(&self) -> u64 {
        self.parameters
            .saturating_add(self.optimizer)
            .saturating_add(self.workspaces)
            .saturating_add(self.threads)
    }
}

impl fmt::Display for RunMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (parameters {}, optimizer {}, workspaces {}, thread buffers {})",
            Bytes(self.total()),
            Bytes(self.parameters),
            Bytes(self.optimizer),
            Bytes(self.workspaces),
            Bytes(self.threads)
        )
    }
}

/// The shape of a run, as far as memory goes.
#[derive(Clone, Copy, Debug)]
pub struct RunShape<'a> {
    /// Layer widths, inputs first, outputs last.
    pub sizes: &'a [usize],
    /// Training batch rows (`batch_size`).
    pub batch: usize,
    /// Evaluation batch rows (`data.eval_batch`).
    pub eval_batch: usize,
    /// Whether momentum keeps velocities (and weight-gradient buffers).
    pub momentum: bool,
    /// Whether any layer has dropout (masks).
    pub dropout: bool,
    /// Rayon threads of the run.
    pub threads: usize,
}

/// Bytes of an `f32`.
const F32: u64 = 4;
/// Floats per packed GEMM panel column (an upper bound of the kernels' panel width).
const PANEL: u64 = 64;
/// Rows per zero-skipping pattern block (the sparse kernel's block of B's rows).
const PATTERN_BLOCK: u64 = 128;

/// Estimates what a run of `shape` allocates, with checked arithmetic throughout
/// (`None`: more than `u64::MAX` bytes). With `P = sum(n_in n_out + n_out)` parameters,
/// `W = sum(n_in n_out)` weights, `S = sizes[0] + 2 sum(sizes[1..]) + sum(hidden)` floats
/// per workspace row (input copy, activations, deltas, dropped activations),
/// `B` = batch, `E` = evaluation batch, `A` = the widest layer input, `T` = threads:
///
/// * parameters `4P` + the model file `4P`;
/// * optimizer `4P` (velocities) + `4W` (weight gradients) with momentum, else `4 n_out`;
/// * workspaces `(4S + 8) B` + `(4S + 8) E` + masks `S B / 8` with dropout + batch
///   buffers `4 (B + E)(sizes[0] + 1)`;
/// * threads `T (8 (max(B, E) A + 128 R) + 257 R + 256 A)` with `R = max(B, E, A)`
///   (the zero-skipping pattern and accumulator rows, the packed panel).
pub fn run_memory(shape: &RunShape<'_>) -> Option<RunMemory> {
    let s = shape.sizes;
    let mul = |a: u64, b: u64| a.checked_mul(b);
    let mut params: u64 = 0;
    let mut weights: u64 = 0;
    let mut biases: u64 = 0;
    for w in s.windows(2) {
        let (a, b) = (w[0] as u64, w[1] as u64);
        let layer = mul(a, b)?;
        weights = weights.checked_add(layer)?;
        biases = biases.checked_add(b)?;
        params = params.checked_add(layer)?.checked_add(b)?;
    }
    let first = *s.first()? as u64;
    let later: u64 = s[1..]
        .iter()
        .try_fold(0u64, |acc, &x| acc.checked_add(x as u64))?;
    let hidden: u64 = s[1..s.len().saturating_sub(1).max(1)]
        .iter()
        .try_fold(0u64, |acc, &x| acc.checked_add(x as u64))?;
    let row = first.checked_add(mul(2, later)?)?.checked_add(hidden)?;
    let (b, e) = (shape.batch as u64, shape.eval_batch as u64);
    let per_row = mul(F32, row)?.checked_add(8)?;
    let mut workspaces = mul(per_row, b)?.checked_add(mul(per_row, e)?)?;
    if shape.dropout {
        workspaces = workspaces.checked_add(mul(row, b)? / 8)?;
    }
    workspaces =
        workspaces.checked_add(mul(mul(F32, b.checked_add(e)?)?, first.checked_add(1)?)?)?;
    let parameters = mul(2 * F32, params)?;
    let optimizer = if shape.momentum {
        mul(F32, params)?.checked_add(mul(F32, weights)?)?
    } else {
        mul(F32, biases)?
    };
    let widest_in = s[..s.len() - 1].iter().copied().max().unwrap_or(0) as u64;
    let batch_rows = b.max(e);
    let rows = batch_rows.max(widest_in);
    let per_thread = mul(
        8,
        mul(batch_rows, widest_in)?.checked_add(mul(PATTERN_BLOCK, rows)?)?,
    )?
    .checked_add(mul(257, rows)?)?
    .checked_add(mul(F32 * PANEL, widest_in)?)?;
    let threads = mul(per_thread, shape.threads.max(1) as u64)?;
    Some(RunMemory {
        parameters,
        optimizer,
        workspaces,
        threads,
    })
}

/// The memory this process may still allocate, and where that figure comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    /// Bytes.
    pub bytes: u64,
    /// What set it, e.g. `MemAvailable in /proc/meminfo`.
    pub source: String,
}

impl fmt::Display for Available {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", Bytes(self.bytes), self.source)
    }
}

/// The memory available to this process: `MemAvailable` from `/proc/meminfo`, lowered
/// by the cgroup (v2 `memory.max - memory.current`, v1 `memory.limit_in_bytes -
/// memory.usage_in_bytes`) and by `RLIMIT_AS` minus the address space in use, when
/// those apply. `None` when none of them can be read (not Linux): no check is made.
pub fn available_memory() -> Option<Available> {
    let mut best: Option<Available> = None;
    let mut offer = |bytes: u64, source: String| {
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(Available { bytes, source });
        }
    };
    if let Some(kb) = read_field("/proc/meminfo", "MemAvailable:") {
        offer(
            kb.saturating_mul(1024),
            "MemAvailable in /proc/meminfo".into(),
        );
    }
    for (limit, usage, what) in cgroup_files() {
        if let (Some(limit), Some(usage)) = (read_number(&limit), read_number(&usage))
            && limit < 1 << 60
        {
            offer(limit.saturating_sub(usage), format!("cgroup {what}"));
        }
    }
    if let Some(limit) = address_space_limit() {
        let used = read_field("/proc/self/status", "VmSize:").unwrap_or(0) * 1024;
        offer(limit.saturating_sub(used), "ulimit -v (RLIMIT_AS)".into());
    }
    best
}

/// `(limit file, usage file, description)` of the cgroups this process is in.
fn cgroup_files() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return out;
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if id == "0" && controllers.is_empty() {
            for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                for p in [path, ""] {
                    out.push((
                        format!("{root}{p}/memory.max"),
                        format!("{root}{p}/memory.current"),
                        format!("memory.max of {root}{p}"),
                    ));
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            for p in [path, ""] {
                out.push((
                    format!("/sys/fs/cgroup/memory{p}/memory.limit_in_bytes"),
                    format!("/sys/fs/cgroup/memory{p}/memory.usage_in_bytes"),
                    format!("memory.limit_in_bytes of /sys/fs/cgroup/memory{p}"),
                ));
            }
        }
    }
    out
}

/// `RLIMIT_AS` (soft) from `/proc/self/limits`, when it is not unlimited.
fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The first number after `key` in `path` (e.g. `MemAvailable:  123 kB` gives 123).
fn read_field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// A file holding one number (`max` is not one).
fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_counts_and_threads() {
        assert!(check_run_count(Some(10_000)).is_ok());
        let e = check_run_count(Some(10_001)).unwrap_err();
        assert!(e.contains("10001 runs") && e.contains("10000"), "{e}");
        assert!(check_run_count(None).is_err());
        assert!(check_threads("--threads", 256).is_ok());
        assert!(check_threads("--threads", 257).is_err());
        assert!(check_threads("--threads", 0).is_err());
        assert!(check_parallelism(2, 128, 5).is_ok());
        assert!(check_parallelism(2, 129, 5).is_err());
        // only the runs that can execute at once count
        assert!(check_parallelism(4, 200, 1).is_ok());
        assert!(check_parallelism(257, 1, 1).is_err());
    }

    #[test]
    fn the_lab_network_needs_megabytes_and_huge_ones_are_measured_without_overflow() {
        let lab = RunShape {
            sizes: &[784, 800, 10],
            batch: 10,
            eval_batch: 1000,
            momentum: false,
            dropout: true,
            threads: 2,
        };
        let m = run_memory(&lab).unwrap();
        // 636,010 parameters: 2.5 MB, twice; evaluation workspace ~ 1000 x 3204 floats
        assert_eq!(m.parameters, 8 * 636_010);
        assert!((10 << 20..64 << 20).contains(&m.total()), "{m}");
        let huge = RunShape {
            sizes: &[784, 100_000_000, 10],
            ..lab
        };
        assert!(run_memory(&huge).unwrap().total() > 600_000_000_000);
        let overflow = RunShape {
            sizes: &[784, 1 << 62, 10],
            ..lab
        };
        assert_eq!(run_memory(&overflow), None);
        let batch = RunShape {
            batch: 1_000_000_000,
            ..lab
        };
        assert!(run_memory(&batch).unwrap().total() > 1 << 40);
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(10).to_string(), "10 bytes");
    }

    #[test]
    fn available_memory_is_found_on_linux() {
        let a = available_memory().expect("Linux has /proc/meminfo");
        assert!(a.bytes > 0, "{a}");
    }
}
