"""The adaptive client against real faults, judged by the scenario engine on local processes.

Each test writes a short scenario into ``tmp_path``, launches the local runtime (3 grapes,
3 workers behind a real Toxiproxy, real ``lab client`` processes), runs it with
:func:`lab.scenario.run.runner.run_scenario` and asserts on ``summary.json``: the figures are
``lab/scenario/checks/recovery.py``'s, so these tests prove the client *and* exercise the engine's
whole path (inject, confirm, collect, judge, roll back). After each run the lab itself is
inspected before it is torn down: no toxic, no disabled proxy, no stopped or frozen
process, every worker's behaviour as before, every client seeing every worker again.

Why two scenarios and not one per fault: launching the lab costs seconds of the 2-core
CI budget, so faults share a timeline, one after another on different targets, with
enough calm between them for the recovery hold (3 s) to be judged.

``pytest -s`` prints a table per fault (detection, availability, p99 ratio, recovery,
share of the faulty peer) for every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from engine_support import toxiproxy_binary

from lab.errors import LabError
from lab.history import History, read_journal
from lab.lab_client import http_json
from lab.scenario.faults.marker import MARKER
from lab.scenario.plan.spec import load_scenario
from lab.scenario.run.result import RunResult
from lab.scenario.run.runner import run_scenario
from lab.scenario.runtime.local import LocalRuntime
from lab.toxiproxy_adapter import ToxiproxyAdapter

Side = Callable[[LocalRuntime], Coroutine[Any, Any, Any]]


@dataclass
class LocalRun:
    """What a run left: the runner's result, its summary and journal, the lab's state."""

    result: RunResult
    summary: dict[str, Any]
    history: History
    leftovers: list[str]  # anything still injected after the run (empty: clean)
    side: Any  # what the side task returned


async def run_local(tmp_path: Path, text: str, side: Side | None = None) -> LocalRun:
    """Run scenario ``text`` on a fresh local lab; ``side`` runs beside it (cancelled after)."""
    binary = toxiproxy_binary()
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    reports = tmp_path / "reports"
    runtime = await asyncio.to_thread(
        LocalRuntime.launch,
        grapes=scenario.topology.grapes,
        workers=scenario.topology.workers,
        clients=[(c.name, c.policy, bool(c.gossip)) for c in scenario.clients],
        logdir=tmp_path / "logs",
        seed=scenario.seed,
        toxiproxy_binary=binary,
    )
    try:
        before = await asyncio.to_thread(_behaviours, runtime)
        task: asyncio.Task[Any] | None = None
        if side is not None:
            task = asyncio.create_task(side(runtime))
        try:
            result = await run_scenario(scenario, runtime=runtime, reports_dir=reports)
        finally:
            if task is not None and not task.done():
                task.cancel()
        side_value = None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                side_value = await task
        leftovers = await asyncio.to_thread(_leftovers, runtime, before)
        if (reports / MARKER).exists():
            leftovers.append(f"the in-flight marker {MARKER} is still there")
    finally:
        await asyncio.to_thread(runtime.close)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    history = read_journal(result.run_dir / "journal.jsonl")
    _print_figures(summary)
    return LocalRun(result, summary, history, leftovers, side_value)


def _behaviours(runtime: LocalRuntime) -> dict[str, Any]:
    return {
        name: http_json("GET", f"{t.control_url}/behaviour", timeout=2.0)
        for name, t in runtime.targets().items()
        if t.kind == "worker"
    }


def _process_state(pid: int) -> str:
    """The kernel's one-letter state (R, S, T = stopped by a signal, Z, ...)."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def _leftovers(runtime: LocalRuntime, behaviours: dict[str, Any]) -> list[str]:
    """Everything a fault could leave behind, read from the lab itself, not the engine."""
    found: list[str] = []
    toxi = ToxiproxyAdapter(runtime.toxiproxy_api())
    for name, proxy in toxi.proxies().items():
        if not proxy.enabled:
            found.append(f"proxy {name} disabled")
        toxics = toxi.toxics(name)
        if toxics:
            found.append(f"proxy {name} has toxics {[t.name for t in toxics]}")
    for name, t in runtime.targets().items():
        if t.kind in ("worker", "grape", "client") and runtime.state(name) != "running":
            found.append(f"{name} is {runtime.state(name)}")
    for pid in runtime.pids():
        if _process_state(pid) in ("T", "t"):
            found.append(f"process {pid} is stopped (SIGSTOP)")
    now = _behaviours(runtime)
    found += [f"{w} behaviour {now[w]} != {b}" for w, b in behaviours.items() if now[w] != b]
    try:
        runtime.check_health(15.0)  # grapes answer and every client sees every worker
    except LabError as exc:
        found.append(f"lab not healthy after the run: {exc}")
    return found


def _fault_rows(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """fault id -> client name -> that client's figures for the fault."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for figures in summary["policies"].values():
        for f in figures["faults"]:
            out.setdefault(f["fault_id"], {})[figures["client"]] = f
    return out


def _fmt(v: Any, unit: str = "") -> str:
    return "-" if v is None else f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _print_figures(summary: dict[str, Any]) -> None:
    print(f"\n== {summary['run_id']}: {summary['status']}, verdict {summary['verdict']}")
    rows = _fault_rows(summary)
    for fault in summary["faults"]:
        span = f"{_fmt(fault['started_s'], 's')}..{_fmt(fault['ended_s'], 's')}"
        print(f"-- {fault['id']} {fault['kind']} on {fault['target']} [{span}]")
        print(
            f"   {'client':<18} {'detect_s':>8} {'avail':>6} {'p99_ms':>8} {'p99x':>7} "
            f"{'recov_s':>7} {'share':>6} {'gossip_lag':>10}"
        )
        for client, f in sorted(rows.get(fault["id"], {}).items()):
            print(
                f"   {client:<18} {_fmt(f['detection_s']):>8} {_fmt(f['availability']):>6} "
                f"{_fmt(f['p99_ms']):>8} {_fmt(f['p99_ratio']):>7} {_fmt(f['recovery_s']):>7} "
                f"{_fmt(f['faulty_share']):>6} {_fmt(f['gossip_lag_s']):>10}"
            )


def _assert_clean(run: LocalRun) -> None:
    assert run.result.status == "completed", run.result.abort_reason
    assert run.summary["abort_reason"] is None
    assert run.leftovers == []


def _assert_confirmed(summary: dict[str, Any]) -> None:
    """Every fault was read back in place (started) and read back removed (ended)."""
    for f in summary["faults"]:
        assert f["skipped"] is None and f["error"] is None, f
        assert f["started_s"] is not None and f["ended_s"] is not None, f
        assert f["ended_s"] >= f["started_s"], f


# -- issue 4: blackhole, +300 ms, kill, gossip ---------------------------------------------

ADAPTIVE = """
name: local-adaptive
description: the adaptive client issue's faults, one after another, with a quiet client
seed: 7
runtime: local
topology: {grapes: 3, workers: 3}
clients:
  - {name: client-adaptive, policy: adaptive, gossip: true}
  # effectively idle until the test raises its rate (it holds a gossip hint by then)
  - {name: client-adaptive-2, policy: adaptive, gossip: true, rate: 0.1}
  - random
load: {rate: 100, payload_bytes: 64, timeout: 1s}
duration: 61s
warmup: 2s
timeline:
  - {at: 6s, fault: partition, target: worker-2, id: blackhole}
  - {at: 14s, heal: blackhole}
  - {at: 25s, fault: latency, target: worker-1, latency_ms: 300, jitter_ms: 0, id: slow}
  - {at: 33s, heal: slow}
  - {at: 44s, fault: kill, target: worker-3, id: killed}
  - {at: 50s, heal: killed}
expect:
  client-adaptive: {availability: ">= 0.99", recovery_s: "<= 8"}
  client-adaptive-2: {gossip_lag_s: "<= 1.5"}
"""
QUIET = "client-adaptive-2"
QUIET_RATE = 20.0


@dataclass(frozen=True)
class QuietStart:
    hint_at: float  # when the quiet client was first seen holding a hint against the peer
    peer: str


async def start_quiet_client_on_hint(runtime: LocalRuntime) -> QuietStart:
    """Once worker-2 is blackholed and the quiet client holds a gossip hint, load it.

    The quiet client sent nothing since the fault began (0.1 req/s: its next arrival is
    seconds away), so whatever keeps it off worker-2 afterwards came from gossip alone.
    """
    targets = runtime.targets()
    peer, proxy = targets["worker-2"].peer, targets["worker-2"].proxy
    assert peer and proxy
    quiet = targets[QUIET].control_url
    toxi = ToxiproxyAdapter(runtime.toxiproxy_api())
    deadline = time.monotonic() + 40.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session:
        while not await asyncio.to_thread(toxi.toxics, proxy):
            assert time.monotonic() < deadline, "the blackhole never appeared"
            await asyncio.sleep(0.05)
        while True:
            async with session.get(f"{quiet}/peers") as resp:
                peers = (await resp.json())["peers"]
            if any(p["peer"] == peer and p["hints"] for p in peers):
                hint_at = time.monotonic()
                break
            assert time.monotonic() < deadline, "the quiet client never held a hint"
            await asyncio.sleep(0.02)
        async with session.patch(f"{quiet}/load", json={"rate": QUIET_RATE}) as resp:
            assert resp.status == 200, await resp.text()
    return QuietStart(hint_at, peer)


@pytest.mark.toxiproxy
@pytest.mark.slow  # a lab launch and about a minute of load
@pytest.mark.timeout(300)
async def test_adaptive_routes_around_blackhole_latency_and_kill_and_gossip_steers_a_quiet_client(
    tmp_path: Path,
) -> None:
    run = await run_local(tmp_path, ADAPTIVE, side=start_quiet_client_on_hint)
    _assert_clean(run)
    _assert_confirmed(run.summary)
    rows = _fault_rows(run.summary)
    assert [f["id"] for f in run.summary["faults"]] == ["blackhole", "slow", "killed"]

    black, slow, killed = rows["blackhole"], rows["slow"], rows["killed"]
    ours, rnd = "client-adaptive", "client-random"
    # blackhole: away within 1 s, nothing lost, strictly better than the plain client
    assert black[ours]["detection_s"] is not None, black[ours]
    assert black[ours]["detection_s"] <= 1.0
    assert black[ours]["availability"] >= 0.99
    assert black[ours]["availability"] > black[rnd]["availability"]
    # +300 ms: away within 2 s; its tail grows far less than random's
    assert slow[ours]["detection_s"] is not None, slow[ours]
    assert slow[ours]["detection_s"] <= 2.0
    assert slow[ours]["p99_ratio"] < slow[rnd]["p99_ratio"]
    # killed: refused connections are the plainest failure
    assert killed[ours]["detection_s"] is not None, killed[ours]
    assert killed[ours]["detection_s"] <= 1.0
    assert killed[ours]["availability"] >= 0.99
    for figures in (black, slow, killed):
        assert figures[ours]["recovery_s"] is not None, figures[ours]
        assert figures[ours]["recovery_s"] <= 8.0

    # gossip: the quiet client never sent to the blackholed worker, yet kept off it
    quiet_start: QuietStart = run.side
    assert quiet_start is not None, "the side task did not finish"
    fault = next(f for f in run.history.faults if f.id == "blackhole")
    assert fault.started is not None and fault.ended is not None
    quiet_reqs = [r for r in run.history.requests if r.client == QUIET]
    loaded = [r for r in quiet_reqs if quiet_start.hint_at <= r.issued < fault.ended]
    to_faulty = [
        a
        for r in quiet_reqs
        for a in r.attempts
        if a.peer == quiet_start.peer and fault.started <= a.start < fault.ended
    ]
    loud_detected = fault.started + black[ours]["detection_s"]
    hint_lag = quiet_start.hint_at - loud_detected
    print(
        f"gossip: quiet client held a hint {hint_lag:+.3f} s after client-adaptive's "
        f"detection; it then sent {len(loaded)} requests during the fault, "
        f"{len(to_faulty)} attempts to the blackholed worker"
    )
    assert len(loaded) >= 50, "the quiet client was not loaded long enough to tell"
    assert to_faulty == []  # by chance alone: (2/3)^50 < 1e-8
    assert hint_lag <= 1.5
    lag = black[QUIET]["gossip_lag_s"]
    assert lag is not None and lag <= 1.5, black[QUIET]


# -- issue 5: every fault kind on the local runtime ----------------------------------------

KINDS = """
name: local-kinds
description: every fault kind once, one after another on different targets
seed: 11
runtime: local
topology: {grapes: 3, workers: 3}
clients: [adaptive, random]
load: {rate: 50, payload_bytes: 64, timeout: 1s}
duration: 73s
warmup: 2s
timeline:
  - {at: 6s, fault: one_way_partition, target: worker-1, direction: upstream, for: 3s}
  - {at: 11s, fault: down, target: worker-2, for: 3s}
  - {at: 16s, fault: reset_peer, target: worker-3, timeout_ms: 0, for: 3s}
  - {at: 21s, fault: bandwidth, target: worker-1, rate_kbps: 4, for: 3s}
  - {at: 26s, fault: slow_close, target: worker-2, delay_ms: 500, for: 3s}
  - {at: 31s, fault: pause, target: worker-3, for: 3s}
  - {at: 36s, fault: restart, target: worker-1}
  - {at: 41s, fault: grape_partition, target: grape-2, for: 3s}
  - {at: 46s, fault: slow, target: worker-2, latency: {kind: fixed, ms: 300}, for: 3s}
  - {at: 51s, fault: errors, target: worker-3, error_rate: 0.5, for: 3s}
  - {at: 56s, fault: down, target: worker-1, every: 2s, for: 1s, until: 61s, id: flap}
  - at: 63s
    fault: chaos
    id: chaos
    targets: [worker-2, worker-3]
    kinds: [partition, down, reset_peer, {latency: {latency_ms: 300}}, {errors: {error_rate: 0.5}}]
    count: 2
    hold: 2s
    every: 3s
"""
SINGLE_KINDS = {
    "one_way_partition", "down", "reset_peer", "bandwidth", "slow_close", "pause", "restart",
    "grape_partition", "slow", "errors",
}  # fmt: skip


@pytest.mark.toxiproxy
@pytest.mark.slow  # a lab launch and about a minute of load
@pytest.mark.timeout(300)
async def test_every_fault_kind_is_confirmed_and_leaves_nothing_behind(tmp_path: Path) -> None:
    run = await run_local(tmp_path, KINDS)
    _assert_clean(run)
    _assert_confirmed(run.summary)
    faults = run.summary["faults"]
    assert {f["kind"] for f in faults} >= SINGLE_KINDS
    ids = [f["id"] for f in faults]
    assert [i for i in ids if i.startswith("flap.")] == ["flap.1", "flap.2", "flap.3"]
    assert [i for i in ids if i.startswith("chaos.")] == ["chaos.1", "chaos.2"]
    assert len(faults) == 15
    restart = next(f for f in faults if f["kind"] == "restart")
    assert restart["ended_s"] > restart["started_s"]  # the real outage, stop to start
    # retries to another peer: the adaptive client lost less than the plain one overall
    by_policy = run.summary["policies"]
    assert by_policy["adaptive"]["availability"] > by_policy["random"]["availability"]
    rows = _fault_rows(run.summary)
    for fid, figures in rows.items():
        ours, plain = figures["client-adaptive"], figures["client-random"]
        assert ours["availability"] >= 0.95, (fid, ours)
        assert ours["availability"] >= plain["availability"], (fid, ours, plain)
    # a worker that cannot answer at all is left within 2 s (f1 one-way, f2 down,
    # f3 reset, f6 paused); the plain client keeps sending it its third
    for fid in ("f1", "f2", "f3", "f6"):
        ours, plain = rows[fid]["client-adaptive"], rows[fid]["client-random"]
        assert ours["detection_s"] is not None and ours["detection_s"] <= 2.0, (fid, ours)
        assert plain["detection_s"] is None, (fid, plain)
    history = run.history
    assert {r.client for r in history.requests} == {"client-adaptive", "client-random"}


# -- what the runs showed about the checker ------------------------------------------------


def test_a_request_caught_in_flight_by_the_fault_is_not_steady_state() -> None:
    """Issued 50 ms before the blackhole, answered by its timeout 1 s later: the fault's.

    ``steady_until`` already gives the fault the requests issued between its request
    and its confirmation; one issued a moment earlier and still waiting when the fault
    lands is its victim just as much. Seen on the local runtime: the kinds scenario with
    one second of baseline (50 requests) had random's p99 before = 1002 ms.
    """
    from histbuild import T0, B, fault, history, request, round_robin, stream

    from lab.history import Outcome
    from lab.scenario.checks.figures import client_figures

    peers = ("toxiproxy:21001", B, "toxiproxy:21003")
    reqs = stream("client-random", "random", 0, 20, round_robin(peers))
    f = fault(start=10.0)
    hung_at = f.requested - T0 - 0.05
    reqs.append(
        request("client-random", "random", 999, hung_at, B, latency=1.0, outcome=Outcome.TIMEOUT)
    )
    p99 = client_figures(history(reqs, [f], duration=20.0))["client-random"].p99_ms_before
    assert p99 is not None and abs(p99 - 10.0) < 1e-6  # the healthy 10 ms answers only
