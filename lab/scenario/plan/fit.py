"""Whether a scenario's shape fits this machine, judged before anything is started.

A shape that does not fit is no experiment: on an over-committed host every policy's tail
is the host's (the lab's noise section would show it, after the run). The rule is a
budget, not a prediction:

- memory: the sum of the containers' ``mem_limit`` (compose.yaml's anchors, mirrored in
  :data:`MEM_LIMIT_MIB` and checked by a test) must stay within :data:`MEM_SHARE` of the
  host's memory, so no container can be OOM-killed by its neighbours' legal use;
- CPU: the load's cost (every request crosses a client, Toxiproxy twice and a worker:
  :data:`CPU_PER_REQUEST_S`) plus each service's idle cost plus the CPU that antagonist
  faults burn must stay within :data:`CPU_SHARE` of the cores, which leaves the rest to
  the kernel, Docker and the scenario engine itself.

The per-request cost is the whole lab's, measured at the rates scenarios run
(``benchmarks/bench_scale.py``: every container's CPU over the requests sent, 1.7-2.1 ms
at 300-960 req/s on Compose, ~0.3-0.5 ms of it the services' idle cost), not a client's
in a tight loop (~0.2 ms, issue 11): at 100 req/s a client wakes for every request. With
the tight-loop figure this check let 1,600 req/s through on 2 cores, and the lab
collapsed (the oracle's p99 over a second, Toxiproxy killed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MEM_LIMIT_MIB: dict[str, int] = {"grape": 160, "worker": 160, "client": 256, "toxiproxy": 384}
MEM_SHARE = 0.8
CPU_PER_REQUEST_S = 1.5e-3
IDLE_CPU_PER_SERVICE = 0.01  # lookups 4/s, announces 1/s, control APIs idle
CPU_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class HostFacts:
    cores: int
    mem_mib: int

    @classmethod
    def read(cls, meminfo: Path = Path("/proc/meminfo")) -> HostFacts:
        mem_kib = 0
        try:
            for line in meminfo.read_text().splitlines():
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            mem_kib = 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        return cls(cores or (os.cpu_count() or 1), mem_kib // 1024 or 1 << 20)


@dataclass(frozen=True, slots=True)
class Demand:
    grapes: int
    workers: int
    clients: int
    rate: float  # requests per second, all clients together
    antagonist_cores: float = 0.0

    def mem_mib(self) -> int:
        m = MEM_LIMIT_MIB
        return (
            self.grapes * m["grape"]
            + self.workers * m["worker"]
            + self.clients * m["client"]
            + m["toxiproxy"]
        )

    def cores(self) -> float:
        services = self.grapes + self.workers + self.clients + 1
        return (
            self.rate * CPU_PER_REQUEST_S + services * IDLE_CPU_PER_SERVICE + self.antagonist_cores
        )


def problem(demand: Demand, host: HostFacts) -> str | None:
    """Why ``demand`` does not fit ``host``; None when it does."""
    mem, mem_budget = demand.mem_mib(), int(host.mem_mib * MEM_SHARE)
    if mem > mem_budget:
        return (
            f"this machine cannot hold the shape: {demand.grapes} grapes, {demand.workers} "
            f"workers and {demand.clients} clients may use {mem} MiB, over {MEM_SHARE:.0%} "
            f"of its {host.mem_mib} MiB"
        )
    cores, budget = demand.cores(), host.cores * CPU_SHARE
    if cores > budget:
        return (
            f"this machine cannot carry the load: {demand.rate:g} req/s in all"
            + (
                f" and {demand.antagonist_cores:g} cores of antagonists"
                if demand.antagonist_cores
                else ""
            )
            + f" on {demand.grapes + demand.workers + demand.clients + 1} services need about "
            f"{cores:.2f} cores, over {CPU_SHARE:.0%} of its {host.cores} "
            f"(~{CPU_PER_REQUEST_S * 1e3:g} ms of CPU per request: lower the rate or the clients)"
        )
    return None


def antagonist_cores(shares: Iterable[tuple[float, float, float]]) -> float:
    """The most CPU antagonists burn at once: ``(start_s, end_s, share)`` intervals."""
    events = sorted(
        [(s, share) for s, _e, share in shares] + [(e, -share) for _s, e, share in shares]
    )
    now = peak = 0.0
    for _t, delta in events:  # ends sort before starts at the same instant (negative first)
        now += delta
        peak = max(peak, now)
    return peak
