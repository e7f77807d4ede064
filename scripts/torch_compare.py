#!/usr/bin/env python3
"""PyTorch (eager) on the exact numbers of the shared workload table, for side-by-side ratios with the benches.

  boltz export --workload all DIR                      # the weights, bench batch and reference outputs
  python3 scripts/torch_compare.py --weights DIR --device cpu --threads 2 --out torch-cpu.json
  python3 scripts/torch_compare.py --weights DIR --device cuda --out torch.json

For every workload exported under DIR (`DIR/<workload>/model.safetensors`, `io.safetensors`, read with
scripts/read_boltz.py) the model runs in PyTorch with the same semantics as boltz's reference forward
(q = W_q z + b_q, k = W_k z, v = W_v z, scores k_i·q_j, softmax or hardmax with exact ties averaged, causal
masks, z += Σ_heads W_o mixed, then z += W2 relu(W1 z + b1) + b2; factored weights W = U Vᵀ applied as two
products). Before any timing, PyTorch's outputs are compared with boltz's exported f64 reference outputs:
a workload whose outputs differ beyond the tolerance is reported and not timed, and the exit code is 1.
FLOPs come from the export (boltz_core::workloads::flops). PyTorch is an optional development
dependency (pip install torch), never used by tests or CI.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_boltz  # noqa: E402

# |ours − reference| ≤ TOL · max(1, max |reference|): f64 must agree to rounding; f32 within its precision.
TOL = {"f64": 1e-9, "f32": 2e-3}


def within_tolerance(max_abs_diff, tol):
    """True when the largest |torch - boltz| is a finite number at most `tol`.

    NaN compares false both ways, so `diff > tol` would let a NaN output pass: the test is `diff <= tol`
    and finite (a NaN or infinite difference is a mismatch).
    """
    return math.isfinite(max_abs_diff) and max_abs_diff <= tol


def load_blocks(model_path, torch, dtype, dev, requires_grad=False):
    """A boltz model file as the block list `forward` runs (tensors as leaves with `requires_grad` when asked,
    so that PyTorch's autograd differentiates the same forward: scripts/torch_train_compare.py)."""
    meta, t = read_boltz.read(model_path)

    def leaf(name):
        shape, values = t[name]
        x = torch.tensor([float(v) for v in values], dtype=torch.float64).reshape(shape).to(dtype=dtype, device=dev)
        return x.requires_grad_(requires_grad)

    def weight(name):
        if name in t:
            return ("dense", leaf(name))
        return ("factored", leaf(name + ".u"), leaf(name + ".v"))

    def vector(name):
        return leaf(name) if name in t else None

    blocks = []
    for b in range(int(meta["blocks"])):
        block = {"attn": None, "ffn": None}
        if f"blocks.{b}.attn.kind" in meta:
            heads = []
            for h in range(int(meta[f"blocks.{b}.attn.heads"])):
                p = f"blocks.{b}.attn.{h}"
                heads.append({k: weight(f"{p}.{k}") for k in ("w_q", "w_k", "w_v", "w_o")} | {"b_q": vector(f"{p}.b_q")})
            block["attn"] = {"heads": heads, "hardmax": meta[f"blocks.{b}.attn.kind"] == "hardmax",
                             "causal": meta[f"blocks.{b}.attn.causal"] == "true"}
        if f"blocks.{b}.ffn.b1" in t:
            block["ffn"] = {k: weight(f"blocks.{b}.ffn.{k}") for k in ("w1", "w2")} | {
                k: vector(f"blocks.{b}.ffn.{k}") for k in ("b1", "b2")}
        blocks.append(block)
    return blocks


def leaves(blocks):
    """Every parameter tensor of a block list, in model order."""
    out = []
    for block in blocks:
        if block["attn"] is not None:
            for h in block["attn"]["heads"]:
                for k in ("w_q", "w_k", "w_v", "w_o"):
                    out.extend(h[k][1:])
                if h["b_q"] is not None:
                    out.append(h["b_q"])
        if block["ffn"] is not None:
            f = block["ffn"]
            out.extend(f["w1"][1:] + (f["b1"],) + f["w2"][1:] + (f["b2"],))
    return out


def load(workload_dir, torch, dtype, dev):
    blocks = load_blocks(os.path.join(workload_dir, "model.safetensors"), torch, dtype, dev)
    io_meta, io = read_boltz.read(os.path.join(workload_dir, "io.safetensors"))

    def tensor(name):
        shape, values = io[name]
        return torch.tensor([float(v) for v in values], dtype=torch.float64).reshape(shape)

    flops = float(io_meta.get("flops_per_forward", "nan"))
    return blocks, tensor("inputs"), tensor("outputs"), flops


def lin(w, x):
    """x Wᵀ over the last axis; a factored W = U Vᵀ as (x V) Uᵀ."""
    if w[0] == "dense":
        return x @ w[1].T
    return (x @ w[2]) @ w[1].T


def rows(w, sl):
    """The rows `sl` of a weight (outputs): a factored U Vᵀ keeps V and slices U."""
    return ("dense", w[1][sl]) if w[0] == "dense" else ("factored", w[1][sl], w[2])


def cols(w, sl):
    """The columns `sl` of a weight (inputs): a factored U Vᵀ keeps U and slices V."""
    return ("dense", w[1][:, sl]) if w[0] == "dense" else ("factored", w[1], w[2][sl])


def ffn(torch, f, z, chunk=None):
    """W2 relu(W1 z + b1) + b2; with `chunk`, over hidden units `chunk` at a time (the hidden activation of a
    wide FFN, the memorizer's B·n × nN, is never materialised whole: boltz's engine tiles the same way)."""
    width = f["b1"].shape[0]
    if not chunk or width <= chunk:
        return lin(f["w2"], torch.relu(lin(f["w1"], z) + f["b1"])) + f["b2"]
    out = None
    for c in range(0, width, chunk):
        sl = slice(c, min(c + chunk, width))
        part = lin(cols(f["w2"], sl), torch.relu(lin(rows(f["w1"], sl), z) + f["b1"][sl]))
        out = part if out is None else out + part
    return out + f["b2"]


def forward(torch, blocks, x, ffn_chunk=None):
    z = x
    for block in blocks:
        a = block["attn"]
        if a is not None:
            n = z.shape[1]
            delta = torch.zeros_like(z)
            for h in a["heads"]:
                q = lin(h["w_q"], z)
                if h["b_q"] is not None:
                    q = q + h["b_q"]
                k, v = lin(h["w_k"], z), lin(h["w_v"], z)
                s = q @ k.transpose(1, 2)  # s[:, j, i] = k_i · q_j
                if a["causal"]:
                    s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=z.device).triu(1), float("-inf"))
                if a["hardmax"]:
                    w = (s == s.max(dim=-1, keepdim=True).values).to(z.dtype)
                    w = w / w.sum(dim=-1, keepdim=True)
                else:
                    w = torch.softmax(s, dim=-1)
                delta = delta + lin(h["w_o"], w @ v)
            z = z + delta
        f = block["ffn"]
        if f is not None:
            z = z + ffn(torch, f, z, ffn_chunk)
    return z


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="directory written by `boltz export --workload all DIR`")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--variants", default="eager",
                    help="comma-separated: eager, chunked (the FFN over hidden tiles of --ffn-chunk units), compile "
                         "(torch.compile of the eager forward), compile+chunked; every variant is checked against "
                         "boltz's reference before it is timed, and `best` is the fastest per workload")
    ap.add_argument("--ffn-chunk", type=int, default=2048, help="hidden units per tile of the chunked variants")
    ap.add_argument("--compile-max-blocks", type=int, default=64,
                    help="skip the compile variants for models of more blocks (torch.compile unrolls the block loop: "
                         "minutes for the 500-block deep-narrow stack); skipped variants are recorded as such")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    known = {"eager", "chunked", "compile", "compile+chunked"}
    if not variants or set(variants) - known:
        sys.exit(f"torch_compare: --variants takes a list of {sorted(known)}, got {args.variants!r}")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    results = {"torch": torch.__version__, "device": args.device, "threads": torch.get_num_threads(),
               "weights": os.path.abspath(args.weights), "workloads": {}}
    mismatches = []

    def timeit(fn, flops, name):
        fn(); sync()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t)
        times.sort()
        med = times[len(times) // 2]
        results["workloads"][name] = {"median_ms": med * 1e3, "gflops": flops / med / 1e9}
        print(f"{name}: {med*1e3:.3f} ms, {flops/med/1e9:.2f} GFLOP/s")

    names = sorted(d for d in os.listdir(args.weights) if os.path.isfile(os.path.join(args.weights, d, "io.safetensors")))
    if not names:
        sys.exit(f"torch_compare: no exported workloads under {args.weights} (run `boltz export --workload all DIR`)")
    for name in names:
        for dtype, tag in [(torch.float32, "f32"), (torch.float64, "f64")]:
            blocks, x, y, flops = load(os.path.join(args.weights, name), torch, dtype, dev)
            xd = x.to(dtype=dtype, device=dev)
            with torch.no_grad():
                got = forward(torch, blocks, xd).to(dtype=torch.float64, device="cpu")
            key = f"{name}/{tag}"
            if tuple(got.shape) != tuple(y.shape):
                print(f"{key}: output shape {tuple(got.shape)} != boltz reference {tuple(y.shape)}")
                mismatches.append(key)
                results["workloads"][key] = {"matches": False, "shape": list(got.shape), "reference_shape": list(y.shape)}
                continue
            diff = (got - y).abs().max().item()
            tol = TOL[tag] * max(1.0, y.abs().max().item())
            matches = within_tolerance(diff, tol)
            check = {"max_abs_diff_vs_boltz_reference": diff if math.isfinite(diff) else None, "tolerance": tol, "matches": matches}
            print(f"{key}: max |torch − boltz reference| = {diff:.3e} (tolerance {tol:.1e})")
            if not matches:
                mismatches.append(key)
                results["workloads"][key] = check
                continue

            def run(inp):
                with torch.no_grad():
                    return forward(torch, blocks, inp)

            timeit(lambda: run(xd), flops, key)
            results["workloads"][key].update(check)
            results["workloads"][key]["variant"] = "eager"
            timed = {"eager": results["workloads"][key]["median_ms"]}
            for variant in variants:
                if variant == "eager" or dev.type == "cuda":
                    continue
                vkey = f"{key}/{variant}"
                if variant.startswith("compile") and len(blocks) > args.compile_max_blocks:
                    results["workloads"][vkey] = {"skipped": f"{len(blocks)} blocks > --compile-max-blocks {args.compile_max_blocks}"}
                    print(f"{vkey}: skipped ({len(blocks)} blocks)")
                    continue
                chunk = args.ffn_chunk if variant.endswith("chunked") else None
                widest = max((b["ffn"]["b1"].shape[0] for b in blocks if b["ffn"] is not None), default=0)
                if chunk and widest <= chunk:
                    results["workloads"][vkey] = {"skipped": f"no FFN wider than --ffn-chunk {chunk} (the same forward without chunks)"}
                    print(f"{vkey}: skipped (FFN width {widest} <= {chunk})")
                    continue
                fn = lambda inp, chunk=chunk: forward(torch, blocks, inp, chunk)  # noqa: E731
                if variant.startswith("compile"):
                    torch._dynamo.reset()
                    fn = torch.compile(fn)
                with torch.no_grad():
                    out = fn(xd).to(dtype=torch.float64, device="cpu")
                vdiff = (out - y).abs().max().item()
                if not within_tolerance(vdiff, tol):
                    print(f"{vkey}: max |torch − boltz reference| = {vdiff:.3e} beyond {tol:.1e}: not timed")
                    mismatches.append(vkey)
                    results["workloads"][vkey] = {"matches": False, "max_abs_diff_vs_boltz_reference": vdiff if math.isfinite(vdiff) else None}
                    continue

                def runv(inp, fn=fn):
                    with torch.no_grad():
                        return fn(inp)

                timeit(lambda: runv(xd), flops, vkey)
                results["workloads"][vkey].update({"matches": True, "max_abs_diff_vs_boltz_reference": vdiff, "variant": variant})
                timed[variant] = results["workloads"][vkey]["median_ms"]
            best = min(timed, key=timed.get)
            results["workloads"][key]["best_variant"] = best
            results["workloads"][key]["best_median_ms"] = timed[best]
            if dev.type == "cuda":
                # Like boltz's Backend::forward: a host batch in, a host batch out.
                xh = xd.cpu()
                timeit(lambda: run(xh.to(dev)).cpu(), flops, key + "/with_transfers")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    if mismatches:
        print(f"torch_compare: outputs differ from boltz's reference beyond tolerance: {', '.join(mismatches)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
