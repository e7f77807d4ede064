//! The data families' generators: random separated vocabularies, integer lattice points, and
//! Prouhet–Tarry–Escott pairs; token sets drawn without repeats.

use std::collections::{HashMap, HashSet};

use super::spec::{pte_order, DatasetSpec};
use crate::error::{Error, Result};
use crate::exact::ExactFloat;
use crate::real::Real;
use crate::rng::SeededRng;
use crate::tensor::{Batch, Matrix};

pub(crate) fn generate_vocabulary<T: Real>(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<Matrix<T>> {
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
pub(crate) fn saturating_pow(base: u128, exp: usize) -> u128 {
    let mut r: u128 = 1;
    for _ in 0..exp {
        r = r.saturating_mul(base);
    }
    r
}

/// Fails on `vocab` when the integer `value` does not survive the round trip through `T`.
pub(crate) fn check_exact_integer<T: Real>(value: u64, what: &str) -> Result<()> {
    let v = value as f64;
    if v as u64 != value || T::from_f64(v).to_f64() != v {
        return Err(Error::param("vocab", format!("{what} {value} is not exactly representable in the element type; lower vocab")));
    }
    Ok(())
}

/// `|V|` distinct non-zero points of `{-k..=k}^d` (see [`VocabKind::Grid`]).
pub(crate) fn grid_vocabulary<T: Real>(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<Matrix<T>> {
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
pub(crate) fn pte_sequences<T: Real>(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<(Matrix<T>, Vec<Vec<usize>>)> {
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

pub(crate) fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `C(n, k)`, saturating at `u128::MAX`.
pub(crate) fn binomial(n: usize, k: usize) -> u128 {
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
pub(crate) fn sample_token_sets(spec: &DatasetSpec, rng: &mut SeededRng) -> Result<Vec<Vec<usize>>> {
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
