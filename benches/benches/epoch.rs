//! criterion benchmarks: whole training epochs, as a user's study runs them.
//!
//! One epoch of 10,000 random examples of MNIST shape (u8 pixels gathered and scaled
//! per batch, as `regulab run` does), for the three anchor configurations of
//! `../shared/anchors` (PyTorch and numpy figures there):
//!
//! * (i)   784-800-10 sigmoid, batch 10, SGD lr 0.5 (the lab's setting);
//! * (ii)  the same with batch 100;
//! * (iii) 784-800-800-10 ReLU, batch 100, dropout keep 0.8 / 0.5, L2 1e-4, lr 0.05;
//!
//! on 1 and 2 threads, with `Throughput::Elements` = training examples. Also a 4-run
//! grid of (i) with `--jobs 2` (two runs at once, one thread each) against `--jobs 1`
//! (one run at a time on two threads), and evaluation (forward only, batch 1000).
//!
//! Before the criterion groups, the bench prints for each configuration the median
//! time of an epoch and of the same epoch's GEMM calls alone (same shapes, same pool),
//! so the share of everything else (activations, dropout, update, gather) is visible.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regulab::data::LabeledImages;
use regulab_kernels::gemm::{Accumulate, Op, gemm};
use regulab_model::{
    Activation, Architecture, FixedDropout, Init, Mlp, Output, Penalty, TrainConfig, Trainer,
    Workspace, evaluate,
};

const N: usize = 10_000;
const D: usize = 784;

/// One anchor configuration.
#[derive(Clone, Copy)]
struct Cfg {
    name: &'static str,
    hidden: &'static [usize],
    act: Activation,
    batch: usize,
    keep: (f32, f32),
    l2: f32,
    lr: f32,
}

const CFGS: [Cfg; 3] = [
    Cfg {
        name: "i_784-800-10_sigmoid_b10",
        hidden: &[800],
        act: Activation::Sigmoid,
        batch: 10,
        keep: (1.0, 1.0),
        l2: 0.0,
        lr: 0.5,
    },
    Cfg {
        name: "ii_784-800-10_sigmoid_b100",
        hidden: &[800],
        act: Activation::Sigmoid,
        batch: 100,
        keep: (1.0, 1.0),
        l2: 0.0,
        lr: 0.5,
    },
    Cfg {
        name: "iii_784-800-800-10_relu_b100_dropout_l2",
        hidden: &[800, 800],
        act: Activation::Relu,
        batch: 100,
        keep: (0.8, 0.5),
        l2: 1e-4,
        lr: 0.05,
    },
];

/// 10,000 random MNIST-shaped examples (a fixed generator, no dependency on rand's
/// distributions).
fn dataset() -> LabeledImages {
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let pixels: Vec<u8> = (0..N * D).map(|_| (next() >> 56) as u8).collect();
    let labels: Vec<u8> = (0..N).map(|_| (next() % 10) as u8).collect();
    LabeledImages::new(28, 28, pixels, labels).expect("consistent sizes")
}

fn trainer(c: &Cfg, seed: u64) -> Trainer {
    let mut sizes = vec![D];
    sizes.extend(c.hidden);
    sizes.push(10);
    let arch = Architecture::new(sizes, c.act, Output::Softmax).unwrap();
    let net = Mlp::new(
        arch,
        &Init::Uniform {
            hidden: 0.2,
            output: 0.2,
        },
        seed,
    )
    .unwrap();
    let tc = TrainConfig {
        penalty: Penalty::new(0.0, c.l2),
        seed,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, tc, c.batch).unwrap();
    t.set_dropout(Box::new(FixedDropout::new(c.keep.0, c.keep.1)))
        .unwrap();
    t.set_epoch(1).unwrap();
    t
}

/// Buffers of one epoch, allocated once.
struct Epoch {
    order: Vec<u32>,
    x: Vec<f32>,
    y: Vec<u32>,
}

impl Epoch {
    fn new(batch: usize) -> Epoch {
        Epoch {
            order: (0..N as u32).collect(),
            x: vec![0.0; batch * D],
            y: vec![0; batch],
        }
    }

    /// One epoch: gather each batch from u8 pixels, train on it.
    fn run(&mut self, data: &LabeledImages, t: &mut Trainer, c: &Cfg) {
        for chunk in self.order.chunks(c.batch) {
            let n = chunk.len();
            data.gather(chunk, &mut self.x[..n * D], &mut self.y[..n])
                .unwrap();
            black_box(t.train_batch(&self.x[..n * D], &self.y[..n], c.lr).unwrap());
        }
    }
}

/// The GEMM calls of one epoch alone: per batch and layer, forward, weight gradient
/// accumulated into W (the G-free update), and the input gradient below layer 0.
fn gemm_epoch(c: &Cfg, bufs: &mut [Vec<f32>; 4], ws: &mut [Vec<f32>]) {
    let mut sizes = vec![D];
    sizes.extend(c.hidden);
    sizes.push(10);
    let b = c.batch;
    for _ in 0..N / b {
        for (i, w) in ws.iter_mut().enumerate() {
            let (n_in, n_out) = (sizes[i], sizes[i + 1]);
            let [x, out, delta, dprev] = &mut *bufs;
            gemm(
                b,
                n_out,
                n_in,
                &x[..b * n_in],
                Op::N,
                w,
                Op::N,
                &mut out[..b * n_out],
                Accumulate::Overwrite,
            );
            if i > 0 {
                gemm(
                    b,
                    n_in,
                    n_out,
                    &delta[..b * n_out],
                    Op::N,
                    w,
                    Op::T,
                    &mut dprev[..b * n_in],
                    Accumulate::Overwrite,
                );
            }
            gemm(
                n_in,
                n_out,
                b,
                &x[..b * n_in],
                Op::T,
                &delta[..b * n_out],
                Op::N,
                w,
                Accumulate::Add,
            );
        }
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median epoch vs median GEMM-only epoch, printed once per config and thread count.
fn print_gemm_share(data: &LabeledImages) {
    println!("\nepoch time vs the same epoch's GEMM calls alone (median of 5):");
    println!(
        "{:<42} {:>7} {:>11} {:>11} {:>9}",
        "config", "threads", "epoch ms", "gemm ms", "non-gemm"
    );
    for c in &CFGS {
        for threads in [1, 2] {
            let p = pool(threads);
            let (epoch, gemm_only) = p.install(|| {
                let mut t = trainer(c, 1);
                let mut e = Epoch::new(c.batch);
                let mut te = Vec::new();
                for _ in 0..5 {
                    let t0 = Instant::now();
                    e.run(data, &mut t, c);
                    te.push(t0.elapsed());
                }
                let maxw = 800;
                let mut bufs = [
                    vec![0.5f32; c.batch * maxw.max(D)],
                    vec![0.0f32; c.batch * maxw.max(D)],
                    vec![0.01f32; c.batch * maxw.max(D)],
                    vec![0.0f32; c.batch * maxw.max(D)],
                ];
                let mut sizes = vec![D];
                sizes.extend(c.hidden);
                sizes.push(10);
                let mut ws: Vec<Vec<f32>> =
                    sizes.windows(2).map(|s| vec![0.01; s[0] * s[1]]).collect();
                let mut tg = Vec::new();
                for _ in 0..5 {
                    let t0 = Instant::now();
                    gemm_epoch(c, &mut bufs, &mut ws);
                    tg.push(t0.elapsed());
                }
                (median(te), median(tg))
            });
            let e = epoch.as_secs_f64() * 1e3;
            let g = gemm_only.as_secs_f64() * 1e3;
            println!(
                "{:<42} {:>7} {:>11.2} {:>11.2} {:>8.1}%",
                c.name,
                threads,
                e,
                g,
                100.0 * (e - g).max(0.0) / e
            );
        }
    }
    println!();
}

fn bench_epochs(cr: &mut Criterion) {
    let data = dataset();
    print_gemm_share(&data);
    let mut g = cr.benchmark_group("epoch");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(N as u64));
    for c in &CFGS {
        for threads in [1, 2] {
            let p = pool(threads);
            let mut t = trainer(c, 1);
            let mut e = Epoch::new(c.batch);
            g.bench_function(BenchmarkId::new(c.name, format!("{threads}t")), |b| {
                p.install(|| b.iter(|| e.run(&data, &mut t, c)))
            });
        }
    }
    g.finish();

    // A grid of 4 runs of (i), one epoch each: two at once on one thread each
    // (--jobs 2) against one at a time on two threads (--jobs 1).
    let mut g = cr.benchmark_group("grid4_i");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(4 * N as u64));
    let c = &CFGS[0];
    g.bench_function("jobs1_threads2", |b| {
        let p = pool(2);
        let mut runs: Vec<(Trainer, Epoch)> =
            (0..4).map(|s| (trainer(c, s), Epoch::new(c.batch))).collect();
        b.iter(|| {
            p.install(|| {
                for (t, e) in runs.iter_mut() {
                    e.run(&data, t, c);
                }
            })
        })
    });
    g.bench_function("jobs2_threads1", |b| {
        let pools = [pool(1), pool(1)];
        let mut runs: Vec<(Trainer, Epoch)> =
            (0..4).map(|s| (trainer(c, s), Epoch::new(c.batch))).collect();
        b.iter(|| {
            let (a, bb) = runs.split_at_mut(2);
            std::thread::scope(|s| {
                for (half, p) in [a, bb].into_iter().zip(&pools) {
                    let data = &data;
                    s.spawn(move || {
                        p.install(|| {
                            for (t, e) in half.iter_mut() {
                                e.run(data, t, c);
                            }
                        })
                    });
                }
            })
        })
    });
    g.finish();

    // Evaluation: forward only, batch 1000, the 10,000 examples.
    let mut g = cr.benchmark_group("evaluate_b1000");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(N as u64));
    let mut x = vec![0f32; N * D];
    let mut y = vec![0u32; N];
    data.gather_range(0..N, &mut x, &mut y).unwrap();
    for c in [&CFGS[0], &CFGS[2]] {
        for threads in [1, 2] {
            let p = pool(threads);
            let t = trainer(c, 1);
            let mut ws = Workspace::new(t.net().architecture(), 1000);
            g.bench_function(BenchmarkId::new(c.name, format!("{threads}t")), |b| {
                p.install(|| {
                    b.iter(|| {
                        evaluate(t.net(), &mut ws, &x, &y, 1000, &Penalty::none()).unwrap()
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_epochs);
criterion_main!(benches);
