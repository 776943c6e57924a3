"""The client app's wiring with in-memory discovery and policy side: loops, API, cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from lab.balancer.stats import GossipCounts, PeerStats
from lab.clock import SYSTEM_CLOCK, Clock
from lab.errors import DiscoveryError
from lab.history import Attempt, ClientEvent, Outcome
from lab.loadgen.app import build_app
from lab.loadgen.load import Sent
from lab.loadgen.parts import Discovery, EventSink, PolicySideLike
from lab.loadgen.settings import ClientSettings


class Registry:
    """A grape in memory: name -> announced addresses."""

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.failing = False
        self.lookups = 0


class FakeDiscovery:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def lookup(self, name: str) -> list[str]:
        self.registry.lookups += 1
        if self.registry.failing:
            raise DiscoveryError("every grape is down")
        return sorted(self.registry.names.get(name, ()))

    async def announce(self, name: str, port: int, host: str | None = None) -> int:
        self.registry.names.setdefault(name, set()).add(f"{host}:{port}")
        return 1


class FakeSide:
    def __init__(self, port: int, on_event: EventSink) -> None:
        self.port = port
        self.on_event = on_event
        self.peer_set: list[str] = []
        self.members: list[str] = []
        self.closed = False
        self.gossip = True
        self.faulty_peers: list[str] = []

    async def send(self, service: str, payload: Any, budget_s: float) -> Sent:
        peer = self.peer_set[payload["seq"] % len(self.peer_set)]
        now = SYSTEM_CLOCK.monotonic()
        return Sent(Outcome.OK, (Attempt(peer, now, now, Outcome.OK),))

    def set_peers(self, peers: Sequence[str]) -> None:
        self.peer_set = list(peers)

    def gossip_port(self) -> int:
        return self.port

    def set_gossip_members(self, members: Sequence[str]) -> None:
        if list(members) != self.members:
            self.on_event(ClientEvent("c", "adaptive", 0.0, "discovery", None, {"m": 1}))
        self.members = list(members)

    def gossip_counts(self) -> GossipCounts:
        return GossipCounts(sent=3)

    def peers(self) -> Sequence[PeerStats]:
        return [PeerStats(p) for p in self.peer_set]

    def faulty(self) -> Sequence[str]:
        return self.faulty_peers

    def set_faulty(self, peers: Sequence[str]) -> None:
        self.faulty_peers = list(peers)

    def gossip_enabled(self) -> bool:
        return self.gossip

    def set_gossip(self, enabled: bool) -> None:
        self.gossip = enabled

    def health(self) -> dict[str, Any]:
        return {"peers": len(self.peer_set)}


def _parts(registry: Registry, sides: list[FakeSide], port: int) -> Any:
    @asynccontextmanager
    async def parts(
        s: ClientSettings, clock: Clock, on_event: EventSink
    ) -> AsyncIterator[tuple[Discovery, PolicySideLike]]:
        side = FakeSide(port, on_event)
        sides.append(side)
        try:
            yield FakeDiscovery(registry), side
        finally:
            side.closed = True

    return parts


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _settings(name: str) -> ClientSettings:
    return ClientSettings(name=name, bind="127.0.0.1", lookup_interval=0.02, announce_interval=0.02)


async def test_discovery_membership_load_and_cleanup() -> None:
    registry = Registry()
    registry.names["rpc_test"] = {"127.0.0.9:1", "127.0.0.9:2"}
    sides: list[FakeSide] = []
    app1 = build_app(_settings("c1"), parts=_parts(registry, sides, 7001))
    app2 = build_app(_settings("c2"), parts=_parts(registry, sides, 7002))
    async with TestClient(TestServer(app1)) as c1, TestClient(TestServer(app2)):
        s1, s2 = sides
        await _until(lambda: len(s1.peer_set) == 2)
        await _until(lambda: s1.members == ["127.0.0.1:7002"] and s2.members == ["127.0.0.1:7001"])

        registry.failing = True  # every grape down: the peers known keep serving
        seen = registry.lookups
        await _until(lambda: registry.lookups >= seen + 6)
        assert len(s1.peer_set) == 2
        registry.failing = False
        registry.names["rpc_test"] = set()  # an empty answer never wipes them either
        seen = registry.lookups
        await _until(lambda: registry.lookups >= seen + 6)
        assert len(s1.peer_set) == 2

        await c1.post("/load/start", json={"rate": 500, "duration_s": 0.05})
        page: dict[str, Any] = {"records": []}

        async def enough() -> bool:
            nonlocal page
            page = await (await c1.get("/history")).json()
            return len(page["records"]) >= 25

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not await enough():
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        assert {r["outcome"] for r in page["records"]} == {"ok"}
        events = await (await c1.get("/events")).json()
        assert events["events"] and events["events"][0]["kind"] == "discovery"
        metrics = await (await c1.get("/metrics")).text()
        assert 'lab_client_gossip_sent_total{client="c1"} 3.0' in metrics
        peers = await (await c1.get("/peers")).json()
        assert len(peers["peers"]) == 2
    assert all(s.closed for s in sides)
