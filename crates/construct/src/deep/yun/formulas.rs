//! Yun et al.'s layer and parameter formulas (ICLR 2020, Lemmas 5–7 as restated in Hu et al., NeurIPS 2024,
//! Appendix E; `docs/theory.md` §7.4): the reference the built model's stages are checked against, and the
//! curve for sizes the executable construction does not build.

use boltz_core::{Batch, DataReport, Real, Result};
use serde::{Deserialize, Serialize};

use super::grid::{YunDelta, YunGrid};

/// Yun et al.'s memorization construction: layers per stage and parameters in the class T^{2,1,4}
/// (`8d + 2` per two-head size-1 attention layer, `9d + 4` per width-4 feed-forward layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YunCounts {
    /// Grid cells per coordinate `1/δ` (a power of two for [`YunDelta::Dyadic`], any integer `≥ 2` for
    /// [`YunDelta::Minimal`]).
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

/// `⌈1/gap⌉`, `gap` the smallest ∞-norm gap between distinct tokens after the rescaling
/// `x ↦ (x − lo)·(15/16)/(hi − lo)` (not a power of two; [`yun_counts`] rounds it up to one). This is
/// neither grid that [`crate::deep::yun::Yun::build`] uses — the dyadic build also rounds its input scale to a
/// power of two, so its `K` can be 2× larger; [`yun_cells_for`] gives the built `K` for either choice.
pub fn yun_cells<T: Real>(inputs: &Batch<T>) -> u64 {
    let report = DataReport::analyze(inputs, None);
    let (lo, hi) = inputs.as_slice().iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x.to_f64()), b.max(x.to_f64())));
    let scale = if hi > lo { 0.9375 / (hi - lo) } else { 1.0 };
    let gap = (report.eps_inf * scale).min(1.0);
    (1.0 / gap).ceil().max(2.0) as u64
}

/// The cells `K = 1/δ` that [`crate::deep::yun::Yun::build`] uses on `inputs` with grid choice `delta` (see
/// [`YunGrid::choose`]).
pub fn yun_cells_for<T: Real>(inputs: &Batch<T>, delta: YunDelta) -> Result<u64> {
    let report = DataReport::analyze(inputs, None);
    let (lo, hi) = inputs.as_slice().iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x.to_f64()), b.max(x.to_f64())));
    Ok(YunGrid::choose(lo, hi, report.eps_inf, delta, None)?.cells)
}

/// Yun et al.'s counts for `d`-dimensional tokens, `cells` = 1/δ (rounded up to a power of two: the dyadic
/// grid), `vocab` distinct tokens and `ids` distinct context ids. `full = true` sweeps every grid id
/// (`δ^{−d} + 1` attention layers).
pub fn yun_counts(d: usize, cells: u64, vocab: usize, ids: usize, full: bool) -> YunCounts {
    yun_counts_for(d, cells, vocab, ids, full, YunDelta::Dyadic)
}

/// [`yun_counts`] for either grid: `cells` is rounded up to a power of two for [`YunDelta::Dyadic`] and used
/// as given for [`YunDelta::Minimal`].
pub fn yun_counts_for(d: usize, cells: u64, vocab: usize, ids: usize, full: bool, delta: YunDelta) -> YunCounts {
    let cells = match delta {
        YunDelta::Dyadic => cells.next_power_of_two(),
        YunDelta::Minimal => cells,
    };
    let d_f = d as f64;
    let quantization = d_f * cells as f64 + d_f;
    let contextual = if full { (cells as f64).powf(d_f) + 1.0 } else { vocab as f64 + 1.0 };
    let value = 1.0 + d_f + ids as f64;
    let params = contextual * (8.0 * d_f + 2.0) + (quantization + value) * (9.0 * d_f + 4.0);
    YunCounts { cells, quantization, contextual, value, layers: quantization + contextual + value, params }
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
        // The minimal grid keeps K = 5; the dyadic one rounds it to 8.
        let minimal = yun_counts_for(2, 5, 5, 10, true, YunDelta::Minimal);
        assert_eq!((minimal.cells, minimal.quantization, minimal.contextual), (5, 12.0, 26.0));
        assert_eq!(yun_counts_for(2, 5, 5, 10, true, YunDelta::Dyadic), yun_counts(2, 8, 5, 10, true));
    }

    #[test]
    fn yun_delta_parses_its_two_names_only() {
        boltz_core::named::assert_serde_spells_like_names::<YunDelta>();
        boltz_core::named::assert_serde_spells_like_names::<crate::Policy>();
        boltz_core::named::assert_serde_spells_like_names::<crate::deep::bit_extraction::Task>();
        boltz_core::named::assert_serde_spells_like_names::<boltz_core::VocabKind>();
        assert_eq!(YunDelta::default(), YunDelta::Dyadic);
        let err = "bogus".parse::<YunDelta>().unwrap_err();
        assert!(err.to_string().contains("minimal, dyadic"), "{err}");
    }

    #[test]
    fn grids_minimal_is_the_smallest_integer_and_dyadic_rounds_twice() {
        // hi − lo = 4.3, ε_∞ = 1: K·1 > 4.3 needs K = 5. Dyadic: s = 2^⌊log2(0.9375/4.3)⌋ = 1/8, 1/(s ε) = 8 → 8.
        let m = YunGrid::choose(-2.1, 2.2, 1.0, YunDelta::Minimal, None).unwrap();
        assert_eq!((m.cells, m.minimal_cells, m.scale), (5, 5, 1.0));
        assert!(m.width <= 1.0 && 5.0 * m.width > 4.3, "{m:?}");
        // The data sits inside [0, K w) with margins on both sides.
        assert!(-2.1 + m.shift > 0.0 && 2.2 + m.shift < 5.0 * m.width, "{m:?}");
        let dy = YunGrid::choose(-2.1, 2.2, 1.0, YunDelta::Dyadic, None).unwrap();
        assert_eq!((dy.cells, dy.minimal_cells, dy.scale, dy.width), (8, 5, 0.125, 0.125));
        // A given K below the minimal one is an error for the minimal grid; above it is used as given.
        assert!(YunGrid::choose(-2.1, 2.2, 1.0, YunDelta::Minimal, Some(4)).is_err());
        assert_eq!(YunGrid::choose(-2.1, 2.2, 1.0, YunDelta::Minimal, Some(6)).unwrap().cells, 6);
    }
}
