#!/usr/bin/env bash
# Runs on the GPU machine from the bundle that scripts/build-cuda-bundle.sh prepared:
#   1. nvidia-smi and the NVRTC / cuBLAS libraries found;
#   2. the conformance suite with BOLTZ_REQUIRE_BACKEND=cuda (a skip is a failure here);
#   3. the CUDA benches on the shared workload table, then the same shapes in PyTorch on that GPU;
#   4. everything as files under $OUT (JSON where machine-readable).
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-./out}
mkdir -p "$OUT"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi || echo "nvidia-smi failed"
  echo "--- libraries"
  ldconfig -p | grep -E "libcuda\.so|libnvrtc\.so|libcublas\.so" || echo "(none in ldconfig)"
  find / -name 'libnvrtc.so*' -o -name 'libcublas.so*' 2>/dev/null | head -20
} >"$OUT/device.txt" 2>&1
# cudarc (cuda-13000) looks for libnvrtc.so / .so.13 and libcublas.so / .so.13: add their folders.
for lib in libnvrtc.so libcublas.so; do
  dir=$(find / -name "$lib*" -printf '%h\n' 2>/dev/null | head -1)
  [ -n "$dir" ] && export LD_LIBRARY_PATH="$dir:${LD_LIBRARY_PATH:-}"
done
# GMP and MPFR (the arbitrary-precision backend) travel in the bundle's lib/, in case the machine lacks them.
[ -d lib ] && export LD_LIBRARY_PATH="$PWD/lib:${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >>"$OUT/device.txt"
BOLTZ_REQUIRE_BACKEND=cuda ./cuda-conformance --test-threads=1 >"$OUT/conformance.txt" 2>&1
echo "{\"conformance_exit\": $?}" >"$OUT/conformance.json"
BOLTZ_REQUIRE_BACKEND=cuda ./cuda-bench --bench --warm-up-time 1 --measurement-time 3 >"$OUT/bench.txt" 2>&1
echo "{\"bench_exit\": $?}" >"$OUT/bench.json"
[ -d target/criterion ] && cp -r target/criterion "$OUT/criterion"
# PyTorch on the exact weights and batches the benches run (exported by the bundle's boltz; outputs checked
# against boltz's reference before timing). Kept out of $OUT: the memorizer's weights are 23 MB.
weights=$(mktemp -d)
./boltz export --workload all "$weights" >"$OUT/export.txt" 2>&1
python3 torch_compare.py --weights "$weights" --device cuda --out "$OUT/torch.json" >"$OUT/torch.txt" 2>&1
echo "torch_compare exit $?" >>"$OUT/torch.txt"
# The CLI on the GPU: the one-layer memorizer built here and run on cuda and on the CPU backend (same model,
# same data: the accuracies must agree), and `boltz bench` on the full memorizer batch (N = 10^4).
if [ -x ./boltz ]; then
  {
    ./boltz --version
    for p in f64 f32; do
      for b in cuda cpu; do
        ./boltz memorize --sequences 1000 --length 8 --dim 4 --vocab 16 --no-bisect --backend $b --precision $p \
          --out "$OUT/memorize-n1000-$b-$p.json"
        echo "memorize $b $p exit $?"
      done
    done
    ./boltz bench --workload memorizer --backend cuda --precision f64 --repeats 5 --json >"$OUT/bench-memorizer-full-cuda-f64.json"
    ./boltz bench --workload memorizer --backend cpu --precision f64 --repeats 1 --json >"$OUT/bench-memorizer-full-cpu-f64.json"
    ./boltz bench --workload practical --backend cuda --precision f32 --repeats 20 --json >"$OUT/bench-practical-cuda-f32.json"
    echo "bench exit $?"
  } >"$OUT/cli.txt" 2>&1
fi
# Side by side, from this one run: criterion's median per workload/dtype against PyTorch eager's median.
python3 - "$OUT" <<'PY' >"$OUT/summary.txt" 2>&1
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = {}
for est in pathlib.Path("target/criterion").glob("forward/*/*/new/estimates.json"):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    name = bench["function_id"].split("/", 1)[1]           # e.g. practical
    dtype = bench["value_str"].split(",")[0]                # e.g. f32
    rows[f"{name}/{dtype}"] = {"boltz_cuda_median_ms": json.loads(est.read_text())["median"]["point_estimate"] / 1e6,
                               "boltz_cuda_id": f'{bench["function_id"]}/{bench["value_str"]}'}
try:
    torch = json.loads((out / "torch.json").read_text())
    for key, t in torch["workloads"].items():
        if key.endswith("/with_transfers"):
            rows.setdefault(key.rsplit("/", 1)[0], {})["torch_eager_with_transfers_median_ms"] = t["median_ms"]
            continue
        r = rows.setdefault(key, {})
        r["torch_matches_boltz_reference"] = t.get("matches")
        r["torch_max_abs_diff"] = t.get("max_abs_diff_vs_boltz_reference")
        if "median_ms" in t:
            r["torch_eager_median_ms"] = t["median_ms"]
except (OSError, ValueError, KeyError) as e:
    torch = {"error": str(e)}
for key, r in rows.items():
    if "boltz_cuda_median_ms" in r and "torch_eager_median_ms" in r:
        r["speedup_vs_torch"] = r["torch_eager_median_ms"] / r["boltz_cuda_median_ms"]
    if "boltz_cuda_median_ms" in r and "torch_eager_with_transfers_median_ms" in r:
        # Like for like: boltz's forward takes a host batch and returns one (upload, download, output check).
        r["speedup_vs_torch_with_transfers"] = r["torch_eager_with_transfers_median_ms"] / r["boltz_cuda_median_ms"]
summary = {"torch": torch.get("torch"), "workloads": dict(sorted(rows.items()))}
(out / "cuda-vs-torch.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
PY
cat "$OUT/device.txt" | head -20; cat "$OUT/summary.txt"; grep -E "exit|accuracy|memoriz" "$OUT/cli.txt" | head -20; tail -5 "$OUT/conformance.txt"; grep -E "time:|thrpt:|forward/" "$OUT/bench.txt" | head -40; tail -10 "$OUT/torch.txt"
