//! The library behind the `regulab` command: datasets, experiment configs, runs.

/// Atomic file output: the model crate's, shared with its model files.
pub use regulab_model::atomic;
pub mod aggregate;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod feedback;
pub mod interrupt;
pub mod kernel_cache;
pub mod limits;
pub mod lock;
pub mod merge;
pub mod outdir;
pub mod plot;
pub mod run;
pub mod shard;
pub mod slurm;
pub mod verify;
