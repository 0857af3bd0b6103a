//! Evaluation of a network on a dataset fed in batches of any size: data cost, penalty,
//! total cost, accuracy and predictions, without dropout.
//!
//! ```text
//! nll      = (1/N) sum_n loss_n            (f64, summed one example at a time, in order)
//! penalty  = l1 sum |w| + l2/2 sum w^2     (weights; biases only if penalize_biases)
//! cost     = nll + penalty
//! accuracy = (1/N) #{n : argmax_j z_nj = t_n}
//! ```
//!
//! Each example's loss is computed independently of the other rows of its batch (the
//! GEMM computes rows independently and the kernels work row by row), and the sum runs
//! over examples in order, so the result has the same bits for any batch size.

use crate::error::Result;
use crate::network::Mlp;
use crate::pass;
use crate::penalty::Penalty;
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};

/// Results of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Number of examples.
    pub n: usize,
    /// Mean data cost (NaN when `n = 0`).
    pub nll: f64,
    /// Penalty part of the cost.
    pub penalty: f64,
    /// `nll + penalty`.
    pub cost: f64,
    /// Number of correct predictions.
    pub correct: usize,
    /// `correct / n` (NaN when `n = 0`).
    pub accuracy: f64,
}

impl EvalStats {
    /// `1 - accuracy` (what [`crate::LrSchedule::observe`] takes).
    pub fn error(&self) -> f64 {
        1.0 - self.accuracy
    }
}

/// Accumulates per-example results over batches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluator {
    n: usize,
    nll_sum: f64,
    correct: usize,
}

impl Evaluator {
    /// Nothing seen yet.
    pub fn new() -> Evaluator {
        Evaluator::default()
    }

    /// Evaluate one batch (`x`: `B x inputs`, `labels`: `B`) without dropout; returns the
    /// batch's predictions (argmax, first on ties). No allocation once `ws` holds `B` rows.
    pub fn add_batch<'w>(
        &mut self,
        net: &Mlp,
        ws: &'w mut Workspace,
        x: &[f32],
        labels: &[u32],
    ) -> Result<&'w [u32]> {
        let rows = pass::check_batch(net, ws, x, labels)?;
        pass::forward(net, ws, x, rows, None);
        pass::loss_and_predictions(net, ws, labels);
        for &l in ws.losses() {
            self.nll_sum += l as f64;
        }
        self.correct += ws
            .predictions()
            .iter()
            .zip(labels)
            .filter(|(p, t)| p == t)
            .count();
        self.n += rows;
        Ok(ws.predictions())
    }

    /// Examples seen so far.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The statistics, with the penalty of `net`'s current weights.
    pub fn finish(&self, net: &Mlp, penalty: &Penalty) -> EvalStats {
        let n = self.n as f64;
        let nll = self.nll_sum / n;
        let pen = net.penalty(penalty);
        EvalStats {
            n: self.n,
            nll,
            penalty: pen,
            cost: nll + pen,
            correct: self.correct,
            accuracy: self.correct as f64 / n,
        }
    }
}

/// Evaluate a whole dataset (`x`: `N x inputs`, `labels`: `N`) in batches of `batch` rows.
pub fn evaluate(
    net: &Mlp,
    ws: &mut Workspace,
    x: &[f32],
    labels: &[u32],
    batch: usize,
    penalty: &Penalty,
) -> Result<EvalStats> {
    let d = net.architecture().n_inputs();
    let batch = batch.max(1);
    if x.len() != labels.len() * d {
        return Err(crate::ModelError::InputShape {
            rows: labels.len(),
            inputs: d,
            found: x.len(),
        });
    }
    let mut ev = Evaluator::new();
    for (xb, lb) in x.chunks(batch * d).zip(labels.chunks(batch)) {
        ev.add_batch(net, ws, xb, lb)?;
    }
    Ok(ev.finish(net, penalty))
}
