//! Training throughput of regulab for the three anchor configurations on the first
//! 10,000 Fashion-MNIST training images (Debian's `dataset-fashion-mnist`), as one line
//! of JSON per (config, threads): the median examples/s of 5 epochs, each on a fresh
//! network (after one warm-up epoch), and a digest of the weights after one epoch
//! (equal for every thread count). With `REGULAB_ZERO_SKIP=off` the dense GEMM only.
//! `benches/compare/compare.py` runs this beside PyTorch and prints the table.
//!
//! Usage: `pps [EPOCHS] [CONFIGS] [THREADS]`: default 5 epochs, every config (`0,1,2`) on
//! 1 and 2 threads; e.g. `pps 5 1 2` times config (ii) on 2 threads only (for profiling).

use std::time::Instant;

use regulab_benches::{CFGS, Epoch, N, dataset, median, pool, trainer};

fn main() {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("EPOCHS must be a number"))
        .unwrap_or(5);
    let list = |n: usize, default: &str| -> Vec<usize> {
        std::env::args()
            .nth(n)
            .unwrap_or_else(|| default.to_string())
            .split(',')
            .map(|s| s.trim().parse().expect("a comma-separated list of numbers"))
            .collect()
    };
    let (configs, thread_counts) = (list(2, "0,1,2"), list(3, "1,2"));
    let data = dataset();
    for (i, c) in CFGS.iter().enumerate() {
        if !configs.contains(&i) {
            continue;
        }
        for &threads in &thread_counts {
            let p = pool(threads);
            let (pps, digest) = p.install(|| {
                let mut e = Epoch::new(c.batch);
                e.run(&data, &mut trainer(c, 1), c);
                let mut times = Vec::new();
                let mut last = None;
                for _ in 0..epochs {
                    // a fresh network for every epoch measured
                    let mut t = trainer(c, 1);
                    let t0 = Instant::now();
                    e.run(&data, &mut t, c);
                    times.push(t0.elapsed());
                    last = Some(t);
                }
                let t = last.expect("at least one epoch");
                let pps = N as f64 / median(times).as_secs_f64();
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for l in t.net().layers() {
                    for v in l.weight().iter().chain(l.bias()) {
                        for byte in v.to_le_bytes() {
                            h = (h ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
                        }
                    }
                }
                (pps, format!("{h:016x}"))
            });
            println!(
                "{{\"config\": {i}, \"name\": \"{}\", \"threads\": {threads}, \"pps\": {pps:.0}, \"digest\": \"{digest}\"}}",
                c.name
            );
        }
    }
    if std::env::var_os("REGULAB_TRACE").is_some() {
        for d in regulab_kernels::gemm::decisions() {
            eprintln!("kernel choice: {d}");
        }
        eprintln!("path counts: {:?}", regulab_kernels::trace::counts());
    }
}
