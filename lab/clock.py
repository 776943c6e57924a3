"""Clocks: the real one, and a fake that tests advance by hand.

Why one protocol: every pure component (scoring, breakers, budgets, gossip, schedules)
takes a Clock instead of calling :mod:`time`, so tests drive time explicitly and never
sleep.

Which clock the lab's timestamps use: ``time.monotonic()`` (CLOCK_MONOTONIC). Containers
on one Docker host share the host kernel and are not in a time namespace, so the
client containers, the local processes and the scenario engine on the host all read the
same CLOCK_MONOTONIC. That lets requests timed inside a client container be aligned
with faults timed by the engine on the host without any offset estimation.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the lab needs from time."""

    def monotonic(self) -> float:
        """Seconds on CLOCK_MONOTONIC: for durations and for every history timestamp."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: only for humans (report headers, run ids)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; the fake clock returns at once after advancing itself."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


SYSTEM_CLOCK: Clock = SystemClock()
