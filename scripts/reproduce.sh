#!/usr/bin/env bash
# The project's main job (README): installs missing system packages, builds the `boltz` CLI and runs the
# experiment suite on the embedded default configuration, writing JSON, CSV and charts to results/reproduce/.
# Extra arguments go to `boltz reproduce` (e.g. --quick, --config FILE, --out DIR, --shard i/k).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
# results/reproduce/ unless the arguments name another --out.
out=(--out results/reproduce)
for arg in "$@"; do
  case "$arg" in --out | --out=*) out=() ;; esac
done
cargo run --release -p boltz-cli --bin boltz -- reproduce "${out[@]}" "$@"
