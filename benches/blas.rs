//! `cargo bench --bench blas`: the workload table on the OpenBLAS backend (f32 and f64, 1 thread and all
//! cores). The OpenBLAS kernel in use is printed first (and chosen safely when OPENBLAS_CORETYPE is unset).

mod common;

use boltz_blas::{openblas, BlasBackend};

fn main() {
    openblas::reexec_with_coretype();
    let core = openblas::CoreReport::current();
    eprintln!("OpenBLAS core {} ({:?}; {})", core.corename, core.source, core.config);
    if let Some(w) = core.warning() {
        eprintln!("{w}");
    }
    let mut c = common::criterion();
    let all = common::machine_threads();
    for threads in [1, all] {
        let blas = BlasBackend::new(threads).expect("blas backend");
        common::forward_benches::<f32, _>(&mut c, &blas, threads, |w| w.bench_batch);
        if threads == all {
            common::forward_benches::<f64, _>(&mut c, &blas, threads, |w| w.bench_batch);
        }
    }
    c.final_summary();
}
