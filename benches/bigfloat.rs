//! `cargo bench --bench bigfloat`: the arbitrary-precision backend (issue #18) — one forward of the
//! one-layer memorizer (Measured policy: the paper's λ, thousands of bits) on generated data (n = 8, d = 4,
//! |V| = 16) with faithful FFN evaluation (what every fewest-bits probe runs), at N = 10 and 30 and at
//! 1 024 and 4 096 bits, on 1 thread and all cores; and single `exp`/`mul` at 4 096 and 65 536 bits.
//! Prepare (rounding the weights) is inside the measured forward, as it is in every probe.
//! `results/bigfloat/speed.json` (`scripts/bigfloat-speed.sh`) has the same forward beside mpmath.

mod common;

use std::hint::black_box;

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::{Backend, Batch, Dataset, DatasetSpec, Real};
use criterion::{BenchmarkId, Criterion, Throughput};

fn bench_forward(c: &mut Criterion, sequences: usize, threads: usize) {
    let spec = DatasetSpec { sequences, length: 8, dim: 4, vocab: 16, seed: 1, ..Default::default() };
    let data = Dataset::<f64>::generate(&spec).expect("dataset");
    let opts = ContextualOptions { policy: Policy::Measured, threads: 1, ..Default::default() };
    let m = Memorizer::build(&data, &opts).expect("memorizer");
    let x: Batch<BigReal> = data.inputs.convert().expect("inputs");
    let mut group = c.benchmark_group(format!("bigfloat/memorizer/N={sequences}"));
    group.throughput(Throughput::Elements((sequences * spec.length) as u64));
    for bits in [1024u64, 4096] {
        let backend = BigFloatBackend::with_threads(bits, threads).expect("backend");
        group.bench_with_input(BenchmarkId::new(format!("{bits}bits"), format!("{threads}t")), &x, |b, x| {
            b.iter(|| black_box(backend.run(&m.model, x).expect("forward")))
        });
    }
    group.finish();
}

fn bench_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("bigfloat/op");
    for bits in [4096u64, 65536] {
        let x = BigReal::from_f64(-0.7371).with_bits(bits);
        let third = BigReal::from_f64(1.0).with_bits(bits).div(&BigReal::from_f64(3.0));
        group.bench_function(BenchmarkId::new("exp", bits), |b| b.iter(|| black_box(black_box(&x).exp())));
        group.bench_function(BenchmarkId::new("mul", bits), |b| b.iter(|| black_box(black_box(&third).mul(&third))));
    }
    group.finish();
}

fn main() {
    let mut c = common::criterion();
    bench_ops(&mut c);
    for threads in [1, common::machine_threads()] {
        for sequences in [10, 30] {
            bench_forward(&mut c, sequences, threads);
        }
    }
    c.final_summary();
}
