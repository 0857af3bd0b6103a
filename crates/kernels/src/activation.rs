//! Activations (sigmoid, tanh, ReLU, identity) forward and backward, fused softmax +
//! cross-entropy, linear output + squared error, argmax and column sums.
//!
//! Matrices are row-major `rows x cols` slices; `cols` is given by the bias length
//! (or an explicit argument).
//!
//! # Same bits on every machine and every thread count
//!
//! Each elementwise kernel has a scalar, an AVX2 and an AVX-512 path, all generated
//! from one generic source (see [`crate::simd`]): they perform the same IEEE-754
//! operations in the same order, with our own `exp` (Cody-Waite reduction + Cephes
//! polynomial, no fused multiply-add, see [`exp`]) instead of a platform libm. So a
//! result does not depend on the SIMD class of the machine, which the tests check bit
//! for bit on random data, odd lengths and special values (a NaN result is NaN in every
//! path, but its payload is not specified, see [`crate::simd`]). The level in use is
//! [`simd::level`]; the `*_with` functions run a chosen one (tests and benchmarks).
//!
//! Large inputs are split into fixed blocks of about [`BLOCK`] or [`CHEAP_BLOCK`]
//! elements (whole rows, or [`COL_BLOCK`] columns for [`col_sums`]) run with rayon in the current pool; the
//! block size depends only on the shape, every element is computed the same way in any
//! block, and loss sums are taken afterwards in row order. So the bits do not depend on
//! the number of threads either.
//!
//! # Accuracy (f32 results against f64 references, tested)
//!
//! * `exp`: under [`EXP_MAX_ULP`] = 1 ulp over [-87, 88] (exhaustive: 0.991).
//! * sigmoid: under 3 ulp over [-30, 30] (exhaustive: 2.48), then clamped.
//! * tanh: under 1.5 ulp, relative, over [-10, 10] (exhaustive: 1.33; an odd
//!   polynomial below |a| = 0.625, so no cancellation near 0); +-1 beyond.
//!
//! # Argument errors
//!
//! Shapes and labels are checked and a violation panics with a message: these
//! functions are called by the model, which validates user data (labels, dimensions)
//! beforehand and returns typed errors.

mod elementary;
pub(crate) mod rows;

use crate::simd::{self, Level, require};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use elementary::EXP_MAX_ULP;

/// Elements per parallel task of the exp-based kernels (sigmoid, tanh, softmax,
/// `exp_with`; a multiple of 16): inputs up to this size run inline, larger ones are
/// cut into blocks of `max(1, BLOCK / cols)` whole rows (or `BLOCK` elements).
pub const BLOCK: usize = 16 * 1024;

/// Elements per parallel task of the cheap, memory-bound kernels (ReLU and identity
/// forward, every backward, [`mse`]): a thread hand-off costs more than these take
/// below about a MiB of data.
pub const CHEAP_BLOCK: usize = 256 * 1024;

/// Columns per parallel task of [`col_sums`] (a multiple of 16), used when the input
/// has more than [`CHEAP_BLOCK`] elements and more than `COL_BLOCK` columns.
pub const COL_BLOCK: usize = 1024;

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

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 4] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::Identity,
    ];

    /// The serde name: `sigmoid`, `tanh`, `relu`, `identity`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Identity => "identity",
        }
    }

    /// `f(a)` for one value, with the bits of [`forward`] (scalar reference):
    /// sigmoid `1 / (1 + exp(0 - clamp(a, -30, 30)))`; tanh as documented in the module;
    /// ReLU `if a <= 0 { +0 } else { a }` (so -0 gives +0 and NaN stays NaN); identity `a`.
    pub fn apply(self, a: f32) -> f32 {
        use crate::simd::Scalar;
        match self {
            Activation::Sigmoid => elementary::sigmoid(Scalar, a),
            Activation::Tanh => elementary::tanh(Scalar, a),
            Activation::Relu => elementary::relu(Scalar, a),
            Activation::Identity => a,
        }
    }

    /// `g * f'` expressed through the output `h = f(a)`, with the bits of [`backward`]:
    /// sigmoid `g * (h * (1 - h))`, tanh `g * (1 - h * h)`, ReLU
    /// `if h > 0 { g } else { +0 }`, identity `g`.
    pub fn grad_from_output(self, h: f32, g: f32) -> f32 {
        use crate::simd::Scalar;
        match self {
            Activation::Sigmoid => elementary::sigmoid_grad(Scalar, h, g),
            Activation::Tanh => elementary::tanh_grad(Scalar, h, g),
            Activation::Relu => elementary::relu_grad(Scalar, h, g),
            Activation::Identity => g,
        }
    }
}

/// `e^x` in f32, the bits of every path of the kernels:
///
/// ```text
/// n = round(x log2 e),  r = (x - n C1) - n C2  (C1 + C2 = ln 2),
/// e^x = (1 + r + r^2 P(r)) * 2^n   (degree-5 Cephes P, Horner, no FMA)
/// ```
///
/// At most [`EXP_MAX_ULP`] ulp from the exact value for x in [-87, 88]; +inf above
/// 88.73, gradual underflow below -87.34, +0 from -104 down; NaN gives NaN.
pub fn exp(x: f32) -> f32 {
    elementary::exp_scalar(x)
}

internal!(
    /// In place `x = exp(x)` on the chosen SIMD level (see [`exp`]); panics if `level` is
    /// not [`simd::available`].
    pub fn exp_with(level: Level, x: &mut [f32]) {
        require(level);
        if x.len() > BLOCK {
            // Same bits for any pool: elementwise over fixed blocks.
            x.par_chunks_mut(BLOCK).for_each(|c| rows::exp(level, c));
        } else {
            rows::exp(level, x);
        }
    }
);

/// Rows per parallel block of about `target` elements with `cols` columns.
fn block_rows(target: usize, cols: usize) -> usize {
    (target / cols).max(1)
}

/// In place `z[r, j] = f(z[r, j] + bias[j])` for every row `r`.
///
/// Panics unless `z.len()` is a multiple of `bias.len()` (and `z` is empty when the bias
/// is).
pub fn forward(act: Activation, z: &mut [f32], bias: &[f32]) {
    forward_with(simd::level(), act, z, bias)
}

internal!(
    /// [`forward`] on a chosen SIMD level (panics if `level` is not [`simd::available`]).
    pub fn forward_with(level: Level, act: Activation, z: &mut [f32], bias: &[f32]) {
        require(level);
        let cols = bias.len();
        if cols == 0 {
            assert!(
                z.is_empty(),
                "activation::forward: empty bias for {} values",
                z.len()
            );
            return;
        }
        assert!(
            z.len().is_multiple_of(cols),
            "activation::forward: {} values are not whole rows of {cols}",
            z.len()
        );
        let target = match act {
            Activation::Sigmoid | Activation::Tanh => BLOCK,
            Activation::Relu | Activation::Identity => CHEAP_BLOCK,
        };
        let block = block_rows(target, cols) * cols;
        if z.len() > block {
            // Same bits for any pool: elementwise over blocks of whole rows fixed by the
            // shape.
            z.par_chunks_mut(block)
                .for_each(|zb| rows::forward(level, act, zb, bias));
        } else {
            rows::forward(level, act, z, bias);
        }
    }
);

/// In place `g = g * f'(a)` expressed through the output `h = f(a)`:
/// sigmoid `g * (h * (1 - h))`, tanh `g * (1 - h * h)`, ReLU `if h > 0 { g } else { +0 }`,
/// identity: unchanged. Panics unless `h.len() == g.len()`.
pub fn backward(act: Activation, h: &[f32], g: &mut [f32]) {
    backward_with(simd::level(), act, h, g)
}

internal!(
    /// [`backward`] on a chosen SIMD level (panics if `level` is not [`simd::available`]).
    pub fn backward_with(level: Level, act: Activation, h: &[f32], g: &mut [f32]) {
        require(level);
        assert_eq!(
            h.len(),
            g.len(),
            "activation::backward: h and g lengths differ"
        );
        if act == Activation::Identity {
            return;
        }
        if g.len() > CHEAP_BLOCK {
            // Same bits for any pool: elementwise over fixed blocks.
            g.par_chunks_mut(CHEAP_BLOCK)
                .zip(h.par_chunks(CHEAP_BLOCK))
                .for_each(|(gb, hb)| rows::backward(level, act, hb, gb));
        } else {
            rows::backward(level, act, h, g);
        }
    }
);

/// Fused softmax + cross-entropy, numerically stable (log-sum-exp).
///
/// For each row `r` of `logits` (`rows x cols`, cols = bias.len(), rows = labels.len()):
///
/// ```text
/// z = logits + bias,   m = max_j z_j,   e_j = exp(z_j - m),   s = sum_j e_j  (f64, j in order)
/// grad_j  = e_j / s - [j = label]                        (= y - onehot)
/// loss[r] = ln s + m - z_label                            (= -ln y_label, in f64, then f32)
/// ```
///
/// Returns `sum_r f64(loss[r])` in row order. Huge logits are fine (only differences to
/// the row maximum are exponentiated); a NaN or infinite logit makes its row NaN.
///
/// Panics on shape mismatch or a label `>= cols` (the model validates labels first).
pub fn softmax_xent(
    logits: &[f32],
    bias: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    loss: &mut [f32],
) -> f64 {
    softmax_xent_with(simd::level(), logits, bias, labels, grad, loss)
}

internal!(
    /// [`softmax_xent`] on a chosen SIMD level (panics if `level` is not [`simd::available`]).
    pub fn softmax_xent_with(
        level: Level,
        logits: &[f32],
        bias: &[f32],
        labels: &[u32],
        grad: &mut [f32],
        loss: &mut [f32],
    ) -> f64 {
        require(level);
        let cols = bias.len();
        let rows = labels.len();
        check_rows(
            "softmax_xent",
            cols,
            rows,
            &[logits.len(), grad.len()],
            loss.len(),
        );
        if let Some((r, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= cols)
        {
            panic!("activation::softmax_xent: label {l} of row {r} is out of range 0..{cols}");
        }
        if rows == 0 {
            return 0.0;
        }
        let br = block_rows(BLOCK, cols);
        if rows > br {
            // Same bits for any pool: rows are independent (blocks fixed by the shape);
            // the loss is summed afterwards, in row order.
            logits
                .par_chunks(br * cols)
                .zip(labels.par_chunks(br))
                .zip(grad.par_chunks_mut(br * cols))
                .zip(loss.par_chunks_mut(br))
                .for_each(|(((lb, yb), gb), ob)| rows::softmax(level, lb, bias, yb, gb, ob));
        } else {
            rows::softmax(level, logits, bias, labels, grad, loss);
        }
        row_order_sum(loss)
    }
);

/// Linear output with (half) squared error. For each row `r` (`rows x cols`,
/// cols = bias.len(), rows = loss.len()):
///
/// ```text
/// grad[r, j] = (out[r, j] + bias[j]) - targets[r, j]          (f32)
/// loss[r]    = 0.5 * sum_j grad[r, j]^2                        (f64, j in order, then f32)
/// ```
///
/// The prediction `z = out + bias` itself is not stored (it is `grad + targets` up to
/// rounding; [`forward`] with [`Activation::Identity`] computes it in place). Returns
/// `sum_r f64(loss[r])` in row order. Panics on shape mismatch.
pub fn mse(out: &[f32], bias: &[f32], targets: &[f32], grad: &mut [f32], loss: &mut [f32]) -> f64 {
    mse_with(simd::level(), out, bias, targets, grad, loss)
}

internal!(
    /// [`mse`] on a chosen SIMD level (panics if `level` is not [`simd::available`]).
    pub fn mse_with(
        level: Level,
        out: &[f32],
        bias: &[f32],
        targets: &[f32],
        grad: &mut [f32],
        loss: &mut [f32],
    ) -> f64 {
        require(level);
        let cols = bias.len();
        let rows = loss.len();
        check_rows(
            "mse",
            cols,
            rows,
            &[out.len(), targets.len(), grad.len()],
            rows,
        );
        if rows == 0 {
            return 0.0;
        }
        let br = block_rows(CHEAP_BLOCK, cols);
        if rows > br {
            // Same bits for any pool: rows are independent (blocks fixed by the shape);
            // the loss is summed afterwards, in row order.
            out.par_chunks(br * cols)
                .zip(targets.par_chunks(br * cols))
                .zip(grad.par_chunks_mut(br * cols))
                .zip(loss.par_chunks_mut(br))
                .for_each(|(((ob, tb), gb), lb)| rows::mse(level, ob, bias, tb, gb, lb));
        } else {
            rows::mse(level, out, bias, targets, grad, loss);
        }
        row_order_sum(loss)
    }
);

/// Panics unless every matrix length is `rows * cols`, `loss_len == rows` and `cols > 0`
/// when there are rows.
#[track_caller]
fn check_rows(what: &str, cols: usize, rows: usize, lens: &[usize], loss_len: usize) {
    assert!(cols > 0 || rows == 0, "activation::{what}: empty bias");
    assert_eq!(
        loss_len, rows,
        "activation::{what}: loss has {loss_len} rows, expected {rows}"
    );
    for &len in lens {
        assert_eq!(
            len,
            rows * cols,
            "activation::{what}: {len} values, expected {rows} x {cols}"
        );
    }
}

/// `sum_r f64(loss[r])`, r = 0, 1, ... in order.
fn row_order_sum(loss: &[f32]) -> f64 {
    loss.iter().fold(0.0f64, |acc, &l| acc + f64::from(l))
}

/// Index of the largest element of each row (first on ties) into `out`
/// (rows = out.len()). NaN counts as larger than any number, as in numpy: a row with
/// NaNs gives its first NaN. Panics unless `x.len() == out.len() * cols` (and
/// `cols > 0` when there are rows).
pub fn argmax_rows(x: &[f32], cols: usize, out: &mut [u32]) {
    let rows = out.len();
    check_rows("argmax_rows", cols, rows, &[x.len()], rows);
    if rows == 0 {
        return;
    }
    for (row, o) in x.chunks_exact(cols).zip(out.iter_mut()) {
        let mut best = 0usize;
        for (j, &v) in row.iter().enumerate() {
            if v.is_nan() {
                best = j;
                break;
            }
            if v > row[best] {
                best = j;
            }
        }
        *o = best as u32;
    }
}

/// `out[j] = sum_r x[r, j]` (rows summed in order 0, 1, 2, ... from +0, in f32: a fixed
/// order, vectorised across `j` only). This is the bias gradient.
///
/// Panics unless `out.len() == cols` and `x.len()` is a multiple of `cols`.
pub fn col_sums(x: &[f32], cols: usize, out: &mut [f32]) {
    col_sums_with(simd::level(), x, cols, out)
}

internal!(
    /// [`col_sums`] on a chosen SIMD level (panics if `level` is not [`simd::available`]).
    pub fn col_sums_with(level: Level, x: &[f32], cols: usize, out: &mut [f32]) {
        require(level);
        assert_eq!(
            out.len(),
            cols,
            "activation::col_sums: out has {} columns, expected {cols}",
            out.len()
        );
        if cols == 0 {
            assert!(
                x.is_empty(),
                "activation::col_sums: {} values for 0 columns",
                x.len()
            );
            return;
        }
        assert!(
            x.len().is_multiple_of(cols),
            "activation::col_sums: {} values are not whole rows of {cols}",
            x.len()
        );
        if x.len() > CHEAP_BLOCK && cols > COL_BLOCK {
            // Same bits for any pool: each task owns whole columns, each summed over the
            // rows in order.
            out.par_chunks_mut(COL_BLOCK)
                .enumerate()
                .for_each(|(b, ob)| rows::col_sums(level, x, cols, b * COL_BLOCK, ob));
        } else {
            rows::col_sums(level, x, cols, 0, out);
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{Error, StrDeserializer};

    #[test]
    fn serde_names_are_lowercase() {
        for a in Activation::ALL {
            let back = Activation::deserialize(StrDeserializer::<Error>::new(a.as_str()));
            assert_eq!(back, Ok(a));
        }
        assert!(Activation::deserialize(StrDeserializer::<Error>::new("Sigmoid")).is_err());
    }

    #[test]
    fn scalar_reference_matches_slices() {
        let a = [-40.0f32, -1.5, -0.0, 0.0, 0.3, 2.0, 31.0];
        for act in Activation::ALL {
            let mut z = a.to_vec();
            forward_with(Level::Scalar, act, &mut z, &[-0.0]); // x + -0 = x
            for (&x, &h) in a.iter().zip(&z) {
                assert_eq!(act.apply(x).to_bits(), h.to_bits(), "{act:?}({x})");
            }
            let mut g = vec![0.7f32; a.len()];
            backward_with(Level::Scalar, act, &z, &mut g);
            for (&h, &d) in z.iter().zip(&g) {
                assert_eq!(act.grad_from_output(h, 0.7).to_bits(), d.to_bits());
            }
        }
    }
}
