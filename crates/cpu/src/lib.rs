//! # boltz-cpu
//!
//! A multi-threaded, pure-Rust CPU backend for `f32` and `f64`.
//!
//! * **Parallelism:** sequences are split over the backend's *own* rayon pool (the thread count is a
//!   constructor argument and is reported in [`boltz_core::DeviceInfo`]).
//! * **Low rank stays low rank:** a factored weight `U Vᵀ` is applied as `U (Vᵀ x)`, so a rank-1 head costs
//!   O(n·d) for its projections and O(n²) for its scores — never a dense d×d product.
//! * **Memory:** per thread, one score row of length n (never an n×n matrix), the per-head projections
//!   `Q, K, V` of one sequence (3·n·s values) and one hidden row of the widest FFN (q values); the peak
//!   working memory of a forward is therefore `threads · (n + 3ns + q + 2nd)` elements on top of the input
//!   and output batches.
//! * **Numerics:** softmax is max-shifted; hardmax sums the exactly tied maxima and divides by their count
//!   (deterministic, same rule as the reference); every result is checked for overflow.

use boltz_core::backend::{check_input, check_output};
use boltz_core::{Backend, Batch, DeviceInfo, Error, Float, Model, Normalizer, Result, Weight};
use rayon::prelude::*;

/// The CPU backend (see the crate docs).
pub struct CpuBackend {
    threads: usize,
    pool: rayon::ThreadPool,
}

impl std::fmt::Debug for CpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuBackend").field("threads", &self.threads).finish()
    }
}

impl CpuBackend {
    /// A backend with its own pool of `threads` worker threads.
    pub fn new(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::InvalidParameter { name: "threads".into(), reason: "at least one thread is needed".into() });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("boltz-cpu-{i}"))
            .build()
            .map_err(|e| Error::Backend { backend: "cpu", op: "thread pool", message: e.to_string() })?;
        Ok(Self { threads, pool })
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

/// A weight as the backend applies it.
#[derive(Clone, Debug)]
enum Linear<T> {
    /// Row-major `rows × cols`.
    Dense { rows: usize, cols: usize, w: Vec<T> },
    /// `U (Vᵀ x)`: `vt` is `r × cols` row-major, `u` is `rows × r` row-major.
    Factored { rows: usize, r: usize, cols: usize, u: Vec<T>, vt: Vec<T> },
}

impl<T: Float> Linear<T> {
    fn new(w: &Weight<T>) -> Self {
        match w {
            Weight::Dense(m) => Self::Dense { rows: m.rows(), cols: m.cols(), w: m.as_slice().to_vec() },
            Weight::Factored { u, v } => {
                let (rows, r, cols) = (u.rows(), u.cols(), v.rows());
                let mut vt = vec![T::default(); r * cols];
                for c in 0..cols {
                    for k in 0..r {
                        vt[k * cols + c] = *v.get(c, k);
                    }
                }
                Self::Factored { rows, r, cols, u: u.as_slice().to_vec(), vt }
            }
        }
    }

    fn rows(&self) -> usize {
        match self {
            Self::Dense { rows, .. } | Self::Factored { rows, .. } => *rows,
        }
    }

    /// `out = W x` (out has `rows` entries).
    #[inline]
    fn apply(&self, x: &[T], out: &mut [T], scratch: &mut Vec<T>) {
        match self {
            Self::Dense { cols, w, .. } => {
                for (o, row) in out.iter_mut().zip(w.chunks_exact(*cols)) {
                    *o = dot(row, x);
                }
            }
            Self::Factored { r, cols, u, vt, .. } => {
                scratch.clear();
                scratch.extend(vt.chunks_exact(*cols).map(|row| dot(row, x)));
                for (o, row) in out.iter_mut().zip(u.chunks_exact(*r)) {
                    *o = dot(row, scratch);
                }
            }
        }
    }
}

#[inline]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    // Four independent accumulators let the compiler vectorise; the sum order is fixed (deterministic).
    let mut acc = [T::default(); 4];
    let chunks = a.len() / 4;
    for i in 0..chunks {
        for l in 0..4 {
            acc[l] = acc[l].add(&a[4 * i + l].mul(&b[4 * i + l]));
        }
    }
    let mut s = acc[0].add(&acc[1]).add(&acc[2].add(&acc[3]));
    for i in 4 * chunks..a.len() {
        s = s.add(&a[i].mul(&b[i]));
    }
    s
}

#[derive(Clone, Debug)]
struct Head<T> {
    w_q: Linear<T>,
    w_k: Linear<T>,
    w_v: Linear<T>,
    w_o: Linear<T>,
    b_q: Option<Vec<T>>,
}

#[derive(Clone, Debug)]
struct Ffn<T> {
    w1: Linear<T>,
    b1: Vec<T>,
    w2: Linear<T>,
    b2: Vec<T>,
}

#[derive(Clone, Debug)]
struct PreparedBlock<T> {
    attention: Option<(Vec<Head<T>>, Normalizer, bool)>,
    ffn: Option<Ffn<T>>,
}

/// A model laid out for the CPU backend.
#[derive(Clone, Debug)]
pub struct CpuModel<T> {
    dim: usize,
    blocks: Vec<PreparedBlock<T>>,
}

/// Per-thread scratch space, reused across the sequences a thread processes.
#[derive(Default)]
struct Scratch<T> {
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
    scores: Vec<T>,
    mixed: Vec<T>,
    out: Vec<T>,
    hidden: Vec<T>,
    factor: Vec<T>,
    delta: Vec<T>,
}

impl<T: Float> CpuModel<T> {
    fn forward_sequence(&self, z: &mut [T], s: &mut Scratch<T>) -> Result<()> {
        let d = self.dim;
        let n = z.len() / d;
        for (b, block) in self.blocks.iter().enumerate() {
            if let Some((heads, normalizer, causal)) = &block.attention {
                s.delta.clear();
                s.delta.resize(n * d, T::default());
                for head in heads {
                    let hs = head.w_q.rows();
                    s.q.resize(n * hs, T::default());
                    s.k.resize(n * hs, T::default());
                    s.v.resize(n * hs, T::default());
                    for i in 0..n {
                        let t = &z[i * d..(i + 1) * d];
                        head.w_q.apply(t, &mut s.q[i * hs..(i + 1) * hs], &mut s.factor);
                        if let Some(bq) = &head.b_q {
                            for (a, c) in s.q[i * hs..(i + 1) * hs].iter_mut().zip(bq) {
                                *a = a.add(c);
                            }
                        }
                        head.w_k.apply(t, &mut s.k[i * hs..(i + 1) * hs], &mut s.factor);
                        head.w_v.apply(t, &mut s.v[i * hs..(i + 1) * hs], &mut s.factor);
                    }
                    s.mixed.resize(hs, T::default());
                    s.out.resize(d, T::default());
                    for j in 0..n {
                        let keys = if *causal { j + 1 } else { n };
                        let q = &s.q[j * hs..(j + 1) * hs];
                        s.scores.clear();
                        s.scores.extend((0..keys).map(|i| dot(&s.k[i * hs..(i + 1) * hs], q)));
                        attend(&s.scores, &s.v, hs, *normalizer, &mut s.mixed);
                        head.w_o.apply(&s.mixed, &mut s.out, &mut s.factor);
                        for (a, o) in s.delta[j * d..(j + 1) * d].iter_mut().zip(&s.out) {
                            *a = a.add(o);
                        }
                    }
                }
                for (a, c) in z.iter_mut().zip(&s.delta) {
                    *a = a.add(c);
                }
                check_output(z, || format!("blocks.{b}.attn"))?;
            }
            if let Some(f) = &block.ffn {
                let q = f.w1.rows();
                s.hidden.resize(q, T::default());
                s.out.resize(d, T::default());
                for t in z.chunks_exact_mut(d) {
                    f.w1.apply(t, &mut s.hidden, &mut s.factor);
                    for (h, c) in s.hidden.iter_mut().zip(&f.b1) {
                        *h = h.add(c).relu();
                    }
                    f.w2.apply(&s.hidden, &mut s.out, &mut s.factor);
                    for ((a, y), c) in t.iter_mut().zip(&s.out).zip(&f.b2) {
                        *a = a.add(&y.add(c));
                    }
                }
                check_output(z, || format!("blocks.{b}.ffn"))?;
            }
        }
        Ok(())
    }
}

/// `mixed = Σ_i σ(scores)_i v_i` over the first `scores.len()` rows of `v` (`hs` columns).
fn attend<T: Float>(scores: &[T], v: &[T], hs: usize, normalizer: Normalizer, mixed: &mut [T]) {
    let max = scores.iter().copied().fold(scores[0], |m, x| if x > m { x } else { m });
    mixed.iter_mut().for_each(|m| *m = T::default());
    match normalizer {
        Normalizer::Softmax => {
            let mut total = T::default();
            for (i, sc) in scores.iter().enumerate() {
                let w = sc.sub(&max).exp();
                total = total.add(&w);
                for (m, vi) in mixed.iter_mut().zip(&v[i * hs..(i + 1) * hs]) {
                    *m = m.add(&w.mul(vi));
                }
            }
            for m in mixed.iter_mut() {
                *m = m.div(&total);
            }
        }
        Normalizer::Hardmax => {
            let mut ties = 0usize;
            for (i, sc) in scores.iter().enumerate() {
                if *sc == max {
                    ties += 1;
                    for (m, vi) in mixed.iter_mut().zip(&v[i * hs..(i + 1) * hs]) {
                        *m = m.add(vi);
                    }
                }
            }
            let count = T::from_f64(ties as f64);
            for m in mixed.iter_mut() {
                *m = m.div(&count);
            }
        }
    }
}

impl<T: Float> Backend<T> for CpuBackend {
    type Prepared = CpuModel<T>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn device_info(&self) -> DeviceInfo {
        let mut details = std::collections::BTreeMap::new();
        details.insert("dtype".into(), T::DTYPE.into());
        DeviceInfo { backend: "cpu".into(), device: "host (rayon)".into(), threads: self.threads, details }
    }

    fn prepare(&self, model: &Model<T>) -> Result<CpuModel<T>> {
        let blocks = model
            .blocks()
            .iter()
            .map(|b| PreparedBlock {
                attention: b.attention.as_ref().map(|a| {
                    let heads = a
                        .heads
                        .iter()
                        .map(|h| Head {
                            w_q: Linear::new(&h.w_q),
                            w_k: Linear::new(&h.w_k),
                            w_v: Linear::new(&h.w_v),
                            w_o: Linear::new(&h.w_o),
                            b_q: h.b_q.clone(),
                        })
                        .collect();
                    (heads, a.normalizer, a.causal)
                }),
                ffn: b.ffn.as_ref().map(|f| Ffn { w1: Linear::new(&f.w1), b1: f.b1.clone(), w2: Linear::new(&f.w2), b2: f.b2.clone() }),
            })
            .collect();
        Ok(CpuModel { dim: model.dim(), blocks })
    }

    fn forward(&self, model: &CpuModel<T>, input: &Batch<T>) -> Result<Batch<T>> {
        check_input(model.dim, input)?;
        let mut data = input.as_slice().to_vec();
        let seq = input.len() * input.dim();
        self.pool
            .install(|| data.par_chunks_mut(seq).try_for_each_init(Scratch::default, |scratch, z| model.forward_sequence(z, scratch)))?;
        Batch::new(input.batch(), input.len(), input.dim(), data)
    }
}
