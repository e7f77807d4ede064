//! The exact gradient of the mean per-token loss: a forward that keeps what the backward needs, the
//! hand-written backward pass over every stored parameter, and the gradient's flat parameter view.

use crate::loss::Loss;
use crate::Scalar;
use boltz_core::{Attention, AttentionHead, Block, Dataset, Error, FeedForward, Matrix, Model, Normalizer, Result, Weight};
use boltz_cpu::engine::{Gemm, Operand, SMALL_PRODUCT};
use boltz_cpu::MatrixMultiply;

/// `y = W x` for a stored weight (dense, or `U (Vᵀ x)`), with `t = Vᵀ x` kept for the backward.
pub(crate) fn apply<T: Scalar>(w: &Weight<T>, x: &[T]) -> (Vec<T>, Vec<T>) {
    match w {
        Weight::Dense(m) => (matvec(m, x), Vec::new()),
        Weight::Factored { u, v } => {
            let t = matvec_t(v, x);
            (matvec(u, &t), t)
        }
    }
}

pub(crate) fn matvec<T: Scalar>(m: &Matrix<T>, x: &[T]) -> Vec<T> {
    (0..m.rows()).map(|r| m.row(r).iter().zip(x).fold(T::lit(0.0), |acc, (&a, &b)| acc + a * b)).collect()
}

/// `Mᵀ x`.
pub(crate) fn matvec_t<T: Scalar>(m: &Matrix<T>, x: &[T]) -> Vec<T> {
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
pub(crate) struct FfnGrad<T> {
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

pub(crate) fn add_into<T: Scalar>(a: &mut [T], b: &[T]) {
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

pub(crate) struct HeadCache<T> {
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
pub(crate) struct BlockCache<T> {
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

pub(crate) fn rows_of<T: Scalar>(z: &[T], d: usize) -> Vec<Vec<T>> {
    z.chunks(d).map(<[T]>::to_vec).collect()
}

/// One head's forward on one sequence's tokens `z`, adding its output to `delta`.
pub(crate) fn head_forward<T: Scalar>(h: &AttentionHead<T>, causal: bool, z: &[Vec<T>], delta: &mut [Vec<T>]) -> HeadCache<T> {
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
pub(crate) fn dense<T>(w: &Weight<T>) -> Option<&Matrix<T>> {
    match w {
        Weight::Dense(m) => Some(m),
        Weight::Factored { .. } => None,
    }
}

/// The forward of a group of whole sequences (`x`: row-major tokens, `n` per sequence), keeping what the
/// backward needs.
pub(crate) fn forward_cached<T: Scalar, G: Gemm<T>>(gemm: &G, model: &Model<T>, x: &[T], n: usize) -> (Vec<T>, Vec<BlockCache<T>>) {
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
pub(crate) fn inner_small_product<T: Scalar, G: Gemm<T>>(gemm: &G, a: &[T], rows: usize, k: usize, b: &[T], cols: usize, c: &mut [T]) {
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
pub(crate) const FFN_TILE: usize = 64;

/// `Wᵀ`, row-major.
pub(crate) fn transpose<T: Scalar>(w: &Matrix<T>) -> Vec<T> {
    let (rows, cols) = (w.rows(), w.cols());
    (0..rows * cols).map(|i| w.as_slice()[(i % rows) * cols + i / rows]).collect()
}

/// `pre = Z W₁ᵀ + b₁` for `r` tokens (`w1t` = `W₁ᵀ`, row-major `d × q`).
pub(crate) fn hidden<T: Scalar, G: Gemm<T>>(gemm: &G, z: &[T], r: usize, d: usize, w1t: &[T], b1: &[T], pre: &mut [T]) {
    inner_small_product(gemm, z, r, d, w1t, b1.len(), pre);
    for row in pre.chunks_mut(b1.len()) {
        add_into(row, b1);
    }
}

/// `y += h B` for `h` row-major `r × q` and `B` row-major `q × d`: the engine's register-blocked kernel
/// for narrow outputs (as its forward uses for `H W₂ᵀ`), else its multiplier.
pub(crate) fn narrow_or_gemm<T: Scalar, G: Gemm<T>>(gemm: &G, r: usize, q: usize, d: usize, h: &[T], b: &[T], y: &mut [T]) {
    if !gemm.narrow_product(r, q, d, h, b, y) {
        gemm.gemm(Operand::row_major(h, r, q, q), Operand::row_major(b, q, d, d), T::lit(1.0), y);
    }
}

pub(crate) fn relu<T: Scalar>(x: T) -> T {
    if x > T::lit(0.0) {
        x
    } else {
        T::lit(0.0)
    }
}

pub(crate) fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::lit(0.0), |acc, (&x, &y)| acc + x * y)
}

/// Backward of a group of sequences from `dz` (the loss's gradient at the output, `rows × d`),
/// accumulating into `g`.
pub(crate) fn backward<T: Scalar, G: Gemm<T>>(
    gemm: &G,
    model: &Model<T>,
    caches: &[BlockCache<T>],
    mut dz: Vec<T>,
    n: usize,
    g: &mut Gradient<T>,
) {
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

pub(crate) fn check_data<T: Scalar>(model: &Model<T>, data: &Dataset<T>) -> Result<()> {
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
