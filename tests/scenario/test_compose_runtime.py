"""The scenario engine on the Compose lab: targets, the shared clock, faults, runs, rollback.

Everything here acts on the real lab (`lab up`, reused when it is already up, never taken
down: other suites and people use it). Each test leaves the lab as it found it and checks
that through Docker and Toxiproxy: every container running, healthy and on the lab
network, no toxic on any proxy, every proxy enabled, every grape listing every worker.

Why the clock gets two proofs: the probe (a client's ``GET /clock`` bracketed by host
readings) shows one reading agrees; the partition run's journal shows the whole history
agrees, because a request the client timed as sent while the blackhole was in place (host
times) cannot have been answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_lab import Lab, lab_session
from engine_support import probe_over_http

from lab.errors import FaultError, RuntimeUnavailable
from lab.history import Outcome, read_journal
from lab.procs import wait_until
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.kinds import make_fault
from lab.scenario.faults.marker import MARKER
from lab.scenario.runtime.compose import ComposeRuntime
from lab.scenario.runtime.protocol import clients, target
from lab.stack import health
from lab.stack.engine import Engine, service_name
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {f"worker-{i}": f"toxiproxy:2100{i}" for i in (1, 2, 3)}
GRAPES = {f"grape-{i}": f"http://127.0.0.1:3000{i}" for i in (1, 2, 3)}

ABORT_SCENARIO = """
name: compose-abort
seed: 3
clients: [adaptive, random]
load: {rate: 50}
duration: 30s
warmup: 1s
settle: 1s
timeline:
  - {at: 1.5s, fault: partition, target: worker-2}
  - {at: 2s, fault: pause, target: worker-3}
  - {at: 25s, heal: worker-2}
  - {at: 25s, heal: worker-3}
"""


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    yield from lab_session()


@pytest.fixture(scope="module")
def runtime(compose_lab: Lab) -> Iterator[ComposeRuntime]:
    rt = ComposeRuntime.connect()
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def whole_lab(runtime: ComposeRuntime) -> Iterator[ComposeRuntime]:
    """The lab whole before the test (a previous failure must not cascade) and after it."""
    assert_lab_whole(runtime)
    yield runtime
    assert_lab_whole(runtime)


# -- what "whole" means, read from Docker, Toxiproxy and the grapes ----------------------


def docker_view(engine: Engine, name: str) -> tuple[str, list[str]]:
    """(``State.Status``, networks) of a service's container, freshly inspected."""
    for c in engine.containers(all=True):
        if service_name(c) == name:
            nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            return str(c.attrs["State"]["Status"]), sorted(nets)
    raise AssertionError(f"no container for {name}")


def lookup(api: str) -> set[str]:
    body = json.dumps({"rid": str(uuid.uuid4()), "data": "rpc_test"}).encode()
    req = urllib.request.Request(f"{api}/lookup", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            found = json.loads(resp.read() or b"null")
    except OSError:
        return set()
    return set(found) if isinstance(found, list) else set()


def grape_call(api: str, verb: str, data: Any) -> Any:
    body = json.dumps({"rid": str(uuid.uuid4()), "data": data}).encode()
    req = urllib.request.Request(f"{api}/{verb}", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return json.loads(resp.read() or b"null")
    except OSError:
        return None


def toxics_left(runtime: ComposeRuntime) -> dict[str, list[str]]:
    proxies = ToxiproxyAdapter(runtime.toxiproxy_api(), timeout=2.0).proxies()
    return {n: [t.name for t in p.toxics] for n, p in proxies.items() if p.toxics}


def disabled_proxies(runtime: ComposeRuntime) -> list[str]:
    proxies = ToxiproxyAdapter(runtime.toxiproxy_api(), timeout=2.0).proxies()
    return sorted(n for n, p in proxies.items() if not p.enabled)


def assert_lab_whole(runtime: ComposeRuntime, within_s: float = 40.0) -> None:
    """Every container running, healthy, on the network; no toxic; discovery complete."""
    names = sorted(runtime.targets())
    network = runtime.network.name
    problems: list[str] = []

    def whole() -> bool:
        problems.clear()
        for name, st in health.states(runtime.engine, names).items():
            if not st.ready:
                problems.append(f"{name} {st.state}/{st.health}")
        for name in names:
            if network not in docker_view(runtime.engine, name)[1]:
                problems.append(f"{name} not on {network}")
        if toxics_left(runtime) or disabled_proxies(runtime):
            problems.append(f"toxics {toxics_left(runtime)}, disabled {disabled_proxies(runtime)}")
        for grape, api in GRAPES.items():
            if lookup(api) != set(WORKERS.values()):
                problems.append(f"{grape} lists {sorted(lookup(api))}")
        return not problems

    try:
        wait_until(whole, within_s, interval=0.5, what="the Compose lab to be whole")
    except Exception:
        pytest.fail(f"the Compose lab is not whole after {within_s:.0f} s: {problems}")


# -- (1) targets and the clock ----------------------------------------------------------


def test_the_runtime_finds_every_target_by_its_labels(runtime: ComposeRuntime) -> None:
    by_docker = {service_name(c): c.labels for c in runtime.engine.containers(all=True)}
    found = runtime.targets()
    assert set(found) == set(by_docker)
    for i in (1, 2, 3):
        w = target(runtime, f"worker-{i}", ("worker",))
        assert (w.proxy, w.peer, w.control_url) == (
            f"worker-{i}",
            f"toxiproxy:2100{i}",
            f"http://127.0.0.1:910{i}",
        )
        g = target(runtime, f"grape-{i}", ("grape",))
        assert g.control_url == GRAPES[g.name] and g.proxy is None
    cs = clients(runtime)
    assert {c.name for c in cs} >= {"client-adaptive", "client-random", "client-oracle"}
    for c in cs:
        assert c.policy == by_docker[c.name]["com.grenache-lab.policy"]
        assert c.name.startswith(f"client-{c.policy}")
    assert runtime.toxiproxy_api() == "http://127.0.0.1:8474"
    assert runtime.network.name in docker_view(runtime.engine, "worker-1")[1]
    with pytest.raises(RuntimeUnavailable, match="no worker/grape named 'wrker-2'"):
        target(runtime, "wrker-2", ("worker", "grape"))


def test_client_containers_read_the_hosts_monotonic_clock(runtime: ComposeRuntime) -> None:
    host_ns = os.readlink("/proc/self/ns/time")
    for c in clients(runtime):
        probe = asyncio.run(probe_over_http(c, samples=5))
        # The client read its clock between the host's two readings: same clock.
        assert abs(probe.offset) <= probe.bound + 1e-4, probe
        assert abs(probe.offset) < 0.005, probe
        # and why: the container is in the host's time namespace (no CLOCK_MONOTONIC shift).
        container = next(
            x for x in runtime.engine.containers(all=False) if service_name(x) == c.name
        )
        code, out = container.exec_run(
            ["python", "-c", "import os; print(os.readlink('/proc/self/ns/time'))"]
        )
        assert code == 0 and out.decode().strip() == host_ns, out


# -- (2) whole scenarios through `lab run` -----------------------------------------------


def lab_run(path: Path, reports: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab", "run", str(path), "--reports", str(reports)],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def only_run_dir(reports: Path) -> Path:
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    return run_dir


def assert_alignment(journal: Path, peer: str) -> None:
    """No answered attempt to ``peer`` was sent (client clock) while it was blackholed.

    The toxic was in place before ``started`` was read and until after ``requested`` of
    the heal (host clock), and bytes sent into it never come back. A client clock ahead
    of the host's would show answers sent "after" the start, one behind would show
    answers sent "before" the heal's request.
    """
    history = read_journal(journal)
    (fault,) = history.faults
    assert fault.started is not None and fault.ended is not None
    heal_requested = fault.ended  # conservative: the heal's request came before its end
    answered = [
        a.start
        for r in history.requests
        for a in r.attempts
        if a.peer == peer and a.outcome == Outcome.OK
    ]
    before = [t for t in answered if t < fault.started]
    after = [t for t in answered if t > fault.started]
    inside = [t - fault.started for t in answered if fault.started < t < heal_requested - 0.05]
    assert before and after, "the peer answered before and after the fault"
    assert inside == [], f"answered attempts sent during the blackhole at +{inside[:5]} s"
    # The last answer sent before the fault is close to its start: the clocks are not apart
    # by more than the gap between two requests to that peer.
    assert fault.started - max(before) < 0.5, fault.started - max(before)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["partition", "kill-worker"])
def test_a_ci_scenario_runs_end_to_end_and_leaves_the_lab_whole(
    whole_lab: ComposeRuntime, tmp_path: Path, name: str
) -> None:
    reports = tmp_path / "reports"
    proc = lab_run(ROOT / "scenarios" / "ci" / f"{name}.yaml", reports)
    out, _ = proc.communicate(timeout=120)
    # 0 or 1: the engine carried the run out; whether the balancer met its bounds is the
    # balancer's business (tests/balancer), 2 would be the engine's failure.
    assert proc.returncode in (0, 1), out[-3000:]
    run_dir = only_run_dir(reports)
    for f in ("summary.json", "junit.xml", "report.html", "journal.jsonl"):
        assert (run_dir / f).is_file(), f
    assert "<testsuite" in (run_dir / "junit.xml").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["verdict"] in ("pass", "fail")
    assert summary["versions"]["runtime"] == "compose"
    pol = summary["policies"]
    assert pol["adaptive"]["detection_s"] is not None, pol["adaptive"]
    assert pol["adaptive"]["availability"] > pol["random"]["availability"], pol
    (fault,) = summary["faults"]
    assert fault["target"] == "worker-2" and fault["ended_s"] > fault["started_s"]
    # Only this run's requests, though the clients hold earlier runs' (the other param):
    # 100 req/s for 30 s each, none issued before this run's load started.
    history = read_journal(run_dir / "journal.jsonl")
    load = next(p for p in history.meta.phases if p["name"] == "load")
    assert min(r.issued for r in history.requests) >= load["start"]
    assert all(2900 <= p["requests"] <= 3030 for p in pol.values()), pol
    assert not (reports / MARKER).exists()
    if name == "partition":
        assert_alignment(run_dir / "journal.jsonl", WORKERS["worker-2"])
    # whole_lab checks on the way out: the killed worker-2 started, healthy, rediscovered.


# -- (3) each runtime fault kind, injected and healed through lab.scenario.faults.nemesis --------


@pytest.fixture
def ctx(whole_lab: ComposeRuntime) -> FaultContext:
    return FaultContext(runtime=whole_lab, toxiproxy=ToxiproxyAdapter(whole_lab.toxiproxy_api()))


@pytest.mark.parametrize(
    ("kind", "name", "docker_during"),
    [("kill", "worker-3", "exited"), ("pause", "worker-3", "paused")],
)
def test_a_container_fault_shows_in_docker_and_heals(
    ctx: FaultContext, kind: str, name: str, docker_during: str
) -> None:
    rt = ctx.runtime
    assert isinstance(rt, ComposeRuntime)
    fault = make_fault(f"t-{kind}", kind, target(rt, name), {}, ctx)
    try:
        rec = fault.inject()
        assert rec.started is not None and rec.requested <= rec.started
        assert docker_view(rt.engine, name)[0] == docker_during
        healed = fault.heal()
        assert healed.ended is not None and healed.ended > rec.started
        assert docker_view(rt.engine, name)[0] == "running"
    finally:
        fault.undo()


def test_undo_of_a_pause_that_never_took_leaves_the_container_running(
    ctx: FaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = ctx.runtime
    assert isinstance(rt, ComposeRuntime)

    def refused(name: str) -> None:
        raise FaultError(f"docker pause {name}: 409 Conflict (simulated)")

    monkeypatch.setattr(rt, "pause", refused)
    fault = make_fault("t-refused", "pause", target(rt, "worker-3"), {}, ctx)
    with pytest.raises(FaultError, match="simulated"):
        fault.inject()
    fault.undo()  # armed, never took: nothing to unpause, and no error
    assert docker_view(rt.engine, "worker-3")[0] == "running"


def test_a_grape_partition_disconnects_it_and_it_rejoins_discovery(ctx: FaultContext) -> None:
    rt = ctx.runtime
    assert isinstance(rt, ComposeRuntime)
    net = rt.network.name
    fault = make_fault("t-split", "grape_partition", target(rt, "grape-3"), {}, ctx)
    try:
        fault.inject()
        assert net not in docker_view(rt.engine, "grape-3")[1]
        assert rt.state("grape-3") == "disconnected"
        fault.heal()
        assert net in docker_view(rt.engine, "grape-3")[1]
    finally:
        fault.undo()
    # Rejoined: grape-3's API answers on its published port and lists every worker, and
    # DHT values cross between it and the others both ways.
    wait_until(
        lambda: all(lookup(api) == set(WORKERS.values()) for api in GRAPES.values()),
        30.0,
        interval=0.5,
        what="every grape to list every worker after grape-3 rejoined",
    )
    for src, dst in (("grape-3", "grape-1"), ("grape-1", "grape-3")):
        value = f"rejoin-{uuid.uuid4().hex}"
        keys: list[str] = []

        def put(src: str = src, value: str = value, keys: list[str] = keys) -> bool:
            key = grape_call(GRAPES[src], "put", {"v": value})
            keys.extend([key] if isinstance(key, str) else [])
            return bool(keys)

        wait_until(put, 15.0, interval=0.5, what=f"a put through {src}")
        key = keys[0]

        def readable(dst: str = dst, key: str = key, value: str = value) -> bool:
            return (grape_call(GRAPES[dst], "get", key) or {}).get("v") == value

        wait_until(readable, 15.0, interval=0.5, what=f"{src}'s put to be read through {dst}")


def test_a_worker_behaviour_fault_goes_through_its_control_port(ctx: FaultContext) -> None:
    rt = ctx.runtime
    w = target(rt, "worker-3")
    url = f"{w.control_url}/behaviour"

    def behaviour() -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return dict(json.loads(resp.read()))

    before = behaviour()
    fault = make_fault("t-slow", "slow", w, {"latency_ms": 250}, ctx)
    try:
        fault.inject()
        during = behaviour()
        assert during["latency"]["kind"] == "fixed" and during["latency"]["ms"] == 250, during
        fault.heal()
    finally:
        fault.undo()
    assert behaviour() == before


# -- (4) SIGINT and (5) kill -9 of `lab run` while faults are in place ------------------


def start_abortable(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    path = tmp_path / "abort.yaml"
    path.write_text(ABORT_SCENARIO)
    reports = tmp_path / "reports"
    return lab_run(path, reports), reports


def wait_both_injected(rt: ComposeRuntime, reports: Path) -> dict[str, Any]:
    """Until the marker lists both faults and Docker and Toxiproxy show them in place."""
    marker = reports / MARKER

    def injected() -> bool:
        try:
            data = json.loads(marker.read_text())
        except (OSError, ValueError):
            return False
        return (
            len(data.get("faults") or []) == 2
            and docker_view(rt.engine, "worker-3")[0] == "paused"
            and bool(toxics_left(rt).get("worker-2"))
        )

    wait_until(injected, 30.0, interval=0.1, what="the partition and the pause to be in place")
    return dict(json.loads(marker.read_text()))


def stop(proc: subprocess.Popen[str], sig: int, timeout: float = 30.0) -> str:
    try:
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out


def test_sigint_mid_fault_aborts_with_exit_2_and_rolls_everything_back(
    whole_lab: ComposeRuntime, tmp_path: Path
) -> None:
    proc, reports = start_abortable(tmp_path)
    wait_both_injected(whole_lab, reports)
    out = stop(proc, signal.SIGINT)
    assert proc.returncode == 2, out[-3000:]
    summary = json.loads((only_run_dir(reports) / "summary.json").read_text())
    assert summary["status"] == "aborted" and summary["verdict"] == "aborted"
    assert "SIGINT" in summary["abort_reason"]
    assert (only_run_dir(reports) / "report.html").is_file()
    assert not (reports / MARKER).exists()
    # Straight after the exit, before any settling: nothing injected any more.
    assert toxics_left(whole_lab) == {}
    assert docker_view(whole_lab.engine, "worker-3")[0] == "running"


def test_kill_9_mid_fault_leaves_a_marker_the_next_run_cleans_up(
    whole_lab: ComposeRuntime, tmp_path: Path
) -> None:
    proc, reports = start_abortable(tmp_path)
    marker = wait_both_injected(whole_lab, reports)
    stop(proc, signal.SIGKILL, timeout=10)
    t_dead = time.monotonic()
    try:
        assert marker["runtime"] == "compose" and (reports / MARKER).exists()
        assert {f["kind"] for f in marker["faults"]} == {"partition", "pause"}
        # The dead run's faults are still there: nobody undid them.
        assert toxics_left(whole_lab).get("worker-2")
        assert docker_view(whole_lab.engine, "worker-3")[0] == "paused"
        report = cleanup_leftovers(reports)  # what the next `lab run` does first
    finally:
        if (reports / MARKER).exists():  # the assertions failed: still leave the lab whole
            cleanup_leftovers(reports, force=True)
    assert report.found and report.errors == []
    assert any("removed toxic lab-f1" in a for a in report.actions), report.actions
    assert "unpaused worker-3" in report.actions
    # The dead run's clients had 28 s of load left; cleanup stopped it.
    assert {"stopped the load of client-adaptive", "stopped the load of client-random"} <= set(
        report.actions
    )
    for c in clients(whole_lab, ["client-adaptive", "client-random"]):
        with urllib.request.urlopen(f"{c.control_url}/load", timeout=2) as resp:
            assert json.loads(resp.read())["running"] is False, c.name
    assert not (reports / MARKER).exists()
    assert toxics_left(whole_lab) == {}
    assert docker_view(whole_lab.engine, "worker-3")[0] == "running"
    assert time.monotonic() - t_dead < 10
