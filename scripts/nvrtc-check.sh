#!/usr/bin/env bash
# Compiles the CUDA kernels with NVRTC on a machine without a GPU: installs NVRTC (CUDA 13) from PyPI into
# target/nvrtc-venv (once; ~140 MB) and runs the one test that needs only NVRTC, with a skip turned into a
# failure. Catches kernel source that NVRTC rejects before it reaches a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv=target/nvrtc-venv
if ! compgen -G "$venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13" >/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "nvidia-cuda-nvrtc>=13,<14"
fi
lib=$(cd "$(dirname "$(compgen -G "$venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13" | head -1)")" && pwd)
LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" BOLTZ_REQUIRE_NVRTC=1 \
  cargo test -p boltz-cuda --test conformance kernels_compile_with_nvrtc
