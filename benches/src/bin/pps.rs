//! Training throughput of regulab for the three anchor configurations on the first
//! 10,000 Fashion-MNIST training images (Debian's `dataset-fashion-mnist`), as one line
//! of JSON per (config, threads): the median examples/s of 5 epochs, each on a fresh
//! network (after one warm-up epoch), and a digest of the weights after one epoch
//! (equal for every thread count). With `REGULAB_ZERO_SKIP=off` the dense GEMM only.
//! `benches/compare/compare.py` runs this beside PyTorch and prints the table.
//!
//! Usage: `pps [EPOCHS]` (default 5).

use std::time::Instant;

use regulab_benches::{CFGS, Epoch, N, dataset, median, pool, trainer};

fn main() {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("EPOCHS must be a number"))
        .unwrap_or(5);
    let data = dataset();
    for (i, c) in CFGS.iter().enumerate() {
        for threads in [1usize, 2] {
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
}
