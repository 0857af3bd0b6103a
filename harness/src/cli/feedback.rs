//! `regulab run`'s reports on stderr: one line per epoch, or a progress bar per run on
//! a terminal ([`regulab::feedback::Feedback`], the library's events).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use regulab::feedback::Feedback;
use regulab::run::EpochRow;

use super::console::err;

/// `run: epoch e/E train_cost ... train_acc ... [valid_acc ...]`, one line per event.
#[derive(Debug, Default)]
pub struct Lines;

impl Feedback for Lines {
    fn run_started(&self, _run: &str, _max_epochs: u32) {}

    fn epoch(&self, run: &str, row: &EpochRow, max_epochs: u32) {
        err!(
            "{run}: epoch {}/{max_epochs} train_cost {:.4} train_acc {:.4}{}",
            row.epoch,
            row.train_cost,
            row.train_acc,
            valid_acc(row)
        );
    }

    fn note(&self, _run: &str, message: &str) {
        err!("{message}");
    }

    fn run_finished(&self, _run: &str, summary: &str) {
        err!("{summary}");
    }
}

/// A progress bar per run, drawn together on stderr (a terminal).
#[derive(Debug, Default)]
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn bar(&self, run: &str) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(run).cloned()
    }
}

impl Feedback for Bars {
    fn run_started(&self, run: &str, max_epochs: u32) {
        let b = self
            .multi
            .add(ProgressBar::new(u64::from(max_epochs)))
            .with_style(
                ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} epochs {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            )
            .with_prefix(run.to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(run.to_string(), b);
        }
    }

    fn epoch(&self, run: &str, row: &EpochRow, _max_epochs: u32) {
        if let Some(b) = self.bar(run) {
            b.set_position(u64::from(row.epoch));
            b.set_message(format!(
                "train_cost {:.4}{}",
                row.train_cost,
                valid_acc(row)
            ));
        }
    }

    fn note(&self, run: &str, message: &str) {
        match self.bar(run) {
            Some(b) => b.println(message),
            None => {
                let _ = self.multi.println(message);
            }
        }
    }

    fn run_finished(&self, run: &str, summary: &str) {
        if let Some(b) = self.bar(run) {
            b.finish_with_message(summary.to_string());
        }
    }
}

fn valid_acc(row: &EpochRow) -> String {
    row.valid_acc
        .map(|a| format!(" valid_acc {a:.4}"))
        .unwrap_or_default()
}
