//! The adversarial experiment: the constructions on data families where mean pooling collides (grid, PTE).

use anyhow::{anyhow, Context, Result};
use boltz_core::{Dataset, DatasetSpec, VocabKind};

use super::capacity::construction_point;
use super::config::SuiteConfig;
use super::points::PointResult;

/// A construction on one data family: the same measurements as a capacity point, plus the family.
pub(super) fn adversarial_point(
    cfg: &SuiteConfig,
    family: &str,
    dim: usize,
    sequences: usize,
    construction: boltz_construct::Construction,
    threads: usize,
) -> Result<PointResult> {
    let a = &cfg.adversarial;
    let kind: VocabKind = family.parse().map_err(|e: boltz_core::UnknownName| anyhow!("{e}"))?;
    let spec = DatasetSpec {
        sequences,
        length: a.length,
        dim,
        vocab: a.vocab,
        seed: cfg.seed,
        classes: 2,
        vocab_kind: kind,
        ..Default::default()
    };
    let ds = Dataset::<f64>::generate(&spec).with_context(|| format!("generating the {family} dataset"))?;
    let (mut row, held, model) = construction_point(cfg, &ds, construction, true, false, threads)?;
    row.family = Some(family.to_string());
    Ok(PointResult::of(&row, held)?.with_model(model, ds))
}
