//! The trained-capacity search: the largest N a training recipe memorizes, over seeds.

use crate::adam::{train, TrainConfig};
use crate::init::{init_model, ModelShape};
use boltz_core::{Dataset, Error, Model, Result};
use serde::{Deserialize, Serialize};

/// How [`trained_capacity`] searches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacitySearch {
    /// The model shape trained at every N.
    pub shape: ModelShape,
    /// Training at every probe (its `steps` is the step budget).
    pub train: TrainConfig,
    /// The data at every probe except N (`sequences` is replaced; `seed` is the data seed).
    pub data: boltz_core::DatasetSpec,
    /// Initialisation seeds: N counts as memorized when training from at least one of them memorizes it.
    pub seeds: Vec<u64>,
    /// Largest N tried.
    pub max_sequences: usize,
    /// A curriculum over N: the first run at every N starts from the model that memorized the largest
    /// smaller N so far (where there is one), before the seeds' fresh initialisations.
    #[serde(default)]
    pub warm_start: bool,
}

/// One training run of the search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityProbe {
    /// N.
    pub sequences: usize,
    /// Initialisation seed (of the run's own initialisation, or of the model it was warm-started from).
    pub seed: u64,
    /// Warm start: the N whose memorizing model this run started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_from: Option<usize>,
    /// Whether every token decoded within the step budget.
    pub memorized: bool,
    /// Steps taken.
    pub steps: usize,
    /// Final loss.
    pub final_loss: f64,
    /// Final token accuracy.
    pub final_accuracy: f64,
}

/// What [`trained_capacity`] found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// The largest N memorized (0 if not even N = 1).
    pub largest_memorized: usize,
    /// The smallest N that failed (above `largest_memorized`), if any was tried.
    pub smallest_failed: Option<usize>,
    /// Dense parameters of the shape.
    pub params: u64,
    /// Bits stored per parameter at the largest N: `N·n·log₂(classes) / params`.
    pub bits_per_param: f64,
    /// Every run, in the order made.
    pub probes: Vec<CapacityProbe>,
}

/// [`trained_capacity`]'s answer and the model that memorized it, with its data.
#[derive(Clone, Debug)]
pub struct Capacity {
    /// The search's record.
    pub report: CapacityReport,
    /// The trained model that memorizes `largest_memorized` sequences, and those sequences (`None` when
    /// not even N = 1 was memorized).
    pub memorizer: Option<(Model<f64>, Dataset<f64>)>,
}

/// The largest N (up to `max_sequences`) that full-batch Adam memorizes at 100 % token accuracy within the
/// step budget from at least one of the seeds: doubling from N = 1 until a failure, then bisection
/// between the last success and the first failure (assuming that memorizing N implies memorizing fewer;
/// every probe is recorded, so a non-monotone answer shows in `probes`).
pub fn trained_capacity(search: &CapacitySearch, mut on_probe: impl FnMut(&CapacityProbe)) -> Result<Capacity> {
    if search.seeds.is_empty() {
        return Err(Error::InvalidParameter { name: "seeds".into(), reason: "at least one".into() });
    }
    if search.max_sequences == 0 {
        return Err(Error::InvalidParameter { name: "max_sequences".into(), reason: "at least 1".into() });
    }
    let mut probes = Vec::new();
    // The memorizing model of the largest N so far: (N, seed, model, data).
    let mut best: Option<(usize, u64, Model<f64>, Dataset<f64>)> = None;
    let mut memorizes = |n: usize| -> Result<bool> {
        let spec = boltz_core::DatasetSpec { sequences: n, ..search.data.clone() };
        let data: Dataset<f64> = Dataset::generate(&spec)?;
        let warm = best.as_ref().filter(|_| search.warm_start).map(|(from, seed, m, _)| (*seed, Some(*from), m.clone()));
        let fresh = search.seeds.iter().map(|&seed| init_model(&search.shape, seed).map(|m| (seed, None, m)));
        for start in warm.map(Ok).into_iter().chain(fresh) {
            let (seed, warm_from, mut model) = start?;
            let r = train(&mut model, &data, &TrainConfig { early_stop: true, ..search.train.clone() }, |_, _, _| {})?;
            let probe = CapacityProbe {
                sequences: n,
                seed,
                warm_from,
                memorized: r.memorized,
                steps: r.steps,
                final_loss: r.final_loss,
                final_accuracy: r.final_accuracy,
            };
            on_probe(&probe);
            probes.push(probe);
            if r.memorized {
                if best.as_ref().is_none_or(|b| b.0 < n) {
                    best = Some((n, seed, model, data));
                }
                return Ok(true);
            }
        }
        Ok(false)
    };
    let (mut good, mut bad) = (0usize, None);
    let mut n = 1usize;
    loop {
        if memorizes(n)? {
            good = n;
            if n == search.max_sequences {
                break;
            }
            n = (2 * n).min(search.max_sequences);
        } else {
            bad = Some(n);
            break;
        }
    }
    if let Some(mut hi) = bad {
        while hi - good > 1 {
            let mid = good + (hi - good) / 2;
            if memorizes(mid)? {
                good = mid;
            } else {
                hi = mid;
            }
        }
        bad = Some(hi);
    }
    let params = init_model::<f64>(&search.shape, search.seeds[0])?.param_count().dense;
    let bits = good as f64 * search.data.length as f64 * f64::from(search.data.classes.max(2)).log2();
    let report = CapacityReport { largest_memorized: good, smallest_failed: bad, params, bits_per_param: bits / params as f64, probes };
    Ok(Capacity { report, memorizer: best.map(|(_, _, m, d)| (m, d)) })
}
