//! Fused SGD updates with L1/L2 penalties, and penalty sums (STUB: API only).

/// Hyper-parameters of one SGD step on one parameter tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Learning rate.
    pub lr: f32,
    /// Multiplier of the summed gradient, normally 1 / batch size.
    pub grad_scale: f32,
    /// L1 weight (beta_L1).
    pub l1: f32,
    /// L2 weight (beta_L2).
    pub l2: f32,
}

/// `W <- W - lr * (G * grad_scale + l2 * W + l1 * sgn(W))`, sgn(0) = 0, one pass.
pub fn sgd(w: &mut [f32], g: &[f32], s: Step) {
    let _ = (w, g, s);
    todo!("update::sgd")
}

/// `V <- mu * V - lr * (G * grad_scale + l2 * W + l1 * sgn(W)); W <- W + V`, one pass.
pub fn sgd_momentum(w: &mut [f32], v: &mut [f32], g: &[f32], s: Step, mu: f32) {
    let _ = (w, v, g, s, mu);
    todo!("update::sgd_momentum")
}

/// Penalty-only pass of the G-free path: `W <- W - lr * (l2 * W + l1 * sgn(W))`
/// (a no-op when l1 = l2 = 0).
pub fn decay(w: &mut [f32], lr: f32, l1: f32, l2: f32) {
    let _ = (w, lr, l1, l2);
    todo!("update::decay")
}

/// `x <- x * s`.
pub fn scale(x: &mut [f32], s: f32) {
    let _ = (x, s);
    todo!("update::scale")
}

/// `(sum |w|, sum w^2)` accumulated in f64 in a fixed order (independent of threads).
pub fn penalty_sums(w: &[f32]) -> (f64, f64) {
    let _ = w;
    todo!("update::penalty_sums")
}
