"""``c3``: replica ranking by response time and a cubic queue penalty (Suresh et al.,
"C3: Cutting Tail Latency in Cloud Data Stores via Adaptive Replica Selection",
NSDI 2015; shipped as Elasticsearch's adaptive replica selection).

Each reply carries the server's queue size and mean service time
(:mod:`lab.grenache.load`). Per server the client keeps EWMAs of its response time R,
the reported queue size q and the reported service time 1/mu, and ranks servers by

    psi = R - 1/mu + q_hat**3 / mu,   q_hat = 1 + os * n + q

where ``os`` is this client's outstanding requests to that server and ``n`` the number
of clients sharing the servers (the paper's concurrency compensation: every other
client may be sending as much). The request goes to the server of lowest psi; ties go
at random. Constants: EWMA weight 0.9 on the old value and exponent 3, the paper's;
``clients`` defaults to 1 (set it to the number of clients in a run).

Lab choices beyond the paper: a server without feedback yet ranks by ``q_hat`` alone
(R = 1/mu = 0 until its first reply), so new servers are tried; a server that reports
nothing (a plain Grenache peer) has its response time stand in for 1/mu; a failed attempt counts
its elapsed time as a response-time sample (a timeout is a 1 s response for R); and
feedback older than ``stale_s`` is forgotten, so a server that was ranked out (a
stalled one, whose R is the timeout) is tried again once it could have recovered, as
Elasticsearch's adjustment of unselected nodes does. One attempt, no retries, no
breakers. Left out: C3's per-server rate limiting with its cubic rate growth (backpressure
is the client's job here, not the policy's) and Elasticsearch's outstanding-search
adjustments.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any

from lab.balancer.policies import Pick, Policy
from lab.balancer.stats import PeerStats
from lab.grenache.load import LoadReport
from lab.history import Outcome


@dataclass(frozen=True, slots=True)
class C3Config:
    """C3's knobs (see the module docstring)."""

    alpha: float = 0.9  # weight of the old value in each EWMA
    exponent: float = 3.0  # b, the queue penalty's power
    clients: int = 1  # n, clients sharing the servers
    stale_s: float = 2.0  # feedback older than this is forgotten

    def __post_init__(self) -> None:
        if not 0 <= self.alpha < 1:
            raise ValueError(f"alpha: must be in [0, 1), not {self.alpha!r}")
        if not (self.exponent >= 1 and math.isfinite(self.exponent)):
            raise ValueError(f"exponent: must be >= 1, not {self.exponent!r}")
        if not isinstance(self.clients, int) or self.clients < 1:
            raise ValueError(f"clients: must be an integer >= 1, not {self.clients!r}")
        if not (self.stale_s > 0 and math.isfinite(self.stale_s)):
            raise ValueError(f"stale_s: must be a positive number, not {self.stale_s!r}")


@dataclass(slots=True)
class _Feedback:
    response_s: float | None = None
    queue: float | None = None
    service_s: float | None = None
    t: float = -math.inf


class C3Policy(Policy):
    """Lowest psi over all peers (module docstring)."""

    name = "c3"

    def __init__(self, *, config: C3Config | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config or C3Config()
        self._fb: dict[str, _Feedback] = {}

    def _added(self, peer: str, initial: bool) -> None:
        self._fb[peer] = _Feedback()

    def _removed(self, peer: str) -> None:
        self._fb.pop(peer, None)

    def _fresh(self, peer: str, now: float) -> _Feedback:
        fb = self._fb[peer]
        if now - fb.t > self.config.stale_s and fb.t > -math.inf:
            fb = self._fb[peer] = _Feedback()
        return fb

    def _blend(self, old: float | None, sample: float) -> float:
        return sample if old is None else self.config.alpha * old + (1 - self.config.alpha) * sample

    def psi(self, peer: str, now: float) -> float:
        """The rank of ``peer``: lower is better."""
        fb = self._fresh(peer, now)
        c = self.config
        q_hat = 1.0 + self._metrics[peer].in_flight * c.clients + (fb.queue or 0.0)
        response = fb.response_s or 0.0
        # a plain Grenache peer reports nothing: its response time stands in for 1/mu
        service = fb.service_s if fb.service_s is not None else response
        return float(response - service + q_hat**c.exponent * max(service, 1e-6))

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        pool = self._pool(exclude)
        now = self._clock.monotonic()
        best: list[str] = []
        low = math.inf
        for peer in pool:
            score = self.psi(peer, now)
            if score < low:
                best, low = [peer], score
            elif score == low:
                best.append(peer)
        return Pick(best[0] if len(best) == 1 else self._rng.choice(best))

    def observe_load(self, peer: str, report: LoadReport) -> None:
        """Server feedback from a reply's headers."""
        fb = self._fb.get(peer)
        if fb is None:
            return
        fb = self._fresh(peer, self._clock.monotonic())
        fb.queue = self._blend(fb.queue, float(report.queue))
        fb.service_s = self._blend(fb.service_s, report.service_s)

    def finished(self, pick: Pick, rtt: float, outcome: Outcome) -> None:
        super().finished(pick, rtt, outcome)
        if pick.peer in self._fb:
            now = self._clock.monotonic()
            fb = self._fresh(pick.peer, now)
            fb.response_s = self._blend(fb.response_s, max(0.0, rtt))
            fb.t = now

    def stats(self) -> list[PeerStats]:
        now = self._clock.monotonic()
        return [replace(row, score=self.psi(row.peer, now)) for row in super().stats()]
