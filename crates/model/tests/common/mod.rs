//! Shared helpers of the model's integration tests: deterministic random data, a
//! synthetic learnable classification problem, and an independent f64 reference
//! implementation of the network's cost.
#![allow(dead_code)]

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use regulab_model::{Activation, Mlp, Output, Penalty};

/// Uniform f32 in [0, 1) from a u32 word (24 bits).
pub fn unit(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / 16_777_216.0
}

/// `rows x cols` uniform values in [lo, hi).
pub fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| lo + (hi - lo) * unit(&mut rng)).collect()
}

/// `n` labels in `0..classes`.
pub fn labels(seed: u64, n: usize, classes: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1abe1);
    (0..n).map(|_| rng.next_u32() % classes as u32).collect()
}

/// A synthetic "digits-like" problem: each of `classes` classes has a prototype made of
/// `active` random pixels (of `d`); an example of class `c` shows each prototype pixel
/// with probability 1/2 and `noise` random extra pixels, each lit pixel with an
/// intensity in [0.5, 1). Labels are balanced and in random order. Deterministic in `seed`.
pub fn prototypes(
    seed: u64,
    n: usize,
    d: usize,
    classes: usize,
    active: usize,
    noise: usize,
) -> (Vec<f32>, Vec<u32>) {
    let mut proto_rng = ChaCha8Rng::seed_from_u64(0xC1A55);
    let protos: Vec<Vec<usize>> = (0..classes)
        .map(|_| {
            (0..active)
                .map(|_| proto_rng.next_u32() as usize % d)
                .collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0.0f32; n * d];
    let mut y = Vec::with_capacity(n);
    for r in 0..n {
        let c = rng.next_u32() as usize % classes;
        y.push(c as u32);
        let row = &mut x[r * d..(r + 1) * d];
        for &p in &protos[c] {
            if rng.next_u32() & 1 == 1 {
                row[p] = 0.5 + 0.5 * unit(&mut rng);
            }
        }
        for _ in 0..noise {
            let p = rng.next_u32() as usize % d;
            row[p] = 0.5 + 0.5 * unit(&mut rng);
        }
    }
    (x, y)
}

/// The f64 reference network: the model's f32 parameters cast to f64 (exactly).
#[derive(Clone, Debug)]
pub struct RefNet {
    pub sizes: Vec<usize>,
    pub acts: Vec<Activation>,
    pub output: Output,
    pub w: Vec<Vec<f64>>,
    pub b: Vec<Vec<f64>>,
}

impl RefNet {
    pub fn of(net: &Mlp) -> RefNet {
        let a = net.architecture();
        RefNet {
            sizes: a.sizes.clone(),
            acts: a.hidden.clone(),
            output: a.output,
            w: (0..net.n_layers())
                .map(|i| net.weight(i).iter().map(|&v| v as f64).collect())
                .collect(),
            b: (0..net.n_layers())
                .map(|i| net.bias(i).iter().map(|&v| v as f64).collect())
                .collect(),
        }
    }
}

pub fn act_f64(act: Activation, a: f64) -> f64 {
    match act {
        Activation::Sigmoid => 1.0 / (1.0 + (-a.clamp(-30.0, 30.0)).exp()),
        Activation::Tanh => a.tanh(),
        Activation::Relu => a.max(0.0),
        Activation::Identity => a,
    }
}

/// A dropout mask for the reference: per element kept?, and the keep probability.
pub type RefMask = Option<(Vec<bool>, f64)>;

/// Result of the reference forward pass.
pub struct RefCost {
    /// Mean data cost.
    pub nll: f64,
    /// Penalty.
    pub penalty: f64,
    /// Smallest |pre-activation| of any hidden unit (ReLU kink distance).
    pub min_abs_hidden: f64,
}

/// The cost `(1/B) sum_n loss_n + l1 sum|w| + l2/2 sum w^2`, in f64, example by example.
pub fn ref_cost(r: &RefNet, x: &[f32], labels: &[u32], masks: &[RefMask], p: &Penalty) -> RefCost {
    let l = r.sizes.len() - 1;
    let d = r.sizes[0];
    let rows = labels.len();
    let mut nll = 0.0;
    let mut min_abs = f64::INFINITY;
    for n in 0..rows {
        let mut cur: Vec<f64> = x[n * d..(n + 1) * d].iter().map(|&v| v as f64).collect();
        for (i, mask) in masks.iter().enumerate().take(l) {
            let (n_in, n_out) = (r.sizes[i], r.sizes[i + 1]);
            if let Some((m, keep)) = mask {
                for (j, c) in cur.iter_mut().enumerate() {
                    *c = if m[n * n_in + j] { *c / keep } else { 0.0 };
                }
            }
            let mut a = r.b[i].clone();
            for (k, &c) in cur.iter().enumerate() {
                for (j, aj) in a.iter_mut().enumerate() {
                    *aj += c * r.w[i][k * n_out + j];
                }
            }
            if i + 1 < l {
                for &v in &a {
                    min_abs = min_abs.min(v.abs());
                }
                cur = a.iter().map(|&v| act_f64(r.acts[i], v)).collect();
            } else {
                let t = labels[n] as usize;
                nll += match r.output {
                    Output::Softmax => {
                        let mx = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let lse = mx + a.iter().map(|&v| (v - mx).exp()).sum::<f64>().ln();
                        lse - a[t]
                    }
                    Output::Linear => {
                        0.5 * a
                            .iter()
                            .enumerate()
                            .map(|(j, &v)| {
                                let e = v - if j == t { 1.0 } else { 0.0 };
                                e * e
                            })
                            .sum::<f64>()
                    }
                };
            }
        }
    }
    let mut sum_abs = 0.0;
    let mut sum_sq = 0.0;
    for i in 0..l {
        let mut add = |v: &[f64]| {
            for &x in v {
                sum_abs += x.abs();
                sum_sq += x * x;
            }
        };
        add(&r.w[i]);
        if p.penalize_biases {
            add(&r.b[i]);
        }
    }
    RefCost {
        nll: nll / rows as f64,
        penalty: p.l1 as f64 * sum_abs + p.l2 as f64 * 0.5 * sum_sq,
        min_abs_hidden: min_abs,
    }
}

/// All parameters' bits, for exact comparisons.
pub fn param_bits(net: &Mlp) -> Vec<u32> {
    net.layers()
        .iter()
        .flat_map(|l| l.weight().iter().chain(l.bias()).map(|v| v.to_bits()))
        .collect()
}
