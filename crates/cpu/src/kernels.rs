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
