#!/usr/bin/env bash
# The Python package's tests (part of the README's test command, scripts/test.sh): builds `boltzformer`
# (python/, maturin + pyo3 + numpy) into a throwaway virtual environment and runs its pytest suite against
# the `boltz` CLI built by the Rust tests (BOLTZ_BIN; BOLTZ_REQUIRE_CLI=1 turns a missing CLI into a
# failure, never a skip). maturin, numpy, pytest and mpmath come from PyPI; torch is not installed, so the
# torch tests skip (with torch in the venv they run: `PYTHON_EXTRA=torch bash scripts/test-python.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
# shellcheck disable=SC2086
"$py" -m pip install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" numpy pytest mpmath ${PYTHON_EXTRA:-}
# A debug build in the workspace's target directory (the Rust tests' dependencies are reused).
(cd python && VIRTUAL_ENV="$work/venv" PATH="$work/venv/bin:$PATH" "$work/venv/bin/maturin" develop --quiet)
cargo build --quiet -p boltz-cli --bin boltz
BOLTZ_BIN="$PWD/target/debug/boltz" BOLTZ_REQUIRE_CLI=1 "$py" -m pytest python/tests -q -p no:cacheprovider
