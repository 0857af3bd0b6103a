//! Training behaviour: the SGD step against its closed form, dropout semantics, thread
//! count independence, evaluation batch-size independence, and a real learning test.

mod common;

use common::{RefNet, param_bits, prototypes, ref_cost, uniform};
use regulab_model::{
    Activation, Architecture, Evaluator, FixedKeep, Init, LinearRamp, Mlp, MlpBuilder, ModelError,
    Output, Penalty, TrainConfig, Trainer, UpdatePath, Workspace, evaluate,
};

fn sigmoid(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

/// A 2-2-2 sigmoid/softmax network with hand-chosen weights, one SGD step with L2 on a
/// batch of two examples, against the update written out by hand.
#[test]
fn one_sgd_step_with_l2_equals_closed_form() {
    let arch = Architecture::new(vec![2, 2, 2], Activation::Sigmoid, Output::Softmax).unwrap();
    // W1 [in, out], b1, W2 [in, out], b2
    let w1 = [0.1f32, -0.2, 0.3, 0.4];
    let b1 = [0.05f32, -0.05];
    let w2 = [0.5f32, -0.6, -0.7, 0.8];
    let b2 = [0.01f32, 0.02];
    let x = [1.0f32, 0.5, -0.5, 2.0];
    let labels = [1u32, 0];
    let (lr, l2) = (0.5f64, 0.1f64);

    // By hand, in f64.
    let w1d: Vec<f64> = w1.iter().map(|&v| v as f64).collect();
    let w2d: Vec<f64> = w2.iter().map(|&v| v as f64).collect();
    let (mut gw1, mut gb1, mut gw2, mut gb2) = ([0.0; 4], [0.0; 2], [0.0; 4], [0.0; 2]);
    for n in 0..2 {
        let (x0, x1) = (x[2 * n] as f64, x[2 * n + 1] as f64);
        let a = [
            x0 * w1d[0] + x1 * w1d[2] + b1[0] as f64,
            x0 * w1d[1] + x1 * w1d[3] + b1[1] as f64,
        ];
        let h = [sigmoid(a[0]), sigmoid(a[1])];
        let z = [
            h[0] * w2d[0] + h[1] * w2d[2] + b2[0] as f64,
            h[0] * w2d[1] + h[1] * w2d[3] + b2[1] as f64,
        ];
        let e = [z[0].exp(), z[1].exp()];
        let y = [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])];
        let t = [(labels[n] == 0) as u8 as f64, (labels[n] == 1) as u8 as f64];
        let d2 = [y[0] - t[0], y[1] - t[1]];
        // G2[r, j] = h_r d2_j
        gw2[0] += h[0] * d2[0];
        gw2[1] += h[0] * d2[1];
        gw2[2] += h[1] * d2[0];
        gw2[3] += h[1] * d2[1];
        gb2[0] += d2[0];
        gb2[1] += d2[1];
        // d1_r = (sum_j d2_j W2[r, j]) h_r (1 - h_r)
        let d1 = [
            (d2[0] * w2d[0] + d2[1] * w2d[1]) * h[0] * (1.0 - h[0]),
            (d2[0] * w2d[2] + d2[1] * w2d[3]) * h[1] * (1.0 - h[1]),
        ];
        gw1[0] += x0 * d1[0];
        gw1[1] += x0 * d1[1];
        gw1[2] += x1 * d1[0];
        gw1[3] += x1 * d1[1];
        gb1[0] += d1[0];
        gb1[1] += d1[1];
    }
    let step = |w: &[f64], g: &[f64], pen: f64| -> Vec<f64> {
        w.iter()
            .zip(g)
            .map(|(&w, &g)| w - lr * (g / 2.0 + pen * w))
            .collect()
    };
    let want_w1 = step(&w1d, &gw1, l2);
    let want_w2 = step(&w2d, &gw2, l2);
    let b1d: Vec<f64> = b1.iter().map(|&v| v as f64).collect();
    let b2d: Vec<f64> = b2.iter().map(|&v| v as f64).collect();
    let want_b1 = step(&b1d, &gb1, 0.0); // biases not penalised
    let want_b2 = step(&b2d, &gb2, 0.0);

    for (path, momentum) in [
        (UpdatePath::FusedGradient, 0.0),
        (UpdatePath::GradientFree, 0.0),
        // first momentum step: V = -lr d, W = W + V, the same update
        (UpdatePath::FusedGradient, 0.9),
    ] {
        let net = Mlp::from_params(
            arch.clone(),
            vec![(w1.to_vec(), b1.to_vec()), (w2.to_vec(), b2.to_vec())],
        )
        .unwrap();
        let cfg = TrainConfig {
            penalty: Penalty::new(0.0, l2 as f32),
            momentum,
            update_path: path,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(net, cfg, 2).unwrap();
        let stats = t.train_batch(&x, &labels, lr as f32).unwrap();
        assert_eq!(stats.n, 2);
        let close = |got: &[f32], want: &[f64], what: &str| {
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-6 * w.abs().max(0.1),
                    "{what} ({path:?}, mu {momentum}): got {g}, want {w}"
                );
            }
        };
        close(t.net().weight(0), &want_w1, "W1");
        close(t.net().weight(1), &want_w2, "W2");
        close(t.net().bias(0), &want_b1, "b1");
        close(t.net().bias(1), &want_b2, "b2");
        // and the weights did move
        assert!((t.net().weight(1)[0] - w2[0]).abs() > 1e-3);
        assert_eq!(t.step(), 1);
    }
}

fn small_net(act: Activation, seed: u64) -> Mlp {
    MlpBuilder::new(20)
        .hidden(16, act)
        .hidden(12, act)
        .output(4, Output::Softmax)
        .seed(seed)
        .build()
        .unwrap()
}

#[test]
fn keep_one_is_bit_identical_to_no_dropout() {
    let x = uniform(1, 8 * 20, 0.0, 1.0);
    let y = common::labels(1, 8, 4);
    let cfg = TrainConfig {
        penalty: Penalty::new(1e-3, 1e-3),
        seed: 9,
        ..TrainConfig::default()
    };
    let run = |dropout: Option<Box<dyn regulab_model::KeepSchedule>>| {
        let mut t = Trainer::new(small_net(Activation::Sigmoid, 3), cfg.clone(), 8).unwrap();
        if let Some(d) = dropout {
            t.set_dropout(d).unwrap();
        }
        let mut nll = vec![];
        for _ in 0..5 {
            nll.push(t.train_batch(&x, &y, 0.3).unwrap().nll_sum.to_bits());
        }
        (param_bits(t.net()), nll)
    };
    let plain = run(None);
    assert_eq!(plain, run(Some(Box::new(FixedKeep::new(1.0, 1.0)))));
    let ramp_to_one = LinearRamp {
        start: FixedKeep::new(1.0, 1.0),
        end: FixedKeep::new(0.5, 0.5),
        epochs: 10,
    }; // epoch 1 of this ramp: keep 1
    assert_eq!(plain, run(Some(Box::new(ramp_to_one))));
    // while real dropout changes the result
    assert_ne!(plain, run(Some(Box::new(FixedKeep::new(1.0, 0.5)))));
}

#[test]
fn dropout_is_off_at_evaluation() {
    let x = uniform(2, 16 * 20, 0.0, 1.0);
    let y = common::labels(2, 16, 4);
    let cfg = TrainConfig {
        seed: 5,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(small_net(Activation::Relu, 4), cfg, 16)
        .unwrap()
        .with_dropout(FixedKeep::new(0.5, 0.5))
        .unwrap();
    for _ in 0..3 {
        t.train_batch(&x, &y, 0.1).unwrap();
    }
    let mut ws = Workspace::new(t.net().architecture(), 16);
    let a = evaluate(t.net(), &mut ws, &x, &y, 16, &Penalty::none()).unwrap();
    // equals the deterministic (mask-free) f64 reference
    let reference = ref_cost(
        &RefNet::of(t.net()),
        &x,
        &y,
        &vec![None; t.net().n_layers()],
        &Penalty::none(),
    );
    assert!(
        (a.nll - reference.nll).abs() < 1e-6,
        "{} vs {}",
        a.nll,
        reference.nll
    );
    // the training-mode cost (with masks) is different, and masks change with the step
    let g1 = t.gradients(&x, &y).unwrap();
    t.set_step(t.step() + 1);
    let g2 = t.gradients(&x, &y).unwrap();
    assert_ne!(g1.nll, a.nll);
    assert_ne!(g1.nll, g2.nll);
    // evaluation again: same bits whatever the trainer's step
    let b = evaluate(t.net(), &mut ws, &x, &y, 5, &Penalty::none()).unwrap();
    assert_eq!(a, b);
    assert!(ws.mask(0).is_none() && ws.mask(1).is_none());
}

fn train_run(cfg: &TrainConfig, act: Activation, dropout: (f32, f32), steps: usize) -> Vec<u32> {
    let arch = Architecture::new(vec![200, 256, 128, 10], act, Output::Softmax).unwrap();
    let net = Mlp::new(arch, &Init::Glorot, 11).unwrap();
    let mut t = Trainer::new(net, cfg.clone(), 32)
        .unwrap()
        .with_dropout(FixedKeep::new(dropout.0, dropout.1))
        .unwrap();
    let (x, y) = prototypes(3, 32 * steps, 200, 10, 30, 20);
    for (xb, yb) in x.chunks(32 * 200).zip(y.chunks(32)) {
        t.train_batch(xb, yb, 0.2).unwrap();
    }
    param_bits(t.net())
}

#[test]
fn same_seed_same_weights_with_1_2_4_threads() {
    let configs = [
        (
            TrainConfig {
                penalty: Penalty::new(1e-4, 1e-3),
                seed: 1,
                update_path: UpdatePath::FusedGradient,
                ..TrainConfig::default()
            },
            Activation::Sigmoid,
            (0.8, 0.5),
        ),
        (
            TrainConfig {
                penalty: Penalty::new(0.0, 1e-3),
                momentum: 0.9,
                max_norm: Some(1.5),
                seed: 2,
                ..TrainConfig::default()
            },
            Activation::Relu,
            (1.0, 0.5),
        ),
        (
            TrainConfig {
                penalty: Penalty::new(1e-4, 0.0),
                seed: 3,
                update_path: UpdatePath::GradientFree,
                ..TrainConfig::default()
            },
            Activation::Tanh,
            (0.9, 0.7),
        ),
    ];
    for (cfg, act, dropout) in &configs {
        let runs: Vec<Vec<u32>> = [1, 2, 4]
            .iter()
            .map(|&threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| train_run(cfg, *act, *dropout, 6))
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{act:?}: 1 vs 2 threads");
        assert_eq!(runs[0], runs[2], "{act:?}: 1 vs 4 threads");
        // and twice in the same pool
        assert_eq!(runs[0], train_run(cfg, *act, *dropout, 6));
    }
}

#[test]
fn evaluation_does_not_depend_on_batch_size() {
    let net = MlpBuilder::new(50)
        .hidden(30, Activation::Tanh)
        .output(10, Output::Softmax)
        .init(Init::Glorot)
        .seed(8)
        .build()
        .unwrap();
    let (x, y) = prototypes(4, 300, 50, 10, 10, 5);
    let pen = Penalty::new(1e-3, 1e-2);
    let mut results = vec![];
    for batch in [1usize, 7, 100, 300] {
        let mut ws = Workspace::new(net.architecture(), batch);
        let mut ev = Evaluator::new();
        let mut preds = vec![];
        for (xb, yb) in x.chunks(batch * 50).zip(y.chunks(batch)) {
            preds.extend_from_slice(ev.add_batch(&net, &mut ws, xb, yb).unwrap());
        }
        let s = ev.finish(&net, &pen);
        assert_eq!(s.n, 300);
        results.push((s.nll.to_bits(), s.cost.to_bits(), s.correct, preds));
    }
    for r in &results[1..] {
        assert_eq!(*r, results[0]);
    }
    // and predictions equal Mlp::predict
    let mut ws = Workspace::new(net.architecture(), 1);
    let mut p = vec![0u32; 300];
    net.predict(&mut ws, &x, &mut p).unwrap();
    assert_eq!(p, results[0].3);
}

/// Dropout masks are keyed by the global step: a trainer restarted at step s from the
/// weights after s steps continues with the same bits (what resume relies on).
#[test]
fn step_counter_keys_the_masks() {
    let x = uniform(5, 10 * 20, 0.0, 1.0);
    let y = common::labels(5, 10, 4);
    let cfg = TrainConfig {
        seed: 21,
        penalty: Penalty::new(0.0, 1e-3),
        ..TrainConfig::default()
    };
    let new = |net: Mlp| {
        Trainer::new(net, cfg.clone(), 10)
            .unwrap()
            .with_dropout(FixedKeep::new(0.8, 0.5))
            .unwrap()
    };
    let mut a = new(small_net(Activation::Sigmoid, 1));
    a.train_batch(&x, &y, 0.2).unwrap();
    a.train_batch(&x, &y, 0.2).unwrap();
    let mut b = new(a.net().clone());
    b.restore_state(a.state()).unwrap();
    assert_eq!(b.step(), 2);
    a.train_batch(&x, &y, 0.2).unwrap();
    b.train_batch(&x, &y, 0.2).unwrap();
    assert_eq!(param_bits(a.net()), param_bits(b.net()));
    // a different step gives a different mask, hence different weights
    let mut c = new(small_net(Activation::Sigmoid, 1));
    c.set_step(100);
    let mut d = new(small_net(Activation::Sigmoid, 1));
    c.train_batch(&x, &y, 0.2).unwrap();
    d.train_batch(&x, &y, 0.2).unwrap();
    assert_ne!(param_bits(c.net()), param_bits(d.net()));
}

#[test]
fn max_norm_bounds_every_unit() {
    let cfg = TrainConfig {
        max_norm: Some(0.5),
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(small_net(Activation::Relu, 2), cfg, 10).unwrap();
    let x = uniform(6, 10 * 20, 0.0, 1.0);
    let y = common::labels(6, 10, 4);
    for _ in 0..20 {
        t.train_batch(&x, &y, 2.0).unwrap();
    }
    let mut some_at_bound = false;
    for l in t.net().layers() {
        for j in 0..l.n_out() {
            let norm: f64 = (0..l.n_in())
                .map(|r| (l.weight()[r * l.n_out() + j] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(norm <= 0.5 * (1.0 + 1e-6), "norm {norm}");
            some_at_bound |= norm > 0.499;
        }
    }
    assert!(some_at_bound, "the constraint was active");
}

#[test]
fn update_paths_agree_up_to_rounding() {
    let x = uniform(7, 10 * 20, 0.0, 1.0);
    let y = common::labels(7, 10, 4);
    let run = |path| {
        let cfg = TrainConfig {
            penalty: Penalty::new(1e-3, 1e-2),
            update_path: path,
            seed: 4,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(small_net(Activation::Tanh, 5), cfg, 10)
            .unwrap()
            .with_dropout(FixedKeep::new(0.9, 0.8))
            .unwrap();
        for _ in 0..10 {
            t.train_batch(&x, &y, 0.3).unwrap();
        }
        t.into_net()
    };
    let (a, b) = (
        run(UpdatePath::FusedGradient),
        run(UpdatePath::GradientFree),
    );
    for i in 0..a.n_layers() {
        for (p, q) in a.weight(i).iter().zip(b.weight(i)) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        for (p, q) in a.bias(i).iter().zip(b.bias(i)) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let mut t = Trainer::new(small_net(Activation::Relu, 1), TrainConfig::default(), 4).unwrap();
    let x = uniform(1, 4 * 20, 0.0, 1.0);
    assert!(matches!(
        t.train_batch(&x, &[], 0.1),
        Err(ModelError::EmptyBatch)
    ));
    assert!(matches!(
        t.train_batch(&x[..79], &[0, 1, 2, 3], 0.1),
        Err(ModelError::InputShape { found: 79, .. })
    ));
    assert!(matches!(
        t.train_batch(&x, &[0, 1, 4, 3], 0.1),
        Err(ModelError::LabelOutOfRange {
            row: 2,
            label: 4,
            classes: 4
        })
    ));
    assert!(matches!(
        t.train_batch(&x, &[0, 1, 2, 3], f32::NAN),
        Err(ModelError::InvalidConfig {
            field: "learning_rate",
            ..
        })
    ));
    assert!(matches!(
        t.set_dropout(Box::new(FixedKeep::new(0.0, 0.5))),
        Err(ModelError::DropoutKeep { layer: 0, .. })
    ));
    assert!(matches!(
        t.set_dropout(Box::new(FixedKeep::new(1.0, 1.5))),
        Err(ModelError::DropoutKeep { layer: 1, .. })
    ));
    let bad = TrainConfig {
        momentum: 1.0,
        ..TrainConfig::default()
    };
    assert!(matches!(
        Trainer::new(small_net(Activation::Relu, 1), bad, 4),
        Err(ModelError::InvalidConfig {
            field: "momentum",
            ..
        })
    ));
    // a workspace of another architecture
    let other = Architecture::new(vec![20, 5, 4], Activation::Relu, Output::Softmax).unwrap();
    let mut ws = Workspace::new(&other, 4);
    assert!(matches!(
        Evaluator::new().add_batch(t.net(), &mut ws, &x, &[0, 1, 2, 3]),
        Err(ModelError::WorkspaceMismatch { .. })
    ));
    // the workspace grows for a larger batch
    let x8 = uniform(2, 8 * 20, 0.0, 1.0);
    t.train_batch(&x8, &[0, 1, 2, 3, 0, 1, 2, 3], 0.1).unwrap();
    assert_eq!(t.workspace().capacity(), 8);
}

/// 784-100-10 on a synthetic learnable problem: cost falls and accuracy rises, on the
/// training set and on held-out examples.
#[test]
fn learns_a_synthetic_problem() {
    let (x, y) = prototypes(100, 1000, 784, 10, 24, 200);
    let (xt, yt) = prototypes(200, 500, 784, 10, 24, 200);
    let net = MlpBuilder::new(784)
        .hidden(100, Activation::Sigmoid)
        .output(10, Output::Softmax)
        .seed(1)
        .build()
        .unwrap();
    let pen = Penalty::new(0.0, 1e-5);
    let cfg = TrainConfig {
        penalty: pen,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, cfg, 10).unwrap();
    let mut ws = Workspace::new(t.net().architecture(), 500);
    let start = evaluate(t.net(), &mut ws, &x, &y, 500, &pen).unwrap();
    let mut epochs = vec![start];
    for epoch in 1..=5 {
        t.set_epoch(epoch).unwrap();
        for (xb, yb) in x.chunks(10 * 784).zip(y.chunks(10)) {
            t.train_batch(xb, yb, 0.5).unwrap();
        }
        epochs.push(evaluate(t.net(), &mut ws, &x, &y, 500, &pen).unwrap());
    }
    let end = epochs.last().unwrap();
    let test = evaluate(t.net(), &mut ws, &xt, &yt, 500, &pen).unwrap();
    for (e, s) in epochs.iter().enumerate() {
        println!(
            "epoch {e}: cost {:.4} (nll {:.4} + penalty {:.2e}) acc {:.3}",
            s.cost, s.nll, s.penalty, s.accuracy
        );
    }
    println!("held out: cost {:.4} acc {:.3}", test.cost, test.accuracy);
    assert!(start.cost > 2.0 && start.accuracy < 0.25, "{start:?}");
    assert!(end.cost < 0.3, "{end:?}");
    assert!(end.accuracy > 0.95, "{end:?}");
    assert!(test.accuracy > 0.8 && test.cost < 1.0, "{test:?}");
    assert!(epochs[1].cost < start.cost && end.cost < epochs[1].cost);
}

#[test]
fn layer_inputs_are_the_dropped_out_activations() {
    let x = uniform(2, 8 * 20, 0.1, 1.0);
    let y = common::labels(2, 8, 4);
    let mut t = Trainer::new(small_net(Activation::Sigmoid, 5), TrainConfig::default(), 8)
        .unwrap()
        .with_dropout(FixedKeep::new(0.5, 0.5))
        .unwrap();
    t.train_batch(&x, &y, 0.1).unwrap();
    let ws = t.workspace();
    // layer 0: the batch with dropped inputs zeroed and the kept ones scaled by 1/0.5
    let inp = ws.layer_input(0).unwrap();
    assert_eq!(inp.len(), 8 * 20);
    let (mut kept, mut dropped) = (0, 0);
    for (&v, &x) in inp.iter().zip(&x) {
        if v == 0.0 {
            dropped += 1;
        } else {
            assert_eq!(v, x * 2.0);
            kept += 1;
        }
    }
    assert!(kept > 40 && dropped > 40, "kept {kept}, dropped {dropped}");
    // hidden layers: sigmoid outputs (never 0) with dropout zeros
    for i in 1..3 {
        let h = ws.layer_input(i).unwrap();
        assert_eq!(h.len(), 8 * [16, 12][i - 1]);
        let zeros = h.iter().filter(|v| **v == 0.0).count();
        assert!(zeros > 0 && zeros < h.len(), "layer {i}: {zeros} zeros");
    }
    assert!(ws.layer_input(3).is_none());
    // without input dropout, layer 0's input is the batch itself (not copied)
    let mut t = Trainer::new(small_net(Activation::Sigmoid, 5), TrainConfig::default(), 8).unwrap();
    t.train_batch(&x, &y, 0.1).unwrap();
    assert!(t.workspace().layer_input(0).is_none());
    assert_eq!(t.workspace().layer_input(1).unwrap().len(), 8 * 16);
}
