"""A counter over a sliding time window, kept as a fixed ring of time buckets.

Why buckets rather than a list of timestamps: memory and cost stay constant whatever the
request rate (a peer taking 10 000 calls/s costs the same as one taking 10), and reading
the total is a sum over a handful of integers. The price is granularity: a count leaves
the window up to one bucket width late, which at 10 buckets is a tenth of the window.
"""

from __future__ import annotations

import math


class BucketRing:
    """Counts events over the last ``window_s`` seconds in ``buckets`` slots."""

    __slots__ = ("_counts", "_epochs", "_n", "_width")

    def __init__(self, window_s: float, buckets: int = 10) -> None:
        if not window_s > 0 or not math.isfinite(window_s):
            raise ValueError(f"window_s: must be a positive number of seconds, not {window_s!r}")
        if buckets < 1:
            raise ValueError(f"buckets: must be at least 1, not {buckets!r}")
        self._n = buckets
        self._width = window_s / buckets
        self._counts = [0] * buckets
        self._epochs = [-1] * buckets  # which bucket number each slot currently holds

    @property
    def window_s(self) -> float:
        return self._width * self._n

    def add(self, now: float, n: int = 1) -> None:
        """Count ``n`` events at time ``now``."""
        epoch = int(now // self._width)
        slot = epoch % self._n
        if self._epochs[slot] != epoch:
            self._epochs[slot] = epoch
            self._counts[slot] = 0
        self._counts[slot] += n

    def total(self, now: float) -> int:
        """Events counted in the buckets that still overlap ``(now - window_s, now]``."""
        oldest = int(now // self._width) - self._n + 1
        return sum(c for c, e in zip(self._counts, self._epochs, strict=True) if e >= oldest)

    def clear(self) -> None:
        self._counts = [0] * self._n
        self._epochs = [-1] * self._n
