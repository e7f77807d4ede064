#!/usr/bin/env bash
# The Python package's tests (part of the README's test command, scripts/test.sh): builds the wheel
# (scripts/build-wheel.sh), installs it into a fresh virtual environment as a user would, and runs the pytest
# suite against the installed package (never the source tree) and the `boltz` CLI built by the Rust tests
# (BOLTZ_BIN; BOLTZ_REQUIRE_CLI=1 turns a missing CLI into a failure, never a skip). Every optional
# dependency is installed from PyPI (numpy, pytest, mpmath, mypy, torch, safetensors, tqdm, matplotlib and
# jupytext/nbclient/ipykernel for the tutorial; torch's wheel brings its CUDA libraries, about 5 GB in the
# throwaway venv, a couple of minutes), and BOLTZ_REQUIRE_EXTRAS=1 makes a missing one a failure, so the
# PyTorch round trips and the tutorial notebook (docs/tutorial.py, executed by scripts/tutorial.py) always
# run here. Before pytest, mypy --strict checks the installed package's types, the README's example and the
# tutorial. Prints the wheel install's seconds and installed size.
set -euo pipefail
cd "$(dirname "$0")/.."
wheel=$(bash scripts/build-wheel.sh | tail -n 1)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check numpy pytest mpmath "mypy>=1.10" torch safetensors tqdm \
  matplotlib jupytext nbclient nbformat ipykernel
start=$(date +%s.%N)
"$py" -m pip install --quiet --disable-pip-version-check --no-deps "$wheel"
end=$(date +%s.%N)
site=$("$py" -c 'import boltzformer, os; print(os.path.dirname(boltzformer.__file__))')
case "$site" in
  "$work"/venv/*) ;;
  *) echo "test-python: boltzformer imports from $site, not from the installed wheel" >&2; exit 1 ;;
esac
echo "test-python: wheel installed in $(python3 -c "print(f'{$end - $start:.1f}')") s, $(du -ck "$site" "$site".libs 2>/dev/null | tail -n 1 | cut -f1) KiB installed" >&2
# The typed API: the installed package (its py.typed, inline hints and _native.pyi), the README's example and
# the tutorial under `mypy --strict` (python/pyproject.toml).
sed -n '/^## From Python/,/^## Layout/p' README.md | sed -n '/^```python$/,/^```$/p' | sed '1d;$d' > "$work/readme_example.py"
[ -s "$work/readme_example.py" ] || { echo "test-python: no Python example in the README's From Python section" >&2; exit 1; }
repo="$PWD"
(cd "$work" && "$py" -m mypy --config-file "$repo/python/pyproject.toml" --no-incremental -p boltzformer \
  && "$py" -m mypy --config-file "$repo/python/pyproject.toml" --no-incremental readme_example.py "$repo/docs/tutorial.py")
# CITATION.cff against the Citation File Format's schema (cffconvert in a venv of its own: it pins an old
# jsonschema).
python3 -m venv "$work/cff"
"$work/cff/bin/python" -m pip install --quiet --disable-pip-version-check cffconvert
"$work/cff/bin/cffconvert" --validate -i CITATION.cff
cargo build --quiet -p boltz-cli --bin boltz
BOLTZ_BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/boltz" BOLTZ_REQUIRE_CLI=1 BOLTZ_REQUIRE_EXTRAS=1 MPLBACKEND=Agg \
  "$py" -m pytest python/tests -q -p no:cacheprovider
