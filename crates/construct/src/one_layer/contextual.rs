//! Theorem 2: one single-head softmax attention layer with rank-1 weights is a contextual mapping.
//!
//! Weights (`docs/theory.md` §3.2): `W_K = W_V = vᵀ`, `W_Q = λ vᵀ`, `W_O = γ u`, head size 1, with `u = v` (the
//! paper allows any unit vector; reading ids along `v` is what lets the memorizer's FFN use one projection)
//! and `γ = min(ε/(4 r_max), g/(4M))` — the paper's `ε/(4 r_max)`, reduced when needed so that ids of
//! different tokens stay `g/2` apart along `v`. For query token `t` of sequence `X` the layer outputs
//! `t + γ v · boltz(a)/(λ vᵀt)` with `a_i = λ (vᵀx_i)(vᵀt)`.
//!
//! Five policies for `v` and `λ` ([`Policy`]); every constant is reported ([`ContextReport`]), the
//! separation is *measured* in high precision and in f64, and Theorem 2's δ is given in log10 because it
//! underflows f64.

use std::collections::BTreeMap;

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_core::rng::SeededRng;
use boltz_core::{
    Attention, AttentionHead, Backend, Batch, Block, DataReport, Error, Model, ModelBlock, ModelInfo, Normalizer, Real, ReferenceBackend,
    Requirements, Result, Vocabulary, Weight,
};
use serde::{Deserialize, Serialize};

use crate::one_layer::boltzmann::lemma1_gap;

boltz_core::named_enum! {
/// How `v` and `λ` are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy: "policy" {
    /// The paper's worst-case constants: `v` from the projection lemma (`c = sqrt(8/(πd))/(|V|+1)²`,
    /// random unit vectors until the data meets it), `λ = (2 ln n + 3)/(c² ε r_min)`.
    Theory = "theory",
    /// `v` chosen on the data (best of the candidates by `g·m`), `λ = (2 ln n + 3)/(g m)` with the measured
    /// gap `g` between projected tokens and `m = min |vᵀx|`: Lemma 1's gap condition holds exactly.
    Measured = "measured",
    /// Beyond the paper: `v` minimising `r_a = λ max(vᵀx)²`, then the smallest softmax scale `λ > 0` that
    /// keeps all contexts separated (checked in high precision), by bisection of `log2 λ` down to 2⁻³⁰ of the
    /// unshrunk value. It minimises `λ`, not bits: on generic data it ends at the bottom of that window.
    Tuned = "tuned",
    /// `λ = 0`: attention averages the sequence (key–query rank 0 — *not* the rank-1 softmax construction).
    /// Separates every context of generic data (equal token sums have probability 0) and fails, with an
    /// [`Error::Infeasible`], where two contexts of one token have equal token sums (grid, PTE data).
    MeanPool = "mean-pool",
    /// Beyond the paper: softmax with `λ > 0` and `(v, λ)` chosen to minimise the bits the construction
    /// needs. Directions: the best drawn candidate by the Tuned score and by the Measured score; scales:
    /// `λ = 2⁻ᵏ λ₀` for `k = 40, 38, …, 0`, each ranked by the bits its ids need to be told apart
    /// (`log2(max |vᵀz| / min gap)`, from one high-precision forward; [`LambdaCandidate`]). The
    /// contextual mapping takes the best-ranked; the memorizer ([`crate::Memorizer`]) bisects the fewest
    /// bits of the best few and keeps the one that needs fewest.
    FewestBits = "fewest-bits",
}
}

/// One `(v, λ)` tried by the [`Policy::FewestBits`] search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LambdaCandidate {
    /// Index of the direction (0: best by the Tuned score, 1: best by the Measured score).
    pub direction: usize,
    /// The unit direction `v`.
    pub v: Vec<f64>,
    /// `k` in `λ = 2⁻ᵏ λ₀`.
    pub shrink_log2: i32,
    /// `λ`.
    pub lambda: f64,
    /// `log2(max |vᵀz| / min gap)` of the ids: the bits needed to tell them apart (`None` if they collide).
    pub resolve_bits: Option<f64>,
    /// Fewest bits of the memorizer built with it, where the memorizer measured them.
    pub fewest_bits: Option<u64>,
}

/// Options of [`ContextualMapping::build`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextualOptions {
    /// How `v` and `λ` are chosen.
    pub policy: Policy,
    /// Seed for the candidate directions.
    pub seed: u64,
    /// Random unit vectors tried for `v` (Measured, Tuned); [`Self::CANDIDATES`] by default.
    pub candidates: usize,
    /// Causal mask: ids then distinguish prefixes.
    pub causal: bool,
    /// Refuse to compute with more bits than this.
    pub max_bits: u64,
    /// Threads of the arbitrary-precision backend.
    pub threads: usize,
    /// Use this direction `v` (normalised) instead of the policy's choice.
    #[serde(default)]
    pub direction: Option<Vec<f64>>,
    /// Use this `λ` instead of the policy's choice (the build fails if it does not separate the contexts).
    #[serde(default)]
    pub lambda: Option<f64>,
    /// [`Policy::FewestBits`]: how many of the best-ranked candidates the memorizer bisects the fewest bits
    /// of (0: take the best-ranked without bisecting).
    #[serde(default = "default_verify_top")]
    pub verify_top: usize,
}

fn default_verify_top() -> usize {
    2
}

impl ContextualOptions {
    /// The random directions tried for `v` unless a caller says otherwise: the one default of the CLI
    /// (`boltz memorize --candidates`), Python (`memorize(candidates=…)`) and the experiment suite, so the
    /// same data and seed build the same model everywhere.
    pub const CANDIDATES: usize = 1000;
}

impl Default for ContextualOptions {
    fn default() -> Self {
        Self {
            policy: Policy::Measured,
            seed: 0,
            candidates: Self::CANDIDATES,
            causal: false,
            max_bits: 1 << 20,
            threads: boltz_core::threads::all_cores(),
            direction: None,
            lambda: None,
            verify_top: default_verify_top(),
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
    /// Theorem 2's `δ` in log10 (INFERRED formula, `docs/theory.md` §3.3).
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
    /// [`Policy::FewestBits`]: every `(v, λ)` tried, best-ranked first (empty for other policies).
    #[serde(default)]
    pub lambda_search: Vec<LambdaCandidate>,
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
pub fn attention_block(v: &[f64], lambda: f64, gamma: f64, causal: bool) -> ModelBlock<BigReal> {
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
    // Beyond f64's range: the exact value's exponent and leading bits.
    x.to_exact().log2_abs()
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
            "Lemma 1's worst case needs about {estimate:.3e} bits to resolve the context ids, more than max_bits = {} \
             (the {} policy; many distinct tokens make λ, and with it this bound, large); the fewest-bits policy \
             measures the ids at the precision they need instead, or use fewer tokens, or raise max_bits",
            opts.max_bits,
            opts.policy.name()
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

fn check_projection(proj: &Projection) -> Result<()> {
    if !(proj.g > 0.0 && proj.m > 0.0) {
        return Err(Error::Assumption {
            what: "projections vᵀx: distinct tokens must project apart and no token to 0".into(),
            required: "g > 0 and m > 0".into(),
            measured: format!("g = {:e}, m = {:e}", proj.g, proj.m),
        });
    }
    Ok(())
}

/// The [`Policy::FewestBits`] ranking: for each direction, `λ = 2⁻ᵏ λ₀(v)` from `k = 40` up to `k = 0` in
/// steps of 2, each ranked by the bits its ids need to be told apart; a direction's sweep stops once a
/// candidate needs 48 bits more than its best (larger λ only widens the softmax's dynamic range further).
/// Best-ranked first; colliding candidates last.
fn search_lambda(
    directions: &[Projection],
    lambda0: impl Fn(&Projection) -> f64,
    separated: impl Fn(&Projection, f64) -> Result<Option<(Model<BigReal>, Measured)>>,
) -> Result<Vec<LambdaCandidate>> {
    let mut out = Vec::new();
    for (i, p) in directions.iter().enumerate() {
        if directions[..i].iter().any(|q| q.v == p.v) || check_projection(p).is_err() {
            continue;
        }
        let mut best = f64::INFINITY;
        for k in (0..=40).rev().step_by(2) {
            let lambda = lambda0(p) * f64::from(-k).exp2();
            let resolve_bits = separated(p, lambda)?.map(|(_, meas)| {
                let scale = meas.projected.iter().map(log2_abs).fold(f64::NEG_INFINITY, f64::max);
                scale - meas.sep.min_gap_log10 / std::f64::consts::LOG10_2
            });
            out.push(LambdaCandidate { direction: i, v: p.v.clone(), shrink_log2: k, lambda, resolve_bits, fewest_bits: None });
            if let Some(b) = resolve_bits {
                best = best.min(b);
                if b > best + 48.0 {
                    break;
                }
            }
        }
    }
    out.sort_by(|a, b| {
        let key = |c: &LambdaCandidate| c.resolve_bits.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then(a.direction.cmp(&b.direction)).then(b.shrink_log2.cmp(&a.shrink_log2))
    });
    Ok(out)
}

fn random_direction(rng: &mut SeededRng, d: usize) -> Vec<f64> {
    rng.unit_vector(d)
}

/// The model chosen by a policy: its direction, its λ, the built layer and its ids measured in high precision.
struct Chosen {
    proj: Projection,
    lambda: f64,
    model: Model<BigReal>,
    measured: Measured,
    lambda_search: Vec<LambdaCandidate>,
}

/// What every stage of [`ContextualMapping::build`] reads: the checked data, its vocabulary and the
/// constants of Theorem 2 that do not depend on the direction.
struct Context<'a> {
    inputs: &'a Batch<f64>,
    opts: &'a ContextualOptions,
    data: DataReport,
    vocab: Vocabulary<f64>,
    /// The distinct tokens, one row each.
    tokens: Vec<Vec<f64>>,
    /// `ε`, or `r_min` for a single token.
    eps: f64,
    /// Lemma 1's required gap `(ln n)²`-style constant.
    k: f64,
    /// The projection lemma's `c = sqrt(8/(πd))/(|V|+1)²`.
    c: f64,
    /// The context each position's id must be told apart from.
    keys: Vec<usize>,
    /// The inputs, exact.
    x: Batch<BigReal>,
}

impl<'a> Context<'a> {
    /// Stage 0: the checks (no repeated token inside a sequence, `r_min > 0`) and the constants.
    fn new(inputs: &'a Batch<f64>, opts: &'a ContextualOptions) -> Result<Self> {
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
        let c = (8.0 / (std::f64::consts::PI * d as f64)).sqrt() / ((vocab.len() + 1) as f64).powi(2);
        let keys = context_keys(&vocab, inputs.batch(), n, opts.causal);
        let x: Batch<BigReal> = inputs.convert()?;
        Ok(Self { inputs, opts, data, vocab, tokens, eps, k: lemma1_gap(n), c, keys, x })
    }

    /// Stage 1: the direction `v` of the policy, and (softmax policies) the candidates the λ search tries:
    /// the best of `candidates` random draws by each score, from the same draws for every policy.
    fn choose_direction(&self) -> Result<(Projection, Vec<Projection>)> {
        let (opts, d) = (self.opts, self.inputs.dim());
        let mut rng = SeededRng::new(opts.seed);
        let tuned_score = |p: &Projection| p.big_m * p.big_m / (p.g * p.m);
        let measured_score = |p: &Projection| 1.0 / (p.g * p.m);
        let proj = match (&opts.direction, opts.policy) {
            (Some(v), _) => Projection::measure(v, &self.tokens),
            (None, Policy::Theory) => {
                let found = (0..10_000)
                    .map(|_| Projection::measure(&random_direction(&mut rng, d), &self.tokens))
                    .find(|p| p.g >= self.c * self.eps && p.m >= self.c * self.data.r_min);
                found.ok_or_else(|| Error::Infeasible("no direction met the projection lemma's constant in 10 000 tries".into()))?
            }
            (None, policy) => {
                let first = Projection::measure(&random_direction(&mut rng, d), &self.tokens);
                let (mut by_tuned, mut by_measured) = (first.clone(), first);
                for _ in 1..opts.candidates.max(1) {
                    let p = Projection::measure(&random_direction(&mut rng, d), &self.tokens);
                    if tuned_score(&p) < tuned_score(&by_tuned) {
                        by_tuned = p.clone();
                    }
                    if measured_score(&p) < measured_score(&by_measured) {
                        by_measured = p;
                    }
                }
                let chosen = if policy == Policy::Measured { by_measured.clone() } else { by_tuned.clone() };
                return check_projection(&chosen).map(|()| (chosen, vec![by_tuned, by_measured]));
            }
        };
        check_projection(&proj)?;
        Ok((proj, Vec::new()))
    }

    /// `λ₀`: the theory's worst case, or Lemma 1's gap over the direction's measured `g·m`.
    fn lambda0_of(&self, p: &Projection) -> f64 {
        match self.opts.policy {
            Policy::Theory => self.k / (self.c * self.c * self.eps * self.data.r_min),
            _ => self.k / (p.g * p.m),
        }
    }

    /// `γ = min(ε/(4 r_max), g/(4M))`.
    fn gamma_of(&self, p: &Projection) -> f64 {
        (self.eps / (4.0 * self.data.r_max)).min(p.g / (4.0 * p.big_m))
    }

    /// The one-layer model for direction `p` and scale `lambda`.
    fn make(&self, p: &Projection, lambda: f64) -> Result<Model<BigReal>> {
        let gamma = self.gamma_of(p);
        let info = ModelInfo::named("contextual-mapping")
            .with("policy", self.opts.policy.name())
            .with("lambda", lambda)
            .with("gamma", gamma)
            .with("v", format!("{:?}", p.v))
            .with("causal", self.opts.causal);
        Model::new(self.inputs.dim(), vec![attention_block(&p.v, lambda, gamma, self.opts.causal)], info)
    }

    /// Lemma 1's worst-case bits for the ids ([`measure_ids`]).
    fn estimate(&self, p: &Projection, lambda: f64) -> f64 {
        let r_a = lambda * p.big_m * p.big_m;
        2.0 * r_a * std::f64::consts::LOG2_E + (lambda * p.big_m / self.gamma_of(p)).max(1.0).log2()
    }

    /// The model and its measured ids at `(p, lambda)`, errors propagated.
    fn measured(&self, p: &Projection, lambda: f64, o: &ContextualOptions) -> Result<(Model<BigReal>, Measured)> {
        let m = self.make(p, lambda)?;
        let meas = measure_ids(&m, &self.x, &p.v, &self.keys, self.estimate(p, lambda), o)?;
        Ok((m, meas))
    }

    /// The model at `(p, lambda)` if its ids separate every context within `o.max_bits`.
    fn separated(&self, p: &Projection, lambda: f64, o: &ContextualOptions) -> Result<Option<(Model<BigReal>, Measured)>> {
        let m = self.make(p, lambda)?;
        Ok(match measure_ids(&m, &self.x, &p.v, &self.keys, self.estimate(p, lambda), o) {
            Ok(meas) if meas.sep.collisions == 0 => Some((m, meas)),
            _ => None,
        })
    }

    /// Stage 2: the scale λ of the policy (or the one given), and the model it builds.
    fn choose_lambda(&self, proj: Projection, mut directions: Vec<Projection>) -> Result<Chosen> {
        let opts = self.opts;
        // Searches cap the precision at which a candidate's ids are resolved: a collision would otherwise
        // double the bits up to `max_bits`.
        let capped = ContextualOptions { max_bits: opts.max_bits.min(1 << 13), ..opts.clone() };
        let lambda0 = self.lambda0_of(&proj);
        let chosen = |proj, lambda, (model, measured): (Model<BigReal>, Measured)| Chosen {
            proj,
            lambda,
            model,
            measured,
            lambda_search: Vec::new(),
        };
        match (opts.lambda, opts.policy) {
            (Some(lambda), _) => {
                if !(lambda.is_finite() && lambda >= 0.0) {
                    return Err(Error::InvalidParameter { name: "lambda".into(), reason: format!("{lambda} is not a finite λ ≥ 0") });
                }
                let built = self.measured(&proj, lambda, opts)?;
                Ok(chosen(proj, lambda, built))
            }
            (None, Policy::MeanPool) => match self.separated(&proj, 0.0, &capped)? {
                Some(built) => Ok(chosen(proj, 0.0, built)),
                None => Err(Error::Infeasible(
                    "mean pooling (λ = 0) gives two distinct contexts of one token the same id (their sequences have \
                     equal token sums); use a softmax policy (fewest-bits, measured)"
                        .into(),
                )),
            },
            (None, Policy::FewestBits) => {
                // A direction given in the options is the only one searched.
                if directions.is_empty() {
                    directions.push(proj);
                }
                let lambda_search = search_lambda(&directions, |p| self.lambda0_of(p), |p, l| self.separated(p, l, &capped))?;
                let best = lambda_search.first().filter(|c| c.resolve_bits.is_some()).ok_or_else(|| {
                    Error::Infeasible("no softmax scale λ = 2^-k λ0 (k = 0…40) separated the contexts within 8192 bits".into())
                })?;
                let p = directions[best.direction].clone();
                let lambda = best.lambda;
                let built = self
                    .separated(&p, lambda, opts)?
                    .ok_or_else(|| Error::Infeasible(format!("the chosen λ = {lambda:e} no longer separates the contexts")))?;
                Ok(Chosen { lambda_search, ..chosen(p, lambda, built) })
            }
            (None, Policy::Tuned) => {
                // Bisect log2 λ in [log2 λ0 − 30, log2 λ0] for the smallest λ > 0 that keeps all contexts separated.
                let mut best = (lambda0, self.measured(&proj, lambda0, opts)?);
                let (mut lo, mut hi) = (-30.0f64, 0.0f64);
                for _ in 0..12 {
                    let mid = 0.5 * (lo + hi);
                    let cand = lambda0 * mid.exp2();
                    match self.separated(&proj, cand, opts)? {
                        Some(built) => {
                            hi = mid;
                            best = (cand, built);
                        }
                        None => lo = mid,
                    }
                }
                Ok(chosen(proj, best.0, best.1))
            }
            (None, Policy::Theory | Policy::Measured) => {
                let built = self.measured(&proj, lambda0, opts)?;
                Ok(chosen(proj, lambda0, built))
            }
        }
    }

    /// Stage 3: Theorem 2's constants for the chosen model, and its separation re-measured in f64.
    fn report(self, chosen: Chosen) -> Result<ContextualMapping> {
        let Chosen { proj, lambda, model, measured, lambda_search } = chosen;
        let (n, d) = (self.inputs.len(), self.inputs.dim());
        let gamma = self.gamma_of(&proj);
        let lambda_unshrunk = self.lambda0_of(&proj);
        let (eps, data) = (self.eps, self.data);
        let m64: Model<f64> = model.convert()?;
        let z64 = ReferenceBackend.run(&m64, self.inputs)?;
        let proj64: Vec<f64> = z64.as_slice().chunks(d).map(|z| project(&proj.v, z)).collect();
        let separation_f64 = separation(&proj64, &self.keys);
        let max_norm =
            measured.ids.as_slice().chunks(d).map(|z| z.iter().map(|c| c.to_f64() * c.to_f64()).sum::<f64>().sqrt()).fold(0.0f64, f64::max);
        let r = data.r_max + eps / 4.0;
        let cross = eps - 2.0 * gamma * proj.big_m;
        let report = ContextReport {
            policy: self.opts.policy,
            causal: self.opts.causal,
            c_projection_lemma: self.c,
            lambda,
            lambda_unshrunk,
            gamma,
            r_a: lambda * proj.big_m * proj.big_m,
            lemma1_gap_required: self.k,
            lemma1_gap_achieved: lambda * proj.m * proj.g,
            r,
            max_norm,
            log10_delta_theory: log10_delta_theory(n, self.vocab.len(), d, eps, data.r_min, data.r_max),
            log10_cross_token_bound: cross.log10(),
            is_contextual_mapping: max_norm <= r && measured.sep.collisions == 0 && cross > 0.0,
            separation_bigfloat: measured.sep,
            separation_f64,
            bits: measured.bits,
            projection: proj,
            data,
            lambda_search,
        };
        Ok(ContextualMapping { model, report, ids: measured.ids, projected: measured.projected, keys: self.keys })
    }
}

impl ContextualMapping {
    /// Builds the rank-1 contextual mapping for `inputs` (no repeated token inside a sequence, all
    /// projections non-zero) under `opts`: the checks, the policy's direction, its λ, then the report
    /// (Theorem 2's constants, the separation measured in high precision and in f64).
    pub fn build(inputs: &Batch<f64>, opts: &ContextualOptions) -> Result<Self> {
        let cx = Context::new(inputs, opts)?;
        let (proj, directions) = cx.choose_direction()?;
        let chosen = cx.choose_lambda(proj, directions)?;
        cx.report(chosen)
    }
}
