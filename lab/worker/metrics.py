"""The worker's Prometheus metrics, in a registry of its own (no global state).

Requests and errors by outcome, a latency histogram of the time spent answering, the
announcements made (by result), the in-flight gauge and the current knobs.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from lab.grenache.server import Outcome
from lab.worker.behaviour import Behaviour

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    """Counters the RPC server's observer and the announce loop feed."""

    def __init__(self, name: str, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"worker": name, "service": service}
        self.requests = Counter(
            "lab_worker_requests", "RPC requests answered, by outcome",
            ["worker", "service", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "lab_worker_errors", "RPC requests answered with an error (injected or not)",
            ["worker", "service"], registry=self.registry,
        ).labels(**labels)  # fmt: skip
        self.latency = Histogram(
            "lab_worker_request_seconds", "Time from request to reply, in seconds",
            ["worker", "service"], buckets=BUCKETS, registry=self.registry,
        ).labels(**labels)  # fmt: skip
        self.announcements = Counter(
            "lab_worker_announcements", "Announces sent to the grapes, by result",
            ["worker", "service", "result"], registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge(
            "lab_worker_in_flight", "RPC requests being handled",
            ["worker", "service"], registry=self.registry,
        ).labels(**labels)  # fmt: skip
        self.knob = Gauge(
            "lab_worker_behaviour", "Current knobs: error_rate, cpu_ms, latency_first_param_ms",
            ["worker", "service", "knob"], registry=self.registry,
        )  # fmt: skip
        self._labels = labels
        self._by_outcome = {
            o: self.requests.labels(**labels, outcome=o.value) for o in Outcome
        }
        self._announce = {
            ok: self.announcements.labels(**labels, result="ok" if ok else "failed")
            for ok in (True, False)
        }

    def observe(self, outcome: Outcome, _key: str | None, seconds: float) -> None:
        """The RPC server's observer."""
        self._by_outcome[outcome].inc()
        if outcome is not Outcome.OK:
            self.errors.inc()
        self.latency.observe(seconds)

    def announced(self, _name: str, ok: bool) -> None:
        """The announce loop's observer."""
        self._announce[ok].inc()

    def set_behaviour(self, b: Behaviour) -> None:
        self.knob.labels(**self._labels, knob="error_rate").set(b.error_rate)
        self.knob.labels(**self._labels, knob="cpu_ms").set(b.cpu_ms)
        self.knob.labels(**self._labels, knob="latency_first_param_ms").set(b.latency.params[0])

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
