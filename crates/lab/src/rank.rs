//! The numerical ranks of a model's attention products (`W_Kᵀ W_Q` and `W_Vᵀ W_Oᵀ` per head; SVD by
//! LAPACK through `boltz-blas`), computed once per model: the memorize record keeps the full report, the
//! suite's rows and the CLI's summary line its largest ranks ([`AttentionRank`]).

use crate::rows::AttentionRank;

/// The rank report of one model.
#[derive(Clone, Debug, PartialEq)]
pub enum RankReport {
    /// A build without the `blas` feature: no SVD.
    Unavailable,
    /// The SVD failed (the message).
    Failed(String),
    /// Every head's report (the JSON of `boltz_blas::HeadRank`s) and the largest ranks over the heads.
    Heads {
        /// One object per head, in block order.
        report: serde_json::Value,
        /// The largest ranks over the heads.
        summary: AttentionRank,
    },
}

impl RankReport {
    /// Computes the report of `model`'s heads (in f64).
    pub fn of<T: boltz_core::Real>(model: &boltz_core::Model<T>) -> Self {
        #[cfg(feature = "blas")]
        {
            match boltz_blas::rank_report(model) {
                Ok(heads) => Self::Heads {
                    summary: AttentionRank {
                        attention_heads: heads.len(),
                        rank_key_query_max: heads.iter().map(|h| h.key_query.numerical_rank).max().unwrap_or(0),
                        rank_value_output_max: heads.iter().map(|h| h.value_output.numerical_rank).max().unwrap_or(0),
                    },
                    report: serde_json::to_value(&heads).unwrap_or(serde_json::Value::Null),
                },
                Err(e) => Self::Failed(e.to_string()),
            }
        }
        #[cfg(not(feature = "blas"))]
        {
            let _ = model;
            Self::Unavailable
        }
    }

    /// The largest ranks over the heads, when the SVD ran.
    pub fn summary(&self) -> Option<AttentionRank> {
        match self {
            Self::Heads { summary, .. } => Some(*summary),
            _ => None,
        }
    }

    /// The record's `attention_rank` field: the per-head report, `{"error": …}` when the SVD failed, `null`
    /// without the `blas` feature.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Unavailable => serde_json::Value::Null,
            Self::Failed(e) => serde_json::json!({ "error": e }),
            Self::Heads { report, .. } => report.clone(),
        }
    }
}

#[cfg(all(test, feature = "blas"))]
mod tests {
    use super::*;

    #[test]
    fn a_rank_one_head_reports_rank_one_and_its_summary_agrees_with_the_report() {
        let data = boltz_core::Dataset::<f64>::generate(&boltz_core::DatasetSpec {
            sequences: 4,
            length: 3,
            dim: 2,
            vocab: 6,
            ..Default::default()
        })
        .unwrap();
        let opts = boltz_construct::ContextualOptions { threads: 1, ..Default::default() };
        let m = boltz_construct::Memorizer::build(&data, &opts).unwrap();
        let r = RankReport::of(&m.model);
        let s = r.summary().expect("the SVD runs");
        assert_eq!(s.rank_key_query_max, 1, "the construction's key-query product has rank 1");
        let heads = r.to_json();
        assert_eq!(heads.as_array().map(Vec::len), Some(s.attention_heads));
        assert_eq!(heads[0]["key_query"]["numerical_rank"], 1);
    }
}
