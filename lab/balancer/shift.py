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

Precisely: at least two peers (one when only one is known) timed out within the
window, and no peer answered in time (success or error) since the first of those
timeouts. A peer that keeps answering is not slowed, so a blackhole of two workers out
of three, where one still answers in milliseconds, is a peer fault and stays one; an
answer that took longer than the ordinary timeout does not end the shift (that is what
the shift looks like once the client waits).
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
    """Recent timeouts per peer, and the last answer that came back in time."""

    __slots__ = ("_config", "_fast", "_last_timeout", "_timed_out")

    def __init__(self, config: ShiftConfig) -> None:
        self._config = config
        self._timed_out: dict[str, float] = {}
        self._fast: float | None = None  # when any peer last answered in time
        self._last_timeout = -math.inf

    def watching(self, now: float) -> bool:
        """Any timeout in the window? (If not, nothing else here needs computing.)"""
        return now - self._last_timeout <= self._config.window_s

    def answered(self, now: float, in_time: bool) -> None:
        """An attempt ended with an answer (success or error) at ``now``.

        ``in_time``: the answer came within the attempt timeout the client would use
        without a shift. Such an answer from anyone proves the slowness is not shared.
        """
        if in_time:
            self._fast = now

    def timed_out(self, peer: str, now: float) -> None:
        self._timed_out[peer] = now
        self._last_timeout = max(self._last_timeout, now)

    def forget(self, peer: str) -> None:
        self._timed_out.pop(peer, None)

    def shifted(self, now: float, known: int) -> bool:
        """Did ``min_peers`` peers (or every one, when fewer are known) time out in the
        window, with no answer in time from anyone since the first of those timeouts?"""
        w = self._config.window_s
        if now - self._last_timeout > w:
            return False
        recent = [t for t in self._timed_out.values() if now - t <= w]
        if not recent or len(recent) < min(self._config.min_peers, max(known, 1)):
            return False
        return self._fast is None or self._fast < min(recent)
