"""Wiring of the client service: discovery, gossip membership, the load loop, the API.

Every long-lived piece is started and torn down by one ``cleanup_ctx`` generator of the
aiohttp Application (aiohttp runs them in order at startup and in reverse at cleanup),
so nothing starts at import and each task has exactly one owner:

1. ``_core``: discovery (the grape Link) and the policy side (transport, balancer,
   gossip socket), recorder, metrics, load runner and the controls the handlers read;
2. ``_discovery``: the lookup loop that feeds the policy's peer set;
3. ``_membership``: announce this client's gossip address under ``lab_gossip`` and look
   the other members up, so gossip needs no static peer list;
4. ``_load``: on cleanup, stops the load loop and drains requests in flight first.

:func:`serve` runs the app until SIGTERM or SIGINT and then cleans up gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from lab.clock import SYSTEM_CLOCK, Clock
from lab.errors import LabError
from lab.history import ClientEvent, RequestRecord
from lab.httplimits import body_deadline, server_options
from lab.loadgen.control import CONTROLS, MAX_BODY_BYTES, Controls, add_routes
from lab.loadgen.load import LoadRunner
from lab.loadgen.metrics import ClientMetrics
from lab.loadgen.parts import Discovery, PartsFactory, PolicySideLike
from lab.loadgen.policy_side import open_parts
from lab.loadgen.recorder import Recorder
from lab.loadgen.settings import ClientSettings
from lab.service_runtime import settle

log = logging.getLogger(__name__)

SETTINGS: web.AppKey[ClientSettings] = web.AppKey("client_settings", ClientSettings)
CLOCK: web.AppKey[Clock] = web.AppKey("client_clock")
PARTS: web.AppKey[PartsFactory] = web.AppKey("client_parts")
DISCOVERY: web.AppKey[Discovery] = web.AppKey("client_discovery")
SIDE: web.AppKey[PolicySideLike] = web.AppKey("client_policy_side")


def build_app(
    settings: ClientSettings,
    clock: Clock = SYSTEM_CLOCK,
    parts: PartsFactory | None = None,
) -> web.Application:
    """The client service as an aiohttp Application (not yet running).

    ``parts`` opens discovery and the policy side; the default uses the grapes through
    ``lab.grenache`` and the balancer (see :mod:`lab.loadgen.policy_side`).
    """
    if parts is None:
        parts = open_parts
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[body_deadline])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[PARTS] = parts
    app.cleanup_ctx.extend([_core, _discovery, _membership, _load])
    add_routes(app)
    return app


async def _core(app: web.Application) -> AsyncIterator[None]:
    s, clock = app[SETTINGS], app[CLOCK]
    recorder = Recorder(s.history_limit, s.events_limit)

    def event(e: ClientEvent) -> None:
        recorder.event(e)

    async with app[PARTS](s, clock, event) as (discovery, side):
        metrics = ClientMetrics(s.name, s.policy, peers=side.peers, gossip=side.gossip_counts)

        def record(r: RequestRecord) -> None:
            recorder.record(r)
            metrics.observe(r)

        runner = LoadRunner(
            clock=clock,
            sender=side.send,
            record=record,
            client=s.name,
            policy=s.policy,
            service=s.service,
            max_in_flight=s.max_in_flight,
        )
        app[DISCOVERY], app[SIDE] = discovery, side
        app[CONTROLS] = Controls(
            name=s.name,
            policy=s.policy,
            clock=clock,
            load=runner,
            recorder=recorder,
            metrics=metrics,
            policy_side=side,
            started=clock.monotonic(),
        )
        yield


async def _discovery(app: web.Application) -> AsyncIterator[None]:
    s, link, side = app[SETTINGS], app[DISCOVERY], app[SIDE]

    async def refresh() -> None:
        peers = await link.lookup(s.service)
        if peers:  # an empty answer never wipes the peers we know (stale beats none)
            side.set_peers(peers)

    async with _every(s.lookup_interval, refresh, f"lookup {s.service}"):
        yield


async def _membership(app: web.Application) -> AsyncIterator[None]:
    s, link, side = app[SETTINGS], app[DISCOVERY], app[SIDE]
    host, port = s.gossip_host(), side.gossip_port()
    me = f"{host}:{port}"

    async def announce() -> None:
        await link.announce(s.gossip_service, port, host=host)

    async def members() -> None:
        found = await link.lookup(s.gossip_service)
        side.set_gossip_members([m for m in found if m != me])

    async with (
        _every(s.announce_interval, announce, f"announce {s.gossip_service}"),
        _every(s.lookup_interval, members, f"lookup {s.gossip_service}"),
    ):
        yield


async def _load(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[CONTROLS].load.aclose()


@contextlib.asynccontextmanager
async def _every(
    interval: float, step: Callable[[], Awaitable[None]], what: str
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``step`` now and then every ``interval`` seconds until the block exits.

    Discovery trouble is logged and retried at the next tick: a grape that is down must
    not take the client down, and the peers already known keep serving meanwhile.
    """

    async def loop() -> None:
        failing = False
        while True:
            try:
                await step()
            except LabError as exc:
                if not failing:
                    log.warning("%s failed (will retry every %.2fs): %s", what, interval, exc)
                failing = True
            else:
                if failing:
                    log.info("%s works again", what)
                failing = False
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name=what)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def serve(
    settings: ClientSettings, clock: Clock = SYSTEM_CLOCK, parts: PartsFactory | None = None
) -> int:
    """Run the client until SIGTERM/SIGINT, then shut down gracefully; return 0."""
    app = build_app(settings, clock, parts)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **server_options())
    try:
        await runner.setup()
    except BaseException:
        await app.cleanup()  # tear down the contexts that did start, in reverse
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.bind, settings.control_port)
        await site.start()
        settle()
        log.info(
            "client %s (%s) serving control on %s:%d",
            settings.name,
            settings.policy,
            settings.bind,
            settings.control_port,
        )
        await stop.wait()
        log.info("client %s stopping", settings.name)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    return 0
