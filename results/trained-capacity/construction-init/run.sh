#!/usr/bin/env bash
# Item 5 of issue #19: fine-tuning from the construction. The one-layer memorizer (fewest-bits policy) is built on
# the data, its weights rounded to f32, and Adam fine-tunes it in f32 (the curve's first point is the rounded
# construction's accuracy). N = 300 needs 28 bits (results/reproduce), more than f32's 24.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --release -q -p boltz-cli --bin boltz
out=results/trained-capacity/construction-init
for n in 30 100 300; do
  for lr in 1e-4 1e-6; do
    ./target/release/boltz train --init-construction fewest-bits --sequences "$n" --length 8 --dim 4 --vocab 16 \
      --precision f32 --steps 500 --lr "$lr" --seed 2024 --threads 1 --out "$out/n$n-lr$lr.json"
  done
done
