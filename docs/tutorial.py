# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # boltzformer from Python: one softmax layer that memorizes
#
# Kajitsuka & Sato (ICLR 2024) prove that **one** self-attention layer with **rank-1** weights is already a
# *contextual mapping*: read through the Boltzmann operator, it gives every token of every distinct sequence
# a distinct value, so one attention layer and one feed-forward layer memorize any N labelled sequences
# (their Corollary 1). This notebook runs that construction on your data:
#
# 1. NumPy data → `memorize` → a model and its build report;
# 2. `verify` on two backends and three precisions;
# 3. the fewest bits the model needs, and how they grow with N (a chart);
# 4. the model in PyTorch, next to a model of the same shape trained by gradient descent.
#
# `docs/tutorial.py` is this notebook's source (jupytext's percent format, checked by `mypy --strict`);
# `scripts/test-python.sh` executes it with nbclient in CI, so what you read here ran. To run it yourself:
# `pip install "$(ls dist/boltzformer-*.whl)[tutorial]"` (the wheel from `scripts/build-wheel.sh`, with
# torch and matplotlib) and open `docs/tutorial.ipynb`.

# %%
from typing import List, Tuple

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import torch

import boltzformer as bf

print(bf.REVISION)

# %% [markdown]
# ## 1. Your data
#
# A dataset is `inputs` `[N, n, d]` (N sequences of n tokens in d dimensions) with integer `labels` `[N, n]`
# (or float `targets` `[N, n, d]`). The theorem needs distinct tokens within a sequence; two sequences that
# are permutations of each other must label their shared tokens alike (attention cannot tell them apart).
# `memorize` checks both and raises `bf.DataError` naming the offending sequence.


# %%
def make_data(sequences: int, length: int = 8, vocab: int = 16, dim: int = 4, classes: int = 3,
              seed: int = 0) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """`sequences` sets of `length` distinct tokens out of `vocab` random vectors, no set twice."""
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(vocab, dim))
    ids: List[npt.NDArray[np.int64]] = []
    seen = set()
    while len(ids) < sequences:
        s = rng.choice(vocab, length, replace=False)
        if frozenset(s.tolist()) not in seen:
            seen.add(frozenset(s.tolist()))
            ids.append(s)
    return tokens[np.array(ids)], rng.integers(0, classes, size=(sequences, length))


x, labels = make_data(50)
print(x.shape, labels.shape)

try:
    bf.memorize(np.concatenate([x[:1], x[:1, ::-1]]), labels=np.array([[0] * 8, [1] * 8]))
except bf.DataError as e:
    print("refused:", str(e)[:160], "...")

# %% [markdown]
# ## 2. Memorize, then verify
#
# `memorize` builds the one-layer model (one rank-1 softmax attention layer, one FFN). The `tuned` policy
# picks the smallest attention scale λ that still separates every context, so the weights fit f64. The
# build report says at how many bits the construction was verified exactly.

# %%
model = bf.memorize(x, labels=labels, policy="tuned")
build = model.build
assert build is not None
print(model)
print("built and verified exactly at", build.build_bits, "bits:", build.exact_at_build_bits)
print("parameters:", model.params)

# %% [markdown]
# `verify` runs the model over the data on a backend at a precision (weights, inputs and every operation
# rounded to it) and counts the tokens that decode (every output coordinate within ½ of its target). The
# bigfloat backend runs at any number of bits; `cpu` is the fast f32/f64 engine.

# %%
runs = [("bigfloat", f"bits={build.build_bits}"), ("cpu", "f64"), ("reference", "f64"), ("cpu", "f32")]
for backend, precision in runs:
    r = bf.verify(model, x, labels=labels, backend=backend, precision=precision)
    print(f"{backend:9} {precision:>10}: accuracy {r.memorization.accuracy:.3f}, "
          f"max |error| {r.memorization.max_abs_error:.2e}")

# %% [markdown]
# ## 3. The fewest bits, and how they grow with N
#
# f32 has 24 bits of mantissa: not enough here. `fewest_bits` searches the smallest precision at which every
# token still decodes (certified probes, re-checked by a faithful forward).

# %%
search = bf.fewest_bits(model, x, labels=labels)
print("fewest bits:", search.fewest, "| probes:", [(p.bits, p.holds) for p in search.probes])

# %% [markdown]
# The paper's analysis predicts that the context ids need more bits as N grows (their gaps shrink). Measure
# it: build a model for each N and search its fewest bits.

# %%
sizes = [10, 20, 40, 80, 160]
fewest: List[int] = []
for n_seq in sizes:
    xs, ls = make_data(n_seq, seed=1)
    m = bf.memorize(xs, labels=ls, policy="tuned")
    found = bf.fewest_bits(m, xs, labels=ls).fewest
    assert found is not None
    fewest.append(found)
print(dict(zip(sizes, fewest)))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(sizes, fewest, "o-", label="one-layer model (tuned)")
ax.axhline(24, color="tab:red", ls="--", label="f32 mantissa (24 bits)")
ax.axhline(53, color="tab:gray", ls=":", label="f64 mantissa (53 bits)")
ax.set_xscale("log")
ax.set_xticks(sizes, [str(s) for s in sizes])
ax.set_xlabel("sequences N (n = 8, |V| = 16, d = 4)")
ax.set_ylabel("fewest bits to memorize")
ax.set_title("Precision the one-layer construction needs")
ax.legend(loc="center right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. In PyTorch, next to a trained model
#
# `to_torch()` gives the same forward as an `nn.Module` whose weights are trainable parameters named as in
# the file format; `bf.from_torch` reads such a module (or its `state_dict`) back, exactly, so anything
# PyTorch does to it can be verified here.

# %%
module = model.to_torch()
print(module)
with torch.no_grad():
    y = module(torch.from_numpy(x))
print("PyTorch decodes", int((y[..., 0] - torch.from_numpy(labels)).abs().lt(0.5).sum()), "of", labels.size, "tokens")
print("round trip:", bf.verify(bf.from_torch(module), x, labels=labels).memorization)

# %% [markdown]
# Now train a model of the **same shape** (one rank-1 softmax layer, an FFN of the same width) from a random
# start with Adam, and verify it with the same code. The construction memorizes every token; gradient descent
# on this architecture gets only part of the way, which is the gap the construction closes.

# %%
torch.manual_seed(0)
trained = model.to_torch()
with torch.no_grad():
    for p in trained.parameters():
        p.copy_(torch.randn_like(p) * 0.5)
trained.train()
inputs = torch.from_numpy(x)
targets = torch.zeros_like(inputs)
targets[..., 0] = torch.from_numpy(labels).to(torch.float64)
opt = torch.optim.Adam(trained.parameters(), lr=0.01)
losses: List[float] = []
for step in range(600):
    opt.zero_grad()
    loss = ((trained(inputs) - targets) ** 2).mean()
    loss.backward()
    opt.step()
    losses.append(loss.item())

trained_report = bf.verify(bf.from_torch(trained), x, labels=labels).memorization
construction_report = bf.verify(model, x, labels=labels).memorization
print("construction:", construction_report.accuracy, "| trained (600 Adam steps):", trained_report.accuracy,
      "| chance: about 1/3 (3 classes)")

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
left.plot(losses)
left.set_yscale("log")
left.set_xlabel("Adam step")
left.set_ylabel("training loss (MSE)")
right.bar(["construction", "trained"], [construction_report.accuracy, trained_report.accuracy],
          color=["tab:blue", "tab:orange"])
right.set_ylim(0, 1)
right.set_ylabel("tokens decoded (f64)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Where next
#
# - `bf.memorize(..., construction="yun")` builds Yun et al.'s deep hardmax baseline, and
#   `construction="bit-extraction"` the parameter-optimal one; compare `model.layers` and `model.params`.
# - The command line reproduces the paper-style charts: `boltz reproduce` (see the README).
# - Long calls stop on Ctrl-C and show a progress bar on a terminal; pass `progress=` a callable to receive
#   each `bf.Progress` yourself.
