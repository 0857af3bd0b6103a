//! `regulab merge DIR`: the outputs of a sweep trained in shards
//! ([`regulab::merge::merge`]), and what was left out or noticed.

use std::process::ExitCode;

use anyhow::Result;
use regulab::merge;
use regulab::plot;

use super::console::{err, out};
use super::options::MergeOptions;

/// Run `regulab merge`.
pub fn execute(o: MergeOptions) -> Result<ExitCode> {
    let opts = plot::PlotOptions {
        format: plot::Format::Svg,
        data_dir: o.data_dir.as_deref(),
        dataset: None,
        image_index: 0,
    };
    let merged = merge::merge(&o.dir, o.partial, o.plot.then_some(&opts))?;
    for l in &merged.left_out {
        err!("left out: {}", l.describe());
    }
    for n in &merged.notes {
        err!("note: {n}");
    }
    out!(
        "merged {} run(s): {}",
        merged.outputs.runs.len(),
        merged.outputs.summary.display()
    );
    match merged.outputs.figures {
        None => {}
        Some(Ok(f)) => {
            for n in &f.notes {
                err!("note: {n}");
            }
            out!("report: {} ({} figures)", f.report.display(), f.files.len());
        }
        Some(Err(plot::PlotError::Interrupted(stop))) => {
            err!(
                "regulab: stopped by {} while drawing the figures; to draw them: regulab plot {}",
                stop.name(),
                super::shell_quote(&o.dir.to_string_lossy())
            );
            return Ok(ExitCode::from(stop.exit_code()));
        }
        Some(Err(e)) => err!(
            "warning: drawing the figures failed: {e}; retry with `regulab plot {}`",
            o.dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
