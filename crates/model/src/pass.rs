//! The forward and backward passes over one minibatch, shared by training, gradient
//! computation and evaluation (one code path, so what the gradient check verifies is
//! what training runs).
//!
//! Forward, for layers `i = 0 .. L-1` (`x_0` = the batch, `m_i` the dropout mask of
//! dropout layer `i` and `p_i` its keep probability; no dropout at evaluation):
//! ```text
//! x~_i = x_i * m_i / p_i             (inverted dropout, only where p_i < 1)
//! a_i  = x~_i W_i + b_i
//! x_{i+1} = h_i = f_i(a_i)           (hidden layers); z = a_{L-1} (output)
//! ```
//! Backward, with `delta_{L-1} = dloss_n/dz` (see [`crate::cost`]):
//! ```text
//! G_i     = x~_i^T delta_i            g_i = sum_n delta_i[n, :]      (gradients, times B)
//! delta_{i-1} = (delta_i W_i^T) * m_i / p_i * f'_{i-1}(h_{i-1})
//! ```
//! `delta_{i-1}` is always computed from the old `W_i`, before layer `i` is updated.

use crate::cost::output_loss;
use crate::error::{ModelError, Result};
use crate::network::Mlp;
use crate::workspace::Workspace;
use regulab_kernels::activation::{self, argmax_rows, col_sums};
use regulab_kernels::dropout::{self, Keep, MaskKey};
use regulab_kernels::gemm::{Accumulate, Op, gemm};
use regulab_kernels::update::{self, Step};

/// Dropout of a training pass: masks keyed `(seed, layer, step)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropoutPlan<'a> {
    pub seed: u64,
    pub step: u64,
    /// Per dropout layer: `None` = no dropout (keep 1).
    pub keeps: &'a [Option<Keep>],
}

/// What the backward pass does with each layer's gradient.
pub(crate) enum Sink<'a> {
    /// Store `G_i` and `g_i` (un-normalised) into the buffers; no update.
    Gradients {
        gw: &'a mut [Vec<f32>],
        gb: &'a mut [Vec<f32>],
    },
    /// Fused-G update: `G_i` into `gw`, then `update::sgd` (or `sgd_momentum`).
    Fused {
        gw: &'a mut [Vec<f32>],
        gb: &'a mut [Vec<f32>],
        vel: Option<&'a mut [(Vec<f32>, Vec<f32>)]>,
        mu: f32,
        w_step: Step,
        b_step: Step,
    },
    /// G-free update (no momentum): decay `W`, then `W += x~^T (delta * (-lr/B))`.
    GradientFree {
        gb: &'a mut [Vec<f32>],
        w_step: Step,
        b_step: Step,
    },
}

/// Validates a labelled batch against the network and prepares the workspace;
/// returns the number of rows.
pub(crate) fn check_batch(
    net: &Mlp,
    ws: &mut Workspace,
    x: &[f32],
    labels: &[u32],
) -> Result<usize> {
    let arch = net.architecture();
    let rows = labels.len();
    if rows == 0 {
        return Err(ModelError::EmptyBatch);
    }
    let d = arch.n_inputs();
    if Some(x.len()) != rows.checked_mul(d) {
        return Err(ModelError::InputShape {
            rows,
            inputs: d,
            found: x.len(),
        });
    }
    let c = arch.n_outputs();
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= c) {
        return Err(ModelError::LabelOutOfRange {
            row,
            label,
            classes: c,
        });
    }
    ws.prepare(&arch.sizes, rows)?;
    Ok(rows)
}

/// The input of weight layer `i` (after dropout where there is dropout), `len` values.
fn layer_input<'a>(
    i: usize,
    x: &'a [f32],
    inp: &'a [f32],
    h: &'a [Vec<f32>],
    hd: &'a [Vec<f32>],
    keeps: &[Option<Keep>],
    len: usize,
) -> &'a [f32] {
    match (i, keeps[i].is_some()) {
        (0, false) => x,
        (0, true) => &inp[..len],
        (_, false) => &h[i - 1][..len],
        (_, true) => &hd[i - 1][..len],
    }
}

/// Forward pass of `rows` examples (`x` is `rows x inputs`), with dropout if `plan` is
/// given. Shapes must have been checked ([`check_batch`] or `Workspace::prepare`).
pub(crate) fn forward(
    net: &Mlp,
    ws: &mut Workspace,
    x: &[f32],
    rows: usize,
    plan: Option<DropoutPlan<'_>>,
) {
    let arch = net.architecture();
    let l = arch.n_layers();
    let Workspace {
        inp,
        h,
        hd,
        masks,
        keeps,
        rows: ws_rows,
        ..
    } = ws;
    *ws_rows = rows;
    match plan {
        Some(p) => keeps.copy_from_slice(p.keeps),
        None => keeps.fill(None),
    }
    let key = |layer: usize| MaskKey {
        seed: plan.map_or(0, |p| p.seed),
        layer: layer as u32,
        step: plan.map_or(0, |p| p.step),
    };
    if let Some(k) = keeps[0] {
        let d = arch.n_inputs();
        dropout::forward(key(0), k, x, &mut inp[..rows * d], &mut masks[0]);
    }
    for i in 0..l {
        let (n_in, n_out) = arch.layer_shape(i);
        let layer = &net.layers()[i];
        let (lo, hi) = h.split_at_mut(i);
        let out = &mut hi[0][..rows * n_out];
        let input = layer_input(i, x, inp, lo, hd, keeps, rows * n_in);
        gemm(
            rows,
            n_out,
            n_in,
            input,
            Op::N,
            layer.weight(),
            Op::N,
            out,
            Accumulate::Overwrite,
        );
        activation::forward(arch.activation(i), out, layer.bias());
        if i + 1 < l
            && let Some(k) = keeps[i + 1]
        {
            dropout::forward(
                key(i + 1),
                k,
                out,
                &mut hd[i][..rows * n_out],
                &mut masks[i + 1],
            );
        }
    }
}

/// After [`forward`]: the output delta `dloss_n/dz`, per-example losses and
/// predictions. Returns `(sum of losses in f64, example order; number correct)`.
pub(crate) fn loss_and_predictions(net: &Mlp, ws: &mut Workspace, labels: &[u32]) -> (f64, usize) {
    let arch = net.architecture();
    let rows = ws.rows;
    let c = arch.n_outputs();
    let top = arch.n_layers() - 1;
    let z = &ws.h[top][..rows * c];
    let nll = output_loss(
        arch.output,
        z,
        &ws.zeros,
        labels,
        &mut ws.delta[top][..rows * c],
        &mut ws.loss[..rows],
    );
    let pred = &mut ws.pred[..rows];
    argmax_rows(z, c, pred);
    let correct = pred.iter().zip(labels).filter(|(p, t)| p == t).count();
    (nll, correct)
}

/// Backward pass (after [`forward`] and [`loss_and_predictions`] on the same batch `x`),
/// from the top layer down, giving each layer's gradient to `sink`.
pub(crate) fn backward(net: &mut Mlp, ws: &mut Workspace, x: &[f32], mut sink: Sink<'_>) {
    let l = net.n_layers();
    let Workspace {
        inp,
        h,
        hd,
        delta,
        masks,
        keeps,
        rows,
        ..
    } = ws;
    let rows = *rows;
    for i in (0..l).rev() {
        // short borrows of the architecture: `net` is updated below
        let (n_in, n_out) = net.architecture().layer_shape(i);
        let act_below = net.architecture().activation(i.saturating_sub(1));
        let (dlo, dhi) = delta.split_at_mut(i);
        let d_i = &mut dhi[0][..rows * n_out];
        let input = layer_input(i, x, inp, h, hd, keeps, rows * n_in);

        // 1. bias gradient (and weight gradient where it is materialised)
        match &mut sink {
            Sink::Gradients { gw, gb } | Sink::Fused { gw, gb, .. } => {
                gemm(
                    n_in,
                    n_out,
                    rows,
                    input,
                    Op::T,
                    d_i,
                    Op::N,
                    &mut gw[i],
                    Accumulate::Overwrite,
                );
                col_sums(d_i, n_out, &mut gb[i]);
            }
            Sink::GradientFree { gb, .. } => col_sums(d_i, n_out, &mut gb[i]),
        }

        // 2. delta of the layer below, through the old W_i
        if i > 0 {
            let d_prev = &mut dlo[i - 1][..rows * n_in];
            gemm(
                rows,
                n_in,
                n_out,
                d_i,
                Op::N,
                net.weight(i),
                Op::T,
                d_prev,
                Accumulate::Overwrite,
            );
            let h_prev = &h[i - 1][..rows * n_in];
            match keeps[i] {
                Some(k) => dropout::backward_act(k, &masks[i], act_below, h_prev, d_prev),
                None => activation::backward(act_below, h_prev, d_prev),
            }
        }

        // 3. update
        let (w, b) = net.layers_mut()[i].params_mut();
        match &mut sink {
            Sink::Gradients { .. } => {}
            Sink::Fused {
                gw,
                gb,
                vel,
                mu,
                w_step,
                b_step,
            } => match vel {
                Some(v) => {
                    let (vw, vb) = &mut v[i];
                    update::sgd_momentum(w, vw, &gw[i], *w_step, *mu);
                    update::sgd_momentum(b, vb, &gb[i], *b_step, *mu);
                }
                None => {
                    update::sgd(w, &gw[i], *w_step);
                    update::sgd(b, &gb[i], *b_step);
                }
            },
            Sink::GradientFree { gb, w_step, b_step } => {
                update::decay_cols(w, n_out, w_step.lr, w_step.l1, w_step.l2);
                update::scale(d_i, -(w_step.lr * w_step.grad_scale));
                gemm(
                    n_in,
                    n_out,
                    rows,
                    input,
                    Op::T,
                    d_i,
                    Op::N,
                    w,
                    Accumulate::Add,
                );
                update::sgd(b, &gb[i], *b_step);
            }
        }
    }
}
