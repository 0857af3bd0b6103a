//! Activations, fused softmax + cross-entropy, argmax and column sums (STUB: API only).
//!
//! Matrices are row-major `rows x cols` slices; `cols` is given by the bias length.

use serde::{Deserialize, Serialize};

/// A hidden-layer (or output) nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `1 / (1 + exp(-a))`, `a` clamped to [-30, 30] as in the lab.
    Sigmoid,
    /// `tanh(a)`.
    Tanh,
    /// `max(a, 0)`.
    Relu,
    /// `a` (linear).
    Identity,
}

/// In place `z[r, j] = f(z[r, j] + bias[j])` for every row `r`.
pub fn forward(act: Activation, z: &mut [f32], bias: &[f32]) {
    let _ = (act, z, bias);
    todo!("activation::forward")
}

/// In place `g = g * f'(a)` expressed through the output `h = f(a)`:
/// sigmoid `h (1 - h)`, tanh `1 - h^2`, ReLU `[h > 0]`, identity 1.
pub fn backward(act: Activation, h: &[f32], g: &mut [f32]) {
    let _ = (act, h, g);
    todo!("activation::backward")
}

/// Fused softmax + cross-entropy, numerically stable (log-sum-exp).
///
/// For each row `r` of `logits` (`rows x cols`, cols = bias.len()): `z = logits + bias`,
/// `y = softmax(z)`; writes `y - onehot(labels[r])` into `grad` (may alias nothing),
/// writes `-log y[labels[r]]` into `loss[r]`, and returns the row-order f64 sum of losses.
pub fn softmax_xent(
    logits: &[f32],
    bias: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    loss: &mut [f32],
) -> f64 {
    let _ = (logits, bias, labels, grad, loss);
    todo!("activation::softmax_xent")
}

/// Index of the largest element of each row (first on ties) into `out`.
pub fn argmax_rows(x: &[f32], cols: usize, out: &mut [u32]) {
    let _ = (x, cols, out);
    todo!("activation::argmax_rows")
}

/// `out[j] = sum_r x[r, j]` (rows summed in order 0, 1, 2, ... : fixed order).
pub fn col_sums(x: &[f32], cols: usize, out: &mut [f32]) {
    let _ = (x, cols, out);
    todo!("activation::col_sums")
}
