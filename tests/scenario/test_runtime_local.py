"""The local runtime with real processes: grapes and workers behind a real Toxiproxy."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import probe_over_http, toxiproxy_binary

from lab.errors import RuntimeUnavailable
from lab.procs import free_port, http_ok, wait_until
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.kinds import make_fault
from lab.scenario.faults.marker import MARKER
from lab.scenario.faults.rollback import Rollback
from lab.scenario.runtime.local import LocalRuntime
from lab.scenario.runtime.protocol import Target, target
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = pytest.mark.toxiproxy


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime.launch(
        grapes=2,
        workers=2,
        clients=[],
        logdir=tmp_path_factory.mktemp("local"),
        toxiproxy_binary=toxiproxy_binary(),
    )
    yield runtime
    runtime.close()


def test_targets_name_every_service_with_its_addresses(rt: LocalRuntime) -> None:
    t = rt.targets()
    assert {n for n, x in t.items() if x.kind == "worker"} == {"worker-1", "worker-2"}
    assert {n for n, x in t.items() if x.kind == "grape"} == {"grape-1", "grape-2"}
    w = t["worker-2"]
    assert w.proxy == "worker-2" and w.peer and w.peer.startswith(rt.cluster.toxiproxy.host)  # type: ignore[union-attr]
    assert ToxiproxyAdapter(rt.toxiproxy_api()).proxy("worker-2").listen == w.peer
    with pytest.raises(
        RuntimeUnavailable, match="no worker named 'worker-9'; it has worker-1, worker-2"
    ):
        target(rt, "worker-9", ("worker",))


def test_kill_and_start_a_worker_really_stops_and_restarts_it(rt: LocalRuntime) -> None:
    w = rt.targets()["worker-1"]
    ctx = FaultContext(rt, ToxiproxyAdapter(rt.toxiproxy_api()))
    fault = make_fault("k", "kill", w, {}, ctx)
    rec = fault.inject()
    assert rt.state("worker-1") == "stopped" and not http_ok(f"{w.control_url}/health")
    fault.heal()
    assert rt.state("worker-1") == "running" and http_ok(f"{w.control_url}/health")
    assert fault.record.ended is not None and rec.started is not None
    rt.check_health(10.0)


def test_pause_freezes_a_worker_until_unpaused(rt: LocalRuntime) -> None:
    w = rt.targets()["worker-2"]
    ctx = FaultContext(rt, ToxiproxyAdapter(rt.toxiproxy_api()))
    fault = make_fault("p", "pause", w, {}, ctx)
    fault.inject()
    assert not http_ok(f"{w.control_url}/health", timeout=0.3)
    fault.heal()
    wait_until(lambda: http_ok(f"{w.control_url}/health"), 5.0, what="worker-2 answers again")


def test_grape_partition_silences_the_grape_until_reconnected(rt: LocalRuntime) -> None:
    g = rt.targets()["grape-2"]
    ctx = FaultContext(rt, ToxiproxyAdapter(rt.toxiproxy_api()))
    fault = make_fault("gp", "grape_partition", g, {}, ctx)
    fault.inject()
    assert rt.state("grape-2") == "disconnected"
    assert not http_ok(f"{g.control_url}/_lab/health", timeout=0.3)
    fault.heal()
    wait_until(lambda: http_ok(f"{g.control_url}/_lab/health"), 5.0, what="grape-2 answers")


def test_worker_slowness_through_its_real_control_port(rt: LocalRuntime) -> None:
    w = rt.targets()["worker-1"]
    ctx = FaultContext(rt, ToxiproxyAdapter(rt.toxiproxy_api()))
    fault = make_fault("s", "slow", w, {"latency": {"kind": "fixed", "ms": 250}}, ctx)
    fault.inject()
    fault.heal()
    assert fault.record.started is not None and fault.record.ended is not None


def test_leftovers_of_a_dead_local_run_are_stopped(tmp_path: Path) -> None:
    """The marker of a local run lists its processes; cleanup stops them (here: a Toxiproxy)."""
    binary = toxiproxy_binary()
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{api}/version"), 5.0, what="toxiproxy up")
        info = {
            "run_id": "dead",
            "runtime": "local",
            "toxiproxy_api": api,
            "local_pids": [proc.pid],
        }
        rb = Rollback(tmp_path / MARKER, info=info)
        rb.push(
            "x",
            "x",
            lambda: None,
            {"id": "x", "kind": "kill", "target": "worker-1", "undo": "start"},
        )
        data = json.loads((tmp_path / MARKER).read_text())
        data["pid"] = 0  # the run that wrote it is gone
        (tmp_path / MARKER).write_text(json.dumps(data))
        report = cleanup_leftovers(tmp_path)
        assert f"stopped local process {proc.pid}" in report.actions
        assert proc.wait(5) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CLOCK_SERVER = textwrap.dedent(
    """
    import json, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = json.dumps({"monotonic": time.monotonic()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    s = HTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """
)


def test_another_process_reads_the_same_monotonic_clock() -> None:
    """The alignment the checks rely on: another process's ``time.monotonic()`` agrees with
    ours to within half a round trip (CLOCK_MONOTONIC is per kernel). The Compose variant
    of this test does the same with a client container (tests/scenario/test_runner_compose)."""
    proc = subprocess.Popen([sys.executable, "-c", CLOCK_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        target = Target("clock", "client", f"http://127.0.0.1:{port}")
        probe = asyncio.run(probe_over_http(target, samples=10))
        assert probe.bound < 0.005
        assert abs(probe.offset) <= probe.bound + 0.001
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
