#!/usr/bin/env bash
# The project's main job (README): installs missing system packages, builds the `boltz` CLI and runs the
# experiment suite on the embedded default configuration, writing JSON, CSV and charts to results/latest/
# (git-ignored), and ends by comparing every exact field with the committed results/reproduce/
# ("reproduced K of K exact fields"; exit 1 when one differs). Extra arguments go to `boltz reproduce`
# (e.g. --quick, --config FILE, --shard i/k; maintainers regenerate the committed results with
# --out results/reproduce).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
cargo run --release -p boltz-cli --bin boltz -- reproduce "$@"
