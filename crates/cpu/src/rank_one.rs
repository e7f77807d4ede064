//! The memorizer's FFN (Corollary 1's width-`nN` layer with `W₁ = 1 wᵀ`) as one fused AVX-512 or AVX2
//! pass: `y += ReLU(t uᵀ + b) · W₂ᵀ` for a tile of hidden units, without writing the hidden tile to memory.
//!
//! The unfused path ([`crate::engine`]) writes the tile `H = ReLU(t uᵀ + b)` (`rows × width`, kept in L2)
//! and then reads it back, one broadcast per multiply-add, in the narrow-output kernel. Here a block of
//! `R` tokens computes one vector of hidden units at a time (16 in f32, 8 in f64 with AVX-512; `t·u`
//! rounded, `+ b` rounded, then the ReLU: three instructions per vector), parks them in a stack buffer and
//! feeds them straight into `R × V` accumulators (`V` vectors per token for `d` outputs), each a chain of
//! fused multiply-adds over the tile's hidden units in order. Every output therefore sees exactly the
//! operations of the unfused path ([`crate::kernels::narrow_product`] after the engine's `rank_one_relu`):
//! the same roundings in the same order, so the two agree bit for bit (tested below on odd sizes).
//!
//! Only outputs that fill 1, 2 or 4 whole vectors take this path, on CPUs with AVX-512F or AVX2 (with
//! FMA; see [`Isa`]); everything else returns `false` and the engine falls back to the unfused path.

/// `y += ReLU(t uᵀ + b) · w2t` (see the module documentation): `t` one projection per token (`rows`),
/// `u`, `b` the tile's slices of the left factor and the bias (`width`), `w2t` row-major `width × d`,
/// `y` row-major `rows × d`, with the widest kernel this CPU runs that covers `d` (AVX-512F, else AVX2:
/// f32 with d = 8 fills no AVX-512 vector but two AVX2 ones). Returns `false` (and leaves `y` alone) when
/// no fused kernel covers `d` and the element type on this CPU.
pub fn rank_one_narrow<T: FusedElement>(t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) -> bool {
    // A kernel that declines writes nothing, so the next one starts from the same `y`.
    Isa::ALL.into_iter().any(|isa| rank_one_narrow_on(isa, t, u, b, w2t, d, y))
}

/// [`rank_one_narrow`] with the kernel of `isa`; `false` when this CPU lacks it or it has no kernel for
/// `d` and the element type.
pub fn rank_one_narrow_on<T: FusedElement>(isa: Isa, t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) -> bool {
    let width = u.len();
    assert_eq!(b.len(), width, "rank_one_narrow: bias and u differ in length");
    assert!(w2t.len() >= width * d, "rank_one_narrow: w2t is too short");
    assert!(y.len() >= t.len() * d, "rank_one_narrow: y is too short");
    isa.runs_here() && T::rank_one_narrow(isa, t, u, b, &w2t[..width * d], d, &mut y[..t.len() * d])
}

/// The instruction sets with a fused kernel: outputs in whole vectors, 1, 2 or 4 vectors per token
/// (AVX-512: f32 d ∈ {16, 32}, f64 d ∈ {8, 16, 32}; AVX2: f32 d ∈ {8, 16, 32}, f64 d ∈ {4, 8, 16}).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA: 32 registers of 64 bytes.
    Avx512,
    /// AVX2 with FMA: 16 registers of 32 bytes.
    Avx2,
}

impl Isa {
    /// Every instruction set with a kernel, widest first.
    pub const ALL: [Isa; 2] = [Isa::Avx512, Isa::Avx2];

    /// Whether this CPU runs the instruction set (detected at run time).
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            match self {
                Isa::Avx512 => fma && std::arch::is_x86_feature_detected!("avx512f"),
                Isa::Avx2 => fma && std::arch::is_x86_feature_detected!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }
}

/// Element types with a fused rank-1 FFN kernel (f32 and f64).
pub trait FusedElement: boltz_core::Float {
    /// The kernel of `isa` for this type (the caller checked the slices' lengths); `false` where the CPU
    /// lacks `isa` or it has no kernel for `d`.
    fn rank_one_narrow(isa: Isa, t: &[Self], u: &[Self], b: &[Self], w2t: &[Self], d: usize, y: &mut [Self]) -> bool;
}

macro_rules! fused_element {
    ($t:ty, $avx512:ident, $avx2:ident) => {
        impl FusedElement for $t {
            fn rank_one_narrow(isa: Isa, t: &[Self], u: &[Self], b: &[Self], w2t: &[Self], d: usize, y: &mut [Self]) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    use x86::{rows_for, $avx2, $avx512};
                    let lanes = if isa == Isa::Avx512 { 64 } else { 32 } / std::mem::size_of::<$t>();
                    if d == 0 || d % lanes != 0 || d > crate::engine::NARROW_OUTPUT || !isa.runs_here() {
                        return false;
                    }
                    // SAFETY: the CPU runs `isa` (checked just above); the slices have the lengths the
                    // kernels index (checked by `rank_one_narrow_on` and by the kernels' own asserts).
                    unsafe {
                        match (isa, d / lanes) {
                            (Isa::Avx512, 1) => $avx512::<1, { rows_for(32, 1) }>(t, u, b, w2t, y),
                            (Isa::Avx512, 2) => $avx512::<2, { rows_for(32, 2) }>(t, u, b, w2t, y),
                            (Isa::Avx512, 4) => $avx512::<4, { rows_for(32, 4) }>(t, u, b, w2t, y),
                            (Isa::Avx2, 1) => $avx2::<1, { rows_for(16, 1) }>(t, u, b, w2t, y),
                            (Isa::Avx2, 2) => $avx2::<2, { rows_for(16, 2) }>(t, u, b, w2t, y),
                            (Isa::Avx2, 4) => $avx2::<4, { rows_for(16, 4) }>(t, u, b, w2t, y),
                            _ => return false,
                        }
                    }
                    true
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (isa, t, u, b, w2t, d, y);
                    false
                }
            }
        }
    };
}
fused_element!(f32, rank_one_f32_avx512, rank_one_f32_avx2);
fused_element!(f64, rank_one_f64_avx512, rank_one_f64_avx2);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Tokens per block for `v` accumulator vectors per token with `registers` vector registers: as many
    /// as leave registers for the `v` weight vectors and a broadcast, at most 16 (at least 1).
    pub(super) const fn rows_for(registers: usize, v: usize) -> usize {
        let r = (registers - v - 2) / v;
        if r > 16 {
            16
        } else if r == 0 {
            1
        } else {
            r
        }
    }

    macro_rules! kernel {
        ($name:ident, $block:ident, $feature:literal, $t:ty, $vec:ty, $lanes:literal,
         $set1:ident, $loadu:ident, $storeu:ident, $mul:ident, $add:ident, $max:ident, $fmadd:ident, $zero:ident) => {
            /// The fused kernel for `V` vectors of outputs per token, `R` tokens per block.
            ///
            /// # Safety
            /// The CPU must have the target features.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name<const V: usize, const R: usize>(t: &[$t], u: &[$t], b: &[$t], w2t: &[$t], y: &mut [$t]) {
                let d = V * $lanes;
                let width = u.len();
                assert!(b.len() == width && w2t.len() == width * d && y.len() == t.len() * d);
                let mut blocks = t.chunks_exact(R);
                let mut ys = y.chunks_exact_mut(R * d);
                for (tb, yb) in (&mut blocks).zip(&mut ys) {
                    // SAFETY: the caller's CPU has the target features; the lengths were asserted above.
                    unsafe { $block::<V, R>(tb, u, b, w2t, yb) };
                }
                for (tb, yb) in blocks.remainder().chunks_exact(1).zip(ys.into_remainder().chunks_exact_mut(d)) {
                    // SAFETY: as above, for one token.
                    unsafe { $block::<V, 1>(tb, u, b, w2t, yb) };
                }
            }

            /// One block of `RB` tokens (`t.len() == RB`, `y.len() == RB · d`, `u`, `b` of `width`,
            /// `w2t` of `width · d`).
            ///
            /// # Safety
            /// The CPU must have the target features, and the slices the lengths above.
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn $block<const V: usize, const RB: usize>(t: &[$t], u: &[$t], b: &[$t], w2t: &[$t], y: &mut [$t]) {
                let d = V * $lanes;
                let width = u.len();
                let zero = $zero();
                let mut acc = [[zero; V]; RB];
                let mut hidden = [[0.0 as $t; $lanes]; RB];
                let mut w = [zero; V];
                let full = width - width % $lanes;
                let (up, bp, wp) = (u.as_ptr(), b.as_ptr(), w2t.as_ptr());
                // SAFETY: every pointer read below stays inside u, b (c + lanes ≤ width) and w2t (rows
                // c + k < width of d elements each), every write inside `hidden` and y (RB · d elements).
                unsafe {
                    let mut c = 0;
                    while c < full {
                        let uc = $loadu(up.add(c));
                        let bc = $loadu(bp.add(c));
                        for (h, tr) in hidden.iter_mut().zip(t) {
                            // ReLU(t·u + b): the product rounded, then the sum, as the unfused path.
                            $storeu(h.as_mut_ptr(), $max($add($mul($set1(*tr), uc), bc), zero));
                        }
                        for k in 0..$lanes {
                            let row = wp.add((c + k) * d);
                            for (v, wv) in w.iter_mut().enumerate() {
                                *wv = $loadu(row.add(v * $lanes));
                            }
                            for (acc_r, h_r) in acc.iter_mut().zip(&hidden) {
                                let h = $set1(h_r[k]);
                                for (a, wv) in acc_r.iter_mut().zip(&w) {
                                    *a = $fmadd(h, *wv, *a);
                                }
                            }
                        }
                        c += $lanes;
                    }
                    // The last width % lanes hidden units one at a time (the same operations, scalar).
                    for c in full..width {
                        let row = wp.add(c * d);
                        for (v, wv) in w.iter_mut().enumerate() {
                            *wv = $loadu(row.add(v * $lanes));
                        }
                        for (acc_r, tr) in acc.iter_mut().zip(t) {
                            let h = $set1((tr * u[c] + b[c]).max(0.0));
                            for (a, wv) in acc_r.iter_mut().zip(&w) {
                                *a = $fmadd(h, *wv, *a);
                            }
                        }
                    }
                    let yp = y.as_mut_ptr();
                    for (r, acc_r) in acc.iter().enumerate() {
                        for (v, a) in acc_r.iter().enumerate() {
                            let at = yp.add(r * d + v * $lanes);
                            $storeu(at, $add($loadu(at), *a));
                        }
                    }
                }
            }
        };
    }

    kernel!(
        rank_one_f32_avx512,
        block_f32_avx512,
        "avx512f,fma",
        f32,
        __m512,
        16,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_mul_ps,
        _mm512_add_ps,
        _mm512_max_ps,
        _mm512_fmadd_ps,
        _mm512_setzero_ps
    );
    kernel!(
        rank_one_f64_avx512,
        block_f64_avx512,
        "avx512f,fma",
        f64,
        __m512d,
        8,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_mul_pd,
        _mm512_add_pd,
        _mm512_max_pd,
        _mm512_fmadd_pd,
        _mm512_setzero_pd
    );
    kernel!(
        rank_one_f32_avx2,
        block_f32_avx2,
        "avx2,fma",
        f32,
        __m256,
        8,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_mul_ps,
        _mm256_add_ps,
        _mm256_max_ps,
        _mm256_fmadd_ps,
        _mm256_setzero_ps
    );
    kernel!(
        rank_one_f64_avx2,
        block_f64_avx2,
        "avx2,fma",
        f64,
        __m256d,
        4,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_mul_pd,
        _mm256_add_pd,
        _mm256_max_pd,
        _mm256_fmadd_pd,
        _mm256_setzero_pd
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::rng::SeededRng;

    /// The unfused path: the hidden tile written out by the engine's `rank_one_relu`, then the
    /// narrow-output kernel.
    fn unfused<T: FusedElement>(t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) {
        let width = u.len();
        let mut h = vec![T::default(); t.len() * width];
        crate::engine::rank_one_relu(t, u, b, &mut h);
        assert!(crate::kernels::narrow_product(t.len(), width, d, &h, w2t, y));
    }

    fn agree<T: FusedElement + std::fmt::Debug>(to: fn(f64) -> T, isa: Isa, d: usize) {
        let mut rng = SeededRng::new(7);
        for rows in [1, 2, 5, 16, 17, 33] {
            for width in [1, 7, 16, 17, 40, 129] {
                let mut draw = |k: usize| (0..k).map(|_| to(rng.normal())).collect::<Vec<T>>();
                let (t, u, b, w2t, y0) = (draw(rows), draw(width), draw(width), draw(width * d), draw(rows * d));
                let mut expected = y0.clone();
                unfused(&t, &u, &b, &w2t, d, &mut expected);
                let mut fused = y0.clone();
                assert!(rank_one_narrow_on(isa, &t, &u, &b, &w2t, d, &mut fused), "{isa:?} d = {d}");
                assert_eq!(fused, expected, "{isa:?}, rows {rows}, width {width}, d {d}: not bit-identical");
            }
        }
    }

    #[test]
    fn fused_kernels_are_bit_identical_to_the_unfused_path() {
        let here: Vec<Isa> = Isa::ALL.into_iter().filter(|isa| isa.runs_here()).collect();
        if here.is_empty() {
            eprintln!("skipped: this CPU runs neither AVX-512F nor AVX2 with FMA (no fused kernel to test)");
        }
        for isa in here {
            let (f32_outputs, f64_outputs): (&[usize], &[usize]) =
                if isa == Isa::Avx512 { (&[16, 32], &[8, 16, 32]) } else { (&[8, 16, 32], &[4, 8, 16]) };
            for &d in f32_outputs {
                agree::<f32>(|x| x as f32, isa, d);
            }
            for &d in f64_outputs {
                agree::<f64>(|x| x, isa, d);
            }
        }
    }

    /// The dispatcher falls back to a narrower instruction set where the wider one has no kernel for `d`
    /// (f32 with d = 8, f64 with d = 4 on an AVX-512 CPU), with the same bits as the unfused path.
    #[test]
    fn the_dispatcher_takes_the_widest_kernel_that_covers_d() {
        let (avx512, avx2) = (Isa::Avx512.runs_here(), Isa::Avx2.runs_here());
        let mut rng = SeededRng::new(11);
        let mut draw = |k: usize| (0..k).map(|_| rng.normal()).collect::<Vec<f64>>();
        for d in [4, 8, 16, 32] {
            let (rows, width) = (19, 37);
            let (t, u, b, w2t, y0) = (draw(rows), draw(width), draw(width), draw(width * d), draw(rows * d));
            let narrow = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let (mut expected, mut fused) = (narrow(&y0), narrow(&y0));
            let ran = rank_one_narrow(&narrow(&t), &narrow(&u), &narrow(&b), &narrow(&w2t), d, &mut fused);
            assert_eq!(ran, (avx512 && d >= 16) || (avx2 && d >= 8), "f32 d {d}");
            if ran {
                unfused(&narrow(&t), &narrow(&u), &narrow(&b), &narrow(&w2t), d, &mut expected);
                assert_eq!(fused, expected, "f32 d {d}");
            }
            let (mut expected, mut fused) = (y0.clone(), y0.clone());
            let ran = rank_one_narrow(&t, &u, &b, &w2t, d, &mut fused);
            assert_eq!(ran, (avx512 && d >= 8) || (avx2 && d <= 16), "f64 d {d}");
            if ran {
                unfused(&t, &u, &b, &w2t, d, &mut expected);
                assert_eq!(fused, expected, "f64 d {d}");
            }
        }
    }

    #[test]
    fn other_output_widths_decline_without_writing() {
        for isa in Isa::ALL {
            for d in [1, 3, 5, 12, 24, 64] {
                let mut y = vec![0.0f32; 2 * d];
                assert!(!rank_one_narrow_on(isa, &[1.0f32, 2.0], &[1.0], &[0.0], &vec![1.0; d], d, &mut y), "{isa:?} f32 d {d}");
                assert_eq!(y, vec![0.0; 2 * d]);
                let mut y = vec![0.0f64; 2 * d];
                assert!(!rank_one_narrow_on(isa, &[1.0f64, 2.0], &[1.0], &[0.0], &vec![1.0; d], d, &mut y), "{isa:?} f64 d {d}");
                assert_eq!(y, vec![0.0; 2 * d]);
            }
        }
    }
}
