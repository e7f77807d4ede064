//! Seeded generators and validators for *tokenwise (r_min, r_max, ε)-separated* data
//! (Kajitsuka & Sato, ICLR 2024, Definition 1), and for adversarial families of it.
//!
//! A vocabulary `V` of `|V|` tokens in `R^d` has norms in `[r_min, r_max]` and pairwise distances
//! `> ε`. Each of the `N` sequences holds `n` *distinct* tokens of `V` (no repeats inside a sequence, as
//! Theorem 2 assumes), and no two sequences are permutations of each other. Targets `Y ∈ R^{d×n}` carry an
//! integer class label in one output coordinate and 0 elsewhere; they are consistent under permutation
//! because every context occurs once. The same seed gives the same bytes on every machine (see
//! [`crate::rng`]).
//!
//! # Data families ([`VocabKind`])
//!
//! * [`VocabKind::Random`] (the default): tokens at random directions and radii. This is *generic* data:
//!   two different token sets have equal token sums with probability 0, so plain mean pooling (attention
//!   with scale λ = 0, i.e. averaging) already gives every context its own id, and the softmax's λ > 0 is
//!   never tested.
//! * [`VocabKind::Grid`]: tokens are distinct non-zero points of the integer lattice `{-k..=k}^d`. Integer
//!   coordinates make equal token sums of different sequences that share a token common, so mean pooling
//!   collides and only λ > 0 separates those contexts.
//! * [`VocabKind::Pte`] (`d = 1`): sequences come in pairs whose token multisets solve the
//!   Prouhet–Tarry–Escott problem (equal power sums of degrees `1..m−1`), the worst case for small λ:
//!   the softmax separates such contexts only at a high order of λ (see [`VocabKind::Pte`]).
//!
//! Grid and PTE tokens are fixed integers: the spec's `r_min`, `r_max` and `eps` are ignored (and not
//! validated) for them; [`DataReport::analyze`] measures the values the data actually has.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exact::ExactFloat;
use crate::real::Real;
use crate::rng::SeededRng;
use crate::tensor::{Batch, Matrix};

crate::named_enum! {
/// Which family of data [`Dataset::generate`] draws (see the module docs).
///
/// Parses from and prints as `"random"`, `"grid"`, `"pte"` (serde and [`FromStr`](std::str::FromStr)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VocabKind: "vocabulary kind" {
    /// Generic tokenwise-separated data: `|V|` tokens with random directions, norms in `[r_min, r_max]`
    /// and pairwise distances `> ε`; each sequence a random set of `n` distinct tokens. Equal token sums of
    /// different sequences have probability 0, so mean pooling (λ = 0) already separates every context.
    #[default]
    Random = "random",
    /// `|V|` distinct non-zero integer lattice points of `{-k..=k}^d`, `k` the smallest integer with at
    /// least `|V|` non-zero points (a seeded random choice of `|V|` of them); sequences are drawn as for
    /// [`Random`](Self::Random) (random sets of `n` distinct tokens). Integer coordinates make equal token
    /// sums common between sequences that share a token, so mean pooling gives different contexts the same
    /// id: this is where the softmax's λ > 0 is needed. `r_min`, `r_max`, `eps` are ignored.
    Grid = "grid",
    /// Prouhet–Tarry–Escott pairs, `d = 1` only. Let `m ≥ 2` be the largest with `h = 2^{m−1} ≤ n − 1`
    /// (so `n ≥ 3`), and split `0..2^m` by the parity of the binary digit sum (Prouhet–Thue–Morse) into
    /// halves `A ∋ 0` and `B` of size `h`, which have equal power sums `Σ a^j = Σ b^j` for `j = 1..m−1`
    /// (e.g. `m = 3`: `{0,3,5,6}` and `{1,2,4,7}`). Tokens are integers of `1..=|V|`; sequences `2i` and
    /// `2i+1` are a pair `(X, X′)` drawn with the seed: an offset `c ∈ 1..=|V|−2^m+1`, and `n − h` shared
    /// tokens from `1..=|V|` outside the block `c..c+2^m`; `X = shared ∪ (c + A)`, `X′ = shared ∪ (c + B)`
    /// (each in random order; if N is odd the last sequence is an `X` without its `X′`). This needs
    /// `|V| ≥ n + h`. All sequences are distinct as sets; labels are random per position, as for
    /// [`Random`](Self::Random), so the contexts of a pair carry different labels with probability
    /// `1 − 1/classes`.
    ///
    /// Consequence: for every shared token `t`, the contexts `(t, X)` and `(t, X′)` have equal sums of all
    /// powers `1..m−1`. Mean pooling collides (equal sums, equal n). For a softmax with scale λ (score
    /// `λ·t·x`), the normaliser `Σ_x e^{λtx}` of the two agrees in every Taylor coefficient below `λ^m`, and the
    /// weighted mean `Σ_x x e^{λtx} / Σ_x e^{λtx}` in every coefficient below `λ^{m−1}`: the contexts are
    /// separated only at high order in λ, with differences that shrink like a power of λ as λ → 0.
    /// `r_min`, `r_max`, `eps` are ignored.
    Pte = "pte",
}
}

impl VocabKind {
    /// Whether this is the default [`VocabKind::Random`] (then the spec's JSON omits the field, so specs
    /// serialize exactly as before the field existed).
    pub fn is_random(&self) -> bool {
        *self == VocabKind::Random
    }
}

/// The PTE order for sequence length `n`: the largest `m ≥ 2` with `2^{m−1} ≤ n − 1`, or `None` when
/// `n < 3` (see [`VocabKind::Pte`]). Each PTE pair shares `n − 2^{m−1}` tokens and has equal power sums of
/// degrees `1..m−1`.
pub fn pte_order(length: usize) -> Option<u32> {
    if length < 3 {
        return None;
    }
    Some((length - 1).ilog2() + 1)
}

/// Parameters of [`Dataset::generate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// Number of sequences N.
    pub sequences: usize,
    /// Sequence length n.
    pub length: usize,
    /// Token dimension d.
    pub dim: usize,
    /// Vocabulary size |V| (≥ n).
    pub vocab: usize,
    /// Smallest token norm.
    pub r_min: f64,
    /// Largest token norm.
    pub r_max: f64,
    /// Minimum distance between distinct tokens.
    pub eps: f64,
    /// Labels are drawn uniformly from `0..classes`.
    pub classes: u32,
    /// Output coordinate that carries the label.
    pub label_coord: usize,
    /// Seed of the ChaCha8 stream.
    pub seed: u64,
    /// Data family (default [`VocabKind::Random`]; omitted from JSON when default, and old JSON without
    /// it parses as `Random`).
    #[serde(default, skip_serializing_if = "VocabKind::is_random")]
    pub vocab_kind: VocabKind,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        Self {
            sequences: 16,
            length: 4,
            dim: 4,
            vocab: 16,
            r_min: 1.0,
            r_max: 2.0,
            eps: 0.3,
            classes: 2,
            label_coord: 0,
            seed: 0,
            vocab_kind: VocabKind::Random,
        }
    }
}

impl DatasetSpec {
    /// Checks ranges, naming the offending field. `r_min`, `r_max` and `eps` are checked only for
    /// [`VocabKind::Random`] (the other kinds ignore them); [`VocabKind::Pte`] also needs `dim = 1`,
    /// `length ≥ 3` and `vocab ≥ n + 2^{m−1}` (see [`pte_order`]).
    pub fn validate(&self) -> Result<()> {
        let p = |name: &str, reason: String| Err(Error::param(name, reason));
        if self.sequences == 0 {
            return p("sequences", "N must be at least 1".into());
        }
        if self.length == 0 {
            return p("length", "n must be at least 1".into());
        }
        if self.dim == 0 {
            return p("dim", "d must be at least 1".into());
        }
        // Sizes are products; refuse those that overflow instead of panicking in an allocation.
        let elements = self.sequences.checked_mul(self.length).and_then(|t| t.checked_mul(self.dim));
        if elements.is_none_or(|e| e.checked_mul(std::mem::size_of::<f64>()).is_none_or(|b| b > isize::MAX as usize)) {
            return p("sequences", format!("N·n·d = {}·{}·{} values do not fit in memory", self.sequences, self.length, self.dim));
        }
        if self.vocab.checked_mul(self.dim).is_none_or(|e| e > isize::MAX as usize / 8) {
            return p("vocab", format!("|V|·d = {}·{} values do not fit in memory", self.vocab, self.dim));
        }
        if self.vocab_kind == VocabKind::Pte {
            if self.dim != 1 {
                return p("dim", format!("vocab_kind = pte needs d = 1, got d = {}", self.dim));
            }
            let Some(m) = pte_order(self.length) else {
                return p(
                    "length",
                    format!("vocab_kind = pte needs n ≥ 3 (a PTE split of size 2 plus a shared token), got n = {}", self.length),
                );
            };
            let h = 1usize << (m - 1);
            if self.vocab < self.length + h {
                return p(
                    "vocab",
                    format!(
                        "vocab_kind = pte with n = {n} uses a block of 2^{m} = {b} values plus {s} shared tokens: \
                         |V| must be at least n + 2^{m1} = {need}, got {v}",
                        n = self.length,
                        b = 2 * h,
                        s = self.length - h,
                        m1 = m - 1,
                        need = self.length + h,
                        v = self.vocab
                    ),
                );
            }
        }
        if self.vocab < self.length {
            return p("vocab", format!("|V| = {} < n = {}: sequences cannot avoid repeated tokens", self.vocab, self.length));
        }
        if self.vocab_kind == VocabKind::Random {
            if !(self.r_min.is_finite() && self.r_min > 0.0) {
                return p("r_min", format!("must be positive and finite, got {}", self.r_min));
            }
            if !(self.r_max.is_finite() && self.r_max >= self.r_min) {
                return p("r_max", format!("must be finite and ≥ r_min = {}, got {}", self.r_min, self.r_max));
            }
            if !(self.eps.is_finite() && self.eps > 0.0) {
                return p("eps", format!("must be positive and finite, got {}", self.eps));
            }
        }
        if self.classes == 0 {
            return p("classes", "at least one class is needed".into());
        }
        if self.label_coord >= self.dim {
            return p("label_coord", format!("{} is not a coordinate of d = {}", self.label_coord, self.dim));
        }
        Ok(())
    }
}

/// Inputs `[N, n, d]` and targets `[N, n, d]`, with the spec that generated them (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T> {
    /// Input sequences.
    pub inputs: Batch<T>,
    /// Target sequences, same shape.
    pub targets: Batch<T>,
    /// Generator parameters, when generated.
    pub spec: Option<DatasetSpec>,
}

impl<T: Real> Dataset<T> {
    /// Pairs inputs with targets of the same shape.
    pub fn new(inputs: Batch<T>, targets: Batch<T>, spec: Option<DatasetSpec>) -> Result<Self> {
        if inputs.shape() != targets.shape() {
            return Err(Error::shape("targets", format!("{:?} (the inputs' shape)", inputs.shape()), format!("{:?}", targets.shape())));
        }
        Ok(Self { inputs, targets, spec })
    }

    /// Generates a dataset of the family `spec.vocab_kind` (see the module docs and [`VocabKind`]).
    /// Deterministic in `spec.seed`; [`VocabKind::Random`] gives the same values as before the other
    /// families existed.
    ///
    /// Fails with [`Error::InvalidParameter`] on bad ranges (naming the field) and [`Error::Infeasible`]
    /// when the vocabulary cannot be placed (ε too large for the shell of radii in `R^d`), holds fewer than
    /// N distinct n-token sets, or (PTE) offers too few distinct pairs.
    pub fn generate(spec: &DatasetSpec) -> Result<Self> {
        spec.validate()?;
        let mut rng = SeededRng::new(spec.seed);
        let (vocab, sets) = match spec.vocab_kind {
            VocabKind::Random => {
                let vocab = generate_vocabulary::<T>(spec, &mut rng)?;
                (vocab, sample_token_sets(spec, &mut rng)?)
            }
            VocabKind::Grid => {
                let vocab = grid_vocabulary::<T>(spec, &mut rng)?;
                (vocab, sample_token_sets(spec, &mut rng)?)
            }
            VocabKind::Pte => pte_sequences::<T>(spec, &mut rng)?,
        };
        let (n, d) = (spec.length, spec.dim);
        let mut inputs = Vec::with_capacity(spec.sequences * n * d);
        let mut targets = vec![T::from_f64(0.0); spec.sequences * n * d];
        for (i, set) in sets.iter().enumerate() {
            for (k, &tok) in set.iter().enumerate() {
                inputs.extend_from_slice(vocab.row(tok));
                let label = rng.below(u64::from(spec.classes));
                targets[(i * n + k) * d + spec.label_coord] = T::from_f64(label as f64);
            }
        }
        Self::new(Batch::new(spec.sequences, n, d, inputs)?, Batch::new(spec.sequences, n, d, targets)?, Some(spec.clone()))
    }

    /// Element-wise conversion (lossless into wider types).
    pub fn convert<U: Real>(&self) -> Result<Dataset<U>> {
        Dataset::new(self.inputs.convert()?, self.targets.convert()?, self.spec.clone())
    }

    /// FNV-1a fingerprint of the exact input and target values.
    pub fn fingerprint(&self) -> u64 {
        let text = self.inputs.as_slice().iter().chain(self.targets.as_slice()).map(|x| x.to_exact().to_string() + ",").collect::<String>();
        crate::rng::fnv1a64(text.into_bytes())
    }
}

fn generate_vocabulary<T: Real>(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<Matrix<T>> {
    const ATTEMPTS_PER_TOKEN: usize = 20_000;
    let mut tokens: Vec<Vec<f64>> = Vec::with_capacity(spec.vocab);
    let eps2 = spec.eps * spec.eps;
    while tokens.len() < spec.vocab {
        let mut placed = false;
        for _ in 0..ATTEMPTS_PER_TOKEN {
            let radius = rng.range(spec.r_min, spec.r_max);
            // Round to T first, so the checks below hold for the values actually stored.
            let cand: Vec<f64> = rng.unit_vector(spec.dim).iter().map(|x| T::from_f64(x * radius).to_f64()).collect();
            let norm = cand.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < spec.r_min || norm > spec.r_max {
                continue;
            }
            if tokens.iter().all(|t| dist2(t, &cand) > eps2) {
                tokens.push(cand);
                placed = true;
                break;
            }
        }
        if !placed {
            return Err(Error::Infeasible(format!(
                "placed only {} of |V| = {} tokens with pairwise distance > ε = {} and norms in [{}, {}] in R^{} \
                 after {ATTEMPTS_PER_TOKEN} random tries for the next one; lower vocab or eps, or raise r_max or dim",
                tokens.len(),
                spec.vocab,
                spec.eps,
                spec.r_min,
                spec.r_max,
                spec.dim
            )));
        }
    }
    let data = tokens.concat().into_iter().map(T::from_f64).collect();
    Matrix::new(spec.vocab, spec.dim, data)
}

/// Saturating `base^exp`.
fn saturating_pow(base: u128, exp: usize) -> u128 {
    let mut r: u128 = 1;
    for _ in 0..exp {
        r = r.saturating_mul(base);
    }
    r
}

/// Fails on `vocab` when the integer `value` does not survive the round trip through `T`.
fn check_exact_integer<T: Real>(value: u64, what: &str) -> Result<()> {
    let v = value as f64;
    if v as u64 != value || T::from_f64(v).to_f64() != v {
        return Err(Error::param("vocab", format!("{what} {value} is not exactly representable in the element type; lower vocab")));
    }
    Ok(())
}

/// `|V|` distinct non-zero points of `{-k..=k}^d` (see [`VocabKind::Grid`]).
fn grid_vocabulary<T: Real>(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<Matrix<T>> {
    let (v, d) = (spec.vocab, spec.dim);
    let mut k: u64 = 1;
    while saturating_pow(2 * u128::from(k) + 1, d) - 1 < v as u128 {
        k += 1;
    }
    check_exact_integer::<T>(k, "grid coordinate bound k =")?;
    let side = 2 * k + 1;
    let total = saturating_pow(u128::from(side), d) - 1;
    let points: Vec<Vec<i64>> = if total <= 4 * v as u128 {
        // Dense: enumerate every non-zero point (mixed radix), take a random |V| of them.
        let mut all = Vec::with_capacity(total as usize);
        let mut digits = vec![0u64; d];
        loop {
            if digits.iter().any(|&x| x != k) {
                all.push(digits.iter().map(|&x| x as i64 - k as i64).collect::<Vec<i64>>());
            }
            let Some(i) = (0..d).rev().find(|&i| digits[i] + 1 < side) else { break };
            digits[i] += 1;
            for x in &mut digits[i + 1..] {
                *x = 0;
            }
        }
        rng.shuffle(&mut all);
        all.truncate(v);
        all
    } else {
        // Sparse: rejection; each draw is new and non-zero with probability ≥ 3/4.
        let mut seen = HashSet::with_capacity(v);
        let mut out = Vec::with_capacity(v);
        while out.len() < v {
            let p: Vec<i64> = (0..d).map(|_| rng.below(side) as i64 - k as i64).collect();
            if p.iter().any(|&x| x != 0) && seen.insert(p.clone()) {
                out.push(p);
            }
        }
        out
    };
    let data = points.concat().into_iter().map(|x| T::from_f64(x as f64)).collect();
    Matrix::new(v, d, data)
}

/// PTE pairs (see [`VocabKind::Pte`]): the `|V| × 1` vocabulary `1..=|V|` and, per sequence, indices into
/// it (value `x` is row `x − 1`).
fn pte_sequences<T: Real>(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<(Matrix<T>, Vec<Vec<usize>>)> {
    let (v, n, big_n) = (spec.vocab, spec.length, spec.sequences);
    let m = pte_order(n).ok_or_else(|| Error::param("length", "vocab_kind = pte needs n ≥ 3"))?;
    let h = 1usize << (m - 1);
    let block = 2 * h;
    let shared = n - h;
    check_exact_integer::<T>(v as u64, "largest PTE token")?;
    let (a, b): (Vec<usize>, Vec<usize>) = (0..block).partition(|x| x.count_ones() % 2 == 0);
    let offsets = v - block + 1; // c ∈ 1..=offsets
                                 // Shared tokens are drawn from the `rest` values outside the block c..c+2^m; rest index j ↦ value:
                                 // the c − 1 values below the block, then those above it.
    let rest = v - block;
    let value = |c: usize, j: usize| if j + 1 < c { j + 1 } else { j + 1 + block };
    let pairs = big_n.div_ceil(2);
    let available = (offsets as u128).saturating_mul(binomial(rest, shared));
    if available < pairs as u128 {
        return Err(Error::Infeasible(format!(
            "vocab_kind = pte with |V| = {v}, n = {n} (m = {m}) offers only {offsets} offsets × C({rest}, {shared}) shared sets = \
             {available} pairs, fewer than the {pairs} pairs that N = {big_n} sequences need; raise vocab or lower sequences"
        )));
    }
    let mut seen: HashSet<Vec<usize>> = HashSet::with_capacity(2 * pairs);
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(2 * pairs);
    let mut try_pair = |c: usize, js: &[usize], out: &mut Vec<Vec<usize>>| {
        let common: Vec<usize> = js.iter().map(|&j| value(c, j)).collect();
        let make = |half: &[usize]| {
            let mut s: Vec<usize> = common.iter().copied().chain(half.iter().map(|&x| c + x)).collect();
            s.sort_unstable();
            s
        };
        let (x, x2) = (make(&a), make(&b));
        if !seen.contains(&x) && !seen.contains(&x2) {
            seen.insert(x.clone());
            seen.insert(x2.clone());
            out.push(x);
            out.push(x2);
        }
    };
    if available <= 4 * pairs as u128 {
        // Dense: enumerate every (offset, shared set), in random order.
        let mut all: Vec<(usize, Vec<usize>)> = Vec::with_capacity(available as usize);
        for c in 1..=offsets {
            let mut comb: Vec<usize> = (0..shared).collect();
            loop {
                all.push((c, comb.clone()));
                let Some(i) = (0..shared).rev().find(|&i| comb[i] < rest - shared + i) else { break };
                comb[i] += 1;
                for j in i + 1..shared {
                    comb[j] = comb[j - 1] + 1;
                }
            }
        }
        rng.shuffle(&mut all);
        for (c, js) in &all {
            if out.len() >= 2 * pairs {
                break;
            }
            try_pair(*c, js, &mut out);
        }
    } else {
        // Sparse: rejection with a cap (a draw repeats an earlier set with probability ≤ 1/4 but for
        // rare coincidences between different configurations).
        let cap = 64 * pairs + 1024;
        let mut pool: Vec<usize> = (0..rest).collect();
        let mut tries = 0;
        while out.len() < 2 * pairs && tries < cap {
            tries += 1;
            let c = 1 + rng.below(offsets as u64) as usize;
            for i in 0..shared {
                let j = i + rng.below((rest - i) as u64) as usize;
                pool.swap(i, j);
            }
            let js = pool[..shared].to_vec();
            try_pair(c, &js, &mut out);
        }
    }
    if out.len() < 2 * pairs {
        return Err(Error::Infeasible(format!(
            "vocab_kind = pte with |V| = {v}, n = {n} (m = {m}) gave only {} distinct pairs of sequences, fewer than the {pairs} \
             that N = {big_n} sequences need; raise vocab or lower sequences",
            out.len() / 2
        )));
    }
    out.truncate(big_n);
    for s in &mut out {
        rng.shuffle(s);
        for x in s.iter_mut() {
            *x -= 1;
        }
    }
    let vocab = Matrix::new(v, 1, (1..=v).map(|x| T::from_f64(x as f64)).collect())?;
    Ok((vocab, out))
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `C(n, k)`, saturating at `u128::MAX`.
fn binomial(n: usize, k: usize) -> u128 {
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        c = match c.checked_mul((n - i) as u128) {
            Some(x) => x / (i as u128 + 1),
            None => return u128::MAX,
        };
    }
    c
}

/// N distinct n-subsets of `0..|V|` (as sets), each in random order.
fn sample_token_sets(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<Vec<Vec<usize>>> {
    let (v, n, big_n) = (spec.vocab, spec.length, spec.sequences);
    let available = binomial(v, n);
    if available < big_n as u128 {
        return Err(Error::Infeasible(format!(
            "a vocabulary of |V| = {v} has only C({v}, {n}) = {available} distinct sets of n = {n} tokens, fewer than N = {big_n}"
        )));
    }
    let mut sets: Vec<Vec<usize>> = if available <= 4 * big_n as u128 {
        // Dense regime: enumerate all sets and take a random N of them.
        let mut all = Vec::with_capacity(available as usize);
        let mut comb: Vec<usize> = (0..n).collect();
        loop {
            all.push(comb.clone());
            let Some(i) = (0..n).rev().find(|&i| comb[i] < v - n + i) else { break };
            comb[i] += 1;
            for j in i + 1..n {
                comb[j] = comb[j - 1] + 1;
            }
        }
        rng.shuffle(&mut all);
        all.truncate(big_n);
        all
    } else {
        // Sparse regime: rejection; each draw is new with probability ≥ 3/4.
        let mut seen = HashSet::with_capacity(big_n);
        let mut out = Vec::with_capacity(big_n);
        let mut pool: Vec<usize> = (0..v).collect();
        while out.len() < big_n {
            for i in 0..n {
                let j = i + rng.below((v - i) as u64) as usize;
                pool.swap(i, j);
            }
            let mut key = pool[..n].to_vec();
            key.sort_unstable();
            if seen.insert(key.clone()) {
                out.push(key);
            }
        }
        out
    };
    for s in &mut sets {
        rng.shuffle(s);
    }
    Ok(sets)
}

/// The distinct tokens of a batch and, for every token position, its vocabulary id.
#[derive(Clone, Debug)]
pub struct Vocabulary<T> {
    /// Distinct tokens in order of first appearance, `|V| × d`.
    pub tokens: Matrix<T>,
    /// `ids[b·n + k]` is the vocabulary index of token `k` of sequence `b`.
    pub ids: Vec<usize>,
}

impl<T: Real> Vocabulary<T> {
    /// Identifies equal tokens exactly (bit-for-bit equal values).
    pub fn of(inputs: &Batch<T>) -> Self {
        let d = inputs.dim();
        let mut index: HashMap<Vec<ExactFloat>, usize> = HashMap::new();
        let mut tokens = Vec::new();
        let mut ids = Vec::with_capacity(inputs.batch() * inputs.len());
        for t in inputs.as_slice().chunks(d) {
            let key: Vec<ExactFloat> = t.iter().map(|x| x.to_exact()).collect();
            let next = index.len();
            let id = *index.entry(key).or_insert_with(|| {
                tokens.extend_from_slice(t);
                next
            });
            ids.push(id);
        }
        let count = tokens.len() / d;
        Self { tokens: Matrix::from_fn(count, d, |r, c| tokens[r * d + c].clone()), ids }
    }

    /// Number of distinct tokens |V|.
    pub fn len(&self) -> usize {
        self.tokens.rows()
    }

    /// Whether there are no tokens (never, for a valid batch).
    pub fn is_empty(&self) -> bool {
        self.tokens.rows() == 0
    }
}

/// Measured separation facts of a dataset (Definition 1), and every violation found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataReport {
    /// N.
    pub sequences: usize,
    /// n.
    pub length: usize,
    /// d.
    pub dim: usize,
    /// |V|, distinct tokens.
    pub vocab_size: usize,
    /// Smallest token norm.
    pub r_min: f64,
    /// Largest token norm.
    pub r_max: f64,
    /// Smallest Euclidean distance between distinct tokens (`inf` if |V| < 2).
    pub eps: f64,
    /// Smallest ∞-norm distance between distinct tokens (`inf` if |V| < 2).
    pub eps_inf: f64,
    /// `(sequence, first position, second position)` of repeated tokens inside a sequence.
    pub duplicate_tokens: Vec<(usize, usize, usize)>,
    /// Pairs of sequences that are permutations of each other.
    pub permuted_duplicates: Vec<(usize, usize)>,
    /// Pairs of permuted sequences whose targets are not the same permutation of each other.
    pub inconsistent_targets: Vec<(usize, usize)>,
}

/// What a construction requires of its data; `None` fields are not checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requirements {
    /// No token twice inside one sequence (Theorem 2, Yun et al.'s Lemma 6).
    pub no_duplicate_tokens: bool,
    /// No two sequences that are permutations of each other (or, with targets, consistent targets).
    pub distinct_contexts: bool,
    /// Every norm must be at least this.
    pub r_min: Option<f64>,
    /// Every norm must be at most this.
    pub r_max: Option<f64>,
    /// Distinct tokens must be at least this far apart.
    pub eps: Option<f64>,
}

impl DataReport {
    /// Measures `inputs` (and the consistency of `targets`, when given).
    pub fn analyze<T: Real>(inputs: &Batch<T>, targets: Option<&Batch<T>>) -> Self {
        let (big_n, n, d) = (inputs.batch(), inputs.len(), inputs.dim());
        let vocab = Vocabulary::of(inputs);
        let toks: Vec<Vec<f64>> = (0..vocab.len()).map(|r| vocab.tokens.row(r).iter().map(Real::to_f64).collect()).collect();
        let norms: Vec<f64> = toks.iter().map(|t| t.iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
        let (mut eps, mut eps_inf) = (f64::INFINITY, f64::INFINITY);
        for i in 0..toks.len() {
            for j in i + 1..toks.len() {
                eps = eps.min(dist2(&toks[i], &toks[j]).sqrt());
                eps_inf = eps_inf.min(toks[i].iter().zip(&toks[j]).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max));
            }
        }
        let mut duplicate_tokens = Vec::new();
        let mut by_set: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for b in 0..big_n {
            let ids = &vocab.ids[b * n..(b + 1) * n];
            let mut first_at: HashMap<usize, usize> = HashMap::new();
            for (k, &id) in ids.iter().enumerate() {
                if let Some(&f) = first_at.get(&id) {
                    duplicate_tokens.push((b, f, k));
                } else {
                    first_at.insert(id, k);
                }
            }
            let mut key = ids.to_vec();
            key.sort_unstable();
            by_set.entry(key).or_default().push(b);
        }
        let mut permuted_duplicates = Vec::new();
        let mut inconsistent_targets = Vec::new();
        for group in by_set.values().filter(|g| g.len() > 1) {
            for (x, &a) in group.iter().enumerate() {
                for &b in &group[x + 1..] {
                    permuted_duplicates.push((a, b));
                    if let Some(t) = targets {
                        if !targets_agree(&vocab.ids, t, a, b, n) {
                            inconsistent_targets.push((a, b));
                        }
                    }
                }
            }
        }
        let fold = |f: fn(f64, f64) -> f64, init| norms.iter().copied().fold(init, f);
        Self {
            sequences: big_n,
            length: n,
            dim: d,
            vocab_size: vocab.len(),
            r_min: fold(f64::min, f64::INFINITY),
            r_max: fold(f64::max, 0.0),
            eps,
            eps_inf,
            duplicate_tokens,
            permuted_duplicates,
            inconsistent_targets,
        }
    }

    /// Checks `req`, returning the first violation as an error that says by how much it fails.
    pub fn check(&self, req: &Requirements) -> Result<()> {
        if req.no_duplicate_tokens {
            if let Some(&(sequence, first, second)) = self.duplicate_tokens.first() {
                return Err(Error::DuplicateToken { sequence, first, second });
            }
        }
        if req.distinct_contexts {
            if let Some(&(first, second)) = self.permuted_duplicates.first() {
                return Err(Error::PermutedDuplicate { first, second });
            }
        }
        if let Some(&(first, second)) = self.inconsistent_targets.first() {
            return Err(Error::InconsistentTargets { first, second });
        }
        let fail = |what: &str, required: String, measured: f64| {
            Err(Error::Assumption { what: what.into(), required, measured: format!("{measured:e}") })
        };
        if let Some(r) = req.r_min {
            if self.r_min < r {
                return fail("smallest token norm r_min", format!("≥ {r:e}"), self.r_min);
            }
        }
        if let Some(r) = req.r_max {
            if self.r_max > r {
                return fail("largest token norm r_max", format!("≤ {r:e}"), self.r_max);
            }
        }
        if let Some(e) = req.eps {
            if self.eps < e {
                return fail("distance between distinct tokens ε", format!("≥ {e:e}"), self.eps);
            }
        }
        Ok(())
    }
}

/// How well outputs reproduce targets, token by token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memorization {
    /// Tokens compared (N·n).
    pub tokens: usize,
    /// Tokens whose every coordinate is within 1/2 of the target (they decode to the right integer label).
    pub decoded: usize,
    /// Tokens whose output equals the target exactly.
    pub exact: usize,
    /// `decoded / tokens`.
    pub accuracy: f64,
    /// Largest `|output − target|` over all coordinates (computed in the element type, reported as f64:
    /// 0 when it underflows f64 — see `log10_max_abs_error`).
    pub max_abs_error: f64,
    /// `log10` of that largest error, exact for any magnitude (`-inf`, written as `null`, when every
    /// output equals its target).
    #[serde(default)]
    pub log10_max_abs_error: f64,
}

impl Memorization {
    /// Compares `outputs` with `targets` (same shape).
    pub fn measure<T: Real>(outputs: &Batch<T>, targets: &Batch<T>) -> Result<Self> {
        if outputs.shape() != targets.shape() {
            return Err(Error::shape("outputs", format!("{:?} (the targets' shape)", targets.shape()), format!("{:?}", outputs.shape())));
        }
        let d = outputs.dim();
        let (mut decoded, mut exact) = (0, 0);
        let mut max_err: Option<T> = None;
        for (y, t) in outputs.as_slice().chunks(d).zip(targets.as_slice().chunks(d)) {
            let errs: Vec<T> = y.iter().zip(t).map(|(a, b)| a.sub(b).abs()).collect();
            decoded += usize::from(decodes(y, t));
            exact += usize::from(y == t);
            for e in errs {
                // NaN errors win (a non-finite output must not look accurate).
                if max_err.as_ref().is_none_or(|m| matches!(e.partial_cmp(m), Some(std::cmp::Ordering::Greater) | None)) {
                    max_err = Some(e);
                }
            }
        }
        let tokens = outputs.batch() * outputs.len();
        let (max_abs_error, log10_max_abs_error) = match &max_err {
            None => (0.0, f64::NEG_INFINITY),
            Some(e) if !e.is_finite() => (f64::NAN, f64::NAN),
            Some(e) => (e.to_f64(), e.to_exact().log2_abs() * std::f64::consts::LOG10_2),
        };
        Ok(Self { tokens, decoded, exact, accuracy: decoded as f64 / tokens as f64, max_abs_error, log10_max_abs_error })
    }

    /// Every token decodes to its label.
    pub fn is_perfect(&self) -> bool {
        self.decoded == self.tokens
    }
}

/// Whether one token's output `y` decodes to its target `t`: every coordinate of `y − t`, computed in `T`,
/// is below ½ in absolute value (a NaN never is). The rule [`Memorization::measure`] counts by, and the one
/// a backend must reproduce when it decides decoding without a full forward (the big-float backend's
/// certified search).
pub fn decodes<T: Real>(y: &[T], t: &[T]) -> bool {
    let half = T::from_f64(0.5);
    y.len() == t.len() && y.iter().zip(t).all(|(a, b)| a.sub(b).abs() < half)
}

/// Whether the targets of permuted sequences `a` and `b` follow the same token → target map.
fn targets_agree<T: Real>(ids: &[usize], targets: &Batch<T>, a: usize, b: usize, n: usize) -> bool {
    (0..n).all(|k| {
        let id = ids[a * n + k];
        match (0..n).find(|&l| ids[b * n + l] == id) {
            Some(l) => targets.token(a, k) == targets.token(b, l),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_data_meets_its_spec() {
        let spec = DatasetSpec { sequences: 200, length: 6, dim: 3, vocab: 12, eps: 0.4, classes: 3, seed: 7, ..Default::default() };
        let ds = Dataset::<f64>::generate(&spec).unwrap();
        let rep = DataReport::analyze(&ds.inputs, Some(&ds.targets));
        assert_eq!((rep.sequences, rep.length, rep.dim, rep.vocab_size), (200, 6, 3, 12));
        assert!(rep.r_min >= 1.0 && rep.r_max <= 2.0 && rep.eps > 0.4, "{rep:?}");
        assert!(rep.duplicate_tokens.is_empty() && rep.permuted_duplicates.is_empty() && rep.inconsistent_targets.is_empty());
        let req = Requirements { no_duplicate_tokens: true, distinct_contexts: true, r_min: Some(1.0), r_max: Some(2.0), eps: Some(0.4) };
        rep.check(&req).unwrap();
        // Labels live in coordinate 0 only and are integers in 0..3.
        for (i, y) in ds.targets.as_slice().iter().enumerate() {
            if i % 3 == 0 {
                assert!([0.0, 1.0, 2.0].contains(y));
            } else {
                assert_eq!(*y, 0.0);
            }
        }
    }

    #[test]
    fn same_seed_same_bytes_and_pinned_hash() {
        let spec = DatasetSpec { sequences: 50, length: 5, dim: 4, vocab: 20, seed: 42, ..Default::default() };
        let a = Dataset::<f64>::generate(&spec).unwrap();
        let b = Dataset::<f64>::generate(&spec).unwrap();
        assert_eq!(a, b);
        let bytes = |ds: &Dataset<f64>| -> Vec<u8> {
            ds.inputs.as_slice().iter().chain(ds.targets.as_slice()).flat_map(|x| x.to_le_bytes()).collect()
        };
        // Pinned: a change here means the generator's output changed for existing seeds.
        assert_eq!(crate::rng::fnv1a64(bytes(&a)), 11509926543480932124, "update the pinned hash only on purpose");
        let other = Dataset::<f64>::generate(&DatasetSpec { seed: 43, ..spec }).unwrap();
        assert_ne!(bytes(&a), bytes(&other));
    }

    #[test]
    fn dense_regime_enumerates_all_sets() {
        // C(6, 3) = 20 sets: asking for all of them works, one more is infeasible.
        let spec = DatasetSpec { sequences: 20, length: 3, dim: 2, vocab: 6, eps: 0.2, ..Default::default() };
        let ds = Dataset::<f32>::generate(&spec).unwrap();
        assert!(DataReport::analyze(&ds.inputs, None).permuted_duplicates.is_empty());
        let err = Dataset::<f32>::generate(&DatasetSpec { sequences: 21, ..spec }).unwrap_err();
        assert!(matches!(err, Error::Infeasible(ref m) if m.contains("C(6, 3) = 20")), "{err}");
    }

    #[test]
    fn bad_specs_name_the_field() {
        let base = DatasetSpec::default();
        for (spec, field) in [
            (DatasetSpec { sequences: 0, ..base.clone() }, "sequences"),
            (DatasetSpec { length: 0, ..base.clone() }, "length"),
            (DatasetSpec { vocab: 3, ..base.clone() }, "vocab"),
            (DatasetSpec { r_min: -1.0, ..base.clone() }, "r_min"),
            (DatasetSpec { r_max: 0.5, ..base.clone() }, "r_max"),
            (DatasetSpec { eps: f64::NAN, ..base.clone() }, "eps"),
            (DatasetSpec { label_coord: 4, ..base.clone() }, "label_coord"),
        ] {
            let err = Dataset::<f64>::generate(&spec).unwrap_err();
            assert!(matches!(&err, Error::InvalidParameter { name, .. } if name == field), "{field}: {err}");
        }
        // Too many well-separated tokens for a thin shell in R^1.
        let err = Dataset::<f64>::generate(&DatasetSpec { dim: 1, vocab: 30, eps: 0.5, ..base }).unwrap_err();
        assert!(matches!(err, Error::Infeasible(_)), "{err}");
    }

    #[test]
    fn analysis_finds_violations() {
        // Sequence 0 repeats a token; sequences 1 and 2 are permutations with inconsistent targets.
        let x = |v: f64| vec![v, 0.0];
        let seqs = vec![[x(1.0), x(1.0)].concat(), [x(1.0), x(2.0)].concat(), [x(2.0), x(1.0)].concat()];
        let inputs = Batch::from_sequences(2, 2, &seqs).unwrap();
        let targets = Batch::from_sequences(2, 2, &[vec![0.0; 4], vec![1.0, 0.0, 0.0, 0.0], vec![1.0, 0.0, 0.0, 0.0]]).unwrap();
        let rep = DataReport::analyze(&inputs, Some(&targets));
        assert_eq!(rep.duplicate_tokens, vec![(0, 0, 1)]);
        assert_eq!(rep.permuted_duplicates, vec![(1, 2)]);
        assert_eq!(rep.inconsistent_targets, vec![(1, 2)]);
        assert_eq!((rep.vocab_size, rep.eps, rep.r_min, rep.r_max), (2, 1.0, 1.0, 2.0));
        let err = rep.check(&Requirements { no_duplicate_tokens: true, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::DuplicateToken { sequence: 0, first: 0, second: 1 }));
        let err = rep.check(&Requirements { distinct_contexts: true, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::PermutedDuplicate { first: 1, second: 2 }));
        let err =
            DataReport { inconsistent_targets: vec![], ..rep }.check(&Requirements { eps: Some(1.5), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("ε") && err.to_string().contains("1e0"), "{err}");
    }
}
