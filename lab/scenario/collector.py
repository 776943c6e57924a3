"""Streams every client's request history and events into the run's journal as it goes.

Why during the run and not at the end: the journal (``reports/<run-id>/journal.jsonl``)
is the single source of truth, and an aborted run must keep what it saw; the clients'
rings are bounded, so a long run read only at the end could also lose its start. Each
client is paged with its own cursors (``GET /history?cursor=N``, ``GET /events?cursor=N``);
``dropped`` (records evicted before we read them) is counted and reported, never hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from lab.history import (
    ClientEvent,
    History,
    JournalWriter,
    RequestRecord,
    event_from_json,
    request_from_json,
)
from lab.scenario.runtime import Target

PAGE = 5000


@dataclass
class _Cursor:
    history: int = 0
    events: int = 0
    dropped: int = 0
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
    recent: deque[RequestRecord] = field(init=False)
    _cursors: dict[str, _Cursor] = field(init=False)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.recent_size)
        self._cursors = {c.name: _Cursor() for c in self.clients}

    def dropped(self) -> dict[str, int]:
        return {n: c.dropped for n, c in self._cursors.items()}

    def errors(self) -> dict[str, str]:
        return {n: c.last_error for n, c in self._cursors.items() if c.last_error}

    async def poll_once(self, session: aiohttp.ClientSession) -> int:
        """One round over every client; returns how many new records and events arrived."""
        counts = await asyncio.gather(*(self._poll_client(session, c) for c in self.clients))
        return sum(counts)

    async def _poll_client(self, session: aiohttp.ClientSession, client: Target) -> int:
        cur = self._cursors[client.name]
        got = 0
        try:
            while True:  # page until caught up (bounded by what the client holds)
                data = await _get(session, f"{client.control_url}/history", cur.history)
                records = [request_from_json(r) for r in data.get("records", ())]
                cur.history = int(data.get("cursor", cur.history))
                cur.dropped += int(data.get("dropped", 0) or 0)
                self._add_requests(records)
                got += len(records)
                if len(records) < PAGE:
                    break
            data = await _get(session, f"{client.control_url}/events", cur.events)
            events = [event_from_json(e) for e in data.get("events", ())]
            cur.events = int(data.get("cursor", cur.events))
            self._add_events(events)
            got += len(events)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            cur.errors += 1  # a busy client misses one poll; the cursor keeps our place
            cur.last_error = f"{type(exc).__name__}: {exc}"
        return got

    def _add_requests(self, records: list[RequestRecord]) -> None:
        for r in records:
            self.journal.write(r)
        self.history.requests.extend(records)
        self.recent.extend(records)

    def _add_events(self, events: list[ClientEvent]) -> None:
        for e in events:
            self.journal.write(e)
        self.history.events.extend(events)

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (then once more)."""
        while not stop.is_set():
            await self.poll_once(session)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        await self.poll_once(session)

    async def drain(
        self, session: aiohttp.ClientSession, within_s: float = 5.0, quiet_rounds: int = 2
    ) -> None:
        """Poll until ``quiet_rounds`` rounds bring nothing new, or ``within_s`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        quiet = 0
        while quiet < quiet_rounds and loop.time() < deadline:
            quiet = quiet + 1 if await self.poll_once(session) == 0 else 0
            if quiet < quiet_rounds:
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))


async def _get(session: aiohttp.ClientSession, url: str, cursor: int) -> dict[str, Any]:
    async with session.get(
        url,
        params={"cursor": str(cursor), "limit": str(PAGE)},
        timeout=aiohttp.ClientTimeout(total=5.0),
    ) as resp:
        resp.raise_for_status()
        data = await resp.json(content_type=None)
    if not isinstance(data, dict):
        raise ValueError(f"{url}: expected a JSON object")
    return data
