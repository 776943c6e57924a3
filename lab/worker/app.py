"""Wiring of one worker: RPC server, control app, announce loop, graceful stop.

The RPC server and the announcing Link are ``cleanup_ctx`` generators of the control
app, each starting and ending what it owns. Start order: RPC server (so the port is
known), announcing, then the control port (health answers only once RPC is served).
Stop order on SIGTERM/SIGINT, the reverse, its graceful half first while the control
app still answers (:func:`wind_down`): stop announcing (the grapes let the entry
expire), mark unhealthy, drain in-flight RPCs (bounded); then the control app closes,
the Link and the RPC server end (nothing left to do) and the antagonist stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from lab.grenache.link import Link
from lab.grenache.server import RpcServer
from lab.grenache.wire import Request
from lab.httplimits import server_options
from lab.service_runtime import settle
from lab.worker.behaviour import burn_cpu
from lab.worker.control import STATE, WorkerState, make_app
from lab.worker.load import LoadGate
from lab.worker.metrics import WorkerMetrics
from lab.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


class InjectedError(Exception):
    """The error the error-rate knob answers with."""


def make_handler(state: WorkerState) -> Any:
    """The RPC handler: the behaviour's CPU work, delay and error, then the echo."""
    sleep = asyncio.sleep
    gauge = state.metrics.in_flight
    gate = state.load

    async def handle(req: Request) -> Any:
        b = state.behaviour  # one read: a concurrent PUT never splits a request's knobs
        state.in_flight += 1
        gauge.inc()
        try:
            delay_ms = b.latency.sample_ms(state.rng)
            fail = b.error_rate > 0 and state.rng.random() < b.error_rate
            async with gate.slot():
                burn_cpu(b.cpu_ms)
                if delay_ms > 0:
                    await sleep(delay_ms / 1000.0)
            if fail:
                raise InjectedError(
                    f"ERR_WORKER_INJECTED: {state.name} fails {b.error_rate:g} of requests"
                )
            return {"worker": state.name, "echo": req.payload}
        finally:
            state.in_flight -= 1
            gauge.dec()

    return handle


SETTINGS = web.AppKey("worker_settings", WorkerSettings)
RPC = web.AppKey("worker_rpc", RpcServer)
LINK = web.AppKey("worker_link", Link)


def build_app(settings: WorkerSettings) -> web.Application:
    """The worker as its control app (not yet running) that owns the RPC server and Link.

    Each long-lived piece is one ``cleanup_ctx`` generator, started in order when the
    app starts and ended in reverse when it is cleaned up: the RPC server (so its port
    is known), then the Link that announces it.
    """
    metrics = WorkerMetrics(settings.name, settings.service)
    state = WorkerState(
        name=settings.name,
        service=settings.service,
        behaviour=settings.behaviour(),
        metrics=metrics,
        rng=random.Random(settings.seed),
        load=LoadGate(settings.concurrency),
    )
    metrics.set_behaviour(state.behaviour)
    app = make_app(state)
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_rpc, _announcing])
    return app


async def _rpc(app: web.Application) -> AsyncIterator[None]:
    settings, state = app[SETTINGS], app[STATE]
    server = RpcServer(
        make_handler(state),
        host=settings.bind,
        port=settings.port,
        max_body=settings.max_body,
        observer=state.metrics.observe,
        drain_timeout=settings.drain_timeout,
        load=state.load.report,
    )
    await server.start()
    state.rpc_port = server.port
    app[RPC] = server
    try:
        yield
    finally:
        await server.aclose()  # idempotent: a graceful stop drained it already


async def _announcing(app: web.Application) -> AsyncIterator[None]:
    settings, state = app[SETTINGS], app[STATE]
    async with Link(
        settings.grapes, local_host=settings.local_host(), rng=random.Random(settings.seed)
    ) as link:
        port = settings.announce_port or state.rpc_port
        state.announce = f"{settings.announce_host or '(caller address)'}:{port}"
        link.start_announcing(
            settings.service,
            port,
            host=settings.announce_host,
            interval=settings.announce_interval,
            on_result=state.metrics.announced,
        )
        app[LINK] = link
        try:
            yield
        finally:
            await link.stop_announcing(settings.service)  # idempotent, as above


async def wind_down(app: web.Application) -> None:
    """The graceful half of the stop, while the control app still answers (health 503).

    The contexts' own teardown does the same steps, idempotently, on every other way
    out (a failed start, an exception): this only brings them forward, in their order.
    """
    settings, state, server = app[SETTINGS], app[STATE], app[RPC]
    log.info("stopping: no more announces, draining %d requests", server.in_flight)
    await app[LINK].stop_announcing(settings.service)
    state.draining = True
    await server.aclose()


async def serve(settings: WorkerSettings, stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` is set or SIGTERM/SIGINT arrives; 0 after a clean drain."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None, **server_options())
    try:
        await runner.setup()  # the RPC server, then announcing (the cleanup_ctx)
        await web.TCPSite(runner, settings.bind, settings.control_port).start()
        state = app[STATE]
        settle()
        log.info(
            "worker %s serves %s on %s:%d, announces %s every ~%gs",
            settings.name, settings.service, settings.bind, state.rpc_port,
            state.announce, settings.announce_interval,
        )  # fmt: skip
        await stop.wait()
        await wind_down(app)
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
