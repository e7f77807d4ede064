//! # boltz-harness
//!
//! The `boltz` command line: experiments that measure what the one-layer construction and its baselines
//! need (depth, parameters, precision, time), result files that record their own configuration and
//! machine, and paper-style charts drawn from those files.

pub mod backends;
pub mod charts;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod construction;
pub mod experiments;
pub mod meta;
pub mod outdir;
pub mod resources;
pub mod rows;

/// Writes one line to stderr, ignoring failures (progress must never stop a run, and a closed stderr
/// must not panic as `eprintln!` would).
pub fn note(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}
