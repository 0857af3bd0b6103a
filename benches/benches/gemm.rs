//! criterion benchmarks: the parallel GEMM wrapper against single-threaded sgemm.
//!
//! Shapes of the 784-800-10 network and of an 800x800 hidden layer, at batch B = 10,
//! 100 and 1000 (`m x k . k x n`, row-major, transposes through strides):
//!
//! * `fwd_784x800`: `X (B x 784) . W (784 x 800)`;
//! * `fwd_800x800`: `H (B x 800) . W (800 x 800)`;
//! * `fwd_800x10`: `H (B x 800) . W (800 x 10)`;
//! * `igrad_784x800`: `D (B x 800) . W^T` with `W` stored `784 x 800`;
//! * `wgrad_784x800`: `X^T . D` with `X` stored `B x 784`, `D` stored `B x 800`.
//!
//! Per shape, in the same run:
//!
//! * `raw_mm_1t`: one `matrixmultiply::sgemm` call on the calling thread, through
//!   `gemm_serial` (which is exactly that call plus slice-length checks; the house style
//!   keeps `unsafe` inside the kernels crate);
//! * `direct_1t`: `gemm_direct` at the best SIMD level, one call on the calling thread:
//!   the no-packing kernels alone, whatever `gemm`'s thresholds (the scalar reference on
//!   a CPU without AVX2, much slower);
//! * `ours_1t`, `ours_2t`: `regulab_kernels::gemm::gemm` in rayon pools of 1 and 2
//!   threads (the whole measurement loop runs inside `install`, as the training loop does);
//!   it takes the direct kernels where `direct_path` says so, else sgemm.
//!
//! Throughput is `Elements(2 m n k)`, i.e. criterion reports flop/s as elements/s.
//! Issue targets: `ours_2t` >= 1.7x `raw_mm_1t` at batch 100 and 1000, >= 1.5x at batch 10.
//!
//! `gemm_portable/<shape>`: what a portable path with the same FMA chains would cost on
//! a CPU without FMA (outside regulab's bit guarantee): `scalar_mul_add_1t` is
//! `gemm_direct(Level::Scalar, ..)`, the reference that computes every element with
//! `f32::mul_add` in the same order as the FMA kernels (same bits), against `direct_1t`
//! and `raw_mm_1t` (one sgemm call), all on one thread. On this machine `mul_add` runs
//! on the FMA unit, one element at a time; a CPU without FMA would emulate it in
//! software (slower still), so this is a lower bound of that cost.
//!
//! Reproduce: `cargo bench -p regulab-benches --bench gemm`
//! (about 4 minutes: 15 shapes x 4 variants x (1 s warm-up + 3 s measurement)); e.g.
//! `-- /b10/` for batch 10 only.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulab_kernels::gemm::{Accumulate, Op, gemm, gemm_direct, gemm_serial};
use regulab_kernels::simd;

/// One benchmarked product `C (m x n) = op(A) (m x k) . op(B) (k x n)`.
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    op_a: Op,
    op_b: Op,
}

fn shapes(batch: usize) -> [Shape; 5] {
    let s = |name, m, k, n, op_a, op_b| Shape {
        name,
        m,
        k,
        n,
        op_a,
        op_b,
    };
    [
        s("fwd_784x800", batch, 784, 800, Op::N, Op::N),
        s("fwd_800x800", batch, 800, 800, Op::N, Op::N),
        s("fwd_800x10", batch, 800, 10, Op::N, Op::N),
        s("igrad_784x800", batch, 800, 784, Op::N, Op::T),
        s("wgrad_784x800", 784, batch, 800, Op::T, Op::N),
    ]
}

/// `len` values uniform in [-1, 1) from a seeded ChaCha stream.
fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("build rayon pool")
}

fn bench(c: &mut Criterion) {
    let pools = [(1, pool(1)), (2, pool(2))];
    for batch in [10, 100, 1000] {
        for shape in shapes(batch) {
            let Shape {
                name,
                m,
                k,
                n,
                op_a,
                op_b,
            } = shape;
            let a = random(m * k, 1);
            let b = random(k * n, 2);
            let mut out = vec![0.0f32; m * n];
            let mut group = c.benchmark_group(format!("gemm/{name}/b{batch}"));
            group
                .throughput(Throughput::Elements(2 * (m * n * k) as u64))
                .sample_size(20)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
            group.bench_function("raw_mm_1t", |bench| {
                bench.iter(|| {
                    gemm_serial(
                        m,
                        n,
                        k,
                        black_box(&a),
                        op_a,
                        black_box(&b),
                        op_b,
                        &mut out,
                        Accumulate::Overwrite,
                    );
                    black_box(&mut out);
                })
            });
            group.bench_function("direct_1t", |bench| {
                bench.iter(|| {
                    gemm_direct(
                        simd::best_available(),
                        m,
                        n,
                        k,
                        black_box(&a),
                        op_a,
                        black_box(&b),
                        op_b,
                        &mut out,
                        Accumulate::Overwrite,
                    );
                    black_box(&mut out);
                })
            });
            for (threads, pool) in &pools {
                group.bench_function(format!("ours_{threads}t"), |bench| {
                    pool.install(|| {
                        bench.iter(|| {
                            gemm(
                                m,
                                n,
                                k,
                                black_box(&a),
                                op_a,
                                black_box(&b),
                                op_b,
                                &mut out,
                                Accumulate::Overwrite,
                            );
                            black_box(&mut out);
                        })
                    })
                });
            }
            group.finish();
        }
    }
}

/// The portable FMA-chain reference against the SIMD kernels (see the module doc).
fn portable(c: &mut Criterion) {
    for shape in [shapes(10), shapes(100)].into_iter().flat_map(|s| {
        let [fwd, _, _, igrad, wgrad] = s;
        [fwd, igrad, wgrad]
    }) {
        let Shape {
            name,
            m,
            k,
            n,
            op_a,
            op_b,
        } = shape;
        let a = random(m * k, 1);
        let b = random(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let mut group = c.benchmark_group(format!("gemm_portable/{name}/{m}x{k}x{n}"));
        group
            .throughput(Throughput::Elements(2 * (m * n * k) as u64))
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        let levels = [
            ("scalar_mul_add_1t", simd::Level::Scalar),
            ("direct_1t", simd::best_available()),
        ];
        for (label, level) in levels {
            group.bench_function(label, |bench| {
                bench.iter(|| {
                    gemm_direct(
                        level,
                        m,
                        n,
                        k,
                        black_box(&a),
                        op_a,
                        black_box(&b),
                        op_b,
                        &mut out,
                        Accumulate::Overwrite,
                    );
                    black_box(&mut out);
                })
            });
        }
        group.bench_function("raw_mm_1t", |bench| {
            bench.iter(|| {
                gemm_serial(
                    m,
                    n,
                    k,
                    black_box(&a),
                    op_a,
                    black_box(&b),
                    op_b,
                    &mut out,
                    Accumulate::Overwrite,
                );
                black_box(&mut out);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench, portable);
criterion_main!(benches);
