#!/usr/bin/env bash
# Side by side in one run: the cpu and blas backends (`boltz bench`) and PyTorch eager on the same
# weights and batches (`boltz export`, then scripts/torch_compare.py, which checks PyTorch's outputs against
# boltz's reference first) and thread count, written to results/backends/pytorch-cpu.json.
# PyTorch is an optional development dependency: PYTHON=/path/to/venv/bin/python with torch installed.
#   PYTHON=/opt/torch-venv/bin/python bash scripts/compare-pytorch.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
PYTHON=${PYTHON:-python3}
THREADS=${1:-2}
OUT=results/backends/pytorch-cpu.json
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "compare-pytorch: $PYTHON has no torch (pip install torch)" >&2; exit 2; }
cargo build --quiet --release -p boltz-harness --bin boltz
tmp=$(mktemp -d)
# Every workload x {cpu, blas} x {f32, f64} at the benches' batch, each in its own process (bench --all).
target/release/boltz bench --all --backend cpu,blas --precision f32,f64 --threads "$THREADS" --repeats 20 --json >"$tmp/bench.json"
target/release/boltz export --workload all "$tmp/weights"
"$PYTHON" scripts/torch_compare.py --weights "$tmp/weights" --device cpu --threads "$THREADS" --repeats 20 --out "$tmp/torch.json"
python3 - "$tmp" "$OUT" <<'PY'
import json, sys, os
tmp, out = sys.argv[1], sys.argv[2]
torch = json.load(open(os.path.join(tmp, "torch.json")))
bench = json.load(open(os.path.join(tmp, "bench.json")))
rows, meta = [], bench["meta"]
for r in bench["rows"]:
    dtype = r["precision"].lower()
    t = torch["workloads"][f"{r['workload']}/{dtype}"]
    rows.append({
        "workload": r["workload"], "backend": r["backend"], "dtype": dtype, "batch": r["batch"], "threads": r["threads"],
        "median_ms": r["median_ms"], "gflops": r["gflops"], "torch_median_ms": t["median_ms"],
        "speedup_over_torch": t["median_ms"] / r["median_ms"],
    })
json.dump({"what": "boltz backends vs PyTorch eager, same shapes and threads, one run", "meta": meta, "torch": {k: v for k, v in torch.items() if k != "workloads"}, "rows": rows}, open(out, "w"), indent=2)
for r in rows:
    print(f"{r['workload']:<12} {r['backend']:<5} {r['dtype']}: {r['median_ms']:9.2f} ms vs torch {r['torch_median_ms']:9.2f} ms -> {r['speedup_over_torch']:.2f}x")
print("wrote", out)
PY
rm -rf "$tmp"
