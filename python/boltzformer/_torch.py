"""``Model.to_torch()``: the boltzformer forward as a ``torch.nn.Module``.

The semantics are those of ``docs/format.md`` (and of boltz's reference forward), with tokens as rows
(``[N, n, d]``): per block, ``z += Σ_h W_O^h (σ(scores) @ W_V^h z)`` with ``scores[j, i] = k_i · q_j``,
``q = W_Q z + b_Q``, σ = softmax (shifted by the maximum, as torch does) or hardmax (the maxima share weight
equally), an optional causal mask; then ``z += W_2 relu(W_1 z + b_1) + b_2``. No hidden ``1/√s``. A weight
stored as factors ``W = U Vᵀ`` is applied as two products.
"""

from typing import Any

import torch


class BoltzModule(torch.nn.Module):
    """A boltzformer model in PyTorch. ``forward(x)`` takes ``[N, n, d]`` (or ``[n, d]``). Every tensor is a
    buffer (``module.to(device)`` moves them); the module is for evaluation -- a construction's point is its
    exact weights."""

    def __init__(self, blocks, tensors, dim):
        super().__init__()
        self.dim = dim
        # blocks hold buffer names (a factored weight W = U Vᵀ as a (u, v) pair of names).
        self._blocks = blocks
        self._names = {}
        for i, (name, t) in enumerate(sorted(tensors.items())):
            key = f"t{i}"
            self.register_buffer(key, t)
            self._names[name] = key

    def _t(self, name):
        return getattr(self, self._names[name])

    def _lin(self, w, x):
        """x Wᵀ over the last axis; a factored (U, V) as (x V) Uᵀ."""
        if isinstance(w, tuple):
            return (x @ self._t(w[1])) @ self._t(w[0]).T
        return x @ self._t(w).T

    def forward(self, x):
        single = x.dim() == 2
        z = x[None] if single else x
        for block in self._blocks:
            a = block["attn"]
            if a is not None:
                n = z.shape[1]
                delta = torch.zeros_like(z)
                for h in a["heads"]:
                    q = self._lin(h["w_q"], z)
                    if h["b_q"] is not None:
                        q = q + self._t(h["b_q"])
                    k, v = self._lin(h["w_k"], z), self._lin(h["w_v"], z)
                    s = q @ k.transpose(1, 2)  # s[:, j, i] = k_i · q_j
                    if a["causal"]:
                        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=z.device).triu(1), float("-inf"))
                    if a["hardmax"]:
                        w = (s == s.max(dim=-1, keepdim=True).values).to(z.dtype)
                        w = w / w.sum(dim=-1, keepdim=True)
                    else:
                        w = torch.softmax(s, dim=-1)
                    delta = delta + self._lin(h["w_o"], w @ v)
                z = z + delta
            f = block["ffn"]
            if f is not None:
                hidden = torch.relu(self._lin(f["w1"], z) + self._t(f["b1"]))
                z = z + self._lin(f["w2"], hidden) + self._t(f["b2"])
        return z[0] if single else z


def to_torch(model: Any, dtype: Any = None) -> Any:
    dtype = torch.float64 if dtype is None else dtype
    meta = model.metadata
    tensors = model.tensors()  # float64; refuses values beyond f64

    def weight(name):
        return name if name in tensors else (name + ".u", name + ".v")

    blocks = []
    for b in range(int(meta["blocks"])):
        block = {"attn": None, "ffn": None}
        if f"blocks.{b}.attn.kind" in meta:
            heads = []
            for h in range(int(meta[f"blocks.{b}.attn.heads"])):
                p = f"blocks.{b}.attn.{h}"
                head = {k: weight(f"{p}.{k}") for k in ("w_q", "w_k", "w_v", "w_o")}
                head["b_q"] = f"{p}.b_q" if f"{p}.b_q" in tensors else None
                heads.append(head)
            block["attn"] = {"heads": heads, "hardmax": meta[f"blocks.{b}.attn.kind"] == "hardmax",
                             "causal": meta[f"blocks.{b}.attn.causal"] == "true"}
        if f"blocks.{b}.ffn.b1" in tensors:
            block["ffn"] = {k: weight(f"blocks.{b}.ffn.{k}") for k in ("w1", "w2")}
            block["ffn"].update({k: f"blocks.{b}.ffn.{k}" for k in ("b1", "b2")})
        blocks.append(block)
    buffers = {name: torch.from_numpy(t.copy()).to(dtype) for name, t in tensors.items()}
    return BoltzModule(blocks, buffers, int(meta["dim"])).eval()
