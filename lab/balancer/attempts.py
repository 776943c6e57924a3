"""The adaptive policy's per-attempt settings, and the hedge delay recent answers give.

Why a module of its own: the attempt timeout's floor and multiplier and the hedging
switch are one option group (``attempts`` in a scenario or ``registry.VARIANTS``), and
the hedge delay keeps data of its own, the latencies of recent successful attempts, that
nothing else of the policy reads. The hedge race itself is the client's
(:mod:`lab.balancer.hedging`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from lab.balancer.tail import upper_quantile

HEDGE_MIN_ANSWERS = 20
"""Successful attempts needed before a hedge delay is given: fewer say nothing of a tail."""


@dataclass(frozen=True, slots=True)
class AttemptConfig:
    """Per-attempt timeouts (and hedging, which is off by default)."""

    floor_s: float = 0.1
    multiplier: float = 4.0
    hedge: bool = False
    hedge_quantile: float = 0.95
    hedge_min_s: float = 0.005

    def __post_init__(self) -> None:
        if not self.floor_s > 0:
            raise ValueError(f"floor_s: must be positive, not {self.floor_s!r}")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier: must be at least 1, not {self.multiplier!r}")
        if not 0 < self.hedge_quantile < 1:
            raise ValueError(f"hedge_quantile: must be in (0, 1), not {self.hedge_quantile!r}")
        if not self.hedge_min_s >= 0:
            raise ValueError(f"hedge_min_s: must not be negative, not {self.hedge_min_s!r}")


class HedgeDelay:
    """The latencies of the last 256 successful attempts, kept only while hedging is on."""

    def __init__(self, config: AttemptConfig) -> None:
        self.config = config
        self._recent: deque[float] = deque(maxlen=256)

    def answered(self, rtt: float) -> None:
        """A successful attempt's latency (ignored with hedging off: nothing reads it)."""
        if self.config.hedge:
            self._recent.append(rtt)

    def delay(self) -> float | None:
        """The hedge quantile of recent successful attempts' latency, once there are 20."""
        a = self.config
        if not a.hedge or len(self._recent) < HEDGE_MIN_ANSWERS:
            return None
        return max(a.hedge_min_s, upper_quantile(self._recent, a.hedge_quantile))
