//! Proposition 1: `F_2^FF ∘ F^SA ∘ F_1^FF` approximates continuous permutation-equivariant functions.
//!
//! * `F_1^FF` quantizes each coordinate of `[0, 1)` onto the grid `{0, δ, …, 1 − δ}` (shifted by 1 so that
//!   no token is 0): `x ↦ 1 + δ Σ_k step(x − kδ)` with the ReLU step `ReLU(u/η + 1) − ReLU(u/η)`, exact
//!   outside boundary slabs `(kδ − η, kδ)` of total measure `(1/δ − 1)η` per coordinate (`η = δ·2⁻³⁰`).
//! * `F^SA` is the rank-1 contextual mapping (Measured constants) on the grid vocabulary.
//! * `F_2^FF` interpolates, through every context id of every multiset of grid tokens, the value of the
//!   target at the cell centres (a piecewise-constant approximation `f̄`).
//!
//! Sequences that quantize to repeated tokens are outside Theorem 2's hypotheses; their ids are computed
//! like all others and any that collide are reported ([`ApproximatorReport::colliding_ids`]). The L² error
//! on random inputs falls with δ; [`ApproximatorReport`] records it with the parameter count.

use std::collections::BTreeMap;

use boltz_bigfloat::{BigFloatBackend, BigReal, FfnEvaluation};
use boltz_core::rng::SeededRng;
use boltz_core::{Backend, Batch, Block, Error, FeedForward, Matrix, Model, ModelBlock, ModelInfo, ParamCount, Real, Result, Weight};
use serde::{Deserialize, Serialize};

use crate::one_layer::boltzmann::lemma1_gap;
use crate::one_layer::contextual::{attention_block, project, separation, Projection, Separation};
use crate::one_layer::memorizer::Interpolation;

/// A continuous permutation-equivariant target `f : [0,1)^{n×d} → R^{n×d}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// `f(X)_k = x_k ⊙ mean(X)`.
    ProductMean,
    /// `f(X)_k = Σ_i softmax_i(⟨x_k, x_i⟩) x_i` (softmax-pooled interaction).
    SoftmaxPool,
}

impl Target {
    /// Evaluates `f` on tokens `x` (`n × d` row-major).
    pub fn eval(self, x: &[f64], n: usize, d: usize) -> Vec<f64> {
        let tok = |k: usize| &x[k * d..(k + 1) * d];
        let mut out = Vec::with_capacity(n * d);
        match self {
            Self::ProductMean => {
                let mean: Vec<f64> = (0..d).map(|c| (0..n).map(|k| tok(k)[c]).sum::<f64>() / n as f64).collect();
                for k in 0..n {
                    out.extend(tok(k).iter().zip(&mean).map(|(a, b)| a * b));
                }
            }
            Self::SoftmaxPool => {
                for k in 0..n {
                    let scores: Vec<f64> = (0..n).map(|i| tok(k).iter().zip(tok(i)).map(|(a, b)| a * b).sum()).collect();
                    let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let w: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = w.iter().sum();
                    out.extend((0..d).map(|c| (0..n).map(|i| w[i] / z * tok(i)[c]).sum::<f64>()));
                }
            }
        }
        out
    }

    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductMean => "product-mean",
            Self::SoftmaxPool => "softmax-pool",
        }
    }
}

/// Measurements of one approximator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproximatorReport {
    /// The target.
    pub target: Target,
    /// Sequence length n and token dimension d.
    pub n: usize,
    /// Token dimension.
    pub d: usize,
    /// Grid width δ = 1/cells.
    pub delta: f64,
    /// Ramp width η of the quantizer.
    pub eta: f64,
    /// Parameters (dense / factored).
    pub params: ParamCount,
    /// Context ids interpolated by `F_2` (distinct (token, multiset) keys).
    pub ids: usize,
    /// Keys whose ids coincided with another key's (only possible for repeated-token multisets).
    pub colliding_ids: usize,
    /// `λ` of the attention layer and its largest logit `r_a`.
    pub lambda: f64,
    /// `λ M²`.
    pub r_a: f64,
    /// Precision used to build and evaluate.
    pub bits: u64,
    /// Random inputs evaluated.
    pub samples: usize,
    /// L² error of the network: `sqrt(mean ‖F(X) − f(X)‖²)` over the samples.
    pub l2_error: f64,
    /// L² error of the piecewise-constant `f̄` itself (the discretization floor).
    pub l2_error_piecewise_constant: f64,
}

/// The built FF∘SA∘FF network and its report.
#[derive(Clone, Debug)]
pub struct Approximator {
    /// Block 0: quantizing FFN; block 1: attention + value FFN.
    pub model: Model<BigReal>,
    /// Measurements.
    pub report: ApproximatorReport,
}

/// All multisets of size `n` from `0..k` (sorted tuples).
/// The most multisets of grid tokens the approximator enumerates.
pub const MAX_MULTISETS: usize = 20_000;

fn multisets(k: usize, n: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = vec![0usize; n];
    loop {
        out.push(cur.clone());
        let Some(i) = (0..n).rev().find(|&i| cur[i] < k - 1) else { break };
        cur[i] += 1;
        for j in i + 1..n {
            cur[j] = cur[i];
        }
    }
    out
}

fn quantizer(d: usize, cells: usize, eta: f64) -> FeedForward<BigReal> {
    let delta = 1.0 / cells as f64;
    let r = BigReal::from_f64;
    // Per coordinate: 2(cells − 1) step units, then ReLU(x) and ReLU(−x).
    let per = 2 * (cells - 1) + 2;
    let q = d * per;
    let mut w1 = vec![0.0; q * d];
    let mut b1 = vec![0.0; q];
    let mut w2 = vec![0.0; d * q];
    for i in 0..d {
        for k in 1..cells {
            let (u1, u2) = (i * per + 2 * (k - 1), i * per + 2 * (k - 1) + 1);
            let edge = k as f64 * delta;
            w1[u1 * d + i] = 1.0 / eta;
            b1[u1] = -edge / eta + 1.0;
            w1[u2 * d + i] = 1.0 / eta;
            b1[u2] = -edge / eta;
            w2[i * q + u1] = delta;
            w2[i * q + u2] = -delta;
        }
        let (p, m) = (i * per + per - 2, i * per + per - 1);
        w1[p * d + i] = 1.0;
        w1[m * d + i] = -1.0;
        w2[i * q + p] = -1.0;
        w2[i * q + m] = 1.0;
    }
    let mat = |rows, cols, v: Vec<f64>| Matrix::new(rows, cols, v.into_iter().map(r).collect()).expect("invariant: sizes match");
    FeedForward {
        w1: Weight::Dense(mat(q, d, w1)),
        b1: b1.into_iter().map(r).collect(),
        w2: Weight::Dense(mat(d, q, w2)),
        b2: vec![r(1.0); d],
    }
}

/// The attention layer's constants on the grid tokens: the best of 501 random directions by `g·m`, Lemma 1's
/// λ for it, γ, and the bits in which its ids are resolved.
struct GridAttention {
    proj: Projection,
    lambda: f64,
    gamma: f64,
    r_a: f64,
    bits: u64,
}

impl GridAttention {
    fn choose(tokens: &[Vec<f64>], n: usize, delta: f64, rng: &mut SeededRng) -> Self {
        let d = tokens[0].len();
        let mut proj = Projection::measure(&rng.unit_vector(d), tokens);
        for _ in 0..500 {
            let p = Projection::measure(&rng.unit_vector(d), tokens);
            if p.g * p.m > proj.g * proj.m {
                proj = p;
            }
        }
        let lambda = lemma1_gap(n.max(2)) / (proj.g * proj.m);
        let r_max = tokens.iter().map(|t| t.iter().map(|x| x * x).sum::<f64>().sqrt()).fold(0.0f64, f64::max);
        let gamma = (delta / (4.0 * r_max)).min(proj.g / (4.0 * proj.big_m));
        let r_a = lambda * proj.big_m * proj.big_m;
        let bits = ((2.0 * r_a * std::f64::consts::LOG2_E + (lambda * proj.big_m / gamma).log2()) as u64 + 256).max(256);
        Self { proj, lambda, gamma, r_a, bits }
    }
}

/// An interpolation knot: a context id and the residual the FFN adds there.
type Knot = (BigReal, Vec<BigReal>);

/// The grid: its tokens (coordinates `1 + δ·digit`) and every multiset of `n` of them.
struct GridSets<'a> {
    tokens: &'a [Vec<f64>],
    sets: &'a [Vec<usize>],
    n: usize,
    d: usize,
    delta: f64,
}

impl GridSets<'_> {
    /// The interpolation points `(id, residual)` of every distinct (token, multiset) key, sorted by id with
    /// colliding ids kept once (the first); the number of keys; the ids' separation.
    fn interpolation_points(
        &self,
        attention: &ModelBlock<BigReal>,
        head: &GridAttention,
        target: Target,
        threads: usize,
    ) -> Result<(Vec<Knot>, usize, Separation)> {
        let (tokens, n, d, bits) = (self.tokens, self.n, self.d, head.bits);
        // Ids of every (token, multiset): run the attention on every multiset (tokens in sorted order).
        let seq_data: Vec<BigReal> =
            self.sets.iter().flat_map(|s| s.iter().flat_map(|&g| tokens[g].clone())).map(BigReal::from_f64).collect();
        let xs = Batch::new(self.sets.len(), n, d, seq_data)?;
        let attn_model = Model::new(d, vec![attention.clone()], ModelInfo::named("attention"))?;
        let ids = BigFloatBackend::with_threads(bits, threads)?.run(&attn_model, &xs)?;
        let v: Vec<BigReal> = head.proj.v.iter().map(|&x| BigReal::from_f64(x).with_bits(bits)).collect();
        let mut key_of: BTreeMap<(usize, Vec<usize>), usize> = BTreeMap::new();
        let (mut points, mut keys, mut projected) = (Vec::new(), Vec::new(), Vec::new());
        for (si, set) in self.sets.iter().enumerate() {
            let centers: Vec<f64> =
                set.iter().flat_map(|&g| tokens[g].iter().map(|x| x - 1.0 + self.delta / 2.0).collect::<Vec<_>>()).collect();
            let fbar = target.eval(&centers, n, d);
            for (k, &g) in set.iter().enumerate() {
                let next = key_of.len();
                let key = *key_of.entry((g, set.clone())).or_insert(next);
                let z = ids.token(si, k);
                let s = project(&v, z);
                keys.push(key);
                projected.push(s.clone());
                if key == next {
                    let residual: Vec<BigReal> = (0..d).map(|c| BigReal::from_f64(fbar[k * d + c]).with_bits(bits).sub(&z[c])).collect();
                    points.push((s, residual));
                }
            }
        }
        let sep = separation(&projected, &keys);
        // Colliding keys cannot be interpolated separately: keep the first of each equal-id group.
        points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        points.dedup_by(|a, b| a.0 == b.0);
        Ok((points, key_of.len(), sep))
    }
}

/// The root-mean-square error of `model` against `target` on `samples` random inputs, and that of the
/// piecewise-constant `f̄` (the target at the cell centres), the floor any grid approximator meets. Evaluated
/// like the memorizer's verification: prefix-sum FFN evaluation at the build precision.
fn l2_errors(
    model: &Model<BigReal>,
    target: Target,
    grid: &GridSets<'_>,
    samples: usize,
    rng: &mut SeededRng,
    bits: u64,
    threads: usize,
) -> Result<(f64, f64)> {
    let (n, d, delta) = (grid.n, grid.d, grid.delta);
    let inputs: Vec<f64> = (0..samples * n * d).map(|_| rng.uniform()).collect();
    let xb = Batch::new(samples, n, d, inputs.iter().map(|&x| BigReal::from_f64(x)).collect())?;
    let eval = BigFloatBackend::with_threads(bits, threads)?.with_ffn_evaluation(FfnEvaluation::PrefixSums);
    let out = eval.run(model, &xb)?;
    let (mut err, mut err_bar) = (0.0, 0.0);
    for s in 0..samples {
        let x = &inputs[s * n * d..(s + 1) * n * d];
        let f = target.eval(x, n, d);
        let centers: Vec<f64> = x.iter().map(|v| ((v / delta).floor() + 0.5) * delta).collect();
        let fbar = target.eval(&centers, n, d);
        for (i, fi) in f.iter().enumerate() {
            err += (out.sequence(s)[i].to_f64() - fi).powi(2);
            err_bar += (fbar[i] - fi).powi(2);
        }
    }
    Ok(((err / samples as f64).sqrt(), (err_bar / samples as f64).sqrt()))
}

impl Approximator {
    /// The number of random inputs of the L² error: 1 to 2^28 (callers check it before the grid sizes, so
    /// the message names `samples`, not a grid).
    pub fn check_samples(samples: usize) -> Result<()> {
        if samples == 0 || samples > 1 << 28 {
            return Err(Error::InvalidParameter {
                name: "samples".into(),
                reason: format!("the L² error needs 1 to 2^28 random inputs, got {samples}"),
            });
        }
        Ok(())
    }

    /// Checks the sizes before anything is built and returns the number of grid tokens `cells^d`: cells ≥ 2,
    /// n, d, samples ≥ 1, at most 4096 grid tokens and [`MAX_MULTISETS`] multisets of n of them (the
    /// construction enumerates them all), counted with overflow checks before any is enumerated.
    pub fn check_size(n: usize, d: usize, cells: usize, samples: usize) -> Result<usize> {
        if cells < 2 || n == 0 || d == 0 {
            return Err(Error::InvalidParameter { name: "cells/n/d".into(), reason: "need cells ≥ 2, n ≥ 1, d ≥ 1".into() });
        }
        Self::check_samples(samples)?;
        let grid_points = u32::try_from(d).ok().and_then(|d| cells.checked_pow(d)).filter(|g| *g <= 4096).ok_or_else(|| {
            Error::Infeasible(format!(
                "{cells}^{d} grid tokens: the approximator enumerates every multiset of grid tokens; use fewer cells or d"
            ))
        })?;
        // C(g + n − 1, n) multisets.
        let count = (0..n).try_fold(1u128, |acc, i| {
            let next = acc.checked_mul((grid_points + i) as u128)? / (i as u128 + 1);
            (next <= MAX_MULTISETS as u128).then_some(next)
        });
        if count.is_none() {
            return Err(Error::Infeasible(format!(
                "more than {MAX_MULTISETS} multisets of {n} tokens from {grid_points} grid tokens: too many to enumerate; use fewer cells or a shorter n"
            )));
        }
        Ok(grid_points)
    }

    /// Builds the approximator of `target` for sequences of `n` tokens in `[0,1)^d` with `cells` grid cells
    /// per coordinate (δ = 1/cells), and measures its L² error on `samples` random inputs. The sizes are
    /// checked first ([`Self::check_size`]).
    pub fn build(target: Target, n: usize, d: usize, cells: usize, samples: usize, seed: u64, threads: usize) -> Result<Self> {
        let grid_points = Self::check_size(n, d, cells, samples)?;
        let sets = multisets(grid_points, n);
        let delta = 1.0 / cells as f64;
        let eta = delta / (1u64 << 30) as f64;
        // Grid token g (index) → its coordinates 1 + δ·digit.
        let grid_token = |g: usize| -> Vec<f64> { (0..d).map(|c| 1.0 + delta * ((g / cells.pow(c as u32)) % cells) as f64).collect() };
        let tokens: Vec<Vec<f64>> = (0..grid_points).map(grid_token).collect();
        let mut rng = SeededRng::new(seed);
        let head = GridAttention::choose(&tokens, n, delta, &mut rng);
        let attention = attention_block(&head.proj.v, head.lambda, head.gamma, false);
        let grid = GridSets { tokens: &tokens, sets: &sets, n, d, delta };
        let (points, id_count, sep) = grid.interpolation_points(&attention, &head, target, threads)?;
        let v: Vec<BigReal> = head.proj.v.iter().map(|&x| BigReal::from_f64(x).with_bits(head.bits)).collect();
        let interp = Interpolation::through(points, &v, head.bits);
        let blocks =
            vec![Block { attention: None, ffn: Some(quantizer(d, cells, eta)) }, Block { attention: attention.attention, ffn: interp.ffn }];
        let (lambda, r_a, bits) = (head.lambda, head.r_a, head.bits);
        let info = ModelInfo::named("ff-sa-ff").with("target", target.as_str()).with("cells", cells).with("n", n).with("lambda", lambda);
        let model = Model::new(d, blocks, info)?;
        let (err, err_bar) = l2_errors(&model, target, &grid, samples, &mut rng, bits, threads)?;
        let report = ApproximatorReport {
            target,
            n,
            d,
            delta,
            eta,
            params: model.param_count(),
            ids: id_count,
            colliding_ids: sep.collisions,
            lambda,
            r_a,
            bits,
            samples,
            l2_error: err,
            l2_error_piecewise_constant: err_bar,
        };
        Ok(Self { model, report })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizer_is_exact_off_the_boundary() {
        let cells = 8;
        let ffn = quantizer(1, cells, 1e-4);
        let model = Model::new(1, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::named("q")).unwrap();
        let xs = [0.0, 0.01, 0.124, 0.126, 0.5, 0.77, 0.999];
        let x = Batch::new(1, xs.len(), 1, xs.iter().map(|&v| BigReal::from_f64(v)).collect()).unwrap();
        let y = BigFloatBackend::with_threads(128, 1).unwrap().run(&model, &x).unwrap();
        for (i, &v) in xs.iter().enumerate() {
            let expected = 1.0 + (v * cells as f64).floor() / cells as f64;
            assert!((y.as_slice()[i].to_f64() - expected).abs() < 1e-12, "{v} → {} (expected {expected})", y.as_slice()[i]);
        }
    }

    #[test]
    fn multisets_are_counted_right() {
        assert_eq!(multisets(4, 2).len(), 10);
        assert_eq!(multisets(5, 3).len(), 35);
    }

    #[test]
    fn too_many_multisets_are_refused_before_enumerating() {
        // C(4096 + 2, 3) ≈ 1.1·10¹⁰ multisets: refused at once, not after an enumeration that exhausts memory.
        let err = Approximator::build(Target::ProductMean, 3, 1, 4096, 10, 0, 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("too many to enumerate"), "{err}");
    }
}
