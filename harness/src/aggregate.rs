//! Statistics across seeds: `aggregate.csv`, one row per configuration, and the paired
//! comparison of every configuration with a reference.
//!
//! A *configuration* is a run of the plan without its seed
//! ([`crate::config::configuration_name`]: `l2_l2=1e-5` for the runs
//! `l2_l2=1e-5_seed=1`, `l2_l2=1e-5_seed=2`, ...): the runs of one configuration differ
//! only in their seed (`seeds = N`, or a grid over `seed`). From
//! each run this module takes four results ([`METRICS`]: final training, final
//! validation and test accuracy, best validation accuracy) and computes, per
//! configuration and metric, over its `n` runs `x_1 .. x_n` (in plan order):
//!
//! ```text
//! mean  = (x_1 + ... + x_n) / n
//! sd    = sqrt( sum_i (x_i - mean)^2 / (n - 1) )            (sample standard deviation)
//! min, max
//! 95 % CI of the mean = mean -+ t_{0.975, n-1} * sd / sqrt(n)   (Student t)
//! ```
//!
//! with `t_{0.975, n-1}` from [`statrs`]' Student t distribution. With `n = 1` there is
//! no spread: `sd` and the interval are empty cells. A metric a run does not have (no
//! test set, no validation split), or has as a non-finite number, leaves that metric's
//! cells of its configuration empty: statistics over some of the seeds only would be
//! biased, so none are given.
//!
//! **Paired comparison.** Runs with the same seed share their initial weights, training
//! pool, shuffles and dropout masks (wherever the architectures allow), so a
//! configuration is compared with the reference seed by seed: for every seed both have,
//! `d_s = x_s - r_s` of the compared metric, and over the `m` pairs the mean, sd, min,
//! max and the 95 % t interval of the mean difference as above (`m - 1` degrees of
//! freedom). The compared metric is the test accuracy; when the runs have no test set
//! (`data.test_file = "none"`) it is the final validation accuracy, and the
//! `compared_on` column says which. The verdict, at 95 %:
//!
//! | verdict | when |
//! | --- | --- |
//! | `better` | `m >= 2` and the interval lies above 0 (`ci_low > 0`) |
//! | `worse` | `m >= 2` and the interval lies below 0 (`ci_high < 0`) |
//! | `no detectable difference` | `m >= 2` and the interval contains 0 |
//! | `n/a` | fewer than 2 pairs (one seed, no reference, or no common seed) |
//! | `reference` | the reference configuration itself |
//!
//! With zero spread (every pair gives the same difference) the interval is the single
//! point `mean`: `better` or `worse` when that is not 0. This is a per-comparison test
//! at 95 %; with many configurations some verdicts are expected by chance (one in 20
//! among configurations that truly do not differ), which the report says.
//!
//! The reference is the configuration named by the config's `reference` key, else the
//! configuration `baseline` when the plan has one; without either, there is no
//! comparison (`n/a`).
//!
//! Length: about 570 lines of documented code and 220 of unit tests, which check the
//! statistics against values computed by hand and a published t table, where the
//! formulas are written.

use std::fmt::Write as _;

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The results aggregated per configuration, as `summary.csv` names them.
pub const METRICS: [&str; 4] = [
    "final_train_acc",
    "final_valid_acc",
    "test_acc",
    "best_valid_acc",
];

/// Index of `test_acc` in [`METRICS`].
const TEST: usize = 2;
/// Index of `final_valid_acc` in [`METRICS`].
const VALID: usize = 1;
/// Index of `best_valid_acc` in [`METRICS`].
const BEST_VALID: usize = 3;

/// The per-metric statistics columns, after the metric's name (`test_acc_mean`, ...).
pub const STAT_SUFFIXES: [&str; 6] = ["mean", "sd", "min", "max", "ci_low", "ci_high"];

/// The columns of the paired comparison, after the per-metric columns.
pub const COMPARISON_COLUMNS: [&str; 9] = [
    "reference",
    "compared_on",
    "n_pairs",
    "diff_mean",
    "diff_sd",
    "diff_min",
    "diff_max",
    "diff_ci_low",
    "diff_ci_high",
];

/// One run's results (a row of `summary.csv`).
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRun {
    /// The configuration: the run's name without its seed (see the module docs).
    pub config: String,
    /// The experiment.
    pub experiment: String,
    /// The run's seed (runs of two configurations with the same seed are paired).
    pub seed: u64,
    /// Whether the run diverged (it counts, with the accuracies it reached).
    pub diverged: bool,
    /// The values of [`METRICS`], in that order (`None`: the run has no such result).
    pub values: [Option<f64>; 4],
    /// Hyperparameter values, one per column the caller names (carried to the
    /// configuration's row from its first run).
    pub params: Vec<String>,
}

/// Mean, spread and interval of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Sample size.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (`n - 1` denominator); `None` for `n = 1`.
    pub sd: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 95 % Student t interval of the mean; `None` for `n = 1`.
    pub ci: Option<(f64, f64)>,
}

/// `t_{0.975, df}`: the two-sided 95 % quantile of Student's t with `df >= 1` degrees
/// of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    let t = StudentsT::new(0.0, 1.0, df as f64).expect("df >= 1 is a valid t distribution");
    t.inverse_cdf(0.975)
}

/// The statistics of `xs` (in the given order); `None` for an empty sample.
pub fn stats(xs: &[f64]) -> Option<Stats> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (sd, ci) = if n >= 2 {
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        let sd = (ss / (n - 1) as f64).sqrt();
        let half = t_quantile_975(n - 1) * sd / (n as f64).sqrt();
        (Some(sd), Some((mean - half, mean + half)))
    } else {
        (None, None)
    };
    Some(Stats {
        n,
        mean,
        sd,
        min,
        max,
        ci,
    })
}

/// The verdict of a configuration against the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The reference itself.
    Reference,
    /// The 95 % interval of the mean paired difference lies above 0.
    Better,
    /// The interval lies below 0.
    Worse,
    /// The interval contains 0.
    NoDetectableDifference,
    /// Fewer than two pairs.
    NotAvailable,
}

impl Verdict {
    /// The `verdict` cell.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reference => "reference",
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoDetectableDifference => "no detectable difference",
            Verdict::NotAvailable => "n/a",
        }
    }

    /// The verdict of paired differences with statistics `d` (see the module docs).
    pub fn of(d: Option<&Stats>) -> Verdict {
        match d.and_then(|d| d.ci) {
            Some((lo, _)) if lo > 0.0 => Verdict::Better,
            Some((_, hi)) if hi < 0.0 => Verdict::Worse,
            Some(_) => Verdict::NoDetectableDifference,
            None => Verdict::NotAvailable,
        }
    }
}

/// One configuration's row of `aggregate.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigRow {
    /// The configuration.
    pub config: String,
    /// Its experiment.
    pub experiment: String,
    /// Its hyperparameters (from its first run).
    pub params: Vec<String>,
    /// Its seeds, in plan order.
    pub seeds: Vec<u64>,
    /// How many of its runs diverged.
    pub diverged: usize,
    /// Statistics of each of [`METRICS`] (`None`: some run lacks the metric).
    pub metrics: [Option<Stats>; 4],
    /// Statistics of the paired differences against the reference (`None`: no pair,
    /// or this is the reference).
    pub diff: Option<Stats>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The aggregate of a study.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// The hyperparameter column names of [`ConfigRow::params`].
    pub param_names: Vec<String>,
    /// The reference configuration, if any.
    pub reference: Option<String>,
    /// The metric compared (`test_acc`, or `final_valid_acc` without a test set).
    pub compared_on: &'static str,
    /// One row per configuration, in order of first appearance.
    pub rows: Vec<ConfigRow>,
}

/// The configuration used as reference: `chosen` (the config's `reference` key) if
/// given, else `baseline` when some run belongs to that configuration.
pub fn reference_of<'a>(runs: &'a [SeedRun], chosen: Option<&'a str>) -> Option<&'a str> {
    match chosen {
        Some(c) => Some(c),
        None => runs
            .iter()
            .find(|r| r.config == "baseline")
            .map(|r| r.config.as_str()),
    }
}

/// Aggregate `runs` per configuration and compare each with the reference
/// ([`reference_of`]). `param_names` names the runs' `params`.
pub fn aggregate(runs: &[SeedRun], param_names: &[String], chosen: Option<&str>) -> Aggregate {
    let mut configs: Vec<&str> = Vec::new();
    for r in runs {
        if !configs.contains(&r.config.as_str()) {
            configs.push(&r.config);
        }
    }
    fn of<'a>(runs: &'a [SeedRun], c: &'a str) -> impl Iterator<Item = &'a SeedRun> + 'a {
        runs.iter().filter(move |r| r.config == c)
    }
    // runs with a test result: compare on test accuracy
    let compared = if runs.iter().any(|r| r.values[TEST].is_some()) {
        TEST
    } else {
        VALID
    };
    let value = |r: &SeedRun, m: usize| r.values[m].filter(|v| v.is_finite());
    let reference = reference_of(runs, chosen).filter(|c| configs.contains(c));
    let rows = configs
        .iter()
        .map(|&c| {
            let first = of(runs, c).next().expect("a configuration has a run");
            let metrics = std::array::from_fn(|m| {
                let xs: Option<Vec<f64>> = of(runs, c).map(|r| value(r, m)).collect();
                xs.and_then(|xs| stats(&xs))
            });
            let (diff, verdict) = match reference {
                Some(rc) if rc == c => (None, Verdict::Reference),
                Some(rc) => {
                    let ds: Vec<f64> = of(runs, c)
                        .filter_map(|r| {
                            let x = value(r, compared)?;
                            let base = of(runs, rc).find(|b| b.seed == r.seed)?;
                            Some(x - value(base, compared)?)
                        })
                        .collect();
                    let d = stats(&ds);
                    let v = Verdict::of(d.as_ref());
                    (d, v)
                }
                None => (None, Verdict::NotAvailable),
            };
            ConfigRow {
                config: c.to_string(),
                experiment: first.experiment.clone(),
                params: first.params.clone(),
                seeds: of(runs, c).map(|r| r.seed).collect(),
                diverged: of(runs, c).filter(|r| r.diverged).count(),
                metrics,
                diff,
                verdict,
            }
        })
        .collect();
    Aggregate {
        param_names: param_names.to_vec(),
        reference: reference.map(str::to_string),
        compared_on: METRICS[compared],
        rows,
    }
}

/// The header of `aggregate.csv`: `config, experiment, n_seeds, n_diverged`, the
/// hyperparameters, `<metric>_<stat>` for every metric and [`STAT_SUFFIXES`], the
/// [`COMPARISON_COLUMNS`] and `verdict`.
pub fn header(agg: &Aggregate) -> Vec<String> {
    let mut h: Vec<String> = ["config", "experiment", "n_seeds", "n_diverged"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    h.extend(agg.param_names.iter().cloned());
    for m in METRICS {
        for s in STAT_SUFFIXES {
            h.push(format!("{m}_{s}"));
        }
    }
    h.extend(COMPARISON_COLUMNS.iter().map(|s| s.to_string()));
    h.push("verdict".into());
    h
}

/// The cells of `s` in [`STAT_SUFFIXES`] order (Rust's shortest round-trip form; empty
/// where there is no value).
fn stat_cells(s: Option<&Stats>) -> [String; 6] {
    let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    [
        f(s.map(|s| s.mean)),
        f(s.and_then(|s| s.sd)),
        f(s.map(|s| s.min)),
        f(s.map(|s| s.max)),
        f(s.and_then(|s| s.ci).map(|c| c.0)),
        f(s.and_then(|s| s.ci).map(|c| c.1)),
    ]
}

/// One row of `aggregate.csv`, in [`header`] order.
pub fn csv_row(agg: &Aggregate, row: &ConfigRow) -> Vec<String> {
    let mut cells = vec![
        row.config.clone(),
        row.experiment.clone(),
        row.seeds.len().to_string(),
        row.diverged.to_string(),
    ];
    cells.extend(row.params.iter().cloned());
    for m in &row.metrics {
        cells.extend(stat_cells(m.as_ref()));
    }
    let compared = agg.reference.is_some() && row.verdict != Verdict::Reference;
    cells.push(agg.reference.clone().unwrap_or_default());
    cells.push(if compared {
        agg.compared_on.to_string()
    } else {
        String::new()
    });
    cells.push(if compared {
        row.diff.map_or(0, |d| d.n).to_string()
    } else {
        String::new()
    });
    let [mean, sd, min, max, lo, hi] = stat_cells(row.diff.as_ref());
    cells.extend([mean, sd, min, max, lo, hi]);
    cells.push(row.verdict.as_str().to_string());
    cells
}

/// `aggregate.csv` as bytes.
pub fn aggregate_csv(agg: &Aggregate) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(agg))?;
    for row in &agg.rows {
        w.write_record(csv_row(agg, row))?;
    }
    w.into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// The headings of [`display_rows`], for a study compared on `compared_on` against
/// `reference`.
pub fn display_header(agg: &Aggregate) -> [String; 7] {
    let metric = metric_words(agg.compared_on);
    [
        "configuration".into(),
        "seeds".into(),
        format!("{metric} (%) mean ± sd"),
        "95 % CI of the mean".into(),
        "best valid acc (%) mean".into(),
        match &agg.reference {
            Some(r) => format!("paired difference vs {r} (points) [95 % CI]"),
            None => "paired difference (points)".into(),
        },
        "verdict".into(),
    ]
}

/// The aggregate as a table to read (the end of `regulab run`, the report): per
/// configuration its seeds, the compared metric's mean ± sd and interval (in %), the
/// best validation accuracy's mean, the paired difference with its interval (in
/// percentage points) and the verdict; `-` where there is no value.
pub fn display_rows(agg: &Aggregate) -> Vec<[String; 7]> {
    let compared = METRICS
        .iter()
        .position(|m| *m == agg.compared_on)
        .unwrap_or(TEST);
    let pct = |v: f64| format!("{:.2}", 100.0 * v);
    agg.rows
        .iter()
        .map(|r| {
            let m = r.metrics[compared].as_ref();
            let mean_sd = match m {
                Some(s) => match s.sd {
                    Some(sd) => format!("{} ± {}", pct(s.mean), pct(sd)),
                    None => pct(s.mean),
                },
                None => "-".into(),
            };
            let ci = m.and_then(|s| s.ci).map_or_else(
                || "-".into(),
                |(lo, hi)| format!("[{}, {}]", pct(lo), pct(hi)),
            );
            let best = r.metrics[BEST_VALID]
                .as_ref()
                .map_or_else(|| "-".into(), |s| pct(s.mean));
            let diff = match (&r.diff, r.verdict) {
                (_, Verdict::Reference) => "-".into(),
                (Some(d), _) => match d.ci {
                    Some((lo, hi)) => {
                        format!("{} [{}, {}]", points(d.mean), points(lo), points(hi))
                    }
                    None => points(d.mean),
                },
                (None, _) => "-".into(),
            };
            [
                r.config.clone(),
                r.seeds.len().to_string(),
                mean_sd,
                ci,
                best,
                diff,
                r.verdict.as_str().to_string(),
            ]
        })
        .collect()
}

/// [`display_rows`] as aligned text, then [`verdict_sentence`] (when there is one).
pub fn text_table(agg: &Aggregate) -> String {
    let header = display_header(agg);
    let rows = display_rows(agg);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 7]| -> String {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            if i == 0 || i == 6 {
                l.push_str(c);
                l.push_str(&pad);
            } else {
                l.push_str(&pad);
                l.push_str(c);
            }
            l.push_str("  ");
        }
        l.trim_end().to_string() + "\n"
    };
    let mut s = line(&header);
    for r in &rows {
        s.push_str(&line(r));
    }
    let words = verdict_sentence(agg);
    if !words.is_empty() {
        s.push_str(&words);
        s.push('\n');
    }
    s
}

/// A signed difference of fractions in percentage points: `+1.23`.
fn points(v: f64) -> String {
    format!("{:+.2}", 100.0 * v)
}

/// The metric in words.
fn metric_words(m: &str) -> &'static str {
    match m {
        "test_acc" => "test accuracy",
        "final_valid_acc" => "final validation accuracy",
        "final_train_acc" => "final training accuracy",
        _ => "best validation accuracy",
    }
}

/// In words: which configurations were better, worse or not detectably different from
/// the reference, with their mean paired differences and intervals. Empty when there is
/// no reference or no verdict.
pub fn verdict_sentence(agg: &Aggregate) -> String {
    let Some(reference) = &agg.reference else {
        return String::new();
    };
    let list = |v: Verdict| -> Vec<String> {
        agg.rows
            .iter()
            .filter(|r| r.verdict == v)
            .filter_map(|r| {
                let d = r.diff?;
                let (lo, hi) = d.ci?;
                Some(format!(
                    "{} ({} points, 95 % CI {} to {})",
                    r.config,
                    points(d.mean),
                    points(lo),
                    points(hi)
                ))
            })
            .collect()
    };
    let better = list(Verdict::Better);
    let worse = list(Verdict::Worse);
    let same = list(Verdict::NoDetectableDifference);
    if better.is_empty() && worse.is_empty() && same.is_empty() {
        return format!(
            "No configuration could be compared with {reference}: that needs at least two \
             seeds both have."
        );
    }
    let pairs = agg
        .rows
        .iter()
        .filter_map(|r| r.diff.map(|d| d.n))
        .max()
        .unwrap_or(0);
    let mut s = format!(
        "Against {reference}, on {} paired by seed (up to {pairs} seeds, 95 % Student t \
         intervals of the mean difference): ",
        metric_words(agg.compared_on)
    );
    let mut parts = Vec::new();
    if !better.is_empty() {
        parts.push(format!("better: {}", better.join("; ")));
    }
    if !worse.is_empty() {
        parts.push(format!("worse: {}", worse.join("; ")));
    }
    if !same.is_empty() {
        parts.push(format!("no detectable difference: {}", same.join("; ")));
    }
    let _ = write!(s, "{}.", parts.join(". "));
    if better.is_empty() {
        s.push_str(" No regulariser helped detectably.");
    } else {
        let names: Vec<&str> = agg
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Better)
            .map(|r| r.config.as_str())
            .collect();
        let _ = write!(s, " Helped: {}.", names.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: &str, seed: u64, test: Option<f64>) -> SeedRun {
        SeedRun {
            config: config.into(),
            experiment: config.split('_').next().unwrap().into(),
            seed,
            diverged: false,
            values: [Some(0.9), Some(0.8), test, Some(0.85)],
            params: vec![],
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }

    /// Published two-sided 95 % t quantiles (any statistics table), to 6 decimals.
    #[test]
    fn t_quantiles_match_the_table() {
        let table = [
            (1, 12.706205),
            (2, 4.302653),
            (3, 3.182446),
            (4, 2.776445),
            (9, 2.262157),
            (29, 2.045230),
        ];
        for (df, t) in table {
            assert!((t_quantile_975(df) - t).abs() < 1e-6, "df {df}");
        }
    }

    /// x = 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), CI 2.5 -+ 3.182446 * sqrt(5/3) / 2.
    #[test]
    fn stats_by_hand() {
        let s = stats(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.n, 4);
        assert_eq!(s.mean, 2.5);
        close(s.sd.unwrap(), (5.0f64 / 3.0).sqrt());
        assert_eq!((s.min, s.max), (1.0, 4.0));
        let half = 3.182446 * (5.0f64 / 3.0).sqrt() / 2.0; // 2.05426...
        let (lo, hi) = s.ci.unwrap();
        assert!((lo - (2.5 - half)).abs() < 1e-6 && (hi - (2.5 + half)).abs() < 1e-6);
        assert!((lo - 0.445740).abs() < 1e-6, "{lo}");
        // n = 1: no spread, no interval
        let one = stats(&[0.7]).unwrap();
        assert_eq!((one.mean, one.min, one.max), (0.7, 0.7, 0.7));
        assert_eq!((one.sd, one.ci), (None, None));
        // zero variance: a point interval
        let flat = stats(&[0.5, 0.5, 0.5]).unwrap();
        assert_eq!(flat.sd, Some(0.0));
        assert_eq!(flat.ci, Some((0.5, 0.5)));
        assert!(stats(&[]).is_none());
    }

    #[test]
    fn paired_differences_and_verdicts() {
        // reference r = (0.80, 0.82, 0.84); a = r + (0.02, 0.03, 0.01): mean 0.02, sd 0.01,
        // CI 0.02 -+ 4.302653 * 0.01 / sqrt(3) = [-0.00484, 0.04484]: no detectable
        // difference; b = r + 0.01 exactly: better (zero spread); c = r - (0.03, 0.04,
        // 0.035): worse; d has one seed: n/a.
        let mut runs = Vec::new();
        for (s, r) in [(1, 0.80), (2, 0.82), (3, 0.84)] {
            runs.push(run("baseline", s, Some(r)));
        }
        for (s, d) in [(1, 0.02), (2, 0.03), (3, 0.01)] {
            runs.push(run(
                "a",
                s,
                Some(runs[s as usize - 1].values[TEST].unwrap() + d),
            ));
        }
        for s in 1..=3u64 {
            let r = runs[s as usize - 1].values[TEST].unwrap();
            runs.push(run("b", s, Some(r + 0.01)));
        }
        for (s, d) in [(1, 0.03), (2, 0.04), (3, 0.035)] {
            let r = runs[s as usize - 1].values[TEST].unwrap();
            runs.push(run("c", s, Some(r - d)));
        }
        runs.push(run("d", 2, Some(0.9)));
        let agg = aggregate(&runs, &[], None);
        assert_eq!(agg.reference.as_deref(), Some("baseline"));
        assert_eq!(agg.compared_on, "test_acc");
        let row = |c: &str| agg.rows.iter().find(|r| r.config == c).unwrap();
        assert_eq!(row("baseline").verdict, Verdict::Reference);
        let a = row("a");
        let d = a.diff.unwrap();
        assert_eq!(d.n, 3);
        close(d.mean, 0.02);
        assert!((d.sd.unwrap() - 0.01).abs() < 1e-12);
        let half = 4.302653 * 0.01 / 3f64.sqrt();
        assert!((d.ci.unwrap().0 - (0.02 - half)).abs() < 1e-6);
        assert_eq!(a.verdict, Verdict::NoDetectableDifference);
        // b: differences equal up to rounding of x - r; the interval is (about) a point
        let b = row("b");
        assert_eq!(b.verdict, Verdict::Better);
        assert!(b.diff.unwrap().sd.unwrap() < 1e-15);
        assert_eq!(row("c").verdict, Verdict::Worse);
        let dr = row("d");
        assert_eq!(dr.diff.unwrap().n, 1);
        assert_eq!(dr.verdict, Verdict::NotAvailable);
        assert_eq!(dr.metrics[TEST].unwrap().sd, None);

        let text = String::from_utf8(aggregate_csv(&agg).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].starts_with("config,experiment,n_seeds,n_diverged,final_train_acc_mean,"));
        assert!(lines[0].ends_with(
            ",reference,compared_on,n_pairs,diff_mean,diff_sd,diff_min,diff_max,diff_ci_low,diff_ci_high,verdict"
        ));
        assert!(
            lines[1].starts_with("baseline,baseline,3,0,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(",baseline,,,,,,,,,reference"),
            "{}",
            lines[1]
        );
        assert!(lines[5].ends_with(",n/a"), "{}", lines[5]);
        assert!(lines[3].ends_with(",better"));

        let table = text_table(&agg);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("configuration  seeds  test accuracy (%) mean ± sd"));
        assert!(lines[0].contains("paired difference vs baseline (points) [95 % CI]"));
        // baseline: 80, 82, 84 -> mean 82.00, sd 2.00, CI 82 -+ 4.302653 * 2 / sqrt(3)
        assert!(
            lines[1].starts_with("baseline")
                && lines[1].contains("82.00 ± 2.00")
                && lines[1].contains("[77.03, 86.97]")
                && lines[1].ends_with("reference"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("+2.00 [-0.48, +4.48]"), "{}", lines[2]);
        assert!(lines[2].ends_with("no detectable difference"));
        assert!(
            lines[5].starts_with("d ") && lines[5].ends_with("n/a"),
            "{}",
            lines[5]
        );
        assert_eq!(lines[6], verdict_sentence(&agg));
        let words = verdict_sentence(&agg);
        assert!(words.contains("better: b (+1.00 points"), "{words}");
        assert!(words.contains("worse: c (-3.50 points"), "{words}");
        assert!(
            words.contains("no detectable difference: a (+2.00 points"),
            "{words}"
        );
        assert!(words.ends_with("Helped: b."), "{words}");
    }

    #[test]
    fn without_test_set_the_validation_accuracy_is_compared() {
        let mut runs = Vec::new();
        for s in 1..=3u64 {
            let mut r = run("baseline", s, None);
            r.values[VALID] = Some(0.8 + s as f64 * 0.01);
            runs.push(r);
            let mut q = run("l2", s, None);
            q.values[VALID] = Some(0.85 + s as f64 * 0.01);
            runs.push(q);
        }
        let agg = aggregate(&runs, &[], None);
        assert_eq!(agg.compared_on, "final_valid_acc");
        assert_eq!(agg.rows[1].verdict, Verdict::Better);
        assert!(agg.rows[1].metrics[TEST].is_none(), "no test statistics");
        let csv = String::from_utf8(aggregate_csv(&agg).unwrap()).unwrap();
        assert!(
            csv.lines()
                .nth(2)
                .unwrap()
                .contains(",baseline,final_valid_acc,3,")
        );
    }

    #[test]
    fn reference_choice_and_missing_reference() {
        let runs = vec![
            run("x", 1, Some(0.5)),
            run("x", 2, Some(0.6)),
            run("y", 1, Some(0.7)),
            run("y", 2, Some(0.8)),
        ];
        let none = aggregate(&runs, &[], None);
        assert_eq!(none.reference, None);
        assert!(none.rows.iter().all(|r| r.verdict == Verdict::NotAvailable));
        assert_eq!(verdict_sentence(&none), "");
        let chosen = aggregate(&runs, &[], Some("x"));
        assert_eq!(chosen.rows[0].verdict, Verdict::Reference);
        // y - x = 0.2 on both seeds (up to rounding): better
        assert_eq!(chosen.rows[1].verdict, Verdict::Better);
        // a run with a missing value leaves its configuration's metric empty
        let mut gap = runs.clone();
        gap[1].values[0] = None;
        let agg = aggregate(&gap, &[], Some("x"));
        assert!(agg.rows[0].metrics[0].is_none());
        assert!(agg.rows[0].metrics[1].is_some());
        // seeds are paired by value, not position
        let shuffled = vec![
            run("x", 1, Some(0.5)),
            run("x", 2, Some(0.6)),
            run("y", 2, Some(0.8)),
            run("y", 1, Some(0.7)),
            run("z", 3, Some(0.9)),
        ];
        let agg = aggregate(&shuffled, &[], Some("x"));
        let d = agg.rows[1].diff.unwrap();
        assert!((d.mean - 0.2).abs() < 1e-12 && d.sd.unwrap() < 1e-12);
        assert!(agg.rows[2].diff.is_none(), "no common seed");
        assert_eq!(agg.rows[2].verdict, Verdict::NotAvailable);
    }
}
