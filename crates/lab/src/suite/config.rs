//! The experiment suite's configuration: an embedded default, a `--quick` variant for CI, or a JSON file.

use anyhow::{bail, Context, Result};
use boltz_construct::one_layer::approximator::Approximator;
use boltz_construct::Construction;
use serde::{Deserialize, Serialize};

use crate::backends::{BackendKind, Precision};

/// A backend and element type on which the capacity and adversarial experiments run every model they
/// build (rounded to that type): each run records the fraction of tokens decoded and the forward's
/// latency in the row's `runs` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendRun {
    /// `reference`, `cpu`, `blas`, `bigfloat` or `cuda`.
    pub backend: BackendKind,
    /// `f32`, `f64`, or `bits=N` (bigfloat only).
    pub precision: Precision,
}

/// The runs of configurations that do not list `backends`: reference and cpu in f64 and f32.
pub fn default_backends() -> Vec<BackendRun> {
    let run = |backend, precision| BackendRun { backend, precision };
    vec![
        run(BackendKind::Reference, Precision::F64),
        run(BackendKind::Reference, Precision::F32),
        run(BackendKind::Cpu, Precision::F64),
        run(BackendKind::Cpu, Precision::F32),
    ]
}

/// The capacity sweep: one-layer memorizers for growing N.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Values of N.
    pub sequences: Vec<usize>,
    /// Sequence length n.
    pub length: usize,
    /// Token dimension d.
    pub dim: usize,
    /// Vocabulary size |V|.
    pub vocab: usize,
    /// Constructions to build: one-layer policies (`measured`, `fewest-bits`, `mean-pool`, `tuned`,
    /// `theory`) and/or `yun` / `yun-minimal` (Yun et al.'s data-adaptive deep hardmax construction with the
    /// dyadic or the minimal grid width δ) and/or `bit-extraction` (the parameter-optimal Õ(√(nN))
    /// construction, `boltz_construct::deep::bit_extraction`).
    pub policies: Vec<Construction>,
    /// Build `yun` only up to this N (its depth grows with nN, and so does its forward).
    pub yun_max_sequences: usize,
    /// Run Yun's softmax-λ realisation sweep only up to this N (each probe is a softmax forward).
    pub softmax_max_sequences: usize,
    /// Bisect the fewest bits for exact memorization.
    pub bisect: bool,
    /// Bisect only up to this N (each probe is a full forward at that precision; large N at thousands of
    /// bits takes minutes per probe).
    pub bisect_max_sequences: usize,
    /// Lower bisection caps for single constructions, by policy name (e.g. `{"yun": 300}`: thousands of
    /// layers per probe); the others use `bisect_max_sequences`. Absent: none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bisect_max_sequences_by_policy: std::collections::BTreeMap<String, usize>,
    /// Dataset files to build the constructions on as well (your own data, e.g. from NumPy): each gives one
    /// capacity row per construction, with `family` = `file:<name>`. Absent: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetFileConfig>,
}

impl CapacityConfig {
    /// Whether a capacity point of `policy` at `sequences` bisects its fewest bits: `bisect`, and N within
    /// `bisect_max_sequences` and the policy's own cap in `bisect_max_sequences_by_policy`.
    pub fn bisects(&self, policy: Construction, sequences: usize) -> bool {
        let cap = self.bisect_max_sequences_by_policy.get(policy.name()).copied().unwrap_or(self.bisect_max_sequences);
        self.bisect && sequences <= cap.min(self.bisect_max_sequences)
    }
}

/// A dataset file of the capacity experiment, read as `boltz memorize --dataset` reads it (and checked the
/// same way when the configuration loads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFileConfig {
    /// Its name in the rows (`family` = `file:<name>`); default: the file name without its extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The dataset: the boltz format (`.safetensors`, exact `.json`), an `.npz` (`inputs` with `targets` or
    /// `labels`), or an `.npy` of inputs with `labels` or `targets`. A relative path is relative to the
    /// configuration file's directory (results record the resolved path).
    pub path: std::path::PathBuf,
    /// With an `.npy` path: the integer labels `[N, n]` as `.npy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::path::PathBuf>,
    /// With an `.npy` path: the targets `[N, n, d]` as `.npy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<std::path::PathBuf>,
    /// Constructions to build on it (as `capacity.policies`; default: `capacity.policies`). Yun et al.'s
    /// cost grows with nN: list it only for small files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<Construction>>,
}

impl DatasetFileConfig {
    /// The name in the rows.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let stem = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            stem.split('.').next().unwrap_or_default().to_string()
        })
    }

    /// Reads and checks the dataset ([`crate::construction::read_dataset_file`]).
    pub fn read(&self) -> Result<boltz_core::Dataset<f64>> {
        crate::construction::read_dataset_file("dataset", &self.path, self.labels.as_deref(), self.targets.as_deref())
    }
}

/// One data family of the adversarial comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyConfig {
    /// `random` (generic tokens), `grid` (integer lattice points) or `pte` (Prouhet–Tarry–Escott, d = 1).
    pub kind: String,
    /// Token dimension d.
    pub dim: usize,
}

/// Bits needed per construction on generic vs adversarial data (where mean pooling collides).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarialConfig {
    /// Data families.
    pub families: Vec<FamilyConfig>,
    /// Values of N.
    pub sequences: Vec<usize>,
    /// Sequence length n.
    pub length: usize,
    /// Vocabulary size |V|.
    pub vocab: usize,
    /// Constructions (as in `capacity.policies`); every point bisects its fewest bits.
    pub policies: Vec<Construction>,
}

/// The separation grid: contextual mappings for (n, |V|, d).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparationConfig {
    /// `[n, |V|, d]` triples.
    pub grid: Vec<[usize; 3]>,
    /// Sequences per dataset (capped by C(|V|, n)).
    pub sequences: usize,
}

/// The approximation sweep (Proposition 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproximationConfig {
    /// Targets (`product-mean`, `softmax-pool`).
    pub targets: Vec<String>,
    /// Sequence length n.
    pub length: usize,
    /// Grid cells per coordinate (1/δ).
    pub cells: Vec<usize>,
    /// Random inputs for the L² error.
    pub samples: usize,
}

/// The hardmax demonstration (Theorem 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardmaxConfig {
    /// Token dimensions.
    pub dims: Vec<usize>,
    /// Random hardmax layers per dimension.
    pub draws: usize,
    /// Sequences in the family.
    pub family: usize,
}

/// The trained-capacity experiment (issue #19): for every data family, model and FFN width, the largest N
/// that full-batch Adam memorizes at 100 % token accuracy (`boltz_train::trained_capacity`), set beside
/// the constructions of the capacity sweep.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedConfig {
    /// Sequence length n.
    pub length: usize,
    /// Vocabulary size |V|.
    pub vocab: usize,
    /// Data families, each with its token dimension (and optionally only some models or widths).
    pub families: Vec<TrainedFamily>,
    /// Model shapes (one head of size d each).
    pub models: Vec<TrainedModel>,
    /// FFN hidden widths.
    pub ffn_widths: Vec<usize>,
    /// Adam steps per training run (the step budget).
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Initialisation seeds: N counts as memorized when one of them memorizes it.
    pub seeds: Vec<u64>,
    /// Largest N searched.
    pub max_sequences: usize,
    /// Bisect the fewest bits of the memorizing trained model (bigfloat).
    pub bisect: bool,
}

/// A data family of the trained experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedFamily {
    /// `random`, `grid` or `pte`.
    pub kind: String,
    /// Token dimension d (1 for pte).
    pub dim: usize,
    /// Only these models (names of `trained.models`; absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Only these FFN widths (absent: `trained.ffn_widths`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_widths: Option<Vec<usize>>,
}

/// A model shape (and recipe) of the trained experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedModel {
    /// Short name (letters, digits, '-'), the row's `model`.
    pub name: String,
    /// Blocks (attention + FFN).
    pub blocks: usize,
    /// Rank of the factored attention weights (absent or null: dense).
    #[serde(default)]
    pub rank: Option<usize>,
    /// Curriculum over N: each N starts from the last memorizing model first.
    #[serde(default)]
    pub warm_start: bool,
}

impl TrainedConfig {
    /// The `(family, model, width)` triples to run, in order.
    pub fn grid(&self) -> Vec<(&TrainedFamily, &TrainedModel, usize)> {
        let mut out = Vec::new();
        for f in &self.families {
            for m in self.models.iter().filter(|m| f.models.as_ref().is_none_or(|names| names.contains(&m.name))) {
                for &w in f.ffn_widths.as_ref().unwrap_or(&self.ffn_widths) {
                    out.push((f, m, w));
                }
            }
        }
        out
    }

    fn validate(&self) -> Result<()> {
        if self.families.is_empty() {
            return Ok(());
        }
        if self.length < 3 || self.vocab < self.length {
            bail!("fields trained.length/vocab: need n ≥ 3 and |V| ≥ n");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || !names.insert(&m.name) {
                bail!("field trained.models[{i}].name: {:?} must be a new name of letters, digits and '-'", m.name);
            }
            if m.blocks == 0 || m.rank == Some(0) {
                bail!("field trained.models[{i}]: need blocks ≥ 1 and rank ≥ 1 (or null for dense)");
            }
        }
        if self.models.is_empty() {
            bail!("field trained.models: needs at least one model (or no families)");
        }
        for (i, f) in self.families.iter().enumerate() {
            let kind: boltz_core::VocabKind = f.kind.parse().with_context(|| format!("field trained.families[{i}].kind"))?;
            if f.dim == 0 || (kind == boltz_core::VocabKind::Pte && f.dim != 1) {
                bail!("field trained.families[{i}].dim: need d ≥ 1, and d = 1 for pte (got {})", f.dim);
            }
            for name in f.models.iter().flatten() {
                if !names.contains(name) {
                    bail!("field trained.families[{i}].models: {name:?} is not a name of trained.models");
                }
            }
            if f.ffn_widths.as_ref().is_some_and(|w| w.is_empty() || w.contains(&0)) {
                bail!("field trained.families[{i}].ffn_widths: needs at least one width, all ≥ 1");
            }
        }
        if self.ffn_widths.is_empty() || self.ffn_widths.contains(&0) {
            bail!("field trained.ffn_widths: needs at least one width, all ≥ 1");
        }
        if self.steps == 0 || !(self.lr.is_finite() && self.lr > 0.0) || self.seeds.is_empty() || self.max_sequences == 0 {
            bail!("fields trained.steps/lr/seeds/max_sequences: need steps ≥ 1, a positive finite lr, one seed and max_sequences ≥ 1");
        }
        Ok(())
    }
}

/// The whole suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    /// Seed of every generator.
    pub seed: u64,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Backends and element types every built model runs on (capacity and adversarial rows' `runs`);
    /// absent: [`default_backends`].
    #[serde(default = "default_backends")]
    pub backends: Vec<BackendRun>,
    /// Capacity sweep.
    pub capacity: CapacityConfig,
    /// Generic vs adversarial data (absent in configurations older than the data families: no points).
    #[serde(default)]
    pub adversarial: AdversarialConfig,
    /// Separation grid.
    pub separation: SeparationConfig,
    /// Approximation sweep.
    pub approximation: ApproximationConfig,
    /// Hardmax demonstration.
    pub hardmax: HardmaxConfig,
    /// Trained capacity (absent in configurations older than it: no points).
    #[serde(default)]
    pub trained: TrainedConfig,
}

/// The default suite (README main command): about 6 minutes of points on 2 cores (the committed run's
/// seconds, which `tests/run_times.rs` keeps the README's statement of).
pub const DEFAULT: &str = include_str!("../../configs/default.json");
/// The `--quick` suite for CI: seconds on 2 cores in a release build.
pub const QUICK: &str = include_str!("../../configs/quick.json");

impl SuiteConfig {
    /// Parses and validates a configuration, naming the offending field on error.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        // serde_path_to_error names the field of a type error too (`capacity.sequences[1]: invalid type …`).
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("field {}: {}", e.path(), e.inner()))
            .with_context(|| format!("{origin}: invalid configuration"))?;
        cfg.validate().with_context(|| format!("{origin}: invalid configuration"))?;
        Ok(cfg)
    }

    /// Loads the embedded default, the quick variant, or a file, then applies `sets` (`path=value`,
    /// [`apply_set`]). A file that gives every one of `capacity`, `separation`, `approximation` and
    /// `hardmax` is complete (a section it omits, `adversarial` or `trained`, runs no points, as in files
    /// older than those experiments); a file that omits any of them is partial, merged over the embedded
    /// default ([`merge`]: objects field by field, everything else replaced, `null` removes an optional
    /// section). A file's dataset paths (`capacity.datasets`) are resolved against its directory, and every
    /// dataset is read and checked. `--quick` with a file is refused: the file says what to run.
    pub fn load(path: Option<&std::path::Path>, quick: bool, sets: &[String]) -> Result<Self> {
        let (text, origin) = match (path, quick) {
            (Some(p), true) => bail!(
                "--quick runs the embedded quick configuration and --config {} another: give one (or --set to change single fields)",
                p.display()
            ),
            (Some(p), false) => (std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?, p.display().to_string()),
            (None, true) => (QUICK.to_string(), "embedded quick configuration".to_string()),
            (None, false) => (DEFAULT.to_string(), "embedded default configuration".to_string()),
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let patched = file_value(text).with_context(|| format!("{origin}: invalid configuration"))?;
        let mut cfg = match (patched, sets.is_empty()) {
            // A complete file as it is: parsed from its text, so errors come in the file's order.
            (Patched::Complete, true) => Self::parse(text, &origin)?,
            (patched, _) => {
                let mut value = match patched {
                    Patched::Complete => serde_json::from_str(text)?,
                    Patched::Merged(v) => v,
                };
                for set in sets {
                    apply_set(&mut value, set).with_context(|| format!("--set {set}"))?;
                }
                Self::from_value(value, &origin)?
            }
        };
        if let Some(p) = path {
            let base = p.parent().unwrap_or(std::path::Path::new("."));
            cfg.resolve_datasets(base).with_context(|| format!("{origin}: invalid configuration"))?;
        }
        Ok(cfg)
    }

    /// [`Self::parse`] of a JSON value.
    fn from_value(value: serde_json::Value, origin: &str) -> Result<Self> {
        let cfg: Self = serde_path_to_error::deserialize(value)
            .map_err(|e| anyhow::anyhow!("field {}: {}", e.path(), e.inner()))
            .with_context(|| format!("{origin}: invalid configuration"))?;
        cfg.validate().with_context(|| format!("{origin}: invalid configuration"))?;
        Ok(cfg)
    }

    /// Makes every `capacity.datasets` path absolute (relative ones against `base`), then reads and checks
    /// each dataset, so a missing or malformed file is refused before any point runs.
    pub fn resolve_datasets(&mut self, base: &std::path::Path) -> Result<()> {
        for (i, f) in self.capacity.datasets.iter_mut().enumerate() {
            let field = || format!("field capacity.datasets[{i}]");
            for p in [Some(&mut f.path), f.labels.as_mut(), f.targets.as_mut()].into_iter().flatten() {
                let joined = base.join(&*p);
                *p = std::fs::canonicalize(&joined).with_context(|| format!("{}: {}", field(), joined.display()))?;
            }
            f.read().with_context(field)?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        let c = &self.capacity;
        if c.sequences.is_empty() || c.sequences.contains(&0) {
            bail!("field capacity.sequences: needs at least one value, all ≥ 1");
        }
        if c.length < 2 || c.dim == 0 || c.vocab < c.length {
            bail!("fields capacity.length/dim/vocab: need n ≥ 2, d ≥ 1, |V| ≥ n");
        }
        for p in &c.policies {
            check_policy(*p).context("field capacity.policies")?;
        }
        for (p, &cap) in &c.bisect_max_sequences_by_policy {
            p.parse::<Construction>()
                .map_err(anyhow::Error::from)
                .and_then(check_policy)
                .context("field capacity.bisect_max_sequences_by_policy")?;
            if cap > c.bisect_max_sequences {
                bail!(
                    "field capacity.bisect_max_sequences_by_policy: {p:?} = {cap} is above bisect_max_sequences = {} \
                     (it can only lower the cap)",
                    c.bisect_max_sequences
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, f) in c.datasets.iter().enumerate() {
            let name = f.name();
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
                bail!("field capacity.datasets[{i}].name: {name:?} must be letters, digits, '-', '_' or '.'");
            }
            if !names.insert(name.clone()) {
                bail!("field capacity.datasets[{i}]: the name {name:?} is used twice (set `name`)");
            }
            if f.labels.is_some() && f.targets.is_some() {
                bail!("field capacity.datasets[{i}]: give labels or targets, not both");
            }
            for p in f.policies.iter().flatten() {
                check_policy(*p).with_context(|| format!("field capacity.datasets[{i}].policies"))?;
            }
            if f.policies.as_ref().is_some_and(Vec::is_empty) {
                bail!("field capacity.datasets[{i}].policies: needs at least one construction (or leave it out)");
            }
        }
        let a = &self.adversarial;
        for (i, f) in a.families.iter().enumerate() {
            let kind: boltz_core::VocabKind = f.kind.parse().with_context(|| format!("field adversarial.families[{i}].kind"))?;
            if f.dim == 0 || (kind == boltz_core::VocabKind::Pte && f.dim != 1) {
                bail!("field adversarial.families[{i}].dim: need d ≥ 1, and d = 1 for pte (got {})", f.dim);
            }
        }
        if !a.families.is_empty() {
            if a.sequences.is_empty() || a.sequences.contains(&0) || a.policies.is_empty() {
                bail!("fields adversarial.sequences/policies: need at least one N ≥ 1 and one policy");
            }
            if a.length < 3 || a.vocab < a.length {
                bail!("fields adversarial.length/vocab: need n ≥ 3 and |V| ≥ n");
            }
        }
        for p in &a.policies {
            check_policy(*p).context("field adversarial.policies")?;
        }
        crate::resources::threads(Some(self.threads), "field threads")?;
        if self.backends.is_empty() {
            bail!("field backends: needs at least one {{\"backend\": …, \"precision\": …}} (or leave the field out for the default)");
        }
        for (i, run) in self.backends.iter().enumerate() {
            crate::backends::check(run.backend, run.precision).with_context(|| format!("field backends[{i}]"))?;
            if self.backends[..i].contains(run) {
                bail!("field backends[{i}]: {} {} is listed twice", run.backend.name(), run.precision);
            }
        }
        if !self.separation.grid.is_empty() && self.separation.sequences == 0 {
            bail!("field separation.sequences: needs at least 1 sequence per dataset");
        }
        for (i, [n, v, d]) in self.separation.grid.iter().enumerate() {
            if *n < 2 || v < n || *d == 0 {
                bail!("field separation.grid[{i}]: need n ≥ 2, |V| ≥ n, d ≥ 1, got [{n}, {v}, {d}]");
            }
        }
        for t in &self.approximation.targets {
            if !["product-mean", "softmax-pool"].contains(&t.as_str()) {
                bail!("field approximation.targets: unknown target {t:?} (product-mean, softmax-pool)");
            }
        }
        let ap = &self.approximation;
        if !ap.targets.is_empty() {
            Approximator::check_samples(ap.samples).context("field approximation.samples")?;
            for (i, &cells) in ap.cells.iter().enumerate() {
                // The suite's approximation points are one-dimensional (d = 1).
                Approximator::check_size(ap.length, 1, cells, ap.samples)
                    .with_context(|| format!("field approximation.cells[{i}] (with length {}, samples {})", ap.length, ap.samples))?;
            }
        }
        self.trained.validate()?;
        for (i, &dim) in self.hardmax.dims.iter().enumerate() {
            boltz_construct::one_layer::hardmax::check_params(dim, self.hardmax.family, self.hardmax.draws)
                .with_context(|| format!("field hardmax.dims[{i}] (with family {}, draws {})", self.hardmax.family, self.hardmax.draws))?;
        }
        Ok(())
    }
}

/// The constructions the suite's points run: the one-layer policies, Yun et al.'s construction on the
/// tokens that occur (either grid), the bit-extraction construction (sequence-to-sequence) and every
/// extension.
fn check_policy(c: Construction) -> Result<()> {
    use boltz_construct::deep::bit_extraction::Task;
    match c {
        Construction::OneLayer(_)
        | Construction::Yun(_)
        | Construction::BitExtraction(Task::SequenceToSequence)
        | Construction::Extension(_) => Ok(()),
        other => bail!(
            "{other}: the suite does not run this construction (its points build the one-layer policies, yun, yun-minimal and \
             bit-extraction; `boltz memorize --construction` builds the others)"
        ),
    }
}

/// The sections a complete configuration gives (see [`SuiteConfig::load`]).
const REQUIRED_SECTIONS: [&str; 4] = ["capacity", "separation", "approximation", "hardmax"];

/// A configuration's JSON: complete as it is, or partial and merged over the default.
enum Patched {
    /// It gives every one of [`REQUIRED_SECTIONS`].
    Complete,
    /// It lacks one: merged over the embedded default.
    Merged(serde_json::Value),
}

/// Whether `text` (JSON) is a complete configuration, or the default merged with it.
fn file_value(text: &str) -> Result<Patched> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value: serde_json::Value =
        serde_path_to_error::deserialize(de).map_err(|e| anyhow::anyhow!("not JSON: {} (at {})", e.inner(), e.path()))?;
    let Some(object) = value.as_object() else {
        bail!("expected a JSON object of fields (seed, threads, capacity, ...), got {}", kind_of(&value));
    };
    if REQUIRED_SECTIONS.iter().all(|k| object.contains_key(*k)) {
        return Ok(Patched::Complete);
    }
    let mut merged: serde_json::Value = serde_json::from_str(DEFAULT)?;
    merge(&mut merged, value);
    Ok(Patched::Merged(merged))
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// JSON merge patch (RFC 7386): `patch`'s objects merge into `base`'s field by field, its other values
/// replace them, and a `null` removes the field.
pub fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// One `--set path=value` override (Hydra style): `path` is dot-separated field names (list entries by
/// index: `trained.families.0.dim`), `value` is JSON (`[10,30]`, `true`, `7`, `"x"`) or else a plain
/// string (`--set capacity.policies=[measured]` needs JSON's quotes: `["measured"]`). Every field on the
/// path but the last must exist; the last may be new (the configuration's own check then names a field
/// that does not exist).
pub fn apply_set(config: &mut serde_json::Value, set: &str) -> Result<()> {
    let Some((path, raw)) = set.split_once('=') else {
        bail!("expected path=value, e.g. capacity.sequences=[10,30]");
    };
    let value = serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
    let names: Vec<&str> = path.split('.').collect();
    if names.iter().any(|n| n.is_empty()) {
        bail!("the path {path:?} has an empty field name");
    }
    let (last, parents) = names.split_last().context("an empty path")?;
    let mut at = config;
    for (i, name) in parents.iter().enumerate() {
        let here = names[..=i].join(".");
        at = match at {
            serde_json::Value::Object(m) => m.get_mut(*name).with_context(|| format!("no field {here} in the configuration"))?,
            serde_json::Value::Array(a) => {
                let index: usize = name.parse().with_context(|| format!("{here}: a list, indexed by number"))?;
                let len = a.len();
                a.get_mut(index).with_context(|| format!("{here}: index {index} of a list of {len}"))?
            }
            other => bail!("{}: {} has no fields", here, kind_of(other)),
        };
    }
    match at {
        serde_json::Value::Object(m) => {
            m.insert(last.to_string(), value);
        }
        serde_json::Value::Array(a) => {
            let index: usize = last.parse().with_context(|| format!("{path}: a list, indexed by number"))?;
            let len = a.len();
            *a.get_mut(index).with_context(|| format!("{path}: index {index} of a list of {len}"))? = value;
        }
        other => bail!("{}: {} has no fields", parents.join("."), kind_of(other)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_configs_are_valid() {
        SuiteConfig::parse(DEFAULT, "default").unwrap();
        SuiteConfig::parse(QUICK, "quick").unwrap();
        // The larger committed configurations next to them.
        let widths = include_str!("../../configs/trained-widths.json");
        assert_eq!(SuiteConfig::parse(widths, "trained-widths").unwrap().trained.grid().len(), 3 * 5 + 4 + 2);
        for (text, name, largest) in [
            (include_str!("../../configs/precision-1000.json"), "precision-1000", 1000),
            (include_str!("../../configs/precision-10000.json"), "precision-10000", 10_000),
        ] {
            let c = SuiteConfig::parse(text, name).unwrap().capacity;
            assert!(c.bisects("measured".parse().unwrap(), largest), "{name} searches the Measured memorizer at N = {largest}");
        }
    }

    #[test]
    fn per_policy_bisection_caps_lower_the_cap_only() {
        let cfg = SuiteConfig::parse(DEFAULT, "default").unwrap();
        let c = &cfg.capacity;
        for (policy, &cap) in &c.bisect_max_sequences_by_policy {
            let c_of: Construction = policy.parse().unwrap();
            assert!(c.bisects(c_of, cap) && !c.bisects(c_of, cap + 1), "{policy}");
        }
        let mean_pool: Construction = "mean-pool".parse().unwrap();
        assert!(c.bisects(mean_pool, c.bisect_max_sequences) && !c.bisects(mean_pool, c.bisect_max_sequences + 1));
        let raised =
            DEFAULT.replace("\"bisect_max_sequences_by_policy\": { \"yun\": 300", "\"bisect_max_sequences_by_policy\": { \"yun\": 3000");
        assert_ne!(raised, DEFAULT);
        let err = format!("{:#}", SuiteConfig::parse(&raised, "x").unwrap_err());
        assert!(err.contains("bisect_max_sequences_by_policy") && err.contains("only lower"), "{err}");
        let unknown = DEFAULT.replace("\"bisect_max_sequences_by_policy\": { \"yun\"", "\"bisect_max_sequences_by_policy\": { \"fastest\"");
        let err = format!("{:#}", SuiteConfig::parse(&unknown, "x").unwrap_err());
        assert!(err.contains("bisect_max_sequences_by_policy"), "{err}");
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = DEFAULT.replace("\"measured\"", "\"fastest\"");
        let err = format!("{:#}", SuiteConfig::parse(&bad, "x").unwrap_err());
        assert!(err.contains("capacity.policies"), "{err}");
        let bad = DEFAULT.replace("\"seed\"", "\"sede\"");
        let err = format!("{:#}", SuiteConfig::parse(&bad, "x").unwrap_err());
        assert!(err.contains("sede"), "{err}");
    }

    /// Every config value that used to fail only when its point ran (a panic after minutes of finished
    /// work, or an error) is refused at load, naming the field.
    #[test]
    fn late_failures_are_refused_at_load() {
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(DEFAULT).unwrap();
            edit(&mut v);
            format!("{:#}", SuiteConfig::parse(&v.to_string(), "x").unwrap_err())
        };
        type Edit = dyn Fn(&mut serde_json::Value);
        let cases: [(&str, &Edit); 11] = [
            ("backends[1]", &|v| {
                v["backends"] = serde_json::json!([{"backend": "cpu", "precision": "f64"}, {"backend": "cpu", "precision": "f64"}])
            }),
            ("backends[0]", &|v| v["backends"] = serde_json::json!([{"backend": "cpu", "precision": "bits=80"}])),
            ("backends[0].backend", &|v| v["backends"] = serde_json::json!([{"backend": "tpu", "precision": "f64"}])),
            ("field backends", &|v| v["backends"] = serde_json::json!([])),
            ("hardmax.dims[2]", &|v| v["hardmax"]["dims"] = serde_json::json!([1, 2, 0])),
            ("separation.sequences", &|v| v["separation"]["sequences"] = serde_json::json!(0)),
            ("approximation.samples", &|v| v["approximation"]["samples"] = serde_json::json!(0)),
            ("approximation.cells[", &|v| v["approximation"]["cells"] = serde_json::json!([2, 100000])),
            ("capacity.sequences[1]", &|v| v["capacity"]["sequences"] = serde_json::json!([10, "x"])),
            ("capacity.sequences", &|v| v["capacity"]["sequences"] = serde_json::json!(7)),
            ("threads", &|v| v["threads"] = serde_json::json!(usize::MAX)),
        ];
        for (field, edit) in cases {
            let err = with(edit);
            assert!(err.contains(field), "expected {field} in: {err}");
        }
    }

    /// The trained experiment's fields are checked at load, naming the field; a configuration without
    /// the section has no trained points.
    #[test]
    fn trained_fields_are_checked_at_load() {
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(DEFAULT).unwrap();
            edit(&mut v);
            SuiteConfig::parse(&v.to_string(), "x").map_err(|e| format!("{e:#}"))
        };
        type Edit = dyn Fn(&mut serde_json::Value);
        let cases: [(&str, &Edit); 6] = [
            ("trained.families[2].dim", &|v| v["trained"]["families"][2]["dim"] = serde_json::json!(2)),
            ("trained.families[1].models", &|v| v["trained"]["families"][1]["models"] = serde_json::json!(["nope"])),
            ("trained.models[1].name", &|v| v["trained"]["models"][1]["name"] = serde_json::json!("rank1")),
            ("trained.models[0]", &|v| v["trained"]["models"][0]["rank"] = serde_json::json!(0)),
            ("trained.ffn_widths", &|v| v["trained"]["ffn_widths"] = serde_json::json!([])),
            ("trained.steps/lr", &|v| v["trained"]["lr"] = serde_json::json!(-1.0)),
        ];
        for (field, edit) in cases {
            let err = with(edit).unwrap_err();
            assert!(err.contains(field), "expected {field} in: {err}");
        }
        let old = with(&|v| {
            v.as_object_mut().unwrap().remove("trained");
        })
        .unwrap();
        assert!(old.trained.grid().is_empty());
        let default = SuiteConfig::parse(DEFAULT, "default").unwrap();
        assert_eq!(default.trained.grid().len(), 4 * 3 + 2, "4 models × 3 widths on generic data, one grid and one PTE point");
    }

    #[test]
    fn backends_default_and_parse() {
        let mut v: serde_json::Value = serde_json::from_str(QUICK).unwrap();
        v.as_object_mut().unwrap().remove("backends");
        assert_eq!(SuiteConfig::parse(&v.to_string(), "x").unwrap().backends, default_backends());
        v["backends"] = serde_json::json!([{"backend": "bigfloat", "precision": "bits=80"}, {"backend": "reference", "precision": "f32"}]);
        let got = SuiteConfig::parse(&v.to_string(), "x").unwrap().backends;
        assert_eq!(
            got,
            [
                BackendRun { backend: BackendKind::Bigfloat, precision: Precision::Bits(80) },
                BackendRun { backend: BackendKind::Reference, precision: Precision::F32 }
            ]
        );
    }
}
