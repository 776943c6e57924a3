"""Runs the probes a :class:`~lab.balancer.feedback.ProbeDriven` policy asks for.

The policy stays pure (it never awaits): it calls :meth:`Prober.request`, which starts
a probe task and returns; the task reports the answer (or the failure) back to the
policy. At most one probe per peer is in flight (a second request for a peer still
being probed is dropped: its answer would say the same) and at most
``max_in_flight`` in all, so a blackholed worker cannot make probes pile up. Every
task is held and cancelled by :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from lab.balancer.feedback import ProbeDriven
from lab.errors import LabError
from lab.grenache.load import LoadReport

PROBE_TIMEOUT_S = 0.25
"""A probe slower than this says the worker is in trouble: the pool would only hold it
after it aged, and a request sent on it would wait as long."""


@runtime_checkable
class ProbeTransport(Protocol):
    async def probe(self, peer: str, *, timeout: float) -> LoadReport: ...  # noqa: ASYNC109


class Prober:
    """Probes peers for ``policy`` over ``transport`` (module docstring)."""

    def __init__(
        self,
        policy: ProbeDriven,
        transport: ProbeTransport,
        *,
        timeout_s: float = PROBE_TIMEOUT_S,
        max_in_flight: int = 64,
    ) -> None:
        self._policy = policy
        self._transport = transport
        self._timeout = timeout_s
        self._max = max_in_flight
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.sent = 0
        self.failed = 0
        policy.set_prober(self.request)

    @property
    def running(self) -> int:
        """Probes still waiting for their answer."""
        return len(self._tasks)

    def request(self, peer: str) -> None:
        """Start a probe of ``peer`` unless one is running or too many are."""
        if peer in self._tasks or len(self._tasks) >= self._max:
            return
        self.sent += 1
        task = asyncio.get_running_loop().create_task(self._probe(peer))
        self._tasks[peer] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        for peer, held in list(self._tasks.items()):
            if held is task:
                del self._tasks[peer]

    async def _probe(self, peer: str) -> None:
        try:
            report = await self._transport.probe(peer, timeout=self._timeout)
        except LabError:
            self.failed += 1
            self._policy.probe_failed(peer)
            return
        self._policy.take_probe(peer, report)

    async def aclose(self) -> None:
        """Cancel every probe still running and wait for them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
