"""Streams every client's request history and events into the run's journal as it goes.

Why during the run and not at the end: the journal (``reports/<run-id>/journal.jsonl``)
is the single source of truth, and an aborted run must keep what it saw; the clients'
rings are bounded, so a long run read only at the end could also lose its start. Each
client is paged with its own cursors (``GET /history?cursor=N``, ``GET /events?cursor=N``);
``dropped`` (records evicted before we read them) is counted and reported, never hidden.

Why ``skip_existing`` and ``not_before``: Compose clients outlive runs, so their rings
still hold earlier runs' records (a run read from cursor 0 counted a previous run's
requests and errors as its own, and its report's timeline began minutes early). Before
the load starts, every cursor is moved to the client's newest record (the control API
clamps a cursor past the end); records issued and events stamped before ``not_before``
(a dead run's requests still in flight) are dropped and counted as ``stale``. Both sides
read the same CLOCK_MONOTONIC, so the cut is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.history import (
    ClientEvent,
    History,
    JournalWriter,
    RequestRecord,
    event_from_json,
    request_from_json,
)
from lab.lab_client import PAGE_LIMIT, ControlError, LabClient
from lab.scenario.runtime.protocol import Target

PAGE = PAGE_LIMIT
PAST_THE_END = 2**53
"""A cursor beyond any ring: the control API answers with its newest position."""


@dataclass
class _Cursor:
    history: int = 0
    events: int = 0
    dropped: int = 0
    stale: int = 0
    errors: int = 0
    last_error: str | None = None


@dataclass
class Collector:
    """Polls ``clients`` every ``interval`` seconds; appends to ``journal`` and ``history``."""

    clients: Sequence[Target]
    journal: JournalWriter
    history: History
    interval: float = 0.5
    recent_size: int = 20_000
    not_before: float | None = None
    recent: deque[RequestRecord] = field(init=False)
    _cursors: dict[str, _Cursor] = field(init=False)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.recent_size)
        self._cursors = {c.name: _Cursor() for c in self.clients}

    def dropped(self) -> dict[str, int]:
        return {n: c.dropped for n, c in self._cursors.items()}

    def stale(self) -> dict[str, int]:
        """Per client: records and events left out as older than ``not_before``."""
        return {n: c.stale for n, c in self._cursors.items()}

    async def skip_existing(self, lab: LabClient) -> None:
        """Start each cursor at the client's newest record and event (see the docstring).

        A client that does not clamp (answers the cursor it was given) keeps cursor 0;
        ``not_before`` still keeps its old records out.
        """

        async def one(client: Target) -> None:
            cur = self._cursors[client.name]
            try:
                for path, page in (("history", lab.history), ("events", lab.events)):
                    data = await page(_url(client), PAST_THE_END, 0)
                    at = int(data.get("cursor", 0))
                    if 0 <= at < PAST_THE_END:
                        setattr(cur, path, at)
            except (ControlError, ValueError, KeyError) as exc:
                cur.last_error = f"{type(exc).__name__}: {exc}"

        await asyncio.gather(*(one(c) for c in self.clients))

    def errors(self) -> dict[str, str]:
        return {n: c.last_error for n, c in self._cursors.items() if c.last_error}

    async def poll_once(self, lab: LabClient) -> int:
        """One round over every client; returns how many new records and events arrived."""
        counts = await asyncio.gather(*(self._poll_client(lab, c) for c in self.clients))
        return sum(counts)

    async def _poll_client(self, lab: LabClient, client: Target) -> int:
        cur = self._cursors[client.name]
        got = 0
        try:
            while True:  # page until caught up (bounded by what the client holds)
                data = await lab.history(_url(client), cur.history, PAGE)
                records = [request_from_json(r) for r in data.get("records", ())]
                cur.history = int(data.get("cursor", cur.history))
                cur.dropped += int(data.get("dropped", 0) or 0)
                fresh = [r for r in records if self._fresh(r.issued)]
                cur.stale += len(records) - len(fresh)
                self._add_requests(fresh)
                got += len(fresh)
                if len(records) < PAGE:
                    break
            data = await lab.events(_url(client), cur.events, PAGE)
            events = [event_from_json(e) for e in data.get("events", ())]
            cur.events = int(data.get("cursor", cur.events))
            fresh_events = [e for e in events if self._fresh(e.t)]
            cur.stale += len(events) - len(fresh_events)
            self._add_events(fresh_events)
            got += len(fresh_events)
        except (ControlError, ValueError, KeyError) as exc:
            cur.errors += 1  # a busy client misses one poll; the cursor keeps our place
            cur.last_error = f"{type(exc).__name__}: {exc}"
        return got

    def _fresh(self, t: float) -> bool:
        return self.not_before is None or t >= self.not_before

    def _add_requests(self, records: list[RequestRecord]) -> None:
        self.journal.write_many(records)
        self.history.requests.extend(records)
        self.recent.extend(records)

    def _add_events(self, events: list[ClientEvent]) -> None:
        self.journal.write_many(events)
        self.history.events.extend(events)

    async def run(self, lab: LabClient, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (then once more)."""
        while not stop.is_set():
            await self.poll_once(lab)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        await self.poll_once(lab)

    async def drain(self, lab: LabClient, within_s: float = 5.0, quiet_rounds: int = 2) -> None:
        """Poll until ``quiet_rounds`` rounds bring nothing new, or ``within_s`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        quiet = 0
        while quiet < quiet_rounds and loop.time() < deadline:
            quiet = quiet + 1 if await self.poll_once(lab) == 0 else 0
            if quiet < quiet_rounds:
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))


def _url(client: Target) -> str:
    if client.control_url is None:
        raise ControlError(f"client {client.name} has no control URL")
    return client.control_url
