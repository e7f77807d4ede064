//! Typed result rows: one struct per experiment, the only place that names a result column.
//!
//! The experiments build these structs, the result files store them (through serde, so a JSON row and a
//! CSV record carry exactly these fields), and the charts read them back typed. `docs/results.md` documents
//! every field with its unit; `tests/result_files.rs` checks that every committed row round-trips through
//! its struct unchanged (no field dropped, no integer turned into a float).
//!
//! Numbers that can be non-finite (a `log10` of an exact zero, a separation that collapsed) are written as
//! JSON `null`, as serde_json writes every non-finite float; they read back as NaN.

use boltz_construct::one_layer::hardmax::HardmaxReport;
use boltz_construct::Construction;
use boltz_core::format::nan_if_null;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

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
    #[serde(deserialize_with = "nan_if_null")]
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
    /// Construction (its name: `measured`, `fewest-bits`, …, `yun`, `yun-minimal`, `bit-extraction`).
    pub policy: Construction,
    /// Data family (`adversarial`), or `file:<name>` for a capacity row built on a dataset file
    /// (`capacity.datasets`); absent for the capacity sweep on generated data.
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
    pub built: Option<BuiltColumns>,
}

/// Measurements of a built construction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuiltColumns {
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
    #[serde(deserialize_with = "nan_if_null")]
    pub build_seconds: f64,
    /// Milliseconds of the arbitrary-precision forward over the dataset at `build_bits`.
    #[serde(deserialize_with = "nan_if_null")]
    pub latency_bigfloat_ms: f64,
    /// The ranks of the attention products (absent in files before they were recorded, and in builds
    /// without the `blas` feature).
    #[serde(flatten)]
    pub attention_rank: Option<AttentionRank>,
    /// The model on every configured backend and element type, in the configuration's order.
    pub runs: Vec<BackendRunRow>,
    /// The fewest-bits search, where it ran.
    #[serde(flatten)]
    pub bits: Option<BitsSearchFields>,
    /// One-layer (Kajitsuka & Sato) fields.
    #[serde(flatten)]
    pub one_layer: Option<OneLayerFields>,
    /// Yun et al. fields.
    #[serde(flatten)]
    pub yun: Option<YunFields>,
    /// Bit-extraction (parameter-optimal) fields.
    #[serde(flatten)]
    pub bit_extraction: Option<BitExtractionFields>,
}

/// The numerical ranks of every head's `W_Kᵀ W_Q` and `W_Vᵀ W_Oᵀ` (`d × d`; SVD in f64 by LAPACK, singular
/// values above `max(rows, cols) · ε · σ₁`), as their largest over the heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionRank {
    /// Attention heads in the model (over all blocks).
    pub attention_heads: usize,
    /// The largest numerical rank of `W_Kᵀ W_Q` over the heads (1 for the rank-1 construction).
    pub rank_key_query_max: usize,
    /// The largest numerical rank of `W_Vᵀ W_Oᵀ` over the heads.
    pub rank_value_output_max: usize,
}

/// The model rounded to one configured backend's element type (the suite's `backends`), run once over the
/// dataset: the fraction of tokens decoded and the forward's latency, or, when the run was impossible
/// (weights or activations overflow the format), both `null` and the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendRunRow {
    /// Backend (`reference`, `cpu`, `blas`, `bigfloat`, `cuda`).
    pub backend: String,
    /// Element type (`f32`, `f64`, `bits=N`).
    pub precision: String,
    /// Fraction of the N·n tokens that decode to their label.
    pub accuracy: Option<f64>,
    /// Milliseconds of one forward over the whole dataset (after `prepare`): the median of `repeats`
    /// forwards of the one prepared model (files before the repeats: the one forward).
    pub latency_ms: Option<f64>,
    /// The fastest of the `repeats` forwards (absent in files before the repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_min_ms: Option<f64>,
    /// The slowest of the `repeats` forwards (absent in files before the repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<f64>,
    /// Forwards timed ([`crate::suite::LATENCY_REPEATS`]; absent in files before the repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
    /// Why `accuracy` and `latency_ms` are null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BackendRunRow {
    /// The run of `backend` in `precision` among `runs`, if configured.
    pub fn find<'a>(runs: &'a [Self], backend: &str, precision: &str) -> Option<&'a Self> {
        runs.iter().find(|r| r.backend == backend && r.precision == precision)
    }
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
    /// The faithful forward's re-check of a certified search's answer (absent in files before 2026-12-05
    /// and for searches that were not certified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fewest_bits_audit: Option<boltz_bigfloat::BitsAudit>,
}

impl From<&boltz_bigfloat::BitsSearch> for BitsSearchFields {
    fn from(s: &boltz_bigfloat::BitsSearch) -> Self {
        Self {
            fewest_bits: s.fewest,
            fewest_bits_bisection: s.bisection,
            fewest_bits_holds_at: s.holds_at.clone(),
            fewest_bits_monotone: s.monotone,
            fewest_bits_probes: s.probes.len(),
            fewest_bits_audit: s.audit.clone(),
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
    #[serde(deserialize_with = "nan_if_null")]
    pub lower_bound_sqrt_nN: f64,
    /// Yun et al. data-adaptive layers (formula).
    #[serde(deserialize_with = "nan_if_null")]
    pub yun_adaptive_layers: f64,
    /// Yun et al. data-adaptive parameters (formula).
    #[serde(deserialize_with = "nan_if_null")]
    pub yun_adaptive_params: f64,
    /// Yun et al. full-grid layers (formula).
    #[serde(deserialize_with = "nan_if_null")]
    pub yun_full_layers: f64,
    /// Yun et al. full-grid parameters (formula).
    #[serde(deserialize_with = "nan_if_null")]
    pub yun_full_params: f64,
    /// Kim et al. depth (reference curve).
    #[serde(deserialize_with = "nan_if_null")]
    pub kim_depth_reference: f64,
    /// Kim et al. parameters (reference curve).
    #[serde(deserialize_with = "nan_if_null")]
    pub kim_params_reference: f64,
    /// Attention scale λ used.
    #[serde(deserialize_with = "nan_if_null")]
    pub lambda: f64,
    /// λ before the fewest-bits shrink.
    #[serde(deserialize_with = "nan_if_null")]
    pub lambda_unshrunk: f64,
    /// Largest attention logit `λ M²`.
    #[serde(deserialize_with = "nan_if_null")]
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
    #[serde(deserialize_with = "nan_if_null")]
    pub yun_delta_value: f64,
    /// The fewest cells per coordinate that separate the data.
    pub yun_minimal_cells: u64,
    /// Layers per stage: quantization, selective shifts, global shift, memorization FFNs.
    pub layers_by_stage: [usize; 4],
    /// Layers by the paper's formula.
    #[serde(deserialize_with = "nan_if_null")]
    pub formula_layers: f64,
    /// Parameters of the built stack by its closed formula.
    pub realised_params_formula: u64,
    /// Dense parameters in the class T^{2,1,4} (every attention layer 8d + 2, every FFN layer 9d + 4).
    #[serde(deserialize_with = "nan_if_null")]
    pub t214_params_formula: f64,
    /// log2 of the largest context id.
    #[serde(deserialize_with = "nan_if_null")]
    pub log2_max_id: f64,
    /// Smallest log2 λ at which softmax in place of hardmax still memorizes (`null`: none up to the
    /// sweep's end); absent when the sweep did not run.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub softmax_min_log2_lambda: Option<Option<f64>>,
}

/// Fields of the parameter-optimal bit-extraction construction (`boltz_construct::deep::bit_extraction`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitExtractionFields {
    /// `seq2seq` or `next-token`.
    pub task: String,
    /// Distinct context ids K.
    pub bx_ids: usize,
    /// Non-zero parameters (the papers' additive count).
    pub params_nonzero: u64,
    /// Blocks per stage: projection, floor, attention + rounding, bit extraction, readout.
    pub bx_layers_by_stage: [usize; 5],
    /// Bits of the token codes, of their sums and of the largest id.
    pub bx_token_bits: u32,
    /// Bits of the code sums.
    pub bx_sum_bits: u32,
    /// Bits of the largest context id.
    pub bx_id_bits: u32,
    /// Bits of each packed word `L_w` (the weights' bit complexity).
    pub bx_word_bits: u64,
    /// Group size g and groups G.
    pub bx_group_size: usize,
    /// Groups G.
    pub bx_groups: usize,
    /// Bits per in-group gap B.
    pub bx_gap_bits: u32,
    /// The one-layer memorizer's FFN count at the same K, `K(d + 2) + 2d`, for the crossover.
    pub one_layer_ffn_params: u64,
}

/// A row of `trained`: the trained capacity of one model shape on one data family (issue #19).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedRow {
    /// The model's name in the configuration (`trained.models[i].name`).
    pub model: String,
    /// Data family (`random`, `grid`, `pte`).
    pub family: String,
    /// Sequence length n.
    pub n: usize,
    /// Token dimension d.
    pub d: usize,
    /// Vocabulary size |V|.
    pub vocab: usize,
    /// Label classes.
    pub classes: u32,
    /// Blocks (attention + FFN).
    pub blocks: usize,
    /// Rank of the attention weights (`None`: dense).
    pub rank: Option<usize>,
    /// FFN hidden width H.
    pub ffn_width: usize,
    /// Dense parameter count of the shape (every weight `rows · cols`, as the constructions' `params`).
    pub params: u64,
    /// Parameters training stores and updates (a rank-r weight as its factors).
    pub params_stored: u64,
    /// Curriculum over N (warm start from the last memorizing model).
    pub warm_start: bool,
    /// Adam steps per run (the budget).
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Initialisation seeds.
    pub seeds: Vec<u64>,
    /// Largest N searched.
    pub max_sequences: usize,
    /// The trained capacity: the largest N memorized at 100 % token accuracy.
    pub largest_memorized: usize,
    /// The smallest N above it that every run failed (`None`: no failure up to `max_sequences`).
    pub smallest_failed: Option<usize>,
    /// `largest_memorized · n · log₂(classes) / params`.
    pub bits_per_param: f64,
    /// The one-layer memorizer's N at this FFN width: its hidden layer has one unit per context id
    /// (`K ≤ nN`), so ⌊H/n⌋ sequences certainly fit a width-H FFN.
    pub construction_sequences_at_width: usize,
    /// Token accuracy of the memorizing trained model re-run on the reference backend (independent
    /// forward; 1 when the search's answer is right).
    pub reference_accuracy: Option<f64>,
    /// The fewest mantissa bits at which the memorizing trained model still memorizes (bigfloat
    /// bisection in 8..=64; `None` when not searched or not held at 64).
    pub fewest_bits: Option<u64>,
    /// Training runs made.
    pub runs: usize,
    /// Every run: N, seed, warm start, memorized, steps, final loss and accuracy.
    pub probes: Vec<boltz_train::CapacityProbe>,
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
    #[serde(deserialize_with = "nan_if_null")]
    pub lambda: f64,
    /// Largest attention logit `λ M²`.
    #[serde(deserialize_with = "nan_if_null")]
    pub r_a: f64,
    /// The projection's token separation γ.
    #[serde(deserialize_with = "nan_if_null")]
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
    #[serde(deserialize_with = "nan_if_null")]
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

/// The keys result schemas 1 and 2 used for what is now [`BuiltColumns::runs`]: `(backend, precision, accuracy
/// key, accuracy error key, latency key, latency error key)`. Those files ran exactly these four runs
/// and timed only the f64 ones.
const LEGACY_RUNS: [(&str, &str, &str, &str, Option<&str>); 4] = [
    ("reference", "f64", "f64_accuracy", "f64_accuracy_error", Some("latency_reference_f64_ms")),
    ("reference", "f32", "f32_accuracy", "f32_accuracy_error", None),
    ("cpu", "f64", "f64_accuracy_cpu", "f64_accuracy_cpu_error", Some("latency_cpu_f64_ms")),
    ("cpu", "f32", "f32_accuracy_cpu", "f32_accuracy_cpu_error", None),
];

/// Rewrites a capacity/adversarial row of result schema 1 or 2 (flat `f64_accuracy`, `f32_accuracy_cpu`,
/// `latency_cpu_f64_ms`, … columns) into schema 3's `runs` list, value for value: the same four runs
/// (reference and cpu, f64 and f32), f32 runs without a latency (schema 2 did not time them). A row
/// without those columns (a build that failed, or already schema 3) is left as it is.
pub fn migrate_construction_row(row: &mut Value) {
    let Some(obj) = row.as_object_mut() else { return };
    if obj.contains_key("runs") || !LEGACY_RUNS.iter().any(|(_, _, acc, ..)| obj.contains_key(*acc)) {
        return;
    }
    let mut runs = Vec::new();
    for (backend, precision, acc, acc_err, latency) in LEGACY_RUNS {
        let accuracy = obj.remove(acc).unwrap_or(Value::Null);
        let mut error = obj.remove(acc_err);
        let latency_ms = match latency {
            Some(key) => {
                let err_key = format!("{key}_error");
                if let Some(e) = obj.remove(&err_key) {
                    error.get_or_insert(e);
                }
                obj.remove(key).unwrap_or(Value::Null)
            }
            None => Value::Null,
        };
        let mut run = serde_json::json!({ "backend": backend, "precision": precision, "accuracy": accuracy, "latency_ms": latency_ms });
        if let Some(e) = error {
            run["error"] = e;
        }
        runs.push(run);
    }
    obj.insert("runs".into(), Value::Array(runs));
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn one_layer_row() -> ConstructionRow {
        ConstructionRow {
            sequences: 10,
            n: 4,
            d: 3,
            vocab: 40,
            policy: Construction::OneLayer(boltz_construct::Policy::Measured),
            family: None,
            attention: Some("softmax (λ > 0)".into()),
            exact_in_bigfloat: true,
            build_error: None,
            built: Some(BuiltColumns {
                layers: 2,
                params_dense: 100,
                params_factored: 50,
                yun_cells: 8,
                build_bits: 200,
                build_seconds: 0.5,
                latency_bigfloat_ms: 3.0,
                attention_rank: Some(AttentionRank { attention_heads: 1, rank_key_query_max: 1, rank_value_output_max: 1 }),
                runs: vec![BackendRunRow {
                    backend: "reference".into(),
                    precision: "f64".into(),
                    accuracy: Some(1.0),
                    latency_ms: Some(0.5),
                    latency_min_ms: Some(0.4),
                    latency_max_ms: Some(0.7),
                    repeats: Some(5),
                    error: None,
                }],
                bits: Some(BitsSearchFields {
                    fewest_bits: Some(60),
                    fewest_bits_bisection: Some(60),
                    fewest_bits_holds_at: vec![[60, 200]],
                    fewest_bits_monotone: true,
                    fewest_bits_probes: 8,
                    fewest_bits_audit: Some(boltz_bigfloat::BitsAudit {
                        bits: 60,
                        sequences: vec![0, 9],
                        failing_bits: Some(59),
                        failing_token: Some([3, 1]),
                    }),
                }),
                one_layer: Some(OneLayerFields {
                    paper_params: 1000,
                    lower_bound_sqrt_nN: 6.3,
                    yun_adaptive_layers: 10.0,
                    yun_adaptive_params: 100.0,
                    yun_full_layers: 1e300,
                    yun_full_params: 1e300,
                    kim_depth_reference: 5.0,
                    kim_params_reference: 50.0,
                    lambda: 2.0,
                    lambda_unshrunk: 4.0,
                    r_a: 8.0,
                    lambda_shrink_log2: Some(1),
                    lambda_candidates: Some(3),
                    separation_log10: -5.0,
                    theory_delta_log10: -100.0,
                    bigfloat_max_abs_error: 1e-60,
                    bigfloat_log10_max_abs_error: -60.0,
                }),
                yun: None,
                bit_extraction: None,
            }),
        }
    }

    fn yun_row() -> ConstructionRow {
        let mut row = one_layer_row();
        let built = row.built.as_mut().unwrap();
        built.one_layer = None;
        built.yun = Some(YunFields {
            yun_delta: "dyadic".into(),
            yun_delta_value: 0.25,
            yun_minimal_cells: 4,
            layers_by_stage: [3, 16, 1, 40],
            formula_layers: 59.0,
            realised_params_formula: 900,
            t214_params_formula: 1200.0,
            log2_max_id: 30.0,
            softmax_min_log2_lambda: Some(None),
        });
        row
    }

    /// Every float of a flattened group, written as `null` (how serde_json writes an overflow to ∞),
    /// must read back as NaN inside a present group: a plain `f64` would fail to parse and, flattened into
    /// an `Option`, silently turn the whole group into `None`.
    #[test]
    fn a_null_float_keeps_its_flattened_group() {
        for row in [one_layer_row(), yun_row()] {
            let json = serde_json::to_value(&row).unwrap();
            let floats: Vec<String> = json.as_object().unwrap().iter().filter(|(_, v)| v.is_f64()).map(|(k, _)| k.clone()).collect();
            assert!(floats.len() >= 6, "the row has its floats: {floats:?}");
            for key in &floats {
                let mut nulled = json.clone();
                nulled[key.as_str()] = Value::Null;
                let back: ConstructionRow = serde_json::from_value(nulled).unwrap_or_else(|e| panic!("{key} = null does not parse: {e}"));
                let built = back.built.as_ref().unwrap_or_else(|| panic!("{key} = null dropped `built`"));
                assert!(built.bits.is_some(), "{key} = null dropped the bits group");
                assert_eq!(
                    built.one_layer.is_some(),
                    row.built.as_ref().unwrap().one_layer.is_some(),
                    "{key} = null dropped the one-layer group"
                );
                assert_eq!(built.yun.is_some(), row.built.as_ref().unwrap().yun.is_some(), "{key} = null dropped the Yun group");
                let again = serde_json::to_value(&back).unwrap();
                assert!(again[key.as_str()].is_null(), "{key} reads back as NaN (written as null)");
            }
        }
    }

    #[test]
    fn schema_2_rows_migrate_value_for_value() {
        let mut old = serde_json::to_value(one_layer_row()).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("runs");
        for (k, v) in [
            ("f64_accuracy", serde_json::json!(1.0)),
            ("f32_accuracy", Value::Null),
            ("f32_accuracy_error", serde_json::json!("non-finite value at blocks.0.ffn.w2[3]")),
            ("f64_accuracy_cpu", serde_json::json!(0.75)),
            ("f32_accuracy_cpu", Value::Null),
            ("f32_accuracy_cpu_error", serde_json::json!("non-finite value at blocks.0.ffn.w2[3]")),
            ("latency_reference_f64_ms", serde_json::json!(2.5)),
            ("latency_cpu_f64_ms", serde_json::json!(0.5)),
        ] {
            obj.insert(k.into(), v);
        }
        migrate_construction_row(&mut old);
        let row: ConstructionRow = serde_json::from_value(old.clone()).unwrap();
        let runs = row.built.unwrap().runs;
        let got: Vec<_> =
            runs.iter().map(|r| (r.backend.as_str(), r.precision.as_str(), r.accuracy, r.latency_ms, r.error.is_some())).collect();
        assert_eq!(
            got,
            [
                ("reference", "f64", Some(1.0), Some(2.5), false),
                ("reference", "f32", None, None, true),
                ("cpu", "f64", Some(0.75), Some(0.5), false),
                ("cpu", "f32", None, None, true)
            ]
        );
        let legacy = [
            "f64_accuracy",
            "f32_accuracy_error",
            "f64_accuracy_cpu",
            "f32_accuracy_cpu_error",
            "latency_reference_f64_ms",
            "latency_cpu_f64_ms",
        ];
        assert!(legacy.iter().all(|k| !old.as_object().unwrap().contains_key(*k)), "legacy keys removed: {old}");
        // A schema-3 row is left alone.
        let new = serde_json::to_value(one_layer_row()).unwrap();
        let mut same = new.clone();
        migrate_construction_row(&mut same);
        assert_eq!(same, new);
    }

    /// A hardmax row whose softmax gap is ±∞ (a collision, a single context) is written as `null` and reads back.
    #[test]
    fn a_hardmax_row_with_an_infinite_gap_reads_back() {
        let row = HardmaxRow {
            dim: 1,
            family: 3,
            draws: 5,
            draws_with_collision: 5,
            draws_separated: 0,
            softmax_separates: false,
            softmax_min_gap_log10: f64::NEG_INFINITY,
        };
        let back: HardmaxRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert!(back.softmax_min_gap_log10.is_nan());
    }

    /// An overflowed formula (∞, written as `null`) keeps its row: Yun's full-grid layers overflow f64
    /// at realistic sizes.
    #[test]
    fn an_infinite_formula_round_trips_as_nan() {
        let mut row = one_layer_row();
        row.built.as_mut().unwrap().one_layer.as_mut().unwrap().yun_full_layers = f64::INFINITY;
        let back: ConstructionRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert!(back.built.unwrap().one_layer.unwrap().yun_full_layers.is_nan());
    }
}
