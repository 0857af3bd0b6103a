//! What identifies a trained network and what summarises its weights: the parameter
//! digest recorded in every manifest and the weight statistics of `summary.csv`, the
//! report and the weight histograms.
//!
//! Why one module: the digest is how `regulab run --resume`, `verify` and the tests
//! recognise a model, and the statistics are printed in three places that must agree
//! (`frac_small_weights` in the summary, the report's table, the histogram's caption);
//! computing each once keeps them from drifting apart.

use regulab_model::Mlp;
use sha2::{Digest, Sha256};

/// Below this magnitude a weight counts as (almost) zero: `frac_small_weights`.
pub const SMALL: f32 = 1e-3;

/// SHA-256 of the parameters: little-endian f32 bits, layer order, weights then bias.
pub fn digest(net: &Mlp) -> String {
    let mut h = Sha256::new();
    for layer in net.layers() {
        for v in layer.weight().iter().chain(layer.bias()) {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Statistics of the weight matrices (not the biases, as the penalties count them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightStats {
    /// Fraction of weights with `|w| <` [`SMALL`].
    pub frac_small: f64,
    /// `sqrt(sum w^2)`, summed in f64 in layer order.
    pub l2_norm: f64,
}

impl WeightStats {
    /// The statistics of `net`'s weight matrices, layer after layer.
    pub fn of(net: &Mlp) -> WeightStats {
        WeightStats::of_values(net.layers().iter().flat_map(|l| l.weight().iter().copied()))
    }

    /// The statistics of `values` (weights, in layer order).
    pub fn of_values(values: impl IntoIterator<Item = f32>) -> WeightStats {
        let (mut small, mut total, mut sq) = (0usize, 0usize, 0f64);
        for w in values {
            small += usize::from(w.abs() < SMALL);
            total += 1;
            sq += f64::from(w) * f64::from(w);
        }
        WeightStats {
            frac_small: small as f64 / total.max(1) as f64,
            l2_norm: sq.sqrt(),
        }
    }
}
