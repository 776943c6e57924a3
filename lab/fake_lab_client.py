"""An in-memory :class:`lab.lab_client.LabClient`: clients as plain state, no socket.

For the engine's unit tests (runner, collector, watch, janitor): a test adds clients,
appends the records and events they "served", and reads back what the engine asked of
them (loads started, leases, oracle lists, gossip switches). It keeps the contract's
paging rules (a cursor past the end is clamped to the end, ``dropped`` counts what a
ring of ``ring`` entries pushed out before it was read), so code that pages correctly
against it pages correctly against a real client. A client can be made to fail every
call (``down``) or to refuse with a status, to exercise the error paths.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.lab_client import CALL_TIMEOUT_S, PAGE_LIMIT, ControlError


@dataclass
class FakeClient:
    """One client's control-plane state as the fake keeps it."""

    records: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ring: int = 1_000_000
    load: dict[str, Any] | None = None
    loads_started: int = 0
    leases: int = 0
    gossip: bool | None = None
    oracle: list[str] | None = None
    down: bool = False  # every call fails as if the port did not answer
    clock: Callable[[], float] = time.monotonic

    def first_kept(self, items: Sequence[Any]) -> int:
        return max(0, len(items) - self.ring)


class FakeLabClient:
    """Clients by control URL; unknown URLs fail like a refused connection."""

    def __init__(self) -> None:
        self.clients: dict[str, FakeClient] = {}
        self.calls: list[tuple[str, str]] = []

    def add(self, url: str, **state: Any) -> FakeClient:
        self.clients[url] = FakeClient(**state)
        return self.clients[url]

    def _client(self, method: str, url: str) -> FakeClient:
        self.calls.append((method, url))
        client = self.clients.get(url)
        if client is None or client.down:
            raise ControlError(f"{method} {url}: connection refused (fake)", refused=True)
        return client

    async def start_load(self, url: str, body: Mapping[str, Any]) -> Any:
        c = self._client("start_load", url)
        c.load = dict(body)
        c.loads_started += 1
        return {"started": True}

    async def stop_load(self, url: str, *, budget_s: float = CALL_TIMEOUT_S) -> Any:
        c = self._client("stop_load", url)
        c.load = None
        return {"stopped": True}

    async def renew_lease(self, url: str, lease_s: float, *, budget_s: float) -> bool:
        c = self._client("renew_lease", url)
        if c.load is None:
            return False
        c.leases += 1
        return True

    async def set_gossip(self, url: str, enabled: bool) -> Any:
        self._client("set_gossip", url).gossip = enabled
        return {"enabled": enabled}

    async def set_oracle(
        self, url: str, faulty: Sequence[str], *, budget_s: float = CALL_TIMEOUT_S
    ) -> Any:
        self._client("set_oracle", url).oracle = list(faulty)
        return {"faulty": list(faulty)}

    async def history(self, url: str, cursor: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        c = self._client("history", url)
        page, at, dropped = _page(c.records, c.first_kept(c.records), cursor, limit)
        return {"records": page, "cursor": at, "dropped": dropped}

    async def events(self, url: str, cursor: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        c = self._client("events", url)
        page, at, _ = _page(c.events, c.first_kept(c.events), cursor, limit)
        return {"events": page, "cursor": at}

    async def clock(self, url: str, *, budget_s: float = 2.0) -> float:
        return self._client("clock", url).clock()


def _page(
    items: Sequence[dict[str, Any]], first: int, cursor: int, limit: int
) -> tuple[list[dict[str, Any]], int, int]:
    """(the page, the next cursor, how many were evicted before ``cursor`` reached them)."""
    cursor = min(max(0, cursor), len(items))  # past the end: clamped to the end
    dropped = max(0, first - cursor)
    start = max(cursor, first)
    page = list(items[start : start + limit])
    return page, start + len(page), dropped
