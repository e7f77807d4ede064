//! The suite's points: every point is computed independently (so sweeps can be sharded), and
//! [`super::run_point`] runs one of them into its typed row.

use anyhow::{anyhow, Result};
use boltz_bigfloat::BigReal;
use boltz_construct::one_layer::approximator::Target;
use boltz_construct::Construction;
use boltz_core::{Dataset, Model};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::SuiteConfig;

/// The experiments, in suite order.
pub const EXPERIMENTS: [&str; 6] = ["capacity", "adversarial", "separation", "approximation", "hardmax", "trained"];

/// One independently computable point of the suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "experiment", rename_all = "lowercase")]
pub enum PointSpec {
    /// A one-layer memorizer (or Yun et al.'s construction) for N sequences under a policy.
    Capacity {
        /// Sequences N.
        sequences: usize,
        /// The construction.
        policy: Construction,
    },
    /// A construction on a dataset file of `capacity.datasets` (a capacity row with `family` =
    /// `file:<name>`).
    Dataset {
        /// The dataset's name (`capacity.datasets[i].name`, or its file stem).
        dataset: String,
        /// The construction.
        policy: Construction,
    },
    /// A construction on a data family (generic, grid, Prouhet–Tarry–Escott) with token dimension `dim`.
    Adversarial {
        /// Data family (`random`, `grid`, `pte`).
        family: String,
        /// Token dimension d.
        dim: usize,
        /// Sequences N.
        sequences: usize,
        /// The construction.
        policy: Construction,
    },
    /// A contextual mapping for (n, |V|, d).
    Separation {
        /// Sequence length n.
        length: usize,
        /// Vocabulary size |V|.
        vocab: usize,
        /// Token dimension d.
        dim: usize,
    },
    /// An approximator for a target at 1/δ cells.
    Approximation {
        /// Target function (`product-mean`, `softmax-pool`).
        target: String,
        /// Grid cells per coordinate, 1/δ.
        cells: usize,
    },
    /// The hardmax demonstration in dimension d.
    Hardmax {
        /// Token dimension d.
        dim: usize,
    },
    /// The trained capacity of a model (`trained.models`) with an FFN width on a data family.
    Trained {
        /// Data family (`random`, `grid`, `pte`).
        family: String,
        /// Token dimension d.
        dim: usize,
        /// The model's name.
        model: String,
        /// FFN hidden width.
        ffn_width: usize,
    },
}

impl PointSpec {
    /// The experiment this point belongs to.
    pub fn experiment(&self) -> &'static str {
        match self {
            Self::Capacity { .. } | Self::Dataset { .. } => "capacity",
            Self::Adversarial { .. } => "adversarial",
            Self::Separation { .. } => "separation",
            Self::Approximation { .. } => "approximation",
            Self::Hardmax { .. } => "hardmax",
            Self::Trained { .. } => "trained",
        }
    }
}

/// Every point of the suite, in a fixed order (the `point` index used for sharding).
pub fn points(cfg: &SuiteConfig) -> Vec<PointSpec> {
    let mut out = Vec::new();
    for &n in &cfg.capacity.sequences {
        for p in &cfg.capacity.policies {
            if p.yun_delta().is_none() || n <= cfg.capacity.yun_max_sequences {
                out.push(PointSpec::Capacity { sequences: n, policy: *p });
            }
        }
    }
    for f in &cfg.capacity.datasets {
        for p in f.policies.as_ref().unwrap_or(&cfg.capacity.policies) {
            out.push(PointSpec::Dataset { dataset: f.name(), policy: *p });
        }
    }
    let a = &cfg.adversarial;
    for f in &a.families {
        for &n in &a.sequences {
            for p in &a.policies {
                out.push(PointSpec::Adversarial { family: f.kind.clone(), dim: f.dim, sequences: n, policy: *p });
            }
        }
    }
    for &[length, vocab, dim] in &cfg.separation.grid {
        out.push(PointSpec::Separation { length, vocab, dim });
    }
    for t in &cfg.approximation.targets {
        for &cells in &cfg.approximation.cells {
            out.push(PointSpec::Approximation { target: t.clone(), cells });
        }
    }
    for &dim in &cfg.hardmax.dims {
        out.push(PointSpec::Hardmax { dim });
    }
    for (f, m, ffn_width) in cfg.trained.grid() {
        out.push(PointSpec::Trained { family: f.kind.clone(), dim: f.dim, model: m.name.clone(), ffn_width });
    }
    out
}

/// A shard `i/k` of a sweep: the points whose index is `i` modulo `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, k) = s.split_once('/').ok_or_else(|| format!("expected i/k (e.g. 0/4), got {s:?}"))?;
        let index: usize = i.parse().map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: usize = k.parse().map_err(|_| format!("shard count {k:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 ≤ i < k"));
        }
        Ok(Self { index, count })
    }
}

pub(super) fn target(name: &str) -> Result<Target> {
    match name {
        "product-mean" => Ok(Target::ProductMean),
        "softmax-pool" => Ok(Target::SoftmaxPool),
        other => Err(anyhow!("unknown target {other:?}")),
    }
}

/// What running one point produced: its row, whether its checked property held, and the model it built.
pub struct PointResult {
    /// The result row.
    pub row: Value,
    /// `false` when a property the construction guarantees failed (exit code 1).
    pub property_held: bool,
    /// The model a construction point built, with the data it memorizes (what `--export-models`
    /// writes); `None` for points that build no memorizer or whose build was refused.
    pub model: Option<Box<BuiltModel>>,
}

/// A construction point's model and its data.
pub struct BuiltModel {
    /// The model, in the arbitrary-precision numbers it was built in.
    pub model: Model<BigReal>,
    /// The dataset it memorizes.
    pub data: Dataset<f64>,
}

impl PointResult {
    /// A typed row ([`crate::rows`]) and whether its property held.
    pub(super) fn of<R: Serialize>(row: &R, property_held: bool) -> Result<Self> {
        Ok(Self { row: serde_json::to_value(row)?, property_held, model: None })
    }

    /// This result with the model that produced it.
    pub(super) fn with_model(self, model: Option<Model<BigReal>>, data: Dataset<f64>) -> Self {
        Self { model: model.map(|model| Box::new(BuiltModel { model, data })), ..self }
    }
}
