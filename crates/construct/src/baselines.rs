//! Layer and parameter formulas of the deep hardmax baselines (`shared/research/baselines.md` §1.7, §2),
//! used as reference curves until (and next to) the executable constructions.

use boltz_core::{Batch, DataReport, Real};
use serde::{Deserialize, Serialize};

/// Yun et al.'s memorization construction: layers per stage and parameters in the class T^{2,1,4}
/// (`8d + 2` per two-head size-1 attention layer, `9d + 4` per width-4 feed-forward layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YunCounts {
    /// Grid cells per coordinate `1/δ` (a power of two).
    pub cells: u64,
    /// Stage A, quantization: `d/δ + d` feed-forward layers.
    pub quantization: f64,
    /// Stage B, selective shifts: `δ^{−d} + 1` (full) or `|V| + 1` (data-adaptive) attention layers.
    pub contextual: f64,
    /// Stage C, value mapping: `1 + d + K` feed-forward layers, K distinct context ids.
    pub value: f64,
    /// Total layers.
    pub layers: f64,
    /// Total parameters (dense).
    pub params: f64,
}

/// Grid cells `1/δ` for data rescaled into `[0, 1)`: the smallest power of two with `δ ≤` the smallest
/// ∞-norm gap between distinct tokens after the rescaling `x ↦ (x − lo)·(15/16)/(hi − lo)`.
pub fn yun_cells<T: Real>(inputs: &Batch<T>) -> u64 {
    let report = DataReport::analyze(inputs, None);
    let (lo, hi) = inputs.as_slice().iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x.to_f64()), b.max(x.to_f64())));
    let scale = if hi > lo { 0.9375 / (hi - lo) } else { 1.0 };
    let gap = (report.eps_inf * scale).min(1.0);
    (1.0 / gap).ceil().max(2.0) as u64
}

/// Yun et al.'s counts for `d`-dimensional tokens, `cells` = 1/δ, `vocab` distinct tokens and `ids`
/// distinct context ids. `full = true` sweeps every grid id (`δ^{−d} + 1` attention layers).
pub fn yun_counts(d: usize, cells: u64, vocab: usize, ids: usize, full: bool) -> YunCounts {
    let cells = cells.next_power_of_two();
    let d_f = d as f64;
    let quantization = d_f * cells as f64 + d_f;
    let contextual = if full { (cells as f64).powf(d_f) + 1.0 } else { vocab as f64 + 1.0 };
    let value = 1.0 + d_f + ids as f64;
    let params = contextual * (8.0 * d_f + 2.0) + (quantization + value) * (9.0 * d_f + 4.0);
    YunCounts { cells, quantization, contextual, value, layers: quantization + contextual + value, params }
}

/// A reference curve for Kim et al. (ICLR 2023): `2n` attention layers plus a Vardi-style deep narrow
/// ReLU network of depth `⌈√(nN)⌉`, and `d + n + √(nN)·log2(nN)` parameters. The paper states
/// `Õ(d + n + √(nN))` without constants; this curve fixes the constants at 1 (INFERRED, `baselines.md` §2)
/// and is a shape reference, not a construction.
pub fn kim_reference(d: usize, n: usize, big_n: usize) -> (f64, f64) {
    let nn = (n * big_n) as f64;
    let depth = 2.0 * n as f64 + nn.sqrt().ceil();
    let params = d as f64 + n as f64 + nn.sqrt() * nn.log2().max(1.0);
    (depth, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_match_baselines_md() {
        // L = (d/δ + d) + (δ^{−d} + 1) + (1 + d + K) with d = 2, 1/δ = 4, K = 10.
        let full = yun_counts(2, 4, 5, 10, true);
        assert_eq!((full.quantization, full.contextual, full.value, full.layers), (10.0, 17.0, 13.0, 40.0));
        let adaptive = yun_counts(2, 4, 5, 10, false);
        assert_eq!(adaptive.contextual, 6.0);
        assert_eq!(adaptive.params, 6.0 * 18.0 + 23.0 * 22.0);
        assert_eq!(kim_reference(4, 8, 2), (16.0 + 4.0, 4.0 + 8.0 + 4.0 * 4.0));
    }
}
