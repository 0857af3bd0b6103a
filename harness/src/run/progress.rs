//! What a run tells the user while it trains, through the caller's [`Feedback`]
//! ([`Progress::Report`]), or nothing ([`Progress::Quiet`]).
//!
//! Why a module: training calls four verbs (started, epoch, note, finish) and never
//! decides how they are shown; the `regulab` command draws them (lines or bars).

use std::sync::Arc;

use super::Progress;
use super::epochs::EpochRow;
use crate::feedback::Feedback;

/// Reporter of one run's progress: the run's events, to the caller's [`Feedback`].
pub(crate) struct Reporter {
    sink: Option<Arc<dyn Feedback>>,
    name: String,
}

impl Reporter {
    /// A reporter for run `name` of `epochs` epochs (reported as started).
    pub(crate) fn new(mode: &Progress, name: &str, epochs: u32) -> Reporter {
        let sink = match mode {
            Progress::Quiet => None,
            Progress::Report(f) => {
                f.run_started(name, epochs);
                Some(Arc::clone(f))
            }
        };
        Reporter {
            sink,
            name: name.to_string(),
        }
    }

    /// Epoch `row` is done.
    pub(crate) fn epoch(&self, name: &str, row: &EpochRow, max_epochs: u32) {
        if let Some(f) = &self.sink {
            f.epoch(name, row, max_epochs);
        }
    }

    /// A message about the run.
    pub(crate) fn note(&self, msg: String) {
        if let Some(f) = &self.sink {
            f.note(&self.name, &msg);
        }
    }

    /// The run has ended.
    pub(crate) fn finish(&self, msg: String) {
        if let Some(f) = &self.sink {
            f.run_finished(&self.name, &msg);
        }
    }
}
