//! `regulab plot` (the figures and report of a run directory) and
//! `regulab dropout-figure` (one image and its input-dropout corruptions).

use std::process::ExitCode;

use anyhow::{Context, Result};
use regulab::data::{self, DatasetName};
use regulab::interrupt;
use regulab::lock::{self, Access};
use regulab::plot;

use super::console::{err, out};
use super::options::{DropoutFigureOptions, PlotOptions};
use super::shell_quote;

/// Run `regulab plot`.
pub fn execute(o: PlotOptions) -> Result<ExitCode> {
    interrupt::install().context("handling SIGINT and SIGTERM")?;
    // writes DIR/plots and DIR/report.html: the one writer of DIR
    let _owner = o
        .dir
        .is_dir()
        .then(|| lock::lock_path(&o.dir, Access::Exclusive, "regulab plot"))
        .transpose()?;
    let drawn = plot::plot_dir(
        &o.dir,
        &plot::PlotOptions {
            format: o.format,
            data_dir: o.data_dir.as_deref(),
            dataset: None,
            image_index: o.index,
        },
    );
    if let Err(plot::PlotError::Interrupted(stop)) = drawn {
        err!(
            "regulab: stopped by {} between two figures (every figure file is whole); \
             to draw them all: regulab plot {}",
            stop.name(),
            shell_quote(&o.dir.to_string_lossy())
        );
        return Ok(ExitCode::from(stop.exit_code()));
    }
    let output = drawn?;
    for n in &output.notes {
        err!("note: {n}");
    }
    out!(
        "{} figure(s) in {}",
        output.files.len(),
        o.dir.join("plots").display()
    );
    out!("report: {}", output.report.display());
    Ok(ExitCode::SUCCESS)
}

/// Run `regulab dropout-figure` (alias `corrupt`).
pub fn dropout_figure(o: DropoutFigureOptions) -> Result<ExitCode> {
    let (name, d) = match o.dataset.parse::<DatasetName>() {
        Ok(known @ (DatasetName::Mnist | DatasetName::FashionMnist)) => {
            (known, data::Dataset::load(known, o.data_dir.as_deref())?)
        }
        _ => (
            DatasetName::Custom,
            data::Dataset::load_dir(DatasetName::Custom, std::path::Path::new(&o.dataset))?,
        ),
    };
    super::report_warnings(&d.warnings);
    plot::corrupt_file(&d.train, name, o.index, o.seed, &o.out)
        .with_context(|| format!("writing {}", o.out.display()))?;
    out!("{}", o.out.display());
    Ok(ExitCode::SUCCESS)
}
