"""The load-dependent worker mode over real sockets: queueing, load headers, probes.

The gate and the RPC server are the worker's own (``LoadGate`` + ``RpcServer`` with the
load source); requests are held on events, not timed, so queue lengths are exact.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lab.balancer.prequal import PrequalPolicy
from lab.balancer.prober import Prober
from lab.balancer.registry import make_policy
from lab.clock import SYSTEM_CLOCK
from lab.errors import SettingsError
from lab.grenache.load import LoadReport, from_headers
from lab.grenache.server import RpcServer
from lab.grenache.transport import HttpTransport
from lab.grenache.wire import Request
from lab.procs import free_port
from lab.worker.load import LoadGate
from lab.worker.settings import WorkerSettings

HOST = "127.0.0.1"


class Held:
    """A handler that serves through a gate and holds each request until released."""

    def __init__(self, concurrency: int) -> None:
        self.gate = LoadGate(concurrency)
        self.release = asyncio.Event()
        self.in_service = 0
        self.entered = asyncio.Event()

    async def __call__(self, req: Request) -> Any:
        async with self.gate.slot():
            self.in_service += 1
            self.entered.set()
            await self.release.wait()
            self.in_service -= 1
        return {"echo": req.payload}


async def wait_for(predicate: Any, seconds: float = 5.0) -> None:
    """Poll ``predicate`` every 5 ms until it holds; fail after ``seconds``."""
    for _ in range(int(seconds / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not true after {seconds}s")


@pytest.fixture
async def held() -> Held:
    return Held(concurrency=1)


@pytest.fixture
async def server(held: Held) -> AsyncIterator[RpcServer]:
    async with RpcServer(held, host=HOST, port=0, load=held.gate.report) as srv:
        yield srv


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as t:
        yield t


async def test_bounded_concurrency_queues_and_reports_it(
    server: RpcServer, held: Held, transport: HttpTransport
) -> None:
    peer = f"{HOST}:{server.port}"
    seen: list[tuple[str, LoadReport]] = []
    transport.on_load = lambda p, r: seen.append((p, r))
    calls = [asyncio.create_task(transport.request(peer, "svc", i, timeout=5)) for i in range(3)]
    await wait_for(lambda: held.gate.in_flight == 3)
    assert held.in_service == 1 and held.gate.queue == 2  # one slot, two waiting
    probe = await transport.probe(peer, timeout=2)
    assert (probe.in_flight, probe.queue) == (3, 2)
    held.release.set()
    assert [await c for c in calls] == [{"echo": 0}, {"echo": 1}, {"echo": 2}]
    assert [p for p, _ in seen] == [peer] * 3
    assert all(r.queue <= 2 and r.in_flight <= 3 for _, r in seen)
    assert held.gate.in_flight == 0 and held.gate.queue == 0
    assert held.gate.latency_s >= held.gate.service_s > 0


async def test_queueing_makes_latency_grow_with_requests_in_flight() -> None:
    gate = LoadGate(concurrency=2)

    async def serve_one() -> None:
        async with gate.slot():
            await asyncio.sleep(0.02)

    await asyncio.gather(*(serve_one() for _ in range(2)))
    light = gate.latency_s
    for _ in range(3):
        await asyncio.gather(*(serve_one() for _ in range(10)))
    assert gate.latency_s > 2 * light  # 10 on 2 slots: most wait for several services
    assert gate.service_s < 2 * light  # service itself did not slow


async def test_plain_grenache_envelope_is_unchanged_and_headers_are_extra(
    server: RpcServer, held: Held
) -> None:
    held.release.set()
    body = b'["rid-1","svc",{"a":1}]'
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://{HOST}:{server.port}/", data=body) as resp:
            assert await resp.json() == ["rid-1", None, {"echo": {"a": 1}}]
            report = from_headers(resp.headers)
        async with session.get(f"http://{HOST}:{server.port}/") as resp:
            assert resp.status == 405  # only GET /load is answered
    assert report is not None and report.queue == 0


async def test_a_server_without_a_load_source_sends_no_headers_and_refuses_probes(
    transport: HttpTransport,
) -> None:
    async def echo(req: Request) -> Any:
        return req.payload

    async with RpcServer(echo, host=HOST, port=0) as srv:
        peer = f"{HOST}:{srv.port}"
        seen: list[LoadReport] = []
        transport.on_load = lambda _p, r: seen.append(r)
        assert await transport.request(peer, "svc", 5, timeout=2) == 5
        assert seen == []
        with pytest.raises(Exception, match=r"probe of .*HTTP 405"):
            await transport.probe(peer, timeout=2)


async def test_prober_feeds_prequal_and_drops_a_dead_peer(
    server: RpcServer, held: Held, transport: HttpTransport
) -> None:
    held.release.set()
    live, dead = f"{HOST}:{server.port}", f"{HOST}:{free_port(HOST)}"
    policy = make_policy("prequal", clock=SYSTEM_CLOCK, rng=random.Random(1))
    assert isinstance(policy, PrequalPolicy)
    policy.set_peers([live, dead])
    prober = Prober(policy, transport)
    try:
        policy.choose()  # asks for probes of both peers
        await wait_for(lambda: prober.sent == 2 and not prober.running)
        assert prober.failed == 1
        held_probes = {s.peer: s.detail["probes_held"] for s in policy.stats()}
        assert held_probes == {live: 1, dead: 0}
        assert policy.choose().peer == live
    finally:
        await prober.aclose()


def test_concurrency_setting_is_validated() -> None:
    assert WorkerSettings(concurrency=4).concurrency == 4
    with pytest.raises(SettingsError, match="concurrency"):
        WorkerSettings(concurrency=-1)
    with pytest.raises(ValueError, match="concurrency"):
        LoadGate(-1)
