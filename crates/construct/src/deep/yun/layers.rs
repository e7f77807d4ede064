//! The layers of Yun et al.'s construction, stage by stage (the module docs of [`super`] list them), and the
//! exact arithmetic they share ([`GridArithmetic`]).

use std::collections::BTreeMap;

use boltz_bigfloat::BigReal;
use boltz_core::{
    Attention, AttentionHead, Block, Dataset, Error, ExactConvert, ExactFloat, FeedForward, Matrix, ModelBlock, Normalizer, Real, Result,
    Weight,
};

use super::eval::YunLayout;
use super::grid::{floor_log2, YunDelta, YunGrid};

/// `2^e` exactly.
pub(super) fn pow2(e: i64) -> BigReal {
    BigReal::from_exact(&ExactFloat::from_parts(false, vec![1], e))
}

/// `k^e` exactly (an integer of any size).
fn int_pow(k: u64, e: u64) -> BigReal {
    let mut limbs: Vec<u64> = vec![1];
    for _ in 0..e {
        let mut carry = 0u128;
        for limb in &mut limbs {
            let v = u128::from(*limb) * u128::from(k) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            limbs.push(carry as u64);
        }
    }
    BigReal::from_exact(&ExactFloat::from_parts(false, limbs, 0))
}

fn r(x: f64) -> BigReal {
    BigReal::from_f64(x)
}

fn ffn(w1: Weight<BigReal>, b1: Vec<BigReal>, w2: Weight<BigReal>, d: usize) -> ModelBlock<BigReal> {
    Block { attention: None, ffn: Some(FeedForward { w1, b1, w2, b2: vec![r(0.0); d] }) }
}

/// A width-`k` FFN acting on coordinate `i` only: `W_1 = [scales ⊗ e_i]`, `W_2 = e_i ⊗ coefficients`.
fn coordinate_ffn(d: usize, i: usize, scales: &[BigReal], b1: Vec<BigReal>, coefs: &[BigReal]) -> ModelBlock<BigReal> {
    let k = scales.len();
    let w1 = Matrix::from_fn(k, d, |row, c| if c == i { scales[row].clone() } else { r(0.0) });
    let w2 = Matrix::from_fn(d, k, |row, c| if row == i { coefs[c].clone() } else { r(0.0) });
    ffn(Weight::Dense(w1), b1, Weight::Dense(w2), d)
}

fn selective_head(u: &[BigReal], bias: BigReal, out: BigReal, d: usize) -> AttentionHead<BigReal> {
    let row = Weight::Dense(Matrix::row_vector(u.to_vec()));
    let e1 = Matrix::from_fn(d, 1, |row, _| if row == 0 { out.clone() } else { r(0.0) });
    AttentionHead { w_q: row.clone(), w_k: row.clone(), w_v: row, w_o: Weight::Dense(e1), b_q: Some(vec![bias]) }
}

fn hardmax(heads: Vec<AttentionHead<BigReal>>) -> ModelBlock<BigReal> {
    Block { attention: Some(Attention { heads, normalizer: Normalizer::Hardmax, causal: false }), ffn: None }
}

/// The distinct context ids after stage B, keyed by their exact decimal form: each with its column and target.
pub(super) type ContextTable = BTreeMap<Vec<u8>, (BigReal, Vec<BigReal>, Vec<f64>)>;

/// The grid and the exact arithmetic every stage shares: the input map `s x + c`, `K` cells of width `w`,
/// the ramps `ρ = 2^rho_exp ≤ w` (the id windows of stage C) and `η = ρ·2⁻²⁰` (the quantization ramps), and
/// the precision in which the whole model is exact.
pub(super) struct GridArithmetic {
    /// Input scale `s`.
    pub s: f64,
    /// Input shift `c`.
    pub c: f64,
    /// Cells per coordinate `K`.
    pub cells: u64,
    /// Cell width `w` (f64).
    pub width: f64,
    /// [`YunDelta::Minimal`]: constants at the build precision, `K` not a power of two.
    minimal: bool,
    /// `⌈log2 K⌉` (exact for the dyadic grid).
    log2k_int: i64,
    /// `log2 ρ`.
    pub rho_exp: i64,
    /// `log2 η`.
    eta_exp: i64,
    /// Bits in which the model is exact on the data.
    pub bits: u64,
    /// Cell width `w` (exact).
    pub w_b: BigReal,
    /// `u = (1, K, …, K^{d−1})`, the id projection.
    pub u: Vec<BigReal>,
}

impl GridArithmetic {
    /// The arithmetic of `grid` for sequences of `n` tokens in `d` dimensions.
    pub fn new(grid: &YunGrid, delta: YunDelta, n: usize, d: usize) -> Self {
        let (cells, width) = (grid.cells, grid.width);
        let minimal = delta == YunDelta::Minimal;
        // log2 K (an integer for the dyadic grid); dyadic: ρ = δ = w.
        let log2k = if minimal { (cells as f64).log2() } else { f64::from(cells.trailing_zeros()) };
        let log2k_int = log2k.ceil() as i64;
        let rho_exp = if minimal { floor_log2(width) } else { -log2k_int };
        // Significant bits of w beyond the first (0 for a power of two).
        let w_bits = if minimal { width.to_exact().mantissa_bits() as i64 - 1 } else { 0 };
        // Exact arithmetic in enough bits: ids stay below n² δ^{−2(n+1)d−1} (Lemma 10) with resolution δ/2,
        // and the hardmax scores are products of two ids, so they need twice that range (plus, for the minimal
        // grid, twice the extra significant bits of w: ids are multiples of w/2).
        let log2_bound = 2.0 * (n as f64).log2() + ((2 * (n + 1) * d + 1) as f64) * log2k + 2.0;
        let bits =
            (2.0 * log2_bound) as u64 + 3 * log2k_int as u64 + (log2k_int + 20) as u64 + 128 + 2 * (w_bits as u64 + 1) * u64::from(minimal);
        let mut me = Self {
            s: grid.scale,
            c: grid.shift,
            cells,
            width,
            minimal,
            log2k_int,
            rho_exp,
            eta_exp: rho_exp - 20,
            bits,
            w_b: r(0.0),
            u: Vec::new(),
        };
        me.w_b = if minimal { me.hp(r(width)) } else { pow2(-log2k_int) };
        me.u = (0..d).map(|i| me.kpow(i as u64)).collect();
        me
    }

    /// The minimal grid's constants are computed at the build precision (exact: every one fits in it).
    fn hp(&self, v: BigReal) -> BigReal {
        if self.minimal {
            v.with_bits(self.bits)
        } else {
            v
        }
    }

    /// `K^e` exactly.
    pub fn kpow(&self, e: u64) -> BigReal {
        if self.minimal {
            self.hp(int_pow(self.cells, e))
        } else {
            pow2(self.log2k_int * e as i64)
        }
    }

    /// The data must stay off the ramps `(kw − η, kw)` of the rounding layers and below `K w − η`
    /// ([`Error::Assumption`] otherwise).
    pub fn check_off_ramps(&self, x: &[f64]) -> Result<()> {
        let eta = 2f64.powi(self.eta_exp as i32);
        let top_f = self.cells as f64 * self.width;
        for (i, v) in x.iter().enumerate() {
            let t = self.s * v + self.c;
            let pos = t / self.width;
            let frac = pos - pos.floor();
            if !(0.0..top_f - eta).contains(&t) || frac > 1.0 - eta / self.width {
                return Err(Error::Assumption {
                    what: format!("input value {i} lies on a quantization ramp (within η = 2^{} below a grid line)", self.eta_exp),
                    required: "every rescaled coordinate at least η below the next grid line".into(),
                    measured: format!("{t}"),
                });
            }
        }
        Ok(())
    }

    /// Layer 1 and stage A: the input affine layer `x + (s − 1)(ReLU(x) − ReLU(−x)) + c`, then `d`
    /// out-of-range layers and `dK` rounding layers.
    pub fn quantization(&self, d: usize) -> Vec<ModelBlock<BigReal>> {
        let (s, c, cells) = (self.s, self.c, self.cells);
        let w1 = Matrix::from_fn(2 * d, d, |row, col| if row % d == col { r(if row < d { 1.0 } else { -1.0 }) } else { r(0.0) });
        let w2 = Matrix::from_fn(d, 2 * d, |row, col| if col % d == row { r(if col < d { s - 1.0 } else { 1.0 - s }) } else { r(0.0) });
        let mut blocks = vec![Block {
            attention: None,
            ffn: Some(FeedForward { w1: Weight::Dense(w1), b1: vec![r(0.0); 2 * d], w2: Weight::Dense(w2), b2: vec![r(c); d] }),
        }];
        // 2a. Out-of-range layers: x_i ↦ x_i − J·(1{x_i < 0} + 1{x_i ≥ K w}) with ramped indicators (4 ReLUs,
        // width η, exact 0 on [0, K w − η)); an out-of-range entry becomes negative and its column's id invalid.
        // J = 2 δ^{−d} in the paper's [0, 1) coordinates, times λ = K w (rounded up to a power of two).
        let j = if self.minimal {
            pow2(((cells as f64).powi(d as i32 + 1) * self.width).log2().ceil() as i64 + 1)
        } else {
            pow2(self.log2k_int * d as i64 + 1)
        };
        let inv_eta = pow2(-self.eta_exp);
        let w_b = &self.w_b;
        let top_over_eta = if self.minimal { w_b.mul(&r(cells as f64)).mul(&inv_eta) } else { inv_eta.clone() };
        for i in 0..d {
            let scales = [inv_eta.neg(), inv_eta.neg(), inv_eta.clone(), inv_eta.clone()];
            let b1 = vec![r(0.0), r(-1.0), top_over_eta.neg().add(&r(1.0)), top_over_eta.neg()];
            let coefs = [j.neg(), j.clone(), j.neg(), j.clone()];
            blocks.push(coordinate_ffn(d, i, &scales, b1, &coefs));
        }
        // 2b. Rounding layers ζ_2, k = 0..K−1 per coordinate.
        for i in 0..d {
            for k in 0..cells {
                let kd = w_b.mul(&r(k as f64));
                let edge = kd.add(w_b);
                let scales = [r(1.0), r(1.0), inv_eta.clone(), inv_eta.clone()];
                let b1 = vec![kd.neg(), edge.neg(), edge.neg().mul(&inv_eta).add(&r(1.0)), edge.neg().mul(&inv_eta)];
                let coefs = [r(-1.0), r(1.0), w_b.clone(), w_b.neg()];
                blocks.push(coordinate_ffn(d, i, &scales, b1, &coefs));
            }
        }
        blocks
    }

    /// The grid ids of the distinct tokens of `x` (rows of `d`), in increasing order. The grid must separate
    /// the distinct tokens (`δ ≤ ε_∞` guarantees it; checked, since `ε_∞` is measured in f64).
    pub fn token_cells(&self, x: &[f64], d: usize) -> Result<Vec<u64>> {
        let grid_id = |t: &[f64]| -> u64 {
            (0..d).map(|i| (((self.s * t[i] + self.c) / self.width).floor() as u64) * self.cells.pow(i as u32)).sum()
        };
        let mut cell_of: BTreeMap<u64, &[f64]> = BTreeMap::new();
        for t in x.chunks(d) {
            if let Some(other) = cell_of.insert(grid_id(t), t) {
                if other != t {
                    return Err(Error::Assumption {
                        what: format!("the grid of {} cells separates distinct tokens", self.cells),
                        required: format!("{other:?} and {t:?} in different cells"),
                        measured: format!("both in cell {}", grid_id(t)),
                    });
                }
            }
        }
        Ok(cell_of.into_keys().collect())
    }

    /// Stage B: one two-head selective shift per swept grid id (ids `l = m·w` for grid index `m`), then the
    /// global shift.
    pub fn contextual(&self, sweep: &[u64], n: usize, d: usize) -> Vec<ModelBlock<BigReal>> {
        let scale = self.kpow(d as u64);
        let half = self.half();
        let mut blocks: Vec<ModelBlock<BigReal>> = sweep
            .iter()
            .map(|&m| {
                let l = self.w_b.mul(&r(m as f64));
                hardmax(vec![
                    selective_head(&self.u, l.sub(&half).neg(), scale.clone(), d),
                    selective_head(&self.u, l.add(&half).neg(), scale.neg(), d),
                ])
            })
            .collect();
        let global = r(n as f64).mul(&self.kpow(((n + 1) * d + 1) as u64));
        blocks.push(hardmax(vec![selective_head(&self.u, r(0.0), global, d)]));
        blocks
    }

    /// Where stages A and B sit (stage A ends at block `a_end`; one selective shift per swept id, then the
    /// global shift), for the event-driven evaluator; the value stage is filled in once it is built.
    pub fn stage_b_layout(&self, a_end: usize, sweep: &[u64]) -> YunLayout {
        YunLayout {
            tokenwise_a: 0..a_end,
            selective: a_end..a_end + sweep.len(),
            shift_ids: sweep.iter().map(|&m| self.w_b.mul(&r(m as f64))).collect(),
            half: self.half(),
            dense: a_end + sweep.len()..a_end + sweep.len() + 1,
            values: 0..0,
            value_ids: Vec::new(),
            // ρ ≤ w: the ramp width of the stage-C id windows (Dyadic: ρ = δ).
            delta: pow2(self.rho_exp),
            u: self.u.clone(),
        }
    }

    /// `w/2`, the half-width of a selective shift's window.
    pub fn half(&self) -> BigReal {
        self.w_b.mul(&r(0.5))
    }

    /// Stage C: zero the invalid columns (ids outside `[t_l − ρ, t_r + ρ]` of the stage-B `ids`), clamp
    /// negatives, then one layer per distinct context id (`ζ_5 = 1` on `[−ρ/2, ρ/2]`, 0 for `|t| ≥ ρ`; ids
    /// differ by `≥ w ≥ ρ`) adding its target minus its column.
    pub fn value_mapping(&self, ids: &[BigReal], table: &ContextTable, d: usize) -> Vec<ModelBlock<BigReal>> {
        let (u, rho) = (&self.u, pow2(self.rho_exp));
        let (t_l, t_r) = ids
            .iter()
            .fold((ids[0].clone(), ids[0].clone()), |(a, b), v| (if *v < a { v.clone() } else { a }, if *v > b { v.clone() } else { b }));
        let (t_l, t_r) = (t_l.sub(&rho), t_r.add(&rho));
        // 4a. Zero invalid columns: X − (M+1) 1_d ζ_3(uᵀX).
        let inv_w = pow2(-self.rho_exp);
        let big_m = t_r.add(&r(2.0));
        let w1 = Weight::rank_one(vec![inv_w.clone(), inv_w.clone(), inv_w.clone(), inv_w.clone()], u.clone());
        let a = t_l.mul(&inv_w);
        let b = t_r.mul(&inv_w);
        let b1 = vec![a.neg().add(&r(1.0)), a.neg(), b.neg(), b.neg().sub(&r(1.0))];
        let w2 = Matrix::from_fn(d, 4, |_, col| big_m.neg().mul(&r([-1.0, 1.0, 1.0, -1.0][col])));
        let mut blocks =
            vec![Block { attention: None, ffn: Some(FeedForward { w1, b1, w2: Weight::Dense(w2), b2: vec![big_m.neg(); d] }) }];
        // 4b. Clamp negatives.
        blocks.extend((0..d).map(|i| coordinate_ffn(d, i, &[r(-1.0)], vec![r(0.0)], &[r(1.0)])));
        // 4c. One layer per distinct context id.
        let two_over_rho = pow2(1 - self.rho_exp);
        let rho_half = rho.mul(&r(0.5));
        for (id, col, target) in table.values() {
            let diff: Vec<BigReal> = target.iter().zip(col).map(|(t, gc)| r(*t).sub(gc)).collect();
            let up = id.neg().add(&rho).mul(&two_over_rho);
            let down = id.neg().sub(&rho_half).mul(&two_over_rho);
            let w1 = Weight::rank_one(vec![r(1.0); 4], u.iter().map(|v| v.mul(&two_over_rho)).collect());
            let b1 = vec![up.clone(), up.sub(&r(1.0)), down.clone(), down.sub(&r(1.0))];
            let w2 = Matrix::from_fn(d, 4, |row, c| diff[row].mul(&r([1.0, -1.0, -1.0, 1.0][c])));
            blocks.push(ffn(w1, b1, Weight::Dense(w2), d));
        }
        blocks
    }
}

/// The distinct context ids of the stage-B output `g` (columns of `d`, `n` per sequence) with their column and
/// target; equal ids must share targets ([`Error::InconsistentTargets`]).
pub(super) fn context_table(ids: &[BigReal], g: &[BigReal], data: &Dataset<f64>, n: usize, d: usize) -> Result<ContextTable> {
    let mut by_id = ContextTable::new();
    for (pos, id) in ids.iter().enumerate() {
        let key = id.to_exact().to_string().into_bytes();
        let target = data.targets.as_slice()[pos * d..(pos + 1) * d].to_vec();
        let col = g[pos * d..(pos + 1) * d].to_vec();
        match by_id.get(&key) {
            Some((_, _, t)) if *t != target => {
                return Err(Error::InconsistentTargets { first: 0, second: pos / n });
            }
            Some(_) => {}
            None => {
                by_id.insert(key, (id.clone(), col, target));
            }
        }
    }
    Ok(by_id)
}
