//! Finite-difference gradient checks of the model's analytic gradient (the same backward
//! code as training) against central differences of an independent f64 reference cost.
//!
//! Method: the model's f32 parameters are cast to f64 (exactly); each parameter `θ` is
//! moved by `±h` (`h = 1e-6`) in the f64 reference and `(C(θ+h) - C(θ-h)) / 2h` is
//! compared with the model's f32 gradient. The f64 difference quotient has truncation
//! error `O(h^2 |C'''|) ~ 1e-12` and rounding error `~ 1e-16 |C| / h ~ 1e-10`, so it is the
//! exact derivative to ~1e-9; what the tolerance measures is the model's f32 arithmetic:
//! a handful of roundings of relative size 6e-8 per term, plus cancellation in sums of
//! at most a few dozen terms. We require, for every parameter,
//! `|g_model - g_fd| <= RTOL * |g_fd| + ATOL` with `RTOL = 1e-4`, `ATOL = 1e-6` (gradient
//! entries are O(1e-3 .. 1) here), and print the largest errors seen.
//!
//! Kinks are avoided: ReLU nets are only checked when every hidden pre-activation is at
//! least 1e-3 away from 0 (h moves a pre-activation by at most ~1e-6), and no weight lies
//! within 1e-3 of 0 (the L1 kink; such weights are moved to +-1e-3 before the check).
//!
//! Both penalty conventions are checked. Under `mean` the reference cost is
//! `(1/B) sum_n loss_n + l1 sum|w| + l2/2 sum w^2`; under `lab2015` it is the objective
//! whose gradient the 2015 lab's step follows, written from its definition (the penalty
//! gradient added to the summed batch gradient, then divided by `B`, biases included):
//! `(1/B) (sum_n loss_n + l1 sum|θ| + l2/2 sum θ^2)` over weights and biases, in f64
//! with the coefficients as given (never the model's f32 quotients `l1 / B`).

mod common;

use common::{RefMask, RefNet, ref_cost, uniform};
use regulab_model::{
    Activation, FixedKeep, Init, Mlp, Output, Penalty, PenaltyConvention, TrainConfig, Trainer,
};

const H: f64 = 1e-6;
const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-6;

const ACTS: [Activation; 4] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::Identity,
];

struct Case {
    act: Activation,
    output: Output,
    hidden_layers: usize,
    penalty: Penalty,
    convention: PenaltyConvention,
    dropout: Option<(f32, f32)>,
}

/// The reference cost of `case` at `r`: data cost and penalty (see the module docs for
/// the two conventions).
fn reference(case: &Case, r: &RefNet, x: &[f32], y: &[u32], masks: &[RefMask]) -> common::RefCost {
    match case.convention {
        PenaltyConvention::Mean => ref_cost(r, x, y, masks, &case.penalty),
        PenaltyConvention::Lab2015 => {
            let all = Penalty {
                penalize_biases: true,
                ..case.penalty
            };
            let c = ref_cost(r, x, y, masks, &all);
            common::RefCost {
                penalty: c.penalty / y.len() as f64,
                ..c
            }
        }
    }
}

/// Worst errors of one check.
#[derive(Default, Debug, Clone, Copy)]
struct Worst {
    abs: f64,
    rel: f64,   // over entries with |g_fd| > 1e-3
    ratio: f64, // |err| / (RTOL |g| + ATOL): must stay <= 1
    params: usize,
}

fn net_for(case: &Case, seed: u64) -> Mlp {
    let mut sizes = vec![5];
    sizes.extend(std::iter::repeat_n(4, case.hidden_layers));
    sizes.push(3);
    let arch = regulab_model::Architecture::new(sizes, case.act, case.output).unwrap();
    let mut net = Mlp::new(
        arch,
        &Init::Uniform {
            hidden: 0.9,
            output: 0.9,
        },
        seed,
    )
    .unwrap();
    // non-zero biases, and no parameter near the L1 kink
    for i in 0..net.n_layers() {
        let n = net.bias(i).len();
        net.bias_mut(i)
            .copy_from_slice(&uniform(seed * 31 + i as u64, n, -0.5, 0.5));
        let layer = &mut net.layers_mut()[i];
        let fix = |v: &mut f32| {
            if v.abs() < 1e-3 {
                *v = if *v < 0.0 { -1e-3 } else { 1e-3 };
            }
        };
        layer.weight_mut().iter_mut().for_each(fix);
        layer.bias_mut().iter_mut().for_each(fix);
    }
    net
}

/// Runs the check for one case (trying seeds until ReLU kinks are far away).
fn check(case: &Case) -> Worst {
    let rows = 4;
    for seed in 1..200u64 {
        let net = net_for(case, seed);
        let x = uniform(seed + 1000, rows * 5, 0.0, 1.0);
        let y = common::labels(seed, rows, 3);
        let cfg = TrainConfig {
            penalty: case.penalty,
            convention: case.convention,
            seed: seed + 7,
            ..TrainConfig::default()
        };
        let mut tr = Trainer::new(net.clone(), cfg, rows).unwrap();
        if let Some((pi, ph)) = case.dropout {
            tr = tr.with_dropout(FixedKeep::new(pi, ph)).unwrap();
        }
        let g = tr.gradients(&x, &y).unwrap();
        // the masks the model used (fixed for the whole check)
        let masks: Vec<RefMask> = (0..net.n_layers())
            .map(|l| {
                tr.workspace()
                    .mask(l)
                    .map(|(m, k)| ((0..m.len()).map(|i| m.kept(i)).collect(), k as f64))
            })
            .collect();
        if case.dropout.is_some() {
            assert!(masks.iter().all(|m| m.is_some()), "every layer dropped");
            // a mask that drops something and keeps something
            let m0 = masks[0].as_ref().unwrap();
            assert!(m0.0.iter().any(|&k| k) && m0.0.iter().any(|&k| !k));
        }
        let mut r = RefNet::of(&net);
        let base = reference(case, &r, &x, &y, &masks);
        if case.act == Activation::Relu && base.min_abs_hidden < 1e-3 {
            continue;
        }
        // the cost parts agree too
        assert!(
            (g.nll - base.nll).abs() <= 1e-6 * base.nll.abs().max(1.0),
            "nll"
        );
        assert!(
            (g.penalty - base.penalty).abs() <= 1e-6 * base.penalty.abs().max(1e-3),
            "penalty {} vs {}",
            g.penalty,
            base.penalty
        );
        let mut worst = Worst::default();
        let total = |r: &RefNet| {
            let c = reference(case, r, &x, &y, &masks);
            c.nll + c.penalty
        };
        for i in 0..net.n_layers() {
            for (is_bias, model) in [(false, &g.weights[i]), (true, &g.biases[i])] {
                for (k, &analytic) in model.iter().enumerate() {
                    let orig = if is_bias { r.b[i][k] } else { r.w[i][k] };
                    let set = |r: &mut RefNet, v: f64| {
                        if is_bias {
                            r.b[i][k] = v
                        } else {
                            r.w[i][k] = v
                        }
                    };
                    set(&mut r, orig + H);
                    let cp = total(&r);
                    set(&mut r, orig - H);
                    let cm = total(&r);
                    set(&mut r, orig);
                    let fd = (cp - cm) / (2.0 * H);
                    let a = analytic as f64;
                    let err = (a - fd).abs();
                    worst.abs = worst.abs.max(err);
                    if fd.abs() > 1e-3 {
                        worst.rel = worst.rel.max(err / fd.abs());
                    }
                    let ratio = err / (RTOL * fd.abs() + ATOL);
                    worst.ratio = worst.ratio.max(ratio);
                    worst.params += 1;
                    assert!(
                        ratio <= 1.0,
                        "{:?}/{:?}/{} hidden/{:?} {:?}/dropout {:?}: layer {i} {} {k}: model {a} fd {fd}",
                        case.act,
                        case.output,
                        case.hidden_layers,
                        case.penalty,
                        case.convention,
                        case.dropout,
                        if is_bias { "bias" } else { "weight" },
                    );
                }
            }
        }
        return worst;
    }
    panic!("no seed keeps the ReLU pre-activations away from 0");
}

fn penalties() -> [(&'static str, Penalty); 4] {
    [
        ("none", Penalty::none()),
        ("l1", Penalty::new(0.01, 0.0)),
        ("l2", Penalty::new(0.0, 0.05)),
        ("both", Penalty::new(0.01, 0.05)),
    ]
}

fn run_grid(output: Output) {
    let mut all = Worst::default();
    let mut n = 0;
    for act in ACTS {
        for hidden_layers in 1..=3 {
            for (_, penalty) in penalties() {
                let w = check(&Case {
                    act,
                    output,
                    hidden_layers,
                    penalty,
                    convention: PenaltyConvention::Mean,
                    dropout: None,
                });
                all.abs = all.abs.max(w.abs);
                all.rel = all.rel.max(w.rel);
                all.ratio = all.ratio.max(w.ratio);
                all.params += w.params;
                n += 1;
            }
        }
    }
    assert_eq!(n, 48);
    println!(
        "{output:?}: {n} nets, {} parameters checked; max |err| {:.3e}, max rel err {:.3e} (|g| > 1e-3), max err/tol {:.3}",
        all.params, all.abs, all.rel, all.ratio
    );
}

#[test]
fn gradients_softmax_cross_entropy_every_activation_depth_and_penalty() {
    run_grid(Output::Softmax);
}

#[test]
fn gradients_linear_squared_error_every_activation_depth_and_penalty() {
    run_grid(Output::Linear);
}

#[test]
fn gradients_with_penalised_biases() {
    for act in ACTS {
        for output in [Output::Softmax, Output::Linear] {
            check(&Case {
                act,
                output,
                hidden_layers: 2,
                penalty: Penalty {
                    l1: 0.02,
                    l2: 0.1,
                    penalize_biases: true,
                },
                convention: PenaltyConvention::Mean,
                dropout: None,
            });
        }
    }
}

/// Dropout: the gradient of the masked network (the masks the model drew, fixed).
#[test]
fn gradients_with_fixed_dropout_masks() {
    let mut worst = Worst::default();
    for act in ACTS {
        for output in [Output::Softmax, Output::Linear] {
            for hidden_layers in 1..=3 {
                let w = check(&Case {
                    act,
                    output,
                    hidden_layers,
                    penalty: Penalty::new(0.01, 0.05),
                    convention: PenaltyConvention::Mean,
                    dropout: Some((0.8, 0.6)),
                });
                worst.abs = worst.abs.max(w.abs);
                worst.rel = worst.rel.max(w.rel);
                worst.ratio = worst.ratio.max(w.ratio);
            }
        }
    }
    println!(
        "dropout: max |err| {:.3e}, max rel err {:.3e}, max err/tol {:.3}",
        worst.abs, worst.rel, worst.ratio
    );
}

/// The 2015 lab's convention: the gradient of `(1/B) (sum_n loss_n + l1 sum|θ| +
/// l2/2 sum θ^2)`, biases included whatever `penalize_biases` says, with and without
/// dropout. The coefficients are large enough that reading them under the `mean`
/// convention (4 times stronger at B = 4, biases unpenalised) would fail the check by
/// orders of magnitude: `(1 - 1/4) * 0.04 = 0.03` against a tolerance of ~1e-6.
#[test]
fn gradients_lab2015_convention() {
    let mut worst = Worst::default();
    let mut n = 0;
    for act in ACTS {
        for output in [Output::Softmax, Output::Linear] {
            for hidden_layers in 1..=2 {
                for (penalty, dropout) in [
                    (Penalty::new(0.04, 0.0), None),
                    (Penalty::new(0.0, 0.2), None),
                    (Penalty::new(0.04, 0.2), None),
                    (Penalty::new(0.04, 0.2), Some((0.8, 0.6))),
                ] {
                    let w = check(&Case {
                        act,
                        output,
                        hidden_layers,
                        penalty,
                        convention: PenaltyConvention::Lab2015,
                        dropout,
                    });
                    worst.abs = worst.abs.max(w.abs);
                    worst.rel = worst.rel.max(w.rel);
                    worst.ratio = worst.ratio.max(w.ratio);
                    worst.params += w.params;
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 64);
    println!(
        "lab2015: {n} nets, {} parameters checked; max |err| {:.3e}, max rel err {:.3e}, max err/tol {:.3}",
        worst.params, worst.abs, worst.rel, worst.ratio
    );
}

/// The check can tell the conventions apart: the lab2015 gradient of a net is not the
/// mean-convention gradient of the same coefficients (so a trainer ignoring the
/// convention fails `gradients_lab2015_convention`).
#[test]
fn lab2015_gradient_differs_from_mean_gradient() {
    let case = |convention| Case {
        act: Activation::Sigmoid,
        output: Output::Softmax,
        hidden_layers: 1,
        penalty: Penalty::new(0.04, 0.2),
        convention,
        dropout: None,
    };
    let grads = |c: &Case| {
        let net = net_for(c, 1);
        let x = uniform(1001, 4 * 5, 0.0, 1.0);
        let y = common::labels(1, 4, 3);
        let cfg = TrainConfig {
            penalty: c.penalty,
            convention: c.convention,
            seed: 8,
            ..TrainConfig::default()
        };
        Trainer::new(net, cfg, 4)
            .unwrap()
            .gradients(&x, &y)
            .unwrap()
    };
    let lab = grads(&case(PenaltyConvention::Lab2015));
    let mean = grads(&case(PenaltyConvention::Mean));
    let max_diff = lab.weights[0]
        .iter()
        .zip(&mean.weights[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff > 0.02, "{max_diff}");
    // biases: penalised under lab2015 only
    assert!(
        lab.biases[0]
            .iter()
            .zip(&mean.biases[0])
            .any(|(a, b)| a != b)
    );
    assert!((lab.penalty - mean.penalty).abs() > 0.01 * mean.penalty);
}
