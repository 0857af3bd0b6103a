//! The data cost of the output layer, per example, and its gradient with respect to the
//! output pre-activation `z` (not divided by the batch size; the update scales by `1/B`).
//!
//! ```text
//! softmax:  y = softmax(z),  loss_n = -ln y_{t_n},             dloss_n/dz = y - onehot(t_n)
//! linear:   y = z,           loss_n = 1/2 sum_j (z_j - onehot(t_n)_j)^2,  dloss_n/dz = z - onehot(t_n)
//! ```
//!
//! The batch data cost is the mean of `loss_n`; sums of losses are always taken in f64,
//! one example at a time in example order, so they do not depend on how a dataset is
//! cut into batches.

use crate::arch::Output;
use regulab_kernels::activation::softmax_xent;

/// Writes `grad = dloss_n/dz` and `loss[n]` for each row of `z` (`rows x cols`), and
/// returns `sum_n loss[n]` (f64, example order).
pub(crate) fn output_loss(
    output: Output,
    z: &[f32],
    zeros: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    loss: &mut [f32],
) -> f64 {
    match output {
        // `z` already holds the bias: the kernel adds `zeros`.
        Output::Softmax => {
            softmax_xent(z, zeros, labels, grad, loss);
        }
        Output::Linear => squared_error(z, zeros.len(), labels, grad, loss),
    }
    loss.iter().map(|&l| l as f64).sum()
}

/// `grad = z - onehot(t)` (f32) and `loss_n = 1/2 sum_j grad_j^2` (accumulated in f64
/// over `j` in order, rounded to f32).
fn squared_error(z: &[f32], cols: usize, labels: &[u32], grad: &mut [f32], loss: &mut [f32]) {
    for (((zr, gr), &t), l) in z
        .chunks_exact(cols)
        .zip(grad.chunks_exact_mut(cols))
        .zip(labels)
        .zip(loss.iter_mut())
    {
        let mut s = 0.0f64;
        for (j, (g, &zj)) in gr.iter_mut().zip(zr).enumerate() {
            *g = if j == t as usize { zj - 1.0 } else { zj };
            s += *g as f64 * *g as f64;
        }
        *l = (0.5 * s) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_error_by_hand() {
        let z = [0.5f32, 2.0, -1.0, 1.0, 0.0, 0.0];
        let mut g = [0.0f32; 6];
        let mut loss = [0.0f32; 2];
        let s = output_loss(Output::Linear, &z, &[0.0; 3], &[1, 0], &mut g, &mut loss);
        assert_eq!(g, [0.5, 1.0, -1.0, 0.0, 0.0, 0.0]);
        assert_eq!(loss, [0.5 * (0.25 + 1.0 + 1.0), 0.0]);
        assert_eq!(s, 1.125);
    }
}
