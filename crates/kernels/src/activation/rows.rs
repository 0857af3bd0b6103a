//! The activation kernels on one block of rows, written once over [`Lanes`] and
//! instantiated for every level by [`leveled`] (see [`crate::simd`]).
//!
//! Rows are processed left to right in full vectors of `LANES` columns, then one
//! partial vector for the tail (the loops of [`crate::simd::slices`]). Each output
//! element goes through the same operations whatever its lane, so the block boundaries
//! and the level never change the bits. The gradient ops (`SigmoidGrad`, ...) are
//! shared with the fused dropout backward, so both compute `f'` the same way.

use super::Activation;
use super::elementary as el;
use crate::simd::slices::{Op1, Op2, map, zip_map, zip2};
use crate::simd::{Lanes, leveled};

/// `z[r, j] = f(z[r, j] + bias[j])` on each row.
#[inline(always)]
fn map_bias<S: Lanes, F: Op1<S>>(s: S, f: &F, z: &mut [f32], bias: &[f32]) {
    for row in z.chunks_exact_mut(bias.len()) {
        let mut zc = row.chunks_exact_mut(S::LANES);
        let mut bc = bias.chunks_exact(S::LANES);
        for (zv, bv) in (&mut zc).zip(&mut bc) {
            s.store(f.f(s, s.add(s.load(zv), s.load(bv))), zv);
        }
        let zt = zc.into_remainder();
        if !zt.is_empty() {
            let v = s.add(s.load_part(zt), s.load_part(bc.remainder()));
            s.store_part(f.f(s, v), zt);
        }
    }
}

/// A unit struct implementing [`Op1`] for every token with the body given.
macro_rules! op1 {
    ($(#[$doc:meta])* $vis:vis $name:ident, |$s:ident, $a:ident| $body:expr) => {
        $(#[$doc])*
        $vis struct $name;
        impl<S: Lanes> Op1<S> for $name {
            #[inline(always)]
            fn f(&self, $s: S, $a: S::V) -> S::V {
                $body
            }
        }
    };
}

/// A unit struct implementing [`Op2`] for every token with the body given.
macro_rules! op2 {
    ($(#[$doc:meta])* $vis:vis $name:ident, |$s:ident, $a:ident, $b:ident| $body:expr) => {
        $(#[$doc])*
        $vis struct $name;
        impl<S: Lanes> Op2<S> for $name {
            #[inline(always)]
            fn f(&self, $s: S, $a: S::V, $b: S::V) -> S::V {
                $body
            }
        }
    };
}

op1!(
    /// [`el::sigmoid`].
    Sigmoid, |s, a| el::sigmoid(s, a)
);
op1!(
    /// [`el::tanh`].
    Tanh, |s, a| el::tanh(s, a)
);
op1!(
    /// [`el::relu`].
    Relu, |s, a| el::relu(s, a)
);
op1!(
    /// `a`.
    Identity, |_s, a| a
);
op1!(
    /// [`el::exp`].
    Exp, |s, a| el::exp(s, a)
);
op2!(
    /// `a + b`.
    Add, |s, a, b| s.add(a, b)
);
op2!(
    /// `b - a` (in `zip_map`, whose op receives `(x, y)`: `y - x`).
    RevSub, |s, a, b| s.sub(b, a)
);
op2!(
    /// `b + a` (in `zip_map`: accumulate `x` into `y`).
    RevAdd, |s, a, b| s.add(b, a)
);
/// `a / d` for a constant `d`.
struct DivBy<V>(V);
impl<S: Lanes> Op1<S> for DivBy<S::V> {
    #[inline(always)]
    fn f(&self, s: S, a: S::V) -> S::V {
        s.div(a, self.0)
    }
}
/// `exp((a + b) - c)` for a constant `c`.
struct AddExpMinus<V>(V);
impl<S: Lanes> Op2<S> for AddExpMinus<S::V> {
    #[inline(always)]
    fn f(&self, s: S, a: S::V, b: S::V) -> S::V {
        el::exp(s, s.sub(s.add(a, b), self.0))
    }
}
op2!(
    /// [`el::sigmoid_grad`] of `(h, g)` (also the fused dropout backward's).
    pub(crate) SigmoidGrad, |s, h, g| el::sigmoid_grad(s, h, g)
);
op2!(
    /// [`el::tanh_grad`] of `(h, g)` (also the fused dropout backward's).
    pub(crate) TanhGrad, |s, h, g| el::tanh_grad(s, h, g)
);
op2!(
    /// [`el::relu_grad`] of `(h, g)` (also the fused dropout backward's).
    pub(crate) ReluGrad, |s, h, g| el::relu_grad(s, h, g)
);
op2!(
    /// `g`: the identity's gradient (`h` unused).
    pub(crate) IdentityGrad, |_s, _h, g| g
);

#[inline(always)]
fn forward_g<S: Lanes>(s: S, act: Activation, z: &mut [f32], bias: &[f32]) {
    match act {
        Activation::Sigmoid => map_bias(s, &Sigmoid, z, bias),
        Activation::Tanh => map_bias(s, &Tanh, z, bias),
        Activation::Relu => map_bias(s, &Relu, z, bias),
        Activation::Identity => map_bias(s, &Identity, z, bias),
    }
}

#[inline(always)]
fn backward_g<S: Lanes>(s: S, act: Activation, h: &[f32], g: &mut [f32]) {
    match act {
        Activation::Sigmoid => zip_map(s, &SigmoidGrad, h, g),
        Activation::Tanh => zip_map(s, &TanhGrad, h, g),
        Activation::Relu => zip_map(s, &ReluGrad, h, g),
        Activation::Identity => {}
    }
}

#[inline(always)]
fn exp_g<S: Lanes>(s: S, x: &mut [f32]) {
    map(s, &Exp, x);
}

/// Lane indices 0, 1, 2, ... as f32 (for the one-hot of a short row).
const IOTA: [f32; 16] = [
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
];

/// Lanes `x[..]` (all `LANES` if `x` is that long, else the first `x.len()`, rest 0).
#[inline(always)]
fn load_row<S: Lanes>(s: S, x: &[f32]) -> S::V {
    if x.len() >= S::LANES {
        s.load(x)
    } else {
        s.load_part(x)
    }
}

/// Writes the first `min(LANES, dst.len())` lanes to `dst`.
#[inline(always)]
fn store_row<S: Lanes>(s: S, v: S::V, dst: &mut [f32]) {
    if dst.len() >= S::LANES {
        s.store(v, dst)
    } else {
        s.store_part(v, dst)
    }
}

/// Softmax + cross-entropy on whole rows (labels already checked to be `< cols`):
///
/// ```text
/// z_j = logits_j + bias_j          (f32)
/// m   = max_j z_j                  (NaNs skipped; a NaN z_j makes the row NaN below)
/// e_j = exp(z_j - m)               (f32)
/// s   = sum_j e_j                  (f64, j = 0, 1, ... in order; s >= 1)
/// grad_j = e_j / f32(s) - [j = label]
/// loss = f32( ln(s) + (f64(m) - f64(z_label)) )     (ln: `elementary::ln_f64`)
/// ```
///
/// `m` and `z_label` come from scalar adds (the same IEEE adds as the lanes). A row
/// that fits in one vector stays in registers (no store/reload of `e`, the one-hot
/// subtracted as a vector); longer rows take three passes over `grad`. Both give the
/// same bits.
#[inline(always)]
fn softmax_g<S: Lanes>(
    s: S,
    logits: &[f32],
    bias: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    loss: &mut [f32],
) {
    let cols = bias.len();
    let rows = logits.chunks_exact(cols).zip(grad.chunks_exact_mut(cols));
    for (((lrow, grow), &label), lo) in rows.zip(labels).zip(loss.iter_mut()) {
        let label = label as usize;
        let mut m = f32::NEG_INFINITY;
        for (&l, &b) in lrow.iter().zip(bias) {
            let z = l + b;
            if z > m {
                m = z;
            }
        }
        let z_label = lrow[label] + bias[label];
        let mv = s.splat(m);
        let mut sum = 0.0f64;
        if cols <= S::LANES {
            let z = s.add(load_row(s, lrow), load_row(s, bias));
            let e = el::exp(s, s.sub(z, mv));
            let mut buf = [0.0f32; 16];
            s.store(e, &mut buf);
            for &e in &buf[..cols] {
                sum += f64::from(e);
            }
            let y = s.div(e, s.splat(sum as f32));
            let hot = s.eq(s.load(&IOTA), s.splat(label as f32));
            let onehot = s.select(hot, s.splat(1.0), s.splat(0.0));
            store_row(s, s.sub(y, onehot), grow);
        } else {
            zip2(s, &AddExpMinus(mv), lrow, bias, grow);
            for &e in grow.iter() {
                sum += f64::from(e);
            }
            map(s, &DivBy(s.splat(sum as f32)), grow);
            grow[label] -= 1.0;
        }
        *lo = (el::ln_f64(sum) + (f64::from(m) - f64::from(z_label))) as f32;
    }
}

/// `out[j] = sum_r x[r, c0 + j]`, rows in order from 0, starting from +0, in f32.
#[inline(always)]
fn col_sums_g<S: Lanes>(s: S, x: &[f32], cols: usize, c0: usize, out: &mut [f32]) {
    out.fill(0.0);
    let w = out.len();
    for row in x.chunks_exact(cols) {
        zip_map(s, &RevAdd, &row[c0..c0 + w], out);
    }
}

/// Linear output + squared error on whole rows:
///
/// ```text
/// grad_j = (out_j + bias_j) - t_j                    (f32)
/// loss   = f32( 0.5 * sum_j f64(grad_j)^2 )           (f64, j in order)
/// ```
#[inline(always)]
fn mse_g<S: Lanes>(
    s: S,
    out: &[f32],
    bias: &[f32],
    targets: &[f32],
    grad: &mut [f32],
    loss: &mut [f32],
) {
    let cols = bias.len();
    let rows = out.chunks_exact(cols).zip(targets.chunks_exact(cols));
    for ((orow, trow), (grow, lo)) in rows.zip(grad.chunks_exact_mut(cols).zip(loss.iter_mut())) {
        zip2(s, &Add, orow, bias, grow);
        zip_map(s, &RevSub, trow, grow);
        let mut sq = 0.0f64;
        for &d in grow.iter() {
            sq += f64::from(d) * f64::from(d);
        }
        *lo = (0.5 * sq) as f32;
    }
}

leveled!(
    /// `z[r, j] = f(z[r, j] + bias[j])` (`z.len()` a multiple of `bias.len() > 0`).
    pub(super) fn forward(act: Activation, z: &mut [f32], bias: &[f32]) => forward_g
);
leveled!(
    /// `g = g * f'` through `h` (equal lengths).
    pub(super) fn backward(act: Activation, h: &[f32], g: &mut [f32]) => backward_g
);
leveled!(
    /// `x = exp(x)`.
    pub(super) fn exp(x: &mut [f32]) => exp_g
);
leveled!(
    /// Softmax + cross-entropy on whole rows.
    pub(super) fn softmax(
        logits: &[f32],
        bias: &[f32],
        labels: &[u32],
        grad: &mut [f32],
        loss: &mut [f32]
    ) => softmax_g
);
leveled!(
    /// Column sums of columns `c0 .. c0 + out.len()`.
    pub(super) fn col_sums(x: &[f32], cols: usize, c0: usize, out: &mut [f32]) => col_sums_g
);
leveled!(
    /// Linear output + squared error on whole rows.
    pub(super) fn mse(
        out: &[f32],
        bias: &[f32],
        targets: &[f32],
        grad: &mut [f32],
        loss: &mut [f32]
    ) => mse_g
);
