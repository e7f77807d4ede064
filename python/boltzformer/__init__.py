"""boltzformer: one-layer rank-1 softmax Transformers that memorize (Kajitsuka & Sato, ICLR 2024).

Build a memorizing model on a NumPy dataset, run it on any backend and precision, verify it, and find the
fewest bits it needs -- the same library (and the same checks and reports) as the ``boltz`` command line::

    import numpy as np, boltzformer as bf
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 6, 3))                  # N = 20 sequences of n = 6 tokens in d = 3
    labels = rng.integers(0, 5, size=(20, 6))        # an integer label per token
    model = bf.memorize(x, labels=labels)            # one attention layer + one FFN (Corollary 1)
    bf.verify(model, x, labels=labels, backend="bigfloat", precision=f"bits={model.build_bits}")
    y = model.forward(x)                             # NumPy float64 [N, n, d]; y[..., 0] ~ labels

Datasets are ``inputs`` ``[N, n, d]`` with ``targets`` ``[N, n, d]`` or integer ``labels`` ``[N, n]``
(label in coordinate 0, as ``docs/format.md`` says), always passed by keyword. Values beyond f64 (the
constructions need thousands of bits) are exposed exactly: as ``mpmath.mpf`` when mpmath is installed, else
as exact hex-float strings (``exact_value`` converts one). Results are frozen dataclasses
(:class:`VerifyResult`, :class:`BitsSearch`, :class:`ModelReport`, ...; ``to_dict()`` gives the record the
library wrote). Every error is a :class:`BoltzError` (a ``ValueError``) with the Rust message; the kinds
users catch are subclasses: :class:`DataError` (refused data), :class:`PrecisionError` (the model does not
fit the precision), :class:`BackendError` (the backend cannot run here).

Long calls (``memorize``, ``verify``, ``fewest_bits``, ``Model.forward``) release the GIL, stop within about a
second on Ctrl-C (``KeyboardInterrupt``; nothing is left half-written) and report their progress: a bar on a
terminal's stderr (tqdm's when installed), or each :class:`Progress` to a ``progress=`` callable.
"""

from __future__ import annotations

import json as _json
import os as _os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as _np
import numpy.typing as _npt

from . import _native
from ._native import BackendError, BoltzError, DataError, PrecisionError
from ._progress import Progress, ProgressArg, reporter as _reporter
from ._results import (
    BitsAudit,
    BitsSearch,
    DatasetShape,
    LayerCount,
    Memorization,
    ModelReport,
    ParamCount,
    Probe,
    VerifyResult,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Anything :func:`numpy.asarray` reads as numbers.
ArrayLike = _npt.ArrayLike
#: A file path.
PathLike = Union[str, "_os.PathLike[str]"]

__all__ = [
    "BoltzError",
    "DataError",
    "PrecisionError",
    "BackendError",
    "Model",
    "ModelReport",
    "VerifyResult",
    "BitsSearch",
    "BitsAudit",
    "Probe",
    "Memorization",
    "LayerCount",
    "ParamCount",
    "DatasetShape",
    "Progress",
    "ProgressArg",
    "memorize",
    "verify",
    "fewest_bits",
    "load",
    "from_torch",
    "load_dataset",
    "save_dataset",
    "exact_value",
    "choices",
    "__version__",
]

__version__: str = _native.__version__
#: The build's revision (version, git commit, features), as ``boltz --version`` prints it.
REVISION: str = _native.REVISION


def choices() -> Dict[str, List[str]]:
    """The names the API accepts: ``{"construction": [...], "constructions": [...], "policy": [...],
    "backend": [...]}`` (the backends this build has; a device may still be missing at run time)."""
    return {k: list(v) for k, v in _native.choices().items()}


def _floats(name: str, a: ArrayLike, ndim: int) -> _npt.NDArray[_np.float64]:
    """`a` as a C-contiguous float64 array of `ndim` dimensions (integers must be exact in f64)."""
    arr = _np.asarray(a)
    if arr.dtype == object or not (_np.issubdtype(arr.dtype, _np.floating) or _np.issubdtype(arr.dtype, _np.integer) or arr.dtype == bool):
        raise DataError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if _np.issubdtype(arr.dtype, _np.integer) and arr.size and int(_np.abs(arr.astype(object)).max()) > 2**53:
        raise DataError(f"{name}: an integer beyond 2**53 is not exact as a float")
    if arr.ndim != ndim:
        raise DataError(f"{name}: expected {ndim} dimensions, got shape {list(arr.shape)}")
    return _np.ascontiguousarray(arr, dtype=_np.float64)


_Data = Tuple[_npt.NDArray[_np.float64], Optional[_npt.NDArray[_np.float64]], Optional[_npt.NDArray[_np.int64]]]


def _data(inputs: ArrayLike, targets: Optional[ArrayLike], labels: Optional[ArrayLike]) -> _Data:
    x = _floats("inputs", inputs, 3)
    if targets is not None and labels is not None:
        raise DataError("give targets or labels, not both")
    t = None if targets is None else _floats("targets", targets, 3)
    if labels is None:
        return x, t, None
    given = _np.asarray(labels)
    if not (_np.issubdtype(given.dtype, _np.integer) or given.dtype == bool):
        raise DataError(f"labels must be integers (got a {given.dtype} array)")
    if given.dtype == _np.uint64 and given.size and int(given.max()) > 2**63 - 1:
        raise DataError("labels: a value beyond 2**63 - 1")
    return x, t, _np.ascontiguousarray(given, dtype=_np.int64)


def _check_precision(precision: Any) -> str:
    if not isinstance(precision, str):
        raise BoltzError(f"precision: expected 'f32', 'f64' or 'bits=N', got {precision!r}")
    return precision


def exact_value(s: str, as_mpf: Optional[bool] = None) -> Any:
    """The exact value of a hex-float string (``-0x1b3p-12``): an ``mpmath.mpf`` carrying every bit (when
    mpmath is installed, or ``as_mpf=True``), else the string itself (``as_mpf=False``, or no mpmath).

    ``fractions.Fraction`` works too: ``sign * int(mantissa, 16) * Fraction(2) ** exponent``.
    """
    negative, mantissa, exponent = _native.parse_exact(s)
    if as_mpf is False:
        return s
    try:
        import mpmath
    except ImportError:
        if as_mpf:
            raise
        return s
    m = int(mantissa, 16)
    # mpf rounds to the working precision when it is made: make it with enough bits to keep all of them.
    with mpmath.workprec(max(53, m.bit_length())):
        v = mpmath.mpf((-m if negative else m, exponent)) if m else mpmath.mpf(0)
    return v


def _exact_array(shape: Any, values: List[str], as_mpf: Optional[bool]) -> _npt.NDArray[Any]:
    out = _np.empty(len(values), dtype=object)
    for i, s in enumerate(values):
        out[i] = exact_value(s, as_mpf)
    return out.reshape(shape)


def _to_f64(name: str, values: List[str]) -> _npt.NDArray[_np.float64]:
    """Hex-float strings as (nearest) float64; a value beyond f64's range is an error, never a silent inf."""
    out = _np.empty(len(values), dtype=_np.float64)
    for i, s in enumerate(values):
        try:
            out[i] = float.fromhex(s)
        except OverflowError:
            raise PrecisionError(f"{name}[{i}] = {s} is beyond the range of f64 (use exact=True)") from None
    return out


class Model:
    """A model in the boltzformer format (built by :func:`memorize` or read by :func:`load`), kept exactly."""

    def __init__(self, native: _native.Model) -> None:
        self._m = native
        b = native.build_json
        #: The build record (:func:`memorize` only; ``None`` for a loaded model).
        self.build: Optional[ModelReport] = None if b is None else ModelReport.from_dict(_json.loads(b))

    def __repr__(self) -> str:
        lay = self.layers
        return (f"boltzformer.Model(construction={self.construction!r}, d={self.dim}, "
                f"attention_layers={lay.attention}, ffn_layers={lay.ffn}, params={self.params.dense})")

    @property
    def dim(self) -> int:
        """Token dimension d."""
        return int(self._m.dim)

    @property
    def construction(self) -> str:
        """What built the model (``one-layer``, ``yun``, ... or what the file says)."""
        return str(self._m.construction)

    @property
    def layers(self) -> LayerCount:
        """Layer counts: blocks, attention and FFN layers."""
        return LayerCount.from_dict(_json.loads(self._m.layers))

    @property
    def params(self) -> ParamCount:
        """Parameter counts: dense, and low-rank weights counted by their factors."""
        return ParamCount.from_dict(_json.loads(self._m.params))

    @property
    def build_bits(self) -> Optional[int]:
        """The bits the construction was built and verified with: from the build, or the model file's
        ``construction.build_bits`` (None for a file that does not record them)."""
        if self.build is not None:
            return self.build.build_bits
        recorded = self.metadata.get("construction.build_bits")
        return None if recorded is None else int(recorded)

    @property
    def report(self) -> Optional[Dict[str, Any]]:
        """The construction's own report (as ``boltz memorize --json`` writes it under ``report``)."""
        return None if self.build is None else self.build.report

    @property
    def metadata(self) -> Dict[str, str]:
        """The file format's metadata (``docs/format.md``): its own strings, exact (numbers with every digit)."""
        return dict(self._m.metadata())

    def tensors(self, exact: bool = False, as_mpf: Optional[bool] = None) -> Dict[str, _npt.NDArray[Any]]:
        """Every tensor under its documented name (``blocks.0.attn.0.w_k.u``, ...): float64 arrays, or with
        ``exact=True`` object arrays of exact values (``mpmath.mpf`` or hex strings, see :func:`exact_value`).
        A value beyond f64 without ``exact=True`` is an error."""
        out: Dict[str, _npt.NDArray[Any]] = {}
        for name, (shape, values) in self._m.tensors_exact().items():
            out[name] = _exact_array(shape, values, as_mpf) if exact else _to_f64(name, values).reshape(shape)
        return out

    def forward(self, inputs: ArrayLike, *, backend: str = "reference", precision: str = "f64", threads: Optional[int] = None,
                exact: bool = False, as_mpf: Optional[bool] = None, progress: ProgressArg = None) -> _npt.NDArray[Any]:
        """Runs the model on ``inputs`` (``[N, n, d]``, or one sequence ``[n, d]``) on ``backend``
        (``reference``, ``cpu``, ``blas``, ``bigfloat``, ``cuda``) at ``precision`` (``f32``, ``f64``,
        ``bits=N``); the model and inputs are rounded to that precision first. Returns float64 outputs of the
        same shape, or with ``exact=True`` an object array of the exact outputs. ``progress``: see
        :data:`ProgressArg`."""
        x = _np.asarray(inputs)
        single = x.ndim == 2
        x = _floats("inputs", x[None] if single else x, 3)
        with _reporter(progress) as report:
            values = self._m.forward_exact(x, backend, _check_precision(precision), threads, report)
        y = _exact_array(x.shape, values, as_mpf) if exact else _to_f64("outputs", values).reshape(x.shape)
        return y[0] if single else y

    def save(self, path: PathLike, encoding: str = "exact") -> None:
        """Writes the model: ``exact`` (JSON, any precision), ``f64`` or ``f32`` (safetensors; refused where a
        value does not fit exactly)."""
        self._m.save(str(path), encoding)

    def to_torch(self, dtype: Optional[torch.dtype] = None) -> torch.nn.Module:
        """The same forward as a ``torch.nn.Module`` (float64 by default); needs torch
        (``pip install boltzformer[torch]``). Its weights are trainable ``nn.Parameter``s named as in the file
        format (``state_dict()`` keys ``blocks.0.attn.0.w_q.u``, ...; the metadata under ``_extra_state``);
        :func:`from_torch` reads it back. Weights beyond f64 are refused (see :meth:`tensors`)."""
        from ._torch import to_torch

        module: torch.nn.Module = to_torch(self, dtype)
        return module


def memorize(inputs: ArrayLike, *, labels: Optional[ArrayLike] = None, targets: Optional[ArrayLike] = None,
             construction: str = "one-layer", policy: str = "measured", delta: str = "dyadic", task: str = "seq2seq",
             seed: int = 0, candidates: Optional[int] = None, threads: Optional[int] = None,
             max_time: Optional[float] = None, progress: ProgressArg = None) -> Model:
    """Builds a model that memorizes ``inputs`` ``[N, n, d]`` with integer ``labels`` ``[N, n]`` (or float
    ``targets`` ``[N, n, d]``), checked first as ``boltz memorize --dataset`` checks it (shapes, NaN/inf,
    empty data, a token twice in a sequence, permuted sequences with inconsistent targets).

    ``construction``: ``one-layer`` (Corollary 1: one rank-1 softmax attention layer + one FFN), ``yun`` or
    ``yun-full`` (Yun et al.'s deep hardmax baseline), ``bit-extraction`` (alias ``optimal``: one averaging
    attention layer + a bit-extraction ReLU stack, Õ(√(nN)) parameters; needs d ≥ 4). ``policy`` (one-layer):
    ``measured``, ``fewest-bits``, ``tuned``, ``mean-pool``, ``theory``; ``candidates``: the random directions
    it tries (default 1000, as ``boltz memorize`` and the experiment suite). ``task`` (bit-extraction):
    ``seq2seq`` (a label per token) or ``next-token`` (each sequence's label is its last position's; the
    model outputs it at every position, so verify it against labels repeated along each sequence). The
    model's ``build`` is its :class:`ModelReport` (bits, exact memorization at those bits, the
    construction's report). Refused data raises :class:`DataError`. ``max_time`` (seconds, default one day;
    ``math.inf`` for none): sizes whose verification cannot finish in that time even at 10⁸
    arbitrary-precision operations per second and thread ((nN)²(d + 2) of them) are refused before any
    work, as ``boltz memorize --max-time``. ``progress``: see :data:`ProgressArg`."""
    x, t, lab = _data(inputs, targets, labels)
    with _reporter(progress) as report:
        return Model(_native.memorize(x, t, lab, construction=construction, policy=policy, delta=delta, task=task,
                                      seed=seed, candidates=candidates, threads=threads, max_time=max_time,
                                      progress=report))


def verify(model: Model, inputs: ArrayLike, *, labels: Optional[ArrayLike] = None, targets: Optional[ArrayLike] = None,
           backend: str = "reference", precision: Optional[str] = None, threads: Optional[int] = None,
           progress: ProgressArg = None) -> VerifyResult:
    """Runs ``model`` over the dataset on ``backend`` at ``precision`` (default: f64; on ``bigfloat`` the
    bits the model was built and verified with, :attr:`Model.build_bits`): a :class:`VerifyResult` with its
    :class:`Memorization` (``log10_max_abs_error`` is exact even where the error underflows f64) and the
    forward's seconds. A model that does not fit the precision raises :class:`PrecisionError`; a backend
    this build or machine cannot run, :class:`BackendError`. ``progress``: see :data:`ProgressArg`."""
    x, t, lab = _data(inputs, targets, labels)
    with _reporter(progress) as report:
        record = _json.loads(_native.verify(_native_model(model), x, t, lab, backend=backend,
                                            precision=None if precision is None else _check_precision(precision),
                                            threads=threads, progress=report))
    return VerifyResult.from_dict(record)


def fewest_bits(model: Model, inputs: ArrayLike, *, labels: Optional[ArrayLike] = None,
                targets: Optional[ArrayLike] = None, min_bits: int = 8, max_bits: Optional[int] = None,
                threads: Optional[int] = None, progress: ProgressArg = None) -> BitsSearch:
    """The fewest bits in ``min_bits..=max_bits`` at which every token still decodes with weights, inputs
    and arithmetic at that precision (bigfloat bisection): a :class:`BitsSearch` (``fewest``, ``probes``,
    ``hi``, ...). Without ``max_bits`` the search tops out at :attr:`Model.build_bits` (4096 for a model
    without them), doubled until the model memorizes there; a model that memorizes at no precision up to
    2^20 bits raises :class:`BoltzError` naming that bound. A given ``max_bits`` is searched as it is
    (``fewest`` is None when nothing up to it memorizes). Each probe is a stage of ``progress`` (see
    :data:`ProgressArg`)."""
    x, t, lab = _data(inputs, targets, labels)
    with _reporter(progress) as report:
        record = _native.fewest_bits(_native_model(model), x, t, lab, min_bits=min_bits, max_bits=max_bits,
                                     threads=threads, progress=report)
    return BitsSearch.from_dict(_json.loads(record))


def load(path: PathLike) -> Model:
    """Reads a model in the boltzformer format (safetensors or exact JSON, from any writer, e.g.
    ``safetensors.torch.save_file`` with the documented names), exactly."""
    return Model(_native.load(str(path)))


def from_torch(module: Any, *, metadata: Optional[Mapping[str, str]] = None) -> Model:
    """A :class:`Model` from a module :meth:`Model.to_torch` made (after training, say), or from its
    ``state_dict()``: weights of any floating dtype, widened exactly to f64 and kept exactly, so an untouched
    round trip gives the f64-rounded model bit for bit. The metadata (attention kinds, causal masks, the
    construction's record) comes from the module, the state dict's ``_extra_state``, or ``metadata=``. A
    module of another class (``nn.TransformerEncoderLayer``, ...) is refused with each difference named
    (LayerNorm, 1/√d scaling, dropout, heads, ...). Needs torch."""
    from ._torch import from_torch_arrays

    meta, tensors = from_torch_arrays(module, metadata)
    return Model(_native.from_tensors(meta, tensors))


def load_dataset(path: PathLike, *, labels: Optional[PathLike] = None,
                 targets: Optional[PathLike] = None) -> Tuple[_npt.NDArray[_np.float64], _npt.NDArray[_np.float64]]:
    """Reads a dataset as ``boltz memorize --dataset`` does (boltz format, ``.npz``, or ``.npy`` inputs with
    ``labels``/``targets`` ``.npy``), checked: ``(inputs, targets)`` float64 ``[N, n, d]``."""
    x, y, shape = _native.load_dataset(str(path), None if labels is None else str(labels),
                                       None if targets is None else str(targets))
    return _np.asarray(x).reshape(shape), _np.asarray(y).reshape(shape)


def save_dataset(path: PathLike, inputs: ArrayLike, *, labels: Optional[ArrayLike] = None,
                 targets: Optional[ArrayLike] = None, encoding: str = "f64") -> None:
    """Writes a dataset in the boltzformer format (``f64`` safetensors or ``exact`` JSON), checked first."""
    x, t, lab = _data(inputs, targets, labels)
    _native.save_dataset(str(path), x, t, lab, encoding)


def _native_model(model: Model) -> _native.Model:
    if not isinstance(model, Model):
        raise BoltzError(f"expected a boltzformer.Model, got {type(model).__name__}")
    return model._m
