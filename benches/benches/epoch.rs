//! criterion benchmarks: whole training epochs, as a user's study runs them.
//!
//! One epoch of the first 10,000 Fashion-MNIST training images with their labels (u8
//! pixels gathered and scaled per batch, as `regulab run` does), each measured epoch on
//! a fresh network (its setup is not timed), for the three anchor configurations:
//!
//! * (i)   784-800-10 sigmoid, batch 10, SGD lr 0.5 (the lab's setting);
//! * (ii)  the same with batch 100;
//! * (iii) 784-800-800-10 ReLU, batch 100, dropout keep 0.8 / 0.5, L2 1e-4, lr 0.05;
//!
//! on 1 and 2 threads, with `Throughput::Elements` = training examples; (iii) also with
//! the zero-skipping GEMM off (`gemm::set_zero_skipping(false)`, what
//! `REGULAB_ZERO_SKIP=off` does; same bits), in the same run. Also a 4-run
//! grid of (i) with `--jobs 2` (two runs at once, one thread each) against `--jobs 1`
//! (one run at a time; on two threads, what `--jobs 1` gives on this machine by
//! default, and on one thread), and evaluation (forward only, batch 1000).
//!
//! Before the criterion groups, the bench prints for each configuration the median
//! time of an epoch and of the same epoch's GEMM calls alone (same shapes, same pool),
//! so the share of everything else (activations, dropout, update, gather) is visible.
//!
//! Results (medians, with date and machine): `benches/README.md`.
//! Reproduce: `cargo bench -p regulab-benches --bench epoch` (Fashion-MNIST from
//! Debian's `dataset-fashion-mnist` must be installed).

use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regulab::data::LabeledImages;
use regulab_benches::{
    CFGS, D, Epoch, N, dataset, gemm_epoch, layer_inputs, median, pool, trainer,
};
use regulab_kernels::gemm::set_zero_skipping;
use regulab_model::{Penalty, Trainer, Workspace, evaluate};

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
                let mut e = Epoch::new(c.batch);
                let mut te = Vec::new();
                let mut last = None;
                for _ in 0..5 {
                    // a fresh network for every epoch measured
                    let mut t = trainer(c, 1);
                    let t0 = Instant::now();
                    e.run(data, &mut t, c);
                    te.push(t0.elapsed());
                    last = Some(t);
                }
                let t = last.expect("5 epochs");
                // the GEMMs see the layer inputs of the last training step (with its
                // dropout and ReLU zeros), so they take the kernels training takes
                let inputs = layer_inputs(&t, e.last_batch());
                let maxw = 800;
                let mut bufs = [
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
                    gemm_epoch(c, &inputs, &mut bufs, &mut ws);
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
    for (i, c) in CFGS.iter().enumerate() {
        // (iii) also with the zero-skipping GEMM off (the dense path only; same bits)
        let skip_modes: &[bool] = if i == 2 { &[true, false] } else { &[true] };
        for &skip in skip_modes {
            for threads in [1, 2] {
                let p = pool(threads);
                let mut e = Epoch::new(c.batch);
                let label = if skip {
                    format!("{threads}t")
                } else {
                    format!("{threads}t_zero_skip_off")
                };
                set_zero_skipping(skip);
                g.bench_function(BenchmarkId::new(c.name, label), |b| {
                    p.install(|| {
                        b.iter_batched(
                            || trainer(c, 1),
                            |mut t| {
                                e.run(&data, &mut t, c);
                                t
                            },
                            BatchSize::PerIteration,
                        )
                    })
                });
                set_zero_skipping(true);
            }
        }
    }
    g.finish();

    // A grid of 4 runs of (i), one epoch each: two at once on one thread each
    // (--jobs 2) against one at a time (--jobs 1) on two threads and on one.
    let mut g = cr.benchmark_group("grid4_i");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(4 * N as u64));
    let c = &CFGS[0];
    let fresh = || -> Vec<(Trainer, Epoch)> {
        (0..4)
            .map(|s| (trainer(c, s), Epoch::new(c.batch)))
            .collect()
    };
    g.bench_function("jobs1_threads2", |b| {
        let p = pool(2);
        b.iter_batched(
            fresh,
            |mut runs| {
                p.install(|| {
                    for (t, e) in runs.iter_mut() {
                        e.run(&data, t, c);
                    }
                });
                runs
            },
            BatchSize::PerIteration,
        )
    });
    // --jobs 1 --threads 1: one run at a time on one core (the per-core baseline that
    // --jobs 2 should double).
    g.bench_function("jobs1_threads1", |b| {
        let p = pool(1);
        b.iter_batched(
            fresh,
            |mut runs| {
                p.install(|| {
                    for (t, e) in runs.iter_mut() {
                        e.run(&data, t, c);
                    }
                });
                runs
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("jobs2_threads1", |b| {
        let pools = [pool(1), pool(1)];
        b.iter_batched(
            fresh,
            |mut runs| {
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
                });
                runs
            },
            BatchSize::PerIteration,
        )
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
                    b.iter(|| evaluate(t.net(), &mut ws, &x, &y, 1000, &Penalty::none()).unwrap())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_epochs);
criterion_main!(benches);
