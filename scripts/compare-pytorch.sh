#!/usr/bin/env bash
# Side by side in one run: the cpu and blas backends (`boltz bench --all`) and PyTorch on the same weights,
# batches and thread count (`boltz export`, then scripts/torch_compare.py, which checks every PyTorch variant's
# outputs against boltz's reference before timing it): eager, the FFN in hidden tiles (`chunked`),
# torch.compile, and compile + chunked. ROUNDS (default 3) rounds interleave the two sides (boltz, torch,
# boltz, torch, ...); each cell is the median of the rounds' medians, with the rounds' range. The file records
# the CPU model and ISA, the machine's measured FMA peak and triad bandwidth (in every bench row), and the
# library versions on both sides; it is written to results/backends/<cpu>/pytorch-cpu.json, <cpu> naming the
# CPU model, family and model number (machines of one kind differ: never compare across files).
# PyTorch is an optional development dependency: PYTHON=/path/to/venv/bin/python with torch installed.
#   PYTHON=/opt/torch-venv/bin/python [ROUNDS=3] [REPEATS=20] bash scripts/compare-pytorch.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
PYTHON=${PYTHON:-python3}
THREADS=${1:-2}
ROUNDS=${ROUNDS:-3}
REPEATS=${REPEATS:-20}
VARIANTS=${VARIANTS:-eager,chunked,compile,compile+chunked}
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "compare-pytorch: $PYTHON has no torch (pip install torch)" >&2; exit 2; }
[ "$ROUNDS" -ge 1 ] 2>/dev/null || { echo "compare-pytorch: ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }
[ "$REPEATS" -ge 1 ] 2>/dev/null || { echo "compare-pytorch: REPEATS must be a positive integer, got '$REPEATS'" >&2; exit 2; }
slug=$(python3 - <<'PY'
import re
info = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
def field(name):
    m = re.search(rf"^{name}\s*:\s*(.*)$", info, re.M)
    return m.group(1).strip() if m else ""
model = re.sub(r"[^a-z0-9]+", "-", (field("model name") or __import__("platform").machine()).lower()).strip("-")
fam, mod = field("cpu family"), field("model")
print(f"{model}-f{fam}m{mod}" if fam and mod else model)
PY
)
OUT=${OUT:-results/backends/$slug/pytorch-cpu.json}
mkdir -p "$(dirname "$OUT")"
cargo build --quiet --release -p boltz-cli --bin boltz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target/release/boltz export --workload all "$tmp/weights" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS: boltz"
  # Every workload x {cpu, blas} x {f32, f64} at the benches' batch, each in its own process (bench --all).
  target/release/boltz bench --all --backend cpu,blas --precision f32,f64 --threads "$THREADS" --repeats "$REPEATS" --json >"$tmp/bench.$r.json"
  echo "== round $r of $ROUNDS: PyTorch ($VARIANTS)"
  "$PYTHON" scripts/torch_compare.py --weights "$tmp/weights" --device cpu --threads "$THREADS" --repeats "$REPEATS" \
    --variants "$VARIANTS" --out "$tmp/torch.$r.json"
done
"$PYTHON" - "$tmp" "$OUT" "$ROUNDS" "$REPEATS" <<'PY'
import json, os, platform, statistics, sys
tmp, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
bench = [json.load(open(os.path.join(tmp, f"bench.{r}.json"))) for r in range(1, rounds + 1)]
torch_runs = [json.load(open(os.path.join(tmp, f"torch.{r}.json"))) for r in range(1, rounds + 1)]
try:
    import torch
    torch_config = torch.__config__.show()
    torch_info = {"version": torch.__version__, "config": torch_config, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
except Exception as e:  # the versions are informative; the numbers stand without them
    torch_info = {"error": str(e)}
med = lambda xs: statistics.median(xs)
rows = []
for i, r in enumerate(bench[0]["rows"]):
    dtype = r["precision"].lower()
    key = f"{r['workload']}/{dtype}"
    ours = [b["rows"][i]["median_ms"] for b in bench]
    assert all(b["rows"][i]["workload"] == r["workload"] and b["rows"][i]["backend"] == r["backend"] for b in bench)
    row = {
        "workload": r["workload"], "backend": r["backend"], "dtype": dtype, "batch": r["batch"], "threads": r["threads"],
        "median_ms": med(ours), "rounds_ms": ours, "gflops": r["flops_per_forward"] / med(ours) / 1e6,
        "ceiling": r.get("ceiling"),
        "percent_of_peak": med([b["rows"][i].get("percent_of_peak") or float("nan") for b in bench]),
    }
    for variant in ["eager", "chunked", "compile", "compile+chunked"]:
        name = key if variant == "eager" else f"{key}/{variant}"
        times = [t["workloads"].get(name, {}).get("median_ms") for t in torch_runs]
        if all(isinstance(x, (int, float)) for x in times):
            row[f"torch_{variant}_ms"] = med(times)
            row[f"torch_{variant}_rounds_ms"] = times
            row[f"speedup_over_torch_{variant}"] = med(times) / row["median_ms"]
        else:
            skipped = [t["workloads"].get(name, {}).get("skipped") for t in torch_runs]
            row[f"torch_{variant}_ms"] = None
            if any(skipped):
                row[f"torch_{variant}_skipped"] = next(s for s in skipped if s)
    timed = {v: row[f"torch_{v}_ms"] for v in ["eager", "chunked", "compile", "compile+chunked"] if row.get(f"torch_{v}_ms")}
    best = min(timed, key=timed.get)
    row["torch_best_variant"], row["torch_best_ms"] = best, timed[best]
    row["speedup_over_torch_best"] = timed[best] / row["median_ms"]
    rows.append(row)
doc = {
    "what": f"boltz backends vs PyTorch (eager, chunked FFN, torch.compile, compile + chunked FFN) on the same weights, shapes and threads; {rounds} interleaved rounds, each cell the median of the rounds' medians (of {sys.argv[4]} forwards each)",
    "meta": bench[0]["meta"],
    "cpu_flags_isa": sorted({r["ceiling"]["isa"] for r in bench[0]["rows"] if r.get("ceiling")}),
    "torch": torch_info | {k: v for k, v in torch_runs[0].items() if k not in ("workloads", "weights")},
    "python": platform.python_version(),
    "rows": rows,
}
json.dump(doc, open(out, "w"), indent=2)
print("median of the rounds (ms); ratio = torch / boltz (> 1: boltz faster)")
for r in rows:
    pk = f"{r['percent_of_peak']:.0f}% pk" if r["percent_of_peak"] == r["percent_of_peak"] else ""
    comp = f"compile {r['torch_compile_ms']:.2f} ({r['speedup_over_torch_compile']:.2f}x)" if r.get("torch_compile_ms") else "compile -"
    print(f"{r['workload']:<12} {r['backend']:<5} {r['dtype']}: {r['median_ms']:8.2f} ms {pk:>7} | eager {r['torch_eager_ms']:8.2f} ({r['speedup_over_torch_eager']:.2f}x) | {comp} | best {r['torch_best_variant']} {r['torch_best_ms']:.2f} ({r['speedup_over_torch_best']:.2f}x)")
print("wrote", out)
PY
