"""Typed results: what the library's records say, as frozen dataclasses with numbers as numbers.

Each is read from the JSON record the Rust library writes (the same record ``boltz ... --json`` prints;
``docs/results.md``, "Command records") and keeps it: ``to_dict()`` returns that record, every field
included, for saving or for fields a newer library adds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

JsonDict = Dict[str, Any]


def _opt_int(v: Any) -> Optional[int]:
    return None if v is None else int(v)


def _opt_float(v: Any) -> Optional[float]:
    return None if v is None else float(v)


@dataclass(frozen=True)
class _Record:
    """A result read from a JSON record, which it keeps."""

    _raw: JsonDict = field(repr=False, compare=False)

    def to_dict(self) -> JsonDict:
        """The record as the library wrote it (a deep copy)."""
        return copy.deepcopy(self._raw)


@dataclass(frozen=True)
class Memorization(_Record):
    """How a model memorizes a dataset: a token decodes when every coordinate of its output is within ½ of
    its target (``exact``: equal to it)."""

    tokens: int
    decoded: int
    exact: int
    accuracy: float
    #: The largest absolute error (``nan`` where it is not finite).
    max_abs_error: float
    #: log10 of the largest absolute error, exact even where the error underflows f64 (``-inf``: no error).
    log10_max_abs_error: float

    @property
    def all_decoded(self) -> bool:
        """Whether every token decodes."""
        return self.decoded == self.tokens

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Memorization:
        return cls(
            _raw=dict(d),
            tokens=int(d["tokens"]),
            decoded=int(d["decoded"]),
            exact=int(d["exact"]),
            accuracy=float(d["accuracy"]),
            max_abs_error=float(d["max_abs_error"]) if d.get("max_abs_error") is not None else float("nan"),
            # JSON has no infinities: the record writes log10(0) = -inf as null.
            log10_max_abs_error=float("-inf") if d.get("log10_max_abs_error") is None else float(d["log10_max_abs_error"]),
        )


@dataclass(frozen=True)
class Probe(_Record):
    """One precision the fewest-bits search tried."""

    bits: int
    holds: bool
    seconds: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Probe:
        return cls(_raw=dict(d), bits=int(d["bits"]), holds=bool(d["holds"]), seconds=float(d.get("seconds", 0.0)))


@dataclass(frozen=True)
class BitsAudit(_Record):
    """The independent check of a search's answer on its hardest sequences."""

    bits: int
    sequences: Tuple[int, ...]
    failing_bits: Optional[int]
    failing_token: Optional[Tuple[int, int]]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BitsAudit:
        tok = d.get("failing_token")
        return cls(
            _raw=dict(d),
            bits=int(d["bits"]),
            sequences=tuple(int(s) for s in d.get("sequences", [])),
            failing_bits=_opt_int(d.get("failing_bits")),
            failing_token=None if tok is None else (int(tok[0]), int(tok[1])),
        )


@dataclass(frozen=True)
class BitsSearch(_Record):
    """The fewest mantissa bits at which every token still decodes (weights, inputs and arithmetic rounded
    to that precision), searched in ``lo..=hi``."""

    lo: int
    hi: int
    #: The answer (``None``: nothing in the range memorizes).
    fewest: Optional[int]
    #: What the bisection alone found (before the scan of a non-monotone range).
    bisection: Optional[int]
    #: The ranges of bits where memorization holds, as probed.
    holds_at: Tuple[Tuple[int, int], ...]
    monotone: bool
    probes: Tuple[Probe, ...]
    audit: Optional[BitsAudit]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BitsSearch:
        audit = d.get("audit")
        return cls(
            _raw=dict(d),
            lo=int(d["lo"]),
            hi=int(d["hi"]),
            fewest=_opt_int(d.get("fewest")),
            bisection=_opt_int(d.get("bisection")),
            holds_at=tuple((int(a), int(b)) for a, b in d.get("holds_at", [])),
            monotone=bool(d.get("monotone", False)),
            probes=tuple(Probe.from_dict(p) for p in d.get("probes", [])),
            audit=None if audit is None else BitsAudit.from_dict(audit),
        )


@dataclass(frozen=True)
class LayerCount(_Record):
    """Blocks, and the attention and FFN layers among them."""

    blocks: int
    attention: int
    ffn: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerCount:
        return cls(_raw=dict(d), blocks=int(d["blocks"]), attention=int(d["attention"]), ffn=int(d["ffn"]))


@dataclass(frozen=True)
class ParamCount(_Record):
    """Parameters stored densely, and with low-rank weights counted by their factors."""

    dense: int
    factored: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParamCount:
        return cls(_raw=dict(d), dense=int(d["dense"]), factored=int(d["factored"]))


@dataclass(frozen=True)
class DatasetShape(_Record):
    """``N`` sequences of ``n`` tokens in ``R^d``."""

    sequences: int
    n: int
    d: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetShape:
        return cls(_raw=dict(d), sequences=int(d["N"]), n=int(d["n"]), d=int(d["d"]))


@dataclass(frozen=True)
class ModelReport(_Record):
    """What :func:`boltzformer.memorize` built: the construction, its size, the bits it was built and
    verified with, and how it memorizes there (``Model.build``)."""

    #: The construction's family (``one-layer``, ``yun``, ``yun-full``, ``bit-extraction``) or its name.
    construction: str
    #: The one-layer policy (``None`` for the other constructions).
    policy: Optional[str]
    layers: LayerCount
    params: ParamCount
    build_bits: int
    exact_at_build_bits: Memorization
    seed: int
    dataset: DatasetShape
    #: The search the fewest-bits policy made while building (else ``None``: call ``fewest_bits``).
    fewest_bits: Optional[BitsSearch]
    summary: Tuple[str, ...]
    #: The construction's own report (its constants and measurements; ``docs/results.md``).
    report: JsonDict = field(repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelReport:
        fb = d.get("fewest_bits")
        return cls(
            _raw=dict(d),
            construction=str(d["construction"]),
            policy=d.get("policy"),
            layers=LayerCount.from_dict(d["layers"]),
            params=ParamCount.from_dict(d["params"]),
            build_bits=int(d["build_bits"]),
            exact_at_build_bits=Memorization.from_dict(d["exact_at_build_bits"]),
            seed=int(d["seed"]),
            dataset=DatasetShape.from_dict(d["dataset"]),
            fewest_bits=None if fb is None else BitsSearch.from_dict(fb),
            summary=tuple(str(s) for s in d.get("summary", [])),
            report=copy.deepcopy(d.get("report", {})),
        )


@dataclass(frozen=True)
class VerifyResult(_Record):
    """A model run over a dataset on one backend at one precision (:func:`boltzformer.verify`)."""

    backend: str
    precision: str
    memorization: Memorization
    forward_seconds: float
    dataset: DatasetShape

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VerifyResult:
        return cls(
            _raw=dict(d),
            backend=str(d["backend"]),
            precision=str(d["precision"]),
            memorization=Memorization.from_dict(d["memorization"]),
            forward_seconds=float(d["forward_seconds"]),
            dataset=DatasetShape.from_dict(d["dataset"]),
        )


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
