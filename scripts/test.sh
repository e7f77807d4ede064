#!/usr/bin/env bash
# The project's test command (README): installs missing system packages, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
cargo test --workspace --all-targets "$@"
