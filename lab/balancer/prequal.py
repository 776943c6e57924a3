"""``prequal``: Probing to Reduce Queuing and Latency (Wydrowski et al., NSDI 2024).

The rule, as published: the client keeps a small pool of recent probe results, each a
server's requests-in-flight (RIF) and latency. Each request triggers a few probes to
random servers (asynchronous: the request does not wait for them, it uses the pool as
it is). A probe is *hot* when its RIF is above the ``hot_quantile`` quantile of the RIFs
seen in recent probes; the request goes to the cold probe with the lowest latency, or,
when every probe is hot, to the one with the lowest RIF. Probes age out after
``max_age_s`` and are dropped after ``max_uses`` selections (a probe describes a
moment; reusing it too often herds requests onto one server). An empty pool falls back
to a uniform random pick.

Constants (``PrequalConfig``): 3 probes per request, a pool of 16, 0.84 hot quantile,
1 s age-out, 2 uses per probe: this implementation's choices after the paper's
description (a few probes per query, a pool of about a dozen, a high RIF quantile),
not its exact defaults, which were not checked against the paper; not tuned to the
lab's scenarios either. Lab choices beyond the paper: each selection adds one to the chosen
probe's RIF (this client's own request is now in flight there), so a reused probe
reflects the load just sent; the pool evicts the oldest probe when full; a failed probe
removes the server's probes (a server that cannot answer a probe is not picked until it
answers one again), and that is Prequal's only failure handling: one attempt, no
retries, no breakers. Left out: the paper's RIF-distribution estimate over a longer
window (here the last ``rif_window`` probes), its adaptive probe rate, and removing the
worst probe on each probe arrival.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from lab.balancer.feedback import ProbeRequester
from lab.balancer.policies import Pick, Policy
from lab.balancer.stats import PeerStats
from lab.grenache.load import LoadReport

RESORT_EVERY = 8


@dataclass(frozen=True, slots=True)
class PrequalConfig:
    """Prequal's knobs (see the module docstring for where each comes from)."""

    probes_per_request: int = 3
    pool_size: int = 16
    hot_quantile: float = 0.84
    max_age_s: float = 1.0
    max_uses: int = 2
    rif_window: int = 64

    def __post_init__(self) -> None:
        for name in ("probes_per_request", "pool_size", "max_uses", "rif_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, not {value!r}")
        if not 0 < self.hot_quantile <= 1:
            raise ValueError(f"hot_quantile: must be in (0, 1], not {self.hot_quantile!r}")
        if not (self.max_age_s > 0 and math.isfinite(self.max_age_s)):
            raise ValueError(f"max_age_s: must be a positive number, not {self.max_age_s!r}")


@dataclass(slots=True)
class _Probe:
    peer: str
    rif: int
    latency_s: float
    t: float
    uses: int = 0


class PrequalPolicy(Policy):
    """Hot/cold selection over a pool of asynchronous probes (module docstring)."""

    name = "prequal"

    def __init__(self, *, config: PrequalConfig | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config or PrequalConfig()
        self._pool_probes: list[_Probe] = []
        self._rifs: deque[int] = deque(maxlen=self.config.rif_window)
        self._prober: ProbeRequester | None = None
        self._threshold = math.inf
        self._unsorted = 0  # probes since the threshold was last computed
        self.fallbacks = 0  # picks made at random for want of probes

    # -- probes ---------------------------------------------------------------------------

    def set_prober(self, requester: ProbeRequester) -> None:
        self._prober = requester

    def take_probe(self, peer: str, report: LoadReport) -> None:
        if peer not in self._metrics:
            return
        self._rifs.append(report.in_flight)
        self._unsorted += 1
        probes = self._pool_probes
        if len(probes) >= self.config.pool_size:
            del probes[0]  # the pool is in arrival order: the oldest goes
        probes.append(_Probe(peer, report.in_flight, report.latency_s, self._clock.monotonic()))

    def probe_failed(self, peer: str) -> None:
        self._pool_probes = [p for p in self._pool_probes if p.peer != peer]

    def _removed(self, peer: str) -> None:
        self.probe_failed(peer)

    def _send_probes(self) -> None:
        if self._prober is None or not self._order:
            return
        k = self.config.probes_per_request
        targets = self._order if k >= len(self._order) else self._rng.sample(self._order, k)
        for peer in targets:
            self._prober(peer)

    def hot_threshold(self) -> float:
        """The RIF above which a probe is hot: a quantile of recent probes' RIFs.

        Recomputed once ``RESORT_EVERY`` probes have arrived (and for the first ones):
        a quantile over the last 64 moves little per probe, and sorting on every request
        was most of the decision's cost.
        """
        if self._unsorted >= RESORT_EVERY or (self._unsorted and len(self._rifs) <= RESORT_EVERY):
            ordered = sorted(self._rifs)
            k = math.ceil(self.config.hot_quantile * len(ordered)) - 1
            self._threshold = ordered[max(0, min(len(ordered) - 1, k))]
            self._unsorted = 0
        return self._threshold

    # -- the request path -----------------------------------------------------------------

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        pool = self._pool(exclude)
        self._send_probes()
        probes = self._pool_probes
        oldest = self._clock.monotonic() - self.config.max_age_s
        while probes and probes[0].t < oldest:
            del probes[0]  # arrival order: the aged ones are at the front
        usable = [p for p in probes if p.peer not in exclude] if exclude else probes
        if not usable:
            self.fallbacks += 1
            return Pick(self._rng.choice(pool))
        threshold = self.hot_threshold()
        best: _Probe | None = None  # the fastest cold probe
        least = usable[0]  # the least loaded, should every probe be hot
        for p in usable:
            if p.rif <= threshold and (
                best is None or (p.latency_s, p.rif) < (best.latency_s, best.rif)
            ):
                best = p
            if (p.rif, p.latency_s) < (least.rif, least.latency_s):
                least = p
        if best is None:
            best = least
        best.uses += 1
        best.rif += 1
        if best.uses >= self.config.max_uses:
            probes.remove(best)
        return Pick(best.peer)

    def stats(self) -> list[PeerStats]:
        rows = super().stats()
        held: dict[str, int] = {}
        for p in self._pool_probes:
            held[p.peer] = held.get(p.peer, 0) + 1
        for row in rows:
            row.detail["probes_held"] = held.get(row.peer, 0)
        return rows
