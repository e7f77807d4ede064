//! [`BigFloatBackend`]: runs any [`Model`] in `bits`-bit arithmetic, in parallel over sequences.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, OnceLock};

use boltz_core::backend::{check_input, check_output};
use boltz_core::watch;
use boltz_core::{Attention, Backend, Batch, DeviceInfo, Error, ExactConvert, FeedForward, Model, Normalizer, Real, Result, Stack, Weight};
use rayon::prelude::*;

use crate::certify::{ThresholdBounds, Verdict};
use crate::real::{BigReal, MAX_BITS, MIN_BITS};

/// The arbitrary-precision backend (see the crate docs).
pub struct BigFloatBackend {
    bits: u64,
    threads: usize,
    ffn_evaluation: FfnEvaluation,
    pool: rayon::ThreadPool,
}

impl std::fmt::Debug for BigFloatBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigFloatBackend").field("bits", &self.bits).field("threads", &self.threads).finish()
    }
}

impl BigFloatBackend {
    /// A backend computing with `bits` mantissa bits on all available cores.
    pub fn new(bits: u64) -> Result<Self> {
        Self::with_threads(bits, boltz_cpu::threads::all_cores())
    }

    /// A backend computing with `bits` mantissa bits on its own pool of `threads` threads.
    ///
    /// Errors: [`Error::InvalidParameter`] for `bits` outside `2..=2^24` or `threads == 0`.
    pub fn with_threads(bits: u64, threads: usize) -> Result<Self> {
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(Error::InvalidParameter {
                name: "precision".into(),
                reason: format!("{bits} bits is outside the supported range {MIN_BITS}..={MAX_BITS}"),
            });
        }
        let pool = boltz_cpu::threads::worker_pool("bigfloat", threads)?;
        Ok(Self { bits, threads, ffn_evaluation: FfnEvaluation::Faithful, pool })
    }

    /// The precision in bits.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Chooses how FFN layers with `W_1 = 1 wᵀ` are evaluated ([`FfnEvaluation`]).
    pub fn with_ffn_evaluation(mut self, mode: FfnEvaluation) -> Self {
        self.ffn_evaluation = mode;
        self
    }
}

/// A matrix as its non-zero entries per row (zeros cost nothing).
#[derive(Clone, Debug)]
struct SparseRows {
    cols: usize,
    rows: Vec<Vec<(usize, BigReal)>>,
}

impl SparseRows {
    fn new(m: &boltz_core::Matrix<BigReal>, bits: u64) -> Self {
        let rows = (0..m.rows())
            .map(|r| m.row(r).iter().enumerate().filter(|(_, x)| !x.is_zero()).map(|(c, x)| (c, x.with_bits(bits))).collect())
            .collect();
        Self { cols: m.cols(), rows }
    }

    fn transposed(m: &boltz_core::Matrix<BigReal>, bits: u64) -> Self {
        let t = boltz_core::Matrix::from_fn(m.cols(), m.rows(), |r, c| m.get(c, r).clone());
        Self::new(&t, bits)
    }

    /// `M x`, skipping zero weights and zero inputs (which contribute exact zeros).
    fn apply(&self, x: &[BigReal], zero: &BigReal) -> Vec<BigReal> {
        debug_assert_eq!(x.len(), self.cols);
        self.rows
            .iter()
            .map(|row| {
                let mut acc = zero.clone();
                let mut scratch = rug::Float::new(1);
                for (c, w) in row {
                    if !x[*c].is_zero() {
                        acc.add_product(w, &x[*c], &mut scratch);
                    }
                }
                acc
            })
            .collect()
    }
}

/// A weight kept in the cheapest form: sparse dense rows, or factors applied as `U (Vᵀ x)`.
#[derive(Clone, Debug)]
enum PreparedWeight {
    Dense(SparseRows),
    Factored { vt: SparseRows, u: SparseRows },
}

impl PreparedWeight {
    fn new(w: &Weight<BigReal>, bits: u64) -> Self {
        match w {
            Weight::Dense(m) => Self::Dense(SparseRows::new(m, bits)),
            Weight::Factored { u, v } => Self::Factored { vt: SparseRows::transposed(v, bits), u: SparseRows::new(u, bits) },
        }
    }

    fn apply(&self, x: &[BigReal], zero: &BigReal) -> Vec<BigReal> {
        match self {
            Self::Dense(m) => m.apply(x, zero),
            Self::Factored { vt, u } => u.apply(&vt.apply(x, zero), zero),
        }
    }
}

#[derive(Clone, Debug)]
struct PreparedHead {
    w_q: PreparedWeight,
    w_k: PreparedWeight,
    w_v: PreparedWeight,
    w_o: PreparedWeight,
    b_q: Option<Vec<BigReal>>,
}

/// A feed-forward layer. When `W_1 = 1 wᵀ` (every hidden unit reads the same projection `s = wᵀz`, as in
/// the memorizer's interpolating FFN), unit `j` is active iff `s > −b_1j` — an exact comparison, because a
/// correctly rounded `s + b_1j` is positive exactly when the exact sum is — so inactive units, which
/// contribute exact zeros, are found by binary search over the sorted thresholds and skipped:
///
/// * [`FfnEvaluation::Faithful`] (default): the active units' terms `W_2[:, j] · round(s + b_1j)` are summed in
///   index order, giving bit-for-bit the result of the full term-by-term sum (the reference's order).
/// * [`FfnEvaluation::PrefixSums`]: `s·P_k + Q_k` with prefix sums `P_k = Σ_{active} W_2[:, j]`,
///   `Q_k = Σ_{active} W_2[:, j] b_1j`: O(d + log q) per token, the same sum in another order (different
///   rounding). Used to verify constructions at their build precision, never to measure bits needed.
#[derive(Clone, Debug)]
enum PreparedFfn {
    Terms {
        w1: PreparedWeight,
        b1: Vec<BigReal>,
        w2: PreparedWeight,
        b2: Vec<BigReal>,
    },
    Thresholds {
        w: Vec<BigReal>,
        b1: Vec<BigReal>,
        /// Columns of `W_2` (one per hidden unit), rounded.
        w2_cols: Vec<Vec<BigReal>>,
        /// Thresholds `−b_1j` in ascending order, with their unit indices.
        thresholds: Vec<(BigReal, usize)>,
        p: Vec<Vec<BigReal>>,
        q: Vec<Vec<BigReal>>,
        b2: Vec<BigReal>,
        prefix_sums: bool,
        /// The enclosure of the faithful sum ([`crate::certify`]), built on first use by
        /// [`BigFloatBackend::decodes_all`].
        bounds: OnceLock<Option<ThresholdBounds>>,
        bits: u64,
    },
}

/// How FFN layers with `W_1 = 1 wᵀ` are evaluated (see the backend docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FfnEvaluation {
    /// Term by term in index order, skipping exact zeros: the reference's rounding.
    #[default]
    Faithful,
    /// Prefix sums over sorted thresholds: fastest, different rounding.
    PrefixSums,
}

impl PreparedFfn {
    fn new(f: &FeedForward<BigReal>, bits: u64, mode: FfnEvaluation) -> Self {
        let round = |v: &[BigReal]| v.iter().map(|x| x.with_bits(bits)).collect::<Vec<_>>();
        if let Weight::Factored { u, v } = &f.w1 {
            if u.cols() == 1 && u.as_slice().iter().all(|x| x.to_exact() == 1.0f64.to_exact()) {
                let zero = BigReal::zero(bits);
                let w2 = f.w2.to_dense();
                let d = w2.rows();
                let b1 = round(&f.b1);
                let w2_cols: Vec<Vec<BigReal>> = (0..b1.len()).map(|j| (0..d).map(|r| w2.get(r, j).with_bits(bits)).collect()).collect();
                let mut thresholds: Vec<(BigReal, usize)> = b1.iter().map(BigReal::neg).zip(0..).collect();
                thresholds.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
                let (mut p, mut q) = (vec![vec![zero.clone(); d]], vec![vec![zero.clone(); d]]);
                if mode == FfnEvaluation::PrefixSums {
                    for (_, j) in &thresholds {
                        let col = &w2_cols[*j];
                        let next_p: Vec<BigReal> = p[p.len() - 1].iter().zip(col).map(|(a, c)| a.add(c)).collect();
                        let next_q: Vec<BigReal> = q[q.len() - 1].iter().zip(col).map(|(a, c)| a.add(&c.mul(&b1[*j]))).collect();
                        p.push(next_p);
                        q.push(next_q);
                    }
                }
                return Self::Thresholds {
                    w: round(v.as_slice()),
                    b1,
                    w2_cols,
                    thresholds,
                    p,
                    q,
                    b2: round(&f.b2),
                    prefix_sums: mode == FfnEvaluation::PrefixSums,
                    bounds: OnceLock::new(),
                    bits,
                };
            }
        }
        Self::Terms { w1: PreparedWeight::new(&f.w1, bits), b1: round(&f.b1), w2: PreparedWeight::new(&f.w2, bits), b2: round(&f.b2) }
    }

    /// `W_2 ReLU(W_1 t + b_1) + b_2`.
    fn apply(&self, t: &[BigReal], zero: &BigReal) -> Vec<BigReal> {
        match self {
            Self::Terms { w1, b1, w2, b2 } => {
                let h: Vec<BigReal> = w1.apply(t, zero).iter().zip(b1).map(|(a, c)| a.add(c).relu()).collect();
                w2.apply(&h, zero).iter().zip(b2).map(|(y, b)| y.add(b)).collect()
            }
            Self::Thresholds { w, b1, w2_cols, thresholds, p, q, b2, prefix_sums, .. } => {
                let s = dot(w, t, zero);
                let k = thresholds.partition_point(|(th, _)| *th < s);
                if *prefix_sums {
                    return p[k].iter().zip(&q[k]).zip(b2).map(|((pk, qk), b)| s.mul(pk).add(qk).add(b)).collect();
                }
                let mut active: Vec<usize> = thresholds[..k].iter().map(|(_, j)| *j).collect();
                active.sort_unstable();
                let mut acc = vec![zero.clone(); b2.len()];
                // In place (no allocation per term), the same two roundings per term as `a.add(&w.mul(&h))`.
                let (mut h, mut scratch) = (zero.clone(), rug::Float::new(1));
                for j in active {
                    h.assign_sum(&s, &b1[j]);
                    for (a, wj) in acc.iter_mut().zip(&w2_cols[j]) {
                        if !wj.is_zero() {
                            a.add_product(wj, &h, &mut scratch);
                        }
                    }
                }
                acc.iter().zip(b2).map(|(y, b)| y.add(b)).collect()
            }
        }
    }
}

impl PreparedFfn {
    /// The enclosure of the faithful sum, built on first use; `None` for FFNs it does not apply to (see
    /// [`crate::certify`]): term-by-term layers, prefix-sum evaluation, thresholds not ascending in unit order.
    fn bounds(&self) -> Option<&ThresholdBounds> {
        match self {
            Self::Thresholds { thresholds, w2_cols, b2, prefix_sums: false, bounds, bits, .. } => bounds
                .get_or_init(|| {
                    // The faithful sum runs in unit order; the enclosure needs it to be threshold order.
                    if thresholds.iter().enumerate().any(|(i, (_, j))| i != *j) {
                        return None;
                    }
                    let ordered: Vec<&BigReal> = thresholds.iter().map(|(th, _)| th).collect();
                    ThresholdBounds::new(*bits, &ordered, w2_cols, b2)
                })
                .as_ref(),
            _ => None,
        }
    }

    /// Whether the faithful `t + FFN(t)` decodes to `y`, decided by the enclosure where it can.
    fn verdict(&self, bounds: &ThresholdBounds, t: &[BigReal], y: &[BigReal], zero: &BigReal) -> Verdict {
        match self {
            Self::Thresholds { w, thresholds, w2_cols, b2, .. } => {
                let s = dot(w, t, zero);
                let k = thresholds.partition_point(|(th, _)| *th < s);
                bounds.decide(&s, k, w2_cols, t, b2, y)
            }
            Self::Terms { .. } => Verdict::Undecided,
        }
    }
}

/// The outcome of [`BigFloatBackend::decodes_all`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeCheck {
    /// Every token decodes to its target ([`boltz_core::decodes`]) under the faithful evaluation.
    pub holds: bool,
    /// Tokens whose verdict came from the rigorous enclosure alone.
    pub certified: usize,
    /// Tokens whose last FFN was evaluated faithfully (all tokens when the enclosure does not apply).
    /// With `holds == false` both counts stop at the first failing token of each sequence, and
    /// sequences not started when a failure was found are skipped.
    pub evaluated: usize,
    /// A token `[sequence, position]` that does not decode (the first found; `None` when all decode).
    pub failure: Option<[usize; 2]>,
}

/// `memorizes` or `fails`, with how the tokens were decided (progress lines of the fewest-bits search).
impl std::fmt::Display for DecodeCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.holds { "memorizes" } else { "fails" };
        write!(f, "{verdict} ({} tokens certified, {} evaluated faithfully)", self.certified, self.evaluated)
    }
}

/// A model with every weight rounded to the backend's precision: the model's [`Stack`] skeleton over
/// rounded heads and feed-forward layers.
#[derive(Clone, Debug)]
pub struct RoundedModel {
    bits: u64,
    stack: Stack<PreparedHead, PreparedFfn>,
}

impl RoundedModel {
    /// The last block's FFN with its enclosure, where [`BigFloatBackend::decodes_all`] certifies it.
    fn certified_last_ffn(&self) -> Option<(&PreparedFfn, &ThresholdBounds)> {
        let ffn = self.stack.blocks().last()?.ffn.as_ref()?;
        ffn.bounds().map(|bounds| (ffn, bounds))
    }

    /// The precision the model was prepared for.
    pub fn bits(&self) -> u64 {
        self.bits
    }
}

/// Exact-value key of a big float, for the exp cache: `(M, e)` with value `M · 2^e` (equal values stored
/// at different MPFR lengths get different keys: a miss, never a wrong hit), and the tagged precision.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key(rug::Integer, i32, u64);

fn key(x: &BigReal) -> Key {
    match x.as_float().to_integer_exp() {
        Some((m, e)) if !x.is_zero() => Key(m, e, x.bits()),
        _ => Key(rug::Integer::new(), 0, x.bits()),
    }
}

/// Cache of `exp(score)` shared by the threads of one forward: in a rank-1 contextual mapping a query/key
/// token pair has the same score in every sequence it occurs in, so most exponentials are computed once
/// per pair. The lock is held only for look-ups and inserts, never while an exponential is computed.
struct ExpCache {
    values: Mutex<HashMap<Key, BigReal>>,
    limit: usize,
}

impl ExpCache {
    fn new(bits: u64) -> Self {
        // Keep at most ~512 MiB of cached mantissas.
        Self { values: Mutex::new(HashMap::new()), limit: ((512u64 << 20) / (bits / 8 + 64)).max(16) as usize }
    }

    fn exp(&self, x: &BigReal) -> BigReal {
        let k = key(x);
        if let Some(v) = self.values.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return v;
        }
        let v = x.exp();
        if let Ok(mut m) = self.values.lock() {
            if m.len() >= self.limit {
                m.clear();
            }
            m.insert(k, v.clone());
        }
        v
    }
}

impl RoundedModel {
    fn forward_sequence(&self, x: &[BigReal], cache: &ExpCache) -> Result<Vec<BigReal>> {
        self.forward_tokens(x, cache, false).map(|z| z.concat())
    }

    /// The sequence's tokens after every block; with `skip_last_ffn`, the last block's FFN is left out
    /// (its input is returned).
    fn forward_tokens(&self, x: &[BigReal], cache: &ExpCache, skip_last_ffn: bool) -> Result<Vec<Vec<BigReal>>> {
        let d = self.stack.dim();
        let last = self.stack.blocks().len().saturating_sub(1);
        let n = x.len() / d;
        let zero = BigReal::zero(self.bits);
        let mut z: Vec<Vec<BigReal>> = x.chunks(d).map(|t| t.iter().map(|v| v.with_bits(self.bits)).collect()).collect();
        for (b, block) in self.stack.blocks().iter().enumerate() {
            if let Some(Attention { heads, normalizer, causal }) = &block.attention {
                let mut delta = vec![vec![zero.clone(); d]; n];
                for head in heads {
                    let q: Vec<Vec<BigReal>> = z
                        .iter()
                        .map(|t| {
                            let q = head.w_q.apply(t, &zero);
                            match &head.b_q {
                                Some(bq) => q.iter().zip(bq).map(|(a, c)| a.add(c)).collect(),
                                None => q,
                            }
                        })
                        .collect();
                    let k: Vec<Vec<BigReal>> = z.iter().map(|t| head.w_k.apply(t, &zero)).collect();
                    let v: Vec<Vec<BigReal>> = z.iter().map(|t| head.w_v.apply(t, &zero)).collect();
                    for j in 0..n {
                        let keys = if *causal { j + 1 } else { n };
                        let scores: Vec<BigReal> = (0..keys).map(|i| dot(&k[i], &q[j], &zero)).collect();
                        let mixed = attend(&scores, &v[..keys], *normalizer, cache, &zero);
                        for (acc, o) in delta[j].iter_mut().zip(head.w_o.apply(&mixed, &zero)) {
                            *acc = acc.add(&o);
                        }
                    }
                }
                for (t, dt) in z.iter_mut().zip(&delta) {
                    for (a, c) in t.iter_mut().zip(dt) {
                        *a = a.add(c);
                    }
                }
                check_output(&z.concat(), || format!("blocks.{b}.attn"))?;
            }
            if let Some(ffn) = block.ffn.as_ref().filter(|_| !(skip_last_ffn && b == last)) {
                for t in z.iter_mut() {
                    let y = ffn.apply(t, &zero);
                    for (a, yi) in t.iter_mut().zip(&y) {
                        *a = a.add(yi);
                    }
                }
                check_output(&z.concat(), || format!("blocks.{b}.ffn"))?;
            }
        }
        Ok(z)
    }
}

fn dot(a: &[BigReal], b: &[BigReal], zero: &BigReal) -> BigReal {
    let mut acc = zero.clone();
    let mut scratch = rug::Float::new(1);
    for (x, y) in a.iter().zip(b) {
        acc.add_product(x, y, &mut scratch);
    }
    acc
}

/// `Σ_i σ(scores)_i values_i`. Softmax weights are `exp(s_i − m)` with `m = max s`, evaluated as
/// `exp(s_i) / exp(m)` from the cache (exactly 1 for the maximiser). In big floats `exp` of any attention
/// logit is representable, and the quotient of two correctly rounded exponentials has relative error
/// ≤ 2·2^-bits — no worse than rounding `s_i − m` first, whose error grows with `|m|`. Should an
/// exponential leave the exponent range, the direct `exp(s_i − m)` is used.
///
/// Every constant (the maximiser's weight 1, the tie count) is made at the working precision `zero`'s.
fn attend(scores: &[BigReal], values: &[Vec<BigReal>], normalizer: Normalizer, cache: &ExpCache, zero: &BigReal) -> Vec<BigReal> {
    let s = values[0].len();
    let bits = zero.mantissa_bits();
    let mut max = &scores[0];
    for x in &scores[1..] {
        if x > max {
            max = x;
        }
    }
    let mut acc = vec![zero.clone(); s];
    match normalizer {
        Normalizer::Softmax => {
            let e_max = cache.exp(max);
            let usable = |e: &BigReal| e.is_finite() && !e.is_zero();
            let weights: Vec<BigReal> = scores
                .iter()
                .map(|x| {
                    if x == max {
                        return BigReal::from_f64_with_bits(1.0, bits);
                    }
                    let e = cache.exp(x);
                    if usable(&e) && usable(&e_max) {
                        e.div(&e_max)
                    } else {
                        x.sub(max).exp()
                    }
                })
                .collect();
            let mut total = zero.clone();
            for w in &weights {
                total = total.add(w);
            }
            for (w, v) in weights.iter().zip(values) {
                let p = w.div(&total);
                for (a, vi) in acc.iter_mut().zip(v) {
                    *a = a.add(&p.mul(vi));
                }
            }
        }
        Normalizer::Hardmax => {
            let mut ties = 0usize;
            for (x, v) in scores.iter().zip(values) {
                if x == max {
                    ties += 1;
                    for (a, vi) in acc.iter_mut().zip(v) {
                        *a = a.add(vi);
                    }
                }
            }
            // The tie count rounded to the working precision, as p-bit arithmetic would hold it.
            let count = BigReal::from_f64_with_bits(ties as f64, bits);
            acc = acc.iter().map(|a| a.div(&count)).collect();
        }
    }
    acc
}

impl BigFloatBackend {
    /// The errors [`Backend::forward`] gives for a model prepared at another precision.
    fn check_prepared(&self, model: &RoundedModel) -> Result<()> {
        if model.bits != self.bits {
            return Err(Error::InvalidParameter {
                name: "precision".into(),
                reason: format!("model prepared for {} bits, backend runs {} bits", model.bits, self.bits),
            });
        }
        Ok(())
    }

    /// The checks of a decoding run: the forward's, and targets shaped like the inputs.
    fn check_decoding(&self, model: &RoundedModel, inputs: &Batch<BigReal>, targets: &Batch<BigReal>) -> Result<()> {
        check_input(model.stack.dim(), inputs)?;
        self.check_prepared(model)?;
        if targets.shape() != inputs.shape() {
            return Err(Error::ShapeMismatch {
                tensor: "targets".into(),
                expected: format!("{:?} (the inputs' shape)", inputs.shape()),
                found: format!("{:?}", targets.shape()),
            });
        }
        Ok(())
    }

    /// Whether every token of `inputs` decodes to its row of `targets` ([`boltz_core::decodes`]) when
    /// `model` runs faithfully — the verdict of [`Backend::forward`] followed by
    /// [`boltz_core::Memorization::measure`]`.is_perfect()`, without the `O(K)` faithful sum of the last
    /// FFN for most tokens: when that FFN is an interpolation over ascending thresholds (the memorizer's),
    /// a rigorous enclosure of the faithful result ([`crate::certify`]) decides each token, and only the
    /// tokens it leaves undecided are evaluated faithfully. Everything before the last FFN (attention, `s`)
    /// is evaluated faithfully for every token. Stops at the first failing token.
    ///
    /// Errors: those of [`Backend::forward`], and [`Error::ShapeMismatch`] when `targets` is not shaped like
    /// `inputs`. A non-finite output is an error only for tokens that are evaluated (a certified token's
    /// output is finite), so after a failure an input the forward would reject may go unnoticed.
    pub fn decodes_all(&self, model: &RoundedModel, inputs: &Batch<BigReal>, targets: &Batch<BigReal>) -> Result<DecodeCheck> {
        self.check_decoding(model, inputs, targets)?;
        let d = model.stack.dim();
        let last = model.stack.blocks().len().saturating_sub(1);
        let final_ffn = model.certified_last_ffn();
        let cache = ExpCache::new(self.bits);
        let zero = BigReal::zero(self.bits);
        let failed = AtomicBool::new(false);
        let failure: OnceLock<[usize; 2]> = OnceLock::new();
        let (certified, evaluated) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let fail = |token: [usize; 2]| {
            failure.get_or_init(|| token);
            failed.store(true, AtomicOrdering::Relaxed);
        };
        // Each sequence is a safe point of a watched computation (`boltz_core::watch`).
        let here = watch::here();
        here.stage(|| format!("decoding check at {} bits", self.bits), Some(inputs.batch()))?;
        let check_sequence = |b: usize| -> Result<()> {
            if failed.load(AtomicOrdering::Relaxed) {
                return Ok(());
            }
            let y = targets.sequence(b);
            let Some((ffn, bounds)) = final_ffn else {
                let out = model.forward_sequence(inputs.sequence(b), &cache)?;
                evaluated.fetch_add(out.len() / d.max(1), AtomicOrdering::Relaxed);
                if let Some(k) = out.chunks(d).zip(y.chunks(d)).position(|(o, t)| !boltz_core::decodes(o, t)) {
                    fail([b, k]);
                }
                return Ok(());
            };
            for (k, (t, target)) in model.forward_tokens(inputs.sequence(b), &cache, true)?.iter().zip(y.chunks(d)).enumerate() {
                let decodes = match ffn.verdict(bounds, t, target, &zero) {
                    Verdict::Decodes => {
                        certified.fetch_add(1, AtomicOrdering::Relaxed);
                        true
                    }
                    Verdict::Fails => {
                        certified.fetch_add(1, AtomicOrdering::Relaxed);
                        false
                    }
                    Verdict::Undecided => {
                        evaluated.fetch_add(1, AtomicOrdering::Relaxed);
                        let out: Vec<BigReal> = t.iter().zip(ffn.apply(t, &zero)).map(|(a, yi)| a.add(&yi)).collect();
                        check_output(&out, || format!("blocks.{last}.ffn"))?;
                        boltz_core::decodes(&out, target)
                    }
                };
                if !decodes {
                    fail([b, k]);
                    break;
                }
            }
            Ok(())
        };
        self.pool.install(|| {
            (0..inputs.batch()).into_par_iter().try_for_each(|b| {
                here.checkpoint()?;
                check_sequence(b)?;
                here.done(1)
            })
        })?;
        Ok(DecodeCheck {
            holds: !failed.load(AtomicOrdering::Relaxed),
            certified: certified.load(AtomicOrdering::Relaxed),
            evaluated: evaluated.load(AtomicOrdering::Relaxed),
            failure: failure.get().copied(),
        })
    }

    /// Whether [`Self::decodes_all`] decides `model`'s last FFN by its enclosure (an interpolation over
    /// ascending thresholds), rather than by the faithful forward.
    pub fn certifies(&self, model: &RoundedModel) -> bool {
        model.certified_last_ffn().is_some()
    }

    /// Per token of each of `sequences`, whether the plain faithful forward's output decodes to its target
    /// ([`boltz_core::decodes`]): the independent check of [`Self::decodes_all`]'s verdicts.
    ///
    /// Errors: those of [`Backend::forward`]; [`Error::InvalidParameter`] for a sequence index out of range.
    pub fn faithful_decodes(
        &self,
        model: &RoundedModel,
        inputs: &Batch<BigReal>,
        targets: &Batch<BigReal>,
        sequences: &[usize],
    ) -> Result<Vec<Vec<bool>>> {
        self.check_decoding(model, inputs, targets)?;
        if let Some(b) = sequences.iter().find(|b| **b >= inputs.batch()) {
            return Err(Error::InvalidParameter {
                name: "sequences".into(),
                reason: format!("sequence {b} of a batch of {}", inputs.batch()),
            });
        }
        let d = model.stack.dim();
        let cache = ExpCache::new(self.bits);
        let here = watch::here();
        here.stage(|| format!("faithful forward at {} bits", self.bits), Some(sequences.len()))?;
        self.pool.install(|| {
            sequences
                .par_iter()
                .map(|&b| {
                    here.checkpoint()?;
                    let out = model.forward_sequence(inputs.sequence(b), &cache)?;
                    here.done(1)?;
                    Ok(out.chunks(d).zip(targets.sequence(b).chunks(d)).map(|(o, t)| boltz_core::decodes(o, t)).collect())
                })
                .collect()
        })
    }
}

impl Backend<BigReal> for BigFloatBackend {
    type Prepared = RoundedModel;

    fn name(&self) -> &'static str {
        "bigfloat"
    }

    fn device_info(&self) -> DeviceInfo {
        let mut details = std::collections::BTreeMap::new();
        details.insert("precision_bits".into(), self.bits.to_string());
        details.insert("library".into(), crate::library());
        details.insert("arithmetic".into(), "every + − × ÷ exp correctly rounded to bits (ties to even); cached exp per score".into());
        details.insert("ffn_evaluation".into(), format!("{:?}", self.ffn_evaluation));
        DeviceInfo { backend: "bigfloat".into(), device: format!("host ({} threads)", self.threads), threads: self.threads, details }
    }

    fn prepare(&self, model: &Model<BigReal>) -> Result<RoundedModel> {
        let bits = self.bits;
        let round = |v: &[BigReal]| v.iter().map(|x| x.with_bits(bits)).collect::<Vec<_>>();
        let stack = model.stack().map(
            |_, h| PreparedHead {
                w_q: PreparedWeight::new(&h.w_q, bits),
                w_k: PreparedWeight::new(&h.w_k, bits),
                w_v: PreparedWeight::new(&h.w_v, bits),
                w_o: PreparedWeight::new(&h.w_o, bits),
                b_q: h.b_q.as_deref().map(round),
            },
            |_, f| PreparedFfn::new(f, bits, self.ffn_evaluation),
        );
        Ok(RoundedModel { bits, stack })
    }

    fn forward(&self, model: &RoundedModel, input: &Batch<BigReal>) -> Result<Batch<BigReal>> {
        check_input(model.stack.dim(), input)?;
        self.check_prepared(model)?;
        let cache = ExpCache::new(self.bits);
        let here = watch::here();
        here.stage(|| format!("bigfloat forward at {} bits", self.bits), Some(input.batch()))?;
        let outputs: Vec<Result<Vec<BigReal>>> = self.pool.install(|| {
            (0..input.batch())
                .into_par_iter()
                .map(|b| {
                    here.checkpoint()?;
                    let out = model.forward_sequence(input.sequence(b), &cache)?;
                    here.done(1)?;
                    Ok(out)
                })
                .collect()
        });
        let mut data = Vec::with_capacity(input.as_slice().len());
        for o in outputs {
            data.extend(o?);
        }
        Batch::new(input.batch(), input.len(), input.dim(), data)
    }
}
