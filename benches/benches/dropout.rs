//! criterion benchmarks: fused dropout forward + backward against an unfused baseline.
//!
//! For a 100x800 hidden activation and a 10x784 input batch, one iteration is a forward
//! pass (draw mask, `y = x * m / keep`) followed by a backward pass (`g = g * m / keep`):
//!
//! * `fused-<level>/1t`, `/2t`: `regulab_kernels::dropout::{forward, backward}` on the
//!   selected SIMD path in rayon pools of 1 and 2 threads (1 bit per element, one pass
//!   each way), and `fused-scalar/1t` on the scalar path;
//! * `unfused-scalar/1t`: the textbook version in the same run: pass 1 draws the mask as
//!   an f32 0/1 array from the same ChaCha words and threshold, drawn in bulk with the
//!   same generator as the fused kernel on the same (scalar) path
//!   (`regulab_kernels::chacha`), pass 2 multiplies `x` by the mask, pass 3 scales by
//!   `1/keep`; backward multiplies by the mask, then scales; plain loops, like the fused
//!   kernel's scalar path. So `unfused-scalar / fused-scalar` measures the fusion alone
//!   (same SIMD level on both sides), and `fused-scalar / fused-<level>` the SIMD gain.
//!
//! Throughput is `Bytes(8 * n)`: the bytes of `x` read plus `y` written.
//!
//! Group `chacha8_words`: the random words alone, 80,000 of them (one 100x800 mask) with
//! `Throughput::Bytes(4 * 80_000)`: `rand_chacha` 0.10's `ChaCha8Rng::fill_bytes` beside
//! `regulab_kernels::chacha::fill_words_with` on every available SIMD path (same words).
//!
//! Reproduce: `cargo bench -p regulab-benches --bench dropout -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;
use regulab_kernels::chacha::ChaCha8Stream;
use regulab_kernels::dropout::{Keep, Mask, MaskKey, backward_with, forward_with};
use regulab_kernels::rng::{Purpose, derive_key, stream_rng};
use regulab_kernels::simd::{self, Level};

const KEEP: f32 = 0.5;

fn input(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 + 0.1)
        .collect()
}

/// Pass 1 of the baseline: `m_i = [u_i < T]` as an f32 0/1 array from the same words as
/// ours, drawn in bulk (256 at a time) with the fused kernel's generator and converted
/// without a branch, so the comparison measures the fusion, not the way words are drawn.
fn draw_mask_f32(words: &ChaCha8Stream, start: u128, threshold: u64, m: &mut [f32]) {
    let mut buf = [0u32; 256];
    for (i, block) in m.chunks_mut(256).enumerate() {
        let buf = &mut buf[..block.len()];
        words.fill_with(Level::Scalar, start + 256 * i as u128, buf);
        for (v, &u) in block.iter_mut().zip(buf.iter()) {
            *v = f32::from(u8::from(u64::from(u) < threshold));
        }
    }
}

fn unfused(key: MaskKey, keep: Keep, x: &[f32], y: &mut [f32], g: &mut [f32], m: &mut [f32]) {
    let words = ChaCha8Stream::new(
        &derive_key(key.seed, Purpose::Dropout),
        u64::from(key.layer),
    );
    draw_mask_f32(&words, u128::from(key.step) << 32, keep.threshold(), m);
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
        group.bench_function(BenchmarkId::new("unfused-scalar", "1t"), |b| {
            b.iter(|| {
                unfused(key, keep, black_box(&x), &mut y, &mut g, &mut mf);
                black_box((&y, &g));
            })
        });
        group.finish();
    }
}

/// ChaCha8 words of one 100x800 mask: `rand_chacha` against our generator.
fn bench_words(c: &mut Criterion) {
    const N: usize = 80_000;
    let (seed, layer, step) = (42u64, 1u64, 1000u128);
    let mut group = c.benchmark_group("chacha8_words");
    group.throughput(Throughput::Bytes(4 * N as u64));
    group.measurement_time(std::time::Duration::from_secs(2));
    let mut bytes = vec![0u8; 4 * N];
    group.bench_function("rand_chacha-fill_bytes", |b| {
        b.iter(|| {
            let mut rng = stream_rng(seed, Purpose::Dropout, layer);
            rng.set_word_pos(step << 32);
            rng.fill_bytes(&mut bytes);
            black_box(&bytes);
        })
    });
    let words_gen = ChaCha8Stream::new(&derive_key(seed, Purpose::Dropout), layer);
    let mut words = vec![0u32; N];
    for level in Level::ALL.into_iter().filter(|&l| simd::available(l)) {
        group.bench_function(format!("fill_words-{level}"), |b| {
            b.iter(|| {
                words_gen.fill_with(level, black_box(step << 32), &mut words);
                black_box(&words);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench, bench_words
}
criterion_main!(benches);
