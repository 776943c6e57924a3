"""The local cluster's Toxiproxy helper against the real server binary."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import FaultError
from lab.loadgen.local_cluster import Toxiproxy, find_toxiproxy
from lab.procs import free_port

pytestmark = pytest.mark.toxiproxy


@pytest.fixture
def toxiproxy(logdir: Path, loopback_host: str) -> Iterator[Toxiproxy]:
    binary = find_toxiproxy()
    if binary is None:
        pytest.skip("!!! toxiproxy server binary not found (make, or LAB_TOXIPROXY_BIN) !!!")
    tp = Toxiproxy(binary, loopback_host, free_port(loopback_host), logdir).start()
    yield tp
    tp.stop()


@pytest.fixture
def echo(loopback_host: str) -> Iterator[str]:
    """A TCP server that echoes one line per connection."""
    srv = socket.create_server((loopback_host, 0))
    srv.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                data = conn.recv(1024)
                conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"{loopback_host}:{srv.getsockname()[1]}"
    stop.set()
    t.join(5)
    srv.close()


def _roundtrip(address: str, timeout: float) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(b"ping")
        return s.recv(1024)


def test_blackhole_and_heal(toxiproxy: Toxiproxy, echo: str) -> None:
    api = toxiproxy.client
    listen = f"{toxiproxy.host}:{free_port(toxiproxy.host)}"
    api.create_proxy("echo", listen, echo)
    assert _roundtrip(listen, 2.0) == b"ping"
    for stream in ("upstream", "downstream"):  # a partition: data dropped forever both ways
        api.add_toxic("echo", f"blackhole_{stream}", "timeout", {"timeout": 0}, stream)
    names = {t.name for t in api.toxics("echo")}
    assert names == {"blackhole_upstream", "blackhole_downstream"}
    with pytest.raises(TimeoutError):
        _roundtrip(listen, 0.3)
    assert api.remove_all_toxics("echo") == 2
    assert api.toxics("echo") == []
    assert _roundtrip(listen, 2.0) == b"ping"


def test_api_errors_are_fault_errors(toxiproxy: Toxiproxy) -> None:
    with pytest.raises(FaultError, match="remove toxic nope from proxy nope: not found"):
        toxiproxy.client.remove_toxic("nope", "nope")
