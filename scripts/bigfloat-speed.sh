#!/usr/bin/env bash
# Re-measures results/bigfloat/speed.json: the arbitrary-precision backend (crates/bigfloat, MPFR) and mpmath
# (on gmpy2/GMP, from PyPI, in a throwaway venv under target/) side by side, on this machine, in one run:
#   * exp and mul at 1 024 … 1 048 576 bits (the same repetitions on both sides);
#   * one forward of the Measured-policy memorizer (N = 30, n = 8, d = 4, |V| = 16), exported by
#     `boltz memorize --export`, at 2 505 bits: the backend on 1 thread and all cores, mpmath as a plain loop;
#     both sides must decode the same tokens;
#   * the memorizer-shaped forward of the Rust example at 1 024 … 65 536 bits.
#   bash scripts/bigfloat-speed.sh [OUT.json] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/bigfloat/speed.json}
quick=()
[ "${2:-}" = "--quick" ] || [ "${1:-}" = "--quick" ] && quick=(--quick)
[ "$out" = "--quick" ] && out=results/bigfloat/speed.json
bash scripts/setup.sh
venv=target/bigfloat-speed-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "mpmath==1.4.1" "gmpy2==2.3.2"
fi
cargo build --release -q -p boltz-cli --bin boltz
cargo build --release -q -p boltz-bigfloat --example speed
export_dir=$(mktemp -d)
trap 'rm -rf "$export_dir"' EXIT
target/release/boltz memorize --sequences 30 --length 8 --dim 4 --vocab 16 --policy measured --no-bisect \
  --export "$export_dir/memorizer" > /dev/null
target/release/examples/speed "$out" "${quick[@]}" --memorizer "$export_dir/memorizer" --bits 2505
"$venv/bin/python" scripts/bigfloat_speed_mpmath.py "$out" "$export_dir/memorizer"
