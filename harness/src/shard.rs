//! Shards of a plan: `regulab run CONFIG --shard I/N` trains only the runs whose index
//! in the plan is `I` modulo `N`.
//!
//! The plan's order is the order of `DIR/plan.json` and of `summary.csv`: experiments
//! in the order of the config file, and within an experiment its grid expanded with the
//! last key varying fastest ([`crate::config`]). It depends only on the config and the
//! `--set` options, so every shard computes the same plan and picks disjoint runs; the
//! `N` shards together hold every run once, and shard `I` holds `floor(runs / N)` or
//! `ceil(runs / N)` of them (none when `I >= runs`).
//!
//! In a Slurm job array, `--shard slurm/N` takes `I` from `SLURM_ARRAY_TASK_ID` (what
//! `regulab slurm` writes: `N` is fixed in the script, so resubmitting some tasks with
//! `sbatch --array=3,5` picks the same runs as before). `--shard slurm` also takes `N`
//! from the array, which must then be the dense `0..N-1` (`SLURM_ARRAY_TASK_MIN` = 0,
//! `SLURM_ARRAY_TASK_MAX` = N - 1; the count is `SLURM_ARRAY_TASK_COUNT`, or MIN/MAX
//! where Slurm does not set it).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// `--shard` as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    /// `I/N`.
    Fixed {
        /// `I`.
        index: u32,
        /// `N`.
        count: u32,
    },
    /// `slurm` (`None`: the count from the array) or `slurm/N`.
    Slurm(Option<u32>),
}

/// A shard that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ShardError {
    /// Not `I/N`, `slurm` or `slurm/N`.
    #[error("--shard {0:?}: expected I/N (0 <= I < N, e.g. 2/8), slurm, or slurm/N")]
    Syntax(String),
    /// `I >= N` or `N = 0`.
    #[error("--shard {index}/{count}: expected 0 <= I < N")]
    OutOfRange {
        /// `I`.
        index: u32,
        /// `N`.
        count: u32,
    },
    /// `--shard slurm` outside a job array.
    #[error(
        "--shard slurm: {var} is not set: this is not a task of a Slurm job array \
         (submit the sweep with `regulab slurm --submit`, or give --shard I/N)"
    )]
    NotInArray {
        /// The variable missing.
        var: &'static str,
    },
    /// A Slurm variable that is not a number.
    #[error("--shard slurm: {var}={value:?} is not a task number")]
    BadVar {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// `--shard slurm` in an array that is not `0..N-1`.
    #[error(
        "--shard slurm: this array's tasks are {min}..{max} ({count} tasks), not 0..N-1, so \
         its shape cannot say how many shards there are; give them: --shard slurm/N"
    )]
    NotDense {
        /// `SLURM_ARRAY_TASK_MIN`.
        min: u32,
        /// `SLURM_ARRAY_TASK_MAX`.
        max: u32,
        /// The number of tasks.
        count: u32,
    },
    /// `--shard slurm/N` in a task whose id is not below `N`.
    #[error(
        "--shard slurm/{count}: this is task {index} (SLURM_ARRAY_TASK_ID), expected below {count}"
    )]
    TaskOutOfRange {
        /// `SLURM_ARRAY_TASK_ID`.
        index: u32,
        /// `N`.
        count: u32,
    },
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl FromStr for ShardArg {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        if s == "slurm" {
            return Ok(ShardArg::Slurm(None));
        }
        let (a, b) = s.split_once('/').ok_or_else(syntax)?;
        let count = number(b).ok_or_else(syntax)?;
        if a == "slurm" {
            if count == 0 {
                return Err(ShardError::OutOfRange { index: 0, count });
            }
            return Ok(ShardArg::Slurm(Some(count)));
        }
        let index = number(a).ok_or_else(syntax)?;
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(ShardArg::Fixed { index, count })
    }
}

/// The Slurm task a shard runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmTask {
    /// `SLURM_ARRAY_JOB_ID`: the array's job id (in the log file names).
    pub array_job_id: String,
    /// `SLURM_ARRAY_TASK_ID`.
    pub task_id: u32,
    /// `SLURM_JOB_ID`: this task's own job id.
    pub job_id: String,
    /// `SLURM_RESTART_COUNT`: how often the task was requeued (0 the first time).
    pub restart_count: u32,
}

/// Shard `index` of `count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// `I`.
    pub index: u32,
    /// `N`.
    pub count: u32,
    /// The Slurm task it runs in (`--shard slurm...`).
    pub slurm: Option<SlurmTask>,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Resolve `arg`, reading Slurm's variables through `var` (`std::env::var` in the
    /// command, a table in tests).
    pub fn resolve(
        arg: ShardArg,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, ShardError> {
        let slurm_count = match arg {
            ShardArg::Fixed { index, count } => {
                return Ok(Shard {
                    index,
                    count,
                    slurm: None,
                });
            }
            ShardArg::Slurm(n) => n,
        };
        let get = |name: &'static str| -> Result<Option<u32>, ShardError> {
            match var(name) {
                None => Ok(None),
                Some(v) => number(v.trim()).map(Some).ok_or(ShardError::BadVar {
                    var: name,
                    value: v,
                }),
            }
        };
        let task = get("SLURM_ARRAY_TASK_ID")?.ok_or(ShardError::NotInArray {
            var: "SLURM_ARRAY_TASK_ID",
        })?;
        let count = match slurm_count {
            Some(n) => {
                if task >= n {
                    return Err(ShardError::TaskOutOfRange {
                        index: task,
                        count: n,
                    });
                }
                n
            }
            None => {
                let missing = |var| ShardError::NotInArray { var };
                let min = get("SLURM_ARRAY_TASK_MIN")?.ok_or(missing("SLURM_ARRAY_TASK_MIN"))?;
                let max = get("SLURM_ARRAY_TASK_MAX")?.ok_or(missing("SLURM_ARRAY_TASK_MAX"))?;
                let count = match get("SLURM_ARRAY_TASK_COUNT")? {
                    Some(c) => c,
                    None => max.saturating_sub(min).saturating_add(1),
                };
                if min != 0 || max.checked_add(1) != Some(count) || task > max {
                    return Err(ShardError::NotDense { min, max, count });
                }
                count
            }
        };
        let text = |name: &str| var(name).unwrap_or_default().trim().to_string();
        Ok(Shard {
            index: task,
            count,
            slurm: Some(SlurmTask {
                array_job_id: text("SLURM_ARRAY_JOB_ID"),
                task_id: task,
                job_id: text("SLURM_JOB_ID"),
                restart_count: get("SLURM_RESTART_COUNT")?.unwrap_or(0),
            }),
        })
    }

    /// The plan indices of this shard among `runs` runs: `index, index + count, ...`.
    pub fn indices(&self, runs: usize) -> Vec<usize> {
        (self.index as usize..runs)
            .step_by(self.count.max(1) as usize)
            .collect()
    }

    /// Whether plan index `i` is this shard's.
    pub fn holds(&self, i: usize) -> bool {
        i % self.count.max(1) as usize == self.index as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn arguments() {
        assert_eq!("2/8".parse(), Ok(ShardArg::Fixed { index: 2, count: 8 }));
        assert_eq!("slurm".parse(), Ok(ShardArg::Slurm(None)));
        assert_eq!("slurm/6".parse(), Ok(ShardArg::Slurm(Some(6))));
        for bad in [
            "", "1", "1/", "/2", "a/2", "-1/2", "1/2/3", "slurm/", "slurm/x", "1 /2",
        ] {
            assert!(
                matches!(bad.parse::<ShardArg>(), Err(ShardError::Syntax(_))),
                "{bad}"
            );
        }
        for bad in ["2/2", "0/0", "slurm/0", "9/3"] {
            assert!(
                matches!(bad.parse::<ShardArg>(), Err(ShardError::OutOfRange { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn shards_partition_the_plan() {
        for runs in [0, 1, 5, 6, 11, 110] {
            for count in 1..=8u32 {
                let mut seen = vec![0; runs];
                for index in 0..count {
                    let s = Shard {
                        index,
                        count,
                        slurm: None,
                    };
                    let idx = s.indices(runs);
                    assert!(idx.len() <= runs.div_ceil(count as usize));
                    assert!(idx.len() >= runs / count as usize);
                    for i in idx {
                        assert!(s.holds(i));
                        seen[i] += 1;
                    }
                }
                assert!(seen.iter().all(|&n| n == 1), "{runs} runs, {count} shards");
            }
        }
    }

    #[test]
    fn slurm_arrays() {
        let task = |id: &str, extra: &[(&'static str, &'static str)]| {
            let mut v = vec![
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_JOB_ID", "40"),
                ("SLURM_JOB_ID", "43"),
            ];
            v.extend_from_slice(extra);
            v.into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect::<Vec<_>>()
        };
        let resolve = |arg: &str, pairs: Vec<(&str, String)>| {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Shard::resolve(arg.parse().unwrap(), env(&pairs))
        };
        // slurm/N: the id only
        let s = resolve("slurm/6", task("3", &[("SLURM_RESTART_COUNT", "2")])).unwrap();
        assert_eq!((s.index, s.count), (3, 6));
        let t = s.slurm.unwrap();
        assert_eq!(
            (t.array_job_id.as_str(), t.job_id.as_str(), t.restart_count),
            ("40", "43", 2)
        );
        assert_eq!(
            resolve("slurm/6", task("6", &[])),
            Err(ShardError::TaskOutOfRange { index: 6, count: 6 })
        );
        // slurm: a dense array 0..N-1
        let dense = [
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "6"),
        ];
        let s = resolve("slurm", task("4", &dense)).unwrap();
        assert_eq!((s.index, s.count), (4, 6));
        // without SLURM_ARRAY_TASK_COUNT: MIN/MAX
        let s = resolve("slurm", task("4", &dense[..2])).unwrap();
        assert_eq!((s.index, s.count), (4, 6));
        // tasks 3 and 5 resubmitted: the shape does not give N
        let sparse = [
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ];
        let e = resolve("slurm", task("3", &sparse)).unwrap_err();
        assert!(e.to_string().contains("--shard slurm/N"), "{e}");
        // outside an array
        let e = Shard::resolve(ShardArg::Slurm(None), env(&[])).unwrap_err();
        assert_eq!(
            e,
            ShardError::NotInArray {
                var: "SLURM_ARRAY_TASK_ID"
            }
        );
        assert!(e.to_string().contains("not a task of a Slurm job array"));
        let e = resolve("slurm/2", task("x", &[])).unwrap_err();
        assert!(matches!(e, ShardError::BadVar { .. }), "{e}");
    }
}
