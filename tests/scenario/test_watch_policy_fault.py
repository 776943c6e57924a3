"""The watch aborts at the first renewal a client refuses because its policy failed (410),
with the client's message: no waiting out the lease (issue 15)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestServer

from lab.lab_client import HttpLabClient
from lab.scenario.runtime.protocol import Target
from lab.scenario.runtime.watch import Watch

FAULT = "policy failed: mine.py:12: choose() raised: KeyError: 'x'\nTraceback ..."


async def test_a_410_from_a_client_ends_the_watch_at_once_with_its_error() -> None:
    async def version(_r: web.Request) -> web.Response:
        return web.json_response({"version": "2.12.0"})

    async def lease(_r: web.Request) -> web.Response:
        return web.json_response({"error": FAULT, "policy_error": "..."}, status=410)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_post("/load/lease", lease)
    async with TestServer(app) as server:
        base = str(server.make_url("")).rstrip("/")
        watch = Watch(base, [Target("client-you", "client", base)], renew_s=0.05)
        reasons: list[str] = []
        t0 = time.monotonic()
        async with HttpLabClient() as lab:
            await asyncio.wait_for(watch.run(lab, reasons.append), 5.0)
    assert reasons == [f"client client-you: {FAULT}"]
    assert time.monotonic() - t0 < watch.lease_s  # not after the lease ran out
