"""A slowdown every peer shares is not a peer fault: noticing it from the timeouts.

A per-attempt timeout (``4 x`` the typical latency, at least 100 ms) is a verdict on
one peer only if the other peers would have answered in time. When every peer the
client asked recently has timed out within ``window_s`` (a latency toxic on every
worker, every worker stalled by the host, the network in between slowed), the timeout
measures the shift, not the peers: the client then waits up to the request's deadline
(the hard limit, as the plain Grenache client always does), and the timeouts and slow
calls of attempts made in that state give their peer no verdict. It ends by itself
``window_s`` after the last timeout; by then the answers that came back have raised the
latency estimates, and the ordinary timeout follows them.

"Every peer asked recently": a peer that keeps answering (even with errors) is not
slowed, so a blackhole of two workers out of three, where one still answers in
milliseconds, is a peer fault and stays one. A lone peer is its own "everyone".
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShiftConfig:
    window_s: float = 1.0  # every recently asked peer timed out within this window
    min_peers: int = 2  # ... and at least this many of them (fewer when fewer are known)

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise ValueError(f"window_s: must be a positive number, not {self.window_s!r}")
        if self.min_peers < 1:
            raise ValueError(f"min_peers: must be at least 1, not {self.min_peers!r}")


class ShiftDetector:
    """Per peer: when it last ended an attempt other than by timeout, and last timed out."""

    __slots__ = ("_answered", "_config", "_timed_out")

    def __init__(self, config: ShiftConfig) -> None:
        self._config = config
        self._answered: dict[str, float] = {}
        self._timed_out: dict[str, float] = {}

    def answered(self, peer: str, now: float) -> None:
        """An attempt to ``peer`` ended with an answer (success or error) at ``now``."""
        self._answered[peer] = now

    def timed_out(self, peer: str, now: float) -> None:
        self._timed_out[peer] = now

    def forget(self, peer: str) -> None:
        self._answered.pop(peer, None)
        self._timed_out.pop(peer, None)

    def shifted(self, now: float, known: int) -> bool:
        """Has every peer asked in the last window timed out in it (and at least min_peers)?"""
        w = self._config.window_s
        recent = {p for p, t in self._timed_out.items() if now - t <= w}
        if len(recent) < min(self._config.min_peers, max(known, 1)):
            return False
        # A peer that answered in the window without timing out is not slowed.
        return not any(now - t <= w and p not in recent for p, t in self._answered.items())
