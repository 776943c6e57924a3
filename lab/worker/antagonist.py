"""The antagonist: a co-tenant that takes a share of the worker's CPU for a while.

Prequal's testbed makes capacity heterogeneous with CPU antagonists on some servers.
Here the antagonist runs on the worker's own event-loop thread: in every ``PERIOD_S``
it burns ``share`` of the period and sleeps the rest, so the worker's requests get
only ``1 - share`` of the time they had, their service stretches by ``1 / (1 - share)``
and, under bounded concurrency, its queue grows: less capacity, as a busy neighbour
leaves. Nothing is mocked: the CPU really is taken. The period (10 ms) keeps each
theft short next to the lab's latencies, so it reads as lost capacity, not as stalls.
"""

from __future__ import annotations

import asyncio
import contextlib

from lab.worker.behaviour import burn_cpu

PERIOD_S = 0.010
MAX_SHARE = 0.95  # more would starve the control endpoint that ends it


class Antagonist:
    """Takes ``share`` of the loop's time until stopped or ``for_s`` has passed."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.share = 0.0
        self.periods = 0
        self.busy_s = 0.0  # loop time taken so far, all runs together

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, share: float, for_s: float | None = None) -> None:
        """Take ``share`` (0 < share <= 0.95) of the CPU, replacing any earlier one."""
        if not 0 < share <= MAX_SHARE:
            raise ValueError(f"share: must be in (0, {MAX_SHARE}], not {share!r}")
        if for_s is not None and for_s <= 0:
            raise ValueError(f"for_s: must be positive, not {for_s!r}")
        self._cancel()
        self.share = share
        self._task = asyncio.get_running_loop().create_task(self._run(share, for_s))

    async def _run(self, share: float, for_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        end = None if for_s is None else loop.time() + for_s
        busy_ms, idle_s = share * PERIOD_S * 1000, (1 - share) * PERIOD_S
        while end is None or loop.time() < end:
            start = loop.time()
            burn_cpu(busy_ms)
            self.busy_s += loop.time() - start
            self.periods += 1
            await asyncio.sleep(idle_s)
        self.share = 0.0

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = None
        self.share = 0.0

    async def stop(self) -> None:
        """End the antagonist now and wait for it; safe when none runs."""
        task = self._task
        self._cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
