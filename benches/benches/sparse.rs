//! criterion benchmarks: the zero-skipping GEMM kernels against the dense path, on
//! operands with the zeros training produces.
//!
//! `A` has a fraction `d` of nonzero entries (random positions): `d` = 0.19 is MNIST's
//! share of nonzero pixels, 0.25 a ReLU layer after dropout with keep 0.5 (about half
//! the units are zero, and half of the rest dropped), 0.4 and 0.5 the threshold region.
//! Shapes as in the `gemm` bench (`fwd`: `A (B x k) . W`; `wgrad`: `A^T (k x B) . D`).
//!
//! Per case, in the same run:
//!
//! * `dense_1t`, `dense_2t`: `gemm_blocked` with `Partition::for_shape` (exactly what
//!   `gemm` ran before it learned to skip zeros: the direct kernels or sgemm) in rayon
//!   pools of 1 and 2 threads;
//! * `sparse_1t`, `sparse_2t`: `gemm` in the same pools (it takes the zero-skipping
//!   kernels: asserted before measuring, unless `d` is above the threshold);
//! * the `density/*` groups: `gemm_sparse` (one thread, the kernel alone, whatever the
//!   threshold) against `dense_1t` at densities 0.1 to 0.8, which set
//!   `SPARSE_MAX_DENSITY`.
//!
//! Throughput is `Elements(2 m n k)`: the dense flop count, so the ratio of the two
//! rows is the speed-up.
//!
//! Reproduce: `cargo bench -p regulab-benches --bench sparse` (about 4 minutes).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulab_kernels::gemm::{
    Accumulate, Op, Partition, SPARSE_MAX_DENSITY, gemm, gemm_blocked, gemm_sparse, sparse_path,
};
use regulab_kernels::simd;

/// `len` values, a fraction `density` of them uniform in [-1, 1), the rest zero.
fn sparse_random(len: usize, density: f64, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            if rng.random_range(0.0..1.0) < density {
                rng.random_range(-1.0f32..1.0)
            } else {
                0.0
            }
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("build rayon pool")
}

/// One product `C (m x n) = op(A) (m x k) . B (k x n)`.
struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    op_a: Op,
}

impl Case {
    /// `C = op(A) B` by what `gemm` ran before zero-skipping: `gemm_blocked` with
    /// `Partition::for_shape` (direct kernels or sgemm).
    fn dense(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let Case { m, k, n, op_a, .. } = *self;
        let (a, b) = (black_box(a), black_box(b));
        let p = Partition::for_shape(m, n, k);
        gemm_blocked(m, n, k, a, op_a, b, Op::N, out, Accumulate::Overwrite, p);
        black_box(out);
    }

    /// `C = op(A) B` by `gemm` (which chooses the zero-skipping kernels by density).
    fn auto(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let Case { m, k, n, op_a, .. } = *self;
        let (a, b) = (black_box(a), black_box(b));
        gemm(m, n, k, a, op_a, b, Op::N, out, Accumulate::Overwrite);
        black_box(out);
    }

    /// `C = op(A) B` by the zero-skipping kernel alone, one thread, whatever the density.
    fn kernel(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let Case { m, k, n, op_a, .. } = *self;
        let (a, b) = (black_box(a), black_box(b));
        let level = simd::best_available();
        gemm_sparse(level, m, n, k, a, op_a, b, out, Accumulate::Overwrite);
        black_box(out);
    }
}

fn group<'a>(
    c: &'a mut Criterion,
    name: String,
    case: &Case,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(2 * (case.m * case.n * case.k) as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    g
}

fn bench(c: &mut Criterion) {
    let pools = [(1, pool(1)), (2, pool(2))];
    let cases = [
        (
            Case {
                name: "fwd_784x800/b10",
                m: 10,
                k: 784,
                n: 800,
                op_a: Op::N,
            },
            0.19,
        ),
        (
            Case {
                name: "wgrad_784x800/b10",
                m: 784,
                k: 10,
                n: 800,
                op_a: Op::T,
            },
            0.19,
        ),
        (
            Case {
                name: "fwd_784x800/b100",
                m: 100,
                k: 784,
                n: 800,
                op_a: Op::N,
            },
            0.19,
        ),
        (
            Case {
                name: "fwd_800x800/b100",
                m: 100,
                k: 800,
                n: 800,
                op_a: Op::N,
            },
            0.25,
        ),
        (
            Case {
                name: "fwd_800x800/b100",
                m: 100,
                k: 800,
                n: 800,
                op_a: Op::N,
            },
            0.4,
        ),
        (
            Case {
                name: "wgrad_800x800/b100",
                m: 800,
                k: 100,
                n: 800,
                op_a: Op::T,
            },
            0.25,
        ),
        (
            Case {
                name: "wgrad_800x800/b100",
                m: 800,
                k: 100,
                n: 800,
                op_a: Op::T,
            },
            0.4,
        ),
        (
            Case {
                name: "fwd_784x800/b1000",
                m: 1000,
                k: 784,
                n: 800,
                op_a: Op::N,
            },
            0.19,
        ),
        (
            Case {
                name: "fwd_800x800/b1000",
                m: 1000,
                k: 800,
                n: 800,
                op_a: Op::N,
            },
            0.4,
        ),
    ];
    for (case, density) in &cases {
        let Case { name, m, k, n, .. } = *case;
        let a = sparse_random(m * k, *density, 1);
        let b = sparse_random(k * n, 1.0, 2);
        let mut out = vec![0.0f32; m * n];
        if *density <= SPARSE_MAX_DENSITY - 0.05 {
            assert!(
                sparse_path(m, n, k, &a, Op::N).is_some(),
                "{name} takes the sparse path"
            );
        }
        let mut g = group(c, format!("sparse/{name}/d{density}"), case);
        for (threads, pool) in &pools {
            g.bench_function(format!("dense_{threads}t"), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        case.dense(&a, &b, &mut out);
                    })
                })
            });
            g.bench_function(format!("sparse_{threads}t"), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        case.auto(&a, &b, &mut out);
                    })
                })
            });
        }
        g.finish();
    }
    // The threshold: the kernel alone on one thread against the dense path.
    let density_cases = [
        Case {
            name: "fwd_800x800/b100",
            m: 100,
            k: 800,
            n: 800,
            op_a: Op::N,
        },
        Case {
            name: "wgrad_800x800/b100",
            m: 800,
            k: 100,
            n: 800,
            op_a: Op::T,
        },
        Case {
            name: "fwd_784x800/b10",
            m: 10,
            k: 784,
            n: 800,
            op_a: Op::N,
        },
    ];
    for case in &density_cases {
        let Case { name, m, k, n, .. } = *case;
        let b = sparse_random(k * n, 1.0, 2);
        let mut out = vec![0.0f32; m * n];
        for density in [0.1, 0.25, 0.4, 0.6, 0.8] {
            let a = sparse_random(m * k, density, 1);
            let mut g = group(c, format!("density/{name}/d{density}"), case);
            g.bench_function("dense_1t", |bench| {
                pools[0].1.install(|| {
                    bench.iter(|| {
                        case.dense(&a, &b, &mut out);
                    })
                })
            });
            g.bench_function("kernel_1t", |bench| {
                bench.iter(|| case.kernel(&a, &b, &mut out))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
