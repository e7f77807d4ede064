"""Typed results: what the library's records say, as frozen dataclasses with numbers as numbers.

Each is read from the JSON record the Rust library writes (the same record ``boltz ... --json`` prints;
``docs/results.md``, "Command records") and keeps it: ``to_dict()`` returns that record, every field
included, for saving or for fields a newer library adds. One reader (``_Record.from_dict``) fills every
class: each field says how its value is read (``_read``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, TypeVar

JsonDict = Dict[str, Any]
T = TypeVar("T")
R = TypeVar("R", bound="_Record")


def _read(convert: Callable[[Any], T], key: Optional[str] = None, **kw: Any) -> T:
    """A field read from the record's ``key`` (default: the field's name) by ``convert``, which also gets
    ``None`` for an absent key."""
    out: T = field(metadata={"convert": convert, "key": key}, **kw)
    return out


def _optional(convert: Callable[[Any], T]) -> Callable[[Any], Optional[T]]:
    return lambda v: None if v is None else convert(v)


def _many(convert: Callable[[Any], T]) -> Callable[[Any], Tuple[T, ...]]:
    return lambda v: tuple(convert(x) for x in (v or []))


def _int_pair(v: Any) -> Tuple[int, int]:
    return (int(v[0]), int(v[1]))


def _float_or(missing: float) -> Callable[[Any], float]:
    # JSON has no infinities or NaN: the record writes them as null.
    return lambda v: missing if v is None else float(v)


@dataclass(frozen=True)
class _Record:
    """A result read from a JSON record, which it keeps."""

    _raw: JsonDict = field(repr=False, compare=False)

    def to_dict(self) -> JsonDict:
        """The record as the library wrote it (a deep copy)."""
        return copy.deepcopy(self._raw)

    @classmethod
    def from_dict(cls: Type[R], d: Mapping[str, Any]) -> R:
        """Reads the record ``d``: every field by its converter, from its key."""
        values = {
            f.name: f.metadata["convert"](d.get(f.metadata["key"] or f.name))
            for f in fields(cls)
            if f.name != "_raw"
        }
        return cls(_raw=copy.deepcopy(dict(d)), **values)


@dataclass(frozen=True)
class Memorization(_Record):
    """How a model memorizes a dataset: a token decodes when every coordinate of its output is within ½ of
    its target (``exact``: equal to it)."""

    tokens: int = _read(int)
    decoded: int = _read(int)
    exact: int = _read(int)
    accuracy: float = _read(float)
    #: The largest absolute error (``nan`` where it is not finite).
    max_abs_error: float = _read(_float_or(float("nan")))
    #: log10 of the largest absolute error, exact even where the error underflows f64 (``-inf``: no error).
    log10_max_abs_error: float = _read(_float_or(float("-inf")))

    @property
    def all_decoded(self) -> bool:
        """Whether every token decodes."""
        return self.decoded == self.tokens


@dataclass(frozen=True)
class Probe(_Record):
    """One precision the fewest-bits search tried."""

    bits: int = _read(int)
    holds: bool = _read(bool)
    seconds: float = _read(_float_or(0.0))


@dataclass(frozen=True)
class BitsAudit(_Record):
    """The independent check of a search's answer on its hardest sequences."""

    bits: int = _read(int)
    sequences: Tuple[int, ...] = _read(_many(int))
    failing_bits: Optional[int] = _read(_optional(int))
    failing_token: Optional[Tuple[int, int]] = _read(_optional(_int_pair))


@dataclass(frozen=True)
class BitsSearch(_Record):
    """The fewest mantissa bits at which every token still decodes (weights, inputs and arithmetic rounded
    to that precision), searched in ``lo..=hi``."""

    lo: int = _read(int)
    hi: int = _read(int)
    #: The answer (``None``: nothing in the range memorizes).
    fewest: Optional[int] = _read(_optional(int))
    #: What the bisection alone found (before the scan of a non-monotone range).
    bisection: Optional[int] = _read(_optional(int))
    #: The ranges of bits where memorization holds, as probed.
    holds_at: Tuple[Tuple[int, int], ...] = _read(_many(_int_pair))
    monotone: bool = _read(bool)
    probes: Tuple[Probe, ...] = _read(_many(Probe.from_dict))
    audit: Optional[BitsAudit] = _read(_optional(BitsAudit.from_dict))


@dataclass(frozen=True)
class LayerCount(_Record):
    """Blocks, and the attention and FFN layers among them."""

    blocks: int = _read(int)
    attention: int = _read(int)
    ffn: int = _read(int)


@dataclass(frozen=True)
class ParamCount(_Record):
    """Parameters stored densely, and with low-rank weights counted by their factors."""

    dense: int = _read(int)
    factored: int = _read(int)


@dataclass(frozen=True)
class DatasetShape(_Record):
    """``N`` sequences of ``n`` tokens in ``R^d``."""

    sequences: int = _read(int, key="N")
    n: int = _read(int)
    d: int = _read(int)


@dataclass(frozen=True)
class ModelReport(_Record):
    """What :func:`boltzformer.memorize` built: the construction, its size, the bits it was built and
    verified with, and how it memorizes there (``Model.build``)."""

    #: The construction's family (``one-layer``, ``yun``, ``yun-full``, ``bit-extraction``) or its name.
    construction: str = _read(str)
    #: The one-layer policy (``None`` for the other constructions).
    policy: Optional[str] = _read(_optional(str))
    layers: LayerCount = _read(LayerCount.from_dict)
    params: ParamCount = _read(ParamCount.from_dict)
    build_bits: int = _read(int)
    exact_at_build_bits: Memorization = _read(Memorization.from_dict)
    seed: int = _read(int)
    #: Random directions the one-layer construction tried (None for the other constructions).
    candidates: Optional[int] = _read(_optional(int))
    dataset: DatasetShape = _read(DatasetShape.from_dict)
    #: The search the fewest-bits policy made while building (else ``None``: call ``fewest_bits``).
    fewest_bits: Optional[BitsSearch] = _read(_optional(BitsSearch.from_dict))
    summary: Tuple[str, ...] = _read(_many(str))
    #: The construction's own report (its constants and measurements; ``docs/results.md``).
    report: JsonDict = _read(lambda v: copy.deepcopy(v or {}), repr=False)


@dataclass(frozen=True)
class VerifyResult(_Record):
    """A model run over a dataset on one backend at one precision (:func:`boltzformer.verify`)."""

    backend: str = _read(str)
    precision: str = _read(str)
    memorization: Memorization = _read(Memorization.from_dict)
    forward_seconds: float = _read(float)
    dataset: DatasetShape = _read(DatasetShape.from_dict)


__all__: List[str] = [
    "BitsAudit",
    "BitsSearch",
    "DatasetShape",
    "LayerCount",
    "Memorization",
    "ModelReport",
    "ParamCount",
    "Probe",
    "VerifyResult",
]
