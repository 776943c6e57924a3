"""``lab grape``: parse the options, run the DHT node and its API until SIGTERM/SIGINT.

Imported only when the subcommand runs (see :mod:`lab.cli`). The DHT node starts
before the API port opens and stops after it closed, so the API never answers without
a node behind it. Shutdown is graceful: the API stops accepting and finishes what is in
flight, then the DHT socket closes, and the process exits 0. Startup ends with one ``ready``
line naming the ports, which logs and humans look for.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from lab import errors
from lab.grape import settings as grape_settings
from lab.grape.api import GrapeApi
from lab.grape.node import GrapeNode
from lab.grape.settings import GrapeSettings
from lab.httplimits import server_options
from lab.service_logging import setup_logging
from lab.service_runtime import run_service, service_configure, settle

log = logging.getLogger("lab.grape")


configure = service_configure(grape_settings.configure)


def run(args: argparse.Namespace) -> int:
    settings = grape_settings.from_args(args)  # SettingsError -> exit 2 in lab.cli
    setup_logging(args.log_level, f"grape:{settings.api_port}")
    # rpcudp logs every expected timeout as an error and kademlia every dead peer as a
    # warning; the node reports what matters (joined / left) itself.
    logging.getLogger("rpcudp").setLevel(logging.CRITICAL)
    logging.getLogger("kademlia").setLevel(logging.ERROR)
    return run_service(serve(settings), args.event_loop)


async def serve(settings: GrapeSettings) -> int:
    """Run until a stop signal; 0 on a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    node = GrapeNode(settings)
    runner = web.ServerRunner(GrapeApi(node).server(**server_options()), shutdown_timeout=2.0)
    await node.start()
    try:
        await runner.setup()
        site = web.TCPSite(runner, settings.bind, settings.api_port)
        try:
            await site.start()
        except OSError as exc:
            raise errors.RuntimeUnavailable(
                f"cannot bind the API on tcp {settings.bind}:{settings.api_port}: "
                f"{exc.strerror or exc}"
            ) from exc
        settle()
        log.info(
            "ready: api http://%s:%d dht udp %s:%d advertise %s cluster %s node %s",
            settings.bind, settings.api_port, settings.bind, settings.dht_port,
            node.advertise, settings.cluster_id, node.node_id[:12],
        )  # fmt: skip
        await stop.wait()
        log.info("stopping")
    finally:
        try:
            await runner.cleanup()  # the API closes first, then the DHT node stops
        finally:
            await node.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
