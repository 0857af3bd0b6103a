//! Train / validation split of the training file, the seeded training pool and the
//! per-epoch shuffles.
//!
//! As in the lab: train = the first `n - valid_size` examples of the training file,
//! validation = the last `valid_size` (default 10,000; 0 = none), test = the test file.
//! With `train_examples = N`, the pool is a fixed random set of N training examples
//! drawn from the seed; each epoch visits the pool in a fresh random order.
//!
//! Randomness is defined here, bit for bit, so it never changes with a crate version:
//! words are `next_u64` of `rng::stream_rng(seed, Purpose::Shuffle, stream)` (ChaCha8),
//! an integer uniform in `[0, s)` is Lemire's multiply-and-reject
//! (`m = x * s` as u128, reject while `(m mod 2^64) < (2^64 - s) mod s`, result `m >> 64`),
//! and a shuffle is the forward Fisher–Yates: for `i = 0, 1, ..`: swap `a[i]` with
//! `a[i + uniform(len - i)]`. The pool is the first N elements of the Fisher–Yates
//! shuffle of `0..train_len` by stream 0 (only N steps are run); the order of epoch `e`
//! is the shuffle of the pool by stream `1 + e`, so any epoch's order can be recomputed
//! on its own.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use regulab_kernels::rng::{Purpose, stream_rng};

use super::error::DataError;

/// The validation size of the lab: the last 10,000 examples of the training file.
pub const DEFAULT_VALID_SIZE: usize = 10_000;

/// How to split the training file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitSpec {
    /// Examples at the end of the training file held out for validation (0 = none).
    pub valid_size: usize,
    /// Size of the seeded random training pool; `None` = every training example.
    pub train_examples: Option<usize>,
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            valid_size: DEFAULT_VALID_SIZE,
            train_examples: None,
        }
    }
}

/// The example indices (into the training file) of the training pool and of the
/// validation split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    seed: u64,
    train_len: usize,
    pool: Vec<u32>,
    valid: Vec<u32>,
}

impl Splits {
    /// Splits a training file of `file_len` examples.
    ///
    /// Errors, naming the field: `valid_size` leaving no training example,
    /// `train_examples` of 0 or above the number of training examples.
    pub fn new(file_len: usize, spec: &SplitSpec, seed: u64) -> Result<Splits, DataError> {
        if u32::try_from(file_len).is_err() {
            return Err(DataError::InvalidData(format!(
                "{file_len} examples do not fit u32 indices"
            )));
        }
        if spec.valid_size >= file_len {
            return Err(DataError::InvalidSplit {
                field: "valid_size",
                value: spec.valid_size,
                reason: format!("leaves no training example (the training file has {file_len})"),
            });
        }
        let train_len = file_len - spec.valid_size;
        let pool = match spec.train_examples {
            None => (0..train_len as u32).collect(),
            Some(0) => {
                return Err(DataError::InvalidSplit {
                    field: "train_examples",
                    value: 0,
                    reason: "must be at least 1".to_string(),
                });
            }
            Some(n) if n > train_len => {
                return Err(DataError::InvalidSplit {
                    field: "train_examples",
                    value: n,
                    reason: format!(
                        "larger than the training split ({train_len} examples: {file_len} in \
                         the training file minus valid_size {})",
                        spec.valid_size
                    ),
                });
            }
            Some(n) => {
                let mut all: Vec<u32> = (0..train_len as u32).collect();
                let mut rng = stream_rng(seed, Purpose::Shuffle, 0);
                shuffle_prefix(&mut all, n, &mut rng);
                all.truncate(n);
                all
            }
        };
        let valid = (train_len as u32..file_len as u32).collect();
        Ok(Splits {
            seed,
            train_len,
            pool,
            valid,
        })
    }

    /// The seed the pool and the shuffles come from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of examples in the training part of the file (before pool selection).
    pub fn train_len(&self) -> usize {
        self.train_len
    }

    /// The training pool: indices into the training file, in draw order (all of
    /// `0..train_len` in order without `train_examples`).
    pub fn pool(&self) -> &[u32] {
        &self.pool
    }

    /// The validation indices (the last `valid_size` of the training file), in order.
    pub fn valid(&self) -> &[u32] {
        &self.valid
    }

    /// Writes the visiting order of epoch `epoch` (a permutation of the pool, from
    /// stream `1 + epoch`) into `order`, which must have the pool's length. Does not
    /// allocate.
    pub fn shuffle_into(&self, epoch: u64, order: &mut [u32]) -> Result<(), DataError> {
        if order.len() != self.pool.len() {
            return Err(DataError::Gather(format!(
                "epoch order buffer of {} for a pool of {}",
                order.len(),
                self.pool.len()
            )));
        }
        order.copy_from_slice(&self.pool);
        let mut rng = stream_rng(self.seed, Purpose::Shuffle, epoch.wrapping_add(1));
        let n = order.len();
        shuffle_prefix(order, n, &mut rng);
        Ok(())
    }
}

/// Uniform integer in `[0, s)`, `s > 0`, by Lemire's nearly divisionless method.
pub fn uniform_below(rng: &mut ChaCha8Rng, s: u64) -> u64 {
    debug_assert!(s > 0);
    let mut m = u128::from(rng.next_u64()) * u128::from(s);
    if (m as u64) < s {
        let threshold = s.wrapping_neg() % s;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(s);
        }
    }
    (m >> 64) as u64
}

/// The first `k` steps of the forward Fisher–Yates shuffle: afterwards `a[..k]` is a
/// uniformly random `k`-subset of `a` in random order.
fn shuffle_prefix(a: &mut [u32], k: usize, rng: &mut ChaCha8Rng) {
    let n = a.len();
    for i in 0..k.min(n.saturating_sub(1)) {
        let j = i + uniform_below(rng, (n - i) as u64) as usize;
        a.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_below_stays_in_range_and_covers_it() {
        let mut rng = stream_rng(1, Purpose::Shuffle, 0);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            let v = uniform_below(&mut rng, 7);
            seen[v as usize] += 1;
        }
        for c in seen {
            assert!((800..1200).contains(&c), "{seen:?}");
        }
        assert_eq!(uniform_below(&mut rng, 1), 0);
        // s close to 2^64 exercises the rejection branch
        for _ in 0..100 {
            assert!(uniform_below(&mut rng, u64::MAX - 3) < u64::MAX - 3);
        }
    }

    #[test]
    fn prefix_shuffle_equals_the_start_of_the_full_shuffle() {
        let mut full: Vec<u32> = (0..100).collect();
        let mut part = full.clone();
        shuffle_prefix(&mut full, 100, &mut stream_rng(9, Purpose::Shuffle, 0));
        shuffle_prefix(&mut part, 10, &mut stream_rng(9, Purpose::Shuffle, 0));
        assert_eq!(full[..10], part[..10]);
    }
}
