"""Two power-of-two-choices baselines from the field: ``least_request`` and ``peak_ewma``.

Both draw two distinct peers at random and send to the cheaper one; one attempt, no
retries, no breakers, no gossip. They show what P2C alone buys, and what the adaptive
policy's extras (breakers, budgets, slow start, hints) add on top.

- ``least_request``: Envoy's LEAST_REQUEST load balancer with equal weights
  (``choice_count: 2``): cost = the requests this client has in flight to the peer.
  Left out: Envoy's weighted mode (``active_request_bias``) and slow start.
- ``peak_ewma``: Finagle's / Linkerd 1's ``ewma`` balancer ("Beyond Round Robin",
  2016): cost = peak EWMA of round-trip times x (in flight + 1). Finagle's rules kept:
  every response, failures and timeouts included, is a sample of its elapsed time (a
  1 s timeout is a 1 s sample: that is what drives a stalled backend out of the draw);
  a slower sample replaces the estimate at once; a faster one is blended in with the
  weight exp(-dt / tau); reading the estimate decays it toward 0 with the same tau
  (Finagle's ``observe(0)`` on read; here the read changes nothing, so samples
  blend with the stored peak as if nobody had looked in between), which is what brings
  a peer priced out by a timeout back into the draw, ``tau x ln(old / typical)``
  later (~53 s from a 1 s sample to 5 ms peers). A peer with no sample yet costs
  ``PENALTY_S`` x (in flight + 1), so new peers are tried before known ones but not
  flooded. Left out: Finagle's failure accrual and aperture.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from typing import Any

from lab.balancer.policies import Pick, Policy
from lab.history import Outcome

PEAK_EWMA_TAU_S = 10.0
"""Finagle's default decay time (``decayTime = 10.seconds``), used by Linkerd in 2016."""

PENALTY_S = 1e-3
"""Cost basis of a peer without samples: below any real RTT in the lab, so an unknown
peer is tried first, and growing with its in-flight count like any other."""


class LeastRequestPolicy(Policy):
    """P2C on the client's own in-flight counts (Envoy ``LEAST_REQUEST``)."""

    name = "least_request"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        pool = self._pool(exclude)
        if len(pool) == 1:
            return Pick(pool[0])
        a, b = self._rng.sample(pool, 2)
        la, lb = self._metrics[a].in_flight, self._metrics[b].in_flight
        return Pick(a if la < lb or (la == lb and self._rng.random() < 0.5) else b)


class _FinagleEwma:
    """Finagle's peak EWMA: peaks at once, blends lower samples, decays when read."""

    __slots__ = ("_stamp", "_value")

    def __init__(self) -> None:
        self._value: float | None = None
        self._stamp = 0.0

    def value(self, now: float, tau: float) -> float | None:
        """The estimate at ``now``: Finagle reads it as ``observe(0)``, a decay to 0."""
        if self._value is None:
            return None
        return self._value * math.exp(-max(0.0, now - self._stamp) / tau)

    def observe(self, rtt: float, now: float, tau: float) -> None:
        rtt = max(0.0, rtt)
        if self._value is None or rtt > self._value:
            self._value = rtt
        else:
            w = math.exp(-max(0.0, now - self._stamp) / tau)
            self._value = self._value * w + rtt * (1.0 - w)
        self._stamp = max(self._stamp, now)


class PeakEwmaPolicy(Policy):
    """P2C on peak-EWMA latency x (in flight + 1), as Finagle and Linkerd 1 do."""

    name = "peak_ewma"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ewma: dict[str, _FinagleEwma] = {}

    def _added(self, peer: str, initial: bool) -> None:
        self._ewma[peer] = _FinagleEwma()

    def _removed(self, peer: str) -> None:
        self._ewma.pop(peer, None)

    def cost(self, peer: str) -> float:
        """What sending to ``peer`` is expected to cost (seconds x load)."""
        value = self._ewma[peer].value(self._clock.monotonic(), PEAK_EWMA_TAU_S)
        basis = PENALTY_S if value is None else value
        return basis * (self._metrics[peer].in_flight + 1)

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        pool = self._pool(exclude)
        if len(pool) == 1:
            return Pick(pool[0])
        a, b = self._rng.sample(pool, 2)
        ca, cb = self.cost(a), self.cost(b)
        return Pick(a if ca < cb or (ca == cb and self._rng.random() < 0.5) else b)

    def finished(self, pick: Pick, rtt: float, outcome: Outcome) -> None:
        super().finished(pick, rtt, outcome)
        ewma = self._ewma.get(pick.peer)
        if ewma is not None:
            ewma.observe(rtt, self._clock.monotonic(), PEAK_EWMA_TAU_S)
