//! Experiment configs: TOML files holding defaults, named experiments and grids.
//!
//! A config file is layered, each layer overriding the one before:
//!
//! 1. the built-in defaults ([`RunConfig::default`], the lab's protocol);
//! 2. the file's top-level keys (everything but `name` and `experiments`);
//! 3. one `[experiments.<name>]` table (a file without experiments has one, `main`);
//! 4. `--set key=value` overrides from the command line (dotted keys, TOML values).
//!
//! After layering, every **list given where a single value is expected** is a grid
//! axis: the experiment expands to one run per combination (axes in the order of the
//! fields of [`RunConfig`], the last one varying fastest; experiments in file order),
//! and each run is named from its values,
//! e.g. `l2_l2=1e-5`. Fields that are lists themselves (`model.hidden`,
//! `reg.keep_layers`, `optim.lr_list`) become axes when given a list of lists.
//! Unknown fields are errors, and so are values out of range; both name the field, and
//! the place it came from: the file, or the `--set` that gave it. An empty list where a
//! grid axis would be is an error (it would give no run), and so is a plan of more runs
//! than [`crate::limits::MAX_RUNS_PER_PLAN`], counted before the grid is expanded.
//!
//! The config's `name` (the output directory `runs/<name>`) obeys the rule of experiment
//! names: letters, digits, `_` and `-`. Without one, the file's stem is used with every
//! other character replaced by `-`.
//!
//! **Seeds.** The top-level key `seeds = N` (default 1, at most [`MAX_SEEDS`]) repeats
//! every run of the plan `N` times. Repeat `k` (`k = 1..N`) of a run is the same run
//! with seed `seed + k - 1` (the run's own resolved `seed`) and its name suffixed
//! `_seed=k`; repeat 1 is the run itself, so with `N = 1` nothing changes, and names
//! have no suffix. Because the rule depends only on `seed` and `k`, the `k`-th repeat
//! of every experiment that shares the file's `seed` has the same seed, hence the same
//! initial weights (where the shapes agree), training pool, shuffles and dropout masks:
//! the runs pair. Repeats are plain runs (their own directories, resumable, verifiable).
//! A grid over `seed` does the same by hand and cannot be combined with `seeds > 1`.
//! `seeds` and `reference` (the configuration the aggregate compares with, see
//! [`crate::aggregate`]) are plan-wide: they are refused inside an experiment, and may
//! be given with `--set`.
//!
//! Length: about 920 lines of documented code (730 without comments and blank lines)
//! and 450 of unit tests, which test the layering, grid, seed and naming rules where
//! they are written.

use std::collections::BTreeMap;
use std::path::Path;

use regulab_model::{ModelError, ScheduleKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use toml::Value;

/// The model's tables (`[model]`, `[optim]`, `[reg]`): the model crate's own types,
/// with their rules ([`regulab_model::config`]).
pub use regulab_model::config::{ModelConfig, OptimConfig, RegConfig};

/// The largest `seeds = N`.
pub const MAX_SEEDS: u32 = 1000;

/// Fields whose value is itself a list: a grid over them is a list of lists.
const LIST_FIELDS: &[&str] = &[
    "model.hidden",
    "reg.keep_layers",
    "optim.lr_list",
    "data.range",
];

/// An error in a config, naming the file and the field.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Io {
        /// The config file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TOML syntax error or a value of the wrong type / an unknown field.
    #[error("{path}: {message}")]
    Parse {
        /// The config file (or `--set`).
        path: String,
        /// What is wrong, with the field.
        message: String,
    },
    /// A value outside its allowed range.
    #[error("{path}: run `{run}`: field `{field}`: {message}")]
    Invalid {
        /// The config file.
        path: String,
        /// The run whose resolved config is invalid.
        run: String,
        /// The dotted field name.
        field: String,
        /// What was expected.
        message: String,
    },
    /// A `--set` argument that is not `key=value`.
    #[error("--set {0}: expected key=value, e.g. --set reg.l2=1e-4")]
    BadSet(String),
}

/// One of a dataset's two IDX pairs (images + labels), or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFile {
    /// `train-images-idx3-ubyte` + `train-labels-idx1-ubyte`.
    Train,
    /// `t10k-images-idx3-ubyte` + `t10k-labels-idx1-ubyte` (the test set).
    T10k,
    /// No file (only for `test_file`: no test evaluation).
    None,
}

impl DataFile {
    /// The config spelling: `train`, `t10k`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataFile::Train => "train",
            DataFile::T10k => "t10k",
            DataFile::None => "none",
        }
    }
}

fn default_train_file() -> DataFile {
    DataFile::Train
}

fn default_test_file() -> DataFile {
    DataFile::T10k
}

/// Which dataset a run trains on, and which of its examples.
///
/// The training and validation examples come from `train_file` (by default the
/// training pair); `range = [start, end]` restricts them to examples `start..end` of
/// that file, which are then split as usual: validation = the last `validation` of
/// them, the training pool = `train_examples` drawn from the rest. So training on the
/// first 1,000 MNIST test images and validating on the next 1,000 is
/// `train_file = "t10k"`, `range = [0, 2000]`, `validation = 1000`,
/// `test_file = "none"` (the test file may not be the training file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist`, or a directory holding the IDX files (files whose
    /// names and SHA-256 are those of a known dataset are verified as such).
    pub dataset: String,
    /// Size of the fixed random pool of training examples (the lab uses 1,000);
    /// absent = the whole training split.
    pub train_examples: Option<usize>,
    /// Examples held out from the end of the training file (or of `range`) for
    /// validation (0 = none).
    pub validation: usize,
    /// Batch size used for evaluation (does not change any result).
    pub eval_batch: usize,
    /// The file training and validation examples come from: `train` or `t10k`.
    #[serde(default = "default_train_file")]
    pub train_file: DataFile,
    /// The file the final model is tested on: `t10k`, `train` or `none`.
    #[serde(default = "default_test_file")]
    pub test_file: DataFile,
    /// `[start, end]`: use only examples `start..end` of `train_file` (empty = all).
    #[serde(default)]
    pub range: Vec<usize>,
}

/// The complete, resolved configuration of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The one seed everything random derives from.
    pub seed: u64,
    /// Number of training epochs (upper bound for newbob).
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Data.
    pub data: DataConfig,
    /// Network.
    pub model: ModelConfig,
    /// Optimiser.
    pub optim: OptimConfig,
    /// Regularisation.
    pub reg: RegConfig,
}

impl Default for RunConfig {
    /// The lab's protocol: MNIST, 1,000 training examples, 784-800-10 sigmoid,
    /// uniform +-0.2 init, SGD lr 0.5, batch 10, 30 epochs, no regularisation.
    fn default() -> Self {
        RunConfig {
            seed: 20_261_125,
            epochs: 30,
            batch_size: 10,
            data: DataConfig {
                dataset: "mnist".into(),
                train_examples: Some(1000),
                validation: 10_000,
                eval_batch: 1000,
                train_file: DataFile::Train,
                test_file: DataFile::T10k,
                range: Vec::new(),
            },
            model: ModelConfig::default(),
            optim: OptimConfig::default(),
            reg: RegConfig::default(),
        }
    }
}

/// One run of an expanded config.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// The experiment it belongs to.
    pub experiment: String,
    /// Unique run name (experiment + grid values), safe as a directory name.
    pub name: String,
    /// The grid values of this run, as (dotted key, value) in axis order.
    pub grid: Vec<(String, String)>,
    /// The resolved config.
    pub config: RunConfig,
}

/// A parsed config file: its name and its runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Config name (`name = ...` in the file, else the file stem made a plain name).
    pub name: String,
    /// Where the config came from (its path as given), for error messages.
    pub origin: String,
    /// Every run, experiments in file order, grid combinations in order, each
    /// combination's seed repeats together (`_seed=1`, `_seed=2`, ...).
    pub runs: Vec<RunSpec>,
    /// `seeds = N`: how many times each run is repeated (1 = once, no suffix).
    pub seeds: u32,
    /// `reference = "..."`: the configuration the aggregate compares with (checked to
    /// be one of the plan's [`configuration_name`]s); `None` = the default (`baseline`
    /// when the plan has it).
    pub reference: Option<String>,
}

/// The configuration a run belongs to: its experiment and grid values without `seed`
/// (so every seed repeat, and every value of a grid over `seed`, of one configuration
/// has the same), named like a run: `l2_l2=1e-5`.
pub fn configuration_name(experiment: &str, grid: &[(String, String)]) -> String {
    let without_seed: Vec<(String, String)> =
        grid.iter().filter(|(k, _)| k != "seed").cloned().collect();
    run_name(experiment, &without_seed)
}

/// The seed of repeat `k` (1-based) of a run whose resolved seed is `seed`:
/// `seed + k - 1`; `None` if that overflows a `u64`.
pub fn repeat_seed(seed: u64, k: u32) -> Option<u64> {
    seed.checked_add(u64::from(k).checked_sub(1)?)
}

/// Remove the plan-wide keys `seeds` and `reference` from `table` (the file's top
/// level, or `--set`): `(seeds, reference)` when given.
fn plan_keys(
    table: &mut toml::Table,
    origin: &str,
) -> Result<(Option<u32>, Option<String>), ConfigError> {
    let err = |message: String| ConfigError::Parse {
        path: origin.to_string(),
        message,
    };
    let seeds = match table.remove("seeds") {
        None => None,
        Some(Value::Integer(n)) if (1..=i64::from(MAX_SEEDS)).contains(&n) => {
            Some(u32::try_from(n).expect("bounded above"))
        }
        Some(other) => {
            return Err(err(format!(
                "field `seeds`: expected the number of seeds per run, an integer from 1 to \
                 {MAX_SEEDS}, got {other}"
            )));
        }
    };
    let reference = match table.remove("reference") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(err(format!(
                "field `reference`: expected the name of a configuration (e.g. \"baseline\"), \
                 found {}",
                other.type_str()
            )));
        }
    };
    Ok((seeds, reference))
}

/// Parse `--set key=value` into a dotted key and a TOML value (bare words are strings).
pub fn parse_set(arg: &str) -> Result<(String, Value), ConfigError> {
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| ConfigError::BadSet(arg.to_string()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(ConfigError::BadSet(arg.to_string()));
    }
    let raw = raw.trim();
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed table has v"),
        Err(_) => Value::String(raw.to_string()),
    };
    Ok((key.to_string(), value))
}

/// Read and expand a config file.
///
/// A relative directory in the file's `data.dataset` is resolved against the directory
/// of the config file (not the working directory), so a config finds its data from
/// wherever it is run; the runs then carry the absolute path (canonical when it exists),
/// which the manifest records and errors show. A `data.dataset` given with `--set` is a
/// command-line path: relative to the working directory. Dataset names (`mnist`,
/// `fashion-mnist`) are not paths. Run names are made from the values as written.
pub fn load(path: &Path, sets: &[(String, Value)]) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let mut plan = parse(&text, &path.display().to_string(), &stem, sets)?;
    let from_command_line = sets.iter().any(|(k, _)| k == "data" || k == "data.dataset");
    if !from_command_line {
        let base = path.parent().unwrap_or(Path::new(""));
        for run in &mut plan.runs {
            run.config.data.dataset = resolve_dataset_path(&run.config.data.dataset, base);
        }
    }
    Ok(plan)
}

/// `dataset` (a `data.dataset` value of a config file in directory `base`) as a path
/// to use from any working directory: a dataset name or an absolute path unchanged; a
/// relative path joined to `base` and made absolute: canonical when it exists, else its
/// longest existing ancestor canonical and the rest as written.
pub fn resolve_dataset_path(dataset: &str, base: &Path) -> String {
    let known = dataset
        .parse::<crate::data::DatasetName>()
        .is_ok_and(|d| d != crate::data::DatasetName::Custom);
    let path = Path::new(dataset);
    if known || dataset.is_empty() || path.is_absolute() {
        return dataset.to_string();
    }
    let joined = base.join(path);
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    let parts: Vec<_> = absolute.components().collect();
    let resolved = (1..=parts.len())
        .rev()
        .find_map(|i| {
            let head: std::path::PathBuf = parts[..i].iter().collect();
            let tail: std::path::PathBuf = parts[i..].iter().collect();
            let head = head.canonicalize().ok()?;
            Some(if i == parts.len() {
                head
            } else {
                head.join(tail)
            })
        })
        .unwrap_or(absolute);
    resolved.to_string_lossy().into_owned()
}

/// Parse and expand config text; `origin` names it in errors.
pub fn parse(
    text: &str,
    origin: &str,
    default_name: &str,
    sets: &[(String, Value)],
) -> Result<Plan, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse {
        path: origin.to_string(),
        message,
    };
    let mut file: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let name = match file.remove("name") {
        None => plain_name(default_name),
        Some(Value::String(s)) => {
            check_name(&s).map_err(|m| {
                parse_err(format!(
                    "field `name`: expected the name of the output directory runs/<name>, \
                     got {s:?}: {m}"
                ))
            })?;
            s
        }
        Some(other) => {
            return Err(parse_err(format!(
                "field `name`: expected a string, found {}",
                other.type_str()
            )));
        }
    };
    // the plan-wide keys: from the file's top level, then from --set
    let (mut seeds, mut reference) = plan_keys(&mut file, origin)?;
    let mut plan_sets = toml::Table::new();
    for (key, value) in sets {
        if key == "seeds" || key == "reference" {
            plan_sets.insert(key.clone(), value.clone());
        }
    }
    let set_origin = plan_sets
        .iter()
        .map(|(k, v)| format!("--set {k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let (set_seeds, set_reference) = plan_keys(&mut plan_sets, &set_origin)?;
    seeds = set_seeds.or(seeds);
    reference = set_reference.or(reference);
    let seeds = seeds.unwrap_or(1);
    let sets: Vec<(String, Value)> = sets
        .iter()
        .filter(|(k, _)| k != "seeds" && k != "reference")
        .cloned()
        .collect();
    let sets = sets.as_slice();
    let experiments: Vec<(String, toml::Table)> = match file.remove("experiments") {
        None => vec![("main".to_string(), toml::Table::new())],
        Some(Value::Table(t)) => {
            let mut v = Vec::new();
            for (k, e) in t {
                match e {
                    Value::Table(e) => v.push((k, e)),
                    other => {
                        return Err(parse_err(format!(
                            "field `experiments.{k}`: expected a table, found {}",
                            other.type_str()
                        )));
                    }
                }
            }
            v
        }
        Some(other) => {
            return Err(parse_err(format!(
                "field `experiments`: expected a table of named experiments, found {}",
                other.type_str()
            )));
        }
    };
    let defaults = Value::try_from(RunConfig::default()).expect("defaults serialise");
    let Value::Table(mut base) = defaults else {
        unreachable!("RunConfig serialises to a table")
    };
    merge(&mut base, file, "");
    // Each experiment's table with the --set overrides, and its grid axes; the runs
    // are counted before any is expanded.
    let mut layered = Vec::new();
    let mut count: Option<u64> = Some(0);
    for (exp_name, exp) in experiments {
        check_name(&exp_name).map_err(|m| parse_err(format!("experiment `{exp_name}`: {m}")))?;
        for key in ["seeds", "reference"] {
            if exp.contains_key(key) {
                return Err(parse_err(format!(
                    "field `experiments.{exp_name}.{key}`: `{key}` is plan-wide (the k-th \
                     seed of every experiment is the same, so that runs pair); expected it at \
                     the top of the file, before any [experiments] table"
                )));
            }
        }
        let mut table = base.clone();
        merge(&mut table, exp, "");
        for (key, value) in sets {
            set_path(&mut table, key, value.clone())
                .map_err(|m| parse_err(format!("--set {key}: {m}")))?;
        }
        let mut axes = Vec::new();
        find_axes(&table, "", &mut axes).map_err(|field| {
            let blamed = blame(&field, sets).unwrap_or_else(|| origin.to_string());
            ConfigError::Parse {
                path: blamed,
                message: format!(
                    "experiment `{exp_name}`: field `{field}`: an empty list gives no run; \
                     expected a value, or a list of values (a grid)"
                ),
            }
        })?;
        if seeds > 1 && axes.iter().any(|(k, _)| k == "seed") {
            return Err(parse_err(format!(
                "experiment `{exp_name}`: field `seed`: a grid over `seed` and `seeds = {seeds}` \
                 both repeat the runs; expected one of them (a single `seed` with `seeds`)"
            )));
        }
        let runs = axes.iter().try_fold(u64::from(seeds), |n, (_, values)| {
            n.checked_mul(values.len() as u64)
        });
        count = count.zip(runs).and_then(|(c, r)| c.checked_add(r));
        layered.push((exp_name, table, axes));
    }
    crate::limits::check_run_count(count).map_err(parse_err)?;
    let mut runs = Vec::new();
    for (exp_name, table, axes) in layered {
        for combo in combinations(&axes) {
            let mut t = table.clone();
            let mut grid = Vec::new();
            for (key, value) in combo {
                set_path(&mut t, &key, value.clone()).expect("axis path exists");
                grid.push((key, value_label(&value)));
            }
            let base_name = run_name(&exp_name, &grid);
            let config: RunConfig =
                serde_path_to_error::deserialize(Value::Table(t)).map_err(|e| {
                    let field = e.path().to_string();
                    let inner = e.into_inner();
                    ConfigError::Parse {
                        path: blame(&field, sets).unwrap_or_else(|| origin.to_string()),
                        message: format!(
                            "experiment `{exp_name}`: field `{field}`: {}",
                            inner.message().trim()
                        ),
                    }
                })?;
            validate(&config).map_err(|(field, message)| ConfigError::Invalid {
                path: blame(&field, sets).unwrap_or_else(|| origin.to_string()),
                run: base_name.clone(),
                field,
                message,
            })?;
            if seeds == 1 {
                runs.push(RunSpec {
                    experiment: exp_name.clone(),
                    name: base_name,
                    grid,
                    config,
                });
                continue;
            }
            for k in 1..=seeds {
                let seed = repeat_seed(config.seed, k).ok_or_else(|| ConfigError::Invalid {
                    path: origin.to_string(),
                    run: base_name.clone(),
                    field: "seeds".into(),
                    message: format!(
                        "seed {} + {} repeats does not fit in 64 bits; expected a smaller seed",
                        config.seed,
                        seeds - 1
                    ),
                })?;
                runs.push(RunSpec {
                    experiment: exp_name.clone(),
                    name: format!("{base_name}_seed={k}"),
                    grid: grid.clone(),
                    config: RunConfig {
                        seed,
                        ..config.clone()
                    },
                });
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &runs {
        if !seen.insert(r.name.clone()) {
            return Err(parse_err(format!("two runs are both named `{}`", r.name)));
        }
    }
    if let Some(r) = &reference {
        let known: Vec<String> = runs.iter().fold(Vec::new(), |mut v, run| {
            let c = configuration_name(&run.experiment, &run.grid);
            if !v.contains(&c) {
                v.push(c);
            }
            v
        });
        if !known.contains(r) {
            return Err(parse_err(format!(
                "field `reference`: expected one of the plan's configurations ({}), got {r:?}",
                known.join(", ")
            )));
        }
    }
    Ok(Plan {
        name,
        origin: origin.to_string(),
        runs,
        seeds,
        reference,
    })
}

/// `--set KEY=VALUE` when the error in `field` comes from one of `sets` (the field is
/// the key, lies inside it, or holds it); `None` when it comes from the file.
fn blame(field: &str, sets: &[(String, Value)]) -> Option<String> {
    let from_set = |k: &str| {
        field == k
            || field.strip_prefix(k).is_some_and(|r| r.starts_with('.'))
            || k.strip_prefix(field).is_some_and(|r| r.starts_with('.'))
    };
    sets.iter()
        .rev()
        .find(|(k, _)| from_set(k))
        .map(|(k, v)| format!("--set {k}={v}"))
}

/// `stem` (a config file's stem) as a plain name: letters, digits, `_` and `-` kept,
/// anything else `-`; `config` when empty.
fn plain_name(stem: &str) -> String {
    if stem.is_empty() {
        return "config".to_string();
    }
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The rule of experiment and config names: not empty; letters, digits, `_`, `-`.
fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err("names may use only letters, digits, '_' and '-'".into())
    }
}

/// Deep merge `over` into `base`; tables merge, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table, prefix: &str) {
    for (k, v) in over {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o, &path),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Set a dotted key, creating tables on the way.
fn set_path(table: &mut toml::Table, key: &str, value: Value) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().ok_or("empty key")?;
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(toml::Table::new()));
        t = match entry {
            Value::Table(inner) => inner,
            _ => return Err(format!("`{p}` is not a table")),
        };
    }
    t.insert(last.to_string(), value);
    Ok(())
}

/// Collect grid axes: (dotted key, values) for each list standing for a single value;
/// `Err(key)` for an empty one (a grid of no value).
fn find_axes(
    table: &toml::Table,
    prefix: &str,
    out: &mut Vec<(String, Vec<Value>)>,
) -> Result<(), String> {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(t) => find_axes(t, &path, out)?,
            Value::Array(items) => {
                let is_list_field = LIST_FIELDS.contains(&path.as_str());
                let is_grid = if is_list_field {
                    !items.is_empty() && items.iter().all(|i| matches!(i, Value::Array(_)))
                } else {
                    true
                };
                if is_grid && items.is_empty() {
                    return Err(path);
                }
                if is_grid {
                    out.push((path, items.clone()));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Cartesian product of the axes, last axis varying fastest.
fn combinations(axes: &[(String, Vec<Value>)]) -> Vec<Vec<(String, Value)>> {
    let mut out: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in axes {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for prefix in &out {
            for v in values {
                let mut c = prefix.clone();
                c.push((key.clone(), v.clone()));
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// A short, filesystem-safe label of a value: `1e-5`, `0.5`, `800x800`, `relu`.
fn value_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => {
            // Config floats are f32: print the shortest form of the f32 when the f64
            // holds one exactly (1e-3 rather than 0.0010000000474974513).
            let (plain, sci) = if f64::from(*f as f32) == *f {
                (format!("{}", *f as f32), format!("{:e}", *f as f32))
            } else {
                (format!("{f}"), format!("{f:e}"))
            };
            if sci.len() < plain.len() { sci } else { plain }
        }
        Value::Boolean(b) => b.to_string(),
        Value::Array(a) => a.iter().map(value_label).collect::<Vec<_>>().join("x"),
        other => other.to_string(),
    }
}

fn run_name(experiment: &str, grid: &[(String, String)]) -> String {
    let mut name = experiment.to_string();
    for (key, label) in grid {
        let short = key.rsplit('.').next().unwrap_or(key);
        name.push('_');
        name.push_str(short);
        name.push('=');
        name.push_str(label);
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-=.+".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Check ranges; `Err((field, expected))`. The run-level and data fields are checked
/// here; the model's tables by their own `validate` (the rules of
/// [`regulab_model::bounds`], the ones the model itself enforces), their fields named
/// with the table, e.g. `optim.lr`.
pub fn validate(c: &RunConfig) -> Result<(), (String, String)> {
    let bad = |f: &str, m: String| Err((f.to_string(), m));
    if c.epochs == 0 && c.optim.schedule != ScheduleKind::List {
        return bad("epochs", "expected at least 1 epoch, got 0".into());
    }
    if u32::try_from(c.epochs).is_err() {
        return bad(
            "epochs",
            format!("expected at most {} epochs, got {}", u32::MAX, c.epochs),
        );
    }
    if c.optim.schedule == ScheduleKind::Newbob && c.data.validation == 0 {
        return bad(
            "optim.schedule",
            "\"newbob\" watches the validation error: it needs data.validation > 0".into(),
        );
    }
    if c.batch_size == 0 {
        return bad(
            "batch_size",
            "expected a batch size of at least 1, got 0".into(),
        );
    }
    if c.data.eval_batch == 0 {
        return bad("data.eval_batch", "expected at least 1, got 0".into());
    }
    if c.data.train_examples == Some(0) {
        return bad(
            "data.train_examples",
            "expected at least 1 example, got 0".into(),
        );
    }
    validate_data(&c.data)?;
    let section = |name: &str, r: Result<(), ModelError>| match r {
        Err(ModelError::InvalidConfig { field, reason }) => {
            Err((format!("{name}.{field}"), reason))
        }
        Err(other) => Err((name.to_string(), other.to_string())),
        Ok(()) => Ok(()),
    };
    section("model", c.model.validate())?;
    section("optim", c.optim.validate())?;
    section("reg", c.reg.validate(c.model.hidden.len()))
}

/// Check the data fields: files and range; `Err((field, expected))`.
fn validate_data(d: &DataConfig) -> Result<(), (String, String)> {
    let bad = |f: &str, m: String| Err((f.to_string(), m));
    if d.train_file == DataFile::None {
        return bad(
            "data.train_file",
            "expected \"train\" or \"t10k\", got \"none\"".into(),
        );
    }
    if d.test_file == d.train_file {
        return bad(
            "data.test_file",
            format!(
                "the test file may not be the training file (\"{}\"): expected {} or \"none\"",
                d.train_file.as_str(),
                if d.train_file == DataFile::Train {
                    "\"t10k\""
                } else {
                    "\"train\""
                }
            ),
        );
    }
    match d.range.as_slice() {
        [] => {}
        &[start, end] => {
            if start >= end {
                return bad(
                    "data.range",
                    format!("expected [start, end] with start < end, got [{start}, {end}]"),
                );
            }
            let len = end - start;
            if d.validation >= len {
                return bad(
                    "data.validation",
                    format!(
                        "{} validation examples leave no training example in data.range \
                         [{start}, {end}] ({len} examples)",
                        d.validation
                    ),
                );
            }
            if let Some(n) = d.train_examples
                && n > len - d.validation
            {
                return bad(
                    "data.train_examples",
                    format!(
                        "{n} is more than the {} training examples of data.range [{start}, {end}] \
                         minus data.validation {}",
                        len - d.validation,
                        d.validation
                    ),
                );
            }
        }
        other => {
            return bad(
                "data.range",
                format!(
                    "expected [start, end] (two numbers), got {} numbers",
                    other.len()
                ),
            );
        }
    }
    Ok(())
}

/// The grid keys of a plan's runs, in first-seen order (the summary's hyperparameter columns).
pub fn grid_keys(plan: &Plan) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in &plan.runs {
        for (k, _) in &r.grid {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

/// Flatten a run config into (dotted key, value) pairs, for tables and manifests.
pub fn flatten(c: &RunConfig) -> BTreeMap<String, String> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Table(t) => {
                for (k, v) in t {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(v, &p, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), value_label(other));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Value::try_from(c).expect("config serialises"),
        "",
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, ConfigError> {
        parse(text, "test.toml", "test", &[])
    }

    fn err(text: &str) -> String {
        plan(text).unwrap_err().to_string()
    }

    /// Every config under `experiments/` loads (and `load` validates every run).
    #[test]
    fn committed_experiment_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let plan = load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!plan.runs.is_empty(), "{}", path.display());
                names.push(plan.name);
            }
        }
        names.sort();
        assert_eq!(names, ["lab4", "lab4-mnist-t10k", "speed-mnist-t10k"]);
    }

    /// A relative `data.dataset` directory is resolved against the config file's
    /// directory (whatever the working directory), names and absolute paths are kept,
    /// and a `--set` path is left to the working directory.
    #[test]
    fn relative_dataset_paths_follow_the_config_file() {
        let tmp = tempfile::tempdir().unwrap();
        let conf_dir = tmp.path().join("conf");
        std::fs::create_dir_all(conf_dir.join("my-data")).unwrap();
        let cfg = conf_dir.join("c.toml");
        std::fs::write(
            &cfg,
            "[experiments.a]\ndata.dataset = \"my-data\"\n\
             [experiments.b]\ndata.dataset = \"fashion-mnist\"\n\
             [experiments.c]\ndata.dataset = \"missing/dir\"\n\
             [experiments.d]\ndata.dataset = \"/abs/dir\"\n",
        )
        .unwrap();
        let plan = load(&cfg, &[]).unwrap();
        let ds: Vec<&str> = plan
            .runs
            .iter()
            .map(|r| r.config.data.dataset.as_str())
            .collect();
        let canonical = conf_dir.join("my-data").canonicalize().unwrap();
        assert_eq!(ds[0], canonical.to_str().unwrap());
        assert_eq!(ds[1], "fashion-mnist");
        let missing = conf_dir.canonicalize().unwrap().join("missing/dir");
        assert_eq!(ds[2], missing.to_str().unwrap());
        assert_eq!(ds[3], "/abs/dir");
        // the shipped configs find data/mnist from any working directory
        let speed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/speed-mnist-t10k.toml");
        let plan = load(&speed, &[]).unwrap();
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
        assert_eq!(
            Path::new(&plan.runs[0].config.data.dataset),
            data.canonicalize().unwrap()
        );
        // --set data.dataset=DIR: relative to the working directory, as typed
        let sets = vec![parse_set("data.dataset=rel/dir").unwrap()];
        let plan = load(&cfg, &sets).unwrap();
        assert!(plan.runs.iter().all(|r| r.config.data.dataset == "rel/dir"));
    }

    #[test]
    fn empty_file_is_the_lab_protocol() {
        let p = plan("").unwrap();
        assert_eq!(p.name, "test");
        assert_eq!(p.runs.len(), 1);
        assert_eq!(p.runs[0].name, "main");
        assert_eq!(p.runs[0].config, RunConfig::default());
    }

    #[test]
    fn layers_override_in_order() {
        let text = r#"
            name = "study"
            epochs = 5
            [reg]
            l2 = 1e-4
            [experiments.a]
            reg.l2 = 1e-3
            [experiments.b]
            epochs = 7
        "#;
        let sets = vec![parse_set("reg.keep_input=0.8").unwrap()];
        let p = parse(text, "t.toml", "t", &sets).unwrap();
        assert_eq!(p.name, "study");
        let a = &p.runs[0].config;
        assert_eq!((a.epochs, a.reg.l2, a.reg.keep_input), (5, 1e-3, 0.8));
        let b = &p.runs[1].config;
        assert_eq!((b.epochs, b.reg.l2, b.reg.keep_input), (7, 1e-4, 0.8));
    }

    #[test]
    fn grids_expand_to_named_runs() {
        let text = r#"
            [experiments.l1]
            reg.l1 = [1e-3, 1e-4]
            [experiments.drop]
            reg.keep_input = [0.5, 0.8]
            reg.keep_hidden = [0.5, 1.0]
            [experiments.deep]
            model.hidden = [[100], [100, 100]]
        "#;
        let p = plan(text).unwrap();
        let names: Vec<&str> = p.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "l1_l1=1e-3",
                "l1_l1=1e-4",
                "drop_keep_input=0.5_keep_hidden=0.5",
                "drop_keep_input=0.5_keep_hidden=1",
                "drop_keep_input=0.8_keep_hidden=0.5",
                "drop_keep_input=0.8_keep_hidden=1",
                "deep_hidden=100",
                "deep_hidden=100x100",
            ]
        );
        assert_eq!(p.runs[1].config.reg.l1, 1e-4);
        assert_eq!(p.runs[7].config.model.hidden, vec![100, 100]);
        // a plain list-valued field is not a grid
        let p = plan("model.hidden = [800, 800]").unwrap();
        assert_eq!(p.runs.len(), 1);
        assert_eq!(p.runs[0].config.model.hidden, vec![800, 800]);
        assert_eq!(
            grid_keys(&plan(text).unwrap()),
            [
                "reg.l1",
                "reg.keep_input",
                "reg.keep_hidden",
                "model.hidden"
            ]
        );
    }

    #[test]
    fn set_values_parse_as_toml_or_strings() {
        assert_eq!(
            parse_set("data.dataset=fashion-mnist").unwrap(),
            ("data.dataset".into(), Value::String("fashion-mnist".into()))
        );
        assert_eq!(
            parse_set("reg.l2=[1e-4, 1e-5]").unwrap().1,
            Value::Array(vec![Value::Float(1e-4), Value::Float(1e-5)])
        );
        assert!(matches!(parse_set("nonsense"), Err(ConfigError::BadSet(_))));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        assert!(err("learning_rate = 0.1").contains("learning_rate"));
        assert!(err("[reg]\ndropout = 0.5").contains("dropout"));
        assert!(err("[experiments.x]\nmodel.width = 3").contains("width"));
        assert!(err("epochs = \"ten\"").contains("field `epochs`"));
        assert!(err("[optim]\nlr = \"fast\"").contains("field `optim.lr`"));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cases = [
            ("reg.keep_input = 0.0", "reg.keep_input"),
            ("reg.keep_hidden = 1.5", "reg.keep_hidden"),
            ("optim.lr = -0.1", "optim.lr"),
            ("batch_size = 0", "batch_size"),
            ("reg.l2 = -1e-4", "reg.l2"),
            ("optim.momentum = 1.0", "optim.momentum"),
            ("reg.keep_layers = [0.5, 0.5]", "reg.keep_layers"),
            ("data.train_examples = 0", "data.train_examples"),
            ("model.hidden = [800, 0]", "model.hidden"),
            ("data.train_file = \"none\"", "data.train_file"),
            ("data.train_file = \"t10k\"", "data.test_file"),
            ("data.range = [5, 5]", "data.range"),
            ("data.range = [1, 2, 3]", "data.range"),
            ("data.range = [0, 2000]", "data.validation"),
            (
                "data.range = [0, 2000]\ndata.validation = 1000\ndata.train_examples = 1001",
                "data.train_examples",
            ),
        ];
        for (text, field) in cases {
            match plan(text) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: expected Invalid({field}), got {other:?}"),
            }
        }
        // a grid value out of range names the run too
        let e = err("[experiments.d]\nreg.keep_input = [0.5, 1.5]");
        assert!(
            e.contains("d_keep_input=1.5") && e.contains("reg.keep_input"),
            "{e}"
        );
    }

    #[test]
    fn mnist_test_set_split() {
        let text = r#"
            [data]
            dataset = "mnist"
            train_file = "t10k"
            test_file = "none"
            range = [0, 2000]
            validation = 1000
        "#;
        let p = plan(text).unwrap();
        assert_eq!(p.runs.len(), 1, "a range is not a grid");
        let d = &p.runs[0].config.data;
        assert_eq!(
            (d.train_file, d.test_file),
            (DataFile::T10k, DataFile::None)
        );
        assert_eq!(d.range, vec![0, 2000]);
        // a list of ranges is a grid
        let p = plan(
            "data.validation = 100\ndata.train_examples = 900\ndata.range = [[0, 1000], [1000, 2000]]",
        )
        .unwrap();
        assert_eq!(p.runs.len(), 2);
        assert_eq!(p.runs[1].name, "main_range=1000x2000");
        assert_eq!(p.runs[1].config.data.range, vec![1000, 2000]);
        assert!(err("data.train_file = \"test\"").contains("field `data.train_file`"));
        // manifests written before these fields existed still read
        let mut v = serde_json::to_value(RunConfig::default()).unwrap();
        let data = v["data"].as_object_mut().unwrap();
        for k in ["train_file", "test_file", "range"] {
            data.remove(k);
        }
        let back: RunConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, RunConfig::default());
    }

    /// Issue 12 (1): `name` is a directory name under `runs/`: never a path, never empty.
    #[test]
    fn config_names_are_plain_names() {
        for name in ["../../x", "/abs/dir", "", "a/b", "..", "."] {
            let e = err(&format!("name = {name:?}"));
            assert!(e.starts_with("test.toml: field `name`"), "{name:?}: {e}");
        }
        assert_eq!(plan("name = \"ok_1-2\"").unwrap().name, "ok_1-2");
        // file stems are made plain names
        let p = parse("", "x/..toml", ".", &[]).unwrap();
        assert_eq!(p.name, "-");
        assert_eq!(parse("", "a", "", &[]).unwrap().name, "config");
        assert_eq!(parse("", "a", "lab4.v2", &[]).unwrap().name, "lab4-v2");
    }

    /// Issue 12 (9, 10, 11): epochs that do not fit u32, empty grid lists and grids over
    /// the run limit are errors naming the field or the count.
    #[test]
    fn epochs_empty_grids_and_oversized_plans_are_refused() {
        let e = err("epochs = 4294967296");
        assert!(
            e.contains("field `epochs`") && e.contains("4294967295"),
            "{e}"
        );
        assert_eq!(
            plan("epochs = 4294967295").unwrap().runs[0].config.epochs,
            4294967295
        );
        let e = err("[experiments.a]\n[experiments.b]\nreg.l2 = []");
        assert!(
            e.contains("field `reg.l2`") && e.contains("empty list"),
            "{e}"
        );
        // an empty list in a list-valued field is a value, not a grid
        assert_eq!(plan("data.range = []").unwrap().runs.len(), 1);
        let list = |n: usize| {
            let v: Vec<String> = (1..=n).map(|i| format!("{}", i as f64 * 1e-6)).collect();
            format!("[{}]", v.join(","))
        };
        let e = err(&format!("reg.l1 = {}\nreg.l2 = {}", list(101), list(100)));
        assert!(e.contains("10100 runs") && e.contains("10000"), "{e}");
        // counted over experiments
        let e = err(&format!(
            "[experiments.a]\nreg.l1 = {}\n[experiments.b]\nreg.l2 = {}",
            list(5001),
            list(5000)
        ));
        assert!(e.contains("10001 runs"), "{e}");
        let ok = plan(&format!("reg.l1 = {}\nreg.l2 = {}", list(100), list(100))).unwrap();
        assert_eq!(ok.runs.len(), 10_000);
        let e = err("optim.schedule = \"newbob\"\ndata.validation = 0");
        assert!(e.contains("field `optim.schedule`"), "{e}");
    }

    /// Issue 12 (18): an error in a value given with `--set` names the `--set`.
    #[test]
    fn set_errors_name_the_set() {
        for (set, field) in [
            ("reg.l2=abc", "reg.l2"),
            ("reg.keep_input=2", "reg.keep_input"),
            ("model.width=3", "width"),
            ("epochs=4294967296", "epochs"),
            ("reg.l1=[]", "reg.l1"),
        ] {
            let sets = vec![parse_set(set).unwrap()];
            let e = parse("", "t.toml", "t", &sets).unwrap_err().to_string();
            assert!(e.starts_with("--set ") && e.contains(field), "{set}: {e}");
        }
        let sets = vec![parse_set("reg.l1=0.1").unwrap()];
        let e = parse("reg.l2 = \"x\"", "t.toml", "t", &sets)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml") && e.contains("reg.l2"), "{e}");
    }

    /// `seeds = N`: every run repeated with seeds `seed + k - 1`, named `_seed=k`, in
    /// plan order (a combination's repeats together); `N = 1` is the plan without it.
    #[test]
    fn seeds_repeat_every_run_with_derived_seeds() {
        let text = r#"
            seed = 100
            seeds = 3
            [experiments.baseline]
            [experiments.l2]
            reg.l2 = [1e-4, 1e-5]
            [experiments.other]
            seed = 7
        "#;
        let p = plan(text).unwrap();
        assert_eq!(p.seeds, 3);
        let runs: Vec<(&str, u64)> = p
            .runs
            .iter()
            .map(|r| (r.name.as_str(), r.config.seed))
            .collect();
        assert_eq!(
            runs,
            [
                ("baseline_seed=1", 100),
                ("baseline_seed=2", 101),
                ("baseline_seed=3", 102),
                ("l2_l2=1e-4_seed=1", 100),
                ("l2_l2=1e-4_seed=2", 101),
                ("l2_l2=1e-4_seed=3", 102),
                ("l2_l2=1e-5_seed=1", 100),
                ("l2_l2=1e-5_seed=2", 101),
                ("l2_l2=1e-5_seed=3", 102),
                ("other_seed=1", 7),
                ("other_seed=2", 8),
                ("other_seed=3", 9),
            ]
        );
        // repeats differ in the seed only; the grid is the combination's
        let (a, b) = (&p.runs[3], &p.runs[4]);
        assert_eq!(a.grid, b.grid);
        assert_eq!(
            RunConfig {
                seed: 0,
                ..a.config.clone()
            },
            RunConfig {
                seed: 0,
                ..b.config.clone()
            }
        );
        assert_eq!(configuration_name(&a.experiment, &a.grid), "l2_l2=1e-4");
        assert_eq!(grid_keys(&p), ["reg.l2"]);
        // seeds = 1 (or absent) is exactly the plan without the key
        let once = plan(&text.replace("seeds = 3", "seeds = 1")).unwrap();
        let without = plan(&text.replace("seeds = 3", "")).unwrap();
        assert_eq!(once.runs, without.runs);
        assert_eq!(once.runs[0].name, "baseline");
        assert_eq!(once.runs.len(), 4);
        // --set seeds=N overrides the file
        let sets = vec![parse_set("seeds=2").unwrap()];
        let p = parse(text, "t.toml", "t", &sets).unwrap();
        assert_eq!(p.runs.len(), 8);
        assert_eq!(repeat_seed(u64::MAX, 1), Some(u64::MAX));
        assert_eq!(repeat_seed(u64::MAX, 2), None);
        assert_eq!(repeat_seed(5, 0), None);
    }

    /// A grid over `seed` is aggregated per configuration too (its runs share one
    /// configuration name); combined with `seeds > 1` it is an error.
    #[test]
    fn seed_grids_and_bad_seed_keys() {
        let p = plan("[experiments.a]\nseed = [1, 2]\nreg.l2 = [1e-4, 1e-5]").unwrap();
        let configs: Vec<String> = p
            .runs
            .iter()
            .map(|r| configuration_name(&r.experiment, &r.grid))
            .collect();
        assert_eq!(p.runs[1].name, "a_seed=1_l2=1e-5");
        assert_eq!(
            configs,
            ["a_l2=1e-4", "a_l2=1e-5", "a_l2=1e-4", "a_l2=1e-5"]
        );
        let e = err("seeds = 2\n[experiments.a]\nseed = [1, 2]");
        assert!(e.contains("field `seed`") && e.contains("seeds = 2"), "{e}");
        for (text, needle) in [
            ("seeds = 0", "field `seeds`"),
            ("seeds = 1001", "from 1 to 1000"),
            ("seeds = \"3\"", "field `seeds`"),
            ("seeds = 2.5", "field `seeds`"),
            ("[experiments.a]\nseeds = 2", "field `experiments.a.seeds`"),
            (
                "[experiments.a]\nreference = \"a\"",
                "field `experiments.a.reference`",
            ),
            ("reference = 3", "field `reference`"),
        ] {
            let e = err(text);
            assert!(e.contains(needle), "{text}: {e}");
        }
        // seeds count against the plan's run limit
        let e = err(
            "seeds = 1000\nreg.l2 = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11]",
        );
        assert!(e.contains("11000 runs"), "{e}");
        let sets = vec![parse_set("seeds=0").unwrap()];
        let e = parse("", "t.toml", "t", &sets).unwrap_err().to_string();
        assert!(
            e.starts_with("--set seeds=0") && e.contains("field `seeds`"),
            "{e}"
        );
    }

    /// `reference` names a configuration of the plan; anything else is an error listing
    /// them.
    #[test]
    fn reference_names_a_configuration() {
        let text = "seeds = 2\n[experiments.baseline]\n[experiments.l2]\nreg.l2 = [1e-4, 1e-5]";
        assert_eq!(plan(text).unwrap().reference, None);
        let p = plan(&format!("reference = \"l2_l2=1e-5\"\n{text}")).unwrap();
        assert_eq!(p.reference.as_deref(), Some("l2_l2=1e-5"));
        let e = err(&format!("reference = \"l2\"\n{text}"));
        assert!(
            e.contains("field `reference`") && e.contains("baseline, l2_l2=1e-4, l2_l2=1e-5"),
            "{e}"
        );
        let sets = vec![parse_set("reference=baseline").unwrap()];
        let p = parse(text, "t.toml", "t", &sets).unwrap();
        assert_eq!(p.reference.as_deref(), Some("baseline"));
    }

    #[test]
    fn flatten_lists_every_field() {
        let f = flatten(&RunConfig::default());
        assert_eq!(f["reg.l1"], "0");
        assert_eq!(f["model.hidden"], "800");
        assert_eq!(f["data.dataset"], "mnist");
    }
}
