"""A load with a lease stops by itself unless renewed (issue 13: after ``kill -9`` of
``lab run`` the clients kept loading into the fault until the next run)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lab.clock import SYSTEM_CLOCK
from lab.history import RequestRecord
from lab.loadgen.control import CONTROLS, Controls, add_routes
from lab.loadgen.load import LoadRunner
from lab.loadgen.metrics import ClientMetrics
from lab.loadgen.recorder import Recorder
from lab.loadgen.schedule import LoadSpec


def _runner(sender: Any, records: list[RequestRecord]) -> LoadRunner:
    return LoadRunner(
        clock=SYSTEM_CLOCK,
        sender=sender,
        record=records.append,
        client="c1",
        policy="adaptive",
        service="rpc_test",
        max_in_flight=100,
    )


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not predicate():
        assert loop.time() - t0 < within, "condition not met in time"
        await asyncio.sleep(0.01)
    return loop.time() - t0


async def test_an_unrenewed_lease_stops_the_load(fake_sender: Callable[..., Any]) -> None:
    records: list[RequestRecord] = []
    runner = _runner(fake_sender(), records)
    t0 = await runner.start(LoadSpec(rate=200), lease_s=0.3)  # no duration: until stopped
    await _until(lambda: not runner.running, within=2.0)
    stopped = SYSTEM_CLOCK.monotonic()
    assert runner.lease_expired and runner.status()["lease_expired"]
    assert 0.3 <= stopped - t0 < 0.6
    issued = runner.seq
    assert 50 <= issued <= 70  # 200/s for 0.3 s
    await asyncio.sleep(0.05)
    assert runner.seq == issued
    await runner.aclose()
    assert max(r.issued for r in records) < t0 + 0.3


async def test_renewing_keeps_it_running_and_a_load_without_lease_runs_on(
    fake_sender: Callable[..., Any],
) -> None:
    runner = _runner(fake_sender(), [])
    await runner.start(LoadSpec(rate=100), lease_s=0.3)
    for _ in range(6):  # 0.6 s, twice the lease
        await asyncio.sleep(0.1)
        runner.lease(0.3)
    assert runner.running and not runner.lease_expired
    await _until(lambda: not runner.running, within=2.0)
    await runner.start(LoadSpec(rate=100))  # a new start without lease: no lease
    assert runner.lease_until is None and not runner.lease_expired
    await asyncio.sleep(0.4)
    assert runner.running
    await runner.aclose()


@pytest.fixture
async def api(
    fake_sender: Callable[..., Any], fake_policy_side: Any
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    runner = _runner(fake_sender(), [])
    app = web.Application()
    app[CONTROLS] = Controls(
        name="c1",
        policy="adaptive",
        clock=SYSTEM_CLOCK,
        load=runner,
        recorder=Recorder(history_limit=100, events_limit=10),
        metrics=ClientMetrics("c1", "adaptive", peers=fake_policy_side.peers),
        policy_side=fake_policy_side,
        started=SYSTEM_CLOCK.monotonic(),
    )
    add_routes(app)
    async with TestClient(TestServer(app)) as tc:
        yield tc
    await runner.aclose()


async def test_the_control_api_takes_and_renews_a_lease(
    api: TestClient[web.Request, web.Application],
) -> None:
    resp = await api.post("/load/lease", json={"lease_s": 2})
    assert resp.status == 409  # no load to renew
    resp = await api.post("/load/start", json={"rate": 50, "lease_s": 0.5})
    assert resp.status == 200
    body = await resp.json()
    assert body["lease_until"] == pytest.approx(body["started"] + 0.5)
    resp = await api.post("/load/lease", json={"lease_s": 5})
    assert resp.status == 200
    assert (await resp.json())["lease_until"] >= body["started"] + 5
    status = await (await api.get("/load")).json()
    assert status["running"] and not status["lease_expired"]
    await api.post("/load/stop")


@pytest.mark.parametrize(
    "body",
    [
        {"lease_s": "3"},
        {"lease_s": True},
        {"lease_s": 0.1},
        {"lease_s": 1e9},
        {"lease_s": -1},
        {"lease_s": math.inf},
        {"lease_s": math.nan},
    ],
)
async def test_a_bad_lease_is_a_400_naming_it(
    api: TestClient[web.Request, web.Application], body: dict[str, Any]
) -> None:
    resp = await api.post("/load/start", json={"rate": 10, **body})
    assert resp.status == 400
    error = (await resp.json())["error"]
    # NaN and Infinity are refused by the bounded JSON reader before any field is read
    assert "lease_s" in error or "is not a JSON number" in error
    assert not (await (await api.get("/load")).json())["running"]
    resp = await api.post("/load/lease", json=body)
    assert resp.status == 400
