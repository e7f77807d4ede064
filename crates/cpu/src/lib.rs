//! # boltz-cpu
//!
//! A multi-threaded, pure-Rust CPU backend for `f32` and `f64`: the shared stack engine
//! ([`boltz_core::engine`]) with its matrix products in `matrixmultiply` (pure-Rust packed GEMM kernels
//! that detect AVX2/FMA/AVX-512 at run time) and its groups of sequences spread over the backend's
//! *own* rayon pool (the thread count is a constructor argument, reported in [`DeviceInfo`]).
//!
//! * **Low rank stays low rank:** a factored weight `U Vᵀ` is applied as `(X V) Uᵀ`, so a rank-1 head
//!   costs O(n·d) for its projections and O(n²) for its scores — never a dense d×d product.
//! * **Wide FFNs are tiled** over hidden units, so the memorizer's width-nN layer streams `W₂` once per
//!   group of ~256 tokens instead of once per token.
//! * **Memory:** see the engine's docs: per worker one `n × n` score block at most, one hidden tile and
//!   the group's projections, on top of the input and output batches.
//! * **Numerics:** softmax is max-shifted; hardmax sums the exactly tied maxima and divides by their count
//!   (deterministic, same rule as the reference); every block's result is checked for overflow.

use boltz_core::backend::check_input;
use boltz_core::engine::{sequences_per_group, Gemm, Operand, PreparedModel, Workspace};
use boltz_core::{Backend, Batch, DeviceInfo, Error, Float, Model, Result};
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

/// Element types with a `matrixmultiply` kernel.
pub trait CpuFloat: Float + Send + Sync {
    /// `C = A·B + beta·C` through `matrixmultiply` (single-threaded).
    fn mm(m: usize, k: usize, n: usize, a: Operand<'_, Self>, b: Operand<'_, Self>, beta: Self, c: &mut [Self]);
}

macro_rules! impl_cpu_float {
    ($t:ty, $f:path) => {
        impl CpuFloat for $t {
            fn mm(m: usize, k: usize, n: usize, a: Operand<'_, Self>, b: Operand<'_, Self>, beta: Self, c: &mut [Self]) {
                let last = |o: &Operand<'_, Self>, r: usize, cc: usize| (r.max(1) - 1) * o.row_stride + (cc.max(1) - 1) * o.col_stride;
                // The engine's operands always cover their extents; checked here because the kernel reads raw pointers.
                assert!(m == 0 || k == 0 || last(&a, m, k) < a.data.len(), "gemm: A is too short");
                assert!(k == 0 || n == 0 || last(&b, k, n) < b.data.len(), "gemm: B is too short");
                assert!(c.len() >= m * n, "gemm: C is too short");
                let s = |x: usize| x as isize;
                // SAFETY: the asserts above keep every access of the m×k, k×n and m×n operands in bounds.
                unsafe {
                    $f(
                        m,
                        k,
                        n,
                        1.0,
                        a.data.as_ptr(),
                        s(a.row_stride),
                        s(a.col_stride),
                        b.data.as_ptr(),
                        s(b.row_stride),
                        s(b.col_stride),
                        beta,
                        c.as_mut_ptr(),
                        s(n),
                        1,
                    )
                }
            }
        }
    };
}
impl_cpu_float!(f32, matrixmultiply::sgemm);
impl_cpu_float!(f64, matrixmultiply::dgemm);

/// The `matrixmultiply` multiplier.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatrixMultiply;

impl<T: CpuFloat> Gemm<T> for MatrixMultiply {
    fn gemm(&self, m: usize, k: usize, n: usize, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
        T::mm(m, k, n, a, b, beta, c);
    }
}

/// A model laid out for the CPU backend.
pub type CpuModel<T> = PreparedModel<T>;

impl<T: CpuFloat> Backend<T> for CpuBackend {
    type Prepared = CpuModel<T>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn device_info(&self) -> DeviceInfo {
        let mut details = std::collections::BTreeMap::new();
        details.insert("dtype".into(), T::DTYPE.into());
        details.insert("gemm".into(), "matrixmultiply 0.3 (runtime-detected SIMD)".into());
        DeviceInfo { backend: "cpu".into(), device: "host (rayon)".into(), threads: self.threads, details }
    }

    fn prepare(&self, model: &Model<T>) -> Result<CpuModel<T>> {
        Ok(PreparedModel::new(model))
    }

    fn forward(&self, model: &CpuModel<T>, input: &Batch<T>) -> Result<Batch<T>> {
        check_input(model.dim(), input)?;
        let (batch, n, d) = (input.batch(), input.len(), input.dim());
        let mut data = input.as_slice().to_vec();
        let per_group = sequences_per_group(batch, n, self.threads);
        self.pool.install(|| {
            data.par_chunks_mut(per_group * n * d)
                .enumerate()
                .try_for_each_init(Workspace::default, |ws, (g, z)| model.forward_group(&MatrixMultiply, z, n, g * per_group, ws))
        })?;
        Batch::new(batch, n, d, data)
    }
}
