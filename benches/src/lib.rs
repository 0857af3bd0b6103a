//! Shared helpers for the criterion benchmarks (random inputs, thread pools).
