"""The client's Prometheus metrics, in a registry of its own.

Why a registry per application: the default global registry would mix two clients
started in one process (tests do that) and keeps collectors alive after an app is gone.
Counters are bumped as requests end; per-peer gauges and gossip counters are read from
the policy and the gossip transport when scraped, so the hot path never touches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from lab.balancer.stats import GossipCounts, PeerStats
from lab.history import Outcome, RequestRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BREAKER_CODES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
"""Breaker state as a gauge value (Grafana-friendly: higher is worse)."""


class _LiveCollector:
    """Reads per-peer gauges and gossip totals at scrape time."""

    def __init__(
        self,
        client: str,
        peers: Callable[[], Sequence[PeerStats]],
        gossip: Callable[[], GossipCounts],
    ) -> None:
        self._client = client
        self._peers = peers
        self._gossip = gossip

    def collect(self) -> Iterator[Metric]:
        labels = ["client", "peer"]
        score = GaugeMetricFamily("lab_client_peer_score", "policy cost of a peer", labels=labels)
        ewma = GaugeMetricFamily(
            "lab_client_peer_ewma_seconds", "smoothed latency of a peer", labels=labels
        )
        in_flight = GaugeMetricFamily(
            "lab_client_peer_in_flight", "attempts in flight to a peer", labels=labels
        )
        breaker = GaugeMetricFamily(
            "lab_client_peer_breaker_state",
            "breaker state of a peer: 0 closed, 1 half-open, 2 open",
            labels=labels,
        )
        hints = GaugeMetricFamily(
            "lab_client_peer_hints", "gossip hints held against a peer", labels=labels
        )
        for p in self._peers():
            key = [self._client, p.peer]
            if p.score is not None:
                score.add_metric(key, p.score)
            if p.ewma_s is not None:
                ewma.add_metric(key, p.ewma_s)
            in_flight.add_metric(key, float(p.in_flight))
            breaker.add_metric(key, BREAKER_CODES.get(p.breaker, -1.0))
            hints.add_metric(key, float(p.hints))
        yield from (score, ewma, in_flight, breaker, hints)
        counts = self._gossip()
        for name, value, text in (
            ("sent", counts.sent, "gossip messages sent"),
            ("received", counts.received, "gossip messages accepted"),
            ("rejected", counts.rejected, "gossip messages refused (malformed, foreign, stale)"),
        ):
            family = CounterMetricFamily(f"lab_client_gossip_{name}", text, labels=["client"])
            family.add_metric([self._client], float(value))
            yield family


class ClientMetrics:
    """The counters a client bumps and the registry its ``/metrics`` serves."""

    def __init__(
        self,
        client: str,
        policy: str,
        peers: Callable[[], Sequence[PeerStats]] = tuple,
        gossip: Callable[[], GossipCounts] = GossipCounts,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._client = client
        self.requests = Counter(
            "lab_client_requests",
            "logical requests by outcome",
            ["client", "policy", "outcome"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "lab_client_attempts",
            "attempts by peer and outcome",
            ["client", "peer", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "lab_client_retries", "retries made", ["client"], registry=self.registry
        )
        self.in_flight = Gauge(
            "lab_client_in_flight", "logical requests in flight", ["client"], registry=self.registry
        )
        self.history_evicted = Gauge(
            "lab_client_history_evicted",
            "request records pushed out of the history ring",
            ["client"],
            registry=self.registry,
        )
        self._by_outcome = {o: self.requests.labels(client, policy, o.value) for o in Outcome}
        self._retries = self.retries.labels(client)
        self.registry.register(_LiveCollector(client, peers, gossip))

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request and its attempts."""
        self._by_outcome[record.outcome].inc()
        if record.retries:
            self._retries.inc(record.retries)
        for a in record.attempts:
            self.attempts.labels(self._client, a.peer, a.outcome.value).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
