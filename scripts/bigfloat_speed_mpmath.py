#!/usr/bin/env python3
"""The mpmath side of results/bigfloat/speed.json, measured beside the Rust side (scripts/bigfloat-speed.sh).

    python3 scripts/bigfloat_speed_mpmath.py SPEED_JSON EXPORT_DIR

Reads the record the Rust example `speed` wrote (its per-operation precisions and repetition counts, and the
memorizer forward's precision), then measures, in this process, on one thread:

* `exp(-0.7371)` and the product of two full-length values (1/3 at the precision) at every precision of
  the record's `ops`, with the same repetition counts as the Rust side;
* one forward of the exported memorizer (`boltz memorize --export EXPORT_DIR`: model.exact.json and
  dataset.safetensors, read with scripts/read_boltz.py) as a plain mpmath loop at the record's `bits`: weights
  made dense mpmath matrices once (timed, as the backend's prepare is), `mpmath.exp` per attention score,
  every operation at that precision — what a Python researcher would write — and how many tokens it decodes (every coordinate within 1/2 of its target), an independent
  check of the Rust forward's memorization.

Writes the measurements into the record under "mpmath" (with the backend/mpmath ratios) and rewrites it.
Needs mpmath (with gmpy2, so that mpmath runs on GMP); exits 2 naming what is missing.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_boltz  # noqa: E402

try:
    import mpmath
    from mpmath import mp, mpf
except ImportError:
    print("error: mpmath is not installed (pip install mpmath gmpy2)", file=sys.stderr)
    sys.exit(2)


def reps_for(bits):
    """The Rust example's repetition count at `bits` (crates/bigfloat/examples/speed.rs)."""
    return min(max(4_000_000 // bits, 1), 200)


def timed(reps, f):
    start = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - start) / reps


def exact_mpf(x):
    """A Fraction with a power-of-two denominator (or a float), rounded once to the working precision."""
    if isinstance(x, float):
        return mpf(x)
    num, den = x.numerator, x.denominator
    k = den.bit_length() - 1
    if den != 1 << k:
        raise ValueError(f"not a dyadic rational: {x}")
    return mpmath.ldexp(mpf(num), -k)


def matrix(tensors, name):
    shape, values = tensors[name]
    rows, cols = shape if len(shape) == 2 else (shape[0], 1)
    vals = [exact_mpf(v) for v in values]
    return [vals[r * cols:(r + 1) * cols] for r in range(rows)]


def weight(tensors, name):
    """A weight as a dense matrix: `name` itself, or the factors `name.u` [rows, r] and `name.v` [cols, r]."""
    if name in tensors:
        return matrix(tensors, name)
    u, v = matrix(tensors, name + ".u"), matrix(tensors, name + ".v")
    r = len(u[0])
    return [[sum_products([u[i][k] for k in range(r)], [v[j][k] for k in range(r)]) for j in range(len(v))] for i in range(len(u))]


def sum_products(a, b):
    acc = mpf(0)
    for x, y in zip(a, b):
        acc += x * y
    return acc


def apply(w, x):
    return [sum_products(row, x) for row in w]


def prepare(meta, tensors):
    """Every weight as a dense mpmath matrix at the working precision, once: [(heads, ffn)] per block."""
    blocks = []
    for b in range(int(meta["blocks"])):
        heads = []
        for h in range(int(meta.get(f"blocks.{b}.attn.heads", "0"))):
            if meta[f"blocks.{b}.attn.kind"] != "softmax" or meta[f"blocks.{b}.attn.causal"] != "false":
                raise ValueError("this loop runs non-causal softmax attention only")
            if f"blocks.{b}.attn.{h}.b_q" in tensors:
                raise ValueError("this loop runs attention without a query bias only")
            heads.append([weight(tensors, f"blocks.{b}.attn.{h}.{w}") for w in ("w_q", "w_k", "w_v", "w_o")])
        ffn = None
        if f"blocks.{b}.ffn.b1" in tensors:
            ffn = (weight(tensors, f"blocks.{b}.ffn.w1"), [exact_mpf(x) for x in tensors[f"blocks.{b}.ffn.b1"][1]],
                   weight(tensors, f"blocks.{b}.ffn.w2"), [exact_mpf(x) for x in tensors[f"blocks.{b}.ffn.b2"][1]])
        blocks.append((heads, ffn))
    return blocks


def forward(blocks, tokens):
    """One sequence through the model: softmax attention with residual, then ReLU FFN with residual."""
    z = [list(t) for t in tokens]
    for heads, ffn in blocks:
        if heads:
            delta = [[mpf(0)] * len(t) for t in z]
            for wq, wk, wv, wo in heads:
                q, k, v = [apply(wq, t) for t in z], [apply(wk, t) for t in z], [apply(wv, t) for t in z]
                for j in range(len(z)):
                    scores = [sum_products(k[i], q[j]) for i in range(len(z))]
                    top = max(scores)
                    e = [mpmath.exp(s - top) for s in scores]
                    total = mpf(0)
                    for x in e:
                        total += x
                    mixed = [mpf(0)] * len(v[0])
                    for i in range(len(z)):
                        p = e[i] / total
                        mixed = [a + p * c for a, c in zip(mixed, v[i])]
                    out = apply(wo, mixed)
                    delta[j] = [a + o for a, o in zip(delta[j], out)]
            z = [[a + c for a, c in zip(t, dt)] for t, dt in zip(z, delta)]
        if ffn:
            w1, b1, w2, b2 = ffn
            out = []
            for t in z:
                hidden = [max(a + c, mpf(0)) for a, c in zip(apply(w1, t), b1)]
                y = [a + c for a, c in zip(apply(w2, hidden), b2)]
                out.append([a + c for a, c in zip(t, y)])
            z = out
    return z


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    record_path, export = argv
    with open(record_path) as f:
        record = json.load(f)
    if mpmath.libmp.BACKEND != "gmpy":
        print("error: mpmath is not running on gmpy2 (pip install gmpy2)", file=sys.stderr)
        return 2

    ops = []
    for op in record["ops"]:
        bits = op["bits"]
        mp.prec = bits
        x, y = mpf(-0.7371), mpf(1) / 3
        reps = reps_for(bits)
        t_exp = timed(max((reps + 7) // 8, 1), lambda: mpmath.exp(x))
        t_mul = timed(reps * 10, lambda: y * y)
        ops.append({"bits": bits, "exp_seconds": t_exp, "mul_seconds": t_mul,
                    "exp_ratio_mpmath_over_backend": t_exp / op["exp_seconds"],
                    "mul_ratio_mpmath_over_backend": t_mul / op["mul_seconds"]})
        print(f"mpmath {bits:>8} bits: exp {t_exp:.3e} s ({t_exp / op['exp_seconds']:.1f}x the backend), "
              f"mul {t_mul:.3e} s ({t_mul / op['mul_seconds']:.1f}x)")

    forward_record = None
    mem = record.get("memorizer_forward")
    if mem:
        bits = mem["bits"]
        mp.prec = bits
        meta, tensors = read_boltz.read(os.path.join(export, "model.exact.json"))
        _, data = read_boltz.read(os.path.join(export, "dataset.safetensors"))
        n_seq, n, d = data["inputs"][0]
        inputs, targets = data["inputs"][1], data["targets"][1]
        # The same protocol as the backend's: prepare + forward + decoding, repeated, the median kept.
        runs = []
        for _ in range(mem.get("repeats", 1)):
            start = time.perf_counter()
            blocks = prepare(meta, tensors)
            decoded = 0
            for s in range(n_seq):
                seq = [[mpf(inputs[(s * n + i) * d + c]) for c in range(d)] for i in range(n)]
                out = forward(blocks, seq)
                for i in range(n):
                    target = targets[(s * n + i) * d:(s * n + i + 1) * d]
                    decoded += all(abs(o - mpf(t)) < mpf(0.5) for o, t in zip(out[i], target))
            runs.append(time.perf_counter() - start)
        seconds = sorted(runs)[len(runs) // 2]
        one_thread = next(r for r in mem["runs"] if r["threads"] == 1)
        forward_record = {"bits": bits, "seconds": seconds, "seconds_all": runs, "decoded": decoded, "tokens": n_seq * n,
                          "ratio_mpmath_over_backend_one_thread": seconds / one_thread["seconds"]}
        print(f"mpmath forward at {bits} bits: {seconds:.2f} s ({seconds / one_thread['seconds']:.1f}x the backend "
              f"on one thread), {decoded}/{n_seq * n} tokens decoded (backend: {one_thread['decoded']})")
        if decoded != one_thread["decoded"]:
            print("error: mpmath and the backend decode different numbers of tokens", file=sys.stderr)
            return 1

    record["mpmath"] = {"version": mpmath.__version__, "backend": mpmath.libmp.BACKEND,
                        "python": sys.version.split()[0], "threads": 1, "ops": ops, "memorizer_forward": forward_record}
    tmp = record_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, record_path)
    print(f"wrote {record_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
