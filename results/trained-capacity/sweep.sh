#!/usr/bin/env bash
# The trained-capacity sweep of results/README.md (issue #19): one `boltz train --capacity-max` per FFN width.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p boltz-cli --bin boltz
for w in 32 64 128 256 512; do
  ./target/release/boltz train --capacity-max 512 --init-seeds 1,2 --sequences 1 --length 8 --dim 4 --vocab 16 --rank 1 \
    --ffn-width "$w" --steps 8000 --lr 0.01 --threads 2 --seed 2024 --out "results/trained-capacity/width-$w.json"
done
