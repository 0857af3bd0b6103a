//! Figures and the HTML report of a run or sweep directory (`regulab plot`, also run at
//! the end of `regulab run`), and the input-dropout grid (`regulab corrupt`).
//!
//! Written into `DIR/plots/` (`.svg`, or `.png` with [`Format::Png`]):
//!
//! | file | figure |
//! | --- | --- |
//! | `valid_acc.svg` | validation accuracy vs epoch, every run (only with several experiments) |
//! | `valid_acc_<experiment>.svg` | validation accuracy vs epoch, the runs of one experiment |
//! | `test_acc_vs_<l1,l2,keep_input,keep_hidden>.svg` | final test accuracy vs that setting, for grids varying it |
//! | `cost_<run>.svg` | training and validation cost vs epoch |
//! | `weights_<run>.svg` | histogram of the final weights |
//! | `input_dropout.svg` | one training image and its input-dropout corruptions (when the dataset is found) |
//!
//! and `DIR/report.html` (always inline SVG). Everything is deterministic: the same
//! directory gives byte-identical files (no dates, stable order, integer pixel
//! coordinates, fixed number formatting, an embedded font for layout and rasterising).
//!
//! A figure with nothing finite to draw (the cost of a run that diverged in its first
//! epoch) is skipped with a note; the other figures and the report are still drawn.
//! Figure files in `plots/` that this drawing does not write (of runs no longer in the
//! plan, of figures skipped) are removed, and so are temporary files of an interrupted
//! drawing: the caller owns the directory ([`crate::lock`]).

pub mod chart;
pub mod corrupt;
pub mod curves;
pub mod labels;
pub mod raster;
pub mod report;
pub mod rundir;
pub mod style;
pub mod sweep;
pub mod weights;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;

use crate::data::{Dataset, DatasetName, LabeledImages};
pub use report::WeightStats;
pub use rundir::{RunData, Study, read_study};

/// An error while reading a run directory or drawing.
#[derive(Debug, Error)]
pub enum PlotError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the run directory is malformed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The directory holds no run.
    #[error(
        "{path}: not a run directory (expected epochs.csv and manifest.json, or run directories beside a summary.csv, as written by `regulab run`)"
    )]
    NotARunDir {
        /// The directory.
        path: PathBuf,
    },
    /// A figure has no finite point to show.
    #[error("figure `{0}`: no finite data to plot")]
    NoData(String),
    /// The requested image does not exist.
    #[error("image index {index} out of range: the set has {len} images")]
    NoImage {
        /// The index asked for.
        index: usize,
        /// The number of images.
        len: usize,
    },
    /// plotters failed.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// Rasterising to PNG failed.
    #[error("rendering PNG failed: {0}")]
    Render(String),
    /// A signal stopped the drawing between two figures.
    #[error("drawing stopped: {0}")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// The stems of the figures regulab draws (see the module docs).
const FIGURE_STEMS: &[&str] = &[
    "valid_acc",
    "test_acc_vs_",
    "cost_",
    "weights_",
    "input_dropout",
];

/// Whether file name `name` is one of regulab's figure files (`<stem>.svg` or `.png`).
pub fn is_figure_file(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    matches!(ext, "svg" | "png") && FIGURE_STEMS.iter().any(|p| stem.starts_with(p))
}

/// `Ok(Some(svg))`; a figure with nothing finite to draw is `Ok(None)` with a note
/// (naming `diverged`, the diverged runs it shows, if any).
fn skippable(
    drawn: Result<String, PlotError>,
    diverged: &[&str],
    notes: &mut Vec<String>,
) -> Result<Option<String>, PlotError> {
    match drawn {
        Ok(svg) => Ok(Some(svg)),
        Err(PlotError::NoData(title)) => {
            let why = if diverged.is_empty() {
                String::new()
            } else {
                format!(" (diverged: {})", diverged.join(", "))
            };
            notes.push(format!(
                "figure `{title}` skipped: nothing finite to draw{why}"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The names of the diverged runs among `runs`.
fn diverged<'a>(runs: &[&'a RunData]) -> Vec<&'a str> {
    runs.iter()
        .filter(|r| r.status == "diverged")
        .map(|r| r.name.as_str())
        .collect()
}

/// Output format of the figure files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics (the figure as drawn).
    #[default]
    Svg,
    /// The SVG rasterised at [`raster::SCALE`] pixels per unit.
    Png,
}

impl Format {
    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "svg" => Ok(Format::Svg),
            "png" => Ok(Format::Png),
            other => Err(format!("unknown format \"{other}\": expected svg or png")),
        }
    }
}

/// The report section a figure belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Accuracy vs epoch.
    Accuracy,
    /// Test accuracy vs regularisation strength.
    Sweep,
    /// Cost vs epoch.
    Cost,
    /// Weight histograms.
    Weights,
    /// The input-dropout grid.
    InputDropout,
}

impl Section {
    /// Sections in report order.
    pub const ALL: [Section; 5] = [
        Section::Accuracy,
        Section::Sweep,
        Section::Cost,
        Section::Weights,
        Section::InputDropout,
    ];

    /// Heading in the report.
    pub fn heading(self) -> &'static str {
        match self {
            Section::Accuracy => "Accuracy during training",
            Section::Sweep => "Test accuracy against regularisation strength",
            Section::Cost => "Training and validation cost",
            Section::Weights => "Final weights",
            Section::InputDropout => "Input dropout",
        }
    }

    /// Explanation under the heading.
    pub fn blurb(self) -> &'static str {
        match self {
            Section::Accuracy => {
                "Accuracy on the validation split after each epoch (epoch 0, the untrained model, is left out), one line per run."
            }
            Section::Sweep => {
                "Accuracy of each run's final model on the test set against the strength of one regulariser; the dashed line is the unregularised run."
            }
            Section::Cost => {
                "Cost (mean cross-entropy plus penalty) on the training pool and on the validation split; a widening gap is over-fitting."
            }
            Section::Weights => {
                "Distribution of the final weights (not biases), on the same bins for every run: L1 makes weights exactly sparse, L2 shrinks them all."
            }
            Section::InputDropout => {
                "One training image with each input kept with probability p, masks drawn by the project's dropout kernel with the run's seed."
            }
        }
    }
}

/// One figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// File stem (`valid_acc_l1`).
    pub stem: String,
    /// Report section.
    pub section: Section,
    /// Caption in the report.
    pub caption: String,
    /// The SVG.
    pub svg: String,
}

/// The image of the input-dropout figure.
#[derive(Clone, Copy, Debug)]
pub struct InputImage<'a> {
    /// The image set (the training file).
    pub images: &'a LabeledImages,
    /// Which dataset, for the class name.
    pub dataset: DatasetName,
    /// Image index.
    pub index: usize,
    /// Dropout seed.
    pub seed: u64,
}

/// The input-dropout figure.
pub fn input_dropout_figure(input: InputImage<'_>) -> Result<Figure, PlotError> {
    let label = input
        .images
        .labels()
        .get(input.index)
        .map(|&l| corrupt::class_name(input.dataset, l))
        .unwrap_or_default();
    let title = format!(
        "Input dropout: {} training image {} ({label}), seed {}",
        input.dataset, input.index, input.seed
    );
    Ok(Figure {
        stem: "input_dropout".into(),
        section: Section::InputDropout,
        caption: format!(
            "{title}. Each panel shows m·x: the pixels kept by the mask at their original intensity (the network sees them scaled by 1/p). The masks are nested: one set of random words, thresholds floor(p·2^32)."
        ),
        svg: corrupt::grid_svg(input.images, input.index, input.seed, &title)?,
    })
}

/// Every figure of a study (without the input-dropout grid) and the weight statistics
/// of each run; `notes` collects what was skipped and why.
pub fn figures(
    study: &Study,
    notes: &mut Vec<String>,
) -> Result<(Vec<Figure>, Vec<Option<WeightStats>>), PlotError> {
    let mut figs = Vec::new();
    let experiments = study.experiments();
    let all: Vec<&RunData> = study.runs.iter().collect();
    // with several seeds per configuration, the accuracy curves are the configurations'
    // means over their seeds with a min-to-max band
    let seeded = curves::by_configuration(&all)
        .iter()
        .any(|(_, g)| g.len() > 1);
    let accuracy = |runs: &[&RunData], title: &str| {
        if seeded {
            curves::accuracy_mean_svg(&curves::by_configuration(runs), title)
        } else {
            curves::accuracy_svg(runs, title)
        }
    };
    let band = if seeded {
        ": the mean over its seeds, shaded from the lowest to the highest"
    } else {
        ""
    };
    if experiments.len() > 1
        && let Some(svg) = skippable(
            accuracy(
                &all,
                if seeded {
                    "all configurations"
                } else {
                    "all runs"
                },
            ),
            &diverged(&all),
            notes,
        )?
    {
        figs.push(Figure {
            stem: "valid_acc".into(),
            section: Section::Accuracy,
            caption: if seeded {
                format!("Every configuration of the study{band}.")
            } else {
                "Every run of the study.".into()
            },
            svg,
        });
    }
    for exp in &experiments {
        let runs: Vec<&RunData> = all
            .iter()
            .copied()
            .filter(|r| r.experiment == *exp)
            .collect();
        let drawn = accuracy(&runs, &format!("experiment {exp}"));
        if let Some(svg) = skippable(drawn, &diverged(&runs), notes)? {
            figs.push(Figure {
                stem: format!("valid_acc_{exp}"),
                section: Section::Accuracy,
                caption: format!("Experiment {exp}: {} run(s){band}.", runs.len()),
                svg,
            });
        }
    }
    for axis in sweep::AXES {
        let drawn = match sweep::sweep_svg(study, axis) {
            Ok(None) => continue,
            Ok(Some(svg)) => Ok(svg),
            Err(e) => Err(e),
        };
        if let Some(svg) = skippable(drawn, &diverged(&all), notes)? {
            figs.push(Figure {
                stem: axis.file.into(),
                section: Section::Sweep,
                caption: format!(
                    "Final test accuracy of the runs whose grid varies {}.",
                    axis.key
                ),
                svg,
            });
        }
    }
    for r in &study.runs {
        if let Some(svg) = skippable(curves::cost_svg(r), &diverged(&[r]), notes)? {
            figs.push(Figure {
                stem: format!("cost_{}", r.name),
                section: Section::Cost,
                caption: format!("Run {}: {}.", r.name, labels::describe(r)),
                svg,
            });
        }
    }
    // The histograms share one range, which depends on every run's weights: a first
    // pass reads each run's model for its statistics and range, a second reads it again
    // for its histogram, so that one run's weights are in memory at a time.
    let mut stats = Vec::with_capacity(study.runs.len());
    let mut ranges = Vec::new();
    for r in &study.runs {
        match weights::load(r) {
            Ok(w) => {
                stats.push(Some(w.stats));
                ranges.push(w.into_range());
            }
            Err(e) => {
                notes.push(format!("weight histogram of {} skipped: {e}", r.name));
                stats.push(None);
            }
        }
    }
    let m = weights::range_of(ranges);
    for (r, st) in study.runs.iter().zip(&stats) {
        if st.is_none() {
            continue;
        }
        let w = weights::load(r)?;
        figs.push(Figure {
            stem: format!("weights_{}", r.name),
            section: Section::Weights,
            caption: format!(
                "Run {}: {}; the same {} bins over ±{} for every run.",
                r.name,
                labels::describe(r),
                weights::BINS,
                chart::trim_float(f64::from(m))
            ),
            svg: weights::histogram_svg(r, &w, m)?,
        });
    }
    Ok((figs, stats))
}

/// Options of [`plot_dir`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PlotOptions<'a> {
    /// Format of the figure files.
    pub format: Format,
    /// Where to look for the dataset (for the input-dropout grid).
    pub data_dir: Option<&'a Path>,
    /// The dataset, already loaded (skips the lookup).
    pub dataset: Option<&'a Dataset>,
    /// Training image shown in the input-dropout grid.
    pub image_index: usize,
}

/// What [`plot_dir`] wrote.
#[derive(Clone, Debug)]
pub struct PlotOutput {
    /// Figure files, in report order.
    pub files: Vec<PathBuf>,
    /// The HTML report.
    pub report: PathBuf,
    /// Figures skipped and why.
    pub notes: Vec<String>,
}

/// The run whose seed the input-dropout grid uses: the first with input dropout, else
/// the first run.
fn dropout_seed(study: &Study) -> u64 {
    study
        .runs
        .iter()
        .find(|r| r.num("reg.keep_input").is_some_and(|k| k < 1.0))
        .unwrap_or(&study.runs[0])
        .seed
}

/// The input-dropout figure of training image `opts.image_index` of `d`.
fn input_figure(d: &Dataset, opts: &PlotOptions<'_>, study: &Study) -> Result<Figure, PlotError> {
    input_dropout_figure(InputImage {
        images: &d.train,
        dataset: d.name,
        index: opts.image_index,
        seed: dropout_seed(study),
    })
}

/// Load the dataset of the study's first run (from `opts.data_dir`, else the directory
/// its manifest records, else the usual places); `Err` is the note saying why not.
fn load_dataset(study: &Study, opts: &PlotOptions<'_>) -> Result<Dataset, String> {
    let name = study.runs[0]
        .config
        .get("data.dataset")
        .and_then(|v| v.as_str())
        .unwrap_or("mnist")
        .to_string();
    let dir = opts.data_dir.map(Path::to_path_buf).or_else(|| {
        study.runs[0]
            .dataset_dir
            .clone()
            .filter(|d| d.is_dir() && name.parse::<DatasetName>().is_ok())
    });
    let result = match name.parse::<DatasetName>() {
        Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => {
            Dataset::load(known, dir.as_deref())
        }
        _ => Dataset::load_dir(DatasetName::Custom, Path::new(&name)),
    };
    result.map_err(|e| {
        format!(
            "input-dropout grid skipped: dataset `{name}` not loaded: {}",
            e.to_string().lines().next().unwrap_or("")
        )
    })
}

/// Write the figures of run or sweep directory `dir` into `dir/plots/` and the report
/// into `dir/report.html`.
pub fn plot_dir(dir: &Path, opts: &PlotOptions<'_>) -> Result<PlotOutput, PlotError> {
    let study = read_study(dir)?;
    let plots = dir.join("plots");
    // temporary files of a drawing that was killed
    for d in [dir, plots.as_path()] {
        crate::outdir::remove_stale_temp_files(d).map_err(|e| PlotError::Io {
            path: d.to_path_buf(),
            source: std::io::Error::other(format!("{e:#}")),
        })?;
    }
    // The input-dropout grid first: a dataset loaded for it is released before the
    // models are read. It comes last in the report, and so does its note.
    let (input, input_note) = match opts.dataset {
        Some(d) => (Some(input_figure(d, opts, &study)?), None),
        None => match load_dataset(&study, opts) {
            Ok(d) => (Some(input_figure(&d, opts, &study)?), None),
            Err(note) => (None, Some(note)),
        },
    };
    let mut notes = study.left_out.clone();
    let (mut figs, stats) = figures(&study, &mut notes)?;
    figs.extend(input);
    notes.extend(input_note);
    let mut files = Vec::new();
    for f in &figs {
        // a safe point: every figure written so far is whole
        crate::interrupt::check()?;
        let path = plots.join(format!("{}.{}", f.stem, opts.format.ext()));
        let png;
        let bytes = match opts.format {
            Format::Svg => f.svg.as_bytes(),
            Format::Png => {
                png = raster::png(&f.svg)?.0;
                &png[..]
            }
        };
        crate::atomic::write(&path, bytes).map_err(|source| PlotError::Io {
            path: path.clone(),
            source,
        })?;
        files.push(path);
    }
    remove_other_figures(&plots, &files, opts.format)?;
    let name = dir
        .canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runs".into());
    // over seeds: only for a whole plan whose runs have all finished
    let aggregate = crate::run::outputs::aggregate_of_dir(dir).ok().flatten();
    let html = report::html(&name, &study, &stats, &figs, &notes, aggregate.as_ref());
    let report = dir.join("report.html");
    crate::atomic::write(&report, html.as_bytes()).map_err(|source| PlotError::Io {
        path: report.clone(),
        source,
    })?;
    Ok(PlotOutput {
        files,
        report,
        notes,
    })
}

/// Remove the figure files of `format` in `plots` that are not among `written` (figures
/// of runs no longer in the plan, or skipped this time): the directory then shows what
/// the report shows.
fn remove_other_figures(
    plots: &Path,
    written: &[PathBuf],
    format: Format,
) -> Result<(), PlotError> {
    let Ok(entries) = std::fs::read_dir(plots) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = is_figure_file(&name)
            && name.ends_with(&format!(".{}", format.ext()))
            && e.file_type().is_ok_and(|t| t.is_file())
            && !written.contains(&path);
        if stale {
            std::fs::remove_file(&path).map_err(|source| PlotError::Io { path, source })?;
        }
    }
    Ok(())
}

/// Write the input-dropout grid of image `index` of `images` to `out` (SVG or PNG by
/// the extension; SVG otherwise).
pub fn corrupt_file(
    images: &LabeledImages,
    dataset: DatasetName,
    index: usize,
    seed: u64,
    out: &Path,
) -> Result<(), PlotError> {
    let fig = input_dropout_figure(InputImage {
        images,
        dataset,
        index,
        seed,
    })?;
    let png = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let bytes = if png {
        raster::png(&fig.svg)?.0
    } else {
        fig.svg.into_bytes()
    };
    crate::atomic::write(out, &bytes).map_err(|source| PlotError::Io {
        path: out.to_path_buf(),
        source,
    })
}
