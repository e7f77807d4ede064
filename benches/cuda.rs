//! `cargo bench --bench cuda`: the workload table on the CUDA backend (f32 and f64). Without a device
//! it prints `SKIPPED cuda: <reason>` and exits 0 (unless BOLTZ_REQUIRE_BACKEND=cuda, then exit 1).

mod common;

use boltz_cuda::CudaBackend;

fn main() {
    let cuda = match CudaBackend::new() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIPPED cuda: {e}");
            match boltz_core::conformance::backend_required("cuda") {
                Ok(required) => std::process::exit(i32::from(required)),
                Err(msg) => {
                    eprintln!("error: {msg}");
                    std::process::exit(2);
                }
            }
        }
    };
    let mut c = common::criterion();
    common::forward_benches::<f32, _>(&mut c, &cuda, 1, |w| w.bench_batch);
    common::forward_benches::<f64, _>(&mut c, &cuda, 1, |w| w.bench_batch);
    c.final_summary();
}
