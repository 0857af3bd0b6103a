//! The two penalty conventions ([`PenaltyConvention`]): `lab2015` is the `mean` step
//! with the coefficients divided by the batch size and the biases penalised, bit for bit,
//! on every update path (G-free, fused gradient, momentum); and its step is the 2015 lab's
//! literal update `W <- W - (lr/B) (G + l2 W + l1 sgn W)` up to f32 rounding.

mod common;

use common::{param_bits, uniform};
use regulab_model::{
    Activation, FixedKeep, Mlp, MlpBuilder, Output, Penalty, PenaltyConvention, TrainConfig,
    Trainer, UpdatePath,
};

const B: usize = 10;

fn net(seed: u64) -> Mlp {
    MlpBuilder::new(20)
        .hidden(16, Activation::Sigmoid)
        .hidden(12, Activation::Tanh)
        .output(4, Output::Softmax)
        .seed(seed)
        .build()
        .unwrap()
}

/// (update path, momentum) combinations: every way a step updates the weights.
const PATHS: [(UpdatePath, f32); 3] = [
    (UpdatePath::GradientFree, 0.0),
    (UpdatePath::FusedGradient, 0.0),
    (UpdatePath::FusedGradient, 0.9),
];

/// Train `steps` steps of batch `B` (with dropout), return the parameter bits, the
/// per-step statistics and the reported penalty after training.
fn train(
    convention: PenaltyConvention,
    penalty: Penalty,
    (path, momentum): (UpdatePath, f32),
    steps: usize,
) -> (Vec<u32>, Vec<(u64, usize)>, f64) {
    let cfg = TrainConfig {
        penalty,
        convention,
        momentum,
        update_path: path,
        seed: 5,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net(3), cfg, B)
        .unwrap()
        .with_dropout(FixedKeep::new(0.9, 0.7))
        .unwrap();
    let mut stats = Vec::new();
    for s in 0..steps as u64 {
        let x = uniform(100 + s, B * 20, 0.0, 1.0);
        let y = common::labels(100 + s, B, 4);
        let st = t.train_batch(&x, &y, 0.4).unwrap();
        stats.push((st.nll_sum.to_bits(), st.correct));
    }
    let reported = t.net().penalty(&t.config().per_example_penalty(B));
    (param_bits(t.net()), stats, reported)
}

/// Coefficients as a user writes them: the lab's number `c` and its mean-convention
/// equivalent `c / 10`, both decimals. For these (the lab's table: L1 1e-4, L2 1e-5) the
/// f32 quotient `f32(c) / 10` rounds to `f32(c / 10)`, so the runs agree bit for bit;
/// `0.25` is exact in binary, so its quotient is the correctly rounded `0.025`.
const PAIRS: [(f32, f32); 4] = [(1e-4, 1e-5), (1e-5, 1e-6), (1e-6, 1e-7), (0.25, 0.025)];

#[test]
fn lab2015_with_b_times_x_is_mean_with_x_and_biases_bit_for_bit() {
    for &(lab, mean) in &PAIRS {
        // the precondition, checked: f32(lab) / 10 rounds to f32(mean)
        assert_eq!(lab / B as f32, mean, "{lab} / {B}");
        for path in PATHS {
            let a = train(PenaltyConvention::Lab2015, Penalty::new(lab, lab), path, 6);
            let b = train(
                PenaltyConvention::Mean,
                Penalty {
                    l1: mean,
                    l2: mean,
                    penalize_biases: true,
                },
                path,
                6,
            );
            assert_eq!(a.0, b.0, "parameters, lab {lab}, {path:?}");
            assert_eq!(a.1, b.1, "step statistics, lab {lab}, {path:?}");
            assert_eq!(a.2.to_bits(), b.2.to_bits(), "reported penalty, {path:?}");
            // and the convention matters: the same numbers under `mean` differ
            let c = train(
                PenaltyConvention::Mean,
                Penalty {
                    l1: lab,
                    l2: lab,
                    penalize_biases: true,
                },
                path,
                6,
            );
            assert_ne!(a.0, c.0, "lab {lab}, {path:?}");
        }
    }
}

/// Where `f32(c) / B` does not round to the decimal `c / B`, the two configs differ by
/// that one rounding of the coefficient, and so do their runs: lab4's `1e-3` at batch 10
/// gives `f32(1e-3) / 10 = 1.00000005e-4`, one ulp above `f32(1e-4)`. `lab2015` with
/// `c` is still `mean` with the f32 quotient, bit for bit.
#[test]
fn lab2015_is_mean_with_the_f32_quotient() {
    let c = 1e-3f32;
    let q = c / B as f32;
    assert_eq!(q.to_bits(), 1e-4f32.to_bits() + 1, "one ulp apart");
    for path in PATHS {
        let a = train(PenaltyConvention::Lab2015, Penalty::new(c, c), path, 4);
        let b = train(
            PenaltyConvention::Mean,
            Penalty {
                l1: q,
                l2: q,
                penalize_biases: true,
            },
            path,
            4,
        );
        assert_eq!(a.0, b.0, "{path:?}");
        assert_eq!(a.1, b.1, "{path:?}");
        assert_eq!(a.2.to_bits(), b.2.to_bits(), "{path:?}");
    }
}

/// One lab2015 step on each update path against the lab's update written out in f64:
/// `θ <- θ - (lr/B) (G + l2 θ + l1 sgn θ)` for weights and biases, with `G` the summed
/// data gradient (from [`Trainer::gradients`] without penalty, times `B`).
#[test]
fn lab2015_step_is_the_labs_update() {
    let (l1, l2, lr) = (0.02f32, 0.05f32, 0.4f32);
    let x = uniform(9, B * 20, 0.0, 1.0);
    let y = common::labels(9, B, 4);
    let start = net(4);
    let data_grad = {
        let cfg = TrainConfig {
            seed: 5,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(start.clone(), cfg, B).unwrap();
        t.gradients(&x, &y).unwrap()
    };
    for (path, momentum) in PATHS {
        let cfg = TrainConfig {
            penalty: Penalty::new(l1, l2),
            convention: PenaltyConvention::Lab2015,
            momentum,
            update_path: path,
            seed: 5,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(start.clone(), cfg, B).unwrap();
        t.train_batch(&x, &y, lr).unwrap();
        let mut worst = 0.0f64;
        let mut moved_by_penalty = 0.0f64;
        for i in 0..start.n_layers() {
            let tensors = [
                (start.weight(i), t.net().weight(i), &data_grad.weights[i]),
                (start.bias(i), t.net().bias(i), &data_grad.biases[i]),
            ];
            for (before, after, mean_grad) in tensors {
                for ((&w, &w1), &g) in before.iter().zip(after).zip(mean_grad.iter()) {
                    let (w, g) = (w as f64, g as f64 * B as f64);
                    let sgn = if w > 0.0 {
                        1.0
                    } else if w < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    let pen = l2 as f64 * w + l1 as f64 * sgn;
                    let expected = w - (lr as f64 / B as f64) * (g + pen);
                    worst = worst.max((w1 as f64 - expected).abs());
                    moved_by_penalty = moved_by_penalty.max((lr as f64 / B as f64 * pen).abs());
                }
            }
        }
        assert!(
            worst < 1e-6,
            "{path:?} momentum {momentum}: max error {worst:e}"
        );
        // the penalty's share of the step is far above the tolerance, biases included
        assert!(moved_by_penalty > 1e-3, "{moved_by_penalty}");
    }
}
