//! Tests of the fused SGD / penalty kernels: closed forms on hand-made inputs, SIMD
//! paths bit-identical to the scalar path, and bits independent of the rayon pool size.

use regulab_kernels::simd::{Level, available as supported};
use regulab_kernels::update::{
    self, PAR_MIN, Step, decay, decay_with, penalty_sums, penalty_sums_with, scale, scale_into,
    scale_into_with, scale_with, sgd, sgd_momentum, sgd_momentum_with, sgd_with,
};

/// Hand-made step: every product and sum below is exact in f32.
const S: Step = Step {
    lr: 0.5,
    grad_scale: 0.25,
    l1: 0.125,
    l2: 0.5,
};
const W0: [f32; 4] = [1.0, -2.0, 0.0, 0.5];
const G0: [f32; 4] = [4.0, -8.0, 2.0, 0.0];

const LEVELS: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

mod common;

/// The levels of `candidates` the update kernels run here (`supported`); the others are
/// reported as skipped (and fail under `REGULAB_REQUIRE_SIMD`).
fn levels(candidates: &[Level]) -> impl Iterator<Item = Level> {
    let mut run = Vec::new();
    for &l in candidates {
        if supported(l) {
            run.push(l);
        } else {
            common::skip(
                "update",
                l,
                &format!("SIMD level {l}"),
                "not supported here",
            );
        }
    }
    run.into_iter()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// `pattern` repeated to `n` elements (so the SIMD bodies and tails both see it).
fn tile(pattern: &[f32], n: usize) -> Vec<f32> {
    pattern.iter().copied().cycle().take(n).collect()
}

/// Deterministic test data: splitmix64 -> f32 in [-2, 2), with some exact zeros,
/// negative zeros, tiny (subnormal) and large values mixed in.
fn data(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            match z % 64 {
                0 => 0.0,
                1 => -0.0,
                2 => f32::from_bits(1 + (z >> 40) as u32 % 1000), // subnormal
                3 => 1e30 * if z & 1 == 0 { 1.0 } else { -1.0 },
                _ => ((z >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0,
            }
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("build rayon pool")
}

/// Odd and boundary lengths around the 8/16 lanes, plus two above the parallel threshold.
fn lengths() -> Vec<usize> {
    vec![
        0,
        1,
        3,
        7,
        8,
        9,
        15,
        16,
        17,
        31,
        33,
        4095,
        4097,
        10_007,
        PAR_MIN + 13,
        627_200 + 5,
    ]
}

#[test]
fn sgd_closed_form_on_hand_made_inputs() {
    // d = g/4 + w/2 + sgn(w)/8; w' = w - d/2:
    // w=1:    d = 1 + 0.5 + 0.125     = 1.625  -> 0.1875
    // w=-2:   d = -2 - 1 - 0.125      = -3.125 -> -0.4375
    // w=0:    d = 0.5 + 0 + 0         = 0.5    -> -0.25   (sgn(0) = 0)
    // w=0.5:  d = 0 + 0.25 + 0.125    = 0.375  -> 0.3125
    let expected = [0.1875f32, -0.4375, -0.25, 0.3125];
    for level in levels(&LEVELS) {
        for n in [4, 37, 64, 101] {
            let mut w = tile(&W0, n);
            sgd_with(level, &mut w, &tile(&G0, n), S);
            assert_eq!(bits(&w), bits(&tile(&expected, n)), "{level:?}, n = {n}");
        }
    }
    let mut w = W0;
    sgd(&mut w, &G0, S);
    assert_eq!(w, expected);
}

#[test]
fn sgn_zero_leaves_zero_weights_at_zero() {
    // g = 0 and w = +-0 with l1 > 0: the L1 term is l1 * sgn(0) = 0, so w stays +-0
    // bit for bit; a non-zero w next to it is pulled toward zero.
    let s = Step {
        lr: 1.0,
        grad_scale: 0.25,
        l1: 0.5,
        l2: 0.25,
    };
    for level in levels(&LEVELS) {
        let mut w = tile(&[0.0, -0.0, 2.0], 35);
        let g = vec![0.0f32; 35];
        sgd_with(level, &mut w, &g, s);
        // 2 - (0.25*2 + 0.5*1) = 1.
        assert_eq!(bits(&w), bits(&tile(&[0.0, -0.0, 1.0], 35)), "{level:?}");
        let mut w = tile(&[0.0, -0.0, 2.0], 35);
        decay_with(level, &mut w, 1.0, 0.5, 0.25);
        assert_eq!(bits(&w), bits(&tile(&[0.0, -0.0, 1.0], 35)), "{level:?}");
    }
}

#[test]
fn momentum_closed_form_over_two_steps() {
    let mu = 0.5;
    let g1 = G0;
    let g2 = [0.0f32, 4.0, -4.0, 8.0];
    // Step 1 (v = 0): d = [1.625, -3.125, 0.5, 0.375], v = -d/2, w = w + v.
    let v1 = [-0.8125f32, 1.5625, -0.25, -0.1875];
    let w1 = [0.1875f32, -0.4375, -0.25, 0.3125];
    // Step 2: d = [0.21875, 0.65625, -1.25, 2.28125], v = v1/2 - d/2, w = w1 + v.
    let v2 = [-0.515625f32, 0.453125, 0.5, -1.234375];
    let w2 = [-0.328125f32, 0.015625, 0.25, -0.921875];
    for level in levels(&LEVELS) {
        for n in [4, 36, 100] {
            let mut w = tile(&W0, n);
            let mut v = vec![0.0f32; n];
            sgd_momentum_with(level, &mut w, &mut v, &tile(&g1, n), S, mu);
            assert_eq!(bits(&v), bits(&tile(&v1, n)), "{level:?} v1");
            assert_eq!(bits(&w), bits(&tile(&w1, n)), "{level:?} w1");
            sgd_momentum_with(level, &mut w, &mut v, &tile(&g2, n), S, mu);
            assert_eq!(bits(&v), bits(&tile(&v2, n)), "{level:?} v2");
            assert_eq!(bits(&w), bits(&tile(&w2, n)), "{level:?} w2");
        }
    }
    let (mut w, mut v) = (W0, [0.0f32; 4]);
    sgd_momentum(&mut w, &mut v, &g1, S, mu);
    sgd_momentum(&mut w, &mut v, &g2, S, mu);
    assert_eq!((w, v), (w2, v2));
}

#[test]
fn momentum_with_mu_zero_equals_sgd() {
    let w0 = data(1, 1001);
    let g = data(2, 1001);
    let mut a = w0.clone();
    sgd(&mut a, &g, S);
    let mut b = w0.clone();
    let mut v = data(3, 1001);
    sgd_momentum(&mut b, &mut v, &g, S, 0.0);
    // v = 0*v - lr*d = -(lr*d) and w + (-(lr*d)) == w - lr*d exactly.
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn decay_closed_form_and_noop() {
    // w - 0.5*(0.5 w + 0.125 sgn w): 1 -> 0.6875, -2 -> -1.4375, 0 -> 0, 0.5 -> 0.3125.
    let expected = [0.6875f32, -1.4375, 0.0, 0.3125];
    for level in levels(&LEVELS) {
        let mut w = tile(&W0, 41);
        decay_with(level, &mut w, 0.5, 0.125, 0.5);
        assert_eq!(bits(&w), bits(&tile(&expected, 41)), "{level:?}");
    }
    // l1 = l2 = 0: bit-identical, whatever the values (non-finite ones included).
    for n in [5, PAR_MIN + 3] {
        let mut w = data(7, n);
        w[0] = f32::NAN;
        w[1] = f32::INFINITY;
        w[2] = -0.0;
        let before = bits(&w);
        decay(&mut w, 0.5, 0.0, 0.0);
        assert_eq!(bits(&w), before);
    }
}

#[test]
fn scale_closed_form() {
    let expected = [-0.25f32, 0.5, -0.0, -0.125];
    for level in levels(&LEVELS) {
        let mut x = tile(&W0, 37);
        scale_with(level, &mut x, -0.25);
        assert_eq!(bits(&x), bits(&tile(&expected, 37)), "{level:?}");
        let mut y = vec![9.0f32; 37];
        scale_into_with(level, &mut y, &tile(&W0, 37), -0.25);
        assert_eq!(bits(&y), bits(&x), "{level:?}");
    }
    let mut x = W0;
    scale(&mut x, -0.25);
    let mut y = [0.0f32; 4];
    scale_into(&mut y, &W0, -0.25);
    assert_eq!(bits(&x), bits(&expected));
    assert_eq!(bits(&y), bits(&expected));
}

#[test]
fn penalty_sums_exact_and_against_f64_reference() {
    assert_eq!(penalty_sums(&[]), (0.0, 0.0));
    assert_eq!(penalty_sums(&W0), (3.5, 5.25));
    for n in [1, 17, 4096, 4097, 100_003, 627_200] {
        let w = data(11, n);
        let w: Vec<f32> = w.into_iter().map(|x| x.clamp(-2.0, 2.0)).collect();
        let ref_abs: f64 = w.iter().map(|&x| f64::from(x).abs()).sum();
        let ref_sq: f64 = w.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let (a, q) = penalty_sums(&w);
        assert!(
            (a - ref_abs).abs() <= 1e-12 * ref_abs,
            "n = {n}: {a} vs {ref_abs}"
        );
        assert!(
            (q - ref_sq).abs() <= 1e-12 * ref_sq,
            "n = {n}: {q} vs {ref_sq}"
        );
    }
}

#[test]
fn simd_paths_bit_identical_to_scalar() {
    let s = Step {
        lr: 0.1,
        grad_scale: 0.01,
        l1: 1e-4,
        l2: 1e-5,
    };
    let mu = 0.9;
    let levels: Vec<Level> = levels(&[Level::Avx2, Level::Avx512]).collect();
    for n in lengths() {
        let w0 = data(n as u64, n);
        let g = data(n as u64 + 1, n);
        let v0 = data(n as u64 + 2, n);

        let mut w_ref = w0.clone();
        sgd_with(Level::Scalar, &mut w_ref, &g, s);
        let (mut wm_ref, mut vm_ref) = (w0.clone(), v0.clone());
        sgd_momentum_with(Level::Scalar, &mut wm_ref, &mut vm_ref, &g, s, mu);
        let mut wd_ref = w0.clone();
        decay_with(Level::Scalar, &mut wd_ref, s.lr, s.l1, s.l2);
        let mut x_ref = w0.clone();
        scale_with(Level::Scalar, &mut x_ref, -0.05);
        let mut y_ref = vec![0.0f32; n];
        scale_into_with(Level::Scalar, &mut y_ref, &w0, -0.05);
        let sums_ref = penalty_sums_with(Level::Scalar, &w0);

        for &level in &levels {
            let mut w = w0.clone();
            sgd_with(level, &mut w, &g, s);
            assert_eq!(bits(&w), bits(&w_ref), "sgd {level:?} n = {n}");
            let (mut wm, mut vm) = (w0.clone(), v0.clone());
            sgd_momentum_with(level, &mut wm, &mut vm, &g, s, mu);
            assert_eq!(bits(&wm), bits(&wm_ref), "momentum w {level:?} n = {n}");
            assert_eq!(bits(&vm), bits(&vm_ref), "momentum v {level:?} n = {n}");
            let mut wd = w0.clone();
            decay_with(level, &mut wd, s.lr, s.l1, s.l2);
            assert_eq!(bits(&wd), bits(&wd_ref), "decay {level:?} n = {n}");
            let mut x = w0.clone();
            scale_with(level, &mut x, -0.05);
            assert_eq!(bits(&x), bits(&x_ref), "scale {level:?} n = {n}");
            let mut y = vec![0.0f32; n];
            scale_into_with(level, &mut y, &w0, -0.05);
            assert_eq!(bits(&y), bits(&y_ref), "scale_into {level:?} n = {n}");
            let sums = penalty_sums_with(level, &w0);
            assert_eq!(
                (sums.0.to_bits(), sums.1.to_bits()),
                (sums_ref.0.to_bits(), sums_ref.1.to_bits()),
                "penalty_sums {level:?} n = {n}"
            );
        }
    }
}

/// Everything one pool computes, as bits.
fn run_all(w0: &[f32], g: &[f32], v0: &[f32]) -> Vec<Vec<u64>> {
    let s = Step {
        lr: 0.5,
        grad_scale: 0.1,
        l1: 1e-4,
        l2: 1e-5,
    };
    let widen = |x: &[f32]| x.iter().map(|v| u64::from(v.to_bits())).collect::<Vec<_>>();
    let mut w = w0.to_vec();
    sgd(&mut w, g, s);
    let (mut wm, mut vm) = (w0.to_vec(), v0.to_vec());
    sgd_momentum(&mut wm, &mut vm, g, s, 0.9);
    let mut wd = w0.to_vec();
    decay(&mut wd, s.lr, s.l1, s.l2);
    let mut x = w0.to_vec();
    scale(&mut x, -0.05);
    let mut y = vec![0.0f32; w0.len()];
    scale_into(&mut y, w0, -0.05);
    let (a, q) = penalty_sums(w0);
    vec![
        widen(&w),
        widen(&wm),
        widen(&vm),
        widen(&wd),
        widen(&x),
        widen(&y),
        vec![a.to_bits(), q.to_bits()],
    ]
}

#[test]
fn bits_independent_of_pool_size() {
    // 784 x 800 (+ an odd tail) is far above PAR_MIN, so every kernel splits into chunks.
    let n = 784 * 800 + 13;
    let w0 = data(21, n);
    let g = data(22, n);
    let v0 = data(23, n);
    let reference = pool(1).install(|| run_all(&w0, &g, &v0));
    for threads in [2, 3, 8] {
        let got = pool(threads).install(|| run_all(&w0, &g, &v0));
        assert!(got == reference, "{threads} threads differ from 1 thread");
    }
    // And each SIMD level in a multi-thread pool against scalar in one thread.
    for level in levels(&LEVELS) {
        let (a, q) = pool(3).install(|| penalty_sums_with(level, &w0));
        assert_eq!(
            (a.to_bits(), q.to_bits()),
            (reference[6][0], reference[6][1])
        );
    }
}

#[test]
fn g_free_path_matches_fused_update() {
    // W (n_in x n_out) <- W - lr (X^T D / B + l2 W + l1 sgn W), done as
    // decay; D * (-lr / B); W += X^T (scaled D). A naive product stands in for gemm.
    let (b, n_in, n_out) = (10usize, 37usize, 29usize);
    let x = data(31, b * n_in);
    let d = data(32, b * n_out);
    let x: Vec<f32> = x.iter().map(|v| v.clamp(-2.0, 2.0)).collect();
    let d: Vec<f32> = d.iter().map(|v| v.clamp(-2.0, 2.0)).collect();
    let w0: Vec<f32> = data(33, n_in * n_out)
        .iter()
        .map(|v| v.clamp(-2.0, 2.0) * 0.1)
        .collect();
    let s = Step {
        lr: 0.5,
        grad_scale: 1.0 / b as f32,
        l1: 1e-2,
        l2: 1e-3,
    };
    let xt_d = |d: &[f32], out: &mut [f32]| {
        for i in 0..n_in {
            for j in 0..n_out {
                let mut acc = 0.0f32;
                for r in 0..b {
                    acc += x[r * n_in + i] * d[r * n_out + j];
                }
                out[i * n_out + j] += acc;
            }
        }
    };
    // Strategy A: materialise G, fused sgd.
    let mut g = vec![0.0f32; n_in * n_out];
    xt_d(&d, &mut g);
    let mut wa = w0.clone();
    sgd(&mut wa, &g, s);
    // Strategy B: G-free.
    let mut wb = w0.clone();
    update::decay(&mut wb, s.lr, s.l1, s.l2);
    let mut ds = vec![0.0f32; d.len()];
    scale_into(&mut ds, &d, -s.lr / b as f32);
    xt_d(&ds, &mut wb);
    for (i, (a, bv)) in wa.iter().zip(&wb).enumerate() {
        assert!((a - bv).abs() <= 1e-5 * (1.0 + a.abs()), "{i}: {a} vs {bv}");
    }
}
