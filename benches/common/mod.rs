//! What every criterion bench shares: the workload table of `boltz_core::workloads` (the same shapes as
//! `boltz bench`), bench IDs `forward/<backend>/<workload>/<params>` and FLOP throughput.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

use boltz_core::{workloads, Backend, Batch, Model, Real};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Threads of the multi-threaded runs: the machine's cores (2 on CI), recorded in the bench ID.
pub fn machine_threads() -> usize {
    boltz_core::threads::all_cores()
}

/// A criterion configured for forwards of 10 ms … 1 s: few samples, short measurement (override with
/// criterion's own flags, e.g. `-- --measurement-time 10`).
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Benchmarks `backend` on every workload of the table at its bench batch (`batch_of` may shrink it,
/// e.g. for the scalar reference path), in the given element types and thread counts.
pub fn forward_benches<T: Real, B: Backend<T>>(
    c: &mut Criterion,
    backend: &B,
    threads: usize,
    batch_of: impl Fn(&workloads::Workload) -> usize,
) {
    let mut group = c.benchmark_group("forward");
    for w in workloads::WORKLOADS {
        let batch = batch_of(&w);
        let (model, x) = w.build(Some(batch)).expect("workload table builds");
        let flops = workloads::flops(&model, x.batch(), x.len());
        let model: Model<T> = model.convert().expect("f64 workloads convert");
        let x: Batch<T> = x.convert().expect("f64 batches convert");
        let prepared = backend.prepare(&model).expect("prepare");
        group.throughput(Throughput::Elements(flops as u64));
        let id = BenchmarkId::new(format!("{}/{}", backend.name(), w.name), format!("{},batch={batch},threads={threads}", T::DTYPE));
        group.bench_with_input(id, &x, |b, x| b.iter(|| black_box(backend.forward(&prepared, black_box(x)).expect("forward"))));
    }
    group.finish();
}
