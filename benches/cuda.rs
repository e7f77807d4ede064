//! `cargo bench --bench cuda`: the workload table on the CUDA backend (f32 and f64). Without a device
//! it prints `SKIPPED cuda: <reason>` and exits 0 (unless BOLTZ_REQUIRE_BACKEND=cuda, then exit 1).

mod common;

use boltz_cuda::CudaBackend;

fn main() {
    let cuda = match CudaBackend::new() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIPPED cuda: {e}");
            let required = std::env::var("BOLTZ_REQUIRE_BACKEND").is_ok_and(|v| v.split(',').any(|x| x.trim() == "cuda"));
            std::process::exit(i32::from(required));
        }
    };
    let mut c = common::criterion();
    common::forward_benches::<f32, _>(&mut c, &cuda, 1, |w| w.bench_batch);
    common::forward_benches::<f64, _>(&mut c, &cuda, 1, |w| w.bench_batch);
    c.final_summary();
}
