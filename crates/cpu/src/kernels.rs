//! Row kernels shared by the hardware backends (`boltz-cpu`, `boltz-blas`): one place for the dot
//! product's summation order and for the softmax/hardmax mixing rule, so that the backends agree with
//! each other bit for bit where they run the same loop.

use boltz_core::Float;
use boltz_core::Normalizer;

/// `Σ aᵢ bᵢ` with four independent accumulators (the compiler vectorises it); the summation order is
/// fixed, so results are deterministic.
#[inline]
pub fn dot<T: Float>(a: &[T], b: &[T]) -> T {
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

/// `mixed = Σᵢ σ(scores)ᵢ vᵢ` over the first `scores.len()` rows of the row-major `v` (`hs` columns),
/// where σ is the max-shifted softmax or the hardmax (exactly tied maxima summed, then divided by their
/// count — the reference backend's rule). `scores` must not be empty.
pub fn attend<T: Float>(scores: &[T], v: &[T], hs: usize, normalizer: Normalizer, mixed: &mut [T]) {
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

/// The attention of one sequence for one head, given its projections `q`, `k`, `v` (row-major,
/// `n × hs` each): adds `W_O σ(q_j·K) V` to row `j` of `delta` (`n × d`) through `out_row`, which maps a
/// mixed value (length `hs`) to its `d` outputs. `scores` and `mixed` are scratch buffers.
#[allow(clippy::too_many_arguments)]
pub fn attend_sequence<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    hs: usize,
    normalizer: Normalizer,
    causal: bool,
    scores: &mut Vec<T>,
    mixed: &mut Vec<T>,
    mut out_row: impl FnMut(usize, &[T]),
) {
    let n = q.len() / hs;
    mixed.resize(hs, T::default());
    if hs == 1 {
        // Size-1 heads (the selective-shift layers of the deep baselines): the same sums in the same
        // order as `attend`, without slicing per score.
        for (j, &qj) in q.iter().enumerate() {
            let keys = &k[..if causal { j + 1 } else { n }];
            let max = keys.iter().fold(keys[0].mul(&qj), |m, ki| {
                let x = ki.mul(&qj);
                if x > m {
                    x
                } else {
                    m
                }
            });
            let (mut acc, mut total) = (T::default(), T::default());
            for (ki, vi) in keys.iter().zip(v) {
                let x = ki.mul(&qj);
                match normalizer {
                    Normalizer::Softmax => {
                        let w = x.sub(&max).exp();
                        total = total.add(&w);
                        acc = acc.add(&w.mul(vi));
                    }
                    Normalizer::Hardmax if x == max => {
                        total = total.add(&T::from_f64(1.0));
                        acc = acc.add(vi);
                    }
                    Normalizer::Hardmax => {}
                }
            }
            mixed[0] = acc.div(&total);
            out_row(j, mixed);
        }
        return;
    }
    for j in 0..n {
        let keys = if causal { j + 1 } else { n };
        let qj = &q[j * hs..(j + 1) * hs];
        scores.clear();
        scores.extend((0..keys).map(|i| dot(&k[i * hs..(i + 1) * hs], qj)));
        attend(scores, v, hs, normalizer, mixed);
        out_row(j, mixed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_mixing_rules() {
        let a: Vec<f64> = (1..=7).map(f64::from).collect();
        assert_eq!(dot(&a, &a), 140.0);
        let mut mixed = vec![0.0; 1];
        attend(&[1.0, 3.0, 3.0], &[10.0, 2.0, 5.0], 1, Normalizer::Hardmax, &mut mixed);
        assert_eq!(mixed[0], 3.5);
        attend(&[0.0, 0.0], &[1.0, 3.0], 1, Normalizer::Softmax, &mut mixed);
        assert_eq!(mixed[0], 2.0);
        // Extreme logits: max-shifting keeps the softmax finite and selects the maximum.
        attend(&[1e4, -1e4], &[1.0, 3.0], 1, Normalizer::Softmax, &mut mixed);
        assert_eq!(mixed[0], 1.0);
    }
}

/// `y += h · w2t` for `D` outputs known at compile time, `R` tokens at a time: the `R × D` accumulators stay
/// in registers and each row of `w2t` is loaded once per `R` tokens. With `FUSED` every term is one fused
/// multiply-add (only in code compiled with the `fma` feature: elsewhere `mul_add` is a library call), else
/// a multiply and an add: a multiply-then-add kernel can reach at most half the FMA peak.
#[inline(always)]
fn narrow_rows<T: Float, const D: usize, const R: usize, const FUSED: bool>(width: usize, h: &[T], w2t: &[T], y: &mut [T]) {
    let zero = T::default();
    let term = |a: T, hc: T, wj: T| if FUSED { hc.mul_add(wj, a) } else { a.add(&hc.mul(&wj)) };
    let mut hs = h.chunks_exact(R * width);
    let mut ys = y.chunks_exact_mut(R * D);
    for (hr, yr) in (&mut hs).zip(&mut ys) {
        let mut acc = [[zero; D]; R];
        for (c, w) in w2t.chunks_exact(D).enumerate() {
            for (t, acc_t) in acc.iter_mut().enumerate() {
                let hc = hr[t * width + c];
                for (a, wj) in acc_t.iter_mut().zip(w) {
                    *a = term(*a, hc, *wj);
                }
            }
        }
        for (yt, acc_t) in yr.chunks_exact_mut(D).zip(&acc) {
            yt.iter_mut().zip(acc_t).for_each(|(y, a)| *y = y.add(a));
        }
    }
    for (ht, yt) in hs.remainder().chunks_exact(width).zip(ys.into_remainder().chunks_exact_mut(D)) {
        let mut acc = [zero; D];
        for (c, w) in w2t.chunks_exact(D).enumerate() {
            acc.iter_mut().zip(w).for_each(|(a, wj)| *a = term(*a, ht[c], *wj));
        }
        yt.iter_mut().zip(&acc).for_each(|(y, a)| *y = y.add(a));
    }
}

/// Tokens per block of [`narrow_rows`] for `d` outputs of `size` bytes when the accumulators may take
/// `budget` bytes of registers: as many as fit (a power of two, 1 to 8), so that enough independent FMA
/// chains are in flight without spilling.
const fn rows_per_block(budget: usize, d: usize, size: usize) -> usize {
    let fit = budget / (d * size);
    if fit >= 8 {
        8
    } else if fit >= 4 {
        4
    } else if fit >= 2 {
        2
    } else {
        1
    }
}

macro_rules! narrow_dispatch {
    ($vis:vis $name:ident, budget $budget:expr, fused $fused:literal $(, $feature:literal)?) => {
        $(#[target_feature(enable = $feature)])?
        $vis fn $name<T: Float>(d: usize, width: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
            match (d, rows_per_block($budget, d.max(1), std::mem::size_of::<T>())) {
                (4, 8) => narrow_rows::<T, 4, 8, $fused>(width, h, w2t, y),
                (4, 4) => narrow_rows::<T, 4, 4, $fused>(width, h, w2t, y),
                (4, 2) => narrow_rows::<T, 4, 2, $fused>(width, h, w2t, y),
                (4, 1) => narrow_rows::<T, 4, 1, $fused>(width, h, w2t, y),
                (8, 8) => narrow_rows::<T, 8, 8, $fused>(width, h, w2t, y),
                (8, 4) => narrow_rows::<T, 8, 4, $fused>(width, h, w2t, y),
                (8, 2) => narrow_rows::<T, 8, 2, $fused>(width, h, w2t, y),
                (8, 1) => narrow_rows::<T, 8, 1, $fused>(width, h, w2t, y),
                (16, 8) => narrow_rows::<T, 16, 8, $fused>(width, h, w2t, y),
                (16, 4) => narrow_rows::<T, 16, 4, $fused>(width, h, w2t, y),
                (16, 2) => narrow_rows::<T, 16, 2, $fused>(width, h, w2t, y),
                (16, 1) => narrow_rows::<T, 16, 1, $fused>(width, h, w2t, y),
                (32, 8) => narrow_rows::<T, 32, 8, $fused>(width, h, w2t, y),
                (32, 4) => narrow_rows::<T, 32, 4, $fused>(width, h, w2t, y),
                (32, 2) => narrow_rows::<T, 32, 2, $fused>(width, h, w2t, y),
                (32, 1) => narrow_rows::<T, 32, 1, $fused>(width, h, w2t, y),
                _ => return false,
            }
            true
        }
    };
}
// Accumulator budgets: half the vector registers (16 of 16-byte SSE2, 16 of 32-byte AVX2; 16 of the 32
// 64-byte AVX-512 registers), the rest for the row of w2t and the broadcast token value.
narrow_dispatch!(pub(crate) narrow_baseline, budget 8 * 16, fused false);
#[cfg(target_arch = "x86_64")]
narrow_dispatch!(narrow_avx512, budget 16 * 64, fused true, "avx512f,fma");
#[cfg(target_arch = "x86_64")]
narrow_dispatch!(narrow_avx2, budget 8 * 32, fused true, "avx2,fma");
#[cfg(target_arch = "x86_64")]
narrow_dispatch!(narrow_avx512_unfused, budget 16 * 64, fused false, "avx512f,fma");
#[cfg(target_arch = "x86_64")]
narrow_dispatch!(narrow_avx2_unfused, budget 8 * 32, fused false, "avx2,fma");

/// An FFN's second product for narrow outputs, `y += h · w2t` (see [`crate::engine::Gemm::narrow_product`]):
/// for `d` ∈ {4, 8, 16, 32} (the memorizer's `H · W₂ᵀ` tiles) a register-blocked kernel of fused
/// multiply-adds compiled for AVX-512 / AVX2 (chosen at run time), since a packing GEMM would spend most of
/// its time packing the wide hidden tile for a 16-column product; `false` for other `d`. Without FMA
/// hardware it multiplies and adds ([`narrow_product_unfused`]).
pub fn narrow_product<T: Float>(rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
    narrow_product_on_this_cpu(true, rows, width, d, h, w2t, y)
}

/// [`narrow_product`] with each term a multiply then an add (two roundings), as the engine computed it
/// before the fused kernel: the same result on every CPU and bit for bit the earlier one, at up to half
/// the FMA peak. `MatrixMultiply` keeps it, so that training (whose committed runs are reproduced step
/// for step) and the results computed with it do not move.
pub fn narrow_product_unfused<T: Float>(rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
    narrow_product_on_this_cpu(false, rows, width, d, h, w2t, y)
}

/// The widest compiled narrow-output kernel this CPU runs (AVX-512F, AVX2, baseline), fused or not.
fn narrow_product_on_this_cpu<T: Float>(fused: bool, rows: usize, width: usize, d: usize, h: &[T], w2t: &[T], y: &mut [T]) -> bool {
    let (h, y) = (&h[..rows * width], &mut y[..rows * d]);
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F and FMA (checked just above).
            return unsafe {
                if fused {
                    narrow_avx512(d, width, h, w2t, y)
                } else {
                    narrow_avx512_unfused(d, width, h, w2t, y)
                }
            };
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe {
                if fused {
                    narrow_avx2(d, width, h, w2t, y)
                } else {
                    narrow_avx2_unfused(d, width, h, w2t, y)
                }
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = fused; // the baseline kernel multiplies and adds
    narrow_baseline(d, width, h, w2t, y)
}
