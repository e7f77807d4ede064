#!/usr/bin/env python3
"""PyTorch (eager) timings of the shared workload table, for side-by-side ratios with the benches.

  python3 scripts/torch_compare.py --device cpu --threads 2 --out results/torch-cpu.json
  python3 scripts/torch_compare.py --device cuda --out torch.json

The shapes follow boltz_core::workloads (practical: batch 32, n 128, d 256, one head of size 64, FFN
1024; memorizer: rank-1 softmax head + FFN of width n*N with N = 10^4, n = d = 16, run on the bench batch
of 64 sequences; deep-narrow: 500 blocks of 2 hardmax heads of size 1 + width-4 FFN, batch 64, n 8,
d 4). PyTorch is an optional development dependency (pip install torch), never used by tests or CI.
FLOPs are counted as in boltz_core::workloads::flops.
"""
import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    results = {"torch": torch.__version__, "device": args.device, "threads": torch.get_num_threads(), "workloads": {}}
    g = torch.Generator().manual_seed(0)

    def rnd(*shape, dtype):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) / max(1.0, shape[-1]) ** 0.5).to(dtype=dtype, device=dev)

    def timeit(fn, flops, name):
        fn(); sync()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t)
        times.sort()
        med = times[len(times) // 2]
        results["workloads"][name] = {"median_ms": med * 1e3, "gflops": flops / med / 1e9}
        print(f"{name}: {med*1e3:.3f} ms, {flops/med/1e9:.2f} GFLOP/s")

    def time_both(fn, x, flops, name):
        """Device-resident input and output (PyTorch's usual timing), and on a GPU also from a host tensor
        to a host tensor, as boltz's Backend::forward (host batch in, host batch out) is timed."""
        timeit(lambda: fn(x), flops, name)
        if dev.type == "cuda":
            xh = x.cpu()
            timeit(lambda: fn(xh.to(dev)).cpu(), flops, name + "/with_transfers")

    for dtype, tag in [(torch.float32, "f32"), (torch.float64, "f64")]:
        b, n, d, s, q = 32, 128, 256, 64, 1024
        x = rnd(b, n, d, dtype=dtype)
        wq, wk, wv, wo = rnd(s, d, dtype=dtype), rnd(s, d, dtype=dtype), rnd(s, d, dtype=dtype), rnd(d, s, dtype=dtype)
        w1, b1, w2, b2 = rnd(q, d, dtype=dtype), rnd(q, dtype=dtype), rnd(d, q, dtype=dtype), rnd(d, dtype=dtype)

        def practical(x):
            with torch.no_grad():
                qq, kk, vv = x @ wq.T, x @ wk.T, x @ wv.T
                z = x + torch.softmax(qq @ kk.transpose(1, 2), dim=-1) @ vv @ wo.T
                return z + torch.relu(z @ w1.T + b1) @ w2.T + b2

        flops = b * (8 * n * s * d + 4 * n * n * s + 4 * n * d * q)
        time_both(practical, x, flops, f"practical/{tag}")

        b, n, d, N = 64, 16, 16, 10_000
        q = N * n
        x = rnd(b, n, d, dtype=dtype)
        v = rnd(d, dtype=dtype)
        u1, b1m, w2m = torch.ones(q, dtype=dtype, device=dev), rnd(q, dtype=dtype), rnd(d, q, dtype=dtype)

        def memorizer(x):
            with torch.no_grad():
                p = x @ v  # rank-1 projection [b, n]
                att = torch.softmax(3.0 * p.unsqueeze(2) * p.unsqueeze(1), dim=-1) @ p.unsqueeze(2)
                z = x + 0.01 * att * v
                h = torch.relu((z @ v).unsqueeze(-1) * u1 + b1m)  # [b, n, q], W1 = 1 v^T
                return z + h @ w2m.T

        flops = b * n * (2 * 4 * (1 + d) + 2 * (q + d) + 2 * d * q) + b * 4 * n * n
        time_both(memorizer, x, flops, f"memorizer/{tag}")

        b, n, d, L = 64, 8, 4, 500
        x = rnd(b, n, d, dtype=dtype)
        layers = [[rnd(1, d, dtype=dtype) for _ in range(8)] + [rnd(4, d, dtype=dtype), rnd(4, dtype=dtype), rnd(d, 4, dtype=dtype), rnd(d, dtype=dtype)] for _ in range(L)]

        def hardmax(s):
            m = s.max(dim=-1, keepdim=True).values
            w = (s == m).to(s.dtype)
            return w / w.sum(dim=-1, keepdim=True)

        def deep(x):
            with torch.no_grad():
                z = x
                for l in layers:
                    delta = 0
                    for h in range(2):
                        wq, wk, wv, wo = l[4 * h:4 * h + 4]
                        delta = delta + hardmax((z @ wq.T) @ (z @ wk.T).transpose(1, 2)) @ (z @ wv.T) @ wo
                    z = z + delta
                    z = z + torch.relu(z @ l[8].T + l[9]) @ l[10].T + l[11]
                return z

        flops = L * b * (2 * (n * 4 * 2 * d + 4 * n * n) + n * 4 * d * 4)
        time_both(deep, x, flops, f"deep-narrow/{tag}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
