#!/usr/bin/env bash
# The project's main job (README): installs missing system packages, then runs the built-in demo,
# writing results/demo/. (The boltz harness's chart reproduction replaces this when it lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo run --release --example demo -- "${1:-results/demo}"
