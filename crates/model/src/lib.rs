//! The regulab MLP: layers, costs, L1/L2 penalties, dropout, SGD with momentum,
//! learning-rate and keep-probability schedules ([`keep`]), evaluation, and save/load as safetensors.
//!
//! # The model
//!
//! For a batch `X` (`B x D`, row-major f32) and layers `i = 0 .. L-1` with weights
//! `W_i` stored `[in, out]` and biases `b_i`:
//! ```text
//! x~_i = x_i * m_i / p_i                     dropout (training only; p_i = keep)
//! h_i  = f_i(x~_i W_i + b_i)                 f_i: sigmoid, tanh, ReLU, identity
//! z    = x~_{L-1} W_{L-1} + b_{L-1}          output: softmax + cross-entropy, or linear + squared error
//! C    = (1/B) sum_n loss_n + l1 sum|w| + l2/2 sum w^2
//! ```
//! and one SGD step `W <- W - lr (G/B + l2 W + l1 sgn W)` (see [`trainer`]). With the
//! 2015 lab's convention ([`PenaltyConvention::Lab2015`]) the step is
//! `W <- W - lr (G + l2 W + l1 sgn W) / B`, biases included.
//!
//! # Typical use (what the harness does)
//!
//! ```no_run
//! use regulab_model::*;
//! use regulab_kernels::activation::Activation;
//! # fn data() -> (Vec<f32>, Vec<u32>) { (vec![], vec![]) }
//! let net = MlpBuilder::new(784).hidden(800, Activation::Sigmoid)
//!     .output(10, Output::Softmax).seed(1).build()?;
//! let cfg = TrainConfig { penalty: Penalty::new(0.0, 1e-5), seed: 1, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(net, cfg, 10)?.with_dropout(FixedKeep::new(0.8, 0.5))?;
//! let mut schedule = LrSchedule::Fixed { lr: 0.5, max_epochs: 30 };
//! let mut eval_ws = Workspace::new(trainer.net().architecture(), 1000);
//! let (x, y) = data();
//! let mut epoch = 1;
//! while let Some(lr) = schedule.lr_for_epoch(epoch) {
//!     trainer.set_epoch(epoch)?;
//!     for (xb, yb) in x.chunks(10 * 784).zip(y.chunks(10)) {
//!         trainer.train_batch(xb, yb, lr)?;
//!     }
//!     let stats = evaluate(trainer.net(), &mut eval_ws, &x, &y, 1000, &trainer.config().penalty)?;
//!     if !schedule.observe(epoch, stats.error()) { break; }
//!     epoch += 1;
//! }
//! io::save(trainer.net(), std::path::Path::new("model.safetensors"))?;
//! # Ok::<(), ModelError>(())
//! ```

pub mod arch;
pub mod atomic;
pub mod bounds;
pub mod config;
mod cost;
pub mod error;
pub mod eval;
pub mod io;
pub mod keep;
pub mod network;
mod pass;
pub mod penalty;
pub mod schedule;
pub mod tensorfile;
pub mod trainer;
pub mod workspace;

pub use arch::{Architecture, Init, InitKind, Output};
pub use config::{ModelConfig, OptimConfig, RegConfig};
pub use error::{ModelError, Result};
pub use eval::{EvalStats, Evaluator, evaluate};
pub use keep::{FixedKeep, KeepSchedule, LinearRamp};
pub use network::{Layer, Mlp, MlpBuilder};
pub use penalty::{Penalty, PenaltyConvention};
pub use regulab_kernels::activation::Activation;
pub use schedule::{LrSchedule, NewBob, ScheduleKind};
pub use trainer::{Gradients, StepStats, TrainConfig, Trainer, TrainerState, UpdatePath};
pub use workspace::Workspace;
