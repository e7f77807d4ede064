//! What a dataset is and what a model does on it: the measured separation and requirements
//! ([`DataReport`]), and the decoding of outputs into labels ([`Memorization`], [`decodes`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::families::{dist2, Vocabulary};
use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::Batch;

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
pub(crate) fn targets_agree<T: Real>(ids: &[usize], targets: &Batch<T>, a: usize, b: usize, n: usize) -> bool {
    (0..n).all(|k| {
        let id = ids[a * n + k];
        match (0..n).find(|&l| ids[b * n + l] == id) {
            Some(l) => targets.token(a, k) == targets.token(b, l),
            None => false,
        }
    })
}
