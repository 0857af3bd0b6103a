//! criterion benchmarks: fused dropout forward + backward against an unfused baseline.
//!
//! For a 100x800 hidden activation and a 10x784 input batch, one iteration is a forward
//! pass (draw mask, `y = x * m / keep`) followed by a backward pass (`g = g * m / keep`):
//!
//! * `fused-<level>/1t`, `/2t`: `regulab_kernels::dropout::{forward, backward}` on the
//!   selected SIMD path in rayon pools of 1 and 2 threads (1 bit per element, one pass
//!   each way), and `fused-scalar/1t` on the scalar path;
//! * `unfused/1t`: the textbook version in the same run: pass 1 draws the mask as an f32
//!   0/1 array from the same ChaCha words (in bulk) and threshold, pass 2 multiplies `x` by the
//!   mask, pass 3 scales by `1/keep`; backward multiplies by the mask, then scales.
//!
//! Throughput is `Bytes(8 * n)`: the bytes of `x` read plus `y` written.
//!
//! Reproduce: `cargo bench -p regulab-benches --bench dropout -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use regulab_kernels::dropout::{Keep, Mask, MaskKey, backward_with, forward_with};
use regulab_kernels::rng::{Purpose, stream_rng};
use regulab_kernels::simd::{self, Level};

const KEEP: f32 = 0.5;

fn input(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 + 0.1)
        .collect()
}

/// Pass 1 of the baseline: `m_i = [u_i < T]` as an f32 0/1 array from the same words as
/// ours, drawn in bulk with `fill_bytes` like the fused kernel and converted without a
/// branch, so the comparison measures the fusion, not the way words are drawn.
fn draw_mask_f32(rng: &mut ChaCha8Rng, threshold: u64, m: &mut [f32]) {
    let mut buf = [0u8; 256];
    for block in m.chunks_mut(64) {
        rng.fill_bytes(&mut buf);
        for (v, b) in block.iter_mut().zip(buf.chunks_exact(4)) {
            let u = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            *v = f32::from(u8::from(u64::from(u) < threshold));
        }
    }
}

fn unfused(key: MaskKey, keep: Keep, x: &[f32], y: &mut [f32], g: &mut [f32], m: &mut [f32]) {
    let mut rng = stream_rng(key.seed, Purpose::Dropout, u64::from(key.layer));
    rng.set_word_pos(u128::from(key.step) << 32);
    draw_mask_f32(&mut rng, keep.threshold(), m);
    for ((y, x), m) in y.iter_mut().zip(x).zip(m.iter()) {
        *y = x * m;
    }
    let inv = keep.inv();
    for y in y.iter_mut() {
        *y *= inv;
    }
    // backward
    for (g, m) in g.iter_mut().zip(m.iter()) {
        *g *= m;
    }
    for g in g.iter_mut() {
        *g *= inv;
    }
}

fn bench(c: &mut Criterion) {
    let keep = Keep::new(KEEP).expect("valid keep");
    let key = MaskKey {
        seed: 42,
        layer: 1,
        step: 1000,
    };
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|t| {
            (
                t,
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("pool"),
            )
        })
        .collect();
    for (rows, cols) in [(100usize, 800usize), (10, 784)] {
        let n = rows * cols;
        let shape = format!("{rows}x{cols}");
        let mut group = c.benchmark_group(format!("dropout_fwd_bwd/{shape}"));
        group.throughput(Throughput::Bytes(8 * n as u64));
        let x = input(n);
        let mut y = vec![0.0f32; n];
        let mut g = input(n);
        let mut mask = Mask::new();
        // the selected SIMD path on 1 and 2 threads, and the scalar path on 1 thread
        let best = simd::level();
        let runs = [
            (best, &pools[0]),
            (best, &pools[1]),
            (Level::Scalar, &pools[0]),
        ];
        for (level, (threads, pool)) in runs {
            let id = BenchmarkId::new(
                format!("fused-{level:?}").to_lowercase(),
                format!("{threads}t"),
            );
            group.bench_function(id, |b| {
                pool.install(|| {
                    b.iter(|| {
                        forward_with(level, key, keep, black_box(&x), &mut y, &mut mask);
                        backward_with(level, keep, &mask, &mut g);
                        black_box((&y, &g));
                    })
                })
            });
        }
        let mut mf = vec![0.0f32; n];
        group.bench_function(BenchmarkId::new("unfused", "1t"), |b| {
            b.iter(|| {
                unfused(key, keep, black_box(&x), &mut y, &mut g, &mut mf);
                black_box((&y, &g));
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
