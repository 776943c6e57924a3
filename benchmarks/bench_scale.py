"""How big a lab one engine holds: the largest topology whose oracle stays quiet.

Climbs a ladder of topologies (workers x clients x rate per client) on one engine, each
step one ``lab run`` of a no-fault scenario, and reads the oracle's steady-state p99
from ``summary.json``'s ``noise`` section (the oracle never sends to a faulty worker, so
its tail is the lab's own floor). The baseline is the first step, measured in the same
run: a step *holds* while its oracle p99 stays under ``--factor`` (2) times the
baseline's. The ladder stops at the first step that does not hold (or cannot run), and
the last step that held is the answer.

On Compose the run reshapes the lab itself (the scenario's ``topology:``); on Swarm the
stack is redeployed first with ``lab up --engine swarm --workers N`` (in place: only the
new workers start), since a Swarm run refuses a scenario whose counts differ from the
stack's. Compose's shapes stop at 16 workers (the spec's bound for one machine).

Run: ``.venv/bin/python benchmarks/bench_scale.py --engine compose`` (the Compose lab up)
or ``--engine swarm`` (after ``lab up --engine swarm --local-nodes 3``). Without a lab of
that engine it prints why and exits 0 (``make bench`` runs every benchmark). Exit 2 when
the baseline itself could not run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab"]
CLIENTS = ("adaptive", "random", "oracle")


@dataclass(frozen=True)
class Step:
    workers: int
    rate: int  # requests/s per client

    @property
    def label(self) -> str:
        return f"{self.workers} workers x {len(CLIENTS)} clients x {self.rate}/s"


LADDER = (Step(3, 100), Step(6, 200), Step(9, 300), Step(12, 400), Step(16, 600))


def scenario(step: Step, duration_s: int) -> str:
    return (
        f"name: scale-{step.workers}w-{step.rate}\n"
        "description: no fault; the lab's own floor at this size (benchmarks/bench_scale.py)\n"
        "seed: 1\n"
        f"topology: {{grapes: 3, workers: {step.workers}}}\n"
        f"clients: [{', '.join(CLIENTS)}]\n"
        f"load: {{rate: {step.rate}, payload_bytes: 64, timeout: 1s}}\n"
        f"duration: {duration_s}s\n"
        "warmup: 3s\n"
        "settle: 2s\n"
    )


def oracle_p99(summary: dict[str, Any]) -> float | None:
    """The oracle's steady p99 (ms): the whole run's window when no fault split it."""
    oracle = ((summary.get("noise") or {}).get("oracle")) or {}
    for window in ("before", "after"):
        p99 = (oracle.get(window) or {}).get("p99_ms")
        if isinstance(p99, int | float):
            return float(p99)
    return None


def run_step(step: Step, engine: str, workdir: Path, duration_s: int) -> dict[str, Any]:
    """One step: (swarm: redeploy) then ``lab run``; its figures, or why it failed."""
    out: dict[str, Any] = {"step": step.label}
    if engine == "swarm":
        up = subprocess.run(
            [*LAB, "up", "--engine", "swarm", "--workers", str(step.workers), "--quiet"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if up.returncode != 0:
            return {**out, "error": f"lab up: {(up.stderr or up.stdout).strip()[-300:]}"}
    path = workdir / f"scale-{step.workers}-{step.rate}.yaml"
    path.write_text(scenario(step, duration_s))
    reports = workdir / "reports"
    started = time.monotonic()
    proc = subprocess.run(
        [*LAB, "run", str(path), "--runtime", engine, "--reports", str(reports)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out["wall_s"] = round(time.monotonic() - started, 1)
    found = sorted(reports.glob(f"*scale-{step.workers}w-{step.rate}/summary.json"))
    if not found:
        return {**out, "error": f"lab run exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    summary = json.loads(found[-1].read_text())
    load = ((summary.get("noise") or {}).get("load")) or {}
    out.update(
        status=summary.get("status"),
        oracle_p99_ms=oracle_p99(summary),
        load_max=load.get("max_1m"),
        availability={p: v.get("availability") for p, v in (summary.get("policies") or {}).items()},
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("compose", "swarm"), default="compose")
    parser.add_argument("--duration", type=int, default=25, help="seconds of load per step")
    parser.add_argument("--factor", type=float, default=2.0, help="p99 bound over the baseline")
    parser.add_argument("--steps", type=int, default=len(LADDER), help="at most this many steps")
    parser.add_argument(
        "--baseline-ms",
        type=float,
        default=None,
        help="judge against this p99 (e.g. Compose's first step) instead of this run's first",
    )
    args = parser.parse_args(argv)
    probe = subprocess.run([*LAB, "status"], cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"bench_scale: skipped: no {args.engine} lab answers (`lab status` failed)")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-scale-{args.engine}-"))
    print(f"engine {args.engine}; reports in {workdir}/reports")
    base: float | None = args.baseline_ms
    held: dict[str, Any] | None = None
    for step in LADDER[: args.steps]:
        fig = run_step(step, args.engine, workdir, args.duration)
        p99 = fig.get("oracle_p99_ms")
        if base is None:
            if p99 is None:
                print(f"{step.label}: baseline could not run: {fig.get('error', fig)}")
                return 2
            base = p99
        ratio = p99 / base if p99 is not None else None
        holds = ratio is not None and ratio <= args.factor
        shown = f"{p99:.1f} ms ({ratio:.2f}x baseline)" if ratio is not None else "-"
        print(
            f"{step.label:<34} oracle p99 {shown:<26} load max {fig.get('load_max')} "
            f"{'holds' if holds else 'does not hold'} {fig.get('error', '')}".rstrip(),
            flush=True,
        )
        if not holds:
            break
        held = fig
    print(
        f"largest topology held on {args.engine}: {held['step'] if held else 'none'} "
        f"(oracle p99 <= {args.factor:g}x the baseline {base:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
