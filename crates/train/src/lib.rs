//! # boltz-train
//!
//! Gradient training of the suite's model class — a stack of blocks, each softmax self-attention (heads
//! with dense or rank-r factored `W_Q, W_K, W_V, W_O`, optional query bias, causal or not) and a ReLU FFN,
//! both with residual connections — so that what gradient descent finds can be set beside what the
//! constructions build (issue #19).
//!
//! * [`ModelShape`] and [`init_model`]: a model of a given shape with seeded random weights;
//! * [`loss_and_gradient`]: the mean per-token [`Loss`] — squared error to the targets (the
//!   constructions' decode rule reads the target column) or cross-entropy over label classes — and its
//!   exact gradient by a hand-written backward pass over every stored parameter (factors of a rank-r
//!   weight get their own gradients). Each thread's group of sequences runs together: attention per
//!   sequence, every dense FFN forward and backward as products over the group's tokens in tiles, on the
//!   CPU engine's multiplier (`boltz_cpu::engine::Gemm` by `MatrixMultiply`, with its narrow-output
//!   kernel and its small-product rule);
//! * [`train`] with [`TrainConfig`]: Adam, deterministic for a seed and a thread count (sequences are split
//!   into fixed contiguous groups, one per thread, and the groups' gradients summed in group order), early
//!   stop at 100 % token accuracy, the loss curve in the [`TrainReport`].
//!
//! The forward it differentiates is the reference backend's ([`boltz_core::ReferenceBackend`]): scores
//! `k_i·q_j` without scaling, softmax shifted by the maximum, residual sums. The tests check the gradient
//! against central finite differences of the *reference backend's* loss (independent code) in f64.

use boltz_core::rng::SeededRng;
use boltz_core::{
    Attention, AttentionHead, Block, Dataset, Error, FeedForward, Float, Matrix, Model, ModelInfo, Normalizer, Result, Weight,
};
use boltz_cpu::engine::{Gemm, Operand, SMALL_PRODUCT};
use boltz_cpu::{CpuFloat, MatrixMultiply};
use serde::{Deserialize, Serialize};

/// The element types training runs in (f32 and f64), with the arithmetic it needs.
pub trait Scalar:
    Float
    + CpuFloat
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
{
    /// `x` rounded to this type.
    fn lit(x: f64) -> Self;
    /// Square root.
    fn sqrt_(self) -> Self;
    /// `e^x`.
    fn exp_(self) -> Self;
}

macro_rules! scalar {
    ($t:ty) => {
        impl Scalar for $t {
            fn lit(x: f64) -> Self {
                x as $t
            }
            fn sqrt_(self) -> Self {
                self.sqrt()
            }
            fn exp_(self) -> Self {
                self.exp()
            }
        }
    };
}
scalar!(f32);
scalar!(f64);

/// The per-token loss training minimises, and the decode rule its token accuracy counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Loss {
    /// `‖F(X)_{:,k} − Y_{:,k}‖²` (the constructions' decode rule: a token decodes when every output
    /// coordinate is within ½ of its target).
    #[default]
    SquaredError,
    /// Cross-entropy over label classes: the first `classes` output coordinates are the logits, the class
    /// is the target's `label_coord` coordinate (an integer in `0..classes`); a token decodes when its
    /// label's logit is the unique largest.
    CrossEntropy {
        /// Label classes C (2 ≤ C ≤ d).
        classes: usize,
        /// The target coordinate that holds the label.
        label_coord: usize,
    },
}

impl Loss {
    /// Refuses a loss `data` and a `dim`-dimensional model cannot use, naming the cause.
    pub fn check<T: Scalar>(&self, dim: usize, targets: &boltz_core::Batch<T>) -> Result<()> {
        let Self::CrossEntropy { classes, label_coord } = *self else { return Ok(()) };
        if classes < 2 || classes > dim {
            return Err(Error::InvalidParameter {
                name: "classes".into(),
                reason: format!("cross-entropy reads its {classes} logits from the d = {dim} output coordinates: need 2 ≤ classes ≤ d"),
            });
        }
        if label_coord >= dim {
            return Err(Error::InvalidParameter { name: "label_coord".into(), reason: format!("{label_coord} is not below d = {dim}") });
        }
        let [big_n, n, _] = targets.shape();
        for b in 0..big_n {
            for k in 0..n {
                if class_of(targets.token(b, k)[label_coord].to_f64(), classes).is_none() {
                    return Err(Error::InvalidParameter {
                        name: "targets".into(),
                        reason: format!(
                            "cross-entropy needs an integer label in 0..{classes} at coordinate {label_coord}; sequence {b}, token {k} has {}",
                            targets.token(b, k)[label_coord].to_f64()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether `output` decodes to `target` under this loss's rule.
    pub fn decodes(&self, output: &[f64], target: &[f64]) -> bool {
        match *self {
            Self::SquaredError => output.iter().zip(target).all(|(o, t)| (o - t).abs() < 0.5),
            Self::CrossEntropy { classes, label_coord } => match class_of(target[label_coord], classes) {
                Some(c) => output[..classes].iter().enumerate().all(|(i, &z)| i == c || z < output[c]),
                None => false,
            },
        }
    }

    /// The share of tokens of `outputs` that decode to `targets` (same shapes).
    pub fn accuracy(&self, outputs: &boltz_core::Batch<f64>, targets: &boltz_core::Batch<f64>) -> Result<f64> {
        if outputs.shape() != targets.shape() {
            return Err(Error::ShapeMismatch {
                tensor: "outputs".into(),
                expected: format!("{:?}", targets.shape()),
                found: format!("{:?}", outputs.shape()),
            });
        }
        let [big_n, n, _] = targets.shape();
        let hits = (0..big_n)
            .flat_map(|b| (0..n).map(move |k| (b, k)))
            .filter(|&(b, k)| self.decodes(outputs.token(b, k), targets.token(b, k)))
            .count();
        Ok(hits as f64 / (big_n * n).max(1) as f64)
    }

    /// The loss of one token, whether it decodes, and `d loss / d output` times `scale`.
    fn token<T: Scalar>(&self, output: &[T], target: &[T], scale: T) -> (f64, bool, Vec<T>) {
        match *self {
            Self::SquaredError => {
                let diff: Vec<T> = output.iter().zip(target).map(|(&a, &t)| a - t).collect();
                let loss = diff.iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>();
                let decoded = diff.iter().all(|x| x.to_f64().abs() < 0.5);
                (loss, decoded, diff.iter().map(|&x| x * scale).collect())
            }
            Self::CrossEntropy { classes, label_coord } => {
                // Checked by `check`: the label is an integer class.
                let c = class_of(target[label_coord].to_f64(), classes).unwrap_or(0);
                let logits = &output[..classes];
                let max = logits.iter().copied().fold(logits[0], |a, b| if b > a { b } else { a });
                let e: Vec<T> = logits.iter().map(|&z| (z - max).exp_()).collect();
                let total = e.iter().fold(T::lit(0.0), |a, &b| a + b);
                let loss = (total.to_f64()).ln() - (logits[c] - max).to_f64();
                let decoded = logits.iter().enumerate().all(|(i, &z)| i == c || z < logits[c]);
                let mut grad = vec![T::lit(0.0); output.len()];
                for (i, g) in grad[..classes].iter_mut().enumerate() {
                    let p = e[i] / total;
                    *g = (if i == c { p - T::lit(1.0) } else { p }) * scale;
                }
                (loss, decoded, grad)
            }
        }
    }

    /// The factor of the per-token gradient: squared error is `2/(Nn)`, cross-entropy `1/(Nn)`.
    fn scale(&self, tokens: usize) -> f64 {
        match self {
            Self::SquaredError => 2.0 / tokens as f64,
            Self::CrossEntropy { .. } => 1.0 / tokens as f64,
        }
    }
}

/// The class a label value names: an integer in `0..classes`.
fn class_of(v: f64, classes: usize) -> Option<usize> {
    (v.fract() == 0.0 && v >= 0.0 && v < classes as f64).then_some(v as usize)
}

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
fn uniform<T: Scalar>(rng: &mut SeededRng, rows: usize, cols: usize, fan_in: usize) -> Matrix<T> {
    let a = (3.0 / fan_in as f64).sqrt();
    Matrix::from_fn(rows, cols, |_, _| T::lit((2.0 * rng.uniform() - 1.0) * a))
}

/// An attention weight: dense, or rank-r factors `U Vᵀ` whose product has variance 1/cols per entry
/// (`U` ~ 1/r, `V` ~ 1/cols).
fn weight<T: Scalar>(rng: &mut SeededRng, rank: Option<usize>, rows: usize, cols: usize) -> Weight<T> {
    match rank {
        None => Weight::Dense(uniform(rng, rows, cols, cols)),
        Some(r) => Weight::Factored { u: uniform(rng, rows, r, r), v: uniform(rng, cols, r, cols) },
    }
}

fn shape_text(shape: &ModelShape) -> String {
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

/// `y = W x` for a stored weight (dense, or `U (Vᵀ x)`), with `t = Vᵀ x` kept for the backward.
fn apply<T: Scalar>(w: &Weight<T>, x: &[T]) -> (Vec<T>, Vec<T>) {
    match w {
        Weight::Dense(m) => (matvec(m, x), Vec::new()),
        Weight::Factored { u, v } => {
            let t = matvec_t(v, x);
            (matvec(u, &t), t)
        }
    }
}

fn matvec<T: Scalar>(m: &Matrix<T>, x: &[T]) -> Vec<T> {
    (0..m.rows()).map(|r| m.row(r).iter().zip(x).fold(T::lit(0.0), |acc, (&a, &b)| acc + a * b)).collect()
}

/// `Mᵀ x`.
fn matvec_t<T: Scalar>(m: &Matrix<T>, x: &[T]) -> Vec<T> {
    let mut out = vec![T::lit(0.0); m.cols()];
    for (r, &xr) in x.iter().enumerate() {
        for (o, &a) in out.iter_mut().zip(m.row(r)) {
            *o += a * xr;
        }
    }
    out
}

/// Gradient storage of one weight: dense `rows × cols`, or the two factors.
#[derive(Clone, Debug)]
enum WeightGrad<T> {
    Dense(Vec<T>, usize),
    Factored { u: Vec<T>, v: Vec<T>, r: usize },
}

impl<T: Scalar> WeightGrad<T> {
    fn zeros(w: &Weight<T>) -> Self {
        match w {
            Weight::Dense(m) => Self::Dense(vec![T::lit(0.0); m.rows() * m.cols()], m.cols()),
            Weight::Factored { u, v } => {
                Self::Factored { u: vec![T::lit(0.0); u.rows() * u.cols()], v: vec![T::lit(0.0); v.rows() * v.cols()], r: u.cols() }
            }
        }
    }

    /// Accumulates the gradient of `y = W x` given `dy`, returning `dx`.
    fn backward(&mut self, w: &Weight<T>, x: &[T], t: &[T], dy: &[T]) -> Vec<T> {
        match (self, w) {
            (Self::Dense(g, cols), Weight::Dense(m)) => {
                for (r, &dyr) in dy.iter().enumerate() {
                    for (gi, &xi) in g[r * *cols..(r + 1) * *cols].iter_mut().zip(x) {
                        *gi += dyr * xi;
                    }
                }
                matvec_t(m, dy)
            }
            (Self::Factored { u: gu, v: gv, r }, Weight::Factored { u, v }) => {
                // y = U t, t = Vᵀ x: dU += dy tᵀ, dt = Uᵀ dy, dV += x dtᵀ, dx = V dt.
                for (row, &dyr) in dy.iter().enumerate() {
                    for (gi, &ti) in gu[row * *r..(row + 1) * *r].iter_mut().zip(t) {
                        *gi += dyr * ti;
                    }
                }
                let dt = matvec_t(u, dy);
                for (row, &xr) in x.iter().enumerate() {
                    for (gi, &dti) in gv[row * *r..(row + 1) * *r].iter_mut().zip(&dt) {
                        *gi += xr * dti;
                    }
                }
                matvec(v, &dt)
            }
            _ => unreachable!("gradient storage is made from the same weight"),
        }
    }

    fn slices(&mut self) -> Vec<&mut Vec<T>> {
        match self {
            Self::Dense(g, _) => vec![g],
            Self::Factored { u, v, .. } => vec![u, v],
        }
    }

    fn add(&mut self, other: &Self) {
        let pairs: Vec<(&mut Vec<T>, Vec<T>)> = match (self, other) {
            (Self::Dense(a, _), Self::Dense(b, _)) => vec![(a, b.clone())],
            (Self::Factored { u, v, .. }, Self::Factored { u: bu, v: bv, .. }) => vec![(u, bu.clone()), (v, bv.clone())],
            _ => unreachable!("same model"),
        };
        for (a, b) in pairs {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

/// The gradient of the loss with respect to every stored parameter, in the model's layout.
#[derive(Clone, Debug)]
pub struct Gradient<T> {
    heads: Vec<Vec<[WeightGrad<T>; 4]>>,
    b_q: Vec<Vec<Option<Vec<T>>>>,
    ffns: Vec<Option<FfnGrad<T>>>,
}

/// The gradient of one FFN layer.
#[derive(Clone, Debug)]
struct FfnGrad<T> {
    w1: WeightGrad<T>,
    b1: Vec<T>,
    w2: WeightGrad<T>,
    b2: Vec<T>,
}

impl<T: Scalar> Gradient<T> {
    fn zeros(model: &Model<T>) -> Self {
        let mut heads = Vec::new();
        let mut b_q = Vec::new();
        let mut ffns = Vec::new();
        for block in model.blocks() {
            let hs = block.attention.as_ref().map_or(&[][..], |a| &a.heads[..]);
            heads.push(
                hs.iter()
                    .map(|h| [WeightGrad::zeros(&h.w_q), WeightGrad::zeros(&h.w_k), WeightGrad::zeros(&h.w_v), WeightGrad::zeros(&h.w_o)])
                    .collect(),
            );
            b_q.push(hs.iter().map(|h| h.b_q.as_ref().map(|b| vec![T::lit(0.0); b.len()])).collect());
            ffns.push(block.ffn.as_ref().map(|f| FfnGrad {
                w1: WeightGrad::zeros(&f.w1),
                b1: vec![T::lit(0.0); f.b1.len()],
                w2: WeightGrad::zeros(&f.w2),
                b2: vec![T::lit(0.0); f.b2.len()],
            }));
        }
        Self { heads, b_q, ffns }
    }

    fn add(&mut self, other: &Self) {
        for (a, b) in self.heads.iter_mut().flatten().zip(other.heads.iter().flatten()) {
            for (x, y) in a.iter_mut().zip(b) {
                x.add(y);
            }
        }
        for (a, b) in self.b_q.iter_mut().flatten().zip(other.b_q.iter().flatten()) {
            if let (Some(a), Some(b)) = (a, b) {
                add_into(a, b);
            }
        }
        for (a, b) in self.ffns.iter_mut().zip(&other.ffns) {
            if let (Some(a), Some(b)) = (a, b) {
                a.w1.add(&b.w1);
                add_into(&mut a.b1, &b.b1);
                a.w2.add(&b.w2);
                add_into(&mut a.b2, &b.b2);
            }
        }
    }

    /// Every gradient tensor, in [`parameters`]'s order.
    pub fn tensors_mut(&mut self) -> Vec<&mut Vec<T>> {
        let mut out = Vec::new();
        for ((heads, bqs), ffn) in self.heads.iter_mut().zip(self.b_q.iter_mut()).zip(self.ffns.iter_mut()) {
            for (h, bq) in heads.iter_mut().zip(bqs.iter_mut()) {
                for w in h.iter_mut() {
                    out.extend(w.slices());
                }
                if let Some(b) = bq {
                    out.push(b);
                }
            }
            if let Some(FfnGrad { w1, b1, w2, b2 }) = ffn {
                out.extend(w1.slices());
                out.push(b1);
                out.extend(w2.slices());
                out.push(b2);
            }
        }
        out
    }
}

fn add_into<T: Scalar>(a: &mut [T], b: &[T]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Every stored parameter tensor of `model` (weights or their factors, then biases), in a fixed order:
/// per block, per head `W_Q, W_K, W_V, W_O` (factors `U` then `V`) and `b_Q`, then `W_1, b_1, W_2, b_2`.
pub fn parameters<T: Scalar>(model: &Model<T>) -> Vec<Vec<T>> {
    let weight = |w: &Weight<T>| match w {
        Weight::Dense(m) => vec![m.as_slice().to_vec()],
        Weight::Factored { u, v } => vec![u.as_slice().to_vec(), v.as_slice().to_vec()],
    };
    let mut out = Vec::new();
    for block in model.blocks() {
        if let Some(a) = &block.attention {
            for h in &a.heads {
                for w in [&h.w_q, &h.w_k, &h.w_v, &h.w_o] {
                    out.extend(weight(w));
                }
                out.extend(h.b_q.clone());
            }
        }
        if let Some(f) = &block.ffn {
            out.extend(weight(&f.w1));
            out.push(f.b1.clone());
            out.extend(weight(&f.w2));
            out.push(f.b2.clone());
        }
    }
    out
}

/// `model` with its parameters replaced by `values` (in [`parameters`]'s order and shapes), validated
/// again (a non-finite value is an error naming the tensor).
pub fn with_parameters<T: Scalar>(model: &Model<T>, values: &[Vec<T>]) -> Result<Model<T>> {
    fn take<T: Clone>(it: &mut std::slice::Iter<'_, Vec<T>>, len: usize) -> Result<Vec<T>> {
        let v = it.next().ok_or_else(|| Error::InvalidParameter { name: "parameters".into(), reason: "too few tensors".into() })?;
        if v.len() != len {
            return Err(Error::InvalidParameter {
                name: "parameters".into(),
                reason: format!("a tensor of {} values where {len} belong", v.len()),
            });
        }
        Ok(v.clone())
    }
    fn matrix<T: Scalar>(it: &mut std::slice::Iter<'_, Vec<T>>, m: &Matrix<T>) -> Result<Matrix<T>> {
        Matrix::new(m.rows(), m.cols(), take(it, m.rows() * m.cols())?)
    }
    fn weight<T: Scalar>(it: &mut std::slice::Iter<'_, Vec<T>>, w: &Weight<T>) -> Result<Weight<T>> {
        Ok(match w {
            Weight::Dense(m) => Weight::Dense(matrix(it, m)?),
            Weight::Factored { u, v } => Weight::Factored { u: matrix(it, u)?, v: matrix(it, v)? },
        })
    }
    let it = &mut values.iter();
    let mut blocks = Vec::with_capacity(model.blocks().len());
    for block in model.blocks() {
        let attention = match &block.attention {
            None => None,
            Some(a) => {
                let mut heads = Vec::with_capacity(a.heads.len());
                for h in &a.heads {
                    let (w_q, w_k, w_v, w_o) = (weight(it, &h.w_q)?, weight(it, &h.w_k)?, weight(it, &h.w_v)?, weight(it, &h.w_o)?);
                    let b_q = h.b_q.as_ref().map(|b| take(it, b.len())).transpose()?;
                    heads.push(AttentionHead { w_q, w_k, w_v, w_o, b_q });
                }
                Some(Attention { heads, normalizer: a.normalizer, causal: a.causal })
            }
        };
        let ffn = match &block.ffn {
            None => None,
            Some(f) => {
                let w1 = weight(it, &f.w1)?;
                let b1 = take(it, f.b1.len())?;
                let w2 = weight(it, &f.w2)?;
                let b2 = take(it, f.b2.len())?;
                Some(FeedForward { w1, b1, w2, b2 })
            }
        };
        blocks.push(Block { attention, ffn });
    }
    if it.next().is_some() {
        return Err(Error::InvalidParameter { name: "parameters".into(), reason: "too many tensors".into() });
    }
    Model::new(model.dim(), blocks, model.info().clone())
}

// ---------------------------------------------------------------------------------------------------
// Forward with caches, backward
//
// A thread's group of sequences runs together: attention per sequence (n × n scores), every FFN as
// matrix products over all the group's tokens on the CPU engine's multiplier
// ([`boltz_cpu::engine::Gemm`], implemented by [`boltz_cpu::MatrixMultiply`]), forward and backward.

struct HeadCache<T> {
    q: Vec<Vec<T>>,
    tq: Vec<Vec<T>>,
    k: Vec<Vec<T>>,
    tk: Vec<Vec<T>>,
    v: Vec<Vec<T>>,
    tv: Vec<Vec<T>>,
    /// `p[j][i]`: attention of query j on key i (i < keys(j)).
    p: Vec<Vec<T>>,
    m: Vec<Vec<T>>,
    tm: Vec<Vec<T>>,
}

/// One block's activations for a group of `rows` tokens (row-major `rows × d` and `rows × q`).
struct BlockCache<T> {
    z_attn: Vec<T>,
    /// Per sequence, per head.
    heads: Vec<Vec<HeadCache<T>>>,
    z_ffn: Vec<T>,
    /// `W_1 z + b_1` per token (before the ReLU), `rows × q`, where a weight is factored (the dense path
    /// recomputes it per tile).
    pre: Vec<T>,
    /// Per token, `t` of a factored `W_1` / `W_2` (empty when both are dense).
    t1: Vec<Vec<T>>,
    t2: Vec<Vec<T>>,
}

fn rows_of<T: Scalar>(z: &[T], d: usize) -> Vec<Vec<T>> {
    z.chunks(d).map(<[T]>::to_vec).collect()
}

/// One head's forward on one sequence's tokens `z`, adding its output to `delta`.
fn head_forward<T: Scalar>(h: &AttentionHead<T>, causal: bool, z: &[Vec<T>], delta: &mut [Vec<T>]) -> HeadCache<T> {
    let n = z.len();
    let (mut q, mut tq, mut k, mut tk, mut v, mut tv) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for t in z {
        let (mut qi, tqi) = apply(&h.w_q, t);
        if let Some(b) = &h.b_q {
            add_into(&mut qi, b);
        }
        q.push(qi);
        tq.push(tqi);
        let (ki, tki) = apply(&h.w_k, t);
        k.push(ki);
        tk.push(tki);
        let (vi, tvi) = apply(&h.w_v, t);
        v.push(vi);
        tv.push(tvi);
    }
    let (mut p, mut m, mut tm) = (vec![], vec![], vec![]);
    for j in 0..n {
        let keys = if causal { j + 1 } else { n };
        let scores: Vec<T> = (0..keys).map(|i| dot(&k[i], &q[j])).collect();
        let max = scores.iter().copied().fold(scores[0], |a, b| if b > a { b } else { a });
        let e: Vec<T> = scores.iter().map(|&s| (s - max).exp_()).collect();
        let total = e.iter().fold(T::lit(0.0), |a, &b| a + b);
        let pj: Vec<T> = e.iter().map(|&w| w / total).collect();
        let mut mj = vec![T::lit(0.0); v[0].len()];
        for (&pi, vi) in pj.iter().zip(&v) {
            for (a, &b) in mj.iter_mut().zip(vi) {
                *a += pi * b;
            }
        }
        let (out, tmj) = apply(&h.w_o, &mj);
        add_into(&mut delta[j], &out);
        p.push(pj);
        m.push(mj);
        tm.push(tmj);
    }
    HeadCache { q, tq, k, tk, v, tv, p, m, tm }
}

/// `W` of a dense stored weight, `None` for factors.
fn dense<T>(w: &Weight<T>) -> Option<&Matrix<T>> {
    match w {
        Weight::Dense(m) => Some(m),
        Weight::Factored { .. } => None,
    }
}

/// The forward of a group of whole sequences (`x`: row-major tokens, `n` per sequence), keeping what the
/// backward needs.
fn forward_cached<T: Scalar, G: Gemm<T>>(gemm: &G, model: &Model<T>, x: &[T], n: usize) -> (Vec<T>, Vec<BlockCache<T>>) {
    let d = model.dim();
    let mut z = x.to_vec();
    let mut caches = Vec::with_capacity(model.blocks().len());
    for block in model.blocks() {
        let z_attn = z.clone();
        let mut heads = Vec::new();
        if let Some(Attention { heads: hs, causal, .. }) = &block.attention {
            for (seq, zs) in z.chunks_mut(n * d).enumerate() {
                let tokens = rows_of(&z_attn[seq * n * d..(seq + 1) * n * d], d);
                let mut delta = vec![vec![T::lit(0.0); d]; n];
                heads.push(hs.iter().map(|h| head_forward(h, *causal, &tokens, &mut delta)).collect());
                for (t, dt) in zs.chunks_mut(d).zip(&delta) {
                    add_into(t, dt);
                }
            }
        }
        let z_ffn = z.clone();
        let (mut pre, mut t1, mut t2) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(f) = &block.ffn {
            let q = f.b1.len();
            if let (Some(w1), Some(w2)) = (dense(&f.w1), dense(&f.w2)) {
                // Z += ReLU(Z W₁ᵀ + b₁) W₂ᵀ + b₂ in tiles of tokens, whose hidden activations stay in cache
                // (the backward recomputes them from `z_ffn`).
                let (w1t, w2t) = (transpose(w1), transpose(w2));
                let mut pre_t = vec![T::lit(0.0); FFN_TILE * q];
                for (zin, zout) in z_ffn.chunks(FFN_TILE * d).zip(z.chunks_mut(FFN_TILE * d)) {
                    let r = zin.len() / d;
                    let h = &mut pre_t[..r * q];
                    hidden(gemm, zin, r, d, &w1t, &f.b1, h);
                    h.iter_mut().for_each(|x| *x = relu(*x));
                    narrow_or_gemm(gemm, r, q, d, h, &w2t, zout);
                }
                for t in z.chunks_mut(d) {
                    add_into(t, &f.b2);
                }
            } else {
                for t in z.chunks_mut(d) {
                    let (mut a, t1i) = apply(&f.w1, t);
                    add_into(&mut a, &f.b1);
                    let h: Vec<T> = a.iter().map(|&x| relu(x)).collect();
                    let (y, t2i) = apply(&f.w2, &h);
                    add_into(t, &y);
                    add_into(t, &f.b2);
                    pre.extend(a);
                    t1.push(t1i);
                    t2.push(t2i);
                }
            }
        }
        caches.push(BlockCache { z_attn, heads, z_ffn, pre, t1, t2 });
    }
    (z, caches)
}

/// `C = A B` for `A` row-major `rows × k` and `B` row-major `k × cols`: through the engine's multiplier,
/// except for an inner size `k ≤` [`SMALL_PRODUCT`] (the suite's d = 4), where packing would cost more than
/// the k multiply-adds per output and each row of `C` is k scaled rows of `B` instead.
fn inner_small_product<T: Scalar, G: Gemm<T>>(gemm: &G, a: &[T], rows: usize, k: usize, b: &[T], cols: usize, c: &mut [T]) {
    if k > SMALL_PRODUCT {
        gemm.gemm(Operand::row_major(a, rows, k, k), Operand::row_major(b, k, cols, cols), T::lit(0.0), c);
        return;
    }
    for (ai, ci) in a.chunks(k).zip(c.chunks_mut(cols)).take(rows) {
        ci.iter_mut().for_each(|x| *x = T::lit(0.0));
        for (&al, bl) in ai.iter().zip(b.chunks(cols)) {
            for (x, &y) in ci.iter_mut().zip(bl) {
                *x += al * y;
            }
        }
    }
}

/// Tokens per FFN tile: its `FFN_TILE × q` hidden activations are reused from tile to tile.
const FFN_TILE: usize = 64;

/// `Wᵀ`, row-major.
fn transpose<T: Scalar>(w: &Matrix<T>) -> Vec<T> {
    let (rows, cols) = (w.rows(), w.cols());
    (0..rows * cols).map(|i| w.as_slice()[(i % rows) * cols + i / rows]).collect()
}

/// `pre = Z W₁ᵀ + b₁` for `r` tokens (`w1t` = `W₁ᵀ`, row-major `d × q`).
fn hidden<T: Scalar, G: Gemm<T>>(gemm: &G, z: &[T], r: usize, d: usize, w1t: &[T], b1: &[T], pre: &mut [T]) {
    inner_small_product(gemm, z, r, d, w1t, b1.len(), pre);
    for row in pre.chunks_mut(b1.len()) {
        add_into(row, b1);
    }
}

/// `y += h B` for `h` row-major `r × q` and `B` row-major `q × d`: the engine's register-blocked kernel
/// for narrow outputs (as its forward uses for `H W₂ᵀ`), else its multiplier.
fn narrow_or_gemm<T: Scalar, G: Gemm<T>>(gemm: &G, r: usize, q: usize, d: usize, h: &[T], b: &[T], y: &mut [T]) {
    if !gemm.narrow_product(r, q, d, h, b, y) {
        gemm.gemm(Operand::row_major(h, r, q, q), Operand::row_major(b, q, d, d), T::lit(1.0), y);
    }
}

fn relu<T: Scalar>(x: T) -> T {
    if x > T::lit(0.0) {
        x
    } else {
        T::lit(0.0)
    }
}

fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::lit(0.0), |acc, (&x, &y)| acc + x * y)
}

/// Backward of a group of sequences from `dz` (the loss's gradient at the output, `rows × d`),
/// accumulating into `g`.
fn backward<T: Scalar, G: Gemm<T>>(gemm: &G, model: &Model<T>, caches: &[BlockCache<T>], mut dz: Vec<T>, n: usize, g: &mut Gradient<T>) {
    let d = model.dim();
    for (bi, (block, c)) in model.blocks().iter().zip(caches).enumerate().rev() {
        if let (Some(f), Some(FfnGrad { w1: gw1, b1: gb1, w2: gw2, b2: gb2 })) = (&block.ffn, &mut g.ffns[bi]) {
            let q = f.b1.len();
            for dzj in dz.chunks(d) {
                add_into(gb2, dzj);
            }
            match (dense(&f.w1), dense(&f.w2), gw1, gw2) {
                (Some(w1), Some(w2), WeightGrad::Dense(g1, _), WeightGrad::Dense(g2, _)) => {
                    // Per tile of tokens, pre recomputed: dW₂ += dZᵀ H; dPre = (dZ W₂) ⊙ 1[pre > 0];
                    // dW₁ += dPreᵀ Z; dZ += dPre W₁.
                    let w1t = transpose(w1);
                    let (mut pre_t, mut dpre_t) = (vec![T::lit(0.0); FFN_TILE * q], vec![T::lit(0.0); FFN_TILE * q]);
                    for (zin, dzt) in c.z_ffn.chunks(FFN_TILE * d).zip(dz.chunks_mut(FFN_TILE * d)) {
                        let r = zin.len() / d;
                        let (pre, dpre) = (&mut pre_t[..r * q], &mut dpre_t[..r * q]);
                        hidden(gemm, zin, r, d, &w1t, &f.b1, pre);
                        inner_small_product(gemm, dzt, r, d, w2.as_slice(), q, dpre);
                        for (x, a) in dpre.iter_mut().zip(pre.iter_mut()) {
                            if *a <= T::lit(0.0) {
                                *x = T::lit(0.0);
                                *a = T::lit(0.0);
                            }
                        }
                        // `pre` now holds H = ReLU(pre).
                        gemm.gemm(Operand::col_major(dzt, d, r, d), Operand::row_major(pre, r, q, q), T::lit(1.0), g2);
                        for row in dpre.chunks(q) {
                            add_into(gb1, row);
                        }
                        gemm.gemm(Operand::col_major(dpre, q, r, q), Operand::row_major(zin, r, d, d), T::lit(1.0), g1);
                        narrow_or_gemm(gemm, r, q, d, dpre, w1.as_slice(), dzt);
                    }
                }
                (_, _, gw1, gw2) => {
                    for (j, dzj) in dz.chunks_mut(d).enumerate() {
                        let pre = &c.pre[j * q..(j + 1) * q];
                        let h: Vec<T> = pre.iter().map(|&x| relu(x)).collect();
                        let dh = gw2.backward(&f.w2, &h, &c.t2[j], dzj);
                        let dpre: Vec<T> = dh.iter().zip(pre).map(|(&dhi, &a)| if a > T::lit(0.0) { dhi } else { T::lit(0.0) }).collect();
                        add_into(gb1, &dpre);
                        let dx = gw1.backward(&f.w1, &c.z_ffn[j * d..(j + 1) * d], &c.t1[j], &dpre);
                        add_into(dzj, &dx);
                    }
                }
            }
        }
        if let Some(Attention { heads, causal, .. }) = &block.attention {
            let mut dz_in = dz.clone();
            for (seq, seq_heads) in c.heads.iter().enumerate() {
                let span = seq * n * d..(seq + 1) * n * d;
                let dzs = rows_of(&dz[span.clone()], d);
                let x_rows = rows_of(&c.z_attn[span.clone()], d);
                let mut din = rows_of(&dz_in[span.clone()], d);
                for (hi, (h, hc)) in heads.iter().zip(seq_heads).enumerate() {
                    let s = hc.v[0].len();
                    let mut dq = vec![vec![T::lit(0.0); s]; n];
                    let mut dk = vec![vec![T::lit(0.0); s]; n];
                    let mut dv = vec![vec![T::lit(0.0); s]; n];
                    for j in 0..n {
                        let keys = if *causal { j + 1 } else { n };
                        let dm = g.heads[bi][hi][3].backward(&h.w_o, &hc.m[j], &hc.tm[j], &dzs[j]);
                        let dp: Vec<T> = (0..keys).map(|i| dot(&dm, &hc.v[i])).collect();
                        let pj = &hc.p[j];
                        let avg = pj.iter().zip(&dp).fold(T::lit(0.0), |a, (&p, &d)| a + p * d);
                        for i in 0..keys {
                            for (a, &x) in dv[i].iter_mut().zip(&dm) {
                                *a += pj[i] * x;
                            }
                            let ds = pj[i] * (dp[i] - avg);
                            for ((a, &kx), (bk, &qx)) in dq[j].iter_mut().zip(&hc.k[i]).zip(dk[i].iter_mut().zip(&hc.q[j])) {
                                *a += ds * kx;
                                *bk += ds * qx;
                            }
                        }
                    }
                    for j in 0..n {
                        if let Some(gb) = &mut g.b_q[bi][hi] {
                            add_into(gb, &dq[j]);
                        }
                        let x = &x_rows[j];
                        let dxq = g.heads[bi][hi][0].backward(&h.w_q, x, &hc.tq[j], &dq[j]);
                        let dxk = g.heads[bi][hi][1].backward(&h.w_k, x, &hc.tk[j], &dk[j]);
                        let dxv = g.heads[bi][hi][2].backward(&h.w_v, x, &hc.tv[j], &dv[j]);
                        for dx in [dxq, dxk, dxv] {
                            add_into(&mut din[j], &dx);
                        }
                    }
                }
                for (dst, src) in dz_in[span].chunks_mut(d).zip(&din) {
                    dst.copy_from_slice(src);
                }
            }
            dz = dz_in;
        }
    }
}

/// Loss, gradient and token accuracy of `model` on `data`.
#[derive(Clone, Debug)]
pub struct Evaluation<T> {
    /// Mean over tokens of the per-token [`Loss`].
    pub loss: f64,
    /// Its gradient.
    pub gradient: Gradient<T>,
    /// Tokens that decode to their target under the loss's rule ([`Loss::decodes`]).
    pub decoded: usize,
    /// Tokens N·n.
    pub tokens: usize,
}

/// The loss `(1/(Nn)) Σ_tokens loss(F(X)_{:,k}, Y_{:,k})` (squared error `‖F(X)_{:,k} − Y_{:,k}‖²`, or
/// cross-entropy over label classes), its gradient with respect to every stored parameter, and the token
/// accuracy, over `threads` fixed contiguous groups of sequences (the result depends on the thread count
/// only through the summation order).
pub fn loss_and_gradient<T: Scalar>(model: &Model<T>, data: &Dataset<T>, loss_kind: Loss, threads: usize) -> Result<Evaluation<T>> {
    loss_and_gradient_on(&MatrixMultiply, model, data, loss_kind, threads)
}

/// [`loss_and_gradient`] with the FFN products on `gemm` (any CPU engine multiplier: `MatrixMultiply` of
/// the cpu backend, OpenBLAS of the blas backend), for the per-backend training benches.
pub fn loss_and_gradient_on<T: Scalar, G: Gemm<T>>(
    gemm: &G,
    model: &Model<T>,
    data: &Dataset<T>,
    loss_kind: Loss,
    threads: usize,
) -> Result<Evaluation<T>> {
    check_data(model, data)?;
    loss_kind.check(model.dim(), &data.targets)?;
    let [big_n, n, _] = data.inputs.shape();
    let tokens = big_n * n;
    let scale = T::lit(loss_kind.scale(tokens));
    let groups = threads.clamp(1, big_n);
    let per = big_n.div_ceil(groups);
    let run = |range: std::ops::Range<usize>| {
        let mut g = Gradient::zeros(model);
        let (mut loss, mut decoded) = (0.0f64, 0usize);
        if range.is_empty() {
            return (loss, decoded, g);
        }
        let d = model.dim();
        let x = &data.inputs.as_slice()[range.start * n * d..range.end * n * d];
        let (out, caches) = forward_cached(gemm, model, x, n);
        let mut dz = Vec::with_capacity(out.len());
        for (t, o) in out.chunks(d).enumerate() {
            let (l, ok, grad) = loss_kind.token(o, data.targets.token(range.start + t / n, t % n), scale);
            loss += l;
            decoded += usize::from(ok);
            dz.extend(grad);
        }
        backward(gemm, model, &caches, dz, n, &mut g);
        (loss, decoded, g)
    };
    let parts: Vec<(f64, usize, Gradient<T>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..groups).map(|i| (i * per)..((i + 1) * per).min(big_n)).map(|r| scope.spawn(move || run(r))).collect();
        handles.into_iter().map(|h| h.join().map_err(|_| Error::Infeasible("a training thread panicked".into()))).collect::<Result<_>>()
    })?;
    let mut iter = parts.into_iter();
    let (mut loss, mut decoded, mut gradient) = iter.next().ok_or(Error::ZeroSize { what: "sequences" })?;
    for (l, dcd, g) in iter {
        loss += l;
        decoded += dcd;
        gradient.add(&g);
    }
    Ok(Evaluation { loss: loss / tokens as f64, gradient, decoded, tokens })
}

fn check_data<T: Scalar>(model: &Model<T>, data: &Dataset<T>) -> Result<()> {
    boltz_core::check_input(model.dim(), &data.inputs)?;
    if data.inputs.batch() == 0 || data.inputs.is_empty() {
        return Err(Error::ZeroSize { what: "dataset (at least one sequence of one token)" });
    }
    for block in model.blocks() {
        if let Some(a) = &block.attention {
            if a.normalizer != Normalizer::Softmax {
                return Err(Error::InvalidParameter {
                    name: "normalizer".into(),
                    reason: "training needs softmax attention (hardmax has no gradient)".into(),
                });
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Adam

/// How [`train`] trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Adam steps at most (full batch: every step sees every sequence).
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Adam's β₁.
    pub beta1: f64,
    /// Adam's β₂.
    pub beta2: f64,
    /// Adam's ε.
    pub eps: f64,
    /// Threads (sequence groups).
    pub threads: usize,
    /// Stop as soon as every token decodes (100 % token accuracy).
    pub early_stop: bool,
    /// Record the loss every this many steps (and at the first and last step).
    pub log_every: usize,
    /// The per-token loss (absent in older records: squared error).
    #[serde(default)]
    pub loss: Loss,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            threads: 1,
            early_stop: true,
            log_every: 10,
            loss: Loss::SquaredError,
        }
    }
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Steps taken.
    pub steps: usize,
    /// `(step, loss, token accuracy)` at every logged step, the loss before that step's update.
    pub curve: Vec<(usize, f64, f64)>,
    /// Loss of the returned model.
    pub final_loss: f64,
    /// Token accuracy of the returned model.
    pub final_accuracy: f64,
    /// Whether every token decodes.
    pub memorized: bool,
}

/// Trains `model` on `data` with full-batch Adam, calling `on_step(step, loss, accuracy)` after every
/// evaluation. A non-finite loss is an error naming the step.
pub fn train<T: Scalar>(
    model: &mut Model<T>,
    data: &Dataset<T>,
    cfg: &TrainConfig,
    mut on_step: impl FnMut(usize, f64, f64),
) -> Result<TrainReport> {
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(Error::InvalidParameter { name: "lr".into(), reason: format!("must be positive and finite, got {}", cfg.lr) });
    }
    if !(0.0..1.0).contains(&cfg.beta1) || !(0.0..1.0).contains(&cfg.beta2) {
        return Err(Error::InvalidParameter { name: "beta1/beta2".into(), reason: "must lie in [0, 1)".into() });
    }
    let sizes: Vec<usize> = parameters(model).iter().map(Vec::len).collect();
    let mut m1: Vec<Vec<f64>> = sizes.iter().map(|&s| vec![0.0; s]).collect();
    let mut m2 = m1.clone();
    let mut curve = Vec::new();
    let log_every = cfg.log_every.max(1);
    let mut step = 0;
    loop {
        let mut eval = loss_and_gradient(model, data, cfg.loss, cfg.threads)?;
        let accuracy = eval.decoded as f64 / eval.tokens as f64;
        if !eval.loss.is_finite() {
            return Err(Error::Infeasible(format!("the loss became non-finite at step {step} (lower the learning rate)")));
        }
        on_step(step, eval.loss, accuracy);
        let done = step == cfg.steps || (cfg.early_stop && eval.decoded == eval.tokens);
        if step % log_every == 0 || done {
            curve.push((step, eval.loss, accuracy));
        }
        if done {
            return Ok(TrainReport {
                steps: step,
                curve,
                final_loss: eval.loss,
                final_accuracy: accuracy,
                memorized: eval.decoded == eval.tokens,
            });
        }
        step += 1;
        let (c1, c2) = (1.0 - cfg.beta1.powi(step as i32), 1.0 - cfg.beta2.powi(step as i32));
        let mut params = parameters(model);
        for (((p, g), a), b) in params.iter_mut().zip(eval.gradient.tensors_mut()).zip(&mut m1).zip(&mut m2) {
            for (((pi, gi), ai), bi) in p.iter_mut().zip(g.iter()).zip(a.iter_mut()).zip(b.iter_mut()) {
                let gf = gi.to_f64();
                *ai = cfg.beta1 * *ai + (1.0 - cfg.beta1) * gf;
                *bi = cfg.beta2 * *bi + (1.0 - cfg.beta2) * gf * gf;
                let update = cfg.lr * (*ai / c1) / ((*bi / c2).sqrt() + cfg.eps);
                *pi = *pi - T::lit(update);
            }
        }
        *model = with_parameters(model, &params)?;
    }
}

// ---------------------------------------------------------------------------------------------------
// Trained capacity

/// How [`trained_capacity`] searches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacitySearch {
    /// The model shape trained at every N.
    pub shape: ModelShape,
    /// Training at every probe (its `steps` is the step budget).
    pub train: TrainConfig,
    /// The data at every probe except N (`sequences` is replaced; `seed` is the data seed).
    pub data: boltz_core::DatasetSpec,
    /// Initialisation seeds: N counts as memorized when training from at least one of them memorizes it.
    pub seeds: Vec<u64>,
    /// Largest N tried.
    pub max_sequences: usize,
    /// A curriculum over N: the first run at every N starts from the model that memorized the largest
    /// smaller N so far (where there is one), before the seeds' fresh initialisations.
    #[serde(default)]
    pub warm_start: bool,
}

/// One training run of the search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityProbe {
    /// N.
    pub sequences: usize,
    /// Initialisation seed (of the run's own initialisation, or of the model it was warm-started from).
    pub seed: u64,
    /// Warm start: the N whose memorizing model this run started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_from: Option<usize>,
    /// Whether every token decoded within the step budget.
    pub memorized: bool,
    /// Steps taken.
    pub steps: usize,
    /// Final loss.
    pub final_loss: f64,
    /// Final token accuracy.
    pub final_accuracy: f64,
}

/// What [`trained_capacity`] found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// The largest N memorized (0 if not even N = 1).
    pub largest_memorized: usize,
    /// The smallest N that failed (above `largest_memorized`), if any was tried.
    pub smallest_failed: Option<usize>,
    /// Dense parameters of the shape.
    pub params: u64,
    /// Bits stored per parameter at the largest N: `N·n·log₂(classes) / params`.
    pub bits_per_param: f64,
    /// Every run, in the order made.
    pub probes: Vec<CapacityProbe>,
}

/// [`trained_capacity`]'s answer and the model that memorized it, with its data.
#[derive(Clone, Debug)]
pub struct Capacity {
    /// The search's record.
    pub report: CapacityReport,
    /// The trained model that memorizes `largest_memorized` sequences, and those sequences (`None` when
    /// not even N = 1 was memorized).
    pub memorizer: Option<(Model<f64>, Dataset<f64>)>,
}

/// The largest N (up to `max_sequences`) that full-batch Adam memorizes at 100 % token accuracy within the
/// step budget from at least one of the seeds: doubling from N = 1 until a failure, then bisection
/// between the last success and the first failure (assuming that memorizing N implies memorizing fewer;
/// every probe is recorded, so a non-monotone answer shows in `probes`).
pub fn trained_capacity(search: &CapacitySearch, mut on_probe: impl FnMut(&CapacityProbe)) -> Result<Capacity> {
    if search.seeds.is_empty() {
        return Err(Error::InvalidParameter { name: "seeds".into(), reason: "at least one".into() });
    }
    if search.max_sequences == 0 {
        return Err(Error::InvalidParameter { name: "max_sequences".into(), reason: "at least 1".into() });
    }
    let mut probes = Vec::new();
    // The memorizing model of the largest N so far: (N, seed, model, data).
    let mut best: Option<(usize, u64, Model<f64>, Dataset<f64>)> = None;
    let mut memorizes = |n: usize| -> Result<bool> {
        let spec = boltz_core::DatasetSpec { sequences: n, ..search.data.clone() };
        let data: Dataset<f64> = Dataset::generate(&spec)?;
        let warm = best.as_ref().filter(|_| search.warm_start).map(|(from, seed, m, _)| (*seed, Some(*from), m.clone()));
        let fresh = search.seeds.iter().map(|&seed| init_model(&search.shape, seed).map(|m| (seed, None, m)));
        for start in warm.map(Ok).into_iter().chain(fresh) {
            let (seed, warm_from, mut model) = start?;
            let r = train(&mut model, &data, &TrainConfig { early_stop: true, ..search.train.clone() }, |_, _, _| {})?;
            let probe = CapacityProbe {
                sequences: n,
                seed,
                warm_from,
                memorized: r.memorized,
                steps: r.steps,
                final_loss: r.final_loss,
                final_accuracy: r.final_accuracy,
            };
            on_probe(&probe);
            probes.push(probe);
            if r.memorized {
                if best.as_ref().is_none_or(|b| b.0 < n) {
                    best = Some((n, seed, model, data));
                }
                return Ok(true);
            }
        }
        Ok(false)
    };
    let (mut good, mut bad) = (0usize, None);
    let mut n = 1usize;
    loop {
        if memorizes(n)? {
            good = n;
            if n == search.max_sequences {
                break;
            }
            n = (2 * n).min(search.max_sequences);
        } else {
            bad = Some(n);
            break;
        }
    }
    if let Some(mut hi) = bad {
        while hi - good > 1 {
            let mid = good + (hi - good) / 2;
            if memorizes(mid)? {
                good = mid;
            } else {
                hi = mid;
            }
        }
        bad = Some(hi);
    }
    let params = init_model::<f64>(&search.shape, search.seeds[0])?.param_count().dense;
    let bits = good as f64 * search.data.length as f64 * f64::from(search.data.classes.max(2)).log2();
    let report = CapacityReport { largest_memorized: good, smallest_failed: bad, params, bits_per_param: bits / params as f64, probes };
    Ok(Capacity { report, memorizer: best.map(|(_, _, m, d)| (m, d)) })
}
