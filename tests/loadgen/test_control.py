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


# The inputs: each once killed a client (OOM), a Toxiproxy (connections), or
# answered 500, or was accepted and later rendered /load and /health as invalid JSON.
HOSTILE = [
    (b'{"rate":100,"payload_bytes":4194304,"duration_s":3}', "payload_bytes"),
    (b'{"rate":100000,"duration_s":3}', "rate"),
    (b'{"rate":30000,"payload_bytes":1048576}', "rate"),
    (b'{"rate":1000,"payload_bytes":65536}', "MiB/s"),
    (b'{"rate":2000,"payload_bytes":65536}', "payload_bytes"),  # 128 MiB/s
    (b'{"rate":Infinity}', "Infinity"),
    (b'{"rate":NaN}', "NaN"),
    (b'{"timeout_s":1e999}', "overflows"),
    (b'{"duration_s":1e308}', "duration_s"),
    (b'{"timeout_s":3600}', "timeout_s"),
    (b'{"seed":1e300}', "seed"),
    (b'{"seed":' + b"9" * 400 + b"}", "digits"),
    (b'{"seed":' + b"9" * 5000 + b"}", "digits"),
    (b'{"seed":18446744073709551616}', "seed"),
    (b'{"payload_bytes":' + b"9" * 40 + b"}", "payload_bytes"),
    (b'{"rate":' + b"9" * 60 + b"}", "rate"),
    (b'{"service":' + b"[" * 5000 + b"]" * 5000 + b"}", "nested"),
    (b"[" * 100_000, "over"),  # 100 KB: over the body limit
    (b'{"arrival":["constant"]}', "arrival"),
]


@pytest.mark.parametrize(("body", "says"), HOSTILE)
async def test_hostile_load_specs_are_4xx_and_change_nothing(
    client: TestClient[web.Request, web.Application], body: bytes, says: str
) -> None:
    resp = await client.post("/load/start", data=body)
    assert resp.status in (400, 413), await resp.text()
    if resp.status == 400:
        assert says in (await resp.json())["error"]
    load = await (await client.get("/load")).json()  # still valid JSON, nothing started
    assert load["running"] is False and load["spec"] is None
    assert (await client.get("/health")).status == 200


async def test_patch_is_held_to_the_same_limits(
    client: TestClient[web.Request, web.Application],
) -> None:
    assert (await client.post("/load/start", json={"rate": 100, "duration_s": 5})).status == 200
    changes = (
        {"rate": 100_000},
        {"payload_bytes": 4 * 2**20},
        {"rate": 1500, "payload_bytes": 65536},
    )
    for change in changes:
        resp = await client.patch("/load", json=change)
        assert resp.status == 400, change
    resp = await client.patch("/load", data=b'{"rate": Infinity}')
    assert resp.status == 400
    spec = (await (await client.get("/load")).json())["spec"]
    assert spec["rate"] == 100 and spec["payload_bytes"] == 64


async def test_query_and_oracle_limits(client: TestClient[web.Request, web.Application]) -> None:
    for q in ("limit=" + "9" * 5000, "cursor=\u00b2", "limit=-1", "cursor=1e3"):
        assert (await client.get(f"/history?{q}")).status == 400, q
    page = await (await client.get("/history?limit=999999999")).json()
    assert page["records"] == []  # capped at MAX_PAGE, not refused
    too_many = {"faulty": [f"10.0.0.{i}:1" for i in range(65)]}
    assert (await client.put("/oracle", json=too_many)).status == 400
    assert (await client.put("/oracle", json={"faulty": ["x" * 256]})).status == 400


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
