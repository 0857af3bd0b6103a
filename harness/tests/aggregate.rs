//! `aggregate.csv` against an independent computation from `summary.csv`.
//!
//! A study of four configurations (baseline, an L2 grid of two, dropout as a grid of
//! two keys, whose configuration name must keep the plan's axis order) with
//! `seeds = 4` on Fashion-MNIST (Debian's `dataset-fashion-mnist`, which has a test
//! set) is run; then this test reads `summary.csv` only, groups its rows by run name
//! without the `_seed=k` suffix (string surgery, not the library's
//! `configuration_name`), and recomputes every statistic of `aggregate.csv` in its own
//! code: two-pass mean and sample standard deviation, min, max, the 95 % Student t
//! interval with `t_{0.975, 3}` from a printed table (not statrs), and the paired
//! differences of test accuracy matched by the `seed` column, with their verdicts. The
//! reference is the default (`baseline`), then `l2_l2=0.01` chosen.

use std::collections::BTreeMap;
use std::path::Path;

use regulab::config;
use regulab::run::{self, Progress, RunOptions};

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// `t_{0.975, 3}`, from a statistics table (two-sided 95 %, 3 degrees of freedom).
const T_975_DF3: f64 = 3.182_446_305_284_263;

const METRICS: [&str; 4] = [
    "final_train_acc",
    "final_valid_acc",
    "test_acc",
    "best_valid_acc",
];

type Row = BTreeMap<String, String>;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Row>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

/// (mean, sd, min, max, ci_low, ci_high) of four values, computed here.
fn stats4(xs: &[f64]) -> [f64; 6] {
    assert_eq!(xs.len(), 4, "four seeds");
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    let min = xs.iter().cloned().fold(f64::MAX, f64::min);
    let max = xs.iter().cloned().fold(f64::MIN, f64::max);
    let half = T_975_DF3 * sd / n.sqrt();
    [mean, sd, min, max, mean - half, mean + half]
}

fn close(what: &str, got: &str, want: f64) {
    let got: f64 = got
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {got:?} is not a number"));
    let tol = 1e-12 + 1e-9 * want.abs();
    assert!(
        (got - want).abs() <= tol,
        "{what}: aggregate.csv {got}, recomputed {want}"
    );
}

/// Check every row of `aggregate` (header, rows) against `summary` with `reference`.
fn check(summary: &[Row], header: &[String], aggregate: &[Row], reference: &str) {
    let strip = |run: &str| match run.rsplit_once("_seed=") {
        Some((base, k)) if k.chars().all(|c| c.is_ascii_digit()) => base.to_string(),
        _ => run.to_string(),
    };
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in summary {
        let c = strip(&row["run"]);
        match groups.iter_mut().find(|(name, _)| *name == c) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((c, vec![row])),
        }
    }
    assert_eq!(groups.len(), 4);
    let configs: Vec<&str> = aggregate.iter().map(|r| r["config"].as_str()).collect();
    let names: Vec<&str> = groups.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(configs, names, "one row per configuration, in plan order");
    let test_of = |rows: &[&Row]| -> BTreeMap<String, f64> {
        rows.iter()
            .map(|r| (r["seed"].clone(), r["test_acc"].parse().unwrap()))
            .collect()
    };
    let reference_rows = &groups.iter().find(|(c, _)| c == reference).unwrap().1;
    let reference_test = test_of(reference_rows);
    for ((config, rows), agg) in groups.iter().zip(aggregate) {
        assert_eq!(agg["n_seeds"], "4", "{config}");
        assert_eq!(agg["n_diverged"], "0", "{config}");
        assert_eq!(agg["experiment"], rows[0]["experiment"]);
        assert_eq!(
            agg["reg.l2"], rows[0]["reg.l2"],
            "{config}: the hyperparameter"
        );
        for m in METRICS {
            let xs: Vec<f64> = rows.iter().map(|r| r[m].parse().unwrap()).collect();
            let want = stats4(&xs);
            for (suffix, w) in ["mean", "sd", "min", "max", "ci_low", "ci_high"]
                .iter()
                .zip(want)
            {
                let col = format!("{m}_{suffix}");
                close(&format!("{config} {col}"), &agg[&col], w);
            }
        }
        assert_eq!(agg["reference"], reference);
        if config == reference {
            assert_eq!(agg["verdict"], "reference");
            for col in ["compared_on", "n_pairs", "diff_mean", "diff_ci_low"] {
                assert_eq!(agg[col], "", "{config} {col}");
            }
            continue;
        }
        assert_eq!(agg["compared_on"], "test_acc");
        assert_eq!(agg["n_pairs"], "4");
        let test = test_of(rows);
        let diffs: Vec<f64> = test
            .iter()
            .map(|(seed, x)| x - reference_test[seed])
            .collect();
        let d = stats4(&diffs);
        for (suffix, w) in ["mean", "sd", "min", "max", "ci_low", "ci_high"]
            .iter()
            .zip(d)
        {
            let col = format!("diff_{suffix}");
            close(&format!("{config} {col}"), &agg[&col], w);
        }
        let verdict = if d[4] > 0.0 {
            "better"
        } else if d[5] < 0.0 {
            "worse"
        } else {
            "no detectable difference"
        };
        assert_eq!(agg["verdict"], verdict, "{config}");
    }
    assert_eq!(header.last().map(String::as_str), Some("verdict"));
}

#[test]
fn aggregate_csv_equals_an_independent_computation_from_summary_csv() {
    let text = r#"
name = "aggregate"
seed = 3
seeds = 4
epochs = 2
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 300
validation = 500
[model]
hidden = [16]
[experiments.baseline]
[experiments.l2]
reg.l2 = [1e-3, 1e-2]
[experiments.dropout]
reg.keep_input = [0.8]
reg.keep_hidden = [0.5]
"#;
    let plan = config::parse(text, "aggregate.toml", "aggregate", &[]).unwrap();
    assert_eq!(plan.runs.len(), 16);
    let data = run::load_datasets(&plan, Some(Path::new(FASHION))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let opts = RunOptions {
        out: out.clone(),
        threads: 1,
        jobs: 2,
        progress: Progress::Quiet,
        resume: false,
        halt_after_epoch: None,
    };
    run::execute(&plan, &data, &opts).unwrap();
    let (_, summary) = read_csv(&out.join("summary.csv"));
    let (header, aggregate) = read_csv(&out.join("aggregate.csv"));
    // the columns the README documents, in order
    let mut expected = vec![
        "config",
        "experiment",
        "n_seeds",
        "n_diverged",
        "reg.l2",
        "reg.keep_input",
        "reg.keep_hidden",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for m in METRICS {
        for s in ["mean", "sd", "min", "max", "ci_low", "ci_high"] {
            expected.push(format!("{m}_{s}"));
        }
    }
    for c in [
        "reference",
        "compared_on",
        "n_pairs",
        "diff_mean",
        "diff_sd",
        "diff_min",
        "diff_max",
        "diff_ci_low",
        "diff_ci_high",
        "verdict",
    ] {
        expected.push(c.into());
    }
    assert_eq!(header, expected);
    check(&summary, &header, &aggregate, "baseline");

    // another reference, chosen by the config's key: the same runs, compared with it
    let sets = vec![config::parse_set("reference=l2_l2=0.01").unwrap()];
    let chosen = config::parse(text, "aggregate.toml", "aggregate", &sets).unwrap();
    assert_eq!(chosen.runs, plan.runs);
    let opts = RunOptions {
        resume: true,
        ..opts
    };
    run::execute(&chosen, &data, &opts).unwrap();
    let (header, aggregate) = read_csv(&out.join("aggregate.csv"));
    check(&summary, &header, &aggregate, "l2_l2=0.01");
}
