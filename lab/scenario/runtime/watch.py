"""The run's watch: is the lab still there, and do the clients know the run still lives?

Two jobs while the load runs, one loop, because both are "talk to the lab every beat":

1. Toxiproxy is polled (``GET /version``) every :data:`POLL_S`. Every client request
   crosses it, so without it the run measures nothing but failures: a refused
   connection (stopped, killed, exited) aborts the run at the next poll, silence (a
   frozen Toxiproxy) after :data:`LOST_AFTER_S`. Before this, a stopped Toxiproxy went
   unnoticed until the next fault's API call (6 s of every request failing in one
   probe).
2. Each client's load lease is renewed (``POST /load/lease``) every :data:`RENEW_S`
   for :data:`LEASE_S`: if ``lab run`` dies (``kill -9``), nobody renews and every
   client stops its load by itself within ``LEASE_S``. A client that does not take
   the renewal for longer than its lease has stopped loading or is gone: the run
   aborts, naming it. A ``409`` (no load running) near the load's end is not a loss; a
   ``410`` (the client's own policy failed, :mod:`lab.balancer.policy_guard`) aborts at
   once with the client's message, traceback included.

The watch never decides a verdict; it calls ``lost(reason)`` once, and the runner turns
that into an aborted run (exit 2) with the reason, rollback and a report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from lab.lab_client import ControlError, LabClient
from lab.scenario.runtime.protocol import Target

POLL_S = 0.2
"""Toxiproxy is asked this often: a lost Toxiproxy aborts the run within ~1 s."""
LOST_AFTER_S = 3.0
"""Toxiproxy silent (no answer, no refusal) this long counts as lost. Not shorter: on the
shared 2-core host its API went 0.6 s without answering in a connection storm while it
still proxied, and a run must not abort on a hiccup."""
ANSWER_S = 1.0
"""One poll's timeout: a slower answer counts as silence."""
LEASE_S = 5.0
"""How long a client loads without hearing from the run: the orphan's load after kill -9.
Also how long a client may be stalled before its load stops and the run aborts: a client
container was seen not answering its control port for 4 s on the loaded 2-core host."""
RENEW_S = 1.0
"""Leases are renewed this often: two renewals may fail before a lease runs out."""


@dataclass
class Watch:
    """Polls Toxiproxy and renews the clients' leases until cancelled or the run is lost."""

    toxiproxy_api: str
    clients: Sequence[Target]
    lease_s: float = LEASE_S
    poll_s: float = POLL_S
    lost_after_s: float = LOST_AFTER_S
    renew_s: float = RENEW_S
    lost_reason: str | None = None
    lost_at: float | None = None  # monotonic time the loss was decided
    renewals: int = 0
    _renewed: dict[str, float] = field(default_factory=dict)

    def start_body(self) -> dict[str, float]:
        """What ``POST /load/start`` adds so the load holds a lease from its first moment."""
        return {"lease_s": self.lease_s}

    async def run(self, lab: LabClient, lost: Callable[[str], None]) -> None:
        """Watch until cancelled; on a loss, record it, call ``lost(reason)`` once and return.

        Toxiproxy's poll and the renewals are two tasks: a slow renewal must not delay
        noticing a lost Toxiproxy. The poll is a bare liveness probe with a short budget
        of its own (its own session), not a Toxiproxy API call; renewals go through
        ``lab``, the clients' control plane.
        """
        async with aiohttp.ClientSession() as session:
            await self._run(session, lab, lost)

    async def _run(
        self, session: aiohttp.ClientSession, lab: LabClient, lost: Callable[[str], None]
    ) -> None:

        def fail(reason: str) -> None:
            if self.lost_reason is None:
                self.lost_reason, self.lost_at = reason, time.monotonic()
                lost(reason)

        tasks = [
            asyncio.create_task(self._watch_toxiproxy(session, fail), name="watch:toxiproxy"),
            asyncio.create_task(self._keep_leases(lab, fail), name="watch:leases"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch_toxiproxy(
        self, session: aiohttp.ClientSession, fail: Callable[[str], None]
    ) -> None:
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            reason, answered = await self._toxiproxy(session)
            now = time.monotonic()
            if answered:
                last_ok = now
            elif reason is None and now - last_ok >= self.lost_after_s:
                reason = (
                    f"Toxiproxy at {self.toxiproxy_api} stopped answering "
                    f"({now - last_ok:.1f} s without an answer)"
                )
            if reason is not None:
                fail(reason)
                return

    async def _keep_leases(self, lab: LabClient, fail: Callable[[str], None]) -> None:
        now = time.monotonic()
        self._renewed = {c.name: now for c in self.clients}
        while True:
            await asyncio.sleep(self.renew_s)
            reason = await self._renew(lab)
            if reason is not None:
                fail(reason)
                return

    async def _toxiproxy(self, session: aiohttp.ClientSession) -> tuple[str | None, bool]:
        """(a reason the lab is lost, whether Toxiproxy answered)."""
        timeout = aiohttp.ClientTimeout(total=min(ANSWER_S, self.lost_after_s))
        try:
            async with session.get(f"{self.toxiproxy_api}/version", timeout=timeout) as resp:
                await resp.read()
                if resp.status >= 500:
                    return f"Toxiproxy at {self.toxiproxy_api} answers HTTP {resp.status}", True
                return None, True
        except aiohttp.ClientConnectorError as exc:
            return f"lost Toxiproxy at {self.toxiproxy_api}: {exc.os_error or exc}", False
        except (aiohttp.ClientError, TimeoutError):
            return None, False  # silence: lost only after lost_after_s

    async def _renew(self, lab: LabClient) -> str | None:
        """Renew every client's lease; a reason when one has gone unrenewed past its lease."""

        async def one(c: Target) -> str | None:
            try:
                # False (no load running) counts too: its load is already over
                await lab.renew_lease(str(c.control_url), self.lease_s, budget_s=self.renew_s)
                self._renewed[c.name] = time.monotonic()
                return None
            except ControlError as exc:
                if exc.status == 410:  # its own policy failed: no point waiting
                    return f"client {c.name}: {exc.error or exc}"
                problem = f"HTTP {exc.status}" if exc.status is not None else str(exc)
            silent = time.monotonic() - self._renewed.get(c.name, 0.0)
            if silent >= self.lease_s:
                return (
                    f"client {c.name} took no lease renewal for {silent:.1f} s "
                    f"(its load stops without one): {problem}"
                )
            return None

        results = await asyncio.gather(*(one(c) for c in self.clients))
        self.renewals += 1
        return next((r for r in results if r is not None), None)
