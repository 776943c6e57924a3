"""The noise section: slow clusters and their period, the oracle's floor, the monitor."""

from __future__ import annotations

import asyncio
import os

import pytest
from histbuild import A, history, request

from lab.history import Outcome
from lab.scenario.checks import noise
from lab.scenario.checks.noise import NoiseMonitor, noise_figures, periodicity, slow_clusters
from lab.scenario.plan.spec import parse_scenario
from lab.stack.cgroups import CpuStat

SCENARIO = """\
name: t
runtime: local
clients: [adaptive, oracle]
load: {rate: 8}
duration: 20s
warmup: 2s
"""


def periodic_history(period: float):  # type: ignore[no-untyped-def]
    """Two clients at 10 req/s, 2 ms each, with 3 slow requests every ``period`` seconds."""
    reqs = []
    seq = 0
    for client, policy in (("client-adaptive", "adaptive"), ("client-oracle", "oracle")):
        t = 0.0
        while t < 20.0:
            stall = period > 0 and t >= 2.0 and (t % period) < 0.25
            seq += 1
            reqs.append(request(client, policy, seq, t, A, latency=0.080 if stall else 0.002))
            t += 0.125
    return history(reqs, [])


def test_periodic_stalls_show_as_clusters_at_a_steady_interval() -> None:
    clusters = slow_clusters(periodic_history(3.0).requests)
    assert len(clusters) == 6  # t = 3, 6, ..., 18
    assert all(c.clients == 2 and c.worst_ms == pytest.approx(80.0) for c in clusters)
    p = periodicity(clusters)
    assert p["median_interval_s"] == pytest.approx(3.0)
    assert p["interval_cv"] == pytest.approx(0.0, abs=1e-9)
    assert p["largest_gap_s"] == pytest.approx(3.0)


def test_a_quiet_run_has_no_cluster_and_no_period() -> None:
    assert slow_clusters(periodic_history(0).requests) == []
    assert periodicity([])["median_interval_s"] is None


def test_failed_requests_are_not_slow_requests() -> None:
    r = request("c", "random", 1, 1.0, A, latency=1.0, outcome=Outcome.TIMEOUT)
    assert slow_clusters([r]) == []


def test_noise_figures_give_the_oracles_steady_state_quantiles() -> None:
    h = periodic_history(3.0)
    h.meta.noise = {"load": {"mean_1m": 1.5}}
    n = noise_figures(h, parse_scenario(SCENARIO, "scenarios/t.yaml"))
    assert n["load"] == {"mean_1m": 1.5}  # the monitor's part is kept as it was
    before = n["oracle"]["before"]
    assert n["oracle"]["client"] == "client-oracle" and before["p50_ms"] == pytest.approx(2.0)
    assert before["p99_ms"] == pytest.approx(80.0)
    assert n["slow_clusters"]["count"] == 6
    assert n["slow_clusters"]["clusters"][0]["start"] == pytest.approx(3.0)


async def test_the_monitor_reports_load_and_each_services_cgroup() -> None:
    loads = iter([(0.5, 0, 0), (2.5, 0, 0)] + [(1.0, 0, 0)] * 100)
    third = asyncio.Event()

    def loadavg() -> tuple[float, float, float]:
        value = next(loads)
        if value[0] == 1.0:
            third.set()
        return value

    mon = NoiseMonitor(
        lambda: {"me": os.getpid(), "ghost": 2**22 + 12345}, loadavg=loadavg, interval=0.001
    )
    await mon.start()
    await asyncio.wait_for(third.wait(), 5.0)  # the sampler has run three times
    out = await mon.stop()
    assert out["load"]["max_1m"] == 2.5 and out["load"]["samples"] >= 3
    assert "ghost" in out.get("cgroups_unreadable", {}) and "ghost" not in out["cgroups"]
    if "me" in out["cgroups"]:  # readable on this host
        assert out["cgroups"]["me"]["nr_throttled"] >= 0


async def test_without_own_cgroups_the_monitor_says_why() -> None:
    mon = NoiseMonitor(lambda: {}, loadavg=lambda: (0.1, 0, 0))
    await mon.start()
    out = await mon.stop()
    assert out["cgroups"] == {} and "share one cgroup" in out["cgroups_reason"]


async def test_a_service_restarted_during_the_run_gets_no_cpu_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter([CpuStat(20.0, 5, 0, 0.0, None), CpuStat(0.6, 1, 0, 0.0, None)])
    monkeypatch.setattr(noise, "cpu_stat", lambda _pid: next(readings))
    mon = NoiseMonitor(lambda: {"worker-2": 1}, loadavg=lambda: (0.1, 0, 0))
    await mon.start()
    out = await mon.stop()
    assert "worker-2" not in out["cgroups"]  # not -19.4 s of CPU
    assert "restarted" in out["cgroups_unreadable"]["worker-2"]
