//! The machine's ceilings on 1 and 2 threads: its FMA peak per element type (a register-only kernel in the
//! widest vector instruction set, `boltz_cpu::roofline`), its STREAM triad bandwidth, and what the best
//! GEMM library here reaches (OpenBLAS sgemm/dgemm at n = 1024, median of 10 after a warm-up). The
//! throughput chart draws the benches against the peak, with OpenBLAS's GEMM as a line.
//! `cargo run --release -p boltz-blas --example gemm_ceiling [OUT.json]`

use std::time::Instant;

use boltz_blas::openblas;
use boltz_cpu::roofline::{cpu_model, Roofline};
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
        let peak = Roofline::measure(threads);
        println!(
            "{threads} thread(s): FMA peak ({}) f32 {:.1} GFLOP/s, f64 {:.1}; triad {:.1} GB/s; OpenBLAS {} n = {n}: sgemm {s:.1} GFLOP/s ({:.0} % of peak), dgemm {d:.1} ({:.0} %)",
            peak.isa,
            peak.f32_gflops,
            peak.f64_gflops,
            peak.triad_gb_per_s,
            core.corename,
            100.0 * s / peak.f32_gflops,
            100.0 * d / peak.f64_gflops
        );
        rows.push(format!(
            "{{\"threads\": {threads}, \"sgemm_gflops\": {s:.2}, \"dgemm_gflops\": {d:.2}, \"isa\": \"{}\", \"fma_peak_gflops_f32\": {:.2}, \"fma_peak_gflops_f64\": {:.2}, \"triad_gb_per_s\": {:.2}}}",
            peak.isa, peak.f32_gflops, peak.f64_gflops, peak.triad_gb_per_s
        ));
    }
    let json = format!(
        "{{\"what\": \"the machine's FMA peak (register-only kernel, best of 5) and STREAM triad (3 x 64 MiB f64, best of 5), and OpenBLAS GEMM at n = {n} (median of 10)\", \"cpu\": \"{}\", \"openblas_core\": \"{}\", \"openblas_config\": \"{}\", \"rows\": [{}]}}\n",
        cpu_model(),
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
