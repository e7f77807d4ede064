"""PyTorch both ways: ``Model.to_torch()`` and ``boltzformer.from_torch``.

The semantics are those of ``docs/format.md`` (and of boltz's reference forward), with tokens as rows
(``[N, n, d]``): per block, ``z += Σ_h W_O^h (σ(scores) @ W_V^h z)`` with ``scores[j, i] = k_i · q_j``,
``q = W_Q z + b_Q``, σ = softmax (shifted by the maximum, as torch does) or hardmax (the maxima share weight
equally), an optional causal mask; then ``z += W_2 relu(W_1 z + b_1) + b_2``. No ``1/√d`` scaling, no
LayerNorm, no dropout. A weight stored as factors ``W = U Vᵀ`` is applied as two products.

Every weight is a trainable ``nn.Parameter`` under the file format's name (``blocks.0.attn.0.w_q.u``,
``blocks.0.ffn.b1``, ...), so ``state_dict()`` keys are those names; the structure the names do not carry
(attention kind, causal mask, the construction's record) is the file format's metadata, kept as the module's
``boltz_metadata`` and in ``state_dict()`` under ``_extra_state`` (PyTorch's place for it).
"""

from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ._native import BoltzError


class Factored(nn.Module):
    """A weight stored as factors ``W = U Vᵀ`` (rank r): parameters ``u`` ``[rows, r]`` and ``v`` ``[cols, r]``."""

    def __init__(self, u: torch.Tensor, v: torch.Tensor) -> None:
        super().__init__()
        self.u = nn.Parameter(u)
        self.v = nn.Parameter(v)

    def extra_repr(self) -> str:
        return f"{self.u.shape[0]}×{self.v.shape[0]} = U[{self.u.shape[0]}×{self.u.shape[1]}] · V[{self.v.shape[0]}×{self.v.shape[1]}]ᵀ"


#: A weight: dense, or factored.
_Weight = Union[nn.Parameter, "Factored"]


def _weight(tensors: Dict[str, torch.Tensor], name: str) -> _Weight:
    """The weight ``name``: a dense ``nn.Parameter``, or a :class:`Factored` from ``name.u`` and ``name.v``."""
    if name in tensors:
        return nn.Parameter(tensors.pop(name))
    return Factored(tensors.pop(name + ".u"), tensors.pop(name + ".v"))


def _apply(w: _Weight, x: torch.Tensor) -> torch.Tensor:
    """``x Wᵀ`` over the last axis; a factored ``W = U Vᵀ`` as ``(x V) Uᵀ``."""
    out: torch.Tensor = (x @ w.v) @ w.u.T if isinstance(w, Factored) else x @ w.T
    return out


def _describe(w: Any) -> str:
    return "×".join(map(str, w.shape)) if isinstance(w, torch.Tensor) else f"U[{w.u.shape[0]}×{w.u.shape[1]}]·Vᵀ"


class AttentionHead(nn.Module):
    """One head: ``w_q``, ``w_k``, ``w_v``, ``w_o`` (dense or :class:`Factored`) and the optional query bias ``b_q``."""

    def __init__(self, tensors: Dict[str, torch.Tensor], prefix: str) -> None:
        super().__init__()
        self.w_q = _weight(tensors, f"{prefix}.w_q")
        self.w_k = _weight(tensors, f"{prefix}.w_k")
        self.w_v = _weight(tensors, f"{prefix}.w_v")
        self.w_o = _weight(tensors, f"{prefix}.w_o")
        b_q = tensors.pop(f"{prefix}.b_q", None)
        self.b_q = None if b_q is None else nn.Parameter(b_q)

    def extra_repr(self) -> str:
        dense = [f"{k}={_describe(getattr(self, k))}" for k in ("w_q", "w_k", "w_v", "w_o") if not isinstance(getattr(self, k), Factored)]
        return ", ".join(dense + ([] if self.b_q is None else [f"b_q={self.b_q.shape[0]}"]))

    def forward(self, z: torch.Tensor, hardmax: bool, causal: bool) -> torch.Tensor:
        q = _apply(self.w_q, z)
        if self.b_q is not None:
            q = q + self.b_q
        k, v = _apply(self.w_k, z), _apply(self.w_v, z)
        s = q @ k.transpose(-1, -2)  # s[:, j, i] = k_i · q_j
        if causal:
            n = z.shape[-2]
            s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=z.device).triu(1), float("-inf"))
        if hardmax:
            w = (s == s.max(dim=-1, keepdim=True).values).to(z.dtype)
            w = w / w.sum(dim=-1, keepdim=True)
        else:
            w = torch.softmax(s, dim=-1)
        return _apply(self.w_o, w @ v)


class FeedForward(nn.Module):
    """``W_2 relu(W_1 z + b_1) + b_2`` (the residual is added by the block)."""

    def __init__(self, tensors: Dict[str, torch.Tensor], prefix: str) -> None:
        super().__init__()
        self.w1 = _weight(tensors, f"{prefix}.w1")
        self.b1 = nn.Parameter(tensors.pop(f"{prefix}.b1"))
        self.w2 = _weight(tensors, f"{prefix}.w2")
        self.b2 = nn.Parameter(tensors.pop(f"{prefix}.b2"))

    def extra_repr(self) -> str:
        return f"width={self.b1.shape[0]}" + "".join(
            f", {k}={_describe(getattr(self, k))}" for k in ("w1", "w2") if not isinstance(getattr(self, k), Factored))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _apply(self.w2, torch.relu(_apply(self.w1, z) + self.b1)) + self.b2


class Block(nn.Module):
    """One residual block: optional attention heads (``attn``), then an optional FFN (``ffn``)."""

    def __init__(self, tensors: Dict[str, torch.Tensor], meta: Mapping[str, str], b: int) -> None:
        super().__init__()
        self.hardmax = self.causal = False
        self.attn: Optional[nn.ModuleList] = None
        if f"blocks.{b}.attn.kind" in meta:
            heads = int(meta[f"blocks.{b}.attn.heads"])
            self.attn = nn.ModuleList([AttentionHead(tensors, f"blocks.{b}.attn.{h}") for h in range(heads)])
            self.hardmax = meta[f"blocks.{b}.attn.kind"] == "hardmax"
            self.causal = meta[f"blocks.{b}.attn.causal"] == "true"
        self.ffn = FeedForward(tensors, f"blocks.{b}.ffn") if f"blocks.{b}.ffn.b1" in tensors else None

    def extra_repr(self) -> str:
        if self.attn is None:
            return "no attention"
        return ("hardmax" if self.hardmax else "softmax") + (", causal" if self.causal else "")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.attn is not None:
            z = z + sum(h(z, self.hardmax, self.causal) for h in self.attn)
        if self.ffn is not None:
            z = z + self.ffn(z)
        return z


class BoltzModule(nn.Module):
    """A boltzformer model in PyTorch. ``forward(x)`` takes ``[N, n, d]`` (or ``[n, d]``). The weights are
    trainable parameters named as in the file format; ``boltz_metadata`` is the file's metadata (attention
    kinds, causal masks, what built the model). ``boltzformer.from_torch`` reads it back."""

    def __init__(self, tensors: Dict[str, torch.Tensor], meta: Mapping[str, str]) -> None:
        super().__init__()
        self.boltz_metadata: Dict[str, str] = dict(meta)
        self.dim = int(meta["dim"])
        self.blocks = nn.ModuleList([Block(tensors, meta, b) for b in range(int(meta["blocks"]))])
        if tensors:
            raise BoltzError(f"tensors the model's metadata has no place for: {sorted(tensors)}")

    def extra_repr(self) -> str:
        return f"construction={self.boltz_metadata.get('construction', '?')!r}, d={self.dim}"

    def get_extra_state(self) -> Dict[str, str]:
        return dict(self.boltz_metadata)

    def set_extra_state(self, state: Any) -> None:
        if dict(state) != self.boltz_metadata:
            raise BoltzError("the state_dict's boltzformer metadata (_extra_state) is another model's")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = x.dim() == 2
        z = x[None] if single else x
        for block in self.blocks:
            z = block(z)
        return z[0] if single else z


def to_torch(model: Any, dtype: Any = None) -> BoltzModule:
    dtype = torch.float64 if dtype is None else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise BoltzError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    # float64; a value beyond f64 is refused (Model.tensors).
    tensors = {name: torch.from_numpy(np.ascontiguousarray(t)).to(dtype) for name, t in model.tensors().items()}
    return BoltzModule(tensors, model.metadata).eval()


# ------------------------------------------------------------------------------------------------------
# Back from PyTorch


def _differences(module: nn.Module) -> List[str]:
    """What makes `module` compute something other than a boltzformer block, one item per difference."""
    found: List[str] = []
    for name, m in module.named_modules():
        where = f" ({name})" if name else ""
        if isinstance(m, (nn.LayerNorm, nn.RMSNorm, nn.BatchNorm1d, nn.GroupNorm)):
            found.append(f"{type(m).__name__}{where}: boltzformer blocks have no normalization")
        elif isinstance(m, nn.Dropout) and m.p > 0:
            found.append(f"dropout p={m.p}{where}: boltzformer has none")
        elif isinstance(m, nn.MultiheadAttention):
            found.append(f"scaled dot-product attention{where} divides the scores by √(d/heads) = √{m.head_dim}: "
                         "boltzformer's scores are k·q, unscaled (fold the factor into W_Q)")
            found.append(f"{m.num_heads} heads{where} split one d-wide projection (in_proj_weight, out_proj): "
                         "boltzformer's heads each have their own full W_Q, W_K, W_V, W_O")
            if m.in_proj_bias is not None or m.out_proj.bias is not None:
                found.append(f"biases on K, V and the output projection{where}: boltzformer has a query bias b_q only")
        elif isinstance(m, nn.GELU):
            found.append(f"GELU{where}: boltzformer's FFN uses ReLU")
    if isinstance(module, nn.TransformerEncoderLayer):
        act = getattr(module, "activation", None)
        if act is not None and not isinstance(act, (nn.ReLU,)) and act is not torch.nn.functional.relu:
            found.append(f"activation {getattr(act, '__name__', type(act).__name__)}: boltzformer's FFN uses ReLU")
    return found


def _metadata_of(obj: Any, given: Optional[Mapping[str, str]]) -> Tuple[Dict[str, str], Dict[str, torch.Tensor]]:
    """The metadata and the named tensors of a :class:`BoltzModule` or a state dict."""
    if isinstance(obj, BoltzModule):
        state = dict(obj.state_dict())
        meta = dict(obj.boltz_metadata)
    elif isinstance(obj, nn.Module):
        differences = _differences(obj)
        detail = "".join(f"\n  - {d}" for d in differences) if differences else (
            "\n  - its parameters are not named as the file format's tensors (blocks.B.attn.H.w_q, blocks.B.ffn.w1, ...)")
        raise BoltzError(f"from_torch reads the modules Model.to_torch() makes (BoltzModule), or their state_dict; "
                        f"a {type(obj).__name__} computes something else:{detail}")
    elif isinstance(obj, Mapping):
        state = dict(obj)
        extra = state.get("_extra_state")
        meta = dict(extra) if isinstance(extra, Mapping) else {}
    else:
        raise BoltzError(f"from_torch: expected a BoltzModule or a state_dict, got {type(obj).__name__}")
    state.pop("_extra_state", None)
    if given is not None:
        meta = dict(given)
    if not meta:
        raise BoltzError("from_torch: the state_dict has no boltzformer metadata (its _extra_state, from "
                         "BoltzModule.state_dict()); pass metadata= (Model.metadata of the model it came from)")
    tensors: Dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise BoltzError(f"from_torch: {name} is a {type(t).__name__}, not a tensor")
        if not t.is_floating_point():
            raise BoltzError(f"from_torch: {name} has dtype {t.dtype}; weights are floating-point")
        tensors[name] = t
    return meta, tensors


def from_torch_arrays(obj: Any, metadata: Optional[Mapping[str, str]]) -> Tuple[Dict[str, str], Dict[str, Tuple[List[int], Any]]]:
    """The metadata and ``{name: (shape, flat float64 array)}`` of a :class:`BoltzModule` or its state dict:
    every floating dtype widens to float64 exactly (f32, f16, bf16 values are all f64 values)."""
    meta, tensors = _metadata_of(obj, metadata)
    out = {}
    for name, t in tensors.items():
        a = t.detach().to("cpu", torch.float64).contiguous().numpy()
        out[name] = (list(a.shape), a.reshape(-1))
    return meta, out
