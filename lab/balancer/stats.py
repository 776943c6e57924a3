"""What a policy and the gossip transport report about themselves, for ``GET /peers``.

Plain values owned by the pure balancer: the client service turns them into Prometheus
gauges (``lab.loadgen.metrics``) and JSON, so the balancer needs no metrics library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PeerStats:
    """What the client knows about one peer, for ``GET /peers`` and the gauges."""

    peer: str
    score: float | None = None  # the policy's cost; lower is better
    ewma_s: float | None = None  # smoothed latency in seconds
    in_flight: int = 0
    breaker: str = "closed"  # closed | half_open | open
    hints: int = 0  # gossip hints currently held against this peer
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "score": self.score,
            "ewma_s": self.ewma_s,
            "in_flight": self.in_flight,
            "breaker": self.breaker,
            "hints": self.hints,
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class GossipCounts:
    """Totals of the gossip transport since start."""

    sent: int = 0
    received: int = 0
    rejected: int = 0
