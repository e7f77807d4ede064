//! The separation experiment: Lemma 1's gap bound against the measured separation of contexts.

use anyhow::{Context, Result};
use boltz_construct::one_layer::boltzmann::lemma1_bound_log10;
use boltz_construct::{ContextualMapping, ContextualOptions};
use boltz_core::{Dataset, DatasetSpec};

use super::config::SuiteConfig;
use super::points::PointResult;
use crate::rows::SeparationRow;

pub(super) fn separation_point(cfg: &SuiteConfig, length: usize, vocab: usize, dim: usize, threads: usize) -> Result<PointResult> {
    let available = (0..length).fold(1u128, |acc, i| acc * (vocab - i) as u128 / (i as u128 + 1));
    let sequences = (cfg.separation.sequences as u128).min(available) as usize;
    let spec = DatasetSpec { sequences, length, dim, vocab, seed: cfg.seed, ..Default::default() };
    let ds = Dataset::<f64>::generate(&spec).context("generating the separation dataset")?;
    let cm = ContextualMapping::build(&ds.inputs, &ContextualOptions { seed: cfg.seed, threads, ..Default::default() })?;
    let r = &cm.report;
    let implied = lemma1_bound_log10(length, r.r_a) + (r.gamma / (r.lambda * r.projection.big_m)).log10();
    let row = SeparationRow {
        n: length,
        vocab,
        d: dim,
        sequences,
        lambda: r.lambda,
        r_a: r.r_a,
        gamma: r.gamma,
        measured_log10: r.separation_bigfloat.min_gap_log10,
        lemma1_implied_log10: implied,
        lemma1_margin_log10: r.separation_bigfloat.min_gap_log10 - implied,
        theory_delta_log10: r.log10_delta_theory,
        f64_collisions: r.separation_f64.collisions,
        contexts: r.separation_bigfloat.contexts,
        bits: r.bits,
        is_contextual_mapping: r.is_contextual_mapping,
    };
    // Lemma 1 implies the measured separation is at least the implied bound.
    let held = r.is_contextual_mapping && r.separation_bigfloat.min_gap_log10 >= implied - 1e-9;
    PointResult::of(&row, held)
}
