//! The experiment suite: every point is computed independently (so sweeps can be sharded), and every
//! result row says what it measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use boltz_construct::approximator::{Approximator, Target};
use boltz_construct::baselines::{kim_reference, yun_cells, yun_counts};
use boltz_construct::boltzmann::lemma1_bound_log10;
use boltz_construct::yun::{Yun, YunDelta, YunOptions};
use boltz_construct::{hardmax, ContextualMapping, ContextualOptions, Memorizer, Policy};
use boltz_core::{Backend, Dataset, DatasetSpec, VocabKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backends::{dispatch, Job};
use crate::config::SuiteConfig;
use crate::meta::{write_csv, write_json, RunMeta};
use crate::rows::{
    value_or_reason, ApproximationRow, BackendRunRow, BitExtractionFields, BitsSearchFields, Built, ConstructionRow, OneLayerFields,
    SeparationRow, YunFields,
};

/// The experiments, in suite order.
pub const EXPERIMENTS: [&str; 6] = ["capacity", "adversarial", "separation", "approximation", "hardmax", "trained"];

/// One independently computable point of the suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "experiment", rename_all = "lowercase")]
pub enum PointSpec {
    /// A one-layer memorizer (or Yun et al.'s construction) for N sequences under a policy.
    Capacity {
        /// Sequences N.
        sequences: usize,
        /// Construction (CLI spelling).
        policy: String,
    },
    /// A construction on a dataset file of `capacity.datasets` (a capacity row with `family` =
    /// `file:<name>`).
    Dataset {
        /// The dataset's name (`capacity.datasets[i].name`, or its file stem).
        dataset: String,
        /// Construction (CLI spelling).
        policy: String,
    },
    /// A construction on a data family (generic, grid, Prouhet–Tarry–Escott) with token dimension `dim`.
    Adversarial {
        /// Data family (`random`, `grid`, `pte`).
        family: String,
        /// Token dimension d.
        dim: usize,
        /// Sequences N.
        sequences: usize,
        /// Construction (CLI spelling).
        policy: String,
    },
    /// A contextual mapping for (n, |V|, d).
    Separation {
        /// Sequence length n.
        length: usize,
        /// Vocabulary size |V|.
        vocab: usize,
        /// Token dimension d.
        dim: usize,
    },
    /// An approximator for a target at 1/δ cells.
    Approximation {
        /// Target function (`product-mean`, `softmax-pool`).
        target: String,
        /// Grid cells per coordinate, 1/δ.
        cells: usize,
    },
    /// The hardmax demonstration in dimension d.
    Hardmax {
        /// Token dimension d.
        dim: usize,
    },
    /// The trained capacity of a model (`trained.models`) with an FFN width on a data family.
    Trained {
        /// Data family (`random`, `grid`, `pte`).
        family: String,
        /// Token dimension d.
        dim: usize,
        /// The model's name.
        model: String,
        /// FFN hidden width.
        ffn_width: usize,
    },
}

impl PointSpec {
    /// The experiment this point belongs to.
    pub fn experiment(&self) -> &'static str {
        match self {
            Self::Capacity { .. } | Self::Dataset { .. } => "capacity",
            Self::Adversarial { .. } => "adversarial",
            Self::Separation { .. } => "separation",
            Self::Approximation { .. } => "approximation",
            Self::Hardmax { .. } => "hardmax",
            Self::Trained { .. } => "trained",
        }
    }
}

/// Every point of the suite, in a fixed order (the `point` index used for sharding).
pub fn points(cfg: &SuiteConfig) -> Vec<PointSpec> {
    let mut out = Vec::new();
    for &n in &cfg.capacity.sequences {
        for p in &cfg.capacity.policies {
            if yun_construction(p).is_none() || n <= cfg.capacity.yun_max_sequences {
                out.push(PointSpec::Capacity { sequences: n, policy: p.clone() });
            }
        }
    }
    for f in &cfg.capacity.datasets {
        for p in f.policies.as_ref().unwrap_or(&cfg.capacity.policies) {
            out.push(PointSpec::Dataset { dataset: f.name(), policy: p.clone() });
        }
    }
    let a = &cfg.adversarial;
    for f in &a.families {
        for &n in &a.sequences {
            for p in &a.policies {
                out.push(PointSpec::Adversarial { family: f.kind.clone(), dim: f.dim, sequences: n, policy: p.clone() });
            }
        }
    }
    for &[length, vocab, dim] in &cfg.separation.grid {
        out.push(PointSpec::Separation { length, vocab, dim });
    }
    for t in &cfg.approximation.targets {
        for &cells in &cfg.approximation.cells {
            out.push(PointSpec::Approximation { target: t.clone(), cells });
        }
    }
    for &dim in &cfg.hardmax.dims {
        out.push(PointSpec::Hardmax { dim });
    }
    for (f, m, ffn_width) in cfg.trained.grid() {
        out.push(PointSpec::Trained { family: f.kind.clone(), dim: f.dim, model: m.name.clone(), ffn_width });
    }
    out
}

/// A shard `i/k` of a sweep: the points whose index is `i` modulo `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, k) = s.split_once('/').ok_or_else(|| format!("expected i/k (e.g. 0/4), got {s:?}"))?;
        let index: usize = i.parse().map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: usize = k.parse().map_err(|_| format!("shard count {k:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 ≤ i < k"));
        }
        Ok(Self { index, count })
    }
}

/// The config name of the parameter-optimal bit-extraction construction (sequence-to-sequence).
pub const BIT_EXTRACTION: &str = "bit-extraction";

/// The grid of a Yun et al. construction name (`yun`: dyadic δ, `yun-minimal`: minimal δ); `None` for the
/// one-layer policies. The one place that decides which config names mean Yun's model.
pub fn yun_construction(name: &str) -> Option<YunDelta> {
    match name {
        "yun" => Some(YunDelta::Dyadic),
        "yun-minimal" => Some(YunDelta::Minimal),
        _ => None,
    }
}

fn policy(name: &str) -> Result<Policy> {
    name.parse::<Policy>().map_err(|e| anyhow!(e))
}

fn target(name: &str) -> Result<Target> {
    match name {
        "product-mean" => Ok(Target::ProductMean),
        "softmax-pool" => Ok(Target::SoftmaxPool),
        other => Err(anyhow!("unknown target {other:?}")),
    }
}

/// What running one point produced: its row and whether its checked property held.
pub struct PointResult {
    /// The result row.
    pub row: Value,
    /// `false` when a property the construction guarantees failed (exit code 1).
    pub property_held: bool,
}

impl PointResult {
    /// A typed row ([`crate::rows`]) and whether its property held.
    fn of<R: Serialize>(row: &R, property_held: bool) -> Result<Self> {
        Ok(Self { row: serde_json::to_value(row)?, property_held })
    }
}

/// The largest numerical ranks of the attention products over the model's heads (SVD by LAPACK; `None`
/// in a build without the `blas` feature, or when the SVD failed).
fn attention_rank(model: &boltz_core::Model<boltz_bigfloat::BigReal>) -> Option<crate::rows::AttentionRank> {
    #[cfg(feature = "blas")]
    {
        let heads = boltz_blas::rank_report(model).ok()?;
        Some(crate::rows::AttentionRank {
            attention_heads: heads.len(),
            rank_key_query_max: heads.iter().map(|h| h.key_query.numerical_rank).max().unwrap_or(0),
            rank_value_output_max: heads.iter().map(|h| h.value_output.numerical_rank).max().unwrap_or(0),
        })
    }
    #[cfg(not(feature = "blas"))]
    {
        let _ = model;
        None
    }
}

/// Forwards per configured backend run: the latency is their median, with the minimum and maximum.
pub const LATENCY_REPEATS: usize = 5;

/// A built model rounded to the backend's element type, prepared once and run [`LATENCY_REPEATS`] times
/// over the whole dataset (one batched forward each): the fraction of tokens decoded and the milliseconds
/// of every forward.
struct MeasureRun<'a> {
    model: &'a boltz_core::Model<boltz_bigfloat::BigReal>,
    ds: &'a Dataset<f64>,
}

impl Job for MeasureRun<'_> {
    /// The inner error is a property of the run (the model does not fit the format: recorded in the
    /// row); the outer one means the backend could not run at all (the point fails).
    type Output = boltz_core::Result<(f64, Vec<f64>)>;

    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output> {
        Ok(boltz_construct::verify::run_and_time(self.model, self.ds, backend, LATENCY_REPEATS)
            .map(|(m, s)| (m.accuracy, s.iter().map(|t| t * 1e3).collect())))
    }
}

/// The median of a non-empty sample (the mean of the middle two for an even count).
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        (s[k - 1] + s[k]) / 2.0
    }
}

/// The model on every configured backend and element type ([`SuiteConfig::backends`]), in order.
fn backend_runs(
    cfg: &SuiteConfig,
    threads: usize,
    model: &boltz_core::Model<boltz_bigfloat::BigReal>,
    ds: &Dataset<f64>,
) -> Result<Vec<BackendRunRow>> {
    cfg.backends
        .iter()
        .map(|run| {
            let measured = dispatch(run.backend, run.precision, threads, MeasureRun { model, ds })
                .with_context(|| format!("running the model on {} {}", run.backend.name(), run.precision))?;
            let (values, error) = value_or_reason(measured);
            let times = values.as_ref().map(|v| v.1.as_slice()).filter(|t| !t.is_empty());
            Ok(BackendRunRow {
                backend: run.backend.name().to_string(),
                precision: run.precision.to_string(),
                accuracy: values.as_ref().map(|v| v.0),
                latency_ms: times.map(median),
                latency_min_ms: times.map(|t| t.iter().copied().fold(f64::INFINITY, f64::min)),
                latency_max_ms: times.map(|t| t.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                repeats: times.map(<[f64]>::len),
                error,
            })
        })
        .collect()
}

/// Yun et al.'s data-adaptive construction on a dataset, with the dyadic (`yun`) or the minimal
/// (`yun-minimal`) grid width δ.
fn yun_point(
    cfg: &SuiteConfig,
    ds: &Dataset<f64>,
    name: &str,
    delta: YunDelta,
    bisect: bool,
    softmax_sweep: bool,
    threads: usize,
) -> Result<(ConstructionRow, bool)> {
    let [sequences, length, dim] = ds.inputs.shape();
    let vocab = boltz_core::Vocabulary::of(&ds.inputs).len();
    let y = Yun::build(ds, &YunOptions { threads, delta, ..Default::default() }).context("building Yun et al.'s construction")?;
    let r = &y.report;
    let bits = if bisect { Some(y.fewest_bits(ds, 8, r.bits, threads).context("bisecting the fewest bits")?) } else { None };
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
        policy: name.to_string(),
        family: None,
        attention: None,
        exact_in_bigfloat: r.memorization.is_perfect(),
        build_error: None,
        built: Some(Built {
            layers: r.layers,
            params_dense: r.params.dense,
            params_factored: r.params.factored,
            yun_cells: r.cells,
            build_bits: r.bits,
            build_seconds: r.build_seconds,
            latency_bigfloat_ms: r.verify_seconds * 1e3,
            attention_rank: attention_rank(&y.model),
            runs,
            bits: bits.as_ref().map(BitsSearchFields::from),
            one_layer: None,
            yun: Some(YunFields {
                yun_delta: r.delta_kind.as_str().to_string(),
                yun_delta_value: r.delta,
                yun_minimal_cells: r.minimal_cells,
                layers_by_stage: r.layers_by_stage,
                formula_layers: r.formula.layers,
                realised_params_formula: r.realised_params,
                t214_params_formula: r.formula.params,
                log2_max_id: r.log2_max_id,
                softmax_min_log2_lambda,
            }),
            bit_extraction: None,
        }),
    };
    let exact = r.memorization.is_perfect() && r.formula.layers + 1.0 == r.layers as f64 && r.params.dense == r.realised_params;
    Ok((row, exact))
}

/// Runs the capacity point: build, verify in arbitrary precision, bisect bits, run in f64/f32.
pub fn capacity_point(cfg: &SuiteConfig, sequences: usize, policy_name: &str, threads: usize) -> Result<PointResult> {
    let c = &cfg.capacity;
    let spec = DatasetSpec { sequences, length: c.length, dim: c.dim, vocab: c.vocab, seed: cfg.seed, classes: 2, ..Default::default() };
    let ds = Dataset::<f64>::generate(&spec).context("generating the capacity dataset")?;
    let bisect = c.bisects(policy_name, sequences);
    let (row, held) = construction_point(cfg, &ds, policy_name, bisect, sequences <= c.softmax_max_sequences, threads)?;
    PointResult::of(&row, held)
}

/// Runs a construction on a dataset file of `capacity.datasets`, with the capacity experiment's bisection
/// and softmax-sweep limits.
fn dataset_point(cfg: &SuiteConfig, name: &str, policy_name: &str, threads: usize) -> Result<PointResult> {
    let c = &cfg.capacity;
    let file = dataset_file(cfg, name)?;
    let ds = file.read()?;
    let sequences = ds.inputs.shape()[0];
    let bisect = c.bisects(policy_name, sequences);
    let (mut row, held) = construction_point(cfg, &ds, policy_name, bisect, sequences <= c.softmax_max_sequences, threads)?;
    row.family = Some(format!("file:{name}"));
    PointResult::of(&row, held)
}

fn dataset_file<'a>(cfg: &'a SuiteConfig, name: &str) -> Result<&'a crate::config::DatasetFileConfig> {
    cfg.capacity.datasets.iter().find(|f| f.name() == name).ok_or_else(|| anyhow!("no dataset named {name:?} in capacity.datasets"))
}

/// Builds the named construction on `ds` — Yun et al.'s (`yun`, `yun-minimal`) or the one-layer
/// memorizer under a policy — and measures it (the capacity and adversarial experiments' one path).
fn construction_point(
    cfg: &SuiteConfig,
    ds: &Dataset<f64>,
    policy_name: &str,
    bisect: bool,
    softmax_sweep: bool,
    threads: usize,
) -> Result<(ConstructionRow, bool)> {
    match yun_construction(policy_name) {
        Some(delta) => yun_point(cfg, ds, policy_name, delta, bisect, softmax_sweep, threads),
        None if policy_name == BIT_EXTRACTION => bit_extraction_point(cfg, ds, bisect, threads),
        None => one_layer_point(cfg, ds, policy_name, bisect, threads),
    }
}

/// The parameter-optimal bit-extraction construction on `ds` (sequence-to-sequence). Data whose contexts
/// averaging cannot separate (equal token sums) is a result, not an error: the row carries the builder's
/// refusal.
fn bit_extraction_point(cfg: &SuiteConfig, ds: &Dataset<f64>, bisect: bool, threads: usize) -> Result<(ConstructionRow, bool)> {
    use boltz_construct::optimal::{OptimalMemorizer, OptimalOptions};
    let [sequences, length, dim] = ds.inputs.shape();
    let vocab = boltz_core::Vocabulary::of(&ds.inputs).len();
    let mut row = ConstructionRow {
        sequences,
        n: length,
        d: dim,
        vocab,
        policy: BIT_EXTRACTION.to_string(),
        family: None,
        attention: Some("averaging (W_Q = W_K = 0)".to_string()),
        exact_in_bigfloat: false,
        build_error: None,
        built: None,
    };
    let m = match OptimalMemorizer::build(ds, &OptimalOptions { seed: cfg.seed, threads, ..Default::default() }) {
        Ok(m) => m,
        Err(e @ (boltz_core::Error::Infeasible(_) | boltz_core::Error::InvalidParameter { .. })) => {
            row.build_error = Some(e.to_string());
            return Ok((row, true));
        }
        Err(e) => return Err(anyhow!(e)).with_context(|| format!("building the bit-extraction construction (N = {sequences})")),
    };
    let r = &m.report;
    let exact = r.memorization.as_ref().is_some_and(|m| m.exact == m.tokens);
    let search = if bisect { Some(m.fewest_bits(ds, 8, r.build_bits, threads).context("bisecting the fewest bits")?) } else { None };
    let runs = backend_runs(cfg, threads, &m.model, ds)?;
    row.exact_in_bigfloat = exact;
    row.built = Some(Built {
        layers: r.blocks + r.attention_layers,
        params_dense: r.params.dense,
        params_factored: r.params.factored,
        yun_cells: 0,
        build_bits: r.build_bits,
        build_seconds: r.build_seconds,
        latency_bigfloat_ms: r.verify_seconds * 1e3,
        attention_rank: attention_rank(&m.model),
        runs,
        bits: search.as_ref().map(BitsSearchFields::from),
        one_layer: None,
        yun: None,
        bit_extraction: Some(BitExtractionFields {
            task: r.task.as_str().to_string(),
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
    });
    // The property: exact memorization, and the fewest bits (where bisected) at least the words' bits.
    let bits_ok = search.as_ref().is_none_or(|s| s.fewest.is_some_and(|f| f >= r.memorizer.word_bits));
    Ok((row, exact && bits_ok))
}

/// A construction on one data family: the same measurements as a capacity point, plus the family.
fn adversarial_point(
    cfg: &SuiteConfig,
    family: &str,
    dim: usize,
    sequences: usize,
    policy_name: &str,
    threads: usize,
) -> Result<PointResult> {
    let a = &cfg.adversarial;
    let kind: VocabKind = family.parse().map_err(|e: boltz_core::Error| anyhow!("{e}"))?;
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
    let (mut row, held) = construction_point(cfg, &ds, policy_name, true, false, threads)?;
    row.family = Some(family.to_string());
    PointResult::of(&row, held)
}

/// The one-layer memorizer on `ds` under a policy. A mean-pooling build that fails because two contexts
/// collide is a result (the row says so), not an error: no theorem promises that mean pooling separates.
fn one_layer_point(
    cfg: &SuiteConfig,
    ds: &Dataset<f64>,
    policy_name: &str,
    bisect: bool,
    threads: usize,
) -> Result<(ConstructionRow, bool)> {
    let seed = cfg.seed;
    let [sequences, length, dim] = ds.inputs.shape();
    let vocab = boltz_core::Vocabulary::of(&ds.inputs).len();
    let policy = policy(policy_name)?;
    let nn = sequences * length;
    let mut row = ConstructionRow {
        sequences,
        n: length,
        d: dim,
        vocab,
        policy: policy_name.to_string(),
        family: None,
        attention: Some(if policy == Policy::MeanPool { "mean pooling (λ = 0)" } else { "softmax (λ > 0)" }.to_string()),
        exact_in_bigfloat: false,
        build_error: None,
        built: None,
    };
    let opts = ContextualOptions { policy, seed, candidates: 1000, threads, verify_top: if bisect { 2 } else { 0 }, ..Default::default() };
    let m = match Memorizer::build(ds, &opts) {
        Ok(m) => m,
        Err(e @ boltz_core::Error::Infeasible(_)) if policy == Policy::MeanPool => {
            row.build_error = Some(e.to_string());
            return Ok((row, true));
        }
        Err(e) => return Err(anyhow!(e)).with_context(|| format!("building the one-layer memorizer (N = {sequences}, {policy_name})")),
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
        (None, true) => Some(m.fewest_bits(ds, 8, r.build_bits, threads).context("bisecting the fewest bits")?),
        (None, false) => None,
    };
    let runs = backend_runs(cfg, threads, &m.model, ds)?;
    row.exact_in_bigfloat = r.memorization.is_perfect();
    row.built = Some(Built {
        layers: layers.attention + layers.ffn,
        params_dense: r.params.dense,
        params_factored: r.params.factored,
        yun_cells: yun_a.cells,
        build_bits: r.build_bits,
        build_seconds: r.build_seconds,
        latency_bigfloat_ms: r.verify_seconds * 1e3,
        attention_rank: attention_rank(&m.model),
        runs,
        bits: search.as_ref().map(BitsSearchFields::from),
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
        yun: None,
        bit_extraction: None,
    });
    let held = r.memorization.is_perfect();
    Ok((row, held))
}

fn separation_point(cfg: &SuiteConfig, length: usize, vocab: usize, dim: usize, threads: usize) -> Result<PointResult> {
    let available = (0..length).fold(1u128, |acc, i| acc * (vocab - i) as u128 / (i as u128 + 1));
    let sequences = (cfg.separation.sequences as u128).min(available) as usize;
    let spec = DatasetSpec { sequences, length, dim, vocab, seed: cfg.seed, ..Default::default() };
    let ds = Dataset::<f64>::generate(&spec).context("generating the separation dataset")?;
    let cm = ContextualMapping::build(&ds.inputs, &ContextualOptions { seed: cfg.seed, candidates: 1000, threads, ..Default::default() })?;
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

fn approximation_point(cfg: &SuiteConfig, target_name: &str, cells: usize, threads: usize) -> Result<PointResult> {
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

fn hardmax_point(cfg: &SuiteConfig, dim: usize) -> Result<PointResult> {
    let r = hardmax::demonstrate(dim, cfg.hardmax.family, cfg.hardmax.draws, cfg.seed)?;
    let held = r.draws_with_collision == r.draws && r.softmax_separates;
    PointResult::of(&r, held)
}

/// Runs one point.
pub fn run_point(cfg: &SuiteConfig, spec: &PointSpec, threads: usize) -> Result<PointResult> {
    match spec {
        PointSpec::Capacity { sequences, policy } => capacity_point(cfg, *sequences, policy, threads),
        PointSpec::Dataset { dataset, policy } => dataset_point(cfg, dataset, policy, threads),
        PointSpec::Adversarial { family, dim, sequences, policy } => adversarial_point(cfg, family, *dim, *sequences, policy, threads),
        PointSpec::Separation { length, vocab, dim } => separation_point(cfg, *length, *vocab, *dim, threads),
        PointSpec::Approximation { target, cells } => approximation_point(cfg, target, *cells, threads),
        PointSpec::Hardmax { dim } => hardmax_point(cfg, *dim),
        PointSpec::Trained { family, dim, model, ffn_width } => trained_point(cfg, family, *dim, model, *ffn_width, threads),
    }
}

/// The data of a trained point at N = 1 (the search replaces N).
fn trained_data(cfg: &SuiteConfig, family: &str, dim: usize) -> Result<DatasetSpec> {
    let t = &cfg.trained;
    let vocab_kind: VocabKind = family.parse().map_err(|e: boltz_core::Error| anyhow!("{e}"))?;
    Ok(DatasetSpec { sequences: 1, length: t.length, dim, vocab: t.vocab, seed: cfg.seed, classes: 2, vocab_kind, ..Default::default() })
}

/// The trained capacity of one model shape ([`boltz_train::trained_capacity`]); the memorizing model is
/// re-run on the reference backend (independent forward) and its fewest bits bisected in bigfloat. The
/// checked property: the reference backend decodes every token of the answer (when there is one).
fn trained_point(cfg: &SuiteConfig, family: &str, dim: usize, model_name: &str, ffn_width: usize, threads: usize) -> Result<PointResult> {
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
                boltz_construct::verify::fewest_bits_to_memorize(&exact, ds, 8, 64, threads)?.fewest
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

/// The version of the result-file schema (`docs/results.md`). Fields are only added within a version;
/// renaming or removing one bumps it. Files without the field are version 1 (the same fields as 2).
/// Version 3 replaced the flat `f64_accuracy`/`…_cpu`/`latency_*_ms` columns of capacity and adversarial
/// rows by the `runs` list (one entry per configured backend); [`load_results`] migrates older rows.
pub const SCHEMA_VERSION: u32 = 3;

fn schema_version_1() -> u32 {
    1
}

/// A result file: rows of one experiment with the metadata and configuration of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultFile {
    /// The schema version ([`SCHEMA_VERSION`] when written by this build).
    #[serde(default = "schema_version_1")]
    pub schema_version: u32,
    /// Experiment name.
    pub experiment: String,
    /// Run metadata.
    pub meta: RunMeta,
    /// The full suite configuration.
    pub config: SuiteConfig,
    /// `"i/k"` for a shard, `null` for a whole run.
    pub shard: Option<String>,
    /// Files merged into this one (by `boltz merge`).
    #[serde(default)]
    pub merged_from: Vec<String>,
    /// Earlier runs whose finished points this file includes (`--resume`), oldest first; `meta` is the
    /// run that finished it.
    #[serde(default)]
    pub resumed_from: Vec<RunMeta>,
    /// Seconds the rows took.
    pub seconds: f64,
    /// One object per point, each with its `point` index.
    pub rows: Vec<Value>,
}

/// The file name of an experiment's results, whole or shard.
pub fn result_path(dir: &Path, experiment: &str, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => dir.join(format!("{experiment}.json")),
        Some(s) => dir.join(format!("{experiment}.shard-{}-of-{}.json", s.index, s.count)),
    }
}

/// Summary of a suite run.
pub struct SuiteOutcome {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Points whose checked property failed (`experiment#point`).
    pub failed_properties: Vec<String>,
    /// Points taken from an earlier run's checkpoint (`--resume`).
    pub resumed_points: usize,
}

/// Checks every point of the suite before any runs: the dataset each point generates is valid
/// ([`DatasetSpec::validate`]) and its memory lower bound fits `budget`. Errors name the point.
pub fn check_points(cfg: &SuiteConfig, budget: &crate::resources::MemoryBudget) -> Result<()> {
    for (index, spec) in points(cfg).iter().enumerate() {
        let named = || format!("point {index} ({spec:?})");
        let data = match spec {
            PointSpec::Capacity { sequences, .. } => {
                let c = &cfg.capacity;
                Some(DatasetSpec {
                    sequences: *sequences,
                    length: c.length,
                    dim: c.dim,
                    vocab: c.vocab,
                    seed: cfg.seed,
                    classes: 2,
                    ..Default::default()
                })
            }
            PointSpec::Adversarial { family, dim, sequences, .. } => {
                let a = &cfg.adversarial;
                let vocab_kind: VocabKind = family.parse().map_err(|e: boltz_core::Error| anyhow!("{e}")).with_context(named)?;
                Some(DatasetSpec {
                    sequences: *sequences,
                    length: a.length,
                    dim: *dim,
                    vocab: a.vocab,
                    seed: cfg.seed,
                    classes: 2,
                    vocab_kind,
                    ..Default::default()
                })
            }
            PointSpec::Separation { length, vocab, dim } => Some(DatasetSpec {
                sequences: cfg.separation.sequences,
                length: *length,
                dim: *dim,
                vocab: *vocab,
                seed: cfg.seed,
                ..Default::default()
            }),
            PointSpec::Dataset { dataset, .. } => {
                let ds = dataset_file(cfg, dataset).and_then(|f| f.read()).with_context(named)?;
                let [big_n, n, d] = ds.inputs.shape();
                budget.check(&named(), crate::resources::memorize_bytes(big_n, n, d))?;
                None
            }
            PointSpec::Approximation { .. } => {
                let a = &cfg.approximation;
                budget.check(&named(), crate::resources::approximate_bytes(a.samples, a.length, 1))?;
                None
            }
            PointSpec::Hardmax { .. } => None,
            PointSpec::Trained { family, dim, .. } => {
                let spec = trained_data(cfg, family, *dim).with_context(named)?;
                Some(DatasetSpec { sequences: cfg.trained.max_sequences, ..spec })
            }
        };
        if let Some(d) = data {
            d.validate().map_err(|e| anyhow!("{e}")).with_context(named)?;
            budget.check(&named(), crate::resources::memorize_bytes(d.sequences, d.length, d.dim))?;
        }
    }
    Ok(())
}

/// How a suite run starts (see [`crate::checkpoint::Mode`]) and reports.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Only this shard's points.
    pub shard: Option<Shard>,
    /// Fresh, resume or restart.
    pub mode: crate::checkpoint::Mode,
    /// Show progress (a bar on a terminal, one line per point on stderr otherwise).
    pub progress: bool,
}

/// Runs the suite (or a shard of it) into a locked output directory: every finished point is appended to
/// the checkpoint (synced) as it finishes, points finished by an earlier run are skipped under
/// `Mode::Resume`, and one JSON and one CSV file per experiment are then derived from the checkpoint.
/// A shard writes a file for every experiment of the configuration, with no rows where it has no points
/// (an explicit marker that the shard ran).
pub fn run_suite(cfg: &SuiteConfig, out: &crate::outdir::OutDir, opts: RunOptions) -> Result<SuiteOutcome> {
    use crate::checkpoint::{Checkpoint, FinishedPoint};
    let threads = crate::resources::threads(Some(cfg.threads), "field threads")?;
    // A configured backend that cannot run here (cuda without a GPU) is refused before any point runs.
    if points(cfg).iter().any(|p| matches!(p, PointSpec::Capacity { .. } | PointSpec::Dataset { .. } | PointSpec::Adversarial { .. })) {
        for (i, run) in cfg.backends.iter().enumerate() {
            crate::backends::probe(run.backend).with_context(|| format!("field backends[{i}]: {} cannot run here", run.backend.name()))?;
        }
    }
    let meta = RunMeta::collect(threads);
    let all = points(cfg);
    let shard = opts.shard;
    let mine: Vec<(usize, PointSpec)> =
        all.iter().cloned().enumerate().filter(|(i, _)| shard.is_none_or(|s| i % s.count == s.index)).collect();
    let mut cp = Checkpoint::open(out.path(), cfg, shard, mine.len(), &meta, opts.mode)?;
    let resumed = mine.iter().filter(|(i, _)| cp.finished.contains_key(i)).count();
    let todo: Vec<&(usize, PointSpec)> = mine.iter().filter(|(i, _)| !cp.finished.contains_key(i)).collect();
    let bar = if opts.progress { indicatif::ProgressBar::new(mine.len() as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| anyhow!("progress style: {e}"))?
            .progress_chars("=> "),
    );
    bar.set_position(resumed as u64);
    // Without a terminal (Slurm logs, CI) the bar is invisible: one line per point on stderr instead.
    let plain = opts.progress && !std::io::IsTerminal::is_terminal(&std::io::stderr());
    if resumed > 0 && opts.progress {
        crate::note(format_args!("resuming: {resumed} of {} points already finished in {}", mine.len(), cp.file_path().display()));
    }
    for (done, (index, spec)) in todo.iter().enumerate() {
        bar.set_message(format!("{spec:?}"));
        if plain {
            crate::note(format_args!("[{}/{}] point {index}: {spec:?}", resumed + done + 1, mine.len()));
        }
        let t = Instant::now();
        let result = run_point(cfg, spec, threads).with_context(|| {
            format!(
                "point {index} ({spec:?}); the {} finished points are kept in {} (run again with --resume)",
                cp.finished.len(),
                cp.file_path().display()
            )
        })?;
        let mut row = result.row;
        if let Some(obj) = row.as_object_mut() {
            obj.insert("point".into(), json!(index));
            obj.insert("seconds".into(), json!(t.elapsed().as_secs_f64()));
            obj.insert("property_held".into(), json!(result.property_held));
        }
        cp.record(FinishedPoint { experiment: spec.experiment().into(), row })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    // The result files, derived from the checkpoint.
    let mut failed = Vec::new();
    let mut files = Vec::new();
    for exp in EXPERIMENTS {
        if !all.iter().any(|p| p.experiment() == exp) {
            continue;
        }
        let rows: Vec<Value> = cp.finished.values().filter(|p| p.experiment == exp).map(|p| p.row.clone()).collect();
        if shard.is_none() && rows.is_empty() {
            continue;
        }
        for row in &rows {
            if row.get("property_held").and_then(Value::as_bool) == Some(false) {
                failed.push(format!("{exp}#{}", row.get("point").and_then(Value::as_u64).unwrap_or(u64::MAX)));
            }
        }
        let file = ResultFile {
            schema_version: SCHEMA_VERSION,
            experiment: exp.into(),
            meta: meta.clone(),
            config: cfg.clone(),
            shard: shard.map(|s| format!("{}/{}", s.index, s.count)),
            merged_from: vec![],
            resumed_from: cp.runs[..cp.runs.len() - 1].to_vec(),
            seconds: rows.iter().filter_map(|r| r.get("seconds").and_then(Value::as_f64)).sum(),
            rows,
        };
        let path = result_path(out.path(), exp, shard);
        write_json(&path, &file)?;
        write_csv(&path.with_extension("csv"), &file.rows)?;
        files.push(path);
    }
    cp.finish()?;
    Ok(SuiteOutcome { files, failed_properties: failed, resumed_points: resumed })
}

/// `(i, k)` from a shard file name `<experiment>.shard-<i>-of-<k>.json`.
fn shard_of_name(name: &str, experiment: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix(experiment)?.strip_prefix(".shard-")?.strip_suffix(".json")?;
    let (i, k) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, k.parse().ok()?))
}

/// Merges the shard files of every experiment in `dir` into whole result files — complete or nothing.
///
/// Everything is validated before anything is written: each file holds the experiment and the shard its
/// name says; all shards of all experiments share one configuration, one shard count and one build (git
/// revision, dirty flag, version, compiler); and every point the configuration defines for an experiment
/// is present exactly once. Any violation is an error naming the files and points.
pub fn merge(dir: &Path) -> Result<Vec<PathBuf>> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().to_str().map(String::from)))
        .collect();
    // (experiment, shard files) with their parsed contents.
    let mut per_experiment: Vec<(&str, Vec<(PathBuf, ResultFile)>)> = Vec::new();
    for exp in EXPERIMENTS {
        let mut files = Vec::new();
        let mut shard_names: Vec<&String> =
            names.iter().filter(|n| n.starts_with(&format!("{exp}.shard-")) && n.ends_with(".json")).collect();
        shard_names.sort();
        for name in shard_names {
            let path = dir.join(name);
            let (i, k) = shard_of_name(name, exp)
                .ok_or_else(|| anyhow!("{}: not a shard file name (<experiment>.shard-<i>-of-<k>.json)", path.display()))?;
            let file = read_result_file(&path)?;
            if file.experiment != exp {
                bail!("{}: holds experiment {:?}, not {exp:?} as its name says", path.display(), file.experiment);
            }
            if file.shard.as_deref() != Some(format!("{i}/{k}").as_str()) {
                bail!("{}: holds shard {:?}, not {i}/{k} as its name says", path.display(), file.shard);
            }
            files.push((path, file));
        }
        if !files.is_empty() {
            per_experiment.push((exp, files));
        }
    }
    let Some(first) = per_experiment.first().and_then(|(_, f)| f.first()) else { return Ok(Vec::new()) };
    let (first_path, first) = (first.0.clone(), first.1.clone());
    let build = |f: &ResultFile| (f.meta.git_rev.clone(), f.meta.git_dirty, f.meta.version.clone(), f.meta.rustc.clone());
    let count_of = |f: &ResultFile| f.shard.as_deref().and_then(|s| s.split_once('/')).map(|(_, k)| k.to_string());
    for (path, f) in per_experiment.iter().flat_map(|(_, files)| files) {
        if f.config != first.config {
            bail!("{} and {} were run with different configurations; refusing to mix them", path.display(), first_path.display());
        }
        if count_of(f) != count_of(&first) {
            bail!(
                "{} ({:?}) and {} ({:?}) split the suite into different numbers of shards",
                path.display(),
                f.shard,
                first_path.display(),
                first.shard
            );
        }
        if build(f) != build(&first) {
            bail!(
                "{} comes from build {:?} and {} from {:?} (git revision, dirty, version, compiler); merge shards of one build",
                path.display(),
                build(f),
                first_path.display(),
                build(&first)
            );
        }
    }
    // Completeness: every shard's file (a shard without points of an experiment writes one with no rows)
    // and every point of each experiment exactly once.
    let all = points(&first.config);
    let k: usize = count_of(&first).and_then(|k| k.parse().ok()).unwrap_or(1);
    let mut merged = Vec::new();
    for (exp, files) in &per_experiment {
        let present: Vec<usize> = files.iter().filter_map(|(_, f)| f.shard.as_deref()?.split_once('/')?.0.parse().ok()).collect();
        let absent: Vec<String> = (0..k)
            .filter(|i| !present.contains(i))
            .map(|i| result_path(dir, exp, Some(Shard { index: i, count: k })).display().to_string())
            .collect();
        if !absent.is_empty() {
            bail!("{exp}: incomplete, shard files missing: {}; run the missing shards before merging", absent.join(", "));
        }
        let expected: Vec<usize> = all.iter().enumerate().filter(|(_, p)| p.experiment() == *exp).map(|(i, _)| i).collect();
        let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
        let mut duplicates = Vec::new();
        for (path, f) in files {
            for row in &f.rows {
                let point =
                    row.get("point").and_then(Value::as_u64).ok_or_else(|| anyhow!("{}: a row without a point index", path.display()))?;
                if let Some(other) = seen.insert(point, path) {
                    duplicates.push(format!("point {point} in {} and {}", other.display(), path.display()));
                }
            }
        }
        if !duplicates.is_empty() {
            bail!("{exp}: duplicate points: {}", duplicates.join("; "));
        }
        let missing: Vec<usize> = expected.iter().copied().filter(|i| !seen.contains_key(&(*i as u64))).collect();
        if !missing.is_empty() {
            let which: Vec<String> = missing.iter().map(|i| format!("{i} (shard {}/{k})", i % k)).collect();
            bail!("{exp}: incomplete, missing points {}; run the missing shards before merging", which.join(", "));
        }
        let unknown: Vec<u64> = seen.keys().copied().filter(|p| !expected.contains(&(*p as usize))).collect();
        if !unknown.is_empty() {
            bail!("{exp}: points {unknown:?} are not points of this experiment in the configuration");
        }
        let mut rows: Vec<Value> = files.iter().flat_map(|(_, f)| f.rows.clone()).collect();
        rows.sort_by_key(|r| r.get("point").and_then(Value::as_u64).unwrap_or(u64::MAX));
        merged.push(ResultFile {
            schema_version: SCHEMA_VERSION,
            experiment: (*exp).into(),
            meta: first.meta.clone(),
            config: first.config.clone(),
            shard: None,
            merged_from: files.iter().map(|(p, _)| p.display().to_string()).collect(),
            resumed_from: files.iter().flat_map(|(_, f)| f.resumed_from.clone()).collect(),
            seconds: files.iter().map(|(_, f)| f.seconds).sum(),
            rows,
        });
    }
    // Only now write, every file atomically.
    let mut written = Vec::new();
    for file in merged {
        let path = result_path(dir, &file.experiment, None);
        write_json(&path, &file)?;
        write_csv(&path.with_extension("csv"), &file.rows)?;
        written.push(path);
    }
    Ok(written)
}

/// Reads one result file (whole or shard) as this build reads every file: a newer schema is refused, and
/// the construction rows of schema 1–2 are migrated to schema 3 (`runs`), so the file is schema 3.
pub fn read_result_file(path: &Path) -> Result<ResultFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut file: ResultFile = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if file.schema_version > SCHEMA_VERSION {
        bail!(
            "{}: schema version {} is newer than this build reads ({SCHEMA_VERSION}); use a newer boltz",
            path.display(),
            file.schema_version
        );
    }
    if file.schema_version < 3 {
        if ["capacity", "adversarial"].contains(&file.experiment.as_str()) {
            file.rows.iter_mut().for_each(crate::rows::migrate_construction_row);
        }
        file.schema_version = 3;
    }
    Ok(file)
}

/// Loads the whole result files present in `dir`.
pub fn load_results(dir: &Path) -> Result<BTreeMap<String, ResultFile>> {
    let mut out = BTreeMap::new();
    for exp in EXPERIMENTS {
        let path = result_path(dir, exp, None);
        if path.exists() {
            let file = read_result_file(&path)?;
            out.insert(exp.to_string(), file);
        }
    }
    Ok(out)
}
