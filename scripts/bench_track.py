#!/usr/bin/env python3
"""Wall-clock tracking of the criterion benches: ratios, compared with generous bounds, and a history.

  bench_track.py check  [--append] [--baseline FILE] [--history FILE]
  bench_track.py update [--baseline FILE]

Reads the latest criterion run (target/criterion/**/new/{benchmark,estimates}.json, written by
`cargo bench --bench cpu --bench blas`) and computes *ratios*, which survive noisy shared machines far
better than absolute times:
  * speedup/<backend>/<workload>/<dtype>,threads=<t>: reference path's time per sequence / the backend's;
  * build/yun_over_memorizer: time to build a data-adaptive Yun model / a one-layer memorizer (same data).
`check` fails (exit 1) when a ratio falls below LOWER x its committed value (default 0.33: a 3x loss;
the 2-core VM moved single ratios by up to 2x between runs — small slowdowns are the instruction-count
gate's job),
and with --append adds one line (git revision, machine, times, ratios) to results/bench-history.jsonl.
`update` writes the current ratios as the committed baseline (commit it on its own, saying why).
"""
import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path

from benchlib import ROOT, cpu_model, git
from benchlib import fail as _fail

CRITERION = ROOT / "target" / "criterion"
BASELINE = ROOT / "results" / "bench-baselines" / "ratios.json"
HISTORY = ROOT / "results" / "bench-history.jsonl"


def fail(message):
    _fail("bench_track", message)


def collect():
    benches = {}
    for meta in sorted(CRITERION.glob("**/new/benchmark.json")):
        info = json.loads(meta.read_text())
        est = json.loads((meta.parent / "estimates.json").read_text())
        median_ns = est["median"]["point_estimate"]
        entry = {"median_ns": median_ns}
        elements = (info.get("throughput") or {}).get("Elements")
        if elements:
            entry["gflops"] = elements / median_ns
        benches[info["full_id"]] = entry
    if not benches:
        fail(f"no criterion results under {CRITERION}; run `cargo bench --bench cpu --bench blas` first")
    return benches


FORWARD = re.compile(r"^forward/(?P<backend>[^/]+)/(?P<workload>[^/]+)/(?P<dtype>[^,]+),batch=(?P<batch>\d+),threads=(?P<threads>\d+)$")


def ratios(benches):
    per_seq = {}
    for bench_id, e in benches.items():
        m = FORWARD.match(bench_id)
        if m:
            per_seq[bench_id] = (m, e["median_ns"] / int(m["batch"]))
    reference = {m["workload"]: t for m, t in per_seq.values() if m["backend"] == "reference"}
    out = {}
    for m, t in per_seq.values():
        if m["backend"] != "reference" and m["workload"] in reference:
            out[f"speedup/{m['backend']}/{m['workload']}/{m['dtype']},threads={m['threads']}"] = reference[m["workload"]] / t
    builds = {k: v["median_ns"] for k, v in benches.items() if k.startswith("build/")}
    mem = next((v for k, v in builds.items() if k.startswith("build/memorizer/")), None)
    yun = next((v for k, v in builds.items() if k.startswith("build/yun/")), None)
    if mem and yun:
        out["build/yun_over_memorizer"] = yun / mem
    return out


def machine():
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["check", "update"])
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument("--history", type=Path, default=HISTORY)
    ap.add_argument("--append", action="store_true", help="append this run to the history file")
    ap.add_argument("--lower", type=float, default=0.33, help="fail when a ratio drops below LOWER x baseline (default 0.33: a 3x loss)")
    args = ap.parse_args()
    benches = collect()
    current = ratios(benches)
    if args.mode == "update":
        args.baseline.write_text(json.dumps({"lower": args.lower, "machine": machine(), "git_rev": git("rev-parse", "--short", "HEAD"), "ratios": current}, indent=2, sort_keys=True) + "\n")
        print(f"bench_track: wrote {len(current)} ratios to {args.baseline}")
        return 0
    try:
        base = json.loads(args.baseline.read_text())["ratios"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"cannot read the baseline {args.baseline}: {e}")
    failures = []
    print(f"wall-clock ratios (fail below {args.lower} x baseline):")
    for key in sorted(base):
        new = current.get(key)
        if new is None:
            print(f"  (not run)  {key}")
            continue
        ok = new >= args.lower * base[key]
        print(f"  {'ok' if ok else 'SLOWER':<9}{new:>10.2f}  (baseline {base[key]:.2f})  {key}")
        if not ok:
            failures.append(f"{key}: {base[key]:.2f} -> {new:.2f}")
    if args.append:
        record = {
            "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_rev": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "machine": machine(),
            "ratios": current,
            "benches": benches,
        }
        with args.history.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        print(f"bench_track: appended this run to {args.history}")
    if failures:
        print("\nbench_track: FAILED (a ratio fell by more than the bound):")
        for f in failures:
            print(f"  {f}")
        print("If intended, refresh on purpose: bash scripts/bench-track.sh --update, committed on its own.")
        return 1
    print(f"bench_track: ok ({len(current)} ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
