"""The lab's noise floor: the oracle's latency with no fault, and slow clusters' period.

The lab measures tail latency, so its own noise is the floor of every verdict. This runs
the library's load (``scenarios/partition.yaml``'s: 100 req/s per client, 64-byte
payloads, 1 s timeout, clients adaptive, random and oracle) with **no fault** through
``lab run``, then reads ``summary.json``'s ``noise`` section and prints, per run, the
oracle's steady-state p50/p99/p99.9, the clusters of slow requests (every client's
requests over ``lab.scenario.checks.noise.SLOW_MS``, grouped when < 0.5 s apart) with the
median interval between clusters, its spread (cv: low with several clusters = a
periodic source) and the largest gap, the host's load average and the services that
were CFS-throttled.

``--mode before`` re-creates the two noise sources this lab used to have, on the running
Compose lab and for the run only, so before and after are measured back to back on the
same containers (the lab is shared and the machine busy: interleave them, A B A B):
the CPU quotas compose.yaml had (``cpus:`` grape/worker 0.5, client 0.75, Toxiproxy 1.0,
set with ``docker update`` and removed afterwards) and the in-container healthcheck (a
``docker exec`` of ``python -I -S`` opening a socket to the health endpoint every 3 s in
each Python container, which is what Docker's healthcheck ran). ``--mode after`` runs
the lab as it is; ``quotas`` and ``probes`` re-create one of the two only.

On Compose it first prints what one health probe costs in CPU: an in-container one
(``docker exec`` of Python, as Docker's healthcheck ran it: the container's cgroup plus
dockerd, containerd and the shims) against the host's GET of the same endpoint
(``--probes N`` each, 0 to skip).

Goal (issue 11): the oracle's p99 <= 10 ms as the median of the runs, and no periodic
slow clusters (>= 4 clusters with an interval cv below 0.25).

Run (Compose, under the shared lock): ``flock /tmp/grenache-compose.lock
.venv/bin/python benchmarks/bench_noise.py --modes after,before,after,before``;
``--runtime local`` runs the same load on local processes (no cgroups, no modes).
Exit status 0 when the goal is met by the ``after`` runs, 1 when not, 2 when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab"]

P99_GOAL_MS = 10.0
MODES = ("after", "before", "quotas", "probes")
PERIODIC_MIN_CLUSTERS = 4
PERIODIC_MAX_CV = 0.25

SCENARIO = """\
# bench_noise: the library's load with no fault (see benchmarks/bench_noise.py)
name: noise
description: no fault; the lab's own noise floor
seed: 7
runtime: {runtime}
topology: {{grapes: 3, workers: 3}}
clients: [adaptive, random, oracle]
load: {{rate: 100, arrival: constant, payload_bytes: 64, service: rpc_test, timeout: 1s}}
duration: {duration}s
warmup: 5s
settle: 5s
"""

OLD_QUOTAS = {"grape": 0.5, "worker": 0.5, "client": 0.75, "toxiproxy": 1.0}
"""compose.yaml's ``cpus:`` before issue 11."""

OLD_PROBE = (
    "import socket,sys\n"
    "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=2)\n"
    "s.sendall(('GET '+sys.argv[2]+' HTTP/1.0\\r\\n\\r\\n').encode());s.recv(64)\n"
)
OLD_PROBE_PORTS = {"grape": (30001, "/_lab/health"), "worker": (9100, "/health"),
                   "client": (8500, "/health")}  # fmt: skip
OLD_PROBE_INTERVAL_S = 3.0


@contextlib.contextmanager
def old_noise(quotas: bool = True, probes: bool = True) -> Iterator[None]:
    """The quotas and/or in-container probes of the old compose.yaml, for one run."""
    from lab.stack.engine import Engine, service_kind, service_name

    engine = Engine.connect()
    containers = [c for c in engine.containers(all=False)]
    period = 100_000
    for c in containers if quotas else []:
        cpus = OLD_QUOTAS.get(service_kind(service_name(c)))
        if cpus is not None:
            c.update(cpu_period=period, cpu_quota=int(cpus * period))
    stop = threading.Event()

    def probe(c: Any, port: int, path: str) -> None:
        while not stop.wait(OLD_PROBE_INTERVAL_S):
            with contextlib.suppress(Exception):
                c.exec_run(["python", "-I", "-S", "-c", OLD_PROBE, str(port), path])

    threads = []
    for c in containers if probes else []:
        where = OLD_PROBE_PORTS.get(service_kind(service_name(c)))
        if where is not None:
            t = threading.Thread(target=probe, args=(c, *where), daemon=True)
            t.start()
            threads.append(t)
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        for c in containers if quotas else []:
            with contextlib.suppress(Exception):
                c.update(cpu_quota=-1)
        engine.close()


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its reaped children (utime, stime, cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _daemon_pids() -> list[int]:
    names = {"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2"}
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in names:
                    out.append(int(entry.name))
    return out


def probe_cost(n: int) -> str:
    """CPU per probe: ``docker exec`` of Python in worker-1 vs the host's GET of /health."""
    from lab.stack.cgroups import cpu_stat
    from lab.stack.engine import CONTROL_LABEL, Engine, service_name

    engine = Engine.connect()
    try:
        c = next(c for c in engine.containers(all=False) if service_name(c) == "worker-1")
        pid = int(c.attrs["State"]["Pid"])
        daemons = _daemon_pids()

        def cpu() -> float:
            return (cpu_stat(pid).usage_s or 0.0) + sum(_proc_cpu_s(p) for p in daemons)

        port, path = OLD_PROBE_PORTS["worker"]
        before, t0 = cpu(), time.perf_counter()
        for _ in range(n):
            c.exec_run(["python", "-I", "-S", "-c", OLD_PROBE, str(port), path])
        exec_cpu, exec_wall = (cpu() - before) / n, (time.perf_counter() - t0) / n
        url = f"http://{c.labels[CONTROL_LABEL]}{path}"
        before, t0 = cpu(), time.perf_counter()
        for _ in range(n):
            with urllib.request.urlopen(url, timeout=2) as resp:
                resp.read()
        host_cpu, host_wall = (cpu() - before) / n, (time.perf_counter() - t0) / n
    finally:
        engine.close()
    return (
        f"probe cost ({n} each, worker-1): docker exec python {exec_cpu * 1e3:.1f} ms CPU "
        f"({exec_wall * 1e3:.0f} ms wall); host GET {host_cpu * 1e3:.2f} ms CPU "
        f"({host_wall * 1e3:.1f} ms wall); old healthchecks: 11 containers / "
        f"{OLD_PROBE_INTERVAL_S:g} s = {11 * exec_cpu / OLD_PROBE_INTERVAL_S:.2f} of a core"
    )


def run_once(runtime: str, duration: float, mode: str, reports: Path) -> dict[str, Any]:
    scenario = reports / "noise.yaml"
    scenario.write_text(SCENARIO.format(runtime=runtime, duration=int(duration)))
    old = {"before": (True, True), "quotas": (True, False), "probes": (False, True)}.get(mode)
    ctx = old_noise(*old) if old and runtime == "compose" else contextlib.nullcontext()
    with ctx:
        done = subprocess.run(
            [*LAB, "run", str(scenario), "--reports", str(reports)],
            capture_output=True, text=True, cwd=ROOT, timeout=duration + 180,
        )  # fmt: skip
    summaries = sorted(reports.glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    if done.returncode == 2 or not summaries:
        raise RuntimeError(f"lab run failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    summary: dict[str, Any] = json.loads(summaries[-1].read_text())
    return summary


def periodic(clusters: dict[str, Any]) -> bool:
    cv = clusters.get("interval_cv")
    return (
        int(clusters.get("count") or 0) >= PERIODIC_MIN_CLUSTERS
        and cv is not None
        and cv < PERIODIC_MAX_CV
    )


def _ms(v: float | None) -> str:
    return "   -" if v is None else f"{v:6.2f}"


def line(mode: str, s: dict[str, Any]) -> str:
    n = s.get("noise") or {}
    o = (n.get("oracle") or {}).get("before") or {}
    c = n.get("slow_clusters") or {}
    load = n.get("load") or {}
    med, cv, gap = c.get("median_interval_s"), c.get("interval_cv"), c.get("largest_gap_s")
    throttled = n.get("throttled_services") or []
    return (
        f"{mode:<7} oracle p50 {_ms(o.get('p50_ms'))} p99 {_ms(o.get('p99_ms'))} "
        f"p99.9 {_ms(o.get('p999_ms'))} ms | slow clusters {c.get('count', 0):>3} "
        f"median interval {'-' if med is None else f'{med:.2f}s'} "
        f"cv {'-' if cv is None else f'{cv:.2f}'} "
        f"largest gap {'-' if gap is None else f'{gap:.2f}s'}"
        f"{' PERIODIC' if periodic(c) else ''} | load {load.get('mean_1m') or 0:.2f} mean "
        f"{load.get('max_1m') or 0:.2f} max | throttled {len(throttled)} services"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", choices=("compose", "local"), default="compose")
    ap.add_argument("--duration", type=float, default=40.0, help="seconds of load per run")
    ap.add_argument(
        "--modes", default="after", help=f"comma-separated runs of {'/'.join(MODES)} [after]"
    )
    ap.add_argument("--json", action="store_true", help="print every run's noise section too")
    ap.add_argument("--probes", type=int, default=20, help="probes per kind for the probe cost")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        print(f"bench_noise: --modes: {'/'.join(MODES)} only, got {args.modes!r}", file=sys.stderr)
        return 2
    if args.runtime == "local" and set(modes) - {"after"}:
        print("bench_noise: modes other than `after` need the Compose lab", file=sys.stderr)
        return 2
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    print(f"{args.runtime}: {args.duration:g} s of load per run, no fault; modes {modes}")
    try:
        if args.runtime == "compose" and args.probes > 0:
            print(probe_cost(args.probes), flush=True)
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix="bench-noise-") as tmp:
                s = run_once(args.runtime, args.duration, mode, Path(tmp))
            results[mode].append(s)
            print(line(mode, s), flush=True)
            if args.json:
                print(json.dumps(s.get("noise"), default=str))
    except (RuntimeError, subprocess.TimeoutExpired, OSError, StopIteration) as exc:
        print(f"bench_noise: could not run: {exc}", file=sys.stderr)
        return 2
    verdict = 0
    for mode, runs in results.items():
        if not runs:
            continue
        p99s = [
            ((s["noise"].get("oracle") or {}).get("before") or {}).get("p99_ms") for s in runs
        ]
        known = [p for p in p99s if p is not None]
        med = statistics.median(known) if known else None
        n_periodic = sum(periodic(s["noise"].get("slow_clusters") or {}) for s in runs)
        print(
            f"{mode}: oracle p99 median {_ms(med)} ms over {len(runs)} runs "
            f"(goal <= {P99_GOAL_MS:g}), periodic clusters in {n_periodic} of {len(runs)}"
        )
        if mode == "after" and (med is None or med > P99_GOAL_MS or n_periodic):
            verdict = 1
    if results["after"]:
        print("goal " + ("met" if verdict == 0 else "MISSED"))
    return verdict


if __name__ == "__main__":
    sys.exit(main())
