//! The measured kernel choice (`gemm::choice`) never changes a bit: under rotation every
//! call of a product takes the next eligible kernel (sgemm, direct, zero-skipping), and
//! each gives the bits of one sgemm call, in pools of 1 and 2 threads, also when `B`
//! holds infinities and NaN facing zeros of `A` (the zero-skipping path must then not
//! skip); under the measured policy each signature settles on one kernel after its
//! timed rounds. The policy is process-global, so this file is its own test binary and
//! one test function.

mod common;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulab_kernels::gemm::{
    self, Accumulate, Choice, Op, ROUNDS, STREAK, TRIAL, gemm, gemm_serial, set_choice,
};
use regulab_kernels::{simd, trace};

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// `len` values in [-1, 1), each zero with probability `zeros`.
fn values(len: usize, zeros: f64, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            if rng.random_bool(zeros) {
                0.0
            } else {
                rng.random_range(-1.0f32..1.0)
            }
        })
        .collect()
}

struct Case {
    m: usize,
    n: usize,
    k: usize,
    op_a: Op,
    op_b: Op,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Case {
    fn new(m: usize, n: usize, k: usize, ops: (Op, Op), zeros: f64, seed: u64) -> Case {
        Case {
            m,
            n,
            k,
            op_a: ops.0,
            op_b: ops.1,
            a: values(m * k, zeros, seed),
            b: values(k * n, 0.0, seed + 1),
        }
    }

    fn run(&self, acc: Accumulate, f: impl Fn(&Case, &mut [f32], Accumulate)) -> Vec<f32> {
        let mut c = values(self.m * self.n, 0.0, 99);
        f(self, &mut c, acc);
        c
    }
}

fn with_gemm(p: &Case, c: &mut [f32], acc: Accumulate) {
    gemm(p.m, p.n, p.k, &p.a, p.op_a, &p.b, p.op_b, c, acc);
}

fn with_serial(p: &Case, c: &mut [f32], acc: Accumulate) {
    gemm_serial(p.m, p.n, p.k, &p.a, p.op_a, &p.b, p.op_b, c, acc);
}

#[test]
fn every_kernel_choice_gives_the_bits_of_one_sgemm_call() {
    let fma = matches!(
        regulab_kernels::cpu::report().sgemm_kernel.as_str(),
        "avx512" | "fma-avx2"
    );
    let vector = simd::level() != simd::Level::Scalar;
    if let Ok(want) = std::env::var("REGULAB_REQUIRE_SIMD") {
        assert!(
            fma && vector,
            "REGULAB_REQUIRE_SIMD={want}: no FMA sgemm or SIMD level"
        );
    }
    let mut cases = vec![
        Case::new(100, 800, 784, (Op::N, Op::N), 0.7, 1), // sparse inputs
        Case::new(784, 800, 100, (Op::T, Op::N), 0.7, 3), // weight gradient
        Case::new(100, 784, 800, (Op::N, Op::T), 0.0, 5), // input gradient
        Case::new(37, 70, 300, (Op::N, Op::N), 0.5, 7),
    ];
    // B with infinities and NaN where A's rows have zeros: no kernel may skip them
    let mut inf = Case::new(20, 96, 64, (Op::N, Op::N), 0.6, 9);
    for (i, v) in inf.b.iter_mut().enumerate() {
        if i % 97 == 0 {
            *v = [f32::INFINITY, f32::NEG_INFINITY, f32::NAN][i % 3];
        }
    }
    cases.push(inf);
    let pools = common::pools(&[1, 2]);

    set_choice(Choice::Rotate);
    let before = trace::counts();
    for (ci, case) in cases.iter().enumerate() {
        for acc in [Accumulate::Overwrite, Accumulate::Add] {
            let want = bits(&case.run(acc, with_serial));
            for pool in &pools {
                // six calls: every eligible plan at least once
                for call in 0..6 {
                    let got = pool.install(|| bits(&case.run(acc, with_gemm)));
                    assert!(got == want, "case {ci} {acc:?} call {call}: bits differ");
                }
            }
        }
    }
    let ran = trace::counts().since(&before);
    assert!(ran.gemm_sgemm > 0, "{ran:?}");
    if fma && vector {
        assert!(ran.gemm_direct > 0 && ran.gemm_sparse > 0, "{ran:?}");
    } else {
        eprintln!("SKIPPED the direct/zero-skipping checks: they are off on this CPU");
    }

    // measured: exploration, then one kernel per signature, same bits throughout
    set_choice(Choice::Measured);
    let case = Case::new(64, 256, 1024, (Op::N, Op::N), 0.8, 11); // several blocks
    let want = bits(&case.run(Accumulate::Overwrite, with_serial));
    // (in the pool of 2: exploration, then the trial of the best split and the best
    // one-block plan, which decides the class; this is the only signature of its
    // group, so the class whose trial mean is less wins)
    for _ in 0..ROUNDS * STREAK * 6 + 2 * TRIAL + 2 {
        let got = pools[1].install(|| bits(&case.run(Accumulate::Overwrite, with_gemm)));
        assert!(got == want);
    }
    let d = gemm::decisions()
        .into_iter()
        .find(|d| (d.key.m, d.key.n, d.key.k, d.key.threads) == (64, 256, 1024, 2));
    if fma && vector {
        let d = d.expect("the signature was recorded");
        assert_eq!(d.costs.len(), 3 * 2, "three kernels, split or not: {d}");
        let chosen = d.chosen.expect("settled after its rounds and trial");
        let (split, one) = d.trial.expect("the trial ran");
        assert_eq!(
            chosen.split,
            split <= one,
            "the cheaper class in the trial: {d}"
        );
        let least = d
            .costs
            .iter()
            .filter(|(p, _)| p.split == chosen.split)
            .min_by_key(|(_, t)| t.expect("timed"))
            .unwrap()
            .0;
        assert_eq!(chosen, least, "the least cost of its class: {d}");
        assert!(
            d.costs.iter().any(|(p, _)| !p.split),
            "one-block plans: {d}"
        );
        assert!(
            d.to_string()
                .starts_with("64x256x1024 NN overwrite, 2 threads: "),
            "{d}"
        );
    } else {
        assert_eq!(d, None, "one candidate (sgemm): never timed");
    }

    // a product the shape's rule keeps whole (the lab's batch-10 output layer, 10x800x10
    // NT) is still split across a pool of 2, so it can also run as one block (and
    // follow its group there); in a pool of 1 it has no split to choose
    let small = Case::new(10, 800, 10, (Op::N, Op::T), 0.0, 13);
    let want = bits(&small.run(Accumulate::Overwrite, with_serial));
    for pool in &pools {
        let got = pool.install(|| bits(&small.run(Accumulate::Overwrite, with_gemm)));
        assert!(got == want);
    }
    let plans = |threads: usize| {
        gemm::decisions()
            .into_iter()
            .find(|d| (d.key.m, d.key.n, d.key.k, d.key.threads) == (10, 800, 10, threads))
            .map(|d| d.costs.iter().map(|(p, _)| p.split).collect::<Vec<bool>>())
    };
    if fma && vector {
        assert_eq!(
            plans(2),
            Some(vec![true, false, true, false]),
            "sgemm, direct"
        );
        assert_eq!(plans(1), Some(vec![true, true]), "sgemm, direct, whole");
    } else {
        assert_eq!(plans(2), Some(vec![true, false]), "sgemm, split or not");
        assert_eq!(plans(1), None, "one candidate (sgemm): never timed");
    }
}
