//! Learning-rate schedules, driven epoch by epoch by the caller:
//!
//! ```text
//! epoch = 1
//! while let Some(lr) = schedule.lr_for_epoch(epoch) {
//!     train one epoch with lr; evaluate the validation error e (1 - accuracy)
//!     if !schedule.observe(epoch, e) { break }
//!     epoch += 1
//! }
//! ```
//!
//! A schedule is a value that holds its own state (only [`NewBob`] has any) and is
//! serde-serialisable, so a resumed run restores it exactly.

use crate::bounds;
use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};

/// The name of a schedule, as a config spells it (`schedule = "newbob"`); its
/// parameters come from beside it (see [`crate::config::OptimConfig::schedule`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// [`LrSchedule::Fixed`].
    Fixed,
    /// [`LrSchedule::List`].
    List,
    /// [`LrSchedule::Exponential`].
    Exponential,
    /// [`LrSchedule::NewBob`].
    Newbob,
}

/// A learning-rate schedule (configuration and state).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// `lr` for epochs `1 ..= max_epochs`.
    Fixed {
        /// Learning rate.
        lr: f32,
        /// Number of epochs.
        max_epochs: u32,
    },
    /// `rates[epoch - 1]` for epochs `1 ..= rates.len()`.
    List {
        /// One rate per epoch.
        rates: Vec<f32>,
    },
    /// `lr_e = lr * decay^(e - 1)` for epochs `e = 1 ..= max_epochs` (the power is taken
    /// by repeated multiplication in f64, then rounded to f32).
    Exponential {
        /// Rate of epoch 1.
        lr: f32,
        /// Factor per epoch.
        decay: f32,
        /// Number of epochs.
        max_epochs: u32,
    },
    /// The lab's "newbob" (see [`NewBob`]).
    NewBob(NewBob),
}

/// The lab's "newbob" schedule: keep `start_lr` while the validation error improves by at
/// least `ramp_threshold` per epoch; at the first epoch where it does not, start
/// ramping: multiply the rate by `scale_by` (0.5: halve) after this and every following
/// epoch whose improvement is at least `stop_threshold`; stop after the first ramping
/// epoch whose improvement is below `stop_threshold`, or after `max_epochs`.
///
/// The improvement of an epoch is `lowest error so far - this epoch's error` (the first
/// observed epoch improves on +infinity). Errors are fractions (1 - accuracy), in the
/// same unit as the thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBob {
    /// Rate until ramping starts.
    pub start_lr: f32,
    /// Factor applied per ramping epoch (0.5 in the lab).
    pub scale_by: f32,
    /// Improvement below which ramping starts.
    pub ramp_threshold: f64,
    /// Improvement below which a ramping schedule stops.
    pub stop_threshold: f64,
    /// Hard limit on the number of epochs.
    pub max_epochs: u32,
    /// State: the current rate.
    pub rate: f32,
    /// State: the lowest validation error observed.
    pub lowest_error: Option<f64>,
    /// State: whether the rate is being scaled down.
    pub ramping: bool,
    /// State: whether the schedule has ended.
    pub stopped: bool,
}

impl NewBob {
    /// `start_lr`, halving, one threshold for ramp and stop, at most `max_epochs`.
    pub fn new(start_lr: f32, threshold: f64, max_epochs: u32) -> NewBob {
        NewBob {
            start_lr,
            scale_by: 0.5,
            ramp_threshold: threshold,
            stop_threshold: threshold,
            max_epochs,
            rate: start_lr,
            lowest_error: None,
            ramping: false,
            stopped: false,
        }
    }

    fn observe(&mut self, epoch: u32, error: f64) {
        if self.stopped {
            return;
        }
        if epoch >= self.max_epochs {
            self.stopped = true;
            return;
        }
        let improvement = match self.lowest_error {
            Some(low) => low - error,
            None => f64::INFINITY,
        };
        if self.lowest_error.is_none_or(|low| error < low) {
            self.lowest_error = Some(error);
        }
        if self.ramping {
            if improvement < self.stop_threshold {
                self.stopped = true;
            } else {
                self.rate *= self.scale_by;
            }
        } else if improvement < self.ramp_threshold {
            self.ramping = true;
            self.rate *= self.scale_by;
        }
    }
}

impl LrSchedule {
    /// The learning rate of training epoch `epoch` (1-based), or `None` if the schedule
    /// does not train that epoch (it has ended).
    pub fn lr_for_epoch(&self, epoch: u32) -> Option<f32> {
        if epoch == 0 {
            return None;
        }
        match self {
            LrSchedule::Fixed { lr, max_epochs } => (epoch <= *max_epochs).then_some(*lr),
            LrSchedule::List { rates } => rates.get(epoch as usize - 1).copied(),
            LrSchedule::Exponential {
                lr,
                decay,
                max_epochs,
            } => (epoch <= *max_epochs).then(|| {
                let mut r = *lr as f64;
                for _ in 1..epoch {
                    r *= *decay as f64;
                }
                r as f32
            }),
            LrSchedule::NewBob(nb) => (!nb.stopped && epoch <= nb.max_epochs).then_some(nb.rate),
        }
    }

    /// Record the validation error (fraction, 1 - accuracy) of training epoch `epoch`
    /// just finished; returns whether epoch `epoch + 1` should be trained.
    pub fn observe(&mut self, epoch: u32, valid_error: f64) -> bool {
        if let LrSchedule::NewBob(nb) = self {
            nb.observe(epoch, valid_error);
        }
        self.lr_for_epoch(epoch + 1).is_some()
    }

    /// Upper bound on the number of training epochs.
    pub fn max_epochs(&self) -> u32 {
        match self {
            LrSchedule::Fixed { max_epochs, .. } | LrSchedule::Exponential { max_epochs, .. } => {
                *max_epochs
            }
            LrSchedule::List { rates } => rates.len() as u32,
            LrSchedule::NewBob(nb) => nb.max_epochs,
        }
    }

    /// `Err` for a rate that is not finite and positive, a decay outside (0, 1], a
    /// `scale_by` outside (0, 1] or a negative or non-finite threshold (the rules of
    /// [`crate::bounds`], the ones a config is checked by).
    pub fn validate(&self) -> Result<()> {
        match self {
            LrSchedule::Fixed { lr, .. } => bounds::positive("lr", *lr),
            LrSchedule::List { rates } => rates.iter().try_for_each(|&r| bounds::positive("lr", r)),
            LrSchedule::Exponential { lr, decay, .. } => {
                bounds::positive("lr", *lr)?;
                bounds::decay("decay", *decay)
            }
            LrSchedule::NewBob(nb) => {
                bounds::positive("lr", nb.start_lr)?;
                bounds::decay("scale_by", nb.scale_by)?;
                for (field, t) in [
                    ("ramp_threshold", nb.ramp_threshold),
                    ("stop_threshold", nb.stop_threshold),
                ] {
                    // bounds::non_negative's rule, for the f64 thresholds
                    if !(t.is_finite() && t >= 0.0) {
                        return Err(ModelError::InvalidConfig {
                            field,
                            reason: format!("expected a finite value >= 0, got {t}"),
                        });
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_list_exponential() {
        let mut f = LrSchedule::Fixed {
            lr: 0.5,
            max_epochs: 2,
        };
        assert_eq!(f.lr_for_epoch(0), None);
        assert_eq!(f.lr_for_epoch(1), Some(0.5));
        assert!(f.observe(1, 0.3));
        assert!(!f.observe(2, 0.2));
        assert_eq!(f.lr_for_epoch(3), None);
        let l = LrSchedule::List {
            rates: vec![0.1, 0.05],
        };
        assert_eq!(l.lr_for_epoch(2), Some(0.05));
        assert_eq!(l.lr_for_epoch(3), None);
        let e = LrSchedule::Exponential {
            lr: 1.0,
            decay: 0.5,
            max_epochs: 10,
        };
        assert_eq!(e.lr_for_epoch(1), Some(1.0));
        assert_eq!(e.lr_for_epoch(4), Some(0.125));
        assert_eq!(e.lr_for_epoch(11), None);
        assert!(
            LrSchedule::Fixed {
                lr: -1.0,
                max_epochs: 1
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn newbob_fixed_then_halving_then_stop() {
        let mut s = LrSchedule::NewBob(NewBob::new(0.8, 0.01, 100));
        // errors: big improvements, then a small one (ramp), two good ones, a small one (stop)
        let errors = [0.5, 0.3, 0.295, 0.2, 0.15, 0.149];
        let mut rates = vec![];
        for (i, &e) in errors.iter().enumerate() {
            let epoch = i as u32 + 1;
            rates.push(s.lr_for_epoch(epoch).unwrap());
            let go = s.observe(epoch, e);
            assert_eq!(go, i + 1 < errors.len(), "epoch {epoch}");
        }
        assert_eq!(rates, vec![0.8, 0.8, 0.8, 0.4, 0.2, 0.1]);
        assert_eq!(s.lr_for_epoch(7), None);
        // the state round-trips through serde
        let json = serde_json::to_string(&s).unwrap();
        let back: LrSchedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn newbob_max_epochs_and_worse_error() {
        let mut s = LrSchedule::NewBob(NewBob::new(1.0, 0.0, 3));
        assert!(s.observe(1, 0.5));
        // worse error: improvement negative < 0 -> ramp
        assert!(s.observe(2, 0.6));
        assert_eq!(s.lr_for_epoch(3), Some(0.5));
        assert!(!s.observe(3, 0.1));
    }
}
