//! Proposition 1: the FF∘SA∘FF network's L² error falls as the grid is refined, for two targets.

#![allow(clippy::unwrap_used)]

use boltz_construct::one_layer::approximator::{Approximator, Target};

#[test]
fn error_falls_as_delta_shrinks() {
    for (target, n) in [(Target::ProductMean, 3), (Target::SoftmaxPool, 2)] {
        let mut last = f64::INFINITY;
        for cells in [2, 4, 8, 16] {
            let a = Approximator::build(target, n, 1, cells, 300, 7, 2).unwrap();
            let r = &a.report;
            eprintln!(
                "{target:?} n={n} δ=1/{cells}: L2 {:.4e} (f̄ floor {:.4e}) params {} ids {} collisions {} bits {}",
                r.l2_error, r.l2_error_piecewise_constant, r.params.dense, r.ids, r.colliding_ids, r.bits
            );
            // The network reproduces f̄ up to the thin boundary slabs, and f̄'s error shrinks with δ.
            assert!(r.l2_error < 1.05 * r.l2_error_piecewise_constant + 1e-3, "{r:?}");
            assert!(r.l2_error < last, "error did not fall at δ = 1/{cells}: {} ≥ {last}", r.l2_error);
            last = r.l2_error;
        }
    }
}
