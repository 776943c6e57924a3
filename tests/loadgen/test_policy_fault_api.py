"""Once the learner's policy has failed, the client refuses load with 410 and says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lab.clock import SYSTEM_CLOCK
from lab.loadgen.control import CONTROLS, Controls, add_routes
from lab.loadgen.load import LoadRunner
from lab.loadgen.metrics import ClientMetrics
from lab.loadgen.recorder import Recorder


async def test_a_failed_policy_stops_the_load_and_refuses_start_and_lease(
    fake_sender: Callable[..., Any], fake_policy_side: Any
) -> None:
    side = fake_policy_side
    fault: list[str] = []
    side.policy_fault = lambda: fault[0] if fault else None
    recorder = Recorder(history_limit=100, events_limit=10)
    runner = LoadRunner(
        clock=SYSTEM_CLOCK, sender=fake_sender(), record=recorder.record, client="c1",
        policy="p.py:P", service="rpc_test", max_in_flight=10,
    )  # fmt: skip
    app = web.Application()
    app[CONTROLS] = Controls(
        name="c1", policy="p.py:P", clock=SYSTEM_CLOCK, load=runner, recorder=recorder,
        metrics=ClientMetrics("c1", "p.py:P", peers=side.peers), policy_side=side,
        started=SYSTEM_CLOCK.monotonic(),
    )  # fmt: skip
    add_routes(app)
    async with TestClient(TestServer(app)) as tc:
        assert (await tc.post("/load/start", json={"rate": 10, "lease_s": 5})).status == 200
        assert (await tc.post("/load/lease", json={"lease_s": 5})).status == 200
        fault.append("p.py:7: choose() raised: IndexError: list index out of range\nTraceback")
        resp = await tc.post("/load/lease", json={"lease_s": 5})
        body = await resp.json()
        assert resp.status == 410
        assert body["error"].startswith("policy failed: p.py:7: choose() raised: IndexError")
        assert "Traceback" in body["policy_error"]
        assert not runner.running
        assert (await tc.post("/load/start", json={"rate": 10})).status == 410
        assert not runner.running
    await runner.aclose()
