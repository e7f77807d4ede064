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
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >>"$OUT/device.txt"
BOLTZ_REQUIRE_BACKEND=cuda ./cuda-conformance --test-threads=1 >"$OUT/conformance.txt" 2>&1
echo "{\"conformance_exit\": $?}" >"$OUT/conformance.json"
BOLTZ_REQUIRE_BACKEND=cuda ./cuda-bench --bench --warm-up-time 1 --measurement-time 3 >"$OUT/bench.txt" 2>&1
echo "{\"bench_exit\": $?}" >"$OUT/bench.json"
[ -d target/criterion ] && cp -r target/criterion "$OUT/criterion"
python3 torch_compare.py --device cuda --out "$OUT/torch.json" >"$OUT/torch.txt" 2>&1
cat "$OUT/device.txt" | head -20; tail -5 "$OUT/conformance.txt"; grep -E "time:|thrpt:|forward/" "$OUT/bench.txt" | head -40; tail -10 "$OUT/torch.txt"
