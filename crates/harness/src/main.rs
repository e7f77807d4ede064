//! `boltz`: build, verify and measure the constructions of Kajitsuka & Sato (ICLR 2024) and draw the
//! paper-style charts. Exit codes: 0 ok, 1 a checked property failed, 2 usage or runtime error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use boltz_bigfloat::{BigFloatBackend, BigReal, BitsSearch};
use boltz_construct::approximator::{Approximator, Target};
use boltz_construct::yun::{Yun, YunDelta, YunOptions, YunVariant};
use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::format::{self, Encoding};
use boltz_core::{workloads, Backend, Batch, Dataset, DatasetSpec, Memorization, ReferenceBackend, VocabKind};
use boltz_cpu::CpuBackend;
use boltz_harness::charts;
use boltz_harness::checkpoint::Mode;
use boltz_harness::config::{SuiteConfig, DEFAULT, QUICK};
use boltz_harness::experiments::{self, RunOptions, Shard};
use boltz_harness::meta::{write_json, RunMeta};
use boltz_harness::outdir::OutDir;
use boltz_harness::resources::{self, MemoryBudget};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;

/// `println!` that returns an error instead of panicking when stdout is closed or full (`main` ends
/// quietly on a closed pipe, as ripgrep does, and reports other write errors with exit 2).
macro_rules! outln {
    ($($arg:tt)*) => {
        {
            use std::io::Write as _;
            writeln!(std::io::stdout().lock(), $($arg)*).context("writing to stdout")?
        }
    };
}

/// `eprintln!` that never panics (see [`boltz_harness::note`]).
macro_rules! errln {
    ($($arg:tt)*) => { boltz_harness::note(format_args!($($arg)*)) };
}

#[derive(Parser, Debug)]
#[command(
    name = "boltz",
    version = boltz_harness::meta::LONG_VERSION,
    about = "Build, verify and measure one-layer rank-1 softmax Transformers (Kajitsuka & Sato, ICLR 2024)",
    long_about = "Build, verify and measure the constructions of Kajitsuka & Sato, \"Are Transformers with One Layer \
                  Self-Attention Using Low-Rank Weight Matrices Universal Approximators?\" (ICLR 2024): the rank-1 \
                  contextual mapping, the one-layer memorizer and the FF∘SA∘FF approximator, next to the deep hardmax \
                  baselines' formulas. Results are JSON (with run metadata) and CSV; charts are PNG and SVG.\n\n\
                  Exit codes: 0 ok, 1 a checked property failed (e.g. memorization in arbitrary precision), 2 usage or \
                  runtime error.",
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a memorizer for a generated dataset, verify it, and run it on a backend and precision.
    Memorize(MemorizeArgs),
    /// Build FF∘SA∘FF approximators of a target for several grid widths and measure their L² error.
    Approximate(ApproximateArgs),
    /// Run the experiment suite and draw every chart.
    Reproduce(ReproduceArgs),
    /// Time a workload of the shared table on a backend: median of repeated forwards after a warm-up.
    Bench(BenchArgs),
    /// Redraw the charts from the result files in a directory, without re-running anything.
    Plot {
        /// Directory with capacity.json, separation.json, ... (as written by reproduce).
        dir: PathBuf,
    },
    /// Draw the wall-clock history of the benches (results/bench-history.jsonl, appended by
    /// `scripts/bench-track.sh --record`) as bench_history.png/.svg.
    PlotHistory {
        /// The history file (one JSON record per line).
        file: PathBuf,
        /// Directory for the chart.
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Merge shard files (`<experiment>.shard-i-of-k.json`) in a directory into whole result files.
    Merge {
        /// Directory holding the shard files.
        dir: PathBuf,
    },
    /// Compare result files with a re-run: exact fields exactly, timing fields (seconds, milliseconds)
    /// within --time-factor. Without --with, re-runs the files' own configuration first. Exit 0 when
    /// everything agrees, 1 when something differs (a table says what), 2 on errors.
    Check(CheckArgs),
    /// Print an embedded suite configuration (a starting point for --config).
    Config {
        /// The quick configuration instead of the default.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Construction {
    /// The one-layer rank-1 memorizer (Corollary 1).
    OneLayer,
    /// Yun et al.'s data-adaptive selective-shift construction (exact, |V| + 1 attention layers).
    Yun,
    /// Yun et al.'s full-grid construction (δ^{−d} + 1 attention layers).
    YunFull,
    /// A Kim et al.-style construction (formula only: issue #5).
    Kim,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum PolicyArg {
    /// The paper's worst-case constants (projection lemma).
    Theory,
    /// λ from the measured gaps of the data (Lemma 1's condition holds exactly).
    Measured,
    /// The smallest softmax scale λ > 0 that still separates every context (minimises λ, not bits).
    Tuned,
    /// λ = 0: attention averages the sequence (rank 0, not softmax); fails where token sums collide.
    MeanPool,
    /// Softmax with λ > 0 and (v, λ) searched for the fewest bits the memorizer needs.
    FewestBits,
}

impl PolicyArg {
    fn policy(self) -> Policy {
        match self {
            Self::Theory => Policy::Theory,
            Self::Measured => Policy::Measured,
            Self::Tuned => Policy::Tuned,
            Self::MeanPool => Policy::MeanPool,
            Self::FewestBits => Policy::FewestBits,
        }
    }
}

fn parse_yun_delta(s: &str) -> Result<YunDelta, String> {
    s.parse::<YunDelta>().map_err(|e| e.to_string())
}

fn parse_vocab_kind(s: &str) -> Result<VocabKind, String> {
    s.parse::<VocabKind>().map_err(|e| e.to_string())
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum BackendArg {
    /// The scalar f64/f32 reference forward.
    Reference,
    /// The arbitrary-precision backend.
    Bigfloat,
    /// The multi-threaded pure-Rust CPU backend (f32/f64).
    Cpu,
    /// The BLAS backend (ndarray + system OpenBLAS; f32/f64; needs the `blas` feature, on by default).
    Blas,
    /// The CUDA backend (not wired into the CLI yet).
    Cuda,
}

impl BackendArg {
    /// The name on the command line.
    fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Bigfloat => "bigfloat",
            Self::Cpu => "cpu",
            Self::Blas => "blas",
            Self::Cuda => "cuda",
        }
    }

    /// Refuses, before any work, a backend this build lacks or a precision the backend cannot run.
    fn check(self, precision: Precision) -> Result<()> {
        match (self, precision) {
            (Self::Cuda, _) => bail!("--backend cuda is not available from the CLI yet; use reference, cpu, blas or bigfloat"),
            #[cfg(not(feature = "blas"))]
            (Self::Blas, _) => bail!("--backend blas is not in this build (built without the `blas` feature)"),
            (Self::Reference | Self::Cpu | Self::Blas, Precision::Bits(_)) => {
                bail!("--backend {} runs f32 or f64 (got --precision {precision}); use --backend bigfloat for bits=N", self.name())
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Precision {
    F32,
    F64,
    Bits(u64),
}

/// The command-line spelling: `f32`, `f64`, `bits=N`.
impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::F32 => f.write_str("f32"),
            Self::F64 => f.write_str("f64"),
            Self::Bits(b) => write!(f, "bits={b}"),
        }
    }
}

impl Serialize for Precision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    match s {
        "f32" => Ok(Precision::F32),
        "f64" => Ok(Precision::F64),
        _ => match s.strip_prefix("bits=").map(str::parse::<u64>) {
            Some(Ok(b)) if (2..=boltz_bigfloat::MAX_BITS).contains(&b) => Ok(Precision::Bits(b)),
            _ => Err(format!("expected f32, f64 or bits=N (2 ≤ N ≤ {}), got {s:?}", boltz_bigfloat::MAX_BITS)),
        },
    }
}

#[derive(clap::Args, Debug, Serialize)]
struct MemorizeArgs {
    /// Which construction to build.
    #[arg(long, value_enum, default_value = "one-layer")]
    construction: Construction,
    /// How the one-layer construction picks v and λ.
    #[arg(long, value_enum, default_value = "measured")]
    policy: PolicyArg,
    /// Yun et al.: grid width δ = 1/K with K rounded up to a power of two (dyadic: every weight dyadic) or
    /// the smallest K that separates the tokens (minimal: the construction's own δ, fewer layers).
    #[arg(long, value_parser = parse_yun_delta, default_value = "dyadic")]
    delta: YunDelta,
    /// Backend that runs the built model.
    #[arg(long, value_enum, default_value = "bigfloat")]
    backend: BackendArg,
    /// f32, f64 or bits=N (default: the bits the construction was built with).
    #[arg(long, value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Number of sequences N.
    #[arg(long, default_value_t = 100)]
    sequences: usize,
    /// Sequence length n.
    #[arg(long, default_value_t = 8)]
    length: usize,
    /// Token dimension d.
    #[arg(long, default_value_t = 4)]
    dim: usize,
    /// Vocabulary size |V|.
    #[arg(long, default_value_t = 16)]
    vocab: usize,
    /// Data family: random (generic tokens), grid (integer lattice points: equal token sums abound) or
    /// pte (d = 1, Prouhet–Tarry–Escott pairs: equal power sums; mean pooling collides).
    #[arg(long, value_parser = parse_vocab_kind, default_value = "random")]
    vocab_kind: VocabKind,
    /// Seed of the dataset and of the direction search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Skip the bisection for the fewest bits.
    #[arg(long)]
    no_bisect: bool,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    max_memory: Option<u64>,
    /// Write model (exact JSON, plus f64 safetensors when representable) and dataset (safetensors) into
    /// this directory (created fresh; a directory of an earlier export is replaced as a whole).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Print the JSON record instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Also write the JSON record to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Serialize)]
struct ApproximateArgs {
    /// The permutation-equivariant target.
    #[arg(long, value_enum, default_value = "product-mean")]
    target: TargetArg,
    /// Sequence length n.
    #[arg(long, default_value_t = 2)]
    length: usize,
    /// Token dimension d.
    #[arg(long, default_value_t = 1)]
    dim: usize,
    /// Grid cells per coordinate (1/δ), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![2usize, 4, 8, 16])]
    cells: Vec<usize>,
    /// Random inputs for the L² error.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    max_memory: Option<u64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON record to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum TargetArg {
    /// f(X)_k = x_k ⊙ mean(X).
    ProductMean,
    /// f(X)_k = Σ_i softmax_i(⟨x_k, x_i⟩) x_i.
    SoftmaxPool,
}

#[derive(clap::Args, Debug, Serialize)]
struct BenchArgs {
    /// Workload of the shared table: practical, memorizer, deep-narrow.
    #[arg(long)]
    workload: String,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// f32 or f64 (bits=N with --backend bigfloat).
    #[arg(long, value_parser = parse_precision, default_value = "f32")]
    precision: Precision,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed forwards after one warm-up forward.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Sequences per forward (default: the workload's batch).
    #[arg(long)]
    batch: Option<usize>,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    max_memory: Option<u64>,
    /// Print JSON instead of a summary line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The committed results (e.g. results/reproduce).
    dir: PathBuf,
    /// A directory holding the re-run's results (skip the re-run).
    #[arg(long)]
    with: Option<PathBuf>,
    /// Where the re-run writes (default: a new directory under the system's temporary directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Largest allowed ratio between committed and re-run timings (either direction).
    #[arg(long, default_value_t = 5.0)]
    time_factor: f64,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ReproduceArgs {
    /// The CI configuration (under 3 minutes on 2 cores).
    #[arg(long)]
    quick: bool,
    /// A JSON suite configuration (see `boltz config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "results/reproduce")]
    out: PathBuf,
    /// Run only shard i of k (points with index ≡ i mod k); combine with `boltz merge`.
    #[arg(long)]
    shard: Option<Shard>,
    /// Do not draw charts.
    #[arg(long)]
    no_plot: bool,
    /// Continue the run whose checkpoint is in --out (same configuration, shard and build): finished
    /// points are skipped.
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Discard an unfinished run's checkpoint in --out and start over.
    #[arg(long)]
    restart: bool,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    max_memory: Option<u64>,
}

fn threads(t: Option<usize>) -> Result<usize> {
    match t {
        Some(0) => bail!("--threads must be at least 1"),
        t => resources::threads(t, "--threads"),
    }
}

/// Checks, before any work, that `path` (a result file to write) can be created: its directory exists or
/// can be created, and a file can be written there.
fn check_writable_file(path: &Path, flag: &str) -> Result<()> {
    if path.is_dir() {
        bail!("{flag} {}: is a directory; give a file name", path.display());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("{flag} {}: cannot create its directory", path.display()))?;
    let probe = boltz_core::format::temp_sibling(path);
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| format!("{flag} {}: cannot write there", path.display()))
}

/// The files an export writes (and the only files an earlier export's directory may hold).
const EXPORT_FILES: [&str; 3] = ["model.exact.json", "model.safetensors", "dataset.safetensors"];

/// Checks, before any work, that `dir` can receive an export: absent, empty, or an earlier export (only
/// [`EXPORT_FILES`]), in a directory where a sibling can be created.
fn check_export_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let entries = std::fs::read_dir(dir).with_context(|| format!("--export {}: not a readable directory", dir.display()))?;
        let foreign: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !EXPORT_FILES.contains(&n.as_str()))
            .collect();
        if !foreign.is_empty() {
            bail!(
                "--export {}: holds files that are not an export ({}); choose a new or empty directory",
                dir.display(),
                foreign.join(", ")
            );
        }
    }
    let staging = export_staging(dir);
    std::fs::create_dir_all(&staging)
        .and_then(|()| std::fs::remove_dir(&staging))
        .with_context(|| format!("--export {}: cannot create directories next to it", dir.display()))
}

fn export_staging(dir: &Path) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    dir.with_file_name(format!(".{name}.{}{}", std::process::id(), boltz_core::format::TEMP_MARKER))
}

/// Writes the export into a fresh staging directory and renames it into place, so `dir` holds exactly
/// this model's files (never a stale file of an earlier export); returns the files written.
fn export(dir: &Path, model: &boltz_core::Model<BigReal>, data: &Dataset<f64>) -> Result<Vec<PathBuf>> {
    let staging = export_staging(dir);
    let write = || -> Result<Vec<&'static str>> {
        std::fs::create_dir_all(&staging)?;
        let mut names = vec!["model.exact.json"];
        format::save_model(model, &staging.join("model.exact.json"), Encoding::Exact)?;
        if let Ok(m64) = model.convert::<f64>() {
            format::save_model(&m64, &staging.join("model.safetensors"), Encoding::F64)?;
            names.push("model.safetensors");
        }
        format::save_dataset(data, &staging.join("dataset.safetensors"), Encoding::F64)?;
        names.push("dataset.safetensors");
        Ok(names)
    };
    let names = match write() {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.context(format!("exporting into {}", dir.display())));
        }
    };
    // An earlier export is moved aside (not merged into), then removed once the new one is in place.
    let old = dir.exists().then(|| PathBuf::from(format!("{}.old", staging.display())));
    if let Some(old) = &old {
        std::fs::rename(dir, old).with_context(|| format!("moving the earlier export {} aside", dir.display()))?;
    }
    if let Err(e) = std::fs::rename(&staging, dir) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, dir);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e).with_context(|| format!("moving the export into {}", dir.display()));
    }
    if let Some(old) = &old {
        let _ = std::fs::remove_dir_all(old);
    }
    boltz_core::format::sync_parent(dir);
    Ok(names.iter().map(|n| dir.join(n)).collect())
}

fn run_on<B: Backend<T>, T: boltz_core::Real>(
    backend: &B,
    model: &boltz_core::Model<BigReal>,
    data: &Dataset<f64>,
) -> Result<(Memorization, f64)> {
    let m: boltz_core::Model<T> = model.convert().context("the weights do not fit this precision")?;
    let x: Batch<T> = data.inputs.convert()?;
    let y: Batch<T> = data.targets.convert()?;
    let prepared = backend.prepare(&m)?;
    let t = Instant::now();
    let out = backend.forward(&prepared, &x)?;
    let secs = t.elapsed().as_secs_f64();
    Ok((Memorization::measure(&out, &y)?, secs))
}

/// A built memorizing model, whatever the construction.
struct Built {
    model: boltz_core::Model<BigReal>,
    bits: u64,
    exact: Memorization,
    report: serde_json::Value,
    summary: Vec<String>,
    /// Seconds of a verification at `bits` that already ran the whole model exactly (Yun's
    /// event-driven evaluator); a bigfloat run at `bits` reuses it instead of a plain forward.
    verified_seconds: Option<f64>,
    /// The fewest-bits search the construction already made (the fewest-bits policy).
    fewest_bits: Option<BitsSearch>,
}

fn build(a: &MemorizeArgs, data: &Dataset<f64>, threads: usize) -> Result<Built> {
    match a.construction {
        Construction::OneLayer => {
            let policy = a.policy.policy();
            let m = Memorizer::build(data, &ContextualOptions { policy, seed: a.seed, threads, ..Default::default() })
                .context("building the memorizer")?;
            let r = &m.report;
            let c = &r.contextual;
            let summary = vec![
                format!("one-layer memorizer ({} policy)", policy.as_str()),
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
            })
        }
        Construction::Yun | Construction::YunFull => {
            let variant = if matches!(a.construction, Construction::Yun) { YunVariant::Adaptive } else { YunVariant::Full };
            let y = Yun::build(data, &YunOptions { variant, threads, delta: a.delta, ..Default::default() })
                .context("building Yun et al.'s construction")?;
            let r = &y.report;
            let summary = vec![
                format!(
                    "Yun et al. selective-shift construction ({variant:?}), {} δ: 1/δ = {} (minimal {})",
                    r.delta_kind.as_str(),
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
            })
        }
        Construction::Kim => bail!("--construction kim has no executable construction"),
    }
}

fn memorize(a: &MemorizeArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    let spec = DatasetSpec {
        sequences: a.sequences,
        length: a.length,
        dim: a.dim,
        vocab: a.vocab,
        seed: a.seed,
        vocab_kind: a.vocab_kind,
        ..Default::default()
    };
    // Everything that can be refused is refused before the dataset is generated or a model built.
    spec.validate().context("invalid dataset parameters")?;
    MemoryBudget::new(a.max_memory).check(
        &format!("--sequences {} --length {} --dim {}", a.sequences, a.length, a.dim),
        resources::memorize_bytes(a.sequences, a.length, a.dim),
    )?;
    match a.precision {
        Some(p) => a.backend.check(p)?,
        None if a.backend != BackendArg::Bigfloat => {
            bail!("--backend {} needs --precision f32 or f64 (the construction's own precision is bits=N, for bigfloat)", a.backend.name())
        }
        None => {}
    }
    if let Construction::Kim = a.construction {
        bail!("--construction kim: only its depth and parameter reference curve exists (capacity results); no executable construction yet");
    }
    if let Some(out) = &a.out {
        check_writable_file(out, "--out")?;
    }
    if let Some(dir) = &a.export {
        check_export_dir(dir)?;
    }
    let clock = Instant::now();
    let stage = |what: std::fmt::Arguments<'_>| errln!("[{:>7.1}s] {what}", clock.elapsed().as_secs_f64());
    stage(format_args!("generating the dataset (N = {}, n = {}, d = {}, |V| = {})", a.sequences, a.length, a.dim, a.vocab));
    let data = Dataset::<f64>::generate(&spec).context("generating the dataset")?;
    stage(format_args!(
        "building the {} construction",
        clap::ValueEnum::to_possible_value(&a.construction).map_or(String::new(), |v| v.get_name().to_string())
    ));
    let built = build(a, &data, threads)?;
    stage(format_args!("built: {} bits, exact in arbitrary precision: {}", built.bits, built.exact.is_perfect()));
    let precision = a.precision.unwrap_or(Precision::Bits(built.bits));
    stage(format_args!("running on {} at {precision}", a.backend.name()));
    let run = match (a.backend, precision) {
        (BackendArg::Reference, Precision::F64) => run_on::<_, f64>(&ReferenceBackend, &built.model, &data),
        (BackendArg::Reference, Precision::F32) => run_on::<_, f32>(&ReferenceBackend, &built.model, &data),
        (BackendArg::Cpu, Precision::F64) => run_on::<_, f64>(&CpuBackend::new(threads)?, &built.model, &data),
        (BackendArg::Cpu, Precision::F32) => run_on::<_, f32>(&CpuBackend::new(threads)?, &built.model, &data),
        #[cfg(feature = "blas")]
        (BackendArg::Blas, Precision::F64) => run_on::<_, f64>(&boltz_blas::BlasBackend::new(threads)?, &built.model, &data),
        #[cfg(feature = "blas")]
        (BackendArg::Blas, Precision::F32) => run_on::<_, f32>(&boltz_blas::BlasBackend::new(threads)?, &built.model, &data),
        (BackendArg::Bigfloat, Precision::Bits(b)) if b == built.bits && built.verified_seconds.is_some() => {
            Ok((built.exact.clone(), built.verified_seconds.unwrap_or(0.0)))
        }
        (BackendArg::Bigfloat, p) => {
            let bits = match p {
                Precision::F32 => 24,
                Precision::F64 => 53,
                Precision::Bits(b) => b,
            };
            run_on::<_, BigReal>(&BigFloatBackend::with_threads(bits, threads)?, &built.model, &data)
        }
        // Refused by `BackendArg::check` before the build.
        (other, p) => bail!("--backend {} cannot run {p}", other.name()),
    };
    let (mem, forward_seconds, run_error) = match run {
        Ok((mem, s)) => (Some(mem), Some(s), None),
        Err(e) => (None, None, Some(format!("{e:#}"))),
    };
    let bits = match (&built.fewest_bits, a.no_bisect) {
        (_, true) => None,
        (Some(search), false) => Some(search.clone()),
        (None, false) => {
            stage(format_args!("searching the fewest bits for exact memorization (8..={} bits; each probe is a forward)", built.bits));
            let x: Batch<BigReal> = data.inputs.convert()?;
            let y: Batch<BigReal> = data.targets.convert()?;
            let probes = std::cell::Cell::new(0usize);
            let search = boltz_bigfloat::fewest_bits(&built.model, &x, 8, built.bits, threads, |out| {
                let held = Memorization::measure(out, &y).is_ok_and(|m| m.is_perfect());
                probes.set(probes.get() + 1);
                let p = out.as_slice().first().map_or(0, BigReal::bits);
                stage(format_args!("  probe {}: {p} bits {}", probes.get(), if held { "memorizes" } else { "fails" }));
                held
            })?;
            Some(search)
        }
    };
    let exported = match &a.export {
        Some(dir) => export(dir, &built.model, &data)?,
        None => Vec::new(),
    };
    let layers = built.model.layer_count();
    let params = built.model.param_count();
    let record = json!({
        "command": "memorize",
        "meta": RunMeta::collect(threads),
        "args": a,
        "dataset": spec,
        "construction": a.construction,
        "backend": a.backend,
        "precision": precision,
        "memorization": mem,
        "run_error": run_error,
        "forward_seconds": forward_seconds,
        "layers": layers,
        "params": params,
        "build_bits": built.bits,
        "exact_at_build_bits": built.exact,
        "report": built.report,
        "fewest_bits": bits,
        "attention_rank": attention_rank(&built.model),
        "exported": exported,
    });
    if let Some(out) = &a.out {
        write_json(out, &record)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!("N = {}, n = {}, d = {}, |V| = {}, seed {}", a.sequences, a.length, a.dim, a.vocab, a.seed);
        for line in &built.summary {
            outln!("{line}");
        }
        outln!(
            "  {} attention + {} FFN layers; {} parameters dense, {} factored",
            layers.attention,
            layers.ffn,
            params.dense,
            params.factored
        );
        outln!("  built at {} bits; exact in arbitrary precision: {}", built.bits, built.exact.is_perfect());
        if let Some(ranks) = attention_rank(&built.model).as_array() {
            let max = |key: &str| ranks.iter().filter_map(|h| h[key]["numerical_rank"].as_u64()).max().unwrap_or(0);
            if !ranks.is_empty() {
                outln!(
                    "  attention products (SVD, LAPACK): rank W_Kᵀ W_Q ≤ {}, rank W_Vᵀ W_Oᵀ ≤ {} over {} heads",
                    max("key_query"),
                    max("value_output"),
                    ranks.len()
                );
            }
        }
        match (&mem, &run_error) {
            (Some(mem), _) => outln!(
                "  {} at {}: {}/{} tokens decoded ({:.1}%), max |error| 1e{:.2}, forward {:.3}s",
                a.backend.name(),
                precision,
                mem.decoded,
                mem.tokens,
                100.0 * mem.accuracy,
                mem.log10_max_abs_error,
                forward_seconds.unwrap_or(0.0)
            ),
            (None, Some(e)) => outln!("  {} at {precision}: could not run: {e}", a.backend.name()),
            _ => {}
        }
        if let Some(b) = &bits {
            match b.fewest {
                Some(f) => {
                    outln!("  fewest bits for exact memorization: {f} (searched {}..={}, {} probes)", b.lo, b.hi, b.probes.len());
                    if !b.monotone {
                        outln!("  not monotone in the precision: holds at {:?} (probed ranges)", b.holds_at);
                    }
                }
                None => outln!("  not exact even at {} bits", b.hi),
            }
        }
        for f in &exported {
            outln!("  exported {}", f.display());
        }
    }
    if let Some(e) = run_error {
        // The record is written (it says why); the exit code must not claim the requested run happened.
        bail!("--backend {} at {precision} did not run: {e}", a.backend.name());
    }
    Ok(built.exact.is_perfect())
}

fn approximate(a: &ApproximateArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    let target = match a.target {
        TargetArg::ProductMean => Target::ProductMean,
        TargetArg::SoftmaxPool => Target::SoftmaxPool,
    };
    for &cells in &a.cells {
        Approximator::check_size(a.length, a.dim, cells, a.samples).with_context(|| format!("--cells {cells}"))?;
    }
    MemoryBudget::new(a.max_memory).check(
        &format!("--samples {} --length {} --dim {}", a.samples, a.length, a.dim),
        resources::approximate_bytes(a.samples, a.length, a.dim),
    )?;
    if let Some(out) = &a.out {
        check_writable_file(out, "--out")?;
    }
    let mut rows = Vec::new();
    for &cells in &a.cells {
        let ap =
            Approximator::build(target, a.length, a.dim, cells, a.samples, a.seed, threads).with_context(|| format!("cells = {cells}"))?;
        rows.push(ap.report);
    }
    let record = json!({ "command": "approximate", "meta": RunMeta::collect(threads), "args": a, "rows": rows });
    if let Some(out) = &a.out {
        write_json(out, &record)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!("FF∘SA∘FF approximator of {} (n = {}, d = {})", target.as_str(), a.length, a.dim);
        outln!("{:>8} {:>12} {:>12} {:>10} {:>8}", "delta", "L2 error", "f̄ floor", "params", "bits");
        for r in &rows {
            outln!("{:>8.4} {:>12.4e} {:>12.4e} {:>10} {:>8}", r.delta, r.l2_error, r.l2_error_piecewise_constant, r.params.dense, r.bits);
        }
    }
    Ok(rows.iter().all(|r| r.l2_error.is_finite()))
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if available.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn time_forwards<T: boltz_core::Real, B: Backend<T>>(
    backend: &B,
    model: &boltz_core::Model<f64>,
    x: &Batch<f64>,
    repeats: usize,
) -> Result<Vec<f64>> {
    let m: boltz_core::Model<T> = model.convert()?;
    let xt: Batch<T> = x.convert()?;
    let prepared = backend.prepare(&m)?;
    backend.forward(&prepared, &xt)?;
    (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            backend.forward(&prepared, &xt)?;
            Ok(t.elapsed().as_secs_f64())
        })
        .collect()
}

fn bench(a: &BenchArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    let workload = workloads::find(&a.workload)?;
    if a.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    a.backend.check(a.precision)?;
    let batch = a.batch.unwrap_or(workload.batch);
    MemoryBudget::new(a.max_memory).check(
        &format!("--batch {batch} of the {} workload (n = {}, d = {})", workload.name, workload.n, workload.d),
        resources::forward_bytes(batch, workload.n, workload.d, workload.d, 16),
    )?;
    let (model, x) = workload.build(a.batch)?;
    let flops = workloads::flops(&model, x.batch(), x.len());
    let times = match (a.backend, a.precision) {
        (BackendArg::Reference, Precision::F32) => time_forwards::<f32, _>(&ReferenceBackend, &model, &x, a.repeats)?,
        (BackendArg::Reference, Precision::F64) => time_forwards::<f64, _>(&ReferenceBackend, &model, &x, a.repeats)?,
        (BackendArg::Cpu, Precision::F32) => time_forwards::<f32, _>(&CpuBackend::new(threads)?, &model, &x, a.repeats)?,
        (BackendArg::Cpu, Precision::F64) => time_forwards::<f64, _>(&CpuBackend::new(threads)?, &model, &x, a.repeats)?,
        #[cfg(feature = "blas")]
        (BackendArg::Blas, Precision::F32) => time_forwards::<f32, _>(&boltz_blas::BlasBackend::new(threads)?, &model, &x, a.repeats)?,
        #[cfg(feature = "blas")]
        (BackendArg::Blas, Precision::F64) => time_forwards::<f64, _>(&boltz_blas::BlasBackend::new(threads)?, &model, &x, a.repeats)?,
        (BackendArg::Bigfloat, p) => {
            let bits = match p {
                Precision::F32 => 24,
                Precision::F64 => 53,
                Precision::Bits(b) => b,
            };
            time_forwards::<BigReal, _>(&BigFloatBackend::with_threads(bits, threads)?, &model, &x, a.repeats)?
        }
        (BackendArg::Reference | BackendArg::Cpu | BackendArg::Blas, Precision::Bits(_)) => {
            bail!("--backend {:?} runs f32 or f64", a.backend)
        }
        (other, _) => bail!("--backend {other:?} is not available in this build"),
    };
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let record = json!({
        "command": "bench",
        "meta": RunMeta::collect(threads),
        "workload": workload.name,
        "description": workload.description,
        "batch": x.batch(), "n": x.len(), "d": x.dim(),
        "args": a,
        "backend": a.backend,
        "precision": a.precision,
        "threads": threads,
        "flops_per_forward": flops,
        "seconds": times,
        "median_ms": median * 1e3,
        "gflops": flops / median / 1e9,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!(
            "{} on {} {}, {} threads: {:.3} ms per forward (median of {}), {:.2} GFLOP/s, peak RSS {} MiB",
            workload.name,
            a.backend.name(),
            a.precision,
            threads,
            median * 1e3,
            times.len(),
            flops / median / 1e9,
            peak_rss_bytes().map_or("?".into(), |b| (b >> 20).to_string())
        );
    }
    Ok(true)
}

/// Redraws the charts of a directory whose lock the caller holds.
fn plot(dir: &OutDir) -> Result<Vec<PathBuf>> {
    let results = experiments::load_results(dir.path())?;
    if results.is_empty() {
        bail!("{}: no result files (capacity.json, separation.json, ...) to plot", dir.path().display());
    }
    let mut files = Vec::new();
    for chart in charts::charts(&results)? {
        files.extend(charts::draw(&chart, dir.path())?);
    }
    Ok(files)
}

fn reproduce(a: &ReproduceArgs) -> Result<bool> {
    // Everything is checked before the first point runs: the configuration (every field), every point's
    // dataset and memory, and the output directory (created, writable, locked against a second writer).
    let cfg = SuiteConfig::load(a.config.as_deref(), a.quick)?;
    experiments::check_points(&cfg, &MemoryBudget::new(a.max_memory))?;
    let out = OutDir::lock(&a.out)?;
    let mode = match (a.resume, a.restart) {
        (true, _) => Mode::Resume,
        (_, true) => Mode::Restart,
        _ => Mode::Fresh,
    };
    let start = Instant::now();
    let outcome = experiments::run_suite(&cfg, &out, RunOptions { shard: a.shard, mode, progress: true })?;
    for f in &outcome.files {
        errln!("wrote {}", f.display());
    }
    if a.shard.is_none() && !a.no_plot {
        for f in plot(&out)? {
            errln!("drew {}", f.display());
        }
    }
    errln!(
        "done in {:.1}s{}",
        start.elapsed().as_secs_f64(),
        if outcome.resumed_points > 0 {
            format!(" ({} points resumed from the checkpoint)", outcome.resumed_points)
        } else {
            String::new()
        }
    );
    if !outcome.failed_properties.is_empty() {
        errln!("checked properties failed at: {}", outcome.failed_properties.join(", "));
    }
    Ok(outcome.failed_properties.is_empty())
}

fn check(a: &CheckArgs) -> Result<bool> {
    let rerun_dir = match &a.with {
        Some(dir) => dir.clone(),
        None => {
            // Re-run the committed results' own configuration into a fresh directory.
            let results = experiments::load_results(&a.dir)?;
            let Some(first) = results.values().next() else {
                bail!("{}: no result files to check", a.dir.display());
            };
            let dir = a.out.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("boltz-check-{}", std::process::id())));
            let out = OutDir::lock(&dir)?;
            errln!("re-running the configuration of {} into {}", a.dir.display(), dir.display());
            let outcome = experiments::run_suite(&first.config, &out, RunOptions { shard: None, mode: Mode::Restart, progress: true })?;
            if !outcome.failed_properties.is_empty() {
                errln!("checked properties failed in the re-run at: {}", outcome.failed_properties.join(", "));
            }
            dir
        }
    };
    let report = boltz_harness::check::compare_dirs(&a.dir, &rerun_dir, a.time_factor)?;
    if a.json {
        let diffs: Vec<serde_json::Value> = report
            .differences
            .iter()
            .map(|d| json!({"experiment": d.experiment, "point": d.point, "field": d.field, "committed": d.committed, "rerun": d.rerun, "why": d.why}))
            .collect();
        let record = json!({
            "command": "check", "committed": a.dir, "rerun": rerun_dir, "time_factor": a.time_factor,
            "rows": report.rows, "exact_fields": report.exact_fields, "timing_fields": report.timing_fields,
            "differences": diffs,
        });
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        use std::io::Write as _;
        std::io::stdout().lock().write_all(boltz_harness::check::render(&report, a.time_factor).as_bytes()).context("writing to stdout")?;
    }
    Ok(report.differences.is_empty())
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Memorize(a) => memorize(&a),
        Command::Approximate(a) => approximate(&a),
        Command::Reproduce(a) => reproduce(&a),
        Command::Bench(a) => bench(&a),
        Command::Check(a) => check(&a),
        Command::Plot { dir } => {
            let dir = OutDir::lock(&dir)?;
            for f in plot(&dir)? {
                errln!("drew {}", f.display());
            }
            Ok(true)
        }
        Command::PlotHistory { file, out } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let chart = charts::history_chart(&text).with_context(|| file.display().to_string())?;
            let out = OutDir::lock(&out)?;
            for f in charts::draw(&chart, out.path())? {
                errln!("drew {}", f.display());
            }
            Ok(true)
        }
        Command::Merge { dir } => {
            let dir = OutDir::lock(&dir)?;
            let files = experiments::merge(dir.path())?;
            if files.is_empty() {
                bail!("{}: no shard files to merge", dir.path().display());
            }
            for f in files {
                errln!("wrote {}", f.display());
            }
            Ok(true)
        }
        Command::Config { quick } => {
            use std::io::Write as _;
            std::io::stdout().lock().write_all(if quick { QUICK } else { DEFAULT }.as_bytes()).context("writing to stdout")?;
            Ok(true)
        }
    }
}

/// The SVD rank report of every attention head (`null` without the `blas` feature, or the error text).
fn attention_rank(model: &boltz_core::Model<boltz_bigfloat::BigReal>) -> serde_json::Value {
    #[cfg(feature = "blas")]
    {
        match boltz_blas::rank_report(model) {
            Ok(r) => serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
            Err(e) => json!({ "error": e.to_string() }),
        }
    }
    #[cfg(not(feature = "blas"))]
    {
        let _ = model;
        serde_json::Value::Null
    }
}

fn main() -> ExitCode {
    // OpenBLAS picks its kernel when it loads: re-execute once with a safe OPENBLAS_CORETYPE when unset.
    #[cfg(feature = "blas")]
    boltz_blas::openblas::reexec_with_coretype();
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        // A closed stdout (`boltz config | head -1`) ends the program quietly, as ripgrep does.
        Err(e) if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn precision_parsing() {
        assert_eq!(parse_precision("f32"), Ok(Precision::F32));
        assert_eq!(parse_precision("bits=300"), Ok(Precision::Bits(300)));
        assert!(parse_precision("bits=1").is_err());
        assert!(parse_precision("f16").is_err());
    }
}
