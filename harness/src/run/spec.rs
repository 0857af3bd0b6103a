//! The mapping from an experiment config ([`RunConfig`]) to the model's types: the
//! network, the penalty, the learning-rate schedule and the dropout schedule.
//!
//! Why together in one file: the config has mirror enums of the model's own
//! (`ActivationName` for `Activation`, ...); this is the one place that translates
//! them, so that replacing the mirrors by the model's types (deserialising the config
//! straight into them) changes this file alone.

use anyhow::{Result, anyhow};
use regulab_model::{
    Activation, Architecture, FixedDropout, Init, LrSchedule, Mlp, NewBob, Output, Penalty,
};

use crate::config::{ActivationName, InitName, OutputName, RunConfig, ScheduleName};

/// Build the network of a config.
pub fn build_network(c: &RunConfig, inputs: usize, classes: usize) -> Result<Mlp> {
    let act = match c.model.activation {
        ActivationName::Sigmoid => Activation::Sigmoid,
        ActivationName::Tanh => Activation::Tanh,
        ActivationName::Relu => Activation::Relu,
        ActivationName::Identity => Activation::Identity,
    };
    let output = match c.model.output {
        OutputName::Softmax => Output::Softmax,
        OutputName::Linear => Output::Linear,
    };
    let mut sizes = vec![inputs];
    sizes.extend(&c.model.hidden);
    sizes.push(classes);
    let arch = Architecture::new(sizes, act, output)?;
    let init = match c.model.init {
        InitName::Uniform => Init::Uniform {
            hidden: c.model.init_hidden,
            output: c.model.init_output,
        },
        InitName::Glorot => Init::Glorot,
    };
    Ok(Mlp::new(arch, &init, c.seed)?)
}

/// The weight penalty of a config.
pub fn penalty_of(c: &RunConfig) -> Penalty {
    Penalty {
        penalize_biases: c.reg.penalize_biases,
        ..Penalty::new(c.reg.l1, c.reg.l2)
    }
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
    Ok(match c.optim.schedule {
        ScheduleName::Fixed => LrSchedule::Fixed {
            lr: c.optim.lr,
            max_epochs: epochs,
        },
        ScheduleName::List => LrSchedule::List {
            rates: c.optim.lr_list.clone(),
        },
        ScheduleName::Exponential => LrSchedule::Exponential {
            lr: c.optim.lr,
            decay: c.optim.decay,
            max_epochs: epochs,
        },
        ScheduleName::Newbob => LrSchedule::NewBob(NewBob::new(
            c.optim.lr,
            f64::from(c.optim.newbob_threshold),
            epochs,
        )),
    })
}

/// The dropout schedule of a config.
pub fn dropout_of(c: &RunConfig) -> FixedDropout {
    let mut d = FixedDropout::new(c.reg.keep_input, c.reg.keep_hidden);
    for (i, &k) in c.reg.keep_layers.iter().enumerate() {
        d = d.with_layer(i + 1, k);
    }
    d
}
