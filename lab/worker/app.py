"""Wiring of one worker: RPC server, control app, announce loop, graceful stop.

Start order: RPC server (so the port is known), control app (health answers only once
RPC is served), then announcing. Stop order on SIGTERM/SIGINT, the reverse: stop
announcing (the grapes let the entry expire), mark unhealthy, drain in-flight RPCs
(bounded), close the Link and the control app. Every step owns what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from typing import Any

from aiohttp import web

from lab.grenache.link import Link
from lab.grenache.server import RpcServer
from lab.grenache.wire import Request
from lab.httplimits import server_options
from lab.service_runtime import settle
from lab.worker.behaviour import burn_cpu
from lab.worker.control import WorkerState, make_app
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


async def serve(settings: WorkerSettings, stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` is set or SIGTERM/SIGINT arrives; 0 after a clean drain."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
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
    server = RpcServer(
        make_handler(state),
        host=settings.bind,
        port=settings.port,
        max_body=settings.max_body,
        observer=metrics.observe,
        drain_timeout=settings.drain_timeout,
        load=state.load.report,
    )
    await server.start()
    state.rpc_port = server.port
    runner = web.AppRunner(make_app(state), access_log=None, **server_options())
    try:
        await runner.setup()
        await web.TCPSite(runner, settings.bind, settings.control_port).start()
        async with Link(
            settings.grapes, local_host=settings.local_host(), rng=random.Random(settings.seed)
        ) as link:
            port = settings.announce_port or server.port
            state.announce = f"{settings.announce_host or '(caller address)'}:{port}"
            link.start_announcing(
                settings.service,
                port,
                host=settings.announce_host,
                interval=settings.announce_interval,
                on_result=metrics.announced,
            )
            settle()
            log.info(
                "worker %s serves %s on %s:%d, announces %s every ~%gs",
                settings.name, settings.service, settings.bind, server.port,
                state.announce, settings.announce_interval,
            )  # fmt: skip
            await stop.wait()
            log.info("stopping: no more announces, draining %d requests", server.in_flight)
            await link.stop_announcing(settings.service)
            state.draining = True
            await server.aclose()
    finally:
        await server.aclose()
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
