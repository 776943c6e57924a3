"""Grapes as real ``lab grape`` processes on 127.0.0.x: discovery, expiry, put/get, late join."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.procs import ServiceProcess, free_port, wait_until


@dataclass
class Grape:
    host: str
    dht: int
    api: int
    process: ServiceProcess

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.api}"

    def call(self, endpoint: str, data: Any) -> Any:
        body = json.dumps({"rid": "test", "data": data}).encode()
        req = urllib.request.Request(f"{self.url}/{endpoint}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_lab/health", timeout=2) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]


GrapeFactory = Callable[..., Grape]


@pytest.fixture
def grapes(logdir: Path) -> Iterator[GrapeFactory]:
    """Start ``lab grape`` processes; each is stopped afterwards and must exit 0."""
    started: list[Grape] = []
    counter = iter(range(1, 100))

    def start(
        host: str,
        *,
        bootstrap: list[tuple[str, int]] | None = None,
        dht: int | None = None,
        max_age: str = "30s",
    ) -> Grape:
        dht = dht or free_port(host)
        api = free_port(host)
        argv = ["grape", "--bind", host, "--dht-port", str(dht), "--api-port", str(api),
                "--peer-max-age", max_age, "--cluster-id", "grape-tests",
                "--rpc-timeout", "0.2s"]  # fmt: skip
        if bootstrap:
            argv += ["--bootstrap", ",".join(f"{h}:{p}" for h, p in bootstrap)]
        name = f"grape-{next(counter)}"
        proc = ServiceProcess.lab(
            name, *argv, health_url=f"http://{host}:{api}/_lab/health",
            log_path=logdir / f"{name}.log",
        )  # fmt: skip
        grape = Grape(host, dht, api, proc)
        started.append(grape)
        proc.start()
        return grape

    yield start
    codes = [g.process.stop() for g in started]
    # 0 from SIGTERM; -9 only for a grape a test killed on purpose.
    assert set(codes) <= {0, -signal.SIGKILL}, [g.process.tail() for g in started]


def three(grapes: GrapeFactory, hosts: list[str], max_age: str = "30s") -> list[Grape]:
    dhts = [free_port(h) for h in hosts]
    peers = list(zip(hosts, dhts, strict=True))
    out = [
        grapes(h, dht=d, max_age=max_age, bootstrap=[p for p in peers if p != (h, d)])
        for h, d in peers
    ]
    wait_until(lambda: all(g.health()["dht_peers"] >= 2 for g in out), 10, what="3 grapes joined")
    return out


@pytest.fixture
def hosts() -> list[str]:
    return ["127.0.2.1", "127.0.2.2", "127.0.2.3"]


def test_an_announce_through_one_grape_is_found_through_another(
    grapes: GrapeFactory, hosts: list[str]
) -> None:
    g1, g2, g3 = three(grapes, hosts)
    assert g1.call("announce", ["rpc_test", 1337, {"host": "127.0.0.50"}]) == 3
    assert g2.call("announce", ["rpc_test", 1338, {"host": "127.0.0.51"}]) == 3
    want = {"127.0.0.50:1337", "127.0.0.51:1338"}
    assert set(g3.call("lookup", "rpc_test")) == want
    assert set(g1.call("lookup", "rpc_test")) == want
    assert g3.call("lookup", "nobody") == []
    assert g3.health()["announcements"] == 2


def test_announcements_expire_after_the_peer_max_age(
    grapes: GrapeFactory, hosts: list[str]
) -> None:
    g1, _, g3 = three(grapes, hosts, max_age="1s")
    announced = time.monotonic()
    assert g1.call("announce", ["short", 4000, {"host": "10.9.9.9"}]) == 3
    assert g3.call("lookup", "short") == ["10.9.9.9:4000"]
    wait_until(lambda: g3.call("lookup", "short") == [], 5, what="expiry")
    gone = time.monotonic() - announced
    assert 0.6 <= gone <= 2.5, gone  # 0.67-1.33 s on every node, plus polling slack
    # Announcing again brings it back: expiry is per announce, not a tombstone.
    g1.call("announce", ["short", 4000, {"host": "10.9.9.9"}])
    assert g3.call("lookup", "short") == ["10.9.9.9:4000"]


def test_put_through_one_grape_get_through_another(grapes: GrapeFactory, hosts: list[str]) -> None:
    g1, _, g3 = three(grapes, hosts)
    key = g1.call("put", "hello world")
    assert key == "6d33adc2b6b2c14c3036feefb7fedbca1a880527"
    item = g3.call("get", key)
    assert item["v"] == "hello world"
    assert g3.call("get", "ab" * 20) is None


def test_a_grape_started_before_its_peer_joins_once_the_peer_is_up(
    grapes: GrapeFactory,
) -> None:
    # The peer is named by host name ("localhost") and not yet running; it knows nobody,
    # so only the early grape's own retries can bring the two together.
    peer_dht = free_port("127.0.0.1")
    early = grapes("127.0.2.4", bootstrap=[("localhost", peer_dht)])
    assert early.health()["dht_peers"] == 0
    late = grapes("127.0.0.1", dht=peer_dht)
    wait_until(lambda: early.health()["dht_peers"] >= 1, 10, what="the early grape to join")
    late.call("announce", ["late", 5000, {"host": "10.8.8.8"}])
    assert early.call("lookup", "late") == ["10.8.8.8:5000"]


def test_sigterm_stops_a_grape_cleanly(grapes: GrapeFactory, hosts: list[str]) -> None:
    g = grapes(hosts[0])
    assert g.process.tail().count("ready: api") == 1
    g.process.signal(signal.SIGTERM)
    assert g.process.proc is not None
    assert g.process.proc.wait(5) == 0


def test_a_dead_grape_slows_a_lookup_for_a_moment_and_loses_nothing(
    grapes: GrapeFactory, hosts: list[str]
) -> None:
    g1, g2, g3 = three(grapes, hosts)
    assert g1.call("announce", ["kept", 6000, {"host": "10.7.7.7"}]) == 3
    g2.process.kill()
    for _ in range(3):
        started = time.monotonic()
        assert g3.call("lookup", "kept") == ["10.7.7.7:6000"]
        assert time.monotonic() - started < 2.5  # bounded by the node's op timeout
    wait_until(lambda: g3.health()["dht_peers"] == 1, 5, what="the dead grape to be dropped")
    started = time.monotonic()
    assert g1.call("announce", ["kept", 6001, {"host": "10.7.7.7"}]) == 2
    assert sorted(g3.call("lookup", "kept")) == ["10.7.7.7:6000", "10.7.7.7:6001"]
    assert time.monotonic() - started < 1.0
