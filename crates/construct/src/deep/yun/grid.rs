//! The grid `δ = 1/K` of Yun et al.'s construction (`docs/theory.md` §7.3): the two ways to choose `K`
//! ([`YunDelta`]) and the affine map of the data into the grid's cells ([`YunGrid`]).

use boltz_core::{Error, Result};
use serde::{Deserialize, Serialize};

boltz_core::named_enum! {
/// How the grid width `δ = 1/K` is chosen (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YunDelta: "Yun grid" {
    /// `K = max(2, ⌊(hi − lo)/ε_∞⌋ + 1)`: the smallest integer `K` with `δ = 1/K ≤` the rescaled ∞-norm gap
    /// for some affine map of the data into `[0, 1)`.
    Minimal = "minimal",
    /// `K` rounded up to a power of two after a power-of-two input scale (every weight dyadic in the paper's
    /// `[0, 1)` coordinates); the grid of every Yun result before this choice existed.
    #[default]
    Dyadic = "dyadic",
}
}

/// The quantization grid of a Yun model. The paper's coordinate is `t = (s x + c)/(K w) ∈ [0, 1)` with
/// `δ = 1/K`; the model works in `s x + c ∈ [0, K w)`, where a cell has width `w` (`w = 1/K`, `K w = 1` for
/// [`YunDelta::Dyadic`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YunGrid {
    /// How `K` was chosen.
    pub delta: YunDelta,
    /// Cells per coordinate `K = 1/δ`.
    pub cells: u64,
    /// Input scale `s` (a power of two; 1 for [`YunDelta::Minimal`]).
    pub scale: f64,
    /// Input shift `c` (dyadic).
    pub shift: f64,
    /// Cell width `w` in model coordinates (a dyadic rational).
    pub width: f64,
    /// `max(2, ⌊(hi − lo)/ε_∞⌋ + 1)`: the cells of [`YunDelta::Minimal`] for this data.
    pub minimal_cells: u64,
}

/// `floor(log2 x)` of a positive normal `x`.
pub(super) fn floor_log2(x: f64) -> i64 {
    ((x.to_bits() >> 52) & 0x7ff) as i64 - 1023
}

/// The largest number `≤ x` (positive, normal) with at most `b` significant bits.
fn round_down_bits(x: f64, b: u32) -> f64 {
    let unit = 2f64.powi((floor_log2(x) - i64::from(b) + 1) as i32);
    (x / unit).floor() * unit
}

impl YunGrid {
    /// The grid for data in `[lo, hi]` (every coordinate) whose distinct tokens are at least `eps_inf` apart in
    /// the ∞-norm; `cells` overrides `K` (rounded up to a power of two for [`YunDelta::Dyadic`]; used as given
    /// for [`YunDelta::Minimal`]). Errors ([`Error::Assumption`]) when `cells` is too coarse for the data.
    pub fn choose(lo: f64, hi: f64, eps_inf: f64, delta: YunDelta, cells: Option<u64>) -> Result<Self> {
        let range = hi - lo;
        let minimal_cells = if eps_inf.is_finite() && eps_inf > 0.0 { ((range / eps_inf).floor() as u64 + 1).max(2) } else { 2 };
        let too_coarse = |k: u64, gap: f64, needed: u64| Error::Assumption {
            what: format!("grid width δ = 1/{k} must not exceed the smallest ∞-norm gap between distinct (rescaled) tokens"),
            required: format!("δ ≤ {gap:.4e} (cells ≥ {needed})"),
            measured: format!("δ = {:.4e}, {:.2}× too coarse", 1.0 / k as f64, gap.recip() / k as f64),
        };
        match delta {
            YunDelta::Dyadic => {
                // Input affine map: s a power of two with s·(hi − lo) ≤ 15/16, c = −lo·s rounded up to 2⁻²⁴.
                let s_exp = -(range.max(f64::MIN_POSITIVE) / 0.9375).log2().ceil() as i64;
                let s = 2f64.powi(s_exp as i32);
                let c = (-lo * s * 2f64.powi(24)).ceil() / 2f64.powi(24);
                let gap = eps_inf * s;
                let needed = (1.0 / gap).ceil().max(2.0) as u64;
                let cells = match cells {
                    None => needed.next_power_of_two(),
                    Some(k) => {
                        let k = k.max(2).next_power_of_two();
                        if (k as f64) < 1.0 / gap {
                            return Err(too_coarse(k, gap, needed));
                        }
                        k
                    }
                };
                Ok(Self { delta, cells, scale: s, shift: c, width: 1.0 / cells as f64, minimal_cells })
            }
            YunDelta::Minimal => {
                let k = match cells {
                    None => minimal_cells,
                    Some(k) if k >= minimal_cells => k,
                    Some(k) => return Err(too_coarse(k.max(1), eps_inf / range.max(f64::MIN_POSITIVE), minimal_cells)),
                };
                // The widest cell allowed (any width works for a single token).
                let w_max = if eps_inf.is_finite() && eps_inf > 0.0 {
                    eps_inf
                } else if range > 0.0 {
                    range
                } else {
                    1.0
                };
                // w ≤ ε_∞ with as few significant bits as keep both ends of [0, K w) at least 2⁻¹⁷ w away from the
                // data (the ramps are ≤ 2⁻²⁰ w wide). K w > hi − lo holds for w = ε_∞, so only an extremely thin
                // margin (K ε_∞ − (hi − lo) < 2⁻¹⁶ ε_∞) needs a further cell, and only when K was not given.
                let mut k = k;
                loop {
                    let fits = (1..=52).map(|b| round_down_bits(w_max, b)).find(|&w| k as f64 * w - range > w * 2f64.powi(-16));
                    if let Some(w) = fits {
                        let a = lo - (k as f64 * w - range) / 2.0;
                        return Ok(Self { delta, cells: k, scale: 1.0, shift: -a, width: w, minimal_cells });
                    }
                    if cells.is_some() {
                        return Err(Error::Assumption {
                            what: format!("{k} cells of width ≤ ε_∞ = {eps_inf:e} leave no margin around the data"),
                            required: "K·ε_∞ − (hi − lo) ≥ 2⁻¹⁶ ε_∞".into(),
                            measured: format!("hi − lo = {range:e}"),
                        });
                    }
                    k += 1;
                }
            }
        }
    }

    /// `δ = 1/K`.
    pub fn delta_value(&self) -> f64 {
        1.0 / self.cells as f64
    }

    /// Width of one cell in data coordinates, `w/s`.
    pub fn data_width(&self) -> f64 {
        self.width / self.scale
    }
}
