//! # boltz-bigfloat
//!
//! The arbitrary-precision backend of boltzformer: runs any [`boltz_core::Model`] with a configurable
//! number of mantissa bits (2 to 2²⁴), so that "the construction fails" can be told apart from "the
//! arithmetic fails". The paper's constants are far beyond floating point (Kajitsuka & Sato, ICLR 2024, Theorem 2 and its worst-case δ:
//! separations of 10⁻¹⁵⁰ … 10⁻¹⁰⁰⁰⁰⁰ on small datasets).
//!
//! * [`BigReal`]: the element type ([`boltz_core::Real`]), precision carried per value.
//! * [`BigFloatBackend`]: the [`boltz_core::Backend`]; rayon over sequences on its own pool, sparse and
//!   factored weights applied without multiplying out, softmax max-shifted with cached exponentials,
//!   hardmax exact (exact comparisons, ties averaged).
//! * [`fewest_bits`]: bisection plus a local scan for the fewest bits at which a predicate (exact
//!   memorization) holds from there up.
//!
//! ## Choice of library
//!
//! Candidates were pure-Rust arbitrary-precision floats with `exp` (measured on the 2-core CI machine,
//! one thread, `exp(-0.7371)`, release build):
//!
//! | crate | 1 024 bits | 16 384 bits | 131 072 bits | 1 048 576 bits | exp accuracy | notes |
//! |---|---|---|---|---|---|---|
//! | **astro-float 0.9.6** | 0.11 ms | 13 ms | 0.87 s | 33 s | correctly rounded (uses inexact flags and Ziv-style retries) | maintained; ±2³¹ binary exponent; subquadratic multiplication |
//! | dashu-float 0.4 | 0.62 ms | 139 ms | 22.7 s | — (not finished in minutes) | documented as accurate to the precision, not correctly rounded | clean API; 10–25× slower exp |
//! | rug (MPFR) | — | — | — | — | correctly rounded | excluded: links GMP/MPFR (C), not pure Rust |
//! | num-bigfloat, fastnum, twofloat | — | — | — | — | — | fixed precision (≤ ~130 bits): not configurable |
//!
//! astro-float is used. Its results are correctly rounded to a multiple of 64 bits; [`BigReal`] rounds them
//! to the requested number of bits and recomputes the rare results that land exactly on a midpoint, so that
//! **every operation is correctly rounded to `p` bits** (see its docs). The test
//! `exp_is_consistent_across_precisions` checks astro-float's correct rounding (`exp` at p bits equals `exp`
//! at 4p bits rounded to p); `tests/p_bit_arithmetic.rs` checks that the backend at 24 bits is binary32
//! and at 53 bits binary64 arithmetic bit for bit, and `tests/precision_audit.rs` that every value of a
//! forward carries exactly the backend's precision ([`PrecisionAudit`]).
//!
//! ## What "fewest bits" means
//!
//! [`fewest_bits`] reports the smallest probed precision from which on every probed precision held; the
//! predicate is not monotone at low precision, so the bisection is followed by a dense scan around its
//! answer and isolated precisions that hold lower down are reported separately ([`BitsSearch`]).

pub mod backend;
pub mod bits;
pub mod real;

pub use backend::{BigFloatBackend, FfnEvaluation, RoundedModel};
pub use bits::{fewest_bits, fewest_bits_scanned, smallest_holding, BitsSearch, Probe, ScanWindow};
pub use real::{AuditReport, BigReal, PrecisionAudit, MAX_BITS, MIN_BITS};
