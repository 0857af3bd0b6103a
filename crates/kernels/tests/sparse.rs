//! The zero-skipping GEMM kernels (`gemm_sparse`, and `gemm`'s dispatch to them) against
//! one matrixmultiply call: bit for bit, at every density, chunk boundary and thread
//! count, including the signed-zero corner the kernels repair.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulab_kernels::gemm::{
    Accumulate, Op, SPARSE_MAX_DENSITY, SPARSE_MIN_N, gemm, gemm_serial, gemm_sparse, sparse_path,
};
use regulab_kernels::simd::{self, Level};

mod common;

const ACCS: [Accumulate; 2] = [Accumulate::Overwrite, Accumulate::Add];

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// SIMD levels available here, or none if matrixmultiply does not select an FMA kernel
/// (then no kernel of ours reproduces its bits and `gemm` never takes this path).
fn simd_levels(test: &str) -> Vec<Level> {
    if !common::fma_sgemm(test) {
        return Vec::new();
    }
    common::levels_of(test, &[Level::Avx512, Level::Avx2])
}

/// One product `C (m x n) (+)= op(A) B` with `A` stored for `op_a` (`m x k`, or `k x m`
/// for [`Op::T`]), a fraction `density` of its entries nonzero (the zeros a mix of `+0`
/// and `-0`), `B` and the initial `C` random.
struct Case {
    m: usize,
    k: usize,
    n: usize,
    op_a: Op,
    a: Vec<f32>,
    b: Vec<f32>,
    c0: Vec<f32>,
}

impl Case {
    fn new(m: usize, k: usize, n: usize, op_a: Op, density: f64, seed: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ ((m * 1_000_003 + k * 1009 + n) as u64));
        let a = (0..m * k)
            .map(|_| {
                if r.random_range(0.0..1.0) < density {
                    r.random_range(-1.0f32..1.0)
                } else if r.random_range(0..4) == 0 {
                    -0.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut rand =
            |len: usize| -> Vec<f32> { (0..len).map(|_| r.random_range(-1.0f32..1.0)).collect() };
        let (b, c0) = (rand(k * n), rand(m * n));
        Self {
            m,
            k,
            n,
            op_a,
            a,
            b,
            c0,
        }
    }

    fn c_start(&self, acc: Accumulate) -> Vec<f32> {
        match acc {
            Accumulate::Add => self.c0.clone(),
            Accumulate::Overwrite => vec![f32::NAN; self.m * self.n],
        }
    }

    fn serial(&self, acc: Accumulate) -> Vec<f32> {
        let mut c = self.c_start(acc);
        let (m, n, k) = (self.m, self.n, self.k);
        gemm_serial(m, n, k, &self.a, self.op_a, &self.b, Op::N, &mut c, acc);
        c
    }

    fn sparse(&self, level: Level, acc: Accumulate) -> Vec<f32> {
        let mut c = self.c_start(acc);
        let (m, n, k) = (self.m, self.n, self.k);
        gemm_sparse(level, m, n, k, &self.a, self.op_a, &self.b, &mut c, acc);
        c
    }

    fn gemm(&self, acc: Accumulate) -> Vec<f32> {
        let mut c = self.c_start(acc);
        let (m, n, k) = (self.m, self.n, self.k);
        gemm(m, n, k, &self.a, self.op_a, &self.b, Op::N, &mut c, acc);
        c
    }
}

#[test]
fn zero_skipping_kernels_give_the_bits_of_one_sgemm_call() {
    let levels = simd_levels("zero_skipping_kernels_give_the_bits_of_one_sgemm_call");
    if levels.is_empty() {
        eprintln!("SKIPPED: no FMA sgemm kernel or no SIMD level on this CPU");
        return;
    }
    let mut checked = 0usize;
    // k around the 256-wide chunks and the lab's sizes; n around the vector widths and
    // the 8-vector strips (128 / 64 columns); densities from empty to full.
    for &m in &[1usize, 3, 10, 37] {
        for &k in &[1usize, 10, 100, 255, 256, 257, 784] {
            for &n in &[1usize, 15, 16, 17, 129, 200, 800] {
                for (s, &density) in [0.0, 0.05, 0.3, 1.0].iter().enumerate() {
                    for op_a in [Op::N, Op::T] {
                        let case = Case::new(m, k, n, op_a, density, s as u64);
                        for acc in ACCS {
                            let want = bits(&case.serial(acc));
                            for &level in &levels {
                                assert_eq!(
                                    bits(&case.sparse(level, acc)),
                                    want,
                                    "{level} {m}x{k}x{n} {op_a:?} density {density} {acc:?}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 4 * 7 * 7 * 4 * 2 * 2 * levels.len());
}

#[test]
fn lab_shapes_at_dropout_densities_match_sgemm() {
    let levels = simd_levels("lab_shapes_at_dropout_densities_match_sgemm");
    if levels.is_empty() {
        return;
    }
    // Forward and weight gradient of the lab's layers at batch 10 and 100, with the
    // densities of MNIST pixels (~0.19), hidden dropout with ReLU (~0.25) and input
    // dropout (0.8).
    for &(m, k, n, op_a) in &[
        (10, 784, 800, Op::N),
        (100, 800, 800, Op::N),
        (784, 10, 800, Op::T),
        (800, 100, 800, Op::T),
        (1000, 784, 100, Op::N),
    ] {
        for (s, density) in [0.19, 0.25, 0.8].into_iter().enumerate() {
            let case = Case::new(m, k, n, op_a, density, 40 + s as u64);
            for acc in ACCS {
                let want = bits(&case.serial(acc));
                for &level in &levels {
                    assert_eq!(
                        bits(&case.sparse(level, acc)),
                        want,
                        "{level} {m}x{k}x{n} {op_a:?} {density} {acc:?}"
                    );
                }
                assert_eq!(bits(&case.gemm(acc)), want, "gemm {m}x{k}x{n} {op_a:?}");
            }
        }
    }
}

#[test]
fn a_negative_zero_sum_is_recomputed_with_the_skipped_terms() {
    let levels = simd_levels("a_negative_zero_sum_is_recomputed_with_the_skipped_terms");
    if levels.is_empty() {
        return;
    }
    // Row 0 of A: a product that underflows to -0, then a zero whose (skipped) product
    // +0 * 1 turns the dense chain's -0 into +0. The skipping chain alone would end at
    // -0; the result must be sgemm's +0 (Overwrite) and C unchanged in sign rules (Add).
    let (m, k, n) = (2, 300, 130);
    let mut a = vec![0.0f32; m * k];
    a[0] = -1e-30;
    a[k + 5] = 0.5; // row 1: an ordinary value
    a[270] = -1e-30; // second chunk of row 0: the same again
    let mut b = vec![1.0f32; k * n];
    for j in 0..n {
        b[j] = 1e-30; // -1e-30 * 1e-30 rounds to -0
        b[270 * n + j] = 1e-30;
    }
    for op_a in [Op::N, Op::T] {
        let stored = match op_a {
            Op::N => a.clone(),
            Op::T => (0..k * m).map(|e| a[(e % m) * k + e / m]).collect(),
        };
        let case = Case {
            m,
            k,
            n,
            op_a,
            a: stored,
            b: b.clone(),
            c0: (0..m * n)
                .map(|i| if i % 2 == 0 { -0.0 } else { 0.0 })
                .collect(),
        };
        for acc in ACCS {
            let want = case.serial(acc);
            if acc == Accumulate::Overwrite {
                assert_eq!(want[0].to_bits(), 0, "sgemm gives +0 here");
            }
            for &level in &levels {
                assert_eq!(
                    bits(&case.sparse(level, acc)),
                    bits(&want),
                    "{level} {op_a:?} {acc:?}"
                );
            }
            assert_eq!(bits(&case.gemm(acc)), bits(&want), "gemm {op_a:?} {acc:?}");
        }
    }
}

#[test]
fn gemm_takes_the_zero_skipping_path_by_density_and_shape_only() {
    let levels = simd_levels("gemm_takes_the_zero_skipping_path_by_density_and_shape_only");
    let expect = (!levels.is_empty() && simd::level() != Level::Scalar).then(simd::level);
    let (m, k, n) = (100, 800, 800);
    let sparse = Case::new(m, k, n, Op::N, 0.25, 1);
    let dense = Case::new(m, k, n, Op::N, 0.9, 1);
    assert_eq!(sparse_path(m, n, k, &sparse.a, Op::N), expect);
    assert_eq!(sparse_path(m, n, k, &dense.a, Op::N), None);
    // B transposed (the input gradient) and narrow C (the output layer) never.
    assert_eq!(sparse_path(m, n, k, &sparse.a, Op::T), None);
    let narrow = SPARSE_MIN_N - 1;
    assert_eq!(sparse_path(m, narrow, k, &sparse.a, Op::N), None);
    // Exactly at the threshold: taken; one more nonzero: not.
    let len = 1000;
    let at = (SPARSE_MAX_DENSITY * len as f64) as usize;
    let mut a = vec![0.0f32; len];
    a[..at].fill(1.0);
    assert_eq!(sparse_path(10, 100, 100, &a, Op::N), expect);
    a[at] = f32::NAN; // NaN counts as nonzero
    assert_eq!(sparse_path(10, 100, 100, &a, Op::N), None);
    // A dense head (the first 1024 entries) decides at a glance: dense, even though
    // the whole operand is 30 % nonzero. Either way the bits are the same.
    let mut a = vec![0.0f32; 10_000];
    a[..3000].fill(1.0);
    assert_eq!(sparse_path(100, 100, 100, &a, Op::N), None);
    a.reverse();
    assert_eq!(sparse_path(100, 100, 100, &a, Op::N), expect);
}

#[test]
fn zero_skipping_gemm_is_identical_in_pools_of_1_2_3_8_threads() {
    let pools = common::pools(&[1, 2, 3, 8]);
    for (s, &(m, k, n, op_a, density)) in [
        (10, 784, 800, Op::N, 0.19),
        (100, 800, 800, Op::N, 0.25),
        (100, 800, 77, Op::N, 0.25),
        (800, 100, 800, Op::T, 0.25),
        (784, 10, 800, Op::T, 0.19),
        (333, 513, 300, Op::N, 0.4),
    ]
    .iter()
    .enumerate()
    {
        let case = Case::new(m, k, n, op_a, density, 70 + s as u64);
        for acc in ACCS {
            let want = bits(&case.serial(acc));
            for pool in &pools {
                let got = pool.install(|| case.gemm(acc));
                assert_eq!(
                    bits(&got),
                    want,
                    "{m}x{k}x{n} {op_a:?} {acc:?} {} threads",
                    pool.current_num_threads()
                );
            }
        }
    }
}

#[test]
fn every_alignment_of_b_and_c_gives_the_same_bits() {
    let levels = simd_levels("every_alignment_of_b_and_c_gives_the_same_bits");
    if levels.is_empty() {
        return;
    }
    // The kernels align their vectors to B's cache lines when B's row stride allows
    // (n a multiple of the vector width), masking lanes at both ends: B and C start at
    // every float offset of a 64-byte line here, for widths that do and do not allow it.
    for &(m, k, n, op_a) in &[
        (7, 300, 800, Op::N),
        (5, 40, 96, Op::N),
        (40, 9, 160, Op::T),
        (6, 70, 100, Op::N),
        (3, 20, 17, Op::T),
    ] {
        let case = Case::new(m, k, n, op_a, 0.3, 90);
        for acc in ACCS {
            let want = bits(&case.serial(acc));
            for off in 0..16 {
                let mut b = vec![0.0f32; off + k * n];
                b[off..].copy_from_slice(&case.b);
                let mut c = vec![f32::NAN; off + m * n];
                if acc == Accumulate::Add {
                    c[off..].copy_from_slice(&case.c0);
                }
                for &level in &levels {
                    let mut cl = c.clone();
                    gemm_sparse(
                        level,
                        m,
                        n,
                        k,
                        &case.a,
                        op_a,
                        &b[off..],
                        &mut cl[off..],
                        acc,
                    );
                    assert_eq!(
                        bits(&cl[off..]),
                        want,
                        "{level} {m}x{k}x{n} {op_a:?} {acc:?} offset {off}"
                    );
                    assert!(cl[..off].iter().all(|v| v.is_nan()), "wrote before C");
                }
            }
        }
    }
}
