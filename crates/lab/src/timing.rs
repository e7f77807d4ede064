//! Timing forwards, in one place: the job that prepares a model once and times repeated forwards (the
//! `bench` command), and the one summary of a sample of timings (the bench records and the suite's
//! latency columns both report its median, minimum and maximum).

use std::time::Instant;

use anyhow::Result;
use boltz_core::{Backend, Batch};

use crate::backends::Job;

/// The median of a non-empty sample: the middle value, or the mean of the two middle values for an even
/// count. `NaN` for an empty sample.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        (s[k - 1] + s[k]) / 2.0
    }
}

/// Median, minimum and maximum of a sample of timings (in the sample's unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// [`median`] of the sample.
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of a sample (`NaN`s for an empty one).
    pub fn of(v: &[f64]) -> Self {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if v.is_empty() {
            return Self { median: f64::NAN, min: f64::NAN, max: f64::NAN };
        }
        Self { median: median(v), min, max }
    }
}

/// Prepares a model once on the backend, runs one warm-up forward, then times `repeats` forwards of the
/// batch (seconds each), as a [`Job`] for [`crate::backends::dispatch`].
pub struct TimeForwards<'a> {
    /// The model (converted to the backend's element type first).
    pub model: &'a boltz_core::Model<f64>,
    /// The batch (converted likewise).
    pub x: &'a Batch<f64>,
    /// Timed forwards.
    pub repeats: usize,
}

impl Job for TimeForwards<'_> {
    type Output = Vec<f64>;
    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> Result<Self::Output> {
        let m: boltz_core::Model<T> = self.model.convert()?;
        let xt: Batch<T> = self.x.convert()?;
        let prepared = backend.prepare(&m)?;
        backend.forward(&prepared, &xt)?;
        (0..self.repeats)
            .map(|_| {
                let t = Instant::now();
                backend.forward(&prepared, &xt)?;
                Ok(t.elapsed().as_secs_f64())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
        assert_eq!(Spread::of(&[5.0, 1.0, 4.0, 2.0]), Spread { median: 3.0, min: 1.0, max: 5.0 });
    }

    #[test]
    fn time_forwards_times_each_repeat_on_the_named_backend() {
        let (model, x) = boltz_core::workloads::find("practical").unwrap().build(Some(2)).unwrap();
        let times = crate::backends::dispatch(
            crate::backends::BackendKind::Reference,
            crate::backends::Precision::F64,
            1,
            TimeForwards { model: &model, x: &x, repeats: 3 },
        )
        .unwrap();
        assert_eq!(times.len(), 3);
        assert!(times.iter().all(|t| t.is_finite() && *t >= 0.0), "{times:?}");
    }
}
