"""Real backends for the engine's tests: a Toxiproxy server process and a TCP echo server.

Shared by test_adapter.py, test_faults.py and test_rollback.py (imported by name, as
tests/report does with builders.py). Nothing here sleeps: readiness is a health poll.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.history import read_journal
from lab.lab_client import HttpLabClient
from lab.loadgen.local_cluster import Toxiproxy, find_toxiproxy
from lab.procs import free_port
from lab.scenario.runtime.protocol import ClockProbe, Target, probe_clock

ROOT = Path(__file__).resolve().parents[2]


def toxiproxy_binary() -> Path:
    found = find_toxiproxy(ROOT)
    if found is None:
        pytest.skip("no Toxiproxy server binary (make images builds one)")
    return found


@contextlib.contextmanager
def toxiproxy_server(logdir: Path, host: str = "127.0.0.1") -> Iterator[Toxiproxy]:
    """A real Toxiproxy on a free port, stopped afterwards."""
    server = Toxiproxy(toxiproxy_binary(), host, free_port(host), logdir).start()
    try:
        yield server
    finally:
        server.stop()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            sock.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def echo_server(host: str = "127.0.0.1") -> Iterator[str]:
    """A threaded TCP echo server; yields its ``host:port``."""
    server = EchoServer((host, 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def round_trip(address: str, payload: bytes = b"ping", timeout: float = 2.0) -> tuple[str, float]:
    """Connect, send, read the echo: (outcome, seconds); outcome ok/timeout/refused/reset/closed."""
    host, port = address.rsplit(":", 1)
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(65536)
                if not chunk:
                    return "closed", time.monotonic() - t0
                got += chunk
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    except ConnectionResetError:
        return "reset", time.monotonic() - t0
    except TimeoutError:
        return "timeout", time.monotonic() - t0
    return ("ok" if got == payload else "garbled"), time.monotonic() - t0


async def probe_over_http(client: Target, samples: int) -> ClockProbe:
    """The runner's clock probe, over a lab client of its own."""
    async with HttpLabClient() as lab:
        return await probe_clock(lab, client, samples=samples)


def fault_confirmed(reports: Path) -> bool:
    """Has a run under ``reports`` confirmed a fault in place (its journal says started)?

    The in-flight marker names a fault before it is injected (write-ahead), so a test that
    kills the run or Toxiproxy on the marker alone can land while the injection still runs.
    """
    try:
        journals = list(reports.glob("*/journal.jsonl"))
        return any(f.started is not None for j in journals for f in read_journal(j).faults)
    except (OSError, ValueError):
        return False
