//! The capacity experiment (and dataset files): fewest bits, layers and parameters of each construction
//! as N grows.

use anyhow::{anyhow, bail, Context, Result};
use boltz_bigfloat::BigReal;
use boltz_construct::deep::bit_extraction::Task;
use boltz_construct::deep::kim::kim_reference;
use boltz_construct::deep::yun::{yun_cells, yun_counts};
use boltz_construct::deep::yun::{Yun, YunDelta, YunOptions};
use boltz_construct::{Construction, ContextualOptions, Memorizer, Policy};
use boltz_core::{Dataset, DatasetSpec, Model};

use super::config::SuiteConfig;
use super::points::PointResult;
use super::runs::{attention_rank, backend_runs};
use crate::rows::{BitExtractionFields, BitsSearchFields, BuiltColumns, ConstructionRow, OneLayerFields, YunFields};

/// What measuring a construction on a dataset gives: its row, whether its checked property held, and the
/// model it built (`None` where the build was refused, which the row records).
pub(super) type Measured = (ConstructionRow, bool, Option<Model<BigReal>>);

/// The row of `construction` on `ds` before anything is built: the data's shape and vocabulary, nothing
/// measured.
fn unbuilt_row(ds: &Dataset<f64>, construction: Construction) -> ConstructionRow {
    let [sequences, n, d] = ds.inputs.shape();
    ConstructionRow {
        sequences,
        n,
        d,
        vocab: boltz_core::Vocabulary::of(&ds.inputs).len(),
        policy: construction,
        family: None,
        attention: None,
        exact_in_bigfloat: false,
        build_error: None,
        built: None,
    }
}

/// The columns every built construction fills: `layers` as the construction counts them, the model's
/// parameters and attention ranks, `(build bits, build seconds, verification seconds)`, the backend runs and
/// the fewest-bits search; no grid cells and no family's fields (set those with struct update syntax).
fn measured_columns(
    layers: usize,
    model: &boltz_core::Model<boltz_bigfloat::BigReal>,
    (build_bits, build_seconds, verify_seconds): (u64, f64, f64),
    runs: Vec<crate::rows::BackendRunRow>,
    search: Option<&boltz_bigfloat::BitsSearch>,
) -> BuiltColumns {
    let params = model.param_count();
    BuiltColumns {
        layers,
        params_dense: params.dense,
        params_factored: params.factored,
        yun_cells: 0,
        build_bits,
        build_seconds,
        latency_bigfloat_ms: verify_seconds * 1e3,
        attention_rank: attention_rank(model),
        runs,
        bits: search.map(BitsSearchFields::from),
        one_layer: None,
        yun: None,
        bit_extraction: None,
    }
}

/// Yun et al.'s data-adaptive construction on a dataset, with the dyadic (`yun`) or the minimal
/// (`yun-minimal`) grid width δ.
pub(super) fn yun_point(
    cfg: &SuiteConfig,
    ds: &Dataset<f64>,
    delta: YunDelta,
    bisect: bool,
    softmax_sweep: bool,
    threads: usize,
) -> Result<Measured> {
    let [sequences, length, dim] = ds.inputs.shape();
    let vocab = boltz_core::Vocabulary::of(&ds.inputs).len();
    let y = Yun::build(ds, &YunOptions { threads, delta, ..Default::default() }).context("building Yun et al.'s construction")?;
    let r = &y.report;
    let bits = if bisect {
        Some(
            y.fewest_bits(ds, &boltz_construct::verify::BitsSearchParams::default().bits(8, r.bits).threads(threads))
                .context("bisecting the fewest bits")?,
        )
    } else {
        None
    };
    let softmax_min_log2_lambda = if softmax_sweep {
        // "Softmax as approximate hardmax": the smallest scale λ = 2^k at which softmax still memorizes.
        Some(y.softmax_realisation(ds, 0, 600, threads).context("softmax realisation sweep")?.min_log2_lambda)
    } else {
        None
    };
    let runs = backend_runs(cfg, threads, &y.model, ds)?;
    let row = ConstructionRow {
        sequences,
        n: length,
        d: dim,
        vocab,
        policy: Construction::Yun(delta),
        family: None,
        attention: None,
        exact_in_bigfloat: r.memorization.is_perfect(),
        build_error: None,
        built: Some(BuiltColumns {
            yun_cells: r.cells,
            yun: Some(YunFields {
                yun_delta: r.delta_kind.name().to_string(),
                yun_delta_value: r.delta,
                yun_minimal_cells: r.minimal_cells,
                layers_by_stage: r.layers_by_stage,
                formula_layers: r.formula.layers,
                realised_params_formula: r.realised_params,
                t214_params_formula: r.formula.params,
                log2_max_id: r.log2_max_id,
                softmax_min_log2_lambda,
            }),
            ..measured_columns(r.layers, &y.model, (r.bits, r.build_seconds, r.verify_seconds), runs, bits.as_ref())
        }),
    };
    let exact = r.memorization.is_perfect() && r.formula.layers + 1.0 == r.layers as f64 && r.params.dense == r.realised_params;
    Ok((row, exact, Some(y.model)))
}

/// Runs the capacity point: build, verify in arbitrary precision, bisect bits, run in f64/f32.
pub fn capacity_point(cfg: &SuiteConfig, sequences: usize, construction: Construction, threads: usize) -> Result<PointResult> {
    let c = &cfg.capacity;
    let spec = DatasetSpec { sequences, length: c.length, dim: c.dim, vocab: c.vocab, seed: cfg.seed, classes: 2, ..Default::default() };
    let ds = Dataset::<f64>::generate(&spec).context("generating the capacity dataset")?;
    let bisect = c.bisects(construction, sequences);
    let (row, held, model) = construction_point(cfg, &ds, construction, bisect, sequences <= c.softmax_max_sequences, threads)?;
    Ok(PointResult::of(&row, held)?.with_model(model, ds))
}

/// Runs a construction on a dataset file of `capacity.datasets`, with the capacity experiment's bisection
/// and softmax-sweep limits.
pub(super) fn dataset_point(cfg: &SuiteConfig, name: &str, construction: Construction, threads: usize) -> Result<PointResult> {
    let c = &cfg.capacity;
    let file = dataset_file(cfg, name)?;
    let ds = file.read()?;
    let sequences = ds.inputs.shape()[0];
    let bisect = c.bisects(construction, sequences);
    let (mut row, held, model) = construction_point(cfg, &ds, construction, bisect, sequences <= c.softmax_max_sequences, threads)?;
    row.family = Some(format!("file:{name}"));
    Ok(PointResult::of(&row, held)?.with_model(model, ds))
}

pub(super) fn dataset_file<'a>(cfg: &'a SuiteConfig, name: &str) -> Result<&'a crate::suite::config::DatasetFileConfig> {
    cfg.capacity.datasets.iter().find(|f| f.name() == name).ok_or_else(|| anyhow!("no dataset named {name:?} in capacity.datasets"))
}

/// Builds the construction on `ds` — the one-layer memorizer under a policy, Yun et al.'s (`yun`,
/// `yun-minimal`) or the bit-extraction construction — and measures it (the capacity and adversarial
/// experiments' one path): its row, whether its property held, and its model (recording its build bits).
/// The configuration admits only these (`config::check_policy`).
pub(super) fn construction_point(
    cfg: &SuiteConfig,
    ds: &Dataset<f64>,
    construction: Construction,
    bisect: bool,
    softmax_sweep: bool,
    threads: usize,
) -> Result<Measured> {
    let (row, held, model) = match construction {
        Construction::Yun(delta) => yun_point(cfg, ds, delta, bisect, softmax_sweep, threads),
        Construction::BitExtraction(Task::SequenceToSequence) => bit_extraction_point(cfg, ds, bisect, threads),
        Construction::OneLayer(policy) => one_layer_point(cfg, ds, policy, bisect, threads),
        Construction::Extension(_) => extension_point(cfg, ds, construction, bisect, threads),
        other => bail!("{other}: the suite does not run this construction"),
    }?;
    // Every model records the bits it was built and verified with, as `boltz memorize`'s do, so an
    // exported row's model is verified at them by default.
    let model = match (model, &row.built) {
        (Some(m), Some(built)) => {
            let info = m.info().clone().with(crate::construction::BUILD_BITS, built.build_bits);
            Some(m.with_info(info))
        }
        (m, _) => m,
    };
    Ok((row, held, model))
}

/// An extension on `ds`, built as `boltz memorize` builds it ([`crate::construction::build`]) and measured
/// with the columns every construction has (no family's own columns). A build that fails is a result: the
/// row carries the reason.
fn extension_point(cfg: &SuiteConfig, ds: &Dataset<f64>, construction: Construction, bisect: bool, threads: usize) -> Result<Measured> {
    let mut row = unbuilt_row(ds, construction);
    let options = crate::construction::BuildOptions { construction, seed: cfg.seed, threads, candidates: ContextualOptions::CANDIDATES };
    let clock = std::time::Instant::now();
    let built = match crate::construction::build(ds, &options) {
        Ok(b) => b,
        Err(e) => {
            row.build_error = Some(format!("{e:#}"));
            return Ok((row, false, None));
        }
    };
    // The build verifies the model at its bits: its seconds are build and verification together (the
    // bigfloat latency is not measured apart, so it stays empty).
    let build_seconds = clock.elapsed().as_secs_f64();
    let search = if bisect { Some(built.fewest_bits_search(ds, threads, |_, _| {}).context("bisecting the fewest bits")?) } else { None };
    let runs = backend_runs(cfg, threads, &built.model, ds)?;
    let layers = built.model.layer_count();
    row.exact_in_bigfloat = built.exact.is_perfect();
    row.built =
        Some(measured_columns(layers.attention + layers.ffn, &built.model, (built.bits, build_seconds, f64::NAN), runs, search.as_ref()));
    let exact = built.exact.is_perfect();
    Ok((row, exact, Some(built.model)))
}

/// The parameter-optimal bit-extraction construction on `ds` (sequence-to-sequence). Data whose contexts
/// averaging cannot separate (equal token sums) is a result, not an error: the row carries the builder's
/// refusal.
pub(super) fn bit_extraction_point(cfg: &SuiteConfig, ds: &Dataset<f64>, bisect: bool, threads: usize) -> Result<Measured> {
    use boltz_construct::deep::bit_extraction::{OptimalMemorizer, OptimalOptions};
    let dim = ds.inputs.shape()[2];
    let mut row = ConstructionRow {
        attention: Some("averaging (W_Q = W_K = 0)".to_string()),
        ..unbuilt_row(ds, Construction::BitExtraction(Task::SequenceToSequence))
    };
    let m = match OptimalMemorizer::build(ds, &OptimalOptions { seed: cfg.seed, threads, ..Default::default() }) {
        Ok(m) => m,
        Err(e @ (boltz_core::Error::Infeasible(_) | boltz_core::Error::InvalidParameter { .. })) => {
            row.build_error = Some(e.to_string());
            return Ok((row, true, None));
        }
        Err(e) => return Err(anyhow!(e)).with_context(|| format!("building the bit-extraction construction (N = {})", row.sequences)),
    };
    let r = &m.report;
    let exact = r.memorization.as_ref().is_some_and(|m| m.exact == m.tokens);
    let search = if bisect {
        Some(
            m.fewest_bits(ds, &boltz_construct::verify::BitsSearchParams::default().bits(8, r.build_bits).threads(threads))
                .context("bisecting the fewest bits")?,
        )
    } else {
        None
    };
    let runs = backend_runs(cfg, threads, &m.model, ds)?;
    row.exact_in_bigfloat = exact;
    row.built = Some(BuiltColumns {
        bit_extraction: Some(BitExtractionFields {
            task: r.task.name().to_string(),
            bx_ids: r.ids,
            params_nonzero: r.params_nonzero,
            bx_layers_by_stage: r.layers_by_stage,
            bx_token_bits: r.token_bits,
            bx_sum_bits: r.sum_bits,
            bx_id_bits: r.id_bits,
            bx_word_bits: r.memorizer.word_bits,
            bx_group_size: r.memorizer.group_size,
            bx_groups: r.memorizer.groups,
            bx_gap_bits: r.memorizer.gap_bits,
            one_layer_ffn_params: (r.ids * (dim + 2) + 2 * dim) as u64,
        }),
        ..measured_columns(
            r.blocks + r.attention_layers,
            &m.model,
            (r.build_bits, r.build_seconds, r.verify_seconds),
            runs,
            search.as_ref(),
        )
    });
    // The property: exact memorization, and the fewest bits (where bisected) at least the words' bits.
    let bits_ok = search.as_ref().is_none_or(|s| s.fewest.is_some_and(|f| f >= r.memorizer.word_bits));
    Ok((row, exact && bits_ok, Some(m.model)))
}

/// The one-layer memorizer on `ds` under a policy. A mean-pooling build that fails because two contexts
/// collide is a result (the row says so), not an error: no theorem promises that mean pooling separates.
pub(super) fn one_layer_point(cfg: &SuiteConfig, ds: &Dataset<f64>, policy: Policy, bisect: bool, threads: usize) -> Result<Measured> {
    let seed = cfg.seed;
    let [sequences, length, dim] = ds.inputs.shape();
    let vocab = boltz_core::Vocabulary::of(&ds.inputs).len();
    let nn = sequences * length;
    let mut row = ConstructionRow {
        attention: Some(if policy == Policy::MeanPool { "mean pooling (λ = 0)" } else { "softmax (λ > 0)" }.to_string()),
        ..unbuilt_row(ds, Construction::OneLayer(policy))
    };
    let opts = ContextualOptions { policy, seed, threads, verify_top: if bisect { 2 } else { 0 }, ..Default::default() };
    let m = match Memorizer::build(ds, &opts) {
        Ok(m) => m,
        Err(e @ boltz_core::Error::Infeasible(_)) if policy == Policy::MeanPool => {
            row.build_error = Some(e.to_string());
            return Ok((row, true, None));
        }
        Err(e) => return Err(anyhow!(e)).with_context(|| format!("building the one-layer memorizer (N = {sequences}, {})", policy.name())),
    };
    let r = &m.report;
    let c = &r.contextual;
    let layers = m.model.layer_count();
    let cells = yun_cells(&ds.inputs);
    let (yun_a, yun_f) = (yun_counts(dim, cells, vocab, nn, false), yun_counts(dim, cells, vocab, nn, true));
    let (kim_depth, kim_params) = kim_reference(dim, length, sequences);
    let best = c.lambda_search.iter().find(|cand| cand.lambda == c.lambda);
    let search = match (&r.fewest_bits, bisect) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => Some(
            m.fewest_bits(ds, &boltz_construct::verify::BitsSearchParams::default().bits(8, r.build_bits).threads(threads))
                .context("bisecting the fewest bits")?,
        ),
        (None, false) => None,
    };
    let runs = backend_runs(cfg, threads, &m.model, ds)?;
    row.exact_in_bigfloat = r.memorization.is_perfect();
    row.built = Some(BuiltColumns {
        yun_cells: yun_a.cells,
        one_layer: Some(OneLayerFields {
            paper_params: r.paper_params,
            lower_bound_sqrt_nN: (nn as f64).sqrt(),
            yun_adaptive_layers: yun_a.layers,
            yun_adaptive_params: yun_a.params,
            yun_full_layers: yun_f.layers,
            yun_full_params: yun_f.params,
            kim_depth_reference: kim_depth,
            kim_params_reference: kim_params,
            lambda: c.lambda,
            lambda_unshrunk: c.lambda_unshrunk,
            r_a: c.r_a,
            lambda_shrink_log2: best.map(|b| b.shrink_log2),
            lambda_candidates: best.map(|_| c.lambda_search.len()),
            separation_log10: c.separation_bigfloat.min_gap_log10,
            theory_delta_log10: c.log10_delta_theory,
            bigfloat_max_abs_error: r.memorization.max_abs_error,
            bigfloat_log10_max_abs_error: r.memorization.log10_max_abs_error,
        }),
        ..measured_columns(
            layers.attention + layers.ffn,
            &m.model,
            (r.build_bits, r.build_seconds, r.verify_seconds),
            runs,
            search.as_ref(),
        )
    });
    let held = r.memorization.is_perfect();
    Ok((row, held, Some(m.model)))
}
