"""The tail of each peer's recent answers, and the typical peer's tail.

An attempt timeout of a few times the typical *mean* latency judges a peer late when
answers are merely spread wide: a worker with a queue (one request at a time, arrivals
at random) answers in 50 ms at its median and 300 ms at its p99 while being perfectly
healthy, and a 4x-EWMA timeout cut one answer in fifty there, opened breakers, and sent
the retry to the back of another queue (the antagonist scenario: adaptive's p99 439 ms
against random's 324 ms, same run). So the attempt timeout is never below
``TAIL_FACTOR`` times the typical peer's recent ``TAIL_QUANTILE`` answer.

The typical peer's, not the peer's own: the median over peers, so one peer that turned
slow raises no leash (its own tail grows, the median's does not), while a spread every
peer shows, which is the workers' nature and not a fault, does. A leash as the tail
literature draws it (Dean and Barroso, "The Tail at Scale": send the backup after the
p95): a timeout is a verdict, and an answer within twice the typical p95 is no evidence
against a peer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from statistics import median

TAIL_WINDOW = 64
"""Answers kept per peer: about 2 s of a peer's share at 100 req/s over 3 peers."""

TAIL_QUANTILE = 0.95
"""The quantile read from each peer's window."""

TAIL_MIN_ANSWERS = 16
"""Fewer answers than this say nothing about a tail."""

TAIL_EVERY = 8
"""Answers between recomputations (a sort of the window), so the hot path stays cheap."""

TAIL_FACTOR = 2.0
"""The attempt timeout is at least this many times the typical peer's tail."""

TAIL_MAX_AGE_S = 10.0
"""A tail not refreshed for this long is history, not the peer's state (as latency
EWMAs decay toward zero when a peer goes unused)."""


def upper_quantile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile of ``values`` taken from above (the value at index ``q x n``):
    a tail read from a short window errs toward the slow side, which for a timeout or a
    hedge delay is the side of waiting, not of a false verdict."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class PeerTail:
    """One peer's recent answer times and their cached ``TAIL_QUANTILE``."""

    __slots__ = ("_pending", "_window", "at", "value")

    def __init__(self) -> None:
        self._window: deque[float] = deque(maxlen=TAIL_WINDOW)
        self._pending = 0
        self.value: float | None = None
        self.at = 0.0  # when value was computed

    def answered(self, seconds: float, now: float) -> None:
        self._window.append(seconds)
        self._pending += 1
        if self._pending >= TAIL_EVERY and len(self._window) >= TAIL_MIN_ANSWERS:
            self.value = upper_quantile(self._window, TAIL_QUANTILE)
            self.at = now
            self._pending = 0


class Tails:
    """Every peer's :class:`PeerTail`; :meth:`floor` is the attempt timeout's lower bound."""

    def __init__(self) -> None:
        self._peers: dict[str, PeerTail] = {}

    def answered(self, peer: str, seconds: float, now: float) -> None:
        tail = self._peers.get(peer)
        if tail is None:
            tail = self._peers[peer] = PeerTail()
        tail.answered(seconds, now)

    def forget(self, peer: str) -> None:
        self._peers.pop(peer, None)

    def typical(self, now: float) -> float | None:
        """The median over peers of their current tails (None while no peer has one)."""
        values = [
            t.value
            for t in self._peers.values()
            if t.value is not None and now - t.at <= TAIL_MAX_AGE_S
        ]
        return median(values) if values else None

    def floor(self, now: float) -> float:
        """``TAIL_FACTOR`` x the typical tail; 0 while no peer has a current one."""
        typical = self.typical(now)
        return 0.0 if typical is None else TAIL_FACTOR * typical
