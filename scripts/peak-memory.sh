#!/usr/bin/env bash
# Peak memory (maximum resident set size, from /usr/bin/time -v) of one forward of each workload of the
# shared table on each CPU backend, f32 and f64, 2 threads, at the criterion benches' batch sizes.
# Writes results/backends/peak-memory.json. The process's baseline (binary, OpenBLAS, the model itself)
# is included: compare rows, or subtract the empty-model row.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
cargo build --quiet --release -p boltz-harness --bin boltz
OUT=results/backends/peak-memory.json
rows=()
for w in practical:32 memorizer:64 deep-narrow:64; do
  name=${w%%:*}; batch=${w##*:}
  for be in reference cpu blas; do
    for p in f32 f64; do
      [ "$be" = reference ] && [ "$name" = memorizer ] && continue   # the scalar path: minutes per forward
      kib=$( { /usr/bin/time -v target/release/boltz bench --workload "$name" --batch "$batch" --backend "$be" --precision "$p" --threads 2 --repeats 1 >/dev/null; } 2>&1 \
        | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}')
      echo "$name $be $p batch=$batch: peak RSS $((kib / 1024)) MiB"
      rows+=("{\"workload\": \"$name\", \"backend\": \"$be\", \"dtype\": \"$p\", \"batch\": $batch, \"threads\": 2, \"peak_rss_kib\": $kib}")
    done
  done
done
{
  echo "{\"what\": \"peak RSS of one boltz bench process (build + one warm-up + one timed forward)\","
  echo " \"machine\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"git_rev\": \"$(git rev-parse --short HEAD)\","
  echo " \"rows\": ["
  (IFS=$'\n'; echo "${rows[*]}" | sed '$!s/$/,/')
  echo "]}"
} >"$OUT"
python3 -m json.tool "$OUT" >/dev/null
echo "wrote $OUT"
