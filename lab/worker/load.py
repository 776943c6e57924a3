"""The worker's load-dependent mode: bounded concurrency with a FIFO queue.

With ``concurrency`` = c > 0 at most c requests are in service at once; the rest wait
in arrival order, so a request's latency grows with the requests in flight ahead of it
(the M/M/c-like behaviour that C3's and Prequal's signals describe). With c = 0 there
is no bound and no queue: the worker behaves as before, and still reports its load.

The gate measures what the worker reports (:class:`~lab.grenache.load.LoadReport`):
requests in flight (queued + in service), queue length, and EWMAs of service time
(queueing excluded) and of latency (queueing included), weight ``ALPHA`` on each new
sample (~20 samples of memory: tracks a change within a fraction of a second at the
lab's rates, and one odd request moves it by 5 %).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lab.grenache.load import LoadReport

ALPHA = 0.05


class LoadGate:
    """Admits requests to service, at most ``concurrency`` at once (0: no bound)."""

    def __init__(self, concurrency: int = 0) -> None:
        if concurrency < 0:
            raise ValueError(f"concurrency: must be >= 0, not {concurrency!r}")
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        self.in_flight = 0
        self.queue = 0
        self.service_s = 0.0
        self.latency_s = 0.0
        self._served = 0

    def report(self) -> LoadReport:
        return LoadReport(self.in_flight, self.queue, self.service_s, self.latency_s)

    def _fold(self, old: float, sample: float) -> float:
        return sample if self._served == 0 else old + ALPHA * (sample - old)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a service slot for the body; queue first when none is free."""
        arrived = time.perf_counter()
        self.in_flight += 1
        try:
            if self._slots is not None:
                self.queue += 1
                try:
                    await self._slots.acquire()
                finally:
                    self.queue -= 1
            started = time.perf_counter()
            try:
                yield
            finally:
                if self._slots is not None:
                    self._slots.release()
                done = time.perf_counter()
                self.service_s = self._fold(self.service_s, done - started)
                self.latency_s = self._fold(self.latency_s, done - arrived)
                self._served += 1
        finally:
            self.in_flight -= 1
