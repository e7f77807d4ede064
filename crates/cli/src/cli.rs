//! The command line: clap types of every subcommand and their argument parsers.

use std::path::PathBuf;

use anyhow::{bail, Result};
use boltz_construct::deep::bit_extraction::Task;
use boltz_construct::deep::yun::YunDelta;
use boltz_construct::{Construction, Family, Policy};
use boltz_core::{Named, VocabKind};
use boltz_lab::backends::{BackendKind, Precision};
use boltz_lab::resources::{self};
use boltz_lab::suite::Shard;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "boltz",
    version = boltz_lab::meta::LONG_VERSION,
    about = "Build, verify and measure one-layer rank-1 softmax Transformers (Kajitsuka & Sato, ICLR 2024)",
    long_about = "Build, verify and measure the constructions of Kajitsuka & Sato, \"Are Transformers with One Layer \
                  Self-Attention Using Low-Rank Weight Matrices Universal Approximators?\" (ICLR 2024): the rank-1 \
                  contextual mapping, the one-layer memorizer and the FF∘SA∘FF approximator, next to the deep hardmax \
                  baselines' formulas. Results are JSON (with run metadata) and CSV; charts are PNG and SVG.\n\n\
                  Exit codes: 0 ok, 1 a checked property failed (e.g. memorization in arbitrary precision), 2 usage or \
                  runtime error.",
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Build a memorizer for a generated dataset, verify it, and run it on a backend and precision.
    Memorize(MemorizeArgs),
    /// Build FF∘SA∘FF approximators of a target for several grid widths and measure their L² error.
    Approximate(ApproximateArgs),
    /// Run the experiment suite and draw every chart.
    Reproduce(ReproduceArgs),
    /// Time a workload of the shared table on a backend: median of repeated forwards after a warm-up.
    Bench(BenchArgs),
    /// Run a model file on a dataset file, on a backend and precision: tokens decoded, largest error, and
    /// with --bisect the fewest bits at which every token decodes. Exit 1 when a token does not decode.
    Verify(VerifyArgs),
    /// Train a model of the suite's class (attention + ReLU FFN blocks, dense or rank-r attention) by
    /// full-batch Adam on a generated dataset, until every token decodes or the steps run out; the loss
    /// curve and the reference backend's check of the trained model in the JSON.
    Train(TrainArgs),
    /// Redraw the charts from the result files in a directory, without re-running anything, with its
    /// tables (for one-point or constant data) and a contact sheet, `gallery.md`. Given a directory of
    /// results directories (e.g. `results`), redraws every one of them, the bench charts where it has
    /// `bench-history.jsonl`, and one gallery of everything.
    Plot {
        /// Directory with capacity.json, separation.json, ... (as written by reproduce), or a directory of
        /// such directories.
        dir: PathBuf,
    },
    /// Draw the wall-clock history of the benches (results/bench-history.jsonl, appended by
    /// `scripts/bench-track.sh --record`) as bench_history (ratios over commits, with the baseline and the
    /// failing threshold) and throughput (GFLOP/s per backend against the GEMM ceiling), PNG/SVG/PDF.
    PlotHistory {
        /// The history file (one JSON record per line).
        file: PathBuf,
        /// Directory for the charts (`bench_history` and `throughput`).
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// The committed ratio baseline and its failing factor (`lower`), for the thresholds.
        #[arg(long, default_value = "results/bench-baselines/ratios.json")]
        baseline: PathBuf,
        /// The measured GEMM ceiling (OpenBLAS sgemm/dgemm GFLOP/s), for the throughput chart.
        #[arg(long, default_value = "results/backends/gemm-ceiling.json")]
        ceiling: PathBuf,
    },
    /// Merge shard files (`<experiment>.shard-i-of-k.json`) in a directory into whole result files.
    Merge {
        /// Directory holding the shard files.
        dir: PathBuf,
    },
    /// Compare result files with a re-run: exact fields exactly; timing fields (seconds, milliseconds) are
    /// listed where they differ by more than 5× and fail only with --time-factor. Without --with, re-runs
    /// the files' own configuration first. Exit 0 when every exact field agrees ("reproduced K of K exact
    /// fields"), 1 when something differs (a table says what), 2 on errors.
    Check(CheckArgs),
    /// The machine's own ceilings, recorded with every bench: the FMA peak in f32 and f64 (a register-only
    /// kernel in the widest vector instruction set the CPU has: AVX-512F, AVX2+FMA, NEON) and the memory
    /// bandwidth (a STREAM triad over 3 × 64 MiB), per thread count. A forward's GFLOP/s over the peak is
    /// its fraction of the hardware, whatever a GEMM library reaches.
    Ceiling {
        /// Thread counts, comma-separated (default: 1 and all cores).
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// JSON (a list, one object per thread count) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// The shared workload table (the benches', `boltz bench`'s and the PyTorch comparison's shapes):
    /// name, batch, n, d, parameters and FLOPs per forward.
    Workloads {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a workload's exact weights and bench batch, and the reference f64 outputs on that batch, as
    /// safetensors (`DIR/<workload>/model.safetensors`, `io.safetensors` with `inputs` and `outputs`): the
    /// numbers the Rust benches run, for other frameworks to load and check against.
    Export {
        /// Workload name, or `all`.
        #[arg(long)]
        workload: String,
        /// Sequences in the batch (default: the workload's bench batch).
        #[arg(long)]
        batch: Option<usize>,
        /// Output directory.
        dir: std::path::PathBuf,
    },
    /// Print an embedded suite configuration (a starting point for --config).
    Config {
        /// The quick configuration instead of the default.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PolicyArg {
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
    pub(crate) fn policy(self) -> Policy {
        match self {
            Self::Theory => Policy::Theory,
            Self::Measured => Policy::Measured,
            Self::Tuned => Policy::Tuned,
            Self::MeanPool => Policy::MeanPool,
            Self::FewestBits => Policy::FewestBits,
        }
    }
}

/// The value parser of every [`Named`] type (backends, constructions, tasks, Yun grids, vocabularies):
/// its names as the possible values of `--help` and of clap's error, aliases accepted, parsed by
/// [`Named::from_name`] (so the CLI, configs and Python accept exactly the same spellings).
pub(crate) fn named<T: Named + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new(T::ALL.iter().map(|v| PossibleValue::new(v.name()).aliases(v.aliases().iter().copied())))
        .try_map(|s: String| T::from_name(&s))
}

pub(crate) fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse()
}

#[derive(clap::Args, Debug, Serialize)]
pub(crate) struct MemorizeArgs {
    /// Which construction to build: one-layer (the rank-1 memorizer of Corollary 1), yun (Yun et al.'s
    /// selective shifts over the tokens that occur, |V| + 1 attention layers), yun-full (the full grid,
    /// δ^{−d} + 1 layers) or bit-extraction (one averaging attention layer and a deep narrow ReLU stack,
    /// Õ(√(nN)) parameters; alias optimal), or a construction added as an extension, by its name.
    #[arg(long, value_parser = named::<Family>(), default_value = "one-layer")]
    pub(crate) construction: Family,
    /// How the one-layer construction picks v and λ.
    #[arg(long, value_enum, default_value = "measured")]
    pub(crate) policy: PolicyArg,
    /// bit-extraction: seq2seq (a label per token, ids for every (multiset, token) context, Õ(√(nN))
    /// parameters) or next-token (each sequence's label is its last position's target, one id per
    /// sequence, Õ(√N) parameters; the model outputs it at every position).
    #[arg(long, value_parser = named::<Task>(), default_value = "seq2seq")]
    pub(crate) task: Task,
    /// Yun et al.: grid width δ = 1/K with K rounded up to a power of two (dyadic: every weight dyadic) or
    /// the smallest K that separates the tokens (minimal: the construction's own δ, fewer layers).
    #[arg(long, value_parser = named::<YunDelta>(), default_value = "dyadic")]
    pub(crate) delta: YunDelta,
    /// Backend that runs the built model: reference (scalar f32/f64), bigfloat (p-bit arithmetic,
    /// correctly rounded), cpu (multi-threaded, f32/f64), blas (OpenBLAS), cuda (device 0).
    #[arg(long, value_parser = named::<BackendKind>(), default_value = "bigfloat")]
    pub(crate) backend: BackendKind,
    /// f32, f64 or bits=N (default: the bits the construction was built with).
    #[arg(long, value_parser = parse_precision)]
    pub(crate) precision: Option<Precision>,
    /// Memorize this dataset instead of a generated one: the boltz format (.safetensors or exact .json,
    /// docs/format.md), an .npz with arrays `inputs` [N, n, d] and `targets` [N, n, d] or integer `labels`
    /// [N, n] (label in coordinate 0), or an .npy of inputs with --labels or --targets. Checked before
    /// anything is built: shapes, NaN/inf, empty data, a token twice in a sequence, permuted sequences with
    /// inconsistent targets (exit 2 naming the sequence and position).
    #[arg(long, conflicts_with_all = ["sequences", "length", "dim", "vocab", "vocab_kind"])]
    pub(crate) dataset: Option<PathBuf>,
    /// With an .npy --dataset: the integer labels [N, n] as .npy.
    #[arg(long, requires = "dataset", conflicts_with = "targets")]
    pub(crate) labels: Option<PathBuf>,
    /// With an .npy --dataset: the targets [N, n, d] as .npy.
    #[arg(long, requires = "dataset")]
    pub(crate) targets: Option<PathBuf>,
    /// Number of sequences N.
    #[arg(long, default_value_t = 100)]
    pub(crate) sequences: usize,
    /// Sequence length n.
    #[arg(long, default_value_t = 8)]
    pub(crate) length: usize,
    /// Token dimension d.
    #[arg(long, default_value_t = 4)]
    pub(crate) dim: usize,
    /// Vocabulary size |V|.
    #[arg(long, default_value_t = 16)]
    pub(crate) vocab: usize,
    /// Data family: random (generic tokens), grid (integer lattice points: equal token sums abound) or
    /// pte (d = 1, Prouhet–Tarry–Escott pairs: equal power sums; mean pooling collides).
    #[arg(long, value_parser = named::<VocabKind>(), default_value = "random")]
    pub(crate) vocab_kind: VocabKind,
    /// Seed of the dataset and of the direction search.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Random directions the one-layer construction tries for v (the experiment suite's default too, so
    /// a suite row's data, seed and policy rebuild its model here).
    #[arg(long, default_value_t = boltz_construct::ContextualOptions::CANDIDATES)]
    pub(crate) candidates: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Skip the bisection for the fewest bits.
    #[arg(long)]
    pub(crate) no_bisect: bool,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    pub(crate) max_memory: Option<u64>,
    /// Refuse to start when verifying the model would take longer than this at the least (its
    /// arbitrary-precision operations, (nN)²(d + 2), at 10⁸ per second and thread): 600, 30m, 24h, 2d or
    /// inf; default one day.
    #[arg(long, value_parser = resources::parse_seconds)]
    pub(crate) max_time: Option<f64>,
    /// Write model (exact JSON, plus f64 safetensors when representable) and dataset (safetensors) into
    /// this directory (created fresh; a directory of an earlier export is replaced as a whole).
    #[arg(long)]
    pub(crate) export: Option<PathBuf>,
    /// Print the JSON record instead of the human summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write the JSON record to this file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

impl MemorizeArgs {
    /// The construction asked for: `--construction` with the parameter its family reads (`--policy`,
    /// `--delta` or `--task`), checked ([`boltz_lab::request::construction_of`]).
    pub(crate) fn construction(&self) -> anyhow::Result<Construction> {
        boltz_lab::request::construction_of(self.construction, self.policy.policy(), self.delta, self.task)
    }
}

#[derive(clap::Args, Debug, Serialize)]
pub(crate) struct VerifyArgs {
    /// The model in the documented format (docs/format.md): safetensors (as boltz writes it, or as
    /// `safetensors.torch.save_file` writes tensors with the documented names and metadata) or exact JSON;
    /// or a directory `memorize --export` wrote (its model.exact.json).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// The dataset, as `memorize --dataset` reads it (boltz format, .npz, or .npy with --labels/--targets).
    /// Default with an export directory as --model: its dataset.safetensors.
    #[arg(long)]
    pub(crate) dataset: Option<PathBuf>,
    /// With an .npy --dataset: the integer labels [N, n] as .npy.
    #[arg(long, conflicts_with = "targets")]
    pub(crate) labels: Option<PathBuf>,
    /// With an .npy --dataset: the targets [N, n, d] as .npy.
    #[arg(long)]
    pub(crate) targets: Option<PathBuf>,
    /// Backend that runs the model.
    #[arg(long, value_parser = named::<BackendKind>(), default_value = "reference")]
    pub(crate) backend: BackendKind,
    /// f32, f64 or bits=N (bigfloat). Default: f64; on bigfloat, the bits the model records it was
    /// built and verified with (construction.build_bits).
    #[arg(long, value_parser = parse_precision)]
    pub(crate) precision: Option<Precision>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Also search the fewest bits (8..=--max-bits, faithful p-bit evaluation on the bigfloat backend) at
    /// which every token decodes.
    #[arg(long)]
    pub(crate) bisect: bool,
    /// Upper end of the --bisect search. Default: the model's recorded build bits (4096 without them),
    /// doubled until the model memorizes there, up to 2^20 bits (then exit 2 naming that bound).
    #[arg(long, value_parser = clap::value_parser!(u64).range(9..=1 << 20))]
    pub(crate) max_bits: Option<u64>,
    /// Print the JSON record instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug, Serialize)]
pub(crate) struct TrainArgs {
    /// Sequences N.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(usize))]
    pub(crate) sequences: usize,
    /// Sequence length n.
    #[arg(long, default_value_t = 4)]
    pub(crate) length: usize,
    /// Token dimension d (the model's width).
    #[arg(long, default_value_t = 4)]
    pub(crate) dim: usize,
    /// Vocabulary size |V|.
    #[arg(long, default_value_t = 16)]
    pub(crate) vocab: usize,
    /// Label classes (labels uniform in 0..classes, in coordinate 0 of the target).
    #[arg(long, default_value_t = 2)]
    pub(crate) classes: u32,
    /// Data family: random, grid or pte.
    #[arg(long, value_parser = named::<VocabKind>(), default_value = "random")]
    pub(crate) vocab_kind: VocabKind,
    /// Seed of the data and of the initial weights.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Blocks (attention + FFN each).
    #[arg(long, default_value_t = 1)]
    pub(crate) blocks: usize,
    /// Attention heads per block.
    #[arg(long, default_value_t = 1)]
    pub(crate) heads: usize,
    /// Head size (default: d).
    #[arg(long)]
    pub(crate) head_size: Option<usize>,
    /// Store every attention weight as rank-r factors U Vᵀ (default: dense).
    #[arg(long)]
    pub(crate) rank: Option<usize>,
    /// FFN hidden width.
    #[arg(long, default_value_t = 64)]
    pub(crate) ffn_width: usize,
    /// Adam steps at most (full batch).
    #[arg(long, default_value_t = 2000)]
    pub(crate) steps: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-2)]
    pub(crate) lr: f64,
    /// f32 or f64.
    #[arg(long, default_value = "f64")]
    pub(crate) precision: String,
    /// Worker threads (sequence groups; default: all cores). The result is deterministic for a seed and a
    /// thread count.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Refuse to start when the estimated memory (model with Adam's state, activations, data) exceeds
    /// this many bytes (e.g. 8G; default: the memory available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    pub(crate) max_memory: Option<u64>,
    /// Train all steps even after every token decodes.
    #[arg(long)]
    pub(crate) no_early_stop: bool,
    /// Record the loss every this many steps.
    #[arg(long, default_value_t = 10)]
    pub(crate) log_every: usize,
    /// Search the trained capacity instead: the largest N (up to this) that training memorizes at 100 %
    /// token accuracy within --steps from at least one of --init-seeds (doubling, then bisection; f64).
    #[arg(long)]
    pub(crate) capacity_max: Option<usize>,
    /// Initialisation seeds of the capacity search (comma-separated; default: --seed).
    #[arg(long, value_delimiter = ',')]
    pub(crate) init_seeds: Vec<u64>,
    /// The per-token loss: squared error to the target (the constructions' decode rule: every coordinate
    /// within ½) or cross-entropy over the label classes (the first --classes output coordinates are the
    /// logits; a token decodes when its label's logit is the largest).
    #[arg(long, value_enum, default_value = "squared-error")]
    pub(crate) loss: LossArg,
    /// Capacity search with a curriculum over N: the first run at every N starts from the model that
    /// memorized the largest smaller N, before the fresh initialisations of --init-seeds.
    #[arg(long)]
    pub(crate) warm_start: bool,
    /// Start from the one-layer memorizer built on the data with this policy (its weights rounded to
    /// --precision), instead of random weights, and fine-tune it: the curve's first point is the rounded
    /// construction's accuracy. The model shape options are ignored (the construction fixes the shape).
    #[arg(long, value_enum)]
    pub(crate) init_construction: Option<PolicyArg>,
    /// Write the JSON record (loss curve included) to this file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Also write the initial model, the trained model and the dataset into this directory
    /// (`init.safetensors`, `trained.safetensors`, `dataset.safetensors`, in the training precision):
    /// what `scripts/torch_train_compare.py` trains again in PyTorch, or `boltz verify` re-checks.
    #[arg(long)]
    pub(crate) save: Option<PathBuf>,
    /// Print the JSON record instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LossArg {
    /// Squared error to the target vector.
    SquaredError,
    /// Cross-entropy over the label classes.
    CrossEntropy,
}

#[derive(clap::Args, Debug, Serialize)]
pub(crate) struct ApproximateArgs {
    /// The permutation-equivariant target.
    #[arg(long, value_enum, default_value = "product-mean")]
    pub(crate) target: TargetArg,
    /// Sequence length n.
    #[arg(long, default_value_t = 2)]
    pub(crate) length: usize,
    /// Token dimension d.
    #[arg(long, default_value_t = 1)]
    pub(crate) dim: usize,
    /// Grid cells per coordinate (1/δ), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![2usize, 4, 8, 16])]
    pub(crate) cells: Vec<usize>,
    /// Random inputs for the L² error.
    #[arg(long, default_value_t = 300)]
    pub(crate) samples: usize,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    pub(crate) max_memory: Option<u64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write the JSON record to this file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TargetArg {
    /// f(X)_k = x_k ⊙ mean(X).
    ProductMean,
    /// f(X)_k = Σ_i softmax_i(⟨x_k, x_i⟩) x_i.
    SoftmaxPool,
}

#[derive(clap::Args, Debug, Serialize)]
pub(crate) struct BenchArgs {
    /// Workload of the shared table: practical, memorizer, deep-narrow (`boltz workloads`).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub(crate) workload: Option<String>,
    /// Every workload of the table × every --backend × every --precision, each at the criterion benches'
    /// batch (`bench_batch`; --batch overrides it for all) in a process of its own (so each row's peak
    /// RSS is its own); one JSON document with the run metadata and one row per combination (with
    /// --json), else a table.
    #[arg(long)]
    pub(crate) all: bool,
    /// Backend (with --all: a comma-separated list, e.g. cpu,blas).
    #[arg(long, value_parser = named::<BackendKind>(), value_delimiter = ',', default_value = "cpu")]
    pub(crate) backend: Vec<BackendKind>,
    /// f32 or f64, bits=N with --backend bigfloat (with --all: a comma-separated list, e.g. f32,f64).
    #[arg(long, value_parser = parse_precision, value_delimiter = ',', default_value = "f32")]
    pub(crate) precision: Vec<Precision>,
    /// Worker threads (default: all cores; with --all: a comma-separated list, e.g. 1,2, compared side by
    /// side).
    #[arg(long, value_delimiter = ',')]
    pub(crate) threads: Vec<usize>,
    /// With --all: also write the comparison table as CSV to this file (one row per workload × backend ×
    /// precision × threads).
    #[arg(long)]
    pub(crate) csv: Option<PathBuf>,
    /// Timed forwards after one warm-up forward.
    #[arg(long, default_value_t = 5)]
    pub(crate) repeats: usize,
    /// Sequences per forward (default: the workload's batch; with --all, its bench batch).
    #[arg(long)]
    pub(crate) batch: Option<usize>,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    pub(crate) max_memory: Option<u64>,
    /// Print JSON instead of a summary line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Skip measuring the machine's ceilings (FMA peak, triad bandwidth) after the bench: `bench --all`
    /// measures them once per thread count for all its rows.
    #[arg(long, hide = true)]
    pub(crate) no_ceiling: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The committed results (e.g. results/reproduce).
    pub(crate) dir: PathBuf,
    /// A directory holding the re-run's results (skip the re-run).
    #[arg(long)]
    pub(crate) with: Option<PathBuf>,
    /// Where the re-run writes (default: a new directory under the system's temporary directory).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Make timings count: fail when a committed and a re-run timing differ by more than this ratio
    /// (either direction; `inf`: never). Without it, timings beyond 5× are listed as information only.
    #[arg(long)]
    pub(crate) time_factor: Option<f64>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ReproduceArgs {
    /// The CI configuration (seconds on 2 cores; the default takes about 6 minutes, `--plan` lists each
    /// point's recorded seconds).
    #[arg(long, conflicts_with = "config")]
    pub(crate) quick: bool,
    /// A JSON suite configuration (see `boltz config`). A file that omits any of capacity, separation,
    /// approximation and hardmax is partial: merged over the embedded default (`{"seed": 7}` is the
    /// default with another seed; objects merge field by field, lists and values replace, null removes an
    /// optional section).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Override one field (repeatable), Hydra style: a dot path and a JSON value, e.g.
    /// `--set capacity.sequences=[10,30] --set seed=7 --set trained.families.0.dim=2`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub(crate) set: Vec<String>,
    /// List the points (index, experiment, what, memory lower bound, and the seconds the same point took
    /// in --compare's results of the same configuration) and exit without running.
    #[arg(long)]
    pub(crate) plan: bool,
    /// With --plan: the list as JSON.
    #[arg(long, requires = "plan")]
    pub(crate) json: bool,
    /// Output directory. The default, results/latest/, is ignored by git; a run of the default
    /// configuration ends by comparing it with the committed results (--compare). Maintainers regenerate
    /// the committed results with `--out results/reproduce`.
    #[arg(long, default_value = "results/latest")]
    pub(crate) out: PathBuf,
    /// The committed results to compare the run's exact fields with at the end ("reproduced K of K exact
    /// fields"; exit 1 when one differs). Skipped, with a note, for another configuration, a shard, or
    /// when --out is that directory.
    #[arg(long, default_value = "results/reproduce", conflicts_with = "no_compare")]
    pub(crate) compare: PathBuf,
    /// Do not compare with committed results.
    #[arg(long)]
    pub(crate) no_compare: bool,
    /// Run only shard i of k (points with index ≡ i mod k); combine with `boltz merge`.
    #[arg(long)]
    pub(crate) shard: Option<Shard>,
    /// Do not draw charts.
    #[arg(long)]
    pub(crate) no_plot: bool,
    /// Write each construction point's model and dataset into OUT/models/point-NNN/ (NNN: the row's
    /// `point`), as `memorize --export` does, so any row can be re-checked: `boltz verify --model
    /// OUT/models/point-NNN`.
    #[arg(long)]
    pub(crate) export_models: bool,
    /// Continue the run whose checkpoint is in --out (same configuration, shard and build): finished
    /// points are skipped.
    #[arg(long, conflicts_with = "restart")]
    pub(crate) resume: bool,
    /// Discard an unfinished run's checkpoint in --out and start over.
    #[arg(long)]
    pub(crate) restart: bool,
    /// Refuse to start when the estimated memory exceeds this many bytes (e.g. 8G; default: the memory
    /// available now).
    #[arg(long, value_parser = resources::parse_bytes)]
    pub(crate) max_memory: Option<u64>,
    /// Refuse to start when a construction point's verification would take longer than this at the
    /// least (as `memorize --max-time`): 600, 30m, 24h, 2d or inf; default one day per point.
    #[arg(long, value_parser = resources::parse_seconds)]
    pub(crate) max_time: Option<f64>,
}

pub(crate) fn threads(t: Option<usize>) -> Result<usize> {
    match t {
        Some(0) => bail!("--threads must be at least 1"),
        t => resources::threads(t, "--threads"),
    }
}
