//! `cargo bench --bench train`: training throughput (issue #19) — one full-batch loss-and-gradient
//! evaluation (forward, loss and the whole backward pass) per iteration, in f32 and f64, on 1 thread and
//! all cores, with the FFN products on each CPU engine multiplier: `cpu` (matrixmultiply) and `blas`
//! (OpenBLAS, one OpenBLAS thread per worker). Shapes: the default suite's trained model (N = 16, n = 8,
//! d = 4, rank-1 attention, FFN width 64) and a wide one (N = 64, H = 512). Throughput is in tokens per
//! second of one gradient evaluation (an Adam step adds a pass over the parameters).

mod common;

use std::hint::black_box;

use boltz_blas::{openblas, OpenBlas};
use boltz_core::{Dataset, DatasetSpec, Model};
use boltz_cpu::engine::Gemm;
use boltz_cpu::MatrixMultiply;
use boltz_train::{init_model, loss_and_gradient_on, Loss, ModelShape, Scalar};
use criterion::{BenchmarkId, Criterion, Throughput};

fn bench_shape<T: Scalar, G: Gemm<T>>(c: &mut Criterion, backend: &str, gemm: &G, sequences: usize, width: usize, threads: usize) {
    let spec = DatasetSpec { sequences, length: 8, dim: 4, vocab: 16, seed: 1, ..Default::default() };
    let data: Dataset<T> = Dataset::<f64>::generate(&spec).and_then(|d| d.convert()).expect("dataset");
    let shape = ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 4, rank: Some(1), ffn_width: width };
    let model: Model<T> = init_model(&shape, 1).expect("model");
    let mut group = c.benchmark_group(format!("train/{backend}/{}", T::DTYPE));
    group.throughput(Throughput::Elements((sequences * spec.length) as u64));
    group.bench_with_input(BenchmarkId::new(format!("N={sequences},H={width}"), format!("{threads}t")), &data, |b, d| {
        b.iter(|| black_box(loss_and_gradient_on(gemm, &model, d, Loss::SquaredError, threads).expect("gradient")))
    });
    group.finish();
}

fn main() {
    openblas::reexec_with_coretype();
    openblas::set_threads(1);
    let mut c = common::criterion();
    let all = common::machine_threads();
    let blas = OpenBlas::new();
    for threads in [1, all] {
        for (sequences, width) in [(16, 64), (64, 512)] {
            bench_shape::<f32, _>(&mut c, "cpu", &MatrixMultiply, sequences, width, threads);
            bench_shape::<f64, _>(&mut c, "cpu", &MatrixMultiply, sequences, width, threads);
            bench_shape::<f32, _>(&mut c, "blas", &blas, sequences, width, threads);
            bench_shape::<f64, _>(&mut c, "blas", &blas, sequences, width, threads);
        }
    }
    c.final_summary();
}
