//! Yun et al. (ICLR 2020), adapted to memorization: the deep hardmax baseline, as an executable model
//! (Lemmas 5–7, as restated in Hu et al., NeurIPS 2024, Appendix E: quantization, selective shifts, value mapping).
//!
//! Layers, each its own block:
//!
//! 1. **Input affine layer** (one FFN, not part of Yun's count): `x ↦ s x + c` with `s` and `c` dyadic (see
//!    [`YunDelta`] for the two grids).
//! 2. **Stage A, quantization** (`d/δ + d` FFN layers, `1/δ = K`): `d` out-of-range layers
//!    `x_i ↦ x_i − J·1{x_i ∉ [0, 1)}` (4 ReLUs; Yun's `ζ_1` maps to exactly `−J`, which needs 6) and `dK` rounding layers
//!    `x_i ↦ x_i + ζ_2(x_i − kδ)` (`ζ_2 = −t` on `[0, δ)`, 0 elsewhere; 4 ReLUs, ramps of width `η = δ·2⁻²⁰`).
//!    The data is checked to stay off the ramps, so the quantization is exact on it.
//! 3. **Stage B, contextual mapping** (hardmax selective shifts, two heads of size 1,
//!    `W_Q = W_K = W_V = uᵀ`, `u = (1, δ⁻¹, …, δ^{−d+1})`, query biases `−(l ∓ δ/2)`, outputs `±δ^{−d} e_1`):
//!    one layer per grid id `l` — every id (`Full`, `δ^{−d}` layers) or only the ids of tokens that occur
//!    (`Adaptive`, `|V|` layers) — then one global-shift layer (`n δ^{−(n+1)d−1} e_1`, bias 0).
//! 4. **Stage C, value mapping** (`1 + d + K_ids` FFN layers): zero invalid columns (ids outside
//!    `[t_l, t_r]`), clamp negatives (`d` layers), then one layer per distinct context id `c`, adding
//!    `(A − g_c)·ζ_5(uᵀx − c)` with `ζ_5 = 1` on `[−δ/2, δ/2]` and 0 for `|t| ≥ δ` (4 ReLUs).
//!
//! **The grid, δ = 1/K** ([`YunDelta`], [`YunGrid`]). Yun's separation condition (`docs/theory.md` §7.3): after
//! an affine map of the data into `[0, 1)^d`, `δ ≤ ε_∞`, the smallest ∞-norm gap between distinct (mapped)
//! tokens — then distinct tokens fall into distinct cells (they differ by `≥ δ` in some coordinate), which is
//! what Lemma 6 needs (distinct columns; distinct sequences give distinct grid sequences).
//!
//! * [`YunDelta::Dyadic`] (the default, and the only grid before the choice existed) rounds to powers of two
//!   *twice*: the input scale is `s = 2^⌊log2((15/16)/(hi − lo))⌋` (up to 2× smaller than `(15/16)/(hi − lo)`,
//!   so the mapped gap `s·ε_∞` is up to 2× smaller), and then `K = 2^⌈log2 ⌈1/(s ε_∞)⌉⌉` (up to 2× more). With
//!   `δ` a power of two every weight is dyadic and the model runs in the `[0, 1)` coordinates of the paper.
//! * [`YunDelta::Minimal`]: `K = max(2, ⌊(hi − lo)/ε_∞⌋ + 1)`, the smallest integer for which *some* affine
//!   map into `[0, 1)` gives `δ = 1/K ≤` the mapped gap (it must stretch `hi − lo < K ε_∞`). `1/K` is not dyadic
//!   for `K ≠ 2^k`, so this model runs in the coordinates `λt` instead of `t ∈ [0, 1)`, `λ = K w`: the input
//!   layer is the translation `x ↦ x − a` (anchor `a` centring the data in `[0, K w)`), cells have width `w`,
//!   the largest dyadic `≤ ε_∞` with few significant bits and `K w > hi − lo`. This is Yun's network with
//!   `δ = 1/K` conjugated by the scaling `t ↦ λt`: every FFN is `x + F(x)` with ReLUs, and hardmax attention is
//!   unchanged when its queries' biases scale with its inputs, so the conjugate has the *same* weights and the
//!   biases times `λ` — and every `λ·(bias)` is a multiple of `w/2` (ids `l = mδ ↦ m w`, `kδ ↦ k w`), `u = (1, K,
//!   …, K^{d−1})`, the shift scales `K^d`, `n K^{(n+1)d+1}` are integers, and the ramps (widths `η`, `ρ`) are
//!   powers of two `≤ w`. So this model, too, is exact in enough bits and the same layers (the same formula,
//!   with this `K`) are built. The value layers write the targets themselves, so outputs are not rescaled.
//!
//! Every quantity is a dyadic rational, so the model runs *exactly* in enough bits; [`Yun::build`] computes
//! that many and verifies memorization there — with the event-driven evaluator [`FusedYun`], which skips
//! the layers that provably leave a sequence or token unchanged (bit-identical to the plain forward; N = 10³,
//! n = 8, d = 4 builds and verifies in seconds).

mod eval;
mod formulas;
mod grid;
mod layers;

pub use formulas::{yun_cells, yun_cells_for, yun_counts, yun_counts_for, YunCounts};
pub use grid::{YunDelta, YunGrid};

use std::time::Instant;

use boltz_bigfloat::{smallest_holding, BigFloatBackend, BigReal, BitsSearch};
use boltz_core::{
    Backend, Batch, DataReport, Dataset, Error, Matrix, Memorization, Model, ModelInfo, Normalizer, ParamCount, Real, Requirements, Result,
    Weight,
};
use serde::{Deserialize, Serialize};

pub use eval::{FusedYun, YunLayout};
use layers::{context_table, pow2, GridArithmetic};

/// Which grid ids stage B sweeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YunVariant {
    /// Only the ids of tokens that occur: `|V| + 1` attention layers.
    Adaptive,
    /// Every grid id: `δ^{−d} + 1` attention layers.
    Full,
}

/// Options of [`Yun::build`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YunOptions {
    /// Stage B variant.
    pub variant: YunVariant,
    /// How `δ` is chosen (default: dyadic, as before the choice existed).
    #[serde(default)]
    pub delta: YunDelta,
    /// Grid cells per coordinate `1/δ` (rounded up to a power of two for [`YunDelta::Dyadic`], as given for
    /// [`YunDelta::Minimal`]); `None`: the coarsest grid of that kind that separates the data.
    pub cells: Option<u64>,
    /// Refuse to build more layers than this.
    pub max_layers: usize,
    /// Threads of the verification forward.
    pub threads: usize,
}

impl Default for YunOptions {
    fn default() -> Self {
        Self {
            variant: YunVariant::Adaptive,
            delta: YunDelta::Dyadic,
            cells: None,
            max_layers: 200_000,
            threads: boltz_core::threads::all_cores(),
        }
    }
}

/// The "softmax as approximate hardmax" reading: every hardmax replaced by a softmax with its logits scaled
/// by `λ = 2^k`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxRealisation {
    /// `log2 λ` of the smallest scale (in the searched range) at which the model still memorizes.
    pub min_log2_lambda: Option<f64>,
    /// Searched range of `log2 λ`.
    pub range: (f64, f64),
    /// `(log2 λ, memorizes)` of every probe.
    pub probes: Vec<(f64, bool)>,
    /// Precision of the probes.
    pub bits: u64,
}

/// Counts and measurements of a built Yun model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YunReport {
    /// The variant.
    pub variant: YunVariant,
    /// How `δ` was chosen.
    #[serde(default)]
    pub delta_kind: YunDelta,
    /// `1/δ = K`, the cells per coordinate actually used.
    pub cells: u64,
    /// `δ = 1/K`.
    #[serde(default)]
    pub delta: f64,
    /// Width of one cell in data coordinates (`δ` divided by the input scale into `[0, 1)`).
    #[serde(default)]
    pub cell_width: f64,
    /// `K` of [`YunDelta::Minimal`] on this data (equal to `cells` for it), for comparing the two choices.
    #[serde(default)]
    pub minimal_cells: u64,
    /// Layers as built, by stage: `[input affine, quantization, contextual, value]`.
    pub layers_by_stage: [usize; 4],
    /// Layers of the model (all stages).
    pub layers: usize,
    /// The formula of `docs/theory.md` §7.4 (without the input affine layer); must equal the built stages.
    pub formula: YunCounts,
    /// Parameters of this realisation, counted from its layer widths (see [`realised_params`]); equals
    /// `params.dense`.
    pub realised_params: u64,
    /// Parameters of the built model.
    pub params: ParamCount,
    /// Distinct context ids K.
    pub ids: usize,
    /// `log2` of the largest context id (the dynamic range the arithmetic must hold).
    pub log2_max_id: f64,
    /// Bits the model was verified with (exact arithmetic on this data).
    pub bits: u64,
    /// Exact memorization at `bits`.
    pub memorization: Memorization,
    /// Seconds to build.
    pub build_seconds: f64,
    /// Seconds of the verification forward.
    pub verify_seconds: f64,
}

/// A built Yun model.
#[derive(Clone, Debug)]
pub struct Yun {
    /// The model.
    pub model: Model<BigReal>,
    /// Counts and measurements.
    pub report: YunReport,
    /// Stage-B context ids `uᵀg` of every position (for comparing variants).
    pub stage_b_ids: Vec<BigReal>,
    /// Where the stages sit (for the event-driven exact evaluator).
    pub layout: YunLayout,
}

/// Dense parameters of this realisation: the input affine layer (`4d² + 3d`), `d + dK` width-4 FFN layers
/// (`9d + 4` each), one two-head selective shift per swept id (`8d + 2`), a one-head global shift (`4d + 1`),
/// the width-4 invalid-column layer (`9d + 4`), `d` width-1 clamp layers (`3d + 1`) and one width-4 value
/// layer per context id (`9d + 4`). `docs/theory.md` §7.4's T^{2,1,4} estimate counts every attention layer as
/// `8d + 2` and every FFN layer as `9d + 4`, and has no affine layer.
pub fn realised_params(d: usize, cells: u64, swept: usize, ids: usize) -> u64 {
    let (d, k) = (d as u64, cells);
    let ffn4 = 9 * d + 4;
    (4 * d * d + 3 * d) + (d + d * k) * ffn4 + swept as u64 * (8 * d + 2) + (4 * d + 1) + ffn4 + d * (3 * d + 1) + ids as u64 * ffn4
}

/// What a built model records about itself: its name and its grid.
fn model_info(variant: YunVariant, delta: YunDelta, grid: &YunGrid) -> ModelInfo {
    ModelInfo::named(match variant {
        YunVariant::Adaptive => "yun",
        YunVariant::Full => "yun-full",
    })
    .with("cells", grid.cells)
    .with("scale", grid.scale)
    .with("shift", grid.shift)
    .with("delta", delta)
    .with("cell_width", grid.width)
}

impl Yun {
    /// Builds Yun et al.'s construction for `data` and verifies it memorizes exactly.
    ///
    /// Errors: repeated tokens inside a sequence ([`Error::DuplicateToken`]), permuted sequences with
    /// different targets, a grid too coarse for the data ([`Error::Assumption`], with the factor), data on
    /// a quantization ramp, or more layers than `max_layers`.
    pub fn build(data: &Dataset<f64>, opts: &YunOptions) -> Result<Self> {
        let start = Instant::now();
        let x = &data.inputs;
        let (big_n, n, d) = (x.batch(), x.len(), x.dim());
        let rep = DataReport::analyze(x, Some(&data.targets));
        rep.check(&Requirements { no_duplicate_tokens: true, ..Default::default() })?;
        let (lo, hi) = x.as_slice().iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let grid = YunGrid::choose(lo, hi, rep.eps_inf, opts.delta, opts.cells)?;
        let arith = GridArithmetic::new(&grid, opts.delta, n, d);
        arith.check_off_ramps(x.as_slice())?;
        let mut blocks = arith.quantization(d);
        let quantization_layers = blocks.len() - 1;
        let token_cells = arith.token_cells(x.as_slice(), d)?;
        let sweep: Vec<u64> = match opts.variant {
            YunVariant::Adaptive => token_cells,
            YunVariant::Full => (0..grid.cells.pow(d as u32)).collect(),
        };
        let formula = yun_counts_for(d, grid.cells, rep.vocab_size, big_n * n, opts.variant == YunVariant::Full, opts.delta);
        let planned = 1 + quantization_layers + sweep.len() + 1 + 1 + d + big_n * n;
        if planned > opts.max_layers {
            return Err(Error::Infeasible(format!("{planned} layers exceed max_layers = {}", opts.max_layers)));
        }
        blocks.extend(arith.contextual(&sweep, n, d));
        let contextual_layers = sweep.len() + 1;

        // The stage-B ids, from a forward of the model so far.
        let prefix = Model::new(d, blocks.clone(), ModelInfo::named("yun-prefix"))?;
        let xb: Batch<BigReal> = x.convert()?;
        let backend = BigFloatBackend::with_threads(arith.bits, opts.threads)?;
        let mut layout = arith.stage_b_layout(1 + quantization_layers, &sweep);
        // The event-driven evaluator pays per event; below ~10⁵ token-layers the plain forward is cheaper
        // (both are exact and give identical bits).
        let fused = big_n * n * planned > 100_000;
        let g = if fused { FusedYun::new(&backend, &prefix, &layout).through_stage_b(&xb)? } else { backend.run(&prefix, &xb)? };
        let ids: Vec<BigReal> = g.as_slice().chunks(d).map(|col| crate::one_layer::contextual::project(&arith.u, col)).collect();
        let log2_max_id = ids.iter().map(|v| v.log2_abs()).fold(f64::NEG_INFINITY, f64::max);
        let by_id = context_table(&ids, g.as_slice(), data, n, d)?;
        blocks.extend(arith.value_mapping(&ids, &by_id, d));
        let value_layers = 1 + d + by_id.len();
        let model = Model::new(d, blocks, model_info(opts.variant, opts.delta, &grid))?;
        let build_seconds = start.elapsed().as_secs_f64();

        // Verification, exact, with the value stage's layout.
        let t = Instant::now();
        let y: Batch<BigReal> = data.targets.convert()?;
        let values_start = layout.dense.end + 1 + d;
        layout.dense = layout.dense.start..values_start;
        layout.values = values_start..model.blocks().len();
        layout.value_ids = by_id.values().map(|(id, _, _)| id.clone()).collect();
        let out = if fused { FusedYun::new(&backend, &model, &layout).forward(&xb)? } else { backend.run(&model, &xb)? };
        let memorization = Memorization::measure(&out, &y)?;
        let report = YunReport {
            variant: opts.variant,
            delta_kind: opts.delta,
            cells: grid.cells,
            delta: grid.delta_value(),
            cell_width: grid.data_width(),
            minimal_cells: grid.minimal_cells,
            layers: model.blocks().len(),
            layers_by_stage: [1, quantization_layers, contextual_layers, value_layers],
            formula,
            params: model.param_count(),
            ids: by_id.len(),
            realised_params: realised_params(d, grid.cells, contextual_layers - 1, by_id.len()),
            log2_max_id,
            bits: arith.bits,
            memorization,
            build_seconds,
            verify_seconds: t.elapsed().as_secs_f64(),
        };
        Ok(Self { model, report, stage_b_ids: ids, layout })
    }

    /// The fewest bits at which every token still decodes to its label (weights, inputs and arithmetic
    /// all at that precision; faithful evaluation; [`crate::verify::fewest_bits_to_memorize`]).
    pub fn fewest_bits(&self, data: &Dataset<f64>, params: &crate::verify::BitsSearchParams) -> Result<BitsSearch> {
        crate::verify::fewest_bits_to_memorize(&self.model, data, params, |_, _| {})
    }

    /// The model with every hardmax replaced by a softmax whose logits are scaled by `2^log2_lambda`
    /// (`W_Q` and `b_Q` multiplied by λ).
    pub fn softmax_model(&self, log2_lambda: i64) -> Result<Model<BigReal>> {
        let lambda = pow2(log2_lambda);
        let scale = |w: &Weight<BigReal>| match w {
            Weight::Dense(m) => Weight::Dense(Matrix::from_fn(m.rows(), m.cols(), |r, c| m.get(r, c).mul(&lambda))),
            Weight::Factored { u, v } => {
                Weight::Factored { u: Matrix::from_fn(u.rows(), u.cols(), |r, c| u.get(r, c).mul(&lambda)), v: v.clone() }
            }
        };
        let blocks = self
            .model
            .blocks()
            .iter()
            .map(|b| {
                let mut b = b.clone();
                if let Some(a) = &mut b.attention {
                    a.normalizer = Normalizer::Softmax;
                    for h in &mut a.heads {
                        h.w_q = scale(&h.w_q);
                        h.b_q = h.b_q.as_ref().map(|bq| bq.iter().map(|x| x.mul(&lambda)).collect());
                    }
                }
                b
            })
            .collect();
        Model::new(self.model.dim(), blocks, self.model.info().clone().with("softmax_log2_lambda", log2_lambda))
    }

    /// Bisects `log2 λ ∈ [lo, hi]` (integers) for the smallest softmax scale at which the model still
    /// memorizes exactly at the model's own precision (assumed monotone; every probe is recorded).
    pub fn softmax_realisation(&self, data: &Dataset<f64>, lo: i64, hi: i64, threads: usize) -> Result<SoftmaxRealisation> {
        let backend = BigFloatBackend::with_threads(self.report.bits, threads)?;
        let x: Batch<BigReal> = data.inputs.convert()?;
        let y: Batch<BigReal> = data.targets.convert()?;
        let mut probes = Vec::new();
        let mut memorizes = |k: i64| -> Result<bool> {
            let ok = match backend.run(&self.softmax_model(k)?, &x) {
                Ok(out) => Memorization::measure(&out, &y)?.is_perfect(),
                Err(Error::Overflow { .. }) => false,
                Err(e) => return Err(e),
            };
            probes.push((k as f64, ok));
            Ok(ok)
        };
        let min = smallest_holding(lo, hi, &mut memorizes)?;
        Ok(SoftmaxRealisation { min_log2_lambda: min.map(|k| k as f64), range: (lo as f64, hi as f64), probes, bits: self.report.bits })
    }

    /// Runs the model rounded to `T` (f32 or f64) on `backend` and measures memorization; an
    /// [`Error::NonFinite`] means the weights do not even fit `T`.
    pub fn in_precision<T: Real, B: Backend<T>>(&self, data: &Dataset<f64>, backend: &B) -> Result<Memorization> {
        crate::verify::memorization_in(&self.model, data, backend)
    }
}
