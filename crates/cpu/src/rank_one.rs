//! The memorizer's FFN (Corollary 1's width-`nN` layer with `W₁ = 1 wᵀ`) as one fused AVX-512 pass:
//! `y += ReLU(t uᵀ + b) · W₂ᵀ` for a tile of hidden units, without writing the hidden tile to memory.
//!
//! The unfused path ([`crate::engine`]) writes the tile `H = ReLU(t uᵀ + b)` (`rows × width`, kept in L2)
//! and then reads it back, one broadcast per multiply-add, in the narrow-output kernel. Here a block of
//! `R` tokens computes 16 (f32) or 8 (f64) hidden units at a time in vector registers (`t·u` rounded,
//! `+ b` rounded, then the ReLU: three instructions per vector), parks them in a 1 KiB stack buffer and
//! feeds them straight into `R × V` accumulators (`V` vectors per token for `d` outputs), each a chain of
//! fused multiply-adds over the tile's hidden units in order. Every output therefore sees exactly the
//! operations of the unfused path ([`crate::kernels::narrow_product`] after the engine's `rank_one_relu`):
//! the same roundings in the same order, so the two agree bit for bit (tested below on odd sizes).
//!
//! Only outputs that fill whole vectors take this path (`d · size_of::<T>()` a multiple of 64 bytes: f32
//! with d ∈ {16, 32}, f64 with d ∈ {8, 16, 32}) on CPUs with AVX-512F; everything else returns `false` and
//! the engine falls back to the unfused path.

/// `y += ReLU(t uᵀ + b) · w2t` (see the module documentation): `t` one projection per token (`rows`),
/// `u`, `b` the tile's slices of the left factor and the bias (`width`), `w2t` row-major `width × d`,
/// `y` row-major `rows × d`. Returns `false` (and leaves `y` alone) when no fused kernel covers `d` and
/// the element type on this CPU.
pub fn rank_one_narrow<T: FusedElement>(t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) -> bool {
    let width = u.len();
    assert_eq!(b.len(), width, "rank_one_narrow: bias and u differ in length");
    assert!(w2t.len() >= width * d, "rank_one_narrow: w2t is too short");
    assert!(y.len() >= t.len() * d, "rank_one_narrow: y is too short");
    T::rank_one_narrow(t, u, b, &w2t[..width * d], d, &mut y[..t.len() * d])
}

/// Element types with a fused rank-1 FFN kernel (f32 and f64).
pub trait FusedElement: boltz_core::Float {
    /// The kernel for this type; `false` where it has none for `d` on this CPU.
    fn rank_one_narrow(t: &[Self], u: &[Self], b: &[Self], w2t: &[Self], d: usize, y: &mut [Self]) -> bool;
}

macro_rules! fused_element {
    ($t:ty, $kernel:ident, $lanes:literal) => {
        impl FusedElement for $t {
            fn rank_one_narrow(t: &[Self], u: &[Self], b: &[Self], w2t: &[Self], d: usize, y: &mut [Self]) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    if d % $lanes != 0 || d == 0 || d > crate::engine::NARROW_OUTPUT {
                        return false;
                    }
                    if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")) {
                        return false;
                    }
                    // SAFETY: the CPU has AVX-512F (checked just above); the slices have the lengths the
                    // kernels index (checked by `rank_one_narrow` and by the kernels' own asserts).
                    unsafe {
                        match d / $lanes {
                            1 => avx512::$kernel::<1, { avx512::rows_for(1) }>(t, u, b, w2t, y),
                            2 => avx512::$kernel::<2, { avx512::rows_for(2) }>(t, u, b, w2t, y),
                            4 => avx512::$kernel::<4, { avx512::rows_for(4) }>(t, u, b, w2t, y),
                            _ => return false,
                        }
                    }
                    true
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (t, u, b, w2t, d, y);
                    false
                }
            }
        }
    };
}
fused_element!(f32, rank_one_f32, 16);
fused_element!(f64, rank_one_f64, 8);

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Tokens per block for `v` accumulator vectors per token: as many as leave registers (of 32) for
    /// the `v` weight vectors and a broadcast, at most 16 (the stack buffer's rows).
    pub(super) const fn rows_for(v: usize) -> usize {
        let r = (32 - v - 2) / v;
        if r > 16 {
            16
        } else {
            r
        }
    }

    macro_rules! kernel {
        ($name:ident, $block:ident, $t:ty, $vec:ty, $lanes:literal,
         $set1:ident, $loadu:ident, $storeu:ident, $mul:ident, $add:ident, $max:ident, $fmadd:ident, $zero:ident) => {
            /// The fused kernel for `V` vectors of outputs per token, `R` tokens per block.
            ///
            /// # Safety
            /// The CPU must have AVX-512F and FMA.
            #[target_feature(enable = "avx512f,fma")]
            pub(super) unsafe fn $name<const V: usize, const R: usize>(t: &[$t], u: &[$t], b: &[$t], w2t: &[$t], y: &mut [$t]) {
                let d = V * $lanes;
                let width = u.len();
                assert!(b.len() == width && w2t.len() == width * d && y.len() == t.len() * d);
                let mut blocks = t.chunks_exact(R);
                let mut ys = y.chunks_exact_mut(R * d);
                for (tb, yb) in (&mut blocks).zip(&mut ys) {
                    // SAFETY: the caller's CPU has AVX-512F and FMA; the lengths were asserted above.
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
            /// The CPU must have AVX-512F and FMA, and the slices the lengths above.
            #[target_feature(enable = "avx512f,fma")]
            #[inline]
            unsafe fn $block<const V: usize, const RB: usize>(t: &[$t], u: &[$t], b: &[$t], w2t: &[$t], y: &mut [$t]) {
                let d = V * $lanes;
                let width = u.len();
                let zero = $zero();
                let mut acc = [[zero; V]; RB];
                let mut hidden = [[0.0 as $t; $lanes]; RB];
                let mut tv = [zero; RB];
                for (v, ti) in tv.iter_mut().zip(t) {
                    *v = $set1(*ti);
                }
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
                        for (h, tr) in hidden.iter_mut().zip(&tv) {
                            // ReLU(t·u + b): the product rounded, then the sum, as the unfused path.
                            $storeu(h.as_mut_ptr(), $max($add($mul(*tr, uc), bc), zero));
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
        rank_one_f32,
        block_f32,
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
        rank_one_f64,
        block_f64,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::rng::SeededRng;

    /// The unfused path: the hidden tile written out (as the engine's `rank_one_relu`), then the
    /// narrow-output kernel.
    fn unfused<T: FusedElement>(t: &[T], u: &[T], b: &[T], w2t: &[T], d: usize, y: &mut [T]) {
        let width = u.len();
        let mut h = vec![T::default(); t.len() * width];
        for (row, ti) in h.chunks_exact_mut(width).zip(t) {
            for ((hj, uj), bj) in row.iter_mut().zip(u).zip(b) {
                *hj = ti.mul(uj).add(bj).relu();
            }
        }
        assert!(crate::kernels::narrow_product(t.len(), width, d, &h, w2t, y));
    }

    fn agree<T: FusedElement + std::fmt::Debug>(to: fn(f64) -> T, d: usize) {
        let mut rng = SeededRng::new(7);
        let fused_here = cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("avx512f");
        for rows in [1, 2, 5, 16, 17, 33] {
            for width in [1, 7, 16, 17, 40, 129] {
                let mut draw = |k: usize| (0..k).map(|_| to(rng.normal())).collect::<Vec<T>>();
                let (t, u, b, w2t, y0) = (draw(rows), draw(width), draw(width), draw(width * d), draw(rows * d));
                let mut expected = y0.clone();
                unfused(&t, &u, &b, &w2t, d, &mut expected);
                let mut fused = y0.clone();
                let ran = rank_one_narrow(&t, &u, &b, &w2t, d, &mut fused);
                assert_eq!(ran, fused_here, "d = {d}");
                if ran {
                    assert_eq!(fused, expected, "rows {rows}, width {width}, d {d}: not bit-identical");
                } else {
                    assert_eq!(fused, y0, "a kernel that declines must not write");
                }
            }
        }
    }

    #[test]
    fn fused_kernel_is_bit_identical_to_the_unfused_path() {
        for d in [16, 32] {
            agree::<f32>(|x| x as f32, d);
        }
        for d in [8, 16, 32] {
            agree::<f64>(|x| x, d);
        }
    }

    #[test]
    fn other_widths_of_output_decline() {
        let mut y = vec![0.0f32; 4];
        assert!(!rank_one_narrow(&[1.0f32], &[1.0], &[0.0], &[1.0; 4], 4, &mut y));
        let mut y = vec![0.0f64; 4];
        assert!(!rank_one_narrow(&[1.0f64], &[1.0], &[0.0], &[1.0; 4], 4, &mut y));
        assert_eq!(y, vec![0.0; 4]);
    }
}
