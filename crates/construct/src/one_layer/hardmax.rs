//! Theorem 1, demonstrated: one hardmax attention layer cannot be a contextual mapping.
//!
//! Hardmax scores are linear in the key token (`x_iᵀ W_Kᵀ (W_Q t + b_Q)`), so the maximiser over a sequence
//! is an extreme point of its tokens along one direction. Take sequences `X_i = (a, m_i, c)` whose middle
//! tokens lie strictly inside the segment `(a, c)`: for every weight choice whose score direction is not
//! orthogonal to `c − a` (all but a measure-zero set), each head of every query selects `a` or `c`, never
//! `m_i` — so the outputs (context ids) of `a` and of `c` are *identical* in all the `X_i`, although the
//! contexts differ. The rank-1 softmax construction of Theorem 2 separates the same contexts.

use boltz_core::rng::SeededRng;
use boltz_core::{Attention, AttentionHead, Backend, Batch, Block, Matrix, Model, ModelInfo, Normalizer, ReferenceBackend, Result, Weight};
use serde::{Deserialize, Serialize};

use crate::one_layer::contextual::{ContextualMapping, ContextualOptions, Policy};

/// What the demonstration found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HardmaxReport {
    /// Token dimension.
    pub dim: usize,
    /// Sequences `(a, m_i, c)` in the family.
    pub family: usize,
    /// Random hardmax layers tried (1–3 heads, rank-1 and full-rank, with and without query bias).
    pub draws: usize,
    /// Draws under which the ids of `a` and `c` were bit-identical across the whole family.
    pub draws_with_collision: usize,
    /// Draws where some id of `a` or `c` differed (only possible on a tie, i.e. a degenerate direction).
    pub draws_separated: usize,
    /// Whether the rank-1 softmax contextual mapping separated every context of the same family.
    pub softmax_separates: bool,
    /// `log10` of the softmax construction's smallest separation on the family (±∞ for a collision or a
    /// single context: written as `null`, read back as NaN).
    #[serde(deserialize_with = "boltz_core::format::nan_if_null")]
    pub softmax_min_gap_log10: f64,
}

/// The largest family the demonstration builds (sequences of 3 tokens; each draw runs all of them).
pub const MAX_FAMILY: usize = 1 << 20;

/// Checks the demonstration's parameters: d ≥ 1, a family of 2 to [`MAX_FAMILY`] sequences (a collision
/// needs two), at least one draw.
pub fn check_params(d: usize, size: usize, draws: usize) -> Result<()> {
    let bad = |name: &str, reason: String| Err(boltz_core::Error::InvalidParameter { name: name.into(), reason });
    if d == 0 || d > 1 << 16 {
        return bad("dim", format!("the token dimension must be between 1 and 65536, got {d}"));
    }
    if !(2..=MAX_FAMILY).contains(&size) {
        return bad("family", format!("the family needs 2 to {MAX_FAMILY} sequences, got {size}"));
    }
    if draws == 0 {
        return bad("draws", "at least one random hardmax layer is needed".into());
    }
    Ok(())
}

/// The family `(a, m_i, c)` in `R^d`, `m_i = a + τ_i (c − a)` with `τ_i ∈ (0, 1)` distinct.
pub fn family(d: usize, size: usize) -> Batch<f64> {
    let a: Vec<f64> = (0..d).map(|i| if i == 0 { 1.0 } else { 0.25 * i as f64 }).collect();
    let c: Vec<f64> = (0..d).map(|i| if i == 0 { 2.0 } else { -0.5 * i as f64 }).collect();
    let mut data = Vec::with_capacity(size * 3 * d);
    for i in 0..size {
        let tau = (i + 1) as f64 / (size + 1) as f64;
        data.extend(&a);
        data.extend(a.iter().zip(&c).map(|(x, y)| x + tau * (y - x)));
        data.extend(&c);
    }
    Batch::new(size, 3, d, data).expect("invariant: finite family")
}

fn random_layer(rng: &mut SeededRng, d: usize) -> Model<f64> {
    let heads = 1 + rng.below(3) as usize;
    let rank_one = rng.below(2) == 0;
    let s = if rank_one { 1 } else { d };
    let w = |rng: &mut SeededRng, rows: usize, cols: usize| -> Weight<f64> {
        if rank_one {
            Weight::rank_one((0..rows).map(|_| rng.normal()).collect(), (0..cols).map(|_| rng.normal()).collect())
        } else {
            Weight::Dense(Matrix::from_fn(rows, cols, |_, _| rng.normal()))
        }
    };
    let heads = (0..heads)
        .map(|_| {
            let bias = rng.below(2) == 0;
            AttentionHead {
                w_q: w(rng, s, d),
                w_k: w(rng, s, d),
                w_v: w(rng, s, d),
                w_o: w(rng, d, s),
                b_q: bias.then(|| (0..s).map(|_| rng.normal()).collect()),
            }
        })
        .collect();
    let block = Block { attention: Some(Attention { heads, normalizer: Normalizer::Hardmax, causal: false }), ffn: None };
    Model::new(d, vec![block], ModelInfo::named("random-hardmax")).expect("invariant: well-formed")
}

/// Runs the demonstration: `draws` random one-layer hardmax attentions on a family of `size` sequences in
/// `R^d`, and the Measured softmax construction on the same family.
///
/// Fails with [`boltz_core::Error::InvalidParameter`] (see [`check_params`]) instead of panicking on bad sizes.
pub fn demonstrate(d: usize, size: usize, draws: usize, seed: u64) -> Result<HardmaxReport> {
    check_params(d, size, draws)?;
    let x = family(d, size);
    let mut rng = SeededRng::new(seed);
    let mut collisions = 0;
    for _ in 0..draws {
        let model = random_layer(&mut rng, d);
        let y = ReferenceBackend.run(&model, &x)?;
        let same = (1..size).all(|i| y.token(i, 0) == y.token(0, 0) && y.token(i, 2) == y.token(0, 2));
        collisions += usize::from(same);
    }
    let cm = ContextualMapping::build(&x, &ContextualOptions { policy: Policy::Measured, candidates: 200, seed, ..Default::default() })?;
    Ok(HardmaxReport {
        dim: d,
        family: size,
        draws,
        draws_with_collision: collisions,
        draws_separated: draws - collisions,
        softmax_separates: cm.report.separation_bigfloat.collisions == 0,
        softmax_min_gap_log10: cm.report.separation_bigfloat.min_gap_log10,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardmax_collides_where_softmax_separates() {
        assert!(demonstrate(0, 4, 10, 0).is_err_and(|e| e.to_string().contains("dim")));
        assert!(demonstrate(2, 1, 10, 0).is_err_and(|e| e.to_string().contains("family")));
        assert!(demonstrate(2, 4, 0, 0).is_err_and(|e| e.to_string().contains("draws")));
        for d in [1, 2, 5] {
            let rep = demonstrate(d, 4, 200, d as u64).unwrap();
            assert_eq!(rep.draws_with_collision, rep.draws, "{rep:?}");
            assert!(rep.softmax_separates, "{rep:?}");
            assert!(rep.softmax_min_gap_log10.is_finite());
        }
    }
}
