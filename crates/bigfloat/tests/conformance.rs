//! The shared conformance suite against the f64 reference: at 53 bits (f64 tolerance), at 24 bits (f32
//! tolerance) and at 256 bits (the oracle's own f64 accuracy bounds the comparison).

use boltz_bigfloat::{BigFloatBackend, BigReal};

boltz_core::conformance_suite!(mod bits53, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(53, 2));
boltz_core::conformance_suite!(mod bits24, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(24, 2),
    tol: boltz_core::conformance::tolerance_for_bits(24));
boltz_core::conformance_suite!(mod bits256, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(256, 2));
