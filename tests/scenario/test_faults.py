"""The nemesis against real parts: a real Toxiproxy with a TCP echo server behind it, a
real HTTP behaviour endpoint, and a real process for the runtime faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from engine_support import echo_server, round_trip

from lab.errors import FaultError
from lab.procs import free_port
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.kinds import make_fault
from lab.scenario.faults.nemesis import FAULT_KINDS
from lab.scenario.runtime.protocol import Target
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = pytest.mark.toxiproxy


class ProcessRuntime:
    """Just enough of a Runtime over one real process, to drive the runtime faults."""

    name = "test"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.start("worker-1")

    def targets(self) -> Mapping[str, Target]:
        return {"worker-1": Target("worker-1", "worker", peer="127.0.0.1:1")}

    def start(self, name: str) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def kill(self, name: str) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def stop(self, name: str) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(5)

    def pause(self, name: str) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def unpause(self, name: str) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def state(self, name: str) -> str:
        if self.proc is None or self.proc.poll() is not None:
            return "stopped"
        return "paused" if self.paused else "running"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.unpause("worker-1")
            self.kill("worker-1")


@pytest.fixture
def worker(toxi: ToxiproxyAdapter) -> Iterator[Target]:
    """An echo server behind proxy ``worker-1``, addressed as a worker target."""
    with echo_server() as upstream:
        listen = f"127.0.0.1:{free_port()}"
        toxi.create_proxy("worker-1", listen, upstream)
        try:
            yield Target("worker-1", "worker", proxy="worker-1", peer=listen)
        finally:
            toxi.delete_proxy("worker-1")


@pytest.fixture
def runtime() -> Iterator[ProcessRuntime]:
    rt = ProcessRuntime()
    yield rt
    rt.close()


def ctx(toxi: ToxiproxyAdapter, rt: Any = None) -> FaultContext:
    return FaultContext(runtime=rt, toxiproxy=toxi)


@pytest.mark.parametrize(
    ("kind", "params", "during"),
    [
        ("partition", {}, "timeout"),
        ("one_way_partition", {"direction": "upstream"}, "timeout"),
        ("one_way_partition", {"direction": "downstream"}, "timeout"),
        ("down", {}, "refused"),
        ("reset_peer", {}, "reset"),
    ],
)
def test_connection_faults_change_real_traffic_and_heal_leaves_nothing(
    toxi: ToxiproxyAdapter, worker: Target, kind: str, params: dict[str, Any], during: str
) -> None:
    assert worker.peer is not None
    fault = make_fault("f1", kind, worker, params, ctx(toxi))
    rec = fault.inject()
    assert rec.started is not None and rec.requested <= rec.started
    assert rec.peers == (worker.peer,) and rec.target == "worker-1" and rec.kind == kind
    outcome, _ = round_trip(worker.peer, timeout=0.4)
    # reset_peer with timeout 0 may close the stream before the RST is seen
    assert outcome == during or (during == "reset" and outcome == "closed")
    healed = fault.heal()
    assert healed.ended is not None and healed.ended >= rec.started
    proxy = toxi.proxy("worker-1")
    assert proxy.toxics == () and proxy.enabled
    assert round_trip(worker.peer)[0] == "ok"


def test_latency_fault_delays_replies_by_its_amount(toxi: ToxiproxyAdapter, worker: Target) -> None:
    assert worker.peer is not None
    fault = make_fault("lat", "latency", worker, {"latency_ms": 150}, ctx(toxi))
    fault.inject()
    assert [t.name for t in toxi.toxics("worker-1")] == ["lab-lat-downstream"]
    outcome, took = round_trip(worker.peer)
    assert outcome == "ok" and took >= 0.14
    fault.heal()
    outcome, took = round_trip(worker.peer)
    assert outcome == "ok" and took < 0.1


def test_bandwidth_and_slow_close_are_toxics_with_their_attributes(
    toxi: ToxiproxyAdapter, worker: Target
) -> None:
    bw = make_fault("bw", "bandwidth", worker, {"rate_kbps": 10}, ctx(toxi))
    sc = make_fault("sc", "slow_close", worker, {"delay_ms": 50}, ctx(toxi))
    bw.inject()
    sc.inject()
    got = {t.name: (t.type, t.attributes) for t in toxi.toxics("worker-1")}
    assert got["lab-bw-downstream"][1]["rate"] == 10
    assert got["lab-sc-downstream"] == ("slow_close", {"delay": 50})
    assert worker.peer is not None
    outcome, took = round_trip(worker.peer, payload=b"x" * 5000, timeout=3.0)
    assert outcome == "ok" and took >= 0.3  # 5 kB at 10 kB/s
    sc.heal()
    bw.heal()
    assert toxi.toxics("worker-1") == []


def test_undo_is_idempotent_and_tolerates_a_toxic_removed_behind_its_back(
    toxi: ToxiproxyAdapter, worker: Target
) -> None:
    fault = make_fault("p", "partition", worker, {}, ctx(toxi))
    fault.inject()
    toxi.remove_toxic("worker-1", "lab-p-upstream")
    fault.undo()
    fault.undo()
    assert toxi.toxics("worker-1") == []
    assert fault.leftover() == {
        "id": "p",
        "kind": "partition",
        "target": "worker-1",
        "proxy": "worker-1",
        "toxics": ["lab-p-upstream", "lab-p-downstream"],
    }


def test_bad_params_and_targets_are_named(toxi: ToxiproxyAdapter, worker: Target) -> None:
    with pytest.raises(FaultError, match=r"fault f9: unknown kind 'partiton'"):
        make_fault("f9", "partiton", worker, {}, ctx(toxi))
    with pytest.raises(FaultError, match=r"fault f9 \(latency on worker-1\): parameter latency_ms"):
        make_fault("f9", "latency", worker, {}, ctx(toxi))
    grape = Target("grape-1", "grape")
    with pytest.raises(FaultError, match="partition applies to a worker, not to grape grape-1"):
        make_fault("f9", "partition", grape, {}, ctx(toxi))
    with pytest.raises(FaultError, match="error_rate must be within"):
        make_fault(
            "f9",
            "errors",
            Target("w", "worker", control_url="http://x"),
            {"error_rate": 2},
            ctx(toxi),
        )


def test_a_failed_inject_is_recorded_and_raised(toxi: ToxiproxyAdapter) -> None:
    ghost = Target("worker-9", "worker", proxy="no-such-proxy", peer="127.0.0.1:9")
    fault = make_fault("g", "partition", ghost, {}, ctx(toxi))
    with pytest.raises(FaultError, match=r"fault g \(partition on worker-9\): .*not found"):
        fault.inject()
    assert fault.record.started is None and "not found" in (fault.record.error or "")
    with pytest.raises(FaultError):  # nothing to remove on a missing proxy: said, not hidden
        fault.undo()


@pytest.mark.parametrize(
    ("kind", "state"), [("kill", "stopped"), ("stop", "stopped"), ("pause", "paused")]
)
def test_runtime_faults_are_confirmed_from_the_process_state(
    toxi: ToxiproxyAdapter, runtime: ProcessRuntime, kind: str, state: str
) -> None:
    target = runtime.targets()["worker-1"]
    fault = make_fault("r", kind, target, {}, ctx(toxi, runtime))
    rec = fault.inject()
    assert runtime.state("worker-1") == state and rec.started is not None
    fault.heal()
    assert runtime.state("worker-1") == "running"
    assert fault.record.ended is not None and fault.record.ended >= rec.started


def test_restart_records_the_outage_window(toxi: ToxiproxyAdapter, runtime: ProcessRuntime) -> None:
    target = runtime.targets()["worker-1"]
    old_pid = runtime.proc.pid if runtime.proc else None
    fault = make_fault("rs", "restart", target, {}, ctx(toxi, runtime))
    rec = fault.inject()
    assert rec.started is not None and rec.ended is not None and rec.started <= rec.ended
    assert runtime.proc is not None and runtime.proc.pid != old_pid
    assert fault.heal().ended == rec.ended


class _Behaviour(BaseHTTPRequestHandler):
    state: dict[str, Any] = {}
    ignore_puts = False

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self) -> None:
        body = json.dumps(self.state).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply()

    def do_PUT(self) -> None:
        change = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not type(self).ignore_puts:
            self.state.update(change)
        self._reply()


@pytest.fixture
def behaviour() -> Iterator[type[_Behaviour]]:
    handler = type(
        "H",
        (_Behaviour,),
        {"state": {"latency": {"kind": "fixed", "ms": 0}, "error_rate": 0.0, "cpu_ms": 0}},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_worker_behaviour_faults_put_and_restore(toxi: ToxiproxyAdapter, behaviour: Any) -> None:
    target = Target("worker-2", "worker", control_url=behaviour.url, peer="toxiproxy:21002")
    slow = make_fault("s", "slow", target, {"latency": {"kind": "fixed", "ms": 300}}, ctx(toxi))
    errors = make_fault("e", "errors", target, {"error_rate": 0.25}, ctx(toxi))
    slow.inject()
    errors.inject()
    assert behaviour.state["latency"] == {"kind": "fixed", "ms": 300}
    assert behaviour.state["error_rate"] == 0.25
    assert slow.record.peers == ("toxiproxy:21002",)
    errors.heal()
    slow.heal()
    assert behaviour.state == {
        "latency": {"kind": "fixed", "ms": 0},
        "error_rate": 0.0,
        "cpu_ms": 0,
    }


def test_a_behaviour_that_does_not_take_is_not_confirmed(
    toxi: ToxiproxyAdapter, behaviour: Any
) -> None:
    behaviour.ignore_puts = True
    target = Target("worker-2", "worker", control_url=behaviour.url)
    fault = make_fault("e", "errors", target, {"error_rate": 0.5}, ctx(toxi))
    with pytest.raises(FaultError, match="does not show"):
        fault.inject()
    assert fault.record.started is None


def test_every_kind_is_registered() -> None:
    assert set(FAULT_KINDS) >= {
        "latency", "partition", "one_way_partition", "down", "reset_peer", "bandwidth",
        "slow_close", "kill", "pause", "restart", "grape_partition", "slow", "errors",
    }  # fmt: skip


def test_confirmed_start_follows_the_api_call(toxi: ToxiproxyAdapter, worker: Target) -> None:
    before = time.monotonic()
    rec = make_fault("t", "partition", worker, {}, ctx(toxi)).inject()
    after = time.monotonic()
    assert rec.started is not None
    assert before <= rec.requested <= rec.started <= after
    toxi.reset()


@pytest.mark.parametrize("kind", ["kill", "stop", "restart"])
def test_a_dead_worker_refuses_through_its_proxy_and_the_heal_reopens_it(
    toxi: ToxiproxyAdapter, runtime: ProcessRuntime, worker: Target, kind: str
) -> None:
    """Kill/stop close the worker's proxy first (refused, not a blackholed address that
    wedges Toxiproxy's accept loop); the heal starts the worker, then reopens the proxy;
    the marker says so, for a crashed run's cleanup."""
    from dataclasses import replace

    target = replace(runtime.targets()["worker-1"], proxy=worker.proxy, peer=worker.peer)
    fault = make_fault("k", kind, target, {}, ctx(toxi, runtime))
    fault.inject()
    assert fault.leftover()["disabled"] is True and fault.leftover()["proxy"] == "worker-1"
    if kind != "restart":
        assert not toxi.proxy("worker-1").enabled
        assert round_trip(worker.peer)[0] == "refused"
    fault.heal()
    assert runtime.state("worker-1") == "running" and toxi.proxy("worker-1").enabled
    assert round_trip(worker.peer)[0] == "ok"
