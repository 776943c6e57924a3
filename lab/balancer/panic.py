"""Panic mode: the client's own judgement may exclude only a bounded share of its peers.

The rule (Envoy's panic threshold and max ejection percent, gRPC outlier detection's
``max_ejection_percent``, Finagle's balancers that never leave a client without a node):
breakers may take at most ``max_ejected_share`` of the known peers out of rotation
(``floor(n x share)``: 1 of 2 or 3, 2 of 4). When more breakers are open or half-open
than that, the verdicts are more likely the client's own mistake (a slowdown every peer
shares, a stall of the client itself, a judgement tuned on single-peer faults) than
real, and refusing requests on them turned a harmless slowdown into an outage (0.2 %
availability against random's 100 % on the Compose lab). In panic the client balances
over every peer by a failure-aware score instead; breakers keep judging and close as
usual, so panic ends by itself once they do. A total outage still fails fast, but
because the peers' own answers fail, not because the client refused to ask.

Why 50 %: Envoy's default panic threshold (below 50 % healthy hosts, route to all of
them). It keeps the blackholed worker of a 3-worker lab ejected (1 of 3) and trusts no
verdict that ejects two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PanicConfig:
    """How many peers the breakers may exclude before the client stops trusting them."""

    max_ejected_share: float = 0.5
    failure_weight: float = 1.0  # prior of the success-share estimate (Laplace: 1 of 2)
    distrust: float = 10.0  # score factor of a peer whose breaker is not closed

    def __post_init__(self) -> None:
        if not 0 <= self.max_ejected_share <= 1:
            raise ValueError(
                f"max_ejected_share: must be in [0, 1], not {self.max_ejected_share!r}"
            )
        if not (self.distrust >= 1 and math.isfinite(self.distrust)):
            raise ValueError(f"distrust: must be a finite number >= 1, not {self.distrust!r}")
        if not (self.failure_weight > 0 and math.isfinite(self.failure_weight)):
            raise ValueError(f"failure_weight: must be positive, not {self.failure_weight!r}")

    def cap(self, peers: int) -> int:
        """The most peers breakers may exclude out of ``peers`` (1.0: no limit)."""
        if self.max_ejected_share >= 1:
            return peers
        return math.floor(peers * self.max_ejected_share + 1e-9)

    def success_share(self, ok: int, bad: int) -> float:
        """Smoothed success share: 1 of 2 before any call, never 0 (a score divides by it)."""
        w = self.failure_weight
        return (ok + w) / (ok + bad + 2 * w)
