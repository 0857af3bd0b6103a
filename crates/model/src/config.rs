//! The model's tables of an experiment config — `[model]`, `[optim]` and `[reg]` —
//! deserialised straight into the model's own types, checked by the rules of
//! [`crate::bounds`], and turned into the runtime objects they describe.
//!
//! The harness's config files (TOML) spell them like this (the values are the lab's
//! protocol, each table's `Default`):
//!
//! ```toml
//! [model]
//! hidden = [800]             # hidden layer widths
//! activation = "sigmoid"     # sigmoid | tanh | relu | identity   (Activation)
//! output = "softmax"         # softmax | linear                   (Output)
//! init = "uniform"           # uniform | glorot                   (InitKind)
//! init_hidden = 0.2          # uniform range of hidden layers
//! init_output = 0.1          # uniform range of the output layer
//!
//! [optim]
//! lr = 0.5
//! momentum = 0.0
//! schedule = "fixed"         # fixed | list | exponential | newbob (ScheduleKind)
//! lr_list = []               # schedule "list": the rate of each epoch
//! decay = 1.0                # schedule "exponential": lr_e = lr * decay^(e - 1)
//! newbob_threshold = 0.001   # schedule "newbob"
//!
//! [reg]
//! l1 = 0.0
//! l2 = 0.0
//! penalize_biases = false
//! keep_input = 1.0           # dropout keep probability of the inputs
//! keep_hidden = 1.0          # ... of every hidden layer
//! keep_layers = []           # ... per hidden layer (overrides keep_hidden)
//! max_norm = 0.0             # 0 = off
//! convention = "mean"        # mean | lab2015: how l1, l2 enter a step (PenaltyConvention)
//! ```
//!
//! The field order is the serialisation order, which the harness's manifests and
//! config digests record: do not reorder fields. `reg.convention` came last and is
//! left out when it is `mean` (the default), so the records of every config without it
//! are the bytes they were before it existed.

use crate::arch::{Architecture, Init, InitKind, Output};
use crate::bounds;
use crate::error::{ModelError, Result};
use crate::keep::FixedKeep;
use crate::network::Mlp;
use crate::penalty::{Penalty, PenaltyConvention};
use crate::schedule::{LrSchedule, NewBob, ScheduleKind};
use regulab_kernels::activation::Activation;
use serde::{Deserialize, Serialize};

/// The network (`[model]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Hidden layer widths, e.g. `[800]` or `[800, 800]`.
    pub hidden: Vec<usize>,
    /// Activation of every hidden layer.
    pub activation: Activation,
    /// Output layer and cost.
    pub output: Output,
    /// Initialisation rule.
    pub init: InitKind,
    /// Uniform init range of hidden layers (`init = "uniform"`).
    pub init_hidden: f32,
    /// Uniform init range of the output layer (`init = "uniform"`).
    pub init_output: f32,
}

impl Default for ModelConfig {
    /// The lab's 800 sigmoid hidden units, softmax output, uniform +-0.2 / +-0.1.
    fn default() -> ModelConfig {
        ModelConfig {
            hidden: vec![800],
            activation: Activation::Sigmoid,
            output: Output::Softmax,
            init: InitKind::Uniform,
            init_hidden: 0.2,
            init_output: 0.1,
        }
    }
}

impl ModelConfig {
    /// `Err` naming the field (as in the table: `hidden`, `init_hidden` ...).
    pub fn validate(&self) -> Result<()> {
        if self.hidden.contains(&0) {
            return Err(ModelError::InvalidConfig {
                field: "hidden",
                reason: format!("every layer needs at least 1 unit, got {:?}", self.hidden),
            });
        }
        bounds::positive("init_hidden", self.init_hidden)?;
        bounds::positive("init_output", self.init_output)
    }

    /// The initialisation rule with its ranges.
    pub fn init(&self) -> Init {
        match self.init {
            InitKind::Uniform => Init::Uniform {
                hidden: self.init_hidden,
                output: self.init_output,
            },
            InitKind::Glorot => Init::Glorot,
        }
    }

    /// `inputs -> hidden... -> classes`.
    pub fn architecture(&self, inputs: usize, classes: usize) -> Result<Architecture> {
        let mut sizes = Vec::with_capacity(self.hidden.len() + 2);
        sizes.push(inputs);
        sizes.extend(&self.hidden);
        sizes.push(classes);
        Architecture::new(sizes, self.activation, self.output)
    }

    /// The initialised network (see [`Mlp::new`]).
    pub fn build(&self, inputs: usize, classes: usize, seed: u64) -> Result<Mlp> {
        Mlp::new(self.architecture(inputs, classes)?, &self.init(), seed)
    }
}

/// The optimiser and its learning-rate schedule (`[optim]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Learning rate (of epoch 1).
    pub lr: f32,
    /// Momentum coefficient (0 = plain SGD).
    pub momentum: f32,
    /// Schedule kind.
    pub schedule: ScheduleKind,
    /// Learning rates per epoch for `schedule = "list"`.
    pub lr_list: Vec<f32>,
    /// Factor per epoch for `schedule = "exponential"`: `lr_e = lr * decay^(e - 1)`.
    pub decay: f32,
    /// Minimum improvement of the validation error for `schedule = "newbob"`.
    pub newbob_threshold: f32,
}

impl Default for OptimConfig {
    /// The lab's plain SGD at a fixed rate of 0.5.
    fn default() -> OptimConfig {
        OptimConfig {
            lr: 0.5,
            momentum: 0.0,
            schedule: ScheduleKind::Fixed,
            lr_list: Vec::new(),
            decay: 1.0,
            newbob_threshold: 0.001,
        }
    }
}

impl OptimConfig {
    /// `Err` naming the field (`lr`, `momentum`, `lr_list`, `decay`,
    /// `newbob_threshold`). Every field is checked, whichever schedule is chosen.
    pub fn validate(&self) -> Result<()> {
        bounds::positive("lr", self.lr)?;
        bounds::momentum("momentum", self.momentum)?;
        if self.schedule == ScheduleKind::List && self.lr_list.is_empty() {
            return Err(ModelError::InvalidConfig {
                field: "lr_list",
                reason: "schedule \"list\" needs a non-empty list of learning rates".into(),
            });
        }
        for &r in &self.lr_list {
            bounds::positive("lr_list", r)?;
        }
        bounds::decay("decay", self.decay)?;
        bounds::non_negative("newbob_threshold", self.newbob_threshold)
    }

    /// The schedule over at most `epochs` epochs (`list` runs `lr_list.len()` epochs).
    pub fn schedule(&self, epochs: u32) -> LrSchedule {
        match self.schedule {
            ScheduleKind::Fixed => LrSchedule::Fixed {
                lr: self.lr,
                max_epochs: epochs,
            },
            ScheduleKind::List => LrSchedule::List {
                rates: self.lr_list.clone(),
            },
            ScheduleKind::Exponential => LrSchedule::Exponential {
                lr: self.lr,
                decay: self.decay,
                max_epochs: epochs,
            },
            ScheduleKind::Newbob => LrSchedule::NewBob(NewBob::new(
                self.lr,
                f64::from(self.newbob_threshold),
                epochs,
            )),
        }
    }
}

/// Regularisation (`[reg]`): penalties, dropout keep probabilities, max-norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegConfig {
    /// L1 weight (beta_L1).
    pub l1: f32,
    /// L2 weight (beta_L2).
    pub l2: f32,
    /// Also penalise biases.
    pub penalize_biases: bool,
    /// Keep probability of the inputs.
    pub keep_input: f32,
    /// Keep probability of every hidden layer.
    pub keep_hidden: f32,
    /// Per-hidden-layer keep probabilities (overrides `keep_hidden`; one per layer).
    pub keep_layers: Vec<f32>,
    /// Max-norm bound on each unit's incoming weight vector (0 = off).
    pub max_norm: f32,
    /// How `l1` and `l2` enter an SGD step on a batch of `B` examples with summed data
    /// gradient `G` (`g` for the biases):
    ///
    /// ```text
    /// mean     W <- W - lr (G/B + l2 W + l1 sgn(W))
    ///          b <- b - lr (g/B [+ l2 b + l1 sgn(b)  if penalize_biases])
    /// lab2015  W <- W - lr (G + l2 W + l1 sgn(W)) / B
    ///          b <- b - lr (g + l2 b + l1 sgn(b)) / B        (biases always)
    /// ```
    ///
    /// (with momentum, the bracket is the gradient the velocity accumulates). `lab2015`
    /// is the 2015 lab's code; its `l1 = 1e-4` at batch 10 is `mean`'s `l1 = 1e-5` with
    /// `penalize_biases`. See [`PenaltyConvention`] for the reported cost and rounding.
    #[serde(default, skip_serializing_if = "PenaltyConvention::is_mean")]
    pub convention: PenaltyConvention,
}

impl Default for RegConfig {
    /// No regularisation.
    fn default() -> RegConfig {
        RegConfig {
            l1: 0.0,
            l2: 0.0,
            penalize_biases: false,
            keep_input: 1.0,
            keep_hidden: 1.0,
            keep_layers: Vec::new(),
            max_norm: 0.0,
            convention: PenaltyConvention::Mean,
        }
    }
}

impl RegConfig {
    /// `Err` naming the field, for a network of `hidden_layers` hidden layers (the
    /// length `keep_layers` must have when given).
    pub fn validate(&self, hidden_layers: usize) -> Result<()> {
        bounds::non_negative("l1", self.l1)?;
        bounds::non_negative("l2", self.l2)?;
        bounds::non_negative("max_norm", self.max_norm)?;
        bounds::keep("keep_input", self.keep_input)?;
        bounds::keep("keep_hidden", self.keep_hidden)?;
        if !self.keep_layers.is_empty() && self.keep_layers.len() != hidden_layers {
            return Err(ModelError::InvalidConfig {
                field: "keep_layers",
                reason: format!(
                    "expected one keep probability per hidden layer ({hidden_layers}), got {}",
                    self.keep_layers.len()
                ),
            });
        }
        for &p in &self.keep_layers {
            bounds::keep("keep_layers", p)?;
        }
        Ok(())
    }

    /// The L1/L2 penalty as configured (its coefficients enter a step by
    /// [`RegConfig::convention`]: give both to the trainer's `TrainConfig`).
    pub fn penalty(&self) -> Penalty {
        Penalty {
            penalize_biases: self.penalize_biases,
            ..Penalty::new(self.l1, self.l2)
        }
    }

    /// The penalty a step on a batch of `batch_size` examples applies, in the `mean`
    /// convention ([`PenaltyConvention::per_example`]): the penalty part of the cost to
    /// report, whose gradient the step follows. [`RegConfig::penalty`] itself under
    /// `mean`; under `lab2015`, `l1 / B`, `l2 / B` with the biases penalised.
    pub fn reported_penalty(&self, batch_size: usize) -> Penalty {
        self.convention.per_example(self.penalty(), batch_size)
    }

    /// The max-norm bound, `None` when `max_norm = 0` (off).
    pub fn max_norm(&self) -> Option<f32> {
        (self.max_norm > 0.0).then_some(self.max_norm)
    }

    /// The constant keep probabilities: `keep_input` for the inputs, `keep_layers[i]`
    /// (else `keep_hidden`) for hidden layer `i + 1`.
    pub fn keep(&self) -> FixedKeep {
        let mut d = FixedKeep::new(self.keep_input, self.keep_hidden);
        for (i, &k) in self.keep_layers.iter().enumerate() {
            d = d.with_layer(i + 1, k);
        }
        d
    }

    /// Whether any layer is dropped out (some keep probability below 1).
    pub fn drops_out(&self) -> bool {
        self.keep_input < 1.0 || self.keep_hidden < 1.0 || self.keep_layers.iter().any(|&k| k < 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<()>) -> &'static str {
        match r {
            Err(ModelError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_build_the_lab_network() {
        assert!(ModelConfig::default().validate().is_ok());
        assert!(OptimConfig::default().validate().is_ok());
        assert!(RegConfig::default().validate(1).is_ok());
        let net = ModelConfig::default().build(784, 10, 1).unwrap();
        assert_eq!(net.architecture().sizes, vec![784, 800, 10]);
        assert_eq!(
            OptimConfig::default().schedule(30),
            LrSchedule::Fixed {
                lr: 0.5,
                max_epochs: 30
            }
        );
        assert!(!RegConfig::default().drops_out());
        assert_eq!(RegConfig::default().max_norm(), None);
    }

    #[test]
    fn toml_spellings() {
        let m: ModelConfig = serde_json::from_str(
            r#"{"hidden":[3],"activation":"relu","output":"linear","init":"glorot",
                "init_hidden":0.2,"init_output":0.1}"#,
        )
        .unwrap();
        assert_eq!(
            (m.activation, m.output, m.init()),
            (Activation::Relu, Output::Linear, Init::Glorot)
        );
        let o: OptimConfig = serde_json::from_str(
            r#"{"lr":1,"momentum":0,"schedule":"newbob","lr_list":[],"decay":1,
                "newbob_threshold":0.01}"#,
        )
        .unwrap();
        assert_eq!(o.schedule, ScheduleKind::Newbob);
        assert!(
            serde_json::from_str::<ScheduleKind>(r#""linear""#)
                .unwrap_err()
                .to_string()
                .contains("expected one of `fixed`, `list`, `exponential`, `newbob`")
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let bad_optim = |f: fn(&mut OptimConfig)| {
            let mut o = OptimConfig::default();
            f(&mut o);
            field(o.validate())
        };
        assert_eq!(bad_optim(|o| o.lr = 0.0), "lr");
        assert_eq!(bad_optim(|o| o.momentum = 1.0), "momentum");
        assert_eq!(bad_optim(|o| o.schedule = ScheduleKind::List), "lr_list");
        assert_eq!(bad_optim(|o| o.lr_list = vec![0.1, -1.0]), "lr_list");
        assert_eq!(bad_optim(|o| o.decay = 1.5), "decay");
        assert_eq!(bad_optim(|o| o.newbob_threshold = -1.0), "newbob_threshold");
        let bad_reg = |f: fn(&mut RegConfig)| {
            let mut r = RegConfig::default();
            f(&mut r);
            field(r.validate(2))
        };
        assert_eq!(bad_reg(|r| r.l2 = -1.0), "l2");
        assert_eq!(bad_reg(|r| r.keep_input = 0.0), "keep_input");
        assert_eq!(bad_reg(|r| r.keep_layers = vec![0.5]), "keep_layers");
        assert_eq!(bad_reg(|r| r.keep_layers = vec![0.5, 2.0]), "keep_layers");
        let m = ModelConfig {
            hidden: vec![800, 0],
            ..ModelConfig::default()
        };
        assert_eq!(field(m.validate()), "hidden");
        let m = ModelConfig {
            init_output: 0.0,
            ..ModelConfig::default()
        };
        assert_eq!(field(m.validate()), "init_output");
    }

    #[test]
    fn reg_builds_penalty_keep_and_max_norm() {
        let r = RegConfig {
            l1: 1e-4,
            penalize_biases: true,
            keep_input: 0.8,
            keep_layers: vec![0.5, 0.9],
            max_norm: 3.0,
            ..RegConfig::default()
        };
        assert_eq!(r.penalty().bias_terms(), (1e-4, 0.0));
        let k = r.keep();
        assert_eq!((k.keep_of(0), k.keep_of(1), k.keep_of(2)), (0.8, 0.5, 0.9));
        assert_eq!(r.max_norm(), Some(3.0));
        assert!(r.drops_out());
        assert_eq!(r.reported_penalty(10), r.penalty());
    }

    /// `convention` defaults to `mean`, is left out when `mean` (so older records keep
    /// their bytes) and reads `lab2015`, whose reported penalty is over the batch size.
    #[test]
    fn convention_spelling_default_and_reported_penalty() {
        let mean = serde_json::to_string(&RegConfig::default()).unwrap();
        assert!(!mean.contains("convention"), "{mean}");
        let back: RegConfig = serde_json::from_str(&mean).unwrap();
        assert_eq!(back.convention, PenaltyConvention::Mean);
        let lab = RegConfig {
            l1: 1e-4,
            l2: 2e-4,
            convention: PenaltyConvention::Lab2015,
            ..RegConfig::default()
        };
        let json = serde_json::to_string(&lab).unwrap();
        assert!(json.ends_with(r#""convention":"lab2015"}"#), "{json}");
        assert_eq!(serde_json::from_str::<RegConfig>(&json).unwrap(), lab);
        let p = lab.reported_penalty(10);
        assert_eq!(
            (p.l1, p.l2, p.penalize_biases),
            (1e-4f32 / 10.0, 2e-4f32 / 10.0, true)
        );
        assert!(
            !lab.penalty().penalize_biases,
            "the configured penalty is unchanged"
        );
        assert!(
            serde_json::from_str::<PenaltyConvention>(r#""lab""#)
                .unwrap_err()
                .to_string()
                .contains("expected `mean` or `lab2015`")
        );
    }
}
