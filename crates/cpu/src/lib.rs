//! # boltz-cpu
//!
//! The CPU execution engine and the backends built on it. [`engine`] runs a model's stack over groups
//! of whole sequences with one GEMM per token-wise product; [`EngineBackend`] is the one generic backend
//! that spreads those groups over its *own* rayon pool (the thread count is a constructor argument,
//! reported in [`DeviceInfo`]) and multiplies with a plugged-in [`Multiplier`] — the burn pattern: one
//! backend, runtimes plugged in. [`CpuBackend`] is `EngineBackend<`[`CpuMultiplier`]`>`, the `gemm` crate's
//! pure-Rust packed kernels (AVX-512F, AVX2 + FMA, NEON, chosen at run time); [`MatrixMultiply`] (the
//! `matrixmultiply` crate, AVX2 at most) plugs in the same way, and `boltz-blas` plugs in OpenBLAS. The
//! machine's own ceilings (FMA peak, memory bandwidth) are measured by [`roofline`].
//!
//! * **Low rank stays low rank:** a factored weight `U Vᵀ` is applied as `(X V) Uᵀ`, so a rank-1 head
//!   costs O(n·d) for its projections and O(n²) for its scores — never a dense d×d product.
//! * **Wide FFNs are tiled** over hidden units, so the memorizer's width-nN layer streams `W₂` once per
//!   group of ~256 tokens instead of once per token; their second product, when it has 4, 8, 16 or 32
//!   outputs, runs in a register-blocked kernel of fused multiply-adds compiled for AVX-512 and AVX2 and
//!   chosen at run time (the build itself targets baseline x86-64; no `target-cpu=native`).
//! * **Memory:** see the engine's docs: per worker one `min(n, 128) × n` score block at most, one hidden
//!   tile and the group's projections (kept with the prepared model between forwards), on top of the
//!   input and output batches.
//! * **Numerics:** softmax is max-shifted; hardmax sums the exactly tied maxima and divides by their count
//!   (deterministic, same rule as the reference); every block's result is checked for overflow.

pub mod engine;
pub mod faer_gemm;
pub mod kernels;
pub mod rank_one;
pub mod roofline;
pub mod threads;

pub use faer_gemm::FaerGemm;
pub use threads::worker_pool;

use std::collections::BTreeMap;

use boltz_core::backend::check_input;
use boltz_core::{Backend, Batch, DeviceInfo, Float, Model, Result};
use engine::{sequences_per_group, EngineModel, Gemm, Operand};
use rayon::prelude::*;

/// What plugs into [`EngineBackend`]: a matrix multiplier ([`Gemm`] for its element types), how the
/// backend that uses it is named, and what it reports about itself.
pub trait Multiplier: Send + Sync + Sized {
    /// The backend's name (`cpu`, `blas`).
    const BACKEND: &'static str;
    /// The device, as [`DeviceInfo::device`] reports it.
    const DEVICE: &'static str;
    /// Sets the multiplier up (once per backend).
    fn create() -> Result<Self>;
    /// Entries for [`DeviceInfo::details`] (library, kernel, warnings).
    fn details(&self, details: &mut BTreeMap<String, String>);
}

/// The one engine-based CPU backend, generic over its [`Multiplier`] (see the crate docs).
pub struct EngineBackend<G> {
    threads: usize,
    pool: rayon::ThreadPool,
    multiplier: G,
}

/// The multiplier of the `cpu` backend: the `gemm` crate ([`FaerGemm`]), chosen by measurement on the
/// workloads (issue #30; `cargo run --release -p boltz-cpu --example multipliers`): on an AMD EPYC (Zen 3,
/// AVX2) it ran the practical forward 1.10–1.22× faster than `matrixmultiply` (best of 7 interleaved
/// rounds, 1 and 2 threads, f32 and f64) and the other workloads equally (their products are the engine's
/// own kernels); it also has AVX-512 micro-kernels, which `matrixmultiply` 0.3 lacks.
pub type CpuMultiplier = FaerGemm;

/// The pure-Rust CPU backend: the engine with [`CpuMultiplier`].
pub type CpuBackend = EngineBackend<CpuMultiplier>;

impl<G: Multiplier> std::fmt::Debug for EngineBackend<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBackend").field("backend", &G::BACKEND).field("threads", &self.threads).finish()
    }
}

impl<G: Multiplier> EngineBackend<G> {
    /// A backend with its own pool of `threads` worker threads (zero is an error).
    pub fn new(threads: usize) -> Result<Self> {
        let pool = worker_pool(G::BACKEND, threads)?;
        Ok(Self { threads, pool, multiplier: G::create()? })
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The plugged-in multiplier.
    pub fn multiplier(&self) -> &G {
        &self.multiplier
    }
}

impl<T: Float + Send + Sync, G: Multiplier + Gemm<T>> Backend<T> for EngineBackend<G> {
    type Prepared = EngineModel<T>;

    fn name(&self) -> &'static str {
        G::BACKEND
    }

    fn device_info(&self) -> DeviceInfo {
        let mut details = BTreeMap::new();
        details.insert("dtype".into(), T::DTYPE.into());
        self.multiplier.details(&mut details);
        DeviceInfo { backend: G::BACKEND.into(), device: G::DEVICE.into(), threads: self.threads, details }
    }

    fn prepare(&self, model: &Model<T>) -> Result<EngineModel<T>> {
        Ok(EngineModel::new(model))
    }

    fn forward(&self, model: &EngineModel<T>, input: &Batch<T>) -> Result<Batch<T>> {
        grouped_forward(&self.pool, self.threads, model, &self.multiplier, input)
    }
}

/// One forward of `model` on `input` with the stack engine: the batch cut into groups of whole
/// sequences ([`sequences_per_group`] for `workers` workers), each group run through the whole stack on
/// one worker of `pool`, multiplying with `gemm`.
fn grouped_forward<T: Float + Send + Sync, G: Gemm<T>>(
    pool: &rayon::ThreadPool,
    workers: usize,
    model: &EngineModel<T>,
    gemm: &G,
    input: &Batch<T>,
) -> Result<Batch<T>> {
    check_input(model.dim(), input)?;
    let (batch, n, d) = (input.batch(), input.len(), input.dim());
    let mut data = input.as_slice().to_vec();
    let per_group = sequences_per_group(batch, n, workers);
    // Each group is a safe point of a watched computation (`boltz_core::watch`).
    let here = boltz_core::watch::here();
    here.stage(|| "cpu forward".into(), Some(batch))?;
    pool.install(|| {
        data.par_chunks_mut(per_group * n * d).enumerate().try_for_each_init(
            || model.lease_workspace(),
            |ws, (g, z)| {
                here.checkpoint()?;
                model.forward_group(gemm, z, n, g * per_group, ws)?;
                here.done(z.len() / (n * d))
            },
        )
    })?;
    Batch::new(batch, n, d, data)
}

/// Element types with a `matrixmultiply` kernel.
pub trait CpuFloat: Float + rank_one::FusedElement + Send + Sync + 'static {
    /// `C = A·B + beta·C` through `matrixmultiply` (single-threaded).
    fn mm(a: Operand<'_, Self>, b: Operand<'_, Self>, beta: Self, c: &mut [Self]);
}

macro_rules! impl_cpu_float {
    ($t:ty, $f:path) => {
        impl CpuFloat for $t {
            fn mm(a: Operand<'_, Self>, b: Operand<'_, Self>, beta: Self, c: &mut [Self]) {
                let (m, k, n) = engine::checked_dims(&a, &b, c);
                let s = |x: usize| x as isize;
                // SAFETY: `checked_dims` asserted above keeps every access of the m×k, k×n and m×n operands in bounds.
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
    /// Narrow FFN outputs (d ∈ {4, 8, 16, 32}: the memorizer's `H · W₂ᵀ` tiles) run in a register-blocked
    /// kernel compiled for AVX-512 / AVX2 (chosen at run time): matrixmultiply would spend most of its
    /// time packing the wide hidden tile for a 16-column product. Each term is a multiply then an add
    /// ([`kernels::narrow_product_unfused`]), so training on this multiplier reproduces its committed runs.
    fn narrow_product(&self, rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
        kernels::narrow_product_unfused(rows, width, d, h, w2t, y)
    }

    fn gemm(&self, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
        T::mm(a, b, beta, c);
    }
}

impl Multiplier for MatrixMultiply {
    const BACKEND: &'static str = "cpu";
    const DEVICE: &'static str = "host (rayon)";

    fn create() -> Result<Self> {
        Ok(Self)
    }

    fn details(&self, details: &mut BTreeMap<String, String>) {
        details.insert("gemm".into(), "matrixmultiply 0.3 (runtime-detected SIMD)".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_kernel_matches_the_plain_product() {
        for (rows, width, d) in [(7, 5, 4), (9, 33, 16), (4, 3, 8), (5, 17, 32)] {
            let h: Vec<f64> = (0..rows * width).map(|i| ((i * 37 % 11) as f64 - 5.0) / 4.0).collect();
            let w2t: Vec<f64> = (0..width * d).map(|i| ((i * 13 % 7) as f64 - 3.0) / 8.0).collect();
            let expected: Vec<f64> =
                (0..rows * d).map(|i| 1.0 + (0..width).map(|c| h[(i / d) * width + c] * w2t[c * d + i % d]).sum::<f64>()).collect();
            let mut y = vec![1.0; rows * d];
            assert!(Gemm::<f64>::narrow_product(&MatrixMultiply, rows, width, d, &h, &w2t, &mut y));
            let mut fused = vec![1.0; rows * d];
            assert!(Gemm::<f64>::narrow_product(&FaerGemm, rows, width, d, &h, &w2t, &mut fused));
            assert_eq!(fused, expected, "the fused kernel, rows {rows} width {width} d {d}");
            let mut z = vec![1.0; rows * d];
            assert!(kernels::narrow_baseline(d, width, &h, &w2t, &mut z));
            // Dyadic inputs: every sum is exact, so all three agree to the bit.
            assert_eq!(y, expected, "rows {rows} width {width} d {d}");
            assert_eq!(z, expected);
        }
        assert!(!Gemm::<f64>::narrow_product(&MatrixMultiply, 1, 1, 5, &[1.0], &[1.0; 5], &mut [0.0; 5]));
    }

    /// [`FaerGemm`] without its fused rank-1 kernel: the engine writes the hidden tile out.
    struct Unfused;

    impl<T: CpuFloat> Gemm<T> for Unfused {
        fn gemm(&self, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
            FaerGemm.gemm(a, b, beta, c);
        }

        fn narrow_product(&self, rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
            Gemm::<T>::narrow_product(&FaerGemm, rows, width, d, h, w2t, y)
        }
    }

    /// The memorizer workload's shape (rank-1 W₁, d = 16; a narrower FFN so that a debug build runs it
    /// quickly) through the whole engine, with and without the fused kernel: bit for bit the same
    /// forward, in f32 and f64, one worker and three (groups with an odd token count).
    fn fused_forward_is_the_unfused_forward<T: CpuFloat>() {
        let workload = boltz_core::workloads::Workload { batch: 37, ..boltz_core::workloads::find("memorizer").unwrap() };
        let (model, input) = workload.build(Some(5)).unwrap();
        let (model, input) = (EngineModel::new(&model.convert::<T>().unwrap()), input.convert::<T>().unwrap());
        for workers in [1, 3] {
            let pool = worker_pool("test", workers).unwrap();
            let fused = grouped_forward(&pool, workers, &model, &FaerGemm, &input).unwrap();
            let unfused = grouped_forward(&pool, workers, &model, &Unfused, &input).unwrap();
            assert_eq!(fused.as_slice(), unfused.as_slice(), "{} with {workers} workers", T::DTYPE);
            assert!(fused.as_slice() != input.as_slice(), "the FFN must change the tokens");
        }
    }

    #[test]
    fn fused_rank_one_ffn_changes_no_bit_of_the_forward() {
        fused_forward_is_the_unfused_forward::<f32>();
        fused_forward_is_the_unfused_forward::<f64>();
    }
}
