//! criterion benchmarks of the update kernels (`regulab_kernels::update`):
//!
//! * `update/sgd/<W>`: the fused one-pass SGD step (SIMD level of this machine and the
//!   scalar path) beside an unfused baseline (separate passes: penalty gradient
//!   `p = l2 w + l1 sgn w` into a buffer; `p = g * grad_scale + p`; `w = w - lr p`);
//! * `update/momentum/<W>`: fused momentum step beside its unfused baseline (the same
//!   three passes, then `v = mu v - lr p` and `w = w + v`);
//! * `update/strategy/<W>/b<B>`: a whole momentum-free weight update from a batch:
//!   (A) materialise `G = X^T Δ` with `gemm(.., Overwrite)`, then fused `sgd`; versus
//!   (B) the G-free path `decay`; `Δs = Δ * (-lr / B)`; `gemm(.., Add)` into `W`.
//!
//! `fused` runs on this machine's SIMD level, `fused_scalar` on the scalar path (plain
//! loops, as the unfused baseline): `unfused / fused_scalar` measures the fusion alone
//! (same level on both sides), `fused_scalar / fused` the SIMD gain.
//!
//! W is 784x800 (the lab's hidden layer) and 800x800; l1 = 1e-4, l2 = 1e-5. All runs
//! use the global rayon pool, and the unfused baselines are split into the same
//! chunks, so the ratios measure fusion, not threading. Throughput is in bytes of the
//! useful traffic of the fused kernel (`sgd`: read w, g, write w = 12 bytes per weight;
//! momentum: read w, v, g, write w, v = 20 bytes), the same figure for fused and
//! unfused, so the throughputs compare directly.
//!
//! Reproduce: `cargo bench -p regulab-benches --bench update`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use regulab_kernels::gemm::{Accumulate, Op, gemm};
use regulab_kernels::simd::Level;
use regulab_kernels::update::{self, CHUNK, Step};

const L1: f32 = 1e-4;
const L2: f32 = 1e-5;
const LR: f32 = 0.5;
const MU: f32 = 0.9;

const SHAPES: [(usize, usize); 2] = [(784, 800), (800, 800)];

/// Deterministic values uniform in `[lo, hi)` (splitmix64).
fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

fn sgn(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Unfused pass 1: `p = l2 * w + l1 * sgn(w)`.
fn penalty_pass(p: &mut [f32], w: &[f32]) {
    p.par_chunks_mut(CHUNK)
        .zip(w.par_chunks(CHUNK))
        .for_each(|(p, w)| {
            for (p, &w) in p.iter_mut().zip(w) {
                *p = L2 * w + L1 * sgn(w);
            }
        });
}

/// Unfused pass 2: `p = g * grad_scale + p`.
fn gradient_pass(p: &mut [f32], g: &[f32], grad_scale: f32) {
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .for_each(|(p, g)| {
            for (p, &g) in p.iter_mut().zip(g) {
                *p += g * grad_scale;
            }
        });
}

/// Unfused SGD: penalty, gradient and step passes.
fn sgd_unfused(w: &mut [f32], g: &[f32], p: &mut [f32], s: Step) {
    penalty_pass(p, w);
    gradient_pass(p, g, s.grad_scale);
    w.par_chunks_mut(CHUNK)
        .zip(p.par_chunks(CHUNK))
        .for_each(|(w, p)| {
            for (w, &p) in w.iter_mut().zip(p) {
                *w -= s.lr * p;
            }
        });
}

/// Unfused momentum: penalty, gradient, velocity and step passes.
fn momentum_unfused(w: &mut [f32], v: &mut [f32], g: &[f32], p: &mut [f32], s: Step) {
    penalty_pass(p, w);
    gradient_pass(p, g, s.grad_scale);
    v.par_chunks_mut(CHUNK)
        .zip(p.par_chunks(CHUNK))
        .for_each(|(v, p)| {
            for (v, &p) in v.iter_mut().zip(p) {
                *v = MU * *v - s.lr * p;
            }
        });
    w.par_chunks_mut(CHUNK)
        .zip(v.par_chunks(CHUNK))
        .for_each(|(w, v)| {
            for (w, &v) in w.iter_mut().zip(v) {
                *w += v;
            }
        });
}

fn bench_sgd(c: &mut Criterion) {
    let s = Step {
        lr: LR,
        grad_scale: 0.1,
        l1: L1,
        l2: L2,
    };
    for (n_in, n_out) in SHAPES {
        let n = n_in * n_out;
        let mut w = uniform(1, n, -0.2, 0.2);
        let g = uniform(2, n, -1.0, 1.0);
        let mut p = vec![0.0f32; n];
        let mut group = c.benchmark_group(format!("update/sgd/{n_in}x{n_out}"));
        group.throughput(Throughput::Bytes(12 * n as u64));
        group.bench_function("fused", |b| {
            b.iter(|| update::sgd(black_box(&mut w), black_box(&g), s))
        });
        group.bench_function("fused_scalar", |b| {
            b.iter(|| update::sgd_with(Level::Scalar, black_box(&mut w), black_box(&g), s))
        });
        group.bench_function("unfused", |b| {
            b.iter(|| sgd_unfused(black_box(&mut w), black_box(&g), &mut p, s))
        });
        group.finish();
    }
}

fn bench_momentum(c: &mut Criterion) {
    let s = Step {
        lr: LR,
        grad_scale: 0.1,
        l1: L1,
        l2: L2,
    };
    for (n_in, n_out) in SHAPES {
        let n = n_in * n_out;
        let mut w = uniform(3, n, -0.2, 0.2);
        let mut v = vec![0.0f32; n];
        let g = uniform(4, n, -1.0, 1.0);
        let mut p = vec![0.0f32; n];
        let mut group = c.benchmark_group(format!("update/momentum/{n_in}x{n_out}"));
        group.throughput(Throughput::Bytes(20 * n as u64));
        group.bench_function("fused", |b| {
            b.iter(|| update::sgd_momentum(black_box(&mut w), &mut v, black_box(&g), s, MU))
        });
        group.bench_function("fused_scalar", |b| {
            b.iter(|| {
                update::sgd_momentum_with(
                    Level::Scalar,
                    black_box(&mut w),
                    &mut v,
                    black_box(&g),
                    s,
                    MU,
                )
            })
        });
        group.bench_function("unfused", |b| {
            b.iter(|| momentum_unfused(black_box(&mut w), &mut v, black_box(&g), &mut p, s))
        });
        group.finish();
    }
}

fn bench_strategy(c: &mut Criterion) {
    for (n_in, n_out) in SHAPES {
        for batch in [10usize, 100] {
            let x = uniform(5, batch * n_in, 0.0, 1.0);
            let delta = uniform(6, batch * n_out, -0.1, 0.1);
            let mut w = uniform(7, n_in * n_out, -0.2, 0.2);
            let mut g = vec![0.0f32; n_in * n_out];
            let mut delta_s = vec![0.0f32; batch * n_out];
            let s = Step {
                lr: LR,
                grad_scale: 1.0 / batch as f32,
                l1: L1,
                l2: L2,
            };
            let mut group = c.benchmark_group(format!("update/strategy/{n_in}x{n_out}"));
            group.throughput(Throughput::Elements((n_in * n_out) as u64));
            group.bench_function(BenchmarkId::new("A_materialise_G", batch), |b| {
                b.iter(|| {
                    gemm(
                        n_in,
                        n_out,
                        batch,
                        black_box(&x),
                        Op::T,
                        black_box(&delta),
                        Op::N,
                        &mut g,
                        Accumulate::Overwrite,
                    );
                    update::sgd(black_box(&mut w), &g, s);
                })
            });
            group.bench_function(BenchmarkId::new("B_g_free", batch), |b| {
                b.iter(|| {
                    update::decay(black_box(&mut w), s.lr, s.l1, s.l2);
                    update::scale_into(&mut delta_s, black_box(&delta), -s.lr / batch as f32);
                    gemm(
                        n_in,
                        n_out,
                        batch,
                        black_box(&x),
                        Op::T,
                        &delta_s,
                        Op::N,
                        &mut w,
                        Accumulate::Add,
                    );
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench_sgd, bench_momentum, bench_strategy);
criterion_main!(benches);
