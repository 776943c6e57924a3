"""A per-peer circuit breaker: closed, open, half-open, with every transition an event.

- **closed -> open** on the first of: ``consecutive_failures`` failures in a row (the
  fast path, Finagle's failure accrual uses 5); ``consecutive_timeouts`` timeouts in a
  row (a timeout on a peer that answers in milliseconds is strong evidence, and the
  latency estimate steers traffic away after the first one, so waiting for five would
  leave a blackholed peer half-detected for seconds); or a failure share of at least
  ``failure_rate`` over ``window_s`` with ``min_calls`` calls (resilience4j). Slow calls
  (longer than ``slow_call_s``) count as failures.
- **open -> half-open** once the open time has passed. The open time grows
  ``open_factor``-fold per consecutive trip from ``open_base_s`` up to ``open_cap_s``
  and is jittered downward by up to ``jitter`` (so clients that tripped together do not
  probe together, and the cap is never exceeded). The trip count resets after the peer
  has stayed closed for ``reset_after_s``.
- **half-open** admits at most ``half_open_probes`` probes in flight (1: every probe
  of a still-broken peer costs one request a timeout and a retry, so one at a time);
  ``half_open_successes`` successes in a row close the breaker, any failure re-opens
  it. After a failure-rate trip (intermittent errors, not a dead peer) it takes
  ``rate_half_open_successes`` (8): a success-rate test over the probes. A worker failing
  half its requests passes 2 in a row one cycle in 4 (then its share came back and
  ``scenarios/errors.yaml`` read ~10 s of detection), 8 in a row one in 256; one failing
  5 % passes 8 two times in 3, and a healed one always, 8 quick probes later.
- **probation**: for ``reset_after_s`` after a re-close, the failure-rate test needs only
  ``probation_min_calls`` calls. A worker failing half its requests passes two probes
  in a row one cycle in four; with the ordinary 10-call minimum it then kept a slow-start
  share for seconds before the rate caught it again (detection read ~10 s in
  ``scenarios/errors.yaml``); on probation its first 4 calls hold a failure 15 times in
  16. A peer that never tripped (one failing 5 %) is never on probation, so it does not
  flap.

The cap is deliberately low (2 s, against Linkerd's 60 s): the time from a worker's
recovery to its first probe is at most the cap, and the lab's target is half a fair
share back within 5 s of the heal. A probe costs one attempt (retried elsewhere), so
even at the cap the probe traffic stays far under the 5 % share a faulty peer may get.

Results of attempts that began in an earlier state (before the trip) only count toward
the streaks and window; they never move a breaker that has moved on since.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from lab.balancer.window import BucketRing


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Result(Enum):
    """How an attempt ended, as the breaker judges it."""

    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    window_s: float = 2.0
    buckets: int = 10
    failure_rate: float = 0.25  # Finagle success-rate accrual trips below 80 % success
    min_calls: int = 10
    consecutive_failures: int = 5
    consecutive_timeouts: int = 2
    slow_call_s: float = 1.0
    open_base_s: float = 0.5
    open_factor: float = 2.0
    open_cap_s: float = 2.0
    jitter: float = 0.2
    half_open_probes: int = 1  # in flight at once
    half_open_successes: int = 2  # in a row, to close
    rate_half_open_successes: int = 8  # in a row, when the failure rate tripped it
    reset_after_s: float = 10.0
    probation_min_calls: int = 4  # the failure-rate test's minimum right after a re-close

    def __post_init__(self) -> None:
        positive = ("window_s", "slow_call_s", "open_base_s", "open_cap_s", "reset_after_s")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}: must be a positive number, not {value!r}")
        for name in ("buckets", "min_calls", "consecutive_failures", "consecutive_timeouts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, not {getattr(self, name)!r}")
        counts = (
            "half_open_probes",
            "half_open_successes",
            "rate_half_open_successes",
            "probation_min_calls",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, not {getattr(self, name)!r}")
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"failure_rate: must be in (0, 1], not {self.failure_rate!r}")
        if self.open_factor < 1:
            raise ValueError(f"open_factor: must be at least 1, not {self.open_factor!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter: must be in [0, 1), not {self.jitter!r}")
        if self.open_cap_s < self.open_base_s:
            raise ValueError("open_cap_s: must not be below open_base_s")

    def open_time(self, trips: int, rng: random.Random) -> float:
        """How long the ``trips``-th consecutive trip keeps the breaker open."""
        nominal = min(self.open_cap_s, self.open_base_s * self.open_factor ** max(0, trips - 1))
        return nominal * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one peer's breaker."""

    t: float
    peer: str
    from_state: State
    to_state: State
    reason: str

    def detail(self) -> dict[str, str]:
        return {"from": self.from_state.value, "to": self.to_state.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one attempt; ``probe`` when it is one of half-open's probes.

    ``panic``: given whatever the state (panic mode); when half-open its result counts
    like a probe's (without taking a probe slot), so panic traffic can close a breaker.
    """

    generation: int
    probe: bool
    panic: bool = False


class Breaker:
    """The breaker of one peer. Pure: time comes in as ``now``, transitions go to ``emit``."""

    def __init__(
        self,
        peer: str,
        config: BreakerConfig,
        rng: random.Random,
        emit: Callable[[Transition], None],
    ) -> None:
        self.peer = peer
        self._config = config
        self._rng = rng
        self._emit = emit
        self._state = State.CLOSED
        self._generation = 0  # bumped on every transition; permits remember theirs
        self._ok = BucketRing(config.window_s, config.buckets)
        self._bad = BucketRing(config.window_s, config.buckets)
        self._failures_in_row = 0
        self._timeouts_in_row = 0
        self.trips = 0
        self.opened_at: float | None = None
        self.open_until = 0.0
        self._closed_since: float | None = None
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._rate_tripped = False  # the open period began with the failure-rate test

    # -- reading -------------------------------------------------------------------------

    def state(self, now: float) -> State:
        """The state at ``now`` (an elapsed open period turns half-open here)."""
        if self._state is State.OPEN and now >= self.open_until:
            self._move(now, State.HALF_OPEN, "open time elapsed")
        return self._state

    def allows(self, now: float) -> bool:
        """Would :meth:`acquire` grant a permit now?"""
        state = self.state(now)
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN:
            return self._probes_in_flight < self._config.half_open_probes
        return False

    # -- attempts ------------------------------------------------------------------------

    def acquire(self, now: float) -> Permit | None:
        """A permit for one attempt, or None when the breaker refuses it."""
        state = self.state(now)
        if state is State.CLOSED:
            return Permit(self._generation, probe=False)
        if state is State.HALF_OPEN and self._probes_in_flight < self._config.half_open_probes:
            self._probes_in_flight += 1
            return Permit(self._generation, probe=True)
        return None

    def bypass(self) -> Permit:
        """A permit whatever the state (panic mode): judged like any, never a probe."""
        return Permit(self._generation, probe=False, panic=True)

    def on_probation(self, now: float) -> bool:
        """Closed again within ``reset_after_s`` of a trip: the rate test needs fewer calls."""
        return (
            self._state is State.CLOSED
            and self.trips > 0
            and self._closed_since is not None
            and now - self._closed_since < self._config.reset_after_s
        )

    def release(self, permit: Permit) -> None:
        """The attempt was abandoned without a verdict (e.g. a hedge that lost)."""
        if permit.probe and permit.generation == self._generation:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def record(
        self, permit: Permit, now: float, result: Result, rtt: float, *, judge_slow: bool = True
    ) -> None:
        """Judge one finished attempt (``judge_slow=False``: a slow answer is no failure)."""
        if judge_slow and result is Result.SUCCESS and rtt > self._config.slow_call_s:
            result = Result.FAILURE
            reason = f"slow call ({rtt:.3f}s > {self._config.slow_call_s:g}s)"
        else:
            reason = result.value
        ok = result is Result.SUCCESS
        (self._ok if ok else self._bad).add(now)
        if ok:
            self._failures_in_row = self._timeouts_in_row = 0
        else:
            self._failures_in_row += 1
            self._timeouts_in_row = self._timeouts_in_row + 1 if result is Result.TIMEOUT else 0
        current = permit.generation == self._generation
        state = self.state(now)
        if state is State.HALF_OPEN and (permit.probe or permit.panic) and current:
            if permit.probe:
                self._probes_in_flight = max(0, self._probes_in_flight - 1)
            if not ok:
                self._trip(now, f"probe failed: {reason}")
                return
            self._probe_successes += 1
            needed = (
                self._config.rate_half_open_successes
                if self._rate_tripped
                else self._config.half_open_successes
            )
            if self._probe_successes >= needed:
                self._move(now, State.CLOSED, f"{self._probe_successes} probes succeeded")
            return
        if state is State.CLOSED and not ok:
            why = self._trip_reason(now)
            if why is not None:
                self._trip(now, why)

    def force_half_open(self, now: float) -> bool:
        """Cut an open period short (every peer is excluded): allowed after the base time.

        Returns whether the breaker is now half-open with a free probe slot.
        """
        earliest = self._config.open_base_s * (1 - self._config.jitter)
        if (
            self.state(now) is State.OPEN
            and self.opened_at is not None
            and now - self.opened_at >= earliest
        ):
            self._move(now, State.HALF_OPEN, "every peer excluded: early probe")
        return self.allows(now) and self._state is State.HALF_OPEN

    # -- internals -----------------------------------------------------------------------

    def _trip_reason(self, now: float) -> str | None:
        c = self._config
        if self._timeouts_in_row >= c.consecutive_timeouts:
            return f"{self._timeouts_in_row} consecutive timeouts"
        if self._failures_in_row >= c.consecutive_failures:
            return f"{self._failures_in_row} consecutive failures"
        bad = self._bad.total(now)
        calls = bad + self._ok.total(now)
        least = c.probation_min_calls if self.on_probation(now) else c.min_calls
        if calls >= least and bad / calls >= c.failure_rate:
            return f"failure rate {bad / calls:.0%} over {calls} calls"
        return None

    def _trip(self, now: float, reason: str) -> None:
        if reason.startswith("failure rate"):
            self._rate_tripped = True  # sticky through failed probes until a close
        if self._closed_since is not None and now - self._closed_since >= (
            self._config.reset_after_s
        ):
            self.trips = 0  # healthy long enough: the back-off starts over
        self.trips += 1
        self.opened_at = now
        self.open_until = now + self._config.open_time(self.trips, self._rng)
        self._move(now, State.OPEN, reason)

    def _move(self, now: float, to: State, reason: str) -> None:
        before = self._state
        self._state = to
        self._generation += 1
        self._probes_in_flight = 0
        self._probe_successes = 0
        if to is State.CLOSED:
            self._rate_tripped = False
            self._closed_since = now
            self._ok.clear()
            self._bad.clear()
            self._failures_in_row = self._timeouts_in_row = 0
        elif before is State.CLOSED:
            self._closed_since = None
        self._emit(Transition(now, self.peer, before, to, reason))
