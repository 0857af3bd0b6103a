//! Weight penalties (L1, L2) and the max-norm constraint.
//!
//! ```text
//! penalty(W) = l1 * sum |w| + l2 / 2 * sum w^2
//! d penalty / d w = l1 * sgn(w) + l2 * w          (sgn(0) = 0)
//! ```
//!
//! summed over the weight matrices of every layer, and over the biases too only when
//! `penalize_biases` is set (the lab's protocol penalises weights only).
//!
//! How the coefficients enter an SGD step on a batch of `B` examples is the
//! [`PenaltyConvention`]: `mean` (the default, as above: the penalty is part of the mean
//! cost per example, PyTorch's `weight_decay` convention) or `lab2015` (the 2015 lab's
//! code, whose coefficients are `B` times weaker and which penalised biases too).

use crate::bounds;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// L1/L2 penalty weights (`beta_L1`, `beta_L2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalty {
    /// `beta_L1`: weight of `sum |w|`.
    #[serde(default)]
    pub l1: f32,
    /// `beta_L2`: weight of `1/2 sum w^2`.
    #[serde(default)]
    pub l2: f32,
    /// Penalise biases as well as weights.
    #[serde(default)]
    pub penalize_biases: bool,
}

impl Penalty {
    /// No penalty.
    pub fn none() -> Penalty {
        Penalty::default()
    }

    /// `l1 * sum|w| + l2/2 * sum w^2` on weights only.
    pub fn new(l1: f32, l2: f32) -> Penalty {
        Penalty {
            l1,
            l2,
            penalize_biases: false,
        }
    }

    /// `Err` unless `l1`, `l2` are finite and `>= 0`.
    pub fn validate(&self) -> Result<()> {
        bounds::non_negative("l1", self.l1)?;
        bounds::non_negative("l2", self.l2)
    }

    /// The `(l1, l2)` applied to biases: `(0, 0)` unless `penalize_biases`.
    pub fn bias_terms(&self) -> (f32, f32) {
        if self.penalize_biases {
            (self.l1, self.l2)
        } else {
            (0.0, 0.0)
        }
    }

    /// `l1 * sum_abs + l2 / 2 * sum_sq` in f64, from the sums of
    /// [`regulab_kernels::update::penalty_sums`] accumulated layer by layer.
    pub fn value_from_sums(&self, sum_abs: f64, sum_sq: f64) -> f64 {
        self.l1 as f64 * sum_abs + self.l2 as f64 * 0.5 * sum_sq
    }
}

/// How the penalty coefficients `l1`, `l2` of a [`Penalty`] enter one SGD step on a
/// batch of `B` examples, whose summed data gradient is `G` (`g` for the biases).
///
/// ```text
/// mean     d_W = G/B + l2 W + l1 sgn(W)
///          d_b = g/B [+ l2 b + l1 sgn(b)   only if penalize_biases]
///          cost = (1/B) sum_n loss_n + l1 sum|w| + l2/2 sum w^2
///
/// lab2015  d_W = (G + l2 W + l1 sgn(W)) / B = G/B + (l2/B) W + (l1/B) sgn(W)
///          d_b = (g + l2 b + l1 sgn(b)) / B                      (biases always)
///          cost = (1/B) sum_n loss_n + (l1/B) sum|θ| + (l2/B)/2 sum θ^2
///                 (θ: every weight and bias)
///
/// then W <- W - lr d_W (or the momentum update) for both.
/// ```
///
/// `lab2015` is what the 2015 lab's code did: it added `l1 sgn(W) + l2 W` (biases
/// included) to the *summed* minibatch gradient and divided the sum by the number of
/// examples in the batch. Its "L1 1e-4" at batch 10 is therefore `mean`'s `l1 = 1e-5`
/// with `penalize_biases`. regulab computes a `lab2015` step as the `mean` step with
/// the coefficients `l1 / B`, `l2 / B` (each one f32 division, `B` the rows of the
/// batch) and the biases penalised ([`PenaltyConvention::per_example`]); the update
/// kernels, both update paths and the momentum update are the same code. Hence
/// `lab2015` with `l1 = c` is bit for bit `mean` with `l1 = f32(c / B)` and
/// `penalize_biases = true`, and `lab2015` with `l1 = B x` is bit for bit `mean` with
/// `l1 = x` whenever the f32 quotient `f32(B x) / B` rounds back to `x`: it does for the
/// lab's table values at batch 10 (`1e-4 -> 1e-5`, `1e-5 -> 1e-6`) and for every `B x`
/// exact in binary, but not for `1e-3`, whose quotient `1.00000005e-4` is one ulp above
/// `f32(1e-4)` (the config's decimal is gone once it is an f32; see
/// `tests/convention.rs`). Against the literal `(G + l2 W + l1 sgn W) / B` the
/// result differs only by f32 rounding. The reported cost is the one whose gradient the
/// step follows: the penalty part is `(l1/B) sum|θ| + (l2/B)/2 sum θ^2` with the same
/// f32 coefficients, `B` the configured batch size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PenaltyConvention {
    /// The penalty is part of the mean cost per example (regulab's and PyTorch's).
    #[default]
    Mean,
    /// The 2015 lab's code: the penalty gradient added to the summed batch gradient
    /// before dividing by the batch size; biases always penalised.
    Lab2015,
}

impl PenaltyConvention {
    /// `true` for [`PenaltyConvention::Mean`] (the default, left out when serialised).
    pub fn is_mean(&self) -> bool {
        *self == PenaltyConvention::Mean
    }

    /// The `mean`-convention penalty that gives this convention's step on a batch of
    /// `batch` examples: `p` itself for `Mean`; for `Lab2015`,
    /// `{ l1: p.l1 / B, l2: p.l2 / B, penalize_biases: true }` (f32 divisions by
    /// `B = batch as f32`, exact for `batch < 2^24`). A `batch` of 0 is taken as 1.
    pub fn per_example(self, p: Penalty, batch: usize) -> Penalty {
        match self {
            PenaltyConvention::Mean => p,
            PenaltyConvention::Lab2015 => {
                let b = batch.max(1) as f32;
                Penalty {
                    l1: p.l1 / b,
                    l2: p.l2 / b,
                    penalize_biases: true,
                }
            }
        }
    }

    /// The config spelling: `mean` or `lab2015`.
    pub fn as_str(self) -> &'static str {
        match self {
            PenaltyConvention::Mean => "mean",
            PenaltyConvention::Lab2015 => "lab2015",
        }
    }
}

/// Max-norm: for every unit `j` of a layer (column `j` of `W`, stored row-major
/// `[n_in, n_out]`), if `||W[:, j]||_2 > c` then `W[:, j] *= c / ||W[:, j]||_2`.
///
/// Norms are accumulated in f64 in row order `r = 0, 1, ...` (fixed, thread-free); the
/// factor `c / norm` is rounded to f32 and multiplied in. `sq` is scratch of at least
/// `n_out` values (no allocation).
pub(crate) fn max_norm(w: &mut [f32], n_out: usize, c: f32, sq: &mut [f64]) {
    let sq = &mut sq[..n_out];
    sq.fill(0.0);
    for row in w.chunks_exact(n_out) {
        for (s, &x) in sq.iter_mut().zip(row) {
            *s += x as f64 * x as f64;
        }
    }
    let c64 = c as f64;
    let mut any = false;
    for s in sq.iter_mut() {
        let norm = s.sqrt();
        // factor 1 (exactly, below) for columns within the bound
        *s = if norm > c64 {
            any = true;
            (c64 / norm) as f32 as f64
        } else {
            1.0
        };
    }
    if !any {
        return;
    }
    for row in w.chunks_exact_mut(n_out) {
        for (x, &f) in row.iter_mut().zip(sq.iter()) {
            if f != 1.0 {
                *x *= f as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_validation() {
        let p = Penalty::new(0.5, 2.0);
        assert_eq!(p.value_from_sums(3.0, 4.0), 0.5 * 3.0 + 2.0 * 0.5 * 4.0);
        assert_eq!(p.bias_terms(), (0.0, 0.0));
        assert!(Penalty::new(-1.0, 0.0).validate().is_err());
        assert!(Penalty::new(0.0, f32::NAN).validate().is_err());
        assert!(p.validate().is_ok());
    }

    #[test]
    fn lab2015_divides_the_coefficients_by_the_batch_and_penalises_biases() {
        let p = Penalty::new(1e-3, 4e-4);
        assert_eq!(PenaltyConvention::Mean.per_example(p, 10), p);
        let q = PenaltyConvention::Lab2015.per_example(p, 10);
        assert_eq!(q.l1, 1e-3f32 / 10.0);
        assert_eq!(q.l2, 4e-4f32 / 10.0);
        assert!(q.penalize_biases);
        assert_eq!(q.bias_terms(), (q.l1, q.l2));
        // batch 1: the coefficients themselves
        let one = PenaltyConvention::Lab2015.per_example(p, 1);
        assert_eq!((one.l1, one.l2), (p.l1, p.l2));
        assert_eq!(PenaltyConvention::Lab2015.per_example(p, 0), one);
        assert!(PenaltyConvention::default().is_mean());
        assert_eq!(PenaltyConvention::Lab2015.as_str(), "lab2015");
        let json = serde_json::to_string(&PenaltyConvention::Lab2015).unwrap();
        assert_eq!(json, "\"lab2015\"");
    }

    #[test]
    fn max_norm_rescales_only_long_columns() {
        // W [2, 3]: columns (3, 4) norm 5, (0.1, 0) norm 0.1, (0, -2) norm 2
        let mut w = vec![3.0, 0.1, 0.0, 4.0, 0.0, -2.0];
        let mut sq = vec![0.0; 3];
        max_norm(&mut w, 3, 2.5, &mut sq);
        assert_eq!(w, vec![1.5, 0.1, 0.0, 2.0, 0.0, -2.0]);
    }
}
