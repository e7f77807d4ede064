#!/usr/bin/env bash
# The project's test command (README): installs missing system packages, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/openblas-env.sh
. scripts/openblas-env.sh
bash scripts/setup.sh
cargo test --workspace --all-targets "$@"
# The standard-library Python reader (scripts/read_boltz.py): valid files, every malformed variant, the CLI.
python3 -m unittest discover -s scripts/tests
# The Python package (python/): built into a throwaway venv, its pytest suite against the CLI.
bash scripts/test-python.sh
