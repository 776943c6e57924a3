"""Bounded rings of what a client did, read by cursor.

Why a ring: a client may run for hours at thousands of requests per second while the
scenario engine reads its history every few hundred milliseconds; keeping everything
would grow without bound, and blocking the load loop on a slow reader would distort the
very latencies being measured. So the newest ``capacity`` records are kept, each gets a
position that only ever grows (the cursor), and a reader that fell further behind than
the ring holds is told exactly how many records it missed (``dropped``) instead of
silently receiving a gap.

Pure and synchronous: appends happen on the event loop, between awaits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from lab.history import ClientEvent, RequestRecord

T = TypeVar("T")

MAX_PAGE = 10_000
"""Most records one page returns, so one read cannot stall the event loop."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One read: the records, the cursor to pass next time, and what was missed."""

    records: tuple[T, ...]
    cursor: int
    dropped: int


class Ring(Generic[T]):
    """The newest ``capacity`` items, addressed by a position that only grows."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        # A fixed list indexed by position % capacity: O(1) appends and O(limit) pages
        # (a deque's middle is O(n) to index).
        self._slots: list[T | None] = [None] * capacity
        self._total = 0

    def __len__(self) -> int:
        return min(self._total, self.capacity)

    def __iter__(self) -> Iterator[T]:
        for pos in range(self.first, self._total):
            yield self._at(pos)

    def _at(self, pos: int) -> T:
        return cast(T, self._slots[pos % self.capacity])

    @property
    def total(self) -> int:
        """How many items were ever appended: the cursor after the newest one."""
        return self._total

    @property
    def first(self) -> int:
        """The position of the oldest item still held."""
        return max(0, self._total - self.capacity)

    @property
    def evicted(self) -> int:
        """How many items the ring has pushed out to make room."""
        return self.first

    def append(self, item: T) -> int:
        """Keep ``item`` (evicting the oldest when full); return its position."""
        self._slots[self._total % self.capacity] = item
        self._total += 1
        return self._total - 1

    def page(self, cursor: int = 0, limit: int = 1000) -> Page[T]:
        """Items from position ``cursor`` on, at most ``limit`` (capped at MAX_PAGE).

        A cursor older than the oldest held item yields ``dropped`` = the items missed.
        A cursor beyond the newest (a reader of a client that restarted) is clamped to
        the end, so the reader resumes with the next new item.
        """
        limit = max(0, min(limit, MAX_PAGE))
        cursor = max(0, cursor)
        first = self.first
        dropped = max(0, first - cursor)
        start = min(max(cursor, first), self._total)
        stop = min(start + limit, self._total)
        items = tuple(self._at(pos) for pos in range(start, stop))
        return Page(records=items, cursor=stop, dropped=dropped)


class Recorder:
    """A client's requests and events, each in its own ring."""

    def __init__(self, history_limit: int = 100_000, events_limit: int = 10_000) -> None:
        self.requests: Ring[RequestRecord] = Ring(history_limit)
        self.events: Ring[ClientEvent] = Ring(events_limit)

    def record(self, record: RequestRecord) -> int:
        return self.requests.append(record)

    def event(self, event: ClientEvent) -> int:
        return self.events.append(event)
