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
stack's. Compose's shapes stop at 16 workers (the spec's bound for one machine), and a
step this machine cannot carry (lab/scenario/plan/fit.py) is refused, so it does not hold.

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
CAST = (
    "adaptive",
    "random",
    "oracle",
    "round_robin",
    "{name: client-adaptive-2, policy: adaptive}",
    "least_request",
    "peak_ewma",
    "prequal",
)
"""The clients a step takes, in order: the Compose lab's cast (both engines have them)."""
PROFILED = ("client-least_request", "client-peak_ewma", "client-prequal")
"""Of those, the ones a swarm stack runs only when ``lab up --clients`` names them."""


@dataclass(frozen=True)
class Step:
    workers: int
    clients: int  # the first N of CAST
    rate: int  # requests/s per client

    @property
    def label(self) -> str:
        return f"{self.workers} workers x {self.clients} clients x {self.rate}/s"

    @property
    def total_rate(self) -> int:
        return self.clients * self.rate


MAX_ORACLE_ERRORS = 0.001
"""A step holds only while the oracle, which never meets a fault, loses almost nothing."""

LADDER = (
    Step(3, 3, 100),
    Step(6, 3, 100),
    Step(6, 5, 100),
    Step(9, 5, 120),
    Step(12, 5, 150),
    Step(16, 8, 120),
    Step(16, 8, 160),
)
"""Each step grows the lab or its load, one at a time at first (size alone: 3 to 6
workers at 300 req/s), then both: 300 to 1,280 req/s in all."""


def scenario(step: Step, duration_s: int) -> str:
    return (
        f"name: scale-{step.workers}w-{step.clients}c-{step.rate}\n"
        "description: no fault; the lab's own floor at this size (benchmarks/bench_scale.py)\n"
        "seed: 1\n"
        f"topology: {{grapes: 3, workers: {step.workers}}}\n"
        f"clients: [{', '.join(CAST[: step.clients])}]\n"
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


def policy_figures(summary: dict[str, Any], policy: str) -> dict[str, Any]:
    """One policy's figures (keyed by policy, or by client name when a policy repeats)."""
    for figures in (summary.get("policies") or {}).values():
        if figures.get("policy") == policy:
            return dict(figures)
    return {}


def cpu_per_request(summary: dict[str, Any]) -> float | None:
    """Milliseconds of CPU every container of the lab spent per request sent, over the
    run (idle services included): what one request costs this machine at this size.
    None where the engine gives no cgroup figures (Swarm's tasks live in the nodes')."""
    cgroups = ((summary.get("noise") or {}).get("cgroups")) or {}
    cpu_s = [c.get("cpu_s") for c in cgroups.values()]
    sent = sum(int(f.get("requests") or 0) for f in (summary.get("policies") or {}).values())
    if not cpu_s or any(not isinstance(c, int | float) for c in cpu_s) or not sent:
        return None
    return 1e3 * sum(float(c) for c in cpu_s) / sent


def error_share(policy: dict[str, Any]) -> float | None:
    """The share of a client's requests that failed (None: it sent none)."""
    sent = policy.get("requests") or 0
    return (policy.get("errors") or 0) / sent if sent else None


def run_step(step: Step, engine: str, workdir: Path, duration_s: int) -> dict[str, Any]:
    """One step: (swarm: redeploy) then ``lab run``; its figures, or why it failed."""
    out: dict[str, Any] = {"step": step.label}
    if engine == "swarm":
        up = subprocess.run(
            [*LAB, "up", "--engine", "swarm", "--workers", str(step.workers), "--quiet",
             "--clients", ",".join(PROFILED)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if up.returncode != 0:
            return {**out, "error": f"lab up: {(up.stderr or up.stdout).strip()[-300:]}"}
    path = workdir / f"scale-{step.workers}-{step.clients}-{step.rate}.yaml"
    path.write_text(scenario(step, duration_s))
    reports = workdir / "reports"
    started = time.monotonic()
    proc = subprocess.run(
        [*LAB, "run", str(path), "--runtime", engine, "--reports", str(reports)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out["wall_s"] = round(time.monotonic() - started, 1)
    found = sorted(reports.glob(f"*scale-{step.workers}w-{step.clients}c-{step.rate}/summary.json"))
    if not found:
        return {**out, "error": f"lab run exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    summary = json.loads(found[-1].read_text())
    load = ((summary.get("noise") or {}).get("load")) or {}
    out.update(
        status=summary.get("status"),
        oracle_p99_ms=oracle_p99(summary),
        load_max=load.get("max_1m"),
        oracle_error_share=error_share(policy_figures(summary, "oracle")),
        cpu_ms_per_request=cpu_per_request(summary),
    )
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


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
    parser.add_argument(
        "--whole-ladder",
        action="store_true",
        help="climb every step even past one that did not hold (the answer stays the last "
        "step held before the first that did not)",
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
    failed = False
    for step in LADDER[: args.steps]:
        fig = run_step(step, args.engine, workdir, args.duration)
        p99 = fig.get("oracle_p99_ms")
        if base is None:
            if p99 is None:
                print(f"{step.label}: baseline could not run: {fig.get('error', fig)}")
                return 2
            base = p99
        ratio = p99 / base if p99 is not None else None
        errors = fig.get("oracle_error_share")
        holds = (
            ratio is not None
            and ratio <= args.factor
            and errors is not None
            and errors <= MAX_ORACLE_ERRORS
        )
        shown = f"{p99:.1f} ms ({ratio:.2f}x baseline)" if ratio is not None else "-"
        lost = "-" if errors is None else f"{errors:.2%}"
        print(
            f"{step.label:<34} ({step.total_rate:>5}/s) oracle p99 {shown:<26} "
            f"errors {lost:<6} cpu/req {_ms(fig.get('cpu_ms_per_request'))} "
            f"load max {_num(fig.get('load_max'))} wall {fig.get('wall_s')} s "
            f"{'holds' if holds else 'does not hold'} {fig.get('error', '')}".rstrip(),
            flush=True,
        )
        if holds and not failed:
            held = fig
        failed = failed or not holds
        if failed and not args.whole_ladder:
            break
    print(
        f"largest topology held on {args.engine}: {held['step'] if held else 'none'} "
        f"(oracle p99 <= {args.factor:g}x the baseline {base:.1f} ms, "
        f"errors <= {MAX_ORACLE_ERRORS:.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
