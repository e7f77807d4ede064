//! Numerical rank and conditioning of a model's attention products, by LAPACK's SVD (`?gesdd` through
//! ndarray-linalg).
//!
//! Theorem 2 of Kajitsuka & Sato needs only *rank-1* weights: `W_Kᵀ W_Q` (the bilinear form of the
//! scores) and `W_Vᵀ W_Oᵀ` (what a head adds to a token, transposed) each have rank one. This report
//! shows it for any model: singular values, the numerical rank at the LAPACK-standard tolerance
//! `max(rows, cols) · ε · σ₁`, and the condition number `σ₁ / σ_rank` of the non-zero part.

use boltz_core::{Model, Result};
use ndarray::Array2;
use ndarray_linalg::SVD;
use serde::{Deserialize, Serialize};

/// Singular values of one `d × d` product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductRank {
    /// Singular values, largest first.
    pub singular_values: Vec<f64>,
    /// Number of singular values above [`ProductRank::tolerance`].
    pub numerical_rank: usize,
    /// `max(rows, cols) · ε₆₄ · σ₁`.
    pub tolerance: f64,
    /// `σ₁ / σ_rank` over the numerically non-zero singular values (1 for rank ≤ 1; `None` for a zero matrix).
    pub condition: Option<f64>,
}

/// The two products of one head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadRank {
    /// Block index.
    pub block: usize,
    /// Head index within the block.
    pub head: usize,
    /// Head size `s` (an upper bound on both ranks).
    pub head_size: usize,
    /// `W_Kᵀ W_Q` (`d × d`).
    pub key_query: ProductRank,
    /// `W_Vᵀ W_Oᵀ` (`d × d`).
    pub value_output: ProductRank,
}

/// SVD of a dense matrix.
pub fn product_rank(m: &Array2<f64>) -> Result<ProductRank> {
    let (_, sigma, _) =
        m.svd(false, false).map_err(|e| boltz_core::Error::Backend { backend: "blas", op: "svd", message: e.to_string() })?;
    let singular_values: Vec<f64> = sigma.to_vec();
    let top = singular_values.first().copied().unwrap_or(0.0);
    let tolerance = m.nrows().max(m.ncols()) as f64 * f64::EPSILON * top;
    let numerical_rank = singular_values.iter().filter(|&&s| s > tolerance).count();
    let condition = (numerical_rank > 0).then(|| top / singular_values[numerical_rank - 1]);
    Ok(ProductRank { singular_values, numerical_rank, tolerance, condition })
}

/// The rank report of every attention head of `model` (in f64; any element type converts losslessly or
/// rounds once to nearest).
pub fn rank_report<T: boltz_core::Real>(model: &Model<T>) -> Result<Vec<HeadRank>> {
    let dense = |w: &boltz_core::Weight<T>| {
        let m = w.to_dense();
        Array2::from_shape_fn((m.rows(), m.cols()), |(i, j)| m.get(i, j).to_f64())
    };
    let mut out = Vec::new();
    for (b, block) in model.blocks().iter().enumerate() {
        let Some(attention) = &block.attention else { continue };
        for (h, head) in attention.heads.iter().enumerate() {
            let (wq, wk, wv, wo) = (dense(&head.w_q), dense(&head.w_k), dense(&head.w_v), dense(&head.w_o));
            out.push(HeadRank {
                block: b,
                head: h,
                head_size: head.head_size(),
                key_query: product_rank(&wk.t().dot(&wq))?,
                value_output: product_rank(&wv.t().dot(&wo.t()))?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltz_core::fixtures::{random_model, RandomModelSpec};
    use boltz_core::rng::SeededRng;

    #[test]
    fn svd_finds_the_rank_of_known_products() {
        // Outer product: rank 1; identity: rank 3, condition 1; diag(4, 1, 0): rank 2, condition 4.
        let outer = Array2::from_shape_fn((3, 3), |(i, j)| (i as f64 + 1.0) * (j as f64 - 1.5));
        let r = product_rank(&outer).expect("svd");
        assert_eq!(r.numerical_rank, 1, "{r:?}");
        let id = Array2::<f64>::eye(3);
        let r = product_rank(&id).expect("svd");
        assert_eq!((r.numerical_rank, r.condition), (3, Some(1.0)));
        let mut diag = Array2::<f64>::zeros((3, 3));
        diag[[0, 0]] = 4.0;
        diag[[1, 1]] = 1.0;
        let r = product_rank(&diag).expect("svd");
        assert_eq!(r.numerical_rank, 2);
        assert!((r.condition.expect("nonzero") - 4.0).abs() < 1e-12);
        assert_eq!(product_rank(&Array2::zeros((2, 2))).expect("svd").condition, None);
    }

    #[test]
    fn random_heads_have_rank_of_their_size() {
        let mut rng = SeededRng::new(3);
        let spec = RandomModelSpec::sized(8, 2, 2, 3, 4);
        let model: Model<f64> = random_model(&mut rng, &spec);
        let report = rank_report(&model).expect("report");
        assert_eq!(report.len(), 4);
        for h in &report {
            assert_eq!((h.key_query.numerical_rank, h.value_output.numerical_rank), (3, 3), "{h:?}");
        }
    }
}
