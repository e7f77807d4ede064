//! A built model on every configured backend and element type: the accuracy and latency columns of
//! the capacity and adversarial rows.

use anyhow::{Context, Result};
use boltz_core::{Backend, Dataset};

use super::config::SuiteConfig;
use crate::backends::{dispatch, Job};
use crate::rows::{value_or_reason, BackendRunRow};

/// The largest numerical ranks of the attention products over the model's heads ([`crate::rank`]; `None`
/// in a build without the `blas` feature, or when the SVD failed).
pub(super) fn attention_rank(model: &boltz_core::Model<boltz_bigfloat::BigReal>) -> Option<crate::rows::AttentionRank> {
    crate::rank::RankReport::of(model).summary()
}

/// Forwards per configured backend run: the latency is their median, with the minimum and maximum.
pub const LATENCY_REPEATS: usize = 5;

/// A built model rounded to the backend's element type, prepared once and run [`LATENCY_REPEATS`] times
/// over the whole dataset (one batched forward each): the fraction of tokens decoded and the milliseconds
/// of every forward.
pub(super) struct MeasureRun<'a> {
    model: &'a boltz_core::Model<boltz_bigfloat::BigReal>,
    ds: &'a Dataset<f64>,
}

impl Job for MeasureRun<'_> {
    /// The inner error is a property of the run (the model does not fit the format: recorded in the
    /// row); the outer one means the backend could not run at all (the point fails).
    type Output = boltz_core::Result<(f64, Vec<f64>)>;

    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output> {
        Ok(boltz_construct::verify::run_and_time(self.model, self.ds, backend, LATENCY_REPEATS)
            .map(|(m, s)| (m.accuracy, s.iter().map(|t| t * 1e3).collect())))
    }
}

/// The median of a non-empty sample (the mean of the middle two for an even count).
pub(super) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        (s[k - 1] + s[k]) / 2.0
    }
}

/// The model on every configured backend and element type ([`SuiteConfig::backends`]), in order.
pub(super) fn backend_runs(
    cfg: &SuiteConfig,
    threads: usize,
    model: &boltz_core::Model<boltz_bigfloat::BigReal>,
    ds: &Dataset<f64>,
) -> Result<Vec<BackendRunRow>> {
    cfg.backends
        .iter()
        .map(|run| {
            let measured = dispatch(run.backend, run.precision, threads, MeasureRun { model, ds })
                .with_context(|| format!("running the model on {} {}", run.backend.name(), run.precision))?;
            let (values, error) = value_or_reason(measured);
            let times = values.as_ref().map(|v| v.1.as_slice()).filter(|t| !t.is_empty());
            Ok(BackendRunRow {
                backend: run.backend.name().to_string(),
                precision: run.precision.to_string(),
                accuracy: values.as_ref().map(|v| v.0),
                latency_ms: times.map(median),
                latency_min_ms: times.map(|t| t.iter().copied().fold(f64::INFINITY, f64::min)),
                latency_max_ms: times.map(|t| t.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                repeats: times.map(<[f64]>::len),
                error,
            })
        })
        .collect()
}
