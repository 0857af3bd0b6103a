//! Shared by the criterion benchmarks and the `pps` comparison binary: the three anchor
//! configurations (the networks, batch sizes and optimiser settings of the PyTorch and
//! numpy reference trainers the project compares against), real data (the first 10,000
//! Fashion-MNIST training images with their labels, from Debian's
//! `dataset-fashion-mnist`), and one training epoch exactly as `regulab run` performs
//! it (u8 pixels gathered and scaled per batch).
//!
//! Each measured epoch trains a fresh network ([`trainer`]) on real labels: a network
//! trained on across samples (or on random labels) drifts into states no study has,
//! e.g. (iii)'s ReLU units dying until its middle layer sees 0.2 % nonzero inputs and
//! the zero-skipping GEMM makes that layer nearly free.

use std::hint::black_box;
use std::time::Duration;

use regulab::data::LabeledImages;
use regulab_kernels::gemm::{Accumulate, Op, gemm};
use regulab_model::{
    Activation, Architecture, FixedKeep, Init, Mlp, Output, Penalty, TrainConfig, Trainer,
};

/// Examples per epoch.
pub const N: usize = 10_000;
/// Inputs per example.
pub const D: usize = 784;

/// One anchor configuration.
#[derive(Clone, Copy)]
pub struct Cfg {
    /// Label.
    pub name: &'static str,
    /// Hidden widths.
    pub hidden: &'static [usize],
    /// Hidden activation.
    pub act: Activation,
    /// Batch size.
    pub batch: usize,
    /// Keep probabilities (input, hidden).
    pub keep: (f32, f32),
    /// L2 weight.
    pub l2: f32,
    /// Learning rate.
    pub lr: f32,
}

/// (i), (ii), (iii) of the anchors.
pub const CFGS: [Cfg; 3] = [
    Cfg {
        name: "i_784-800-10_sigmoid_b10",
        hidden: &[800],
        act: Activation::Sigmoid,
        batch: 10,
        keep: (1.0, 1.0),
        l2: 0.0,
        lr: 0.5,
    },
    Cfg {
        name: "ii_784-800-10_sigmoid_b100",
        hidden: &[800],
        act: Activation::Sigmoid,
        batch: 100,
        keep: (1.0, 1.0),
        l2: 0.0,
        lr: 0.5,
    },
    Cfg {
        name: "iii_784-800-800-10_relu_b100_dropout_l2",
        hidden: &[800, 800],
        act: Activation::Relu,
        batch: 100,
        keep: (0.8, 0.5),
        l2: 1e-4,
        lr: 0.05,
    },
];

/// Where Debian's `dataset-fashion-mnist` installs Fashion-MNIST.
pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The first [`N`] Fashion-MNIST training images with their labels (checksummed
/// against the known table as they are read).
///
/// # Panics
/// If Fashion-MNIST is not installed (`apt-get install dataset-fashion-mnist`).
pub fn dataset() -> LabeledImages {
    let dir = std::path::Path::new(FASHION_DIR);
    let pair = regulab::data::load_pair(
        &dir.join("train-images-idx3-ubyte.gz"),
        &dir.join("train-labels-idx1-ubyte.gz"),
        regulab::data::DatasetName::FashionMnist,
    )
    .unwrap_or_else(|e| {
        panic!("the benchmarks train on Fashion-MNIST (apt-get install dataset-fashion-mnist): {e}")
    });
    assert!(pair.images.verified && pair.labels.verified);
    pair.data.subset(0..N).expect("60,000 training images")
}

/// A trainer for `c`, at epoch 1.
pub fn trainer(c: &Cfg, seed: u64) -> Trainer {
    let mut sizes = vec![D];
    sizes.extend(c.hidden);
    sizes.push(10);
    let arch = Architecture::new(sizes, c.act, Output::Softmax).unwrap();
    let net = Mlp::new(
        arch,
        &Init::Uniform {
            hidden: 0.2,
            output: 0.2,
        },
        seed,
    )
    .unwrap();
    let tc = TrainConfig {
        penalty: Penalty::new(0.0, c.l2),
        seed,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, tc, c.batch).unwrap();
    t.set_dropout(Box::new(FixedKeep::new(c.keep.0, c.keep.1)))
        .unwrap();
    t.set_epoch(1).unwrap();
    t
}

/// Buffers of one epoch, allocated once.
pub struct Epoch {
    order: Vec<u32>,
    x: Vec<f32>,
    y: Vec<u32>,
}

impl Epoch {
    /// Buffers for `batch`.
    pub fn new(batch: usize) -> Epoch {
        Epoch {
            order: (0..N as u32).collect(),
            x: vec![0.0; batch * D],
            y: vec![0; batch],
        }
    }

    /// The last batch [`Epoch::run`] trained on (`batch x 784` pixels in [0, 1]).
    pub fn last_batch(&self) -> &[f32] {
        &self.x
    }

    /// One epoch: gather each batch from u8 pixels, train on it.
    pub fn run(&mut self, data: &LabeledImages, t: &mut Trainer, c: &Cfg) {
        for chunk in self.order.chunks(c.batch) {
            let n = chunk.len();
            data.gather(chunk, &mut self.x[..n * D], &mut self.y[..n])
                .unwrap();
            black_box(t.train_batch(&self.x[..n * D], &self.y[..n], c.lr).unwrap());
        }
    }
}

/// The inputs of every weight layer in the trainer's last step (after dropout), `x`
/// being that step's batch: the operands whose zeros decide which GEMM kernels run.
pub fn layer_inputs(t: &Trainer, x: &[f32]) -> Vec<Vec<f32>> {
    let ws = t.workspace();
    (0..t.net().n_layers())
        .map(|i| ws.layer_input(i).unwrap_or(x).to_vec())
        .collect()
}

/// The GEMM calls of one epoch alone: per batch and layer, forward, weight gradient
/// accumulated into W (the G-free update), and the input gradient below layer 0.
/// `inputs` are the layers' inputs of a real training step ([`layer_inputs`]), so the
/// products have training's zeros (dropout, ReLU) and take the same kernels; `bufs`
/// are `[out, delta, dprev]` of at least `batch x 800` values.
pub fn gemm_epoch(c: &Cfg, inputs: &[Vec<f32>], bufs: &mut [Vec<f32>; 3], ws: &mut [Vec<f32>]) {
    let mut sizes = vec![D];
    sizes.extend(c.hidden);
    sizes.push(10);
    let b = c.batch;
    for _ in 0..N / b {
        for (i, w) in ws.iter_mut().enumerate() {
            let (n_in, n_out) = (sizes[i], sizes[i + 1]);
            let x = &inputs[i];
            let [out, delta, dprev] = &mut *bufs;
            gemm(
                b,
                n_out,
                n_in,
                &x[..b * n_in],
                Op::N,
                w,
                Op::N,
                &mut out[..b * n_out],
                Accumulate::Overwrite,
            );
            if i > 0 {
                gemm(
                    b,
                    n_in,
                    n_out,
                    &delta[..b * n_out],
                    Op::N,
                    w,
                    Op::T,
                    &mut dprev[..b * n_in],
                    Accumulate::Overwrite,
                );
            }
            gemm(
                n_in,
                n_out,
                b,
                &x[..b * n_in],
                Op::T,
                &delta[..b * n_out],
                Op::N,
                w,
                Accumulate::Add,
            );
        }
    }
}

/// A rayon pool of `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// The median (upper) of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
