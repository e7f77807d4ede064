//! The BLAS backend runs the shared conformance suite unchanged, on 1 and 2 threads, in f32 and f64.

use boltz_blas::BlasBackend;

boltz_core::conformance_suite!(mod f64_two_threads, name: "blas", elem: f64, ctor: || BlasBackend::new(2));
boltz_core::conformance_suite!(mod f32_two_threads, name: "blas", elem: f32, ctor: || BlasBackend::new(2));
boltz_core::conformance_suite!(mod f64_one_thread, name: "blas", elem: f64, ctor: || BlasBackend::new(1));

#[test]
fn zero_threads_is_an_error() {
    assert!(matches!(BlasBackend::new(0), Err(boltz_core::Error::InvalidParameter { .. })));
}
