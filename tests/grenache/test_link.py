"""Link against a fake grape (failure paths), the real Node grape and our Python grape."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from lab.clock import FakeClock
from lab.errors import DiscoveryError, GrapeError, LookupEmpty
from lab.grenache.link import Link
from lab.procs import free_port

HOST = "127.0.0.1"
Answer = Callable[[Any], Any]


class FakeGrape:
    """An aiohttp grape whose answers a test sets per endpoint; records every call."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.answers: dict[str, Answer] = {}
        self.calls: list[tuple[str, Any, float]] = []
        self.called = asyncio.Event()
        self.clock = clock
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        data = json.loads(await request.read())["data"]
        self.calls.append((endpoint, data, self.clock.monotonic() if self.clock else 0.0))
        self.called.set()
        answer = self.answers.get(endpoint, lambda _d: "ERR_REQ_NOTFOUND")(data)
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer is Ellipsis:  # hang until the client gives up
            await self._release.wait()
        return web.Response(text=json.dumps(answer))

    async def start(self) -> FakeGrape:
        app = web.Application()
        app.router.add_post("/{endpoint}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{HOST}:{port}"
        return self

    async def wait_calls(self, n: int) -> None:
        while len(self.calls) < n:
            self.called.clear()
            await asyncio.wait_for(self.called.wait(), 3)

    async def aclose(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeGrape]:
    g = await FakeGrape().start()
    yield g
    await g.aclose()


def dead_grape() -> str:
    return f"http://{HOST}:{free_port(HOST)}"


async def test_failover_past_a_dead_and_a_hanging_grape() -> None:
    hanging = await FakeGrape().start()
    good = await FakeGrape().start()
    hanging.answers["lookup"] = lambda _d: ...
    good.answers["lookup"] = lambda _d: ["10.0.0.1:1"]
    try:
        async with Link([dead_grape(), hanging.url, good.url], attempt_timeout=0.2) as link:
            assert await link.lookup("svc") == ["10.0.0.1:1"]
        assert len(hanging.calls) == 1 and len(good.calls) == 1
    finally:
        await hanging.aclose()
        await good.aclose()


async def test_every_grape_down_is_a_discovery_error() -> None:
    async with Link([dead_grape(), dead_grape()], attempts=3) as link:
        with pytest.raises(DiscoveryError, match="no grape answered"):
            await link.lookup("svc")


@pytest.mark.parametrize(
    ("endpoint", "answer", "code"),
    [
        ("lookup", "ERR_GRAPE_LOOKUP", "ERR_GRAPE_LOOKUP"),
        ("announce", "No nodes to query", "No nodes to query"),
        (
            "announce",
            web.Response(status=413, text="ERR_GRAPE_PAYLOAD_SIZE"),
            "ERR_GRAPE_PAYLOAD_SIZE",
        ),
        (
            "lookup",
            web.Response(status=500, text="ERR_GRAPE_PAYLOAD_INVALID"),
            "ERR_GRAPE_PAYLOAD_INVALID",
        ),
    ],
)
async def test_grape_errors_are_grape_errors_and_not_retried(
    fake: FakeGrape, endpoint: str, answer: Any, code: str
) -> None:
    fake.answers[endpoint] = lambda _d: answer
    async with Link([fake.url, fake.url]) as link:
        call = link.lookup("svc") if endpoint == "lookup" else link.announce("svc", 1)
        with pytest.raises(GrapeError) as info:
            await call
    assert info.value.code == code and info.value.grape == fake.url
    assert len(fake.calls) == 1


async def test_empty_lookup_raises_only_when_nothing_was_known() -> None:
    clock = FakeClock()
    fake = await FakeGrape(clock).start()
    answers: list[Any] = [[], ["a:1", "b:2"], [], "ERR_GRAPE_LOOKUP", ["c:3"]]
    fake.answers["lookup"] = lambda _d: answers.pop(0)
    try:
        async with Link([fake.url], clock=clock, cache_ttl=10) as link:
            with pytest.raises(LookupEmpty):
                await link.lookup("svc")
            assert await link.lookup("svc") == ["a:1", "b:2"]
            assert await link.lookup("svc") == ["a:1", "b:2"]  # fresh: no grape call
            assert len(fake.calls) == 2
            for n in (3, 4):  # stale: served at once; an empty and a failed refresh keep it
                clock.advance(11)
                assert await link.lookup("svc") == ["a:1", "b:2"]
                await fake.wait_calls(n)
            clock.advance(11)
            assert await link.lookup("svc") == ["a:1", "b:2"]  # served stale, refreshing
            await fake.wait_calls(5)
            await asyncio.sleep(0)  # let the refresh task store its answer
            for _ in range(100):
                if await link.lookup("svc") == ["c:3"]:
                    break
                await asyncio.sleep(0.01)
            assert await link.lookup("svc") == ["c:3"]
    finally:
        await fake.aclose()


async def test_concurrent_first_lookups_share_one_grape_call(fake: FakeGrape) -> None:
    fake.answers["lookup"] = lambda _d: ["a:1"]
    async with Link([fake.url]) as link:
        got = await asyncio.gather(*(link.lookup("svc") for _ in range(20)))
    assert got == [["a:1"]] * 20 and len(fake.calls) == 1


async def test_announce_sends_the_host_extension(fake: FakeGrape) -> None:
    fake.answers["announce"] = lambda _d: 2
    async with Link([fake.url]) as link:
        assert await link.announce("svc", 1337) == 2
        assert await link.announce("svc", 1337, host="toxiproxy") == 2
    assert [c[1] for c in fake.calls] == [["svc", 1337], ["svc", 1337, {"host": "toxiproxy"}]]


async def test_announce_loop_is_jittered_and_stops() -> None:
    clock = FakeClock()
    fake = await FakeGrape(clock).start()
    fake.answers["announce"] = lambda _d: 1
    results: list[bool] = []
    try:
        async with Link([fake.url], clock=clock, rng=random.Random(5)) as link:
            link.start_announcing(
                "svc", 7, interval=10, on_result=lambda _n, ok: results.append(ok)
            )
            await fake.wait_calls(8)
            await link.stop_announcing("svc")
            n = len(fake.calls)
            assert fake.calls[0][2] == 1000.0  # at once
            gaps = [b[2] - a[2] for a, b in zip(fake.calls, fake.calls[1:], strict=False)]
            assert all(5 <= g <= 15 for g in gaps) and len(set(gaps)) > 3
            await asyncio.sleep(0.05)
            assert len(fake.calls) == n and all(results)
    finally:
        await fake.aclose()


async def test_put_and_get(fake: FakeGrape) -> None:
    key = "6d33adc2b6b2c14c3036feefb7fedbca1a880527"
    fake.answers["put"] = lambda _d: key
    fake.answers["get"] = lambda d: {"id": "x", "v": "hello world"} if d == key else None
    async with Link([fake.url]) as link:
        assert await link.put("hello world") == key
        assert (await link.get(key))["v"] == "hello world"
        assert await link.get("0" * 40) is None
    assert fake.calls[0][1] == {"v": "hello world"}
