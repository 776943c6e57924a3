"""The engine's lab client against the real client control API, and its in-memory fake
held to the same contract (a fake that drifted would let the engine's unit tests pass
against behaviour no client has)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from lab.clock import SYSTEM_CLOCK
from lab.fake_lab_client import FakeLabClient
from lab.history import Outcome, RequestRecord, request_to_json
from lab.lab_client import ControlError, HttpLabClient, LabClient
from lab.loadgen.control import CONTROLS, Controls, add_routes
from lab.loadgen.load import LoadRunner
from lab.loadgen.metrics import ClientMetrics
from lab.loadgen.recorder import Recorder
from lab.procs import free_port

Served = tuple[LabClient, str, Callable[[], list[str]]]
"""(the lab client, a client's control URL, what its oracle list is now)."""


@pytest.fixture
async def real(fake_sender: Callable[..., Any], fake_policy_side: Any) -> AsyncIterator[Served]:
    """A real client control API on a real socket, its load sent nowhere (a fake sender)."""
    recorder = Recorder(history_limit=1000, events_limit=10)

    def record(r: RequestRecord) -> None:
        recorder.record(r)

    runner = LoadRunner(
        clock=SYSTEM_CLOCK,
        sender=fake_sender(),
        record=record,
        client="c1",
        policy="oracle",
        service="rpc_test",
        max_in_flight=100,
    )
    app = web.Application()
    app[CONTROLS] = Controls(
        name="c1",
        policy="oracle",
        clock=SYSTEM_CLOCK,
        load=runner,
        recorder=recorder,
        metrics=ClientMetrics("c1", "oracle", peers=fake_policy_side.peers),
        policy_side=fake_policy_side,
        started=SYSTEM_CLOCK.monotonic(),
    )
    add_routes(app)
    async with TestServer(app) as server, HttpLabClient() as lab:
        yield lab, str(server.make_url("")).rstrip("/"), lambda: list(fake_policy_side.faulty())
    await runner.aclose()


@pytest.fixture
async def fake() -> AsyncIterator[Served]:
    lab = FakeLabClient()
    client = lab.add("http://fake-client:1")
    yield lab, "http://fake-client:1", lambda: list(client.oracle or [])


@pytest.fixture(params=["real", "fake"])
def served(request: pytest.FixtureRequest) -> Served:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


async def test_load_lease_oracle_gossip_and_clock(served: Served) -> None:
    lab, url, oracle = served
    assert await lab.renew_lease(url, 2.0, budget_s=2.0) is False  # no load: 409
    await lab.start_load(url, {"rate": 50, "lease_s": 5.0})
    assert await lab.renew_lease(url, 5.0, budget_s=2.0) is True
    await lab.set_oracle(url, ["10.0.0.1:1", "10.0.0.2:1"])
    assert oracle() == ["10.0.0.1:1", "10.0.0.2:1"]
    await lab.set_gossip(url, False)
    before = time.monotonic()
    theirs = await lab.clock(url)
    assert before <= theirs <= time.monotonic()  # one CLOCK_MONOTONIC on this host
    await lab.stop_load(url)
    assert await lab.renew_lease(url, 2.0, budget_s=2.0) is False


async def test_history_pages_follow_the_cursor_and_clamp_past_the_end(served: Served) -> None:
    lab, url, _ = served
    await lab.start_load(url, {"rate": 200, "lease_s": 5.0})
    if isinstance(lab, FakeLabClient):  # the fake serves what the test says it served
        lab.clients[url].records = [request_to_json(_record(i)) for i in range(30)]
    else:
        await _until_served(lab, url, 30)
    await lab.stop_load(url)
    first = await lab.history(url, 0, limit=10)
    assert len(first["records"]) == 10 and first["cursor"] == 10
    second = await lab.history(url, first["cursor"], limit=10)
    assert [r["seq"] for r in second["records"]] == [r["seq"] + 10 for r in first["records"]]
    end = await lab.history(url, 2**53, limit=0)
    assert end["records"] == [] and end["cursor"] >= 30
    events = await lab.events(url, 0)
    assert isinstance(events["events"], list) and "cursor" in events


async def test_an_unreachable_client_is_one_error_type_saying_so() -> None:
    port = free_port("127.0.0.1")
    for lab in (HttpLabClient(), FakeLabClient()):
        async with _opened(lab):
            with pytest.raises(ControlError) as caught:
                await lab.history(f"http://127.0.0.1:{port}", 0)
            assert caught.value.refused and caught.value.status is None
            assert f"127.0.0.1:{port}" in str(caught.value)


async def test_an_http_error_status_is_kept(real: Served) -> None:
    lab, url, _ = real
    with pytest.raises(ControlError) as caught:
        await lab.start_load(url, {"rate": "fast"})
    assert caught.value.status == 400 and "rate" in str(caught.value)


def _record(seq: int) -> RequestRecord:
    return RequestRecord("c1", "oracle", seq, issued=1.0 + seq, ended=1.1 + seq, outcome=Outcome.OK)


async def _until_served(lab: LabClient, url: str, count: int, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while (await lab.history(url, 2**53, limit=0))["cursor"] < count:
        assert time.monotonic() < deadline, f"the client did not serve {count} requests"
        await asyncio.sleep(0.02)


class _opened:
    """``async with`` for either client (the fake needs no session)."""

    def __init__(self, lab: object) -> None:
        self.lab = lab

    async def __aenter__(self) -> None:
        if isinstance(self.lab, HttpLabClient):
            await self.lab.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        if isinstance(self.lab, HttpLabClient):
            await self.lab.close()
