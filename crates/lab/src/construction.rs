//! Building a memorizing model on a dataset, whatever the construction, and reading a dataset file for it:
//! the one path `boltz memorize`, `boltz verify` and the Python package (`python/`) share, so the CLI and
//! Python give identical reports on the same data.

use std::path::Path;

use anyhow::{Context, Result};
use boltz_bigfloat::{BigReal, BitsSearch};
use boltz_construct::deep::bit_extraction::{OptimalMemorizer, OptimalOptions, Task};
use boltz_construct::deep::yun::{Yun, YunOptions, YunVariant};
use boltz_construct::verify::BitsSearchParams;
use boltz_construct::{Construction, ContextualOptions, ExtensionOptions, Memorizer};
use boltz_core::format;
use boltz_core::{Backend, DataReport, Dataset, Memorization, Requirements};

use crate::backends::Job;

/// What [`build`] builds, and with what.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// The construction, with its policy, grid or task.
    pub construction: Construction,
    /// Seed of the direction search.
    pub seed: u64,
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// Random directions the one-layer construction tries for `v` (≥ 1; `ContextualOptions::CANDIDATES`
    /// unless the caller asks for others).
    pub candidates: usize,
}

/// A built memorizing model, whatever the construction.
#[derive(Clone, Debug)]
pub struct Built {
    /// The model, exactly as built.
    pub model: boltz_core::Model<BigReal>,
    /// The bits it was built (and verified) with.
    pub bits: u64,
    /// How it memorizes at `bits` (arbitrary precision).
    pub exact: Memorization,
    /// The construction's own report (JSON).
    pub report: serde_json::Value,
    /// Human-readable lines for the report.
    pub summary: Vec<String>,
    /// Seconds of a verification at `bits` that already ran the whole model exactly (Yun's
    /// event-driven evaluator); a bigfloat run at `bits` reuses it instead of a plain forward.
    pub verified_seconds: Option<f64>,
    /// The fewest-bits search the construction already made (the fewest-bits policy).
    pub fewest_bits: Option<BitsSearch>,
    /// Where a fewest-bits search starts (the one-layer memorizer's analytic estimate); `None` bisects.
    pub bits_estimate: Option<u64>,
}

/// The model parameter (file metadata `construction.build_bits`) recording the bits a model was built and
/// verified with.
pub const BUILD_BITS: &str = "build_bits";

/// The bits `model` records it was built and verified with ([`BUILD_BITS`]), where it records them.
pub fn recorded_build_bits(model: &boltz_core::Model<BigReal>) -> Option<u64> {
    model.info().params.get(BUILD_BITS)?.parse().ok()
}

/// Builds `options.construction` on `data` (checked first, see [`check_dataset`]). The model records the
/// bits it was built and verified with ([`BUILD_BITS`]), so a later `verify`, Python's `verify` and the
/// fewest-bits search start from them.
pub fn build(data: &Dataset<f64>, options: &BuildOptions) -> Result<Built> {
    let built = build_construction(data, options)?;
    let info = built.model.info().clone().with(BUILD_BITS, built.bits);
    Ok(Built { model: built.model.with_info(info), ..built })
}

fn build_construction(data: &Dataset<f64>, options: &BuildOptions) -> Result<Built> {
    let threads = options.threads;
    match options.construction {
        Construction::OneLayer(policy) => {
            let opts = ContextualOptions { policy, seed: options.seed, threads, candidates: options.candidates, ..Default::default() };
            let m = Memorizer::build(data, &opts).context("building the memorizer")?;
            let r = &m.report;
            let c = &r.contextual;
            let summary = vec![
                format!("one-layer memorizer ({} policy)", policy.name()),
                format!("  λ = {:.4e}, r_a = λM² = {:.1}, γ = {:.3e}, v = {:?}", c.lambda, c.r_a, c.gamma, c.projection.v),
                format!(
                    "  separation of context ids: 1e{:.1} measured (arbitrary precision); Theorem 2 worst case 1e{:.3e}; f64 collisions: {}",
                    c.separation_bigfloat.min_gap_log10, c.log10_delta_theory, c.separation_f64.collisions
                ),
                format!("  params {} dense / {} factored (paper's count: {}); FFN width {}", r.params.dense, r.params.factored, r.paper_params, r.hidden),
            ];
            Ok(Built {
                model: m.model.clone(),
                bits: r.build_bits,
                exact: r.memorization.clone(),
                report: serde_json::to_value(r)?,
                summary,
                verified_seconds: None,
                fewest_bits: r.fewest_bits.clone(),
                bits_estimate: r.bits_estimate(),
            })
        }
        Construction::Yun(delta) | Construction::YunFull(delta) => {
            let variant = if matches!(options.construction, Construction::Yun(_)) { YunVariant::Adaptive } else { YunVariant::Full };
            let y = Yun::build(data, &YunOptions { variant, threads, delta, ..Default::default() })
                .context("building Yun et al.'s construction")?;
            let r = &y.report;
            let summary = vec![
                format!(
                    "Yun et al. selective-shift construction ({variant:?}), {} δ: 1/δ = {} (minimal {})",
                    r.delta_kind.name(),
                    r.cells,
                    r.minimal_cells
                ),
                format!(
                    "  layers by stage [input affine, quantization, contextual, value] = {:?}; formula {} (+1 affine)",
                    r.layers_by_stage, r.formula.layers
                ),
                format!(
                    "  {} context ids, largest ≈ 2^{:.0}; params {} dense (formula {})",
                    r.ids, r.log2_max_id, r.params.dense, r.formula.params
                ),
            ];
            Ok(Built {
                model: y.model.clone(),
                bits: r.bits,
                exact: r.memorization.clone(),
                report: serde_json::to_value(r)?,
                summary,
                verified_seconds: Some(r.verify_seconds),
                fewest_bits: None,
                bits_estimate: None,
            })
        }
        Construction::Extension(extension) => {
            let b = (extension.build)(data, ExtensionOptions { seed: options.seed, threads })
                .with_context(|| format!("building the {} construction", options.construction))?;
            let mut summary = vec![format!("{} ({})", options.construction, options.construction.label())];
            summary.extend(b.summary);
            Ok(Built {
                model: b.model,
                bits: b.bits,
                exact: b.exact,
                report: b.report,
                summary,
                verified_seconds: None,
                fewest_bits: None,
                bits_estimate: None,
            })
        }
        Construction::BitExtraction(task) => {
            let m = OptimalMemorizer::build(data, &OptimalOptions { task, seed: options.seed, threads, ..Default::default() })
                .context("building the bit-extraction construction")?;
            let r = &m.report;
            let mu = &r.memorizer;
            let summary = vec![
                format!("bit-extraction construction ({}), one averaging attention layer: {} context ids", r.task.name(), r.ids),
                format!(
                    "  blocks by stage [projection, floor, attention + rounding, bit extraction, readout] = {:?}; {} blocks",
                    r.layers_by_stage, r.blocks
                ),
                format!(
                    "  token codes {} bits, sums {} bits, ids {} bits; {} groups of {}, gaps {} bits, words of {} bits",
                    r.token_bits, r.sum_bits, r.id_bits, mu.groups, mu.group_size, mu.gap_bits, mu.word_bits
                ),
                format!("  params {} dense / {} non-zero", r.params.dense, r.params_nonzero),
            ];
            let exact = r.memorization.clone().context("the construction verifies itself")?;
            Ok(Built {
                model: m.model.clone(),
                bits: r.build_bits,
                exact,
                report: serde_json::to_value(r)?,
                summary,
                verified_seconds: Some(r.verify_seconds),
                fewest_bits: None,
                bits_estimate: None,
            })
        }
    }
}

impl Built {
    /// The fewest bits in `8..=self.bits` at which the model still memorizes `data`: the construction's own
    /// search where it made one (the fewest-bits policy), else the search (from [`Built::bits_estimate`]
    /// where there is one), calling `on_probe(bits, check)` after each probe.
    pub fn fewest_bits_search(
        &self,
        data: &Dataset<f64>,
        threads: usize,
        on_probe: impl Fn(u64, &boltz_bigfloat::DecodeCheck),
    ) -> Result<BitsSearch> {
        match &self.fewest_bits {
            Some(search) => Ok(search.clone()),
            None => Ok(boltz_construct::verify::fewest_bits_to_memorize(
                &self.model,
                data,
                &BitsSearchParams::default().bits(8, self.bits).guess(self.bits_estimate).threads(threads),
                on_probe,
            )?),
        }
    }
}

/// The dataset a task memorizes: `data` itself for seq2seq; for next-token, every position of a sequence
/// carries its last position's target ([`boltz_construct::deep::bit_extraction::next_token_dataset`]).
pub fn task_dataset(data: Dataset<f64>, task: Task) -> boltz_core::Result<Dataset<f64>> {
    match task {
        Task::SequenceToSequence => Ok(data),
        Task::NextToken => boltz_construct::deep::bit_extraction::next_token_dataset(&data),
    }
}

/// Checks `data` against what every construction needs (the data report: no token twice in a sequence,
/// consistent targets for permuted sequences); the error names the sequence and position.
pub fn check_dataset(data: &Dataset<f64>) -> boltz_core::Result<()> {
    DataReport::analyze(&data.inputs, Some(&data.targets)).check(&Requirements { no_duplicate_tokens: true, ..Default::default() })
}

/// Reads a dataset file (`format::load_dataset_file`: the boltz format, `.npz`, or an `.npy` of inputs with
/// `labels` or `targets` `.npy`) and checks it ([`check_dataset`]); errors name the file as `what PATH`
/// (e.g. `--dataset data.npz`).
pub fn read_dataset_file(what: &str, path: &Path, labels: Option<&Path>, targets: Option<&Path>) -> Result<Dataset<f64>> {
    let outputs = match (labels, targets) {
        (Some(l), _) => Some((l, format::Outputs::Labels)),
        (None, Some(t)) => Some((t, format::Outputs::Targets)),
        (None, None) => None,
    };
    let data = format::load_dataset_file(path, outputs).with_context(|| format!("reading {what} {}", path.display()))?;
    check_dataset(&data).with_context(|| format!("{what} {}: the data violates what the constructions need", path.display()))?;
    Ok(data)
}

/// Runs a built model rounded to the backend's element type over the dataset: memorization and seconds
/// ([`boltz_construct::verify::run_and_measure`]), as a [`Job`] for [`crate::backends::dispatch`].
pub struct RunOn<'a> {
    /// The model, exactly.
    pub model: &'a boltz_core::Model<BigReal>,
    /// Inputs and targets.
    pub data: &'a Dataset<f64>,
}

impl Job for RunOn<'_> {
    type Output = (Memorization, f64);
    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output> {
        Ok(boltz_construct::verify::run_and_measure(self.model, self.data, backend)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_construct::ConstructionKind;

    #[test]
    fn construction_names_round_trip_and_match_the_cli() {
        boltz_core::named::assert_serde_spells_like_names::<ConstructionKind>();
        assert_eq!("optimal".parse::<ConstructionKind>(), Ok(ConstructionKind::BitExtraction), "the old name still parses");
        let err = "deep".parse::<ConstructionKind>().unwrap_err().to_string();
        assert!(err.contains("unknown construction \"deep\"") && err.contains("one-layer, yun, yun-full, bit-extraction"), "{err}");
    }

    #[test]
    fn optimal_is_the_bit_extraction_construction_and_builds_both_tasks() {
        assert_eq!("optimal".parse::<ConstructionKind>(), Ok(ConstructionKind::BitExtraction));
        let data = Dataset::<f64>::generate(&boltz_core::DatasetSpec { sequences: 6, length: 3, dim: 4, vocab: 8, ..Default::default() })
            .expect("generate");
        let options = BuildOptions { construction: "optimal".parse().expect("a name"), seed: 0, threads: 1, candidates: 10 };
        assert_eq!(options.construction, Construction::BitExtraction(Task::SequenceToSequence));
        let built = build(&data, &options).expect("builds");
        assert!(built.exact.is_perfect() && built.exact.exact == 18, "{:?}", built.exact);
        assert_eq!(built.report["ids"], 18);
        let next = boltz_construct::deep::bit_extraction::next_token_dataset(&data).expect("next-token targets");
        let built = build(&next, &BuildOptions { construction: Construction::BitExtraction(Task::NextToken), ..options }).expect("builds");
        assert_eq!(built.report["ids"], 6);
    }
}
