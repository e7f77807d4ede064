//! Every multiplier of the CPU engine runs the shared conformance suite unchanged, on 1 and 2 threads, in
//! f32 and f64: the `cpu` backend's own (`CpuBackend`, the `gemm` crate) and `matrixmultiply`.

use boltz_cpu::{CpuBackend, EngineBackend, MatrixMultiply};

boltz_core::conformance_suite!(mod f64_two_threads, name: "cpu", elem: f64, ctor: || CpuBackend::new(2));
boltz_core::conformance_suite!(mod f32_two_threads, name: "cpu", elem: f32, ctor: || CpuBackend::new(2));
boltz_core::conformance_suite!(mod f64_one_thread, name: "cpu", elem: f64, ctor: || CpuBackend::new(1));
boltz_core::conformance_suite!(mod f32_one_thread, name: "cpu", elem: f32, ctor: || CpuBackend::new(1));
boltz_core::conformance_suite!(mod mm_f64_two_threads, name: "cpu", elem: f64, ctor: || EngineBackend::<MatrixMultiply>::new(2));
boltz_core::conformance_suite!(mod mm_f32_one_thread, name: "cpu", elem: f32, ctor: || EngineBackend::<MatrixMultiply>::new(1));

#[test]
fn zero_threads_is_an_error() {
    assert!(matches!(CpuBackend::new(0), Err(boltz_core::Error::InvalidParameter { .. })));
}
