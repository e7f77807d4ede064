//! The deterministic regression gate: instruction counts (callgrind, through gungraun) of the
//! single-threaded CPU paths of every workload at reduced size (one sequence), and of the construction
//! builders. `scripts/bench-gate.sh` runs it and compares the counts with the committed baseline
//! `results/bench-baselines/gate.json`.
//!
//! The forwards call the stack engine directly on the benchmark's own thread (a backend's worker pool
//! would run them on threads that callgrind's per-function collection does not see). gungraun clears
//! the environment, so OPENBLAS_CORETYPE never reaches valgrind (which cannot run AVX-512 kernels):
//! OpenBLAS detects its kernel under valgrind itself.

// gungraun's macros generate undocumented modules.
#![allow(missing_docs)]

use std::hint::black_box;

use boltz_blas::OpenBlas;
use boltz_construct::deep::yun::{Yun, YunOptions};
use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::{workloads, Dataset, DatasetSpec, ReferenceBackend};
use boltz_core::{Backend, Batch};
use boltz_cpu::engine::{EngineModel, Workspace};
use boltz_cpu::CpuMultiplier;
use gungraun::prelude::*;

/// One sequence of the named workload, prepared for the engine, in f32.
fn engine_input(name: &str) -> (EngineModel<f32>, Vec<f32>, usize) {
    let w = workloads::find(name).expect("workload");
    let (model, x) = w.build(Some(1)).expect("workload builds");
    let model = model.convert::<f32>().expect("f32");
    let x: Batch<f32> = x.convert().expect("f32");
    (EngineModel::new(&model), x.as_slice().to_vec(), w.n)
}

#[library_benchmark]
#[benches::workloads(args = ["practical", "memorizer", "deep-narrow"], setup = engine_input)]
fn forward_cpu(input: (EngineModel<f32>, Vec<f32>, usize)) -> Vec<f32> {
    let (model, mut z, n) = input;
    model.forward_group(&CpuMultiplier::default(), black_box(&mut z), n, 0, &mut Workspace::default()).expect("forward");
    z
}

/// [`engine_input`] and the OpenBLAS multiplier (made outside the measured function).
fn engine_input_blas(name: &str) -> (EngineModel<f32>, Vec<f32>, usize, OpenBlas) {
    let (model, z, n) = engine_input(name);
    (model, z, n, OpenBlas::new())
}

#[library_benchmark]
#[benches::workloads(args = ["practical", "memorizer", "deep-narrow"], setup = engine_input_blas)]
fn forward_blas(input: (EngineModel<f32>, Vec<f32>, usize, OpenBlas)) -> Vec<f32> {
    let (model, mut z, n, blas) = input;
    model.forward_group(&blas, black_box(&mut z), n, 0, &mut Workspace::default()).expect("forward");
    z
}

fn reference_input(name: &str) -> (boltz_core::Model<f64>, Batch<f64>) {
    workloads::find(name).expect("workload").build(Some(1)).expect("workload builds")
}

#[library_benchmark]
#[benches::workloads(args = ["deep-narrow"], setup = reference_input)]
fn forward_reference(input: (boltz_core::Model<f64>, Batch<f64>)) -> Batch<f64> {
    ReferenceBackend.run(black_box(&input.0), black_box(&input.1)).expect("forward")
}

fn dataset(sequences: usize) -> Dataset<f64> {
    let spec = DatasetSpec { sequences, length: 6, dim: 3, vocab: 32, seed: 1, ..Default::default() };
    Dataset::generate(&spec).expect("dataset")
}

#[library_benchmark]
#[bench::n20(args = (20), setup = dataset)]
fn build_memorizer(data: Dataset<f64>) -> Memorizer {
    Memorizer::build(black_box(&data), &ContextualOptions { policy: Policy::MeanPool, seed: 1, threads: 1, ..Default::default() })
        .expect("memorizer")
}

#[library_benchmark]
#[bench::n20(args = (20), setup = dataset)]
// Large enough for the event-driven evaluator (more than 10⁵ token-layers).
#[bench::n60(args = (60), setup = dataset)]
fn build_yun(data: Dataset<f64>) -> Yun {
    Yun::build(black_box(&data), &YunOptions { threads: 1, ..Default::default() }).expect("yun")
}

library_benchmark_group!(name = forward, benchmarks = [forward_cpu, forward_blas, forward_reference]);
library_benchmark_group!(name = build, benchmarks = [build_memorizer, build_yun]);
main!(library_benchmark_groups = forward, build);
