//! The one interface every backend implements.
//!
//! # Design
//!
//! The trait works at the level of whole models, not of primitive ops (candle's `BackendStorage`,
//! burn's op traits). A backend receives the complete stack once in [`Backend::prepare`] — where it
//! uploads weights, multiplies out or keeps rank factors, picks fused kernels — and then runs batched
//! forwards on that prepared value. This is what the benchmark needs:
//!
//! * **Weights move once.** `prepare` is the upload (cudarc buffers on the GPU, packed panels on the
//!   CPU); `forward` only moves activations.
//! * **Low rank and fusion stay visible to the backend.** A rank-1 head must cost O(n²) for its scores,
//!   a softmax must never materialise more than one n×n block, and a 500-layer stack of tiny layers must
//!   not pay one dispatch per primitive. An op-level trait would hide the structure that these
//!   optimisations need; a model-level trait lets each backend choose.
//! * **One validation path.** [`crate::Model::new`] and [`crate::Batch::new`] validate shapes and
//!   finiteness once, in core; backends call [`check_input`] for the model/input pairing and map
//!   driver failures to [`Error::Backend`] / [`Error::NoDevice`] values. Nothing panics on user input.
//!
//! The element type is a trait parameter (as in dfdx), so one backend value can implement `f32` and
//! `f64` (and the arbitrary-precision backend its big-float type). Backends are chosen at run time by
//! one `match` at the CLI edge; no trait objects are needed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::real::Real;
use crate::tensor::Batch;

/// What ran a forward: recorded with every result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Backend name (`"reference"`, `"cpu"`, `"blas"`, `"cuda"`, `"bigfloat"`).
    pub backend: String,
    /// Device description (CPU model, GPU name).
    pub device: String,
    /// Worker threads used.
    pub threads: usize,
    /// Backend-specific facts (OpenBLAS core, driver version, precision in bits, ...).
    pub details: BTreeMap<String, String>,
}

/// A way to run [`Model`]s on batches of sequences.
pub trait Backend<T: Real>: Send + Sync {
    /// The model as the backend keeps it (uploaded, packed, multiplied out).
    type Prepared: Send + Sync;

    /// Short name, used in bench IDs and results.
    fn name(&self) -> &'static str;

    /// Device, thread count and backend-specific facts.
    fn device_info(&self) -> DeviceInfo;

    /// Makes `model` ready to run (uploads weights once).
    fn prepare(&self, model: &Model<T>) -> Result<Self::Prepared>;

    /// Runs the prepared model on `input` (`[batch, n, d]`), returning `[batch, n, d]`.
    ///
    /// Errors: [`Error::ShapeMismatch`] when `d` differs from the model's, [`Error::Overflow`] when a
    /// result is not finite, backend errors from the device.
    fn forward(&self, model: &Self::Prepared, input: &Batch<T>) -> Result<Batch<T>>;

    /// `prepare` then `forward`, for one-off runs.
    fn run(&self, model: &Model<T>, input: &Batch<T>) -> Result<Batch<T>> {
        let prepared = self.prepare(model)?;
        self.forward(&prepared, input)
    }
}

/// The input checks every backend makes before a forward: the token dimension must be the model's.
pub fn check_input<T: Real>(model_dim: usize, input: &Batch<T>) -> Result<()> {
    if input.dim() != model_dim {
        return Err(Error::shape(
            "input",
            format!("[batch, n, {model_dim}] (the model's d = {model_dim})"),
            format!("{:?}", input.shape()),
        ));
    }
    Ok(())
}

/// The first non-finite value of a forward's output, as an [`Error::Overflow`].
pub fn check_output<T: Real>(output: &[T], location: impl FnOnce() -> String) -> Result<()> {
    if output.iter().any(|x| !x.is_finite()) {
        return Err(Error::Overflow { location: location(), dtype: T::DTYPE });
    }
    Ok(())
}
