//! GEMM: accuracy against an f64 reference, the beta = 0 / k = 0 edge cases, and bit
//! identity across rayon pool sizes, partitions and the single-call baseline; the
//! direct (no-packing) kernels, at every SIMD level and in their scalar `mul_add`
//! reference, bit for bit against one matrixmultiply call.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulab_kernels::gemm::{
    Accumulate, DIRECT_AVX2, DIRECT_AVX512, Op, Partition, direct_path, gemm, gemm_blocked,
    gemm_direct, gemm_serial,
};
use regulab_kernels::simd::{self, Level};

mod common;

const OPS: [(Op, Op); 4] = [
    (Op::N, Op::N),
    (Op::N, Op::T),
    (Op::T, Op::N),
    (Op::T, Op::T),
];
const ACCS: [Accumulate; 2] = [Accumulate::Overwrite, Accumulate::Add];

/// Shapes `(m, k, n)` of the 784-800-10 and 800-800 networks at batch 10 and 100
/// (forward, input gradient, weight gradient), small enough for the f64 reference.
const LAB_SHAPES: [(usize, usize, usize); 8] = [
    (10, 784, 800),  // forward, hidden layer, batch 10
    (10, 800, 10),   // forward, output layer, batch 10 (serial path)
    (10, 800, 784),  // input gradient through W^T, batch 10
    (784, 10, 800),  // weight gradient X^T delta, batch 10
    (100, 784, 800), // forward, batch 100
    (100, 800, 784), // input gradient, batch 100
    (800, 100, 800), // weight gradient of an 800x800 layer, batch 100
    (100, 10, 800),  // delta_out W_out^T, batch 100
];

/// Odd shapes: edge tiles in every direction, and k crossing matrixmultiply's kc = 256.
const ODD_SHAPES: [(usize, usize, usize); 8] = [
    (17, 257, 33),
    (33, 513, 17),
    (257, 17, 129),
    (129, 300, 257),
    (1, 257, 1),
    (3, 1000, 5),
    (300, 256, 300),
    (1000, 255, 40),
];

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn random_vec(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Stores a logical `rows x cols` row-major matrix as `op` expects it: itself for
/// [`Op::N`], its transpose (`cols x rows`, row-major) for [`Op::T`].
fn store(x: &[f32], rows: usize, cols: usize, op: Op) -> Vec<f32> {
    match op {
        Op::N => x.to_vec(),
        Op::T => {
            let mut t = vec![0.0; x.len()];
            for i in 0..rows {
                for j in 0..cols {
                    t[j * rows + i] = x[i * cols + j];
                }
            }
            t
        }
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Inputs of one product: logical `A (m x k)`, `B (k x n)` and the initial `C (m x n)`.
struct Problem {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c0: Vec<f32>,
}

impl Problem {
    fn new(m: usize, k: usize, n: usize, seed: u64) -> Self {
        let mut r = rng(seed ^ ((m as u64) << 40) ^ ((k as u64) << 20) ^ n as u64);
        Self {
            m,
            k,
            n,
            a: random_vec(&mut r, m * k),
            b: random_vec(&mut r, k * n),
            c0: random_vec(&mut r, m * n),
        }
    }

    /// `C` after `f(op_a, op_b, acc)` with operands stored for the given ops.
    fn run<F>(&self, op_a: Op, op_b: Op, acc: Accumulate, f: F) -> Vec<f32>
    where
        F: FnOnce(usize, usize, usize, &[f32], Op, &[f32], Op, &mut [f32], Accumulate),
    {
        let a = store(&self.a, self.m, self.k, op_a);
        let b = store(&self.b, self.k, self.n, op_b);
        let mut c = match acc {
            Accumulate::Add => self.c0.clone(),
            Accumulate::Overwrite => vec![f32::NAN; self.m * self.n],
        };
        f(self.m, self.n, self.k, &a, op_a, &b, op_b, &mut c, acc);
        c
    }

    /// f64 reference `C0 (if Add) + A B` and the magnitude `|C0| + sum_p |a_ip b_pj|`.
    fn reference(&self, acc: Accumulate) -> (Vec<f64>, Vec<f64>) {
        let (m, k, n) = (self.m, self.k, self.n);
        let mut val = vec![0.0f64; m * n];
        let mut mag = vec![0.0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                let a = f64::from(self.a[i * k + p]);
                for j in 0..n {
                    let prod = a * f64::from(self.b[p * n + j]);
                    val[i * n + j] += prod;
                    mag[i * n + j] += prod.abs();
                }
            }
        }
        if acc == Accumulate::Add {
            for ((v, g), c) in val.iter_mut().zip(&mut mag).zip(&self.c0) {
                *v += f64::from(*c);
                *g += f64::from(c.abs());
            }
        }
        (val, mag)
    }
}

/// Asserts `|c - ref| <= (k + 2) * 2^-22 * (|C0| + sum_p |a_ip b_pj|)` elementwise.
///
/// Why this bound: each of the k products is accumulated with one FMA (one rounding,
/// unit roundoff u = 2^-24), k is summed in chunks of 256 whose partial sums are added to
/// C (one more rounding per chunk, fewer than k), and Add adds the old C (one more). The
/// classical recursive-summation bound gives |error| <= gamma_(k+1) * (|C0| +
/// sum |a b|) with gamma_j = j u / (1 - j u) ~ j u; (k + 2) * 4u leaves a factor of about
/// 4 of headroom (also for the non-FMA kernels other machines may select) while still
/// failing for any wrong index, stride or dropped chunk (errors of order |a b| ~ 2^-2).
fn assert_close(c: &[f32], reference: &(Vec<f64>, Vec<f64>), k: usize, what: &str) {
    let (val, mag) = reference;
    let tol = (k as f64 + 2.0) * 2f64.powi(-22);
    for (idx, ((&c, &v), &g)) in c.iter().zip(val).zip(mag).enumerate() {
        let err = (f64::from(c) - v).abs();
        assert!(
            err <= tol * g,
            "{what}: element {idx}: got {c}, reference {v}, error {err:e} > bound {:e}",
            tol * g
        );
    }
}

#[test]
fn gemm_and_gemm_serial_match_f64_reference() {
    let dims = [0usize, 1, 17, 33];
    let mut shapes: Vec<(usize, usize, usize)> = Vec::new();
    for &m in &dims {
        for &k in &dims {
            for &n in &dims {
                shapes.push((m, k, n));
            }
        }
    }
    shapes.extend([(16, 16, 16), (2, 256, 3), (5, 257, 7), (31, 600, 18)]);
    shapes.extend(ODD_SHAPES);
    shapes.extend(LAB_SHAPES);
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        let prob = Problem::new(m, k, n, 1 + s as u64);
        for acc in ACCS {
            let reference = prob.reference(acc);
            for (op_a, op_b) in OPS {
                let what = format!("{m}x{k}x{n} {op_a:?}{op_b:?} {acc:?}");
                let c = prob.run(op_a, op_b, acc, gemm);
                assert_close(&c, &reference, k, &format!("gemm {what}"));
                let c = prob.run(op_a, op_b, acc, gemm_serial);
                assert_close(&c, &reference, k, &format!("gemm_serial {what}"));
            }
        }
    }
}

#[test]
fn overwrite_never_reads_nan_in_c() {
    // Problem::run fills C with NaN for Overwrite; every element must come out finite
    // and equal to the product computed into a zeroed C.
    for &(m, k, n) in &[(17, 257, 33), (10, 784, 800), (784, 10, 800), (1, 1, 1)] {
        let prob = Problem::new(m, k, n, 7);
        for (op_a, op_b) in OPS {
            for f in [gemm, gemm_serial] {
                let c = prob.run(op_a, op_b, Accumulate::Overwrite, f);
                assert!(
                    c.iter().all(|v| v.is_finite()),
                    "{m}x{k}x{n} {op_a:?}{op_b:?}"
                );
                let a = store(&prob.a, m, k, op_a);
                let b = store(&prob.b, k, n, op_b);
                let mut zeroed = vec![0.0; m * n];
                gemm_serial(m, n, k, &a, op_a, &b, op_b, &mut zeroed, Accumulate::Add);
                assert_eq!(bits(&c), bits(&zeroed), "{m}x{k}x{n} {op_a:?}{op_b:?}");
            }
        }
    }
}

#[test]
fn k_zero_overwrite_zeroes_and_add_leaves_c_unchanged() {
    for &(m, n) in &[(1, 1), (17, 33), (784, 800)] {
        let mut r = rng(3);
        let mut before = random_vec(&mut r, m * n);
        before[0] = f32::NAN;
        for (op_a, op_b) in OPS {
            for f in [gemm, gemm_serial] {
                let mut c = before.clone();
                f(m, n, 0, &[], op_a, &[], op_b, &mut c, Accumulate::Add);
                assert_eq!(bits(&c), bits(&before), "Add {m}x0x{n}");
                f(m, n, 0, &[], op_a, &[], op_b, &mut c, Accumulate::Overwrite);
                assert!(c.iter().all(|v| v.to_bits() == 0), "Overwrite {m}x0x{n}");
            }
        }
    }
}

#[test]
fn empty_m_or_n_is_a_no_op() {
    let a = vec![1.0; 5 * 3];
    for f in [gemm, gemm_serial] {
        let mut c: Vec<f32> = Vec::new();
        f(
            0,
            5,
            3,
            &[],
            Op::N,
            &a,
            Op::N,
            &mut c,
            Accumulate::Overwrite,
        );
        f(5, 0, 3, &a, Op::T, &[], Op::N, &mut c, Accumulate::Add);
        f(0, 0, 0, &[], Op::T, &[], Op::T, &mut c, Accumulate::Add);
        assert!(c.is_empty());
    }
}

#[test]
#[should_panic(expected = "expected m*k")]
fn wrong_a_length_panics() {
    let mut c = vec![0.0; 4];
    gemm(
        2,
        2,
        3,
        &[0.0; 5],
        Op::N,
        &[0.0; 6],
        Op::N,
        &mut c,
        Accumulate::Add,
    );
}

#[test]
#[should_panic(expected = "expected k*n")]
fn wrong_b_length_panics() {
    let mut c = vec![0.0; 4];
    gemm_serial(
        2,
        2,
        3,
        &[0.0; 6],
        Op::T,
        &[0.0; 7],
        Op::N,
        &mut c,
        Accumulate::Add,
    );
}

#[test]
#[should_panic(expected = "expected m*n")]
fn wrong_c_length_panics() {
    let mut c = vec![0.0; 3];
    gemm(
        2,
        2,
        3,
        &[0.0; 6],
        Op::N,
        &[0.0; 6],
        Op::T,
        &mut c,
        Accumulate::Overwrite,
    );
}

/// The shapes checked for bit identity: the lab's (including batch 1000) and odd ones.
fn determinism_shapes() -> Vec<(usize, usize, usize)> {
    let mut shapes = LAB_SHAPES.to_vec();
    shapes.extend([
        (1000, 784, 800),
        (1000, 800, 10),
        (784, 1000, 800),
        (1000, 10, 800),
    ]);
    shapes.extend(ODD_SHAPES);
    shapes
}

#[test]
fn gemm_bits_identical_in_pools_of_1_2_3_8_threads_and_to_gemm_serial() {
    let pools = common::pools(&[1, 2, 3, 8]);
    for (s, &(m, k, n)) in determinism_shapes().iter().enumerate() {
        let prob = Problem::new(m, k, n, 100 + s as u64);
        for acc in ACCS {
            for (op_a, op_b) in [(Op::N, Op::N), (Op::T, Op::N), (Op::N, Op::T)] {
                let serial = bits(&prob.run(op_a, op_b, acc, gemm_serial));
                for pool in &pools {
                    let c = pool.install(|| prob.run(op_a, op_b, acc, gemm));
                    assert_eq!(
                        bits(&c),
                        serial,
                        "{m}x{k}x{n} {op_a:?}{op_b:?} {acc:?} in a pool of {}",
                        pool.current_num_threads()
                    );
                }
            }
        }
    }
}

#[test]
fn any_partition_gives_the_bits_of_one_sgemm_call() {
    let grids = [(1, 1), (1, 4), (4, 1), (3, 5), (2, 2), (7, 3), (64, 64)];
    for (s, &(m, k, n)) in [
        (17, 257, 33),
        (10, 784, 800),
        (129, 300, 257),
        (784, 10, 800),
    ]
    .iter()
    .enumerate()
    {
        let prob = Problem::new(m, k, n, 200 + s as u64);
        for acc in ACCS {
            for (op_a, op_b) in OPS {
                let serial = bits(&prob.run(op_a, op_b, acc, gemm_serial));
                for &(rp, cp) in &grids {
                    let part = Partition::grid(m, n, rp, cp);
                    let c = prob.run(op_a, op_b, acc, |m, n, k, a, oa, b, ob, c, acc| {
                        gemm_blocked(m, n, k, a, oa, b, ob, c, acc, part)
                    });
                    assert_eq!(
                        bits(&c),
                        serial,
                        "{m}x{k}x{n} {op_a:?}{op_b:?} {acc:?} {rp}x{cp}"
                    );
                }
            }
        }
    }
}

#[test]
fn lab_partitions_are_parallel_and_tiny_products_are_not() {
    // The shapes the training loop spends its time in are split (at least 4 blocks, a
    // multiple of 4); tiny products run as one call.
    assert_eq!(Partition::for_shape(10, 10, 800).len(), 1);
    for &(m, k, n) in &[
        (10, 784, 800),
        (100, 784, 800),
        (784, 10, 800),
        (1000, 784, 800),
    ] {
        let p = Partition::for_shape(m, n, k);
        assert!(
            p.len() >= 4 && p.len().is_multiple_of(4),
            "{m}x{k}x{n}: {:?}",
            p.parts()
        );
    }
}

/// The levels whose direct kernels can run here, and whether matrixmultiply selects an
/// FMA kernel here (the condition for the direct kernels to reproduce its bits).
fn direct_levels(test: &str) -> (Vec<Level>, bool) {
    (common::levels(test), common::fma_sgemm(test))
}

/// `C` computed by `gemm_direct` at `level`, as `Problem::run` does (NaN-filled `C` for
/// Overwrite).
fn run_direct(prob: &Problem, level: Level, op_a: Op, op_b: Op, acc: Accumulate) -> Vec<f32> {
    prob.run(op_a, op_b, acc, |m, n, k, a, oa, b, ob, c, acc| {
        gemm_direct(level, m, n, k, a, oa, b, ob, c, acc)
    })
}

/// The rows of C the direct-kernel tests cover: every m up to 20 and both sides of the
/// NN thresholds (24 / 25) of both SIMD levels.
fn direct_ms() -> Vec<usize> {
    let mut ms: Vec<usize> = (1..=20).collect();
    for t in [DIRECT_AVX512.nn_max_m, DIRECT_AVX2.nn_max_m] {
        ms.extend([t, t + 1]);
    }
    ms.sort_unstable();
    ms.dedup();
    ms
}

/// k around matrixmultiply's kc = 256 and the lab's sizes; n around the vector widths
/// (8, 16 lanes; 32-column strips), the lab's, and the output layer's 10.
const DIRECT_KS: [usize; 10] = [1, 7, 10, 100, 255, 256, 257, 513, 784, 800];
const DIRECT_NS: [usize; 8] = [1, 15, 16, 17, 33, 800, 784, 10];

#[test]
fn direct_simd_kernels_give_the_bits_of_one_sgemm_call() {
    let test = "direct_simd_kernels_give_the_bits_of_one_sgemm_call";
    let (levels, fma) = direct_levels(test);
    let simd_levels: Vec<Level> = levels.into_iter().filter(|&l| l != Level::Scalar).collect();
    if !fma || simd_levels.is_empty() {
        eprintln!("{test}: SKIPPED entirely: no FMA sgemm kernel or no SIMD level here");
        return;
    }
    let mut checked = 0usize;
    for &m in &direct_ms() {
        for &k in &DIRECT_KS {
            for &n in &DIRECT_NS {
                let prob = Problem::new(m, k, n, 300);
                for (op_a, op_b) in OPS {
                    for acc in ACCS {
                        let want = bits(&prob.run(op_a, op_b, acc, gemm_serial));
                        for &level in &simd_levels {
                            let got = run_direct(&prob, level, op_a, op_b, acc);
                            assert_eq!(
                                bits(&got),
                                want,
                                "{level} {m}x{k}x{n} {op_a:?}{op_b:?} {acc:?}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(
        checked,
        direct_ms().len() * DIRECT_KS.len() * DIRECT_NS.len() * 8 * simd_levels.len()
    );
}

#[test]
fn scalar_mul_add_reference_gives_the_bits_of_one_sgemm_call() {
    let test = "scalar_mul_add_reference_gives_the_bits_of_one_sgemm_call";
    if !common::fma_sgemm(test) {
        return;
    }
    // The reference is slow (software fmaf without `-C target-feature=+fma`): every
    // m, k and n of the SIMD test, all four orientations, within a work budget.
    for &m in &direct_ms() {
        for &k in &DIRECT_KS {
            for &n in &DIRECT_NS {
                if m * k * n > 400_000 && !(m == 1 || n == 1) {
                    continue;
                }
                let prob = Problem::new(m, k, n, 400);
                for (op_a, op_b) in OPS {
                    for acc in ACCS {
                        let want = bits(&prob.run(op_a, op_b, acc, gemm_serial));
                        let got = run_direct(&prob, Level::Scalar, op_a, op_b, acc);
                        assert_eq!(
                            bits(&got),
                            want,
                            "scalar {m}x{k}x{n} {op_a:?}{op_b:?} {acc:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Asserts `got` has the bits of `want` (sgemm's), except, where matrixmultiply runs
/// its FMA-AVX2 kernel, in the corner its module doc names: with Add, an element whose
/// `C` was `-0` and whose chunk sum is `-0` is `-0` in full 8x8 tiles and `+0` in edge
/// tiles, so its sign depends on the tile position; our kernels write `-0`. Returns the
/// number of elements excused (always 0 on AVX-512).
fn same_bits_but_known_corner(
    got: &[f32],
    want: &[f32],
    c0: &[f32],
    acc: Accumulate,
    what: &str,
) -> usize {
    let fma_avx2 = regulab_kernels::cpu::sgemm_class() == "fma-avx2";
    let mut excused = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g.to_bits() == w.to_bits() {
            continue;
        }
        let corner = fma_avx2
            && acc == Accumulate::Add
            && c0[i].to_bits() == 0x8000_0000
            && g.to_bits() == 0x8000_0000
            && w.to_bits() == 0;
        assert!(
            corner,
            "{what}: element {i}: {g:?} ({:#x}) vs sgemm {w:?} ({:#x})",
            g.to_bits(),
            w.to_bits()
        );
        excused += 1;
    }
    excused
}

#[test]
fn signed_zeros_and_underflowing_products_match_sgemm() {
    // Products below the smallest subnormal round to -0 or +0; chunk sums of -0 and
    // C = -0 with Add exercise the sign rules of every merge (first chunk, later chunks).
    let (levels, fma) = direct_levels("signed_zeros_and_underflowing_products_match_sgemm");
    if !fma {
        return;
    }
    let mut fma_avx2_corners = 0usize;
    for &(m, k, n) in &[(3, 1, 17), (10, 300, 40), (20, 513, 33), (5, 10, 800)] {
        let mut r = rng(9);
        let tiny = |r: &mut ChaCha8Rng| {
            let x: f32 = r.random_range(-1.0f32..1.0);
            let s = if x < 0.0 { -1e-30f32 } else { 1e-30 };
            if x.abs() < 0.2 { 0.0 * s } else { s }
        };
        let prob = Problem {
            m,
            k,
            n,
            a: (0..m * k).map(|_| tiny(&mut r)).collect(),
            b: (0..k * n).map(|_| tiny(&mut r)).collect(),
            c0: (0..m * n)
                .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
                .collect(),
        };
        for (op_a, op_b) in OPS {
            for acc in ACCS {
                let want = prob.run(op_a, op_b, acc, gemm_serial);
                // AVX-512 writes a -0 chunk sum as -0, so the case has -0 results; the
                // FMA-AVX2 kernel writes fma(1, s, +0) (module doc of `gemm`), which may
                // leave none: the bit equality below is the check then.
                if regulab_kernels::cpu::sgemm_class() == "avx512" {
                    assert!(want.iter().any(|v| v.to_bits() == 0x8000_0000), "has -0");
                }
                for &level in &levels {
                    let got = run_direct(&prob, level, op_a, op_b, acc);
                    fma_avx2_corners += same_bits_but_known_corner(
                        &got,
                        &want,
                        &prob.c0,
                        acc,
                        &format!("{level} {m}x{k}x{n} {op_a:?}{op_b:?} {acc:?}"),
                    );
                }
                let got = prob.run(op_a, op_b, acc, gemm);
                fma_avx2_corners += same_bits_but_known_corner(
                    &got,
                    &want,
                    &prob.c0,
                    acc,
                    &format!("gemm {m}x{k}x{n} {op_a:?}{op_b:?} {acc:?}"),
                );
            }
        }
    }
    if fma_avx2_corners > 0 {
        eprintln!(
            "signed_zeros_and_underflowing_products_match_sgemm: {fma_avx2_corners} elements \
             in matrixmultiply's FMA-AVX2 corner (-0 kept by our kernels, +0 from its edge \
             tiles); every other bit equal"
        );
    }
}

#[test]
fn lab_training_products_take_the_direct_path_on_fma_machines() {
    let (_, fma) = direct_levels("lab_training_products_take_the_direct_path_on_fma_machines");
    let lvl = simd::level();
    let expect = fma && lvl != Level::Scalar;
    // Forward and weight gradient of 784-800-10 at batch 10 and 100.
    for &(m, k, n, op_a) in &[
        (10, 784, 800, Op::N),
        (10, 800, 10, Op::N),
        (784, 10, 800, Op::T),
        (800, 10, 10, Op::T),
        (100, 784, 800, Op::N),
    ] {
        let want = if expect && (m != 100 || lvl == Level::Avx512) {
            Some(lvl)
        } else {
            None
        };
        assert_eq!(
            direct_path(m, n, k, op_a, Op::N),
            want,
            "{m}x{k}x{n} {op_a:?}N"
        );
    }
    // The input gradient D W^T (B read transposed) too; TT never.
    let want = expect.then_some(lvl);
    assert_eq!(direct_path(10, 800, 784, Op::N, Op::T), want);
    assert_eq!(direct_path(10, 784, 10, Op::N, Op::T), want);
    assert_eq!(direct_path(10, 800, 784, Op::T, Op::T), None);
}

#[test]
fn direct_kernels_are_identical_in_pools_of_1_2_3_8_threads() {
    // gemm's parallel blocks around the thresholds, where the direct kernels run
    // (on FMA machines), against one sgemm call.
    let pools = common::pools(&[1, 2, 3, 8]);
    let t = DIRECT_AVX512;
    for (s, &(m, k, n, op_a)) in [
        (t.nn_max_m, 784, 800, Op::N),
        (t.nn_max_m + 1, 513, 800, Op::N),
        (1000, 257, 200, Op::N),
        (784, t.tn_max_k, 800, Op::T),
        (800, t.tn_max_k + 1, 300, Op::T),
        (DIRECT_AVX2.nn_max_m, 300, 1000, Op::N),
        (1000, DIRECT_AVX2.tn_max_k, 800, Op::T),
    ]
    .iter()
    .enumerate()
    {
        for (op_a, op_b) in [(op_a, Op::N), (Op::N, Op::T)] {
            let prob = Problem::new(m, k, n, 500 + s as u64);
            for acc in ACCS {
                let serial = bits(&prob.run(op_a, op_b, acc, gemm_serial));
                for pool in &pools {
                    let c = pool.install(|| prob.run(op_a, op_b, acc, gemm));
                    assert_eq!(
                        bits(&c),
                        serial,
                        "{m}x{k}x{n} {op_a:?}{op_b:?} {acc:?} in a pool of {}",
                        pool.current_num_threads()
                    );
                }
            }
        }
    }
}
