//! The reference backend runs the shared conformance suite. At f64 the random cases compare the oracle with
//! itself; the hand-computed, Boltzmann, tie, overflow and invariance cases check it independently. At f32
//! the generic forward runs in single precision against the f64 oracle.

#![allow(clippy::unwrap_used)]

use boltz_core::ReferenceBackend;

boltz_core::conformance_suite!(mod f64_suite, name: "reference", elem: f64, ctor: || Ok(ReferenceBackend::new()));
boltz_core::conformance_suite!(mod f32_suite, name: "reference", elem: f32, ctor: || Ok(ReferenceBackend::new()));
