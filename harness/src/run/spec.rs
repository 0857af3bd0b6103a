//! From an experiment config ([`RunConfig`]) to the model: the network and the
//! learning-rate schedule (the penalty and the dropout schedule are the config's own
//! `reg.penalty()` and `reg.keep()`).
//!
//! Why a file: the config deserialises straight into the model's types, so what is
//! left here is the bounds check of the epoch count and the one place a run builds
//! its network.

use anyhow::{Result, anyhow};
use regulab_model::{LrSchedule, Mlp};

use crate::config::RunConfig;

/// Build the network of a config.
pub fn build_network(c: &RunConfig, inputs: usize, classes: usize) -> Result<Mlp> {
    Ok(c.model.build(inputs, classes, c.seed)?)
}

/// The learning-rate schedule of a config.
pub fn schedule_of(c: &RunConfig) -> Result<LrSchedule> {
    let epochs = u32::try_from(c.epochs).map_err(|_| {
        anyhow!(
            "field `epochs`: expected at most {} epochs, got {}",
            u32::MAX,
            c.epochs
        )
    })?;
    Ok(c.optim.schedule(epochs))
}
