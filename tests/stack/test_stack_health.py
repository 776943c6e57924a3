"""``lab.stack.health`` against fake containers: fast failure, deadlines, Toxiproxy's proxies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lab.errors import RuntimeUnavailable
from lab.procs import free_port
from lab.stack import health, toxiapi


@dataclass
class FakeContainer:
    service: str
    status: str = "running"
    health: str | None = "healthy"
    exit_code: int = 0
    log: bytes = b"line one\nboom: ModuleNotFoundError\n"

    @property
    def name(self) -> str:
        return f"grenache-lab-{self.service}-1"

    @property
    def labels(self) -> dict[str, str]:
        return {"com.docker.compose.service": self.service}

    @property
    def attrs(self) -> dict[str, Any]:
        state: dict[str, Any] = {"Status": self.status, "ExitCode": self.exit_code}
        if self.health is not None:
            state["Health"] = {"Status": self.health, "Log": [{"Output": "probe said no"}]}
        return {"State": state}

    def logs(self, tail: int) -> bytes:
        return b"\n".join(self.log.splitlines()[-tail:])


@dataclass
class FakeEngine:
    found: list[FakeContainer] = field(default_factory=list)

    def containers(self, all: bool = True) -> list[FakeContainer]:
        return list(self.found)


PROXIES = [
    toxiapi.Proxy(f"worker-{i}", f"[::]:2100{i}", f"worker-{i}:1337", True) for i in (1, 2, 3)
]


@pytest.fixture
def proxies_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toxiapi, "proxies", lambda **_: PROXIES)


def test_all_healthy_returns_at_once(proxies_ok: None) -> None:
    engine = FakeEngine([FakeContainer("grape-1"), FakeContainer("toxiproxy", health=None)])
    out = health.wait_healthy(engine, ["grape-1", "toxiproxy"], timeout=1, log=lambda _: None)
    assert all(s.ready for s in out.values())


def test_an_exited_container_fails_at_once_with_its_last_log_lines(proxies_ok: None) -> None:
    engine = FakeEngine(
        [FakeContainer("worker-2", status="exited", health="unhealthy", exit_code=1)]
    )
    with pytest.raises(RuntimeUnavailable, match=r"worker-2 exited with code 1: .*ModuleNotFound"):
        health.wait_healthy(engine, ["worker-2"], timeout=30, log=lambda _: None)


def test_the_deadline_names_what_is_not_healthy_and_why(proxies_ok: None) -> None:
    engine = FakeEngine([FakeContainer("grape-1", health="starting"), FakeContainer("grape-2")])
    with pytest.raises(RuntimeUnavailable, match=r"grape-1 running/starting \(probe said no\)"):
        health.wait_healthy(
            engine,
            ["grape-1", "grape-2"],
            timeout=0.05,
            log=lambda _: None,
            interval=0.01,
        )


def test_toxiproxy_is_not_ready_until_its_proxies_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toxiapi, "proxies", lambda **_: PROXIES[:1])
    engine = FakeEngine([FakeContainer("toxiproxy", health=None)])
    st = health.states(engine, ["toxiproxy", "grape-3"])
    assert st["toxiproxy"].health == "proxies-missing" and "worker-2" in st["toxiproxy"].detail
    assert st["grape-3"].state == "missing" and not st["grape-3"].ready


@dataclass
class LabelledContainer(FakeContainer):
    """A container without a Docker healthcheck whose health endpoint the host probes."""

    control: str = ""
    path: str = "/health"

    @property
    def labels(self) -> dict[str, str]:
        return {
            "com.docker.compose.service": self.service,
            "com.grenache-lab.control": self.control,
            "com.grenache-lab.health": self.path,
        }


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_services_without_docker_health_are_probed_from_the_host(health_server: str) -> None:
    refused = f"127.0.0.1:{free_port('127.0.0.1')}"
    engine = FakeEngine(
        [
            LabelledContainer("worker-1", health=None, control=health_server),
            LabelledContainer("grape-1", health=None, control=health_server, path="/_lab/x"),
            LabelledContainer("client-oracle", health=None, control=refused),
            LabelledContainer("worker-2", status="exited", health=None, control=refused),
        ]
    )
    st = health.states(engine, ["worker-1", "grape-1", "client-oracle", "worker-2"])
    assert st["worker-1"].health == "healthy" and st["worker-1"].ready
    assert st["grape-1"].health == "unhealthy" and "HTTP 503" in st["grape-1"].detail
    assert st["client-oracle"].health == "unhealthy" and refused in st["client-oracle"].detail
    assert st["worker-2"].health == "none" and not st["worker-2"].ready  # not probed: exited


def test_a_docker_healthcheck_keeps_dockers_verdict(health_server: str) -> None:
    engine = FakeEngine([LabelledContainer("worker-1", health="starting", control=health_server)])
    assert health.states(engine, ["worker-1"])["worker-1"].health == "starting"
