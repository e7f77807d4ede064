//! Validated requests, ripgrep's low/high arguments: what a command or a Python call was given (`*Params`,
//! plain values with defaults) becomes a checked request (`*Request`) before any work is done. The CLI
//! (`boltz memorize`, `boltz verify`, `boltz train`) and the Python package (`memorize`, `verify`,
//! `fewest_bits`) build their requests here, so both refuse the same input with the same message and run the
//! same steps.
//!
//! What stays at the edges: argument parsing and output files (the CLI), array conversion and the GIL
//! (Python).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use boltz_bigfloat::{BigReal, BitsSearch, DecodeCheck};
use boltz_construct::deep::bit_extraction::Task;
use boltz_construct::deep::yun::YunDelta;
use boltz_construct::verify::BitsSearchParams;
use boltz_construct::{Construction, ConstructionKind, Family, Policy};
use boltz_core::{Dataset, DatasetSpec, Model};

use crate::backends::{self, BackendKind, Precision};
use crate::construction::{self, BuildOptions, Built, RunOn};
use crate::records::BackendRun;
use crate::resources::{self, MemoryBudget, TimeBudget};

/// Worker threads, checked: at least 1 and at most [`resources::max_threads`]; `None` is every core.
/// `what` names the argument in the message (`--threads`, `threads`).
pub fn checked_threads(requested: Option<usize>, what: &str) -> Result<usize> {
    match requested {
        Some(0) => bail!("{what} must be at least 1"),
        t => resources::threads(t, what),
    }
}

/// A backend at a precision: refused where the pair does not exist in this build ([`backends::check`]),
/// and the device probed ([`backends::probe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunTarget {
    /// The backend.
    pub backend: BackendKind,
    /// Its element type.
    pub precision: Precision,
}

impl RunTarget {
    /// Checks `backend` at `precision` and probes its device.
    pub fn new(backend: BackendKind, precision: Precision) -> Result<Self> {
        backends::check(backend, precision)?;
        backends::probe(backend)?;
        Ok(Self { backend, precision })
    }

    /// Runs `model` over `data` here: a record of the run, with the error (not an `Err`) when the model
    /// cannot run in this precision (a weight overflows f32, say), so the caller still writes its record.
    pub fn run(&self, model: &Model<BigReal>, data: &Dataset<f64>, threads: usize) -> BackendRun {
        BackendRun::of(self.backend, self.precision, self.try_run(model, data, threads))
    }

    /// Runs `model` over `data` here: memorization and the forward's seconds, or the error (typed, for
    /// callers that tell its kinds apart, as Python's exceptions do).
    pub fn try_run(&self, model: &Model<BigReal>, data: &Dataset<f64>, threads: usize) -> Result<(boltz_core::Memorization, f64)> {
        backends::dispatch(self.backend, self.precision, threads, RunOn { model, data })
    }
}

/// Where a memorize request's dataset comes from, as given.
#[derive(Clone, Debug)]
pub enum DataInput {
    /// Generated from a spec (validated by the request).
    Generate(DatasetSpec),
    /// Read from a file (`boltz memorize --dataset`), with its labels or targets file for `.npy` inputs.
    File {
        /// The dataset (or inputs) file.
        path: PathBuf,
        /// Integer labels `.npy`.
        labels: Option<PathBuf>,
        /// Float targets `.npy`.
        targets: Option<PathBuf>,
    },
    /// Given in memory (Python's arrays): checked by the request ([`construction::check_dataset`]).
    Given(Dataset<f64>),
}

/// The construction named by its family and the family's options (`--construction`, `--policy`, `--delta`,
/// `--task`), refusing a next-token task for a construction that memorizes every token's target.
pub fn construction_of(family: Family, policy: Policy, delta: YunDelta, task: Task) -> Result<Construction> {
    if task == Task::NextToken && family != Family::Builtin(ConstructionKind::BitExtraction) {
        bail!("--task next-token is for --construction bit-extraction (the other constructions memorize every token's target)");
    }
    Ok(Construction::of(family, policy, delta, task))
}

/// What `memorize` was given: raw values, checked by [`MemorizeParams::check`].
#[derive(Clone, Debug)]
pub struct MemorizeParams {
    /// The dataset.
    pub data: DataInput,
    /// The construction with its policy, grid or task.
    pub construction: Construction,
    /// Seed of the construction's random choices.
    pub seed: u64,
    /// Random directions the one-layer construction tries (`ContextualOptions::CANDIDATES` by default).
    pub candidates: usize,
    /// Worker threads (`None`: every core).
    pub threads: Option<usize>,
    /// The backend the built model then runs on.
    pub backend: BackendKind,
    /// Its precision; `None` is the construction's own build bits (bigfloat only).
    pub precision: Option<Precision>,
    /// A memory limit in bytes (`None`: the memory available).
    pub max_memory: Option<u64>,
    /// A time limit in seconds for the estimated verification (`None`: [`TimeBudget::DEFAULT_SECONDS`]).
    pub max_seconds: Option<f64>,
}

impl MemorizeParams {
    /// Parameters for `data` with every other value at its default (the measured one-layer construction,
    /// seed 0, every core, the build precision on bigfloat).
    pub fn new(data: DataInput) -> Self {
        Self {
            data,
            construction: Construction::OneLayer(Policy::Measured),
            seed: 0,
            candidates: boltz_construct::ContextualOptions::CANDIDATES,
            threads: None,
            backend: BackendKind::Bigfloat,
            precision: None,
            max_memory: None,
            max_seconds: None,
        }
    }

    /// Checks everything that can be refused before a dataset is generated or a model built: the threads,
    /// the dataset spec (or reads and checks the file), the memory the run needs, the backend and precision,
    /// and the task against the construction.
    pub fn check(self) -> Result<MemorizeRequest> {
        let threads = checked_threads(self.threads, "--threads")?;
        let data = match self.data {
            DataInput::Generate(spec) => {
                spec.validate().context("invalid dataset parameters")?;
                Source::Spec(spec)
            }
            DataInput::File { path, labels, targets } => {
                let data = construction::read_dataset_file("--dataset", &path, labels.as_deref(), targets.as_deref())?;
                Source::File { path, data }
            }
            DataInput::Given(data) => {
                construction::check_dataset(&data).context("the data violates what the constructions need")?;
                Source::Given(data)
            }
        };
        let [big_n, n, d] = data.shape();
        let what = match &data {
            Source::Spec(_) => format!("--sequences {big_n} --length {n} --dim {d}"),
            Source::File { path, .. } => format!("--dataset {} (N = {big_n}, n = {n}, d = {d})", path.display()),
            Source::Given(_) => format!("the dataset (N = {big_n}, n = {n}, d = {d})"),
        };
        let vocab = match &data {
            Source::Spec(s) => s.vocab,
            Source::File { .. } | Source::Given(_) => 0,
        };
        let what = if vocab > 0 { format!("{what} --vocab {vocab}") } else { what };
        MemoryBudget::new(self.max_memory).check(&what, resources::memorize_bytes(big_n, n, d, vocab))?;
        if let Some(s) = self.max_seconds.filter(|s| s.is_nan() || *s <= 0.0) {
            bail!("--max-time must be a positive number of seconds (inf for no limit), got {s}");
        }
        TimeBudget::new(self.max_seconds).check(&what, resources::memorize_ops(big_n, n, d), threads)?;
        let target = match self.precision {
            Some(p) => Some(RunTarget::new(self.backend, p)?),
            None if self.backend != BackendKind::Bigfloat => {
                bail!(
                    "--backend {} needs --precision f32 or f64 (the construction's own precision is bits=N, for bigfloat)",
                    self.backend.name()
                )
            }
            None => None,
        };
        if self.candidates == 0 {
            bail!("--candidates must be at least 1 (random directions the one-layer construction tries)");
        }
        let options = BuildOptions { construction: self.construction, seed: self.seed, threads, candidates: self.candidates };
        Ok(MemorizeRequest { data, options, target })
    }
}

/// A checked dataset source (a file already read and checked).
#[derive(Clone, Debug)]
enum Source {
    Spec(DatasetSpec),
    File { path: PathBuf, data: Dataset<f64> },
    Given(Dataset<f64>),
}

impl Source {
    fn shape(&self) -> [usize; 3] {
        match self {
            Source::Spec(s) => [s.sequences, s.length, s.dim],
            Source::File { data, .. } | Source::Given(data) => data.inputs.shape(),
        }
    }
}

/// A checked `memorize`: build a construction on a dataset, then run it on a backend and, if asked, search
/// its fewest bits. Built by [`MemorizeParams::check`].
#[derive(Clone, Debug)]
pub struct MemorizeRequest {
    data: Source,
    /// What to build, with what seed and threads.
    pub options: BuildOptions,
    /// The backend run (`None`: bigfloat at the build bits).
    target: Option<RunTarget>,
}

impl MemorizeRequest {
    /// `[N, n, d]` of the dataset.
    pub fn shape(&self) -> [usize; 3] {
        self.data.shape()
    }

    /// Whether the dataset is generated (not read or given).
    pub fn generates(&self) -> bool {
        matches!(self.data, Source::Spec(_))
    }

    /// The dataset the construction memorizes: generated, or as read, then shaped for the task (next-token:
    /// every position carries its sequence's last target).
    pub fn dataset(&self) -> Result<Dataset<f64>> {
        let data = match &self.data {
            Source::Spec(spec) => Dataset::<f64>::generate(spec).context("generating the dataset")?,
            Source::File { data, .. } | Source::Given(data) => data.clone(),
        };
        Ok(construction::task_dataset(data, self.options.construction.task().unwrap_or_default())?)
    }

    /// The dataset's part of the record: its spec, or the file (or `null` for given data) with its shape
    /// and vocabulary.
    pub fn dataset_record(&self, data: &Dataset<f64>) -> Result<serde_json::Value> {
        let [big_n, n, d] = data.inputs.shape();
        let vocab = boltz_core::Vocabulary::of(&data.inputs).len();
        Ok(match &self.data {
            Source::Spec(spec) => serde_json::to_value(spec)?,
            Source::File { path, .. } => serde_json::json!({ "file": path, "N": big_n, "n": n, "d": d, "vocab": vocab }),
            Source::Given(_) => serde_json::json!({ "file": null, "N": big_n, "n": n, "d": d, "vocab": vocab }),
        })
    }

    /// Builds the construction on `data` ([`construction::build`]).
    pub fn build(&self, data: &Dataset<f64>) -> Result<Built> {
        construction::build(data, &self.options)
    }

    /// The backend and precision the built model runs at: the requested ones, or bigfloat at its build bits.
    pub fn target_for(&self, built: &Built) -> RunTarget {
        self.target.unwrap_or(RunTarget { backend: BackendKind::Bigfloat, precision: Precision::Bits(built.bits) })
    }

    /// Runs the built model at [`Self::target_for`]; bigfloat at the build bits reuses the verification the
    /// build already ran over the whole model.
    pub fn run(&self, built: &Built, data: &Dataset<f64>) -> BackendRun {
        let target = self.target_for(built);
        match (target.backend, target.precision, built.verified_seconds) {
            (BackendKind::Bigfloat, Precision::Bits(b), Some(s)) if b == built.bits => {
                BackendRun::of(target.backend, target.precision, Ok((built.exact.clone(), s)))
            }
            _ => target.run(&built.model, data, self.options.threads),
        }
    }

    /// The fewest bits in `8..=built.bits` at which the model memorizes `data`
    /// ([`Built::fewest_bits_search`]).
    pub fn fewest_bits(&self, built: &Built, data: &Dataset<f64>, on_probe: impl Fn(u64, &DecodeCheck)) -> Result<BitsSearch> {
        built.fewest_bits_search(data, self.options.threads, on_probe)
    }
}

/// What `verify` was given: raw values, checked by [`VerifyParams::check`] against the model they run.
#[derive(Clone, Copy, Debug)]
pub struct VerifyParams {
    /// The backend.
    pub backend: BackendKind,
    /// Its precision; `None`: on bigfloat the bits the model records it was built with
    /// ([`construction::recorded_build_bits`]), elsewhere f64.
    pub precision: Option<Precision>,
    /// Worker threads (`None`: every core).
    pub threads: Option<usize>,
    /// Also search the fewest bits, from `min` up to `max`; without `max`, up to the model's recorded build
    /// bits, doubled (from [`SEARCH_START_BITS`] for a model without them) until the model memorizes there,
    /// at most up to [`SEARCH_MAX_BITS`].
    pub bisect: Option<(u64, Option<u64>)>,
}

/// The precision `model` runs at on `backend` when none is given: on bigfloat the bits it records it was
/// built and verified with (an error for a model without them), elsewhere f64.
pub fn default_precision(backend: BackendKind, model: &Model<BigReal>) -> Result<Precision> {
    match backend {
        BackendKind::Bigfloat => match construction::recorded_build_bits(model) {
            Some(bits) => Ok(Precision::Bits(bits)),
            None => bail!("the model records no build precision (construction.build_bits): give the bigfloat backend's precision (bits=N)"),
        },
        _ => Ok(Precision::F64),
    }
}

/// Where a fewest-bits search without an upper end starts for a model that records no build bits.
pub const SEARCH_START_BITS: u64 = 4096;

/// The most bits a fewest-bits search without an upper end grows to (a forward there takes minutes and
/// gigabytes); a model that does not memorize there is an error naming this bound.
pub const SEARCH_MAX_BITS: u64 = 1 << 20;

/// The top of a fewest-bits search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchTop {
    /// Given: searched as it is (a model that does not memorize there has no fewest bits in the range).
    Given(u64),
    /// Not given: from this start, doubled until the model memorizes, up to [`SEARCH_MAX_BITS`].
    Grow(u64),
}

/// A checked `verify`: run a model over a dataset on a backend and, if asked, search its fewest bits.
#[derive(Clone, Debug)]
pub struct VerifyRequest {
    /// The backend at its precision.
    pub target: RunTarget,
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// The fewest-bits search, if asked for: its parameters (`hi` resolved at run time) and its top.
    pub search: Option<(BitsSearchParams, SearchTop)>,
}

impl VerifyParams {
    /// Checks the threads, the backend at its precision (probing the device; the default precision is
    /// resolved for `model`) and the search range (`2 ≤ min < max ≤` [`boltz_bigfloat::MAX_BITS`]).
    pub fn check(self, model: &Model<BigReal>) -> Result<VerifyRequest> {
        let threads = checked_threads(self.threads, "--threads")?;
        let recorded = construction::recorded_build_bits(model);
        let search = match self.bisect {
            Some((lo, Some(hi))) if lo < 2 || hi > boltz_bigfloat::MAX_BITS || lo >= hi => {
                bail!("the fewest-bits search needs 2 ≤ min_bits < max_bits ≤ {}, got {lo}..={hi}", boltz_bigfloat::MAX_BITS)
            }
            Some((lo, _)) if !(2..SEARCH_MAX_BITS).contains(&lo) => {
                bail!("the fewest-bits search needs 2 ≤ min_bits < {SEARCH_MAX_BITS}, got {lo}")
            }
            Some((lo, hi)) => {
                let top = match hi {
                    Some(hi) => SearchTop::Given(hi),
                    None => SearchTop::Grow(recorded.unwrap_or(SEARCH_START_BITS).clamp(lo + 1, SEARCH_MAX_BITS)),
                };
                let first = match top {
                    SearchTop::Given(b) | SearchTop::Grow(b) => b,
                };
                Some((BitsSearchParams::default().bits(lo, first).threads(threads), top))
            }
            None => None,
        };
        let precision = match self.precision {
            Some(p) => p,
            None => default_precision(self.backend, model)?,
        };
        Ok(VerifyRequest { target: RunTarget::new(self.backend, precision)?, threads, search })
    }
}

impl VerifyRequest {
    /// Refuses a model and a dataset of different token dimensions; `model` and `dataset` name them.
    pub fn check_dims(&self, model: &Model<BigReal>, data: &Dataset<f64>, names: (&str, &str)) -> Result<()> {
        let d = data.inputs.shape()[2];
        if model.dim() != d {
            bail!("{} has token dimension {} but {} has d = {d}", names.0, model.dim(), names.1);
        }
        Ok(())
    }

    /// Runs `model` over `data` on the target, then the search if asked for (`on_probe(bits, check)` after
    /// each of its probes).
    pub fn run(&self, model: &Model<BigReal>, data: &Dataset<f64>, on_probe: impl Fn(u64, &DecodeCheck)) -> Result<BackendRun> {
        let mut run = self.target.run(model, data, self.threads);
        run.fewest_bits = match &self.search {
            Some(search) => Some(self.fewest_bits(model, data, search, on_probe)?),
            None => None,
        };
        Ok(run)
    }

    /// The search alone (Python's `fewest_bits`); refused when the request has none.
    pub fn search(&self, model: &Model<BigReal>, data: &Dataset<f64>, on_probe: impl Fn(u64, &DecodeCheck)) -> Result<BitsSearch> {
        let search = self.search.as_ref().context("the request has no fewest-bits search")?;
        self.fewest_bits(model, data, search, on_probe)
    }

    fn fewest_bits(
        &self,
        model: &Model<BigReal>,
        data: &Dataset<f64>,
        (params, top): &(BitsSearchParams, SearchTop),
        on_probe: impl Fn(u64, &DecodeCheck),
    ) -> Result<BitsSearch> {
        let hi = match *top {
            SearchTop::Given(hi) => hi,
            SearchTop::Grow(start) => grown_top(model, data, (start, SEARCH_MAX_BITS), self.threads, &on_probe)?,
        };
        Ok(boltz_construct::verify::fewest_bits_to_memorize(model, data, &params.bits(params.lo, hi), on_probe)?)
    }
}

/// The first of `start`, 2·`start`, 4·`start`, … (up to `max`) at which `model` memorizes `data`; an error
/// naming the bound where none does.
fn grown_top(
    model: &Model<BigReal>,
    data: &Dataset<f64>,
    (start, max): (u64, u64),
    threads: usize,
    on_probe: &impl Fn(u64, &DecodeCheck),
) -> Result<u64> {
    let x: boltz_core::Batch<BigReal> = data.inputs.convert()?;
    let y: boltz_core::Batch<BigReal> = data.targets.convert()?;
    let mut bits = start;
    loop {
        let backend = boltz_bigfloat::BigFloatBackend::with_threads(bits, threads)?;
        let check = backend.decodes_all(&boltz_core::Backend::prepare(&backend, model)?, &x, &y)?;
        if check.holds {
            return Ok(bits);
        }
        on_probe(bits, &check);
        if bits >= max {
            bail!(
                "the model does not memorize the data at any precision up to {max} bits, where the fewest-bits search \
                 stops (doubling from {start}); give max_bits (--max-bits) to search a range of your own"
            );
        }
        bits = (2 * bits).min(max);
    }
}

/// Where `train` starts: random weights of the given shape, or the one-layer construction under a policy
/// (fine-tuned: rounded to the training precision first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainInit {
    /// Random weights ([`boltz_train::init_model`]).
    Random,
    /// The one-layer memorizer built under this policy.
    Construction(Policy),
}

/// The element type training runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainPrecision {
    /// f32.
    F32,
    /// f64.
    F64,
}

/// What `train` was given: raw values, checked by [`TrainParams::check`].
#[derive(Clone, Debug)]
pub struct TrainParams {
    /// The generated dataset.
    pub data: DatasetSpec,
    /// The model's shape (random starts).
    pub shape: boltz_train::ModelShape,
    /// Optimiser, loss and stopping rule (its `threads` is set by the check).
    pub config: boltz_train::TrainConfig,
    /// Worker threads (`None`: every core).
    pub threads: Option<usize>,
    /// `f32` or `f64`.
    pub precision: String,
    /// Where training starts.
    pub init: TrainInit,
    /// The seed of the random start (and of the capacity search's one run per N, without `init_seeds`).
    pub seed: u64,
    /// Search the largest N that trains to memorization, up to this many sequences.
    pub capacity_max: Option<usize>,
    /// The capacity search's seeds (empty: `seed`).
    pub init_seeds: Vec<u64>,
    /// The capacity search warm-starts each N from the last memorized model.
    pub warm_start: bool,
    /// The run saves its models (one run only).
    pub save: bool,
    /// A memory limit in bytes (`None`: the memory available).
    pub max_memory: Option<u64>,
}

/// A checked `train`: one run, or the trained-capacity search.
#[derive(Clone, Debug)]
pub enum TrainRequest {
    /// One training run on one dataset.
    Fit {
        /// The dataset (validated).
        data: DatasetSpec,
        /// The shape of a random start.
        shape: boltz_train::ModelShape,
        /// Optimiser and loss, with the threads.
        config: boltz_train::TrainConfig,
        /// The element type.
        precision: TrainPrecision,
        /// Where it starts.
        init: TrainInit,
        /// The random start's seed.
        seed: u64,
    },
    /// The largest N that trains to memorization ([`boltz_train::trained_capacity`]).
    Capacity(boltz_train::CapacitySearch),
}

impl TrainParams {
    /// Checks the threads, the dataset spec, the precision, and the options that only one of the two runs
    /// takes (`--warm-start` needs the capacity search; the search takes neither a construction start nor
    /// `--save`, and runs in f64).
    pub fn check(self) -> Result<TrainRequest> {
        let threads = checked_threads(self.threads, "--threads")?;
        self.data.validate().context("invalid dataset parameters")?;
        let precision = match self.precision.as_str() {
            "f32" => TrainPrecision::F32,
            "f64" => TrainPrecision::F64,
            other => bail!("--precision {other}: training runs in f32 or f64"),
        };
        if self.warm_start && self.capacity_max.is_none() {
            bail!("--warm-start is a curriculum of the capacity search: give --capacity-max too");
        }
        let (sequences, shape) = (self.capacity_max.unwrap_or(self.data.sequences), &self.shape);
        let what = format!(
            "--sequences {sequences} --length {} --vocab {} --dim {} --ffn-width {} --blocks {} --heads {}",
            self.data.length, self.data.vocab, shape.dim, shape.ffn_width, shape.blocks, shape.heads
        );
        MemoryBudget::new(self.max_memory).check(&what, resources::train_bytes(shape, sequences, self.data.length, self.data.vocab))?;
        if self.config.steps == 0 {
            bail!("--steps must be at least 1 (Adam steps; 0 would report the untrained initialisation)");
        }
        if !(self.config.lr.is_finite() && self.config.lr > 0.0) {
            bail!("--lr must be a positive finite number, got {}", self.config.lr);
        }
        let config = boltz_train::TrainConfig { threads, ..self.config };
        let Some(max_sequences) = self.capacity_max else {
            return Ok(TrainRequest::Fit { data: self.data, shape: self.shape, config, precision, init: self.init, seed: self.seed });
        };
        if self.init != TrainInit::Random {
            bail!("--init-construction fine-tunes one model on one dataset: it does not combine with --capacity-max");
        }
        if self.save {
            bail!("--save writes one training run's models: it does not combine with --capacity-max");
        }
        if precision != TrainPrecision::F64 {
            bail!("--capacity-max searches in f64 (got --precision {})", self.precision);
        }
        let seeds = if self.init_seeds.is_empty() { vec![self.seed] } else { self.init_seeds };
        Ok(TrainRequest::Capacity(boltz_train::CapacitySearch {
            shape: self.shape,
            train: config,
            data: self.data,
            seeds,
            max_sequences,
            warm_start: self.warm_start,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DatasetSpec {
        DatasetSpec { sequences: 4, length: 3, dim: 4, vocab: 8, ..Default::default() }
    }

    #[test]
    fn memorize_refuses_before_any_work() {
        let refused = |p: MemorizeParams| format!("{:#}", p.check().expect_err("must be refused"));
        let base = || MemorizeParams::new(DataInput::Generate(spec()));
        assert!(refused(MemorizeParams { threads: Some(0), ..base() }).contains("--threads must be at least 1"));
        assert!(refused(MemorizeParams { backend: BackendKind::Cpu, ..base() }).contains("needs --precision"));
        assert!(refused(MemorizeParams { backend: BackendKind::Cpu, precision: Some(Precision::Bits(64)), ..base() })
            .contains("runs f32 or f64"));
        let e = construction_of(ConstructionKind::OneLayer.into(), Policy::Measured, YunDelta::Dyadic, Task::NextToken)
            .expect_err("next-token");
        assert!(format!("{e}").contains("--task next-token is for --construction bit-extraction"));
        let bx = construction_of(ConstructionKind::BitExtraction.into(), Policy::Measured, YunDelta::Dyadic, Task::NextToken);
        assert_eq!(bx.expect("valid"), Construction::BitExtraction(Task::NextToken));
        let bad_spec = DatasetSpec { length: 0, ..spec() };
        assert!(refused(MemorizeParams::new(DataInput::Generate(bad_spec))).contains("invalid dataset parameters"));
        assert!(refused(MemorizeParams { max_memory: Some(1), ..base() }).contains("--max-memory"));
        assert!(refused(MemorizeParams { max_seconds: Some(1e-9), ..base() }).contains("--max-time"));
        let long = DatasetSpec { length: 1_000_000, vocab: 2_000_000, ..spec() };
        assert!(refused(MemorizeParams::new(DataInput::Generate(long))).contains("--length 1000000"));
    }

    #[test]
    fn given_data_is_checked_like_a_file() {
        let data = Dataset::<f64>::generate(&spec()).expect("generate");
        let mut x = data.inputs.as_slice().to_vec();
        // The first sequence repeats its first token: the constructions need distinct tokens in a sequence.
        x.copy_within(0..4, 4);
        let [b, n, d] = data.inputs.shape();
        let data = Dataset::new(boltz_core::Batch::new(b, n, d, x).expect("shape"), data.targets, None).expect("dataset");
        let e = MemorizeParams::new(DataInput::Given(data)).check().expect_err("duplicate token");
        assert!(format!("{e:#}").contains("the data violates what the constructions need"), "{e:#}");
    }

    #[test]
    fn memorize_request_builds_and_runs_what_the_cli_builds() {
        let req = MemorizeParams { threads: Some(1), ..MemorizeParams::new(DataInput::Generate(spec())) }.check().expect("valid");
        assert!(req.generates());
        let data = req.dataset().expect("dataset");
        assert_eq!(data.inputs.shape(), req.shape());
        let built = req.build(&data).expect("build");
        let run = req.run(&built, &data);
        // Bigfloat at the build bits: the build's own exact verification, every token decoded.
        assert_eq!(run.precision, Precision::Bits(built.bits));
        assert_eq!(run.memorization.as_ref().map(|m| m.decoded), Some(data.inputs.batch() * data.inputs.len()));
    }

    #[test]
    fn train_refuses_combinations_of_the_two_runs() {
        let base = || TrainParams {
            data: DatasetSpec { sequences: 4, length: 3, dim: 4, vocab: 8, ..Default::default() },
            shape: boltz_train::ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 4, rank: None, ffn_width: 8 },
            config: boltz_train::TrainConfig::default(),
            threads: Some(1),
            precision: "f64".into(),
            init: TrainInit::Random,
            seed: 3,
            capacity_max: None,
            init_seeds: Vec::new(),
            warm_start: false,
            save: false,
            max_memory: None,
        };
        let refused = |p: TrainParams| format!("{:#}", p.check().expect_err("must be refused"));
        assert!(refused(TrainParams { precision: "bf16".into(), ..base() }).contains("training runs in f32 or f64"));
        assert!(refused(TrainParams { warm_start: true, ..base() }).contains("give --capacity-max too"));
        let search = || TrainParams { capacity_max: Some(8), ..base() };
        assert!(refused(TrainParams { init: TrainInit::Construction(Policy::Measured), ..search() }).contains("--init-construction"));
        assert!(refused(TrainParams { save: true, ..search() }).contains("--save"));
        assert!(
            refused(TrainParams { config: boltz_train::TrainConfig { steps: 0, ..base().config }, ..base() }).contains("--steps must be")
        );
        assert!(refused(TrainParams { config: boltz_train::TrainConfig { lr: f64::NAN, ..base().config }, ..base() }).contains("--lr must"));
        assert!(refused(TrainParams { precision: "f32".into(), ..search() }).contains("searches in f64"));
        match search().check().expect("valid") {
            TrainRequest::Capacity(s) => assert_eq!((s.seeds, s.max_sequences, s.train.threads), (vec![3], 8, 1)),
            other => panic!("{other:?}"),
        }
        match base().check().expect("valid") {
            TrainRequest::Fit { precision, config, .. } => assert_eq!((precision, config.threads), (TrainPrecision::F64, 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_checks_the_search_range_and_the_dimensions() {
        let params = |bisect| VerifyParams { backend: BackendKind::Reference, precision: Some(Precision::F64), threads: Some(1), bisect };
        let data = Dataset::<f64>::generate(&spec()).expect("generate");
        let other = Dataset::<f64>::generate(&DatasetSpec { dim: 5, ..spec() }).expect("generate");
        let built = construction::build(&data, &BuildOptions { construction: Construction::ALL[0], seed: 0, threads: 1, candidates: 100 })
            .expect("build");
        for bad in [(1, 64), (64, 64), (64, 8), (8, boltz_bigfloat::MAX_BITS + 1)] {
            let e = params(Some((bad.0, Some(bad.1)))).check(&built.model).expect_err("bad range");
            assert!(format!("{e:#}").contains("min_bits < max_bits"), "{bad:?}: {e:#}");
        }
        let req = params(Some((8, Some(64)))).check(&built.model).expect("valid");
        let e = req.check_dims(&built.model, &other, ("the model", "the data")).expect_err("dims differ");
        assert_eq!(format!("{e}"), "the model has token dimension 4 but the data has d = 5");
        let run = req.run(&built.model, &data, |_, _| {}).expect("run");
        assert!(run.memorization.is_some() && run.fewest_bits.is_some());
    }

    /// Without an upper end the search starts at the model's recorded build bits and doubles until the model
    /// memorizes; where it never does, the error names the bound. The build bits are the bigfloat default.
    #[test]
    fn the_search_grows_from_the_build_bits_and_names_its_bound() {
        let data = Dataset::<f64>::generate(&spec()).expect("generate");
        let built = construction::build(&data, &BuildOptions { construction: Construction::ALL[0], seed: 0, threads: 1, candidates: 100 })
            .expect("build");
        assert_eq!(construction::recorded_build_bits(&built.model), Some(built.bits));
        let params = VerifyParams { backend: BackendKind::Bigfloat, precision: None, threads: Some(1), bisect: Some((8, None)) };
        let req = params.check(&built.model).expect("valid");
        assert_eq!(req.target.precision, Precision::Bits(built.bits));
        let grown = req.search(&built.model, &data, |_, _| {}).expect("search");
        assert_eq!(grown.hi, built.bits, "it memorizes at its build bits: no growth");
        let fewest = grown.fewest.expect("memorizes");
        // A model that says it was built at 9 bits: the top doubles from 9 until the model memorizes.
        let info = built.model.info().clone().with(construction::BUILD_BITS, 9);
        let low = built.model.clone().with_info(info);
        let probes = std::cell::RefCell::new(Vec::new());
        let from_low = params.check(&low).expect("valid").search(&low, &data, |bits, _| probes.borrow_mut().push(bits)).expect("grows");
        assert_eq!(from_low.fewest, Some(fewest));
        assert!(from_low.hi >= fewest, "{}", from_low.hi);
        assert_eq!(probes.borrow()[..2], [9, 18], "the failing tops are reported as probes");
        // Data the model was not built for never decodes: the error names the bound.
        let other = Dataset::<f64>::generate(&DatasetSpec { seed: 99, ..spec() }).expect("generate");
        let e = grown_top(&built.model, &other, (16, 64), 1, &|_, _| {}).expect_err("never memorizes");
        assert!(format!("{e}").contains("any precision up to 64 bits"), "{e}");
        // A model without recorded bits has no bigfloat default.
        let bare = built.model.clone().with_info(boltz_core::ModelInfo::named("bare"));
        let e = VerifyParams { bisect: None, ..params }.check(&bare).expect_err("no default");
        assert!(format!("{e}").contains("records no build precision"), "{e}");
    }
}
