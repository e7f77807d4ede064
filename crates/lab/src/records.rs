//! The typed record of every command (`docs/results.md`, "Command records"): what `boltz memorize`,
//! `verify`, `bench`, `train` and `approximate` print with `--json` and write with `--out`, and what the
//! Python package returns for the same questions, built by the same code.
//!
//! Every record carries [`RECORD_SCHEMA_VERSION`] and its `command`; `meta` is the run's metadata
//! (machine, build, threads) and `args` the request as given (the CLI's arguments; `null` from Python).

use boltz_bigfloat::BitsSearch;
use boltz_construct::one_layer::approximator::ApproximatorReport;
use boltz_core::{LayerCount, Memorization, ParamCount};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backends::{BackendKind, Precision};
use boltz_construct::Family;

use crate::construction::{BuildOptions, Built};
use crate::meta::{MachineCeiling, RunMeta};

/// The version of the command records' fields: adding a field keeps it, renaming or removing one bumps it.
pub const RECORD_SCHEMA_VERSION: u32 = 1;

fn version() -> u32 {
    RECORD_SCHEMA_VERSION
}

/// What every command record starts with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordHead {
    /// [`RECORD_SCHEMA_VERSION`].
    #[serde(default = "version")]
    pub schema_version: u32,
    /// The command (`"memorize"`, `"verify"`, …).
    pub command: String,
    /// Machine, build, threads.
    pub meta: RunMeta,
    /// The request (the CLI's arguments; `null` from Python).
    pub args: Value,
}

impl RecordHead {
    /// The head of a `command` record run with `threads` workers on `args`.
    pub fn new(command: &str, threads: usize, args: Value) -> Self {
        Self { schema_version: RECORD_SCHEMA_VERSION, command: command.to_string(), meta: RunMeta::collect(threads), args }
    }
}

/// A model run on a backend over a dataset: what a memorize and a verify record share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendRun {
    /// The backend.
    pub backend: BackendKind,
    /// Its element type.
    pub precision: Precision,
    /// How the model memorizes there (`None` when it could not run).
    pub memorization: Option<Memorization>,
    /// Why the run could not happen.
    pub run_error: Option<String>,
    /// Seconds of the forward.
    pub forward_seconds: Option<f64>,
    /// The fewest bits at which every token decodes (when searched).
    pub fewest_bits: Option<BitsSearch>,
}

impl BackendRun {
    /// The record of one run's outcome (memorization and seconds, or why it could not run; the error chain
    /// as text), without a fewest-bits search.
    pub fn of(backend: BackendKind, precision: Precision, outcome: anyhow::Result<(Memorization, f64)>) -> Self {
        let (memorization, forward_seconds, run_error) = match outcome {
            Ok((m, s)) => (Some(m), Some(s), None),
            Err(e) => (None, None, Some(format!("{e:#}"))),
        };
        Self { backend, precision, memorization, run_error, forward_seconds, fewest_bits: None }
    }
}

/// What a built model is, whatever the construction: the fields a memorize record and Python's build
/// record share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildFields {
    /// The construction built: its family (`one-layer`, `yun`, `yun-full`, `bit-extraction`) or an
    /// extension's name.
    pub construction: Family,
    /// Attention and FFN layers.
    pub layers: LayerCount,
    /// Parameters, dense and as stored (factored).
    pub params: ParamCount,
    /// The bits it was built (and verified) with.
    pub build_bits: u64,
    /// How it memorizes at `build_bits` (arbitrary precision).
    pub exact_at_build_bits: Memorization,
    /// The construction's own report.
    pub report: Value,
}

impl BuildFields {
    /// The fields of a built model.
    pub fn of(built: &Built, construction: Family) -> Self {
        Self {
            construction,
            layers: built.model.layer_count(),
            params: built.model.param_count(),
            build_bits: built.bits,
            exact_at_build_bits: built.exact.clone(),
            report: built.report.clone(),
        }
    }
}

/// The shape of a dataset: `N` sequences of `n` tokens in `R^d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetShape {
    /// Sequences.
    #[serde(rename = "N")]
    pub sequences: usize,
    /// Tokens per sequence.
    pub n: usize,
    /// Token dimension.
    pub d: usize,
}

impl DatasetShape {
    /// The shape of `data`.
    pub fn of(data: &boltz_core::Dataset<f64>) -> Self {
        let [sequences, n, d] = data.inputs.shape();
        Self { sequences, n, d }
    }
}

/// A construction built on data, without running it on a backend (Python's `memorize`; the model's
/// `build` attribute).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// [`RECORD_SCHEMA_VERSION`].
    #[serde(default = "version")]
    pub schema_version: u32,
    /// What was built.
    #[serde(flatten)]
    pub built: BuildFields,
    /// The one-layer policy (`null` for the other constructions).
    pub policy: Option<boltz_construct::Policy>,
    /// The seed.
    pub seed: u64,
    /// Random directions the one-layer construction tried (`null` for the other constructions).
    #[serde(default)]
    pub candidates: Option<usize>,
    /// The data's shape.
    pub dataset: DatasetShape,
    /// The fewest-bits search the construction already made (the fewest-bits policy), if any.
    pub fewest_bits: Option<BitsSearch>,
    /// Human-readable lines.
    pub summary: Vec<String>,
}

impl BuildRecord {
    /// The record of `built`, built with `options` on `data`.
    pub fn new(built: &Built, options: &BuildOptions, data: &boltz_core::Dataset<f64>) -> Self {
        Self {
            schema_version: RECORD_SCHEMA_VERSION,
            built: BuildFields::of(built, options.construction.family()),
            policy: options.construction.policy(),
            seed: options.seed,
            candidates: options.construction.policy().map(|_| options.candidates),
            dataset: DatasetShape::of(data),
            fewest_bits: built.fewest_bits.clone(),
            summary: built.summary.clone(),
        }
    }
}

/// `boltz memorize`: a construction built on data, verified in arbitrary precision, run on a backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemorizeRecord {
    /// Version, command (`"memorize"`), metadata, request.
    #[serde(flatten)]
    pub head: RecordHead,
    /// The generated dataset's spec, or `{file, N, n, d, vocab}` of a dataset file.
    pub dataset: Value,
    /// What was built.
    #[serde(flatten)]
    pub built: BuildFields,
    /// The run on the requested backend (its `fewest_bits`: absent with `--no-bisect`).
    #[serde(flatten)]
    pub run: BackendRun,
    /// The SVD ranks of the attention products per head ([`crate::rank::RankReport::to_json`]).
    pub attention_rank: Value,
    /// Files written by `--export`.
    pub exported: Vec<std::path::PathBuf>,
}

/// `boltz verify` (and Python's `verify`): a model on a dataset on a backend and element type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyRecord {
    /// Version, command (`"verify"`), metadata, request (`null` from Python).
    #[serde(flatten)]
    pub head: RecordHead,
    /// The model: `{file, construction, params, layers}` (`null` from Python, whose model is in memory).
    pub model: Value,
    /// The dataset: `{file, N, n, d}` (the shape only from Python).
    pub dataset: Value,
    /// The run (its `fewest_bits` with `--bisect`).
    #[serde(flatten)]
    pub run: BackendRun,
}

/// `boltz bench`: one workload timed on one backend, element type and thread count. `bench --all` runs
/// each combination in a process of its own and reads its record back as this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRecord {
    /// [`RECORD_SCHEMA_VERSION`].
    #[serde(default = "version")]
    pub schema_version: u32,
    /// `"bench"`.
    pub command: String,
    /// Machine, build, threads (left out of `bench --all`'s rows, which share the document's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RunMeta>,
    /// Workload name (`boltz workloads`).
    pub workload: String,
    /// What the workload is.
    pub description: String,
    /// Sequences per forward.
    pub batch: usize,
    /// Tokens per sequence.
    pub n: usize,
    /// Token dimension.
    pub d: usize,
    /// The request.
    pub args: Value,
    /// The backend.
    pub backend: BackendKind,
    /// Its element type.
    pub precision: Precision,
    /// Worker threads.
    pub threads: usize,
    /// Floating-point operations per forward (multiply and add counted separately).
    pub flops_per_forward: f64,
    /// Seconds of every timed forward.
    pub seconds: Vec<f64>,
    /// Their median ([`crate::timing::median`]), in ms.
    pub median_ms: f64,
    /// Their minimum, in ms.
    pub min_ms: f64,
    /// Their maximum, in ms.
    pub max_ms: f64,
    /// `flops_per_forward` over the median time, in GFLOP/s.
    pub gflops: f64,
    /// The process's peak resident memory (Linux), in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The machine's ceilings at this thread count (absent with `--no-ceiling`).
    pub ceiling: Option<MachineCeiling>,
    /// `gflops` as a percentage of the FMA peak of this element type (host backends).
    pub percent_of_peak: Option<f64>,
}

/// `boltz bench --all`: every workload × backend × element type × thread count, one [`BenchRecord`] each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchAllRecord {
    /// [`RECORD_SCHEMA_VERSION`].
    #[serde(default = "version")]
    pub schema_version: u32,
    /// `"bench --all"`.
    pub command: String,
    /// How the rows were measured.
    pub what: String,
    /// Machine, build, threads (the largest thread count).
    pub meta: RunMeta,
    /// The request.
    pub args: Value,
    /// One record per combination (without its own `meta`).
    pub rows: Vec<BenchRecord>,
    /// The comparison table the command prints without `--json`.
    pub table: String,
}

/// `boltz train`: one training run, or (`--capacity`) the trained-capacity search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// Version, command (`"train"`), metadata, request.
    #[serde(flatten)]
    pub head: RecordHead,
    /// What was trained and how it went.
    #[serde(flatten)]
    pub outcome: TrainOutcome,
}

/// The two kinds of `boltz train` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TrainOutcome {
    /// One model trained on one dataset.
    Fit {
        /// The generated dataset's spec.
        dataset: boltz_core::DatasetSpec,
        /// The model's shape (`None` when fine-tuning a construction, which fixes the shape).
        shape: Option<boltz_train::ModelShape>,
        /// `random` or `construction:<policy>`.
        init: String,
        /// The training configuration.
        config: boltz_train::TrainConfig,
        /// Parameters of the trained model.
        params: ParamCount,
        /// The training report (loss curve, steps, accuracy).
        report: boltz_train::TrainReport,
        /// The reference backend's re-check of the trained model: `{backend, accuracy}`.
        reference_check: Value,
        /// Seconds of training.
        seconds: f64,
    },
    /// The trained-capacity search (`--capacity`).
    Capacity {
        /// The search's settings.
        search: boltz_train::CapacitySearch,
        /// What it found.
        capacity: boltz_train::CapacityReport,
        /// Seconds of the search.
        seconds: f64,
    },
}

/// `boltz approximate`: FF∘SA∘FF approximators of a target for several grid widths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproximateRecord {
    /// Version, command (`"approximate"`), metadata, request.
    #[serde(flatten)]
    pub head: RecordHead,
    /// One report per grid width.
    pub rows: Vec<ApproximatorReport>,
}
