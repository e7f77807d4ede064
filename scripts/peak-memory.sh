#!/usr/bin/env bash
# Peak memory of one forward of each workload of the shared table on the cpu and blas backends, f32 and
# f64, 2 threads, at the criterion benches' batch sizes: `boltz bench --all --json`, which runs every
# combination in a process of its own and records that process's peak resident set (`peak_rss_bytes`,
# Linux VmHWM: the binary, OpenBLAS, the model and the batch included — compare rows, not absolutes).
# Writes results/backends/peak-memory.json (the run's metadata once, one row per combination).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
cargo build --quiet --release -p boltz-cli --bin boltz
OUT=results/backends/peak-memory.json
target/release/boltz bench --all --backend cpu,blas --precision f32,f64 --threads 2 --repeats 1 --json >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
python3 - "$OUT" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc["rows"]:
    print(f"{r['workload']:<12} {r['backend']:<5} {r['precision']} batch={r['batch']}: peak RSS {r['peak_rss_bytes'] >> 20} MiB")
PY
echo "wrote $OUT"
