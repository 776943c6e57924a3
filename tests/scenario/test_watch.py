"""The run's watch (issue 13, item 5): a lost Toxiproxy or client aborts the run within
~1 s; the clients' load leases are renewed while the run lives and run out after its
``kill -9``.

Real parts: a real Toxiproxy process killed with SIGKILL mid-fault, real sockets that
refuse or never answer, and ``lab run --runtime local`` as a subprocess with real
``lab client`` processes for the lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import ROOT, toxiproxy_binary
from test_runner import StandInClient, StandInRuntime

from lab.history import read_journal
from lab.lab_client import HttpLabClient, http_json
from lab.procs import free_port, wait_until
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import MARKER
from lab.scenario.plan.spec import parse_scenario
from lab.scenario.run.runner import run_scenario
from lab.scenario.runtime.local import LocalRuntime
from lab.scenario.runtime.protocol import Target
from lab.scenario.runtime.watch import LEASE_S, Watch

pytestmark = pytest.mark.toxiproxy


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections and never answers (a frozen process)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def _watch(watch: Watch, within: float = 5.0) -> tuple[str, float]:
    """Run ``watch`` until it reports a loss: (reason, seconds it took)."""
    reasons: list[str] = []
    t0 = time.monotonic()
    async with HttpLabClient() as lab:
        await asyncio.wait_for(watch.run(lab, reasons.append), within)
    assert len(reasons) == 1 and watch.lost_at is not None
    return reasons[0], watch.lost_at - t0


async def test_a_refusing_toxiproxy_is_lost_at_the_first_poll() -> None:
    port = free_port("127.0.0.1")
    reason, took = await _watch(Watch(f"http://127.0.0.1:{port}", []))
    assert reason.startswith(f"lost Toxiproxy at http://127.0.0.1:{port}")
    assert took < 0.5


async def test_a_silent_toxiproxy_is_lost_after_lost_after_s(silent_server: str) -> None:
    reason, took = await _watch(Watch(silent_server, [], lost_after_s=0.6))
    assert "stopped answering" in reason
    assert 0.6 <= took < 1.0


async def test_a_client_that_takes_no_renewal_for_its_lease_is_lost(silent_server: str) -> None:
    with _toxiproxy_stand_in() as toxi:
        client = Target("client-x", "client", control_url=silent_server)
        watch = Watch(toxi, [client], lease_s=0.6, renew_s=0.2)
        reason, took = await _watch(watch)
    assert reason.startswith("client client-x took no lease renewal for")
    assert 0.6 <= took < 1.5


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInRuntime]:
    """A lab of its own: the test kills its Toxiproxy."""
    base = LocalRuntime.launch(
        grapes=1, workers=2, clients=[], logdir=tmp_path_factory.mktemp("watch"),
        toxiproxy_binary=toxiproxy_binary(),
    )  # fmt: skip
    rt = StandInRuntime(base.cluster)
    rt.stand_ins = [StandInClient("client-random", "random", base.cluster.peers())]
    yield rt
    for c in rt.stand_ins:
        c.close()
    rt.close()


SCENARIO = """
name: watch-test
seed: 3
runtime: local
topology: {grapes: 1, workers: 2}
clients: [random]
load: {rate: 100}
duration: 30s
warmup: 0.2s
timeline:
  - {at: 0.8s, fault: partition, target: worker-2}
  - {at: 20s, heal: worker-2}
"""


async def test_toxiproxy_killed_mid_run_aborts_within_a_second_with_exit_2(
    runtime: StandInRuntime, tmp_path: Path
) -> None:
    """Issue 13: with Toxiproxy stopped mid-run, the run failed every request for 6 s."""
    toxi = runtime.cluster.toxiproxy
    assert toxi is not None and toxi.process is not None
    killed: list[float] = []

    def kill() -> None:
        assert toxi.process is not None
        toxi.process.signal(signal.SIGKILL)
        killed.append(time.monotonic())

    timer = threading.Timer(2.0, kill)  # inside the partition
    timer.start()
    try:
        t0 = time.monotonic()
        result = await run_scenario(
            parse_scenario(SCENARIO, "watch.yaml"), runtime=runtime, reports_dir=tmp_path
        )
        took = time.monotonic() - t0
    finally:
        timer.cancel()
    assert killed, "the run ended before Toxiproxy was killed"
    assert result.exit_code == 2 and result.status == "aborted"
    assert result.abort_reason is not None
    assert result.abort_reason.startswith("lost Toxiproxy at ")
    history = read_journal(result.run_dir / "journal.jsonl")
    (lost,) = [p for p in history.meta.phases if p["name"] == "watch-lost"]
    assert lost["t"] - killed[0] < 1.0
    assert took < 15
    # the partition could not be undone (Toxiproxy is gone): said, and left for cleanup
    assert [r.ok for r in result.rollback] == [False]
    assert (tmp_path / MARKER).exists()
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["verdict"] == "aborted" and "Toxiproxy" in summary["abort_reason"]
    assert "/load/lease" in runtime.stand_ins[0].posts  # renewed while it ran


# -- kill -9 of a real `lab run`: the clients stop by themselves ---------------------------

E2E = """
name: lease-e2e
seed: 5
runtime: local
topology: {grapes: 1, workers: 2}
clients: [adaptive, random]
load: {rate: 50}
duration: 60s
warmup: 0.5s
timeline:
  - {at: 1.5s, fault: partition, target: worker-2}
  - {at: 50s, heal: worker-2}
"""


def test_after_kill_9_of_lab_run_the_clients_stop_their_load_within_the_lease(
    tmp_path: Path,
) -> None:
    """Issue 13: after kill -9, the clients kept loading into the fault until the next run."""
    path = tmp_path / "lease.yaml"
    path.write_text(E2E)
    reports = tmp_path / "reports"
    env = {**os.environ, "LAB_TOXIPROXY_BIN": str(toxiproxy_binary()), "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "run", str(path), "--reports", str(reports)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    marker: dict[str, Any] = {}
    try:

        def injected() -> bool:
            try:
                marker.update(json.loads((reports / MARKER).read_text()))
            except (OSError, ValueError):
                return False
            return bool(marker.get("faults"))

        wait_until(injected, 30.0, interval=0.05, what="the partition to be injected")
        urls = [c["control_url"] for c in marker["clients"]]
        assert len(urls) == 2
        assert all(http_json("GET", f"{u}/load")["running"] for u in urls)
        proc.kill()
        killed = time.monotonic()
        proc.communicate(timeout=10)

        def all_stopped() -> bool:
            return not any(http_json("GET", f"{u}/load")["running"] for u in urls)

        wait_until(all_stopped, LEASE_S + 3.0, interval=0.05, what="the clients to stop")
        stopped = time.monotonic() - killed
        assert stopped <= LEASE_S + 1.5
        for u in urls:
            status = http_json("GET", f"{u}/load")
            assert status["lease_expired"] is True
            issued = status["issued"]
            time.sleep(0.3)  # a stopped load issues nothing more: compare two readings
            assert http_json("GET", f"{u}/load")["issued"] == issued
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        cleanup_leftovers(reports)


class _VersionOnly(threading.Thread):
    """A tiny HTTP server answering ``GET /version`` like Toxiproxy (for the lease test)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = b'{"version": "2.12.0"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        super().__init__(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})


class _toxiproxy_stand_in:
    def __enter__(self) -> str:
        self.t = _VersionOnly()
        self.t.start()
        return f"http://127.0.0.1:{self.t.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.t.server.shutdown()
        self.t.server.server_close()
        self.t.join(5)
