//! The bench workloads (`boltz_core::workloads`: a dense practical block, the memorizer's rank-1 FFN of
//! width nN = 1.6·10⁵ with 16 outputs, a 500-block hardmax stack) on the engine with every multiplier,
//! against the reference backend: the paths the conformance suite's small random models do not reach
//! (the memorizer's fused rank-1 tiles and narrow-output kernel over many tiles).

use boltz_core::conformance::tolerance_for_bits;
use boltz_core::{workloads, Backend, Batch, Model, ReferenceBackend};
use boltz_cpu::engine::Gemm;
use boltz_cpu::{CpuFloat, EngineBackend, FaerGemm, MatrixMultiply, Multiplier};

/// Largest |engine − reference| relative to max(1, max |reference|), for each workload on 2 sequences.
fn worst_error<T: CpuFloat, G: Multiplier + Gemm<T>>(threads: usize) -> Vec<(&'static str, f64)> {
    let backend = EngineBackend::<G>::new(threads).expect("pool");
    workloads::WORKLOADS
        .iter()
        .map(|w| {
            let (model, x) = w.build(Some(3)).expect("workload");
            let expected = ReferenceBackend.run(&model, &x).expect("reference");
            let (m, xt): (Model<T>, Batch<T>) = (model.convert().expect("model"), x.convert().expect("batch"));
            let got = backend.run(&m, &xt).expect("engine");
            let scale = expected.as_slice().iter().fold(1.0f64, |a, v| a.max(v.abs()));
            let err = got.as_slice().iter().zip(expected.as_slice()).map(|(g, e)| (g.to_f64() - e).abs()).fold(0.0, f64::max);
            (w.name, err / scale)
        })
        .collect()
}

fn check<T: CpuFloat, G: Multiplier + Gemm<T>>(label: &str) {
    // The reference forward is f64; an f32 engine is within the conformance suite's tolerance for 24 bits.
    let tol = if T::DTYPE == "f64" { 1e-9 } else { tolerance_for_bits(24) };
    for threads in [1, 2] {
        for (name, err) in worst_error::<T, G>(threads) {
            assert!(err <= tol, "{label} {} on {threads} threads, {name}: relative error {err:e} > {tol:e}", T::DTYPE);
        }
    }
}

#[test]
fn gemm_crate_runs_every_workload() {
    check::<f64, FaerGemm>("gemm");
    check::<f32, FaerGemm>("gemm");
}

#[test]
fn matrixmultiply_runs_every_workload() {
    check::<f64, MatrixMultiply>("matrixmultiply");
    check::<f32, MatrixMultiply>("matrixmultiply");
}
