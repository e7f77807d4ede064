#!/usr/bin/env bash
# The deterministic performance gate: instruction counts of benches/gate.rs under callgrind (gungraun),
# compared with results/bench-baselines/gate.json (fails on a rise of more than 3 %).
#
#   bash scripts/bench-gate.sh              run the gate and compare
#   bash scripts/bench-gate.sh --update     refresh the committed baseline (commit it on its own)
#   bash scripts/bench-gate.sh --self-test  prove the gate fails: build a deliberately slowed engine
#                                           (feature gate-slowdown) and expect the comparison to fail
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --gate
BASELINE=results/bench-baselines/gate.json
GUNGRAUN=0.20.0   # must equal the gungraun library version pinned in Cargo.toml
if [ "$(gungraun-runner --version 2>/dev/null | awk '{print $2}')" != "$GUNGRAUN" ]; then
  echo "== installing gungraun-runner $GUNGRAUN (about 2.5 minutes, once per machine)"
  cargo install --locked --quiet gungraun-runner --version "$GUNGRAUN"
fi

run_gate() {  # args: extra cargo args, then -- and gungraun filter args
  rm -rf target/gungraun/boltzformer/gate
  cargo bench --quiet --bench gate "$@" --save-summary=json >target/bench-gate.log 2>&1 || {
    cat target/bench-gate.log
    echo "bench-gate: the gate benchmarks did not run" >&2
    exit 2
  }
}

case "${1:-}" in
  --update)
    run_gate --
    python3 scripts/bench_gate.py update "$BASELINE"
    ;;
  --self-test)
    run_gate --features gate-slowdown -- '*forward_cpu*'
    status=0
    python3 scripts/bench_gate.py check "$BASELINE" --only-present || status=$?
    if [ "$status" -ne 1 ]; then
      echo "bench-gate self-test: FAILED — the deliberately slowed engine was not reported as a regression (exit $status)" >&2
      exit 1
    fi
    echo "bench-gate self-test: ok — the slowed engine was rejected"
    ;;
  "")
    run_gate --
    python3 scripts/bench_gate.py check "$BASELINE"
    ;;
  *)
    echo "usage: bash scripts/bench-gate.sh [--update | --self-test]" >&2
    exit 2
    ;;
esac
