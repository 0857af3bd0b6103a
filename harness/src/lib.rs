//! The library behind the `regulab` command: datasets, experiment configs, runs.

pub mod atomic;
pub mod config;
pub mod data;
pub mod run;
