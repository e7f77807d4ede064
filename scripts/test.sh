#!/usr/bin/env bash
# The project's test command (README): installs missing system packages, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --all-targets "$@"
