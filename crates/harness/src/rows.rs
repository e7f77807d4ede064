//! Typed result rows: one struct per experiment, the only place that names a result column.
//!
//! The experiments build these structs, the result files store them (through serde, so a JSON row and a
//! CSV record carry exactly these fields), and the charts read them back typed. `docs/results.md` documents
//! every field with its unit; `tests/result_files.rs` checks that every committed row round-trips through
//! its struct unchanged (no field dropped, no integer turned into a float).
//!
//! Numbers that can be non-finite (a `log10` of an exact zero, a separation that collapsed) are written as
//! JSON `null`, as serde_json writes every non-finite float; they read back as NaN.

use boltz_construct::hardmax::HardmaxReport;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `null` (how serde_json writes NaN and ±∞) reads back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A present field, possibly `null`, is `Some(value)`; an absent one is `None` (with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// What every result row carries besides its experiment's fields (added by the suite runner).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRow<R> {
    /// Index of the point in the configuration's point list (`boltz reproduce --list`).
    pub point: usize,
    /// Wall-clock seconds the point took.
    pub seconds: f64,
    /// Whether the property the point checks held.
    pub property_held: bool,
    /// The experiment's fields.
    #[serde(flatten)]
    pub row: R,
}

/// A row of `capacity` and `adversarial`: one construction built on one dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstructionRow {
    /// Sequences N.
    #[serde(rename = "N")]
    pub sequences: usize,
    /// Sequence length n.
    pub n: usize,
    /// Token dimension d.
    pub d: usize,
    /// Distinct tokens in the dataset.
    pub vocab: usize,
    /// Construction (CLI spelling: `measured`, `fewest-bits`, …, `yun`, `yun-minimal`).
    pub policy: String,
    /// Data family (`adversarial` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The one-layer construction's attention (`softmax (λ > 0)` or `mean pooling (λ = 0)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
    /// Whether the model memorized every token exactly in arbitrary precision.
    pub exact_in_bigfloat: bool,
    /// Why the construction could not be built (mean pooling whose contexts collide); nothing else is
    /// measured then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<String>,
    /// What the built model measured.
    #[serde(flatten)]
    pub built: Option<Built>,
}

/// Measurements of a built construction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Built {
    /// Layers built (attention + FFN).
    pub layers: usize,
    /// Parameters stored densely.
    pub params_dense: u64,
    /// Parameters with rank-1 / structured matrices counted by their factors.
    pub params_factored: u64,
    /// Yun et al.'s grid cells per coordinate on this data.
    pub yun_cells: u64,
    /// Mantissa bits the model was built and verified at.
    pub build_bits: u64,
    /// Seconds to build.
    pub build_seconds: f64,
    /// Milliseconds of the arbitrary-precision forward over the dataset at `build_bits`.
    pub latency_bigfloat_ms: f64,
    /// The model rounded to f64 and f32 on the reference and CPU backends.
    #[serde(flatten)]
    pub runs: PrecisionRuns,
    /// The fewest-bits search, where it ran.
    #[serde(flatten)]
    pub bits: Option<BitsSearchFields>,
    /// One-layer (Kajitsuka & Sato) fields.
    #[serde(flatten)]
    pub one_layer: Option<OneLayerFields>,
    /// Yun et al. fields.
    #[serde(flatten)]
    pub yun: Option<YunFields>,
}

/// Accuracy and latency of the model rounded to a hardware format; each value is `null` with a reason
/// in the matching `_error` field when that run was impossible (weights overflow the format).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRuns {
    /// Fraction of tokens decoded, f64, reference backend.
    pub f64_accuracy: Option<f64>,
    /// Why `f64_accuracy` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f64_accuracy_error: Option<String>,
    /// Fraction of tokens decoded, f32, reference backend.
    pub f32_accuracy: Option<f64>,
    /// Why `f32_accuracy` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32_accuracy_error: Option<String>,
    /// Fraction of tokens decoded, f64, cpu backend.
    pub f64_accuracy_cpu: Option<f64>,
    /// Why `f64_accuracy_cpu` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f64_accuracy_cpu_error: Option<String>,
    /// Fraction of tokens decoded, f32, cpu backend.
    pub f32_accuracy_cpu: Option<f64>,
    /// Why `f32_accuracy_cpu` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32_accuracy_cpu_error: Option<String>,
    /// Milliseconds of one f64 forward over the dataset, reference backend.
    pub latency_reference_f64_ms: Option<f64>,
    /// Why `latency_reference_f64_ms` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_reference_f64_ms_error: Option<String>,
    /// Milliseconds of one f64 forward over the dataset, cpu backend.
    pub latency_cpu_f64_ms: Option<f64>,
    /// Why `latency_cpu_f64_ms` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_cpu_f64_ms_error: Option<String>,
}

/// `Ok(v)` as the value, `Err(e)` as no value plus its reason.
pub fn value_or_reason<T>(r: boltz_core::Result<T>) -> (Option<T>, Option<String>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// The fewest-bits search ([`boltz_bigfloat::BitsSearch`]) as row fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitsSearchFields {
    /// The start of the top run of holding probes (every probe from there up held); `null`: none held.
    pub fewest_bits: Option<u64>,
    /// What bisection alone concluded.
    pub fewest_bits_bisection: Option<u64>,
    /// Runs `[from, to]` of probed bit counts at which memorization held.
    pub fewest_bits_holds_at: Vec<[u64; 2]>,
    /// Whether holding was monotone in the bits probed.
    pub fewest_bits_monotone: bool,
    /// Probes run.
    pub fewest_bits_probes: usize,
}

impl From<&boltz_bigfloat::BitsSearch> for BitsSearchFields {
    fn from(s: &boltz_bigfloat::BitsSearch) -> Self {
        Self {
            fewest_bits: s.fewest,
            fewest_bits_bisection: s.bisection,
            fewest_bits_holds_at: s.holds_at.clone(),
            fewest_bits_monotone: s.monotone,
            fewest_bits_probes: s.probes.len(),
        }
    }
}

/// Fields of the one-layer memorizer (Theorem 2 / Corollary) and the baselines' formulas at its size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct OneLayerFields {
    /// The paper's parameter count `4(s+d) + d(2nN+d)`.
    pub paper_params: u64,
    /// The lower bound `√(nN)` on parameters.
    pub lower_bound_sqrt_nN: f64,
    /// Yun et al. data-adaptive layers (formula).
    pub yun_adaptive_layers: f64,
    /// Yun et al. data-adaptive parameters (formula).
    pub yun_adaptive_params: f64,
    /// Yun et al. full-grid layers (formula).
    pub yun_full_layers: f64,
    /// Yun et al. full-grid parameters (formula).
    pub yun_full_params: f64,
    /// Kim et al. depth (reference curve).
    pub kim_depth_reference: f64,
    /// Kim et al. parameters (reference curve).
    pub kim_params_reference: f64,
    /// Attention scale λ used.
    pub lambda: f64,
    /// λ before the fewest-bits shrink.
    pub lambda_unshrunk: f64,
    /// Largest attention logit `λ M²`.
    pub r_a: f64,
    /// log2 of the shrink applied to λ, where a λ search ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_shrink_log2: Option<i32>,
    /// λ candidates tried, where a λ search ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_candidates: Option<usize>,
    /// log10 of the smallest context-id gap (arbitrary precision).
    #[serde(deserialize_with = "nan_if_null")]
    pub separation_log10: f64,
    /// log10 of Theorem 2's worst-case δ.
    #[serde(deserialize_with = "nan_if_null")]
    pub theory_delta_log10: f64,
    /// Largest |output − label| in arbitrary precision.
    #[serde(deserialize_with = "nan_if_null")]
    pub bigfloat_max_abs_error: f64,
    /// log10 of `bigfloat_max_abs_error`.
    #[serde(deserialize_with = "nan_if_null")]
    pub bigfloat_log10_max_abs_error: f64,
}

/// Fields of Yun et al.'s data-adaptive deep hardmax construction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YunFields {
    /// Grid kind (`dyadic` or `minimal`).
    pub yun_delta: String,
    /// Grid width δ.
    pub yun_delta_value: f64,
    /// The fewest cells per coordinate that separate the data.
    pub yun_minimal_cells: u64,
    /// Layers per stage: quantization, selective shifts, global shift, memorization FFNs.
    pub layers_by_stage: [usize; 4],
    /// Layers by the paper's formula.
    pub formula_layers: f64,
    /// Parameters of the built stack by its closed formula.
    pub realised_params_formula: u64,
    /// Dense parameters in the class T^{2,1,4} (every attention layer 8d + 2, every FFN layer 9d + 4).
    pub t214_params_formula: f64,
    /// log2 of the largest context id.
    pub log2_max_id: f64,
    /// Smallest log2 λ at which softmax in place of hardmax still memorizes (`null`: none up to the
    /// sweep's end); absent when the sweep did not run.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub softmax_min_log2_lambda: Option<Option<f64>>,
}

/// A row of `separation`: a contextual mapping's measured separation against Lemma 1 and Theorem 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeparationRow {
    /// Sequence length.
    pub n: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Token dimension.
    pub d: usize,
    /// Sequences.
    #[serde(rename = "N")]
    pub sequences: usize,
    /// Attention scale λ.
    pub lambda: f64,
    /// Largest attention logit `λ M²`.
    pub r_a: f64,
    /// The projection's token separation γ.
    pub gamma: f64,
    /// log10 of the smallest measured context-id gap (arbitrary precision).
    #[serde(deserialize_with = "nan_if_null")]
    pub measured_log10: f64,
    /// log10 of the gap Lemma 1 implies.
    #[serde(deserialize_with = "nan_if_null")]
    pub lemma1_implied_log10: f64,
    /// `measured_log10 − lemma1_implied_log10` (≥ 0 when the lemma holds).
    #[serde(deserialize_with = "nan_if_null")]
    pub lemma1_margin_log10: f64,
    /// log10 of Theorem 2's worst-case δ.
    #[serde(deserialize_with = "nan_if_null")]
    pub theory_delta_log10: f64,
    /// Context pairs whose ids collide in f64.
    pub f64_collisions: usize,
    /// Contexts compared.
    pub contexts: usize,
    /// Mantissa bits of the arbitrary-precision evaluation.
    pub bits: u64,
    /// Whether every context got a distinct id.
    pub is_contextual_mapping: bool,
}

/// A row of `approximation`: FF∘SA∘FF against a target (Proposition 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproximationRow {
    /// Target function (`product-mean`, `softmax-pool`).
    pub target: String,
    /// Sequence length.
    pub n: usize,
    /// Token dimension.
    pub d: usize,
    /// Grid cells per coordinate.
    pub cells: usize,
    /// Grid width δ.
    pub delta: f64,
    /// L² error of the network.
    #[serde(deserialize_with = "nan_if_null")]
    pub l2_error: f64,
    /// L² error of the best piecewise-constant function on the grid.
    #[serde(deserialize_with = "nan_if_null")]
    pub l2_floor: f64,
    /// Parameters stored densely.
    pub params_dense: u64,
    /// Context ids.
    pub ids: usize,
    /// Ids shared by different contexts.
    pub colliding_ids: usize,
    /// Mantissa bits of the build.
    pub bits: u64,
}

/// A row of `hardmax` (Theorem 1 demonstrated).
pub type HardmaxRow = HardmaxReport;

/// Reads rows as `R` (the runner's `point`/`seconds`/`property_held` are ignored), naming the row that
/// does not fit.
pub fn typed<R: DeserializeOwned>(experiment: &str, rows: &[Value]) -> anyhow::Result<Vec<R>> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            R::deserialize(r).map_err(|e| anyhow::anyhow!("{experiment} row {i}: {e} (the file does not match this build's schema)"))
        })
        .collect()
}
