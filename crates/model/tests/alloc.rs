//! No heap allocation per minibatch: a counting global allocator watches training
//! steps and evaluation batches after the first (with the measured kernel choice, after
//! the choice has settled: its exploration may reserve a plan's buffers once).
//!
//! On machines where the kernels take their direct (no-packing) GEMM paths, training
//! steps of the batch-10 network below allocate nothing at all (asserted). Otherwise
//! matrixmultiply 0.3.11 (the GEMM under the kernels) allocates one packing buffer per
//! `sgemm` call (`Alloc::new(.., K::ALIGNMENT)`, alignment 16, 32 or 64 bytes) and frees it
//! before returning. That buffer is the kernels' business and out of the model's reach; it
//! is counted separately by its alignment (the model and the rest of the kernels only
//! allocate f32/f64/u32/u64 buffers, alignment <= 8), and required to be transient. Every
//! other allocation must be zero.

use regulab_kernels::gemm::{Choice, Op, ROUNDS, STREAK, TRIAL, direct_path, set_choice};
use regulab_model::{
    Activation, Evaluator, FixedKeep, MlpBuilder, Output, Penalty, TrainConfig, Trainer, Workspace,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::SeqCst};

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static SMALL: AtomicUsize = AtomicUsize::new(0);
static PACKING: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(SeqCst) {
            if layout.align() >= 16 {
                PACKING.fetch_add(1, SeqCst);
            } else {
                SMALL.fetch_add(1, SeqCst);
            }
            LIVE.fetch_add(layout.size() as i64, SeqCst);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(SeqCst) {
            LIVE.fetch_sub(layout.size() as i64, SeqCst);
        }
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(SeqCst) {
            SMALL.fetch_add(1, SeqCst);
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, SeqCst);
        }
        // SAFETY: as for `alloc` / `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts (small allocations, packing buffers, net live bytes) during `f`.
fn count(f: impl FnOnce()) -> (usize, usize, i64) {
    SMALL.store(0, SeqCst);
    PACKING.store(0, SeqCst);
    LIVE.store(0, SeqCst);
    ON.store(true, SeqCst);
    f();
    ON.store(false, SeqCst);
    (SMALL.load(SeqCst), PACKING.load(SeqCst), LIVE.load(SeqCst))
}

#[test]
fn no_allocation_per_minibatch_after_the_first() {
    let (d, b) = (784, 10);
    let x: Vec<f32> = (0..4 * b * d)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let y: Vec<u32> = (0..4 * b as u32).map(|i| i % 10).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // All in one `install`: work then runs on the pool's threads without the injector
    // queue of calls from outside the pool.
    //
    // Under both kernel policies: the measured choice (the default) explores its plans
    // during these steps, sgemm's among them, and must record its timings without
    // allocating; the fixed shape rule is where "all direct, no packing at all" holds.
    pool.install(|| {
        for (policy, momentum, path) in [
            (Choice::Measured, 0.0, regulab_model::UpdatePath::FusedGradient),
            (Choice::Measured, 0.0, regulab_model::UpdatePath::GradientFree),
            (Choice::Measured, 0.9, regulab_model::UpdatePath::FusedGradient),
            (Choice::Fixed, 0.0, regulab_model::UpdatePath::GradientFree),
            (Choice::Fixed, 0.9, regulab_model::UpdatePath::FusedGradient),
        ] {
            set_choice(policy);
            let net = MlpBuilder::new(d)
                .hidden(800, Activation::Sigmoid)
                .hidden(100, Activation::Relu)
                .output(10, Output::Softmax)
                .build()
                .unwrap();
            let cfg = TrainConfig {
                penalty: Penalty::new(1e-4, 1e-5),
                momentum,
                max_norm: Some(3.0),
                update_path: path,
                seed: 1,
                ..TrainConfig::default()
            };
            let mut t = Trainer::new(net, cfg, b)
                .unwrap()
                // hidden keep 0.3: the second layer's input (sigmoid units, 70 %
                // dropped) is sparse enough for the zero-skipping GEMM kernels, whose
                // per-thread pattern and accumulator buffers must be reserved too
                .with_dropout(FixedKeep::new(0.8, 0.3))
                .unwrap();
            let batches: Vec<(&[f32], &[u32])> = x.chunks(b * d).zip(y.chunks(b)).collect();
            // first batch: masks and buffers settle; under the measured policy, until the
            // kernel choice has settled too: its exploration runs each product's plans in
            // turn (up to six plans, ROUNDS rounds, then a trial of two), and a plan's first run may reserve
            // its per-thread buffers (kept and reused, never per minibatch)
            let warm = match policy {
                Choice::Measured => ROUNDS * STREAK * 6 + 2 * TRIAL,
                _ => 1,
            };
            for i in 0..warm {
                let (xb, yb) = batches[i % batches.len()];
                t.train_batch(xb, yb, 0.1).unwrap();
            }
            let (small, packing, live) = count(|| {
                for _ in 0..5 {
                    for &(xb, yb) in &batches {
                        t.train_batch(xb, yb, 0.1).unwrap();
                    }
                }
            });
            println!(
                "training ({policy:?}, momentum {momentum}, {path:?}): 20 steps, {small} allocations, \
                 {packing} GEMM packing buffers (transient), net {live} bytes"
            );
            assert_eq!(small, 0, "allocations in training steps");
            // On machines where every product of this batch-10 network takes the
            // direct (no-packing) GEMM kernels, there is no allocation at all.
            let sizes = [784usize, 800, 100, 10];
            let all_direct = sizes.windows(2).all(|w| {
                let (n_in, n_out) = (w[0], w[1]);
                direct_path(b, n_out, n_in, Op::N, Op::N).is_some()
                    && direct_path(n_in, n_out, b, Op::T, Op::N).is_some()
                    && direct_path(b, n_in, n_out, Op::N, Op::T).is_some()
            });
            if all_direct && policy == Choice::Fixed {
                assert_eq!(packing, 0, "GEMM packing buffers with the direct kernels");
            }
            assert_eq!(live, 0, "memory retained by training steps");

            // evaluation: a workspace for batches of 20, fed batches of 20 and smaller
            let mut ws = Workspace::new(t.net().architecture(), 20);
            let mut ev = Evaluator::new();
            ev.add_batch(t.net(), &mut ws, &x[..20 * d], &y[..20])
                .unwrap();
            let (small, _, live) = count(|| {
                for (xb, yb) in x.chunks(20 * d).zip(y.chunks(20)) {
                    ev.add_batch(t.net(), &mut ws, xb, yb).unwrap();
                }
                for (xb, yb) in x.chunks(7 * d).zip(y.chunks(7)) {
                    ev.add_batch(t.net(), &mut ws, xb, yb).unwrap();
                }
            });
            // (`finish`, once per dataset, sums the penalty with the kernels'
            // `penalty_sums`, which may collect its block sums in a Vec: not per batch)
            let s = ev.finish(t.net(), &Penalty::new(1e-4, 1e-5));
            assert_eq!(s.n, 20 + 40 + 40);
            assert_eq!(small, 0, "allocations in evaluation batches");
            assert_eq!(live, 0, "memory retained by evaluation");
        }
    });
}
