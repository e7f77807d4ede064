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
(label in coordinate 0, as ``docs/format.md`` says). Values beyond f64 (the constructions need thousands of
bits) are exposed exactly: as ``mpmath.mpf`` when mpmath is installed, else as exact hex-float strings
(``exact_value`` converts one). Every error is a :class:`BoltzError` (a ``ValueError``) with the Rust
message. Long computations release the GIL.
"""

import json as _json

import numpy as _np

from . import _native
from ._native import BoltzError

__all__ = [
    "BoltzError",
    "Model",
    "memorize",
    "verify",
    "fewest_bits",
    "load",
    "load_dataset",
    "save_dataset",
    "exact_value",
    "choices",
    "__version__",
]

__version__ = _native.__version__
#: The build's revision (version, git commit, features), as ``boltz --version`` prints it.
REVISION = _native.REVISION


def choices():
    """The names the API accepts: ``{"construction": [...], "policy": [...], "backend": [...]}``."""
    return dict(_native.choices())


def _floats(name, a, ndim):
    """`a` as a C-contiguous float64 array of `ndim` dimensions (integers must be exact in f64)."""
    arr = _np.asarray(a)
    if arr.dtype == object or not (_np.issubdtype(arr.dtype, _np.floating) or _np.issubdtype(arr.dtype, _np.integer) or arr.dtype == bool):
        raise BoltzError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if _np.issubdtype(arr.dtype, _np.integer) and arr.size and int(_np.abs(arr.astype(object)).max()) > 2**53:
        raise BoltzError(f"{name}: an integer beyond 2**53 is not exact as a float")
    if arr.ndim != ndim:
        raise BoltzError(f"{name}: expected {ndim} dimensions, got shape {list(arr.shape)}")
    return _np.ascontiguousarray(arr, dtype=_np.float64)


def _data(inputs, targets, labels):
    x = _floats("inputs", inputs, 3)
    if targets is not None and labels is not None:
        raise BoltzError("give targets or labels, not both")
    t = None if targets is None else _floats("targets", targets, 3)
    lab = None
    if labels is not None:
        lab = _np.asarray(labels)
        if not (_np.issubdtype(lab.dtype, _np.integer) or lab.dtype == bool):
            raise BoltzError(f"labels must be integers (got a {lab.dtype} array)")
        if lab.dtype == _np.uint64 and lab.size and int(lab.max()) > 2**63 - 1:
            raise BoltzError("labels: a value beyond 2**63 - 1")
        lab = _np.ascontiguousarray(lab, dtype=_np.int64)
    return x, t, lab


def _check_precision(precision):
    if not isinstance(precision, str):
        raise BoltzError(f"precision: expected 'f32', 'f64' or 'bits=N', got {precision!r}")
    return precision


def exact_value(s, as_mpf=None):
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


def _exact_array(shape, values, as_mpf):
    out = _np.empty(len(values), dtype=object)
    for i, s in enumerate(values):
        out[i] = exact_value(s, as_mpf)
    return out.reshape(shape)


def _to_f64(name, values):
    """Hex-float strings as (nearest) float64; a value beyond f64's range is an error, never a silent inf."""
    out = _np.empty(len(values), dtype=_np.float64)
    for i, s in enumerate(values):
        try:
            out[i] = float.fromhex(s)
        except OverflowError:
            raise BoltzError(f"{name}[{i}] = {s} is beyond the range of f64 (use exact=True)") from None
    return out


class Model:
    """A model in the boltzformer format (built by :func:`memorize` or read by :func:`load`), kept exactly."""

    def __init__(self, native):
        self._m = native
        b = native.build_json
        self.build = None if b is None else _json.loads(b)

    def __repr__(self):
        lay = self.layers
        return (f"boltzformer.Model(construction={self.construction!r}, d={self.dim}, "
                f"attention_layers={lay['attention']}, ffn_layers={lay['ffn']}, params={self.params['dense']})")

    @property
    def dim(self):
        """Token dimension d."""
        return self._m.dim

    @property
    def construction(self):
        """What built the model (``one-layer``, ``yun``, ... or what the file says)."""
        return self._m.construction

    @property
    def layers(self):
        """Layer counts ``{"blocks", "attention", "ffn"}``."""
        return _json.loads(self._m.layers)

    @property
    def params(self):
        """Parameter counts ``{"dense", "factored"}``."""
        return _json.loads(self._m.params)

    @property
    def build_bits(self):
        """The bits the construction was built and verified with (None for a loaded model)."""
        return None if self.build is None else self.build["build_bits"]

    @property
    def report(self):
        """The construction's own report (as ``boltz memorize --json`` writes it under ``report``)."""
        return None if self.build is None else self.build["report"]

    @property
    def metadata(self):
        """The file format's metadata (``docs/format.md``)."""
        return dict(self._m.metadata())

    def tensors(self, exact=False, as_mpf=None):
        """Every tensor under its documented name (``blocks.0.attn.0.w_k.u``, ...): float64 arrays, or with
        ``exact=True`` object arrays of exact values (``mpmath.mpf`` or hex strings, see :func:`exact_value`).
        A value beyond f64 without ``exact=True`` is an error."""
        out = {}
        for name, (shape, values) in self._m.tensors_exact().items():
            out[name] = _exact_array(shape, values, as_mpf) if exact else _to_f64(name, values).reshape(shape)
        return out

    def forward(self, inputs, backend="reference", precision="f64", threads=None, exact=False, as_mpf=None):
        """Runs the model on ``inputs`` (``[N, n, d]``, or one sequence ``[n, d]``) on ``backend``
        (``reference``, ``cpu``, ``blas``, ``bigfloat``, ``cuda``) at ``precision`` (``f32``, ``f64``,
        ``bits=N``); the model and inputs are rounded to that precision first. Returns float64 outputs of the
        same shape, or with ``exact=True`` an object array of the exact outputs."""
        x = _np.asarray(inputs)
        single = x.ndim == 2
        x = _floats("inputs", x[None] if single else x, 3)
        values = self._m.forward_exact(x, backend, _check_precision(precision), threads)
        y = _exact_array(x.shape, values, as_mpf) if exact else _to_f64("outputs", values).reshape(x.shape)
        return y[0] if single else y

    def save(self, path, encoding="exact"):
        """Writes the model: ``exact`` (JSON, any precision), ``f64`` or ``f32`` (safetensors; refused where a
        value does not fit exactly)."""
        self._m.save(str(path), encoding)

    def to_torch(self, dtype=None):
        """The same forward as a ``torch.nn.Module`` (float64 by default); needs torch. Weights beyond f64
        are refused (see :meth:`tensors`)."""
        from ._torch import to_torch

        return to_torch(self, dtype)


def memorize(inputs, labels=None, targets=None, *, construction="one-layer", policy="measured", delta="dyadic",
             task="seq2seq", seed=0, threads=None):
    """Builds a model that memorizes ``inputs`` ``[N, n, d]`` with integer ``labels`` ``[N, n]`` (or float
    ``targets`` ``[N, n, d]``), checked first as ``boltz memorize --dataset`` checks it (shapes, NaN/inf,
    empty data, a token twice in a sequence, permuted sequences with inconsistent targets).

    ``construction``: ``one-layer`` (Corollary 1: one rank-1 softmax attention layer + one FFN), ``yun`` or
    ``yun-full`` (Yun et al.'s deep hardmax baseline), ``bit-extraction`` (alias ``optimal``: one averaging
    attention layer + a bit-extraction ReLU stack, Õ(√(nN)) parameters; needs d ≥ 4). ``policy`` (one-layer):
    ``measured``, ``fewest-bits``, ``tuned``, ``mean-pool``, ``theory``. ``task`` (bit-extraction):
    ``seq2seq`` (a label per token) or ``next-token`` (each sequence's label is its last position's; the
    model outputs it at every position, so verify it against labels repeated along each sequence). The
    model's ``build`` holds the build record (bits, exact memorization at those bits, the construction's
    report)."""
    x, t, lab = _data(inputs, targets, labels)
    return Model(_native.memorize(x, t, lab, construction=construction, policy=policy, delta=delta, task=task,
                                  seed=seed, threads=threads))


def verify(model, inputs, targets=None, labels=None, *, backend="reference", precision="f64", threads=None):
    """Runs ``model`` over the dataset on ``backend`` at ``precision``: ``{"memorization": {"tokens",
    "decoded", "exact", "accuracy", "max_abs_error", "log10_max_abs_error"}, "forward_seconds", ...}``
    (``log10_max_abs_error`` is exact even where the error underflows f64)."""
    x, t, lab = _data(inputs, targets, labels)
    return _json.loads(_native.verify(_native_model(model), x, t, lab, backend=backend,
                                      precision=_check_precision(precision), threads=threads))


def fewest_bits(model, inputs, targets=None, labels=None, *, min_bits=8, max_bits=4096, threads=None):
    """The fewest bits in ``min_bits..=max_bits`` at which every token still decodes with weights, inputs
    and arithmetic at that precision (bigfloat bisection): ``{"fewest", "probes", "monotone", ...}``."""
    x, t, lab = _data(inputs, targets, labels)
    return _json.loads(_native.fewest_bits(_native_model(model), x, t, lab, min_bits=min_bits, max_bits=max_bits,
                                           threads=threads))


def load(path):
    """Reads a model in the boltzformer format (safetensors or exact JSON, from any writer, e.g.
    ``safetensors.torch.save_file`` with the documented names), exactly."""
    return Model(_native.load(str(path)))


def load_dataset(path, labels=None, targets=None):
    """Reads a dataset as ``boltz memorize --dataset`` does (boltz format, ``.npz``, or ``.npy`` inputs with
    ``labels``/``targets`` ``.npy``), checked: ``(inputs, targets)`` float64 ``[N, n, d]``."""
    x, y, shape = _native.load_dataset(str(path), None if labels is None else str(labels),
                                       None if targets is None else str(targets))
    return _np.asarray(x).reshape(shape), _np.asarray(y).reshape(shape)


def save_dataset(path, inputs, targets=None, labels=None, encoding="f64"):
    """Writes a dataset in the boltzformer format (``f64`` safetensors or ``exact`` JSON), checked first."""
    x, t, lab = _data(inputs, targets, labels)
    _native.save_dataset(str(path), x, t, lab, encoding)


def _native_model(model):
    if not isinstance(model, Model):
        raise BoltzError(f"expected a boltzformer.Model, got {type(model).__name__}")
    return model._m
