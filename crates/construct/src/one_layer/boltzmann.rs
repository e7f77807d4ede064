//! The Boltzmann operator and Lemma 1 (Kajitsuka & Sato, ICLR 2024, Section 3 and Lemma 1).

use boltz_bigfloat::BigReal;
use boltz_core::Real;
use serde::{Deserialize, Serialize};

/// `boltz(a) = Σ a_i e^{a_i} / Σ e^{a_j}`, evaluated shifted by `m = max a` as
/// `Σ a_i e^{a_i − m} / Σ e^{a_j − m}` so that no exponential overflows. `a` must be non-empty.
///
/// A rank-1 softmax head with `W_K = W_V = vᵀ`, `W_Q = λvᵀ` adds, for query `t`,
/// `W_O · boltz(a)/(λ vᵀt)` with `a_i = λ (vᵀx_i)(vᵀt)`: this is how the paper reads attention.
pub fn boltz<T: Real>(a: &[T]) -> T {
    let mut m = a[0].clone();
    for x in &a[1..] {
        if *x > m {
            m = x.clone();
        }
    }
    let (mut num, mut den) = (T::from_f64(0.0), T::from_f64(0.0));
    for x in a {
        let e = x.sub(&m).exp();
        num = num.add(&x.mul(&e));
        den = den.add(&e);
    }
    num.div(&den)
}

/// `log10` of Lemma 1's separation bound `(ln n)² e^{−2r}` (INFERRED constant, `docs/theory.md` §2.2).
pub fn lemma1_bound_log10(n: usize, r: f64) -> f64 {
    let ln_n = (n as f64).ln();
    2.0 * ln_n.log10() - 2.0 * r / std::f64::consts::LN_10
}

/// The gap Lemma 1 requires between distinct entries: `2 ln n + 3`.
pub fn lemma1_gap(n: usize) -> f64 {
    2.0 * (n as f64).ln() + 3.0
}

/// A measured check of Lemma 1 on a family of vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lemma1Check {
    /// Vector length n.
    pub n: usize,
    /// Bound on the entries, `max |a_i|`.
    pub r: f64,
    /// Smallest gap between distinct entries across the family.
    pub gap: f64,
    /// Pairs of non-permutation vectors compared.
    pub pairs: usize,
    /// `log10` of the bound `(ln n)² e^{−2r}`.
    pub bound_log10: f64,
    /// `log10 min |boltz(a) − boltz(b)|` over the pairs (computed in `bits`-bit arithmetic).
    pub min_difference_log10: f64,
    /// `min_difference_log10 − bound_log10`: how many orders of magnitude the bound holds with (≥ 0 means
    /// it holds).
    pub min_ratio_log10: f64,
    /// Whether `|boltz(a)| ≤ r` held for every vector.
    pub bounded: bool,
    /// Precision used.
    pub bits: u64,
}

/// Checks Lemma 1 on `vectors` (each of length `n ≥ 2`, no duplicate entries inside a vector), computing
/// every `boltz` in `bits`-bit arithmetic. Returns `None` if fewer than two non-permutation vectors exist.
pub fn check_lemma1(vectors: &[Vec<f64>], bits: u64) -> Option<Lemma1Check> {
    let n = vectors.first()?.len();
    let r = vectors.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut all: Vec<f64> = vectors.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    let gap = all.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    let values: Vec<BigReal> =
        vectors.iter().map(|v| boltz(&v.iter().map(|&x| BigReal::from_f64(x).with_bits(bits)).collect::<Vec<_>>())).collect();
    let bounded = values.iter().all(|b| b.abs().to_f64() <= r);
    let sorted: Vec<Vec<u64>> = vectors
        .iter()
        .map(|v| {
            let mut k: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
            k.sort_unstable();
            k
        })
        .collect();
    let mut min_log2 = f64::INFINITY;
    let mut pairs = 0;
    for i in 0..vectors.len() {
        for j in i + 1..vectors.len() {
            if sorted[i] == sorted[j] {
                continue;
            }
            pairs += 1;
            let diff = values[i].sub(&values[j]).abs();
            min_log2 = min_log2.min(if diff.is_zero() { f64::NEG_INFINITY } else { diff.log2_abs() });
        }
    }
    if pairs == 0 {
        return None;
    }
    let bound_log10 = lemma1_bound_log10(n, r);
    let min_difference_log10 = min_log2 * std::f64::consts::LOG10_2;
    Some(Lemma1Check {
        n,
        r,
        gap,
        pairs,
        bound_log10,
        min_difference_log10,
        min_ratio_log10: min_difference_log10 - bound_log10,
        bounded,
        bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::rng::SeededRng;

    #[test]
    fn boltz_is_stable_and_matches_definition() {
        assert_eq!(boltz(&[1234.0f64, 0.0]), 1234.0);
        assert_eq!(boltz(&[-1e6f32, 5.0]), 5.0);
        let a = [0.3f64, -1.2, 2.5, 0.0];
        let direct = a.iter().map(|x| x * x.exp()).sum::<f64>() / a.iter().map(|x| x.exp()).sum::<f64>();
        assert!((boltz(&a) - direct).abs() < 1e-15);
        // max(a) − ln n ≤ boltz(a) ≤ max(a).
        assert!(boltz(&a) <= 2.5 && boltz(&a) >= 2.5 - 4f64.ln());
        let b: BigReal = boltz(&a.iter().map(|&x| BigReal::from_f64(x).with_bits(200)).collect::<Vec<_>>());
        assert!((b.to_f64() - direct).abs() < 1e-15);
    }

    /// Lemma 1 as a property test: random families of vectors with entries bounded by r, gaps > 2 ln n + 3
    /// between distinct entries, no duplicates inside a vector.
    #[test]
    fn lemma1_holds_on_random_families() {
        let mut rng = SeededRng::new(1);
        let mut worst = f64::INFINITY;
        for case in 0..60 {
            let n = 2 + (case % 5);
            let gap = lemma1_gap(n) + rng.range(0.01, 2.0);
            let pool_size = n + 1 + rng.below(4) as usize;
            let offset = rng.range(-3.0, 3.0);
            let pool: Vec<f64> = (0..pool_size).map(|i| offset + gap * (i as f64 - pool_size as f64 / 2.0)).collect();
            let vectors: Vec<Vec<f64>> = (0..8)
                .map(|_| {
                    let mut idx: Vec<usize> = (0..pool_size).collect();
                    rng.shuffle(&mut idx);
                    idx[..n].iter().map(|&i| pool[i]).collect()
                })
                .collect();
            if let Some(check) = check_lemma1(&vectors, 512) {
                assert!(check.bounded, "case {case}: |boltz| > r");
                assert!(check.gap > lemma1_gap(n));
                assert!(check.min_ratio_log10 > 0.0, "case {case}: Lemma 1 violated: {check:?}");
                worst = worst.min(check.min_ratio_log10);
            }
        }
        assert!(worst.is_finite());
    }
}
