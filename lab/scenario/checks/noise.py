"""The lab's own noise: what the host and the lab did to the run, beside the faults.

The lab measures tail latency, so its own noise is the floor of every verdict. Three
figures say how high that floor was in one run (``summary.json`` -> ``noise``):

- **load**: the host's 1-minute load average, sampled every second during the load phase
  (mean and max), against the CPUs it had: a load above the CPU count means runnable
  threads waited for a core;
- **cgroups**: per service, CPU used and CFS throttling during the load phase (periods
  throttled, time throttled, the quota) from the kernel's per-container accounting
  (:mod:`lab.stack.cgroups`); only a runtime whose services have cgroups of their own
  (Compose) has them;
- **oracle**: the steady-state p50/p99/p99.9 of the ``oracle`` client, which never sends
  to a faulty worker: its tail is the lab's floor. Plus the **slow clusters**: requests of
  every client slower than ``SLOW_MS`` grouped when less than ``CLUSTER_GAP_S`` apart,
  with the intervals between clusters: clusters at a steady interval are the signature
  of something periodic in the lab (the 3 s healthchecks were one).

:class:`NoiseMonitor` samples during the run and stores what it saw in the run's meta
(the journal keeps it, so ``lab report`` re-renders it); :func:`noise_figures` is pure
and turns meta and history into the summary's section.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lab.history import History, Outcome, RequestRecord
from lab.scenario.checks.recovery import latencies_ms, quantile
from lab.stack.cgroups import CgroupUnreadable, CpuStat, cpu_stat

SLOW_MS = 25.0
"""A request slower than this is "slow" for the cluster analysis: ten times a healthy
worker's ~2.5 ms p50, far below any fault's latency."""

CLUSTER_GAP_S = 0.5
"""Slow requests less than this apart belong to one cluster (one stall of the host)."""

LOAD_SAMPLE_S = 1.0

ORACLE = "oracle"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Slow requests close together: when the cluster started and how bad it was."""

    start: float
    end: float
    requests: int
    clients: int
    worst_ms: float


def slow_clusters(
    requests: Iterable[RequestRecord], slow_ms: float = SLOW_MS, gap_s: float = CLUSTER_GAP_S
) -> list[Cluster]:
    """Requests slower than ``slow_ms`` (by issue time), grouped when < ``gap_s`` apart."""
    slow = sorted(
        (r for r in requests if r.outcome is Outcome.OK and r.latency * 1000.0 > slow_ms),
        key=lambda r: r.issued,
    )
    out: list[Cluster] = []
    group: list[RequestRecord] = []
    for r in slow:
        if group and r.issued - group[-1].issued >= gap_s:
            out.append(_cluster(group))
            group = []
        group.append(r)
    if group:
        out.append(_cluster(group))
    return out


def _cluster(group: list[RequestRecord]) -> Cluster:
    return Cluster(
        start=group[0].issued,
        end=group[-1].issued,
        requests=len(group),
        clients=len({r.client for r in group}),
        worst_ms=max(r.latency for r in group) * 1000.0,
    )


def periodicity(clusters: list[Cluster]) -> dict[str, Any]:
    """Intervals between cluster starts: median, spread and the largest gap (seconds).

    A low ``interval_cv`` (spread / median) with several clusters means a periodic
    source; the issue's healthchecks gave clusters every ~3.4 s with a small spread.
    """
    starts = [c.start for c in clusters]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    if not gaps:
        return {"intervals_s": [], "median_interval_s": None, "interval_cv": None,
                "largest_gap_s": None}  # fmt: skip
    median = statistics.median(gaps)
    cv = statistics.pstdev(gaps) / median if median > 0 and len(gaps) > 1 else None
    return {
        "intervals_s": [round(g, 3) for g in gaps],
        "median_interval_s": median,
        "interval_cv": cv,
        "largest_gap_s": max(gaps),
    }


def _steady_oracle(history: History, scenario: Any) -> dict[str, Any]:
    from lab.scenario.checks.steady import steady_windows  # why: numpy, only when judging

    names = [c.name for c in scenario.clients if c.policy == ORACLE]
    if not names:
        return {"client": None, "reason": "no oracle client in this scenario"}
    client = names[0]
    mine = [r for r in history.requests if r.client == client]
    out: dict[str, Any] = {"client": client}
    for phase, (lo, hi) in steady_windows(history, scenario).items():
        lat = latencies_ms(r for r in mine if lo <= r.issued < hi and r.ended <= hi)
        out[phase] = {
            "requests": len(lat),
            "p50_ms": quantile(lat, 0.50),
            "p99_ms": quantile(lat, 0.99),
            "p999_ms": quantile(lat, 0.999),
        }
    return out


def noise_figures(history: History, scenario: Any) -> dict[str, Any]:
    """The summary's ``noise`` section from what the monitor stored and the history."""
    meta_noise: Mapping[str, Any] = getattr(history.meta, "noise", None) or {}
    start = history.meta.started_mono + float(getattr(scenario, "warmup_s", 0.0))
    clusters = slow_clusters(r for r in history.requests if r.issued >= start)
    t0 = history.meta.started_mono
    return {
        **meta_noise,
        "oracle": _steady_oracle(history, scenario),
        "slow_clusters": {
            "slow_ms": SLOW_MS,
            "gap_s": CLUSTER_GAP_S,
            "count": len(clusters),
            "clusters": [{**asdict(c), "start": c.start - t0, "end": c.end - t0} for c in clusters],
            **periodicity(clusters),
        },
    }


def _restarted(before: CpuStat, after: CpuStat) -> bool:
    """Counters that went back: a new container (a kill's heal) whose cgroup starts at 0."""
    usage_back = (
        after.usage_s is not None and before.usage_s is not None and after.usage_s < before.usage_s
    )
    return usage_back or after.nr_periods < before.nr_periods


def _cgroup_dict(s: CpuStat) -> dict[str, Any]:
    return {
        "cpu_s": s.usage_s,
        "nr_periods": s.nr_periods,
        "nr_throttled": s.nr_throttled,
        "throttled_ms": s.throttled_s * 1000.0,
        "quota_cpus": s.quota_cpus,
    }


class NoiseMonitor:
    """Samples the host's load and each service's cgroup during the load phase.

    ``pids`` gives each service's host PID (the Compose runtime: the container's init);
    an empty mapping means the services share the caller's cgroup, and the cgroup part is
    left out with the reason.
    """

    def __init__(
        self,
        pids: Callable[[], Mapping[str, int]],
        *,
        loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg,
        clock: Callable[[], float] = time.monotonic,
        interval: float = LOAD_SAMPLE_S,
    ) -> None:
        self._pids = pids
        self._loadavg = loadavg
        self._clock = clock
        self._interval = interval
        self._before: dict[str, CpuStat] = {}
        self._unreadable: dict[str, str] = {}
        self._loads: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._cgroup_reason: str | None = None

    def _read_all(self) -> dict[str, CpuStat]:
        try:
            pids = dict(self._pids())
        except Exception as exc:  # the runtime could not say: the figures are optional
            self._cgroup_reason = f"service PIDs unknown: {type(exc).__name__}: {exc}"
            return {}
        if not pids:
            self._cgroup_reason = "the services share one cgroup (local processes)"
        out: dict[str, CpuStat] = {}
        for name, pid in pids.items():
            try:
                out[name] = cpu_stat(pid)
            except (CgroupUnreadable, OSError, ValueError) as exc:
                self._unreadable[name] = str(exc)
        return out

    async def start(self) -> None:
        self._before = await asyncio.to_thread(self._read_all)
        self._task = asyncio.create_task(self._sample(), name="noise:loadavg")

    async def _sample(self) -> None:
        while True:
            self._loads.append(self._loadavg()[0])
            await asyncio.sleep(self._interval)

    async def stop(self) -> dict[str, Any]:
        """Stop sampling; the figures for the run's meta (see :func:`noise_figures`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        after = await asyncio.to_thread(self._read_all)
        cgroups: dict[str, dict[str, Any]] = {}
        for name, before in self._before.items():
            if name not in after:
                continue
            if _restarted(before, after[name]):
                self._unreadable[name] = "restarted during the run (a fault): no figure"
                continue
            cgroups[name] = _cgroup_dict(after[name].since(before))
        out: dict[str, Any] = {
            "load": {
                "cpus": os.cpu_count(),
                "samples": len(self._loads),
                "mean_1m": statistics.fmean(self._loads) if self._loads else None,
                "max_1m": max(self._loads) if self._loads else None,
            },
            "cgroups": cgroups,
            "throttled_services": sorted(n for n, c in cgroups.items() if c["nr_throttled"]),
        }
        if self._cgroup_reason and not cgroups:
            out["cgroups_reason"] = self._cgroup_reason
        if self._unreadable:
            out["cgroups_unreadable"] = dict(self._unreadable)
        return out
