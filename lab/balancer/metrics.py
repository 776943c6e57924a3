"""What the client measures about each peer: peak-EWMA latency, load, recent outcomes.

Peak EWMA (Finagle, Linkerd): a slower sample replaces the estimate at once, so a peer
that turns slow is penalised by its very next answer; lower samples pull it down only
gradually. Between samples the estimate also decays toward zero with the same time
constant, so a peer that is avoided because it *was* slow looks cheaper as time passes
and is eventually tried again: that decay is what un-starves it, and how long it takes
(``tau * ln(old / typical)``) is the probe interval of a slow peer. Finagle uses
tau = 10 s; the lab wants recovery in seconds, hence ~1 s.

Everything here is pure: callers pass ``now`` from their :class:`lab.clock.Clock`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lab.balancer.window import BucketRing


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Knobs of the per-peer measurements."""

    tau_s: float = 1.0  # decay time constant of the peak EWMA
    default_rtt_s: float = 0.030  # estimate for a peer nobody has history of (Finagle/Linkerd)
    window_s: float = 2.0  # success/failure window (views, gossip verdicts)
    buckets: int = 10

    def __post_init__(self) -> None:
        for name in ("tau_s", "default_rtt_s", "window_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}: must be a positive number, not {value!r}")
        if self.buckets < 1:
            raise ValueError(f"buckets: must be at least 1, not {self.buckets!r}")


class PeakEwma:
    """A latency estimate that jumps up on a slow sample and decays with time."""

    __slots__ = ("_stamp", "_tau", "_value")

    def __init__(self, tau_s: float) -> None:
        self._tau = tau_s
        self._value: float | None = None
        self._stamp = 0.0

    @property
    def has_history(self) -> bool:
        return self._value is not None

    def value(self, now: float) -> float | None:
        """The estimate at ``now`` (None before the first sample); reading changes nothing."""
        if self._value is None:
            return None
        dt = now - self._stamp
        if dt <= 0:
            return self._value
        return self._value * math.exp(-dt / self._tau)

    def observe(self, rtt: float, now: float) -> None:
        """Fold in one sample taken at ``now``."""
        rtt = max(0.0, rtt)
        current = self.value(now)
        if current is None or rtt >= current:
            self._value = rtt  # the peak: slower news wins at once
        else:
            w = math.exp(-max(0.0, now - self._stamp) / self._tau)
            self._value = current * w + rtt * (1.0 - w)
        self._stamp = max(self._stamp, now)

    def reset(self) -> None:
        """Forget the history (a peer coming back from an open breaker starts afresh)."""
        self._value = None


class PeerMetrics:
    """One peer's latency, in-flight count, windowed outcomes and failure streak."""

    __slots__ = (
        "_failures",
        "_successes",
        "consecutive_failures",
        "ewma",
        "in_flight",
        "last_failure",
        "last_sample",
        "last_success",
    )

    def __init__(self, config: MetricsConfig) -> None:
        self.ewma = PeakEwma(config.tau_s)
        self.in_flight = 0
        self._successes = BucketRing(config.window_s, config.buckets)
        self._failures = BucketRing(config.window_s, config.buckets)
        self.consecutive_failures = 0
        self.last_sample: float | None = None  # when an attempt to this peer last ended
        self.last_success: float | None = None
        self.last_failure: float | None = None

    def started(self) -> None:
        self.in_flight += 1

    def abandoned(self) -> None:
        """An attempt ended without an answer we judge (cancelled): only the load drops."""
        self.in_flight = max(0, self.in_flight - 1)

    def finished(self, now: float, rtt: float, ok: bool) -> None:
        """An attempt ended after ``rtt`` seconds; timeouts come here with ``ok=False``.

        Only answers feed the latency estimate. A failure's elapsed time says little
        about latency (a refused connection is "fast", a timeout is just the timeout we
        chose) and failures are the breaker's business: were a timeout a latency
        sample, the first one would price a blackholed peer out of the draw for
        seconds, the breaker would never see the second, and the peer would come back
        by slow decay instead of by a probe once it is healthy.
        """
        self.in_flight = max(0, self.in_flight - 1)
        self.last_sample = now
        if ok:
            self.ewma.observe(rtt, now)
            self._successes.add(now)
            self.consecutive_failures = 0
            self.last_success = now
        else:
            self._failures.add(now)
            self.consecutive_failures += 1
            self.last_failure = now

    def counts(self, now: float) -> tuple[int, int]:
        """(successes, failures) in the window ending at ``now``."""
        return self._successes.total(now), self._failures.total(now)

    def failure_rate(self, now: float) -> tuple[float, int]:
        """(failure share, calls) in the window; (0, 0) without calls."""
        ok, bad = self.counts(now)
        calls = ok + bad
        return (bad / calls if calls else 0.0), calls
