//! The activation kernels on one block of rows, written once over [`Lanes`] and
//! instantiated for every [`Level`] (scalar, AVX2 in a `#[target_feature(enable =
//! "avx2")]` function, AVX-512 in a `#[target_feature(enable = "avx512f")]` one).
//!
//! Rows are processed left to right in full vectors of `LANES` columns, then one
//! partial vector for the tail (masked or zero-padded lanes, whose results are
//! discarded). Each output element goes through the same operations whatever its lane,
//! so the block boundaries and the level never change the bits.

use super::Activation;
use super::elementary as el;
#[cfg(target_arch = "x86_64")]
use crate::simd::{Avx2, Avx512};
use crate::simd::{Lanes, Level, Scalar, assert_available};

/// `x[i] = f(x[i])`.
#[inline(always)]
fn map<S: Lanes, F: Op1>(s: S, x: &mut [f32]) {
    let mut xc = x.chunks_exact_mut(S::LANES);
    for xv in &mut xc {
        s.store(F::f(s, s.load(xv)), xv);
    }
    let xt = xc.into_remainder();
    if !xt.is_empty() {
        s.store_part(F::f(s, s.load_part(xt)), xt);
    }
}

/// `y[i] = f(x[i], y[i])`.
#[inline(always)]
fn zip_map<S: Lanes, F: Op2>(s: S, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    let mut yc = y.chunks_exact_mut(S::LANES);
    let mut xc = x.chunks_exact(S::LANES);
    for (yv, xv) in (&mut yc).zip(&mut xc) {
        s.store(F::f(s, s.load(xv), s.load(yv)), yv);
    }
    let yt = yc.into_remainder();
    if !yt.is_empty() {
        s.store_part(F::f(s, s.load_part(xc.remainder()), s.load_part(yt)), yt);
    }
}

/// `out[i] = f(x[i], y[i])`.
#[inline(always)]
fn zip2<S: Lanes, F: Op2>(s: S, x: &[f32], y: &[f32], out: &mut [f32]) {
    debug_assert!(x.len() == out.len() && y.len() == out.len());
    let mut oc = out.chunks_exact_mut(S::LANES);
    let mut xc = x.chunks_exact(S::LANES);
    let mut yc = y.chunks_exact(S::LANES);
    for ((ov, xv), yv) in (&mut oc).zip(&mut xc).zip(&mut yc) {
        s.store(F::f(s, s.load(xv), s.load(yv)), ov);
    }
    let ot = oc.into_remainder();
    if !ot.is_empty() {
        let v = F::f(s, s.load_part(xc.remainder()), s.load_part(yc.remainder()));
        s.store_part(v, ot);
    }
}

/// `out[i] = f(x[i], y[i], c)` for a constant vector `c`.
#[inline(always)]
fn zip2_c<S: Lanes, F: Op3>(s: S, x: &[f32], y: &[f32], c: S::V, out: &mut [f32]) {
    debug_assert!(x.len() == out.len() && y.len() == out.len());
    let mut oc = out.chunks_exact_mut(S::LANES);
    let mut xc = x.chunks_exact(S::LANES);
    let mut yc = y.chunks_exact(S::LANES);
    for ((ov, xv), yv) in (&mut oc).zip(&mut xc).zip(&mut yc) {
        s.store(F::f(s, s.load(xv), s.load(yv), c), ov);
    }
    let ot = oc.into_remainder();
    if !ot.is_empty() {
        let v = F::f(
            s,
            s.load_part(xc.remainder()),
            s.load_part(yc.remainder()),
            c,
        );
        s.store_part(v, ot);
    }
}

/// `x[i] = f(x[i], c)` for a constant vector `c`.
#[inline(always)]
fn map_c<S: Lanes, F: Op2>(s: S, x: &mut [f32], c: S::V) {
    let mut xc = x.chunks_exact_mut(S::LANES);
    for xv in &mut xc {
        s.store(F::f(s, s.load(xv), c), xv);
    }
    let xt = xc.into_remainder();
    if !xt.is_empty() {
        s.store_part(F::f(s, s.load_part(xt), c), xt);
    }
}

/// `z[r, j] = f(z[r, j] + bias[j])` on each row.
#[inline(always)]
fn map_bias<S: Lanes, F: Op1>(s: S, z: &mut [f32], bias: &[f32]) {
    for row in z.chunks_exact_mut(bias.len()) {
        let mut zc = row.chunks_exact_mut(S::LANES);
        let mut bc = bias.chunks_exact(S::LANES);
        for (zv, bv) in (&mut zc).zip(&mut bc) {
            s.store(F::f(s, s.add(s.load(zv), s.load(bv))), zv);
        }
        let zt = zc.into_remainder();
        if !zt.is_empty() {
            let v = s.add(s.load_part(zt), s.load_part(bc.remainder()));
            s.store_part(F::f(s, v), zt);
        }
    }
}

/// A lane-wise function of one vector. Kernels take the operation as a type parameter,
/// not as a closure or fn item: those are called through separate functions that lack
/// the caller's target features, so LLVM would not inline the intrinsics inside them.
trait Op1 {
    fn f<S: Lanes>(s: S, a: S::V) -> S::V;
}

/// A lane-wise function of two vectors.
trait Op2 {
    fn f<S: Lanes>(s: S, a: S::V, b: S::V) -> S::V;
}

/// A lane-wise function of three vectors.
trait Op3 {
    fn f<S: Lanes>(s: S, a: S::V, b: S::V, c: S::V) -> S::V;
}

macro_rules! op1 {
    ($(#[$doc:meta])* $name:ident, |$s:ident, $a:ident| $body:expr) => {
        $(#[$doc])*
        struct $name;
        impl Op1 for $name {
            #[inline(always)]
            fn f<S: Lanes>($s: S, $a: S::V) -> S::V {
                $body
            }
        }
    };
}

macro_rules! op2 {
    ($(#[$doc:meta])* $name:ident, |$s:ident, $a:ident, $b:ident| $body:expr) => {
        $(#[$doc])*
        struct $name;
        impl Op2 for $name {
            #[inline(always)]
            fn f<S: Lanes>($s: S, $a: S::V, $b: S::V) -> S::V {
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
op2!(
    /// `a / b`.
    Div, |s, a, b| s.div(a, b)
);
/// `exp((a + b) - c)`.
struct AddExpMinus;
impl Op3 for AddExpMinus {
    #[inline(always)]
    fn f<S: Lanes>(s: S, a: S::V, b: S::V, c: S::V) -> S::V {
        el::exp(s, s.sub(s.add(a, b), c))
    }
}
op2!(
    /// [`el::sigmoid_grad`] of `(h, g)`.
    SigmoidGrad, |s, h, g| el::sigmoid_grad(s, h, g)
);
op2!(
    /// [`el::tanh_grad`] of `(h, g)`.
    TanhGrad, |s, h, g| el::tanh_grad(s, h, g)
);
op2!(
    /// [`el::relu_grad`] of `(h, g)`.
    ReluGrad, |s, h, g| el::relu_grad(s, h, g)
);

#[inline(always)]
fn forward_g<S: Lanes>(s: S, act: Activation, z: &mut [f32], bias: &[f32]) {
    match act {
        Activation::Sigmoid => map_bias::<S, Sigmoid>(s, z, bias),
        Activation::Tanh => map_bias::<S, Tanh>(s, z, bias),
        Activation::Relu => map_bias::<S, Relu>(s, z, bias),
        Activation::Identity => map_bias::<S, Identity>(s, z, bias),
    }
}

#[inline(always)]
fn backward_g<S: Lanes>(s: S, act: Activation, h: &[f32], g: &mut [f32]) {
    match act {
        Activation::Sigmoid => zip_map::<S, SigmoidGrad>(s, h, g),
        Activation::Tanh => zip_map::<S, TanhGrad>(s, h, g),
        Activation::Relu => zip_map::<S, ReluGrad>(s, h, g),
        Activation::Identity => {}
    }
}

#[inline(always)]
fn exp_g<S: Lanes>(s: S, x: &mut [f32]) {
    map::<S, Exp>(s, x);
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
            zip2_c::<S, AddExpMinus>(s, lrow, bias, mv, grow);
            for &e in grow.iter() {
                sum += f64::from(e);
            }
            map_c::<S, Div>(s, grow, s.splat(sum as f32));
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
        zip_map::<S, RevAdd>(s, &row[c0..c0 + w], out);
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
        zip2::<S, Add>(s, orow, bias, grow);
        zip_map::<S, RevSub>(s, trow, grow);
        let mut sq = 0.0f64;
        for &d in grow.iter() {
            sq += f64::from(d) * f64::from(d);
        }
        *lo = (0.5 * sq) as f32;
    }
}

/// Defines `pub(super) fn $name(level, args..)` running the generic `$generic` on
/// `level` (which must be available: checked, panics otherwise).
macro_rules! leveled {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $generic:ident) => {
        $(#[$doc])*
        pub(super) fn $name(level: Level, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) {
                // SAFETY: this function is compiled with AVX2 enabled and may only be
                // called (from `unsafe`) where the CPU supports AVX2.
                let s = unsafe { Avx2::new_unchecked() };
                $generic(s, $($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512($($arg: $ty),*) {
                // SAFETY: this function is compiled with AVX-512F enabled and may only
                // be called (from `unsafe`) where the CPU supports AVX-512F.
                let s = unsafe { Avx512::new_unchecked() };
                $generic(s, $($arg),*)
            }
            assert_available(level);
            match level {
                Level::Scalar => $generic(Scalar, $($arg),*),
                // SAFETY: `assert_available` checked that the CPU supports AVX2.
                #[cfg(target_arch = "x86_64")]
                Level::Avx2 => unsafe { avx2($($arg),*) },
                // SAFETY: `assert_available` checked that the CPU supports AVX-512F.
                #[cfg(target_arch = "x86_64")]
                Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("only the scalar level is available off x86_64"),
            }
        }
    };
}

leveled!(
    /// `z[r, j] = f(z[r, j] + bias[j])` (`z.len()` a multiple of `bias.len() > 0`).
    fn forward(act: Activation, z: &mut [f32], bias: &[f32]) => forward_g
);
leveled!(
    /// `g = g * f'` through `h` (equal lengths).
    fn backward(act: Activation, h: &[f32], g: &mut [f32]) => backward_g
);
leveled!(
    /// `x = exp(x)`.
    fn exp(x: &mut [f32]) => exp_g
);
leveled!(
    /// Softmax + cross-entropy on whole rows.
    fn softmax(
        logits: &[f32],
        bias: &[f32],
        labels: &[u32],
        grad: &mut [f32],
        loss: &mut [f32]
    ) => softmax_g
);
leveled!(
    /// Column sums of columns `c0 .. c0 + out.len()`.
    fn col_sums(x: &[f32], cols: usize, c0: usize, out: &mut [f32]) => col_sums_g
);
leveled!(
    /// Linear output + squared error on whole rows.
    fn mse(
        out: &[f32],
        bias: &[f32],
        targets: &[f32],
        grad: &mut [f32],
        loss: &mut [f32]
    ) => mse_g
);
