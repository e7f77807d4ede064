//! Transformer models as the papers write them: a stack of blocks, each an optional self-attention
//! layer and an optional token-wise feed-forward layer, both with residual connections, no layer norm.
//!
//! With a sequence `Z ∈ R^{d×n}` (tokens as columns; stored as `[n, d]` rows, see [`crate::tensor`]):
//!
//! * `F_SA(Z) = Z + Σ_h W_O^h W_V^h Z σ[(W_K^h Z)ᵀ (W_Q^h Z + b_Q^h 1ᵀ)]` with σ applied column-wise:
//!   for query token `j`, `p_{·j} = σ(k_1·q̃_j, …, k_n·q̃_j)` where `k_i = W_K z_i`, `q̃_j = W_Q z_j + b_Q`,
//!   and the head adds `W_O Σ_i p_{ij} W_V z_i` to token `j`. σ is [`Normalizer::Softmax`] (max-shifted)
//!   or [`Normalizer::Hardmax`] (all keys attaining the maximum score share the weight equally). With a
//!   causal mask, query `j` sees keys `i ≤ j` only. There is no hidden `1/√s` scale: it lives in the weights.
//! * `F_FF(Z) = Z + W_2 ReLU(W_1 Z + b_1 1ᵀ) + b_2 1ᵀ`.
//!
//! Shapes: `W_Q, W_K, W_V ∈ R^{s×d}`, `W_O ∈ R^{d×s}`, `b_Q ∈ R^s`, `W_1 ∈ R^{q×d}`, `b_1 ∈ R^q`,
//! `W_2 ∈ R^{d×q}`, `b_2 ∈ R^d`. Each weight matrix is stored dense or as rank-r factors `U Vᵀ`
//! ([`Weight`]), so parameter counts can be reported both ways ([`Model::param_count`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::real::Real;
pub use crate::skeleton::{Attention, Block, Normalizer, Site, Stack};
use crate::tensor::Matrix;

/// A weight matrix, dense or as rank-r factors `W = U Vᵀ` with `U ∈ R^{rows×r}`, `V ∈ R^{cols×r}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Weight<T> {
    /// All `rows × cols` entries.
    Dense(Matrix<T>),
    /// `W = U Vᵀ`.
    Factored {
        /// `rows × r`.
        u: Matrix<T>,
        /// `cols × r`.
        v: Matrix<T>,
    },
}

impl<T: Real> Weight<T> {
    /// A rank-1 weight `u vᵀ` from its two vectors.
    pub fn rank_one(u: Vec<T>, v: Vec<T>) -> Self {
        Self::Factored { u: Matrix::column_vector(u), v: Matrix::column_vector(v) }
    }

    /// `(rows, cols)` of `W`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Self::Dense(m) => m.shape(),
            Self::Factored { u, v } => (u.rows(), v.rows()),
        }
    }

    /// The factor rank `r` of a factored weight; `None` for a dense one.
    pub fn factor_rank(&self) -> Option<usize> {
        match self {
            Self::Dense(_) => None,
            Self::Factored { u, .. } => Some(u.cols()),
        }
    }

    /// `W` as a dense matrix (`U Vᵀ` multiplied out for factored weights).
    pub fn to_dense(&self) -> Matrix<T> {
        match self {
            Self::Dense(m) => m.clone(),
            Self::Factored { u, v } => u.mul_transposed(v),
        }
    }

    /// Parameters if stored dense: `rows · cols`.
    pub fn dense_params(&self) -> u64 {
        let (r, c) = self.shape();
        (r * c) as u64
    }

    /// Parameters as stored: `rows · cols` dense, `r (rows + cols)` factored.
    pub fn stored_params(&self) -> u64 {
        match self {
            Self::Dense(m) => (m.rows() * m.cols()) as u64,
            Self::Factored { u, v } => (u.rows() * u.cols() + v.rows() * v.cols()) as u64,
        }
    }

    /// Element-wise conversion (see [`Matrix::convert`]).
    pub fn convert<U: Real>(&self) -> Weight<U> {
        match self {
            Self::Dense(m) => Weight::Dense(m.convert()),
            Self::Factored { u, v } => Weight::Factored { u: u.convert(), v: v.convert() },
        }
    }

    /// Checks the shape and finiteness; `name` (the tensor's file-format name) is only built for an error.
    fn validate(&self, name: impl Fn() -> String, rows: usize, cols: usize) -> Result<()> {
        let found = self.shape();
        if found != (rows, cols) {
            return Err(Error::shape(name(), format!("[{rows}, {cols}]"), format!("[{}, {}]", found.0, found.1)));
        }
        match self {
            Self::Dense(m) => check_finite(name, m.as_slice()),
            Self::Factored { u, v } => {
                if u.cols() != v.cols() || u.cols() == 0 {
                    let name = name();
                    return Err(Error::shape(
                        format!("{name}.u / {name}.v"),
                        "equal factor rank r ≥ 1",
                        format!("r = {} and {}", u.cols(), v.cols()),
                    ));
                }
                check_finite(|| format!("{}.u", name()), u.as_slice())?;
                check_finite(|| format!("{}.v", name()), v.as_slice())
            }
        }
    }
}

/// A head's shapes (`W_Q, W_K, W_V ∈ R^{s×d}`, `W_O ∈ R^{d×s}`, `b_Q ∈ R^s`) and finiteness.
fn check_head<T: Real>(site: Site, head: &AttentionHead<T>, dim: usize) -> Result<()> {
    let s = head.head_size();
    if s == 0 {
        return Err(Error::shape(site.tensor("w_q"), "head size s ≥ 1", "s = 0"));
    }
    head.w_q.validate(|| site.tensor("w_q"), s, dim)?;
    head.w_k.validate(|| site.tensor("w_k"), s, dim)?;
    head.w_v.validate(|| site.tensor("w_v"), s, dim)?;
    head.w_o.validate(|| site.tensor("w_o"), dim, s)?;
    if let Some(bq) = &head.b_q {
        if bq.len() != s {
            return Err(Error::shape(site.tensor("b_q"), format!("[{s}]"), format!("[{}]", bq.len())));
        }
        check_finite(|| site.tensor("b_q"), bq)?;
    }
    Ok(())
}

/// A feed-forward layer's shapes (`W_1 ∈ R^{q×d}`, `b_1 ∈ R^q`, `W_2 ∈ R^{d×q}`, `b_2 ∈ R^d`) and finiteness.
fn check_ffn<T: Real>(site: Site, ffn: &FeedForward<T>, dim: usize) -> Result<()> {
    let q = ffn.hidden();
    if q == 0 {
        return Err(Error::shape(site.tensor("w1"), "hidden width q ≥ 1", "q = 0"));
    }
    ffn.w1.validate(|| site.tensor("w1"), q, dim)?;
    ffn.w2.validate(|| site.tensor("w2"), dim, q)?;
    for (name, bias, len) in [("b1", &ffn.b1, q), ("b2", &ffn.b2, dim)] {
        if bias.len() != len {
            return Err(Error::shape(site.tensor(name), format!("[{len}]"), format!("[{}]", bias.len())));
        }
        check_finite(|| site.tensor(name), bias)?;
    }
    Ok(())
}

/// Refuses NaN/±∞, naming the first offender as `name[i]` (the name is built only then).
fn check_finite<T: Real>(name: impl FnOnce() -> String, values: &[T]) -> Result<()> {
    match values.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(Error::NonFinite { location: format!("{}[{i}]", name()) }),
        None => Ok(()),
    }
}

/// One attention head of head size `s`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionHead<T> {
    /// `W_Q ∈ R^{s×d}`.
    pub w_q: Weight<T>,
    /// `W_K ∈ R^{s×d}`.
    pub w_k: Weight<T>,
    /// `W_V ∈ R^{s×d}`.
    pub w_v: Weight<T>,
    /// `W_O ∈ R^{d×s}`.
    pub w_o: Weight<T>,
    /// Optional query bias `b_Q ∈ R^s` (Yun et al.'s selective-shift heads need it).
    pub b_q: Option<Vec<T>>,
}

impl<T: Real> AttentionHead<T> {
    /// Head size `s` (rows of `W_Q`).
    pub fn head_size(&self) -> usize {
        self.w_q.shape().0
    }

    fn convert<U: Real>(&self) -> AttentionHead<U> {
        AttentionHead {
            w_q: self.w_q.convert(),
            w_k: self.w_k.convert(),
            w_v: self.w_v.convert(),
            w_o: self.w_o.convert(),
            b_q: self.b_q.as_ref().map(|b| b.iter().map(crate::tensor::convert_value).collect()),
        }
    }

    fn weights(&self) -> [(&'static str, &Weight<T>); 4] {
        [("w_q", &self.w_q), ("w_k", &self.w_k), ("w_v", &self.w_v), ("w_o", &self.w_o)]
    }
}

/// A token-wise one-hidden-layer ReLU network with a residual connection.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedForward<T> {
    /// `W_1 ∈ R^{q×d}`.
    pub w1: Weight<T>,
    /// `b_1 ∈ R^q`.
    pub b1: Vec<T>,
    /// `W_2 ∈ R^{d×q}`.
    pub w2: Weight<T>,
    /// `b_2 ∈ R^d`.
    pub b2: Vec<T>,
}

impl<T: Real> FeedForward<T> {
    /// Hidden width `q`.
    pub fn hidden(&self) -> usize {
        self.w1.shape().0
    }
}

/// A block of a [`Model`]: the [`Block`] skeleton over stored heads and feed-forward layers.
pub type ModelBlock<T> = Block<AttentionHead<T>, FeedForward<T>>;

/// The attention layer of a [`Model`]'s block.
pub type ModelAttention<T> = Attention<AttentionHead<T>>;

/// What built a model and with which parameters (stored in the file metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Construction name, e.g. `"one-layer"`, `"yun"`, `"random"`.
    pub construction: String,
    /// Construction parameters as text (exact values for reproducibility).
    pub params: BTreeMap<String, String>,
}

impl ModelInfo {
    /// Info with a construction name and no parameters.
    pub fn named(construction: impl Into<String>) -> Self {
        Self { construction: construction.into(), params: BTreeMap::new() }
    }

    /// Adds a parameter.
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.params.insert(key.into(), value.to_string());
        self
    }
}

/// Parameter counts of a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Every weight matrix counted as `rows · cols`, plus biases.
    pub dense: u64,
    /// Weights counted as stored (`r (rows + cols)` for factored ones), plus biases.
    pub factored: u64,
}

/// Layer counts of a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCount {
    /// Blocks.
    pub blocks: usize,
    /// Self-attention layers.
    pub attention: usize,
    /// Feed-forward layers.
    pub ffn: usize,
}

/// A validated stack of blocks over tokens of dimension `d`.
///
/// Only [`Model::new`] builds one, and it checks every shape and rejects NaN/inf weights, naming the
/// offending tensor in the file-format spelling (`blocks.{b}.attn.{h}.w_k`, `blocks.{b}.ffn.b1`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Model<T> {
    stack: Stack<AttentionHead<T>, FeedForward<T>>,
    info: ModelInfo,
}

impl<T: Real> Model<T> {
    /// Validates and assembles a model over tokens of dimension `dim`.
    pub fn new(dim: usize, blocks: Vec<ModelBlock<T>>, info: ModelInfo) -> Result<Self> {
        if dim == 0 {
            return Err(Error::ZeroSize { what: "token dimension d" });
        }
        // Block by block in application order (a head before its block's FFN), so that the first
        // offending tensor named is the first the forward would meet.
        for (b, block) in blocks.iter().enumerate() {
            if let Some(attn) = &block.attention {
                if attn.heads.is_empty() {
                    return Err(Error::shape(format!("blocks.{b}.attn"), "at least one head", "none"));
                }
                for (h, head) in attn.heads.iter().enumerate() {
                    check_head(Site::head(b, h), head, dim)?;
                }
            }
            if let Some(ffn) = &block.ffn {
                check_ffn(Site::ffn(b), ffn, dim)?;
            }
        }
        let stack = Stack::new(dim, blocks);
        Ok(Self { stack, info })
    }

    /// Token dimension `d`.
    pub fn dim(&self) -> usize {
        self.stack.dim()
    }
    /// The blocks, in application order.
    pub fn blocks(&self) -> &[ModelBlock<T>] {
        self.stack.blocks()
    }
    /// The skeleton, for a backend's [`Stack::try_map`].
    pub fn stack(&self) -> &Stack<AttentionHead<T>, FeedForward<T>> {
        &self.stack
    }
    /// Construction name and parameters.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }
    /// Replaces the construction info.
    pub fn with_info(mut self, info: ModelInfo) -> Self {
        self.info = info;
        self
    }

    /// Parameter counts, dense and as stored (factored). Biases count in both.
    pub fn param_count(&self) -> ParamCount {
        let mut c = ParamCount::default();
        let mut add = |w: &Weight<T>| {
            c.dense += w.dense_params();
            c.factored += w.stored_params();
        };
        let mut biases = 0u64;
        for (_, head) in self.stack.heads() {
            for (_, w) in head.weights() {
                add(w);
            }
            biases += head.b_q.as_ref().map_or(0, |b| b.len() as u64);
        }
        for (_, ffn) in self.stack.ffns() {
            add(&ffn.w1);
            add(&ffn.w2);
            biases += (ffn.b1.len() + ffn.b2.len()) as u64;
        }
        c.dense += biases;
        c.factored += biases;
        c
    }

    /// Numbers of blocks, attention layers and feed-forward layers.
    pub fn layer_count(&self) -> LayerCount {
        LayerCount {
            blocks: self.blocks().len(),
            attention: self.blocks().iter().filter(|b| b.attention.is_some()).count(),
            ffn: self.stack.ffns().count(),
        }
    }

    /// Element-wise conversion through exact values: lossless into a wider type; into a narrower one,
    /// rounded to nearest, failing if a value leaves the target's range.
    pub fn convert<U: Real>(&self) -> Result<Model<U>> {
        let converted = self.stack.map(
            |_, h| h.convert(),
            |_, f| FeedForward {
                w1: f.w1.convert(),
                b1: f.b1.iter().map(crate::tensor::convert_value).collect(),
                w2: f.w2.convert(),
                b2: f.b2.iter().map(crate::tensor::convert_value).collect(),
            },
        );
        let dim = converted.dim();
        Model::new(dim, converted.into_blocks(), self.info.clone())
    }

    /// Every weight tensor with its file-format name (`blocks.{b}.attn.{h}.w_q`, ...).
    pub fn named_weights(&self) -> Vec<(String, &Weight<T>)> {
        let mut out = Vec::new();
        for (b, block) in self.blocks().iter().enumerate() {
            for (h, head) in block.attention.iter().flat_map(|a| a.heads.iter().enumerate()) {
                out.extend(head.weights().map(|(name, w)| (Site::head(b, h).tensor(name), w)));
            }
            if let Some(ffn) = &block.ffn {
                out.push((Site::ffn(b).tensor("w1"), &ffn.w1));
                out.push((Site::ffn(b).tensor("w2"), &ffn.w2));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(rows: usize, cols: usize, x: f64) -> Weight<f64> {
        Weight::Dense(Matrix::from_fn(rows, cols, |_, _| x))
    }

    fn head(s: usize, d: usize) -> AttentionHead<f64> {
        AttentionHead { w_q: dense(s, d, 1.0), w_k: dense(s, d, 1.0), w_v: dense(s, d, 1.0), w_o: dense(d, s, 1.0), b_q: None }
    }

    fn attn(heads: Vec<AttentionHead<f64>>) -> Option<ModelAttention<f64>> {
        Some(Attention { heads, normalizer: Normalizer::Softmax, causal: false })
    }

    #[test]
    fn shape_errors_name_the_tensor() {
        let mut h = head(2, 3);
        h.w_k = dense(2, 4, 1.0);
        let err = Model::new(3, vec![Block { attention: attn(vec![head(2, 3), h]), ffn: None }], ModelInfo::default());
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("blocks.0.attn.1.w_k") && msg.contains("[2, 3]") && msg.contains("[2, 4]"), "{msg}");

        let mut h = head(2, 3);
        h.b_q = Some(vec![0.0; 3]);
        let msg = Model::new(3, vec![Block { attention: attn(vec![h]), ffn: None }], ModelInfo::default()).unwrap_err().to_string();
        assert!(msg.contains("blocks.0.attn.0.b_q"), "{msg}");

        let ffn = FeedForward { w1: dense(4, 3, 1.0), b1: vec![0.0; 4], w2: dense(3, 4, 1.0), b2: vec![0.0; 2] };
        let msg = Model::new(3, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::default()).unwrap_err().to_string();
        assert!(msg.contains("blocks.0.ffn.b2"), "{msg}");

        assert!(matches!(Model::<f64>::new(0, vec![], ModelInfo::default()), Err(Error::ZeroSize { .. })));
        assert!(matches!(
            Model::new(3, vec![Block { attention: attn(vec![]), ffn: None }], ModelInfo::default()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn non_finite_weights_are_rejected_with_location() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut h = head(1, 2);
            h.w_o = Weight::Factored { u: Matrix::column_vector(vec![1.0, bad]), v: Matrix::column_vector(vec![1.0]) };
            let err = Model::new(2, vec![Block { attention: attn(vec![h]), ffn: None }], ModelInfo::default()).unwrap_err();
            assert!(matches!(&err, Error::NonFinite { location } if location == "blocks.0.attn.0.w_o.u[1]"), "{err}");
        }
    }

    /// With several bad tensors, the one named is the first the forward meets: block 0's FFN before
    /// block 1's head.
    #[test]
    fn the_first_bad_tensor_in_application_order_is_named() {
        let bad_ffn = FeedForward { w1: dense(2, 2, f64::INFINITY), b1: vec![0.0; 2], w2: dense(2, 2, 0.0), b2: vec![0.0; 2] };
        let mut bad_head = head(1, 2);
        bad_head.w_k = dense(1, 2, f64::NAN);
        let blocks =
            vec![Block { attention: attn(vec![head(1, 2)]), ffn: Some(bad_ffn) }, Block { attention: attn(vec![bad_head]), ffn: None }];
        let err = Model::new(2, blocks, ModelInfo::default()).unwrap_err();
        assert!(matches!(&err, Error::NonFinite { location } if location == "blocks.0.ffn.w1[0]"), "{err}");
    }

    #[test]
    fn factor_ranks_must_agree() {
        let mut h = head(2, 3);
        h.w_q = Weight::Factored { u: Matrix::zeros(2, 1), v: Matrix::zeros(3, 2) };
        let err = Model::new(3, vec![Block { attention: attn(vec![h]), ffn: None }], ModelInfo::default()).unwrap_err();
        assert!(err.to_string().contains("blocks.0.attn.0.w_q.u"), "{err}");
    }

    #[test]
    fn param_counts_dense_and_factored() {
        // The paper's rank-1 head: four d-dimensional rank-1 matrices, s = 1: 4(s + d) factored, 4d dense.
        let d = 5;
        let r1 = |n: usize| Weight::rank_one(vec![1.0], vec![0.5; n]);
        let h = AttentionHead { w_q: r1(d), w_k: r1(d), w_v: r1(d), w_o: Weight::rank_one(vec![1.0; d], vec![1.0]), b_q: None };
        let ffn = FeedForward { w1: dense(7, d, 0.0), b1: vec![0.0; 7], w2: dense(d, 7, 0.0), b2: vec![0.0; d] };
        let m = Model::new(d, vec![Block { attention: attn(vec![h]), ffn: Some(ffn) }], ModelInfo::named("t")).unwrap();
        let ffn_params = (7 * d + 7 + d * 7 + d) as u64;
        assert_eq!(m.param_count(), ParamCount { dense: 4 * d as u64 + ffn_params, factored: 4 * (1 + d) as u64 + ffn_params });
        assert_eq!(m.layer_count(), LayerCount { blocks: 1, attention: 1, ffn: 1 });
    }

    #[test]
    fn factored_expands_to_outer_product() {
        let w = Weight::rank_one(vec![1.0, 2.0], vec![3.0, 4.0, 5.0]);
        assert_eq!(w.shape(), (2, 3));
        assert_eq!(w.to_dense().as_slice(), &[3.0, 4.0, 5.0, 6.0, 8.0, 10.0]);
    }
}
