//! Exact, *event-driven* evaluation of a Yun model: the same arithmetic as running every block on the
//! arbitrary-precision backend, but only where a block can change anything.
//!
//! A data-adaptive Yun model for N sequences of length n has about `|V| + nN` layers, so a plain forward
//! costs `O(layers · N · n)` big-float block evaluations — minutes for N = 10³. The construction's layers
//! are, however, *selective*:
//!
//! * a selective-shift layer for grid id `l` (heads with query biases `−(l ∓ δ/2)`, outputs `±δ^{−d}e₁`)
//!   leaves a sequence unchanged unless some column's projection `p = uᵀz` lies in `[l − δ/2, l + δ/2]`:
//!   otherwise both heads' queries have the sign of `p − l`, they pick the same keys, and their outputs
//!   cancel exactly (the second output map is the negated first);
//! * a value layer for context id `c` (`(A − g_c)·ζ₅(uᵀz − c)`) adds exactly zero unless
//!   `p ∈ (c − δ, c + δ)`: below, all four ReLUs are 0; above, they are `a, a−1, b, b−1` and cancel;
//! * token-wise layers (stage A, the zeroing and clamping layers) act on each token alone, so they run
//!   once per *distinct* token.
//!
//! [`FusedYun::forward`] therefore follows each sequence (stage B) or token (stage C) from one affecting
//! layer to the next (binary search over the layers' sorted ids), in layer order, evaluating each affecting
//! block exactly on the backend. Its output is checked bit for bit against the plain forward in the tests,
//! for both grids ([`crate::deep::yun::YunDelta`]): the minimal grid's `δ = 1/K` is not dyadic, but its model is
//! built in coordinates where every weight is (see [`crate::deep::yun`]), so the evaluator's exactness assumption
//! holds for it too.

use std::collections::BTreeMap;
use std::ops::Range;

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_core::{Backend, Batch, ExactConvert, Model, ModelBlock, ModelInfo, Real, Result};

use crate::one_layer::contextual::project;

/// Where each stage of a Yun model sits, and the ids its selective layers respond to.
#[derive(Clone, Debug)]
pub struct YunLayout {
    /// Input affine + stage A (token-wise).
    pub tokenwise_a: Range<usize>,
    /// Selective-shift layers, in order; `shift_ids[i]` is layer `selective.start + i`'s grid id `l`.
    pub selective: Range<usize>,
    /// Grid ids `l` of the selective layers (ascending).
    pub shift_ids: Vec<BigReal>,
    /// Half a cell, `w/2` (`δ/2` on the dyadic grid): the selective layers' window half-width.
    pub half: BigReal,
    /// The global shift, zeroing and clamping layers (run on the whole batch).
    pub dense: Range<usize>,
    /// Value layers, in order; `value_ids[i]` is layer `values.start + i`'s context id `c`.
    pub values: Range<usize>,
    /// Context ids of the value layers (model order).
    pub value_ids: Vec<BigReal>,
    /// The value layers' window half-width `ρ` (they add zero unless `uᵀz ∈ (c − ρ, c + ρ)`): `δ` on the
    /// dyadic grid, the largest power of two `≤ w` on the minimal one.
    pub delta: BigReal,
    /// `u = (1, K, …, K^{d−1})` (`δ⁻¹ = K`).
    pub u: Vec<BigReal>,
}

/// The event-driven evaluator (see the module docs).
pub struct FusedYun<'a> {
    backend: &'a BigFloatBackend,
    model: &'a Model<BigReal>,
    layout: &'a YunLayout,
    prepared: BTreeMap<usize, <BigFloatBackend as Backend<BigReal>>::Prepared>,
    /// Block evaluations performed (for the report).
    pub evaluations: usize,
}

impl<'a> FusedYun<'a> {
    /// An evaluator of `model` laid out as `layout`, computing on `backend`.
    pub fn new(backend: &'a BigFloatBackend, model: &'a Model<BigReal>, layout: &'a YunLayout) -> Self {
        Self { backend, model, layout, prepared: BTreeMap::new(), evaluations: 0 }
    }

    fn sub_model(&self, range: Range<usize>) -> Result<Model<BigReal>> {
        let blocks: Vec<ModelBlock<BigReal>> = self.model.blocks()[range].to_vec();
        Model::new(self.model.dim(), blocks, ModelInfo::named("yun-segment"))
    }

    /// Runs block `i` on `x` exactly.
    fn block(&mut self, i: usize, x: &Batch<BigReal>) -> Result<Batch<BigReal>> {
        if !self.prepared.contains_key(&i) {
            let m = self.sub_model(i..i + 1)?;
            let p = self.backend.prepare(&m)?;
            self.prepared.insert(i, p);
        }
        self.evaluations += 1;
        let p = &self.prepared[&i];
        self.backend.forward(p, x)
    }

    /// Runs `range` on every distinct token of `x` once (token-wise layers only).
    fn tokenwise(&mut self, range: Range<usize>, x: &Batch<BigReal>) -> Result<Batch<BigReal>> {
        let d = x.dim();
        let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        let mut distinct: Vec<BigReal> = Vec::new();
        let mut slot = Vec::with_capacity(x.batch() * x.len());
        for t in x.as_slice().chunks(d) {
            let key: Vec<String> = t.iter().map(|v| v.to_exact().to_string()).collect();
            let next = index.len();
            let k = *index.entry(key).or_insert_with(|| {
                distinct.extend_from_slice(t);
                next
            });
            slot.push(k);
        }
        let uniq = Batch::new(index.len(), 1, d, distinct)?;
        let out = self.backend.run(&self.sub_model(range)?, &uniq)?;
        self.evaluations += index.len();
        let rows: Vec<BigReal> = slot.iter().flat_map(|&k| out.as_slice()[k * d..(k + 1) * d].to_vec()).collect();
        Batch::new(x.batch(), x.len(), d, rows)
    }

    /// The model's output on `x`, bit for bit what the plain forward gives.
    pub fn forward(&mut self, x: &Batch<BigReal>) -> Result<Batch<BigReal>> {
        let z = self.tokenwise(self.layout.tokenwise_a.clone(), x)?;
        let z = self.stage_b(z)?;
        let z = self.backend.run(&self.sub_model(self.layout.dense.clone())?, &z)?;
        self.evaluations += self.layout.dense.len() * x.batch();
        self.stage_c(z)
    }

    /// The output after stage B (selective shifts only, before the global shift): the context ids'
    /// columns, for [`crate::deep::yun::Yun`]'s id table.
    pub fn through_stage_b(&mut self, x: &Batch<BigReal>) -> Result<Batch<BigReal>> {
        let z = self.tokenwise(self.layout.tokenwise_a.clone(), x)?;
        let z = self.stage_b(z)?;
        // The global shift is the first dense layer.
        let g = self.layout.dense.start;
        let out = self.backend.run(&self.sub_model(g..g + 1)?, &z)?;
        self.evaluations += x.batch();
        Ok(out)
    }

    fn stage_b(&mut self, z: Batch<BigReal>) -> Result<Batch<BigReal>> {
        let (nb, n, d) = (z.batch(), z.len(), z.dim());
        let mut rows = z.as_slice().to_vec();
        let ids = self.layout.shift_ids.clone();
        let half = self.layout.half.clone();
        let u = self.layout.u.clone();
        for s in 0..nb {
            let mut seq = Batch::new(1, n, d, rows[s * n * d..(s + 1) * n * d].to_vec())?;
            let mut next = 0usize;
            loop {
                // The first layer at or after `next` whose window [l − δ/2, l + δ/2] holds a column's projection.
                let mut first: Option<usize> = None;
                for col in seq.as_slice().chunks(d) {
                    let p = project(&u, col);
                    let lo = p.sub(&half);
                    let hi = p.add(&half);
                    let start = ids.partition_point(|l| *l < lo).max(next);
                    if start < ids.len() && ids[start] <= hi {
                        first = Some(first.map_or(start, |f: usize| f.min(start)));
                    }
                }
                let Some(k) = first else { break };
                seq = self.block(self.layout.selective.start + k, &seq)?;
                next = k + 1;
            }
            rows[s * n * d..(s + 1) * n * d].clone_from_slice(seq.as_slice());
        }
        Batch::new(nb, n, d, rows)
    }

    fn stage_c(&mut self, z: Batch<BigReal>) -> Result<Batch<BigReal>> {
        let (nb, n, d) = (z.batch(), z.len(), z.dim());
        let u = self.layout.u.clone();
        let delta = self.layout.delta.clone();
        // Value layers sorted by id, with their position in the model.
        let mut order: Vec<usize> = (0..self.layout.value_ids.len()).collect();
        order.sort_by(|&a, &b| self.layout.value_ids[a].partial_cmp(&self.layout.value_ids[b]).unwrap_or(std::cmp::Ordering::Equal));
        let sorted: Vec<BigReal> = order.iter().map(|&i| self.layout.value_ids[i].clone()).collect();
        let mut rows = z.as_slice().to_vec();
        for t in 0..nb * n {
            let mut tok = Batch::new(1, 1, d, rows[t * d..(t + 1) * d].to_vec())?;
            let mut next = 0usize;
            loop {
                let p = project(&u, tok.as_slice());
                let (lo, hi) = (p.sub(&delta), p.add(&delta));
                // Layers with c ∈ (p − δ, p + δ), i.e. p inside their open window; the earliest at/after `next`.
                let from = sorted.partition_point(|c| *c <= lo);
                let first = (from..sorted.len()).take_while(|&i| sorted[i] < hi).map(|i| order[i]).filter(|&k| k >= next).min();
                let Some(k) = first else { break };
                tok = self.block(self.layout.values.start + k, &tok)?;
                next = k + 1;
            }
            rows[t * d..(t + 1) * d].clone_from_slice(tok.as_slice());
        }
        Batch::new(nb, n, d, rows)
    }
}
