"""Slow start: a peer (re-)entering the pool gets a share that ramps up, not a flood.

Envoy's slow_start and gRPC's blackout period solve the same problem: a worker that
has just recovered (or just appeared) has cold caches and pools, and a least-loaded
balancer would send it everything at once because it looks idle. The weight ramps
linearly from ``min_weight`` to 1 over ``window_s``; the chooser draws candidates in
proportion to it (see :mod:`lab.balancer.scoring` for why drawing rather than dividing
the cost by it). The lab's default window (3 s) is set by the recovery target: half a
fair share (weight ~0.3-0.5) must be back within 5 s of a heal, after at most a 2 s
open breaker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlowStartConfig:
    window_s: float = 3.0
    min_weight: float = 0.1

    def __post_init__(self) -> None:
        if not (self.window_s >= 0 and math.isfinite(self.window_s)):
            raise ValueError(f"window_s: must be a non-negative number, not {self.window_s!r}")
        if not 0 < self.min_weight <= 1:
            raise ValueError(f"min_weight: must be in (0, 1], not {self.min_weight!r}")

    def weight(self, since: float | None, now: float) -> float:
        """The weight of a peer whose ramp began at ``since`` (None: no ramp, weight 1)."""
        if since is None or self.window_s == 0:
            return 1.0
        f = (now - since) / self.window_s
        if f >= 1.0:
            return 1.0
        return self.min_weight + (1.0 - self.min_weight) * max(0.0, f)
