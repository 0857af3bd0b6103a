//! Activation kernels through the public API: every SIMD level gives the scalar bits,
//! every rayon pool size gives the same bits, and the results match f64 references.

use regulab_kernels::activation::{
    self, Activation, BLOCK, CHEAP_BLOCK, EXP_MAX_ULP, argmax_rows, backward_with, col_sums,
    col_sums_with, exp_with, forward_with, mse_with, softmax_xent, softmax_xent_with,
};
use regulab_kernels::simd::{self, Level};

/// SplitMix64: a tiny deterministic generator for test data.
struct Gen(u64);

impl Gen {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % u64::from(n)) as u32
    }
}

/// Values where paths could disagree: signed zeros, infinities, NaNs (quiet,
/// signalling, negative, with payloads), clamp and overflow edges, subnormals.
fn special_values() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::from_bits(0xffc0_0123),
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0x7fc4_5678),
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(0x0000_7fff),
        88.72283,
        88.722_84,
        88.8,
        89.0,
        -87.336_54,
        -87.336_56,
        -100.0,
        -103.97,
        -104.0,
        -104.1,
        0.625,
        -0.625,
        0.624_999_94,
        1e-30,
        -1e-30,
        1e4,
        -1e4,
    ];
    for edge in [30.0f32, -30.0] {
        v.extend([
            edge,
            f32::from_bits(edge.to_bits() - 1),
            f32::from_bits(edge.to_bits() + 1),
        ]);
    }
    v
}

/// Random values in [lo, hi) with the special values sprinkled in.
fn mixed(g: &mut Gen, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let sp = special_values();
    let mut v = g.vec(n, lo, hi);
    for x in v.iter_mut() {
        if g.below(13) == 0 {
            *x = sp[g.below(sp.len() as u32) as usize];
        }
    }
    v
}

/// The bits of `x`, every NaN written as the canonical quiet NaN: the kernels promise
/// identical bits for every non-NaN result and NaN where the reference is NaN, but not
/// NaN payloads or signs (Rust and LLVM leave them unspecified, RFC 3514).
fn bits(x: &[f32]) -> Vec<u32> {
    x.iter()
        .map(|v| {
            if v.is_nan() {
                f32::NAN.to_bits()
            } else {
                v.to_bits()
            }
        })
        .collect()
}

/// `f64::to_bits` with NaN canonicalised (see [`bits`]).
fn bits64(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

mod common;

fn levels() -> Vec<Level> {
    common::levels("activation")
}

/// (rows, cols) shapes with odd tails, single rows/columns and parallel sizes.
const SHAPES: [(usize, usize); 15] = [
    (0, 3),
    (9, 8),
    (9, 16),
    (4, 2),
    (1, 1),
    (3, 7),
    (5, 17),
    (2, 33),
    (100, 10),
    (10, 800),
    (7, 801),
    (1, 16_389),
    (60, 800),
    (1700, 10),
    (340, 800),
];

fn run_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

#[test]
fn exp_every_level_gives_scalar_bits() {
    let mut g = Gen(1);
    let mut inputs = special_values();
    inputs.extend(g.vec(100_003, -110.0, 95.0));
    inputs.extend(g.vec(20_001, -1.0, 1.0));
    let want: Vec<f32> = inputs.iter().map(|&x| activation::exp(x)).collect();
    for level in levels() {
        for len in [0, 1, 5, 8, 15, 16, 17, 31, 33, inputs.len()] {
            let mut x = inputs[..len].to_vec();
            exp_with(level, &mut x);
            assert_eq!(bits(&x), bits(&want[..len]), "{level} len {len}");
        }
        // every start offset (alignment) and tail length
        for start in 0..17 {
            let mut x = inputs[start..start + 40].to_vec();
            exp_with(level, &mut x);
            assert_eq!(
                bits(&x),
                bits(&want[start..start + 40]),
                "{level} start {start}"
            );
        }
    }
}

#[test]
fn exp_within_ulp_bound_of_f64() {
    let mut g = Gen(2);
    let mut x = g.vec(200_000, -87.0, 88.0);
    x.extend([-87.0, 88.0, 0.0, 1e-7, -1e-7]);
    let orig = x.clone();
    exp_with(simd::level(), &mut x);
    for (&a, &e) in orig.iter().zip(&x) {
        let want = f64::from(a).exp();
        let ulp = 2f64.powi((want as f32).log2().floor() as i32 - 23);
        let err = (f64::from(e) - want).abs() / ulp;
        assert!(err <= EXP_MAX_ULP, "exp({a}) = {e}, error {err} ulp");
    }
}

#[test]
fn forward_every_activation_and_level_gives_scalar_bits() {
    let mut g = Gen(3);
    for &(rows, cols) in &SHAPES {
        let z0 = mixed(&mut g, rows * cols, -40.0, 40.0);
        let bias = mixed(&mut g, cols, -2.0, 2.0);
        for act in Activation::ALL {
            // per-element reference: f(z + b)
            let want: Vec<f32> = z0
                .iter()
                .enumerate()
                .map(|(i, &z)| act.apply(z + bias[i % cols]))
                .collect();
            for level in levels() {
                let mut z = z0.clone();
                forward_with(level, act, &mut z, &bias);
                assert_eq!(bits(&z), bits(&want), "{act:?} {level} {rows}x{cols}");
            }
        }
    }
}

#[test]
fn backward_every_activation_and_level_gives_scalar_bits() {
    let mut g = Gen(4);
    for n in [0, 1, 7, 16, 17, 100, 8000, BLOCK + 3, CHEAP_BLOCK + 21] {
        let g0 = mixed(&mut g, n, -3.0, 3.0);
        for act in Activation::ALL {
            let mut h = mixed(&mut g, n, -6.0, 6.0);
            let zero_bias = vec![-0.0f32; 1];
            forward_with(
                Level::Scalar,
                act,
                &mut h,
                if n == 0 { &[] } else { &zero_bias },
            );
            // mix in raw special values of h too
            for (i, x) in special_values().into_iter().enumerate().take(n / 2) {
                h[2 * i] = x;
            }
            let want: Vec<f32> = h
                .iter()
                .zip(&g0)
                .map(|(&h, &g)| act.grad_from_output(h, g))
                .collect();
            for level in levels() {
                let mut gr = g0.clone();
                backward_with(level, act, &h, &mut gr);
                assert_eq!(bits(&gr), bits(&want), "{act:?} {level} n {n}");
            }
        }
    }
}

#[test]
fn backward_follows_documented_formulas() {
    let h = [0.25f32, 0.5, 0.9, 0.0, -0.5, 1.0];
    let g0 = [2.0f32, -1.0, 0.3, 4.0, 1.5, -2.0];
    for level in levels() {
        let mut gs = g0;
        backward_with(level, Activation::Sigmoid, &h, &mut gs);
        let mut gt = g0;
        backward_with(level, Activation::Tanh, &h, &mut gt);
        let mut gr = g0;
        backward_with(level, Activation::Relu, &h, &mut gr);
        let mut gi = g0;
        backward_with(level, Activation::Identity, &h, &mut gi);
        for i in 0..h.len() {
            assert_eq!(gs[i].to_bits(), (g0[i] * (h[i] * (1.0 - h[i]))).to_bits());
            assert_eq!(gt[i].to_bits(), (g0[i] * (1.0 - h[i] * h[i])).to_bits());
            let r = if h[i] > 0.0 { g0[i] } else { 0.0 };
            assert_eq!(gr[i].to_bits(), r.to_bits());
            assert_eq!(gi[i].to_bits(), g0[i].to_bits());
        }
    }
}

#[test]
fn forward_values_follow_definitions() {
    let bias = [0.5f32, -0.0, 1.0];
    let z0 = [100.0f32, -0.0, -1.0, -100.0, 0.3, 2.0];
    for level in levels() {
        let mut s = z0;
        forward_with(level, Activation::Sigmoid, &mut s, &bias);
        // clamped to +-30 as in the lab
        assert_eq!(s[0], Activation::Sigmoid.apply(30.0));
        assert_eq!(s[3], Activation::Sigmoid.apply(-30.0));
        assert_eq!(s[2], 0.5); // -1 + 1
        let mut r = z0;
        forward_with(level, Activation::Relu, &mut r, &bias);
        assert_eq!(bits(&r), bits(&[100.5, 0.0, 0.0, 0.0, 0.3, 3.0]));
        let mut id = z0;
        forward_with(level, Activation::Identity, &mut id, &bias);
        for i in 0..6 {
            assert_eq!(id[i].to_bits(), (z0[i] + bias[i % 3]).to_bits());
        }
        let mut t = z0;
        forward_with(level, Activation::Tanh, &mut t, &bias);
        for i in 0..6 {
            let want = f64::from(z0[i] + bias[i % 3]).tanh();
            assert!((f64::from(t[i]) - want).abs() <= 1.5 * 2f64.powi(-24) * want.abs().max(1e-30));
        }
        assert_eq!(t[1].to_bits(), (-0.0f32).to_bits()); // tanh(-0 + -0) = -0
    }
}

/// Labels uniformly in 0..cols.
fn labels(g: &mut Gen, rows: usize, cols: usize) -> Vec<u32> {
    (0..rows).map(|_| g.below(cols as u32)).collect()
}

#[test]
fn softmax_xent_every_level_gives_scalar_bits() {
    let mut g = Gen(5);
    for &(rows, cols) in &SHAPES {
        let logits = mixed(&mut g, rows * cols, -20.0, 20.0);
        let bias = g.vec(cols, -1.0, 1.0);
        let y = labels(&mut g, rows, cols);
        let mut grad0 = vec![0.0; rows * cols];
        let mut loss0 = vec![0.0; rows];
        let sum0 = softmax_xent_with(Level::Scalar, &logits, &bias, &y, &mut grad0, &mut loss0);
        for level in levels() {
            let mut grad = vec![7.0; rows * cols];
            let mut loss = vec![7.0; rows];
            let sum = softmax_xent_with(level, &logits, &bias, &y, &mut grad, &mut loss);
            assert_eq!(bits(&grad), bits(&grad0), "{level} {rows}x{cols}");
            assert_eq!(bits(&loss), bits(&loss0), "{level} {rows}x{cols}");
            assert_eq!(bits64(sum), bits64(sum0), "{level} {rows}x{cols}");
        }
    }
}

/// f64 reference of one softmax row: (loss, y - onehot), from z = f32(logit + bias).
fn softmax_ref(z: &[f32], label: usize) -> (f64, Vec<f64>) {
    let m = z
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let s: f64 = z.iter().map(|&v| (f64::from(v) - m).exp()).sum();
    let mut grad: Vec<f64> = z.iter().map(|&v| (f64::from(v) - m).exp() / s).collect();
    grad[label] -= 1.0;
    (s.ln() + m - f64::from(z[label]), grad)
}

#[test]
fn softmax_xent_matches_f64_reference() {
    let mut g = Gen(6);
    for &(rows, cols) in &[(50usize, 10usize), (20, 3), (5, 200), (1, 1)] {
        let logits = g.vec(rows * cols, -8.0, 8.0);
        let bias = g.vec(cols, -1.0, 1.0);
        let y = labels(&mut g, rows, cols);
        let mut grad = vec![0.0; rows * cols];
        let mut loss = vec![0.0; rows];
        let total = softmax_xent(&logits, &bias, &y, &mut grad, &mut loss);
        let mut sum = 0.0f64;
        for r in 0..rows {
            let z: Vec<f32> = (0..cols).map(|j| logits[r * cols + j] + bias[j]).collect();
            let (l, gr) = softmax_ref(&z, y[r] as usize);
            assert!(
                (f64::from(loss[r]) - l).abs() <= 1e-6 * l.abs().max(1.0),
                "row {r}: loss {} vs {l}",
                loss[r]
            );
            for j in 0..cols {
                assert!(
                    (f64::from(grad[r * cols + j]) - gr[j]).abs() <= 3e-7,
                    "row {r} col {j}"
                );
            }
            sum += f64::from(loss[r]);
        }
        assert_eq!(
            total.to_bits(),
            sum.to_bits(),
            "row-order f64 sum of loss[]"
        );
    }
}

#[test]
fn softmax_xent_stable_for_huge_logits() {
    let logits = [
        1e4f32, -1e4, 0.0, //
        -1e4, -1e4, -1e4, //
        1e4, 1e4, -1e4, //
        3e38, -3e38, 0.0,
    ];
    let bias = [0.0f32; 3];
    let y = [1u32, 2, 0, 0];
    for level in levels() {
        let mut grad = [0.0f32; 12];
        let mut loss = [0.0f32; 4];
        let total = softmax_xent_with(level, &logits, &bias, &y, &mut grad, &mut loss);
        assert!(total.is_finite());
        for r in 0..4 {
            assert!(
                loss[r].is_finite() && loss[r] >= 0.0,
                "row {r} loss {}",
                loss[r]
            );
            let row = &grad[r * 3..r * 3 + 3];
            assert!(row.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
            assert!(
                row.iter().map(|&v| f64::from(v)).sum::<f64>().abs() <= 1e-6,
                "row {r}"
            );
        }
        assert_eq!(loss[0], 2e4); // -ln y_1 = 1e4 - (-1e4)
        assert_eq!(loss[1], 3f32.ln()); // equal logits: ln 3
        assert!((loss[2] - 2f32.ln()).abs() <= 1e-7); // tie between two maxima
        assert_eq!(loss[3], 0.0);
        assert_eq!(bits(&grad[..3]), bits(&[1.0, -1.0, 0.0]));
    }
}

#[test]
fn softmax_xent_gradient_matches_finite_differences() {
    let mut g = Gen(7);
    let (rows, cols) = (3usize, 5usize);
    let mut logits = g.vec(rows * cols, -2.0, 2.0);
    let mut bias = g.vec(cols, -0.5, 0.5);
    let y = labels(&mut g, rows, cols);
    let mut grad = vec![0.0; rows * cols];
    let mut loss = vec![0.0; rows];
    softmax_xent(&logits, &bias, &y, &mut grad, &mut loss);
    let total = |logits: &[f32], bias: &[f32]| {
        let mut gr = vec![0.0; rows * cols];
        let mut lo = vec![0.0; rows];
        softmax_xent(logits, bias, &y, &mut gr, &mut lo)
    };
    let h = 1.0f32 / 256.0; // exact steps in f32
    for i in 0..rows * cols {
        let x = logits[i];
        logits[i] = x + h;
        let up = total(&logits, &bias);
        logits[i] = x - h;
        let down = total(&logits, &bias);
        logits[i] = x;
        let fd = (up - down) / (2.0 * f64::from(h));
        assert!(
            (fd - f64::from(grad[i])).abs() <= 2e-3,
            "d/dlogit {i}: fd {fd} vs {}",
            grad[i]
        );
    }
    // d(total)/d(bias_j) = sum_r grad[r, j] = col_sums(grad)
    let mut gb = vec![0.0; cols];
    col_sums(&grad, cols, &mut gb);
    for j in 0..cols {
        let b = bias[j];
        bias[j] = b + h;
        let up = total(&logits, &bias);
        bias[j] = b - h;
        let down = total(&logits, &bias);
        bias[j] = b;
        let fd = (up - down) / (2.0 * f64::from(h));
        assert!(
            (fd - f64::from(gb[j])).abs() <= 4e-3,
            "d/dbias {j}: fd {fd} vs {}",
            gb[j]
        );
    }
}

#[test]
#[should_panic(expected = "label 10 of row 1 is out of range 0..10")]
fn softmax_xent_rejects_out_of_range_label() {
    let logits = [0.0f32; 20];
    let mut grad = [0.0f32; 20];
    let mut loss = [0.0f32; 2];
    softmax_xent(&logits, &[0.0; 10], &[3, 10], &mut grad, &mut loss);
}

#[test]
#[should_panic(expected = "not whole rows")]
fn forward_rejects_partial_rows() {
    let mut z = [0.0f32; 7];
    activation::forward(Activation::Sigmoid, &mut z, &[0.0; 3]);
}

#[test]
fn mse_every_level_gives_scalar_bits_and_matches_reference() {
    let mut g = Gen(8);
    for &(rows, cols) in &SHAPES {
        let out = mixed(&mut g, rows * cols, -5.0, 5.0);
        let bias = g.vec(cols, -1.0, 1.0);
        let t = g.vec(rows * cols, -5.0, 5.0);
        let mut grad0 = vec![0.0; rows * cols];
        let mut loss0 = vec![0.0; rows];
        let sum0 = mse_with(Level::Scalar, &out, &bias, &t, &mut grad0, &mut loss0);
        for level in levels() {
            let mut grad = vec![7.0; rows * cols];
            let mut loss = vec![7.0; rows];
            let sum = mse_with(level, &out, &bias, &t, &mut grad, &mut loss);
            assert_eq!(bits(&grad), bits(&grad0), "{level} {rows}x{cols}");
            assert_eq!(bits(&loss), bits(&loss0), "{level} {rows}x{cols}");
            assert_eq!(bits64(sum), bits64(sum0));
        }
        let mut total = 0.0f64;
        for (r, &l) in loss0.iter().enumerate() {
            let mut want = 0.0f64;
            for (j, &b) in bias.iter().enumerate() {
                let i = r * cols + j;
                let d = (out[i] + b) - t[i];
                assert_eq!(bits(&[grad0[i]]), bits(&[d]));
                want += f64::from(d) * f64::from(d);
            }
            // the documented f64 accumulation, j in order, rounded once to f32
            assert_eq!(bits(&[l]), bits(&[(0.5 * want) as f32]), "row {r}");
            total += f64::from(l);
        }
        assert_eq!(bits64(sum0), bits64(total));
    }
}

#[test]
fn argmax_first_on_ties_and_nan_first() {
    let x = [
        1.0f32,
        3.0,
        3.0, //
        5.0,
        5.0,
        5.0, //
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY, //
        1.0,
        f32::NAN,
        3.0, //
        f32::NAN,
        2.0,
        f32::NAN, //
        -0.0,
        0.0,
        -1.0, //
        -2.0,
        -1.0,
        f32::INFINITY,
    ];
    let mut out = [99u32; 7];
    argmax_rows(&x, 3, &mut out);
    assert_eq!(out, [1, 0, 0, 1, 0, 0, 2]);
    let mut g = Gen(9);
    let x = g.vec(1000, -1.0, 1.0);
    let mut out = vec![0u32; 100];
    argmax_rows(&x, 10, &mut out);
    for (r, &o) in out.iter().enumerate() {
        let row = &x[r * 10..r * 10 + 10];
        let best = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(row[o as usize], best);
        assert!(row[..o as usize].iter().all(|&v| v < best));
    }
    let mut one = [5u32];
    argmax_rows(&[4.0], 1, &mut one);
    assert_eq!(one, [0]);
}

#[test]
fn col_sums_every_level_gives_scalar_bits() {
    let mut g = Gen(10);
    let mut shapes = SHAPES.to_vec();
    shapes.extend([(100, 3000), (130, 2049)]); // column-parallel path
    for (rows, cols) in shapes {
        let x = mixed(&mut g, rows * cols, -100.0, 100.0);
        let mut want = vec![0.0f32; cols];
        for r in 0..rows {
            for j in 0..cols {
                want[j] += x[r * cols + j];
            }
        }
        for level in levels() {
            let mut out = vec![7.0; cols];
            col_sums_with(level, &x, cols, &mut out);
            assert_eq!(bits(&out), bits(&want), "{level} {rows}x{cols}");
        }
    }
}

#[test]
fn col_sums_exact_on_integers_and_in_row_order() {
    let mut g = Gen(11);
    for (rows, cols) in [(1000usize, 10usize), (300, 1500), (3, 1)] {
        let x: Vec<f32> = (0..rows * cols)
            .map(|_| g.below(2001) as f32 - 1000.0)
            .collect();
        let mut out = vec![0.0; cols];
        col_sums(&x, cols, &mut out);
        for j in 0..cols {
            let exact: i64 = (0..rows).map(|r| x[r * cols + j] as i64).sum();
            assert_eq!(out[j], exact as f32, "col {j}");
        }
    }
    // f32 accumulation in row order: (1e8 + 1) - 1e8 = 0, not 1.
    let x = [1e8f32, 1.0, 1.0, 2.0, -1e8, 3.0];
    let mut out = [0.0f32; 2];
    col_sums(&x, 2, &mut out);
    assert_eq!(out, [0.0, 6.0]);
    let mut empty = [9.0f32; 4];
    col_sums(&[], 4, &mut empty);
    assert_eq!(empty, [0.0; 4]);
}

#[test]
fn every_kernel_same_bits_in_pools_of_1_2_3_8_threads() {
    let mut g = Gen(12);
    let (rows, cols) = (400usize, 800usize);
    let z0 = mixed(&mut g, rows * cols, -10.0, 10.0);
    let bias = g.vec(cols, -1.0, 1.0);
    let g0 = g.vec(rows * cols, -1.0, 1.0);
    let (srows, scols) = (30_000usize, 10usize);
    let logits = g.vec(srows * scols, -10.0, 10.0);
    let sbias = g.vec(scols, -1.0, 1.0);
    let y = labels(&mut g, srows, scols);
    let targets = g.vec(srows * scols, -1.0, 1.0);
    let xc = g.vec(100 * 3000, -1.0, 1.0);

    let run = || {
        let mut out: Vec<Vec<u32>> = Vec::new();
        for act in Activation::ALL {
            let mut z = z0.clone();
            activation::forward(act, &mut z, &bias);
            let mut gr = g0.clone();
            activation::backward(act, &z, &mut gr);
            out.push(bits(&z));
            out.push(bits(&gr));
        }
        let mut grad = vec![0.0; srows * scols];
        let mut loss = vec![0.0; srows];
        let s = softmax_xent(&logits, &sbias, &y, &mut grad, &mut loss);
        out.extend([
            bits(&grad),
            bits(&loss),
            vec![s.to_bits() as u32, (s.to_bits() >> 32) as u32],
        ]);
        let s = activation::mse(&logits, &sbias, &targets, &mut grad, &mut loss);
        out.extend([
            bits(&grad),
            bits(&loss),
            vec![s.to_bits() as u32, (s.to_bits() >> 32) as u32],
        ]);
        let mut cs = vec![0.0; 3000];
        col_sums(&xc, 3000, &mut cs);
        out.push(bits(&cs));
        let mut e = z0.clone();
        exp_with(simd::level(), &mut e);
        out.push(bits(&e));
        out
    };
    let one = run_pool(1, run);
    for threads in [2, 3, 8] {
        assert!(
            run_pool(threads, run) == one,
            "{threads} threads differ from 1"
        );
    }
}
