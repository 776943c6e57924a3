"""Rollback: every undo tried in reverse, the marker file, leftovers of a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import echo_server, round_trip

from lab.errors import FaultError
from lab.fake_lab_client import FakeLabClient
from lab.procs import free_port, wait_until
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.kinds import make_fault
from lab.scenario.faults.marker import MARKER
from lab.scenario.faults.rollback import Rollback
from lab.scenario.runtime.protocol import Target
from lab.toxiproxy_adapter import ToxiproxyAdapter

# -- the stack, without any server ------------------------------------------------------


def test_every_undo_runs_last_first_and_errors_are_collected(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    rb = Rollback(marker, info={"run_id": "r1"})
    calls: list[str] = []

    def boom() -> None:
        calls.append("b")
        raise FaultError("b failed")

    rb.push("a", "undo a", lambda: calls.append("a"), {"id": "a", "kind": "x", "target": "t"})
    rb.push("b", "undo b", boom, {"id": "b", "kind": "x", "target": "t"})
    rb.push("c", "undo c", lambda: calls.append("c"))
    assert json.loads(marker.read_text())["faults"] == [
        {"id": "a", "kind": "x", "target": "t"},
        {"id": "b", "kind": "x", "target": "t"},
    ]
    results = rb.run()
    assert calls == ["c", "b", "a"]
    assert [(r.label, r.ok) for r in results] == [
        ("undo c", True),
        ("undo b", False),
        ("undo a", True),
    ]
    assert results[1].error == "FaultError: b failed"
    # the failed undo stays in the marker for cleanup_leftovers to retry
    assert [f["id"] for f in json.loads(marker.read_text())["faults"]] == ["b"]


def test_marker_removed_after_a_clean_rollback_and_disarm_forgets(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    rb = Rollback(marker)
    calls: list[str] = []
    rb.push("a", "undo a", lambda: calls.append("a"), {"id": "a"})
    rb.push("b", "undo b", lambda: calls.append("b"), {"id": "b"})
    rb.disarm("a")
    assert [f["id"] for f in json.loads(marker.read_text())["faults"]] == ["b"]
    rb.run()
    assert calls == ["b"] and not marker.exists()
    assert rb.run() == []  # running twice is harmless


def test_cleanup_without_marker_does_nothing(tmp_path: Path) -> None:
    assert cleanup_leftovers(tmp_path).found is False


def test_cleanup_refuses_while_the_run_is_alive(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / MARKER).write_text(json.dumps({"run_id": "live", "pid": sleeper.pid}))
        with pytest.raises(FaultError, match=r"run live \(pid \d+\) is still in flight"):
            cleanup_leftovers(tmp_path)
        assert (tmp_path / MARKER).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# -- against a real Toxiproxy -----------------------------------------------------------


def test_cleanup_quiets_a_dead_runs_clients_and_tolerates_a_gone_one(tmp_path: Path) -> None:
    """Compose clients outlive a killed run: its load stops, the oracle forgets its faults."""
    lab = FakeLabClient()
    oracle = lab.add("http://oracle:1", load={"rate": 10}, oracle=["10.0.0.1:1"])
    marker = {
        "run_id": "r-dead",
        "pid": 0,
        "runtime": "compose",
        "faults": [],
        "clients": [
            {"name": "client-oracle", "control_url": "http://oracle:1", "policy": "oracle"},
            {"name": "client-gone", "control_url": "http://gone:1", "policy": "random"},
        ],
    }
    (tmp_path / MARKER).write_text(json.dumps(marker))
    report = cleanup_leftovers(tmp_path, lab=lab)
    assert oracle.load is None and oracle.oracle == []
    assert report.actions[0] == "stopped the load of client-oracle"
    assert report.actions[1].startswith("could not stop the load of client-gone")
    assert not report.errors and not (tmp_path / MARKER).exists()


@pytest.fixture
def worker(toxi: ToxiproxyAdapter) -> Iterator[Target]:
    with echo_server() as upstream:
        listen = f"127.0.0.1:{free_port()}"
        toxi.create_proxy("worker-1", listen, upstream)
        toxi.create_proxy("worker-2", f"127.0.0.1:{free_port()}", upstream)
        try:
            yield Target("worker-1", "worker", proxy="worker-1", peer=listen)
        finally:
            toxi.delete_proxy("worker-1")
            toxi.delete_proxy("worker-2")


@pytest.mark.toxiproxy
def test_an_exception_after_injecting_leaves_no_toxic(
    tmp_path: Path, toxi: ToxiproxyAdapter, worker: Target
) -> None:
    ctx = FaultContext(runtime=None, toxiproxy=toxi)  # type: ignore[arg-type]
    rb = Rollback(tmp_path / MARKER, info={"toxiproxy_api": toxi.api})
    with pytest.raises(RuntimeError, match="mid-run"):
        try:
            for fid, kind in (("f1", "partition"), ("f2", "down")):
                fault = make_fault(fid, kind, worker, {}, ctx)
                rb.arm(fault)
                fault.inject()
            assert toxi.toxics("worker-1") and not toxi.proxy("worker-1").enabled
            raise RuntimeError("mid-run")
        finally:
            rb.run()
    assert toxi.proxy("worker-1").toxics == () and toxi.proxy("worker-1").enabled
    assert all(r.ok for r in rb.results) and not (tmp_path / MARKER).exists()
    assert worker.peer and round_trip(worker.peer)[0] == "ok"


@pytest.mark.toxiproxy
def test_cleanup_leftovers_undoes_a_crashed_runs_faults_and_spares_foreign_toxics(
    tmp_path: Path, toxi: ToxiproxyAdapter, worker: Target
) -> None:
    ctx = FaultContext(runtime=None, toxiproxy=toxi)  # type: ignore[arg-type]
    rb = Rollback(tmp_path / MARKER, info={"run_id": "crashed", "toxiproxy_api": toxi.api})
    for fid, kind in (("f1", "latency"), ("f2", "down")):
        fault = make_fault(fid, kind, worker, {"latency_ms": 50}, ctx)
        rb.arm(fault)
        fault.inject()
    toxi.add_toxic("worker-2", "someone-elses", "latency", {"latency": 1})
    # the "crash": nobody runs rb; a dead pid owns the marker
    data = json.loads((tmp_path / MARKER).read_text())
    data["pid"] = _dead_pid()
    (tmp_path / MARKER).write_text(json.dumps(data))
    report = cleanup_leftovers(tmp_path)
    assert report.found and report.run_id == "crashed"
    assert "re-enabled proxy worker-1" in report.actions
    assert toxi.proxy("worker-1").toxics == () and toxi.proxy("worker-1").enabled
    assert [t.name for t in toxi.toxics("worker-2")] == ["someone-elses"]
    assert not (tmp_path / MARKER).exists()
    toxi.remove_all_toxics("worker-2")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- a real process interrupted by a signal ---------------------------------------------

DRIVER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from lab.toxiproxy_adapter import ToxiproxyAdapter
    from lab.scenario.faults.base import FaultContext
    from lab.scenario.faults.kinds import make_fault
    from lab.scenario.faults.rollback import Rollback
    from lab.scenario.runtime.protocol import Target

    api, proxy, marker = sys.argv[1:4]

    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    toxi = ToxiproxyAdapter(api)
    rb = Rollback(Path(marker), info={"run_id": "driver", "toxiproxy_api": api})
    target = Target(proxy, "worker", proxy=proxy, peer="x:1")
    try:
        for fid, kind in (("f1", "partition"), ("f2", "latency"), ("f3", "down")):
            fault = make_fault(fid, kind, target, {"latency_ms": 100}, FaultContext(None, toxi))
            rb.arm(fault)
            fault.inject()
        print("injected", flush=True)
        time.sleep(60)
    finally:
        rb.run()
        print("rolled back", flush=True)
    """
)


@pytest.mark.toxiproxy
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signalled_process_leaves_no_fault_behind(
    tmp_path: Path, toxi: ToxiproxyAdapter, worker: Target, sig: signal.Signals
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, toxi.api, "worker-1", str(tmp_path / MARKER)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "injected"
        assert len(toxi.toxics("worker-1")) == 3 and not toxi.proxy("worker-1").enabled
        os.kill(proc.pid, sig)
        proc.wait(10)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if sig == signal.SIGKILL:
        assert (tmp_path / MARKER).exists()  # nothing ran: the marker says what is left
        assert toxi.toxics("worker-1")
        cleanup_leftovers(tmp_path)
    else:
        assert "rolled back" in out
    wait_until(lambda: not (tmp_path / MARKER).exists(), 2.0, what="marker removed")
    state = toxi.proxy("worker-1")
    assert state.toxics == () and state.enabled
