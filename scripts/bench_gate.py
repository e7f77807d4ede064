#!/usr/bin/env python3
"""Compares the instruction counts of the gungraun gate (benches/gate.rs) with a committed baseline.

  bench_gate.py check  BASELINE [--threshold PCT] [--only-present]   exit 1 on a rise above PCT (default 3),
                                                                      2 when counts are missing
  bench_gate.py update BASELINE                                       write the current counts as the baseline

Counts are read from target/gungraun/**/summary.json (written by `cargo bench --bench gate --
--save-summary=json`). Instruction counts (callgrind's Ir) are deterministic for a given binary, CPU
kind and toolchain, so a small threshold does not flake; a change of toolchain or machine kind needs a
deliberate refresh (scripts/bench-gate.sh --update, committed on its own).
"""
import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

from benchlib import ROOT, cpu_model, git
from benchlib import fail as _fail

SUMMARIES = ROOT / "target" / "gungraun" / "boltzformer" / "gate"


def fail(message):
    """Missing or unreadable data: exit 2 (a regression exits 1)."""
    _fail("bench_gate", message)


def bench_key(summary):
    return f"{summary['module_path']} {summary['id']}:{summary.get('description') or ''}"


def collect():
    counts = {}
    for path in sorted(SUMMARIES.glob("**/summary.json")):
        s = json.loads(path.read_text())
        ir = None
        # One part per thread of the benchmark process: the gate counts them all.
        for profile in s.get("profiles", []):
            for part in profile.get("data", {}).get("parts", []):
                metric = part.get("metrics", {}).get("Ir")
                if metric is not None:
                    ir = (ir or 0) + metric["values"]["new"]
        if ir is None:
            fail(f"no instruction count (Ir) in {path}")
        counts[bench_key(s)] = int(ir)
    return counts


def machine():
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu_model(), "arch": platform.machine(), "rustc": rustc, "git_rev": git("rev-parse", "--short", "HEAD")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["check", "update"])
    ap.add_argument("baseline", type=Path)
    ap.add_argument("--threshold", type=float, default=3.0, help="allowed rise in percent (default 3)")
    ap.add_argument("--only-present", action="store_true", help="compare only the benchmarks that ran (filtered runs)")
    args = ap.parse_args()
    counts = collect()
    if not counts:
        fail(f"no gungraun summaries under {SUMMARIES}; run `cargo bench --bench gate -- --save-summary=json` first")
    if args.mode == "update":
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        record = {"metric": "callgrind instructions (Ir)", "machine": machine(), "counts": counts}
        args.baseline.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"bench_gate: wrote {len(counts)} baseline counts to {args.baseline}")
        return 0
    try:
        base = json.loads(args.baseline.read_text())["counts"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"cannot read the baseline {args.baseline}: {e}")
    failures, rows = [], []
    for key in sorted(set(base) | set(counts)):
        old, new = base.get(key), counts.get(key)
        if new is None:
            if not args.only_present:
                failures.append(f"{key}: in the baseline but did not run")
            continue
        if old is None:
            rows.append(f"  NEW      {new:>14,}  {key}")
            failures.append(f"{key}: not in the baseline (refresh it on purpose)")
            continue
        change = 100.0 * (new - old) / old
        status = "REGRESSED" if change > args.threshold else "ok"
        rows.append(f"  {status:<9}{new:>14,}  {change:+7.2f}%  (baseline {old:,})  {key}")
        if change > args.threshold:
            failures.append(f"{key}: {old:,} -> {new:,} instructions ({change:+.2f}% > {args.threshold}%)")
    print("instruction-count gate (threshold +{}%):".format(args.threshold))
    print("\n".join(rows))
    if failures:
        print("\nbench_gate: FAILED")
        for f in failures:
            print(f"  {f}")
        print(
            "\nIf the change is intended (a new feature, a new toolchain or machine kind), refresh the baseline on purpose:\n"
            "  bash scripts/bench-gate.sh --update && git add results/bench-baselines/gate.json\n"
            "and commit it on its own, saying why."
        )
        return 1
    print(f"bench_gate: ok ({len(counts)} benchmarks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
