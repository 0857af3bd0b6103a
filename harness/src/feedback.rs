//! What the library has to tell the user while it works, given to a reporter the
//! caller owns.
//!
//! The library never prints: a run's epochs, its notes (resumed from epoch ...,
//! already finished ...), its end, and warnings about its data go to a [`Feedback`]
//! that the `regulab` command implements (lines on stderr, or progress bars on a
//! terminal; see the binary's `cli::feedback`). A library caller that wants silence
//! passes [`crate::run::Progress::Quiet`] and reads the warnings from the values it gets
//! back (e.g. [`crate::data::Dataset::warnings`]).

use std::fmt::Debug;

use crate::run::EpochRow;

/// The events of running a plan. Called from the worker threads of
/// [`crate::run::execute`] (several runs at once), hence `Send + Sync`; the events of
/// one run come in order.
pub trait Feedback: Debug + Send + Sync {
    /// Run `run` starts training (at most `max_epochs` epochs; the ones already done
    /// on a resume are reported with [`Feedback::epoch`] too).
    fn run_started(&self, run: &str, max_epochs: u32);
    /// Epoch `row.epoch` of run `run` is written (epoch 0: the untrained model).
    fn epoch(&self, run: &str, row: &EpochRow, max_epochs: u32);
    /// Something worth saying about run `run`, in a sentence that names it.
    fn note(&self, run: &str, message: &str);
    /// Run `run` ended; `summary` says how, naming it.
    fn run_finished(&self, run: &str, summary: &str);
}
