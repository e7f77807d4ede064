//! Which GEMM the engine should use, by measurement on this machine (issue #30): the workloads' forwards
//! and their GEMM shapes with each multiplier (`matrixmultiply`, the `gemm` crate), side by side in
//! interleaved rounds, against the machine's FMA peak (`boltz_cpu::roofline`). Each round times 5
//! forwards per multiplier (median); a row reports the *fastest* round of each, since on a shared VM
//! interference only ever adds time (the median of the rounds is recorded too).
//!
//! `cargo run --release -p boltz-cpu --example multipliers [-- --rounds 5] [--json OUT.json]`

use std::time::Instant;

use boltz_core::{workloads, Backend, Batch, Model};
use boltz_cpu::engine::{Gemm, Operand};
use boltz_cpu::roofline::Roofline;
use boltz_cpu::{CpuFloat, EngineBackend, FaerGemm, MatrixMultiply, Multiplier};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds of one forward (median of `reps` after a warm-up) on `backend`.
fn forward_seconds<T: CpuFloat, G: Multiplier + Gemm<T>>(backend: &EngineBackend<G>, model: &Model<T>, x: &Batch<T>, reps: usize) -> f64 {
    let prepared = backend.prepare(model).expect("prepare");
    backend.forward(&prepared, x).expect("forward");
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                backend.forward(&prepared, x).expect("forward");
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Seconds of one product of the given shape with `g` (median over 0.1 s of repeats).
fn gemm_seconds<T: CpuFloat, G: Gemm<T>>(g: &G, m: usize, k: usize, n: usize, b_col_major: bool) -> f64 {
    let a: Vec<T> = (0..m * k).map(|i| T::from_f64((i % 7) as f64 / 7.0)).collect();
    let b: Vec<T> = (0..k * n).map(|i| T::from_f64((i % 5) as f64 / 5.0)).collect();
    let mut c = vec![T::default(); m * n];
    let bop = if b_col_major { Operand::col_major(&b, k, n, k) } else { Operand::row_major(&b, k, n, n) };
    let mut run = || g.gemm(Operand::row_major(&a, m, k, k), bop, T::default(), &mut c);
    run();
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 0.1 || times.len() < 5 {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64());
    }
    median(times)
}

fn workload_rows<T: CpuFloat>(threads: usize, rounds: usize, peak: f64, out: &mut Vec<String>) {
    let mm = EngineBackend::<MatrixMultiply>::new(threads).expect("pool");
    let fg = EngineBackend::<FaerGemm>::new(threads).expect("pool");
    for w in workloads::WORKLOADS {
        let (model, x) = w.build(Some(w.bench_batch)).expect("workload");
        let (model, x): (Model<T>, Batch<T>) = (model.convert().expect("convert"), x.convert().expect("convert"));
        let flops = workloads::flops(&model, x.batch(), x.len());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(forward_seconds(&mm, &model, &x, 5));
            b.push(forward_seconds(&fg, &model, &x, 5));
        }
        let (a_med, b_med) = (median(a.clone()), median(b.clone()));
        let best = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
        let (a, b) = (best(a), best(b));
        let pct = |s: f64| 100.0 * flops / s / 1e9 / peak;
        println!(
            "{:<12} {} {threads} thr: matrixmultiply {:8.3} ms ({:4.0} % pk) | gemm {:8.3} ms ({:4.0} % pk) | gemm/mm speed {:.2}x",
            w.name,
            T::DTYPE,
            a * 1e3,
            pct(a),
            b * 1e3,
            pct(b),
            a / b
        );
        out.push(format!(
            "{{\"workload\": \"{}\", \"dtype\": \"{}\", \"threads\": {threads}, \"batch\": {}, \"matrixmultiply_ms\": {:.4}, \"gemm_ms\": {:.4}, \"matrixmultiply_pct_peak\": {:.1}, \"gemm_pct_peak\": {:.1}, \"matrixmultiply_median_ms\": {:.4}, \"gemm_median_ms\": {:.4}}}",
            w.name,
            T::DTYPE,
            x.batch(),
            a * 1e3,
            b * 1e3,
            pct(a),
            pct(b),
            a_med * 1e3,
            b_med * 1e3
        ));
    }
}

fn shape_rows<T: CpuFloat>(peak1: f64, out: &mut Vec<String>) {
    // The practical workload's products per group of 256 tokens (2 sequences of 128), B as the engine
    // passes it (a weight read transposed in place: column-major).
    for (name, m, k, n, col) in [
        ("ffn1 X W1^T", 256, 256, 1024, true),
        ("ffn2 H W2^T", 256, 1024, 256, true),
        ("proj X Wq^T", 256, 256, 64, true),
        ("out M Wo^T", 256, 64, 256, true),
        ("scores Q K^T", 128, 64, 128, true),
        ("P V", 128, 128, 64, false),
        ("square 1024", 1024, 1024, 1024, false),
    ] {
        let f = 2.0 * (m * k * n) as f64 / 1e9;
        let (a, b) = (gemm_seconds::<T, _>(&MatrixMultiply, m, k, n, col), gemm_seconds::<T, _>(&FaerGemm, m, k, n, col));
        println!("  {name:<13} {m}x{k}x{n} {}: matrixmultiply {:6.1} GFLOP/s | gemm {:6.1} GFLOP/s (1 thread)", T::DTYPE, f / a, f / b);
        out.push(format!(
            "{{\"shape\": \"{name}\", \"m\": {m}, \"k\": {k}, \"n\": {n}, \"dtype\": \"{}\", \"matrixmultiply_gflops\": {:.2}, \"gemm_gflops\": {:.2}, \"peak_1_thread_gflops\": {peak1:.2}}}",
            T::DTYPE,
            f / a,
            f / b
        ));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let rounds: usize = value("--rounds").map_or(3, |r| r.parse().expect("--rounds N"));
    let cpu = boltz_cpu::roofline::cpu_model();
    let all = boltz_cpu::threads::all_cores();
    let mut thread_counts = vec![1];
    if all > 1 {
        thread_counts.push(all);
    }
    let (mut shapes, mut forwards, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for &t in &thread_counts {
        let r = Roofline::measure(t);
        println!(
            "{cpu}, {t} thread(s): FMA peak ({}) f32 {:.1}, f64 {:.1} GFLOP/s; triad {:.1} GB/s",
            r.isa, r.f32_gflops, r.f64_gflops, r.triad_gb_per_s
        );
        peaks.push(format!(
            "{{\"threads\": {t}, \"isa\": \"{}\", \"fma_peak_gflops_f32\": {:.2}, \"fma_peak_gflops_f64\": {:.2}, \"triad_gb_per_s\": {:.2}}}",
            r.isa, r.f32_gflops, r.f64_gflops, r.triad_gb_per_s
        ));
        if t == 1 {
            shape_rows::<f32>(r.f32_gflops, &mut shapes);
            shape_rows::<f64>(r.f64_gflops, &mut shapes);
        }
        workload_rows::<f32>(t, rounds, r.f32_gflops, &mut forwards);
        workload_rows::<f64>(t, rounds, r.f64_gflops, &mut forwards);
    }
    if let Some(path) = value("--json") {
        let json = format!(
            "{{\"what\": \"engine forwards (best of {rounds} interleaved rounds, each the median of 5 forwards; *_ms the fastest round, *_median_ms the median round) and the practical workload's GEMM shapes with each multiplier\", \"cpu\": \"{cpu}\", \"peaks\": [{}], \"shapes\": [{}], \"forwards\": [{}]}}\n",
            peaks.join(", "),
            shapes.join(", "),
            forwards.join(", ")
        );
        std::fs::write(&path, json).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
}
