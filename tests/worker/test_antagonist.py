"""The antagonist really takes the worker's CPU, ends on time, and is driven over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from worker_control import served_control

from lab.worker.antagonist import Antagonist
from lab.worker.behaviour import burn_cpu

HOST = "127.0.0.1"


async def work_s(chunks: int = 30) -> float:
    """Wall time of fixed CPU work done in 2 ms chunks, yielding between them."""
    start = time.perf_counter()
    for _ in range(chunks):
        burn_cpu(2.0)
        await asyncio.sleep(0)
    return time.perf_counter() - start


async def test_a_share_of_the_cpu_stretches_the_workers_own_work() -> None:
    antagonist = Antagonist()
    antagonist.start(0.6)
    try:
        crowded = await work_s()
    finally:
        await antagonist.stop()
    # The loop time it held is time the worker's work did not get. Wall-clock ratios
    # against a run without it are noise on a busy host (the whole process waits for a
    # core), so the check is on the share it held while the work ran.
    assert antagonist.periods > 0
    assert antagonist.busy_s > 0.3 * crowded


async def test_it_ends_by_itself_after_for_s_and_refuses_bad_shares() -> None:
    antagonist = Antagonist()
    antagonist.start(0.2, for_s=0.05)
    for _ in range(400):  # poll with a 2 s deadline
        if not antagonist.running:
            break
        await asyncio.sleep(0.005)
    assert not antagonist.running and antagonist.share == 0.0
    for share in (0.0, 0.99, -1):
        with pytest.raises(ValueError, match="share"):
            antagonist.start(share)
    with pytest.raises(ValueError, match="for_s"):
        antagonist.start(0.5, for_s=0)


@pytest.fixture
async def control() -> AsyncIterator[str]:
    async with served_control("w") as (url, _state):  # its exit stops a running antagonist
        yield f"{url}/antagonist"


async def test_control_endpoint_starts_shows_and_stops_it(control: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(control, json={"share": 0.3}) as resp:
            assert resp.status == 200 and await resp.json() == {"share": 0.3, "running": True}
        async with http.get(control) as resp:
            assert (await resp.json())["running"] is True
        async with http.put(control, json={"share": 2}) as resp:
            assert resp.status == 400 and "share" in (await resp.json())["error"]
        async with http.put(control, data=b"nope") as resp:
            assert resp.status == 400
        async with http.delete(control) as resp:
            assert await resp.json() == {"share": 0.0, "running": False}
