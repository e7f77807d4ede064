//! The parameter-optimal Transformer memorizer: `Õ(√(nN))` parameters for sequence-to-sequence and
//! `Õ(√N)` for next-token prediction (Kim, Kim & Mozafari, ICLR 2023; Kajitsuka & Sato, "On the Optimal
//! Memorization Capacity of Transformers", ICLR 2025), as an exact, executable [`Model`] after
//! `docs/theory.md` §9: token → integer code → one averaging attention layer →
//! integer context id → the [`bit_extraction`] memorizer → label.
//!
//! 1. **Projection** (one FFN): `a = s·vᵀx + β₀` into a scratch row, every input row cleared. `v` is a
//!    random dyadic direction (the best of a few by the smallest gap between distinct tokens), `s = 2^k`
//!    a scale and `β₀` a dyadic shift chosen so that every token's `a` keeps a measured margin from the
//!    integers (`docs/theory.md` §9.3: the widest gap of the fractional parts, the floor's band `[0, γ)`
//!    centred in it).
//! 2. **Floor** (`n_T` FFNs of two units): the token code `τ = ⌊a⌋`, exactly, bit by bit (`docs/theory.md` §9.3).
//! 3. **Averaging attention** (one head, `W_Q = W_K = 0`: every key weighs exactly `1/n`, K&S 2025's
//!    "attention as averaging"): `λ·mean τ` with `λ = n·2^h` into a scratch row; its FFN and `n_S − 1`
//!    more round it to the exact integer `2^h·S`, `S = Σ_l τ_l` (`docs/theory.md` §9.4). Sequence-to-sequence:
//!    `h = n_T`, so the id is `c = τ + 2^{n_T}·S`; next-token: `h = 0`, `τ` is dropped and `c = S`.
//! 4. **Bit extraction** ([`bit_extraction`], its blocks on this model's rows): ids → labels, `L_w + 2` blocks of width
//!    ≤ 7 after one group-selection block.
//! 5. **Readout** (only for targets that are not `label · e_j`): one FFN interpolating class → target.
//!
//! The scale `s` doubles until the ids separate every pair of contexts with different labels. Averaging
//! is linear, so two distinct multisets with equal token sums `Σ x` (tokens on an integer grid, PTE
//! data) generally cannot be separated at any scale: the builder then fails with
//! [`Error::Infeasible`], naming the two sequences — it never builds a wrong model (`docs/theory.md` §9.4).
//! Every weight is a dyadic rational, stored exactly; the model needs `d ≥ 4` rows (input rows are reused
//! as scratch).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use boltz_bigfloat::{BigFloatBackend, BigReal, BitsSearch};
use boltz_core::rng::SeededRng;
use boltz_core::{
    Attention, AttentionHead, Batch, Block, Dataset, Error, ExactConvert, ExactFloat, Matrix, Memorization, Model, ModelBlock, ModelInfo,
    Normalizer, ParamCount, Real, Result, Vocabulary, Weight,
};
use serde::{Deserialize, Serialize};

pub mod gadgets;
pub mod stack;

use gadgets::{ffn, floor_frac, int, nonzero_params, pow2, tidy, work, Unit};
use stack::{self as bit_extraction, bitlen, BitExtractionReport, Rows};

boltz_core::named_enum! {
/// What the model predicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task: "task" {
    /// A label per token (ids are (multiset, token) contexts, K ≤ nN): `Õ(√(nN))` parameters.
    #[default]
    #[serde(rename = "seq2seq")]
    SequenceToSequence = "seq2seq",
    /// One label per sequence (ids are the multisets, K ≤ N): `Õ(√N)` parameters. The model reads the
    /// sequence as a multiset, so every position outputs the label; the last position is where a
    /// next-token model is read ([`next_token_dataset`] makes such targets from per-token ones).
    NextToken = "next-token",
}
}

/// How [`OptimalMemorizer::build`] builds.
#[derive(Clone, Debug)]
pub struct OptimalOptions {
    /// Sequence-to-sequence or next-token.
    pub task: Task,
    /// Seed of the direction draw.
    pub seed: u64,
    /// Threads of the verification forward.
    pub threads: usize,
    /// The memorizer's group size (default: fewest parameters).
    pub group_size: Option<usize>,
    /// Verify exactly at the build bits (a whole arbitrary-precision forward).
    pub verify: bool,
}

impl Default for OptimalOptions {
    fn default() -> Self {
        Self { task: Task::SequenceToSequence, seed: 0, threads: 1, group_size: None, verify: true }
    }
}

/// Everything about a built model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimalReport {
    /// The task.
    pub task: Task,
    /// Distinct context ids K (≤ nN for sequence-to-sequence, ≤ N for next-token).
    pub ids: usize,
    /// Label classes C (labels below C; log₂ C bits each).
    pub classes: u64,
    /// Whether a readout FFN maps class indices to general target vectors.
    pub readout: bool,
    /// `log₂` of the smallest gap `|vᵀx − vᵀx'|` between distinct tokens for the chosen direction.
    pub direction_min_gap_log2: f64,
    /// The scale `s = 2^scale_log2`.
    pub scale_log2: i64,
    /// Scales tried (doubling) until the ids separated the contexts.
    pub scale_tries: usize,
    /// Bits of the token codes τ, `n_T`.
    pub token_bits: u32,
    /// Bits of the code sums S, `n_S`.
    pub sum_bits: u32,
    /// The widest gap between the fractional parts of the tokens' `s·vᵀx` (the floor's margin is ≥ w/4).
    pub fraction_gap: f64,
    /// The floor's band width `γ = 2^gamma_log2 ≤ w/2`.
    pub gamma_log2: i64,
    /// Bits of the largest id.
    pub id_bits: u32,
    /// The bit-extraction stage.
    pub memorizer: BitExtractionReport,
    /// Blocks per stage: [projection, floor, attention + rounding, bit extraction, readout].
    pub layers_by_stage: [usize; 5],
    /// Blocks (each an FFN, one with attention).
    pub blocks: usize,
    /// Attention layers (1).
    pub attention_layers: usize,
    /// Parameters (dense and factored).
    pub params: ParamCount,
    /// Non-zero parameters (the papers' additive count).
    pub params_nonzero: u64,
    /// Bits the model was built and verified at.
    pub build_bits: u64,
    /// Seconds to build.
    pub build_seconds: f64,
    /// Exact memorization at `build_bits` (absent when not verified).
    pub memorization: Option<Memorization>,
    /// Seconds of that verification.
    pub verify_seconds: f64,
}

/// A built parameter-optimal memorizer.
#[derive(Clone, Debug)]
pub struct OptimalMemorizer {
    /// The model, weights exact.
    pub model: Model<BigReal>,
    /// Constants and measurements.
    pub report: OptimalReport,
}

/// Targets for the next-token task: every position of a sequence carries the target of its last
/// position.
pub fn next_token_dataset(data: &Dataset<f64>) -> Result<Dataset<f64>> {
    let [big_n, n, d] = data.targets.shape();
    let mut y = Vec::with_capacity(big_n * n * d);
    for b in 0..big_n {
        let last = data.targets.token(b, n - 1).to_vec();
        for _ in 0..n {
            y.extend_from_slice(&last);
        }
    }
    Dataset::new(data.inputs.clone(), Batch::new(big_n, n, d, y)?, data.spec.clone())
}

/// The labels the memorizer stores.
struct Labels {
    /// The output row.
    row: usize,
    /// One label per token.
    labels: Vec<u64>,
    /// Classes C.
    classes: u64,
    /// The target vector of every class, when a readout maps classes to targets.
    table: Option<Vec<Vec<f64>>>,
}

/// Labels of the targets. Targets `label · e_j` with integer labels in `[0, 2³²)` use row j directly;
/// anything else gets class indices (distinct target vectors in order) and a table for the readout.
fn labels_of(targets: &Batch<f64>) -> Result<Labels> {
    let d = targets.dim();
    let values = targets.as_slice();
    let rows: Vec<usize> = (0..d).filter(|&j| values.chunks(d).any(|t| t[j] != 0.0)).collect();
    let integer = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < 4_294_967_296.0;
    if rows.len() <= 1 && values.iter().all(|&v| integer(v)) {
        let row = rows.first().copied().unwrap_or(0);
        let labels: Vec<u64> = values.chunks(d).map(|t| t[row] as u64).collect();
        let classes = labels.iter().max().map_or(2, |&m| (m + 1).max(2));
        return Ok(Labels { row, labels, classes, table: None });
    }
    let mut table: BTreeMap<Vec<ExactFloat>, usize> = BTreeMap::new();
    for t in values.chunks(d) {
        table.entry(t.iter().map(ExactConvert::to_exact).collect()).or_insert(0);
    }
    for (i, v) in table.values_mut().enumerate() {
        *v = i;
    }
    let labels = values.chunks(d).map(|t| table[&t.iter().map(ExactConvert::to_exact).collect::<Vec<_>>()] as u64).collect();
    let classes = (table.len() as u64).max(2);
    let vectors = table.keys().map(|k| k.iter().map(f64::from_exact).collect()).collect();
    Ok(Labels { row: 0, labels, classes, table: Some(vectors) })
}

/// The token codes at one scale.
struct Codes {
    scale_log2: i64,
    /// `s·v` (the projection's weights) and `β₀`.
    w: Vec<BigReal>,
    beta0: BigReal,
    tau: Vec<u64>,
    gap: f64,
    gamma_log2: i64,
}

/// Codes at scale `2^k` for the projected tokens `p` (exact): the shift centres the floor's band in the
/// widest gap of the fractional parts; `None` if the codes do not fit 62 bits.
fn codes_at(v: &[BigReal], p: &[BigReal], k: i64) -> Result<Option<Codes>> {
    let s = pow2(k);
    let y: Vec<BigReal> = p.iter().map(|pt| work(pt).mul(&s)).collect();
    let mut fracs: Vec<f64> = y.iter().map(|yt| floor_frac(yt).1.to_f64()).collect();
    fracs.sort_by(f64::total_cmp);
    // The widest circular gap (lo, lo + w).
    let (mut lo, mut gap) = (fracs[fracs.len() - 1], fracs[0] + 1.0 - fracs[fracs.len() - 1]);
    for w in fracs.windows(2) {
        if w[1] - w[0] > gap {
            (lo, gap) = (w[0], w[1] - w[0]);
        }
    }
    let gamma_log2 = -((2.0 / gap).log2().ceil() as i64);
    let gamma = 2f64.powi(gamma_log2 as i32);
    // β ≡ −(lo + (w − γ)/2) mod 1, rounded to a multiple of 2^{−j} ≤ w/16.
    let j = (16.0 / gap).log2().ceil() as i32 + 1;
    let beta = (-(lo + (gap - gamma) / 2.0)).rem_euclid(1.0);
    let beta = tidy(&BigReal::from_f64((beta * 2f64.powi(j)).round() / 2f64.powi(j)));
    let shifted: Vec<BigReal> = y.iter().map(|yt| yt.add(&beta)).collect();
    let floors: Vec<(i128, BigReal)> = shifted.iter().map(floor_frac).collect();
    // The margin, checked exactly: every fraction in [γ + w/8, 1 − w/8].
    let (low, high) = (gamma + gap / 8.0, 1.0 - gap / 8.0);
    if let Some(f) = floors.iter().map(|f| f.1.to_f64()).find(|&f| !(low..=high).contains(&f)) {
        return Err(Error::Infeasible(format!("internal: a token's fraction {f} left the floor's margin [{low}, {high}]")));
    }
    let base = floors.iter().map(|f| f.0).min().unwrap_or(0);
    let tau: Vec<i128> = floors.iter().map(|f| f.0 - base).collect();
    if tau.iter().any(|&t| t >= 1 << 62) {
        return Ok(None);
    }
    let beta0 = tidy(&work(&beta).sub(&int(base)));
    let w = v.iter().map(|vi| tidy(&work(vi).mul(&s))).collect();
    Ok(Some(Codes { scale_log2: k, w, beta0, tau: tau.into_iter().map(|t| t as u64).collect(), gap, gamma_log2 }))
}

/// The context ids of every token position at one scale.
struct Ids {
    ids: Vec<u128>,
    /// The first two positions whose ids coincide with different labels.
    clash: Option<(usize, usize)>,
    token_bits: u32,
    sum_bits: u32,
}

/// The context ids of every token position at these codes.
fn ids_of(codes: &Codes, vocab: &Vocabulary<f64>, n: usize, labels: &[u64], task: Task) -> Ids {
    let token_bits = codes.tau.iter().max().map_or(0, |&m| bitlen(m));
    let sums: Vec<u128> = vocab.ids.chunks(n).map(|seq| seq.iter().map(|&t| u128::from(codes.tau[t])).sum()).collect();
    let sum_bits = sums.iter().max().map_or(0, |&m| 128 - m.leading_zeros());
    let ids: Vec<u128> = vocab
        .ids
        .iter()
        .enumerate()
        .map(|(pos, &t)| match task {
            Task::SequenceToSequence => u128::from(codes.tau[t]) + (sums[pos / n] << token_bits),
            Task::NextToken => sums[pos / n],
        })
        .collect();
    let mut first: HashMap<u128, usize> = HashMap::new();
    for (pos, &id) in ids.iter().enumerate() {
        match first.get(&id) {
            Some(&p) if labels[p] != labels[pos] => return Ids { ids, clash: Some((p, pos)), token_bits, sum_bits },
            Some(_) => {}
            None => {
                first.insert(id, pos);
            }
        }
    }
    Ids { ids, clash: None, token_bits, sum_bits }
}

/// Two sequences with different multisets, equal exact token sums `Σ x` and labels the ids would have to
/// tell apart (next-token: different sequence labels; seq2seq: a token of both with different labels), if
/// any: averaging gives them equal means, so only the floors' rounding can separate them.
fn conflicting_equal_sums(data: &Dataset<f64>, vocab: &Vocabulary<f64>, labels: &[u64], task: Task) -> Option<(usize, usize)> {
    let [_, n, d] = data.inputs.shape();
    let mut by_sum: HashMap<Vec<ExactFloat>, Vec<usize>> = HashMap::new();
    for (b, seq) in vocab.ids.chunks(n).enumerate() {
        let sum: Vec<ExactFloat> = (0..d)
            .map(|j| seq.iter().fold(work(&int(0)), |acc, &t| acc.add(&BigReal::from_f64(*vocab.tokens.get(t, j)))).to_exact())
            .collect();
        by_sum.entry(sum).or_default().push(b);
    }
    let multiset = |b: usize| {
        let mut m = vocab.ids[b * n..(b + 1) * n].to_vec();
        m.sort_unstable();
        m
    };
    let conflict = |a: usize, b: usize| match task {
        Task::NextToken => labels[a * n] != labels[b * n],
        Task::SequenceToSequence => {
            (0..n).any(|k| (0..n).any(|l| vocab.ids[a * n + k] == vocab.ids[b * n + l] && labels[a * n + k] != labels[b * n + l]))
        }
    };
    let mut groups: Vec<&Vec<usize>> = by_sum.values().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups.into_iter().find_map(|g| {
        g.iter().enumerate().find_map(|(i, &a)| g[i + 1..].iter().find(|&&b| multiset(a) != multiset(b) && conflict(a, b)).map(|&b| (a, b)))
    })
}

/// Stage 0: the shape and target checks; the labels and the vocabulary they refer to.
///
/// Errors: `d < 4`; next-token targets that differ inside a sequence; a token repeated in one sequence with
/// different targets; permuted sequences with different targets ([`Error::InconsistentTargets`]).
fn checked_labels(data: &Dataset<f64>, task: Task) -> Result<(Labels, Vocabulary<f64>)> {
    let [big_n, n, d] = data.inputs.shape();
    if d < 4 {
        return Err(Error::InvalidParameter {
            name: "d".into(),
            reason: format!(
                "the bit-extraction construction reuses the token rows as its 4 scratch rows and needs d ≥ 4, got d = {d} \
                 (pad the tokens with zero coordinates)"
            ),
        });
    }
    let found = labels_of(&data.targets)?;
    let labels = &found.labels;
    if task == Task::NextToken {
        for b in 0..big_n {
            if let Some(k) = (0..n).find(|&k| labels[b * n + k] != labels[b * n + n - 1]) {
                return Err(Error::InvalidParameter {
                    name: "targets".into(),
                    reason: format!(
                        "next-token: sequence {b} has a different target at position {k} than at its last position; every \
                         position must carry the sequence's label (next_token_dataset, or `--task next-token` in the CLI, \
                         copies the last one)"
                    ),
                });
            }
        }
    }
    let vocab = Vocabulary::of(&data.inputs);
    // Equal tokens inside a sequence have equal contexts, hence need equal labels.
    for (b, seq) in vocab.ids.chunks(n).enumerate() {
        for k in 0..n {
            if let Some(j) = (0..k).find(|&j| seq[j] == seq[k] && labels[b * n + j] != labels[b * n + k]) {
                return Err(Error::InvalidParameter {
                    name: "targets".into(),
                    reason: format!(
                        "sequence {b} repeats a token at positions {j} and {k} with different targets: equal tokens of one \
                         sequence have the same context"
                    ),
                });
            }
        }
    }
    // Permuted sequences (equal multisets) must agree token by token.
    let mut by_multiset: HashMap<Vec<usize>, usize> = HashMap::new();
    for (b, seq) in vocab.ids.chunks(n).enumerate() {
        let mut m = seq.to_vec();
        m.sort_unstable();
        if let Some(&first) = by_multiset.get(&m) {
            let label_of = |s: usize, t: usize| (0..n).find(|&k| vocab.ids[s * n + k] == t).map(|k| labels[s * n + k]);
            if seq.iter().any(|&t| label_of(first, t) != label_of(b, t)) {
                return Err(Error::InconsistentTargets { first, second: b });
            }
        } else {
            by_multiset.insert(m, b);
        }
    }
    Ok((found, vocab))
}

/// A projection direction `v` (dyadic, exact) and the tokens' projections `p = vᵀx`.
struct Direction {
    /// log₂ of the smallest gap between two distinct projections.
    min_gap_log2: f64,
    v: Vec<BigReal>,
    p: Vec<BigReal>,
}

/// Stage 1a: the best of 8 random dyadic directions by the smallest gap between distinct tokens.
fn choose_direction(vocab: &Vocabulary<f64>, d: usize, seed: u64) -> Result<Direction> {
    let mut rng = SeededRng::new(seed);
    let tokens: Vec<Vec<BigReal>> =
        (0..vocab.len()).map(|t| (0..d).map(|j| BigReal::from_f64(*vocab.tokens.get(t, j))).collect()).collect();
    let mut best: Option<Direction> = None;
    for _ in 0..8 {
        let v: Vec<BigReal> =
            (0..d).map(|_| tidy(&work(&int(i128::from((rng.next_u64() >> 43) as i64 - (1 << 20)))).mul(&pow2(-20)))).collect();
        let p: Vec<BigReal> =
            tokens.iter().map(|x| x.iter().zip(&v).fold(work(&int(0)), |acc, (xi, vi)| acc.add(&work(xi).mul(vi)))).collect();
        let mut sorted = p.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let gap = sorted.windows(2).map(|w| w[1].sub(&w[0]).log2_abs()).fold(f64::INFINITY, f64::min);
        let gap = if sorted.len() < 2 { 0.0 } else { gap };
        if gap.is_finite() && best.as_ref().is_none_or(|b| gap > b.min_gap_log2) {
            best = Some(Direction { min_gap_log2: gap, v, p });
        }
    }
    best.ok_or_else(|| Error::Infeasible("no direction separated the distinct tokens".into()))
}

/// The token codes at the chosen scale and the context ids they give.
struct Scaled {
    codes: Codes,
    ids: Vec<u128>,
    token_bits: u32,
    sum_bits: u32,
    /// Scales tried, the chosen one included.
    tries: usize,
}

/// Stage 1b: the scale, doubling from `s·gap ≥ 1` until the ids separate every pair of differently labelled
/// contexts.
///
/// Errors: [`Error::Infeasible`] when no scale in 24 doublings separates them, naming two sequences with equal
/// token sums where that is the reason.
fn choose_scale(data: &Dataset<f64>, vocab: &Vocabulary<f64>, labels: &[u64], dir: &Direction, task: Task) -> Result<Scaled> {
    let n = data.inputs.shape()[1];
    let k0 = (-dir.min_gap_log2).ceil() as i64 + 1;
    let mut tries = 0;
    let mut last_clash = (0, 0);
    for k in k0..k0 + 24 {
        tries += 1;
        let Some(codes) = codes_at(&dir.v, &dir.p, k)? else { break };
        let Ids { ids, clash, token_bits, sum_bits } = ids_of(&codes, vocab, n, labels, task);
        match clash {
            None => return Ok(Scaled { codes, ids, token_bits, sum_bits, tries }),
            Some(c) => last_clash = c,
        }
    }
    let (a, b) = (last_clash.0 / n, last_clash.1 / n);
    let scales = format!("2^{k0} … 2^{}", k0 + tries as i64 - 1);
    let why = match conflicting_equal_sums(data, vocab, labels, task) {
        Some((i, j)) => format!(
            "sequences {i} and {j} are different multisets with equal token sums Σx (e.g. tokens on an integer grid) and \
             labels to tell apart: the average gives them equal means, and the floors' rounding did not separate them \
             at any scale tried ({scales})"
        ),
        None => format!("sequences {a} and {b} still share a context id at every scale tried ({scales})"),
    };
    Err(Error::Infeasible(format!("the bit-extraction construction's averaging attention: {why}")))
}

/// The distinct context ids in increasing order, each with its label, and the largest id.
///
/// Errors: [`Error::Infeasible`] when an id needs more than 64 bits.
fn id_table(ids: &[u128], labels: &[u64]) -> Result<(Vec<u64>, Vec<u64>, u128)> {
    let max_id = ids.iter().copied().max().unwrap_or(0);
    if max_id >= 1 << 64 {
        return Err(Error::Infeasible(format!("context ids need {} bits (more than 64)", 128 - max_id.leading_zeros())));
    }
    let pairs: BTreeMap<u64, u64> = ids.iter().zip(labels).map(|(&id, &label)| (id as u64, label)).collect();
    let (id_list, label_list) = pairs.into_iter().unzip();
    Ok((id_list, label_list, max_id))
}

/// A block with an FFN only.
fn plain(d: usize, units: Vec<Unit>) -> ModelBlock<BigReal> {
    Block { attention: None, ffn: Some(ffn(d, units, &[])) }
}

/// Stages 2 and 3: the projection `a = s·vᵀx + β₀` into U (every input row cleared), then the floor
/// `τ = ⌊a⌋` into D bit by bit (a never lies in (2^q, 2^q + γ)).
fn projection_and_floor(rows: Rows, codes: &Codes, token_bits: u32) -> Vec<ModelBlock<BigReal>> {
    let d = rows.width;
    let one = || int(1);
    let mut units: Vec<Unit> = (0..d)
        .flat_map(|i| [Unit::of_row(i, int(0), vec![(i, one().neg())]), Unit::new(vec![(i, one().neg())], int(0), vec![(i, one())])])
        .collect();
    units.push(Unit::new(codes.w.iter().cloned().enumerate().collect(), codes.beta0.clone(), vec![(rows.u, one())]));
    let mut blocks = vec![plain(d, units)];
    let gamma = pow2(codes.gamma_log2);
    for q in (0..i64::from(token_bits)).rev() {
        let t = work(&pow2(q)).add(&gamma);
        blocks.push(plain(d, Unit::step(rows.u, &t, &gamma, &[(rows.u, pow2(q).neg()), (rows.d, pow2(q))]).to_vec()));
    }
    blocks
}

/// Stage 4: the averaging attention, `λ·mean τ = 2^h·S` into L, then rounded into D bit by bit.
fn averaging(rows: Rows, n: usize, token_bits: u32, sum_bits: u32, task: Task) -> Vec<ModelBlock<BigReal>> {
    let d = rows.width;
    let one = || int(1);
    let h = match task {
        Task::SequenceToSequence => i64::from(token_bits),
        Task::NextToken => 0,
    };
    let lambda = tidy(&work(&int(n as i128)).mul(&pow2(h)));
    let unit_row = |r: usize| Matrix::from_fn(1, d, |_, c| if c == r { one() } else { int(0) });
    let head = AttentionHead {
        w_q: Weight::Dense(Matrix::from_fn(1, d, |_, _| int(0))),
        w_k: Weight::Dense(Matrix::from_fn(1, d, |_, _| int(0))),
        w_v: Weight::Dense(unit_row(rows.d)),
        w_o: Weight::Dense(Matrix::from_fn(d, 1, |r, _| if r == rows.l { lambda.clone() } else { int(0) })),
        b_q: None,
    };
    let round_bit = |q: i64| {
        // L ≈ a multiple of 2^h: 1[L ≥ 2^q] with the band (2^q − 3·2^{h−2}, 2^q − 2^{h−2}).
        let t = work(&pow2(q)).sub(&pow2(h - 2));
        Unit::step(rows.l, &t, &pow2(h - 1), &[(rows.l, pow2(q).neg()), (rows.d, pow2(q))]).to_vec()
    };
    let sum_range: Vec<i64> = (h..h + i64::from(sum_bits)).rev().collect();
    let mut units = vec![Unit::of_row(rows.u, int(0), vec![(rows.u, one().neg())])];
    if task == Task::NextToken {
        units.push(Unit::of_row(rows.d, int(0), vec![(rows.d, one().neg())]));
    }
    if let Some(&q) = sum_range.first() {
        units.extend(round_bit(q));
    }
    let mut blocks = vec![Block {
        attention: Some(Attention { heads: vec![head], normalizer: Normalizer::Softmax, causal: false }),
        ffn: Some(ffn(d, units, &[])),
    }];
    blocks.extend(sum_range.iter().skip(1).map(|&q| plain(d, round_bit(q))));
    blocks
}

/// Stage 6: the readout, class k → target t_k by interpolating the residual `r_k = t_k − k·e_O`.
fn readout(rows: Rows, table: &[Vec<f64>]) -> ModelBlock<BigReal> {
    let d = rows.width;
    let r = |k: usize| -> Vec<BigReal> {
        (0..d).map(|j| work(&BigReal::from_f64(table[k][j])).sub(&if j == rows.o { int(k as i128) } else { int(0) })).collect()
    };
    let delta = |k: usize| -> Vec<BigReal> {
        if k == 0 {
            vec![int(0); d]
        } else {
            r(k).iter().zip(r(k - 1)).map(|(a, b)| a.sub(&b)).collect()
        }
    };
    let units: Vec<Unit> = (1..table.len())
        .map(|k| {
            let slope: Vec<(usize, BigReal)> =
                delta(k).iter().zip(delta(k - 1)).map(|(a, b)| tidy(&a.sub(&b))).enumerate().filter(|(_, x)| !x.is_zero()).collect();
            Unit::of_row(rows.o, int(1 - k as i128), slope)
        })
        .collect();
    let b2: Vec<(usize, BigReal)> = r(0).iter().map(tidy).enumerate().collect();
    Block { attention: None, ffn: Some(ffn(d, units, &b2)) }
}

impl OptimalMemorizer {
    /// Builds (and, with `opts.verify`, verifies exactly) the memorizer of `data`'s targets: the checks
    /// (`checked_labels`), a direction and a scale that give every context its id (`choose_direction`,
    /// `choose_scale`), then the blocks stage by stage (`projection_and_floor`, `averaging`,
    /// `stack::build_blocks`, `readout`).
    ///
    /// Errors: `d < 4` ([`Error::InvalidParameter`]); permuted sequences with different targets
    /// ([`Error::InconsistentTargets`]); next-token targets that differ inside a sequence; contexts that
    /// averaging cannot separate ([`Error::Infeasible`], naming two sequences with equal token sums).
    pub fn build(data: &Dataset<f64>, opts: &OptimalOptions) -> Result<Self> {
        let start = Instant::now();
        let [_, n, d] = data.inputs.shape();
        let (Labels { row: label_row, labels, classes, table }, vocab) = checked_labels(data, opts.task)?;
        let dir = choose_direction(&vocab, d, opts.seed)?;
        let Scaled { codes, ids, token_bits, sum_bits, tries } = choose_scale(data, &vocab, &labels, &dir, opts.task)?;
        let (id_list, label_list, max_id) = id_table(&ids, &labels)?;

        // Rows: O carries the label; U, D, L are the first other rows.
        let others: Vec<usize> = (0..d).filter(|&r| r != label_row).collect();
        let rows = Rows { width: d, o: label_row, u: others[0], d: others[1], l: others[2] };
        let mut blocks = projection_and_floor(rows, &codes, token_bits);
        blocks.extend(averaging(rows, n, token_bits, sum_bits, opts.task));
        let before_memorizer = blocks.len();
        // Stage 5, bit extraction; its selection block also clears L's rounding residue.
        let clear_l = vec![
            Unit::of_row(rows.l, int(0), vec![(rows.l, int(1).neg())]),
            Unit::new(vec![(rows.l, int(1).neg())], int(0), vec![(rows.l, int(1))]),
        ];
        let (mem_blocks, mem_report) = bit_extraction::build_blocks(&id_list, &label_list, classes, opts.group_size, rows, clear_l)?;
        blocks.extend(mem_blocks);
        let has_readout = table.is_some();
        blocks.extend(table.as_deref().map(|t| readout(rows, t)));

        let stages = [1, token_bits as usize, 1 + sum_bits.saturating_sub(1) as usize, mem_report.depth, usize::from(has_readout)];
        debug_assert_eq!(before_memorizer, 1 + stages[1] + stages[2]);
        let id_bits = bitlen(max_id as u64).max(1);
        let margin_bits = (8.0 / codes.gap).log2().ceil() as u64;
        let build_bits = mem_report.bits_bound.max(u64::from(token_bits) + margin_bits + 16).max(u64::from(id_bits) + 24)
            + if has_readout { 64 } else { 8 };
        let mut info = ModelInfo::named("bit-extraction")
            .with("task", opts.task.name())
            .with("seed", opts.seed)
            .with("scale_log2", codes.scale_log2)
            .with("token_bits", token_bits)
            .with("sum_bits", sum_bits)
            .with("ids", mem_report.ids)
            .with("classes", classes)
            .with("group_size", mem_report.group_size)
            .with("word_bits", mem_report.word_bits)
            .with("build_bits", build_bits);
        info.params.insert("gamma_log2".into(), codes.gamma_log2.to_string());
        let model = Model::new(d, blocks, info)?;
        let build_seconds = start.elapsed().as_secs_f64();
        let (memorization, verify_seconds) = if opts.verify {
            let backend = BigFloatBackend::with_threads(build_bits, opts.threads.max(1))?;
            let (m, s) = crate::verify::run_and_measure::<BigReal, _>(&model, data, &backend)?;
            (Some(m), s)
        } else {
            (None, 0.0)
        };
        let layers = model.layer_count();
        let report = OptimalReport {
            task: opts.task,
            ids: mem_report.ids,
            classes,
            readout: has_readout,
            direction_min_gap_log2: dir.min_gap_log2,
            scale_log2: codes.scale_log2,
            scale_tries: tries,
            token_bits,
            sum_bits,
            fraction_gap: codes.gap,
            gamma_log2: codes.gamma_log2,
            id_bits,
            layers_by_stage: stages,
            blocks: layers.blocks,
            attention_layers: layers.attention,
            params: model.param_count(),
            params_nonzero: nonzero_params(&model),
            build_bits,
            build_seconds,
            memorization,
            verify_seconds,
            memorizer: mem_report,
        };
        Ok(Self { model, report })
    }

    /// The fewest bits at which the model still memorizes `data`
    /// ([`crate::verify::fewest_bits_to_memorize`]).
    pub fn fewest_bits(&self, data: &Dataset<f64>, params: &crate::verify::BitsSearchParams) -> Result<BitsSearch> {
        crate::verify::fewest_bits_to_memorize(&self.model, data, params, |_, _| {})
    }
}
