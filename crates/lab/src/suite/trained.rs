//! The trained experiment: what gradient training of the model class memorizes, per family and width.

use anyhow::{anyhow, Context, Result};
use boltz_core::{Backend, DatasetSpec, VocabKind};

use super::config::SuiteConfig;
use super::points::PointResult;

/// The data of a trained point at N = 1 (the search replaces N).
pub(super) fn trained_data(cfg: &SuiteConfig, family: &str, dim: usize) -> Result<DatasetSpec> {
    let t = &cfg.trained;
    let vocab_kind: VocabKind = family.parse().map_err(|e: boltz_core::UnknownName| anyhow!("{e}"))?;
    Ok(DatasetSpec { sequences: 1, length: t.length, dim, vocab: t.vocab, seed: cfg.seed, classes: 2, vocab_kind, ..Default::default() })
}

/// The trained capacity of one model shape ([`boltz_train::trained_capacity`]); the memorizing model is
/// re-run on the reference backend (independent forward) and its fewest bits bisected in bigfloat. The
/// checked property: the reference backend decodes every token of the answer (when there is one).
pub(super) fn trained_point(
    cfg: &SuiteConfig,
    family: &str,
    dim: usize,
    model_name: &str,
    ffn_width: usize,
    threads: usize,
) -> Result<PointResult> {
    let t = &cfg.trained;
    let m = t.models.iter().find(|m| m.name == model_name).ok_or_else(|| anyhow!("no model {model_name:?} in trained.models"))?;
    let shape = boltz_train::ModelShape { dim, blocks: m.blocks, heads: 1, head_size: dim, rank: m.rank, ffn_width };
    let params_stored = boltz_train::init_model::<f64>(&shape, 0)?.param_count().factored;
    let data = trained_data(cfg, family, dim)?;
    let search = boltz_train::CapacitySearch {
        shape,
        train: boltz_train::TrainConfig { steps: t.steps, lr: t.lr, threads, log_every: t.steps, ..Default::default() },
        data: data.clone(),
        seeds: t.seeds.clone(),
        max_sequences: t.max_sequences,
        warm_start: m.warm_start,
    };
    let cap = boltz_train::trained_capacity(&search, |_| {}).context("the trained-capacity search")?;
    let (reference_accuracy, fewest_bits) = match &cap.memorizer {
        None => (None, None),
        Some((model, ds)) => {
            let out = boltz_core::ReferenceBackend.forward(&boltz_core::ReferenceBackend.prepare(model)?, &ds.inputs)?;
            let accuracy = boltz_core::Memorization::measure(&out, &ds.targets)?.accuracy;
            let bits = if t.bisect {
                let exact: boltz_core::Model<boltz_bigfloat::BigReal> = model.convert()?;
                boltz_construct::verify::fewest_bits_to_memorize(
                    &exact,
                    ds,
                    &boltz_construct::verify::BitsSearchParams::default().bits(8, 64).threads(threads),
                    |_, _| {},
                )?
                .fewest
            } else {
                None
            };
            (Some(accuracy), bits)
        }
    };
    let r = cap.report;
    let row = crate::rows::TrainedRow {
        model: m.name.clone(),
        family: family.to_string(),
        n: t.length,
        d: dim,
        vocab: t.vocab,
        classes: data.classes,
        blocks: m.blocks,
        rank: m.rank,
        ffn_width,
        params: r.params,
        params_stored,
        warm_start: m.warm_start,
        steps: t.steps,
        lr: t.lr,
        seeds: t.seeds.clone(),
        max_sequences: t.max_sequences,
        largest_memorized: r.largest_memorized,
        smallest_failed: r.smallest_failed,
        bits_per_param: r.bits_per_param,
        construction_sequences_at_width: ffn_width / t.length,
        reference_accuracy,
        fewest_bits,
        runs: r.probes.len(),
        probes: r.probes,
    };
    PointResult::of(&row, reference_accuracy.is_none_or(|a| a == 1.0))
}
