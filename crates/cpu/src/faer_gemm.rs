//! The `gemm` crate (faer's and candle's CPU GEMM, 0.19) as a [`Multiplier`] of the engine: packed
//! micro-kernels for AVX-512F (the `x86-v4` feature), AVX2 + FMA, NEON and a portable fallback, chosen at
//! run time (the build targets baseline x86-64). Single-threaded per call: the engine's workers already
//! run one group of sequences each.

use std::collections::BTreeMap;

use boltz_core::Result;

use crate::engine::{Gemm, Operand};
use crate::kernels::narrow_product;
use crate::rank_one::rank_one_narrow;
use crate::{CpuFloat, Multiplier};

/// The `gemm` crate's multiplier (the engine's narrow-output kernel for `H · W₂ᵀ` with 4–32 outputs, and
/// the fused rank-1 FFN kernel of [`crate::rank_one`] where it applies).
#[derive(Clone, Copy, Debug, Default)]
pub struct FaerGemm;

/// `C = A·B + beta·C` through `gemm::gemm` (single-threaded), after the bounds checks of
/// [`crate::engine::checked_dims`] (as [`CpuFloat::mm`]).
pub fn faer_gemm<T: CpuFloat>(a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
    let (m, k, n) = crate::engine::checked_dims(&a, &b, c);
    let s = |x: usize| x as isize;
    let read_dst = beta != T::default();
    // SAFETY: `checked_dims` asserted above keeps every access of the m×k, k×n and m×n (row-major, n apart) operands
    // in bounds; `c` is not aliased by `a` or `b` (a shared and a mutable borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            s(n),
            read_dst,
            a.data.as_ptr(),
            s(a.col_stride),
            s(a.row_stride),
            b.data.as_ptr(),
            s(b.col_stride),
            s(b.row_stride),
            beta,
            T::from_f64(1.0),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

impl<T: CpuFloat> Gemm<T> for FaerGemm {
    fn gemm(&self, a: Operand<'_, T>, b: Operand<'_, T>, beta: T, c: &mut [T]) {
        faer_gemm(a, b, beta, c);
    }

    fn narrow_product(&self, rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
        narrow_product(rows, width, d, h, w2t, y)
    }

    fn rank_one_narrow(&self, t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) -> bool {
        rank_one_narrow(t, u, b, w2t, d, y)
    }
}

impl Multiplier for FaerGemm {
    const BACKEND: &'static str = "cpu";
    const DEVICE: &'static str = "host (rayon)";

    fn create() -> Result<Self> {
        Ok(Self)
    }

    fn details(&self, details: &mut BTreeMap<String, String>) {
        details.insert("gemm".into(), "gemm 0.19 (faer's kernels; AVX-512F/AVX2/NEON chosen at run time)".into());
    }
}
