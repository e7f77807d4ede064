#!/usr/bin/env bash
# Installs the system packages boltzformer needs, only where they are missing.
# Debian/Ubuntu: apt-get. Elsewhere: prints what to install and fails.
#   bash scripts/setup.sh          what the build, the tests and the main job need
#   bash scripts/setup.sh --gate   also valgrind, for the instruction-count gate (scripts/bench-gate.sh)
set -euo pipefail

# Debian package -> a file it provides (checked before installing).
declare -A NEEDED=(
  [pkg-config]=/usr/bin/pkg-config
  [python3]=/usr/bin/python3
  # OpenBLAS (cblas + Fortran LAPACK symbols) for crates/blas; provides openblas.pc.
  [libopenblas-dev]=/usr/lib/x86_64-linux-gnu/pkgconfig/openblas.pc
  # GMP and MPFR for crates/bigfloat (rug, linked to the system libraries: gmp-mpfr-sys's use-system-libs).
  [libgmp-dev]=/usr/include/x86_64-linux-gnu/gmp.h
  [libmpfr-dev]=/usr/include/mpfr.h
)
if [ "${1:-}" = "--gate" ]; then
  # Instruction-count regression gate (benches/gate.rs runs under callgrind).
  NEEDED[valgrind]=/usr/bin/valgrind
fi
# A virtual environment with pip: the Python package's tests (scripts/test-python.sh: maturin, numpy and
# pytest from PyPI) and NVRTC from PyPI (scripts/nvrtc-check.sh). Debian ships ensurepip, which venv needs,
# only in pythonX.Y-venv.
# The system python3 needs the file below; another interpreter first on PATH (pyenv, conda) needs only to
# import ensurepip.
py_minor=$(python3 -c 'import sys; print(sys.version_info.minor)' 2>/dev/null || echo none)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 \
  || { [ "$(command -v python3)" = /usr/bin/python3 ] && [ ! -e "/usr/lib/python3.$py_minor/ensurepip/__main__.py" ]; }; then
  NEEDED[python3-venv]=/usr/lib/python3.$py_minor/ensurepip/__main__.py
fi

missing=()
for pkg in "${!NEEDED[@]}"; do
  [ -e "${NEEDED[$pkg]}" ] || missing+=("$pkg")
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
  exit 2
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
else
  echo "setup: please install these packages with your system's package manager: ${missing[*]}" >&2
  exit 2
fi
