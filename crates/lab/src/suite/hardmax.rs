//! The hardmax experiment: Theorem 1's impossibility for one hardmax attention layer.

use anyhow::Result;
use boltz_construct::one_layer::hardmax;

use super::config::SuiteConfig;
use super::points::PointResult;

pub(super) fn hardmax_point(cfg: &SuiteConfig, dim: usize) -> Result<PointResult> {
    let r = hardmax::demonstrate(dim, cfg.hardmax.family, cfg.hardmax.draws, cfg.seed)?;
    let held = r.draws_with_collision == r.draws && r.softmax_separates;
    PointResult::of(&r, held)
}
