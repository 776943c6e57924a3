"""A worker's real control app on a free loopback port, for tests that drive it over HTTP.

Imported by name (tests/conftest.py's directory is on ``sys.path``) by the worker's, the
antagonist fault's and the janitor's tests, which all need the same served app.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

from aiohttp import web

from lab.procs import free_port
from lab.worker.behaviour import Behaviour
from lab.worker.control import WorkerState, make_app
from lab.worker.metrics import WorkerMetrics

HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def served_control(name: str = "worker-1") -> AsyncIterator[tuple[str, WorkerState]]:
    """``(base URL, state)`` of a served control app; stopped (antagonist too) on exit."""
    state = WorkerState(
        name=name, service="rpc_test", behaviour=Behaviour(),
        metrics=WorkerMetrics(name, "rpc_test"), rng=random.Random(1),
    )  # fmt: skip
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    port = free_port(HOST)
    await web.TCPSite(runner, HOST, port).start()
    try:
        yield f"http://{HOST}:{port}", state
    finally:
        await runner.cleanup()
