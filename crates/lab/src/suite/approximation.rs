//! The approximation experiment: the FF∘SA∘FF approximator's L² error as the grid width δ shrinks.

use anyhow::Result;
use boltz_construct::one_layer::approximator::Approximator;

use super::config::SuiteConfig;
use super::points::{target, PointResult};
use crate::rows::ApproximationRow;

pub(super) fn approximation_point(cfg: &SuiteConfig, target_name: &str, cells: usize, threads: usize) -> Result<PointResult> {
    let a = Approximator::build(target(target_name)?, cfg.approximation.length, 1, cells, cfg.approximation.samples, cfg.seed, threads)?;
    let r = &a.report;
    let row = ApproximationRow {
        target: target_name.to_string(),
        n: r.n,
        d: r.d,
        cells,
        delta: r.delta,
        l2_error: r.l2_error,
        l2_floor: r.l2_error_piecewise_constant,
        params_dense: r.params.dense,
        ids: r.ids,
        colliding_ids: r.colliding_ids,
        bits: r.bits,
    };
    PointResult::of(&row, r.l2_error.is_finite())
}
