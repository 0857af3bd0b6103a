//! The allowed range of every hyper-parameter, written once.
//!
//! The experiment-config checks ([`crate::config`]) and the runtime checks
//! ([`crate::Trainer`], [`crate::LrSchedule::validate`], [`crate::Penalty::validate`],
//! [`crate::Init::iranges`]) all call these functions, so a value a config accepts is a
//! value the model accepts, and the other way round. Each returns
//! [`ModelError::InvalidConfig`] naming the field as its caller spells it.
//!
//! | quantity                                     | rule              |
//! |----------------------------------------------|-------------------|
//! | L1, L2 weights; newbob thresholds            | finite, `>= 0`    |
//! | the rate of one step (a schedule may decay it to 0) | finite, `>= 0` |
//! | learning rate of a schedule; init range; max-norm bound | finite, `> 0` |
//! | momentum                                     | `0 <= mu < 1`     |
//! | exponential decay factor                     | `0 < decay <= 1`  |
//! | keep probability                             | `0 < p <= 1`      |

use crate::error::{ModelError, Result};

fn invalid(field: &'static str, reason: String) -> Result<()> {
    Err(ModelError::InvalidConfig { field, reason })
}

/// `Err` unless `x` is finite and `>= 0`.
pub fn non_negative(field: &'static str, x: f32) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        invalid(field, format!("expected a finite value >= 0, got {x}"))
    }
}

/// `Err` unless `x` is finite and `> 0`.
pub fn positive(field: &'static str, x: f32) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        invalid(field, format!("expected a finite value > 0, got {x}"))
    }
}

/// `Err` unless `0 <= mu < 1`.
pub fn momentum(field: &'static str, mu: f32) -> Result<()> {
    if mu.is_finite() && (0.0..1.0).contains(&mu) {
        Ok(())
    } else {
        invalid(field, format!("expected 0 <= momentum < 1, got {mu}"))
    }
}

/// `Err` unless `0 < decay <= 1` (an exponential schedule never raises the rate).
pub fn decay(field: &'static str, decay: f32) -> Result<()> {
    if decay.is_finite() && decay > 0.0 && decay <= 1.0 {
        Ok(())
    } else {
        invalid(field, format!("expected 0 < decay <= 1, got {decay}"))
    }
}

/// `Err` unless `0 < p <= 1` (the rule of [`regulab_kernels::dropout::Keep::new`]).
pub fn keep(field: &'static str, p: f32) -> Result<()> {
    match regulab_kernels::dropout::Keep::new(p) {
        Ok(_) => Ok(()),
        Err(_) => invalid(
            field,
            format!("expected a keep probability in (0, 1], got {p}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges() {
        assert!(non_negative("x", 0.0).is_ok() && non_negative("x", -0.1).is_err());
        assert!(positive("x", 1e-30).is_ok() && positive("x", 0.0).is_err());
        assert!(momentum("x", 0.0).is_ok() && momentum("x", 1.0).is_err());
        assert!(decay("x", 1.0).is_ok() && decay("x", 0.0).is_err() && decay("x", 1.5).is_err());
        assert!(keep("x", 1.0).is_ok() && keep("x", 0.0).is_err() && keep("x", 1.01).is_err());
        for f in [non_negative, positive, momentum, decay, keep] {
            assert!(f("x", f32::NAN).is_err() && f("x", f32::INFINITY).is_err());
        }
    }
}
