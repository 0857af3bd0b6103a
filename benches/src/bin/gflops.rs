//! GEMM rates against the FMA peak, measured in one run on this machine: the FMA peak
//! of one core and of two (`cpu::fma_peak`, best of 7), then the products of a training
//! step at batch 100 and of evaluation at batch 1000 of the lab's networks, each
//! through `gemm` (the kernel it settles on after its timed rounds, named) in pools of
//! 1 and 2 threads, and one `sgemm` call (matrixmultiply alone, 1 thread). The first
//! layer's products take real inputs (the first Fashion-MNIST training images, pixels
//! / 255, about half of them zero); the hidden layer's take dense sigmoid-range values.
//! Each figure is the median of 15 timed calls after the warm-up. Prints a Markdown
//! table.
//!
//! Usage: `gflops` (about 20 s). Part of the issue-16 figures in `benches/README.md`.

use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulab_benches::{dataset, median, pool};
use regulab_kernels::cpu::fma_peak;
use regulab_kernels::gemm::{self, Accumulate, Op, ROUNDS, STREAK, TRIAL, gemm, gemm_serial};
use regulab_kernels::simd;

/// Best of 7 peak measurements of about 50 ms on each thread of `pool`, summed.
fn peak(pool: &rayon::ThreadPool) -> f64 {
    let level = simd::best_available();
    (0..7)
        .map(|_| {
            pool.broadcast(|_| fma_peak(level, 1_500_000).unwrap_or(0.0))
                .iter()
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
}

struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    op_a: Op,
    op_b: Op,
    acc: Accumulate,
    real_a: bool,
}

fn main() {
    let pools = [pool(1), pool(2)];
    let level = simd::best_available();
    let (p1, p2) = (peak(&pools[0]), peak(&pools[1]));
    println!(
        "FMA peak ({} chains of {}): {p1:.0} GFLOP/s on 1 thread, {p2:.0} on 2 ({:.2}x)\n",
        regulab_kernels::cpu::PEAK_CHAINS,
        level.as_str(),
        p2 / p1
    );
    let data = dataset();
    use Accumulate::{Add, Overwrite};
    // (name, m, n, k, op(A), op(B), accumulate, A from real images)
    #[rustfmt::skip]
    let table = [
        ("eval: X W, 1000x784 . 784x800", 1000, 800, 784, Op::N, Op::N, Overwrite, true),
        ("eval: H W, 1000x800 . 800x800", 1000, 800, 800, Op::N, Op::N, Overwrite, false),
        ("train: X W, 100x784 . 784x800", 100, 800, 784, Op::N, Op::N, Overwrite, true),
        ("train: W += X^T D, 784x100 . 100x800", 784, 800, 100, Op::T, Op::N, Add, true),
        ("train: H W, 100x800 . 800x800", 100, 800, 800, Op::N, Op::N, Overwrite, false),
        ("train: D W^T, 100x800 . 800x800", 100, 800, 800, Op::N, Op::T, Overwrite, false),
    ];
    let shapes = table.map(|(name, m, n, k, op_a, op_b, acc, real_a)| Shape {
        name,
        m,
        n,
        k,
        op_a,
        op_b,
        acc,
        real_a,
    });
    println!(
        "| product | sgemm 1t | ours 1t | kernel | share of 1-core peak | ours 2t | kernel | 2t / 1t |"
    );
    println!("|---|---:|---:|---|---:|---:|---|---:|");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for sh in &shapes {
        let a: Vec<f32> = if sh.real_a {
            // X (m x 784) or X^T stored as X (100 x 784): the first images
            let rows = if sh.op_a == Op::N { sh.m } else { sh.k };
            let mut x = vec![0.0f32; rows * 784];
            let mut y = vec![0u32; rows];
            let idx: Vec<u32> = (0..rows as u32).collect();
            data.gather(&idx, &mut x, &mut y).unwrap();
            x
        } else {
            (0..sh.m * sh.k)
                .map(|_| rng.random_range(0.0f32..1.0))
                .collect()
        };
        let b: Vec<f32> = (0..sh.k * sh.n)
            .map(|_| rng.random_range(-0.1f32..0.1))
            .collect();
        let mut c = vec![0.0f32; sh.m * sh.n];
        let flops = 2.0 * (sh.m * sh.n * sh.k) as f64;
        let rate = |d: Duration| flops / d.as_secs_f64() / 1e9;
        let time = |c: &mut [f32], f: &dyn Fn(&mut [f32])| {
            for _ in 0..ROUNDS * STREAK * 6 + 2 * TRIAL + 3 {
                f(c);
            }
            let mut t = Vec::new();
            for _ in 0..15 {
                let t0 = Instant::now();
                f(c);
                t.push(t0.elapsed());
            }
            median(t)
        };
        let serial = time(&mut c, &|c| {
            gemm_serial(sh.m, sh.n, sh.k, &a, sh.op_a, &b, sh.op_b, c, sh.acc)
        });
        let mut ours = Vec::new();
        for p in &pools {
            let d = p.install(|| {
                time(&mut c, &|c| {
                    gemm(sh.m, sh.n, sh.k, &a, sh.op_a, &b, sh.op_b, c, sh.acc)
                })
            });
            let threads = p.current_num_threads();
            let kernel = gemm::decisions()
                .into_iter()
                .find(|d| {
                    (d.key.m, d.key.n, d.key.k, d.key.threads) == (sh.m, sh.n, sh.k, threads)
                        && d.key.trans_a == (sh.op_a == Op::T)
                        && d.key.trans_b == (sh.op_b == Op::T)
                })
                .and_then(|d| d.chosen)
                .map_or_else(|| "sgemm (only)".to_string(), |p| p.to_string());
            ours.push((rate(d), kernel));
        }
        println!(
            "| {} | {:.0} | {:.0} | {} | {:.0} % | {:.0} | {} | {:.2}x |",
            sh.name,
            rate(serial),
            ours[0].0,
            ours[0].1,
            100.0 * ours[0].0 / p1,
            ours[1].0,
            ours[1].1,
            ours[1].0 / ours[0].0
        );
    }
}
