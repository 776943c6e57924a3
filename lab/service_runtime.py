"""How the lab's long-running services run: the event loop and the garbage collector.

The services measure latency (clients) or are measured (workers, grapes), so the runtime
under them must add as little as it can to a request's time:

- **uvloop** (libuv) instead of asyncio's pure-Python selector loop: fewer Python frames per
  socket event; a trial lifted python->node from 7.4k to 10.3k req/s. ``--event-loop
  asyncio`` (``LAB_EVENT_LOOP``) keeps the standard loop for comparisons, and it is the
  fallback where uvloop is not installed (it has no Windows wheels).
- **A quieter collector**: Python's default ``(700, 10, 10)`` thresholds run a young
  collection every 700 net allocations, several per request under load, and promote
  request-lived objects that then make full collections longer. ``GC_THRESHOLDS`` lets
  a request's garbage die young, and :func:`settle` (called once a service serves)
  moves everything built at start-up (modules, the app, metric registries) out of the
  collector's sight with ``gc.freeze()``, so a full collection walks only what the
  service made since.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from lab.service_logging import LEVELS
from lab.settings import add_option, one_of

T = TypeVar("T")

LOOPS = ("uvloop", "asyncio")

GC_THRESHOLDS = (20_000, 20, 20)
"""Young collections every 20,000 net allocations (a few per thousand requests), a middle
one every 20 of those, a full one every 20 middle ones (and, as always since 3.x, only
when the long-lived set grew by a quarter)."""


SERVICE_OPTIONS: tuple[tuple[str, str, Callable[[str], str], str, str], ...] = (
    ("--log-level", "LAB_LOG_LEVEL", one_of(LEVELS, str.upper), "INFO",
     "logging level: DEBUG, INFO, WARNING or ERROR"),
    ("--event-loop", "LAB_EVENT_LOOP", one_of(LOOPS, str.lower), "uvloop",
     "event loop: uvloop (default; asyncio where uvloop is missing) or asyncio"),
)  # fmt: skip
"""(flag, environment variable, parser, default, help) of what every service takes."""


def service_configure(
    configure_settings: Callable[[argparse.ArgumentParser], None],
) -> Callable[[argparse.ArgumentParser], None]:
    """A service command's ``configure``: its own settings, then ``--log-level`` and
    ``--event-loop``, which every long-running service takes alike."""

    def configure(parser: argparse.ArgumentParser) -> None:
        configure_settings(parser)
        for flag, env, parse, default, help_ in SERVICE_OPTIONS:
            add_option(parser, flag, env=env, parse=parse, default=default, help=help_)

    return configure


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop called ``name``; None means asyncio's default."""
    if name == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop
    return None


def run_service(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    """Run a service's main coroutine on the chosen loop with the collector tuned."""
    gc.set_threshold(*GC_THRESHOLDS)
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)


def settle() -> None:
    """Once a service is up: collect start-up garbage, then freeze what is left over."""
    gc.collect()
    gc.freeze()
