//! criterion benchmarks: activation kernels, each SIMD level beside the scalar path in
//! the same run (all levels give the same bits, so this measures the speed-up only).
//!
//! * `sigmoid_forward/{level}/{rows}x{cols}`: `z = sigmoid(z + bias)` in place;
//!   throughput = bytes read + written (`2 * 4 * rows * cols`).
//! * `sigmoid_backward/...`: `g = g * (h * (1 - h))`; throughput `3 * 4 * rows * cols`.
//! * `softmax_xent/...`: fused softmax + cross-entropy + gradient; throughput
//!   `2 * 4 * rows * cols` (logits read, gradient written).
//!
//! Every level runs in a 1-thread rayon pool (so the ratio is the SIMD speed-up);
//! `best-2t` is the default level in a 2-thread pool, the way the model runs it.
//!
//! `cargo bench -p regulab-benches --bench activation -- --warm-up-time 1`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regulab_kernels::activation::{self, Activation};
use regulab_kernels::simd::{self, Level};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Deterministic inputs in [lo, hi) (SplitMix64).
fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// Time of `iters` runs of `f` inside `pool` (entered once per sample, so the cost
/// of `install` is not charged to every iteration).
fn in_pool(pool: &rayon::ThreadPool, iters: u64, mut f: impl FnMut() + Send) -> Duration {
    pool.install(|| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed()
    })
}

/// (label, level, threads): every available level on 1 thread, the default on 2.
fn variants() -> Vec<(String, Level, usize)> {
    let mut v: Vec<(String, Level, usize)> = Level::ALL
        .into_iter()
        .filter(|&l| simd::available(l))
        .map(|l| (l.as_str().to_string(), l, 1))
        .collect();
    v.push(("best-2t".to_string(), simd::level(), 2));
    v
}

fn sigmoid(c: &mut Criterion) {
    let pools = [pool(1), pool(2)];
    let mut fwd = c.benchmark_group("sigmoid_forward");
    for (rows, cols) in [(100usize, 800usize), (10, 800)] {
        let n = rows * cols;
        let bias = data(cols, 1, -0.5, 0.5);
        let mut z = data(n, 2, -6.0, 6.0);
        fwd.throughput(Throughput::Bytes((2 * 4 * n) as u64));
        for (label, level, threads) in variants() {
            let id = BenchmarkId::new(label, format!("{rows}x{cols}"));
            let pool = &pools[threads - 1];
            fwd.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    in_pool(pool, iters, || {
                        activation::forward_with(level, Activation::Sigmoid, &mut z, &bias);
                        black_box(&mut z);
                    })
                })
            });
        }
    }
    fwd.finish();

    let mut bwd = c.benchmark_group("sigmoid_backward");
    for (rows, cols) in [(100usize, 800usize), (10, 800)] {
        let n = rows * cols;
        let h = data(n, 3, 0.0, 1.0);
        let g0 = data(n, 4, -1.0, 1.0);
        let mut g = g0.clone();
        bwd.throughput(Throughput::Bytes((3 * 4 * n) as u64));
        for (label, level, threads) in variants() {
            let id = BenchmarkId::new(label, format!("{rows}x{cols}"));
            let pool = &pools[threads - 1];
            bwd.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    // a fresh g each time, copied outside the timed part: in place, g
                    // would shrink into subnormals after a few dozen passes
                    pool.install(|| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            g.copy_from_slice(&g0);
                            let t = Instant::now();
                            activation::backward_with(level, Activation::Sigmoid, &h, &mut g);
                            black_box(&mut g);
                            total += t.elapsed();
                        }
                        total
                    })
                })
            });
        }
    }
    bwd.finish();
}

fn softmax(c: &mut Criterion) {
    let pools = [pool(1), pool(2)];
    let mut group = c.benchmark_group("softmax_xent");
    for (rows, cols) in [(100usize, 10usize), (1000, 10)] {
        let n = rows * cols;
        let logits = data(n, 5, -8.0, 8.0);
        let bias = data(cols, 6, -0.5, 0.5);
        let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 7) % cols as u32).collect();
        let mut grad = vec![0.0f32; n];
        let mut loss = vec![0.0f32; rows];
        group.throughput(Throughput::Bytes((2 * 4 * n) as u64));
        for (label, level, threads) in variants() {
            let id = BenchmarkId::new(label, format!("{rows}x{cols}"));
            let pool = &pools[threads - 1];
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    in_pool(pool, iters, || {
                        black_box(activation::softmax_xent_with(
                            level,
                            black_box(&logits),
                            &bias,
                            &labels,
                            &mut grad,
                            &mut loss,
                        ));
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = sigmoid, softmax
}
criterion_main!(benches);
