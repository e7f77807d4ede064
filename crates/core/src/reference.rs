//! The reference backend: a plain, obviously-correct forward, generic over the element type.
//!
//! It follows the formulas of [`crate::model`] literally — rank factors multiplied out, one token at a
//! time, sums left to right, softmax shifted by the maximum, hardmax averaging exactly tied maxima — and is
//! the oracle of the conformance suite (at `f64`). It is single-threaded and makes no attempt at speed.

use crate::backend::{check_input, check_output, Backend, DeviceInfo};
use crate::error::Result;
use crate::model::{Model, Normalizer};
use crate::real::Real;
use crate::skeleton::{Attention, Stack};
use crate::tensor::{dot, Batch, Matrix};

/// The reference backend (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceBackend;

impl ReferenceBackend {
    /// The reference backend.
    pub fn new() -> Self {
        Self
    }
}

/// Numerical facts about one forward, for judging how well-conditioned a comparison is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForwardTrace {
    /// Smallest relative gap `(max − runner-up)/max(|max|, |runner-up|)` between the top score and the
    /// best strictly smaller score of any hardmax query (`+inf` if there was none). A tiny gap means
    /// another precision may pick a different maximiser.
    pub min_hardmax_gap: f64,
    /// Largest `max − min` score spread of any softmax query.
    pub max_softmax_spread: f64,
}

impl Default for ForwardTrace {
    fn default() -> Self {
        Self { min_hardmax_gap: f64::INFINITY, max_softmax_spread: 0.0 }
    }
}

/// A model with every weight multiplied out to a dense matrix: the model's [`Stack`] skeleton over dense
/// heads and feed-forward layers.
#[derive(Clone, Debug)]
pub struct DenseModel<T> {
    stack: Stack<DenseHead<T>, DenseFfn<T>>,
}

#[derive(Clone, Debug)]
struct DenseHead<T> {
    w_q: Matrix<T>,
    w_k: Matrix<T>,
    w_v: Matrix<T>,
    w_o: Matrix<T>,
    b_q: Option<Vec<T>>,
}

#[derive(Clone, Debug)]
struct DenseFfn<T> {
    w1: Matrix<T>,
    b1: Vec<T>,
    w2: Matrix<T>,
    b2: Vec<T>,
}

impl<T: Real> DenseModel<T> {
    /// Multiplies out every weight of `model`.
    pub fn new(model: &Model<T>) -> Self {
        let stack = model.stack().map(
            |_, h| DenseHead {
                w_q: h.w_q.to_dense(),
                w_k: h.w_k.to_dense(),
                w_v: h.w_v.to_dense(),
                w_o: h.w_o.to_dense(),
                b_q: h.b_q.clone(),
            },
            |_, f| DenseFfn { w1: f.w1.to_dense(), b1: f.b1.clone(), w2: f.w2.to_dense(), b2: f.b2.clone() },
        );
        Self { stack }
    }

    /// Token dimension `d`.
    pub fn dim(&self) -> usize {
        self.stack.dim()
    }

    /// Forward of one sequence (`n × d` row-major), updating `trace`.
    pub fn forward_sequence(&self, x: &[T], trace: &mut ForwardTrace) -> Result<Vec<T>> {
        let d = self.dim();
        let n = x.len() / d;
        let mut z: Vec<Vec<T>> = x.chunks(d).map(<[T]>::to_vec).collect();
        for (b, block) in self.stack.blocks().iter().enumerate() {
            if let Some(Attention { heads, normalizer, causal }) = &block.attention {
                let mut delta: Vec<Vec<T>> = vec![vec![T::from_f64(0.0); d]; n];
                for head in heads {
                    let q: Vec<Vec<T>> = z
                        .iter()
                        .map(|t| {
                            let mut q = head.w_q.matvec(t);
                            if let Some(bq) = &head.b_q {
                                q = q.iter().zip(bq).map(|(a, c)| a.add(c)).collect();
                            }
                            q
                        })
                        .collect();
                    let k: Vec<Vec<T>> = z.iter().map(|t| head.w_k.matvec(t)).collect();
                    let v: Vec<Vec<T>> = z.iter().map(|t| head.w_v.matvec(t)).collect();
                    for j in 0..n {
                        let keys = if *causal { j + 1 } else { n };
                        let scores: Vec<T> = (0..keys).map(|i| dot(&k[i], &q[j])).collect();
                        let mixed = attend(&scores, &v[..keys], *normalizer, trace);
                        let out = head.w_o.matvec(&mixed);
                        for (acc, o) in delta[j].iter_mut().zip(&out) {
                            *acc = acc.add(o);
                        }
                    }
                }
                for (t, dt) in z.iter_mut().zip(&delta) {
                    for (a, c) in t.iter_mut().zip(dt) {
                        *a = a.add(c);
                    }
                }
                check_output(&z.concat(), || format!("blocks.{b}.attn"))?;
            }
            if let Some(DenseFfn { w1, b1, w2, b2 }) = &block.ffn {
                for t in z.iter_mut() {
                    let h: Vec<T> = w1.matvec(t).iter().zip(b1).map(|(a, c)| a.add(c).relu()).collect();
                    let y = w2.matvec(&h);
                    for ((a, yi), bi) in t.iter_mut().zip(&y).zip(b2) {
                        *a = a.add(&yi.add(bi));
                    }
                }
                check_output(&z.concat(), || format!("blocks.{b}.ffn"))?;
            }
        }
        Ok(z.concat())
    }

    /// Batched forward with a trace.
    pub fn forward_traced(&self, input: &Batch<T>) -> Result<(Batch<T>, ForwardTrace)> {
        check_input(self.dim(), input)?;
        let mut trace = ForwardTrace::default();
        let mut out = Vec::with_capacity(input.as_slice().len());
        // Each sequence is a safe point of a watched computation (`crate::watch`).
        let here = crate::watch::here();
        here.stage(|| "reference forward".into(), Some(input.batch()))?;
        for b in 0..input.batch() {
            out.extend(self.forward_sequence(input.sequence(b), &mut trace)?);
            here.done(1)?;
        }
        Ok((Batch::new(input.batch(), input.len(), input.dim(), out)?, trace))
    }
}

/// `Σ_i σ(scores)_i · values_i` for one query.
fn attend<T: Real>(scores: &[T], values: &[Vec<T>], normalizer: Normalizer, trace: &mut ForwardTrace) -> Vec<T> {
    let s = values[0].len();
    let mut max = scores[0].clone();
    for x in &scores[1..] {
        if *x > max {
            max = x.clone();
        }
    }
    let mut acc = vec![T::from_f64(0.0); s];
    match normalizer {
        Normalizer::Softmax => {
            let weights: Vec<T> = scores.iter().map(|x| x.sub(&max).exp()).collect();
            let mut total = T::from_f64(0.0);
            for w in &weights {
                total = total.add(w);
            }
            for (w, v) in weights.iter().zip(values) {
                let p = w.div(&total);
                for (a, vi) in acc.iter_mut().zip(v) {
                    *a = a.add(&p.mul(vi));
                }
            }
            let min = scores.iter().fold(max.clone(), |m, x| if *x < m { x.clone() } else { m });
            trace.max_softmax_spread = trace.max_softmax_spread.max(max.sub(&min).to_f64());
        }
        Normalizer::Hardmax => {
            let mut ties = 0usize;
            let mut runner_up: Option<&T> = None;
            for (x, v) in scores.iter().zip(values) {
                if *x == max {
                    ties += 1;
                    for (a, vi) in acc.iter_mut().zip(v) {
                        *a = a.add(vi);
                    }
                } else if runner_up.is_none_or(|r| x > r) {
                    runner_up = Some(x);
                }
            }
            let count = T::from_f64(ties as f64);
            acc = acc.iter().map(|a| a.div(&count)).collect();
            if let Some(r) = runner_up {
                let (m, r) = (max.to_f64(), r.to_f64());
                let scale = m.abs().max(r.abs()).max(f64::MIN_POSITIVE);
                trace.min_hardmax_gap = trace.min_hardmax_gap.min((m - r) / scale);
            }
        }
    }
    acc
}

impl<T: Real> Backend<T> for ReferenceBackend {
    type Prepared = DenseModel<T>;

    fn name(&self) -> &'static str {
        "reference"
    }

    fn device_info(&self) -> DeviceInfo {
        DeviceInfo { backend: "reference".into(), device: "host (scalar, single-threaded)".into(), threads: 1, details: Default::default() }
    }

    fn prepare(&self, model: &Model<T>) -> Result<DenseModel<T>> {
        Ok(DenseModel::new(model))
    }

    fn forward(&self, model: &DenseModel<T>, input: &Batch<T>) -> Result<Batch<T>> {
        model.forward_traced(input).map(|(out, _)| out)
    }
}
