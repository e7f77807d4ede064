//! The shared workload table: the same named shapes for benches, the `boltz bench` command and every
//! backend.

use crate::error::{Error, Result};
use crate::fixtures::{random_batch, random_model, RandomModelSpec};
use crate::model::{Attention, AttentionHead, Block, FeedForward, Model, ModelInfo, Normalizer, Weight};
use crate::rng::SeededRng;
use crate::tensor::{Batch, Matrix};

/// A named workload: its shapes and the function that builds its model.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Name (`practical`, `memorizer`, `deep-narrow`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Sequences per forward.
    pub batch: usize,
    /// Sequence length.
    pub n: usize,
    /// Token dimension.
    pub d: usize,
    /// Sequences per forward in the criterion benches (the memorizer keeps its FFN width nN but runs a
    /// slice of its training set, so that one sample takes well under a second).
    pub bench_batch: usize,
    /// Builds the model (f64, from the seeded generator the batch is then drawn from).
    pub model: fn(&Workload, &mut SeededRng) -> Result<Model<f64>>,
}

/// The table.
pub const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "practical",
        description: "one block: one softmax head of size 64 (dense) + FFN width 1024; batch 32, n = 128, d = 256",
        batch: 32,
        n: 128,
        d: 256,
        bench_batch: 32,
        model: practical_model,
    },
    Workload {
        name: "memorizer",
        description: "the one-layer memorizer's shape: rank-1 softmax head + FFN of width nN (W_1 = 1 wᵀ), N = 10⁴, n = 16, d = 16",
        batch: 10_000,
        n: 16,
        d: 16,
        bench_batch: 64,
        model: memorizer_model,
    },
    Workload {
        name: "deep-narrow",
        description: "Yun-style stack: 500 blocks of 2-head size-1 hardmax attention + width-4 FFN; batch 64, n = 8, d = 4",
        batch: 64,
        n: 8,
        d: 4,
        bench_batch: 64,
        model: deep_narrow_model,
    },
];

/// Looks a workload up by name.
pub fn find(name: &str) -> Result<Workload> {
    WORKLOADS.iter().copied().find(|w| w.name == name).ok_or_else(|| {
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        Error::param("workload", format!("unknown workload {name:?}; expected one of {names:?}"))
    })
}

impl Workload {
    /// The model and a batch of `batch` sequences (default: the workload's), seeded.
    pub fn build(&self, batch: Option<usize>) -> Result<(Model<f64>, Batch<f64>)> {
        let mut rng = SeededRng::new(0x5eed);
        let model = (self.model)(self, &mut rng)?;
        Ok((model, random_batch(&mut rng, batch.unwrap_or(self.batch), self.n, self.d)))
    }
}

/// `practical`: one block, one dense softmax head of size 64 and an FFN of width 1024.
fn practical_model(w: &Workload, rng: &mut SeededRng) -> Result<Model<f64>> {
    Ok(random_model(rng, &RandomModelSpec::sized(w.d, 1, 1, 64, 1024)))
}

/// `memorizer`: the one-layer memorizer's shape (Corollary 1): a rank-1 softmax head and an FFN of width
/// `nN` whose first layer is `1 wᵀ`, with thresholds spread over the projections' range.
fn memorizer_model(w: &Workload, rng: &mut SeededRng) -> Result<Model<f64>> {
    let (n, d) = (w.n, w.d);
    let q = w.batch * n;
    let v: Vec<f64> = rng.unit_vector(d);
    let head = AttentionHead {
        w_q: Weight::rank_one(vec![3.0], v.clone()),
        w_k: Weight::rank_one(vec![1.0], v.clone()),
        w_v: Weight::rank_one(vec![1.0], v.clone()),
        w_o: Weight::rank_one(v.clone(), vec![0.01]),
        b_q: None,
    };
    let ffn = FeedForward {
        w1: Weight::rank_one(vec![1.0; q], v),
        b1: (0..q).map(|j| -2.0 + 4.0 * j as f64 / q as f64).collect(),
        w2: Weight::Dense(Matrix::from_fn(d, q, |_, _| 1e-3 * rng.normal())),
        b2: vec![0.0; d],
    };
    let block = Block { attention: Some(Attention { heads: vec![head], normalizer: Normalizer::Softmax, causal: false }), ffn: Some(ffn) };
    Model::new(d, vec![block], ModelInfo::named("memorizer-workload"))
}

/// `deep-narrow`: a Yun-style stack of 500 blocks, each two size-1 hardmax heads with query biases and a
/// width-4 FFN.
fn deep_narrow_model(w: &Workload, rng: &mut SeededRng) -> Result<Model<f64>> {
    Ok(random_model(
        rng,
        &RandomModelSpec { normalizer: Normalizer::Hardmax, query_bias: true, ..RandomModelSpec::sized(w.d, 500, 2, 1, 4) },
    ))
}

/// Floating-point operations of one forward of `model` on `batch` sequences of length `n`, counted
/// analytically as multiply-adds × 2 (exponentials and comparisons not counted): per head
/// `2n(s·d)·3 + 2n(d·s)` for the projections (or the factored equivalents), `4n²s` for scores and the
/// weighted sum; per FFN `2n(q·d) + 2n(d·q)` (factored weights count `2r(rows + cols)` per token).
pub fn flops<T: crate::Real>(model: &Model<T>, batch: usize, n: usize) -> f64 {
    let per_token = |w: &Weight<T>| -> f64 {
        match w {
            Weight::Dense(m) => 2.0 * (m.rows() * m.cols()) as f64,
            Weight::Factored { u, v } => 2.0 * (u.cols() * (u.rows() + v.rows())) as f64,
        }
    };
    let mut total = 0.0;
    for b in model.blocks() {
        if let Some(a) = &b.attention {
            for h in &a.heads {
                let s = h.head_size() as f64;
                total += n as f64 * (per_token(&h.w_q) + per_token(&h.w_k) + per_token(&h.w_v) + per_token(&h.w_o));
                total += 4.0 * (n * n) as f64 * s;
            }
        }
        if let Some(f) = &b.ffn {
            total += n as f64 * (per_token(&f.w1) + per_token(&f.w2));
        }
    }
    total * batch as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_builds_and_counts() {
        let (m, x) = find("deep-narrow").unwrap().build(Some(2)).unwrap();
        assert_eq!((m.layer_count().attention, m.layer_count().ffn, x.shape()), (500, 500, [2, 8, 4]));
        let (m, _) = find("practical").unwrap().build(Some(1)).unwrap();
        // 8nsd + 4n²s + 4ndq with n = 128, s = 64, d = 256, q = 1024.
        let expected = 8.0 * 128.0 * 64.0 * 256.0 + 4.0 * 128.0 * 128.0 * 64.0 + 4.0 * 128.0 * 256.0 * 1024.0;
        assert_eq!(flops(&m, 1, 128), expected);
        assert!(matches!(find("huge"), Err(Error::InvalidParameter { .. })));
    }
}
