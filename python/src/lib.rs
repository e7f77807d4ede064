//! `boltzformer._native`: the Rust side of the `boltzformer` Python package.
//!
//! It exposes the library, not the CLI: datasets become `boltz_core::Dataset`s through the same readers and
//! checks as `boltz memorize --dataset` (`format::dataset_from_arrays`, `construction::check_dataset`),
//! models are built by `boltz_lab::construction::build` and run through the one backend dispatch
//! (`boltz_lab::backends::dispatch`), so a NumPy dataset gives the same report here as through the CLI.
//! Long computations run on a worker thread with the GIL released while the calling thread answers
//! signals (Ctrl-C stops them within one safe point) and feeds an optional progress callback (`watched`).
//! Every error is a `boltzformer.BoltzError` (a `ValueError`) carrying
//! the Rust message, or its subclass for the kinds users catch (`DataError`, `PrecisionError`,
//! `BackendError`). Results are JSON records that the package reads into typed dataclasses. The
//! Python-facing API (argument conversion, typed results, `mpmath`, `to_torch`) is in
//! `python/boltzformer/__init__.py` and `_results.py`.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use boltz_bigfloat::BigReal;
use boltz_construct::{Construction, Family};
use boltz_core::exact::{ExactConvert, ExactFloat};
use boltz_core::format::{self, Encoding, Outputs, Rounding};
use boltz_core::npy::{NpyArray, NpyData};
use boltz_core::watch::{Snapshot, Watch};
use boltz_core::{Backend, Batch, Dataset, Model as CoreModel};
use boltz_lab::backends::{self, BackendKind, Job, Precision};
use boltz_lab::construction;
use boltz_lab::records::{BackendRun, BuildRecord, RecordHead, VerifyRecord};
use boltz_lab::request::{self, DataInput, MemorizeParams, MemorizeRequest, RunTarget, VerifyParams};
use numpy::{PyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(_native, BoltzError, PyValueError, "An error of the boltzformer library (its message is the Rust error chain).");
create_exception!(
    _native,
    DataError,
    BoltzError,
    "The data was refused: shapes, NaN/inf, empty data, a token twice in a sequence, permuted sequences with different targets."
);
create_exception!(
    _native,
    PrecisionError,
    BoltzError,
    "The model does not fit the precision: a weight or an activation overflows it (or is not finite there)."
);
create_exception!(
    _native,
    BackendError,
    BoltzError,
    "The backend cannot run here: not in this build, not with this precision, or its device is missing."
);

type Result<T> = std::result::Result<T, PyErr>;

/// The Rust error chain (`a: b: c`) as a `BoltzError`, or the subclass its kind is: a numeric overflow or
/// a non-finite value in a run is a `PrecisionError`, a refused dataset a `DataError`.
fn err(e: impl Into<anyhow::Error>) -> PyErr {
    let e = e.into();
    let message = format!("{e:#}");
    let core = e.chain().find_map(|c| c.downcast_ref::<boltz_core::Error>());
    match core {
        Some(boltz_core::Error::Overflow { .. } | boltz_core::Error::NonFinite { .. }) => PrecisionError::new_err(message),
        Some(
            boltz_core::Error::ShapeMismatch { .. }
            | boltz_core::Error::EmptyBatch
            | boltz_core::Error::ZeroSize { .. }
            | boltz_core::Error::DuplicateToken { .. }
            | boltz_core::Error::PermutedDuplicate { .. }
            | boltz_core::Error::InconsistentTargets { .. },
        ) => DataError::new_err(message),
        _ => BoltzError::new_err(message),
    }
}

/// A refused dataset (everything [`dataset`] checks) as a `DataError`.
fn data_err(e: impl Into<anyhow::Error>) -> PyErr {
    DataError::new_err(format!("{:#}", e.into()))
}

/// A backend this build or machine cannot run as a `BackendError`.
fn backend_err(e: impl Into<anyhow::Error>) -> PyErr {
    BackendError::new_err(format!("{:#}", e.into()))
}

/// The backend and precision, parsed, checked and probed ([`RunTarget::new`]): a `BackendError` when this
/// build or machine cannot run them. Without a precision, `model`'s default there
/// ([`request::default_precision`]: its build bits on bigfloat, else f64).
fn run_target(backend: &str, precision: Option<&str>, model: &CoreModel<BigReal>) -> Result<RunTarget> {
    let kind = parse("backend", backend).map_err(err)?;
    let precision = match precision {
        Some(p) => parse("precision", p).map_err(err)?,
        None => request::default_precision(kind, model).map_err(err)?,
    };
    RunTarget::new(kind, precision).map_err(|e| {
        // A backend this package was built without: say how to build it with one.
        let hint = match kind {
            BackendKind::Blas if !in_this_build(kind) => {
                "; build the package with it: BOLTZ_WHEEL_FEATURES=blas bash scripts/build-wheel.sh (OpenBLAS from scripts/setup.sh)"
            }
            BackendKind::Cuda if !in_this_build(kind) => "; the Python package has no CUDA build: use the CLI built with --features cuda",
            _ => "",
        };
        backend_err(anyhow!("{e:#}{hint}"))
    })
}

/// Whether this build has `kind` (at its natural precision; the device is not probed).
fn in_this_build(kind: BackendKind) -> bool {
    let precision = if kind == BackendKind::Bigfloat { Precision::Bits(64) } else { Precision::F64 };
    backends::check(kind, precision).is_ok()
}

/// A NumPy float64 array as the `.npy` reader's array (shape and row-major values).
fn float_array(a: &PyReadonlyArrayDyn<'_, f64>) -> NpyArray {
    NpyArray { shape: a.shape().to_vec(), data: NpyData::Float(a.as_array().iter().copied().collect()) }
}

/// A NumPy int64 array as the `.npy` reader's array.
fn int_array(a: &PyReadonlyArrayDyn<'_, i64>) -> NpyArray {
    NpyArray { shape: a.shape().to_vec(), data: NpyData::Int(a.as_array().iter().copied().collect()) }
}

/// A dataset from NumPy arrays, read and checked exactly as `boltz memorize --dataset` reads an `.npz`
/// (shapes, NaN/inf, empty data; then the data report: no token twice in a sequence, consistent targets
/// for permuted sequences).
fn dataset(
    inputs: &PyReadonlyArrayDyn<'_, f64>,
    targets: Option<&PyReadonlyArrayDyn<'_, f64>>,
    labels: Option<&PyReadonlyArrayDyn<'_, i64>>,
) -> anyhow::Result<Dataset<f64>> {
    let x = float_array(inputs);
    let data = match (targets, labels) {
        (Some(t), None) => format::dataset_from_arrays(&x, &float_array(t), Outputs::Targets, "inputs", "targets")?,
        (None, Some(l)) => format::dataset_from_arrays(&x, &int_array(l), Outputs::Labels, "inputs", "labels")?,
        (Some(_), Some(_)) => bail!("give targets or labels, not both"),
        (None, None) => bail!("give targets [N, n, d] or integer labels [N, n]"),
    };
    construction::check_dataset(&data).context("the data violates what the constructions need")?;
    Ok(data)
}

/// How often the calling thread wakes while a watched computation runs: to check for signals and to feed
/// the progress callback.
const POLL: Duration = Duration::from_millis(100);

/// Runs `f` on a worker thread under a [`Watch`] (`boltz_core::watch`), while the calling thread waits with
/// the GIL released and wakes every [`POLL`] (and when `f` ends) to run Python's signal handlers and to pass
/// `progress` each new snapshot as `(stage, done, total)`. A signal handler's exception (Ctrl-C's
/// `KeyboardInterrupt`) or the callback's stops the computation at its next safe point (one sequence of a
/// forward, at most), and is raised once the worker has stopped; nothing is written at a safe point.
fn watched<R: Send>(py: Python<'_>, progress: Option<&Bound<'_, PyAny>>, f: impl FnOnce() -> anyhow::Result<R> + Send) -> Result<R> {
    let watch = Watch::new();
    let ended = (Mutex::new(false), Condvar::new());
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let out = watch.scope(f);
            *ended.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
            ended.1.notify_all();
            out
        });
        let mut shown = Snapshot::default();
        let stopped_by: Option<PyErr> = loop {
            let finished = py.detach(|| {
                let done = ended.0.lock().unwrap_or_else(PoisonError::into_inner);
                *ended.1.wait_timeout_while(done, POLL, |done| !*done).unwrap_or_else(PoisonError::into_inner).0
            });
            if let Err(e) = py.check_signals() {
                break Some(e);
            }
            if let Some(callback) = progress {
                let now = watch.snapshot();
                if now != shown && !now.stage.is_empty() {
                    if let Err(e) = callback.call1((now.stage.as_str(), now.done, now.total)) {
                        break Some(e);
                    }
                    shown = now;
                }
            }
            if finished {
                break None;
            }
        };
        if stopped_by.is_some() {
            watch.stop();
        }
        let joined = py.detach(|| worker.join());
        match (stopped_by, joined) {
            (Some(e), _) => Err(e),
            (None, Ok(out)) => out.map_err(err),
            (None, Err(panic)) => {
                let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                Err(BoltzError::new_err(format!("the computation panicked: {}", what.unwrap_or_default())))
            }
        }
    })
}

fn parse<T: std::str::FromStr<Err: std::fmt::Display>>(what: &str, s: &str) -> anyhow::Result<T> {
    s.parse().map_err(|e: T::Err| anyhow!("{what}: {e}"))
}

/// A model (any construction, or any file in the boltzformer format), kept exactly.
#[pyclass(module = "boltzformer._native", name = "Model", frozen)]
struct Model {
    model: CoreModel<BigReal>,
    /// The build record (`memorize` only): construction, bits, exact memorization and its report, JSON.
    build: Option<String>,
}

/// Runs a model on a batch and returns its outputs exactly (whatever the element type).
struct ForwardOn<'a> {
    model: &'a CoreModel<BigReal>,
    inputs: &'a Batch<f64>,
}

impl Job for ForwardOn<'_> {
    type Output = Vec<ExactFloat>;
    fn run<T: boltz_core::Real, B: Backend<T>>(self, backend: &B) -> anyhow::Result<Self::Output> {
        let m: CoreModel<T> = self.model.convert()?;
        let x: Batch<T> = self.inputs.convert()?;
        let out = backend.run(&m, &x)?;
        Ok(out.as_slice().iter().map(ExactConvert::to_exact).collect())
    }
}

#[pymethods]
impl Model {
    /// Token dimension d.
    #[getter]
    fn dim(&self) -> usize {
        self.model.dim()
    }

    /// What built the model (`one-layer`, `yun`, … or what the file says).
    #[getter]
    fn construction(&self) -> String {
        self.model.info().construction.clone()
    }

    /// `{"blocks": …, "attention": …, "ffn": …}` layer counts.
    #[getter]
    fn layers(&self) -> Result<String> {
        serde_json::to_string(&self.model.layer_count()).map_err(err)
    }

    /// `{"dense": …, "factored": …}` parameter counts.
    #[getter]
    fn params(&self) -> Result<String> {
        serde_json::to_string(&self.model.param_count()).map_err(err)
    }

    /// The build record as JSON (None for a loaded model).
    #[getter]
    fn build_json(&self) -> Option<String> {
        self.build.clone()
    }

    /// The file format's metadata (`format`, `kind`, `dim`, `blocks`, `blocks.{b}.attn.*`, `construction*`).
    fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        format::model_to_dict(&self.model).metadata
    }

    /// Every tensor under its documented name: `{name: (shape, [exact hex-float strings])}`.
    fn tensors_exact(&self) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<String>)> {
        format::model_to_dict(&self.model)
            .tensors
            .into_iter()
            .map(|(name, (shape, values))| (name, (shape, values.iter().map(|v| v.to_exact().to_string()).collect())))
            .collect()
    }

    /// Runs the model on `inputs` (float64 `[N, n, d]`) on `backend` at `precision` (`f32`, `f64` or
    /// `bits=N`): the outputs as exact hex-float strings, row-major. The model and the inputs are rounded to
    /// the precision first, as every backend run does.
    #[pyo3(signature = (inputs, backend, precision, threads=None, progress=None))]
    fn forward_exact(
        &self,
        py: Python<'_>,
        inputs: PyReadonlyArrayDyn<'_, f64>,
        backend: &str,
        precision: &str,
        threads: Option<usize>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> Result<Vec<String>> {
        let threads = request::checked_threads(threads, "threads").map_err(err)?;
        let target = run_target(backend, Some(precision), &self.model)?;
        let [b, n, d] = inputs.shape()[..] else {
            return Err(err(anyhow!("inputs: expected shape [N, n, d], got {:?}", inputs.shape())));
        };
        if d != self.model.dim() {
            return Err(err(anyhow!("inputs have d = {d} but the model's token dimension is {}", self.model.dim())));
        }
        let values: Vec<f64> = inputs.as_array().iter().copied().collect();
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(err(anyhow!("inputs[{}, {}, {}] is not finite ({})", i / (n * d), (i / d) % n, i % d, values[i])));
        }
        let batch = Batch::new(b, n, d, values).map_err(err)?;
        let model = &self.model;
        let out = watched(py, progress.as_ref(), || {
            backends::dispatch(target.backend, target.precision, threads, ForwardOn { model, inputs: &batch })
        })?;
        Ok(out.iter().map(ToString::to_string).collect())
    }

    /// Writes the model: `encoding` `exact` (JSON, any precision), `f64` or `f32` (safetensors; refused
    /// where a value does not fit exactly).
    #[pyo3(signature = (path, encoding="exact"))]
    fn save(&self, py: Python<'_>, path: PathBuf, encoding: &str) -> Result<()> {
        let encoding = match encoding {
            "exact" => Encoding::Exact,
            "f64" => Encoding::F64,
            "f32" => Encoding::F32,
            other => return Err(err(anyhow!("encoding: expected exact, f64 or f32, got {other:?}"))),
        };
        let model = &self.model;
        py.detach(|| format::save_model(model, &path, encoding).with_context(|| format!("writing {}", path.display()))).map_err(err)
    }
}

/// Builds `construction` on the dataset (`inputs` float64 `[N, n, d]` with `targets` float64 `[N, n, d]` or
/// `labels` int64 `[N, n]`), checked first like `boltz memorize --dataset`; returns the model and its build
/// record (JSON).
#[pyfunction]
#[pyo3(signature = (inputs, targets=None, labels=None, *, construction="one-layer", policy="measured", delta="dyadic", task="seq2seq", seed=0, candidates=None, threads=None, max_time=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn memorize(
    py: Python<'_>,
    inputs: PyReadonlyArrayDyn<'_, f64>,
    targets: Option<PyReadonlyArrayDyn<'_, f64>>,
    labels: Option<PyReadonlyArrayDyn<'_, i64>>,
    construction: &str,
    policy: &str,
    delta: &str,
    task: &str,
    seed: u64,
    candidates: Option<usize>,
    threads: Option<usize>,
    max_time: Option<f64>,
    progress: Option<Bound<'_, PyAny>>,
) -> Result<Model> {
    let data = dataset(&inputs, targets.as_ref(), labels.as_ref()).map_err(data_err)?;
    let request = || -> anyhow::Result<MemorizeRequest> {
        MemorizeParams {
            construction: request::construction_of(
                parse::<Family>("construction", construction)?,
                parse("policy", policy)?,
                parse("delta", delta)?,
                parse("task", task)?,
            )?,
            seed,
            candidates: candidates.unwrap_or(boltz_construct::ContextualOptions::CANDIDATES),
            threads,
            max_seconds: max_time,
            ..MemorizeParams::new(DataInput::Given(data))
        }
        .check()
    };
    let req = request().map_err(err)?;
    let (built, data) = watched(py, progress.as_ref(), || req.dataset().and_then(|data| Ok((req.build(&data)?, data))))?;
    let record = serde_json::to_string(&BuildRecord::new(&built, &req.options, &data)).map_err(err)?;
    Ok(Model { model: built.model, build: Some(record) })
}

/// Runs the model over the dataset on `backend` at `precision`: memorization (`tokens`, `decoded`,
/// `accuracy`, `max_abs_error`, `log10_max_abs_error`) and the forward's seconds, as JSON.
#[pyfunction]
#[pyo3(signature = (model, inputs, targets=None, labels=None, *, backend="reference", precision=None, threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn verify(
    py: Python<'_>,
    model: &Model,
    inputs: PyReadonlyArrayDyn<'_, f64>,
    targets: Option<PyReadonlyArrayDyn<'_, f64>>,
    labels: Option<PyReadonlyArrayDyn<'_, i64>>,
    backend: &str,
    precision: Option<&str>,
    threads: Option<usize>,
    progress: Option<Bound<'_, PyAny>>,
) -> Result<String> {
    let target = run_target(backend, precision, &model.model)?;
    let req = VerifyParams { backend: target.backend, precision: Some(target.precision), threads, bisect: None }
        .check(&model.model)
        .map_err(err)?;
    let data = dataset(&inputs, targets.as_ref(), labels.as_ref()).map_err(data_err)?;
    req.check_dims(&model.model, &data, ("the model", "the data")).map_err(data_err)?;
    let m = &model.model;
    // The run's error, typed (a `PrecisionError` when the model overflows the precision).
    let outcome = watched(py, progress.as_ref(), || req.target.try_run(m, &data, req.threads))?;
    let run = BackendRun::of(target.backend, target.precision, Ok(outcome));
    let [sequences, n, d] = data.inputs.shape();
    let record = VerifyRecord {
        head: RecordHead::new("verify", req.threads, serde_json::Value::Null),
        model: serde_json::Value::Null,
        dataset: serde_json::json!({ "N": sequences, "n": n, "d": d }),
        run,
    };
    serde_json::to_string(&record).map_err(err)
}

/// The fewest bits in `min_bits..=max_bits` at which every token still decodes when the model runs with
/// weights, inputs and arithmetic at that precision (the bigfloat bisection of `boltz verify --bisect`), as
/// JSON (`fewest`, `probes`, `monotone`, …). Without `max_bits`, up to the model's build bits, doubled until
/// it memorizes (an error naming the bound where it never does).
#[pyfunction]
#[pyo3(signature = (model, inputs, targets=None, labels=None, *, min_bits=8, max_bits=None, threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn fewest_bits(
    py: Python<'_>,
    model: &Model,
    inputs: PyReadonlyArrayDyn<'_, f64>,
    targets: Option<PyReadonlyArrayDyn<'_, f64>>,
    labels: Option<PyReadonlyArrayDyn<'_, i64>>,
    min_bits: u64,
    max_bits: Option<u64>,
    threads: Option<usize>,
    progress: Option<Bound<'_, PyAny>>,
) -> Result<String> {
    // The search runs on bigfloat at its own precisions; the request's target (reference, f64) is not run.
    let req =
        VerifyParams { backend: BackendKind::Reference, precision: Some(Precision::F64), threads, bisect: Some((min_bits, max_bits)) }
            .check(&model.model)
            .map_err(err)?;
    let data = dataset(&inputs, targets.as_ref(), labels.as_ref()).map_err(data_err)?;
    req.check_dims(&model.model, &data, ("the model", "the data")).map_err(data_err)?;
    let m = &model.model;
    let search = watched(py, progress.as_ref(), || req.search(m, &data, |_, _| {}))?;
    serde_json::to_string(&search).map_err(err)
}

/// Reads a model in the boltzformer format (safetensors or exact JSON, from any writer), exactly.
#[pyfunction]
fn load(py: Python<'_>, path: PathBuf) -> Result<Model> {
    let model = py
        .detach(|| format::load_model::<BigReal>(&path, Rounding::Forbid).with_context(|| format!("reading {}", path.display())))
        .map_err(err)?;
    Ok(Model { model, build: None })
}

/// A model from the file format's metadata and tensors (`{name: (shape, float64 values)}`), checked as a
/// file is (`format::model_from_dict`: names, shapes, metadata; unknown tensors refused) and kept exactly:
/// `from_torch`'s way back, with every value widened to f64 exactly on the Python side.
#[pyfunction]
fn from_tensors(
    metadata: std::collections::BTreeMap<String, String>,
    tensors: std::collections::BTreeMap<String, (Vec<usize>, PyReadonlyArrayDyn<'_, f64>)>,
) -> Result<Model> {
    let mut dict = format::TensorDict::<BigReal> { metadata, ..Default::default() };
    for (name, (shape, values)) in tensors {
        let values: Vec<f64> = values.as_array().iter().copied().collect();
        if values.len() != shape.iter().product::<usize>() {
            return Err(err(anyhow!("{name}: shape {shape:?} does not hold {} values", values.len())));
        }
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(err(boltz_core::Error::NonFinite { location: format!("{name}[{i}] = {}", values[i]) }));
        }
        dict.tensors.insert(name, (shape, values.iter().map(|&x| <BigReal as boltz_core::Real>::from_f64(x)).collect()));
    }
    let model = format::model_from_dict(dict).context("the tensors do not make a boltzformer model").map_err(err)?;
    Ok(Model { model, build: None })
}

/// Reads a dataset file as `boltz memorize --dataset` does (boltz format, `.npz`, or `.npy` inputs with
/// `labels`/`targets` `.npy`), checked; returns (inputs, targets) as flat float64 arrays and the shape.
#[pyfunction]
#[pyo3(signature = (path, labels=None, targets=None))]
#[allow(clippy::type_complexity)]
fn load_dataset<'py>(
    py: Python<'py>,
    path: PathBuf,
    labels: Option<PathBuf>,
    targets: Option<PathBuf>,
) -> Result<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>, [usize; 3])> {
    let data = py.detach(|| construction::read_dataset_file("dataset", &path, labels.as_deref(), targets.as_deref())).map_err(err)?;
    let shape = data.inputs.shape();
    Ok((PyArray1::from_slice(py, data.inputs.as_slice()), PyArray1::from_slice(py, data.targets.as_slice()), shape))
}

/// Writes a dataset (float64 `inputs` and `targets` `[N, n, d]`) in the boltzformer format (`f64`
/// safetensors or `exact` JSON), checked first.
#[pyfunction]
#[pyo3(signature = (path, inputs, targets=None, labels=None, encoding="f64"))]
fn save_dataset(
    py: Python<'_>,
    path: PathBuf,
    inputs: PyReadonlyArrayDyn<'_, f64>,
    targets: Option<PyReadonlyArrayDyn<'_, f64>>,
    labels: Option<PyReadonlyArrayDyn<'_, i64>>,
    encoding: &str,
) -> Result<()> {
    let encoding = match encoding {
        "exact" => Encoding::Exact,
        "f64" => Encoding::F64,
        other => return Err(err(anyhow!("encoding: expected f64 or exact, got {other:?}"))),
    };
    let data = dataset(&inputs, targets.as_ref(), labels.as_ref()).map_err(data_err)?;
    py.detach(|| format::save_dataset(&data, &path, encoding).with_context(|| format!("writing {}", path.display()))).map_err(err)
}

/// The exact value of a hex-float string as `(negative, mantissa hex, exponent)` (parsed by the same code
/// as every exact file): `±int(mantissa, 16) · 2^exponent`.
#[pyfunction]
fn parse_exact(s: &str) -> Result<(bool, String, i64)> {
    let x = ExactFloat::parse(s).map_err(err)?;
    let text = x.to_string();
    let digits = text.trim_start_matches('-').trim_start_matches("0x");
    let mantissa = digits.split('p').next().unwrap_or("0").to_string();
    Ok((x.is_negative(), mantissa, x.exponent()))
}

/// The names the API accepts: construction families and constructions, policies, and the backends this
/// build has.
#[pyfunction]
fn choices(py: Python<'_>) -> Result<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    fn names<T: boltz_core::Named>() -> Vec<&'static str> {
        T::ALL.iter().map(|v| v.name()).collect()
    }
    d.set_item("construction", names::<Family>())?;
    d.set_item("constructions", names::<Construction>())?;
    d.set_item("policy", names::<boltz_construct::Policy>())?;
    // Only the backends this build has (a device may still be missing at run time).
    let backends: Vec<&str> = BackendKind::ALL.iter().filter(|&&k| in_this_build(k)).map(|k| k.name()).collect();
    d.set_item("backend", backends)?;
    Ok(d)
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BoltzError", m.py().get_type::<BoltzError>())?;
    m.add("DataError", m.py().get_type::<DataError>())?;
    m.add("PrecisionError", m.py().get_type::<PrecisionError>())?;
    m.add("BackendError", m.py().get_type::<BackendError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("REVISION", boltz_lab::meta::LONG_VERSION)?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(memorize, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(fewest_bits, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(from_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(load_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(save_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(parse_exact, m)?)?;
    m.add_function(wrap_pyfunction!(choices, m)?)?;
    Ok(())
}
