//! Keep-probability schedules: the keep probability `p` of each dropout layer, per
//! epoch. (The masks themselves, drawn with these probabilities, are
//! `regulab_kernels::dropout`; this module only says which `p` applies when.)
//!
//! Dropout layers are numbered as the kernels number mask streams: `0` = the inputs,
//! `i` = the output of hidden layer `i` (1-based), i.e. dropout layer `i` is applied to
//! the input of weight layer `i`. The output layer is never dropped. Dropout is inverted:
//! `x~ = x * m / p` with `m ~ Bernoulli(p)` in training, the same mask and scale in the
//! backward pass, and nothing at evaluation. `p = 1` means no dropout at all (the
//! pass is then bit-identical to a network without dropout).
//!
//! Epochs are numbered as in the run CSV: epoch 0 is the untrained model, training
//! epochs are `1, 2, ...`.

use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// The keep probability of dropout layer `layer` during training epoch `epoch`.
///
/// Implementations must be pure functions of `(epoch, layer)` (resume relies on it).
/// Values outside (0, 1] are rejected by the trainer when the epoch starts.
pub trait KeepSchedule: Debug + Send + Sync {
    /// Keep probability `p` in (0, 1].
    fn keep(&self, epoch: u32, layer: usize) -> f32;
}

/// Constant keep probabilities: `input` for dropout layer 0, `hidden` for every
/// hidden layer, except the per-layer overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedKeep {
    /// Keep probability of the inputs (`p_inp`).
    pub input: f32,
    /// Keep probability of hidden layers (`p_hid`).
    pub hidden: f32,
    /// `(layer, keep)` overrides (last one wins).
    #[serde(default)]
    pub layers: Vec<(usize, f32)>,
}

impl FixedKeep {
    /// `p_inp` for the inputs, `p_hid` for hidden layers.
    pub fn new(input: f32, hidden: f32) -> FixedKeep {
        FixedKeep {
            input,
            hidden,
            layers: Vec::new(),
        }
    }
    /// No dropout (keep 1 everywhere).
    pub fn none() -> FixedKeep {
        FixedKeep::new(1.0, 1.0)
    }
    /// Override the keep probability of one dropout layer.
    pub fn with_layer(mut self, layer: usize, keep: f32) -> FixedKeep {
        self.layers.push((layer, keep));
        self
    }
    /// The keep probability of `layer` (epoch-independent).
    pub fn keep_of(&self, layer: usize) -> f32 {
        self.layers
            .iter()
            .rev()
            .find(|(l, _)| *l == layer)
            .map(|&(_, k)| k)
            .unwrap_or(if layer == 0 { self.input } else { self.hidden })
    }
}

impl KeepSchedule for FixedKeep {
    fn keep(&self, _epoch: u32, layer: usize) -> f32 {
        self.keep_of(layer)
    }
}

/// Keep probabilities moving linearly from `start` (epoch 1) to `end` (epoch
/// `1 + epochs` and after), per layer:
/// ```text
/// t = min(epoch - 1, epochs) / epochs     (t = 1 when epochs = 0; epoch 0 counts as 1)
/// p = start + (end - start) * t           (computed in f64, rounded to f32)
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearRamp {
    /// Keep probabilities at epoch 1.
    pub start: FixedKeep,
    /// Keep probabilities from epoch `1 + epochs` on.
    pub end: FixedKeep,
    /// Length of the ramp in epochs.
    pub epochs: u32,
}

impl KeepSchedule for LinearRamp {
    fn keep(&self, epoch: u32, layer: usize) -> f32 {
        let a = self.start.keep_of(layer) as f64;
        let b = self.end.keep_of(layer) as f64;
        if self.epochs == 0 {
            return b as f32;
        }
        let t = epoch.saturating_sub(1).min(self.epochs) as f64 / self.epochs as f64;
        (a + (b - a) * t) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_with_overrides() {
        let d = FixedKeep::new(0.8, 0.5).with_layer(2, 0.9);
        assert_eq!(d.keep(7, 0), 0.8);
        assert_eq!(d.keep(7, 1), 0.5);
        assert_eq!(d.keep(1, 2), 0.9);
        assert_eq!(d.keep(1, 3), 0.5);
        assert_eq!(FixedKeep::none().keep(3, 1), 1.0);
    }

    #[test]
    fn linear_ramp_endpoints_and_middle() {
        let r = LinearRamp {
            start: FixedKeep::none(),
            end: FixedKeep::new(0.8, 0.5),
            epochs: 4,
        };
        assert_eq!(r.keep(0, 1), 1.0);
        assert_eq!(r.keep(1, 1), 1.0);
        assert_eq!(r.keep(3, 1), 0.75);
        assert_eq!(r.keep(3, 0), 0.9);
        assert_eq!(r.keep(5, 1), 0.5);
        assert_eq!(r.keep(50, 0), 0.8);
        let flat = LinearRamp {
            epochs: 0,
            ..r.clone()
        };
        assert_eq!(flat.keep(1, 1), 0.5);
    }
}
