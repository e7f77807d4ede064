//! `cargo bench --bench cpu`: the workload table on the pure-Rust CPU backend (f32 and f64, 1 thread and
//! all cores), the scalar reference path (for the ratios that the history tracks) and the construction
//! builders (a one-layer memorizer and a data-adaptive Yun model for a fixed N).

mod common;

use std::hint::black_box;

use boltz_construct::deep::yun::{Yun, YunOptions};
use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::{workloads, Dataset, DatasetSpec, ReferenceBackend};
use boltz_cpu::CpuBackend;
use criterion::{BenchmarkId, Criterion};

/// The reference path is scalar and single-threaded: a small batch keeps it to ~1 s a sample.
fn reference_batch(w: &workloads::Workload) -> usize {
    match w.name {
        "memorizer" => 2,
        "practical" => 2,
        _ => 8,
    }
}

fn builders(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    let n = 100;
    let spec = DatasetSpec { sequences: n, length: 8, dim: 4, vocab: 64, seed: 1, ..Default::default() };
    let data = Dataset::<f64>::generate(&spec).expect("dataset");
    let opts = ContextualOptions { policy: Policy::MeanPool, seed: 1, threads: 1, ..Default::default() };
    group.bench_with_input(BenchmarkId::new("memorizer/mean-pool", format!("N={n},n=8,d=4")), &data, |b, d| {
        b.iter(|| black_box(Memorizer::build(d, &opts).expect("memorizer")))
    });
    let yopts = YunOptions { threads: 1, ..Default::default() };
    group.bench_with_input(BenchmarkId::new("yun/adaptive", format!("N={n},n=8,d=4")), &data, |b, d| {
        b.iter(|| black_box(Yun::build(d, &yopts).expect("yun")))
    });
    group.finish();
}

fn main() {
    let mut c = common::criterion();
    let all = common::machine_threads();
    common::forward_benches::<f64, _>(&mut c, &ReferenceBackend, 1, reference_batch);
    for threads in [1, all] {
        let cpu = CpuBackend::new(threads).expect("cpu backend");
        common::forward_benches::<f32, _>(&mut c, &cpu, threads, |w| w.bench_batch);
        if threads == all {
            common::forward_benches::<f64, _>(&mut c, &cpu, threads, |w| w.bench_batch);
        }
    }
    builders(&mut c);
    c.final_summary();
}
