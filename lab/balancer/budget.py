"""A retry budget (Finagle, Linkerd): retries may add at most a share of the load.

Every request deposits; every retry withdraws. A retry is allowed while the retries in
the last ``window_s`` stay under ``percent`` of the requests in it plus a reserve of
``min_per_s * window_s`` (so a client at a trickle of load can still retry). Why a
budget rather than a per-request retry count: when a peer dies, retries rescue the
requests that hit it; when *everything* is failing, a fixed count multiplies the load
on an already sick system by the count, while the budget caps the extra load at 20 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lab.balancer.window import BucketRing


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    percent: float = 0.2
    min_per_s: float = 10.0
    window_s: float = 10.0
    buckets: int = 10

    def __post_init__(self) -> None:
        if not (self.percent >= 0 and math.isfinite(self.percent)):
            raise ValueError(f"percent: must be a non-negative number, not {self.percent!r}")
        if not (self.min_per_s >= 0 and math.isfinite(self.min_per_s)):
            raise ValueError(f"min_per_s: must be a non-negative number, not {self.min_per_s!r}")
        if not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise ValueError(f"window_s: must be a positive number, not {self.window_s!r}")
        if self.buckets < 1:
            raise ValueError(f"buckets: must be at least 1, not {self.buckets!r}")


class RetryBudget:
    """Deposits and withdrawals over a sliding window; pure (pass ``now``)."""

    def __init__(self, config: BudgetConfig) -> None:
        self._config = config
        self._requests = BucketRing(config.window_s, config.buckets)
        self._retries = BucketRing(config.window_s, config.buckets)
        self.spent = 0  # retries granted since start
        self.refused = 0  # retries refused since start

    def deposit(self, now: float) -> None:
        """One new request."""
        self._requests.add(now)

    def balance(self, now: float) -> float:
        """Retries still allowed in the window right now (may be fractional)."""
        c = self._config
        allowed = c.percent * self._requests.total(now) + c.min_per_s * c.window_s
        return allowed - self._retries.total(now)

    def can_withdraw(self, now: float) -> bool:
        return self.balance(now) >= 1.0

    def try_withdraw(self, now: float) -> bool:
        """Spend one retry if the budget allows it."""
        if not self.can_withdraw(now):
            self.refused += 1
            return False
        self._retries.add(now)
        self.spent += 1
        return True
