"""The worker's control HTTP app: health, metrics, and the behaviour knobs at runtime.

``PUT /behaviour`` takes a partial JSON object (``{"latency": {"kind": "fixed", "ms":
300}, "error_rate": 0.1, "cpu_ms": 2}``), validates all of it before changing anything
and swaps the behaviour in one assignment; a bad value gets 400 naming the field.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lab.errors import SettingsError
from lab.httplimits import body_deadline
from lab.jsonlimits import JsonRejected, loads
from lab.worker.antagonist import Antagonist
from lab.worker.behaviour import Behaviour
from lab.worker.load import LoadGate
from lab.worker.metrics import WorkerMetrics


@dataclass
class WorkerState:
    """What the RPC handler and the control app share (one event loop, no locks)."""

    name: str
    service: str
    behaviour: Behaviour
    metrics: WorkerMetrics
    rng: random.Random
    rpc_port: int = 0
    announce: str = ""
    draining: bool = False
    in_flight: int = 0
    started: dict[str, Any] = field(default_factory=dict)
    load: LoadGate = field(default_factory=LoadGate)  # the load-dependent mode's gate
    antagonist: Antagonist = field(default_factory=Antagonist)

    def set_behaviour(self, b: Behaviour) -> None:
        self.behaviour = b
        self.metrics.set_behaviour(b)


STATE = web.AppKey("worker_state", WorkerState)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def health(request: web.Request) -> web.Response:
    s = request.app[STATE]
    body = {
        "ok": not s.draining,
        "name": s.name,
        "service": s.service,
        "port": s.rpc_port,
        "announce": s.announce,
        "in_flight": s.in_flight,
    }
    return _json(body, 200 if not s.draining else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def get_behaviour(request: web.Request) -> web.Response:
    return _json(request.app[STATE].behaviour.to_json())


async def put_behaviour(request: web.Request) -> web.Response:
    s = request.app[STATE]
    raw = await request.read()
    try:
        change = loads(raw, max_bytes=MAX_BODY_BYTES)
    except JsonRejected as exc:
        return _json({"error": f'body: {exc} (try {{"error_rate": 0.1}})'}, 400)
    try:
        new = s.behaviour.updated(change)
    except SettingsError as exc:
        return _json({"error": str(exc)}, 400)
    s.set_behaviour(new)
    return _json(new.to_json())


async def get_antagonist(request: web.Request) -> web.Response:
    a = request.app[STATE].antagonist
    return _json({"share": a.share, "running": a.running})


async def put_antagonist(request: web.Request) -> web.Response:
    """``{"share": 0.5, "for_s": 30}``: take half the CPU for 30 s (no for_s: until DELETE)."""
    a = request.app[STATE].antagonist
    try:
        body = loads(await request.read(), max_bytes=MAX_BODY_BYTES)
        if not isinstance(body, dict) or not isinstance(body.get("share"), int | float):
            raise ValueError('body: expected {"share": 0.5, "for_s": 30}')
        for_s = body.get("for_s")
        if for_s is not None and not isinstance(for_s, int | float):
            raise ValueError("for_s: expected a number of seconds")
        a.start(float(body["share"]), None if for_s is None else float(for_s))
    except (JsonRejected, ValueError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"share": a.share, "running": a.running})


async def delete_antagonist(request: web.Request) -> web.Response:
    a = request.app[STATE].antagonist
    await a.stop()
    return _json({"share": a.share, "running": a.running})


MAX_BODY_BYTES = 16 * 1024
"""The largest control body (``PUT /behaviour``, ``PUT /antagonist``): a real one is
under 200 bytes."""


def make_app(state: WorkerState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[body_deadline])
    app[STATE] = state
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/behaviour", get_behaviour)
    app.router.add_put("/behaviour", put_behaviour)
    app.router.add_get("/antagonist", get_antagonist)
    app.router.add_put("/antagonist", put_antagonist)
    app.router.add_delete("/antagonist", delete_antagonist)
    app.cleanup_ctx.append(_antagonist)
    return app


async def _antagonist(app: web.Application) -> AsyncIterator[None]:
    """Nothing to start (a ``PUT /antagonist`` does); whatever started ends with the app."""
    yield
    await app[STATE].antagonist.stop()
