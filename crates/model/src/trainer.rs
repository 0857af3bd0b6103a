//! Minibatch SGD (with optional momentum) on an [`Mlp`], with L1/L2 penalties, dropout
//! and max-norm; also the materialised gradient used by the gradient checks.
//!
//! One step on a batch of `B` examples, with `lr` the caller's learning rate and the
//! summed data gradients of the backward pass (`x~_i` is the input of layer `i` after
//! dropout, `delta_i[n] = dloss_n / da_i[n]`; deltas go down through the old weights):
//! ```text
//! delta_{i-1} = (delta_i W_i^T) * m_i / p_i * f'(h_{i-1})
//! G_i = x~_i^T delta_i                        g_i = sum_n delta_i[n, :]
//! d_W = G_i / B + l2 * W + l1 * sgn(W)        (sgn(0) = 0)
//! d_b = g_i / B [+ l2 * b + l1 * sgn(b)  if penalize_biases]
//! plain SGD:  W <- W - lr * d_W
//! momentum:   V <- mu * V - lr * d_W;  W <- W + V        (same for b)
//! max-norm:   W[:, j] <- W[:, j] * c / ||W[:, j]||  where ||W[:, j]|| > c
//! ```
//! which is gradient descent on the cost
//! `C = (1/B) sum_n loss_n + l1 * sum |w| + l2/2 * sum w^2`. That is the default
//! penalty convention, [`PenaltyConvention::Mean`]; under
//! [`PenaltyConvention::Lab2015`] (the 2015 lab's code) the same step runs with `l1 / B`,
//! `l2 / B` in place of `l1`, `l2` and the biases penalised, i.e.
//! `d_W = (G_i + l2 * W + l1 * sgn(W)) / B` and likewise `d_b` (see the enum).
//!
//! # Update paths
//!
//! * [`UpdatePath::FusedGradient`]: `G = x~^T delta` into a buffer, then one fused pass
//!   `update::sgd` (or `sgd_momentum`) over `W`. Required for momentum.
//! * [`UpdatePath::GradientFree`]: `W <- W - lr (l2 W + l1 sgn W)` (`update::decay`),
//!   `delta <- delta * (-lr/B)`, then `W += x~^T delta` by the GEMM with beta = 1: `G`
//!   never exists. Same mathematics, different rounding (so a different, but equally
//!   reproducible, bit pattern).
//!
//! The default ([`UpdatePath::default`]) is [`UpdatePath::GradientFree`]; see its
//! documentation for the measurement behind the choice. With momentum the fused path is
//! always used.

use crate::bounds;
use crate::error::{ModelError, Result};
use crate::keep::{FixedKeep, KeepSchedule};
use crate::network::Mlp;
use crate::pass::{self, DropoutPlan, Sink};
use crate::penalty::{Penalty, PenaltyConvention, max_norm};
use crate::workspace::Workspace;
use regulab_kernels::dropout::Keep;
use regulab_kernels::update::{Step, sgn};
use serde::{Deserialize, Serialize};

/// Which update implementation a [`Trainer`] uses when momentum is off.
///
/// The default is `GradientFree`. Whole training steps (forward, backward, update),
/// 784-800-10 sigmoid/softmax, L2 = 1e-5, release build, rayon pool of 2, best of 5
/// epochs of 1000 examples, three runs on the shared 2-core development machine (load
/// average ~7 from concurrent builds, so +-10 % noise):
///
/// ```text
/// batch 10:   fused 67.6 / 68.6 / 63.5 ms per epoch    G-free 60.1 / 63.0 / 66.3 ms
/// batch 100:  fused 47.5 / 42.5 / 41.4 ms              G-free 39.2 / 49.1 / 40.3 ms
/// ```
///
/// i.e. G-free is as fast or slightly faster at the lab's batch of 10, and it never
/// allocates the `in x out` gradient buffers (2.5 MB for 784x800): with penalties it
/// makes two passes over `W` (decay, then the accumulating GEMM) where the fused path
/// makes three (write `G`, read `G` and `W`, write `W`), and one fewer without penalties
/// (`decay` is skipped when `l1 = l2 = 0`). The choice changes the bits of the trained
/// weights (not the mathematics; see the `update_paths_agree_up_to_rounding` test), so
/// it is part of the config. With momentum the fused path is always used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePath {
    /// Materialise `G`, then one fused SGD pass.
    FusedGradient,
    /// Penalty pass, then accumulate `-lr/B x~^T delta` straight into `W`.
    #[default]
    GradientFree,
}

/// Hyper-parameters of training that do not change per epoch (the learning rate comes
/// from a [`crate::LrSchedule`], dropout from a [`KeepSchedule`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// L1 / L2 penalties.
    #[serde(default)]
    pub penalty: Penalty,
    /// How `penalty`'s coefficients enter a step: `mean` (default) or the 2015 lab's
    /// `lab2015` (see [`PenaltyConvention`]).
    #[serde(default, skip_serializing_if = "PenaltyConvention::is_mean")]
    pub convention: PenaltyConvention,
    /// Momentum `mu` in [0, 1); 0 = plain SGD (no velocity buffers).
    #[serde(default)]
    pub momentum: f32,
    /// Max-norm bound `c` on each unit's incoming weight vector (off if `None`).
    #[serde(default)]
    pub max_norm: Option<f32>,
    /// Seed of the dropout masks (the experiment seed).
    #[serde(default)]
    pub seed: u64,
    /// Update implementation when momentum is off.
    #[serde(default)]
    pub update_path: UpdatePath,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            penalty: Penalty::none(),
            convention: PenaltyConvention::Mean,
            momentum: 0.0,
            max_norm: None,
            seed: 0,
            update_path: UpdatePath::default(),
        }
    }
}

impl TrainConfig {
    /// `Err` naming the field for a negative/non-finite penalty, momentum outside
    /// [0, 1) or a non-positive max-norm.
    pub fn validate(&self) -> Result<()> {
        self.penalty.validate()?;
        bounds::momentum("momentum", self.momentum)?;
        if let Some(c) = self.max_norm {
            bounds::positive("max_norm", c)?;
        }
        Ok(())
    }

    /// The penalty in the `mean` convention that this config's steps apply on a batch
    /// of `batch` examples ([`PenaltyConvention::per_example`]); with the configured
    /// batch size, the penalty part of the cost to report (e.g. to [`crate::evaluate`]).
    pub fn per_example_penalty(&self, batch: usize) -> Penalty {
        self.convention.per_example(self.penalty, batch)
    }
}

/// What one training step saw (on the dropped-out network).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Examples in the batch.
    pub n: usize,
    /// Sum of the per-example data costs (f64, example order).
    pub nll_sum: f64,
    /// Examples whose argmax output equals the label.
    pub correct: usize,
}

/// Full gradients of the cost `C = (1/B) sum_n loss_n + penalty` at the current weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// `dC/dW_i`, row-major `[in, out]` like the weights.
    pub weights: Vec<Vec<f32>>,
    /// `dC/db_i`.
    pub biases: Vec<Vec<f32>>,
    /// Mean data cost of the batch.
    pub nll: f64,
    /// Penalty part of the cost.
    pub penalty: f64,
}

/// Serialisable scalar state of a trainer (weights and velocities are tensors: see
/// [`Trainer::net`], [`Trainer::velocity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Global minibatch counter (the `step` of the dropout mask keys).
    pub step: u64,
    /// Current epoch (the one the dropout schedule was last evaluated for).
    pub epoch: u32,
}

/// Trains one network: owns it, its training workspace, gradient and velocity buffers,
/// the dropout schedule and the global step counter.
#[derive(Debug)]
pub struct Trainer {
    net: Mlp,
    cfg: TrainConfig,
    dropout: Box<dyn KeepSchedule>,
    keeps: Vec<Option<Keep>>,
    epoch: u32,
    step: u64,
    ws: Workspace,
    gw: Vec<Vec<f32>>,
    gb: Vec<Vec<f32>>,
    vel: Option<Vec<(Vec<f32>, Vec<f32>)>>,
    norms: Vec<f64>,
}

impl Trainer {
    /// A trainer without dropout, at epoch 1, step 0, with a workspace for batches of
    /// `batch` rows (it grows if a larger batch comes).
    pub fn new(net: Mlp, cfg: TrainConfig, batch: usize) -> Result<Trainer> {
        cfg.validate()?;
        let arch = net.architecture().clone();
        let l = arch.n_layers();
        let shapes: Vec<(usize, usize)> = (0..l).map(|i| arch.layer_shape(i)).collect();
        let zeros = |a: usize, b: usize| (vec![0.0f32; a * b], vec![0.0f32; b]);
        let vel: Option<Vec<_>> =
            (cfg.momentum != 0.0).then(|| shapes.iter().map(|&(a, b)| zeros(a, b)).collect());
        // the weight-gradient buffers exist only where the update needs them (the
        // G-free path does not; `gradients` creates them on first use)
        let fused = vel.is_some() || cfg.update_path == UpdatePath::FusedGradient;
        let gw = shapes
            .iter()
            .map(|&(a, b)| if fused { vec![0.0; a * b] } else { Vec::new() })
            .collect();
        let gb = shapes.iter().map(|&(_, b)| vec![0.0; b]).collect();
        // The input-gradient GEMM of layer i has inner dimension n_out(i); its direct
        // kernel keeps a per-thread panel buffer: size it now on every thread of the
        // current pool, so no later minibatch allocates (see tests/alloc.rs).
        // The zero-skipping kernels keep the nonzero pattern of a layer's input
        // (batch x n_in) and accumulator rows (batch, or n_in for the weight
        // gradient) likewise.
        regulab_kernels::gemm::reserve_thread_buffers(
            shapes.iter().skip(1).map(|&(_, b)| b).max().unwrap_or(0),
            batch.max(shapes.iter().map(|&(a, _)| a).max().unwrap_or(0)),
            batch * shapes.iter().map(|&(a, _)| a).max().unwrap_or(0),
        );
        let mut t = Trainer {
            ws: Workspace::new(&arch, batch),
            norms: vec![0.0; arch.sizes.iter().copied().max().unwrap_or(0)],
            net,
            cfg,
            dropout: Box::new(FixedKeep::none()),
            keeps: vec![None; l],
            epoch: 1,
            step: 0,
            gw,
            gb,
            vel,
        };
        t.set_epoch(1)?;
        Ok(t)
    }

    /// Use a dropout schedule (re-evaluated for the current epoch at once).
    pub fn with_dropout(mut self, schedule: impl KeepSchedule + 'static) -> Result<Trainer> {
        self.set_dropout(Box::new(schedule))?;
        Ok(self)
    }

    /// Replace the dropout schedule (re-evaluated for the current epoch at once).
    pub fn set_dropout(&mut self, schedule: Box<dyn KeepSchedule>) -> Result<()> {
        self.dropout = schedule;
        self.set_epoch(self.epoch)
    }

    /// Start training epoch `epoch` (1-based): evaluates the dropout schedule for every
    /// dropout layer; `Err` if a keep probability is outside (0, 1]. Keep 1 means no
    /// dropout on that layer.
    pub fn set_epoch(&mut self, epoch: u32) -> Result<()> {
        for (layer, slot) in self.keeps.iter_mut().enumerate() {
            let p = self.dropout.keep(epoch, layer);
            let k = Keep::new(p).map_err(|source| ModelError::DropoutKeep {
                layer,
                epoch,
                source,
            })?;
            *slot = (p != 1.0).then_some(k);
        }
        self.epoch = epoch;
        Ok(())
    }

    /// The keep probability in force per dropout layer (1 = none).
    pub fn keeps(&self) -> Vec<f32> {
        self.keeps
            .iter()
            .map(|k| k.map_or(1.0, |k| k.get()))
            .collect()
    }

    /// One SGD step on a batch (`x`: `B x inputs` row-major, `labels`: `B` class indices;
    /// for a linear output the target is `onehot(label)`), with the dropout masks of
    /// `(seed, layer, step)`; then `step += 1`. Returns what the step saw.
    ///
    /// No heap allocation once the workspace holds `B` rows.
    pub fn train_batch(&mut self, x: &[f32], labels: &[u32], lr: f32) -> Result<StepStats> {
        // the rate of one step may be 0 (a decaying schedule can reach it)
        bounds::non_negative("learning_rate", lr)?;
        let rows = pass::check_batch(&self.net, &mut self.ws, x, labels)?;
        let (nll_sum, correct) = self.forward_loss(x, labels, rows);
        // lab2015: the coefficients over this batch's rows, biases penalised
        let p = self.cfg.per_example_penalty(rows);
        let grad_scale = 1.0 / rows as f32;
        let w_step = Step {
            lr,
            grad_scale,
            l1: p.l1,
            l2: p.l2,
        };
        let (bl1, bl2) = p.bias_terms();
        let b_step = Step {
            l1: bl1,
            l2: bl2,
            ..w_step
        };
        let sink = match (&mut self.vel, self.cfg.update_path) {
            (None, UpdatePath::GradientFree) => Sink::GradientFree {
                gb: &mut self.gb,
                w_step,
                b_step,
            },
            (vel, _) => Sink::Fused {
                gw: &mut self.gw,
                gb: &mut self.gb,
                vel: vel.as_deref_mut(),
                mu: self.cfg.momentum,
                w_step,
                b_step,
            },
        };
        pass::backward(&mut self.net, &mut self.ws, x, sink);
        if let Some(c) = self.cfg.max_norm {
            for layer in self.net.layers_mut() {
                let n_out = layer.n_out();
                max_norm(layer.weight_mut(), n_out, c, &mut self.norms);
            }
        }
        self.step += 1;
        Ok(StepStats {
            n: rows,
            nll_sum,
            correct,
        })
    }

    fn forward_loss(&mut self, x: &[f32], labels: &[u32], rows: usize) -> (f64, usize) {
        let plan = DropoutPlan {
            seed: self.cfg.seed,
            step: self.step,
            keeps: &self.keeps,
        };
        pass::forward(&self.net, &mut self.ws, x, rows, Some(plan));
        pass::loss_and_predictions(&self.net, &mut self.ws, labels)
    }

    /// The gradient of the cost on a batch at the current weights, with the dropout
    /// masks training would use at the current step (the step is not advanced; the
    /// masks are readable afterwards through [`Trainer::workspace`]). Computed by the
    /// same forward/backward code as [`Trainer::train_batch`]:
    /// `dC/dW = G / B + l2 W + l1 sgn(W)` (in this order, f32, as the update kernel),
    /// with `l1`, `l2` and the bias terms of [`TrainConfig::per_example_penalty`] for the
    /// batch's `B` rows (so under `lab2015`, `(G + l2 W + l1 sgn W) / B` up to rounding);
    /// `penalty` is that penalty's value.
    pub fn gradients(&mut self, x: &[f32], labels: &[u32]) -> Result<Gradients> {
        let rows = pass::check_batch(&self.net, &mut self.ws, x, labels)?;
        for (g, l) in self.gw.iter_mut().zip(self.net.layers()) {
            g.resize(l.weight().len(), 0.0);
        }
        let (nll_sum, _) = self.forward_loss(x, labels, rows);
        pass::backward(
            &mut self.net,
            &mut self.ws,
            x,
            Sink::Gradients {
                gw: &mut self.gw,
                gb: &mut self.gb,
            },
        );
        let p = self.cfg.per_example_penalty(rows);
        let scale = 1.0 / rows as f32;
        let full = |g: &[f32], w: &[f32], l1: f32, l2: f32| -> Vec<f32> {
            g.iter()
                .zip(w)
                .map(|(&g, &w)| ((g * scale) + (l2 * w)) + (l1 * sgn(w)))
                .collect()
        };
        let (bl1, bl2) = p.bias_terms();
        let layers = self.net.layers();
        Ok(Gradients {
            weights: (0..layers.len())
                .map(|i| full(&self.gw[i], layers[i].weight(), p.l1, p.l2))
                .collect(),
            biases: (0..layers.len())
                .map(|i| full(&self.gb[i], layers[i].bias(), bl1, bl2))
                .collect(),
            nll: nll_sum / rows as f64,
            penalty: self.net.penalty(&p),
        })
    }

    /// The network.
    pub fn net(&self) -> &Mlp {
        &self.net
    }
    /// Mutable network (e.g. to load weights for a resume).
    pub fn net_mut(&mut self) -> &mut Mlp {
        &mut self.net
    }
    /// Give the network back.
    pub fn into_net(self) -> Mlp {
        self.net
    }
    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    /// The training workspace (dropout masks, per-example losses of the last step).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }
    /// Global minibatch counter: the number of steps taken (the dropout `step` key of
    /// the next step).
    pub fn step(&self) -> u64 {
        self.step
    }
    /// Set the step counter (resume).
    pub fn set_step(&mut self, step: u64) {
        self.step = step;
    }
    /// Current epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    /// Scalar state for a checkpoint.
    pub fn state(&self) -> TrainerState {
        TrainerState {
            step: self.step,
            epoch: self.epoch,
        }
    }
    /// Restore the scalar state (re-evaluates the dropout schedule for the epoch).
    pub fn restore_state(&mut self, s: TrainerState) -> Result<()> {
        self.step = s.step;
        self.set_epoch(s.epoch)
    }
    /// Velocity `(V_W, V_b)` of layer `i` (momentum only; `V_W` row-major `[in, out]`).
    pub fn velocity(&self, i: usize) -> Option<(&[f32], &[f32])> {
        self.vel
            .as_ref()
            .and_then(|v| v.get(i))
            .map(|(w, b)| (w.as_slice(), b.as_slice()))
    }
    /// Mutable velocity of layer `i` (resume).
    pub fn velocity_mut(&mut self, i: usize) -> Option<(&mut [f32], &mut [f32])> {
        self.vel
            .as_mut()
            .and_then(|v| v.get_mut(i))
            .map(|(w, b)| (w.as_mut_slice(), b.as_mut_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, MlpBuilder, Output};

    /// The harness trains several runs on separate threads.
    #[test]
    fn trainer_is_send() {
        fn send<T: Send + 'static>(_: &T) {}
        let net = MlpBuilder::new(3)
            .hidden(2, Activation::Tanh)
            .output(2, Output::Softmax)
            .build()
            .unwrap();
        let t = Trainer::new(net, TrainConfig::default(), 1).unwrap();
        send(&t);
        assert_eq!(t.keeps(), vec![1.0, 1.0]);
        assert_eq!(t.state(), TrainerState { step: 0, epoch: 1 });
        assert!(t.velocity(0).is_none());
    }

    #[test]
    fn config_serde_defaults() {
        let c: TrainConfig = serde_json::from_str(r#"{"penalty":{"l2":0.001}}"#).unwrap();
        assert_eq!(c.penalty, Penalty::new(0.0, 0.001));
        assert_eq!(c.update_path, UpdatePath::GradientFree);
        assert_eq!(c.max_norm, None);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"bogus":1}"#).is_err());
    }
}
