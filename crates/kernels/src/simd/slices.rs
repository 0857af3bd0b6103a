//! Elementwise loops over f32 slices, written once over [`Lanes`]: full vectors of
//! `LANES` elements left to right, then one partial vector for the tail (masked or
//! zero-padded lanes, whose results are discarded). Every element goes through the same
//! lane operations whatever its position, so the split never changes the bits.
//!
//! The operation is a type implementing [`Op1`] or [`Op2`], not a closure: a closure is
//! called through a separate function that lacks the caller's target features, so LLVM
//! would not inline the intrinsics inside it. Ops may carry constants (`S::V` fields).

use super::Lanes;

/// A lane-wise function of one vector.
pub(crate) trait Op1<S: Lanes> {
    fn f(&self, s: S, a: S::V) -> S::V;
}

/// A lane-wise function of two vectors.
pub(crate) trait Op2<S: Lanes> {
    fn f(&self, s: S, a: S::V, b: S::V) -> S::V;
}

/// `x[i] = f(x[i])`.
#[inline(always)]
pub(crate) fn map<S: Lanes, F: Op1<S>>(s: S, f: &F, x: &mut [f32]) {
    let mut xc = x.chunks_exact_mut(S::LANES);
    for xv in &mut xc {
        s.store(f.f(s, s.load(xv)), xv);
    }
    let xt = xc.into_remainder();
    if !xt.is_empty() {
        s.store_part(f.f(s, s.load_part(xt)), xt);
    }
}

/// `out[i] = f(x[i])` (`x` and `out` of equal length).
#[inline(always)]
pub(crate) fn map_to<S: Lanes, F: Op1<S>>(s: S, f: &F, x: &[f32], out: &mut [f32]) {
    debug_assert_eq!(x.len(), out.len());
    let mut oc = out.chunks_exact_mut(S::LANES);
    let mut xc = x.chunks_exact(S::LANES);
    for (ov, xv) in (&mut oc).zip(&mut xc) {
        s.store(f.f(s, s.load(xv)), ov);
    }
    let ot = oc.into_remainder();
    if !ot.is_empty() {
        s.store_part(f.f(s, s.load_part(xc.remainder())), ot);
    }
}

/// `y[i] = f(x[i], y[i])` (equal lengths).
#[inline(always)]
pub(crate) fn zip_map<S: Lanes, F: Op2<S>>(s: S, f: &F, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    let mut yc = y.chunks_exact_mut(S::LANES);
    let mut xc = x.chunks_exact(S::LANES);
    for (yv, xv) in (&mut yc).zip(&mut xc) {
        s.store(f.f(s, s.load(xv), s.load(yv)), yv);
    }
    let yt = yc.into_remainder();
    if !yt.is_empty() {
        s.store_part(f.f(s, s.load_part(xc.remainder()), s.load_part(yt)), yt);
    }
}

/// `out[i] = f(x[i], y[i])` (equal lengths).
#[inline(always)]
pub(crate) fn zip2<S: Lanes, F: Op2<S>>(s: S, f: &F, x: &[f32], y: &[f32], out: &mut [f32]) {
    debug_assert!(x.len() == out.len() && y.len() == out.len());
    let mut oc = out.chunks_exact_mut(S::LANES);
    let mut xc = x.chunks_exact(S::LANES);
    let mut yc = y.chunks_exact(S::LANES);
    for ((ov, xv), yv) in (&mut oc).zip(&mut xc).zip(&mut yc) {
        s.store(f.f(s, s.load(xv), s.load(yv)), ov);
    }
    let ot = oc.into_remainder();
    if !ot.is_empty() {
        let v = f.f(s, s.load_part(xc.remainder()), s.load_part(yc.remainder()));
        s.store_part(v, ot);
    }
}
