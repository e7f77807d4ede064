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
//! Every operation must be correctly rounded to any precision `p` (see [`BigReal`]). Candidates, measured
//! on the 2-core CI machine, one thread, `exp(-0.7371)` and a full-length product, release builds
//! (`results/bigfloat/speed.json` has the table with mpmath beside it, re-measured by
//! `scripts/bigfloat-speed.sh`):
//!
//! | library | exp 4 096 bits | exp 65 536 bits | exp 1 048 576 bits | mul 65 536 bits | rounding | notes |
//! |---|---|---|---|---|---|---|
//! | **GNU MPFR 4.2 via rug 1.19** | 0.11 ms | 2.9 ms | 0.12 s | 64 µs | correct to any precision | used; C (Debian's libmpfr-dev, libgmp-dev), GMP's subquadratic and FFT products |
//! | mpmath 1.4.1 on gmpy2 2.3.2 (Python, for comparison) | 0.09 ms | 13 ms | 1.4 s | 64 µs | not guaranteed correctly rounded | what a Python researcher would use |
//! | astro-float 0.9.6 (previous core) | 1.3 ms | 0.25 s | 36 s | 0.23 ms | correct to multiples of 64 bits (other precisions needed a second, midpoint-checked rounding) | pure Rust; 12–300× slower exp |
//! | malachite-float 0.10 | 0.36 ms | 55 ms | — (0.30 s at 262 144) | 1.1 ms | correct to any precision | pure Rust; 3–19× slower exp, 17× slower mul at 65 536 bits (no FFT product) |
//! | dashu-float 0.4 | — | — | — (not finished in minutes) | — | accurate, not correctly rounded | pure Rust; 5–10× slower than astro-float at 1 024–16 384 bits |
//! | num-bigfloat, fastnum, twofloat | — | — | — | — | — | fixed precision (≤ ~130 bits): not configurable |
//!
//! MPFR is used ([`library`] names the linked versions). astro-float was dropped rather than kept as a
//! fallback: it is the same interface at 12–300× the cost of `exp`, and MPFR is one Debian package away on
//! every machine the suite supports; malachite-float, the fastest pure-Rust candidate, is still 3–19× slower.
//! The backend's own `exp`/`mul` are MPFR's plus the allocation of the result (`speed.json` records both). The test `exp_is_consistent_across_precisions` checks correct
//! rounding of `exp` (at p bits it equals `exp` at 4p bits rounded to p); `tests/p_bit_arithmetic.rs`
//! checks that the backend at 24 bits is binary32 and at 53 bits binary64 arithmetic bit for bit, and
//! `tests/precision_audit.rs` that every value of a forward carries exactly the backend's precision
//! ([`PrecisionAudit`]).
//!
//! ## What "fewest bits" means
//!
//! [`fewest_bits`] reports the smallest probed precision from which on every probed precision held; the
//! predicate is not monotone at low precision, so the bisection is followed by a dense scan around its
//! answer and isolated precisions that hold lower down are reported separately ([`BitsSearch`]).
//!
//! A probe of the memorizers' search ([`fewest_bits_to_decode_near`]) asks only whether every token decodes,
//! so it need not compute every output bit: [`BigFloatBackend::decodes_all`] runs attention faithfully and
//! decides the last (interpolating) FFN per token from a rigorous enclosure of its faithful result
//! ([`certify`]), falling back to the faithful sum for a token the enclosure cannot decide. The verdicts —
//! hence the fewest bits — are the faithful forward's; the cost per token drops from `O(K)` `p`-bit
//! products to a few dozen, which is what brings the Measured memorizer's search to N = 10⁴.

pub mod backend;
pub mod bits;
pub mod certify;
pub mod real;

pub use backend::{BigFloatBackend, DecodeCheck, FfnEvaluation, RoundedModel};
pub use bits::{
    fewest_bits, fewest_bits_near, fewest_bits_scanned, fewest_bits_to_decode_near, smallest_holding, smallest_holding_near, BitsAudit,
    BitsSearch, Probe, ScanWindow,
};
pub use real::{AuditReport, BigReal, PrecisionAudit, MAX_BITS, MIN_BITS};

/// The arithmetic library behind [`BigReal`], with the versions linked at run time (e.g.
/// `"GNU MPFR 4.2.0, GMP 6.2.1 (rug 1.19.2)"`), for results' provenance.
pub fn library() -> String {
    // SAFETY: both return pointers to static NUL-terminated version strings of the linked libraries.
    let (mpfr, gmp) =
        unsafe { (std::ffi::CStr::from_ptr(gmp_mpfr_sys::mpfr::get_version()), std::ffi::CStr::from_ptr(gmp_mpfr_sys::gmp::version)) };
    format!("GNU MPFR {}, GMP {} (rug 1.19.2)", mpfr.to_string_lossy(), gmp.to_string_lossy())
}
