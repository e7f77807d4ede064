//! # boltz-blas
//!
//! A CPU backend for `f32` and `f64` whose matrix products run in the system OpenBLAS (through
//! `ndarray`'s `blas` feature), plus what LAPACK is for: an SVD-based rank and conditioning report of a
//! model's attention products ([`rank`]), and a safe, reported choice of OpenBLAS kernel ([`openblas`]).
//!
//! ## How a forward runs
//! The shared stack engine ([`boltz_cpu::engine`]: groups of whole sequences, one GEMM per token-wise
//! product over a group, tiled FFNs, factored weights kept factored) with its matrix products in
//! OpenBLAS (`cblas_?gemm` through `ndarray`). Each worker of the backend's own rayon pool runs whole
//! groups and calls OpenBLAS single-threaded (OpenBLAS's thread count is set to 1, process-wide): the
//! parallelism is over groups, which avoids OpenBLAS's fork/join on the many medium-sized products and
//! never nests two thread pools. Peak working memory: see the engine's docs.

pub mod openblas;
pub mod rank;

// Forces the link of the system OpenBLAS (cblas + LAPACK symbols).
extern crate blas_src as _;
extern crate openblas_src as _;

use std::collections::BTreeMap;
use std::sync::Once;

use boltz_core::{Float, Result};
use boltz_cpu::engine::{Gemm, Operand};
use boltz_cpu::{EngineBackend, Multiplier};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar, ShapeBuilder};

pub use openblas::{CoreReport, CoreSource, VectorIsa};
pub use rank::{rank_report, HeadRank, ProductRank};

/// Element types the BLAS backend runs: `f32` and `f64`.
pub trait BlasFloat: Float + LinalgScalar + Send + Sync {}
impl BlasFloat for f32 {}
impl BlasFloat for f64 {}

/// The BLAS backend (see the crate docs): the engine with [`OpenBlas`]. Its OpenBLAS kernel report is
/// `backend.multiplier().core()`.
pub type BlasBackend = EngineBackend<OpenBlas>;

static WARN_ONCE: Once = Once::new();

/// The OpenBLAS multiplier: `cblas_?gemm` through ndarray's `general_mat_mul` on strided views, each
/// worker calling single-threaded OpenBLAS.
#[derive(Clone, Debug)]
pub struct OpenBlas {
    core: CoreReport,
}

impl OpenBlas {
    /// The multiplier alone, without setting OpenBLAS's thread count (for calling the engine directly,
    /// as the instruction-count gate does); [`Multiplier::create`] is what the backend uses.
    pub fn new() -> Self {
        Self { core: CoreReport::current() }
    }

    /// The OpenBLAS kernel report.
    pub fn core(&self) -> &CoreReport {
        &self.core
    }
}

impl Default for OpenBlas {
    fn default() -> Self {
        Self::new()
    }
}

impl Multiplier for OpenBlas {
    const BACKEND: &'static str = "blas";
    const DEVICE: &'static str = "host (OpenBLAS)";

    /// Sets OpenBLAS's own thread count to 1 (process-wide) and reports its kernel; prints (once per
    /// process) a warning when OpenBLAS runs a generic kernel on a modern CPU.
    fn create() -> Result<Self> {
        openblas::set_threads(1);
        let multiplier = Self::new();
        if let Some(w) = multiplier.core.warning() {
            WARN_ONCE.call_once(|| eprintln!("{w}"));
        }
        Ok(multiplier)
    }

    fn details(&self, details: &mut BTreeMap<String, String>) {
        details.insert("openblas_corename".into(), self.core.corename.clone());
        details.insert("openblas_config".into(), self.core.config.clone());
        details.insert("openblas_coretype_env".into(), self.core.coretype_env.clone().unwrap_or_else(|| "(unset)".into()));
        details.insert("openblas_core_source".into(), format!("{:?}", self.core.source));
        details.insert("openblas_threads_per_worker".into(), "1".into());
        details.insert("cpu_isa".into(), format!("{:?}", self.core.cpu_isa));
        if let Some(w) = self.core.warning() {
            details.insert("warning".into(), w);
        }
    }
}

impl<T: BlasFloat> Gemm<T> for OpenBlas {
    fn gemm(&self, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
        fn view<T>(o: Operand<'_, T>) -> Result<ArrayView2<'_, T>, ndarray::ShapeError> {
            ArrayView2::from_shape((o.rows, o.cols).strides((o.row_stride, o.col_stride)), o.data.get(..o.extent()).unwrap_or(&[]))
        }
        let (m, k, n) = (a.rows, a.cols, b.cols);
        // The engine's operands always cover their extents (a violation is a bug in the engine, not input).
        match (view(a), view(b), ArrayViewMut2::from_shape((m, n), &mut c[..m * n])) {
            (Ok(a), Ok(b), Ok(mut c)) => general_mat_mul(T::one(), &a, &b, beta, &mut c),
            _ => unreachable!("engine operands out of bounds: m={m} k={k} n={n}"),
        }
    }
}
