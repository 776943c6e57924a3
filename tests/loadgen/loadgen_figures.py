"""Recovery figures over client histories, as design.md defines them (test helpers).

share(P, t) is computed over the *leading* window [t, t + W): "from t on, the client
sends P less than 5 %" is then exactly "every window starting at or after t has share
below 5 %". A trailing window would add up to W of pure measurement lag to every figure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.history import Outcome, RequestRecord

WINDOW = 0.5
STEP = 0.01


@dataclass(frozen=True, slots=True)
class Sends:
    """Attempt start times: to the peer of interest and to anyone, both sorted."""

    to_peer: list[float]
    to_all: list[float]

    @classmethod
    def of(cls, records: Sequence[RequestRecord], peer: str) -> Sends:
        starts = sorted(a.start for r in records for a in r.attempts)
        mine = sorted(a.start for r in records for a in r.attempts if a.peer == peer)
        return cls(mine, starts)

    def share(self, t: float, window: float = WINDOW) -> float | None:
        """Share of attempts in [t, t + window) that went to the peer (None: no attempts)."""
        total = _count(self.to_all, t, t + window)
        if total == 0:
            return None
        return _count(self.to_peer, t, t + window) / total


def _count(times: list[float], lo: float, hi: float) -> int:
    return bisect.bisect_left(times, hi) - bisect.bisect_left(times, lo)


def first_time_from_which(
    sends: Sends, t_from: float, t_to: float, ok: Callable[[float], bool]
) -> float | None:
    """The first t in [t_from, t_to - W] after which every window satisfies ``ok``."""
    last_bad: float | None = None
    n = math.floor((t_to - WINDOW - t_from) / STEP)
    if n < 0:
        return None
    for i in range(n + 1):
        t = t_from + i * STEP
        share = sends.share(t)
        if share is None or not ok(share):
            last_bad = t
    if last_bad is None:
        return t_from
    if last_bad >= t_from + n * STEP:
        return None
    return last_bad + STEP


def detection_time(sends: Sends, t0: float, t1: float, below: float = 0.05) -> float | None:
    """Seconds from t0 until the share of P stays below ``below`` up to t1."""
    t = first_time_from_which(sends, t0, t1, lambda s: s < below)
    return None if t is None else t - t0


def recovery_time(sends: Sends, t1: float, t_end: float, n_healthy: int) -> float | None:
    """Seconds from t1 until the share of P stays at or above half of 1/N."""
    t = first_time_from_which(sends, t1, t_end, lambda s: s >= 0.5 / n_healthy)
    return None if t is None else t - t1


def issued_in(records: Sequence[RequestRecord], lo: float, hi: float) -> list[RequestRecord]:
    return [r for r in records if lo <= r.issued < hi]


def availability(records: Sequence[RequestRecord]) -> float:
    if not records:
        return math.nan
    return sum(1 for r in records if r.outcome is Outcome.OK) / len(records)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def p99(records: Sequence[RequestRecord]) -> float:
    return quantile([r.latency for r in records], 0.99)
