//! A built model on every configured backend and element type: the accuracy and latency columns of
//! the capacity and adversarial rows.

use anyhow::{Context, Result};
use boltz_core::{Backend, Dataset};

use super::config::SuiteConfig;
use crate::backends::{dispatch, Job};
use crate::rows::{value_or_reason, BackendRunRow};
use crate::timing::Spread;

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
            let spread = times.map(Spread::of);
            Ok(BackendRunRow {
                backend: run.backend.name().to_string(),
                precision: run.precision.to_string(),
                accuracy: values.as_ref().map(|v| v.0),
                latency_ms: spread.map(|s| s.median),
                latency_min_ms: spread.map(|s| s.min),
                latency_max_ms: spread.map(|s| s.max),
                repeats: times.map(<[f64]>::len),
                error,
            })
        })
        .collect()
}
