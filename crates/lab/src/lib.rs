//! # boltz-lab
//!
//! The laboratory behind the `boltz` command line (`crates/cli`) and the Python package (`python/`):
//! building a construction and running it on a backend, the experiment suite that measures what the
//! one-layer construction and its baselines need (depth, parameters, precision, time), and result files
//! that record their own configuration and machine. No argument parsing and no drawing: the CLI parses,
//! `boltz-charts` draws, and both (and Python) call this crate.

pub mod backends;
pub mod construction;
pub mod export;
pub mod meta;
pub mod outdir;
pub mod progress;
pub mod rank;
pub mod records;
pub mod request;
pub mod resources;
pub mod rows;
pub mod suite;
pub mod timing;

/// Writes one line to stderr, ignoring failures (progress must never stop a run, and a closed stderr
/// must not panic as `eprintln!` would).
pub fn note(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}
