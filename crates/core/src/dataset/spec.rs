//! What [`Dataset::generate`](super::Dataset::generate)(super::Dataset::generate) draws: the data family ([`VocabKind`]) and the
//! parameters ([`DatasetSpec`]), validated before anything is drawn.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

crate::named_enum! {
/// Which family of data [`Dataset::generate`](super::Dataset::generate) draws (see the module docs).
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

/// Parameters of [`Dataset::generate`](super::Dataset::generate).
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
