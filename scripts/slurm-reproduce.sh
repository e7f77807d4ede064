#!/usr/bin/env bash
# Example: spread `boltz reproduce` over a Slurm job array, then merge and plot.
#
#   sbatch --array=0-7 scripts/slurm-reproduce.sh            # 8 shards, one per array task
#   boltz merge results/cluster && boltz plot results/cluster   # once all tasks have finished
#
# Every shard runs the points whose index ≡ i (mod k) of the same configuration and writes
# <experiment>.shard-i-of-k.json; `boltz merge` refuses to mix shards of different configurations.
#SBATCH --job-name=boltz-reproduce
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
set -euo pipefail
: "${SLURM_ARRAY_TASK_ID:?run this through sbatch --array}"
: "${SLURM_ARRAY_TASK_COUNT:?run this through sbatch --array}"
OUT=${OUT:-results/cluster}
CONFIG=${CONFIG:-}
args=(reproduce --out "$OUT" --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}")
[ -n "$CONFIG" ] && args+=(--config "$CONFIG")
exec "${BOLTZ:-target/release/boltz}" "${args[@]}"
