//! The shared conformance suite against the f64 reference: at 53 bits (f64 tolerance), at 24 bits (f32
//! tolerance), and at 256 and 65 536 bits (the oracle's own f64 accuracy bounds the comparison; 65 536 bits
//! runs the products on GMP's FFT-range code paths).

use boltz_bigfloat::{BigFloatBackend, BigReal};

boltz_core::conformance_suite!(mod bits53, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(53, 2));
boltz_core::conformance_suite!(mod bits24, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(24, 2),
    tol: boltz_core::conformance::tolerance_for_bits(24));
boltz_core::conformance_suite!(mod bits256, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(256, 2));
// At 65 536 bits every softmax weight is a 3 ms exp: the three cases with hundreds of random forwards take
// 90 s each (one core); they run with `cargo test -p boltz-bigfloat --release --test conformance -- --ignored`.
boltz_core::conformance_suite!(mod bits65536, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(65536, 2),
    tol: boltz_core::conformance::tolerance_for_bits(65536),
    heavy_ignored: "minutes at 65 536 bits: run with --ignored (passed with MPFR 4.2.0 on 2 cores in 263 s)");
