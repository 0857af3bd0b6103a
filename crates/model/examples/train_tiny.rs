//! Trains a tiny MLP on a synthetic problem and prints cost and accuracy per epoch.
//!
//! `cargo run -p regulab-model --example train_tiny`
//!
//! The data: 8 classes, each a random "prototype" of 12 lit pixels out of 64; an example
//! shows each prototype pixel with probability 1/2 plus 16 random noise pixels. The
//! network is 64-32-8 (sigmoid, softmax), trained with SGD (batch 10, lr 0.5, newbob
//! schedule on the validation error), L2 1e-4 and dropout keep (0.9, 0.8).

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use regulab_model::{
    Activation, FixedKeep, LrSchedule, MlpBuilder, NewBob, Output, Penalty, TrainConfig, Trainer,
    Workspace, evaluate,
};

const D: usize = 64;
const CLASSES: usize = 8;

fn data(seed: u64, n: usize) -> (Vec<f32>, Vec<u32>) {
    let mut protos = ChaCha8Rng::seed_from_u64(1234);
    let protos: Vec<Vec<usize>> = (0..CLASSES)
        .map(|_| (0..12).map(|_| protos.next_u32() as usize % D).collect())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0.0f32; n * D];
    let mut y = Vec::with_capacity(n);
    for row in x.chunks_exact_mut(D) {
        let c = rng.next_u32() as usize % CLASSES;
        y.push(c as u32);
        for &p in &protos[c] {
            if rng.next_u32() & 1 == 1 {
                row[p] = 1.0;
            }
        }
        for _ in 0..16 {
            row[rng.next_u32() as usize % D] = 1.0;
        }
    }
    (x, y)
}

fn main() -> Result<(), regulab_model::ModelError> {
    let (x, y) = data(1, 500);
    let (xv, yv) = data(2, 500);
    let net = MlpBuilder::new(D)
        .hidden(32, Activation::Sigmoid)
        .output(CLASSES, Output::Softmax)
        .seed(7)
        .build()?;
    let penalty = Penalty::new(0.0, 1e-4);
    let cfg = TrainConfig {
        penalty,
        seed: 7,
        ..TrainConfig::default()
    };
    let batch = 10;
    let mut trainer = Trainer::new(net, cfg, batch)?.with_dropout(FixedKeep::new(0.9, 0.8))?;
    let mut schedule = LrSchedule::NewBob(NewBob::new(0.5, 0.002, 40));
    let mut ws = Workspace::new(trainer.net().architecture(), 250);

    println!("epoch  lr      train_cost  train_nll  penalty    train_acc  valid_cost  valid_acc");
    let report = |epoch: u32, lr: f32, ws: &mut Workspace, trainer: &Trainer| {
        let t = evaluate(trainer.net(), ws, &x, &y, 250, &penalty)?;
        let v = evaluate(trainer.net(), ws, &xv, &yv, 250, &penalty)?;
        println!(
            "{epoch:>5}  {lr:<6}  {:>10.5}  {:>9.5}  {:>9.3e}  {:>9.3}  {:>10.5}  {:>9.3}",
            t.cost, t.nll, t.penalty, t.accuracy, v.cost, v.accuracy
        );
        Ok::<_, regulab_model::ModelError>(v)
    };
    report(0, 0.0, &mut ws, &trainer)?;
    let mut epoch = 1;
    while let Some(lr) = schedule.lr_for_epoch(epoch) {
        trainer.set_epoch(epoch)?;
        for (xb, yb) in x.chunks(batch * D).zip(y.chunks(batch)) {
            trainer.train_batch(xb, yb, lr)?;
        }
        let v = report(epoch, lr, &mut ws, &trainer)?;
        if !schedule.observe(epoch, v.error()) {
            break;
        }
        epoch += 1;
    }
    println!("stopped after epoch {epoch} ({} steps)", trainer.step());
    Ok(())
}
