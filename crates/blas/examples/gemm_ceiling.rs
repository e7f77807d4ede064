//! The machine's GEMM ceiling: OpenBLAS sgemm/dgemm at n = 1024 on 1 and 2 threads (median of 10 after
//! a warm-up), the reference for "fraction of the ceiling" in results/backends/.
//! `cargo run --release -p boltz-blas --example gemm_ceiling [OUT.json]`

use std::time::Instant;

use boltz_blas::openblas;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, LinalgScalar};

fn median_gflops<T: LinalgScalar + From<f32>>(n: usize) -> f64 {
    let a = Array2::<T>::from_shape_fn((n, n), |(i, j)| T::from(((i * 7 + j * 3) % 11) as f32 / 11.0));
    let b = a.t().to_owned();
    let mut c = Array2::<T>::zeros((n, n));
    general_mat_mul(T::one(), &a, &b, T::zero(), &mut c);
    let mut times: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            general_mat_mul(T::one(), &a, &b, T::zero(), &mut c);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    2.0 * (n as f64).powi(3) / times[times.len() / 2] / 1e9
}

fn main() {
    openblas::reexec_with_coretype();
    let core = openblas::CoreReport::current();
    let n = 1024;
    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        openblas::set_threads(threads);
        let (s, d) = (median_gflops::<f32>(n), median_gflops::<f64>(n));
        println!("OpenBLAS {} n = {n}, {threads} thread(s): sgemm {s:.1} GFLOP/s, dgemm {d:.1} GFLOP/s", core.corename);
        rows.push(format!("{{\"threads\": {threads}, \"sgemm_gflops\": {s:.2}, \"dgemm_gflops\": {d:.2}}}"));
    }
    let json = format!(
        "{{\"what\": \"OpenBLAS GEMM ceiling, n = {n}, median of 10\", \"openblas_core\": \"{}\", \"openblas_config\": \"{}\", \"rows\": [{}]}}\n",
        core.corename,
        core.config,
        rows.join(", ")
    );
    if let Some(out) = std::env::args().nth(1) {
        if let Err(e) = std::fs::write(&out, json) {
            eprintln!("gemm_ceiling: cannot write {out}: {e}");
            std::process::exit(2);
        }
    }
}
