//! Theorem 2: one single-head softmax attention layer with rank-1 weights is a contextual mapping.
//!
//! Weights (`paper.md` §3.2): `W_K = W_V = vᵀ`, `W_Q = λ vᵀ`, `W_O = γ u`, head size 1, with `u = v` (the
//! paper allows any unit vector; reading ids along `v` is what lets the memorizer's FFN use one projection)
//! and `γ = min(ε/(4 r_max), g/(4M))` — the paper's `ε/(4 r_max)`, reduced when needed so that ids of
//! different tokens stay `g/2` apart along `v`. For query token `t` of sequence `X` the layer outputs
//! `t + γ v · boltz(a)/(λ vᵀt)` with `a_i = λ (vᵀx_i)(vᵀt)`.
//!
//! Three policies for `v` and `λ` ([`Policy`]); every constant is reported ([`ContextReport`]), the
//! separation is *measured* in high precision and in f64, and Theorem 2's δ is given in log10 because it
//! underflows f64.

use std::collections::BTreeMap;

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_core::rng::SeededRng;
use boltz_core::{
    Attention, AttentionHead, Backend, Batch, Block, DataReport, Error, Model, ModelInfo, Normalizer, Real, ReferenceBackend, Requirements,
    Result, Vocabulary, Weight,
};
use serde::{Deserialize, Serialize};

use crate::boltzmann::lemma1_gap;

/// How `v` and `λ` are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The paper's worst-case constants: `v` from the projection lemma (`c = sqrt(8/(πd))/(|V|+1)²`,
    /// random unit vectors until the data meets it), `λ = (2 ln n + 3)/(c² ε r_min)`.
    Theory,
    /// `v` chosen on the data (best of the candidates by `g·m`), `λ = (2 ln n + 3)/(g m)` with the measured
    /// gap `g` between projected tokens and `m = min |vᵀx|`: Lemma 1's gap condition holds exactly.
    Measured,
    /// Beyond the paper: `v` minimising `r_a = λ max(vᵀx)²`, then the smallest `λ` that keeps all contexts
    /// separated (checked in high precision): `λ = 0` (mean pooling) when that already separates them, as it
    /// does on generic data, else bisection down to 2⁻³⁰ of the unshrunk value.
    Tuned,
}

impl Policy {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Theory => "theory",
            Self::Measured => "measured",
            Self::Tuned => "tuned",
        }
    }
}

/// Options of [`ContextualMapping::build`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextualOptions {
    /// How `v` and `λ` are chosen.
    pub policy: Policy,
    /// Seed for the candidate directions.
    pub seed: u64,
    /// Random unit vectors tried for `v` (Measured, Tuned).
    pub candidates: usize,
    /// Causal mask: ids then distinguish prefixes.
    pub causal: bool,
    /// Refuse to compute with more bits than this.
    pub max_bits: u64,
    /// Threads of the arbitrary-precision backend.
    pub threads: usize,
}

impl Default for ContextualOptions {
    fn default() -> Self {
        Self {
            policy: Policy::Measured,
            seed: 0,
            candidates: 2000,
            causal: false,
            max_bits: 1 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Projection facts of a direction `v` on a vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The unit direction.
    pub v: Vec<f64>,
    /// `g = min |vᵀa − vᵀb|` over distinct tokens.
    pub g: f64,
    /// `m = min |vᵀx|`.
    pub m: f64,
    /// `M = max |vᵀx|`.
    pub big_m: f64,
}

impl Projection {
    /// Measures `v` (normalised) on the rows of `tokens`.
    pub fn measure(v: &[f64], tokens: &[Vec<f64>]) -> Self {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let v: Vec<f64> = v.iter().map(|x| x / norm).collect();
        let mut p: Vec<f64> = tokens.iter().map(|t| t.iter().zip(&v).map(|(a, b)| a * b).sum()).collect();
        let m = p.iter().fold(f64::INFINITY, |a, x| a.min(x.abs()));
        let big_m = p.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        p.sort_by(f64::total_cmp);
        let g = p.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
        Self { v, g, m, big_m }
    }
}

/// Measured separation of context ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Separation {
    /// Distinct contexts (token, visible set) among the N·n positions.
    pub contexts: usize,
    /// `log10` of the smallest difference of projected ids `vᵀz` between distinct contexts (−inf if two
    /// collide). Along `v` this is also the distance between ids of the same token.
    pub min_gap_log10: f64,
    /// `log10` of the largest spread of ids within one context (permuted visible sets: rounding only).
    pub max_within_log10: f64,
    /// Distinct-context pairs whose ids are exactly equal.
    pub collisions: usize,
}

/// Everything a contextual mapping was built from and measured to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextReport {
    /// The policy.
    pub policy: Policy,
    /// Causal mask.
    pub causal: bool,
    /// N, n, d, |V|, r_min, r_max, ε of the data.
    pub data: DataReport,
    /// The chosen direction and its measured gap, min and max projection.
    pub projection: Projection,
    /// Projection-lemma constant `c = sqrt(8/(πd))/(|V|+1)²`.
    pub c_projection_lemma: f64,
    /// `λ`.
    pub lambda: f64,
    /// `λ` before the Tuned shrink (equal to `lambda` otherwise).
    pub lambda_unshrunk: f64,
    /// `γ` (`W_O = γ v`).
    pub gamma: f64,
    /// Largest attention logit `r_a = λ M²`.
    pub r_a: f64,
    /// Lemma 1's gap `2 ln n + 3` and the smallest gap between distinct logits `λ m g` it guarantees.
    pub lemma1_gap_required: f64,
    /// `λ m g`.
    pub lemma1_gap_achieved: f64,
    /// `r = r_max + ε/4`: the bound of the definition.
    pub r: f64,
    /// Largest `‖id‖` measured (in f64; the definition's bound `< r` is checked as `≤ r` because the
    /// supremum `r` is approached when softmax concentrates on the largest token).
    pub max_norm: f64,
    /// Theorem 2's `δ` in log10 (INFERRED formula, `paper.md` §2.4).
    pub log10_delta_theory: f64,
    /// `log10` of the lower bound `ε − 2γM` on distances between ids of different tokens.
    pub log10_cross_token_bound: f64,
    /// Separation measured in `bits`-bit arithmetic.
    pub separation_bigfloat: Separation,
    /// Separation of the same model run in f64 (the weights rounded to f64).
    pub separation_f64: Separation,
    /// Whether the (r, δ)-contextual-mapping definition holds on the data with `δ` = the measured separation:
    /// every id bounded by r and every pair of distinct contexts separated.
    pub is_contextual_mapping: bool,
    /// Precision of the high-precision measurement.
    pub bits: u64,
}

/// A built contextual mapping.
#[derive(Clone, Debug)]
pub struct ContextualMapping {
    /// The one-block, one-head attention model.
    pub model: Model<BigReal>,
    /// Constants and measurements.
    pub report: ContextReport,
    /// The ids `z` of every position, computed at `report.bits` bits.
    pub ids: Batch<BigReal>,
    /// `vᵀz` of every position (the order the memorizer's FFN reads them in).
    pub projected: Vec<BigReal>,
    /// Context key of every position (positions with equal keys must share an id).
    pub keys: Vec<usize>,
}

/// Theorem 2's δ in log10.
pub fn log10_delta_theory(n: usize, vocab: usize, d: usize, eps: f64, r_min: f64, r_max: f64) -> f64 {
    let ln_n = (n as f64).ln();
    let v4 = ((vocab + 1) as f64).powi(4);
    let k = 2.0 * ln_n + 3.0;
    let pi_d = std::f64::consts::PI * d as f64;
    let pre = 2.0 * ln_n * ln_n * eps * eps * r_min / (r_max * r_max * v4 * k * pi_d);
    let expo = v4 * k * pi_d * r_max * r_max / (4.0 * eps * r_min);
    pre.log10() - expo / std::f64::consts::LN_10
}

fn rank_one_head(v: &[f64], lambda: f64, gamma: f64) -> AttentionHead<BigReal> {
    let r = BigReal::from_f64;
    let vv: Vec<BigReal> = v.iter().map(|&x| r(x)).collect();
    AttentionHead {
        w_q: Weight::rank_one(vec![r(lambda)], vv.clone()),
        w_k: Weight::rank_one(vec![r(1.0)], vv.clone()),
        w_v: Weight::rank_one(vec![r(1.0)], vv.clone()),
        w_o: Weight::rank_one(vv, vec![r(gamma)]),
        b_q: None,
    }
}

/// The attention block of the construction.
pub fn attention_block(v: &[f64], lambda: f64, gamma: f64, causal: bool) -> Block<BigReal> {
    Block {
        attention: Some(Attention { heads: vec![rank_one_head(v, lambda, gamma)], normalizer: Normalizer::Softmax, causal }),
        ffn: None,
    }
}

/// `vᵀz` summed left to right (the order of the backends' projections).
pub fn project<T: Real>(v: &[T], z: &[T]) -> T {
    let mut acc = T::from_f64(0.0);
    for (a, b) in v.iter().zip(z) {
        acc = acc.add(&a.mul(b));
    }
    acc
}

/// Context keys: positions with equal keys see the same token and the same set of visible tokens.
fn context_keys(vocab: &Vocabulary<f64>, batch: usize, n: usize, causal: bool) -> Vec<usize> {
    let mut index: BTreeMap<(usize, Vec<usize>), usize> = BTreeMap::new();
    let mut keys = Vec::with_capacity(batch * n);
    for b in 0..batch {
        let ids = &vocab.ids[b * n..(b + 1) * n];
        for k in 0..n {
            let mut visible = if causal { ids[..=k].to_vec() } else { ids.to_vec() };
            visible.sort_unstable();
            let next = index.len();
            keys.push(*index.entry((ids[k], visible)).or_insert(next));
        }
    }
    keys
}

/// Separation of projected ids between distinct keys.
pub(crate) fn separation<T: Real>(projected: &[T], keys: &[usize]) -> Separation {
    let mut groups: BTreeMap<usize, (T, T)> = BTreeMap::new();
    for (s, &k) in projected.iter().zip(keys) {
        let e = groups.entry(k).or_insert_with(|| (s.clone(), s.clone()));
        if *s < e.0 {
            e.0 = s.clone();
        }
        if *s > e.1 {
            e.1 = s.clone();
        }
    }
    let log10 = |x: &T| {
        if *x == T::from_f64(0.0) {
            f64::NEG_INFINITY
        } else {
            log2_abs(x) * std::f64::consts::LOG10_2
        }
    };
    let max_within = groups.values().map(|(lo, hi)| log10(&hi.sub(lo))).fold(f64::NEG_INFINITY, f64::max);
    let mut reps: Vec<&T> = groups.values().map(|(lo, _)| lo).collect();
    reps.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut min_gap = f64::INFINITY;
    let mut collisions = 0;
    for w in reps.windows(2) {
        let gap = w[1].sub(w[0]);
        if gap == T::from_f64(0.0) {
            collisions += 1;
        }
        min_gap = min_gap.min(log10(&gap));
    }
    Separation { contexts: groups.len(), min_gap_log10: min_gap, max_within_log10: max_within, collisions }
}

/// `log2 |x|` for any element type (exact exponent for big floats, f64 otherwise).
pub(crate) fn log2_abs<T: Real>(x: &T) -> f64 {
    let f = x.to_f64().abs();
    if f.is_finite() && f > 1e-300 {
        return f.log2();
    }
    // Beyond f64's range: read the exponent of the exact value.
    let e = x.to_exact();
    if e.is_zero() {
        f64::NEG_INFINITY
    } else {
        e.exponent() as f64 + e.mantissa_bits() as f64 - 1.0
    }
}

struct Measured {
    ids: Batch<BigReal>,
    projected: Vec<BigReal>,
    sep: Separation,
    bits: u64,
}

/// Ids at a precision sufficient to resolve them: starts from an estimate from `r_a` and raises it until
/// the smallest gap is at least 2⁻⁶⁴ of the working precision's resolution.
///
/// The estimate is Lemma 1's worst case: boltz values differ by at least `(ln n)² e^{−2 r_a}`, and ids by
/// that times `γ/(λ|vᵀt|)`, so `2 r_a log2 e + log2(λM/γ)` bits (plus a margin) resolve them.
fn measure_ids(
    model: &Model<BigReal>,
    x: &Batch<BigReal>,
    v: &[f64],
    keys: &[usize],
    estimate: f64,
    opts: &ContextualOptions,
) -> Result<Measured> {
    let vb: Vec<BigReal> = v.iter().map(|&a| BigReal::from_f64(a)).collect();
    if estimate > opts.max_bits as f64 {
        return Err(Error::Infeasible(format!(
            "Lemma 1's worst case needs about {estimate:.3e} bits to resolve the context ids, more than max_bits = {}; \
             use the Measured or Tuned policy, fewer tokens, or raise max_bits",
            opts.max_bits
        )));
    }
    let mut bits = (estimate.max(0.0) as u64 + 160).clamp(128, opts.max_bits);
    for _ in 0..8 {
        let backend = BigFloatBackend::with_threads(bits, opts.threads)?;
        let ids = backend.run(model, x)?;
        let d = x.dim();
        let projected: Vec<BigReal> = ids.as_slice().chunks(d).map(|z| project(&vb, z)).collect();
        let sep = separation(&projected, keys);
        let scale = projected.iter().map(log2_abs).fold(f64::NEG_INFINITY, f64::max).max(0.0);
        let needed = (scale - sep.min_gap_log10 / std::f64::consts::LOG10_2).ceil() + 96.0;
        if sep.collisions == 0 && needed <= bits as f64 {
            return Ok(Measured { ids, projected, sep, bits });
        }
        if bits >= opts.max_bits {
            break;
        }
        let next = if needed.is_finite() { (needed as u64 + 128).max(bits + bits / 2) } else { 2 * bits };
        bits = next.min(opts.max_bits);
    }
    Err(Error::Infeasible(format!(
        "the context ids need more than max_bits = {} bits to be told apart (Lemma 1 estimate: {estimate:.0} bits); \
         use the Tuned policy, fewer tokens, or raise max_bits",
        opts.max_bits
    )))
}

fn random_direction(rng: &mut SeededRng, d: usize) -> Vec<f64> {
    rng.unit_vector(d)
}

impl ContextualMapping {
    /// Builds the rank-1 contextual mapping for `inputs` (no repeated token inside a sequence, all
    /// projections non-zero) under `opts`.
    pub fn build(inputs: &Batch<f64>, opts: &ContextualOptions) -> Result<Self> {
        let data = DataReport::analyze(inputs, None);
        data.check(&Requirements { no_duplicate_tokens: true, ..Default::default() })?;
        if data.r_min <= 0.0 {
            return Err(Error::Assumption {
                what: "token norms r_min".into(),
                required: "> 0".into(),
                measured: format!("{}", data.r_min),
            });
        }
        let (n, d) = (inputs.len(), inputs.dim());
        let vocab = Vocabulary::of(inputs);
        let tokens: Vec<Vec<f64>> = (0..vocab.len()).map(|r| vocab.tokens.row(r).to_vec()).collect();
        let eps = if data.eps.is_finite() { data.eps } else { data.r_min };
        let k = lemma1_gap(n);
        let c = (8.0 / (std::f64::consts::PI * d as f64)).sqrt() / ((vocab.len() + 1) as f64).powi(2);
        let mut rng = SeededRng::new(opts.seed);
        let candidates = opts.candidates.max(1);
        let proj = match opts.policy {
            Policy::Theory => {
                let mut found = None;
                for _ in 0..10_000 {
                    let p = Projection::measure(&random_direction(&mut rng, d), &tokens);
                    if p.g >= c * eps && p.m >= c * data.r_min {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or_else(|| Error::Infeasible("no direction met the projection lemma's constant in 10 000 tries".into()))?
            }
            Policy::Measured | Policy::Tuned => {
                let score = |p: &Projection| match opts.policy {
                    Policy::Tuned => p.big_m * p.big_m / (p.g * p.m),
                    _ => 1.0 / (p.g * p.m),
                };
                let mut best = Projection::measure(&random_direction(&mut rng, d), &tokens);
                for _ in 1..candidates {
                    let p = Projection::measure(&random_direction(&mut rng, d), &tokens);
                    if score(&p) < score(&best) {
                        best = p;
                    }
                }
                best
            }
        };
        if !(proj.g > 0.0 && proj.m > 0.0) {
            return Err(Error::Assumption {
                what: "projections vᵀx: distinct tokens must project apart and no token to 0".into(),
                required: "g > 0 and m > 0".into(),
                measured: format!("g = {:e}, m = {:e}", proj.g, proj.m),
            });
        }
        let lambda0 = match opts.policy {
            Policy::Theory => k / (c * c * eps * data.r_min),
            _ => k / (proj.g * proj.m),
        };
        let gamma = (eps / (4.0 * data.r_max)).min(proj.g / (4.0 * proj.big_m));
        let keys = context_keys(&vocab, inputs.batch(), n, opts.causal);
        let x: Batch<BigReal> = inputs.convert()?;
        let info = |lambda: f64| {
            ModelInfo::named("contextual-mapping")
                .with("policy", opts.policy.as_str())
                .with("lambda", lambda)
                .with("gamma", gamma)
                .with("v", format!("{:?}", proj.v))
                .with("causal", opts.causal)
        };
        let make = |lambda: f64| Model::new(d, vec![attention_block(&proj.v, lambda, gamma, opts.causal)], info(lambda));
        let estimate = |lambda: f64| {
            let r_a = lambda * proj.big_m * proj.big_m;
            2.0 * r_a * std::f64::consts::LOG2_E + (lambda * proj.big_m / gamma).max(1.0).log2()
        };
        let separated = |lambda: f64| -> Result<Option<(Model<BigReal>, Measured)>> {
            let m = make(lambda)?;
            Ok(match measure_ids(&m, &x, &proj.v, &keys, estimate(lambda), opts) {
                Ok(meas) if meas.sep.collisions == 0 => Some((m, meas)),
                _ => None,
            })
        };
        // Tuned: λ = 0 is mean pooling, which already separates every context of generic data. Otherwise
        // bisect log2 λ in [log2 λ0 − 30, log2 λ0] for the smallest λ that keeps all contexts separated.
        let tuned_zero = if opts.policy == Policy::Tuned { separated(0.0)? } else { None };
        let (lambda, model, measured) = match tuned_zero {
            Some((m, meas)) => (0.0, m, meas),
            None => {
                let unshrunk = make(lambda0)?;
                let meas = measure_ids(&unshrunk, &x, &proj.v, &keys, estimate(lambda0), opts)?;
                let mut best = (lambda0, unshrunk, meas);
                if opts.policy == Policy::Tuned {
                    let (mut lo, mut hi) = (-30.0f64, 0.0f64);
                    for _ in 0..12 {
                        let mid = 0.5 * (lo + hi);
                        let cand = lambda0 * mid.exp2();
                        match separated(cand)? {
                            Some((m, meas)) => {
                                hi = mid;
                                best = (cand, m, meas);
                            }
                            None => lo = mid,
                        }
                    }
                }
                best
            }
        };
        let m64: Model<f64> = model.convert()?;
        let z64 = ReferenceBackend.run(&m64, inputs)?;
        let proj64: Vec<f64> = z64.as_slice().chunks(d).map(|z| project(&proj.v, z)).collect();
        let separation_f64 = separation(&proj64, &keys);
        let max_norm =
            measured.ids.as_slice().chunks(d).map(|z| z.iter().map(|c| c.to_f64() * c.to_f64()).sum::<f64>().sqrt()).fold(0.0f64, f64::max);
        let r = data.r_max + eps / 4.0;
        let cross = eps - 2.0 * gamma * proj.big_m;
        let report = ContextReport {
            policy: opts.policy,
            causal: opts.causal,
            c_projection_lemma: c,
            lambda,
            lambda_unshrunk: lambda0,
            gamma,
            r_a: lambda * proj.big_m * proj.big_m,
            lemma1_gap_required: k,
            lemma1_gap_achieved: lambda * proj.m * proj.g,
            r,
            max_norm,
            log10_delta_theory: log10_delta_theory(n, vocab.len(), d, eps, data.r_min, data.r_max),
            log10_cross_token_bound: cross.log10(),
            is_contextual_mapping: max_norm <= r && measured.sep.collisions == 0 && cross > 0.0,
            separation_bigfloat: measured.sep,
            separation_f64,
            bits: measured.bits,
            projection: proj,
            data,
        };
        Ok(Self { model, report, ids: measured.ids, projected: measured.projected, keys })
    }
}
