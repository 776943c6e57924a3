"""The control API answers as docs/contracts.md says, and refuses bad input with a 400."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lab.clock import SYSTEM_CLOCK
from lab.history import ClientEvent, request_from_json
from lab.loadgen.control import CONTROLS, Controls, add_routes
from lab.loadgen.load import LoadRunner
from lab.loadgen.metrics import ClientMetrics
from lab.loadgen.recorder import Recorder


@pytest.fixture
async def client(
    fake_sender: Callable[..., Any], fake_policy_side: Any
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    recorder = Recorder(history_limit=1000, events_limit=10)
    side = fake_policy_side
    metrics = ClientMetrics("c1", "adaptive", peers=side.peers)

    def record(r: object) -> None:
        recorder.record(r)  # type: ignore[arg-type]
        metrics.observe(r)  # type: ignore[arg-type]

    runner = LoadRunner(
        clock=SYSTEM_CLOCK,
        sender=fake_sender(),
        record=record,
        client="c1",
        policy="adaptive",
        service="rpc_test",
        max_in_flight=100,
    )
    app = web.Application()
    app[CONTROLS] = Controls(
        name="c1",
        policy="adaptive",
        clock=SYSTEM_CLOCK,
        load=runner,
        recorder=recorder,
        metrics=metrics,
        policy_side=side,
        started=SYSTEM_CLOCK.monotonic(),
    )
    add_routes(app)
    async with TestClient(TestServer(app)) as tc:
        yield tc
    await runner.aclose()


async def test_health_and_clock(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 200 and body["name"] == "c1" and body["peers"] == 1
    t = (await (await client.get("/clock")).json())["monotonic"]
    assert abs(t - SYSTEM_CLOCK.monotonic()) < 1.0


async def test_load_history_and_metrics(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/load/start", json={"rate": 200, "duration_s": 0.1, "seed": 3})
    assert resp.status == 200
    deadline = SYSTEM_CLOCK.monotonic() + 5
    records: list[dict[str, object]] = []
    cursor = 0
    while len(records) < 20:
        assert SYSTEM_CLOCK.monotonic() < deadline
        page = await (await client.get(f"/history?cursor={cursor}&limit=7")).json()
        assert len(page["records"]) <= 7 and page["dropped"] == 0
        records += page["records"]
        cursor = page["cursor"]
        await asyncio.sleep(0.01)
    assert [request_from_json(r).seq for r in records] == list(range(1, 21))
    text = await (await client.get("/metrics")).text()
    assert 'lab_client_requests_total{client="c1",outcome="ok",policy="adaptive"} 20.0' in text
    assert 'lab_client_peer_breaker_state{client="c1",peer="127.0.0.9:1"} 2.0' in text
    assert "lab_client_gossip_sent_total" in text
    stop = await (await client.post("/load/stop")).json()
    assert stop["running"] is False


async def test_patch(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.patch("/load", json={"rate": 5})).status == 409
    await client.post("/load/start", json={"rate": 1})
    resp = await client.patch("/load", json={"rate": 50})
    assert resp.status == 200 and (await resp.json())["spec"]["rate"] == 50
    assert (await client.patch("/load", json={"seed": 5})).status == 400
    assert (await client.patch("/load", json={"rate": -5})).status == 400
    await client.post("/load/stop")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"rate": "fast"}', b'{"arrival": "burst"}', b'{"extra": 1}'],
)
async def test_bad_load_specs_are_400(
    client: TestClient[web.Request, web.Application], body: bytes
) -> None:
    resp = await client.post("/load/start", data=body)
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_events_cursor(client: TestClient[web.Request, web.Application]) -> None:
    controls = client.app[CONTROLS]  # type: ignore[index]
    for i in range(15):
        controls.recorder.event(ClientEvent("c1", "adaptive", float(i), "breaker", "p", {}))
    page = await (await client.get("/events?cursor=0")).json()
    assert page["dropped"] == 5 and len(page["events"]) == 10 and page["cursor"] == 15
    assert (await client.get("/events?cursor=-1")).status == 400


async def test_peers_oracle_gossip(client: TestClient[web.Request, web.Application]) -> None:
    peers = await (await client.get("/peers")).json()
    assert peers["peers"][0]["breaker"] == "open"
    resp = await client.put("/oracle", json={"faulty": ["127.0.0.9:1"]})
    assert (await resp.json()) == {"faulty": ["127.0.0.9:1"], "applies": False}
    assert (await client.put("/oracle", json={"faulty": "x"})).status == 400
    assert (await (await client.put("/gossip", json={"enabled": False})).json()) == {
        "enabled": False
    }
    assert (await client.put("/gossip", json={"enabled": "no"})).status == 400
