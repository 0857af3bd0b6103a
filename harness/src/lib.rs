//! The library behind the `regulab` command: datasets, experiment configs, runs.

pub mod atomic;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod limits;
pub mod plot;
pub mod run;
pub mod verify;
