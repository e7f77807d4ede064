#!/usr/bin/env bash
# Wall-clock tracking: a short criterion run of the workload table (cpu and blas benches), whose ratios
# (each backend vs the reference path; Yun vs one-layer build) are compared with
# results/bench-baselines/ratios.json under generous bounds.
#
#   bash scripts/bench-track.sh            short run + check (what CI does)
#   bash scripts/bench-track.sh --record   short run + check + append to results/bench-history.jsonl
#                                          and redraw its chart (commit both with performance changes)
#   bash scripts/bench-track.sh --update   short run + write the ratio baseline (commit it on its own)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
rm -rf target/criterion
cargo bench --quiet --bench cpu --bench blas -- --warm-up-time 1 --measurement-time 1 --noplot >target/bench-track.log 2>&1 || {
  cat target/bench-track.log
  exit 2
}
case "${1:-}" in
  --update) python3 scripts/bench_track.py update ;;
  --record)
    python3 scripts/bench_track.py check --append
    cargo run --quiet --release -p boltz-cli --bin boltz -- plot-history results/bench-history.jsonl --out results
    ;;
  "") python3 scripts/bench_track.py check ;;
  *) echo "usage: bash scripts/bench-track.sh [--record | --update]" >&2; exit 2 ;;
esac
