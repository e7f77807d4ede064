//! The forward of a whole stack on groups of sequences, written once for every CPU backend and
//! parameterised by who multiplies matrices ([`Gemm`]: the pure-Rust `gemm` and `matrixmultiply` kernels
//! in `boltz-cpu`, the system OpenBLAS in `boltz-blas`).
//!
//! Sequences are independent through every layer, so a backend cuts the batch into groups of whole
//! sequences (about [`GROUP_ROWS`] tokens, see [`sequences_per_group`]) and runs each group through the
//! whole stack on one worker — no synchronisation between layers. Within a group, every token-wise
//! product is one matrix product over the group's tokens:
//!
//! * projections `X W_Qᵀ` etc.; a factored weight `U Vᵀ` is applied as `(X V) Uᵀ`, so a rank-1 head
//!   costs O(n·d) per sequence for its projections, never a dense d×d product;
//! * scores: for softmax heads of size ≥ [`GEMM_HEAD_SIZE`], per tile of at most [`QUERY_TILE`] queries
//!   one block `Q_tile K_bᵀ` (a product; a causal tile only up to its last query's key), max-shifted
//!   softmax row by row, then `P V_b` (a product): never an `n × n` buffer for long sequences; smaller
//!   heads and hardmax use the row kernel [`crate::kernels::attend_sequence`] (one score row at a time);
//! * FFN, tiled over hidden units in chunks of at most [`HIDDEN_CHUNK`]: `H = ReLU(X W₁[c]ᵀ + b₁[c])`,
//!   then `Y += H W₂[:, c]ᵀ`, so a chunk's hidden activations stay in cache however wide the layer (the
//!   memorizer's width nN reaches 10⁶); a rank-1 `W₁ = u vᵀ` (the memorizer's) computes `t = X v` once
//!   and each tile in one pass, and narrow outputs use tiles of [`NARROW_TILE_BYTES`] (L2-resident);
//! * products whose inner and outer sizes are both tiny (≤ [`SMALL_PRODUCT`], the deep-narrow stacks'
//!   d = 4, s = 1 layers) skip the GEMM call and its packing overhead and run as plain dot products.
//!
//! ## Memory
//! Per worker: the group's residual delta (`R·d`, R = tokens of a group), per-head projections and mixed
//! values (`4·R·s`), one `min(n, QUERY_TILE) × n` score block, one hidden tile `R × min(q, HIDDEN_CHUNK)` and the factored
//! path's `R × r`; on top of the input/output batch. Practical workload in f32 (R = 256, s = 64,
//! n = 128, q = 1024): about 1.6 MB per worker.

use crate::kernels::{attend_sequence, dot};
use boltz_core::backend::check_output;
use boltz_core::Float;
use boltz_core::Result;
use boltz_core::{Attention, Model, Normalizer, Stack, Weight};

/// Tokens per group that the backends aim for.
pub const GROUP_ROWS: usize = 256;
/// Largest hidden-unit chunk of a tiled FFN.
pub const HIDDEN_CHUNK: usize = 2048;
/// Smallest softmax head size whose scores are computed as a matrix product.
pub const GEMM_HEAD_SIZE: usize = 8;
/// Query rows per tile of a softmax head's scores (the score buffer is at most this × the sequence length).
pub const QUERY_TILE: usize = 128;
/// Products with inner and output sizes both at most this run as plain dot products.
pub const SMALL_PRODUCT: usize = 8;

/// A strided matrix operand with its dimensions (faer's `MatRef` shape): `rows × cols`, element `(i, j)`
/// at `data[i · row_stride + j · col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a, T> {
    /// The elements.
    pub data: &'a [T],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl<'a, T> Operand<'a, T> {
    /// `rows × cols`, row-major with rows `stride` apart (`stride = cols` when contiguous).
    pub fn row_major(data: &'a [T], rows: usize, cols: usize, stride: usize) -> Self {
        Self { data, rows, cols, row_stride: stride, col_stride: 1 }
    }

    /// `rows × cols`, column-major with columns `stride` apart: the transpose of a row-major `cols × rows`
    /// matrix whose rows are `stride` apart.
    pub fn col_major(data: &'a [T], rows: usize, cols: usize, stride: usize) -> Self {
        Self { data, rows, cols, row_stride: 1, col_stride: stride }
    }

    /// The index one past the last element the operand reads (0 when it is empty).
    pub fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// Checks that `A` (`m × k`), `B` (`k × n`) and a row-major `C` (`m × n`) cover the extents a kernel
/// reading raw pointers will touch, and returns `(m, k, n)`. The engine's operands always do; the
/// pointer-based multipliers call this before their `unsafe` call.
pub fn checked_dims<T>(a: &Operand<'_, T>, b: &Operand<'_, T>, c: &[T]) -> (usize, usize, usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: inner dimensions");
    assert!(a.extent() <= a.data.len(), "gemm: A is too short");
    assert!(b.extent() <= b.data.len(), "gemm: B is too short");
    assert!(c.len() >= m * n, "gemm: C is too short");
    (m, k, n)
}

/// A matrix product: `C = A·B + beta·C` with `A` `m × k`, `B` `k × n` (their dimensions; any strides
/// where one of the two is 1) and `C` row-major `m × n` (`c.len() ≥ m·n`). Implementations must be
/// usable from several threads at once.
pub trait Gemm<T>: Sync {
    /// Computes the product (`a.cols == b.rows`).
    fn gemm(&self, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]);

    /// Optionally computes an FFN's second product for narrow outputs itself: `y += h · w2t` with `h`
    /// row-major `rows × width` (a hidden tile), `w2t` row-major `width × d` (`W₂ᵀ` for the tile's hidden
    /// units) and `y` row-major `rows × d`, for `d ≤` [`NARROW_OUTPUT`]. Returns `false` (the default) to
    /// let the engine use [`Gemm::gemm`].
    fn narrow_product(&self, rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
        let _ = (rows, width, d, h, w2t, y);
        false
    }

    /// Optionally computes a rank-1 FFN tile in one pass, `y += ReLU(t uᵀ + b) · w2t` (`t` one projection
    /// per token, `u` and `b` the tile's slices of the left factor and the bias, `w2t` and `y` as in
    /// [`Gemm::narrow_product`]), with the same roundings in the same order as the hidden tile written out
    /// and then [`Gemm::narrow_product`] (bit for bit). Returns `false` (the default) to let the engine
    /// write the tile.
    fn rank_one_narrow(&self, t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) -> bool {
        let _ = (t, u, b, w2t, d, y);
        false
    }
}

/// Widest FFN output offered to [`Gemm::narrow_product`].
pub const NARROW_OUTPUT: usize = 32;

/// `C = A·B + beta·C` for tiny `k` and `n` (dot products in a fixed order, no packing).
fn small_gemm<T: Float>(a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let zero = T::default();
    let store = |cij: &mut T, s: T| *cij = if beta == zero { s } else { s.add(&beta.mul(cij)) };
    if a.col_stride == 1 && b.row_stride == 1 {
        // Rows of A against columns of B, both contiguous (x·Wᵀ with W row-major): with the inner size
        // known at compile time the dot products unroll completely (the deep-narrow stacks' d = 4).
        match k {
            1 => return small_rows::<T, 1>(a, b, beta, c),
            2 => return small_rows::<T, 2>(a, b, beta, c),
            3 => return small_rows::<T, 3>(a, b, beta, c),
            4 => return small_rows::<T, 4>(a, b, beta, c),
            5 => return small_rows::<T, 5>(a, b, beta, c),
            6 => return small_rows::<T, 6>(a, b, beta, c),
            7 => return small_rows::<T, 7>(a, b, beta, c),
            8 => return small_rows::<T, 8>(a, b, beta, c),
            _ => {}
        }
        for (i, ci) in c.chunks_exact_mut(n).take(m).enumerate() {
            let ai = &a.data[i * a.row_stride..i * a.row_stride + k];
            for (j, cij) in ci.iter_mut().enumerate() {
                store(cij, dot(ai, &b.data[j * b.col_stride..j * b.col_stride + k]));
            }
        }
        return;
    }
    for i in 0..m {
        for j in 0..n {
            let mut s = zero;
            for l in 0..k {
                s = s.add(&a.data[i * a.row_stride + l * a.col_stride].mul(&b.data[l * b.row_stride + j * b.col_stride]));
            }
            store(&mut c[i * n + j], s);
        }
    }
}

/// [`small_gemm`]'s contiguous case for an inner size `K` known at compile time (terms summed in order).
fn small_rows<T: Float, const K: usize>(a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
    let (m, n) = (a.rows, b.cols);
    let zero = T::default();
    let row = |data: &[T], start: usize| -> [T; K] { std::array::from_fn(|l| data[start + l]) };
    for (i, ci) in c.chunks_exact_mut(n).take(m).enumerate() {
        let ai = row(a.data, i * a.row_stride);
        for (j, cij) in ci.iter_mut().enumerate() {
            let bj = row(b.data, j * b.col_stride);
            let mut s = ai[0].mul(&bj[0]);
            for l in 1..K {
                s = s.add(&ai[l].mul(&bj[l]));
            }
            *cij = if beta == zero { s } else { s.add(&beta.mul(cij)) };
        }
    }
}

/// `C = a·bᵀ + beta·C` for an inner size of one (an outer product: what a rank-1 factor produces).
fn outer<T: Float>(a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
    let (m, n) = (a.rows, b.cols);
    let zero = T::default();
    for (i, ci) in c.chunks_exact_mut(n).take(m).enumerate() {
        let ai = a.data[i * a.row_stride];
        if b.col_stride == 1 && beta == zero {
            ci.iter_mut().zip(&b.data[..n]).for_each(|(cij, bj)| *cij = ai.mul(bj));
        } else {
            for (j, cij) in ci.iter_mut().enumerate() {
                let s = ai.mul(&b.data[j * b.col_stride]);
                *cij = if beta == zero { s } else { s.add(&beta.mul(cij)) };
            }
        }
    }
}

fn product<T: Float, G: Gemm<T>>(g: &G, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
    debug_assert_eq!(a.cols, b.rows, "product: inner dimensions");
    let (k, n) = (a.cols, b.cols);
    if k == 1 {
        outer(a, b, beta, c);
    } else if k <= SMALL_PRODUCT && n <= SMALL_PRODUCT {
        small_gemm(a, b, beta, c);
    } else {
        g.gemm(a, b, beta, c);
    }
}

/// A weight as the engine applies it to rows of tokens.
#[derive(Clone, Debug)]
enum Linear<T> {
    /// Row-major `rows × cols`.
    Dense { rows: usize, cols: usize, w: Vec<T> },
    /// `U` (`rows × r`, row-major) and `V` (`cols × r`, row-major): `x ↦ U (Vᵀ x)`.
    Factored { rows: usize, r: usize, u: Vec<T>, v: Vec<T> },
}

impl<T: Float> Linear<T> {
    fn new(w: &Weight<T>) -> Self {
        match w {
            Weight::Dense(m) => Self::Dense { rows: m.rows(), cols: m.cols(), w: m.as_slice().to_vec() },
            Weight::Factored { u, v } => Self::Factored { rows: u.rows(), r: u.cols(), u: u.as_slice().to_vec(), v: v.as_slice().to_vec() },
        }
    }

    fn rows(&self) -> usize {
        match self {
            Self::Dense { rows, .. } | Self::Factored { rows, .. } => *rows,
        }
    }

    /// `out = x · W[rows, cols]ᵀ + beta · out` for `m` token rows `x` (row-major, `cols.len()` columns),
    /// a range of the weight's rows (outputs) and columns (inputs); `tmp` holds the factored path's `x V`.
    #[allow(clippy::too_many_arguments)]
    fn apply<G: Gemm<T>>(
        &self,
        g: &G,
        m: usize,
        x: &[T],
        out: &mut [T],
        beta: T,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        tmp: &mut Vec<T>,
    ) {
        let k = cols.len();
        let a = Operand::row_major(x, m, k, k);
        match self {
            Self::Dense { cols: stride, w, .. } => {
                // W[rows, cols]ᵀ: k × |rows|, read from the row-major W in place.
                let b = Operand::col_major(&w[rows.start * stride + cols.start..], k, rows.len(), *stride);
                product(g, a, b, beta, out);
            }
            Self::Factored { r, u, v, .. } => {
                tmp.clear();
                tmp.resize(m * r, T::default());
                product(g, a, Operand::row_major(&v[cols.start * r..], k, *r, *r), T::default(), tmp);
                product(g, Operand::row_major(tmp, m, *r, *r), Operand::col_major(&u[rows.start * r..], *r, rows.len(), *r), beta, out);
            }
        }
    }
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
    /// `W₂ᵀ` (hidden × d, row-major) when `W₂` is dense and `d ≤ NARROW_OUTPUT`.
    w2t: Option<Vec<T>>,
}

/// A model laid out for the engine (weights copied once, row-major, factors kept): the model's
/// [`Stack`] skeleton over the engine's heads and feed-forward layers, and the workspaces of its
/// forwards, kept between forwards ([`EngineModel::lease_workspace`]) so that a forward allocates only its
/// output batch once the first one has run.
#[derive(Debug)]
pub struct EngineModel<T> {
    stack: Stack<Head<T>, Ffn<T>>,
    workspaces: std::sync::Mutex<Vec<Workspace<T>>>,
}

impl<T: Clone> Clone for EngineModel<T> {
    /// The weights; the clone starts with no workspaces of its own.
    fn clone(&self) -> Self {
        Self { stack: self.stack.clone(), workspaces: std::sync::Mutex::new(Vec::new()) }
    }
}

/// A [`Workspace`] on loan from an [`EngineModel`]: returned to the model when dropped.
#[derive(Debug)]
pub struct WorkspaceLease<'a, T> {
    pool: &'a std::sync::Mutex<Vec<Workspace<T>>>,
    workspace: Option<Workspace<T>>,
}

impl<T> std::ops::Deref for WorkspaceLease<'_, T> {
    type Target = Workspace<T>;
    fn deref(&self) -> &Workspace<T> {
        self.workspace.as_ref().expect("a lease holds its workspace until dropped")
    }
}

impl<T> std::ops::DerefMut for WorkspaceLease<'_, T> {
    fn deref_mut(&mut self) -> &mut Workspace<T> {
        self.workspace.as_mut().expect("a lease holds its workspace until dropped")
    }
}

impl<T> Drop for WorkspaceLease<'_, T> {
    fn drop(&mut self) {
        if let Some(w) = self.workspace.take() {
            self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(w);
        }
    }
}

/// Per-worker buffers, reused across groups and, through [`EngineModel::lease_workspace`], across forwards.
#[derive(Debug)]
pub struct Workspace<T> {
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
    mixed: Vec<T>,
    delta: Vec<T>,
    hidden: Vec<T>,
    scores: Vec<T>,
    row: Vec<T>,
    mix_row: Vec<T>,
    tmp: Vec<T>,
    rank_one: Vec<T>,
}

impl<T> Default for Workspace<T> {
    fn default() -> Self {
        Self {
            q: Vec::new(),
            k: Vec::new(),
            v: Vec::new(),
            mixed: Vec::new(),
            delta: Vec::new(),
            hidden: Vec::new(),
            scores: Vec::new(),
            row: Vec::new(),
            mix_row: Vec::new(),
            tmp: Vec::new(),
            rank_one: Vec::new(),
        }
    }
}

fn sized<T: Float>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.resize(len, T::default());
    &mut v[..len]
}

/// Whole sequences per group for a batch of `batch` sequences of length `n` on `workers` workers:
/// about [`GROUP_ROWS`] tokens, but at least one group per worker when the batch allows it.
pub fn sequences_per_group(batch: usize, n: usize, workers: usize) -> usize {
    GROUP_ROWS.div_ceil(n.max(1)).min(batch.div_ceil(workers.max(1))).max(1)
}

impl<T: Float> EngineModel<T> {
    /// Lays `model` out for the engine.
    pub fn new(model: &Model<T>) -> Self {
        let stack = model.stack().map(
            |_, h| Head {
                w_q: Linear::new(&h.w_q),
                w_k: Linear::new(&h.w_k),
                w_v: Linear::new(&h.w_v),
                w_o: Linear::new(&h.w_o),
                b_q: h.b_q.clone(),
            },
            |_, f| Ffn {
                w1: Linear::new(&f.w1),
                b1: f.b1.clone(),
                w2: Linear::new(&f.w2),
                b2: f.b2.clone(),
                w2t: match &f.w2 {
                    Weight::Dense(m) if m.rows() <= NARROW_OUTPUT => {
                        Some((0..m.cols()).flat_map(|c| (0..m.rows()).map(move |r| (r, c))).map(|(r, c)| *m.get(r, c)).collect())
                    }
                    _ => None,
                },
            },
        );
        Self { stack, workspaces: std::sync::Mutex::new(Vec::new()) }
    }

    /// A workspace for one worker of a forward: one its earlier forwards returned (buffers already sized)
    /// or a new one; it goes back to this model when the lease is dropped.
    pub fn lease_workspace(&self) -> WorkspaceLease<'_, T> {
        let reused = self.workspaces.lock().unwrap_or_else(|e| e.into_inner()).pop();
        WorkspaceLease { pool: &self.workspaces, workspace: Some(reused.unwrap_or_default()) }
    }

    /// Token dimension.
    pub fn dim(&self) -> usize {
        self.stack.dim()
    }

    /// Runs a group of whole sequences of length `n` (`z`: row-major tokens × d, updated in place)
    /// through the stack. `first_sequence` only names the group in overflow errors.
    pub fn forward_group<G: Gemm<T>>(&self, g: &G, z: &mut [T], n: usize, first_sequence: usize, w: &mut Workspace<T>) -> Result<()> {
        let d = self.dim();
        let rows = z.len() / d;
        let zero = T::default();
        let one = T::from_f64(1.0);
        for (b, block) in self.stack.blocks().iter().enumerate() {
            if let Some(Attention { heads, normalizer, causal }) = &block.attention {
                sized(&mut w.delta, rows * d).fill(zero);
                for head in heads {
                    let hs = head.w_q.rows();
                    let len = rows * hs;
                    head.w_q.apply(g, rows, z, sized(&mut w.q, len), zero, 0..hs, 0..d, &mut w.tmp);
                    if let Some(bq) = &head.b_q {
                        for row in w.q.chunks_exact_mut(hs) {
                            row.iter_mut().zip(bq).for_each(|(a, c)| *a = a.add(c));
                        }
                    }
                    head.w_k.apply(g, rows, z, sized(&mut w.k, len), zero, 0..hs, 0..d, &mut w.tmp);
                    head.w_v.apply(g, rows, z, sized(&mut w.v, len), zero, 0..hs, 0..d, &mut w.tmp);
                    sized(&mut w.mixed, len);
                    for seq in 0..rows / n {
                        attention_core(g, w, seq * n * hs..(seq + 1) * n * hs, hs, *normalizer, *causal);
                    }
                    head.w_o.apply(g, rows, &w.mixed, &mut w.delta, one, 0..d, 0..hs, &mut w.tmp);
                }
                z.iter_mut().zip(&w.delta).for_each(|(a, c)| *a = a.add(c));
                check_output(z, || format!("blocks.{b}.attn (group from sequence {first_sequence})"))?;
            }
            if let Some(f) = &block.ffn {
                let q = f.w1.rows();
                sized(&mut w.delta, rows * d).fill(zero);
                let chunk = hidden_chunk::<T>(rows, f.w2t.is_some());
                // A rank-1 first layer (the memorizer's W₁ = 1 wᵀ): the projection t = X v once per
                // group, then each tile in one pass, H = ReLU(t uᵀ + b₁) (one rounding of t·u, then + b₁).
                let rank_one = match &f.w1 {
                    Linear::Factored { r: 1, v, .. } => {
                        let t = sized(&mut w.rank_one, rows);
                        product(g, Operand::row_major(z, rows, d, d), Operand::row_major(v, d, 1, 1), zero, t);
                        true
                    }
                    _ => false,
                };
                let mut start = 0;
                while start < q {
                    let end = (start + chunk).min(q);
                    let width = end - start;
                    let bias = &f.b1[start..end];
                    // The memorizer's tile in one pass where the multiplier has a fused kernel for it.
                    let fused = match (rank_one, &f.w1, &f.w2t) {
                        (true, Linear::Factored { u, .. }, Some(w2t)) => {
                            g.rank_one_narrow(&w.rank_one[..rows], &u[start..end], bias, &w2t[start * d..end * d], d, &mut w.delta)
                        }
                        _ => false,
                    };
                    if !fused {
                        let hidden = sized(&mut w.hidden, rows * width);
                        if let (true, Linear::Factored { u, .. }) = (rank_one, &f.w1) {
                            rank_one_relu(&w.rank_one[..rows], &u[start..end], bias, hidden);
                        } else {
                            f.w1.apply(g, rows, z, hidden, zero, start..end, 0..d, &mut w.tmp);
                            for row in hidden.chunks_exact_mut(width) {
                                row.iter_mut().zip(bias).for_each(|(h, c)| *h = h.add(c).relu());
                            }
                        }
                        let narrow = f
                            .w2t
                            .as_ref()
                            .is_some_and(|w2t| g.narrow_product(rows, width, d, &w.hidden, &w2t[start * d..end * d], &mut w.delta));
                        if !narrow {
                            f.w2.apply(g, rows, &w.hidden, &mut w.delta, one, 0..d, start..end, &mut w.tmp);
                        }
                    }
                    // Test-only: a deliberate slowdown (the first layer computed twice) that the
                    // instruction-count gate must catch (`scripts/bench-gate.sh --self-test`).
                    #[cfg(feature = "gate-slowdown")]
                    {
                        let mut again = vec![zero; rows * width];
                        f.w1.apply(g, rows, z, &mut again, zero, start..end, 0..d, &mut Vec::new());
                        std::hint::black_box(&again);
                    }
                    start = end;
                }
                for (t, dt) in z.chunks_exact_mut(d).zip(w.delta.chunks_exact(d)) {
                    for ((a, y), c) in t.iter_mut().zip(dt).zip(&f.b2) {
                        *a = a.add(&y.add(c));
                    }
                }
                check_output(z, || format!("blocks.{b}.ffn (group from sequence {first_sequence})"))?;
            }
        }
        Ok(())
    }
}

/// Hidden units per FFN tile for a group of `rows` tokens: [`HIDDEN_CHUNK`], except for narrow outputs
/// (the narrow-output kernel reads the tile once, row block by row block), where the tile is kept to
/// [`NARROW_TILE_BYTES`] so that it is still in L2 when the kernel reads it.
fn hidden_chunk<T>(rows: usize, narrow: bool) -> usize {
    if narrow {
        (NARROW_TILE_BYTES / (rows.max(1) * std::mem::size_of::<T>())).clamp(64, HIDDEN_CHUNK)
    } else {
        HIDDEN_CHUNK
    }
}

/// Bytes of a hidden tile feeding the narrow-output kernel (half of a 512 KiB L2).
pub const NARROW_TILE_BYTES: usize = 256 << 10;

/// `H = ReLU(t uᵀ + b)` for a rank-1 first layer: `t` the group's projections (one per token), `u` and `b`
/// the tile's slice of the left factor and the bias, `h` row-major `t.len() × u.len()`. Each entry is
/// `(t_i · u_j) + b_j`, rounded after the product and after the sum, as the unfused path computes it.
pub(crate) fn rank_one_relu<T: Float>(t: &[T], u: &[T], b: &[T], h: &mut [T]) {
    for (row, ti) in h.chunks_exact_mut(u.len()).zip(t) {
        for ((hj, uj), bj) in row.iter_mut().zip(u).zip(b) {
            *hj = ti.mul(uj).add(bj).relu();
        }
    }
}

/// Mixes the values of one sequence (elements `r` of the projections) into `w.mixed`.
fn attention_core<T: Float, G: Gemm<T>>(
    g: &G,
    w: &mut Workspace<T>,
    r: std::ops::Range<usize>,
    hs: usize,
    normalizer: Normalizer,
    causal: bool,
) {
    let n = r.len() / hs;
    let (q, k, v) = (&w.q[r.clone()], &w.k[r.clone()], &w.v[r.clone()]);
    let mixed = &mut w.mixed[r];
    if normalizer == Normalizer::Softmax && hs >= GEMM_HEAD_SIZE {
        // Queries in tiles of QUERY_TILE rows: a tile's scores (tile × keys) are one product, a max-shifted
        // softmax per row, and one product with V, so the score buffer is at most QUERY_TILE × n however
        // long the sequence. A causal tile needs only the keys up to its last query.
        for j0 in (0..n).step_by(QUERY_TILE) {
            let j1 = (j0 + QUERY_TILE).min(n);
            let (rows, keys) = (j1 - j0, if causal { j1 } else { n });
            let scores = sized(&mut w.scores, rows * keys);
            g.gemm(Operand::row_major(&q[j0 * hs..], rows, hs, hs), Operand::col_major(k, hs, keys, hs), T::default(), scores);
            for (jr, row) in scores.chunks_exact_mut(keys).enumerate() {
                let visible = if causal { j0 + jr + 1 } else { keys };
                let max = row[..visible].iter().copied().fold(row[0], |m, x| if x > m { x } else { m });
                let mut total = T::default();
                for (i, x) in row.iter_mut().enumerate() {
                    *x = if i < visible { x.sub(&max).exp() } else { T::default() };
                    total = total.add(x);
                }
                row.iter_mut().for_each(|x| *x = x.div(&total));
            }
            let out = &mut mixed[j0 * hs..j1 * hs];
            g.gemm(Operand::row_major(&w.scores, rows, keys, keys), Operand::row_major(v, keys, hs, hs), T::default(), out);
        }
    } else {
        attend_sequence(q, k, v, hs, normalizer, causal, &mut w.row, &mut w.mix_row, |j, m| mixed[j * hs..(j + 1) * hs].copy_from_slice(m));
    }
}

/// A plain triple-loop [`Gemm`] (dot products in a fixed order): the engine's reference multiplier, used
/// by tests and as a fallback.
#[derive(Clone, Copy, Debug, Default)]
pub struct NaiveGemm;

impl<T: Float> Gemm<T> for NaiveGemm {
    fn gemm(&self, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
        small_gemm(a, b, beta, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::fixtures::{random_batch, random_model, RandomModelSpec};
    use boltz_core::rng::SeededRng;
    use boltz_core::{Backend, ReferenceBackend};

    #[test]
    fn grouped_forward_matches_the_reference() {
        for (seed, hs, hidden, normalizer, factor_rank, causal) in [
            (1, 16, 3000, Normalizer::Softmax, None, false),
            (2, 1, 4, Normalizer::Hardmax, None, false),
            (3, 9, 20, Normalizer::Softmax, Some(2), true),
        ] {
            let mut rng = SeededRng::new(seed);
            let spec =
                RandomModelSpec { dim: 12, blocks: 2, heads: 2, head_size: hs, hidden, normalizer, causal, query_bias: true, factor_rank };
            let model: Model<f64> = random_model(&mut rng, &spec);
            let x = random_batch(&mut rng, 5, 7, 12);
            let expected = ReferenceBackend.run(&model, &x).expect("reference");
            let prepared = EngineModel::new(&model);
            let mut z = x.as_slice().to_vec();
            let mut ws = Workspace::default();
            for (i, group) in z.chunks_mut(2 * 7 * 12).enumerate() {
                prepared.forward_group(&NaiveGemm, group, 7, 2 * i, &mut ws).expect("forward");
            }
            let err = z.iter().zip(expected.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-9, "seed {seed}: max error {err}");
        }
    }

    /// Sequences longer than a query tile (several tiles, a partial last one), causal and not.
    #[test]
    fn long_sequences_run_in_query_tiles() {
        for (seed, causal) in [(5, false), (6, true)] {
            let mut rng = SeededRng::new(seed);
            let spec = RandomModelSpec { causal, ..RandomModelSpec::sized(8, 1, 1, 16, 12) };
            let model: Model<f64> = random_model(&mut rng, &spec);
            let n = 2 * QUERY_TILE + 37;
            let x = random_batch(&mut rng, 2, n, 8);
            let expected = ReferenceBackend.run(&model, &x).expect("reference");
            let prepared = EngineModel::new(&model);
            let mut z = x.as_slice().to_vec();
            prepared.forward_group(&NaiveGemm, &mut z, n, 0, &mut Workspace::default()).expect("forward");
            let err = z.iter().zip(expected.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-9, "causal {causal}: max error {err}");
        }
    }

    #[test]
    fn workspaces_are_reused_across_forwards() {
        let mut rng = SeededRng::new(9);
        let spec = RandomModelSpec::sized(8, 1, 1, 8, 40);
        let model: EngineModel<f64> = EngineModel::new(&random_model(&mut rng, &spec));
        let x = random_batch(&mut rng, 2, 5, 8);
        let run = || {
            let mut z = x.as_slice().to_vec();
            model.forward_group(&NaiveGemm, &mut z, 5, 0, &mut model.lease_workspace()).expect("forward");
            z
        };
        let first = run();
        let hidden = model.lease_workspace().hidden.as_ptr();
        assert_eq!(model.workspaces.lock().expect("pool").len(), 1, "the lease went back");
        assert_eq!(run(), first, "a reused workspace gives the same forward");
        assert_eq!(model.lease_workspace().hidden.as_ptr(), hidden, "the same buffer, not a new one");
        let (a, b) = (model.lease_workspace(), model.lease_workspace());
        drop((a, b));
        assert_eq!(model.workspaces.lock().expect("pool").len(), 2, "two workers' workspaces are kept");
        assert_eq!(model.clone().workspaces.lock().expect("pool").len(), 0);
    }

    #[test]
    fn group_sizes() {
        assert_eq!(sequences_per_group(32, 128, 2), 2);
        assert_eq!(sequences_per_group(64, 8, 2), 32);
        assert_eq!(sequences_per_group(1, 1000, 4), 1);
        assert_eq!(sequences_per_group(10_000, 16, 2), 16);
    }
}
