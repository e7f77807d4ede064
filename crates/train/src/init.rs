//! A model of a given shape with seeded random weights.

use crate::Scalar;
use boltz_core::rng::SeededRng;
use boltz_core::{Attention, AttentionHead, Block, Error, FeedForward, Matrix, Model, ModelInfo, Normalizer, Result, Weight};
use serde::{Deserialize, Serialize};

/// The shape of a model to train.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Token dimension d (the residual width).
    pub dim: usize,
    /// Blocks (each attention + FFN).
    pub blocks: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Head size s.
    pub head_size: usize,
    /// `Some(r)`: every attention weight stored as rank-r factors `U Vᵀ`; `None`: dense.
    pub rank: Option<usize>,
    /// FFN hidden width q.
    pub ffn_width: usize,
}

/// A model of `shape` with weights uniform in `±√(3/fan_in)` (variance 1/fan_in) and zero biases, from the
/// ChaCha stream of `seed`.
pub fn init_model<T: Scalar>(shape: &ModelShape, seed: u64) -> Result<Model<T>> {
    for (name, v) in [
        ("dim", shape.dim),
        ("blocks", shape.blocks),
        ("heads", shape.heads),
        ("head_size", shape.head_size),
        ("ffn_width", shape.ffn_width),
    ] {
        if v == 0 {
            return Err(Error::InvalidParameter { name: name.into(), reason: "must be at least 1".into() });
        }
    }
    if shape.rank == Some(0) {
        return Err(Error::InvalidParameter { name: "rank".into(), reason: "must be at least 1 (or dense)".into() });
    }
    let mut rng = SeededRng::new(seed);
    let (d, s) = (shape.dim, shape.head_size);
    let mut blocks = Vec::with_capacity(shape.blocks);
    for _ in 0..shape.blocks {
        let mut heads = Vec::with_capacity(shape.heads);
        for _ in 0..shape.heads {
            let mut w = |rows: usize, cols: usize| weight(&mut rng, shape.rank, rows, cols);
            heads.push(AttentionHead { w_q: w(s, d), w_k: w(s, d), w_v: w(s, d), w_o: w(d, s), b_q: None });
        }
        let ffn = FeedForward {
            w1: Weight::Dense(uniform(&mut rng, shape.ffn_width, d, d)),
            b1: vec![T::lit(0.0); shape.ffn_width],
            w2: Weight::Dense(uniform(&mut rng, d, shape.ffn_width, shape.ffn_width)),
            b2: vec![T::lit(0.0); d],
        };
        blocks.push(Block { attention: Some(Attention { heads, normalizer: Normalizer::Softmax, causal: false }), ffn: Some(ffn) });
    }
    let info = ModelInfo::named("trained").with("seed", seed).with("shape", shape_text(shape));
    Model::new(d, blocks, info)
}

/// A `rows × cols` matrix uniform in `±√(3/fan_in)`.
pub(crate) fn uniform<T: Scalar>(rng: &mut SeededRng, rows: usize, cols: usize, fan_in: usize) -> Matrix<T> {
    let a = (3.0 / fan_in as f64).sqrt();
    Matrix::from_fn(rows, cols, |_, _| T::lit((2.0 * rng.uniform() - 1.0) * a))
}

/// An attention weight: dense, or rank-r factors `U Vᵀ` whose product has variance 1/cols per entry
/// (`U` ~ 1/r, `V` ~ 1/cols).
pub(crate) fn weight<T: Scalar>(rng: &mut SeededRng, rank: Option<usize>, rows: usize, cols: usize) -> Weight<T> {
    match rank {
        None => Weight::Dense(uniform(rng, rows, cols, cols)),
        Some(r) => Weight::Factored { u: uniform(rng, rows, r, r), v: uniform(rng, cols, r, cols) },
    }
}

pub(crate) fn shape_text(shape: &ModelShape) -> String {
    format!(
        "d={},blocks={},heads={},head_size={},rank={},ffn_width={}",
        shape.dim,
        shape.blocks,
        shape.heads,
        shape.head_size,
        shape.rank.map_or("dense".to_string(), |r| r.to_string()),
        shape.ffn_width
    )
}

// ---------------------------------------------------------------------------------------------------
// Linear maps and their backward
