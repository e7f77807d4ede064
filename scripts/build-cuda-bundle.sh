#!/usr/bin/env bash
# Builds, on a machine with a Rust toolchain, what the GPU machine runs (it has CUDA but no Rust):
# the CUDA conformance test binary, the cuda bench binary and the boltz CLI (none links OpenBLAS), plus the device
# script and the PyTorch comparison, into device-bundle/ (git-ignored). Then, with the device tool:
#   carry ["device-bundle"], command: bash device-bundle/cuda-device-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf device-bundle && mkdir -p device-bundle
test_bin=$(cargo test --release -p boltz-cuda --test conformance --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys; print([j["executable"] for j in map(json.loads, sys.stdin) if j.get("executable") and j["target"]["name"]=="conformance"][-1])')
bench_bin=$(cargo bench --bench cuda --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys; print([j["executable"] for j in map(json.loads, sys.stdin) if j.get("executable") and j["target"]["name"]=="cuda"][-1])')
# The CLI without OpenBLAS (its own target folder, so target/release/boltz keeps the default features).
cargo build --release -p boltz-cli --no-default-features --features cuda --target-dir target/no-blas
cp target/no-blas/release/boltz device-bundle/boltz
cp "$test_bin" device-bundle/cuda-conformance
cp "$bench_bin" device-bundle/cuda-bench
# Debug info is most of their size; the device tool carries at most 64 MiB.
strip device-bundle/cuda-conformance device-bundle/cuda-bench device-bundle/boltz
cp scripts/cuda-device-check.sh scripts/torch_compare.py scripts/read_boltz.py device-bundle/
# The binaries link Debian's libmpfr and libgmp (crates/bigfloat): they go along in lib/ (cuda-device-check.sh
# puts it on LD_LIBRARY_PATH), so the GPU machine needs neither.
mkdir -p device-bundle/lib
for so in libmpfr.so.6 libgmp.so.10; do
  path=$(ldd device-bundle/boltz | awk -v so="$so" '$1 == so { print $3 }')
  [ -n "$path" ] || { echo "build-cuda-bundle: device-bundle/boltz does not link $so" >&2; exit 1; }
  cp -L "$path" device-bundle/lib/
done
if ldd device-bundle/cuda-bench device-bundle/cuda-conformance device-bundle/boltz | grep -q openblas; then
  echo "build-cuda-bundle: a binary links OpenBLAS, which the GPU machine lacks" >&2
  exit 1
fi
ls -la device-bundle
