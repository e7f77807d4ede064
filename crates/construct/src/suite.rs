//! The constructions on every backend: [`construction_suite!`](crate::construction_suite) stamps out, for a
//! backend and element type, tests that build the one-layer memorizer (Corollary 1) and a small Yun et
//! al. model, and check on that backend what each construction promises there.
//!
//! **What is promised where.** A construction is built and verified exact in arbitrary precision; its
//! fewest bits `p*` are then found by the bisection of [`crate::verify`] (faithful `p`-bit evaluation of
//! every operation). On a backend computing with `p` mantissa bits:
//!
//! * `p ≥ p* + margin` (`margin` = [`HARDWARE_MARGIN_BITS`] for IEEE types, whose exponent range is
//!   bounded and whose kernels sum in their own order; 0 for the arbitrary-precision backend, which *is*
//!   the bisection's arithmetic at `p` bits): every token decodes to its label (accuracy 1.0). This is
//!   the bisection's conclusion, not a proof for every `p`: it saw every *probed* precision from `p*` up
//!   to the build precision hold (the bisection's probes and the dense scan below its answer; between
//!   probes it is inferred), and above the build precision the evaluation only comes closer to the exact
//!   one, which memorizes by the theorem. The suite checks that conclusion on each backend;
//! * otherwise the construction is not representable at that precision and the documented outcome is an
//!   error *value* — the weights or activations leave the format ([`Error::NonFinite`] naming the tensor,
//!   or an overflow naming the block) — or a run with whatever accuracy it reaches; never a panic.
//!
//! The fixtures are built once per test binary (they are pure functions of fixed seeds).

use std::sync::OnceLock;

use boltz_bigfloat::{BigReal, BitsSearch};
use boltz_core::{Backend, Dataset, DatasetSpec, Error, Model, Real};

use crate::deep::yun::{Yun, YunDelta, YunOptions};
use crate::{ContextualOptions, Memorizer, Policy};

/// Bits above the bisection's fewest bits that an IEEE type must have for the promise to apply (its
/// exponent range is bounded and its kernels round in another order than the faithful evaluation).
pub const HARDWARE_MARGIN_BITS: u64 = 4;

/// A construction built and verified in arbitrary precision, with its dataset and its fewest bits.
#[derive(Debug)]
pub struct Fixture {
    /// What was built (for messages).
    pub name: &'static str,
    /// The model, exact.
    pub model: Model<BigReal>,
    /// The data it memorizes.
    pub data: Dataset<f64>,
    /// The fewest-bits search (`fewest` is `p*`).
    pub bits: BitsSearch,
}

fn dataset(sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> Dataset<f64> {
    let spec = DatasetSpec { sequences, length, dim, vocab, seed, classes: 2, ..Default::default() };
    Dataset::generate(&spec).expect("the suite's dataset is valid")
}

/// The one-layer memorizer (policy `fewest-bits`: the smallest λ that still separates, so that it needs
/// few bits) on 6 sequences of length 4 in d = 3.
pub fn memorizer() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let data = dataset(6, 4, 3, 10, 11);
        let opts = ContextualOptions { policy: Policy::FewestBits, seed: 11, candidates: 200, threads: 2, ..Default::default() };
        let m = Memorizer::build(&data, &opts).expect("the memorizer builds");
        assert!(m.report.memorization.is_perfect(), "the memorizer is exact at its build precision");
        let bits = match &m.report.fewest_bits {
            Some(s) => s.clone(),
            None => m
                .fewest_bits(&data, &crate::verify::BitsSearchParams::default().bits(8, m.report.build_bits).threads(2))
                .expect("bisection runs"),
        };
        Fixture { name: "one-layer memorizer", model: m.model, data, bits }
    })
}

/// Yun et al.'s data-adaptive deep hardmax model (minimal grid) on 2 sequences of length 2 in d = 2: small
/// enough that its fewest bits (44 at this seed) fit f64 with the margin, so f64 backends are held to
/// exactness; f32 is not.
pub fn yun() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let data = dataset(2, 2, 2, 4, 5);
        let y = Yun::build(&data, &YunOptions { threads: 2, delta: YunDelta::Minimal, ..Default::default() }).expect("Yun's model builds");
        assert!(y.report.memorization.is_perfect(), "Yun's model is exact at its build precision");
        let bits =
            y.fewest_bits(&data, &crate::verify::BitsSearchParams::default().bits(8, y.report.bits).threads(2)).expect("bisection runs");
        Fixture { name: "Yun et al. (minimal grid)", model: y.model, data, bits }
    })
}

/// Runs `fixture` rounded to `T` on `backend`, which computes with `bits` mantissa bits, and checks the
/// promise of the module docs. Returns what happened, for the test's log.
pub fn check_on<T: Real, B: Backend<T>>(fixture: &Fixture, backend: &B, bits: u64) -> Result<String, String> {
    let name = fixture.name;
    let fewest = fixture.bits.fewest.ok_or_else(|| format!("{name}: the bisection found no precision that memorizes"))?;
    let margin = if backend.name() == "bigfloat" { 0 } else { HARDWARE_MARGIN_BITS };
    // Every probed precision from `fewest` up to the build precision held (the top run of the bisection);
    // above the build precision the evaluation is only closer to the exact one (see the module docs).
    let promised = bits >= fewest + margin;
    match (crate::verify::memorization_in(&fixture.model, &fixture.data, backend), promised) {
        (Ok(m), true) if m.accuracy == 1.0 => Ok(format!("{name}: exact at {bits} bits (p* = {fewest})")),
        (Ok(m), true) => Err(format!("{name}: {bits} bits ≥ p* + {margin} = {} but accuracy {}", fewest + margin, m.accuracy)),
        (Err(e), true) => Err(format!("{name}: {bits} bits ≥ p* + {margin} = {} but the run failed: {e}", fewest + margin)),
        (Ok(m), false) => Ok(format!("{name}: {bits} bits < p* + {margin} = {}: not promised; accuracy {}", fewest + margin, m.accuracy)),
        (Err(e @ (Error::NonFinite { .. } | Error::Overflow { .. })), false) => {
            Ok(format!("{name}: {bits} bits < p* + {margin} = {}: not representable, as documented: {e}", fewest + margin))
        }
        (Err(e), false) => Err(format!("{name}: {bits} bits: expected a non-finite or overflow error, got {e}")),
    }
}

/// Stamps out one `#[test]` per construction for a backend and element type; `bits` is the precision the
/// backend computes with (default: the element type's mantissa bits — pass it for bigfloat).
///
/// ```text
/// boltz_construct::construction_suite!(mod f32_suite, name: "cpu", elem: f32, ctor: || CpuBackend::new(2));
/// boltz_construct::construction_suite!(mod bits80, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(80, 2), bits: 80);
/// ```
///
/// Backends without a device skip (and fail under `BOLTZ_REQUIRE_BACKEND`), as in the conformance suite.
#[macro_export]
macro_rules! construction_suite {
    (mod $m:ident, name: $name:expr, elem: $t:ty, ctor: $ctor:expr) => {
        $crate::construction_suite!(mod $m, name: $name, elem: $t, ctor: $ctor,
            bits: <$t as boltz_core::Real>::mantissa_bits(&<$t as boltz_core::Real>::from_f64(0.0)));
    };
    (mod $m:ident, name: $name:expr, elem: $t:ty, ctor: $ctor:expr, bits: $bits:expr) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            $crate::construction_suite!(@case one_layer_memorizer, memorizer, $m, $name, $t, $ctor, $bits);
            $crate::construction_suite!(@case yun_deep_hardmax, yun, $m, $name, $t, $ctor, $bits);
        }
    };
    (@case $test:ident, $fixture:ident, $m:ident, $name:expr, $t:ty, $ctor:expr, $bits:expr) => {
        #[test]
        fn $test() {
            if let Some(backend) = boltz_core::conformance::obtain($name, $ctor) {
                match $crate::suite::check_on::<$t, _>($crate::suite::$fixture(), &backend, $bits) {
                    Ok(msg) => eprintln!("{} ({}): {msg}", stringify!($m), $name),
                    Err(msg) => panic!("{} ({}): {msg}", stringify!($m), $name),
                }
            }
        }
    };
}
