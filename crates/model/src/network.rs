//! The network itself: layers of weights and biases, its construction (builder,
//! seeded initialisation) and its read access for the harness (digests, histograms).

use crate::arch::{Architecture, Init, Output};
use crate::error::{ModelError, Result};
use crate::pass;
use crate::penalty::Penalty;
use crate::workspace::Workspace;
use rand_core::Rng;
use regulab_kernels::activation::Activation;
use regulab_kernels::rng::{Purpose, stream_rng};
use regulab_kernels::update::penalty_sums;

/// One dense layer `a = x W + b`.
///
/// `W` is stored row-major `[inputs, outputs]`: `weight()[r * outputs + j]` is the
/// weight from input `r` to unit `j`, so a batch is `X W` (`B x in . in x out`) and
/// column `j` holds unit `j`'s incoming weights. (The model file stores the transpose,
/// as PyTorch's `nn.Linear` does; see [`crate::io`].)
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    n_in: usize,
    n_out: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Layer {
    /// Inputs.
    pub fn n_in(&self) -> usize {
        self.n_in
    }
    /// Outputs (units).
    pub fn n_out(&self) -> usize {
        self.n_out
    }
    /// `W`, row-major `[n_in, n_out]`.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    /// `b`, `[n_out]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    /// Mutable `W` (tests, hand-set weights).
    pub fn weight_mut(&mut self) -> &mut [f32] {
        &mut self.weight
    }
    /// Mutable `b`.
    pub fn bias_mut(&mut self) -> &mut [f32] {
        &mut self.bias
    }
    /// Mutable `(W, b)` at once.
    pub(crate) fn params_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.weight, &mut self.bias)
    }
}

/// A multilayer perceptron: an [`Architecture`] and its layers' parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    arch: Architecture,
    layers: Vec<Layer>,
}

impl Mlp {
    /// A network with weights drawn by `init` from the init streams of `seed` (layer `i`
    /// uses stream `i`, see [`Init`] for the formula) and zero biases.
    pub fn new(arch: Architecture, init: &Init, seed: u64) -> Result<Mlp> {
        arch.validate()?;
        let ranges = init.iranges(&arch)?;
        let layers = (0..arch.n_layers())
            .map(|i| {
                let (n_in, n_out) = arch.layer_shape(i);
                let mut rng = stream_rng(seed, Purpose::Init, i as u64);
                let r = ranges[i];
                let weight = (0..n_in * n_out)
                    .map(|_| {
                        let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
                        (2.0 * u - 1.0) * r
                    })
                    .collect();
                Layer {
                    n_in,
                    n_out,
                    weight,
                    bias: vec![0.0; n_out],
                }
            })
            .collect();
        Ok(Mlp { arch, layers })
    }

    /// A network from given parameters: `params[i] = (W_i row-major [in, out], b_i [out])`.
    pub fn from_params(arch: Architecture, params: Vec<(Vec<f32>, Vec<f32>)>) -> Result<Mlp> {
        arch.validate()?;
        if params.len() != arch.n_layers() {
            return Err(ModelError::InvalidArchitecture(format!(
                "{} parameter pairs for {} layers",
                params.len(),
                arch.n_layers()
            )));
        }
        let mut layers = Vec::with_capacity(params.len());
        for (i, (weight, bias)) in params.into_iter().enumerate() {
            let (n_in, n_out) = arch.layer_shape(i);
            if weight.len() != n_in * n_out || bias.len() != n_out {
                return Err(ModelError::InvalidArchitecture(format!(
                    "layer {i}: weight has {} values and bias {}, expected {} ({n_in} x {n_out}) and {n_out}",
                    weight.len(),
                    bias.len(),
                    n_in * n_out
                )));
            }
            layers.push(Layer {
                n_in,
                n_out,
                weight,
                bias,
            });
        }
        Ok(Mlp { arch, layers })
    }

    /// The architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }
    /// The layers, input side first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// Mutable layers (hand-set weights; the shapes cannot change).
    pub fn layers_mut(&mut self) -> &mut [Layer] {
        &mut self.layers
    }
    /// Number of weight layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
    /// `W_i`, row-major `[in, out]`.
    pub fn weight(&self, i: usize) -> &[f32] {
        &self.layers[i].weight
    }
    /// `b_i`.
    pub fn bias(&self, i: usize) -> &[f32] {
        &self.layers[i].bias
    }
    /// Mutable `W_i`.
    pub fn weight_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.layers[i].weight
    }
    /// Mutable `b_i`.
    pub fn bias_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.layers[i].bias
    }

    /// `(sum |w|, sum w^2)` over the weights of all layers (and the biases if
    /// `include_biases`), each tensor summed by [`penalty_sums`] and the tensors added
    /// in layer order (weights, then bias) in f64.
    pub fn penalty_sums(&self, include_biases: bool) -> (f64, f64) {
        let (mut a, mut s) = (0.0, 0.0);
        for l in &self.layers {
            let (x, y) = penalty_sums(&l.weight);
            a += x;
            s += y;
            if include_biases {
                let (x, y) = penalty_sums(&l.bias);
                a += x;
                s += y;
            }
        }
        (a, s)
    }

    /// The penalty part of the cost, `l1 * sum|w| + l2/2 * sum w^2` (biases included only
    /// if `p.penalize_biases`).
    pub fn penalty(&self, p: &Penalty) -> f64 {
        let (a, s) = self.penalty_sums(p.penalize_biases);
        p.value_from_sums(a, s)
    }

    /// Evaluation-mode forward pass (no dropout) of `rows = x.len() / inputs` examples;
    /// returns the outputs `z = h W + b` (`rows x outputs`, before the softmax for a
    /// softmax output), held in `ws`.
    pub fn outputs<'w>(&self, ws: &'w mut Workspace, x: &[f32]) -> Result<&'w [f32]> {
        let d = self.arch.n_inputs();
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(ModelError::InputShape {
                rows: x.len().div_ceil(d),
                inputs: d,
                found: x.len(),
            });
        }
        let rows = x.len() / d;
        ws.prepare(&self.arch.sizes, rows)?;
        pass::forward(self, ws, x, rows, None);
        Ok(ws.outputs())
    }

    /// Predicted classes (argmax of the outputs, first on ties) of `x.len() / inputs`
    /// examples, into `out` (one per example).
    pub fn predict(&self, ws: &mut Workspace, x: &[f32], out: &mut [u32]) -> Result<()> {
        let n = self.arch.n_outputs();
        let z = self.outputs(ws, x)?;
        let rows = z.len() / n;
        if out.len() != rows {
            return Err(ModelError::InputShape {
                rows: out.len(),
                inputs: self.arch.n_inputs(),
                found: x.len(),
            });
        }
        regulab_kernels::activation::argmax_rows(z, n, out);
        Ok(())
    }
}

/// Builder: `MlpBuilder::new(784).hidden(800, Activation::Sigmoid).output(10, Output::Softmax).seed(1).build()`.
#[derive(Clone, Debug)]
pub struct MlpBuilder {
    sizes: Vec<usize>,
    hidden: Vec<Activation>,
    output: Option<(usize, Output)>,
    init: Init,
    seed: u64,
}

impl MlpBuilder {
    /// Start with `inputs` input units.
    pub fn new(inputs: usize) -> MlpBuilder {
        MlpBuilder {
            sizes: vec![inputs],
            hidden: Vec::new(),
            output: None,
            init: Init::default(),
            seed: 0,
        }
    }
    /// Add a hidden layer of `units` with activation `act`.
    pub fn hidden(mut self, units: usize, act: Activation) -> MlpBuilder {
        self.sizes.push(units);
        self.hidden.push(act);
        self
    }
    /// Set the output layer.
    pub fn output(mut self, units: usize, output: Output) -> MlpBuilder {
        self.output = Some((units, output));
        self
    }
    /// Initialisation rule (default [`Init::default`]).
    pub fn init(mut self, init: Init) -> MlpBuilder {
        self.init = init;
        self
    }
    /// Seed of the init streams (default 0).
    pub fn seed(mut self, seed: u64) -> MlpBuilder {
        self.seed = seed;
        self
    }
    /// The architecture so far (`Err` without an output layer).
    pub fn architecture(&self) -> Result<Architecture> {
        let (units, output) = self.output.ok_or_else(|| {
            ModelError::InvalidArchitecture("no output layer given to the builder".into())
        })?;
        let mut sizes = self.sizes.clone();
        sizes.push(units);
        Architecture::with_activations(sizes, self.hidden.clone(), output)
    }
    /// Build the network.
    pub fn build(&self) -> Result<Mlp> {
        Mlp::new(self.architecture()?, &self.init, self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_seeded_bounded_and_per_layer() {
        let b = MlpBuilder::new(30)
            .hidden(20, Activation::Sigmoid)
            .hidden(20, Activation::Relu)
            .output(5, Output::Softmax)
            .seed(42);
        let a = b.build().unwrap();
        assert_eq!(a, b.build().unwrap());
        let c = b.clone().seed(43).build().unwrap();
        assert_ne!(a.weight(0), c.weight(0));
        for (i, r) in [0.2f32, 0.2, 0.1].into_iter().enumerate() {
            let w = a.weight(i);
            assert!(w.iter().all(|&x| x >= -r && x < r));
            // uniform: the mean is near 0 and the extremes near +-r
            let max = w.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
            assert!(max > 0.9 * r, "layer {i} max {max}");
            assert!(a.bias(i).iter().all(|&x| x == 0.0));
        }
        // first weight of layer 0 follows the documented formula
        let mut rng = stream_rng(42, Purpose::Init, 0);
        let u = (rng.next_u32() >> 8) as f32 / 16_777_216.0;
        assert_eq!(a.weight(0)[0], (2.0 * u - 1.0) * 0.2);
        // layers use distinct streams
        assert_ne!(a.weight(1)[..20], a.weight(2)[..20]);
    }

    #[test]
    fn from_params_checks_shapes() {
        let arch = Architecture::new(vec![2, 3], Activation::Relu, Output::Linear).unwrap();
        assert!(Mlp::from_params(arch.clone(), vec![(vec![0.0; 6], vec![0.0; 3])]).is_ok());
        assert!(Mlp::from_params(arch.clone(), vec![(vec![0.0; 5], vec![0.0; 3])]).is_err());
        assert!(Mlp::from_params(arch, vec![]).is_err());
        assert!(MlpBuilder::new(3).build().is_err());
    }
}
