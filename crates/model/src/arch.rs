//! The shape of a network: layer sizes, hidden activations, output/cost, and the
//! initialisation rule of its weights.

use crate::error::{ModelError, Result};
use regulab_kernels::activation::Activation;
use serde::{Deserialize, Serialize};

/// The output layer and its cost. With `z = h W + b` the output layer's pre-activation
/// for one example and `t = onehot(label)`:
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Softmax with cross-entropy: `y = softmax(z)`, cost `-ln y_label`,
    /// gradient `dcost/dz = y - t`.
    Softmax,
    /// Linear output with squared error: `y = z`, cost `1/2 * sum_j (z_j - t_j)^2`,
    /// gradient `dcost/dz = z - t`.
    Linear,
}

/// An MLP architecture: `sizes = [inputs, hidden_1, ..., hidden_k, outputs]`
/// (`k >= 0`), one activation per hidden layer, and the output/cost.
///
/// Layer `i` (0-based, `i < sizes.len() - 1`) maps `sizes[i]` inputs to `sizes[i + 1]`
/// outputs: `a_i = x_i W_i + b_i`, `h_i = f_i(a_i)` with `f_i = hidden[i]` for hidden
/// layers; the last layer's `a` goes to the [`Output`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Layer widths, inputs first, outputs last.
    pub sizes: Vec<usize>,
    /// Activation of each hidden layer (`sizes.len() - 2` entries).
    pub hidden: Vec<Activation>,
    /// Output layer and cost.
    pub output: Output,
}

impl Architecture {
    /// Every hidden layer with the same activation, e.g.
    /// `Architecture::new(vec![784, 800, 10], Activation::Sigmoid, Output::Softmax)`.
    pub fn new(sizes: Vec<usize>, hidden: Activation, output: Output) -> Result<Architecture> {
        let n_hidden = sizes.len().saturating_sub(2);
        Architecture::with_activations(sizes, vec![hidden; n_hidden], output)
    }

    /// One activation per hidden layer.
    pub fn with_activations(
        sizes: Vec<usize>,
        hidden: Vec<Activation>,
        output: Output,
    ) -> Result<Architecture> {
        let a = Architecture {
            sizes,
            hidden,
            output,
        };
        a.validate()?;
        Ok(a)
    }

    /// `Err` unless there are at least two sizes, all positive, and one activation per
    /// hidden layer.
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() < 2 {
            return Err(ModelError::InvalidArchitecture(format!(
                "need at least an input and an output size, got sizes {:?}",
                self.sizes
            )));
        }
        if let Some(i) = self.sizes.iter().position(|&s| s == 0) {
            return Err(ModelError::InvalidArchitecture(format!(
                "size {i} is zero in {:?}",
                self.sizes
            )));
        }
        if self.hidden.len() != self.sizes.len() - 2 {
            return Err(ModelError::InvalidArchitecture(format!(
                "{} hidden layers in sizes {:?} but {} hidden activations",
                self.sizes.len() - 2,
                self.sizes,
                self.hidden.len()
            )));
        }
        let mut params: usize = 0;
        for w in self.sizes.windows(2) {
            let layer = w[0]
                .checked_mul(w[1])
                .and_then(|p| p.checked_add(w[1]))
                .and_then(|p| params.checked_add(p));
            match layer {
                Some(p) if p <= isize::MAX as usize / 4 => params = p,
                _ => {
                    return Err(ModelError::InvalidArchitecture(format!(
                        "sizes {:?} give too many parameters",
                        self.sizes
                    )));
                }
            }
        }
        Ok(())
    }

    /// Number of weight layers (`sizes.len() - 1`).
    pub fn n_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Input width.
    pub fn n_inputs(&self) -> usize {
        self.sizes[0]
    }

    /// Output width (number of classes).
    pub fn n_outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// `(inputs, outputs)` of weight layer `i`.
    pub fn layer_shape(&self, i: usize) -> (usize, usize) {
        (self.sizes[i], self.sizes[i + 1])
    }

    /// The elementwise activation applied after layer `i`: `hidden[i]` for hidden
    /// layers, [`Activation::Identity`] for the output layer (softmax is part of the cost).
    pub fn activation(&self, i: usize) -> Activation {
        if i + 1 < self.n_layers() {
            self.hidden[i]
        } else {
            Activation::Identity
        }
    }

    /// Number of parameters (weights and biases).
    pub fn n_params(&self) -> usize {
        self.sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// The architecture as compact JSON (what the model file's metadata holds).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("<unserialisable: {e}>"))
    }
}

/// The name of an initialisation rule, as a config spells it (`init = "uniform"`); the
/// ranges come from beside it (see [`crate::config::ModelConfig::init`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitKind {
    /// [`Init::Uniform`].
    Uniform,
    /// [`Init::Glorot`].
    Glorot,
}

/// How initial weights are drawn (biases always start at zero).
///
/// Every weight is `w = (2u - 1) * r` with `u = (word >> 8) * 2^-24` in `[0, 1)` and
/// `word` the next `u32` of the ChaCha stream `rng::stream_rng(seed, Purpose::Init, i)`
/// of layer `i`, drawn in storage order (row-major `[inputs, outputs]`, i.e. input unit
/// by input unit). `2u - 1` is exact in f32, so `w` lies in `[-r, r)` and its bits
/// depend only on (seed, layer, index, r). `r` is the layer's `irange`:
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Init {
    /// `r = hidden` for hidden layers and `r = output` for the output layer. The default,
    /// `hidden = 0.2, output = 0.1`, is the lab's: its hidden layers used +-0.2 and its
    /// softmax layer kept the library default of +-0.1.
    Uniform {
        /// irange of every hidden layer (layers `0 .. n_layers - 1`).
        hidden: f32,
        /// irange of the output layer.
        output: f32,
    },
    /// One irange per weight layer.
    UniformPerLayer {
        /// `iranges[i]` for layer `i`.
        iranges: Vec<f32>,
    },
    /// Glorot & Bengio (2010): `r = sqrt(6 / (inputs + outputs))` (computed in f64,
    /// rounded to f32).
    Glorot,
}

impl Default for Init {
    fn default() -> Init {
        Init::Uniform {
            hidden: 0.2,
            output: 0.1,
        }
    }
}

impl Init {
    /// The irange of each weight layer of `arch`; `Err` for a range that is not finite
    /// and positive ([`crate::bounds::positive`]) or a per-layer list of the wrong length.
    pub fn iranges(&self, arch: &Architecture) -> Result<Vec<f32>> {
        let l = arch.n_layers();
        let r: Vec<f32> = match self {
            Init::Uniform { hidden, output } => (0..l)
                .map(|i| if i + 1 < l { *hidden } else { *output })
                .collect(),
            Init::UniformPerLayer { iranges } => {
                if iranges.len() != l {
                    return Err(ModelError::InvalidConfig {
                        field: "init.iranges",
                        reason: format!("{} values for {l} weight layers", iranges.len()),
                    });
                }
                iranges.clone()
            }
            Init::Glorot => (0..l)
                .map(|i| {
                    let (a, b) = arch.layer_shape(i);
                    (6.0 / (a + b) as f64).sqrt() as f32
                })
                .collect(),
        };
        for &x in &r {
            crate::bounds::positive("init.irange", x)?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_shapes() {
        assert!(Architecture::new(vec![4], Activation::Relu, Output::Softmax).is_err());
        assert!(Architecture::new(vec![4, 0, 2], Activation::Relu, Output::Softmax).is_err());
        assert!(Architecture::with_activations(vec![4, 3, 2], vec![], Output::Softmax).is_err());
        let a =
            Architecture::new(vec![784, 800, 800, 10], Activation::Tanh, Output::Linear).unwrap();
        assert_eq!(a.n_layers(), 3);
        assert_eq!(a.hidden, vec![Activation::Tanh; 2]);
        assert_eq!(a.activation(1), Activation::Tanh);
        assert_eq!(a.activation(2), Activation::Identity);
        assert_eq!(a.n_params(), 784 * 800 + 800 + 800 * 800 + 800 + 8010);
    }

    #[test]
    fn json_round_trip() {
        let a = Architecture::new(vec![5, 4, 3], Activation::Sigmoid, Output::Softmax).unwrap();
        assert_eq!(
            a.to_json(),
            r#"{"sizes":[5,4,3],"hidden":["sigmoid"],"output":"softmax"}"#
        );
        let b: Architecture = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn iranges() {
        let a = Architecture::new(vec![6, 4, 4, 2], Activation::Relu, Output::Softmax).unwrap();
        assert_eq!(Init::default().iranges(&a).unwrap(), vec![0.2, 0.2, 0.1]);
        let g = Init::Glorot.iranges(&a).unwrap();
        assert_eq!(g[0], (0.6f64).sqrt() as f32);
        assert!(
            Init::UniformPerLayer { iranges: vec![0.1] }
                .iranges(&a)
                .is_err()
        );
        assert!(
            Init::Uniform {
                hidden: -1.0,
                output: 0.1
            }
            .iranges(&a)
            .is_err()
        );
    }
}
