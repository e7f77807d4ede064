//! Test and benchmark fixtures: seeded random models and batches (the conformance suite's cases and the
//! benchmark workloads). Not a construction: nothing here memorizes.

use crate::model::{Attention, AttentionHead, Block, FeedForward, Model, ModelInfo, Normalizer, Weight};
use crate::rng::SeededRng;
use crate::tensor::{Batch, Matrix};

/// Shape and feature choices of a random model.
#[derive(Clone, Debug)]
pub struct RandomModelSpec {
    /// Token dimension.
    pub dim: usize,
    /// Number of blocks.
    pub blocks: usize,
    /// Heads per attention layer.
    pub heads: usize,
    /// Head size s.
    pub head_size: usize,
    /// FFN hidden width q.
    pub hidden: usize,
    /// Softmax or hardmax in every attention layer.
    pub normalizer: Normalizer,
    /// Causal mask.
    pub causal: bool,
    /// Query biases.
    pub query_bias: bool,
    /// `Some(r)`: attention weights factored with rank r (clamped to 1..=s); `None`: dense.
    pub factor_rank: Option<usize>,
}

impl RandomModelSpec {
    /// A spec of these sizes (token dimension, blocks, heads, head size, FFN width) with softmax attention,
    /// no causal mask, no query biases and dense weights; change the rest with struct update syntax,
    /// `RandomModelSpec { causal: true, ..RandomModelSpec::sized(4, 2, 2, 2, 6) }`.
    pub fn sized(dim: usize, blocks: usize, heads: usize, head_size: usize, hidden: usize) -> Self {
        Self { dim, blocks, heads, head_size, hidden, normalizer: Normalizer::Softmax, causal: false, query_bias: false, factor_rank: None }
    }

    /// This spec with `normalizer` and `factor_rank`, query biases, and a causal mask on even seeds: the
    /// variations the arithmetic tests sweep.
    pub fn varied(self, seed: u64, normalizer: Normalizer, factor_rank: Option<usize>) -> Self {
        Self { normalizer, causal: seed.is_multiple_of(2), query_bias: true, factor_rank, ..self }
    }
}

/// A random model of `spec` and a random batch of `batch` sequences of `n` tokens for it, drawn in that order
/// from one generator seeded with `seed`.
pub fn random_case(seed: u64, spec: &RandomModelSpec, batch: usize, n: usize) -> (Model<f64>, Batch<f64>) {
    let mut rng = SeededRng::new(seed);
    let m = random_model(&mut rng, spec);
    let x = random_batch(&mut rng, batch, n, spec.dim);
    (m, x)
}

fn gaussian_matrix(rng: &mut SeededRng, rows: usize, cols: usize, scale: f64) -> Matrix<f64> {
    Matrix::from_fn(rows, cols, |_, _| scale * rng.normal())
}

fn gaussian_weight(rng: &mut SeededRng, rows: usize, cols: usize, scale: f64, rank: Option<usize>) -> Weight<f64> {
    match rank {
        None => Weight::Dense(gaussian_matrix(rng, rows, cols, scale)),
        Some(r) => {
            let r = r.clamp(1, rows.min(cols).max(1));
            let s = (scale / (r as f64).sqrt()).sqrt();
            Weight::Factored { u: gaussian_matrix(rng, rows, r, s), v: gaussian_matrix(rng, cols, r, s) }
        }
    }
}

/// A random model in f64 with moderate weights (scores of order 1–10, residual growth below ~2× per block).
pub fn random_model(rng: &mut SeededRng, spec: &RandomModelSpec) -> Model<f64> {
    let d = spec.dim;
    let s = spec.head_size;
    let score_scale = 1.5 / (s as f64).sqrt();
    let blocks = (0..spec.blocks)
        .map(|_| {
            let heads = (0..spec.heads)
                .map(|_| AttentionHead {
                    w_q: gaussian_weight(rng, s, d, score_scale, spec.factor_rank),
                    w_k: gaussian_weight(rng, s, d, score_scale, spec.factor_rank),
                    w_v: gaussian_weight(rng, s, d, 0.7 / (d as f64).sqrt(), spec.factor_rank),
                    w_o: gaussian_weight(rng, d, s, 0.7 / (s as f64 * spec.heads as f64).sqrt(), spec.factor_rank),
                    b_q: spec.query_bias.then(|| (0..s).map(|_| 0.5 * rng.normal()).collect()),
                })
                .collect();
            let q = spec.hidden;
            Block {
                attention: Some(Attention { heads, normalizer: spec.normalizer, causal: spec.causal }),
                ffn: (q > 0).then(|| FeedForward {
                    w1: Weight::Dense(gaussian_matrix(rng, q, d, 1.0 / (d as f64).sqrt())),
                    b1: (0..q).map(|_| 0.3 * rng.normal()).collect(),
                    w2: Weight::Dense(gaussian_matrix(rng, d, q, 0.5 / (q as f64).sqrt())),
                    b2: (0..d).map(|_| 0.3 * rng.normal()).collect(),
                }),
            }
        })
        .collect();
    Model::new(d, blocks, ModelInfo::named("random")).expect("invariant: random models are well-formed")
}

/// A random batch with entries uniform in `[-1, 1)`.
pub fn random_batch(rng: &mut SeededRng, batch: usize, n: usize, d: usize) -> Batch<f64> {
    let data = (0..batch * n * d).map(|_| rng.range(-1.0, 1.0)).collect();
    Batch::new(batch, n, d, data).expect("invariant: random batches are well-formed")
}
