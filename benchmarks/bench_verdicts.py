"""Flakiness of verdicts: run a scenario K times, print how often the verdict agrees.

A flake benchmark, not a test (issue 12): it runs the real ``lab run`` K times as a user
would (same file, same seed unless ``--vary-seed``), each into its own reports folder,
and prints the share of identical verdicts, the exit codes, and per policy the spread
(median, min, max) of each headline figure over the K runs. With ``--repeat R`` each of
the K invocations is a series of R runs judged on medians, which is the figure the issue
asks about ("--repeat 5 gives the same verdict in 3 of 3 invocations").

Run (the Compose lab needs `make up` first and the shared lock on a shared machine)::

    .venv/bin/python benchmarks/bench_verdicts.py --runs 10 scenarios/partition.yaml
    .venv/bin/python benchmarks/bench_verdicts.py --runs 3 --repeat 5 scenarios/latency.yaml
    .venv/bin/python benchmarks/bench_verdicts.py --runtime local --runs 3   # make bench

Exit 0 when every invocation produced a verdict (whatever it was), 2 when one could not
run at all. Timing on a busy machine moves the figures: say what else was running.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lab.report.tables import policy_sort_key

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = ("detection_s", "availability", "p99_ratio", "recovery_s", "errors")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", nargs="?", default="scenarios/ci/partition.yaml")
    p.add_argument("--runs", type=int, default=3, help="K invocations of lab run [3]")
    p.add_argument("--repeat", type=int, default=1, help="each invocation is --repeat R [1]")
    p.add_argument("--runtime", choices=("compose", "local"), default="local")
    p.add_argument("--seed", type=int, default=None, help="the seed of every invocation")
    p.add_argument("--vary-seed", action="store_true", help="seed, seed+R, seed+2R, ...")
    p.add_argument("--out", type=Path, default=None, help="reports folder [reports/bench-...]")
    return p.parse_args(argv)


def summary_of(folder: Path) -> dict[str, Any] | None:
    """The summary of the single run (or series) an invocation wrote into ``folder``."""
    found = sorted(d for d in folder.iterdir() if d.is_dir() and (d / "summary.json").is_file())
    if not found:
        return None
    data = json.loads((found[-1] / "summary.json").read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    out = args.out or ROOT / "reports" / f"bench-verdicts-{time.strftime('%Y%m%d-%H%M%S')}"
    lab = str(Path(sys.executable).parent / "lab")
    verdicts: list[str] = []
    codes: list[int] = []
    summaries: list[dict[str, Any]] = []
    walls: list[float] = []
    for k in range(args.runs):
        folder = out / f"k{k + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [lab, "run", "--runtime", args.runtime, "--reports", str(folder), args.scenario]
        if args.repeat > 1:
            cmd[2:2] = ["--repeat", str(args.repeat)]
        if args.seed is not None or args.vary_seed:
            base = args.seed if args.seed is not None else 7
            seed = base + (k * args.repeat if args.vary_seed else 0)
            cmd[2:2] = ["--seed", str(seed)]
        t = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        walls.append(time.monotonic() - t)
        codes.append(proc.returncode)
        s = summary_of(folder)
        verdict = str(s.get("verdict")) if s else "could-not-run"
        verdicts.append(verdict)
        reason = (s or {}).get("verdict_reason") or (s or {}).get("abort_reason") or ""
        print(f"  {k + 1:>2}/{args.runs}: {verdict:<8} exit {proc.returncode}  "
              f"{walls[-1]:.0f} s  {reason}", flush=True)  # fmt: skip
        if s:
            summaries.append(s)
        elif proc.stderr:
            print("     " + proc.stderr.strip().splitlines()[-1], flush=True)
    counts = Counter(verdicts)
    top, n_top = counts.most_common(1)[0]
    print(f"\n{args.scenario} x{args.runs} ({args.runtime}, repeat {args.repeat}): "
          f"verdicts {dict(counts)}; identical {n_top}/{args.runs} = {n_top / args.runs:.0%} "
          f"({top}); exit codes {codes}; wall median {statistics.median(walls):.0f} s")  # fmt: skip
    print(f"reports: {out}")
    print(f"\n{'policy':<14}{'figure':<14}{'median':>10}{'min':>10}{'max':>10}  values")
    keys: list[str] = []
    for s in summaries:
        keys += [k for k in s.get("policies") or {} if k not in keys]
    for key in sorted(keys, key=policy_sort_key):
        for metric in HEADLINE:
            vals = [((s.get("policies") or {}).get(key) or {}).get(metric) for s in summaries]
            got = [float(v) for v in vals if isinstance(v, int | float)]
            if not got:
                continue
            shown = " ".join("-" if v is None else f"{v:.3g}" for v in vals)
            print(f"{key:<14}{metric:<14}{statistics.median(got):>10.4g}{min(got):>10.4g}"
                  f"{max(got):>10.4g}  {shown}")  # fmt: skip
    return 2 if "could-not-run" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
