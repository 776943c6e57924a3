"""The load loop: issue requests at their scheduled times and record how each ended.

The loop only reads the clock, asks the :class:`~lab.loadgen.schedule.ArrivalSchedule`
which arrivals are due, and starts one task per request; it never waits for a reply
before issuing the next request (open loop, see ``schedule``). Each request's ``issued``
time is its *scheduled* time, so a late loop counts against latency. Requests beyond
the in-flight bound are recorded as ``REJECTED`` at once. An arrival the loop reaches
only after its whole deadline (``timeout_s``) has passed can no longer be answered in
time: it is recorded as ``DROPPED`` and not sent, as an open-loop generator should (a
stalled loop used to work its backlog off long after the load's end, adding load the
schedule never asked for). The bound on requests in flight shrinks for large payloads
(:func:`lab.loadgen.limits.in_flight_cap`).

The runner owns every task it starts: :meth:`LoadRunner.aclose` stops the loop and
waits for (then cancels) the requests still in flight.

A load may carry a *lease* (:meth:`LoadRunner.lease`): it stops by itself when the lease
runs out unless renewed. The scenario engine takes one and renews it while the run
lives, so a ``kill -9`` of ``lab run`` leaves no client loading into a fault for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lab.clock import Clock
from lab.history import Attempt, Outcome, RequestRecord
from lab.loadgen.limits import in_flight_cap
from lab.loadgen.schedule import ArrivalSchedule, InFlightLimit, LoadSpec

log = logging.getLogger(__name__)

MAX_BATCH = 100
"""Most arrivals issued in one pass of the loop before it yields to the replies and the
control API: every request started in a pass runs its first step before a control request
queued behind it (1,000 a pass kept a starved client's /load/stop waiting over 1 s)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """How one logical request ended, as the policy's client reports it."""

    outcome: Outcome
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None


class Sender(Protocol):
    """Sends one logical request (with whatever retries the policy makes)."""

    async def __call__(self, service: str, payload: Any, budget_s: float) -> Sent:
        """Send ``payload``; give up after ``budget_s`` seconds (the request's deadline)."""
        ...


def make_payload(seq: int, pad: str) -> dict[str, Any]:
    """The request body of the lab's load: a sequence number and padding."""
    return {"seq": seq, "pad": pad}


class LoadRunner:
    """Runs at most one load at a time; ``start`` replaces a running one."""

    def __init__(
        self,
        *,
        clock: Clock,
        sender: Sender,
        record: Callable[[RequestRecord], None],
        client: str,
        policy: str,
        service: str,
        max_in_flight: int,
    ) -> None:
        self._clock = clock
        self._sender = sender
        self._record = record
        self._client = client
        self._policy = policy
        self._service = service
        self._max_in_flight = max_in_flight
        self.limit = InFlightLimit(max_in_flight)
        self.dropped = 0
        self._seq = 0
        self._spec: LoadSpec | None = None
        self._schedule: ArrivalSchedule | None = None
        self._pad = ""
        self._loop_task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._halted: set[asyncio.Task[None]] = set()  # cancelled loops, until they end
        self.started_at: float | None = None
        self.lease_until: float | None = None  # None: no lease, runs until stopped/over
        self.lease_expired = False

    # -- control --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def spec(self) -> LoadSpec | None:
        return self._spec

    @property
    def seq(self) -> int:
        """The sequence number of the last request issued."""
        return self._seq

    def in_flight(self) -> int:
        return self.limit.in_flight

    async def start(self, spec: LoadSpec, lease_s: float | None = None) -> float:
        """Start ``spec`` now (stopping any running load); return the start time.

        With ``lease_s`` the load stops by itself ``lease_s`` seconds from now unless
        :meth:`lease` renews it. Nothing is awaited between stopping the old loop and
        starting the new one: two concurrent starts used to each find no loop to stop
        while the other awaited, and one loop ran on orphaned (never stopped, loading at
        its rate for good).
        """
        self._halt()
        now = self._clock.monotonic()
        self.lease_until = None if lease_s is None else now + lease_s
        self.lease_expired = False
        end = None if spec.duration_s is None else now + spec.duration_s
        self._spec = spec
        self._pad = "x" * spec.payload_bytes
        self.limit.limit = in_flight_cap(self._max_in_flight, spec.payload_bytes)
        self._schedule = ArrivalSchedule(now, spec.rate, spec.arrival, spec.seed, end)
        self.started_at = now
        self._loop_task = asyncio.create_task(self._loop(), name=f"load:{self._client}")
        return now

    async def stop(self) -> None:
        """Stop issuing; requests in flight finish on their own (bounded by their timeout)."""
        self._halt()

    def _halt(self) -> None:
        """Cancel the loop. It is suspended (we are running), so it issues nothing more:
        the cancellation is raised at the await it sits in. No waiting for it here, so a
        start or stop never waits on a busy loop; :meth:`aclose` waits for every one."""
        task, self._loop_task = self._loop_task, None
        if task is not None and not task.done():
            task.cancel()
            self._halted.add(task)
            task.add_done_callback(self._halted.discard)

    def lease(self, seconds: float) -> float:
        """Renew the running load's lease to ``seconds`` from now; return its new end."""
        self.lease_until = self._clock.monotonic() + seconds
        self._wake.set()
        return self.lease_until

    def patch(self, *, rate: float | None = None, payload_bytes: int | None = None) -> LoadSpec:
        """Change the running load's rate or payload from now on."""
        if self._spec is None or self._schedule is None:
            raise LookupError("no load has been started")
        spec = self._spec
        if rate is not None:
            spec = replace(spec, rate=rate)
            self._schedule.set_rate(rate, self._clock.monotonic())
        if payload_bytes is not None:
            spec = replace(spec, payload_bytes=payload_bytes)
            self._pad = "x" * payload_bytes
            self.limit.limit = in_flight_cap(self._max_in_flight, payload_bytes)
        self._spec = spec
        self._wake.set()
        return spec

    def status(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "spec": None if self._spec is None else self._spec.to_json(),
            "started": self.started_at,
            "issued": self._seq,
            "in_flight": self.limit.in_flight,
            "max_in_flight": self.limit.limit,
            "rejected": self.limit.rejected,
            "lease_until": self.lease_until,
            "lease_expired": self.lease_expired,
            "dropped": self.dropped,
        }

    async def aclose(self, grace: float = 2.0) -> None:
        """Stop the loop, give requests in flight ``grace`` seconds, then cancel them."""
        self._halt()
        if self._halted:
            _, stuck = await asyncio.wait(set(self._halted), timeout=grace)
            if stuck:  # a loop that ignored its cancel must not hold up the shutdown
                log.error("%d load loop(s) did not stop when cancelled", len(stuck))
        pending = set(self._requests)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    # -- the loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        schedule = self._schedule
        spec = self._spec
        if schedule is None or spec is None:
            return
        service = spec.service or self._service
        while True:
            now = self._clock.monotonic()
            if self.lease_until is not None and now >= self.lease_until:
                self.lease_expired = True
                log.warning("load lease ran out (nobody renewed it): load stopped")
                return
            for scheduled in schedule.due(now, limit=MAX_BATCH):
                if now - scheduled >= self._timeout():
                    self._drop(scheduled, now)
                else:
                    self._issue(service, scheduled, now)
            if schedule.finished(now):
                return
            nxt = schedule.next_at()
            if nxt is None:
                nxt = schedule.end  # no more arrivals: wake when the load is over
            if self.lease_until is not None:
                nxt = self.lease_until if nxt is None else min(nxt, self.lease_until)
            self._wake.clear()
            if nxt is None:
                await self._wake.wait()  # paused at rate 0 until a patch
            elif nxt > now:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancel that
                # lands as the wake-up does, and a halted loop then ran on for good
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(nxt - now):
                        await self._wake.wait()
            else:
                await asyncio.sleep(0)  # a backlog: let replies in between batches

    def _timeout(self) -> float:
        return self._spec.timeout_s if self._spec is not None else 1.0

    def _drop(self, scheduled: float, now: float) -> None:
        self._seq += 1
        self.dropped += 1
        late = f"not sent: {now - scheduled:.3f}s behind schedule, past its deadline"
        self._note(self._seq, scheduled, now, Sent(Outcome.DROPPED, error=late))

    def _issue(self, service: str, scheduled: float, now: float) -> None:
        self._seq += 1
        seq = self._seq
        if not self.limit.try_enter():
            busy = f"more than {self.limit.limit} requests in flight"
            self._note(seq, scheduled, now, Sent(Outcome.REJECTED, error=busy))
            return
        payload = make_payload(seq, self._pad)
        task = asyncio.create_task(self._one(service, seq, scheduled, payload, self._timeout()))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _one(
        self, service: str, seq: int, scheduled: float, payload: Any, budget_s: float
    ) -> None:
        # The deadline runs from the scheduled time: lateness of the loop is spent from it.
        remaining = max(0.001, budget_s - (self._clock.monotonic() - scheduled))
        try:
            sent = await self._sender(service, payload, remaining)
        except asyncio.CancelledError:
            self._finish(seq, scheduled, Sent(Outcome.CANCELLED, error="client stopped"))
            raise
        except Exception as exc:  # a bug in a policy must not stop the load: record it
            log.exception("request %d failed unexpectedly", seq)
            sent = Sent(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}")
        self._finish(seq, scheduled, sent)

    def _finish(self, seq: int, scheduled: float, sent: Sent) -> None:
        self.limit.leave()
        self._note(seq, scheduled, self._clock.monotonic(), sent)

    def _note(self, seq: int, scheduled: float, ended: float, sent: Sent) -> None:
        """Record request ``seq``: sent and answered, or never sent (dropped, rejected)."""
        self._record(
            RequestRecord(
                client=self._client,
                policy=self._policy,
                seq=seq,
                issued=scheduled,
                ended=ended,
                outcome=sent.outcome,
                attempts=sent.attempts,
                error=sent.error,
            )
        )
