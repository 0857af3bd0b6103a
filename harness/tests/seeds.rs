//! `seeds = N`: every run repeated with seeds `seed + k - 1`, each repeat an ordinary
//! run (own directory, resumable, verifiable), paired across experiments.
//!
//! * `kth_seed_pairs_init_pool_shuffles_and_masks_across_experiments`: for every `k`,
//!   the repeats of all experiments start from the same initial weights (bytes of
//!   `init.safetensors`), draw the same training pool, the same per-epoch shuffles, and
//!   (two identical dropout experiments under other names) give the same final weights;
//!   different `k` differ in all of these. `summary.csv` has the `seed` column.
//! * `repeat_one_is_the_single_seed_run`: repeat 1 of a `seeds = 3` plan trains exactly
//!   the run of the same config without `seeds` (same numbers, same weights).
//! * `repeats_resume_and_verify`: a plan of repeats stopped after its first epoch and
//!   resumed gives the files of one that never stopped; a repeat verifies, and so does
//!   the sweep with its `aggregate.csv` (a changed number in it is found).

use std::path::{Path, PathBuf};

use regulab::config::{self, Plan};
use regulab::data::load::split_spec;
use regulab::run::{self, DataSets, Progress, RunOptions};
use regulab::verify::{VerifyOptions, compare_run_dirs, verify_path, verify_run};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("the repository's data/mnist exists")
}

/// A small study on the MNIST test set with `seeds` (a line of TOML, or nothing).
fn config_text(seeds: &str) -> String {
    format!(
        r#"
name = "seeds"
seed = 41
{seeds}
epochs = 2
batch_size = 10
[data]
dataset = "{}"
train_file = "t10k"
test_file = "none"
range = [0, 3000]
validation = 500
train_examples = 300
[model]
hidden = [16]
[experiments.baseline]
[experiments.l2]
reg.l2 = 1e-3
[experiments.dropout]
reg.keep_input = 0.8
reg.keep_hidden = 0.5
[experiments.dropout_again]
reg.keep_input = 0.8
reg.keep_hidden = 0.5
"#,
        mnist_dir().display()
    )
}

fn plan_of(text: &str) -> Plan {
    config::parse(text, "seeds.toml", "seeds", &[]).unwrap()
}

fn options(out: PathBuf) -> RunOptions {
    RunOptions {
        out,
        threads: 1,
        jobs: 2,
        progress: Progress::Quiet,
        resume: false,
        halt_after_epoch: None,
    }
}

fn execute(plan: &Plan, data: &DataSets, out: &Path) -> Vec<run::RunOutcome> {
    run::execute(plan, data, &options(out.to_path_buf())).unwrap()
}

/// `epochs.csv` of a run without its `run` column and the timing columns.
fn epochs_numbers(run_dir: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(run_dir.join("epochs.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| &header[i] != "run" && !run::TIMING_COLUMNS.contains(&&header[i]))
        .collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            keep.iter().map(|&i| rec[i].to_string()).collect()
        })
        .collect()
}

#[test]
fn kth_seed_pairs_init_pool_shuffles_and_masks_across_experiments() {
    let plan = plan_of(&config_text("seeds = 3"));
    assert_eq!(plan.runs.len(), 12);
    let data = run::load_datasets(&plan, None).unwrap();
    let dataset = data.values().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let outcomes = execute(&plan, &data, &out);
    let experiments = ["baseline", "l2", "dropout", "dropout_again"];
    let run_of = |exp: &str, k: u32| {
        let name = format!("{exp}_seed={k}");
        outcomes
            .iter()
            .find(|o| o.spec.name == name)
            .unwrap_or_else(|| panic!("no run {name}"))
    };
    let mut inits = Vec::new();
    let mut pools = Vec::new();
    for k in 1..=3u32 {
        let seed = 41 + u64::from(k) - 1;
        let init = std::fs::read(out.join(format!("baseline_seed={k}/init.safetensors"))).unwrap();
        let first = run_of("baseline", k);
        let splits = dataset
            .splits(&split_spec(&first.spec.config), first.spec.config.seed)
            .unwrap();
        let shuffle = |s: &regulab::data::Splits, epoch: u64| {
            let mut order = s.pool().to_vec();
            s.shuffle_into(epoch, &mut order).unwrap();
            order
        };
        for exp in experiments {
            let r = run_of(exp, k);
            assert_eq!(r.spec.config.seed, seed, "{exp} repeat {k}");
            let dir = out.join(&r.spec.name);
            assert_eq!(
                std::fs::read(dir.join("init.safetensors")).unwrap(),
                init,
                "{exp} repeat {k}: another initialisation"
            );
            let s = dataset
                .splits(&split_spec(&r.spec.config), r.spec.config.seed)
                .unwrap();
            assert_eq!(s.pool(), splits.pool(), "{exp} repeat {k}: another pool");
            for epoch in 1..=2 {
                assert_eq!(
                    shuffle(&s, epoch),
                    shuffle(&splits, epoch),
                    "{exp} {k} {epoch}"
                );
            }
            // epoch 0 evaluates the same untrained net on the same pool and split
            // (train_nll, train_acc, valid_nll, valid_acc; the penalty differs for l2)
            let row0 = &epochs_numbers(&dir)[0];
            let base0 = &epochs_numbers(&out.join(&first.spec.name))[0];
            for col in [3, 5, 7, 8] {
                assert_eq!(
                    row0[col], base0[col],
                    "{exp} repeat {k}: epoch 0 column {col}"
                );
            }
        }
        // same seed, same config under another name: the same run (masks and shuffles)
        assert_eq!(
            run_of("dropout", k).digest,
            run_of("dropout_again", k).digest
        );
        assert_ne!(run_of("dropout", k).digest, run_of("baseline", k).digest);
        inits.push(init);
        pools.push(splits.pool().to_vec());
    }
    // different repeats differ
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert_ne!(inits[a], inits[b], "repeats {a} and {b} share an init");
        assert_ne!(pools[a], pools[b], "repeats {a} and {b} share a pool");
        assert_ne!(
            run_of("dropout", a as u32 + 1).digest,
            run_of("dropout", b as u32 + 1).digest
        );
    }
    // summary.csv: one row per repeat, with its seed
    let mut r = csv::Reader::from_path(out.join("summary.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    assert_eq!(&header[2], "seed");
    let rows: Vec<(String, String)> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].to_string(), rec[2].to_string())
        })
        .collect();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0], ("baseline_seed=1".to_string(), "41".to_string()));
    assert_eq!(rows[5], ("l2_seed=3".to_string(), "43".to_string()));
}

#[test]
fn repeat_one_is_the_single_seed_run() {
    let repeated = plan_of(&config_text("seeds = 3"));
    let single = plan_of(&config_text(""));
    assert_eq!(single.runs.len(), 4);
    assert_eq!(single.runs[0].name, "baseline");
    // seeds = 1 is the plan without the key
    assert_eq!(plan_of(&config_text("seeds = 1")).runs, single.runs);
    let data = run::load_datasets(&single, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // only repeat 1 of baseline and dropout, against the single-seed runs
    let pick = |plan: &Plan, names: &[&str]| Plan {
        runs: plan
            .runs
            .iter()
            .filter(|r| names.contains(&r.name.as_str()))
            .cloned()
            .collect(),
        ..plan.clone()
    };
    let a = execute(
        &pick(&repeated, &["baseline_seed=1", "dropout_seed=1"]),
        &data,
        &dir.path().join("repeated"),
    );
    let b = execute(
        &pick(&single, &["baseline", "dropout"]),
        &data,
        &dir.path().join("single"),
    );
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.spec.config, b.spec.config);
        assert_eq!(a.digest, b.digest, "{}", a.spec.name);
        assert_eq!(
            epochs_numbers(&dir.path().join("repeated").join(&a.spec.name)),
            epochs_numbers(&dir.path().join("single").join(&b.spec.name))
        );
    }
}

#[test]
fn repeats_resume_and_verify() {
    let mut plan = plan_of(&config_text("seeds = 2"));
    plan.runs.retain(|r| r.experiment == "dropout");
    assert_eq!(plan.runs.len(), 2);
    let data = run::load_datasets(&plan, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    execute(&plan, &data, &whole);
    let halted = dir.path().join("halted");
    let mut opts = options(halted.clone());
    opts.halt_after_epoch = Some(1);
    let e = run::execute(&plan, &data, &opts).unwrap_err();
    assert!(format!("{e:#}").contains("halted after epoch 1"), "{e:#}");
    assert!(
        halted
            .join("dropout_seed=2")
            .join("checkpoint.safetensors")
            .exists()
    );
    opts.halt_after_epoch = None;
    opts.resume = true;
    run::execute(&plan, &data, &opts).unwrap();
    for r in &plan.runs {
        let diffs = compare_run_dirs(&whole.join(&r.name), &halted.join(&r.name)).unwrap();
        assert!(diffs.is_empty(), "{}: {diffs:?}", r.name);
    }
    let vopts = VerifyOptions {
        threads: 1,
        data_dir: None,
        keep: None,
    };
    let report = verify_run(&whole.join("dropout_seed=2"), &vopts).unwrap();
    assert!(report.identical(), "{}", report.render());
    // the whole sweep: every repeat, summary.csv and aggregate.csv
    let v = verify_path(&whole, &vopts).unwrap();
    assert_eq!(v.exit_code(), 0, "{}", v.render());
    assert!(
        v.sweep_checks.iter().any(|c| c.contains("aggregate.csv")),
        "{}",
        v.render()
    );
    // a changed number in aggregate.csv is found
    let apath = whole.join("aggregate.csv");
    let text = std::fs::read_to_string(&apath).unwrap();
    let changed = text.replacen(",2,0,", ",3,0,", 1);
    assert_ne!(changed, text, "n_seeds column present");
    std::fs::write(&apath, changed).unwrap();
    let v = verify_path(&whole, &vopts).unwrap();
    assert_eq!(v.exit_code(), 1, "{}", v.render());
    assert!(
        v.sweep_problems
            .iter()
            .any(|p| p.contains("aggregate.csv") && p.contains("line 2")),
        "{}",
        v.render()
    );
}

/// `regulab run` with several seeds prints, after the per-run table, the table of
/// configurations (mean ± sd, interval, paired difference, verdict) and its verdicts in
/// words; the report shows the same table and sentence.
#[test]
fn run_prints_and_reports_the_configurations_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("seeds.toml");
    let text = config_text("seeds = 3").replace("hidden = [16]", "hidden = [8]");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--quiet", "--jobs", "2", "--threads", "1"])
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.starts_with("configuration  seeds  final validation accuracy (%) mean ± sd")
        })
        .unwrap_or_else(|| panic!("no table of configurations:\n{stdout}"));
    assert!(lines[at].contains("paired difference vs baseline (points) [95 % CI]"));
    assert!(lines[at + 1].starts_with("baseline ") && lines[at + 1].ends_with("reference"));
    for (i, config) in ["l2", "dropout", "dropout_again"].iter().enumerate() {
        let line = lines[at + 2 + i];
        assert!(line.starts_with(&format!("{config} ")), "{line}");
        assert!(
            ["better", "worse", "no detectable difference"]
                .iter()
                .any(|v| line.ends_with(v)),
            "{line}"
        );
    }
    let sentence = lines[at + 5];
    assert!(
        sentence.starts_with("Against baseline, on final validation accuracy paired by seed"),
        "{sentence}"
    );
    assert_eq!(
        lines[at + 6],
        format!("aggregate: {}", out.join("aggregate.csv").display())
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Over seeds: does a regulariser help?</h2>"));
    assert!(
        html.contains("3 seeds (41, 42, 43)"),
        "the seeds in the meta line"
    );
    let escaped = sentence.replace('\'', "&#39;");
    assert!(
        html.contains(&format!("<p>{escaped}</p>")),
        "the verdicts in words"
    );
}
