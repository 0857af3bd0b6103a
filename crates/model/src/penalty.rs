//! Weight penalties (L1, L2) and the max-norm constraint.
//!
//! ```text
//! penalty(W) = l1 * sum |w| + l2 / 2 * sum w^2
//! d penalty / d w = l1 * sgn(w) + l2 * w          (sgn(0) = 0)
//! ```
//!
//! summed over the weight matrices of every layer, and over the biases too only when
//! `penalize_biases` is set (the lab penalises weights only).

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
    fn max_norm_rescales_only_long_columns() {
        // W [2, 3]: columns (3, 4) norm 5, (0.1, 0) norm 0.1, (0, -2) norm 2
        let mut w = vec![3.0, 0.1, 0.0, 4.0, 0.0, -2.0];
        let mut sq = vec![0.0; 3];
        max_norm(&mut w, 3, 2.5, &mut sq);
        assert_eq!(w, vec![1.5, 0.1, 0.0, 2.0, 0.0, -2.0]);
    }
}
