"""``lab.stack.health`` against fake containers: fast failure, deadlines, Toxiproxy's proxies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lab.errors import RuntimeUnavailable
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
