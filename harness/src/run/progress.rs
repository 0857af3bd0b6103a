//! What `regulab run` tells the user while runs train: progress bars on a terminal,
//! one line per epoch otherwise, nothing with `--quiet` ([`Progress`]).
//!
//! Why a module: training calls three verbs (epoch, note, finish) and never decides how
//! they are shown; the bars of concurrent runs share one [`indicatif::MultiProgress`].

use super::Progress;
use super::epochs::EpochRow;

/// Reporter of one run's progress.
pub(crate) struct Reporter {
    mode: Progress,
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter {
    /// A reporter for run `name` of `epochs` epochs.
    pub(crate) fn new(
        mode: Progress,
        multi: &indicatif::MultiProgress,
        name: &str,
        epochs: u32,
    ) -> Reporter {
        let bar = (mode == Progress::Bars).then(|| {
            let b = multi.add(indicatif::ProgressBar::new(u64::from(epochs)));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>28} [{bar:30}] {pos}/{len} epochs {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(name.to_string());
            b
        });
        Reporter { mode, bar }
    }

    /// Epoch `row` is done.
    pub(crate) fn epoch(&self, name: &str, row: &EpochRow, max_epochs: u32) {
        let valid = row
            .valid_acc
            .map(|a| format!(" valid_acc {a:.4}"))
            .unwrap_or_default();
        match (self.mode, &self.bar) {
            (Progress::Bars, Some(b)) => {
                b.set_position(u64::from(row.epoch));
                b.set_message(format!("train_cost {:.4}{valid}", row.train_cost));
            }
            (Progress::Lines, _) => eprintln!(
                "{name}: epoch {}/{max_epochs} train_cost {:.4} train_acc {:.4}{valid}",
                row.epoch, row.train_cost, row.train_acc
            ),
            _ => {}
        }
    }

    /// A message beside the bar.
    pub(crate) fn note(&self, msg: String) {
        match (self.mode, &self.bar) {
            (Progress::Bars, Some(b)) => b.println(msg),
            (Progress::Lines, _) => eprintln!("{msg}"),
            _ => {}
        }
    }

    /// The run has ended.
    pub(crate) fn finish(&self, msg: String) {
        match (self.mode, &self.bar) {
            (Progress::Bars, Some(b)) => b.finish_with_message(msg),
            (Progress::Lines, _) => eprintln!("{msg}"),
            _ => {}
        }
    }
}
