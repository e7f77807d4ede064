//! # boltz-harness
//!
//! The `boltz` command line: experiments that measure what the one-layer construction and its baselines
//! need (depth, parameters, precision, time), result files that record their own configuration and
//! machine, and paper-style charts drawn from those files.

pub mod charts;
pub mod config;
pub mod experiments;
pub mod meta;
